//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa).
//!
//! The document is a contract, checked in CI by schemathesis (`scripts/schemathesis.sh`):
//! every status and content type an operation can answer is in it, and every constraint a
//! handler enforces is in its schemas. Each handler's annotation lists what the handler
//! itself answers; [`Contract`] adds what the layers in front of every handler answer
//! (authentication, rate limits and quotas, body and query extractors, server faults), so
//! a new handler cannot forget them, and gives every problem body its media type.

use super::{
    actions, audit, connections, connectors, hooks, incoming, keys, marketplace, members, oauth, oauth_begin, ranges,
    templates, webhooks, workflows, workspaces,
};
use axum::Json;
use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The API description served at `/api/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Nexum API", version = "1.0.0", description = "Execute sandboxed connector actions; manage workspaces, keys, connectors and connections. Errors are RFC 9457 problem+json."),
    paths(
        workspaces::current, workspaces::create,
        members::list, members::create, members::get, members::update, members::remove,
        keys::list, keys::create, keys::current, keys::get, keys::revoke, keys::usage, ranges::get, ranges::put, oauth_begin::begin,
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
        webhooks::create_endpoint, webhooks::list_endpoints, webhooks::get_endpoint, webhooks::delete_endpoint,
        webhooks::list_attempts, webhooks::retry_message, webhooks::event_types, webhooks::update_endpoint,
        webhooks::rotate_endpoint_secret, webhooks::recover_endpoint, webhooks::test_endpoint,
        hooks::subscribe, hooks::list, hooks::unsubscribe,
        workflows::create, workflows::list, workflows::get, workflows::update, workflows::remove,
        workflows::execute, workflows::list_executions, workflows::get_execution, workflows::cancel,
        workflows::retry, workflows::usage, workflows::trigger_failures, incoming::receive_hook,
        templates::publish, templates::browse, templates::get, templates::get_version, templates::download,
        templates::yank, templates::set_featured, templates::use_latest, templates::use_version, templates::upgrade,
        templates::list_reviews, templates::write_review, templates::reply,
    ),
    components(schemas(crate::error::Problem, crate::auth::Scope, crate::store::Role)),
    modifiers(&BearerAuth, &Contract),
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
        (name = "webhooks", description = "Webhook endpoints, REST hooks, the delivery log and the event catalogue"),
        (name = "workflows", description = "Workflows, their executions and triggers (schedules, signed incoming webhooks)"),
        (name = "templates", description = "Signed workflow templates: publishing, browsing, using (with dry runs), upgrading, reviews"),
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

/// The parts of the contract that come from the layers in front of the handlers (see the
/// module doc), applied to every operation after the annotations.
struct Contract;

impl Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let global = openapi.security.clone().unwrap_or_default();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("options", &mut item.options),
                ("head", &mut item.head),
                ("patch", &mut item.patch),
                ("trace", &mut item.trace),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    contract_of(method, operation, &global);
                }
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            // `flow::start` needs one of the two to know what to connect.
            require_one_of(components, "AuthorizeRequest", &["connector", "connection_id"]);
        }
    }
}

/// Add the responses the layers in front of the handler give `operation`, state its security
/// explicitly, and give problem bodies their media type.
fn contract_of(method: &str, operation: &mut Operation, global: &[SecurityRequirement]) {
    let security = operation.security.get_or_insert_with(|| global.to_vec());
    let authenticated = security.iter().any(|r| *r != SecurityRequirement::default());
    let body_types: Vec<String> = match &operation.request_body {
        Some(RefOr::T(body)) => body.content.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let typed_body = body_types
        .iter()
        .any(|t| t.contains("json") || t.starts_with("multipart/"));
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));

    let mut added: Vec<(&str, &str)> = Vec::new();
    if authenticated {
        added.push(("401", "No API key, or an invalid, revoked or expired one"));
        added.push(("403", "The API key lacks the scope this operation needs"));
        added.push((
            "429",
            "The API key's rate limit or quota is used up (see `Retry-After`)",
        ));
    } else {
        added.push((
            "429",
            "This client address has used its per-minute budget for endpoints without a key (see `Retry-After`)",
        ));
    }
    if has_query {
        added.push(("400", "The query string cannot be read"));
    }
    if !body_types.is_empty() {
        added.push(("400", "The body cannot be read (malformed JSON or multipart)"));
        added.push(("413", "The body is larger than the server accepts"));
    }
    if typed_body {
        added.push(("415", "The body is not in the media type this operation takes"));
        added.push(("422", "The body does not match the schema"));
    }
    if !matches!(method, "get" | "head") {
        added.push((
            "503",
            "The database is busy or cannot record the change right now; nothing was done (see `Retry-After`)",
        ));
    }
    added.push(("500", "A server fault (logged under the request's `x-request-id`)"));

    let responses = &mut operation.responses.responses;
    let mut descriptions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (status, description) in added {
        if !responses.contains_key(status) {
            descriptions.entry(status).or_default().push(description);
        }
    }
    for (status, lines) in descriptions {
        responses.insert(
            status.to_string(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(lines.join("; or "))
                    .content(PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
                    .build(),
            ),
        );
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if response.description.is_empty() {
            response.description = status
                .parse::<u16>()
                .ok()
                .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Response")
                .to_string();
        }
        // Problems are always served as `application/problem+json` (crate::error).
        if let Some(content) = response.content.shift_remove("application/json") {
            let is_problem = matches!(&content, RefOr::T(c)
                if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")));
            let media_type = if is_problem { PROBLEM_JSON } else { "application/json" };
            response.content.insert(media_type.to_string(), content);
        }
        if matches!(status.as_str(), "429" | "503") {
            response.headers.entry("retry-after".to_string()).or_insert_with(|| {
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0))))
                    .description(Some("Seconds to wait before retrying"))
                    .build()
                    .into()
            });
        }
    }
}

/// Media type of every problem response.
const PROBLEM_JSON: &str = "application/problem+json";

/// Make the object schema `name` require at least one of `fields` (as a non-null string).
fn require_one_of(components: &mut utoipa::openapi::Components, name: &str, fields: &[&str]) {
    let Some(schema) = components.schemas.remove(name) else {
        return;
    };
    let mut any_of = AnyOfBuilder::new();
    for field in fields {
        any_of = any_of.item(
            ObjectBuilder::new()
                .property(*field, ObjectBuilder::new().schema_type(Type::String))
                .required(*field),
        );
    }
    let combined = AllOfBuilder::new().item(schema).item(any_of).build();
    components
        .schemas
        .insert(name.to_string(), RefOr::T(Schema::AllOf(combined)));
}

/// Serve the document.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::ApiDoc;
    use utoipa::OpenApi;

    /// The structural half of the contract (schemathesis checks the rest against a server):
    /// unique operation ids, security stated per operation, path parameters that are in the
    /// path, problem+json for every error, and the layers' responses everywhere.
    #[test]
    fn every_operation_states_its_contract() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("document as JSON");
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let name = format!("{} {path}", method.to_uppercase());
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_string()), "{name}: operationId `{id}` is used twice");
                assert!(op["security"].is_array(), "{name}: no security requirement stated");
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                for p in &params {
                    let param = p["name"].as_str().unwrap_or_default();
                    if p["in"] == "path" {
                        assert!(
                            path.contains(&format!("{{{param}}}")),
                            "{name}: `{param}` is not in the path"
                        );
                    }
                }
                for segment in path.split('/').filter(|s| s.starts_with('{')) {
                    let param = segment.trim_matches(|c| c == '{' || c == '}');
                    assert!(
                        params.iter().any(|p| p["in"] == "path" && p["name"] == param),
                        "{name}: path parameter `{param}` is not declared"
                    );
                }
                let responses = op["responses"].as_object().expect("responses");
                for status in ["429", "500"] {
                    assert!(responses.contains_key(status), "{name}: no {status}");
                }
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            response["content"].get("application/problem+json").is_some(),
                            "{name} {status}: not application/problem+json"
                        );
                    }
                }
            }
        }
    }
}
