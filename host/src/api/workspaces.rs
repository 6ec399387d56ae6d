//! `/workspace` (the caller's) and `/workspaces` (create another, operator keys only).

use super::AppState;
use super::extract::{ApiJson, Principal};
use super::keys::{ApiKeyView, CreatedApiKey};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::store::WorkspaceRecord;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The caller's workspace.
#[utoipa::path(get, path = "/api/v1/workspace", tag = "workspaces", operation_id = "current_workspace",
    responses((status = 200, body = WorkspaceRecord), (status = 404, description = "The key's workspace is gone", body = crate::error::Problem)))]
pub async fn current(State(state): State<Arc<AppState>>, principal: Principal) -> ApiResult<Json<WorkspaceRecord>> {
    let ws = state
        .db
        .workspace(&principal.workspace_id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    Ok(Json(ws))
}

/// Request to create a workspace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// Display name: 1–200 characters, not only whitespace.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Email of its first owner (must contain an `@`).
    #[schema(pattern = "@")]
    pub owner_email: String,
}

/// A new workspace and its owner's first API key (shown once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWorkspace {
    /// The workspace.
    pub workspace: WorkspaceRecord,
    /// Its first key.
    pub owner_key: CreatedApiKey,
}

/// Create a workspace with an owner and an owner key (`workspaces:create`).
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", operation_id = "create_workspace", request_body = CreateWorkspace,
    responses((status = 201, body = CreatedWorkspace),
        (status = 404, description = "The calling key is gone", body = crate::error::Problem),
        (status = 409, description = "Conflicts with an existing workspace", body = crate::error::Problem),
        (status = 422, description = "Invalid name or email, or the body does not match the schema", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateWorkspace>,
) -> ApiResult<(StatusCode, Json<CreatedWorkspace>)> {
    principal.require(Scope::WorkspacesCreate)?;
    if body.name.trim().is_empty() || body.name.chars().count() > 200 {
        return Err(ApiError::unprocessable("invalid_name", "name must be 1–200 characters"));
    }
    if !body.owner_email.contains('@') {
        return Err(ApiError::unprocessable(
            "invalid_email",
            "owner_email must be an email address",
        ));
    }
    let creator = state
        .db
        .api_key(&principal.workspace_id, &principal.key_id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    // Another node may still trust a just-revoked key from its cache: read it again here.
    if creator.revoked_at.is_some() || creator.expires_at.is_some_and(|at| at <= crate::store::now_ms()) {
        return Err(ApiError::unauthorized("this API key has been revoked or has expired"));
    }
    let made = crate::workspaces::create_with_owner(
        &state,
        &body.name,
        &body.owner_email,
        &Scope::parse_list("connections:read connections:write actions:execute marketplace:publish admin"),
        crate::workspaces::CreatorLimits {
            expires_at: creator.expires_at,
            rate_limit_per_minute: Some(creator.rate_limit_per_minute),
            quota_per_hour: creator.quota_per_hour,
            quota_per_day: creator.quota_per_day,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWorkspace {
            owner_key: CreatedApiKey {
                key: made.secret.to_string(),
                api_key: ApiKeyView::from(&made.key),
            },
            workspace: made.workspace,
        }),
    ))
}
