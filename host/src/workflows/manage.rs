//! Saving workflows and starting executions. A save is checked in full before anything is
//! written: the definition on its own ([`Definition::check`]), then against the workspace
//! (each connection exists here, its connector has the action, and static inputs satisfy the
//! action's input schema as far as it is knowable before templates render). Each save that
//! changes the definition is a new version; a webhook trigger's secrets are sealed in the
//! vault under its stable `trg_…` id.

use super::cron::{CronSchedule, Missed};
use super::definition::{Definition, Problem, Trigger};
use super::signatures::Scheme;
use crate::ids::{ExecutionId, TriggerId, WorkflowId, WorkspaceId};
use crate::state::AppState;
use crate::store::{NewExecution, StoreError, TemplateLink, TriggerRecord, WorkflowRecord, WorkflowSave, now_ms};
use crate::vault::{SecretFields, VaultError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most workflows one workspace may have.
pub const MAX_WORKFLOWS: usize = 1000;
/// Largest execution input (bytes of JSON).
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// Why a save or a start was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The definition has problems; each names its field.
    #[error("the workflow is invalid: {}", .0.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// No such workflow in this workspace.
    #[error("no such workflow")]
    NotFound,
    /// Another edit came first.
    #[error("the workflow was changed by another request meanwhile; read it again and retry")]
    Changed,
    /// The workspace has as many workflows as it may.
    #[error("the workspace has {MAX_WORKFLOWS} workflows, the most it may have")]
    TooMany,
    /// The input is too large.
    #[error("the execution input is over {MAX_INPUT_BYTES} bytes")]
    InputTooLarge,
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Vault (sealing trigger secrets).
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// What a client sends to create a workflow (or, all optional, to change one).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowInput {
    /// Display name (1–200 characters).
    pub name: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Whether triggers start it (default true). The API can always start it.
    pub enabled: Option<bool>,
    /// What starts it (default manual).
    #[schema(value_type = Option<Object>)]
    pub trigger: Option<Value>,
    /// Values steps read as `vars.<name>`.
    #[schema(value_type = Option<Object>)]
    pub vars: Option<Value>,
    /// The steps.
    #[schema(value_type = Option<Vec<Object>>)]
    pub steps: Option<Value>,
    /// The execution's output (templated).
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
}

/// A saved workflow.
pub struct Saved {
    /// Its row.
    pub workflow: WorkflowRecord,
    /// Its current definition (no secrets).
    pub definition: Definition,
    /// Its trigger row.
    pub trigger: Option<TriggerRecord>,
}

fn invalid(path: &str, message: impl Into<String>) -> WorkflowError {
    WorkflowError::Invalid(vec![Problem {
        path: path.to_string(),
        message: message.into(),
    }])
}

/// Assemble a definition from a client's fields over `base` (an update keeps what it omits).
fn definition_from(input: &WorkflowInput, base: Option<&Definition>) -> Result<Definition, WorkflowError> {
    let mut object = match base {
        Some(b) => serde_json::to_value(b).map_err(|_| invalid("", "cannot read the current definition"))?,
        None => Value::Object(Default::default()),
    };
    for (name, value) in [
        ("trigger", &input.trigger),
        ("vars", &input.vars),
        ("steps", &input.steps),
        ("output", &input.output),
    ] {
        if let Some(v) = value {
            object[name] = v.clone();
        }
    }
    if object.get("steps").is_none() {
        return Err(invalid("steps", "a workflow needs steps"));
    }
    super::definition::parse_strict(object, "").map_err(|p| WorkflowError::Invalid(vec![p]))
}

/// The checks that need the workspace: connections, actions and input schemas.
pub async fn check_against_workspace(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    definition: &Definition,
) -> Result<Vec<Problem>, StoreError> {
    let mut problems = Vec::new();
    for (i, connection, action, input) in definition.connections() {
        let at = format!("steps[{i}]");
        let manifest = match connector_manifest(state, workspace_id, connection).await? {
            Ok(Some(manifest)) => manifest,
            Ok(None) => continue,
            Err(message) => {
                problems.push(Problem {
                    path: format!("{at}.connection"),
                    message,
                });
                continue;
            }
        };
        let Some(declared) = manifest.actions.get(action) else {
            let known: Vec<&str> = manifest.actions.keys().map(String::as_str).collect();
            problems.push(Problem {
                path: format!("{at}.action"),
                message: format!(
                    "the connector `{}` has no action `{action}` (it has: {})",
                    manifest.id,
                    known.join(", ")
                ),
            });
            continue;
        };
        problems.extend(check_input_schema(&declared.input, input, &format!("{at}.input")));
    }
    if let Trigger::Webhook {
        scheme: None,
        connection: Some(connection),
        ..
    } = &definition.trigger
    {
        match webhook_scheme_of(state, workspace_id, connection).await? {
            Some(_) => {}
            None => problems.push(Problem {
                path: "trigger.connection".into(),
                message: "the connection's connector declares no webhook scheme; name `scheme`".into(),
            }),
        }
    }
    Ok(problems)
}

