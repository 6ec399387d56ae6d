//! Connections: the list with health, connecting (a form generated from the connector's auth
//! schemes and variables, or the OAuth sign-in), testing, reconnecting and deleting.

use super::super::Shared;
use super::super::extract::{Page, Write};
use super::super::forms::Fields;
use super::{done, failed, notice, seg, show, show_problem};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// The routes of this area.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/console/connections", get(list).post(create))
        .route("/console/connections/new", get(new))
        .route("/console/connections/oauth", post(start_oauth))
        .route("/console/connections/{id}", get(detail))
        .route("/console/connections/{id}/test", post(test))
        .route("/console/connections/{id}/reconnect", post(reconnect))
        .route("/console/connections/{id}/delete", post(remove))
}

/// Every connection with its status, last check, last use and usage; the installed
/// connectors to connect.
async fn list(State(console): State<Shared>, page: Page, Query(query): Query<HashMap<String, String>>) -> Response {
    let connections = match page.api.get("/connections?limit=100").await {
        Ok(list) => list,
        Err(problem) => return failed(&console, &page.session, &problem),
    };
    let installed = page.api.get("/connectors?limit=100").await.unwrap_or(Value::Null);
    show(
        &console,
        &page.session,
        "connections.html",
        json!({
            "nav": "connections",
            "notice": notice(query.get("notice").map(String::as_str)),
            "connections": connections["data"],
            "connectors": installed["data"],
        }),
    )
}

/// The connect form of one installed connector.
async fn new(State(console): State<Shared>, page: Page, Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(connector) = query.get("connector") else {
        return Redirect::to("/console/connections").into_response();
    };
    connect_form(&console, &page, connector, &Fields::default(), None).await
}

