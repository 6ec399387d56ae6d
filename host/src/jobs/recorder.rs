//! Hot-path bookkeeping without hot-path writes: every call adds to in-memory totals, and a
//! flusher writes them in one transaction per table every half second (and at shutdown).
//! These figures are approximate: a process killed outright loses up to half a second of
//! them. The audit log is not kept here; it is durable (`store::AuditWriter`).

use crate::ids::WorkspaceId;
use crate::store::{Db, KeyUsageRow, StoreResult, UsageRecord};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (ms) of the latency histogram buckets; a final bucket catches the rest.
pub const LATENCY_BOUNDS_MS: [u64; 14] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000];
const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;
const _: () = assert!(BUCKETS == crate::store::KEY_USAGE_BUCKETS);

/// Most per-key usage rows held between flushes.
const MAX_PENDING_KEY_ROWS: usize = 100_000;

#[derive(Default)]
struct UsageDelta {
    workspace_id: String,
    calls: i64,
    errors: i64,
    buckets: [u64; BUCKETS],
}

#[derive(Default)]
struct Pending {
    usage: HashMap<String, UsageDelta>,
    key_usage: HashMap<(String, i64, String), KeyUsageRow>,
    key_uses: HashMap<String, i64>,
    connection_uses: HashMap<String, i64>,
    executions: HashMap<(String, String), i64>,
}

/// Buffers usage and last-use times until the next flush.
#[derive(Default)]
pub struct Recorder {
    pending: Mutex<Pending>,
}