/// What is knowable before rendering: required properties are present, no property the
/// schema forbids is given, and every input value without a template matches its property's
/// schema.
fn check_input_schema(schema: &Value, input: &Value, path: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(given) = input.as_object() else {
        return problems;
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !given.contains_key(name) {
                problems.push(Problem {
                    path: path.to_string(),
                    message: format!("the action requires `{name}`"),
                });
            }
        }
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        for name in given.keys() {
            if !properties.is_some_and(|p| p.contains_key(name)) {
                problems.push(Problem {
                    path: format!("{path}.{name}"),
                    message: "the action's input has no such property".into(),
                });
            }
        }
    }
    if let Some(properties) = properties {
        for (name, value) in given {
            let (Some(property), false) = (properties.get(name), has_template(value)) else {
                continue;
            };
            if let Ok(validator) = jsonschema::validator_for(property)
                && let Some(error) = validator.iter_errors(value).next()
            {
                problems.push(Problem {
                    path: format!("{path}.{name}"),
                    message: error.to_string(),
                });
            }
        }
    }
    problems
}

fn has_template(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(items) => items.iter().any(has_template),
        Value::Object(map) => map.values().any(has_template),
        _ => false,
    }
}

/// The manifest of the connector behind `connection`: `Err` says why there is none (no such
/// connection here, or its connector is not installed); `Ok(None)` when the stored manifest
/// no longer parses (nothing more can be checked against it).
async fn connector_manifest(
    state: &AppState,
    workspace_id: &WorkspaceId,
    connection: &crate::ids::ConnectionId,
) -> Result<Result<Option<nexum_manifest::Manifest>, String>, StoreError> {
    let Some(record) = state.db.connection(workspace_id, connection).await? else {
        return Ok(Err(format!("no connection `{connection}` in this workspace")));
    };
    let Some(installation) = state.db.installation(workspace_id, &record.installation_id).await? else {
        return Ok(Err("the connection's connector is not installed".into()));
    };
    Ok(Ok(nexum_manifest::Manifest::parse(&installation.manifest).ok()))
}

/// The scheme a connection's connector declares for its provider's webhooks.
pub async fn webhook_scheme_of(
    state: &AppState,
    workspace_id: &WorkspaceId,
    connection: &crate::ids::ConnectionId,
) -> Result<Option<Scheme>, StoreError> {
    let Ok(Some(manifest)) = connector_manifest(state, workspace_id, connection).await? else {
        return Ok(None);
    };
    Ok(manifest
        .webhooks
        .and_then(|w| serde_json::from_value(Value::String(w.scheme)).ok()))
}

/// The trigger row a definition needs (keeping `existing`'s id), or `None` for manual.
async fn trigger_row(
    state: &AppState,
    workspace_id: &WorkspaceId,
    workflow_id: &str,
    definition: &Definition,
    existing: Option<&TriggerRecord>,
) -> Result<Option<TriggerRecord>, WorkflowError> {
    let id = existing.map_or_else(|| TriggerId::generate().to_string(), |t| t.id.clone());
    let created_at = existing.map_or_else(now_ms, |t| t.created_at);
    let row = |kind: &str, scheme: Option<String>, next_run_at: Option<i64>| TriggerRecord {
        id: id.clone(),
        workspace_id: workspace_id.clone(),
        workflow_id: workflow_id.to_string(),
        kind: kind.to_string(),
        scheme,
        next_run_at,
        created_at,
    };
    Ok(match &definition.trigger {
        Trigger::Manual => None,
        Trigger::Schedule { cron, timezone, .. } => {
            let schedule = CronSchedule::parse(cron, timezone).map_err(|e| invalid("trigger.cron", e.to_string()))?;
            Some(row("schedule", None, schedule.next_after(now_ms())))
        }
        Trigger::Webhook { scheme, connection, .. } => {
            let scheme = match (scheme, connection) {
                (Some(s), _) => Some(*s),
                (None, Some(c)) => webhook_scheme_of(state, workspace_id, c).await?,
                (None, None) => None,
            }
            .ok_or_else(|| invalid("trigger.scheme", "name the signature scheme"))?;
            Some(row("webhook", Some(scheme.as_str().to_string()), None))
        }
    })
}

/// Seal a webhook trigger's secrets (`secret:0`, `secret:1`, …) under its id.
fn seal_secrets(
    state: &AppState,
    workspace_id: &WorkspaceId,
    trigger_id: &str,
    secrets: &[String],
) -> Result<crate::store::SecretRecord, VaultError> {
    let fields: BTreeMap<String, String> = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("secret:{i}"), s.trim().to_string()))
        .collect();
    state.vault.seal_fields(workspace_id, trigger_id, &SecretFields(fields))
}

