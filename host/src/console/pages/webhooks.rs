//! Webhooks: the workspace's endpoints with their state and health, the event catalogue,
//! adding an endpoint (its signing secret shown once, on the answer to the form), and one
//! endpoint's settings, test event, secret rotation, recovery of failed deliveries, deletion
//! and delivery log.
//!
//! The API lists no endpoint's messages, so the delivery log shows the messages the page
//! knows of: the test events sent from it, the messages retried from it and any message
//! looked up by id (the `webhook-id` a receiver logs). They travel in the page's
//! `?messages=` query (`msg_…` or `msg_…:event.type`, comma-separated), and each one's
//! attempts are read from `GET /webhooks/messages/{id}/attempts`.

use super::super::Shared;
use super::super::client::Problem;
use super::super::extract::{Page, Write};
use super::super::forms::Fields;
use super::{done, failed, notice, seg, show, show_problem};
use crate::store::now_ms;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// Most messages one endpoint page's delivery log shows (each costs an API call).
const MAX_LOGGED: usize = 20;

/// How far back "Recover failed deliveries" looks: hours, and the words for them.
const RECOVER_WINDOWS: &[(i64, &str)] = &[
    (1, "the last hour"),
    (6, "the last 6 hours"),
    (24, "the last 24 hours"),
    (72, "the last 3 days"),
    (168, "the last 7 days"),
];

/// How long a rotated-out secret keeps signing: seconds, and the words for them.
const GRACE_PERIODS: &[(u64, &str)] = &[
    (0, "No overlap: the old secret stops now"),
    (3_600, "1 hour"),
    (86_400, "1 day (the default)"),
    (604_800, "7 days"),
];

/// The routes of this area.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/console/webhooks", get(list).post(create))
        .route("/console/webhooks/{id}", get(detail))
        .route("/console/webhooks/{id}/edit", post(edit))
        .route("/console/webhooks/{id}/test", post(test))
        .route("/console/webhooks/{id}/rotate", post(rotate))
        .route("/console/webhooks/{id}/recover", post(recover))
        .route("/console/webhooks/{id}/delete", post(remove))
        .route("/console/webhooks/{id}/messages/{message}/retry", post(retry))
}

/// Every endpoint with its state and health, the form to add one, and the event catalogue.
async fn list(State(console): State<Shared>, page: Page, Query(query): Query<HashMap<String, String>>) -> Response {
    let extra = json!({ "notice": notice(query.get("notice").map(String::as_str)) });
    list_page(&console, &page, &Fields::default(), extra, None).await
}

