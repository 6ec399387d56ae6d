//! What a console handler starts from: the signed-in session with its API client ([`Page`]),
//! and, for state-changing forms, that plus a form that passed the origin and CSRF checks
//! ([`Write`]).

use super::Shared;
use super::client::ApiClient;
use super::forms::Fields;
use super::render;
use super::session::{self, Session};
use crate::store::now_ms;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use std::net::SocketAddr;

/// Largest form a console page posts (an action's input, a webhook's settings).
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// A signed-in request: the session and the API acting as it.
pub struct Page {
    /// The session.
    pub session: Session,
    /// The API with the session's key.
    pub api: ApiClient,
}

impl FromRequestParts<Shared> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Shared) -> Result<Self, Self::Rejection> {
        let Some(session) = Session::from_headers(
            &parts.headers,
            &console.state.vault,
            console.state.oauth.is_https(),
            now_ms(),
        ) else {
            let next: String = url::form_urlencoded::byte_serialize(parts.uri.path().as_bytes()).collect();
            return Err(Redirect::to(&format!("/console/sign-in?next={next}")).into_response());
        };
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied();
        let api = ApiClient::new(console.api.clone(), Some(&session.api_key), peer);
        Ok(Self { session, api })
    }
}

/// A state-changing request from the console's own pages: same origin, signed in, and the
/// form's `_csrf` is the session's token.
pub struct Write {
    /// The session and its API.
    pub page: Page,
    /// The form's fields (without `_csrf`).
    pub form: Fields,
}

impl FromRequest<Shared> for Write {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Shared) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        if !session::same_origin(&parts.headers) {
            return Err(refused(
                console,
                "This form was sent from another site, so it was not acted on.",
            ));
        }
        let page = Page::from_request_parts(&mut parts, console).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| refused(console, "The form was too large."))?;
        let mut form = Fields::parse(&bytes);
        let presented = form.take("_csrf").unwrap_or_default();
        if !page.session.csrf_matches(&presented) {
            return Err(refused(
                console,
                "This form did not come from your console session (its CSRF token is missing or stale). Reload the page and try again.",
            ));
        }
        Ok(Self { page, form })
    }
}

/// The 403 page of a refused write.
fn refused(console: &Shared, why: &str) -> Response {
    render::render(
        &console.templates,
        StatusCode::FORBIDDEN,
        "message.html",
        None,
        json!({ "title": "Request refused", "message": why }),
    )
}
