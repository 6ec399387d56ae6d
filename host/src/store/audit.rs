//! The audit log: who did what to which secret-bearing resource, and when. Never values.

use super::{Db, Page, StoreResult, new_id, now_ms};
use crate::ids::WorkspaceId;
use serde::Serialize;

/// One audit record.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    /// `aud_…`
    pub id: String,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Who: an API key id, `system`, or `cli`.
    pub actor: String,
    /// What: e.g. `secret.create`, `secret.use`, `secret.update`, `secret.delete`, `secret.rotate`.
    pub action: String,
    /// Which resource id.
    pub target: String,
    /// Non-secret detail.
    pub detail: String,
    /// Unix ms.
    pub created_at: i64,
}

impl AuditEntry {
    /// A new entry stamped now.
    pub fn new(workspace_id: &WorkspaceId, actor: &str, action: &str, target: &str, detail: impl Into<String>) -> Self {
        Self {
            id: new_id("aud"),
            workspace_id: workspace_id.clone(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            detail: detail.into(),
            created_at: now_ms(),
        }
    }
}

impl Db {
    /// Append entries in one transaction.
    pub async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        for e in entries {
            sqlx::query(
                "INSERT INTO audit_log (id, workspace_id, actor, action, target, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&e.id)
            .bind(&e.workspace_id)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.detail)
            .bind(e.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A workspace's audit log, oldest first, a page at a time.
    pub async fn list_audit(
        &self,
        workspace_id: &WorkspaceId,
        after: &str,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let rows = sqlx::query_as(
            "SELECT id, workspace_id, actor, action, target, detail, created_at FROM audit_log WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(workspace_id)
        .bind(after)
        .bind(limit as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(rows, limit, |e: &AuditEntry| e.id.clone()))
    }
}