/// Render the list, the add form re-filled from `posted`, `extra` context and a problem.
async fn list_page(console: &Shared, page: &Page, posted: &Fields, extra: Value, problem: Option<Problem>) -> Response {
    let endpoints = match page.api.get("/webhooks/endpoints").await {
        Ok(list) => list,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let catalogue = page.api.get("/event-types").await.unwrap_or(Value::Null);
    let mut context = json!({
        "nav": "webhooks",
        "endpoints": endpoints["data"],
        "event_types": catalogue_rows(&catalogue, &posted.all("event_types")),
        "opt_in": opt_in_types(&catalogue),
        "form": {
            "url": posted.get("url"),
            "description": posted.raw("description"),
            "rate_limit_per_sec": posted.get("rate_limit_per_sec"),
        },
    });
    merge(&mut context, extra);
    match problem {
        Some(problem) => show_problem(console, &page.session, "webhooks.html", &problem, context),
        None => show(console, &page.session, "webhooks.html", context),
    }
}

/// Add an endpoint and show its page with the signing secret, this once (no redirect: the
/// secret is in this answer only).
async fn create(State(console): State<Shared>, write: Write) -> Response {
    let Write { page, form } = write;
    let body = match create_body(&form) {
        Ok(body) => body,
        Err(problem) => return list_page(&console, &page, &form, json!({}), Some(problem)).await,
    };
    match page.api.post("/webhooks/endpoints", body).await {
        Ok(created) => {
            let id = created["endpoint"]["id"].as_str().unwrap_or_default().to_string();
            let extra = json!({
                "notice": notice(Some("endpoint_created")),
                "secret": created["secret"],
                "endpoint": created["endpoint"],
            });
            endpoint_page(&console, &page, &id, "", extra, None).await
        }
        Err(problem) => list_page(&console, &page, &form, json!({}), Some(problem)).await,
    }
}

/// One endpoint: settings, its buttons and forms, and the delivery log of the messages in
/// `?messages=` (plus `?message=`, one looked up by id).
async fn detail(
    State(console): State<Shared>,
    page: Page,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut extra = json!({ "notice": notice(query.get("notice").map(String::as_str)) });
    if let Some(queued) = query.get("queued").and_then(|q| q.parse::<u64>().ok()) {
        extra["recovered"] = json!({
            "queued": queued,
            "more": query.get("more").is_some_and(|m| m == "true"),
        });
    }
    let shown = query.get("messages").map(String::as_str).unwrap_or_default();
    let looked_up = query.get("message").map(|m| m.trim()).filter(|m| !m.is_empty());
    let (log, problem) = match looked_up {
        Some(message) if message_id_ok(message) => (format!("{message},{shown}"), None),
        Some(_) => (
            shown.to_string(),
            Some(invalid(
                "that is not a message id: message ids start with `msg_` (the `webhook-id` header of a delivery)",
            )),
        ),
        None => (shown.to_string(), None),
    };
    endpoint_page(&console, &page, &id, &log, extra, problem).await
}

/// Render an endpoint's page: its delivery log from `log` (a `?messages=` value), `extra`
/// context (a notice, a secret, the endpoint when the caller has it, posted edits) and a
/// problem.
async fn endpoint_page(
    console: &Shared,
    page: &Page,
    id: &str,
    log: &str,
    mut extra: Value,
    problem: Option<Problem>,
) -> Response {
    let known = extra
        .as_object_mut()
        .and_then(|fields| fields.remove("endpoint"))
        .filter(Value::is_object);
    let endpoint = match known {
        Some(endpoint) => endpoint,
        None => match page.api.get(&format!("/webhooks/endpoints/{}", seg(id))).await {
            Ok(endpoint) => endpoint,
            Err(problem) => return failed(console, &page.session, &problem),
        },
    };
    let endpoint_id = endpoint["id"].as_str().unwrap_or(id).to_string();
    let catalogue = page.api.get("/event-types").await.unwrap_or(Value::Null);
    let types = known_types(&catalogue);
    let entries = parse_log(log);
    let log_rows = deliveries(page, &endpoint_id, &entries, &types).await;
    let edit = match extra
        .as_object_mut()
        .and_then(|fields| fields.remove("edit"))
        .filter(Value::is_object)
    {
        Some(posted) => posted,
        None => json!({
            "url": endpoint["url"],
            "description": endpoint["description"],
            "rate_limit_per_sec": endpoint["rate_limit_per_sec"],
            "disabled": endpoint["disabled"],
            "event_types": endpoint["event_types"],
        }),
    };
    let recover_windows: Vec<Value> = RECOVER_WINDOWS
        .iter()
        .map(|(hours, label)| json!({ "hours": hours, "label": label }))
        .collect();
    let grace_periods: Vec<Value> = GRACE_PERIODS
        .iter()
        .map(|(secs, label)| json!({ "secs": secs, "label": label }))
        .collect();
    let mut context = json!({
        "nav": "webhooks",
        "endpoint": endpoint,
        "event_types": catalogue_rows(&catalogue, &strings(&edit["event_types"])),
        "opt_in": opt_in_types(&catalogue),
        "edit": edit,
        "deliveries": log_rows,
        "messages": log_param(&entries),
        "recover_windows": recover_windows,
        "grace_periods": grace_periods,
    });
    merge(&mut context, extra);
    match problem {
        Some(problem) => show_problem(console, &page.session, "endpoint.html", &problem, context),
        None => show(console, &page.session, "endpoint.html", context),
    }
}

/// Change the endpoint: only what the form changed is sent (so saving an enabled endpoint
/// does not restart its failure clock, nor an unchanged URL drop its custom headers).
async fn edit(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let Write { page, form } = write;
    let shown = form.get("messages").unwrap_or_default().to_string();
    let current = match page.api.get(&format!("/webhooks/endpoints/{}", seg(&id))).await {
        Ok(endpoint) => endpoint,
        Err(problem) => return failed(&console, &page.session, &problem),
    };
    let posted = json!({ "edit": posted_edit(&form) });
    let body = match changes(&current, &form) {
        Ok(body) => body,
        Err(problem) => return endpoint_page(&console, &page, &id, &shown, posted, Some(problem)).await,
    };
    match page.api.patch(&format!("/webhooks/endpoints/{}", seg(&id)), body).await {
        Ok(_) => done(&endpoint_link(&id, &log_param(&parse_log(&shown))), "endpoint_updated"),
        Err(problem) => endpoint_page(&console, &page, &id, &shown, posted, Some(problem)).await,
    }
}

/// Send the chosen type's example event to this endpoint only; its message joins the
/// delivery log.
async fn test(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let Write { page, form } = write;
    let shown = form.get("messages").unwrap_or_default().to_string();
    let event_type = form.get("event_type").unwrap_or("connection.created").to_string();
    let body = json!({ "event_type": event_type });
    match page
        .api
        .post(&format!("/webhooks/endpoints/{}/test", seg(&id)), body)
        .await
    {
        Ok(sent) => {
            let message = sent["message_id"].as_str().unwrap_or_default();
            let log = log_param(&parse_log(&format!("{message}:{event_type},{shown}")));
            done(&endpoint_link(&id, &log), "test_sent")
        }
        Err(problem) => endpoint_page(&console, &page, &id, &shown, json!({}), Some(problem)).await,
    }
}

/// Rotate the signing secret and show the new one, this once.
async fn rotate(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let Write { page, form } = write;
    let shown = form.get("messages").unwrap_or_default().to_string();
    let mut body = Map::new();
    if let Some(grace) = form.get("grace_period_secs") {
        match grace.parse::<u64>() {
            Ok(secs) => {
                body.insert("grace_period_secs".into(), json!(secs));
            }
            Err(_) => {
                let problem = invalid("the grace period must be a whole number of seconds");
                return endpoint_page(&console, &page, &id, &shown, json!({}), Some(problem)).await;
            }
        }
    }
    match page
        .api
        .post(
            &format!("/webhooks/endpoints/{}/secret/rotate", seg(&id)),
            Value::Object(body),
        )
        .await
    {
        Ok(rotated) => {
            let extra = json!({
                "notice": notice(Some("secret_rotated")),
                "secret": rotated["secret"],
                "previous_valid_until": rotated["previous_valid_until"],
                "endpoint": rotated["endpoint"],
            });
            endpoint_page(&console, &page, &id, &shown, extra, None).await
        }
        Err(problem) => endpoint_page(&console, &page, &id, &shown, json!({}), Some(problem)).await,
    }
}

/// Queue again every message that failed to reach this endpoint since the chosen time.
async fn recover(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let Write { page, form } = write;
    let shown = form.get("messages").unwrap_or_default().to_string();
    let since = match recover_since(&form, now_ms()) {
        Ok(since) => since,
        Err(problem) => return endpoint_page(&console, &page, &id, &shown, json!({}), Some(problem)).await,
    };
    match page
        .api
        .post(
            &format!("/webhooks/endpoints/{}/recover?since={since}", seg(&id)),
            json!({}),
        )
        .await
    {
        Ok(recovered) => {
            let queued = recovered["queued"].as_u64().unwrap_or(0);
            let more = recovered["more"].as_bool().unwrap_or(false);
            let link = endpoint_link(&id, &log_param(&parse_log(&shown)));
            let separator = if link.contains('?') { '&' } else { '?' };
            done(&format!("{link}{separator}queued={queued}&more={more}"), "recovered")
        }
        Err(problem) => endpoint_page(&console, &page, &id, &shown, json!({}), Some(problem)).await,
    }
}

/// Delete the endpoint and its secret.
async fn remove(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let page = write.page;
    match page.api.delete(&format!("/webhooks/endpoints/{}", seg(&id))).await {
        Ok(_) => done("/console/webhooks", "endpoint_deleted"),
        Err(problem) => endpoint_page(&console, &page, &id, "", json!({}), Some(problem)).await,
    }
}

/// Send a message to this endpoint again now.
async fn retry(State(console): State<Shared>, Path((id, message)): Path<(String, String)>, write: Write) -> Response {
    let Write { page, form } = write;
    let shown = form.get("messages").unwrap_or_default().to_string();
    match page
        .api
        .post(
            &format!("/webhooks/messages/{}/retry", seg(&message)),
            json!({ "endpoint_id": id }),
        )
        .await
    {
        Ok(_) => {
            let log = log_param(&parse_log(&format!("{shown},{message}")));
            done(&endpoint_link(&id, &log), "retried")
        }
        Err(problem) => endpoint_page(&console, &page, &id, &shown, json!({}), Some(problem)).await,
    }
}

/// The body of `POST /webhooks/endpoints` from the add form.
fn create_body(form: &Fields) -> Result<Value, Problem> {
    let mut body = Map::new();
    body.insert("url".into(), json!(form.get("url").unwrap_or_default()));
    body.insert("description".into(), json!(form.get("description").unwrap_or_default()));
    body.insert("event_types".into(), json!(form.all("event_types")));
    if let Some(limit) = rate_limit(form)? {
        body.insert("rate_limit_per_sec".into(), json!(limit));
    }
    let headers = header_lines(form.raw("headers").unwrap_or_default())?;
    if !headers.is_empty() {
        body.insert("headers".into(), json!(headers));
    }
    Ok(Value::Object(body))
}

/// The body of `PATCH /webhooks/endpoints/{id}`: what the edit form changed from `current`.
fn changes(current: &Value, form: &Fields) -> Result<Value, Problem> {
    let mut body = Map::new();
    let url = form.get("url").unwrap_or_default();
    if url != current["url"].as_str().unwrap_or_default() {
        body.insert("url".into(), json!(url));
    }
    let description = form.get("description").unwrap_or_default();
    if description != current["description"].as_str().unwrap_or_default() {
        body.insert("description".into(), json!(description));
    }
    let mut wanted = form.all("event_types");
    wanted.sort();
    wanted.dedup();
    let mut had = strings(&current["event_types"]);
    had.sort();
    had.dedup();
    if wanted != had {
        body.insert("event_types".into(), json!(wanted));
    }
    let limit = rate_limit(form)?;
    if limit != current["rate_limit_per_sec"].as_i64() {
        body.insert("rate_limit_per_sec".into(), json!(limit));
    }
    let disable = form.get("disabled").is_some();
    if disable != current["disabled"].as_bool().unwrap_or(false) {
        body.insert("enabled".into(), json!(!disable));
    }
    if form.get("clear_headers").is_some() {
        body.insert("headers".into(), json!({}));
    } else {
        let headers = header_lines(form.raw("headers").unwrap_or_default())?;
        if !headers.is_empty() {
            body.insert("headers".into(), json!(headers));
        }
    }
    Ok(Value::Object(body))
}

/// What the edit form posted, to show it again when the change failed (header values are
/// left out, like any secret).
fn posted_edit(form: &Fields) -> Value {
    json!({
        "url": form.get("url"),
        "description": form.raw("description"),
        "rate_limit_per_sec": form.get("rate_limit_per_sec"),
        "disabled": form.get("disabled").is_some(),
        "event_types": form.all("event_types"),
    })
}

/// The posted rate limit (deliveries per second); `None` when blank.
fn rate_limit(form: &Fields) -> Result<Option<i64>, Problem> {
    form.get("rate_limit_per_sec")
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| invalid("the rate limit must be a whole number of deliveries per second"))
        })
        .transpose()
}

