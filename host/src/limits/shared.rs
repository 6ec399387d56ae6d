//! Counters in Redis, shared by every node: GCRA and quota windows as Lua scripts, so each
//! decision is one atomic round trip.

use super::{QuotaDecision, RateDecision, Window, seconds_left};
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// GCRA: KEYS[1] holds the theoretical arrival time (ms). ARGV: now, emission interval
/// (ms per request), limit. Returns {allowed, remaining, wait_ms, reset_ms}.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local tolerance = interval * limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > tolerance then
  return {0, 0, math.ceil(new_tat - tolerance - now), math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((tolerance - (new_tat - now)) / interval)
return {1, remaining, 0, math.ceil(new_tat - now)}
";

/// Quota window: KEYS[1] counts the window. ARGV: limit, window ms. Counts only allowed
/// requests. Returns {allowed, used}.
const QUOTA: &str = r"
local limit = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= limit then return {0, used} end
used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return {1, used}
";

/// Redis-backed counters.
pub struct RedisCounters {
    connection: ConnectionManager,
    gcra: redis::Script,
    quota: redis::Script,
}

impl RedisCounters {
    /// Connect (with automatic reconnection) and check the server answers.
    pub async fn connect(url: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2);
        let mut connection = ConnectionManager::new_with_config(client, config).await?;
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(Self {
            connection,
            gcra: redis::Script::new(GCRA),
            quota: redis::Script::new(QUOTA),
        })
    }

    /// See [`super::Counters::rate`].
    pub async fn rate(&self, key: &str, limit: u32, period: Duration) -> redis::RedisResult<RateDecision> {
        let interval = (period.as_millis() as f64 / f64::from(limit)).max(1.0);
        let (allowed, remaining, wait_ms, reset_ms): (i64, i64, i64, i64) = self
            .gcra
            .key(format!("nexum:rate:{key}:{limit}:{}", period.as_millis()))
            .arg(crate::store::now_ms())
            .arg(interval)
            .arg(limit)
            .invoke_async(&mut self.connection.clone())
            .await?;
        let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
        Ok(RateDecision {
            allowed: allowed == 1,
            limit,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_secs: if allowed == 1 {
                u64::try_from(reset_ms).unwrap_or(0).div_ceil(1000)
            } else {
                wait.as_secs_f64().ceil().max(1.0) as u64
            },
            retry_after: wait,
        })
    }

    /// See [`super::Counters::quota`].
    pub async fn quota(&self, key: &str, limit: u64, window: Window, now_ms: i64) -> redis::RedisResult<QuotaDecision> {
        let start = window.start(now_ms);
        let (allowed, used): (i64, i64) = self
            .quota
            .key(format!("nexum:quota:{key}:{}:{start}", window.as_str()))
            .arg(limit)
            .arg(window.millis() + 60_000)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(QuotaDecision {
            allowed: allowed == 1,
            limit,
            remaining: limit.saturating_sub(u64::try_from(used).unwrap_or(0)),
            reset_secs: seconds_left(window, now_ms),
        })
    }
}

impl RedisCounters {
    /// See [`super::Counters::refund`].
    pub async fn refund(&self, key: &str, window: Window, now_ms: i64) -> redis::RedisResult<()> {
        let name = format!("nexum:quota:{key}:{}:{}", window.as_str(), window.start(now_ms));
        let _: i64 = redis::Script::new("local n = tonumber(redis.call('GET', KEYS[1]) or '0') if n > 0 then return redis.call('DECR', KEYS[1]) end return 0")
            .key(name)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(())
    }
}

/// Log a fallback to local counters at most once a minute.
pub fn warn_fallback(error: &redis::RedisError) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = crate::store::now_ms();
    let last = LAST.load(Ordering::Relaxed);
    if now - last > 60_000
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(error = %error, "Redis did not answer; rate limits and quotas count per node until it does");
    }
}
