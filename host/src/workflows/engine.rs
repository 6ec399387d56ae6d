//! Running executions: one job on the durable queue per execution. A worker claims it,
//! replays the step journal into the template context, and runs the first unfinished step;
//! every finished step is journaled (fenced by the job's lease) before the next begins, so a
//! crash or restart resumes at the first unfinished step and never runs a completed one again.
//!
//! A step gets a stable idempotency key (`<execution id>:<step name>`), the same on every
//! attempt and after every restart, which the connector can pass upstream. Retries wait on
//! the queue (`Outcome::Retry`), and delays release the worker (`Outcome::Defer`).

use super::Workflows;
use super::definition::{Definition, ErrorPolicy, OnError, Step, StepKind};
use crate::connections::run_action;
use crate::ids::{ConnectionId, WorkspaceId};
use crate::jobs::queue::HandlerFuture;
use crate::jobs::{Outcome, QueueHandler};
use crate::runtime::CallError;
use crate::state::AppState;
use crate::store::group_commit::{BatchWrite, GroupCommit};
use crate::store::{ClaimedJob, ExecutionEnd, ExecutionRecord, JournalWrite, StepRunRecord, WORKFLOW_QUEUE, now_ms};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a claim on an execution lasts without a heartbeat (the queue heartbeats every
/// third of it while a step runs, so a slow step keeps it). A node that dies hands its
/// executions over after at most this long.
pub const LEASE: Duration = Duration::from_secs(10);

/// How long a connector call runs before its step is journaled as `running`.
const SHOW_RUNNING_AFTER: Duration = Duration::from_millis(100);

/// Largest trace kept per step (bytes of JSON); a larger one is dropped from the journal.
const MAX_TRACE_BYTES: usize = 64 * 1024;
/// Largest step output kept (bytes of JSON).
const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// What an execution job carries.
#[derive(Debug, serde::Deserialize)]
struct JobPayload {
    execution_id: String,
    workspace_id: WorkspaceId,
}

/// Most journal writes in one transaction.
const JOURNAL_BATCH: usize = 256;

/// How long a journal write may wait for its group commit.
const JOURNAL_PATIENCE: Duration = Duration::from_secs(30);

/// Runs the `workflow.run` queue.
pub struct ExecutionHandler {
    state: Arc<AppState>,
    /// Journal writes of every running execution, group-committed: executions finishing
    /// together share one transaction.
    journal: GroupCommit<JournalWrite>,
}

impl ExecutionHandler {
    /// A handler over `state` (starts its journal writer; call within a tokio runtime).
    pub fn new(state: Arc<AppState>) -> Self {
        let write: BatchWrite<JournalWrite> =
            Arc::new(|db, writes: Vec<JournalWrite>| Box::pin(async move { db.write_journal(&writes).await }));
        let journal = GroupCommit::start(state.db.clone(), "workflow journal writes", JOURNAL_BATCH, write);
        Self { state, journal }
    }
}

impl QueueHandler for ExecutionHandler {
    fn queue(&self) -> &'static str {
        WORKFLOW_QUEUE
    }

    fn lease(&self) -> Duration {
        LEASE
    }

    fn handle(&self, job: ClaimedJob) -> HandlerFuture {
        let (state, journal) = (self.state.clone(), self.journal.clone());
        Box::pin(async move { run_job(&state, &journal, job).await })
    }
}

/// The stable idempotency key of a step of an execution.
pub fn idempotency_key(execution_id: &str, step: &str) -> String {
    format!("{execution_id}:{step}")
}

fn retry_soon(error: impl std::fmt::Display) -> Outcome {
    Outcome::Retry {
        at_ms: now_ms() + 1000,
        error: error.to_string(),
    }
}

