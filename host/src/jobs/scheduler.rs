//! Runs each periodic [`Job`] on its own timer until shutdown (or earlier, when its bell
//! rings). A failed run is logged and retried at the next tick; one slow job never delays
//! another.

use super::Job;
use crate::state::AppState;
use std::sync::Arc;

/// The running periodic jobs of a server.
pub struct Scheduler {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Scheduler {
    /// Start `jobs` (those switched on by the settings) until `stop` changes.
    pub fn start(state: &Arc<AppState>, jobs: Vec<Arc<dyn Job>>, stop: &tokio::sync::watch::Receiver<bool>) -> Self {
        let tasks = jobs
            .into_iter()
            .filter_map(|job| {
                let every = job.interval(&state.config)?;
                let (state, mut stop) = (state.clone(), stop.clone());
                let bell = job.bell(&state);
                Some(tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(every) => {}
                            _ = rung(bell.as_deref()) => {}
                            _ = stop.changed() => return,
                        }
                        if let Err(e) = job.run_once(&state).await {
                            tracing::warn!(job = job.name(), error = %e, "background job failed; will retry");
                        }
                    }
                }))
            })
            .collect();
        Self { tasks }
    }

    /// Wait for every job loop to notice the stop signal and end.
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Resolves when `bell` rings (never, without one).
async fn rung(bell: Option<&tokio::sync::Notify>) {
    match bell {
        Some(bell) => bell.notified().await,
        None => std::future::pending().await,
    }
}
