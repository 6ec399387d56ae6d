//! The audit log: who did what to which secret-bearing resource, and when. Never values.

use super::{Db, Page, StoreError, StoreResult, new_id, now_ms};
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
        let mut tx = self.begin_write().await?;
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

/// Durable audit appends without one transaction per call: callers wait until their entry
/// is committed, and every entry that arrives while a commit is running shares the next
/// one (group commit). A call that uses a secret is audited before it runs, so nothing is
/// done that the log does not show, even if the process is killed a moment later.
#[derive(Clone)]
pub struct AuditWriter {
    writer: super::group_commit::GroupCommit<AuditEntry>,
}

/// Longest a call waits for its audit record to commit.
pub const AUDIT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Most entries one group commit writes.
const GROUP_COMMIT_MAX: usize = 512;

impl AuditWriter {
    /// Start the writer task on `db` (it ends when the last writer handle is dropped).
    pub fn start(db: Db) -> Self {
        let write: super::group_commit::BatchWrite<AuditEntry> =
            std::sync::Arc::new(|db: Db, entries: Vec<AuditEntry>| {
                Box::pin(async move { db.append_audit(&entries).await })
            });
        Self {
            writer: super::group_commit::GroupCommit::start(db, "audit records", GROUP_COMMIT_MAX, write),
        }
    }

    /// Append `entry` and wait until it is committed (at most [`AUDIT_PATIENCE`]: a stalled
    /// database refuses the call rather than holding it).
    pub async fn append(&self, entry: AuditEntry) -> StoreResult<()> {
        if self.writer.submit(entry, AUDIT_PATIENCE).await {
            Ok(())
        } else {
            Err(StoreError::Unavailable("audit log"))
        }
    }
}
