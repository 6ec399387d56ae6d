//! Run an action: a form generated from the action's input schema, then the output and the
//! redacted debug trace (requests with their headers, timing, logs).

use super::super::Shared;
use super::super::client::Problem;
use super::super::extract::{Page, Write};
use super::super::forms::{self, Fields};
use super::{failed, seg, show, show_problem};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

/// The routes of this area.
pub fn routes() -> Router<Shared> {
    Router::new().route("/console/connections/{id}/actions/{action}", get(form).post(run))
}

/// The empty form.
async fn form(State(console): State<Shared>, page: Page, Path((id, action)): Path<(String, String)>) -> Response {
    render(&console, &page, &id, &action, &Fields::default(), None, None).await
}

/// Run the action with `?debug=true` and show the result under the form.
async fn run(State(console): State<Shared>, Path((id, action)): Path<(String, String)>, write: Write) -> Response {
    let Write { page, form } = write;
    let schema = match schema_of(&page, &id, &action).await {
        Ok((_, _, schema)) => schema,
        Err(problem) => return failed(&console, &page.session, &problem),
    };
    let input = match forms::input_from_form(&schema, &form) {
        Ok(input) => input,
        Err(message) => {
            let problem = Problem::invalid_form(message);
            return render(&console, &page, &id, &action, &form, None, Some(problem)).await;
        }
    };
    let path = format!("/connections/{}/actions/{}?debug=true", seg(&id), seg(&action));
    match page.api.post(&path, input).await {
        Ok(result) => render(&console, &page, &id, &action, &form, Some(result), None).await,
        Err(problem) => render(&console, &page, &id, &action, &form, None, Some(problem)).await,
    }
}

/// The connection, its connector and the action's input schema.
async fn schema_of(page: &Page, id: &str, action: &str) -> Result<(Value, Value, Value), Problem> {
    let connection = page.api.get(&format!("/connections/{}", seg(id))).await?;
    let installation = page
        .api
        .get(&format!(
            "/connectors/{}",
            seg(connection["installation_id"].as_str().unwrap_or_default())
        ))
        .await?;
    let Some(definition) = installation["actions"].get(action).cloned() else {
        return Err(Problem::not_found(
            "unknown_action",
            format!("the connector has no action `{action}`"),
        ));
    };
    Ok((connection, definition, installation["actions"][action]["input"].clone()))
}

/// The page: the form (re-filled from `posted`), and a result or a problem.
async fn render(
    console: &Shared,
    page: &Page,
    id: &str,
    action: &str,
    posted: &Fields,
    result: Option<Value>,
    problem: Option<Problem>,
) -> Response {
    let (connection, definition, schema) = match schema_of(page, id, action).await {
        Ok(found) => found,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let context = json!({
        "nav": "connections",
        "connection": connection,
        "action": action,
        "definition": definition,
        "fields": forms::schema_fields(&schema, posted),
        "raw_json": posted.raw("raw_json"),
        "result": result,
    });
    match problem {
        Some(problem) => show_problem(console, &page.session, "action.html", &problem, context),
        None => show(console, &page.session, "action.html", context),
    }
}
