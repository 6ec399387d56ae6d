//! Per-connection outbound rate limits (GCRA via `governor`).

use super::BrokerError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One limiter per (connection, rate), shared by every call on that connection.
#[derive(Default)]
pub(crate) struct ConnectionRateLimits {
    limiters: Mutex<HashMap<(String, u32), Arc<DefaultDirectRateLimiter>>>,
}

impl ConnectionRateLimits {
    fn limiter(&self, key: &str, per_second: u32) -> Arc<DefaultDirectRateLimiter> {
        let mut map = self.limiters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry((key.to_string(), per_second))
            .or_insert_with(|| {
                let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
                Arc::new(DefaultDirectRateLimiter::direct(Quota::per_second(rate)))
            })
            .clone()
    }

    /// Wait for a slot when it comes before `deadline`; otherwise fail with the wait needed.
    pub(crate) async fn acquire(&self, key: &str, per_second: u32, deadline: Instant) -> Result<(), BrokerError> {
        let limiter = self.limiter(key, per_second);
        let clock = DefaultClock::default();
        loop {
            match limiter.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(clock.now());
                    if Instant::now().checked_add(wait).is_none_or(|at| at >= deadline) {
                        return Err(BrokerError::RateLimited { retry_after: wait });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}
