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
#[utoipa::path(get, path = "/api/v1/workspace", tag = "workspaces", responses((status = 200, body = WorkspaceRecord)))]
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
    /// Display name.
    pub name: String,
    /// Email of its first owner.
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
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", request_body = CreateWorkspace,
    responses((status = 201, body = CreatedWorkspace), (status = 403, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateWorkspace>,
) -> ApiResult<(StatusCode, Json<CreatedWorkspace>)> {
    principal.require(Scope::WorkspacesCreate)?;
    if body.name.trim().is_empty() || body.name.len() > 200 {
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
