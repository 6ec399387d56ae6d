//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa).

use super::{actions, audit, connections, connectors, keys, marketplace, members, oauth, workspaces};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API description served at `/api/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Nexum API", version = "1.0.0", description = "Execute sandboxed connector actions; manage workspaces, keys, connectors and connections. Errors are RFC 9457 problem+json."),
    paths(
        workspaces::current, workspaces::create,
        members::list, members::create, members::get, members::update, members::remove,
        keys::list, keys::create, keys::get, keys::revoke, keys::usage,
        connectors::list, connectors::install, connectors::get, connectors::uninstall, connectors::rollback,
        marketplace::install_from_marketplace, marketplace::register_publisher, marketplace::get_publisher,
        marketplace::add_key, marketplace::revoke_key, marketplace::publish, marketplace::browse, marketplace::get_package,
        marketplace::download, marketplace::download_version, marketplace::yank, marketplace::set_featured, marketplace::list_reviews,
        marketplace::write_review, marketplace::reply,
        connections::list, connections::create, connections::get, connections::update, connections::remove, connections::test,
        actions::execute,
        oauth::authorize, oauth::get_flow, oauth::callback, oauth::force_refresh, oauth::list_apps, oauth::put_app,
        oauth::delete_app, oauth::put_operator_app, oauth::delete_operator_app, oauth::list_events,
        audit::list,
    ),
    components(schemas(crate::error::Problem, crate::auth::Scope, crate::store::Role)),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    tags(
        (name = "actions", description = "Run connector actions"),
        (name = "connections", description = "Accounts connected through installed connectors"),
        (name = "connectors", description = "Connectors installed in the workspace"),
        (name = "api-keys", description = "API keys"),
        (name = "members", description = "Workspace members"),
        (name = "workspaces", description = "Workspaces"),
        (name = "audit", description = "Audit log"),
        (name = "oauth", description = "OAuth2 apps, authorization flows, token refresh and the event outbox"),
        (name = "marketplace", description = "Signed connectors: publishers, publishing, browsing, reviews"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("nx_live_…")
                    .build(),
            ),
        );
    }
}

/// Serve the document.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
