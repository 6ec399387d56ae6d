//! Keeping a connection's OAuth2 token usable around a call: refreshed before the call when
//! it expires within the provider's margin ([`ensure_fresh`]), and renewed once after an
//! upstream 401 ([`ConnectionRefresher`], the runtime's hook). The refresh itself
//! (single-flight, rotation, failure accounting) is `oauth::refresh`.

use super::{ConnectionResult, ConnectionStatus, Resolved, resolve};
use crate::ids::{ConnectionId, WorkspaceId};
use crate::oauth::{OAuthError, RefreshReason, needs_refresh, refresh};
use crate::runtime::{Connection, CredentialRefresher};
use crate::state::AppState;
use crate::store::now_ms;
use nexum_manifest::AuthKind;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

/// Before a call: refresh the connection's OAuth2 token if it expires within the margin,
/// and return the connection as it should be called. A failed refresh of a token that is
/// still valid does not fail the call; an unusable token does, with a clear 409.
pub async fn ensure_fresh(state: &Arc<AppState>, resolved: Arc<Resolved>) -> ConnectionResult<Arc<Resolved>> {
    let Some(credential) = resolved
        .connection
        .credentials
        .iter()
        .find(|c| matches!(c.scheme.kind, AuthKind::OAuth2(_)))
    else {
        return Ok(resolved);
    };
    if resolved.record.status == ConnectionStatus::Expired {
        return Err(OAuthError::Expired.into());
    }
    let AuthKind::OAuth2(endpoints) = &credential.scheme.kind else {
        return Ok(resolved);
    };
    let now = now_ms();
    if !needs_refresh(
        credential.expires_at,
        credential.issued_at,
        endpoints.refresh_margin_secs,
        now,
    ) {
        return Ok(resolved);
    }
    let still_valid = credential.expires_at.is_some_and(|e| e > now);
    let (workspace_id, id) = (&resolved.record.workspace_id, &resolved.record.id);
    match refresh(state, workspace_id, id, RefreshReason::Proactive, None).await {
        Ok(_) => {
            state.connections.evict(id);
            resolve(state, workspace_id, id).await
        }
        Err(_) if still_valid => Ok(resolved),
        Err(e) => Err(e.into()),
    }
}

/// The runtime's hook for renewing a connection's token after an upstream 401.
#[derive(Debug)]
pub struct ConnectionRefresher {
    state: Weak<AppState>,
    workspace_id: WorkspaceId,
    connection_id: ConnectionId,
}

impl ConnectionRefresher {
    /// A refresher for one connection.
    pub fn new(state: Weak<AppState>, workspace_id: &WorkspaceId, connection_id: &ConnectionId) -> Self {
        Self {
            state,
            workspace_id: workspace_id.clone(),
            connection_id: connection_id.clone(),
        }
    }
}

impl CredentialRefresher for ConnectionRefresher {
    fn refresh_after_unauthorized<'a>(
        &'a self,
        stale: &'a Connection,
    ) -> Pin<Box<dyn Future<Output = Option<Arc<Connection>>> + Send + 'a>> {
        Box::pin(async move {
            let state = self.state.upgrade()?;
            let stale_token = stale
                .credentials
                .iter()
                .find(|c| matches!(c.scheme.kind, AuthKind::OAuth2(_)))
                .map(|c| zeroize::Zeroizing::new(c.raw_token().to_string()))?;
            if let Err(e) = refresh(
                &state,
                &self.workspace_id,
                &self.connection_id,
                RefreshReason::Unauthorized,
                Some(stale_token.as_str()),
            )
            .await
            {
                tracing::info!(connection = %self.connection_id, error = %e, "no token renewal after a 401");
                return None;
            }
            state.connections.evict(&self.connection_id);
            resolve(&state, &self.workspace_id, &self.connection_id)
                .await
                .ok()
                .map(|r| r.connection.clone())
        })
    }
}
