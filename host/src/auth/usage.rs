//! A key's usage over a time window, summarized from the hourly rows: request counts,
//! success and error rates, average and p95 latency, by endpoint and by hour.

use crate::jobs::LATENCY_BOUNDS_MS;
use crate::store::{KEY_USAGE_BUCKETS, KeyUsageRow};
use serde::Serialize;
use std::collections::BTreeMap;

/// Totals of some requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageTotals {
    /// Requests.
    pub requests: i64,
    /// Share answered 1xx–3xx (0–1; 0 without requests).
    pub success_rate: f64,
    /// Share answered 4xx or 5xx (0–1).
    pub error_rate: f64,
    /// Answers 400–499.
    pub client_errors: i64,
    /// Answers 500 and above.
    pub server_errors: i64,
    /// Mean latency in ms (`null` without requests).
    pub avg_latency_ms: Option<f64>,
    /// 95th percentile latency: at most this many ms (`null` without requests; the upper
    /// bound of the histogram bucket holding it).
    pub p95_latency_ms: Option<u64>,
}

/// Usage of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EndpointUsage {
    /// `METHOD /api/v1/route/{template}`.
    pub endpoint: String,
    /// Its totals.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// Usage in one UTC hour.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HourUsage {
    /// Start of the hour (unix ms).
    pub hour: i64,
    /// Requests.
    pub requests: i64,
    /// Answers 400 and above.
    pub errors: i64,
}

/// A key's usage over `[from, to]`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KeyUsageReport {
    /// The key.
    pub key_id: String,
    /// Window start (unix ms, rounded down to the hour).
    pub from: i64,
    /// Window end (unix ms).
    pub to: i64,
    /// Everything in the window.
    #[serde(flatten)]
    pub totals: UsageTotals,
    /// Per endpoint, busiest first.
    pub by_endpoint: Vec<EndpointUsage>,
    /// Per hour with requests, oldest first.
    pub by_hour: Vec<HourUsage>,
}

#[derive(Default)]
struct Sum {
    requests: i64,
    client_errors: i64,
    server_errors: i64,
    latency_us: i64,
    buckets: [i64; KEY_USAGE_BUCKETS],
}

impl Sum {
    fn add(&mut self, row: &KeyUsageRow) {
        self.requests += row.requests;
        self.client_errors += row.client_errors;
        self.server_errors += row.server_errors;
        self.latency_us = self.latency_us.saturating_add(row.latency_us_sum);
        for (s, b) in self.buckets.iter_mut().zip(row.buckets) {
            *s += b;
        }
    }

    fn totals(&self) -> UsageTotals {
        let requests = self.requests;
        let errors = self.client_errors + self.server_errors;
        let share = |n: i64| if requests > 0 { n as f64 / requests as f64 } else { 0.0 };
        UsageTotals {
            requests,
            success_rate: share(requests - errors),
            error_rate: share(errors),
            client_errors: self.client_errors,
            server_errors: self.server_errors,
            avg_latency_ms: (requests > 0).then(|| self.latency_us as f64 / 1000.0 / requests as f64),
            p95_latency_ms: percentile(&self.buckets, 0.95),
        }
    }
}

fn percentile(buckets: &[i64; KEY_USAGE_BUCKETS], q: f64) -> Option<u64> {
    let total: i64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let target = (q * total as f64).ceil() as i64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= target {
            return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(u64::MAX));
        }
    }
    None
}

/// Summarize `rows` of `key_id` for the window `[from, to]`.
pub fn summarize(key_id: &str, from: i64, to: i64, rows: &[KeyUsageRow]) -> KeyUsageReport {
    let mut all = Sum::default();
    let mut endpoints: BTreeMap<&str, Sum> = BTreeMap::new();
    let mut hours: BTreeMap<i64, Sum> = BTreeMap::new();
    for row in rows {
        all.add(row);
        endpoints.entry(&row.endpoint).or_default().add(row);
        hours.entry(row.hour).or_default().add(row);
    }
    let mut by_endpoint: Vec<EndpointUsage> = endpoints
        .into_iter()
        .map(|(endpoint, sum)| EndpointUsage {
            endpoint: endpoint.to_string(),
            totals: sum.totals(),
        })
        .collect();
    by_endpoint.sort_by_key(|e| std::cmp::Reverse(e.totals.requests));
    KeyUsageReport {
        key_id: key_id.to_string(),
        from,
        to,
        totals: all.totals(),
        by_endpoint,
        by_hour: hours
            .into_iter()
            .map(|(hour, sum)| HourUsage {
                hour,
                requests: sum.requests,
                errors: sum.client_errors + sum.server_errors,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(endpoint: &str, hour: i64, requests: i64, errors: i64, fast: i64) -> KeyUsageRow {
        let mut buckets = [0; KEY_USAGE_BUCKETS];
        buckets[2] = fast; // ≤ 5 ms
        buckets[9] = requests - fast; // ≤ 1 s
        KeyUsageRow {
            key_id: "key_1".into(),
            workspace_id: "ws_1".into(),
            hour,
            endpoint: endpoint.into(),
            requests,
            client_errors: errors,
            server_errors: 0,
            latency_us_sum: fast * 4_000 + (requests - fast) * 800_000,
            buckets,
        }
    }

    #[test]
    fn rates_latency_and_breakdowns_add_up() {
        let rows = [
            row("GET /api/v1/connections", 0, 90, 0, 90),
            row("POST /api/v1/connections/{id}/actions/{action}", 0, 6, 2, 0),
            row("GET /api/v1/connections", 3_600_000, 4, 2, 4),
        ];
        let report = summarize("key_1", 0, 7_200_000, &rows);
        assert_eq!(report.totals.requests, 100);
        assert!((report.totals.error_rate - 0.04).abs() < 1e-9);
        assert!((report.totals.success_rate - 0.96).abs() < 1e-9);
        assert_eq!(
            report.totals.p95_latency_ms,
            Some(1_000),
            "6 of 100 took up to a second"
        );
        assert_eq!(report.by_endpoint[0].endpoint, "GET /api/v1/connections");
        assert_eq!(report.by_endpoint[0].totals.requests, 94);
        assert_eq!(report.by_endpoint[0].totals.p95_latency_ms, Some(5));
        assert_eq!(report.by_hour.len(), 2);
        assert_eq!(report.by_hour[1].errors, 2);
        let empty = summarize("key_1", 0, 1, &[]);
        assert_eq!((empty.totals.avg_latency_ms, empty.totals.p95_latency_ms), (None, None));
    }
}
