//! Admin: the workspace's API keys (created with the secret shown once, revoked), its members
//! (added, given another role, removed) and the audit log. Every call needs the `admin` scope;
//! the API refuses the rest and the page shows its answer.

use super::super::Shared;
use super::super::client::Problem;
use super::super::extract::{Page, Write};
use super::super::forms::Fields;
use super::{done, failed, notice, pass_query, seg, show, show_problem};
use crate::auth::{ALL_SCOPES, Scope};
use crate::store::now_ms;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The roles a member can have, most powerful first (the API's `Role`).
const ROLES: &[&str] = &["owner", "admin", "member", "viewer"];

/// The optional numeric settings of a new key: form field (also the API's field) and label.
const KEY_NUMBERS: &[(&str, &str)] = &[
    ("expires_in_days", "Expires in (days)"),
    ("rate_limit_per_minute", "Requests per minute"),
    ("quota_per_hour", "Requests per hour"),
    ("quota_per_day", "Requests per day"),
];

/// The routes of this area.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/console/admin", get(admin))
        .route(
            "/console/admin/keys",
            get(|| async { Redirect::to("/console/admin") }).post(create_key),
        )
        .route("/console/admin/keys/{id}/revoke", post(revoke_key))
        .route(
            "/console/admin/members",
            get(|| async { Redirect::to("/console/admin") }).post(add_member),
        )
        .route("/console/admin/members/{id}/role", post(change_role))
        .route("/console/admin/members/{id}/remove", post(remove_member))
        .route("/console/admin/audit", get(audit))
}

/// API keys and members, with their forms.
async fn admin(State(console): State<Shared>, page: Page, Query(query): Query<HashMap<String, String>>) -> Response {
    let extra = json!({ "notice": notice(query.get("notice").map(String::as_str)) });
    admin_page(&console, &page, &query, &Fields::default(), extra, None).await
}

