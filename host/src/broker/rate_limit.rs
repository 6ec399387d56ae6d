//! Per-connection outbound rate limits: a smooth budget of the manifest's requests per
//! second, counted per node or, with `NEXUM_REDIS_URL`, across every node.

use super::BrokerError;
use crate::limits::Counters;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every call on a connection shares one budget.
pub(crate) struct ConnectionRateLimits {
    counters: Arc<Counters>,
}

impl ConnectionRateLimits {
    /// Budgets kept in `counters`.
    pub(crate) fn new(counters: Arc<Counters>) -> Self {
        Self { counters }
    }

    /// Wait for a slot when it comes before `deadline`; otherwise fail with the wait needed.
    pub(crate) async fn acquire(&self, key: &str, per_second: u32, deadline: Instant) -> Result<(), BrokerError> {
        let key = format!("conn:{key}");
        loop {
            let decision = self.counters.rate(&key, per_second, Duration::from_secs(1)).await;
            if decision.allowed {
                return Ok(());
            }
            let wait = decision.retry_after.max(Duration::from_millis(1));
            if Instant::now().checked_add(wait).is_none_or(|at| at >= deadline) {
                return Err(BrokerError::RateLimited { retry_after: wait });
            }
            tokio::time::sleep(wait).await;
        }
    }
}
