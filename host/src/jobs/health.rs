//! Periodic connection health checks: every connection not checked within the interval runs
//! its connector's test-connection, and its status follows the result.

use super::{Job, JobFuture, JobReport};
use crate::config::Config;
use crate::connections::check_health;
use crate::state::AppState;
use crate::store::now_ms;
use std::sync::Arc;
use std::time::Duration;

/// Connections checked per run.
const BATCH: usize = 50;

/// Check connections that are due (`NEXUM_HEALTH_CHECK_INTERVAL_SECS`; 0 switches it off).
pub struct HealthChecks;

impl Job for HealthChecks {
    fn name(&self) -> &'static str {
        "health-checks"
    }

    fn interval(&self, config: &Config) -> Option<Duration> {
        let every = config.health_check_interval_secs;
        (every > 0).then(|| Duration::from_secs(every.clamp(1, 30)))
    }

    fn run_once<'a>(&'a self, state: &'a Arc<AppState>) -> JobFuture<'a> {
        Box::pin(async move {
            let interval = i64::try_from(state.config.health_check_interval_secs).unwrap_or(i64::MAX / 1000);
            let due_before = now_ms().saturating_sub(interval.saturating_mul(1000));
            let due = state.db.connections_to_check(due_before, BATCH).await?;
            let handled = due.len();
            for connection in due {
                match check_health(state, &connection.workspace_id, &connection.id, "system").await {
                    Ok(report) if !report.ok => {
                        tracing::info!(connection = %connection.id, error = ?report.error, "health check failed")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(connection = %connection.id, error = %e.public_message(), "health check could not run")
                    }
                }
            }
            Ok(JobReport { handled })
        })
    }
}