/// Render the admin page: the keys and members (from the cursors in `query`), the create
/// forms re-filled from `posted`, `extra` context (a notice, a new key) and a problem.
async fn admin_page(
    console: &Shared,
    page: &Page,
    query: &HashMap<String, String>,
    posted: &Fields,
    extra: Value,
    problem: Option<Problem>,
) -> Response {
    let keys_cursor = cursor(query, "keys_cursor");
    let members_cursor = cursor(query, "members_cursor");
    let showing_new_key = extra.get("new_key").is_some();
    let (mut keys, keys_problem) = match page.api.get(&listing("/api-keys", keys_cursor)).await {
        Ok(keys) => (keys, None),
        // A key just created is shown even when the listing fails: it is never shown again.
        Err(problem) if showing_new_key => (Value::Null, Some(problem)),
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let (mut members, members_problem) = match page.api.get(&listing("/members", members_cursor)).await {
        Ok(members) => (members, None),
        Err(problem) => (Value::Null, Some(problem)),
    };
    let current = page.api.get("/api-keys/current").await.unwrap_or_default();
    let rows = key_rows(take_data(&mut keys), current["id"].as_str(), now_ms());
    let chosen = posted.all("scope");
    let scopes: Vec<Value> = ALL_SCOPES
        .iter()
        .map(|scope| {
            json!({
                "name": scope.as_str(),
                "description": describe(*scope),
                "chosen": chosen.iter().any(|c| c == scope.as_str()),
            })
        })
        .collect();
    let mut context = json!({
        "nav": "admin",
        "keys": rows,
        "keys_problem": keys_problem,
        "keys_next": keys["next_cursor"].as_str().map(|next| admin_link(Some(next), members_cursor)),
        "keys_first": keys_cursor.map(|_| admin_link(None, members_cursor)),
        "members": take_data(&mut members),
        "members_problem": members_problem,
        "members_next": members["next_cursor"].as_str().map(|next| admin_link(keys_cursor, Some(next))),
        "members_first": members_cursor.map(|_| admin_link(keys_cursor, None)),
        "scopes": scopes,
        "roles": ROLES,
        "form": {
            "name": posted.raw("name"),
            "expires_in_days": posted.get("expires_in_days"),
            "rate_limit_per_minute": posted.get("rate_limit_per_minute"),
            "quota_per_hour": posted.get("quota_per_hour"),
            "quota_per_day": posted.get("quota_per_day"),
            "email": posted.get("email"),
            "member_name": posted.raw("member_name"),
            "member_role": posted.get("member_role"),
        },
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut context, extra) {
        base.extend(extra);
    }
    match problem {
        Some(problem) => show_problem(console, &page.session, "admin.html", &problem, context),
        None => show(console, &page.session, "admin.html", context),
    }
}

/// Create a key and show it, this once, on the admin page (no redirect: the secret is in
/// this answer only).
async fn create_key(State(console): State<Shared>, write: Write) -> Response {
    let Write { page, form } = write;
    let none = HashMap::new();
    let body = match key_body(&form) {
        Ok(body) => body,
        Err(problem) => return admin_page(&console, &page, &none, &form, json!({}), Some(problem)).await,
    };
    match page.api.post("/api-keys", body).await {
        Ok(created) => {
            let extra = json!({
                "notice": "API key created.",
                "new_key": created["key"],
                "new_key_record": created["api_key"],
            });
            admin_page(&console, &page, &none, &Fields::default(), extra, None).await
        }
        Err(problem) => admin_page(&console, &page, &none, &form, json!({}), Some(problem)).await,
    }
}

/// Revoke a key (and every key minted from it).
async fn revoke_key(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let page = write.page;
    match page.api.delete(&format!("/api-keys/{}", seg(&id))).await {
        Ok(_) => done("/console/admin", "key_revoked"),
        Err(problem) => refused(&console, &page, problem).await,
    }
}

/// The admin page again, with the API's refusal of a button's write.
async fn refused(console: &Shared, page: &Page, problem: Problem) -> Response {
    admin_page(
        console,
        page,
        &HashMap::new(),
        &Fields::default(),
        json!({}),
        Some(problem),
    )
    .await
}

/// Add a member.
async fn add_member(State(console): State<Shared>, write: Write) -> Response {
    let Write { page, form } = write;
    let body = json!({
        "email": form.get("email").unwrap_or_default(),
        "name": form.get("member_name").unwrap_or_default(),
        "role": form.get("member_role").unwrap_or_default(),
    });
    match page.api.post("/members", body).await {
        Ok(_) => done("/console/admin", "member_added"),
        Err(problem) => admin_page(&console, &page, &HashMap::new(), &form, json!({}), Some(problem)).await,
    }
}

/// Give a member another role.
async fn change_role(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let Write { page, form } = write;
    let body = json!({ "role": form.get("role").unwrap_or_default() });
    match page.api.patch(&format!("/members/{}", seg(&id)), body).await {
        Ok(_) => done("/console/admin", "member_updated"),
        Err(problem) => refused(&console, &page, problem).await,
    }
}

/// Remove a member (the API revokes their keys with them).
async fn remove_member(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let page = write.page;
    match page.api.delete(&format!("/members/{}", seg(&id))).await {
        Ok(_) => done("/console/admin", "member_removed"),
        Err(problem) => refused(&console, &page, problem).await,
    }
}

/// The audit log, a page at a time (oldest first), with the page size the API takes.
async fn audit(State(console): State<Shared>, page: Page, Query(query): Query<HashMap<String, String>>) -> Response {
    let path = format!("/audit-log{}", pass_query(&query, &["limit", "cursor"]));
    let (mut list, problem) = match page.api.get(&path).await {
        Ok(list) => (list, None),
        // A bad page size or cursor: keep the form on screen to correct it.
        Err(problem) if matches!(problem.status, 400 | 422) => (Value::Null, Some(problem)),
        Err(problem) => return failed(&console, &page.session, &problem),
    };
    let keys = page.api.get("/api-keys?limit=100").await.unwrap_or_default();
    let entries = audit_rows(take_data(&mut list), &key_names(&keys));
    let limit = query.get("limit").map(|l| l.trim()).filter(|l| !l.is_empty());
    let context = json!({
        "nav": "admin",
        "entries": entries,
        "limit": limit,
        "next": list["next_cursor"].as_str().map(|next| audit_link(limit, Some(next))),
        "first": cursor(&query, "cursor").map(|_| audit_link(limit, None)),
    });
    match problem {
        Some(problem) => show_problem(&console, &page.session, "audit.html", &problem, context),
        None => show(&console, &page.session, "audit.html", context),
    }
}

/// The body of `POST /api-keys` from the create form; a number that does not parse is named.
fn key_body(form: &Fields) -> Result<Value, Problem> {
    let mut body = json!({
        "name": form.get("name").unwrap_or_default(),
        "scopes": form.all("scope"),
    });
    for (field, label) in KEY_NUMBERS {
        if let Some(text) = form.get(field) {
            let number = text
                .parse::<u32>()
                .map_err(|_| invalid_form(format!("{label} must be a whole number from 0 to 4294967295")))?;
            body[*field] = json!(number);
        }
    }
    Ok(body)
}

/// A form error found before calling the API.
fn invalid_form(detail: String) -> Problem {
    Problem::invalid_form(detail)
}

/// What a scope allows, for the create form.
fn describe(scope: Scope) -> &'static str {
    match scope {
        Scope::ConnectionsRead => "read connectors, connections, members and usage",
        Scope::ConnectionsWrite => "install connectors; create, change, test and delete connections",
        Scope::ActionsExecute => "run connector actions",
        Scope::MarketplacePublish => "publish to the marketplace",
        Scope::WebhooksWrite => "manage webhook endpoints and REST hooks",
        Scope::WorkflowsWrite => "create, change and delete workflows",
        Scope::Admin => "manage members, API keys and the audit log",
        Scope::WorkspacesCreate => "create new workspaces (operator keys only)",
    }
}

/// A non-blank cursor of the page's query.
fn cursor<'a>(query: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    query.get(name).map(|c| c.trim()).filter(|c| !c.is_empty())
}

