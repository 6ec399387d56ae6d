//! Per-key request rate limits, reported in `RateLimit-*` headers (IETF draft
//! "RateLimit header fields for HTTP"), with 429 + `Retry-After` when exhausted.

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// The outcome of taking one request from a key's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The key's limit per minute.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the budget is full again (or, when refused, until one request is allowed).
    pub reset_secs: u64,
}

/// One GCRA limiter per API key.
#[derive(Default)]
pub struct KeyRateLimiter {
    limiters: Mutex<HashMap<(String, u32), Arc<Limiter>>>,
}

impl KeyRateLimiter {
    /// Take one request from `key_id`'s budget of `per_minute`.
    pub fn check(&self, key_id: &str, per_minute: u32) -> RateDecision {
        let per_minute = per_minute.max(1);
        let limiter = {
            let mut map = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
            map.entry((key_id.to_string(), per_minute))
                .or_insert_with(|| {
                    let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
                    Arc::new(RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>())
                })
                .clone()
        };
        let per_request = Duration::from_secs(60) / per_minute;
        match limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = per_minute.saturating_sub(remaining);
                RateDecision {
                    allowed: true,
                    limit: per_minute,
                    remaining,
                    reset_secs: (per_request * used).as_secs_f64().ceil() as u64,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                RateDecision {
                    allowed: false,
                    limit: per_minute,
                    remaining: 0,
                    reset_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_per_key_and_run_out() {
        let limiter = KeyRateLimiter::default();
        for i in 0..3 {
            let d = limiter.check("key_a", 3);
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i);
        }
        let refused = limiter.check("key_a", 3);
        assert!(!refused.allowed);
        assert!(refused.reset_secs >= 1);
        assert!(limiter.check("key_b", 3).allowed);
    }
}
