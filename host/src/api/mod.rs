//! The REST API under `/api/v1`: one file per resource, problem+json errors, cursor
//! pagination, OpenAPI at `/api/v1/openapi.json` and interactive docs at `/docs`.

mod actions;
mod audit;
mod auth;
mod connections;
mod connectors;
mod docs;
mod errors;
pub mod extract;
mod health;
mod hooks;
mod incoming;
mod keys;
mod marketplace;
mod members;
mod metrics;
mod oauth;
mod oauth_begin;
mod openapi;
mod public_limit;
mod ranges;
mod templates;
mod webhooks;
mod workflows;
mod workspaces;

pub use openapi::ApiDoc;

pub use crate::state::AppState;

use crate::error::ApiError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Which routes a server exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Everything (`nexum serve`).
    Full,
    /// Only the marketplace registry (`nexum marketplace serve`).
    MarketplaceOnly,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application.
pub fn router(state: Arc<AppState>) -> Router {
    router_for(state, Surface::Full)
}

/// The HTTP application for a surface.
pub fn router_for(state: Arc<AppState>, surface: Surface) -> Router {
    let market_authed = Router::new()
        .route("/marketplace/publishers", post(marketplace::register_publisher))
        .route("/marketplace/publishers/{namespace}/keys", post(marketplace::add_key))
        .route(
            "/marketplace/publishers/{namespace}/keys/{key_id}",
            axum::routing::delete(marketplace::revoke_key),
        )
        .route(
            "/marketplace/packages",
            post(marketplace::publish).layer(DefaultBodyLimit::max(nexum_marketplace::bundle::MAX_BUNDLE_BYTES + 1)),
        )
        .route(
            "/marketplace/packages/{namespace}/{name}/versions/{version}/yank",
            post(marketplace::yank),
        )
        .route(
            "/marketplace/packages/{namespace}/{name}/featured",
            post(marketplace::set_featured),
        )
        .route(
            "/marketplace/packages/{namespace}/{name}/reviews",
            post(marketplace::write_review),
        )
        .route(
            "/marketplace/packages/{namespace}/{name}/reviews/{id}/reply",
            post(marketplace::reply),
        );
    let market_public = Router::new()
        .route("/marketplace/publishers/{namespace}", get(marketplace::get_publisher))
        .route("/marketplace/packages", get(marketplace::browse))
        .route(
            "/marketplace/packages/{namespace}/{name}",
            get(marketplace::get_package),
        )
        .route(
            "/marketplace/packages/{namespace}/{name}/reviews",
            get(marketplace::list_reviews),
        )
        .route("/marketplace/bundles/{digest}", get(marketplace::download))
        .route(
            "/marketplace/packages/{namespace}/{name}/versions/{version}/bundle",
            get(marketplace::download_version),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            public_limit::limit_by_peer,
        ));

    let mut authed = market_authed;
    if surface == Surface::Full {
        authed = authed
            .route("/workspace", get(workspaces::current))
            .route("/workspaces", post(workspaces::create))
            .route("/workspaces/{id}/allowed-ranges", get(ranges::get).put(ranges::put))
            .route("/members", get(members::list).post(members::create))
            .route(
                "/members/{id}",
                get(members::get).patch(members::update).delete(members::remove),
            )
            .route("/api-keys", get(keys::list).post(keys::create))
            .route("/api-keys/current", get(keys::current))
            .route("/api-keys/{id}", get(keys::get).delete(keys::revoke))
            .route("/api-keys/{id}/usage", get(keys::usage))
            .route(
                "/connectors",
                get(connectors::list)
                    .post(connectors::install)
                    .layer(DefaultBodyLimit::max(state.config.max_upload_bytes)),
            )
            .route(
                "/connectors/from-marketplace",
                post(marketplace::install_from_marketplace),
            )
            .route("/connectors/{id}", get(connectors::get).delete(connectors::uninstall))
            .route("/connectors/{id}/rollback", post(connectors::rollback))
            .route(
                "/templates",
                get(templates::browse)
                    .post(templates::publish)
                    .layer(DefaultBodyLimit::max(
                        nexum_marketplace::template::MAX_TEMPLATE_BUNDLE_BYTES + 1,
                    )),
            )
            .route("/templates/{namespace}/{name}", get(templates::get))
            .route("/templates/{namespace}/{name}/use", post(templates::use_latest))
            .route("/templates/{namespace}/{name}/featured", post(templates::set_featured))
            .route(
                "/templates/{namespace}/{name}/reviews",
                get(templates::list_reviews).post(templates::write_review),
            )
            .route(
                "/templates/{namespace}/{name}/reviews/{id}/reply",
                post(templates::reply),
            )
            .route(
                "/templates/{namespace}/{name}/versions/{version}",
                get(templates::get_version),
            )
            .route(
                "/templates/{namespace}/{name}/versions/{version}/bundle",
                get(templates::download),
            )
            .route(
                "/templates/{namespace}/{name}/versions/{version}/use",
                post(templates::use_version),
            )
            .route(
                "/templates/{namespace}/{name}/versions/{version}/yank",
                post(templates::yank),
            )
            .route("/workflows/{id}/template-upgrade", post(templates::upgrade))
            .route("/connections", get(connections::list).post(connections::create))
            .route(
                "/connections/{id}",
                get(connections::get)
                    .patch(connections::update)
                    .delete(connections::remove),
            )
            .route("/connections/{id}/test", post(connections::test))
            .route("/connections/{id}/refresh", post(oauth::force_refresh))
            .route("/connections/oauth/authorize", post(oauth::authorize))
            .route("/connections/oauth/flows/{id}", get(oauth::get_flow))
            .route("/oauth-apps", get(oauth::list_apps))
            .route(
                "/oauth-apps/{connector_id}",
                axum::routing::put(oauth::put_app).delete(oauth::delete_app),
            )
            .route(
                "/operator/oauth-apps/{connector_id}",
                axum::routing::put(oauth::put_operator_app).delete(oauth::delete_operator_app),
            )
            .route("/events", get(oauth::list_events))
            .route("/connections/{id}/actions/{action}", post(actions::execute))
            .route("/audit-log", get(audit::list))
            .route(
                "/webhooks/endpoints",
                get(webhooks::list_endpoints).post(webhooks::create_endpoint),
            )
            .route(
                "/webhooks/endpoints/{id}",
                get(webhooks::get_endpoint)
                    .patch(webhooks::update_endpoint)
                    .delete(webhooks::delete_endpoint),
            )
            .route(
                "/webhooks/endpoints/{id}/secret/rotate",
                post(webhooks::rotate_endpoint_secret),
            )
            .route("/webhooks/endpoints/{id}/recover", post(webhooks::recover_endpoint))
            .route("/webhooks/endpoints/{id}/test", post(webhooks::test_endpoint))
            .route("/hooks", get(hooks::list).post(hooks::subscribe))
            .route("/hooks/{id}", axum::routing::delete(hooks::unsubscribe))
            .route("/webhooks/messages/{id}/attempts", get(webhooks::list_attempts))
            .route("/webhooks/messages/{id}/retry", post(webhooks::retry_message))
            .route("/event-types", get(webhooks::event_types))
            .route("/workflows", get(workflows::list).post(workflows::create))
            .route("/workflows/usage", get(workflows::usage))
            .route(
                "/workflows/{id}",
                get(workflows::get).patch(workflows::update).delete(workflows::remove),
            )
            .route("/workflows/{id}/execute", post(workflows::execute))
            .route("/workflows/{id}/executions", get(workflows::list_executions))
            .route("/workflows/{id}/trigger/failures", get(workflows::trigger_failures))
            .route("/executions/{id}", get(workflows::get_execution))
            .route("/executions/{id}/cancel", post(workflows::cancel))
            .route("/executions/{id}/retry", post(workflows::retry));
    }
    let mut api = authed
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .merge(market_public)
        .route("/openapi.json", get(openapi::document));
    if surface == Surface::Full {
        // The provider sends the user's browser here; the single-use state authenticates it.
        let limited = || axum::middleware::from_fn_with_state(state.clone(), public_limit::limit_by_peer);
        api = api
            .route("/oauth/callback", get(oauth::callback).layer(limited()))
            .route("/oauth/begin", get(oauth_begin::begin).layer(limited()));
    }

    let mut root = Router::new().nest("/api/v1", api);
    if surface == Surface::Full {
        // A provider's webhook for a workflow trigger: the signature authenticates it.
        root = root.route(
            "/hooks/{trigger_id}",
            post(incoming::receive_hook).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                public_limit::limit_by_peer_and_path,
            )),
        );
    }
    root.route("/healthz", get(health::healthz))
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
