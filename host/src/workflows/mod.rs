//! Workflows: connector steps (and a few built-ins) chained into durable executions, started
//! by the API, a cron schedule or a verified incoming webhook.
//!
//! - [`definition`]: what a workflow is (trigger, steps, vars), parsed strictly, with
//!   problems that name the field;
//! - [`template`]: step inputs are minijinja templates over `trigger`, `steps`, `vars`;
//! - [`manage`]: saving (each save of the definition is a new version), checked against the
//!   workspace (connections, actions, input schemas), and starting executions;
//! - [`engine`]: the `workflow.run` queue handler: the step journal, retries, delays,
//!   branches, `on_error`, cancel, stable idempotency keys;
//! - [`schedule`] and [`cron`]: schedule triggers, each tick started exactly once across
//!   nodes;
//! - [`incoming`] and [`signatures`]: incoming-webhook triggers, verified in the provider's
//!   own scheme, deduplicated by delivery id.

pub mod cron;
pub mod definition;
pub mod engine;
pub mod incoming;
pub mod manage;
pub mod schedule;
pub mod signatures;
pub mod template;

use crate::store::{Db, StoreError};
use definition::Definition;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Most parsed definitions remembered (versions are immutable, so never stale).
const MAX_CACHED_DEFINITIONS: usize = 4096;

/// What the workflow capability keeps per process.
#[derive(Default)]
pub struct Workflows {
    /// Renders step templates.
    pub renderer: template::Renderer,
    definitions: Mutex<HashMap<(String, i64), Arc<Definition>>>,
    /// Callers waiting for executions to end (`?wait=`).
    pub waiters: Waiters,
    /// Refused incoming webhooks logged per trigger in the current second (a flood of bad
    /// requests must not become a flood of writes).
    failures_logged: Mutex<HashMap<String, (i64, u32)>>,
    /// Incoming-webhook triggers with their workflow and opened secrets, remembered for
    /// [`TRIGGER_MEMORY`] (forgotten at once when this node changes a workflow).
    triggers: Mutex<HashMap<String, (Instant, Arc<KnownTrigger>)>>,
}

/// How long a node answers incoming webhooks from what it read of a trigger; a change made
/// on another node (disabled, secrets rotated, deleted) applies here within this long.
pub const TRIGGER_MEMORY: Duration = Duration::from_secs(2);

/// Most triggers remembered.
const MAX_REMEMBERED_TRIGGERS: usize = 10_000;

/// A trigger as the incoming-webhook route needs it.
pub struct KnownTrigger {
    /// The trigger row.
    pub trigger: crate::store::TriggerRecord,
    /// Its workflow (enabled? which version?).
    pub workflow: crate::store::WorkflowRecord,
    /// Its opened signing secrets (zeroized when dropped).
    pub secrets: crate::vault::SecretFields,
}

/// Refused incoming webhooks logged per trigger and second on one node; the rest are
/// dropped from the log (they are still refused).
const FAILURES_LOGGED_PER_SECOND: u32 = 5;

impl Workflows {
    /// The definition of `version` of `workflow_id` (parsed once per process).
    pub async fn definition(
        &self,
        db: &Db,
        workflow_id: &str,
        version: i64,
    ) -> Result<Option<Arc<Definition>>, StoreError> {
        let key = (workflow_id.to_string(), version);
        if let Some(found) = self.cache().get(&key) {
            return Ok(Some(found.clone()));
        }
        let Some(text) = db.workflow_version(workflow_id, version).await? else {
            return Ok(None);
        };
        let definition: Definition =
            serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("workflow_versions"))?;
        let definition = Arc::new(definition);
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED_DEFINITIONS {
            cache.clear();
        }
        cache.insert(key, definition.clone());
        Ok(Some(definition))
    }

    /// Whether a refused delivery to `trigger_id` at `now_ms` may still be logged.
    pub fn failure_log_allows(&self, trigger_id: &str, now_ms: i64) -> bool {
        let second = now_ms / 1000;
        let mut logged = self.failures_logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.len() > 10_000 {
            logged.retain(|_, (s, _)| *s == second);
        }
        let entry = logged.entry(trigger_id.to_string()).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        entry.1 += 1;
        entry.1 <= FAILURES_LOGGED_PER_SECOND
    }

    /// The trigger `id` if it was read less than [`TRIGGER_MEMORY`] ago.
    pub fn remembered_trigger(&self, id: &str) -> Option<Arc<KnownTrigger>> {
        let triggers = self.triggers.lock().unwrap_or_else(|p| p.into_inner());
        triggers
            .get(id)
            .filter(|(at, _)| at.elapsed() < TRIGGER_MEMORY)
            .map(|(_, known)| known.clone())
    }

    /// Remember a trigger just read.
    pub fn remember_trigger(&self, known: KnownTrigger) -> Arc<KnownTrigger> {
        let known = Arc::new(known);
        let mut triggers = self.triggers.lock().unwrap_or_else(|p| p.into_inner());
        if triggers.len() >= MAX_REMEMBERED_TRIGGERS {
            triggers.retain(|_, (at, _)| at.elapsed() < TRIGGER_MEMORY);
        }
        triggers.insert(known.trigger.id.clone(), (Instant::now(), known.clone()));
        known
    }

    /// Forget every remembered trigger (a workflow changed on this node).
    pub fn forget_triggers(&self) {
        self.triggers.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Arc<Definition>>> {
        self.definitions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Wake-ups for callers waiting on an execution of this process to end.
#[derive(Default)]
pub struct Waiters {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Waiters {
    /// Start waiting for `execution_id` (drop the guard to stop).
    pub fn watch(&self, execution_id: &str) -> WaitGuard<'_> {
        let notify = self
            .lock()
            .entry(execution_id.to_string())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone();
        WaitGuard {
            waiters: self,
            execution_id: execution_id.to_string(),
            notify,
        }
    }

    /// An execution ended on this node: wake whoever waits for it.
    pub fn finished(&self, execution_id: &str) {
        if let Some(notify) = self.lock().get(execution_id) {
            notify.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A registered wait; unregisters when dropped.
pub struct WaitGuard<'a> {
    waiters: &'a Waiters,
    execution_id: String,
    notify: Arc<Notify>,
}

impl WaitGuard<'_> {
    /// Resolves when the execution is reported ended on this node.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.waiters.lock().remove(&self.execution_id);
    }
}
