//! Per-key usage by UTC hour and endpoint: request counts, errors, latency sum and a
//! latency histogram, added to in batches (upserts, so nodes sharing a database add up).

use super::{Db, StoreResult};
use crate::ids::WorkspaceId;

/// Number of latency buckets (see `jobs::LATENCY_BOUNDS_MS`, plus one for slower).
pub const KEY_USAGE_BUCKETS: usize = 15;

/// Usage of one key at one endpoint in one hour (a delta to add, or a stored row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsageRow {
    /// API key.
    pub key_id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// Start of the UTC hour (unix ms).
    pub hour: i64,
    /// `METHOD /route/{template}`.
    pub endpoint: String,
    /// Requests.
    pub requests: i64,
    /// Answers 400–499.
    pub client_errors: i64,
    /// Answers 500 and above.
    pub server_errors: i64,
    /// Total latency, microseconds.
    pub latency_us_sum: i64,
    /// Requests per latency bucket.
    pub buckets: [i64; KEY_USAGE_BUCKETS],
}

macro_rules! usage_columns {
    () => {
        "key_id, workspace_id, hour, endpoint, requests, client_errors, server_errors, latency_us_sum, b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11, b12, b13, b14"
    };
}

macro_rules! add_excluded {
    ($($c:literal),*) => {
        concat!($($c, " = api_key_usage.", $c, " + excluded.", $c, ", "),*)
    };
}

impl Db {
    /// Add `deltas` to the stored rows (one transaction).
    pub async fn add_key_usage(&self, deltas: &[KeyUsageRow]) -> StoreResult<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for d in deltas {
            let mut query = sqlx::query(concat!(
                "INSERT INTO api_key_usage (",
                usage_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) ",
                "ON CONFLICT (key_id, hour, endpoint) DO UPDATE SET ",
                add_excluded!("requests", "client_errors", "server_errors", "latency_us_sum", "b00", "b01", "b02", "b03", "b04", "b05", "b06", "b07", "b08", "b09", "b10", "b11", "b12", "b13"),
                "b14 = api_key_usage.b14 + excluded.b14"
            ))
            .bind(&d.key_id)
            .bind(&d.workspace_id)
            .bind(d.hour)
            .bind(&d.endpoint)
            .bind(d.requests)
            .bind(d.client_errors)
            .bind(d.server_errors)
            .bind(d.latency_us_sum);
            for b in d.buckets {
                query = query.bind(b);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A key's rows for the hours in `[from_hour, to_hour]`, oldest first.
    pub async fn key_usage(
        &self,
        workspace_id: &WorkspaceId,
        key_id: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> StoreResult<Vec<KeyUsageRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            usage_columns!(),
            " FROM api_key_usage WHERE workspace_id = $1 AND key_id = $2 AND hour >= $3 AND hour <= $4 ORDER BY hour, endpoint"
        ))
        .bind(workspace_id)
        .bind(key_id)
        .bind(from_hour)
        .bind(to_hour)
        .fetch_all(self.pool())
        .await?;
        use sqlx::Row;
        rows.iter()
            .map(|r| {
                let mut buckets = [0i64; KEY_USAGE_BUCKETS];
                for (i, b) in buckets.iter_mut().enumerate() {
                    *b = r.try_get(8 + i)?;
                }
                Ok(KeyUsageRow {
                    key_id: r.try_get(0)?,
                    workspace_id: r.try_get(1)?,
                    hour: r.try_get(2)?,
                    endpoint: r.try_get(3)?,
                    requests: r.try_get(4)?,
                    client_errors: r.try_get(5)?,
                    server_errors: r.try_get(6)?,
                    latency_us_sum: r.try_get(7)?,
                    buckets,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

impl Db {
    /// Forget usage rows of hours before `before` (unix ms).
    pub async fn expire_key_usage(&self, before: i64) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM api_key_usage WHERE hour < $1")
            .bind(before)
            .execute(self.writer())
            .await?
            .rows_affected())
    }
}