/// An API listing path: the largest page, from `cursor` when there is one.
fn listing(path: &str, cursor: Option<&str>) -> String {
    match cursor {
        Some(cursor) => format!("{path}?limit=100&cursor={}", seg(cursor)),
        None => format!("{path}?limit=100"),
    }
}

/// Take a listing's `data` out of it (`null` when it has none).
fn take_data(list: &mut Value) -> Value {
    list.get_mut("data").map(Value::take).unwrap_or_default()
}

/// The admin page at the given key and member cursors.
fn admin_link(keys_cursor: Option<&str>, members_cursor: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(c) = keys_cursor {
        query.append_pair("keys_cursor", c);
    }
    if let Some(c) = members_cursor {
        query.append_pair("members_cursor", c);
    }
    let text = query.finish();
    if text.is_empty() {
        "/console/admin".to_string()
    } else {
        format!("/console/admin?{text}")
    }
}

/// The audit page with a page size and cursor.
fn audit_link(limit: Option<&str>, cursor: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(l) = limit {
        query.append_pair("limit", l);
    }
    if let Some(c) = cursor {
        query.append_pair("cursor", c);
    }
    let text = query.finish();
    if text.is_empty() {
        "/console/admin/audit".to_string()
    } else {
        format!("/console/admin/audit?{text}")
    }
}

/// The keys of a listing, each with its `state` (`active`, `expired`, `revoked`) and whether
/// it is the key this session signed in with (`current`).
fn key_rows(data: Value, current: Option<&str>, now: i64) -> Value {
    let Value::Array(items) = data else {
        return json!([]);
    };
    items
        .into_iter()
        .map(|mut key| {
            let state = if !key["revoked_at"].is_null() {
                "revoked"
            } else if key["expires_at"].as_i64().is_some_and(|at| at <= now) {
                "expired"
            } else {
                "active"
            };
            let is_current = current.is_some() && key["id"].as_str() == current;
            if let Some(fields) = key.as_object_mut() {
                fields.insert("state".into(), json!(state));
                fields.insert("current".into(), json!(is_current));
            }
            key
        })
        .collect()
}

