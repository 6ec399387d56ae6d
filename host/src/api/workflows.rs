//! `/workflows` and `/executions`: workflow CRUD (each definition change is a new version),
//! starting executions (`?wait=` blocks until done), their status with the step journal,
//! cancel and retry, usage, and the log of refused incoming webhooks.
//!
//! Scopes: reading needs `connections:read`; saving and deleting `workflows:write` (or
//! `admin`); starting, cancelling and retrying executions `actions:execute`.

use super::AppState;
use super::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery, Pagination, Principal};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::store::{ExecutionRecord, StepRunRecord, TriggerRecord};
use crate::workflows::manage::{self, Saved, WorkflowError, WorkflowInput};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Longest `?wait=` (seconds).
const MAX_WAIT_SECS: u64 = 60;

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Invalid(problems) => {
                let detail = problems
                    .first()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .unwrap_or_default();
                ApiError::unprocessable("invalid_workflow", detail).with_extra(serde_json::json!(problems))
            }
            WorkflowError::NotFound => ApiError::not_found("workflow"),
            WorkflowError::Changed => ApiError::new(
                StatusCode::CONFLICT,
                "changed_meanwhile",
                "Conflict",
                WorkflowError::Changed.to_string(),
            ),
            e @ WorkflowError::TooMany => ApiError::unprocessable("too_many_workflows", e.to_string()),
            e @ WorkflowError::InputTooLarge => ApiError::unprocessable("input_too_large", e.to_string()),
            WorkflowError::Store(e) => e.into(),
            WorkflowError::Vault(e) => ApiError::internal(&e),
        }
    }
}

/// A workflow's trigger as shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerView {
    /// `manual`, `schedule` or `webhook`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `trg_…` (schedule and webhook triggers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Webhook: where the provider POSTs (`<public URL>/hooks/trg_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Webhook: the signature scheme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Webhook: the connection whose connector named the scheme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Schedule: the cron expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Schedule: the time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Schedule: `skip` or `run_once`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<String>,
    /// Schedule: the next tick (unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<i64>,
}

/// A workflow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowView {
    /// `wf_…`
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Whether triggers start it.
    pub enabled: bool,
    /// The current version (each definition change adds one).
    pub version: i64,
    /// What starts it.
    pub trigger: TriggerView,
    /// Values steps read as `vars.<name>`.
    #[schema(value_type = Object)]
    pub vars: Value,
    /// The steps.
    #[schema(value_type = Vec<Object>)]
    pub steps: Value,
    /// The output template, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// The template (`namespace/name`) and version it was made from, when it was
    /// (shown by `GET /workflows/{id}` and the template endpoints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateOrigin>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Where a workflow made from a template came from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateOrigin {
    /// `namespace/name`.
    pub template: String,
    /// The version it follows.
    pub version: String,
}

pub(super) fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| state.config.listen.to_string());
    format!("http://{host}")
}

/// How a saved workflow is shown, with its trigger URL under `base`.
pub(super) fn view(saved: Saved, base: &str) -> WorkflowView {
    use crate::workflows::definition::Trigger;
    let trigger_row: Option<&TriggerRecord> = saved.trigger.as_ref();
    let mut trigger = TriggerView {
        kind: saved.definition.trigger.kind().to_string(),
        id: trigger_row.map(|t| t.id.clone()),
        url: None,
        scheme: trigger_row.and_then(|t| t.scheme.clone()),
        connection: None,
        cron: None,
        timezone: None,
        missed: None,
        next_run_at: trigger_row.and_then(|t| t.next_run_at),
    };
    match &saved.definition.trigger {
        Trigger::Manual => {}
        Trigger::Schedule { cron, timezone, missed } => {
            trigger.cron = Some(cron.clone());
            trigger.timezone = Some(timezone.clone());
            trigger.missed = serde_json::to_value(missed)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
        }
        Trigger::Webhook { connection, .. } => {
            trigger.url = trigger_row.map(|t| format!("{base}/hooks/{}", t.id));
            trigger.connection = connection.as_ref().map(|c| c.to_string());
        }
    }
    let definition = saved.definition;
    WorkflowView {
        id: saved.workflow.id,
        name: saved.workflow.name,
        description: saved.workflow.description,
        enabled: saved.workflow.enabled != 0,
        version: saved.workflow.version,
        trigger,
        vars: serde_json::to_value(&definition.vars).unwrap_or(Value::Null),
        steps: serde_json::to_value(&definition.steps).unwrap_or(Value::Null),
        output: definition.output,
        template: None,
        created_at: saved.workflow.created_at,
        updated_at: saved.workflow.updated_at,
    }
}

