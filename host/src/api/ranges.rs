//! `/workspaces/{id}/allowed-ranges`: the non-public address ranges the operator grants one
//! workspace's connectors (an internal API's subnet), on top of the host's own
//! `NEXUM_ALLOW_RANGES`. Operator keys only (`workspaces:create`).

use super::AppState;
use super::extract::{ApiJson, ApiPath, Principal, path_id};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::ids::WorkspaceId;
use crate::store::AuditEntry;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most ranges one workspace may be granted.
const MAX_RANGES: usize = 64;

/// The ranges to grant (replacing any granted before; empty removes the grant).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRanges {
    /// CIDR ranges such as `10.20.0.0/16` or `fd00:1::/64` (at most 64).
    #[schema(schema_with = cidr_list)]
    pub ranges: Vec<String>,
}

/// The schema of `ranges`: at most 64 IPv4 or IPv6 CIDR ranges (surrounding whitespace is
/// ignored), as `ipnet` reads them.
fn cidr_list() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let ws = r"[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*";
    let octet = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    let v4 = format!(r"(?:{octet}\.){{3}}{octet}");
    let h = "[0-9A-Fa-f]{1,4}";
    let ls32 = format!("(?:{h}:{h}|{v4})");
    // RFC 3986 `IPv6address`.
    let v6 = [
        format!("(?:{h}:){{6}}{ls32}"),
        format!("::(?:{h}:){{5}}{ls32}"),
        format!("(?:{h})?::(?:{h}:){{4}}{ls32}"),
        format!("(?:(?:{h}:){{0,1}}{h})?::(?:{h}:){{3}}{ls32}"),
        format!("(?:(?:{h}:){{0,2}}{h})?::(?:{h}:){{2}}{ls32}"),
        format!("(?:(?:{h}:){{0,3}}{h})?::{h}:{ls32}"),
        format!("(?:(?:{h}:){{0,4}}{h})?::{ls32}"),
        format!("(?:(?:{h}:){{0,5}}{h})?::{h}"),
        format!("(?:(?:{h}:){{0,6}}{h})?::"),
    ]
    .join("|");
    let pattern = format!("^{ws}(?:{v4}/(?:3[0-2]|[12]?[0-9])|(?:{v6})/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])){ws}$");
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)))
        .max_items(Some(MAX_RANGES))
        .build()
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
#[utoipa::path(get, path = "/api/v1/workspaces/{id}/allowed-ranges", tag = "workspaces", operation_id = "get_allowed_ranges",
    params(("id" = String, Path, description = "`ws_…`")),
    responses((status = 200, body = GrantedRanges), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<GrantedRanges>> {
    principal.require(Scope::WorkspacesCreate)?;
    let workspace_id = existing(&state, &id).await?;
    Ok(Json(view(&state, workspace_id).await?))
}

/// Grant a workspace's connectors non-public ranges, replacing the previous grant
/// (`workspaces:create`). Other workspaces keep being refused those addresses.
#[utoipa::path(put, path = "/api/v1/workspaces/{id}/allowed-ranges", tag = "workspaces", operation_id = "put_allowed_ranges",
    params(("id" = String, Path, description = "`ws_…`")), request_body = GrantRanges,
    responses((status = 200, body = GrantedRanges), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem, description = "Not a CIDR range, or more than 64")))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
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
