//! The marketplace: browsing connectors and workflow templates (search text, category, sort,
//! paging), a connector's page (description, versions, permissions, reviews) with the install
//! or upgrade form that carries exactly the permissions it shows for acceptance, and a
//! template's page (slots, variables, versions, reviews) with the form that makes a workflow
//! from it.

use super::super::Shared;
use super::super::client::Problem;
use super::super::extract::{Page, Write};
use super::super::forms::Fields;
use super::{done, failed, notice, pass_query, seg, show, show_problem};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The filters of the connector listing that a page link carries (the cursor aside).
const CONNECTOR_FILTERS: &[&str] = &["q", "category", "sort", "featured"];
/// The query parameters the connector browse call takes from the page's query.
const CONNECTOR_PARAMS: &[&str] = &["q", "category", "sort", "featured", "cursor"];
/// The filters of the template listing that a page link carries (the cursor aside).
const TEMPLATE_FILTERS: &[&str] = &["q", "category", "difficulty", "sort", "featured"];
/// The query parameters the template browse call takes from the page's query.
const TEMPLATE_PARAMS: &[&str] = &["q", "category", "difficulty", "sort", "featured", "cursor"];
/// The template categories the API knows.
const TEMPLATE_CATEGORIES: &[&str] = &[
    "SALES",
    "SUPPORT",
    "MARKETING",
    "DATA_PROCESSING",
    "AUTOMATION",
    "ANALYTICS",
    "CONTENT",
    "COMMUNICATION",
];
/// The template difficulties the API knows.
const TEMPLATE_DIFFICULTIES: &[&str] = &["BEGINNER", "INTERMEDIATE", "ADVANCED", "EXPERT"];

/// The routes of this area.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/console/marketplace", get(browse))
        .route("/console/marketplace/connectors/{namespace}/{name}", get(connector))
        .route(
            "/console/marketplace/connectors/{namespace}/{name}/install",
            post(install),
        )
        .route(
            "/console/marketplace/connectors/{namespace}/{name}/reviews",
            post(review_connector),
        )
        .route("/console/marketplace/templates/{namespace}/{name}", get(template))
        .route(
            "/console/marketplace/templates/{namespace}/{name}/use",
            post(use_template),
        )
        .route(
            "/console/marketplace/templates/{namespace}/{name}/reviews",
            post(review_template),
        )
}

/// The listing: connectors (the default) or, with `?kind=templates`, workflow templates.
async fn browse(State(console): State<Shared>, page: Page, Query(query): Query<HashMap<String, String>>) -> Response {
    let notice = notice(query.get("notice").map(String::as_str));
    if query.get("kind").is_some_and(|k| k == "templates") {
        browse_templates(&console, &page, &query, notice).await
    } else {
        browse_connectors(&console, &page, &query, notice).await
    }
}

