//! Token refresh, exactly once per connection at a time.
//!
//! A refresh takes this process's lock for the connection, then the database's refresh
//! lock (a row lock on PostgreSQL, so nodes sharing the database queue up), then re-reads
//! the stored token: if another task or node refreshed meanwhile, its token is used and the
//! provider is not called. A rotated refresh token is saved in the same transaction as the
//! access token it came with. `invalid_grant` re-reads once more before the connection is
//! declared broken, in case someone rotated the token while we asked.

use super::{OAuthError, ProviderError, apps, endpoints_of, needs_refresh, token_fields, token_url};
use crate::connections::status::{Observation, is_sticky, next_status};
use crate::ids::{ConnectionId, WorkspaceId};
use crate::state::AppState;
use crate::store::{ConnectionStatus, TokenUpdate, now_ms};
use nexum_manifest::Manifest;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest a refresh waits for one of its workspace's refresh slots.
pub const REFRESH_SLOT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// What asked for a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshReason {
    /// A call needs a token that expires within the provider's margin.
    Proactive,
    /// The background sweep found a token about to expire.
    Sweep,
    /// The upstream answered 401 to the token the caller holds.
    Unauthorized,
    /// An admin asked (`POST /connections/{id}/refresh`): runs even when exhausted.
    Forced,
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// New tokens were fetched and stored.
    Refreshed,
    /// The stored token was already fresh (another task or node refreshed it).
    AlreadyFresh,
}

/// Refresh the OAuth2 token of a connection (see the module docs).
///
/// The work runs as its own task: once a provider has rotated a refresh token, the new one
/// must be saved even if the caller (a request, a call past its deadline) gives up.
pub async fn refresh(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    connection_id: &ConnectionId,
    reason: RefreshReason,
    stale_access_token: Option<&str>,
) -> Result<RefreshOutcome, OAuthError> {
    let app = state.clone();
    let (ws, id) = (workspace_id.clone(), connection_id.clone());
    let stale = stale_access_token.map(|s| zeroize::Zeroizing::new(s.to_string()));
    tokio::spawn(async move { refresh_now(&app, &ws, &id, reason, stale.as_ref().map(|s| s.as_str())).await })
        .await
        .map_err(|_| OAuthError::Invalid {
            code: "refresh_failed",
            message: "the token refresh stopped unexpectedly; try again".into(),
        })?
}

