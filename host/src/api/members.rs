//! `/members`: people in the workspace and their roles.

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Pagination, Principal};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::store::{AuditEntry, MemberRecord, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A page of members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberList {
    /// Members.
    pub data: Vec<MemberRecord>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// List members (`connections:read`).
#[utoipa::path(get, path = "/api/v1/members", tag = "members", operation_id = "list_members", params(Pagination),
    responses((status = 200, body = MemberList), (status = 422, description = "`limit` outside 1–100", body = crate::error::Problem)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<MemberList>> {
    principal.require(Scope::ConnectionsRead)?;
    let p = state
        .db
        .list_members(&principal.workspace_id, page.after(), page.limit()?)
        .await?;
    Ok(Json(MemberList {
        data: p.items,
        next_cursor: p.next_cursor,
    }))
}

/// Request to add a member.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMember {
    /// Email (unique in the workspace): at most 320 characters, with an `@`.
    #[schema(max_length = 320, pattern = "@")]
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Role.
    pub role: Role,
}

/// Add a member (`admin`).
#[utoipa::path(post, path = "/api/v1/members", tag = "members", operation_id = "create_member", request_body = CreateMember,
    responses((status = 201, body = MemberRecord),
        (status = 409, description = "A member with this email exists", body = crate::error::Problem),
        (status = 422, description = "Not an email address (`invalid_email`), or the body does not match the schema", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateMember>,
) -> ApiResult<(StatusCode, Json<MemberRecord>)> {
    principal.require(Scope::Admin)?;
    if !body.email.contains('@') || body.email.chars().count() > 320 {
        return Err(ApiError::unprocessable(
            "invalid_email",
            "email must be an email address",
        ));
    }
    let member = state
        .db
        .add_member(&principal.workspace_id, &body.email, &body.name, body.role)
        .await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// One member (`connections:read`).
#[utoipa::path(get, path = "/api/v1/members/{id}", tag = "members", operation_id = "get_member", params(("id" = String, Path, description = "`mem_…`")),
    responses((status = 200, body = MemberRecord), (status = 404, description = "No such member in this workspace", body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<MemberRecord>> {
    principal.require(Scope::ConnectionsRead)?;
    state
        .db
        .member(&principal.workspace_id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("member"))
}

/// Request to change a member.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    /// New role.
    pub role: Role,
}

/// Change a member's role (`admin`).
#[utoipa::path(patch, path = "/api/v1/members/{id}", tag = "members", operation_id = "update_member", params(("id" = String, Path, description = "`mem_…`")),
    request_body = UpdateMember,
    responses((status = 200, body = MemberRecord), (status = 404, description = "No such member in this workspace", body = crate::error::Problem)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateMember>,
) -> ApiResult<Json<MemberRecord>> {
    principal.require(Scope::Admin)?;
    if !state
        .db
        .set_member_role(&principal.workspace_id, &id, body.role)
        .await?
    {
        return Err(ApiError::not_found("member"));
    }
    // The member's keys act with the new role from their next request on this node.
    state.keys.evict_member(&id);
    state
        .db
        .member(&principal.workspace_id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("member"))
}

/// Remove a member (`admin`); their API keys are revoked with them.
#[utoipa::path(delete, path = "/api/v1/members/{id}", tag = "members", operation_id = "remove_member", params(("id" = String, Path, description = "`mem_…`")),
    responses((status = 204, description = "Removed, with their keys"),
        (status = 404, description = "No such member in this workspace", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::Admin)?;
    let Some(revoked) = state.db.remove_member(&principal.workspace_id, &id).await? else {
        return Err(ApiError::not_found("member"));
    };
    let mut audit = vec![AuditEntry::new(
        &principal.workspace_id,
        &principal.key_id,
        "member.remove",
        &id,
        "",
    )];
    for key in &revoked {
        state.keys.evict_id(key);
        audit.push(AuditEntry::new(
            &principal.workspace_id,
            &principal.key_id,
            "api_key.revoke",
            key,
            "member removed",
        ));
    }
    state.db.append_audit(&audit).await?;
    Ok(StatusCode::NO_CONTENT)
}
