//! Forgets `Idempotency-Key` claims older than a day, and per-key usage older than the
//! longest window a usage report covers.

use super::{Job, JobFuture, JobReport};
use crate::config::Config;
use crate::state::AppState;
use crate::store::now_ms;
use std::sync::Arc;
use std::time::Duration;

/// How long an idempotency key replays its first response.
pub const IDEMPOTENCY_KEY_TTL_MS: i64 = 24 * 3_600_000;

/// How long per-key usage is kept (the longest report window).
pub const KEY_USAGE_TTL_MS: i64 = 90 * 86_400_000;

/// Expire old idempotency keys and usage rows hourly.
pub struct ExpireIdempotencyKeys;

impl Job for ExpireIdempotencyKeys {
    fn name(&self) -> &'static str {
        "expire-idempotency-keys"
    }

    fn interval(&self, _: &Config) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }

    fn run_once<'a>(&'a self, state: &'a Arc<AppState>) -> JobFuture<'a> {
        Box::pin(async move {
            let expired = state
                .db
                .expire_idempotency_keys(now_ms() - IDEMPOTENCY_KEY_TTL_MS)
                .await?;
            let usage = state.db.expire_key_usage(now_ms() - KEY_USAGE_TTL_MS).await?;
            let usage = usage.saturating_add(
                state
                    .db
                    .expire_connection_usage_hourly(now_ms() - KEY_USAGE_TTL_MS)
                    .await?,
            );
            let handled = usize::try_from(expired.saturating_add(usage)).unwrap_or(usize::MAX);
            Ok(JobReport { handled })
        })
    }
}
