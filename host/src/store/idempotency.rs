//! Stripe-style idempotency keys for action execution.

use super::{Db, StoreError, StoreResult, now_ms};
use crate::ids::WorkspaceId;

/// A remembered request: its fingerprint and, once finished, its response.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdempotencyRecord {
    /// SHA-256 of method, path and body of the first request.
    pub fingerprint: String,
    /// HTTP status of the stored response (none while in flight).
    pub status_code: Option<i64>,
    /// Stored response body.
    pub response: Option<String>,
}

/// The outcome of claiming an Idempotency-Key.
#[derive(Debug, Clone)]
pub enum IdempotencyClaim {
    /// This request may run; `fence` identifies the claim (its lease end), and completing or
    /// releasing the key requires it, so a run whose lease lapsed cannot overwrite or free
    /// the claim of the run that took over.
    Mine {
        /// The claim's lease end (unix ms), unique per claim of a key.
        fence: i64,
    },
    /// The key was seen before (completed, or still in flight).
    Seen(IdempotencyRecord),
}

impl Db {
    /// Claim `key` for `lease_ms`: [`IdempotencyClaim::Mine`] when this request may run (the
    /// key is new, or its earlier claim for the same request ended without an answer and its
    /// lease ran out), [`IdempotencyClaim::Seen`] when the key was seen before.
    pub async fn claim_idempotency_key(
        &self,
        workspace_id: &WorkspaceId,
        key: &str,
        fingerprint: &str,
        lease_ms: i64,
    ) -> StoreResult<IdempotencyClaim> {
        let now = now_ms();
        let lease_until = now.saturating_add(lease_ms);
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (workspace_id, key, fingerprint, created_at, lease_until) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(workspace_id)
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .bind(lease_until)
        .execute(self.writer())
        .await;
        match inserted {
            Ok(_) => Ok(IdempotencyClaim::Mine { fence: lease_until }),
            Err(e) => match StoreError::from(e) {
                StoreError::Conflict => {
                    // Take over an abandoned claim of the same request (one winner).
                    let taken = sqlx::query(
                        "UPDATE idempotency_keys SET lease_until = $1 WHERE workspace_id = $2 AND key = $3 AND fingerprint = $4 AND status_code IS NULL AND (lease_until IS NULL OR lease_until < $5)",
                    )
                    .bind(lease_until)
                    .bind(workspace_id)
                    .bind(key)
                    .bind(fingerprint)
                    .bind(now)
                    .execute(self.writer())
                    .await?
                    .rows_affected();
                    if taken == 1 {
                        return Ok(IdempotencyClaim::Mine { fence: lease_until });
                    }
                    let seen: Option<IdempotencyRecord> = sqlx::query_as(
                    "SELECT fingerprint, status_code, response FROM idempotency_keys WHERE workspace_id = $1 AND key = $2",
                )
                .bind(workspace_id)
                .bind(key)
                .fetch_optional(self.pool())
                .await?;
                    // Deleted meanwhile (released or expired): the caller's retry claims it.
                    seen.map(IdempotencyClaim::Seen).ok_or(StoreError::Changed)
                }
                other => Err(other),
            },
        }
    }

    /// Store the response for the claim `fence` (nothing, if another run took the key over).
    pub async fn complete_idempotency_key(
        &self,
        workspace_id: &WorkspaceId,
        key: &str,
        fence: i64,
        status: u16,
        response: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status_code = $1, response = $2 WHERE workspace_id = $3 AND key = $4 AND lease_until = $5 AND status_code IS NULL",
        )
        .bind(i64::from(status))
        .bind(response)
        .bind(workspace_id)
        .bind(key)
        .bind(fence)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Forget the claim `fence` whose request failed before producing a response.
    pub async fn release_idempotency_key(&self, workspace_id: &WorkspaceId, key: &str, fence: i64) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE workspace_id = $1 AND key = $2 AND status_code IS NULL AND lease_until = $3",
        )
            .bind(workspace_id)
            .bind(key)
            .bind(fence)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Drop keys older than `before` (unix ms).
    pub async fn expire_idempotency_keys(&self, before: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}
