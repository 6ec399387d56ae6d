//! The console's pages, one file per area, and the routes that reach them.

mod actions;
mod admin;
mod connections;
mod marketplace;
mod sign_in;
mod webhooks;
mod workflows;

use super::Shared;
use super::client::Problem;
use super::extract::Page;
use super::render;
use super::session::Session;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// Every page route.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(home))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/oauth/return", get(connections::oauth_return))
        .merge(connections::routes())
        .merge(actions::routes())
        .merge(admin::routes())
        .merge(marketplace::routes())
        .merge(workflows::routes())
        .merge(webhooks::routes())
}

/// `/console/`: the connections page for a signed-in user, else sign-in.
async fn home(page: Result<Page, Response>) -> Redirect {
    match page {
        Ok(_) => Redirect::to("/console/connections"),
        Err(_) => Redirect::to("/console/sign-in"),
    }
}

/// Render a page for a signed-in user.
pub(super) fn show(console: &Shared, session: &Session, template: &str, context: Value) -> Response {
    render::render(&console.templates, StatusCode::OK, template, Some(session), context)
}

/// Render a page with the API's problem shown above it, answering with the problem's status.
pub(super) fn show_problem(
    console: &Shared,
    session: &Session,
    template: &str,
    problem: &Problem,
    mut context: Value,
) -> Response {
    context["problem"] = json!(problem);
    render::render(
        &console.templates,
        render::status_of(problem),
        template,
        Some(session),
        context,
    )
}

/// A whole page that only says what went wrong (a read the API refused).
pub(super) fn failed(console: &Shared, session: &Session, problem: &Problem) -> Response {
    show_problem(
        console,
        session,
        "message.html",
        problem,
        json!({ "title": problem.title, "message": problem.detail }),
    )
}

/// After a successful write: back to `to` with a notice code the page turns into a message.
pub(super) fn done(to: &str, notice: &str) -> Response {
    use axum::response::IntoResponse;
    let separator = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{separator}notice={notice}")).into_response()
}

/// The notice a `?notice=` code stands for (codes only, so a link cannot put words in the
/// console's mouth).
pub(super) fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "installed" => "Connector installed.",
        "upgraded" => "Connector upgraded.",
        "uninstalled" => "Connector uninstalled.",
        "connected" => "Connection created.",
        "reconnected" => "Credentials replaced.",
        "disconnected" => "Connection deleted.",
        "tested" => "Connection tested.",
        "endpoint_created" => "Webhook endpoint created.",
        "endpoint_updated" => "Webhook endpoint updated.",
        "endpoint_deleted" => "Webhook endpoint deleted.",
        "test_sent" => "Test event sent.",
        "retried" => "Delivery queued again.",
        "recovered" => "Failed deliveries queued again.",
        "secret_rotated" => "Signing secret rotated.",
        "workflow_updated" => "Workflow updated.",
        "workflow_started" => "Workflow run started.",
        "workflow_created" => "Workflow created.",
        "cancelled" => "Execution cancelled.",
        "workflow_deleted" => "Workflow deleted.",
        "execution_retried" => "Execution queued again from the step it failed at.",
        "key_revoked" => "API key revoked.",
        "member_added" => "Member added.",
        "member_updated" => "Member updated.",
        "member_removed" => "Member removed.",
        "review_posted" => "Review posted.",
        _ => return None,
    })
}

/// A path segment from user-facing data, percent-encoded for an API path.
pub(super) fn seg(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Query parameters for an API list call, from the page's own query (only `keys`, non-blank).
pub(super) fn pass_query(query: &std::collections::HashMap<String, String>, keys: &[&str]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for key in keys {
        if let Some(v) = query.get(*key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            out.append_pair(key, v);
        }
    }
    let text = out.finish();
    if text.is_empty() { text } else { format!("?{text}") }
}
