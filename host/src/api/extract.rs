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
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Map an axum JSON rejection to a problem.
pub fn json_rejection(rejection: JsonRejection) -> ApiError {
    use axum::http::StatusCode;
    let status = rejection.status();
    let detail = rejection.body_text();
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

/// `?limit=&cursor=` for listings.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Pagination {
    /// Page size, 1–100 (default 50).
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
