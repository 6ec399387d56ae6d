//! The connector error: a stable code, a message and whether a retry may help.

use crate::bindings::nexum::connector::types::{ConnectorError, HttpError};
use std::fmt;

/// A failed action, reported to the API client as-is (after the host scrubs secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Stable machine-readable code, e.g. `not_found` or `channel_not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Whether the same call may succeed later.
    pub retryable: bool,
}

impl Error {
    /// A non-retryable error.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// The error for a non-2xx `response`: the status's stable code and retryability (as
    /// [`Error::from_status`]), with the provider's own explanation as the message when
    /// `describe` finds one in the JSON body.
    pub fn from_response(
        response: &crate::Response,
        describe: impl FnOnce(&serde_json::Value) -> Option<String>,
    ) -> Self {
        let mapped = Self::from_status(response.status, &response.body);
        let detail = response.json::<serde_json::Value>().unwrap_or(serde_json::Value::Null);
        match describe(&detail) {
            Some(message) => Self { message, ..mapped },
            None => mapped,
        }
    }

    /// Mark whether a retry may help.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// An `invalid_input` error for input the schema could not express.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new("invalid_input", message)
    }

    /// Map an upstream HTTP status to an error: 401/403 → `unauthorized`/`forbidden`,
    /// 404 → `not_found`, 429 → `rate_limited` (retryable), 5xx → `upstream_error` (retryable).
    pub fn from_status(status: u16, body: &[u8]) -> Self {
        let detail = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        let (code, retryable) = match status {
            400 | 422 => ("bad_request", false),
            401 => ("unauthorized", false),
            403 => ("forbidden", false),
            404 => ("not_found", false),
            409 => ("conflict", false),
            429 => ("rate_limited", true),
            500..=599 => ("upstream_error", true),
            _ => ("upstream_error", false),
        };
        Self::new(code, format!("upstream answered HTTP {status}: {detail}")).with_retryable(retryable)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for ConnectorError {
    fn from(e: Error) -> Self {
        ConnectorError {
            code: e.code,
            message: e.message,
            retryable: e.retryable,
        }
    }
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::HostNotAllowed(m) => Error::new("host_not_allowed", m),
            HttpError::AddressBlocked(m) => Error::new("address_blocked", m),
            HttpError::HeaderForbidden(m) => Error::new("header_forbidden", m),
            HttpError::CredentialNotBound(m) => Error::new("credential_not_bound", m),
            HttpError::InvalidRequest(m) => Error::new("invalid_request", m),
            HttpError::RequestTooLarge(n) => Error::new("request_too_large", format!("request body exceeds {n} bytes")),
            HttpError::ResponseTooLarge(n) => {
                Error::new("response_too_large", format!("response body exceeds {n} bytes"))
            }
            HttpError::RateLimited(ms) => {
                Error::new("rate_limited", format!("connection rate limit; retry in {ms} ms")).with_retryable(true)
            }
            HttpError::Timeout => Error::new("timeout", "upstream request timed out").with_retryable(true),
            HttpError::Transport(m) => Error::new("transport", m).with_retryable(true),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new("invalid_response", format!("upstream JSON could not be decoded: {e}"))
    }
}