/// Key id → name, from a key listing (to name the actors of the audit log).
fn key_names(list: &Value) -> HashMap<String, String> {
    list["data"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| Some((k["id"].as_str()?.to_string(), k["name"].as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The audit entries, each with its actor's key name (`actor_name`) when known and its detail
/// parsed (`detail_json`) when it is a JSON object or array.
fn audit_rows(data: Value, names: &HashMap<String, String>) -> Value {
    let Value::Array(items) = data else {
        return json!([]);
    };
    items
        .into_iter()
        .map(|mut entry| {
            let detail_json = entry["detail"]
                .as_str()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .filter(|v| v.is_object() || v.is_array());
            let actor_name = entry["actor"].as_str().and_then(|a| names.get(a)).cloned();
            if let Some(fields) = entry.as_object_mut() {
                if let Some(json) = detail_json {
                    fields.insert("detail_json".into(), json);
                }
                if let Some(name) = actor_name {
                    fields.insert("actor_name".into(), Value::String(name));
                }
            }
            entry
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_create_form_becomes_the_api_body() {
        let form = Fields::parse(b"name=+ci+&scope=connections%3Aread&scope=actions%3Aexecute&expires_in_days=30&rate_limit_per_minute=&quota_per_day=500");
        assert_eq!(
            key_body(&form).unwrap(),
            json!({ "name": "ci", "scopes": ["connections:read", "actions:execute"], "expires_in_days": 30, "quota_per_day": 500 })
        );
        let form = Fields::parse(b"name=ci&quota_per_hour=lots");
        assert_eq!(
            key_body(&form).unwrap_err().detail,
            "Requests per hour must be a whole number from 0 to 4294967295"
        );
    }

    #[test]
    fn keys_get_a_state_and_the_current_one_is_marked() {
        let rows = key_rows(
            json!([
                { "id": "key_a", "revoked_at": 5, "expires_at": null },
                { "id": "key_b", "revoked_at": null, "expires_at": 10 },
                { "id": "key_c", "revoked_at": null, "expires_at": null }
            ]),
            Some("key_c"),
            20,
        );
        let states: Vec<_> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["state"].as_str().unwrap(), k["current"].as_bool().unwrap()))
            .collect();
        assert_eq!(states, [("revoked", false), ("expired", false), ("active", true)]);
        assert_eq!(key_rows(Value::Null, None, 0), json!([]));
    }

    #[test]
    fn audit_entries_name_their_actor_and_parse_json_detail() {
        let names = HashMap::from([("key_a".to_string(), "ops".to_string())]);
        let rows = audit_rows(
            json!([
                { "actor": "key_a", "detail": "{\"x\":1}" },
                { "actor": "system", "detail": "member removed" }
            ]),
            &names,
        );
        assert_eq!(rows[0]["actor_name"], "ops");
        assert_eq!(rows[0]["detail_json"], json!({ "x": 1 }));
        assert!(rows[1].get("actor_name").is_none());
        assert!(rows[1].get("detail_json").is_none());
    }

    #[test]
    fn links_keep_the_other_cursor() {
        assert_eq!(admin_link(None, None), "/console/admin");
        assert_eq!(
            admin_link(Some("key_1"), Some("mem 2")),
            "/console/admin?keys_cursor=key_1&members_cursor=mem+2"
        );
        assert_eq!(
            audit_link(Some("20"), Some("aud_9")),
            "/console/admin/audit?limit=20&cursor=aud_9"
        );
        assert_eq!(listing("/members", Some("mem_1")), "/members?limit=100&cursor=mem_1");
    }
}
