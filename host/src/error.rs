//! The error policy, and API errors as RFC 9457 `application/problem+json`.
//!
//! # Which error type each layer uses
//!
//! | layer | error type | notes |
//! |---|---|---|
//! | `store/` | `store::StoreError` | names tables, never values |
//! | `vault/` | `vault::VaultError`, `vault::KeyringError` | never carries key or plaintext |
//! | `broker/` | `broker::BrokerError` (a WIT `http-error` for guests) | never carries a secret |
//! | `runtime/` | `runtime::CallError` (per call), `runtime::RuntimeStartError` | codes are stable |
//! | `oauth/` | `oauth::OAuthError`, `oauth::ProviderError` | never carries a token |
//! | `connections/` | `connections::ConnectionError` | wraps the layers below with `#[from]` |
//! | `marketplace/` | `marketplace::InstallError` (pinning), `marketplace::MarketplaceError` (registry) | the latter wraps the former |
//! | `jobs/` | `jobs::JobError` | logged by the scheduler; a job never kills the server |
//! | `api/` | [`ApiError`] (this module) | the only type that knows HTTP |
//! | `main.rs` | `anyhow::Error` | the binary's edge only |
//!
//! Domain modules return their own `thiserror` enums and keep `#[source]`; no function below
//! `api/` returns an [`ApiError`]. The `From<DomainError> for ApiError` mappings live in
//! `api/errors.rs`, next to the handlers that need them. Every [`ApiError`] is a status, a
//! stable `code` (also the last segment of `type`), a short `title` and a `detail` that is
//! safe to show. Server faults log their cause chain under the request's id and answer a
//! generic message, so an internal error never leaks a query, a path or a value.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// Base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://nexum.dev/problems/";

/// A problem response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    title: &'static str,
    detail: String,
    extra: Option<Value>,
    retry_after: Option<u64>,
}

/// The JSON body of a problem.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `https://nexum.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem class.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Extra structured information (validation errors, `retryable`, trace…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Value>,
}

impl ApiError {
    /// A problem with an explicit status, code and detail.
    pub fn new(status: StatusCode, code: impl Into<String>, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            title,
            detail: detail.into(),
            extra: None,
            retry_after: None,
        }
    }

    /// Attach structured detail (rendered as `errors`).
    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// Attach a `Retry-After` header.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// 400: the request could not be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", "Bad request", detail)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail)
    }

    /// 403: the key lacks a scope.
    pub fn forbidden_scope(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "missing_scope",
            "Forbidden",
            format!("this API key lacks the `{scope}` scope"),
        )
    }

    /// 404 for `what` (also used for other workspaces' resources).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            format!("no such {what}"),
        )
    }

    /// 409: conflicts with current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 422: well-formed but invalid.
    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, "Unprocessable content", detail)
    }

    /// 500: log the cause, answer a generic message.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause_chain(cause), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "the server failed; see its log",
        )
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("{PROBLEM_BASE}{}", self.code),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone(),
            errors: self.extra.clone(),
        }
    }

    /// The problem body as JSON text. A [`Problem`] is strings and numbers only, so this
    /// cannot fail in practice; if it ever did, a minimal hand-written body still says what
    /// happened rather than an empty 200-looking body.
    pub fn problem_json(&self) -> String {
        serde_json::to_string(&self.problem()).unwrap_or_else(|_| {
            format!(
                r#"{{"type":"{PROBLEM_BASE}internal","title":"Internal server error","status":{},"code":"internal","detail":"the error could not be rendered"}}"#,
                self.status.as_u16()
            )
        })
    }
}

/// An error and its `source()` chain, joined with `: ` (for logs only: it may name
/// internals).
pub fn cause_chain(cause: &dyn std::error::Error) -> String {
    let mut chain = cause.to_string();
    let mut source = cause.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.problem_json();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The unread rest of the body makes the connection unusable; tell the client so
            // it does not send its next request down it.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
