//! Counters in this process: GCRA limiters (`governor`) and fixed quota windows.

use super::{QuotaDecision, RateDecision, Window, seconds_left};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// Most limiters or windows kept before the idle ones are forgotten.
const MAX_ENTRIES: usize = 100_000;

/// This process's counters.
#[derive(Default)]
pub struct LocalCounters {
    limiters: Mutex<HashMap<(String, u32, Duration), Arc<Limiter>>>,
    /// Budgets of client addresses (`ip:…`), apart: anyone can create many of them, and
    /// forgetting them must not reset any key's or connection's budget.
    addresses: Mutex<HashMap<(String, u32, Duration), Arc<Limiter>>>,
    windows: Mutex<HashMap<(String, Window), (i64, u64)>>,
}

impl LocalCounters {
    /// See [`super::Counters::rate`].
    pub fn rate(&self, key: &str, limit: u32, period: Duration) -> RateDecision {
        let limiter = {
            let map = if key.starts_with("ip:") {
                &self.addresses
            } else {
                &self.limiters
            };
            let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > MAX_ENTRIES {
                map.clear();
            }
            map.entry((key.to_string(), limit, period))
                .or_insert_with(|| {
                    let burst = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
                    let quota = Quota::with_period(period / limit)
                        .unwrap_or_else(|| Quota::per_second(burst))
                        .allow_burst(burst);
                    Arc::new(RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>())
                })
                .clone()
        };
        let per_request = period / limit;
        match limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = limit.saturating_sub(remaining);
                RateDecision {
                    allowed: true,
                    limit,
                    remaining,
                    reset_secs: (per_request * used).as_secs_f64().ceil() as u64,
                    retry_after: Duration::ZERO,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                RateDecision {
                    allowed: false,
                    limit,
                    remaining: 0,
                    reset_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                    retry_after: wait,
                }
            }
        }
    }

    /// See [`super::Counters::quota`].
    pub fn quota(&self, key: &str, limit: u64, window: Window, now_ms: i64) -> QuotaDecision {
        let start = window.start(now_ms);
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > MAX_ENTRIES {
            map.retain(|(_, w), (s, _)| *s == w.start(now_ms));
        }
        let entry = map.entry((key.to_string(), window)).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        let allowed = entry.1 < limit;
        if allowed {
            entry.1 += 1;
        }
        QuotaDecision {
            allowed,
            limit,
            remaining: limit.saturating_sub(entry.1),
            reset_secs: seconds_left(window, now_ms),
        }
    }

    /// See [`super::Counters::refund`].
    pub fn refund(&self, key: &str, window: Window, now_ms: i64) {
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = map.get_mut(&(key.to_string(), window))
            && entry.0 == window.start(now_ms)
        {
            entry.1 = entry.1.saturating_sub(1);
        }
    }
}
