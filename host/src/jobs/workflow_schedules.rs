//! Schedule triggers as a periodic job: every second each node starts the executions of the
//! schedules that are due (each tick exactly once across nodes; see
//! [`crate::workflows::schedule`]).

use super::{Job, JobFuture, JobReport};
use crate::config::Config;
use crate::state::AppState;
use std::sync::Arc;
use std::time::Duration;

/// Looks for due schedules every second.
pub struct WorkflowSchedules;

impl Job for WorkflowSchedules {
    fn name(&self) -> &'static str {
        "workflow-schedules"
    }

    fn interval(&self, _config: &Config) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn run_once<'a>(&'a self, state: &'a Arc<AppState>) -> JobFuture<'a> {
        Box::pin(async move {
            let handled = crate::workflows::schedule::fire_due(state, crate::store::now_ms()).await?;
            Ok(JobReport { handled })
        })
    }
}