/// Render the connect form, with what was posted and the API's problem when a try failed.
async fn connect_form(
    console: &Shared,
    page: &Page,
    connector: &str,
    posted: &Fields,
    problem: Option<super::super::client::Problem>,
) -> Response {
    let installation = match installation_of(page, connector).await {
        Ok(i) => i,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let variables: Vec<Value> = installation["variables"]
        .as_object()
        .map(|vars| {
            vars.iter()
                .map(|(name, v)| {
                    json!({
                        "name": name,
                        "description": v["description"],
                        "value": posted.raw(&format!("var.{name}")).map(str::to_string).or_else(|| v["default"].as_str().map(str::to_string)),
                        "required": v["default"].is_null(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let context = json!({
        "nav": "connections",
        "installation": installation,
        "variables": variables,
        "name": posted.raw("name"),
        "chosen_scheme": posted.get("auth_scheme"),
    });
    match problem {
        Some(problem) => show_problem(console, &page.session, "connect.html", &problem, context),
        None => show(console, &page.session, "connect.html", context),
    }
}

/// An installed connector by its `plg_…` id or its connector id (`slack`).
async fn installation_of(page: &Page, connector: &str) -> Result<Value, super::super::client::Problem> {
    if connector.starts_with("plg_") {
        return page.api.get(&format!("/connectors/{}", seg(connector))).await;
    }
    let installed = page.api.get("/connectors?limit=100").await?;
    installed["data"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["connector_id"] == connector))
        .cloned()
        .ok_or_else(|| {
            super::super::client::Problem::not_found("not_found", format!("no installed connector `{connector}`"))
        })
}

/// The variables a connect form posted (`var.<name>`).
fn variables(form: &Fields) -> BTreeMap<String, String> {
    form.prefixed("var.").into_iter().collect()
}

/// Create a connection with a secret-field scheme.
async fn create(State(console): State<Shared>, write: Write) -> Response {
    let Write { page, form } = write;
    let connector = form.get("connector").unwrap_or_default().to_string();
    let scheme = form.get("auth_scheme").map(str::to_string);
    // Only the chosen scheme's fields are sent (`cred.<scheme>.<field>`); secrets untrimmed.
    let credentials: Map<String, Value> = match &scheme {
        Some(s) => form
            .prefixed(&format!("cred.{s}."))
            .into_iter()
            .map(|(field, value)| (field, Value::String(value)))
            .collect(),
        None => Map::new(),
    };
    let mut body = json!({
        "connector": connector,
        "name": form.get("name").unwrap_or_default(),
        "credentials": credentials,
        "variables": variables(&form),
    });
    if let Some(scheme) = scheme {
        body["auth_scheme"] = json!(scheme);
    }
    match page.api.post("/connections", body).await {
        Ok(created) => {
            let id = created["id"].as_str().unwrap_or_default();
            done(&format!("/console/connections/{}", seg(id)), "connected")
        }
        Err(problem) => connect_form(&console, &page, &connector, &form, Some(problem)).await,
    }
}

/// Start an OAuth sign-in (new connection or reconnect) and send the browser on to it.
async fn start_oauth(State(console): State<Shared>, write: Write) -> Response {
    let Write { page, form } = write;
    let return_url = format!(
        "{}/console/oauth/return",
        console
            .state
            .oauth
            .redirect_uri()
            .trim_end_matches("/api/v1/oauth/callback")
    );
    let mut body = json!({ "return_url": return_url });
    if let Some(id) = form.get("connection_id") {
        body["connection_id"] = json!(id);
    } else {
        body["connector"] = json!(form.get("connector").unwrap_or_default());
        body["name"] = json!(form.get("name").unwrap_or_default());
        body["variables"] = json!(variables(&form));
    }
    if let Some(scheme) = form.get("auth_scheme") {
        body["auth_scheme"] = json!(scheme);
    }
    match page.api.post("/connections/oauth/authorize", body).await {
        Ok(flow) => match flow["authorization_url"].as_str() {
            Some(url) => Redirect::to(url).into_response(),
            None => Redirect::to("/console/connections").into_response(),
        },
        Err(problem) => match form.get("connection_id") {
            Some(id) => detail_page(&console, &page, id, None, Some(problem)).await,
            None => {
                connect_form(
                    &console,
                    &page,
                    form.get("connector").unwrap_or_default(),
                    &form,
                    Some(problem),
                )
                .await
            }
        },
    }
}

/// Where the provider's sign-in ends: says how it went and links back. Needs no session
/// (the SameSite=Strict cookie does not come along on a navigation from the provider).
pub async fn oauth_return(State(console): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let ok = query.get("status").is_some_and(|s| s == "connected");
    super::super::render::render(
        &console.templates,
        axum::http::StatusCode::OK,
        "message.html",
        None,
        json!({
            "title": if ok { "Connected" } else { "The sign-in did not complete" },
            "message": if ok { "The account is connected.".to_string() } else { format!("The provider or Nexum reported: {}", error_code(query.get("error"))) },
            "link": query.get("connection_id").filter(|id| id.starts_with("conn_") && id.len() < 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).map(|id| format!("/console/connections/{id}")).unwrap_or_else(|| "/console/connections".into()),
            "link_text": "Go to the connection",
        }),
    )
}

/// An error code from the return URL, shown only when it looks like one (`access_denied`),
/// so a crafted link cannot put sentences on a Nexum page.
fn error_code(error: Option<&String>) -> &str {
    error
        .map(String::as_str)
        .filter(|e| !e.is_empty() && e.len() <= 64 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .unwrap_or("no reason given")
}

/// One connection: health, usage, its actions, and the buttons.
async fn detail(
    State(console): State<Shared>,
    page: Page,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let notice = notice(query.get("notice").map(String::as_str));
    detail_page(&console, &page, &id, notice.map(|n| json!({ "notice": n })), None).await
}

/// Render a connection's page, with a test result or a problem when there is one.
async fn detail_page(
    console: &Shared,
    page: &Page,
    id: &str,
    extra: Option<Value>,
    problem: Option<super::super::client::Problem>,
) -> Response {
    let connection = match page.api.get(&format!("/connections/{}", seg(id))).await {
        Ok(c) => c,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let installation = page
        .api
        .get(&format!(
            "/connectors/{}",
            seg(connection["installation_id"].as_str().unwrap_or_default())
        ))
        .await
        .unwrap_or(Value::Null);
    let mut context = json!({ "nav": "connections", "connection": connection, "installation": installation });
    if let (Value::Object(base), Some(Value::Object(extra))) = (&mut context, extra) {
        base.extend(extra);
    }
    match problem {
        Some(problem) => show_problem(console, &page.session, "connection.html", &problem, context),
        None => show(console, &page.session, "connection.html", context),
    }
}

/// Run test-connection and show what it found.
async fn test(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let page = write.page;
    match page
        .api
        .post(&format!("/connections/{}/test", seg(&id)), json!({}))
        .await
    {
        Ok(report) => detail_page(&console, &page, &id, Some(json!({ "test": report })), None).await,
        Err(problem) => detail_page(&console, &page, &id, None, Some(problem)).await,
    }
}

/// Replace the secret fields (a secret-field scheme; OAuth reconnects go through `oauth`).
async fn reconnect(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let Write { page, form } = write;
    let credentials: Map<String, Value> = form
        .prefixed("cred.")
        .into_iter()
        .map(|(field, value)| (field, Value::String(value)))
        .collect();
    match page
        .api
        .patch(
            &format!("/connections/{}", seg(&id)),
            json!({ "credentials": credentials }),
        )
        .await
    {
        Ok(_) => done(&format!("/console/connections/{}", seg(&id)), "reconnected"),
        Err(problem) => detail_page(&console, &page, &id, None, Some(problem)).await,
    }
}

/// Delete the connection.
async fn remove(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let page = write.page;
    match page.api.delete(&format!("/connections/{}", seg(&id))).await {
        Ok(_) => done("/console/connections", "disconnected"),
        Err(problem) => detail_page(&console, &page, &id, None, Some(problem)).await,
    }
}