async fn refresh_now(
    state: &AppState,
    workspace_id: &WorkspaceId,
    connection_id: &ConnectionId,
    reason: RefreshReason,
    stale_access_token: Option<&str>,
) -> Result<RefreshOutcome, OAuthError> {
    // Everything that needs no lock is read first, so a held row lock never waits for
    // another pool connection.
    let record = state
        .db
        .connection(workspace_id, connection_id)
        .await?
        .ok_or(OAuthError::NotFound("connection"))?;
    let installation = state
        .db
        .installation(workspace_id, &record.installation_id)
        .await?
        .ok_or(OAuthError::NotFound("connector installation"))?;
    let manifest = Manifest::parse(&installation.manifest).map_err(|e| OAuthError::Invalid {
        code: "invalid_connection",
        message: e.to_string(),
    })?;
    let scheme_id = record.auth_scheme.clone().unwrap_or_default();
    let scheme = manifest.auth_scheme(&scheme_id).ok_or_else(|| OAuthError::Invalid {
        code: "not_oauth2",
        message: "this connection does not use OAuth2".into(),
    })?;
    let endpoints = endpoints_of(scheme)?;
    let variables: BTreeMap<String, String> = serde_json::from_str(&record.variables).unwrap_or_default();
    let variables = manifest
        .resolve_variables(&variables)
        .map_err(|e| OAuthError::Invalid {
            code: "invalid_variables",
            message: e.to_string(),
        })?;
    let client = async {
        let url = token_url(&manifest, scheme, &variables)?;
        let stored = match state.db.secret_of(workspace_id, connection_id.as_str()).await? {
            Some(sealed) => Some(state.vault.open_fields(&sealed)?),
            None => None,
        };
        let (app, _) = apps::client_app(
            state,
            apps::AppLookup {
                workspace_id,
                connector_id: &installation.connector_id,
                signer: &installation.signer,
                stored: stored.as_ref(),
                token_url: &url,
                client_credentials: endpoints.uses_client_credentials(),
            },
        )
        .await?;
        Ok::<_, OAuthError>((url, app))
    }
    .await;

    // The connection's own lock first: callers waiting for the same refresh hold no slot.
    // Then the workspace's share, so one workspace's slow token endpoint cannot take every
    // slot, then a slot of the whole host.
    let _local = state.oauth.lock(connection_id.as_str()).await;
    let shutting_down = || OAuthError::Invalid {
        code: "shutting_down",
        message: "the server is shutting down".into(),
    };
    let _share = state
        .oauth
        .refresh_share
        .acquire_within(workspace_id, REFRESH_SLOT_PATIENCE)
        .await
        .map_err(|busy| OAuthError::Invalid {
            code: "workspace_busy",
            message: busy.to_string(),
        })?;
    let _slot = state.oauth.refresh_slots.acquire().await.map_err(|_| shutting_down())?;
    let mut lock = state.db.lock_for_refresh(workspace_id, connection_id).await?;
    let Some(current) = lock.connection().await? else {
        lock.release().await?;
        return Err(OAuthError::NotFound("connection"));
    };
    // The token URL and app above were chosen for the variables read before the lock. If an
    // admin has since pointed the connection elsewhere (with new tokens, under this lock),
    // those tokens must not go to the old endpoint: leave them to the next call.
    if current.variables != record.variables {
        lock.release().await?;
        state.connections.evict(connection_id);
        return Ok(RefreshOutcome::AlreadyFresh);
    }
    let expected_variables = record.variables.clone();
    let record = current;
    if reason != RefreshReason::Forced && is_sticky(record.status) {
        lock.release().await?;
        return Err(if record.status == ConnectionStatus::Expired {
            OAuthError::Expired
        } else {
            OAuthError::Exhausted(record.refresh_failures)
        });
    }
    let Some(sealed) = lock.secret().await? else {
        lock.release().await?;
        return Err(OAuthError::Invalid {
            code: "missing_credentials",
            message: "this connection has no stored tokens; reconnect it".into(),
        });
    };
    let fields = state.vault.open_fields(&sealed)?;
    let now = now_ms();
    let expires_at = super::expires_at_of(&fields);
    let issued_at = fields.0.get("issued_at").and_then(|v| v.parse().ok());
    let current_is_fresh = match reason {
        RefreshReason::Proactive | RefreshReason::Sweep => {
            !needs_refresh(expires_at, issued_at, endpoints.refresh_margin_secs, now)
        }
        RefreshReason::Unauthorized => fields.0.get("access_token").map(String::as_str) != stale_access_token,
        RefreshReason::Forced => false,
    };
    if current_is_fresh {
        lock.release().await?;
        return Ok(RefreshOutcome::AlreadyFresh);
    }
    let refresh_token = fields.0.get("refresh_token").filter(|t| !t.is_empty()).cloned();
    if refresh_token.is_none() && !endpoints.uses_client_credentials() {
        let expired = expires_at.is_some_and(|e| e <= now) || reason == RefreshReason::Unauthorized;
        if !expired {
            lock.release().await?;
            if reason == RefreshReason::Forced {
                return Err(OAuthError::Invalid {
                    code: "no_refresh_token",
                    message:
                        "the provider issued no refresh token; the token stays valid until it expires, then reconnect"
                            .into(),
                });
            }
            return Ok(RefreshOutcome::AlreadyFresh);
        }
        lock.finish(TokenUpdate {
            secret: None,
            token_expires_at: expires_at,
            refresh_failures: record.refresh_failures,
            status: next_status(record.status, Observation::TokenExpired),
            last_error: Some(&OAuthError::Expired.to_string()),
            failed_event: None,
            settings: None,
            expected_variables: Some(&expected_variables),
        })
        .await?;
        state.connections.evict(connection_id);
        return Err(OAuthError::Expired);
    }

    let attempt = async {
        let (url, app) = client?;
        let issued = match &refresh_token {
            Some(rt) => state.oauth.tokens.refresh(endpoints, &url, &app, rt).await?,
            None => state.oauth.tokens.client_credentials(endpoints, &url, &app).await?,
        };
        Ok::<_, OAuthError>(issued)
    };
    let failure = match attempt.await {
        Ok(issued) => {
            let fresh = token_fields(&issued, Some(&fields));
            let sealed = state.vault.seal_fields(workspace_id, connection_id.as_str(), &fresh)?;
            lock.finish(TokenUpdate {
                secret: Some(&sealed),
                token_expires_at: super::expires_at_of(&fresh),
                refresh_failures: 0,
                status: next_status(record.status, Observation::RefreshSucceeded),
                last_error: None,
                failed_event: None,
                settings: None,
                expected_variables: Some(&expected_variables),
            })
            .await?;
            state.connections.evict(connection_id);
            tracing::info!(connection = %connection_id, reason = ?reason, "OAuth2 token refreshed");
            return Ok(RefreshOutcome::Refreshed);
        }
        Err(OAuthError::Provider(ProviderError::InvalidGrant(d))) => {
            // Another node, or a reconnect, may have rotated the token while we asked: the
            // provider then refuses our (now old) refresh token. Use theirs.
            if let Some(latest) = lock.secret().await?
                && latest.id != sealed.id
            {
                lock.release().await?;
                state.connections.evict(connection_id);
                tracing::info!(connection = %connection_id, "refresh token was rotated elsewhere; using the stored one");
                return Ok(RefreshOutcome::AlreadyFresh);
            }
            OAuthError::Provider(ProviderError::InvalidGrant(d))
        }
        Err(e) => e,
    };
    let transient = matches!(&failure, OAuthError::Provider(p) if p.is_transient());
    let message = failure.to_string();
    // A provider outage is not the account's fault: it does not count towards exhaustion.
    let failures = record.refresh_failures + i64::from(!transient);
    let status = next_status(
        record.status,
        Observation::RefreshFailed {
            transient,
            token_lapsed: expires_at.is_some_and(|e| e <= now),
            failures,
            max_failures: state.oauth.max_refresh_failures,
        },
    );
    lock.finish(TokenUpdate {
        secret: None,
        token_expires_at: expires_at,
        refresh_failures: failures,
        status,
        last_error: Some(&message),
        failed_event: Some(serde_json::json!({
            "connection_id": connection_id,
            "error": message,
            "transient": transient,
            "consecutive_failures": failures,
            "status": status,
        })),
        settings: None,
        expected_variables: Some(&expected_variables),
    })
    .await?;
    state.connections.evict(connection_id);
    tracing::warn!(connection = %connection_id, reason = ?reason, error = %message, "OAuth2 token refresh failed");
    Err(failure)
}
