//! The web console at `/console`: everything an admin does, in a browser.
//!
//! Server-rendered HTML (minijinja templates compiled into the binary) with one small script
//! for progressive enhancement, so every reading page works without JavaScript and nothing is
//! fetched from anywhere but this server. The console owns no behaviour: each page is one or
//! more REST calls made in-process with the signed-in API key ([`client::ApiClient`]), so it
//! can do exactly what that key can do through the API, and no more.
//!
//! Sign-in keeps the key sealed in an HttpOnly, SameSite=Strict cookie scoped to `/console`
//! ([`session`]); every state-changing form carries the session's CSRF token and must come
//! from the console's own origin.

pub mod client;
mod extract;
mod forms;
mod pages;
pub mod render;
pub mod session;

use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::Environment;
use std::sync::Arc;

/// What every console handler shares: the API it calls, the vault that seals sessions, the
/// templates.
pub struct Console {
    /// The REST API, called in-process.
    pub api: Router,
    /// The server's state (vault, config).
    pub state: Arc<AppState>,
    /// The compiled templates.
    pub templates: Environment<'static>,
}

/// The shared console, as handlers receive it.
pub type Shared = Arc<Console>;

/// The console's routes, merged beside `api` (the REST application it calls).
pub fn mount(api: Router, state: Arc<AppState>) -> Router {
    let console = Arc::new(Console {
        api: api.clone(),
        state,
        templates: render::environment(),
    });
    let pages = pages::routes()
        .route(
            "/console/assets/console.css",
            get(|| asset("text/css; charset=utf-8", render::CSS)),
        )
        .route(
            "/console/assets/console.js",
            get(|| asset("text/javascript; charset=utf-8", render::JS)),
        )
        .with_state(console);
    api.route("/", get(|| async { Redirect::to("/console/") })).merge(pages)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
