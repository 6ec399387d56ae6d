//! Writes what the [`super::Recorder`] buffered (usage, last-use times, audit records).

use super::{Job, JobFuture, JobReport};
use crate::config::Config;
use crate::state::AppState;
use std::sync::Arc;
use std::time::Duration;

/// Flush the recorder every half second.
pub struct FlushRecorder;

impl Job for FlushRecorder {
    fn name(&self) -> &'static str {
        "flush-recorder"
    }

    fn interval(&self, _: &Config) -> Option<Duration> {
        Some(Duration::from_millis(500))
    }

    fn run_once<'a>(&'a self, state: &'a Arc<AppState>) -> JobFuture<'a> {
        Box::pin(async move {
            state.recorder.flush(&state.db).await?;
            Ok(JobReport::default())
        })
    }
}