/// Open a webhook trigger's sealed secrets (empty when none are readable).
pub async fn trigger_secrets(state: &AppState, workspace_id: &WorkspaceId, trigger_id: &str) -> SecretFields {
    let Ok(Some(sealed)) = state.db.secret_of(workspace_id, trigger_id).await else {
        return SecretFields::default();
    };
    state.vault.open_fields(&sealed).unwrap_or_default()
}

fn check_name(name: &str) -> Result<(), WorkflowError> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "1–200 characters"));
    }
    Ok(())
}

/// Check everything, then store a new workflow (version 1).
pub async fn create(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    input: WorkflowInput,
) -> Result<Saved, WorkflowError> {
    create_linked(state, workspace_id, input, None).await
}

/// Create a workflow as [`create`] does, linked (in the same write) to the template version
/// it is made from.
pub async fn create_linked(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    input: WorkflowInput,
    template: Option<&TemplateLink>,
) -> Result<Saved, WorkflowError> {
    let name = input
        .name
        .clone()
        .ok_or_else(|| invalid("name", "a workflow needs a name"))?;
    check_name(&name)?;
    let definition = definition_from(&input, None)?;
    let mut problems = definition.check(&state.workflows.renderer);
    problems.extend(check_against_workspace(state, workspace_id, &definition).await?);
    if let Trigger::Webhook { secrets: None, .. } = &definition.trigger {
        problems.push(Problem {
            path: "trigger.secrets".into(),
            message: "a webhook trigger needs its signing secret(s)".into(),
        });
    }
    if !problems.is_empty() {
        return Err(WorkflowError::Invalid(problems));
    }
    if state
        .db
        .list_workflows(workspace_id, "", MAX_WORKFLOWS)
        .await?
        .items
        .len()
        >= MAX_WORKFLOWS
    {
        return Err(WorkflowError::TooMany);
    }
    let id = WorkflowId::generate().to_string();
    let now = now_ms();
    let workflow = WorkflowRecord {
        id: id.clone(),
        workspace_id: workspace_id.clone(),
        name: name.trim().to_string(),
        description: input.description.clone().unwrap_or_default(),
        enabled: i64::from(input.enabled.unwrap_or(true)),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let trigger = trigger_row(state, workspace_id, &id, &definition, None).await?;
    let sealed = match (&definition.trigger, &trigger) {
        (Trigger::Webhook { secrets: Some(s), .. }, Some(t)) => Some(seal_secrets(state, workspace_id, &t.id, s)?),
        _ => None,
    };
    let stored = definition.without_secrets();
    let text = serde_json::to_string(&stored).map_err(|_| invalid("", "cannot encode the definition"))?;
    state
        .db
        .insert_workflow(&WorkflowSave {
            workflow: &workflow,
            definition: Some(&text),
            trigger: trigger.as_ref(),
            sealed: sealed.as_ref(),
            unseal: None,
            keep_next_run: false,
            template,
        })
        .await?;
    Ok(Saved {
        workflow,
        definition: stored,
        trigger,
    })
}

/// The current version of a workflow.
pub async fn load(state: &Arc<AppState>, workspace_id: &WorkspaceId, id: &str) -> Result<Saved, WorkflowError> {
    let workflow = state
        .db
        .workflow(workspace_id, id)
        .await?
        .ok_or(WorkflowError::NotFound)?;
    complete(state, workflow).await
}

/// A workflow row with its current definition and trigger (a listing has the rows already).
pub async fn complete(state: &Arc<AppState>, workflow: WorkflowRecord) -> Result<Saved, WorkflowError> {
    let definition = state
        .workflows
        .definition(&state.db, &workflow.id, workflow.version)
        .await?
        .ok_or(WorkflowError::Store(StoreError::Corrupt("workflow_versions")))?;
    let trigger = state.db.trigger_of(&workflow.id).await?;
    Ok(Saved {
        workflow,
        definition: (*definition).clone(),
        trigger,
    })
}

/// Change a workflow: name, description and enabled in place; any of trigger, vars, steps or
/// output makes a new version (checked in full, like a create).
pub async fn update(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    id: &str,
    input: WorkflowInput,
) -> Result<Saved, WorkflowError> {
    update_linked(state, workspace_id, id, input, None, None).await
}

/// Change a workflow as [`update`] does, only if it is still at `expected_version` (when
/// given), and re-link it (in the same write) to the template version it now follows.
pub async fn update_linked(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    id: &str,
    input: WorkflowInput,
    expected_version: Option<i64>,
    template: Option<&TemplateLink>,
) -> Result<Saved, WorkflowError> {
    let current = load(state, workspace_id, id).await?;
    if expected_version.is_some_and(|v| v != current.workflow.version) {
        return Err(WorkflowError::Changed);
    }
    let mut workflow = current.workflow.clone();
    if let Some(name) = &input.name {
        check_name(name)?;
        workflow.name = name.trim().to_string();
    }
    if let Some(description) = &input.description {
        workflow.description = description.clone();
    }
    if let Some(enabled) = input.enabled {
        workflow.enabled = i64::from(enabled);
    }
    workflow.updated_at = now_ms().max(current.workflow.updated_at + 1);
    let changes_definition =
        input.trigger.is_some() || input.vars.is_some() || input.steps.is_some() || input.output.is_some();
    if !changes_definition {
        state
            .db
            .update_workflow(
                &WorkflowSave {
                    workflow: &workflow,
                    definition: None,
                    trigger: None,
                    sealed: None,
                    unseal: None,
                    keep_next_run: true,
                    template,
                },
                current.workflow.updated_at,
            )
            .await
            .map_err(changed)?;
        state.workflows.forget_triggers();
        return Ok(Saved {
            workflow,
            definition: current.definition,
            trigger: current.trigger,
        });
    }
    let definition = definition_from(&input, Some(&current.definition))?;
    let mut problems = definition.check(&state.workflows.renderer);
    problems.extend(check_against_workspace(state, workspace_id, &definition).await?);
    let was_webhook = current.trigger.as_ref().is_some_and(|t| t.kind == "webhook");
    if let Trigger::Webhook { secrets: None, .. } = &definition.trigger
        && !was_webhook
    {
        problems.push(Problem {
            path: "trigger.secrets".into(),
            message: "a webhook trigger needs its signing secret(s)".into(),
        });
    }
    if !problems.is_empty() {
        return Err(WorkflowError::Invalid(problems));
    }
    // A schedule keeps its next tick when its schedule did not change (an edit of the steps
    // must not skip or repeat a tick).
    let same_schedule = matches!(
        (&current.definition.trigger, &definition.trigger),
        (Trigger::Schedule { cron: a, timezone: ta, .. }, Trigger::Schedule { cron: b, timezone: tb, .. }) if a == b && ta == tb
    );
    let mut trigger = trigger_row(state, workspace_id, id, &definition, current.trigger.as_ref()).await?;
    if same_schedule && let (Some(t), Some(old)) = (trigger.as_mut(), current.trigger.as_ref()) {
        t.next_run_at = old.next_run_at;
    }
    let sealed = match (&definition.trigger, &trigger) {
        (Trigger::Webhook { secrets: Some(s), .. }, Some(t)) => Some(seal_secrets(state, workspace_id, &t.id, s)?),
        _ => None,
    };
    let unseal = match (&definition.trigger, &current.trigger) {
        (Trigger::Webhook { .. }, _) => None,
        (_, Some(old)) if old.kind == "webhook" => Some(old.id.clone()),
        _ => None,
    };
    workflow.version = current.workflow.version + 1;
    let stored = definition.without_secrets();
    let text = serde_json::to_string(&stored).map_err(|_| invalid("", "cannot encode the definition"))?;
    state
        .db
        .update_workflow(
            &WorkflowSave {
                workflow: &workflow,
                definition: Some(&text),
                trigger: trigger.as_ref(),
                sealed: sealed.as_ref(),
                unseal: unseal.as_deref(),
                keep_next_run: same_schedule,
                template,
            },
            current.workflow.updated_at,
        )
        .await
        .map_err(changed)?;
    state.workflows.forget_triggers();
    Ok(Saved {
        workflow,
        definition: stored,
        trigger,
    })
}

fn changed(e: StoreError) -> WorkflowError {
    match e {
        StoreError::Changed => WorkflowError::Changed,
        other => WorkflowError::Store(other),
    }
}

/// Start an execution of the workflow's current version with `input` (the `trigger` its
/// templates read). Returns the execution id.
pub async fn start(
    state: &AppState,
    workflow: &WorkflowRecord,
    trigger_kind: &str,
    input: &Value,
) -> Result<String, WorkflowError> {
    let text = input.to_string();
    if text.len() > MAX_INPUT_BYTES {
        return Err(WorkflowError::InputTooLarge);
    }
    let id = ExecutionId::generate().to_string();
    state
        .db
        .start_execution(&NewExecution {
            id: &id,
            workspace_id: &workflow.workspace_id,
            workflow_id: &workflow.id,
            version: workflow.version,
            trigger_kind,
            input: &text,
        })
        .await?;
    state.queue.wake(crate::store::WORKFLOW_QUEUE);
    Ok(id)
}

/// Whether a schedule trigger's `missed` policy says to run one missed tick.
pub fn missed_policy(definition: &Definition) -> Missed {
    match &definition.trigger {
        Trigger::Schedule { missed, .. } => *missed,
        _ => Missed::Skip,
    }
}