/// Workflows of the workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowList {
    /// Workflows, oldest first.
    pub data: Vec<WorkflowView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// `{id}` of a workflow or execution path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WorkflowPath {
    /// `wf_…` or `exe_…`.
    pub id: String,
}

/// Create a workflow (`workflows:write` or `admin`).
#[utoipa::path(post, path = "/api/v1/workflows", tag = "workflows", operation_id = "create_workflow", request_body = WorkflowInput,
    responses((status = 201, body = WorkflowView),
        (status = 422, description = "The definition is invalid (`invalid_workflow`, with `errors[]` naming each field), or the workspace has too many workflows", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<WorkflowInput>,
) -> ApiResult<(StatusCode, Json<WorkflowView>)> {
    principal.require_or_admin(Scope::WorkflowsWrite)?;
    let saved = manage::create(&state, &principal.workspace_id, body).await?;
    Ok((StatusCode::CREATED, Json(view(saved, &public_base(&state, &headers)))))
}

/// List workflows (`connections:read`).
#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows", operation_id = "list_workflows", params(Pagination),
    responses((status = 200, body = WorkflowList), (status = 422, description = "`limit` outside 1–100", body = crate::error::Problem)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<WorkflowList>> {
    principal.require(Scope::ConnectionsRead)?;
    let p = state
        .db
        .list_workflows(&principal.workspace_id, page.after(), page.limit()?)
        .await?;
    let base = public_base(&state, &headers);
    let mut data = Vec::with_capacity(p.items.len());
    for w in p.items {
        data.push(view(manage::complete(&state, w).await?, &base));
    }
    Ok(Json(WorkflowList {
        data,
        next_cursor: p.next_cursor,
    }))
}

/// One workflow, current version (`connections:read`).
#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows", operation_id = "get_workflow", params(WorkflowPath),
    responses((status = 200, body = WorkflowView), (status = 404, description = "No such workflow in this workspace", body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    ApiPath(WorkflowPath { id }): ApiPath<WorkflowPath>,
) -> ApiResult<Json<WorkflowView>> {
    principal.require(Scope::ConnectionsRead)?;
    let saved = manage::load(&state, &principal.workspace_id, &id).await?;
    let mut shown = view(saved, &public_base(&state, &headers));
    shown.template = state
        .db
        .template_origin(&principal.workspace_id, &id)
        .await?
        .map(|(template, version)| TemplateOrigin { template, version });
    Ok(Json(shown))
}

/// Change a workflow (`workflows:write` or `admin`): `name`, `description`, `enabled` in
/// place; `trigger`, `vars`, `steps` or `output` make a new version.
#[utoipa::path(patch, path = "/api/v1/workflows/{id}", tag = "workflows", operation_id = "update_workflow", params(WorkflowPath), request_body = WorkflowInput,
    responses((status = 200, body = WorkflowView),
        (status = 404, description = "No such workflow in this workspace", body = crate::error::Problem),
        (status = 409, description = "Another edit came first (`changed_meanwhile`)", body = crate::error::Problem),
        (status = 422, description = "The definition is invalid (`invalid_workflow`, with `errors[]`)", body = crate::error::Problem)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    ApiPath(WorkflowPath { id }): ApiPath<WorkflowPath>,
    ApiJson(body): ApiJson<WorkflowInput>,
) -> ApiResult<Json<WorkflowView>> {
    principal.require_or_admin(Scope::WorkflowsWrite)?;
    let saved = manage::update(&state, &principal.workspace_id, &id, body).await?;
    Ok(Json(view(saved, &public_base(&state, &headers))))
}

/// Delete a workflow and its trigger (`workflows:write` or `admin`). Executions in flight
/// finish; past executions stay readable by id.
#[utoipa::path(delete, path = "/api/v1/workflows/{id}", tag = "workflows", operation_id = "delete_workflow", params(WorkflowPath),
    responses((status = 204), (status = 404, description = "No such workflow in this workspace", body = crate::error::Problem)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(WorkflowPath { id }): ApiPath<WorkflowPath>,
) -> ApiResult<StatusCode> {
    principal.require_or_admin(Scope::WorkflowsWrite)?;
    if !state.db.delete_workflow(&principal.workspace_id, &id).await? {
        return Err(ApiError::not_found("workflow"));
    }
    state.workflows.forget_triggers();
    Ok(StatusCode::NO_CONTENT)
}

/// `?wait=<seconds>`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExecuteParams {
    /// Block until the execution ends or this many seconds pass (0–60; default 0: answer
    /// at once with `202`).
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u64>,
}

/// One step of an execution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepView {
    /// The step's name.
    pub name: String,
    /// `running`, `waiting`, `succeeded`, `failed` or `skipped`.
    pub status: String,
    /// Attempts begun.
    pub attempts: i64,
    /// The key the connector received to pass upstream; the same on every attempt.
    pub idempotency_key: String,
    /// The connector a connector step ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// Its output.
    #[schema(value_type = Object)]
    pub output: Value,
    /// Why it failed (its last attempt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The step the execution went on at (a branch or fallback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    /// The redacted broker trace of its last attempt (requests, statuses, logs; no secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub trace: Option<Value>,
    /// A delay: when it ends (unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<i64>,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms.
    pub finished_at: Option<i64>,
}

impl From<StepRunRecord> for StepView {
    fn from(r: StepRunRecord) -> Self {
        Self {
            name: r.step,
            status: r.status,
            attempts: r.attempts,
            idempotency_key: r.idempotency_key,
            connector: r.connector,
            output: r
                .output
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok())
                .unwrap_or(Value::Null),
            error: r.error,
            next_step: r.next_step,
            trace: r.trace.as_deref().and_then(|t| serde_json::from_str(t).ok()),
            wake_at: r.wake_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

/// An execution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionView {
    /// `exe_…`
    pub id: String,
    /// Its workflow.
    pub workflow_id: String,
    /// The version it runs.
    pub version: i64,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// What started it: `manual`, `schedule` or `webhook`.
    pub trigger: String,
    /// Its input (`trigger` in templates).
    #[schema(value_type = Object)]
    pub input: Value,
    /// Its output, once succeeded.
    #[schema(value_type = Object)]
    pub output: Value,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The step it failed at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms its first step began.
    pub started_at: Option<i64>,
    /// Unix ms it ended.
    pub finished_at: Option<i64>,
    /// From creation to end (ms), once ended.
    pub duration_ms: Option<i64>,
    /// Per-step status (`GET /executions/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
}

fn execution_view(e: ExecutionRecord, steps: Option<Vec<StepRunRecord>>) -> ExecutionView {
    let parse = |t: Option<&str>| t.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
    ExecutionView {
        duration_ms: e.finished_at.map(|f| f - e.created_at),
        input: parse(Some(&e.input)),
        output: parse(e.output.as_deref()),
        id: e.id,
        workflow_id: e.workflow_id,
        version: e.version,
        status: e.status,
        trigger: e.trigger_kind,
        error: e.error,
        failed_step: e.failed_step,
        cancel_requested: e.cancel_requested != 0,
        created_at: e.created_at,
        started_at: e.started_at,
        finished_at: e.finished_at,
        steps: steps.map(|s| s.into_iter().map(StepView::from).collect()),
    }
}

async fn load_execution(state: &AppState, principal: &Principal, id: &str) -> ApiResult<ExecutionView> {
    let (execution, steps) = state
        .db
        .execution_with_steps(&principal.workspace_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("execution"))?;
    Ok(execution_view(execution, Some(steps)))
}

/// Start an execution of the current version (`actions:execute`). The body is the input
/// (`trigger` in templates; an empty body is `{}`). Answers `202` with the queued execution,
/// or with `?wait=` the execution once it ended (`200`) or, when the wait ran out, `202`.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/execute", tag = "workflows", operation_id = "execute_workflow", params(WorkflowPath, ExecuteParams),
    request_body(content = Object, description = "The execution's input (any JSON object); empty is `{}`"),
    responses((status = 200, description = "Ended within the wait", body = ExecutionView),
        (status = 202, description = "Queued (or still running when the wait ran out)", body = ExecutionView),
        (status = 400, description = "The body is not JSON", body = crate::error::Problem),
        (status = 404, description = "No such workflow in this workspace", body = crate::error::Problem),
        (status = 422, description = "`wait` over 60, or the input is too large", body = crate::error::Problem)))]
