//! The OAuth2 refresh sweep: tokens about to expire are refreshed before anyone needs them,
//! tokens that cannot be refreshed are marked `expired` once they lapse, and finished
//! authorization flows are forgotten. Safe on many nodes at once: each refresh is
//! single-flight and re-reads the token under its lock.

use super::{Job, JobFuture, JobReport};
use crate::config::Config;
use crate::ids::{InstallationId, WorkspaceId};
use crate::oauth::{RefreshReason, needs_refresh, refresh};
use crate::state::AppState;
use crate::store::now_ms;
use futures_util::StreamExt;
use nexum_manifest::{AuthKind, Manifest};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Tokens expiring within this window are looked at (each provider's margin then decides).
const LOOKAHEAD_MS: i64 = 24 * 3_600_000;

/// The sweep as a periodic job (`NEXUM_OAUTH_REFRESH_SWEEP_SECS`; 0 switches it off).
pub struct OAuthRefreshSweep;

impl Job for OAuthRefreshSweep {
    fn name(&self) -> &'static str {
        "oauth-refresh-sweep"
    }

    fn interval(&self, config: &Config) -> Option<Duration> {
        let every = config.oauth_refresh_sweep_secs;
        (every > 0).then(|| Duration::from_secs(every))
    }

    fn run_once<'a>(&'a self, state: &'a Arc<AppState>) -> JobFuture<'a> {
        Box::pin(async move {
            Ok(JobReport {
                handled: sweep(state).await,
            })
        })
    }
}

/// One pass: refresh what is due. Returns how many refreshes were attempted.
pub async fn sweep(state: &Arc<AppState>) -> usize {
    let now = now_ms();
    let _ = state.db.expire_oauth_flows(now - LOOKAHEAD_MS).await;
    let due = match state.db.connections_expiring(now + LOOKAHEAD_MS, 200).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "OAuth refresh sweep query failed");
            return 0;
        }
    };
    let mut margins: HashMap<InstallationId, Option<u64>> = HashMap::new();
    let mut work = Vec::new();
    for connection in due {
        let margin = match margins.get(&connection.installation_id) {
            Some(m) => *m,
            None => {
                let m = margin_of(
                    state,
                    &connection.workspace_id,
                    &connection.installation_id,
                    connection.auth_scheme.as_deref(),
                )
                .await;
                margins.insert(connection.installation_id.clone(), m);
                m
            }
        };
        let Some(margin) = margin else { continue };
        // The column has no issue time; the refresh itself re-checks with it under the lock.
        if !needs_refresh(connection.token_expires_at, None, margin, now) {
            continue;
        }
        work.push(connection);
    }
    // Refreshes run side by side (each workspace within its share of the refresh slots),
    // so one slow token endpoint delays only its own workspace's turn.
    let attempted = work.len();
    futures_util::stream::iter(work)
        .for_each_concurrent(SWEEP_CONCURRENCY, |connection| async move {
            if let Err(e) = refresh(
                state,
                &connection.workspace_id,
                &connection.id,
                RefreshReason::Sweep,
                None,
            )
            .await
            {
                tracing::info!(connection = %connection.id, error = %e, "sweep could not refresh a token");
            }
        })
        .await;
    attempted
}

/// Refreshes one sweep runs at once (the host-wide refresh slots bound them further).
const SWEEP_CONCURRENCY: usize = 16;

async fn margin_of(
    state: &AppState,
    workspace_id: &WorkspaceId,
    installation_id: &InstallationId,
    scheme: Option<&str>,
) -> Option<u64> {
    let installation = state.db.installation(workspace_id, installation_id).await.ok()??;
    let manifest = Manifest::parse(&installation.manifest).ok()?;
    match &manifest.auth_scheme(scheme?)?.kind {
        AuthKind::OAuth2(e) => Some(e.refresh_margin_secs),
        _ => None,
    }
}
