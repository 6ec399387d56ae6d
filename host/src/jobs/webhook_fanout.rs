//! Fan-out of the event outbox to webhook endpoints: undelivered events become messages and
//! delivery jobs (one transaction per batch), and the delivery workers are woken. It runs
//! when this process commits events (the outbox's bell) and on its tick, which picks up
//! events written by other nodes.

use super::{Job, JobFuture, JobReport};
use crate::config::Config;
use crate::state::AppState;
use crate::store::DELIVERY_QUEUE;
use crate::webhooks::endpoints::OPT_IN_EVENT_TYPES;
use std::sync::Arc;
use std::time::Duration;

/// Events fanned out per transaction.
const BATCH: usize = 500;

/// The fan-out as a periodic job (`NEXUM_WEBHOOK_FANOUT_MS`; 0 switches it off).
pub struct WebhookFanOut;

impl Job for WebhookFanOut {
    fn name(&self) -> &'static str {
        "webhook-fanout"
    }

    fn interval(&self, config: &Config) -> Option<Duration> {
        (config.webhook_fanout_ms > 0).then(|| Duration::from_millis(config.webhook_fanout_ms))
    }

    fn bell(&self, state: &AppState) -> Option<Arc<tokio::sync::Notify>> {
        Some(state.db.events_bell())
    }

    fn run_once<'a>(&'a self, state: &'a Arc<AppState>) -> JobFuture<'a> {
        Box::pin(async move {
            let mut handled = 0;
            loop {
                let n = state.db.fan_out_events(BATCH, OPT_IN_EVENT_TYPES).await?;
                handled += n;
                if n < BATCH {
                    break;
                }
            }
            if handled > 0 {
                state.queue.wake(DELIVERY_QUEUE);
            }
            Ok(JobReport { handled })
        })
    }
}