async fn run_job(state: &Arc<AppState>, journal: &GroupCommit<JournalWrite>, job: ClaimedJob) -> Outcome {
    let Ok(payload) = serde_json::from_str::<JobPayload>(&job.payload) else {
        tracing::error!(job = %job.id, "a workflow job with an unreadable payload was dropped");
        return Outcome::GiveUp;
    };
    let execution = match state.db.execution(&payload.workspace_id, &payload.execution_id).await {
        Ok(Some(e)) => e,
        Ok(None) => return Outcome::GiveUp,
        Err(e) => return retry_soon(e),
    };
    if execution.is_finished() {
        return Outcome::Done;
    }
    let definition = match state
        .workflows
        .definition(&state.db, &execution.workflow_id, execution.version)
        .await
    {
        Ok(Some(d)) => d,
        Ok(None) => {
            let runner = Runner::new(
                state,
                journal,
                &job,
                &execution,
                Arc::new(Definition::default()),
                Vec::new(),
            );
            return runner
                .end_failed(None, None, "the workflow version this execution runs is gone")
                .await;
        }
        Err(e) => return retry_soon(e),
    };
    // An execution that never started has journaled nothing (its first journal write sets
    // `started_at`); a retried one is queued again but keeps its journal.
    let rows = if execution.started_at.is_none() {
        Vec::new()
    } else {
        match state.db.step_runs(&execution.id).await {
            Ok(rows) => rows,
            Err(e) => return retry_soon(e),
        }
    };
    Runner::new(state, journal, &job, &execution, definition, rows)
        .run()
        .await
}

/// The result of running one step.
enum StepResult {
    /// It produced `output`; go on at `next` (a branch) or the next step.
    Succeeded { output: Value, next: Option<String> },
    /// It failed; `retryable` says whether another attempt may help.
    Failed { error: String, retryable: bool },
}

/// One claim's run of an execution.
struct Runner<'a> {
    state: &'a Arc<AppState>,
    writer: &'a GroupCommit<JournalWrite>,
    job: &'a ClaimedJob,
    execution: &'a ExecutionRecord,
    definition: Arc<Definition>,
    journal: HashMap<String, StepRunRecord>,
    context: Value,
    lease_ms: i64,
    /// Unix ms the current step began (this claim).
    step_started: i64,
}

impl<'a> Runner<'a> {
    fn new(
        state: &'a Arc<AppState>,
        writer: &'a GroupCommit<JournalWrite>,
        job: &'a ClaimedJob,
        execution: &'a ExecutionRecord,
        definition: Arc<Definition>,
        journal: Vec<StepRunRecord>,
    ) -> Self {
        let trigger: Value = serde_json::from_str(&execution.input).unwrap_or(Value::Null);
        let mut steps = serde_json::Map::new();
        for row in &journal {
            steps.insert(row.step.clone(), step_view(row));
        }
        let context = json!({
            "trigger": trigger,
            "vars": definition.vars,
            "steps": steps,
            "execution": {
                "id": execution.id,
                "workflow_id": execution.workflow_id,
                "version": execution.version,
            },
        });
        Self {
            state,
            writer,
            job,
            execution,
            definition,
            journal: journal.into_iter().map(|r| (r.step.clone(), r)).collect(),
            context,
            lease_ms: LEASE.as_millis() as i64,
            step_started: now_ms(),
        }
    }

    fn workflows(&self) -> &Workflows {
        &self.state.workflows
    }

