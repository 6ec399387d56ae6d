//! The console's only way to do anything: a REST call to `/api/v1`, made in-process through
//! the API router with the session's key as the bearer. The console so acts with exactly the
//! key's scopes, rate limit, quotas and audit trail, and every validation and error is the
//! API's own.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

/// Largest API answer the console reads (a page of listings, a README, an action's output).
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// A problem the API answered, shown to the user as it came.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// The stable code (`forbidden`, `invalid_input`…).
    pub code: String,
    /// Short summary.
    pub title: String,
    /// What went wrong.
    pub detail: String,
    /// Field errors or other structured details, when the API gave them.
    pub errors: Option<Value>,
}

impl Problem {
    /// A form the console refuses itself, before any API call (422 `invalid_form`).
    pub fn invalid_form(detail: impl Into<String>) -> Self {
        Self {
            status: 422,
            code: "invalid_form".into(),
            title: "The form has an error".into(),
            detail: detail.into(),
            errors: None,
        }
    }

    /// Something the console looked for and did not find (404 `code`).
    pub fn not_found(code: &str, detail: impl Into<String>) -> Self {
        Self {
            status: 404,
            code: code.into(),
            title: "Not found".into(),
            detail: detail.into(),
            errors: None,
        }
    }

    fn internal(detail: impl Into<String>) -> Self {
        Self {
            status: 500,
            code: "console_error".into(),
            title: "Console error".into(),
            detail: detail.into(),
            errors: None,
        }
    }
}

/// The API, as one signed-in user (or nobody) calls it.
#[derive(Clone)]
pub struct ApiClient {
    app: Router,
    key: Option<zeroize::Zeroizing<String>>,
    peer: Option<ConnectInfo<SocketAddr>>,
}

impl ApiClient {
    /// A client over `app` acting with `key`; `peer` is the browser's address, passed on for
    /// the API's per-address limits.
    pub fn new(app: Router, key: Option<&str>, peer: Option<ConnectInfo<SocketAddr>>) -> Self {
        Self {
            app,
            key: key.map(|k| zeroize::Zeroizing::new(k.to_string())),
            peer,
        }
    }

    /// `GET /api/v1{path}`.
    pub async fn get(&self, path: &str) -> Result<Value, Problem> {
        self.call(Method::GET, path, None).await
    }

    /// `POST /api/v1{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, Problem> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PATCH /api/v1{path}` with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> Result<Value, Problem> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// `PUT /api/v1{path}` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Result<Value, Problem> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// `DELETE /api/v1{path}`.
    pub async fn delete(&self, path: &str) -> Result<Value, Problem> {
        self.call(Method::DELETE, path, None).await
    }

    /// One call; a 2xx answer's JSON (or `null` when it has no body), else its problem.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Problem> {
        let mut request = Request::builder().method(method).uri(format!("/api/v1{path}"));
        if let Some(key) = &self.key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", key.as_str()));
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request
            .body(body)
            .map_err(|_| Problem::internal(format!("`{path}` is not a valid API path")))?;
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(peer);
        }
        let response = match self.app.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|_| Problem::internal("the API's answer was too large to show"))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .map_err(|_| Problem::internal("the API answered something that is not JSON"));
        }
        Err(problem(status, &bytes))
    }
}

/// The problem+json body of a failed call.
fn problem(status: StatusCode, bytes: &[u8]) -> Problem {
    let json: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let text = |field: &str, default: &str| json.get(field).and_then(Value::as_str).unwrap_or(default).to_string();
    Problem {
        status: status.as_u16(),
        code: text("code", "error"),
        title: text("title", status.canonical_reason().unwrap_or("Error")),
        detail: text("detail", ""),
        errors: json.get("errors").cloned(),
    }
}
