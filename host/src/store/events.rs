//! The event outbox: facts a workspace may subscribe to (`connection.status_changed`,
//! `connection.refresh_failed`, …), written in the same transaction as the change they
//! describe so none is lost. Webhook delivery reads undelivered rows from here.

use super::{Db, Page, StoreResult, new_id, now_ms};
use crate::ids::WorkspaceId;

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRecord {
    /// `evt_…` (time-ordered).
    pub id: String,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Event type, e.g. `connection.status_changed`.
    #[sqlx(rename = "type")]
    pub kind: String,
    /// JSON payload.
    pub payload: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of delivery, once delivered.
    pub delivered_at: Option<i64>,
}

/// Append an event inside a transaction.
pub(crate) async fn insert_event(
    conn: &mut sqlx::AnyConnection,
    workspace_id: &WorkspaceId,
    kind: &str,
    payload: &serde_json::Value,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO events (id, workspace_id, type, payload, created_at, delivered_at) VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(new_id("evt"))
    .bind(workspace_id)
    .bind(kind)
    .bind(payload.to_string())
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Db {
    /// Append one event.
    pub async fn append_event(
        &self,
        workspace_id: &WorkspaceId,
        kind: &str,
        payload: &serde_json::Value,
    ) -> StoreResult<()> {
        let mut conn = self.writer().acquire().await?;
        insert_event(&mut conn, workspace_id, kind, payload).await?;
        self.events_committed();
        Ok(())
    }

    /// A workspace's events, oldest first, optionally of one type.
    pub async fn list_events(
        &self,
        workspace_id: &WorkspaceId,
        kind: Option<&str>,
        after: &str,
        limit: usize,
    ) -> StoreResult<Page<EventRecord>> {
        let rows = sqlx::query_as(
            "SELECT id, workspace_id, type, payload, created_at, delivered_at FROM events WHERE workspace_id = $1 AND ($2 = '' OR type = $2) AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(workspace_id)
        .bind(kind.unwrap_or_default())
        .bind(after)
        .bind(limit as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(rows, limit, |r: &EventRecord| r.id.clone()))
    }
}