    async fn run(mut self) -> Outcome {
        if self.execution.status == "queued" {
            // Marked `running` by its first journal write; only a subscriber to
            // `execution.started` makes that a write of its own, now.
            if let Some(data) = self.event_data("execution.started", None, None).await {
                if !self.write(None, None).await {
                    return Outcome::Settled;
                }
                if let Err(e) = self
                    .state
                    .db
                    .append_event(&self.execution.workspace_id, "execution.started", &data)
                    .await
                {
                    tracing::warn!(error = %e, "could not record an execution.started event");
                }
            }
        }
        let definition = self.definition.clone();
        let mut index = 0;
        let mut last_output = Value::Null;
        // The row read at claim time answers for the first step; later ones look again.
        let mut cancel_known = Some(self.execution.cancel_requested != 0);
        while index < definition.steps.len() {
            let step = &definition.steps[index];
            if let Some(row) = self.journal.get(&step.name)
                && matches!(row.status.as_str(), "succeeded" | "failed" | "skipped")
            {
                if row.status == "succeeded" {
                    last_output = row
                        .output
                        .as_deref()
                        .and_then(|o| serde_json::from_str(o).ok())
                        .unwrap_or(Value::Null);
                }
                index = self.next_index(index, row.next_step.as_deref());
                continue;
            }
            let cancelled = match cancel_known.take() {
                Some(known) => Ok(known),
                None => self.state.db.cancel_requested(&self.execution.id).await,
            };
            match cancelled {
                Ok(true) => return self.end(ExecutionEndKind::Cancelled, None).await,
                Ok(false) => {}
                Err(e) => return retry_soon(e),
            }
            self.step_started = now_ms();
            let path = format!("steps[{index}]");
            if let Some(when) = &step.when {
                match self
                    .workflows()
                    .renderer
                    .condition(when, &self.context, &format!("{path}.if"))
                {
                    Ok(true) => {}
                    Ok(false) => {
                        let row = self.row(index, step, "skipped", 0, None, None, None);
                        let next = index + 1;
                        if let Some(outcome) = self.record(row, next, &last_output).await {
                            return outcome;
                        }
                        index = next;
                        continue;
                    }
                    Err(e) => return self.end_failed(Some(step), None, &e.to_string()).await,
                }
            }
            let attempts = self.journal.get(&step.name).map_or(0, |r| r.attempts) as u32 + 1;
            let (result, ran) = match &step.kind {
                StepKind::Delay { seconds } => {
                    let now = now_ms();
                    match self.journal.get(&step.name).and_then(|r| r.wake_at) {
                        Some(wake) if now >= wake => (
                            StepResult::Succeeded {
                                output: json!({ "waited_until": wake }),
                                next: None,
                            },
                            Ran::default(),
                        ),
                        Some(wake) => return Outcome::Defer { at_ms: wake },
                        None => {
                            let wake = now.saturating_add((*seconds as i64).saturating_mul(1000));
                            let mut row = self.row(index, step, "waiting", 1, None, None, None);
                            row.wake_at = Some(wake);
                            row.finished_at = None;
                            if !self.write(Some(&row), None).await {
                                return Outcome::Settled;
                            }
                            return Outcome::Defer { at_ms: wake };
                        }
                    }
                }
                StepKind::Transform { output } => {
                    let result =
                        match self
                            .workflows()
                            .renderer
                            .render(output, &self.context, &format!("{path}.output"))
                        {
                            Ok(output) => StepResult::Succeeded { output, next: None },
                            Err(e) => StepResult::Failed {
                                error: e.to_string(),
                                retryable: false,
                            },
                        };
                    (result, Ran::default())
                }
                StepKind::Condition {
                    condition,
                    then,
                    otherwise,
                } => {
                    let result = match self.workflows().renderer.condition(
                        condition,
                        &self.context,
                        &format!("{path}.condition"),
                    ) {
                        Ok(value) => StepResult::Succeeded {
                            output: json!({ "result": value }),
                            next: if value { then.clone() } else { otherwise.clone() },
                        },
                        Err(e) => StepResult::Failed {
                            error: e.to_string(),
                            retryable: false,
                        },
                    };
                    (result, Ran::default())
                }
                StepKind::Connector {
                    connection,
                    action,
                    input,
                } => {
                    match self
                        .workflows()
                        .renderer
                        .render(input, &self.context, &format!("{path}.input"))
                    {
                        // A template that does not render is the step's failure (its
                        // `on_error` applies); another attempt would not help.
                        Err(e) => (
                            StepResult::Failed {
                                error: e.to_string(),
                                retryable: false,
                            },
                            Ran::default(),
                        ),
                        Ok(input) => {
                            // A call still running after a moment is journaled as `running`
                            // (visible in the API, its attempt counted should the node die);
                            // a quick one costs no write before its result.
                            let call = self.call(step, connection, action, input);
                            tokio::pin!(call);
                            tokio::select! {
                                done = &mut call => done,
                                _ = tokio::time::sleep(SHOW_RUNNING_AFTER) => {
                                    let mut running =
                                        self.row(index, step, "running", attempts as i64, None, None, None);
                                    running.finished_at = None;
                                    // The call keeps running while the row is written; if the
                                    // lease was lost, the final write's fence says so.
                                    let (_, done) = tokio::join!(self.write(Some(&running), None), &mut call);
                                    done
                                }
                            }
                        }
                    }
                }
            };
            match result {
                StepResult::Succeeded { output, next } => {
                    let text = output.to_string();
                    if text.len() > MAX_OUTPUT_BYTES {
                        return self
                            .fail_step(
                                index,
                                step,
                                attempts,
                                format!("the step's output is over {MAX_OUTPUT_BYTES} bytes"),
                                ran,
                            )
                            .await;
                    }
                    let mut row = self.row(
                        index,
                        step,
                        "succeeded",
                        attempts as i64,
                        Some(text),
                        None,
                        next.clone(),
                    );
                    ran.fill(&mut row);
                    let next_index = self.next_index(index, next.as_deref());
                    last_output = output.clone();
                    self.context["steps"][&step.name] = json!({ "status": "succeeded", "output": output });
                    if let Some(outcome) = self.record(row, next_index, &last_output).await {
                        return outcome;
                    }
                    index = next_index;
                }
                StepResult::Failed { error, retryable } => {
                    let policy = step.retry.unwrap_or_default();
                    if retryable && attempts < policy.attempts {
                        let mut row =
                            self.row(index, step, "running", attempts as i64, None, Some(error.clone()), None);
                        ran.fill(&mut row);
                        row.finished_at = None;
                        if !self.write(Some(&row), None).await {
                            return Outcome::Settled;
                        }
                        return Outcome::Retry {
                            at_ms: now_ms() + policy.backoff(attempts + 1) as i64,
                            error: format!("step `{}`: {error}", step.name),
                        };
                    }
                    match self.on_failure(index, step, attempts, error, ran, &last_output).await {
                        Ok(next_index) => index = next_index,
                        Err(outcome) => return outcome,
                    }
                }
            }
        }
        // Every step is journaled (an execution whose last step was finished before a crash).
        self.end(ExecutionEndKind::Succeeded, Some(&last_output)).await
    }

