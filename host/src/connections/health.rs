//! A connection's health: its connector's test-connection, run on demand
//! (`POST /connections/{id}/test`) or by the periodic health-check job, with the status the
//! result implies written back.

use super::status::{Observation, next_status};
use super::{ConnectionError, ConnectionResult, ConnectionStatus, ensure_fresh, resolve};
use crate::ids::{ConnectionId, WorkspaceId};
use crate::runtime::{CallError, Invocation};
use crate::state::AppState;
use crate::store::AuditEntry;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// The outcome of a health check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthReport {
    /// Whether the credentials work (never true for a connection that needs reconnecting).
    pub ok: bool,
    /// The connection's status after the check.
    pub status: ConnectionStatus,
    /// What the connector reported about the account (on success).
    #[schema(value_type = Option<Object>)]
    pub account: Option<Value>,
    /// The failure (on error).
    pub error: Option<String>,
}

/// Run test-connection for a connection, as `actor`, and store the status it implies.
/// A connection that cannot even be resolved (credentials unreadable, connector gone) is
/// reported and marked `error`; one that does not exist is [`ConnectionError::NotFound`].
pub async fn check_health(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    id: &ConnectionId,
    actor: &str,
) -> ConnectionResult<HealthReport> {
    let (account, failure) = match probe(state, workspace_id, id, actor).await {
        Ok(account) => (account, None),
        Err(e) if e.is_not_found() => return Err(e),
        Err(e) => (None, Some(e)),
    };
    let observation = if failure.is_some() {
        Observation::HealthFailed
    } else {
        Observation::HealthPassed
    };
    let mut error = failure.as_ref().map(ConnectionError::public_message);
    let stored = state
        .db
        .set_connection_status(
            workspace_id,
            id,
            |current| {
                let next = next_status(current, observation);
                // A sticky status keeps the reason it was set for.
                (next != current || !super::status::is_sticky(current)).then_some(next)
            },
            error.as_deref(),
            true,
        )
        .await?
        .ok_or(ConnectionError::NotFound("connection"))?;
    state.connections.evict(id);
    // A dying token is not made healthy by a test that still passes: only a reconnect or a
    // successful refresh leaves `refresh_exhausted` or `expired`.
    let ok = failure.is_none() && stored == ConnectionStatus::Connected;
    if !ok && error.is_none() {
        error = Some(format!("the connection is {}", stored.as_str()));
    }
    Ok(HealthReport {
        ok,
        status: stored,
        account: if ok { account } else { None },
        error,
    })
}

/// Resolve, refresh if due, and run test-connection. `Ok(None)` when the connector does not
/// implement it (nothing to learn, so it counts as passing).
async fn probe(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    id: &ConnectionId,
    actor: &str,
) -> ConnectionResult<Option<Value>> {
    let resolved = resolve(state, workspace_id, id).await?;
    let _slot = state
        .call_share
        .acquire_within(workspace_id, super::CALL_SLOT_PATIENCE)
        .await?;
    let resolved = ensure_fresh(state, resolved).await?;
    state
        .audit
        .append(AuditEntry::new(
            workspace_id,
            actor,
            "secret.use",
            id.as_str(),
            "test-connection",
        ))
        .await?;
    let outcome = state
        .runtime
        .execute(
            &resolved.connector,
            resolved.connection.clone(),
            Invocation::TestConnection,
        )
        .await;
    match outcome.result {
        Ok(account) => Ok(Some(account)),
        Err(CallError::Connector { code, .. }) if code == "not_supported" => Ok(None),
        Err(e) => Err(ConnectionError::TestFailed(e.to_string())),
    }
}
