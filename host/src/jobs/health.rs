//! Periodic connection health checks: every connection not checked within the interval runs
//! its connector's test-connection, and its status follows the result.

use crate::api::AppState;
use crate::store::now_ms;
use std::sync::Arc;
use std::time::Duration;

/// Check due connections until `stop` resolves.
pub async fn run(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = state.config.health_check_interval_secs;
    if interval == 0 {
        return;
    }
    let tick = Duration::from_secs(interval.clamp(1, 30));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
        let due_before = now_ms() - (interval as i64) * 1000;
        let due = match state.db.connections_to_check(due_before, 50).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "health check query failed");
                continue;
            }
        };
        for connection in due {
            match crate::api::check_health(&state, &connection.workspace_id, &connection.id, "system").await {
                Ok(result) if !result.ok => {
                    tracing::info!(connection = %connection.id, error = ?result.error, "health check failed")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(connection = %connection.id, code = e.code(), "health check could not run"),
            }
        }
    }
}