    /// Index of the step after `index`, or of `jump` when the step branched.
    fn next_index(&self, index: usize, jump: Option<&str>) -> usize {
        jump.and_then(|name| self.definition.position(name))
            .filter(|&j| j > index)
            .unwrap_or(index + 1)
    }

    /// Journal a finished step; when it was the last, end the execution in the same write.
    /// `Some(outcome)`: the job is finished (or lost) and the run stops.
    async fn record(&mut self, row: StepRunRecord, next_index: usize, last_output: &Value) -> Option<Outcome> {
        if next_index >= self.definition.steps.len() {
            return Some(
                self.end_with(Some(&row), ExecutionEndKind::Succeeded, Some(last_output))
                    .await,
            );
        }
        if !self.write(Some(&row), None).await {
            return Some(Outcome::Settled);
        }
        self.journal.insert(row.step.clone(), row);
        None
    }

    /// A step failed for good: apply its `on_error`. `Ok(next)`: go on at that index.
    async fn on_failure(
        &mut self,
        index: usize,
        step: &Step,
        attempts: u32,
        error: String,
        ran: Ran,
        last_output: &Value,
    ) -> Result<usize, Outcome> {
        let jump = match &step.on_error {
            OnError::Policy(ErrorPolicy::Fail) => {
                return Err(self.fail_step(index, step, attempts, error, ran).await);
            }
            OnError::Policy(ErrorPolicy::Continue) => None,
            OnError::Fallback { fallback } => Some(fallback.clone()),
        };
        let mut row = self.row(
            index,
            step,
            "failed",
            attempts as i64,
            None,
            Some(error.clone()),
            jump.clone(),
        );
        ran.fill(&mut row);
        self.context["steps"][&step.name] = json!({ "status": "failed", "error": error });
        let next_index = self.next_index(index, jump.as_deref());
        match self.record(row, next_index, last_output).await {
            Some(outcome) => Err(outcome),
            None => Ok(next_index),
        }
    }

