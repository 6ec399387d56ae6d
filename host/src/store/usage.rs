//! Per-connection usage: calls, errors and a latency histogram, accumulated in memory and
//! added to the stored totals in batches.

use super::{Db, StoreResult};
use crate::ids::WorkspaceId;

/// An hour in unix ms.
const HOUR_MS: i64 = 3_600_000;

/// Stored usage totals of one connection.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRecord {
    /// Connection.
    pub connection_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Calls.
    pub calls: i64,
    /// Failed calls.
    pub errors: i64,
    /// JSON array of counts per latency bucket.
    pub latency_buckets: String,
}

impl Db {
    /// Usage of one connection.
    pub async fn usage(&self, workspace_id: &WorkspaceId, connection_id: &str) -> StoreResult<Option<UsageRecord>> {
        Ok(sqlx::query_as(
            "SELECT connection_id, workspace_id, calls, errors, latency_buckets FROM connection_usage WHERE workspace_id = $1 AND connection_id = $2",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Calls and failures of one connection by UTC hour, for the hours from `since` (unix ms)
    /// on: `(hour start, calls, errors)`, oldest first, hours without calls left out.
    pub async fn usage_by_hour(
        &self,
        workspace_id: &WorkspaceId,
        connection_id: &str,
        since: i64,
    ) -> StoreResult<Vec<(i64, i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT hour, calls, errors FROM connection_usage_hourly WHERE workspace_id = $1 AND connection_id = $2 AND hour >= $3 ORDER BY hour",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .bind(since)
        .fetch_all(self.pool())
        .await?)
    }

    /// Forget connections' hourly usage of hours before `before` (unix ms).
    pub async fn expire_connection_usage_hourly(&self, before: i64) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM connection_usage_hourly WHERE hour < $1")
            .bind(before)
            .execute(self.writer())
            .await?
            .rows_affected())
    }

    /// Add deltas to the stored totals and to the current UTC hour's counts (one
    /// transaction for the batch).
    pub async fn add_usage(&self, deltas: &[UsageRecord], merge: impl Fn(&str, &str) -> String) -> StoreResult<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let hour = super::now_ms() / HOUR_MS * HOUR_MS;
        let mut tx = self.begin_write().await?;
        for d in deltas {
            sqlx::query(
                "INSERT INTO connection_usage_hourly (connection_id, workspace_id, hour, calls, errors) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (connection_id, hour) DO UPDATE SET calls = connection_usage_hourly.calls + excluded.calls, errors = connection_usage_hourly.errors + excluded.errors",
            )
            .bind(&d.connection_id)
            .bind(&d.workspace_id)
            .bind(hour)
            .bind(d.calls)
            .bind(d.errors)
            .execute(&mut *tx)
            .await?;
            let current: Option<(i64, i64, String)> =
                sqlx::query_as("SELECT calls, errors, latency_buckets FROM connection_usage WHERE connection_id = $1")
                    .bind(&d.connection_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match current {
                Some((calls, errors, buckets)) => {
                    sqlx::query("UPDATE connection_usage SET calls = $1, errors = $2, latency_buckets = $3 WHERE connection_id = $4")
                        .bind(calls + d.calls)
                        .bind(errors + d.errors)
                        .bind(merge(&buckets, &d.latency_buckets))
                        .bind(&d.connection_id)
                        .execute(&mut *tx)
                        .await?;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO connection_usage (connection_id, workspace_id, calls, errors, latency_buckets) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&d.connection_id)
                    .bind(&d.workspace_id)
                    .bind(d.calls)
                    .bind(d.errors)
                    .bind(&d.latency_buckets)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