pub async fn execute(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(WorkflowPath { id }): ApiPath<WorkflowPath>,
    ApiQuery(params): ApiQuery<ExecuteParams>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    principal.require(Scope::ActionsExecute)?;
    let wait = params.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(ApiError::unprocessable(
            "invalid_wait",
            format!("wait is 0–{MAX_WAIT_SECS} seconds"),
        ));
    }
    let input: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?
    };
    if !input.is_object() {
        return Err(ApiError::unprocessable("invalid_input", "the input is a JSON object"));
    }
    let workflow = state
        .db
        .workflow(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("workflow"))?;
    let execution_id = manage::start(&state, &workflow, "manual", &input).await?;
    if wait > 0 {
        let guard = state.workflows.waiters.watch(&execution_id);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
        let mut poll_every = Duration::from_millis(100);
        loop {
            let view = load_execution(&state, &principal, &execution_id).await?;
            if matches!(view.status.as_str(), "succeeded" | "failed" | "cancelled") {
                return Ok((StatusCode::OK, Json(view)).into_response());
            }
            // Woken when this node ends it; the poll (backing off to 2 s) covers an execution
            // another node ran.
            let poll = tokio::time::Instant::now() + poll_every;
            poll_every = (poll_every * 2).min(Duration::from_secs(2));
            tokio::select! {
                _ = guard.notified() => {}
                _ = tokio::time::sleep_until(poll.min(deadline)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
    }
    let view = load_execution(&state, &principal, &execution_id).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

/// Executions of a workflow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionList {
    /// Executions, newest first (without their steps).
    pub data: Vec<ExecutionView>,
    /// Cursor of the next (older) page.
    pub next_cursor: Option<String>,
}

/// List a workflow's executions, newest first (`connections:read`).
#[utoipa::path(get, path = "/api/v1/workflows/{id}/executions", tag = "workflows", operation_id = "list_workflow_executions", params(WorkflowPath, Pagination),
    responses((status = 200, body = ExecutionList),
        (status = 404, description = "No such workflow in this workspace", body = crate::error::Problem),
        (status = 422, description = "`limit` outside 1–100", body = crate::error::Problem)))]
