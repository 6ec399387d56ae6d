//! Workflows and their executions: the list with each workflow's state, trigger, template
//! and run counts; one workflow with its definition, recent executions and refused webhook
//! deliveries; one execution's step timeline. Enabling, disabling, running, deleting,
//! cancelling and retrying are each one API call.

use super::super::Shared;
use super::super::client::Problem;
use super::super::extract::{Page, Write};
use super::super::forms::Fields;
use super::{done, failed, notice, seg, show, show_problem};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// Workflows per list page (each costs one more API call: the listing leaves out the
/// template a workflow follows).
const WORKFLOWS_PER_PAGE: usize = 25;
/// Executions per page of a workflow's history.
const EXECUTIONS_PER_PAGE: usize = 20;

/// The routes of this area.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/console/workflows", get(list))
        .route("/console/workflows/{id}", get(detail))
        .route("/console/workflows/{id}/enable", post(enable))
        .route("/console/workflows/{id}/disable", post(disable))
        .route("/console/workflows/{id}/run", post(run))
        .route("/console/workflows/{id}/delete", post(remove))
        .route("/console/executions/{id}", get(execution))
        .route("/console/executions/{id}/cancel", post(cancel))
        .route("/console/executions/{id}/retry", post(retry))
}

/// Every workflow (a page at a time) with its trigger, template and run counts.
async fn list(State(console): State<Shared>, page: Page, Query(query): Query<HashMap<String, String>>) -> Response {
    let extra = json!({ "notice": notice(query.get("notice").map(String::as_str)) });
    list_page(&console, &page, cursor(&query), extra, None).await
}

