//! `GET /api/v1/oauth/begin?state=…`: the link an API client gives its user. The first
//! browser to open it is bound to the flow with a cookie and sent on to the provider; the
//! callback then only completes in that browser, so a leaked or forwarded link cannot
//! connect someone else's account to this workspace.

use super::AppState;
use super::extract::ApiQuery;
use crate::error::ApiError;
use crate::oauth::flow;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

/// The link's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BeginQuery {
    /// The flow's state, as in the link `POST /connections/oauth/authorize` returned.
    pub state: Option<String>,
}

/// Bind the flow to this browser and redirect to the provider (public: the state in the
/// link authenticates it, once).
#[utoipa::path(get, path = "/api/v1/oauth/begin", tag = "oauth", operation_id = "begin_oauth_flow", params(BeginQuery), security(()),
    responses((status = 302, description = "To the provider, with the binding cookie set"),
        (status = 400, body = crate::error::Problem, description = "Unknown, expired or already opened link")))]
pub async fn begin(State(state): State<Arc<AppState>>, ApiQuery(query): ApiQuery<BeginQuery>) -> Response {
    let begun = match flow::begin(&state, query.state.as_deref().unwrap_or_default()).await {
        Ok(b) => b,
        Err(crate::oauth::OAuthError::Invalid { code, message }) => {
            return ApiError::new(StatusCode::BAD_REQUEST, code, "Bad request", message).into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (name, value) = begun.cookie;
    let secure = if state.oauth.is_https() { "; Secure" } else { "" };
    // Lax: the provider's redirect back is a top-level navigation, which carries it.
    let cookie = format!("{name}={value}; HttpOnly; SameSite=Lax; Path=/api/v1/oauth; Max-Age=900{secure}");
    let (Ok(location), Ok(cookie)) = (
        HeaderValue::from_str(&begun.provider_url),
        HeaderValue::from_str(&cookie),
    ) else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
            "the provider's authorization URL is not a valid header value",
        )
        .into_response();
    };
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The cookies of a request, by name.
pub fn cookies(headers: &axum::http::HeaderMap) -> std::collections::BTreeMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