    /// Journal a failed step and fail the execution.
    async fn fail_step(&mut self, index: usize, step: &Step, attempts: u32, error: String, ran: Ran) -> Outcome {
        let mut row = self.row(
            index,
            step,
            "failed",
            attempts.max(1) as i64,
            None,
            Some(error.clone()),
            None,
        );
        ran.fill(&mut row);
        self.end_failed(Some(step), Some(&row), &error).await
    }

    async fn end_failed(&self, step: Option<&Step>, row: Option<&StepRunRecord>, error: &str) -> Outcome {
        self.end_with(
            row,
            ExecutionEndKind::Failed {
                error: error.to_string(),
                step: step.map(|s| s.name.clone()),
            },
            None,
        )
        .await
    }

    async fn end(&self, kind: ExecutionEndKind, last_output: Option<&Value>) -> Outcome {
        self.end_with(None, kind, last_output).await
    }

    /// Write the execution's end (with the last step's row), its event and the job's removal.
    async fn end_with(
        &self,
        row: Option<&StepRunRecord>,
        kind: ExecutionEndKind,
        last_output: Option<&Value>,
    ) -> Outcome {
        let (status, error, failed_step) = match &kind {
            ExecutionEndKind::Succeeded => ("succeeded", None, None),
            ExecutionEndKind::Failed { error, step } => ("failed", Some(error.clone()), step.clone()),
            ExecutionEndKind::Cancelled => ("cancelled", None, None),
        };
        let mut status = status;
        let mut error = error;
        let mut output = None;
        if status == "succeeded" {
            let mut context = self.context.clone();
            if let Some(row) = row
                && let Some(out) = row
                    .output
                    .as_deref()
                    .and_then(|o| serde_json::from_str::<Value>(o).ok())
            {
                context["steps"][&row.step] = json!({ "status": row.status, "output": out });
            }
            match &self.definition.output {
                Some(template) => match self.workflows().renderer.render(template, &context, "output") {
                    Ok(v) => output = Some(v.to_string()),
                    Err(e) => {
                        status = "failed";
                        error = Some(e.to_string());
                    }
                },
                None => output = Some(last_output.cloned().unwrap_or(Value::Null).to_string()),
            }
        }
        let kind_name = format!("execution.{status}");
        let event = self
            .event_data(&kind_name, error.as_deref(), failed_step.as_deref())
            .await;
        let end = ExecutionEnd {
            status: status.to_string(),
            output,
            error: error.map(|e| storable(&e, 2000)),
            failed_step,
            event: event.map(|data| (kind_name, data)),
        };
        if self.write(row, Some(end)).await {
            self.workflows().waiters.finished(&self.execution.id);
        }
        // Written, or the lease was lost (another claim holds the job), or the write failed
        // (the job runs again once its lease lapses): this claim is done either way.
        Outcome::Settled
    }

