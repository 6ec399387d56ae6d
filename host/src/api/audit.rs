//! `/audit-log`: who created, used, changed, deleted or rotated secrets, and when.

use super::AppState;
use super::extract::{ApiQuery, Pagination, Principal};
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::store::AuditEntry;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;

/// A page of audit entries, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditList {
    /// Entries.
    pub data: Vec<AuditEntry>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// The workspace's audit log (`admin`).
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "audit", operation_id = "list_audit_log", params(Pagination),
    responses((status = 200, body = AuditList), (status = 422, description = "`limit` outside 1–100", body = crate::error::Problem)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<AuditList>> {
    principal.require(Scope::Admin)?;
    let p = state
        .db
        .list_audit(&principal.workspace_id, page.after(), page.limit()?)
        .await?;
    Ok(Json(AuditList {
        data: p.items,
        next_cursor: p.next_cursor,
    }))
}