/// Render the list from `cursor`, with `extra` context (a notice, a posted input) and a
/// problem.
async fn list_page(
    console: &Shared,
    page: &Page,
    cursor: Option<&str>,
    extra: Value,
    problem: Option<Problem>,
) -> Response {
    let mut list = match page.api.get(&listing("/workflows", WORKFLOWS_PER_PAGE, cursor)).await {
        Ok(list) => list,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let usage = match page.api.get("/workflows/usage").await {
        Ok(report) => usage_by_workflow(&report),
        Err(_) => HashMap::new(),
    };
    let mut workflows = take_data(&mut list);
    if let Some(items) = workflows.as_array_mut() {
        for workflow in items.iter_mut() {
            let id = workflow["id"].as_str().unwrap_or_default().to_string();
            // (The template a workflow follows is on its own page: the listing leaves it out,
            // and one call per row would spend the key's rate limit.)
            if let Some(fields) = workflow.as_object_mut() {
                fields.insert("usage".into(), usage.get(&id).cloned().unwrap_or_default());
            }
        }
    }
    let mut context = json!({
        "nav": "workflows",
        "workflows": workflows,
        "next": list["next_cursor"].as_str().map(|next| format!("/console/workflows?cursor={}", seg(next))),
        "first": cursor.map(|_| "/console/workflows"),
    });
    merge(&mut context, extra);
    match problem {
        Some(problem) => show_problem(console, &page.session, "workflows.html", &problem, context),
        None => show(console, &page.session, "workflows.html", context),
    }
}

/// One workflow: facts, definition, run form, recent executions, refused webhooks.
async fn detail(
    State(console): State<Shared>,
    page: Page,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let extra = json!({ "notice": notice(query.get("notice").map(String::as_str)) });
    detail_page(&console, &page, &id, cursor(&query), extra, None).await
}

/// Render a workflow's page with its executions from `cursor`, `extra` context and a
/// problem.
async fn detail_page(
    console: &Shared,
    page: &Page,
    id: &str,
    cursor: Option<&str>,
    extra: Value,
    problem: Option<Problem>,
) -> Response {
    let path = seg(id);
    let workflow = match page.api.get(&format!("/workflows/{path}")).await {
        Ok(workflow) => workflow,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    let executions_path = listing(&format!("/workflows/{path}/executions"), EXECUTIONS_PER_PAGE, cursor);
    let (executions, executions_problem, next) = match page.api.get(&executions_path).await {
        Ok(mut list) => {
            let next = list["next_cursor"]
                .as_str()
                .map(|next| format!("/console/workflows/{path}?cursor={}", seg(next)));
            (execution_rows(take_data(&mut list)), None, next)
        }
        Err(problem) => (json!([]), Some(problem), None),
    };
    let failures = if workflow["trigger"]["type"] == "webhook" {
        match page.api.get(&format!("/workflows/{path}/trigger/failures")).await {
            Ok(mut list) => take_data(&mut list),
            Err(_) => Value::Null,
        }
    } else {
        Value::Null
    };
    let usage = match page.api.get("/workflows/usage").await {
        Ok(report) => usage_by_workflow(&report).remove(id),
        Err(_) => None,
    };
    let mut context = json!({
        "nav": "workflows",
        "definition": definition_of(&workflow),
        "workflow": workflow,
        "executions": executions,
        "executions_problem": executions_problem,
        "next": next,
        "first": cursor.map(|_| format!("/console/workflows/{path}")),
        "failures": failures,
        "usage": usage,
    });
    merge(&mut context, extra);
    match problem {
        Some(problem) => show_problem(console, &page.session, "workflow.html", &problem, context),
        None => show(console, &page.session, "workflow.html", context),
    }
}

/// Let the workflow's trigger start it.
async fn enable(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    set_enabled(&console, &id, write, true).await
}

/// Stop the workflow's trigger from starting it (it can still be run by hand).
async fn disable(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    set_enabled(&console, &id, write, false).await
}

/// `PATCH /workflows/{id}` with `enabled`, then back to the page the form was on.
async fn set_enabled(console: &Shared, id: &str, write: Write, enabled: bool) -> Response {
    let Write { page, form } = write;
    match page
        .api
        .patch(&format!("/workflows/{}", seg(id)), json!({ "enabled": enabled }))
        .await
    {
        Ok(_) => done(&back_to(&form, id), "workflow_updated"),
        Err(problem) => back_with_problem(console, &page, &form, id, problem).await,
    }
}

/// Start an execution with the posted JSON input and show it.
async fn run(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let Write { page, form } = write;
    let input = match parse_input(form.raw("input")) {
        Ok(input) => input,
        Err(problem) => return back_with_problem(&console, &page, &form, &id, problem).await,
    };
    match page.api.post(&format!("/workflows/{}/execute", seg(&id)), input).await {
        Ok(started) => match started["id"].as_str() {
            Some(execution) => done(&format!("/console/executions/{}", seg(execution)), "workflow_started"),
            None => done(&back_to(&form, &id), "workflow_started"),
        },
        Err(problem) => back_with_problem(&console, &page, &form, &id, problem).await,
    }
}

/// Delete the workflow and its trigger (past executions stay readable).
async fn remove(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let Write { page, form } = write;
    match page.api.delete(&format!("/workflows/{}", seg(&id))).await {
        Ok(_) => done("/console/workflows", "workflow_deleted"),
        Err(problem) => back_with_problem(&console, &page, &form, &id, problem).await,
    }
}

/// One execution: its facts, input, output and each step in order.
async fn execution(
    State(console): State<Shared>,
    page: Page,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let extra = json!({ "notice": notice(query.get("notice").map(String::as_str)) });
    execution_page(&console, &page, &id, extra, None).await
}

/// Render an execution's page with `extra` context and a problem.
async fn execution_page(console: &Shared, page: &Page, id: &str, extra: Value, problem: Option<Problem>) -> Response {
    let mut execution = match page.api.get(&format!("/executions/{}", seg(id))).await {
        Ok(execution) => execution,
        Err(problem) => return failed(console, &page.session, &problem),
    };
    // The workflow names the execution's steps as defined; it may have been deleted since.
    let workflow = match execution["workflow_id"].as_str() {
        Some(workflow_id) => page
            .api
            .get(&format!("/workflows/{}", seg(workflow_id)))
            .await
            .unwrap_or_default(),
        None => Value::Null,
    };
    let version = execution["version"].as_i64();
    let took = execution["duration_ms"].as_i64().map(duration_text);
    let journal = execution.get_mut("steps").map(Value::take).unwrap_or_default();
    let (steps, not_run) = step_rows(journal, &workflow, version);
    let mut context = json!({
        "nav": "workflows",
        "execution": execution,
        "workflow": workflow,
        "steps": steps,
        "not_run": not_run,
        "took": took,
    });
    merge(&mut context, extra);
    match problem {
        Some(problem) => show_problem(console, &page.session, "execution.html", &problem, context),
        None => show(console, &page.session, "execution.html", context),
    }
}

/// Ask a queued or running execution to stop before its next step.
async fn cancel(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let page = write.page;
    match page
        .api
        .post(&format!("/executions/{}/cancel", seg(&id)), json!({}))
        .await
    {
        Ok(_) => done(&format!("/console/executions/{}", seg(&id)), "cancelled"),
        Err(problem) => execution_page(&console, &page, &id, json!({}), Some(problem)).await,
    }
}

/// Run a failed execution again from the step it failed at.
async fn retry(State(console): State<Shared>, Path(id): Path<String>, write: Write) -> Response {
    let page = write.page;
    match page
        .api
        .post(&format!("/executions/{}/retry", seg(&id)), json!({}))
        .await
    {
        Ok(_) => done(&format!("/console/executions/{}", seg(&id)), "execution_retried"),
        Err(problem) => execution_page(&console, &page, &id, json!({}), Some(problem)).await,
    }
}

/// Whether a workflow form was posted from the list (`from=list`) rather than the
/// workflow's own page.
fn from_list(form: &Fields) -> bool {
    form.get("from") == Some("list")
}

/// Where a workflow form returns to after it worked.
fn back_to(form: &Fields, id: &str) -> String {
    if from_list(form) {
        "/console/workflows".to_string()
    } else {
        format!("/console/workflows/{}", seg(id))
    }
}

/// The page a workflow form came from, again, with the problem and the posted input.
async fn back_with_problem(console: &Shared, page: &Page, form: &Fields, id: &str, problem: Problem) -> Response {
    let extra = json!({ "posted": { "workflow": id, "input": form.raw("input") } });
    if from_list(form) {
        list_page(console, page, None, extra, Some(problem)).await
    } else {
        detail_page(console, page, id, None, extra, Some(problem)).await
    }
}

/// The JSON a run form posted (blank is `{}`); the API decides whether it is acceptable.
fn parse_input(text: Option<&str>) -> Result<Value, Problem> {
    let text = text.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("{}");
    serde_json::from_str(text).map_err(|e| Problem::invalid_form(format!("the input is not valid JSON: {e}")))
}

/// A non-blank `cursor` of the page's query.
fn cursor(query: &HashMap<String, String>) -> Option<&str> {
    query.get("cursor").map(|c| c.trim()).filter(|c| !c.is_empty())
}

/// An API listing path with a page size, from `cursor` when there is one.
fn listing(path: &str, limit: usize, cursor: Option<&str>) -> String {
    match cursor {
        Some(cursor) => format!("{path}?limit={limit}&cursor={}", seg(cursor)),
        None => format!("{path}?limit={limit}"),
    }
}

/// Take a listing's `data` out of it (`null` when it has none).
fn take_data(list: &mut Value) -> Value {
    list.get_mut("data").map(Value::take).unwrap_or_default()
}

/// Add `extra`'s fields to `context`.
fn merge(context: &mut Value, extra: Value) {
    if let (Value::Object(base), Value::Object(extra)) = (context, extra) {
        base.extend(extra);
    }
}

/// A duration for people: `850 ms`, `2.4 s`, `3 min 5 s`, `2 h 10 min`.
fn duration_text(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1_000.0)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1_000)
    } else {
        format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// The workspace usage report's rows by workflow id, each with `success_percent` and
/// `mean_took` for display.
fn usage_by_workflow(report: &Value) -> HashMap<String, Value> {
    let Some(rows) = report["workflows"].as_array() else {
        return HashMap::new();
    };
    rows.iter()
        .filter_map(|row| {
            let id = row["workflow_id"].as_str()?.to_string();
            let mut row = row.clone();
            let percent = row["success_rate"].as_f64().map(|r| (r * 100.0).round() as i64);
            let mean = row["mean_duration_ms"]
                .as_f64()
                .map(|ms| duration_text(ms.round() as i64));
            let fields = row.as_object_mut()?;
            fields.insert("success_percent".into(), json!(percent));
            fields.insert("mean_took".into(), json!(mean));
            Some((id, row))
        })
        .collect()
}

/// What a workflow runs, as its page shows it: trigger, vars, steps and output.
fn definition_of(workflow: &Value) -> Value {
    let mut definition = Map::new();
    for field in ["trigger", "vars", "steps", "output"] {
        if let Some(value) = workflow.get(field).filter(|v| !v.is_null()) {
            definition.insert(field.into(), value.clone());
        }
    }
    Value::Object(definition)
}

/// A workflow's executions, each with its duration as text (`took`) once ended.
fn execution_rows(data: Value) -> Value {
    let Value::Array(items) = data else {
        return json!([]);
    };
    items
        .into_iter()
        .map(|mut execution| {
            let took = execution["duration_ms"].as_i64().map(duration_text);
            if let (Some(fields), Some(took)) = (execution.as_object_mut(), took) {
                fields.insert("took".into(), json!(took));
            }
            execution
        })
        .collect()
}

/// An execution's journal, in order, each step with its duration (`took`) and, when the
/// workflow is still at the version the execution ran, its definition (`definition`) and the
/// input it was given before templating (`input`); and the names of defined steps that have
/// not run.
fn step_rows(journal: Value, workflow: &Value, version: Option<i64>) -> (Value, Vec<String>) {
    let same_version = version.is_some() && workflow["version"].as_i64() == version;
    let defined: Vec<&Value> = match workflow["steps"].as_array() {
        Some(steps) if same_version => steps.iter().collect(),
        _ => Vec::new(),
    };
    let Value::Array(items) = journal else {
        return (json!([]), Vec::new());
    };
    let ran: HashSet<String> = items
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect();
    let not_run: Vec<String> = defined
        .iter()
        .filter_map(|d| d["name"].as_str())
        .filter(|name| !ran.contains(*name))
        .map(str::to_string)
        .collect();
    let steps: Value = items
        .into_iter()
        .map(|mut step| {
            let took = match (step["started_at"].as_i64(), step["finished_at"].as_i64()) {
                (Some(started), Some(finished)) => Some(duration_text(finished - started)),
                _ => None,
            };
            let definition = step["name"]
                .as_str()
                .and_then(|name| defined.iter().find(|d| d["name"].as_str() == Some(name)))
                .copied()
                .cloned();
            if let Some(fields) = step.as_object_mut() {
                if let Some(took) = took {
                    fields.insert("took".into(), json!(took));
                }
                if let Some(definition) = definition {
                    if let Some(input) = definition.get("input") {
                        fields.insert("input".into(), input.clone());
                    }
                    fields.insert("definition".into(), definition);
                }
            }
            step
        })
        .collect();
    (steps, not_run)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_for_people() {
        assert_eq!(duration_text(850), "850 ms");
        assert_eq!(duration_text(2_400), "2.4 s");
        assert_eq!(duration_text(185_000), "3 min 5 s");
        assert_eq!(duration_text(7_800_000), "2 h 10 min");
        assert_eq!(duration_text(-5), "0 ms");
    }

    #[test]
    fn run_input_is_json_and_blank_is_an_empty_object() {
        assert_eq!(parse_input(None).unwrap(), json!({}));
        assert_eq!(parse_input(Some("  ")).unwrap(), json!({}));
        assert_eq!(parse_input(Some("{\"a\": 1}")).unwrap(), json!({ "a": 1 }));
        let problem = parse_input(Some("{nope")).unwrap_err();
        assert_eq!(problem.status, 422);
        assert!(
            problem.detail.starts_with("the input is not valid JSON"),
            "{}",
            problem.detail
        );
    }

    #[test]
    fn forms_return_to_the_page_they_came_from() {
        assert_eq!(back_to(&Fields::parse(b"from=list"), "wf_1"), "/console/workflows");
        assert_eq!(back_to(&Fields::default(), "wf_1"), "/console/workflows/wf_1");
    }

    #[test]
    fn usage_rows_get_a_percentage_and_a_mean() {
        let usage = usage_by_workflow(&json!({
            "workflows": [
                { "workflow_id": "wf_1", "executions": 4, "success_rate": 0.75, "mean_duration_ms": 1500.0 },
                { "workflow_id": "wf_2", "executions": 1, "success_rate": null, "mean_duration_ms": null }
            ]
        }));
        assert_eq!(usage["wf_1"]["success_percent"], 75);
        assert_eq!(usage["wf_1"]["mean_took"], "1.5 s");
        assert!(usage["wf_2"]["success_percent"].is_null());
        assert!(usage_by_workflow(&Value::Null).is_empty());
    }

    #[test]
    fn steps_get_durations_and_their_definition_at_the_same_version() {
        let workflow = json!({
            "version": 2,
            "steps": [
                { "name": "post", "type": "connector", "input": { "text": "{{ trigger.text }}" } },
                { "name": "wait", "type": "delay", "seconds": 5 }
            ]
        });
        let journal = json!([{ "name": "post", "status": "succeeded", "started_at": 1_000, "finished_at": 1_250 }]);
        let (steps, not_run) = step_rows(journal.clone(), &workflow, Some(2));
        assert_eq!(steps[0]["took"], "250 ms");
        assert_eq!(steps[0]["input"], json!({ "text": "{{ trigger.text }}" }));
        assert_eq!(steps[0]["definition"]["type"], "connector");
        assert_eq!(not_run, ["wait"]);
        let (steps, not_run) = step_rows(journal, &workflow, Some(1));
        assert!(
            steps[0].get("definition").is_none(),
            "another version's steps are not shown"
        );
        assert!(not_run.is_empty());
    }

    #[test]
    fn the_definition_leaves_out_what_is_unset() {
        let workflow =
            json!({ "id": "wf_1", "trigger": { "type": "manual" }, "vars": {}, "steps": [], "output": null });
        assert_eq!(
            definition_of(&workflow),
            json!({ "trigger": { "type": "manual" }, "vars": {}, "steps": [] })
        );
    }
}