/// Custom headers from `Name: value` lines (blank lines skipped). Errors name the line,
/// never its text (a value may be a credential).
fn header_lines(text: &str) -> Result<BTreeMap<String, String>, Problem> {
    let mut headers = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(format!(
                "custom header line {} must read `Name: value`",
                number + 1
            )));
        };
        headers.insert(name.trim().to_string(), value.trim().to_string());
    }
    Ok(headers)
}

/// The `since` of a recovery (unix ms): the posted start time (UTC, as a
/// `datetime-local` input sends it) or else the chosen number of hours back from `now`.
fn recover_since(form: &Fields, now: i64) -> Result<i64, Problem> {
    if let Some(text) = form.get("since") {
        let start = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
            .map_err(|_| invalid("the start time must read like 2026-01-31T13:20 (UTC)"))?;
        return Ok(start.and_utc().timestamp_millis());
    }
    let hours = form
        .get("hours")
        .unwrap_or("24")
        .parse::<i64>()
        .ok()
        .filter(|hours| (1..=24 * 366).contains(hours))
        .ok_or_else(|| invalid("choose how far back to recover failed deliveries"))?;
    Ok(now - hours * 3_600_000)
}

/// A form the console itself refuses before calling the API.
fn invalid(detail: impl Into<String>) -> Problem {
    Problem::invalid_form(detail)
}