pub async fn list_executions(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(WorkflowPath { id }): ApiPath<WorkflowPath>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ExecutionList>> {
    principal.require(Scope::ConnectionsRead)?;
    let limit = page.limit()?;
    if state.db.workflow(&principal.workspace_id, &id).await?.is_none() {
        return Err(ApiError::not_found("workflow"));
    }
    let p = state
        .db
        .list_executions(&principal.workspace_id, &id, page.after(), limit)
        .await?;
    Ok(Json(ExecutionList {
        data: p.items.into_iter().map(|e| execution_view(e, None)).collect(),
        next_cursor: p.next_cursor,
    }))
}

/// One execution with its steps (`connections:read`).
#[utoipa::path(get, path = "/api/v1/executions/{id}", tag = "workflows", operation_id = "get_execution", params(WorkflowPath),
    responses((status = 200, body = ExecutionView), (status = 404, description = "No such execution in this workspace", body = crate::error::Problem)))]
pub async fn get_execution(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(WorkflowPath { id }): ApiPath<WorkflowPath>,
) -> ApiResult<Json<ExecutionView>> {
    principal.require(Scope::ConnectionsRead)?;
    Ok(Json(load_execution(&state, &principal, &id).await?))
}

/// Cancel an execution (`actions:execute`): it stops before its next step (a running step
/// finishes or hits its deadline). `202` with the execution; `409` when it already ended.
#[utoipa::path(post, path = "/api/v1/executions/{id}/cancel", tag = "workflows", operation_id = "cancel_execution", params(WorkflowPath),
    responses((status = 202, body = ExecutionView),
        (status = 404, description = "No such execution in this workspace", body = crate::error::Problem),
        (status = 409, description = "It already ended (`already_finished`)", body = crate::error::Problem)))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(WorkflowPath { id }): ApiPath<WorkflowPath>,
) -> ApiResult<(StatusCode, Json<ExecutionView>)> {
    principal.require(Scope::ActionsExecute)?;
    let execution = state
        .db
        .request_cancel(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("execution"))?;
    if execution.is_finished() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_finished",
            "Conflict",
            format!("the execution already ended ({})", execution.status),
        ));
    }
    state.queue.wake(crate::store::WORKFLOW_QUEUE);
    Ok((
        StatusCode::ACCEPTED,
        Json(load_execution(&state, &principal, &id).await?),
    ))
}

/// Retry a failed execution from the step it failed at (`actions:execute`); completed steps
/// are not run again and each step keeps its idempotency key.
#[utoipa::path(post, path = "/api/v1/executions/{id}/retry", tag = "workflows", operation_id = "retry_execution", params(WorkflowPath),
    responses((status = 202, body = ExecutionView),
        (status = 404, description = "No such execution in this workspace", body = crate::error::Problem),
        (status = 409, description = "It is not `failed` (`not_failed`)", body = crate::error::Problem)))]
