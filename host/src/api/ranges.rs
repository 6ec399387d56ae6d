//! `/workspaces/{id}/allowed-ranges`: the non-public address ranges the operator grants one
//! workspace's connectors (an internal API's subnet), on top of the host's own
//! `NEXUM_ALLOW_RANGES`. Operator keys only (`workspaces:create`).

use super::AppState;
use super::extract::{ApiJson, Principal, path_id};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::ids::WorkspaceId;
use crate::store::AuditEntry;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most ranges one workspace may be granted.
const MAX_RANGES: usize = 64;

/// The ranges to grant (replacing any granted before; empty removes the grant).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRanges {
    /// CIDR ranges such as `10.20.0.0/16` or `fd00:1::/64` (at most 64).
    #[schema(max_items = 64)]
    pub ranges: Vec<String>,
}

/// What a workspace's connectors may reach beyond public addresses.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantedRanges {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Ranges granted to this workspace alone.
    pub ranges: Vec<String>,
    /// Ranges every workspace of this host may reach (`NEXUM_ALLOW_RANGES`).
    pub host_ranges: Vec<String>,
}

async fn view(state: &AppState, workspace_id: WorkspaceId) -> ApiResult<GrantedRanges> {
    Ok(GrantedRanges {
        ranges: state
            .db
            .granted_ranges(&workspace_id)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect(),
        host_ranges: state.config.allow_ranges.iter().map(ToString::to_string).collect(),
        workspace_id,
    })
}

async fn existing(state: &AppState, id: &str) -> ApiResult<WorkspaceId> {
    let workspace_id: WorkspaceId = path_id(id)?;
    state
        .db
        .workspace(&workspace_id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    Ok(workspace_id)
}

/// The ranges granted to a workspace (`workspaces:create`).
#[utoipa::path(get, path = "/api/v1/workspaces/{id}/allowed-ranges", tag = "workspaces",
    responses((status = 200, body = GrantedRanges), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantedRanges>> {
    principal.require(Scope::WorkspacesCreate)?;
    let workspace_id = existing(&state, &id).await?;
    Ok(Json(view(&state, workspace_id).await?))
}

/// Grant a workspace's connectors non-public ranges, replacing the previous grant
/// (`workspaces:create`). Other workspaces keep being refused those addresses.
#[utoipa::path(put, path = "/api/v1/workspaces/{id}/allowed-ranges", tag = "workspaces", request_body = GrantRanges,
    responses((status = 200, body = GrantedRanges), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem, description = "Not a CIDR range, or more than 64")))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<GrantRanges>,
) -> ApiResult<Json<GrantedRanges>> {
    principal.require(Scope::WorkspacesCreate)?;
    let workspace_id = existing(&state, &id).await?;
    if body.ranges.len() > MAX_RANGES {
        return Err(ApiError::unprocessable(
            "too_many_ranges",
            format!("at most {MAX_RANGES} ranges"),
        ));
    }
    let mut ranges = Vec::with_capacity(body.ranges.len());
    for raw in &body.ranges {
        let range: ipnet::IpNet = raw.trim().parse().map_err(|_| {
            ApiError::unprocessable(
                "invalid_range",
                format!(
                    "`{}` is not a CIDR range like 10.0.0.0/8",
                    raw.chars().take(60).collect::<String>()
                ),
            )
        })?;
        ranges.push(range.trunc());
    }
    state.db.set_granted_ranges(&workspace_id, &ranges).await?;
    state.connections.evict_all();
    state
        .db
        .append_audit(&[AuditEntry::new(
            &workspace_id,
            &principal.key_id,
            "workspace.allowed_ranges",
            workspace_id.as_str(),
            ranges.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        )])
        .await?;
    Ok(Json(view(&state, workspace_id).await?))
}