    /// Journal a step row and/or the execution's end, by group commit, fenced by the job's
    /// lease. `false`: the lease was lost or the write failed; the run stops and the job runs
    /// again after its lease.
    async fn write(&self, row: Option<&StepRunRecord>, end: Option<ExecutionEnd>) -> bool {
        let write = JournalWrite {
            job: self.job.clone(),
            lease_ms: self.lease_ms,
            workspace_id: self.execution.workspace_id.clone(),
            execution_id: self.execution.id.clone(),
            step: row.cloned(),
            end,
            written: Default::default(),
        };
        let written = write.written.clone();
        if !self.writer.submit(write, JOURNAL_PATIENCE).await {
            tracing::warn!(execution = %self.execution.id, "could not journal a workflow step; it runs again after the lease");
            return false;
        }
        written.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The event's data, when an endpoint of the workspace receives `kind`.
    async fn event_data(&self, kind: &str, error: Option<&str>, failed_step: Option<&str>) -> Option<Value> {
        let workspace = &self.execution.workspace_id;
        match self.state.subscriptions.wants(&self.state.db, workspace, kind).await {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "could not read webhook subscriptions; writing the event anyway"),
        }
        Some(json!({
            "execution_id": self.execution.id,
            "workflow_id": self.execution.workflow_id,
            "version": self.execution.version,
            "trigger": self.execution.trigger_kind,
            "error": error.map(|e| &e[..e.floor_char_boundary(500)]),
            "failed_step": failed_step,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        index: usize,
        step: &Step,
        status: &str,
        attempts: i64,
        output: Option<String>,
        error: Option<String>,
        next_step: Option<String>,
    ) -> StepRunRecord {
        let now = now_ms();
        let started_at = self
            .journal
            .get(&step.name)
            .map_or(self.step_started.min(now), |r| r.started_at);
        StepRunRecord {
            execution_id: self.execution.id.clone(),
            step: step.name.clone(),
            position: index as i64,
            status: status.to_string(),
            attempts,
            idempotency_key: idempotency_key(&self.execution.id, &step.name),
            connector: None,
            output,
            error: error.map(|e| storable(&e, 2000)),
            next_step,
            trace: None,
            wake_at: None,
            started_at,
            finished_at: Some(now),
        }
    }

    /// Run a connector step: the action on the connection, with the step's idempotency key
    /// and timeout.
    async fn call(&self, step: &Step, connection: &ConnectionId, action: &str, input: Value) -> (StepResult, Ran) {
        let actor = format!("workflow:{}", self.execution.workflow_id);
        let key = idempotency_key(&self.execution.id, &step.name);
        let call = run_action(
            self.state,
            &self.execution.workspace_id,
            &actor,
            connection,
            action,
            input,
            Some(&key),
        );
        let finished = match step.timeout_secs {
            Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), call).await {
                Ok(done) => done,
                Err(_) => {
                    return (
                        StepResult::Failed {
                            error: format!("step_timeout: the step did not finish within {secs} s"),
                            retryable: true,
                        },
                        Ran::default(),
                    );
                }
            },
            None => call.await,
        };
        // Resolution is cached: this names the connector for usage without another query.
        let connector = crate::connections::resolve(self.state, &self.execution.workspace_id, connection)
            .await
            .ok()
            .map(|r| r.installation.connector_id.clone());
        match finished {
            Ok(outcome) => {
                let trace = serde_json::to_string(&outcome.trace)
                    .ok()
                    .filter(|t| t.len() <= MAX_TRACE_BYTES);
                let result = match outcome.result {
                    Ok(output) => StepResult::Succeeded { output, next: None },
                    Err(e) => StepResult::Failed {
                        retryable: e.is_retryable() || matches!(e, CallError::AtCapacity),
                        error: format!("{}: {e}", e.code()),
                    },
                };
                (result, Ran { connector, trace })
            }
            Err(e) => {
                let retryable = matches!(
                    e,
                    crate::connections::ConnectionError::WorkspaceBusy(_)
                        | crate::connections::ConnectionError::Store(_)
                        | crate::connections::ConnectionError::Changed
                );
                (
                    StepResult::Failed {
                        error: e.to_string(),
                        retryable,
                    },
                    Ran { connector, trace: None },
                )
            }
        }
    }
}

/// What a step's attempt leaves besides its result: the connector it ran and its redacted
/// trace (connector steps only).
#[derive(Default)]
struct Ran {
    connector: Option<String>,
    trace: Option<String>,
}

impl Ran {
    /// Put them on the step's journal row.
    fn fill(self, row: &mut StepRunRecord) {
        row.connector = self.connector;
        row.trace = self.trace;
    }
}

/// How an execution ends.
enum ExecutionEndKind {
    Succeeded,
    Failed { error: String, step: Option<String> },
    Cancelled,
}

/// At most `max` characters of `text`, without NUL (PostgreSQL refuses it in text columns,
/// and a connector chooses its own error messages).
fn storable(text: &str, max: usize) -> String {
    text.chars().filter(|c| *c != '\0').take(max).collect()
}

/// A journal row as steps see it: `steps.<name>.status`, `.output`, `.error`.
fn step_view(row: &StepRunRecord) -> Value {
    let output = row
        .output
        .as_deref()
        .and_then(|o| serde_json::from_str::<Value>(o).ok())
        .unwrap_or(Value::Null);
    json!({ "status": row.status, "output": output, "error": row.error })
}