pub async fn retry(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(WorkflowPath { id }): ApiPath<WorkflowPath>,
) -> ApiResult<(StatusCode, Json<ExecutionView>)> {
    principal.require(Scope::ActionsExecute)?;
    let current = load_execution(&state, &principal, &id).await?;
    if !state.db.retry_execution(&principal.workspace_id, &id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_failed",
            "Conflict",
            format!("only a failed execution can be retried; this one is {}", current.status),
        ));
    }
    state.queue.wake(crate::store::WORKFLOW_QUEUE);
    Ok((
        StatusCode::ACCEPTED,
        Json(load_execution(&state, &principal, &id).await?),
    ))
}

/// Usage of one workflow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowUsage {
    /// `wf_…`
    pub workflow_id: String,
    /// Executions started.
    pub executions: i64,
    /// Succeeded.
    pub succeeded: i64,
    /// Failed.
    pub failed: i64,
    /// Queued or running now.
    pub active: i64,
    /// Succeeded / (succeeded + failed); null before any ended.
    pub success_rate: Option<f64>,
    /// Mean duration of ended executions (ms).
    pub mean_duration_ms: Option<f64>,
    /// Longest duration of an ended execution (ms).
    pub max_duration_ms: Option<i64>,
}

/// Usage of one connector by workflow steps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectorStepUsage {
    /// The connector id.
    pub connector: String,
    /// Steps run.
    pub steps: i64,
    /// Of those, failed.
    pub failed: i64,
}

/// Workflow usage of the workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowUsageReport {
    /// Per workflow.
    pub workflows: Vec<WorkflowUsage>,
    /// Per connector used by steps.
    pub connectors: Vec<ConnectorStepUsage>,
}

/// Executions per workflow and steps per connector: counts, success rate, durations
/// (`connections:read`).
#[utoipa::path(get, path = "/api/v1/workflows/usage", tag = "workflows", operation_id = "workflow_usage",
    responses((status = 200, body = WorkflowUsageReport)))]
pub async fn usage(State(state): State<Arc<AppState>>, principal: Principal) -> ApiResult<Json<WorkflowUsageReport>> {
    principal.require(Scope::ConnectionsRead)?;
    let workflows = state
        .db
        .workflow_usage(&principal.workspace_id)
        .await?
        .into_iter()
        .map(|u| WorkflowUsage {
            success_rate: (u.succeeded + u.failed > 0).then(|| u.succeeded as f64 / (u.succeeded + u.failed) as f64),
            workflow_id: u.workflow_id,
            executions: u.executions,
            succeeded: u.succeeded,
            failed: u.failed,
            active: u.active,
            mean_duration_ms: u.mean_duration_ms,
            max_duration_ms: u.max_duration_ms,
        })
        .collect();
    let connectors = state
        .db
        .connector_step_usage(&principal.workspace_id)
        .await?
        .into_iter()
        .map(|c| ConnectorStepUsage {
            connector: c.connector,
            steps: c.steps,
            failed: c.failed,
        })
        .collect();
    Ok(Json(WorkflowUsageReport { workflows, connectors }))
}

/// A refused incoming webhook.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerFailureView {
    /// Why it was refused (no body, no secrets).
    pub reason: String,
    /// Unix ms.
    pub created_at: i64,
}

/// Refused incoming webhooks of a workflow's trigger.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerFailureList {
    /// Newest first (at most 100).
    pub data: Vec<TriggerFailureView>,
}

/// The last refused incoming webhooks of a workflow's trigger (`connections:read`).
#[utoipa::path(get, path = "/api/v1/workflows/{id}/trigger/failures", tag = "workflows", operation_id = "list_trigger_failures", params(WorkflowPath),
    responses((status = 200, body = TriggerFailureList), (status = 404, description = "No such workflow, or it has no webhook trigger", body = crate::error::Problem)))]
pub async fn trigger_failures(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(WorkflowPath { id }): ApiPath<WorkflowPath>,
) -> ApiResult<Json<TriggerFailureList>> {
    principal.require(Scope::ConnectionsRead)?;
    if state.db.workflow(&principal.workspace_id, &id).await?.is_none() {
        return Err(ApiError::not_found("workflow"));
    }
    let trigger = state
        .db
        .trigger_of(&id)
        .await?
        .filter(|t| t.kind == "webhook")
        .ok_or_else(|| ApiError::not_found("webhook trigger"))?;
    let data = state
        .db
        .trigger_failures(&principal.workspace_id, &trigger.id, 100)
        .await?
        .into_iter()
        .map(|f| TriggerFailureView {
            reason: f.reason,
            created_at: f.created_at,
        })
        .collect();
    Ok(Json(TriggerFailureList { data }))
}
