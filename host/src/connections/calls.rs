//! Running an action on a connection: resolve it, keep its token fresh, execute in the
//! runtime, then the bookkeeping every call owes (usage, marketplace execution counts, the
//! `secret.use` audit record, metrics) and the status change the result implies.

use super::status::{Observation, is_sticky, next_status};
use super::{ConnectionResult, ensure_fresh, resolve};
use crate::ids::{ConnectionId, WorkspaceId};
use crate::runtime::{CallError, CallOutcome, Invocation};
use crate::state::AppState;
use crate::store::{AuditEntry, now_ms};
use serde_json::Value;
use std::sync::Arc;

/// Connector error codes that mean the connection's credentials or account are bad.
pub const AUTH_FAILURE_CODES: &[&str] = &[
    "unauthorized",
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "forbidden",
];

/// The outcome of one action call (the connector's result and the call's trace).
pub type ActionRun = CallOutcome;

/// Run `action` with `input` on connection `id` of `workspace_id`, as `actor` (an API key
/// id, `workflow:wf_…`, or `system`). `idempotency_key` is what the connector reads through
/// its `execution` import to pass upstream (a workflow step's stable key, or the client's
/// `Idempotency-Key`). Fails before the connector runs when the connection cannot be resolved
/// or its token is unusable; otherwise the connector's own result is in the outcome.
pub async fn run_action(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    actor: &str,
    id: &ConnectionId,
    action: &str,
    input: Value,
    idempotency_key: Option<&str>,
) -> ConnectionResult<ActionRun> {
    let resolved = resolve(state, workspace_id, id).await?;
    // The workspace's share of call slots: one tenant's slow upstream cannot fill the pool.
    let _slot = state
        .call_share
        .acquire_within(workspace_id, super::CALL_SLOT_PATIENCE)
        .await?;
    let resolved = ensure_fresh(state, resolved).await?;
    if resolved.record.auth_scheme.is_some() && resolved.connector.manifest.actions.contains_key(action) {
        // Durable before the secret is used: a call the log cannot show is not made.
        state
            .audit
            .append(AuditEntry::new(workspace_id, actor, "secret.use", id.as_str(), action))
            .await?;
    }
    let outcome = state
        .runtime
        .execute_keyed(
            &resolved.connector,
            resolved.connection.clone(),
            Invocation::Action {
                name: action.to_string(),
                input,
            },
            idempotency_key.map(str::to_string),
        )
        .await;
    let duration_ms = outcome.trace.duration_ms;
    let ran = !matches!(
        outcome.result,
        Err(CallError::UnknownAction { .. } | CallError::InvalidInput { .. })
    );
    if ran {
        state.recorder.call(
            workspace_id,
            id.as_str(),
            now_ms(),
            duration_ms,
            outcome.result.is_err(),
        );
        if let Some(package) = resolved.installation.source.strip_prefix("marketplace:") {
            state.recorder.execution(package, &resolved.installation.version);
        }
        let code = outcome
            .result
            .as_ref()
            .err()
            .map(CallError::metric_label)
            .unwrap_or("ok");
        state.metrics.action(code, duration_ms / 1000.0);
        track_status(state, workspace_id, resolved.record.status, id, &outcome.result).await;
        let connector = &resolved.installation.connector_id;
        emit_action_event(state, workspace_id, id, connector, action, &outcome.result, duration_ms).await;
    }
    Ok(outcome)
}

/// Write `action.failed` (a failed call) and `action.executed` (every call; opt-in) to the
/// outbox when an endpoint of the workspace receives them. The event is durable before the
/// caller gets its answer; a failure to write it is logged and does not fail the call.
async fn emit_action_event(
    state: &AppState,
    workspace_id: &WorkspaceId,
    id: &ConnectionId,
    connector: &str,
    action: &str,
    result: &Result<Value, CallError>,
    duration_ms: f64,
) {
    let error_code = match result {
        Ok(_) => None,
        Err(CallError::Connector { code, .. }) => Some(&code[..code.floor_char_boundary(100)]),
        Err(e) => Some(e.metric_label()),
    };
    let kinds: &[&str] = if error_code.is_some() {
        &["action.failed", "action.executed"]
    } else {
        &["action.executed"]
    };
    for kind in kinds {
        match state.subscriptions.wants(&state.db, workspace_id, kind).await {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "could not read webhook subscriptions; writing the event anyway"),
        }
        let data = serde_json::json!({
            "connection_id": id,
            "connector": connector,
            "action": action,
            "ok": error_code.is_none(),
            "error_code": error_code,
            "duration_ms": duration_ms,
        });
        if let Err(e) = state.db.append_event(workspace_id, kind, &data).await {
            tracing::warn!(error = %e, event = kind, "could not record an action event");
        }
    }
}

/// What a call's result says about the connection's credentials.
fn observe(result: &Result<Value, CallError>) -> Observation {
    match result {
        Ok(_) => Observation::CallSucceeded,
        Err(CallError::Connector { code, .. }) if AUTH_FAILURE_CODES.contains(&code.as_str()) => {
            Observation::CallAuthFailed
        }
        Err(_) => Observation::CallFailedOtherwise,
    }
}

/// Write the status a call's result implies, when it changes it. The resolved record's
/// status (possibly a few seconds old) decides whether to write at all, so a steady stream
/// of successful calls costs no writes; the store re-applies the rule to the row it reads.
async fn track_status(
    state: &AppState,
    workspace_id: &WorkspaceId,
    cached: super::ConnectionStatus,
    id: &ConnectionId,
    result: &Result<Value, CallError>,
) {
    let observation = observe(result);
    if next_status(cached, observation) == cached {
        return;
    }
    let error = match result {
        Err(CallError::Connector { code, message, .. }) => Some(format!("{code}: {message}")),
        _ => None,
    };
    let decided = state
        .db
        .set_connection_status(
            workspace_id,
            id,
            |current| {
                let next = next_status(current, observation);
                (next != current && !is_sticky(current)).then_some(next)
            },
            error.as_deref(),
            false,
        )
        .await;
    if let Err(e) = decided {
        tracing::warn!(error = %e, "could not record a connection status change");
    }
    state.connections.evict(id);
}