impl Recorder {
    fn with<R>(&self, f: impl FnOnce(&mut Pending) -> R) -> R {
        f(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// An API key was used at `at` (unix ms).
    pub fn key_used(&self, key_id: &str, at: i64) {
        self.with(|p| {
            p.key_uses.insert(key_id.to_string(), at);
        });
    }

    /// An authenticated API request finished: `endpoint` is `METHOD /route/{template}`.
    pub fn key_request(
        &self,
        key_id: &str,
        workspace_id: &WorkspaceId,
        endpoint: &str,
        status: u16,
        latency: Duration,
    ) {
        let hour = crate::limits::Window::Hour.start(crate::store::now_ms());
        let millis = latency.as_secs_f64() * 1000.0;
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|&b| millis <= b as f64)
            .unwrap_or(BUCKETS - 1);
        self.with(|p| {
            if p.key_usage.len() >= MAX_PENDING_KEY_ROWS {
                // A flood of distinct rows while the database is away: drop the backlog
                // rather than the process (usage is approximate by design).
                p.key_usage.clear();
            }
            let row = p
                .key_usage
                .entry((key_id.to_string(), hour, endpoint.to_string()))
                .or_insert_with(|| KeyUsageRow {
                    key_id: key_id.to_string(),
                    workspace_id: workspace_id.to_string(),
                    hour,
                    endpoint: endpoint.to_string(),
                    requests: 0,
                    client_errors: 0,
                    server_errors: 0,
                    latency_us_sum: 0,
                    buckets: [0; BUCKETS],
                });

            row.requests += 1;
            row.client_errors += i64::from((400..500).contains(&status));
            row.server_errors += i64::from(status >= 500);
            row.latency_us_sum = row
                .latency_us_sum
                .saturating_add(i64::try_from(latency.as_micros()).unwrap_or(i64::MAX));
            row.buckets[bucket] += 1;
        });
    }

    /// A call on a connection finished.
    pub fn call(&self, workspace_id: &WorkspaceId, connection_id: &str, at: i64, latency_ms: f64, failed: bool) {
        self.with(|p| {
            p.connection_uses.insert(connection_id.to_string(), at);
            let delta = p.usage.entry(connection_id.to_string()).or_default();
            delta.workspace_id = workspace_id.to_string();
            delta.calls += 1;
            delta.errors += i64::from(failed);
            let bucket = LATENCY_BOUNDS_MS
                .iter()
                .position(|&b| latency_ms <= b as f64)
                .unwrap_or(BUCKETS - 1);
            delta.buckets[bucket] += 1;
        });
    }

    /// An action ran on a connector installed from this server's marketplace
    /// (`package` is `namespace/name`).
    pub fn execution(&self, package: &str, version: &str) {
        self.with(|p| {
            *p.executions
                .entry((package.to_string(), version.to_string()))
                .or_default() += 1
        });
    }

    /// Write everything buffered. Each part (connection usage, key usage, last-use times,
    /// marketplace executions) is written on its own; a part that fails is put back for the
    /// next attempt and the others are not written twice. Returns the first failure.
    pub async fn flush(&self, db: &Db) -> StoreResult<()> {
        let pending = self.with(std::mem::take);
        let mut first_error = None;
        let mut failed = |e| {
            if first_error.is_none() {
                first_error = Some(e);
            }
        };
        let usage: Vec<UsageRecord> = pending
            .usage
            .iter()
            .map(|(id, d)| UsageRecord {
                connection_id: id.clone(),
                workspace_id: d.workspace_id.clone(),
                calls: d.calls,
                errors: d.errors,
                latency_buckets: serde_json::to_string(&d.buckets.to_vec()).unwrap_or_else(|_| "[]".into()),
            })
            .collect();
        if let Err(e) = db.add_usage(&usage, merge_buckets).await {
            failed(e);
            self.with(|p| {
                for (id, d) in pending.usage {
                    let cur = p.usage.entry(id).or_default();
                    cur.workspace_id = d.workspace_id;
                    cur.calls += d.calls;
                    cur.errors += d.errors;
                    for (c, n) in cur.buckets.iter_mut().zip(d.buckets) {
                        *c += n;
                    }
                }
            });
        }
        let key_usage: Vec<KeyUsageRow> = pending.key_usage.values().cloned().collect();
        if let Err(e) = db.add_key_usage(&key_usage).await {
            failed(e);
            self.with(|p| {
                for (k, d) in pending.key_usage {
                    add_key_usage(p.key_usage.entry(k).or_insert_with(|| empty_like(&d)), &d);
                }
            });
        }
        let keys: Vec<(String, i64)> = pending.key_uses.iter().map(|(k, v)| (k.clone(), *v)).collect();
        if !keys.is_empty()
            && let Err(e) = db.touch_api_keys(&keys).await
        {
            failed(e);
            self.with(|p| p.key_uses.extend(pending.key_uses));
        }
        let connections: Vec<(String, i64)> = pending.connection_uses.iter().map(|(k, v)| (k.clone(), *v)).collect();
        if !connections.is_empty()
            && let Err(e) = db.touch_connections(&connections).await
        {
            failed(e);
            self.with(|p| p.connection_uses.extend(pending.connection_uses));
        }
        if let Err(e) = write_executions(db, &pending.executions).await {
            failed(e);
            self.with(|p| {
                for (k, n) in pending.executions {
                    *p.executions.entry(k).or_default() += n;
                }
            });
        }
        first_error.map_or(Ok(()), Err)
    }
}

async fn write_executions(db: &Db, counts: &HashMap<(String, String), i64>) -> StoreResult<()> {
    let mut executions = Vec::new();
    for ((package, version), n) in counts {
        if let Some((ns, name)) = package.split_once('/')
            && let Some(pkg) = db.package(ns, name).await?
        {
            executions.push((pkg.id, version.clone(), *n));
        }
    }
    if !executions.is_empty() {
        db.add_executions(&executions).await?;
    }
    Ok(())
}

/// A row with `like`'s identity and no counts.
fn empty_like(like: &KeyUsageRow) -> KeyUsageRow {
    KeyUsageRow {
        requests: 0,
        client_errors: 0,
        server_errors: 0,
        latency_us_sum: 0,
        buckets: [0; BUCKETS],
        ..like.clone()
    }
}

/// Add `delta`'s counts to `into`.
fn add_key_usage(into: &mut KeyUsageRow, delta: &KeyUsageRow) {
    into.requests += delta.requests;
    into.client_errors += delta.client_errors;
    into.server_errors += delta.server_errors;
    into.latency_us_sum = into.latency_us_sum.saturating_add(delta.latency_us_sum);
    for (c, n) in into.buckets.iter_mut().zip(delta.buckets) {
        *c += n;
    }
}

/// Add two stored histograms (JSON arrays).
pub fn merge_buckets(a: &str, b: &str) -> String {
    let a: Vec<u64> = serde_json::from_str(a).unwrap_or_default();
    let b: Vec<u64> = serde_json::from_str(b).unwrap_or_default();
    let merged: Vec<u64> = (0..a.len().max(b.len()))
        .map(|i| a.get(i).unwrap_or(&0) + b.get(i).unwrap_or(&0))
        .collect();
    serde_json::to_string(&merged).unwrap_or_else(|_| "[]".into())
}

/// Latency percentiles, as the upper bound of the bucket holding each (`null` if no calls).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LatencySummary {
    /// Median, at most this many ms.
    pub p50_ms: Option<u64>,
    /// 95th percentile, at most this many ms.
    pub p95_ms: Option<u64>,
    /// 99th percentile, at most this many ms.
    pub p99_ms: Option<u64>,
}

/// Percentiles of a stored histogram.
pub fn summarize(buckets: &str) -> LatencySummary {
    let counts: Vec<u64> = serde_json::from_str(buckets).unwrap_or_default();
    let total: u64 = counts.iter().sum();
    let at = |q: f64| -> Option<u64> {
        if total == 0 {
            return None;
        }
        let target = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        None
    };
    LatencySummary {
        p50_ms: at(0.5),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_bucket_bounds() {
        let mut counts = vec![0u64; BUCKETS];
        counts[2] = 90; // ≤ 5 ms
        counts[6] = 9; // ≤ 100 ms
        counts[9] = 1; // ≤ 1 s
        let s = summarize(&serde_json::to_string(&counts).expect("json"));
        assert_eq!(
            s,
            LatencySummary {
                p50_ms: Some(5),
                p95_ms: Some(100),
                p99_ms: Some(100)
            }
        );
        assert_eq!(summarize("[]").p50_ms, None);
        assert_eq!(merge_buckets("[1,2]", "[3,4,5]"), "[4,6,5]");
    }
}
