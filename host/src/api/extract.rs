//! Request extractors that answer with problem+json: JSON bodies, pagination, the caller.

use crate::auth::Scope;
use crate::error::ApiError;
use crate::ids::WorkspaceId;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A JSON body whose rejections are problems: 400 for malformed JSON, 415 for a wrong
/// content type, 413 when too large, 422 when the shape or types are wrong.
///
/// Numbers are read by value, as JSON Schema (and so the OpenAPI document) reads them: `2.0`
/// is the integer 2 wherever an integer is expected.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::MissingJsonContentType;
        if !has_json_content_type(req.headers()) {
            return Err(json_rejection(JsonRejection::MissingJsonContentType(
                MissingJsonContentType::default(),
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| json_rejection(JsonRejection::BytesRejection(e)))?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::JsonDataError(e)) => match integral_floats_as_integers(&bytes) {
                Some(normalized) => axum::Json::<T>::from_bytes(&normalized)
                    .map(|axum::Json(value)| Self(value))
                    .map_err(json_rejection),
                None => Err(json_rejection(JsonRejection::JsonDataError(e))),
            },
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `application/json` or `application/<anything>+json`, as axum's `Json` accepts.
fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The JSON text with every number that has no fractional part written as an integer
/// (`2.0` → `2`), or `None` when there is none (or the text is not JSON).
fn integral_floats_as_integers(bytes: &[u8]) -> Option<Vec<u8>> {
    fn walk(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // 2^64 is the first value above u64::MAX that an f64 holds.
                let integer = if f.fract() != 0.0 || !f.is_finite() {
                    None
                } else if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    Some(serde_json::Value::from(f as u64))
                } else if f >= i64::MIN as f64 && f < 0.0 {
                    Some(serde_json::Value::from(f as i64))
                } else {
                    None
                };
                match integer {
                    Some(i) => {
                        *value = i;
                        true
                    }
                    None => false,
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |changed, v| walk(v) | changed),
            serde_json::Value::Object(fields) => fields.values_mut().fold(false, |changed, v| walk(v) | changed),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if walk(&mut value) {
        serde_json::to_vec(&value).ok()
    } else {
        None
    }
}

/// Map an axum JSON rejection to a problem.
pub fn json_rejection(rejection: JsonRejection) -> ApiError {
    use axum::http::StatusCode;
    let status = rejection.status();
    let detail = crate::quoted::without_input_values(&rejection.body_text());
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "payload_too_large",
            "Payload too large",
            "the request body is too large",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            "Unsupported media type",
            "send `content-type: application/json`",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::unprocessable("invalid_body", detail),
        _ => ApiError::bad_request(detail),
    }
}

/// `?limit=&cursor=` for listings. A `limit` outside 1–100 is refused with 422
/// `invalid_limit`; a query that does not parse (`limit=abc`) with 400.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Pagination {
    /// Validated page size.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=100) => Ok(n),
            Some(n) => Err(ApiError::unprocessable(
                "invalid_limit",
                format!("limit must be 1–100, got {n}"),
            )),
        }
    }

    /// The cursor, or the start.
    pub fn after(&self) -> &str {
        self.cursor.as_deref().unwrap_or("")
    }
}

/// Query extractor with problem rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Path parameters whose rejections are problems. Axum's own `Path` answers a malformed
/// segment (bad percent-encoding, not UTF-8) with a plain-text 400; this answers
/// problem+json 404, like [`path_id`]: a segment that cannot be read names nothing.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// A `multipart/form-data` body whose rejections are problems: 415 when the request is not
/// multipart, 400 when it is but cannot be read (no boundary).
pub struct ApiMultipart(pub axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_multipart = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
        if !is_multipart {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send `content-type: multipart/form-data`",
            ));
        }
        axum::extract::Multipart::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| ApiError::bad_request(format!("malformed multipart upload: {}", e.body_text())))
    }
}

/// The authenticated caller, put in request extensions by the auth middleware.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The workspace every query is scoped to.
    pub workspace_id: WorkspaceId,
    /// The API key used.
    pub key_id: String,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// The member the key belongs to, if any.
    pub member_id: Option<String>,
}

impl Principal {
    /// Fail with 403 unless the key holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden_scope(scope.as_str()))
        }
    }

    /// Fail with 403 unless the key holds `scope` or `admin` (which implies the write scopes
    /// of a workspace's own resources: webhooks, workflows).
    pub fn require_or_admin(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&Scope::Admin) {
            return Ok(());
        }
        self.require(scope)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("missing API key"))
    }
}

/// A raw body whose rejections (413 when too large) are problems.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                let status = rejection.status();
                if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        status,
                        "payload_too_large",
                        "Payload too large",
                        "the request body is too large",
                    )
                } else {
                    ApiError::bad_request(rejection.body_text())
                }
            })
    }
}

/// Parse an id taken from the URL path into its typed kind. A malformed id answers 404 like
/// an unknown one: it names nothing, and a caller learns nothing from the difference.
pub fn path_id<T: std::str::FromStr<Err = crate::ids::InvalidId>>(raw: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|e: crate::ids::InvalidId| ApiError::not_found(e.kind))
}
