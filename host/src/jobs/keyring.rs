//! Picks up a master key another process rotated into the key file, so new writes use the
//! active key.

use super::{Job, JobFuture, JobReport};
use crate::config::Config;
use crate::state::AppState;
use std::sync::Arc;
use std::time::Duration;

/// Reload the keyring every ten seconds.
pub struct ReloadKeyring;

impl Job for ReloadKeyring {
    fn name(&self) -> &'static str {
        "reload-keyring"
    }

    fn interval(&self, _: &Config) -> Option<Duration> {
        Some(Duration::from_secs(10))
    }

    fn run_once<'a>(&'a self, state: &'a Arc<AppState>) -> JobFuture<'a> {
        Box::pin(async move {
            state.vault.reload()?;
            Ok(JobReport::default())
        })
    }
}
