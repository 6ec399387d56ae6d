//! Counters behind rate limits and quotas: per node in memory by default, or shared by
//! every node through Redis when `NEXUM_REDIS_URL` is set. Two operations:
//!
//! - [`Counters::rate`]: a smooth limit (GCRA) of `limit` requests per period, for the
//!   per-minute API key rate and the per-second connection rate;
//! - [`Counters::quota`]: a fixed window aligned to UTC hours or days, for API key quotas.
//!   A refused request does not use up quota.
//!
//! If Redis stops answering, each node falls back to its own counters (and says so in the
//! log) rather than refusing every request: limits loosen to per node, nothing breaks.

mod local;
mod shared;

use std::time::Duration;

/// The outcome of taking one request from a smooth rate budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The budget per period.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the budget is full again (or, when refused, until one request is allowed).
    pub reset_secs: u64,
    /// When refused, how long until one request is allowed.
    pub retry_after: Duration,
}

/// A fixed quota window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// The current UTC hour.
    Hour,
    /// The current UTC day.
    Day,
}

impl Window {
    /// Its length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Window::Hour => 3_600_000,
            Window::Day => 86_400_000,
        }
    }

    /// `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// Start (unix ms) of the window holding `now_ms`.
    pub fn start(self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(now_ms.rem_euclid(self.millis()))
    }
}

/// The outcome of counting one request against a quota window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The window's quota.
    pub limit: u64,
    /// Requests left in the window.
    pub remaining: u64,
    /// Seconds until the window ends.
    pub reset_secs: u64,
}

/// Rate and quota counters of this host.
pub enum Counters {
    /// In this process only.
    Local(local::LocalCounters),
    /// In Redis, shared by every node (with local counters as the fallback).
    Shared(shared::RedisCounters, local::LocalCounters),
}

/// Redis could not be reached at start.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach Redis at NEXUM_REDIS_URL: {0}")]
pub struct CountersError(String);

impl Counters {
    /// Per-node counters.
    pub fn local() -> Self {
        Counters::Local(local::LocalCounters::default())
    }

    /// Counters shared through Redis at `url` (`redis://127.0.0.1:6379`).
    pub async fn redis(url: &str) -> Result<Self, CountersError> {
        let shared = shared::RedisCounters::connect(url)
            .await
            .map_err(|e| CountersError(e.to_string()))?;
        Ok(Counters::Shared(shared, local::LocalCounters::default()))
    }

    /// Whether counts are shared between nodes.
    pub fn is_shared(&self) -> bool {
        matches!(self, Counters::Shared(..))
    }

    /// Take one request from `key`'s budget of `limit` per `period`.
    pub async fn rate(&self, key: &str, limit: u32, period: Duration) -> RateDecision {
        let limit = limit.max(1);
        match self {
            Counters::Local(local) => local.rate(key, limit, period),
            Counters::Shared(redis, local) => match redis.rate(key, limit, period).await {
                Ok(decision) => decision,
                Err(e) => {
                    shared::warn_fallback(&e);
                    local.rate(key, limit, period)
                }
            },
        }
    }

    /// Count one request against `key`'s quota of `limit` in the current `window`.
    pub async fn quota(&self, key: &str, limit: u64, window: Window) -> QuotaDecision {
        let now = crate::store::now_ms();
        match self {
            Counters::Local(local) => local.quota(key, limit, window, now),
            Counters::Shared(redis, local) => match redis.quota(key, limit, window, now).await {
                Ok(decision) => decision,
                Err(e) => {
                    shared::warn_fallback(&e);
                    local.quota(key, limit, window, now)
                }
            },
        }
    }
}

impl Counters {
    /// Give back one request counted by [`Counters::quota`] in the current `window` (another
    /// quota refused the request after this one counted it).
    pub async fn refund(&self, key: &str, window: Window) {
        let now = crate::store::now_ms();
        match self {
            Counters::Local(local) => local.refund(key, window, now),
            Counters::Shared(redis, local) => {
                if let Err(e) = redis.refund(key, window, now).await {
                    shared::warn_fallback(&e);
                    local.refund(key, window, now);
                }
            }
        }
    }
}

/// Seconds from `now_ms` to the end of its `window`, at least one.
fn seconds_left(window: Window, now_ms: i64) -> u64 {
    let end = window.start(now_ms).saturating_add(window.millis());
    u64::try_from(end.saturating_sub(now_ms).saturating_add(999) / 1000)
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rates_run_out_per_key() {
        let counters = Counters::local();
        for i in 0..3 {
            let d = counters.rate("key_a", 3, Duration::from_secs(60)).await;
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i);
        }
        let refused = counters.rate("key_a", 3, Duration::from_secs(60)).await;
        assert!(!refused.allowed);
        assert!(refused.reset_secs >= 1);
        assert!(counters.rate("key_b", 3, Duration::from_secs(60)).await.allowed);
    }

    #[tokio::test]
    async fn quotas_count_only_what_they_allow() {
        let counters = Counters::local();
        assert_eq!(counters.quota("k", 2, Window::Hour).await.remaining, 1);
        assert_eq!(counters.quota("k", 2, Window::Hour).await.remaining, 0);
        let refused = counters.quota("k", 2, Window::Hour).await;
        assert!(!refused.allowed);
        assert!(refused.reset_secs >= 1 && refused.reset_secs <= 3600);
        // The day window is separate.
        assert!(counters.quota("k", 2, Window::Day).await.allowed);
    }

    #[test]
    fn windows_align_to_utc() {
        assert_eq!(Window::Hour.start(3_600_000 * 5 + 17), 3_600_000 * 5);
        assert_eq!(Window::Day.start(86_400_000 + 1), 86_400_000);
        assert_eq!(seconds_left(Window::Hour, 3_600_000 - 1), 1);
        // Any i64 is a valid input (a client may send one): no overflow.
        assert!(Window::Day.start(i64::MIN) <= i64::MIN + 86_400_000);
        assert!(seconds_left(Window::Day, i64::MIN) >= 1);
        assert!(seconds_left(Window::Hour, i64::MAX) >= 1);
    }
}
