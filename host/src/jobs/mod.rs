//! Background work, all in one shape: a [`Job`] has a name, an interval and a `run_once`,
//! and the [`Scheduler`] runs each on its own timer until shutdown. Tests call
//! [`run_now`] instead of waiting on timers.
//!
//! The periodic jobs: [`flush::FlushRecorder`] (batched usage, last-use and audit writes,
//! buffered by [`Recorder`]), [`keyring::ReloadKeyring`], [`idempotency::ExpireIdempotencyKeys`],
//! [`health::HealthChecks`], [`oauth_refresh::OAuthRefreshSweep`] and
//! [`webhook_fanout::WebhookFanOut`] and [`workflow_schedules::WorkflowSchedules`].
//!
//! Work that must not be lost goes through the durable [`queue`] instead: jobs in the
//! database, claimed under a lease by workers on any node.

pub mod flush;
pub mod health;
pub mod idempotency;
pub mod keyring;
pub mod oauth_refresh;
pub mod queue;
mod recorder;
mod scheduler;
pub mod webhook_fanout;
pub mod workflow_schedules;

pub use queue::{Outcome, Queue, QueueHandler, WorkerSettings};
pub use recorder::{LATENCY_BOUNDS_MS, LatencySummary, Recorder, merge_buckets, summarize};
pub use scheduler::Scheduler;

use crate::config::Config;
use crate::state::AppState;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// What one run of a job did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobReport {
    /// How many items it handled (rows flushed, connections checked, tokens refreshed…).
    pub handled: usize,
}

/// Why a run of a job failed. The scheduler logs it and tries again at the next tick.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Vault (keyring reload).
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    /// No job has this name.
    #[error("no job named `{0}`")]
    Unknown(String),
}

/// A boxed future a job returns from `run_once`.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<JobReport, JobError>> + Send + 'a>>;

/// One kind of background work.
pub trait Job: Send + Sync + 'static {
    /// A stable name, for logs and [`run_now`].
    fn name(&self) -> &'static str;

    /// How often it runs with these settings; `None` when it is switched off.
    fn interval(&self, config: &Config) -> Option<Duration>;

    /// A bell that makes it run before its next tick (when work arrived), if it has one.
    fn bell(&self, _state: &AppState) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// Do one round of work now.
    fn run_once<'a>(&'a self, state: &'a Arc<AppState>) -> JobFuture<'a>;
}

/// Every periodic job of a full server.
pub fn all() -> Vec<Arc<dyn Job>> {
    vec![
        Arc::new(flush::FlushRecorder),
        Arc::new(keyring::ReloadKeyring),
        Arc::new(idempotency::ExpireIdempotencyKeys),
        Arc::new(health::HealthChecks),
        Arc::new(oauth_refresh::OAuthRefreshSweep),
        Arc::new(webhook_fanout::WebhookFanOut),
        Arc::new(workflow_schedules::WorkflowSchedules),
    ]
}

/// Run the job called `name` once, now (tests, and operators through the CLI).
pub async fn run_now(state: &Arc<AppState>, name: &str) -> Result<JobReport, JobError> {
    let job = all()
        .into_iter()
        .find(|j| j.name() == name)
        .ok_or_else(|| JobError::Unknown(name.to_string()))?;
    job.run_once(state).await
}