/// Marketplace connectors, each marked with what this workspace has installed.
async fn browse_connectors(
    console: &Shared,
    page: &Page,
    query: &HashMap<String, String>,
    notice: Option<&'static str>,
) -> Response {
    let path = format!("/marketplace/packages{}", pass_query(query, CONNECTOR_PARAMS));
    let list = match page.api.get(&path).await {
        Ok(list) => list,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let next = list["next_cursor"]
        .as_str()
        .map(|c| browse_link(query, "connectors", CONNECTOR_FILTERS, Some(c)));
    let installed = installed_connectors(page).await;
    let mut packages = data_of(Ok(list));
    for package in packages.iter_mut() {
        let status = install_status(package, &installed);
        if let Some(fields) = package.as_object_mut() {
            fields.insert("installed".into(), status);
        }
    }
    // The categories to choose from: those of every listed connector, and the chosen one.
    let mut categories: BTreeSet<String> = data_of(page.api.get("/marketplace/packages?limit=100").await)
        .iter()
        .filter_map(|p| p["category"].as_str().map(str::to_string))
        .collect();
    if let Some(chosen) = filled(query, "category") {
        categories.insert(chosen.to_string());
    }
    show(
        console,
        &page.session,
        "marketplace.html",
        json!({
            "nav": "marketplace",
            "notice": notice,
            "kind": "connectors",
            "q": filled(query, "q"),
            "category": filled(query, "category"),
            "sort": filled(query, "sort"),
            "featured": query.get("featured").is_some_and(|f| f == "true"),
            "categories": categories,
            "sorts": [["newest", "Newest"], ["rating", "Best rated"], ["installs", "Most installed"]],
            "packages": packages,
            "next": next,
            "first": filled(query, "cursor").map(|_| browse_link(query, "connectors", CONNECTOR_FILTERS, None)),
        }),
    )
}

/// Workflow templates visible to this workspace.
async fn browse_templates(
    console: &Shared,
    page: &Page,
    query: &HashMap<String, String>,
    notice: Option<&'static str>,
) -> Response {
    let path = format!("/templates{}", pass_query(query, TEMPLATE_PARAMS));
    let list = match page.api.get(&path).await {
        Ok(list) => list,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    show(
        console,
        &page.session,
        "marketplace.html",
        json!({
            "nav": "marketplace",
            "notice": notice,
            "kind": "templates",
            "q": filled(query, "q"),
            "category": filled(query, "category"),
            "difficulty": filled(query, "difficulty"),
            "sort": filled(query, "sort"),
            "featured": query.get("featured").is_some_and(|f| f == "true"),
            "categories": TEMPLATE_CATEGORIES,
            "difficulties": TEMPLATE_DIFFICULTIES,
            "sorts": [["newest", "Newest"], ["rating", "Best rated"], ["uses", "Most used"]],
            "templates": list["data"],
            "total": list["total"],
            "next": list["next_cursor"].as_str().map(|c| browse_link(query, "templates", TEMPLATE_FILTERS, Some(c))),
            "first": filled(query, "cursor").map(|_| browse_link(query, "templates", TEMPLATE_FILTERS, None)),
        }),
    )
}

/// A non-blank query parameter, trimmed.
fn filled<'a>(query: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    query.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A link to a page of the listing of `kind` with the page's filters (`keys`) and `cursor`.
fn browse_link(query: &HashMap<String, String>, kind: &str, keys: &[&str], cursor: Option<&str>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    out.append_pair("kind", kind);
    for key in keys {
        if let Some(value) = filled(query, key) {
            out.append_pair(key, value);
        }
    }
    if let Some(cursor) = cursor {
        out.append_pair("cursor", cursor);
    }
    format!("/console/marketplace?{}", out.finish())
}

/// The `data` array of a list answer (empty when the call failed or there is none).
fn data_of(answer: Result<Value, Problem>) -> Vec<Value> {
    match answer.ok().and_then(|mut list| list.get_mut("data").map(Value::take)) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

/// The workspace's installed connectors by connector id (none when the key cannot read them).
async fn installed_connectors(page: &Page) -> HashMap<String, Value> {
    data_of(page.api.get("/connectors?limit=100").await)
        .into_iter()
        .filter_map(|i| Some((i["connector_id"].as_str()?.to_string(), i)))
        .collect()
}

/// What this workspace has installed of a marketplace package: its id, version and source,
/// whether it came from this package, and whether the package's latest version is newer.
fn install_status(package: &Value, installed: &HashMap<String, Value>) -> Value {
    let name = package["name"].as_str().unwrap_or_default();
    let Some(installation) = installed.get(name) else {
        return Value::Null;
    };
    let source = format!(
        "marketplace:{}/{name}",
        package["namespace"].as_str().unwrap_or_default()
    );
    let version = installation["version"].as_str().unwrap_or_default();
    let upgradable = package["latest_version"]
        .as_str()
        .is_some_and(|latest| newer(latest, version));
    json!({
        "id": installation["id"],
        "version": version,
        "source": installation["source"],
        "from_here": installation["source"].as_str() == Some(source.as_str()),
        "upgradable": upgradable,
    })
}

/// Whether `candidate` is a later version than `current` (by semver; any other difference
/// when either does not parse).
fn newer(candidate: &str, current: &str) -> bool {
    match (semver::Version::parse(candidate), semver::Version::parse(current)) {
        (Ok(candidate), Ok(current)) => candidate > current,
        _ => candidate != current,
    }
}

/// One connector's page.
async fn connector(
    State(console): State<Shared>,
    page: Page,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let notice = notice(query.get("notice").map(String::as_str));
    connector_page(&console, &page, &namespace, &name, &Fields::default(), notice, None).await
}

/// Render a connector's page: the listing, its reviews, what is installed here, the
/// permissions of the latest version to accept and, for an upgrade, how they differ from the
/// accepted ones; with the API's problem when a write failed.
async fn connector_page(
    console: &Shared,
    page: &Page,
    namespace: &str,
    name: &str,
    posted: &Fields,
    notice: Option<&'static str>,
    problem: Option<Problem>,
) -> Response {
    let base = format!("/marketplace/packages/{}/{}", seg(namespace), seg(name));
    let package = match page.api.get(&base).await {
        Ok(package) => package,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let reviews = page.api.get(&format!("{base}/reviews")).await.unwrap_or(Value::Null);
    let installed = installed_connectors(page).await;
    let status = install_status(&package, &installed);
    let diff = installed
        .get(name)
        .filter(|_| !package["permissions"].is_null())
        .map(|installation| permission_diff(&installation["accepted_permissions"], &package["permissions"]));
    let permissions_json = if package["permissions"].is_null() {
        None
    } else {
        serde_json::to_string(&package["permissions"]).ok()
    };
    // What the page offers: nothing to install, a first install, replacing a connector of
    // the same id from another source, an upgrade, or nothing more (installed and current).
    let mode = if package["permissions"].is_null() {
        "unavailable"
    } else if status.is_null() {
        "install"
    } else if status["from_here"].as_bool() != Some(true) {
        "replace"
    } else if status["upgradable"].as_bool() == Some(true) {
        "upgrade"
    } else {
        "installed"
    };
    let context = json!({
        "nav": "marketplace",
        "notice": notice,
        "mode": mode,
        "package": package,
        "reviews": reviews,
        "installed": status,
        "diff": diff,
        "permissions_json": permissions_json,
        "review_stars": posted.get("stars"),
        "review_body": posted.raw("body"),
    });
    match problem {
        Some(problem) => show_problem(console, &page.session, "connector.html", &problem, context),
        None => show(console, &page.session, "connector.html", context),
    }
}

/// The strings of a JSON array (empty for anything else).
fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// `(added, removed)` of `new` over `old`, each entry prefixed with `prefix`.
fn added_removed(old: &BTreeSet<String>, new: &BTreeSet<String>, prefix: &str) -> (Vec<String>, Vec<String>) {
    (
        new.difference(old).map(|h| format!("{prefix}{h}")).collect(),
        old.difference(new).map(|h| format!("{prefix}{h}")).collect(),
    )
}

/// How the permissions of a new version (`new`) differ from the accepted ones (`old`), both
/// in the API's permissions shape: hosts, mail servers, auth schemes with their credential
/// hosts and scopes, limits and host defaults, each added or removed.
fn permission_diff(old: &Value, new: &Value) -> Value {
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for field in ["allowed_hosts", "mail_servers"] {
        let (a, r) = added_removed(&strings(&old[field]), &strings(&new[field]), "");
        added.extend(a);
        removed.extend(r);
    }
    let (mut added_credential_hosts, mut removed_credential_hosts) = (Vec::new(), Vec::new());
    let (mut added_auth, mut removed_auth, mut other) = (Vec::new(), Vec::new(), Vec::new());
    let empty = Map::new();
    let old_auth = old["auth"].as_object().unwrap_or(&empty);
    let new_auth = new["auth"].as_object().unwrap_or(&empty);
    for (id, grant) in new_auth {
        let kind = grant["type"].as_str().unwrap_or_default();
        match old_auth.get(id) {
            None => {
                added_auth.push(format!("{id} ({kind})"));
                added_credential_hosts.extend(strings(&grant["hosts"]).iter().map(|h| format!("{id}: {h}")));
            }
            Some(before) => {
                if before["type"] != grant["type"] {
                    added_auth.push(format!(
                        "{id} ({kind} instead of {})",
                        before["type"].as_str().unwrap_or_default()
                    ));
                }
                let prefix = format!("{id}: ");
                let (a, r) = added_removed(&strings(&before["hosts"]), &strings(&grant["hosts"]), &prefix);
                added_credential_hosts.extend(a);
                removed_credential_hosts.extend(r);
                let (a, r) = added_removed(&strings(&before["scopes"]), &strings(&grant["scopes"]), &prefix);
                other.extend(a.into_iter().map(|s| format!("new OAuth scope {s}")));
                other.extend(r.into_iter().map(|s| format!("OAuth scope no longer asked for {s}")));
                let hmac = |g: &Value| g["hmac"].as_bool().unwrap_or(false);
                if hmac(grant) && !hmac(before) {
                    other.push(format!("{id}: the secret may now key HMACs"));
                }
            }
        }
    }
    for (id, grant) in old_auth {
        if !new_auth.contains_key(id) {
            removed_auth.push(format!("{id} ({})", grant["type"].as_str().unwrap_or_default()));
            removed_credential_hosts.extend(strings(&grant["hosts"]).iter().map(|h| format!("{id}: {h}")));
        }
    }
    for limit in ["memory_mb", "timeout_ms", "requests_per_second"] {
        if old[limit] != new[limit] {
            other.push(format!("{limit}: {} → {}", old[limit], new[limit]));
        }
    }
    let defaults = |p: &Value| -> BTreeMap<String, String> {
        p["host_defaults"]
            .as_object()
            .map(|d| {
                d.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old_defaults, new_defaults) = (defaults(old), defaults(new));
    for (name, value) in &new_defaults {
        match old_defaults.get(name) {
            Some(before) if before == value => {}
            before => other.push(format!(
                "default of {name}: {} → {value}",
                before.map(String::as_str).unwrap_or("(none)")
            )),
        }
    }
    for (name, before) in &old_defaults {
        if !new_defaults.contains_key(name) {
            other.push(format!("default of {name}: {before} → (none)"));
        }
    }
    let changed = !(added.is_empty()
        && removed.is_empty()
        && added_auth.is_empty()
        && removed_auth.is_empty()
        && added_credential_hosts.is_empty()
        && removed_credential_hosts.is_empty()
        && other.is_empty());
    json!({
        "changed": changed,
        "added_hosts": added,
        "removed_hosts": removed,
        "added_auth": added_auth,
        "removed_auth": removed_auth,
        "added_credential_hosts": added_credential_hosts,
        "removed_credential_hosts": removed_credential_hosts,
        "other": other,
    })
}

/// A problem with the posted form itself (before any API call), naming the field (`path`,
/// as the API names fields) when there is one.
fn form_problem(path: Option<&str>, detail: String) -> Problem {
    let errors = path.map(|p| json!([{ "path": p, "message": detail }]));
    Problem {
        errors,
        ..Problem::invalid_form(detail)
    }
}

/// Install (or upgrade to) the version the page showed, accepting the permissions it showed.
async fn install(
    State(console): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
    write: Write,
) -> Response {
    let Write { page, form } = write;
    let accepted = form
        .get("permissions")
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .filter(Value::is_object);
    let (Some(accepted), Some(version)) = (accepted, form.get("version")) else {
        let problem = form_problem(
            None,
            "The form did not carry the version and permissions to accept. Reload the page and review them again."
                .into(),
        );
        return connector_page(&console, &page, &namespace, &name, &form, None, Some(problem)).await;
    };
    let mut body = json!({
        "package": format!("{namespace}/{name}"),
        "version": version,
        "accept_permissions": accepted,
    });
    if form.get("replace_publisher").is_some() {
        body["replace_publisher"] = json!(true);
    }
    match page.api.post("/connectors/from-marketplace", body).await {
        Ok(_) => done(
            "/console/connections",
            if form.get("upgrade").is_some() {
                "upgraded"
            } else {
                "installed"
            },
        ),
        Err(problem) => connector_page(&console, &page, &namespace, &name, &form, None, Some(problem)).await,
    }
}

/// The body of a review from its form (`stars`, `body`).
fn review_body(form: &Fields) -> Result<Value, Problem> {
    let stars = form
        .get("stars")
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| form_problem(Some("stars"), "Choose 1 to 5 stars.".into()))?;
    Ok(json!({ "stars": stars, "body": form.get("body").unwrap_or_default() }))
}

/// Rate a connector (again to edit the review).
async fn review_connector(
    State(console): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
    write: Write,
) -> Response {
    let Write { page, form } = write;
    let body = match review_body(&form) {
        Ok(body) => body,
        Err(problem) => return connector_page(&console, &page, &namespace, &name, &form, None, Some(problem)).await,
    };
    let path = format!("/marketplace/packages/{}/{}/reviews", seg(&namespace), seg(&name));
    match page.api.post(&path, body).await {
        Ok(_) => done(
            &format!("/console/marketplace/connectors/{}/{}", seg(&namespace), seg(&name)),
            "review_posted",
        ),
        Err(problem) => connector_page(&console, &page, &namespace, &name, &form, None, Some(problem)).await,
    }
}

/// One template's page.
async fn template(
    State(console): State<Shared>,
    page: Page,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let notice = notice(query.get("notice").map(String::as_str));
    template_page(&console, &page, &namespace, &name, &Fields::default(), notice, None).await
}

/// Render a template's page: what it needs and whether this workspace has it, its
/// variables, versions and reviews, and the use form (re-filled from `posted`, with each
/// field's problem beside it when a try failed).
async fn template_page(
    console: &Shared,
    page: &Page,
    namespace: &str,
    name: &str,
    posted: &Fields,
    notice: Option<&'static str>,
    problem: Option<Problem>,
) -> Response {
    let base = format!("/templates/{}/{}", seg(namespace), seg(name));
    let view = match page.api.get(&base).await {
        Ok(view) => view,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let reviews = page.api.get(&format!("{base}/reviews")).await.unwrap_or(Value::Null);
    let connections = data_of(page.api.get("/connections?limit=100").await);
    let installations = data_of(page.api.get("/connectors?limit=100").await);
    let context = json!({
        "nav": "marketplace",
        "notice": notice,
        "template": view,
        "reviews": reviews,
        "slots": slot_fields(&view, &connections, &installations, posted),
        "variables": variable_fields(&view["latest"]["variables"], posted),
        "webhook": view["latest"]["workflow"]["trigger"]["type"].as_str() == Some("webhook"),
        "field_errors": problem.as_ref().map(field_errors).unwrap_or_default(),
        "workflow_name": posted.raw("name"),
        "enabled": posted.get("enabled").is_some(),
        "review_stars": posted.get("stars"),
        "review_body": posted.raw("body"),
    });
    match problem {
        Some(problem) => show_problem(console, &page.session, "template.html", &problem, context),
        None => show(console, &page.session, "template.html", context),
    }
}

/// The template's slots, each with the workspace's connections that fit it (connections of
/// an installation from the slot's package), the one chosen (posted, or the only one), and
/// an installation to connect when none fits.
fn slot_fields(view: &Value, connections: &[Value], installations: &[Value], posted: &Fields) -> Vec<Value> {
    let Some(slots) = view["slots"].as_array() else {
        return Vec::new();
    };
    slots
        .iter()
        .map(|slot| {
            let name = slot["slot"].as_str().unwrap_or_default();
            let source = format!("marketplace:{}", slot["connector"].as_str().unwrap_or_default());
            let fitting: Vec<&str> = installations
                .iter()
                .filter(|i| i["source"].as_str() == Some(source.as_str()))
                .filter_map(|i| i["id"].as_str())
                .collect();
            let options: Vec<Value> = connections
                .iter()
                .filter(|c| c["installation_id"].as_str().is_some_and(|id| fitting.contains(&id)))
                .map(|c| json!({ "id": c["id"], "name": c["name"], "status": c["status"] }))
                .collect();
            let chosen = posted
                .get(&format!("slot.{name}"))
                .map(str::to_string)
                .or_else(|| match options.as_slice() {
                    [only] => only["id"].as_str().map(str::to_string),
                    _ => None,
                });
            let mut field = slot.clone();
            if let Some(fields) = field.as_object_mut() {
                fields.insert("options".into(), json!(options));
                fields.insert("chosen".into(), json!(chosen));
                fields.insert("installation_id".into(), json!(fitting.first()));
            }
            field
        })
        .collect()
}

/// The template's variables as form fields: type, description, whether required (as the
/// API decides: `required`, else when there is no default), the default as text, and the
/// posted value.
fn variable_fields(variables: &Value, posted: &Fields) -> Vec<Value> {
    let Some(variables) = variables.as_object() else {
        return Vec::new();
    };
    variables
        .iter()
        .map(|(name, v)| {
            let default = match &v["default"] {
                Value::Null => None,
                Value::String(text) => Some(text.clone()),
                other => Some(other.to_string()),
            };
            let required = v["required"].as_bool().unwrap_or(default.is_none());
            json!({
                "name": name,
                "type": v["type"],
                "description": v["description"],
                "required": required,
                "default": default,
                "choices": v["enum"],
                "pattern": v["pattern"],
                "minimum": v["minimum"],
                "maximum": v["maximum"],
                "value": posted.raw(&format!("var.{name}")),
            })
        })
        .collect()
}

/// The typed variable values a use form posted (`var.<name>`); blank fields are left out so
/// the template's defaults apply. Errors name the field.
fn variable_values(variables: &Value, form: &Fields) -> Result<Map<String, Value>, Problem> {
    let mut values = Map::new();
    let Some(variables) = variables.as_object() else {
        return Ok(values);
    };
    for (name, v) in variables {
        let Some(text) = form.get(&format!("var.{name}")) else {
            continue;
        };
        let path = format!("variables.{name}");
        let value = match v["type"].as_str().unwrap_or("string") {
            "number" => {
                number(text).ok_or_else(|| form_problem(Some(path.as_str()), format!("`{name}` must be a number")))?
            }
            "boolean" => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    return Err(form_problem(
                        Some(path.as_str()),
                        format!("`{name}` must be true or false"),
                    ));
                }
            },
            "json" => serde_json::from_str(text)
                .map_err(|e| form_problem(Some(path.as_str()), format!("`{name}` must be JSON: {e}")))?,
            _ => Value::String(text.to_string()),
        };
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// A number as JSON: whole numbers stay integers.
fn number(text: &str) -> Option<Value> {
    if let Ok(whole) = text.parse::<i64>() {
        return Some(Value::from(whole));
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

/// The messages of a problem's field errors, by the field's path (`connections.<slot>`,
/// `variables.<name>`, `name`, `trigger_secrets`).
fn field_errors(problem: &Problem) -> BTreeMap<String, String> {
    let mut by_path: BTreeMap<String, String> = BTreeMap::new();
    for error in problem.errors.as_ref().and_then(Value::as_array).into_iter().flatten() {
        if let (Some(path), Some(message)) = (error["path"].as_str(), error["message"].as_str()) {
            by_path
                .entry(path.to_string())
                .and_modify(|m| {
                    m.push_str("; ");
                    m.push_str(message);
                })
                .or_insert_with(|| message.to_string());
        }
    }
    by_path
}

/// Make a workflow from the template's latest version.
async fn use_template(
    State(console): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
    write: Write,
) -> Response {
    let Write { page, form } = write;
    let base = format!("/templates/{}/{}", seg(&namespace), seg(&name));
    let view = match page.api.get(&base).await {
        Ok(view) => view,
        Err(problem) => return failed(&console, &page.session, &problem),
    };
    let variables = match variable_values(&view["latest"]["variables"], &form) {
        Ok(values) => values,
        Err(problem) => return template_page(&console, &page, &namespace, &name, &form, None, Some(problem)).await,
    };
    let connections: Map<String, Value> = form
        .prefixed("slot.")
        .into_iter()
        .map(|(slot, id)| (slot, Value::String(id.trim().to_string())))
        .collect();
    let mut body = json!({
        "connections": connections,
        "variables": variables,
        "enabled": form.get("enabled").is_some(),
    });
    if let Some(workflow_name) = form.get("name") {
        body["name"] = json!(workflow_name);
    }
    let secrets: Vec<&str> = form
        .raw("trigger_secrets")
        .map(|text| text.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
        .unwrap_or_default();
    if !secrets.is_empty() {
        body["trigger_secrets"] = json!(secrets);
    }
    match page.api.post(&format!("{base}/use"), body).await {
        Ok(used) => {
            let id = used["workflow"]["id"].as_str().unwrap_or_default();
            done(&format!("/console/workflows/{}", seg(id)), "workflow_created")
        }
        Err(problem) => template_page(&console, &page, &namespace, &name, &form, None, Some(problem)).await,
    }
}

/// Rate a template (again to edit the review).
async fn review_template(
    State(console): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
    write: Write,
) -> Response {
    let Write { page, form } = write;
    let body = match review_body(&form) {
        Ok(body) => body,
        Err(problem) => return template_page(&console, &page, &namespace, &name, &form, None, Some(problem)).await,
    };
    let path = format!("/templates/{}/{}/reviews", seg(&namespace), seg(&name));
    match page.api.post(&path, body).await {
        Ok(_) => done(
            &format!("/console/marketplace/templates/{}/{}", seg(&namespace), seg(&name)),
            "review_posted",
        ),
        Err(problem) => template_page(&console, &page, &namespace, &name, &form, None, Some(problem)).await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_diff_names_added_and_removed_hosts() {
        let old = json!({
            "allowed_hosts": ["a.example", "b.example"],
            "auth": { "token": { "type": "bearer", "hosts": ["a.example"] } },
            "memory_mb": 64, "timeout_ms": 1000, "requests_per_second": 5,
        });
        let new = json!({
            "allowed_hosts": ["a.example", "c.example"],
            "auth": {
                "token": { "type": "bearer", "hosts": ["a.example", "c.example"] },
                "oauth": { "type": "oauth2", "hosts": ["c.example"], "scopes": ["read"] }
            },
            "memory_mb": 128, "timeout_ms": 1000, "requests_per_second": 5,
            "host_defaults": { "api_base": "https://c.example" },
        });
        let diff = permission_diff(&old, &new);
        assert_eq!(diff["changed"], json!(true));
        assert_eq!(diff["added_hosts"], json!(["c.example"]));
        assert_eq!(diff["removed_hosts"], json!(["b.example"]));
        assert_eq!(diff["added_auth"], json!(["oauth (oauth2)"]));
        assert_eq!(
            diff["added_credential_hosts"],
            json!(["oauth: c.example", "token: c.example"])
        );
        let other = diff["other"].to_string();
        assert!(other.contains("memory_mb: 64 → 128"), "{other}");
        assert!(
            other.contains("default of api_base: (none) → https://c.example"),
            "{other}"
        );
        assert_eq!(permission_diff(&new, &new)["changed"], json!(false));
    }

    #[test]
    fn use_form_values_are_typed_and_blank_ones_left_out() {
        let variables = json!({
            "channel": { "type": "string", "description": "c" },
            "threshold": { "type": "number", "description": "t" },
            "loud": { "type": "boolean", "description": "l" },
            "extra": { "type": "json", "description": "e" },
            "unused": { "type": "string", "description": "u", "default": "x" },
        });
        let form = Fields::parse(
            b"var.channel=%23ops&var.threshold=2.5&var.loud=true&var.extra=%7B%22a%22%3A1%7D&var.unused=",
        );
        let values = variable_values(&variables, &form).unwrap();
        assert_eq!(
            Value::Object(values),
            json!({ "channel": "#ops", "threshold": 2.5, "loud": true, "extra": { "a": 1 } })
        );
        let bad = Fields::parse(b"var.threshold=many");
        let problem = variable_values(&variables, &bad).unwrap_err();
        assert_eq!(
            field_errors(&problem)["variables.threshold"],
            "`threshold` must be a number"
        );
    }

    #[test]
    fn versions_compare_by_semver() {
        assert!(newer("0.10.0", "0.9.1"));
        assert!(!newer("0.9.1", "0.10.0"));
        assert!(!newer("1.0.0", "1.0.0"));
    }
}
