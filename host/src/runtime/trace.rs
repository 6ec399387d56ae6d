//! What a call did, for debug mode: brokered requests and log lines, all secret-free.

use crate::broker::HttpExchange;
use serde::Serialize;

/// The redacted trace of one call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallTrace {
    /// Each brokered HTTP attempt, in order.
    pub http: Vec<HttpExchange>,
    /// Log lines the connector wrote.
    pub logs: Vec<LogLine>,
    /// Log lines dropped because the call hit its log cap.
    pub logs_dropped: usize,
    /// Wall-clock duration of the call in milliseconds.
    pub duration_ms: f64,
}

/// One connector log line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The message (secrets redacted, size-capped).
    pub message: String,
}