/// One message of the delivery log: its id and, when the console sent it, its event type.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// `msg_…`
    id: String,
    /// `connection.created`…
    kind: Option<String>,
}

/// Whether `id` reads like a message id (`msg_` and letters, digits, `_`, `-`).
fn message_id_ok(id: &str) -> bool {
    id.len() > 4
        && id.len() <= 64
        && id.starts_with("msg_")
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `kind` reads like an event type (`connection.status_changed`).
fn kind_ok(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
}

/// The messages of a `?messages=` value: well-formed ids only, each once, at most
/// [`MAX_LOGGED`], in order.
fn parse_log(text: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, kind) = match item.split_once(':') {
            Some((id, kind)) => (id, Some(kind)),
            None => (item, None),
        };
        if !message_id_ok(id) || entries.iter().any(|e| e.id == id) {
            continue;
        }
        entries.push(Entry {
            id: id.to_string(),
            kind: kind.filter(|k| kind_ok(k)).map(str::to_string),
        });
        if entries.len() == MAX_LOGGED {
            break;
        }
    }
    entries
}

/// The `?messages=` value of `entries`.
fn log_param(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| match &e.kind {
            Some(kind) => format!("{}:{kind}", e.id),
            None => e.id.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// An endpoint's console page, with its delivery log's messages.
fn endpoint_link(id: &str, messages: &str) -> String {
    let base = format!("/console/webhooks/{}", seg(id));
    if messages.is_empty() {
        return base;
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("messages", messages)
        .finish();
    format!("{base}?{query}")
}

/// The delivery log: each message with its event type (when it is a catalogue type), its
/// attempts to this endpoint and their outcome.
async fn deliveries(page: &Page, endpoint_id: &str, entries: &[Entry], types: &[String]) -> Vec<Value> {
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let event_type = entry.kind.as_ref().filter(|k| types.iter().any(|t| t == *k));
        let row = match page
            .api
            .get(&format!("/webhooks/messages/{}/attempts", seg(&entry.id)))
            .await
        {
            Ok(list) => {
                let attempts: Vec<Value> = list["data"]
                    .as_array()
                    .map(|all| {
                        all.iter()
                            .filter(|a| a["endpoint_id"] == endpoint_id)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "id": entry.id,
                    "event_type": event_type,
                    "status": delivery_status(&attempts),
                    "attempts": attempts,
                })
            }
            Err(problem) => json!({
                "id": entry.id,
                "event_type": event_type,
                "status": "unknown",
                "attempts": [],
                "problem": problem,
            }),
        };
        rows.push(row);
    }
    rows
}

/// A message's outcome at an endpoint from its attempts there, oldest first.
fn delivery_status(attempts: &[Value]) -> &'static str {
    let Some(last) = attempts.last() else {
        return "pending";
    };
    if last["status_code"]
        .as_i64()
        .is_some_and(|status| (200..300).contains(&status))
    {
        "delivered"
    } else if last["next_attempt_at"].is_i64() {
        "retrying"
    } else {
        "failed"
    }
}

/// The catalogue's types (`GET /event-types`), each with `chosen` (named in `chosen`) and
/// `fields` (its data's top-level properties, `name: type`, `?` when optional).
fn catalogue_rows(catalogue: &Value, chosen: &[String]) -> Vec<Value> {
    catalogue["data"]
        .as_array()
        .map(|types| {
            types
                .iter()
                .map(|t| {
                    let mut row = t.clone();
                    let kind = t["type"].as_str().unwrap_or_default();
                    if let Some(fields) = row.as_object_mut() {
                        fields.insert("chosen".into(), json!(chosen.iter().any(|c| c == kind)));
                        fields.insert("fields".into(), json!(schema_summary(&t["schema"])));
                        fields.insert("slug".into(), json!(kind.replace('.', "-")));
                    }
                    row
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The top-level properties of an object schema, `name: type` (`name?` when optional).
fn schema_summary(schema: &Value) -> Vec<String> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .map(|(name, property)| {
                    let kind = match &property["type"] {
                        Value::String(t) => t.clone(),
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "),
                        _ => "any".to_string(),
                    };
                    let optional = if required.contains(&name.as_str()) { "" } else { "?" };
                    format!("{name}{optional}: {kind}")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every type the catalogue names.
fn known_types(catalogue: &Value) -> Vec<String> {
    catalogue["data"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|t| t["type"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The types an endpoint receives only when it names them.
fn opt_in_types(catalogue: &Value) -> Vec<String> {
    catalogue["data"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|t| t["opt_in"].as_bool().unwrap_or(false))
                .filter_map(|t| t["type"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The strings of a JSON array.
fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|all| all.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Add `extra`'s fields to `context`.
fn merge(context: &mut Value, extra: Value) {
    if let (Value::Object(base), Value::Object(extra)) = (context, extra) {
        base.extend(extra);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_well_formed_messages_once_and_in_order() {
        let entries = parse_log("msg_01b:connection.created, msg_01a,nope,msg_01b,msg_x:Bad Type,,");
        assert_eq!(
            entries,
            [
                Entry {
                    id: "msg_01b".into(),
                    kind: Some("connection.created".into())
                },
                Entry {
                    id: "msg_01a".into(),
                    kind: None
                },
                Entry {
                    id: "msg_x".into(),
                    kind: None
                },
            ]
        );
        assert_eq!(log_param(&entries), "msg_01b:connection.created,msg_01a,msg_x");
        let many: Vec<String> = (0..30).map(|i| format!("msg_{i}")).collect();
        assert_eq!(parse_log(&many.join(",")).len(), MAX_LOGGED);
    }

    #[test]
    fn links_carry_the_log_encoded() {
        assert_eq!(endpoint_link("wep_1", ""), "/console/webhooks/wep_1");
        assert_eq!(
            endpoint_link("wep_1", "msg_a:connection.created,msg_b"),
            "/console/webhooks/wep_1?messages=msg_a%3Aconnection.created%2Cmsg_b"
        );
    }

    #[test]
    fn a_delivery_reads_from_its_last_attempt() {
        assert_eq!(delivery_status(&[]), "pending");
        assert_eq!(delivery_status(&[json!({ "status_code": 204 })]), "delivered");
        assert_eq!(
            delivery_status(&[json!({ "status_code": 500, "next_attempt_at": 5 })]),
            "retrying"
        );
        assert_eq!(
            delivery_status(&[json!({ "status_code": null, "next_attempt_at": null })]),
            "failed"
        );
    }

    #[test]
    fn an_edit_sends_only_what_changed() {
        let current = json!({
            "url": "https://a.example/hook",
            "description": "d",
            "event_types": ["b.x", "a.y"],
            "rate_limit_per_sec": null,
            "disabled": false,
        });
        let same = Fields::parse(b"url=https%3A%2F%2Fa.example%2Fhook&description=d&event_types=a.y&event_types=b.x");
        assert_eq!(changes(&current, &same).unwrap(), json!({}));
        let changed = Fields::parse(
            b"url=https%3A%2F%2Fb.example%2Fhook&description=&rate_limit_per_sec=5&disabled=on&headers=X-Key%3A+s",
        );
        assert_eq!(
            changes(&current, &changed).unwrap(),
            json!({
                "url": "https://b.example/hook",
                "description": "",
                "event_types": [],
                "rate_limit_per_sec": 5,
                "enabled": false,
                "headers": { "X-Key": "s" },
            })
        );
        let bad = Fields::parse(b"rate_limit_per_sec=fast");
        assert_eq!(changes(&current, &bad).unwrap_err().status, 422);
    }

    #[test]
    fn header_errors_name_the_line_not_the_value() {
        let problem = header_lines("A: 1\n\nsecret-token").unwrap_err();
        assert_eq!(problem.detail, "custom header line 3 must read `Name: value`");
        assert_eq!(
            header_lines(" A : 1 \nB:two:three").unwrap(),
            BTreeMap::from([
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "two:three".to_string())
            ])
        );
    }

    #[test]
    fn a_recovery_starts_at_the_chosen_time() {
        let now = 10 * 3_600_000;
        assert_eq!(
            recover_since(&Fields::default(), 100 * 3_600_000).unwrap(),
            76 * 3_600_000
        );
        assert_eq!(recover_since(&Fields::parse(b"hours=6"), now).unwrap(), 4 * 3_600_000);
        assert_eq!(
            recover_since(&Fields::parse(b"hours=6&since=2025-01-01T00%3A00"), now).unwrap(),
            1_735_689_600_000
        );
        assert!(recover_since(&Fields::parse(b"since=yesterday"), now).is_err());
        assert!(recover_since(&Fields::parse(b"hours=0"), now).is_err());
    }

    #[test]
    fn the_catalogue_summarises_each_schema() {
        let catalogue = json!({ "data": [{
            "type": "connection.created",
            "opt_in": false,
            "schema": { "type": "object", "required": ["id"], "properties": { "id": { "type": "string" }, "n": { "type": ["integer", "null"] } } },
        }, { "type": "action.executed", "opt_in": true, "schema": {} }] });
        let rows = catalogue_rows(&catalogue, &["action.executed".to_string()]);
        assert_eq!(rows[0]["fields"], json!(["id: string", "n?: integer | null"]));
        assert_eq!(rows[0]["chosen"], false);
        assert_eq!(rows[0]["slug"], "connection-created");
        assert_eq!(rows[1]["chosen"], true);
        assert_eq!(opt_in_types(&catalogue), ["action.executed"]);
        assert_eq!(known_types(&catalogue).len(), 2);
    }
}
