//! The record of each brokered request, for debug mode and the author harness.
//! Everything in it has already been scrubbed of secrets.

use serde::Serialize;

/// One request attempt as the broker sent it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HttpExchange {
    /// Request method.
    pub method: String,
    /// Request URL (secrets redacted).
    pub url: String,
    /// Retry attempt, from 1.
    pub attempt: u32,
    /// Redirect hop, from 0.
    pub hop: u32,
    /// The auth scheme whose secret was injected, if any.
    pub credential: Option<String>,
    /// Request headers (injected values shown as `[REDACTED]`).
    pub request_headers: Vec<(String, String)>,
    /// Response status, when one arrived.
    pub status: Option<u16>,
    /// Response headers (secrets redacted).
    pub response_headers: Vec<(String, String)>,
    /// Response body size in bytes.
    pub response_bytes: usize,
    /// Time from sending to the end of the body, in milliseconds.
    pub duration_ms: f64,
    /// Why the request failed or was refused, when it did.
    pub error: Option<String>,
}
