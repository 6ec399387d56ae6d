//! The REST API under `/api/v1`: one file per resource, problem+json errors, cursor
//! pagination, OpenAPI at `/api/v1/openapi.json` and interactive docs at `/docs`.

mod actions;
mod audit;
mod auth;
mod connections;
mod connectors;
mod docs;
pub mod extract;
mod health;
mod keys;
mod members;
mod metrics;
mod openapi;
pub mod resolve;
mod workspaces;

pub use auth::KeyCache;
pub use connections::check_health;
pub use metrics::Metrics;
pub use openapi::ApiDoc;
pub use workspaces::bootstrap as workspaces_bootstrap;

use crate::auth::KeyRateLimiter;
use crate::config::Config;
use crate::error::ApiError;
use crate::jobs::Recorder;
use crate::runtime::Runtime;
use crate::store::Db;
use crate::vault::Vault;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use resolve::ConnectionCache;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Everything a handler can reach.
pub struct AppState {
    /// Settings.
    pub config: Config,
    /// Database.
    pub db: Db,
    /// Secrets.
    pub vault: Arc<Vault>,
    /// Connector runtime.
    pub runtime: Arc<Runtime>,
    /// Verified API keys.
    pub keys: KeyCache,
    /// Per-key rate limits.
    pub rate: KeyRateLimiter,
    /// Resolved connections and compiled connectors.
    pub connections: ConnectionCache,
    /// Batched usage, last-use and audit writes.
    pub recorder: Arc<Recorder>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Set when shutdown begins (readiness turns 503).
    pub shutting_down: AtomicBool,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/workspace", get(workspaces::current))
        .route("/workspaces", post(workspaces::create))
        .route("/members", get(members::list).post(members::create))
        .route(
            "/members/{id}",
            get(members::get).patch(members::update).delete(members::remove),
        )
        .route("/api-keys", get(keys::list).post(keys::create))
        .route("/api-keys/{id}", get(keys::get).delete(keys::revoke))
        .route(
            "/connectors",
            get(connectors::list)
                .post(connectors::install)
                .layer(DefaultBodyLimit::max(state.config.max_upload_bytes)),
        )
        .route("/connectors/{id}", get(connectors::get).delete(connectors::uninstall))
        .route("/connections", get(connections::list).post(connections::create))
        .route(
            "/connections/{id}",
            get(connections::get)
                .patch(connections::update)
                .delete(connections::remove),
        )
        .route("/connections/{id}/test", post(connections::test))
        .route("/connections/{id}/actions/{action}", post(actions::execute))
        .route("/audit-log", get(audit::list))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .route("/openapi.json", get(openapi::document));

    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/docs", get(docs::index))
        .route("/docs/{file}", get(docs::asset))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
