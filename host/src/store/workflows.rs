//! Workflow rows: workflows and their immutable versions, executions and their step journal,
//! triggers (incoming webhook, schedule), seen webhook delivery ids and refused deliveries.
//!
//! Every write a running execution makes is fenced by its job's lease (the same statement
//! extends it), so a node whose lease ran out (and whose execution another node resumed)
//! changes nothing; the last write also removes the job, in the same transaction as the
//! execution's final status and its outbox event.

use super::jobs::{insert_job, settle_job_in};
use super::{ClaimedJob, Db, JobFate, NewJob, Page, SecretRecord, StoreError, StoreResult, now_ms};
use crate::ids::WorkspaceId;

/// Refused incoming webhooks kept per trigger.
pub const MAX_TRIGGER_FAILURES: i64 = 100;

/// Queue of workflow execution jobs.
pub const WORKFLOW_QUEUE: &str = "workflow.run";

/// A workflow.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkflowRecord {
    /// `wf_…`
    pub id: String,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// 1 when triggers may start it.
    pub enabled: i64,
    /// Its current version (1, 2, …).
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; the compare-and-set version of edits.
    pub updated_at: i64,
}

/// A workflow's trigger row (webhook or schedule; manual workflows have none).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TriggerRecord {
    /// `trg_…`, stable across versions.
    pub id: String,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Its workflow.
    pub workflow_id: String,
    /// `webhook` or `schedule`.
    pub kind: String,
    /// Webhook: the signature scheme.
    pub scheme: Option<String>,
    /// Schedule: the next tick (unix ms).
    pub next_run_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
}

/// An execution.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExecutionRecord {
    /// `exe_…`
    pub id: String,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Its workflow.
    pub workflow_id: String,
    /// The version it runs.
    pub version: i64,
    /// `manual`, `schedule` or `webhook`.
    pub trigger_kind: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Its input (JSON: the API body, or the incoming webhook).
    pub input: String,
    /// Its output (JSON), once succeeded.
    pub output: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The step it failed at.
    pub failed_step: Option<String>,
    /// 1 once a cancel was asked for.
    pub cancel_requested: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms its first step began.
    pub started_at: Option<i64>,
    /// Unix ms it ended.
    pub finished_at: Option<i64>,
}

impl ExecutionRecord {
    /// Whether it has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// One step's journal row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepRunRecord {
    /// Its execution.
    pub execution_id: String,
    /// The step's name.
    pub step: String,
    /// Its index in the definition.
    pub position: i64,
    /// `running`, `waiting`, `succeeded`, `failed` or `skipped`.
    pub status: String,
    /// Attempts begun.
    pub attempts: i64,
    /// The key the connector may pass upstream; the same on every attempt.
    pub idempotency_key: String,
    /// The connector a connector step ran.
    pub connector: Option<String>,
    /// Its output (JSON).
    pub output: Option<String>,
    /// Why it failed (last attempt).
    pub error: Option<String>,
    /// The step the execution goes on at (a branch or fallback), when not the next one.
    pub next_step: Option<String>,
    /// The redacted broker trace (JSON) of its last attempt.
    pub trace: Option<String>,
    /// A delay step: when it ends (unix ms).
    pub wake_at: Option<i64>,
    /// Unix ms its first attempt began.
    pub started_at: i64,
    /// Unix ms it ended.
    pub finished_at: Option<i64>,
}

/// A new execution, with the job that runs it.
#[derive(Debug, Clone)]
pub struct NewExecution<'a> {
    /// `exe_…`
    pub id: &'a str,
    /// Workspace.
    pub workspace_id: &'a WorkspaceId,
    /// Workflow.
    pub workflow_id: &'a str,
    /// The version to run.
    pub version: i64,
    /// `manual`, `schedule` or `webhook`.
    pub trigger_kind: &'a str,
    /// Its input (JSON).
    pub input: &'a str,
}

/// What a workflow save changes.
#[derive(Debug, Clone)]
pub struct WorkflowSave<'a> {
    /// The row as it should be after the save.
    pub workflow: &'a WorkflowRecord,
    /// A new version's definition (JSON, secrets removed), when the definition changed.
    pub definition: Option<&'a str>,
    /// The trigger row after the save (`None`: a manual workflow).
    pub trigger: Option<&'a TriggerRecord>,
    /// A new sealed secret record of the trigger, when its secrets changed.
    pub sealed: Option<&'a SecretRecord>,
    /// Remove the sealed secrets of this trigger id (it is no longer a webhook trigger).
    pub unseal: Option<&'a str>,
    /// Keep the stored trigger's next tick (its schedule did not change), whatever a
    /// concurrent tick moved it to.
    pub keep_next_run: bool,
    /// The template version the workflow is (now) made from, written in the same
    /// transaction.
    pub template: Option<&'a super::TemplateLink>,
}

/// The end of an execution, written with its last step.
#[derive(Debug, Clone)]
pub struct ExecutionEnd {
    /// `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// The output (succeeded).
    pub output: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The step it failed at.
    pub failed_step: Option<String>,
    /// The outbox event to write with it (`execution.succeeded`…), when subscribed.
    pub event: Option<(String, serde_json::Value)>,
}

/// One journal write of a running execution: a step's row and/or the execution's end,
/// fenced by its job's lease. Many are written in one transaction (group commit).
#[derive(Debug, Clone)]
pub struct JournalWrite {
    /// The job that runs the execution (its lease fences the write).
    pub job: ClaimedJob,
    /// How far the write extends the lease.
    pub lease_ms: i64,
    /// The execution's workspace.
    pub workspace_id: WorkspaceId,
    /// `exe_…`
    pub execution_id: String,
    /// The step's row to insert or replace.
    pub step: Option<StepRunRecord>,
    /// The execution's end (the job is removed with it).
    pub end: Option<ExecutionEnd>,
    /// Set once written; stays `false` when the lease was lost and nothing was written.
    pub written: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Per-workflow execution totals.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkflowUsageRow {
    /// `wf_…`
    pub workflow_id: String,
    /// Executions ever started.
    pub executions: i64,
    /// Of those, succeeded.
    pub succeeded: i64,
    /// Failed.
    pub failed: i64,
    /// Still queued or running.
    pub active: i64,
    /// Mean duration of finished executions (ms).
    pub mean_duration_ms: Option<f64>,
    /// Longest duration of a finished execution (ms).
    pub max_duration_ms: Option<i64>,
}

/// Per-connector step totals.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectorStepUsageRow {
    /// The connector id.
    pub connector: String,
    /// Steps run.
    pub steps: i64,
    /// Of those, failed.
    pub failed: i64,
}

/// A refused incoming webhook.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TriggerFailureRecord {
    /// `tfl_…`
    pub id: String,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Trigger.
    pub trigger_id: String,
    /// Why (no body, no secrets).
    pub reason: String,
    /// Unix ms.
    pub created_at: i64,
}

macro_rules! workflow_columns {
    () => {
        "id, workspace_id, name, description, enabled, version, created_at, updated_at"
    };
}

macro_rules! execution_columns {
    () => {
        "id, workspace_id, workflow_id, version, trigger_kind, status, input, output, error, failed_step, cancel_requested, created_at, started_at, finished_at"
    };
}

/// One execution of a workspace.
const EXECUTION_SQL: &str = concat!(
    "SELECT ",
    execution_columns!(),
    " FROM workflow_executions WHERE workspace_id = $1 AND id = $2"
);

/// The journal of an execution, in step order.
const STEP_RUNS_SQL: &str = "SELECT execution_id, step, position, status, attempts, idempotency_key, connector, output, error, next_step, trace, wake_at, started_at, finished_at FROM workflow_step_runs WHERE execution_id = $1 ORDER BY position";

/// Insert an execution and its job on an open transaction.
pub(crate) async fn insert_execution(
    conn: &mut sqlx::AnyConnection,
    backend: super::Backend,
    new: &NewExecution<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO workflow_executions (id, workspace_id, workflow_id, version, trigger_kind, status, input, cancel_requested, created_at) VALUES ($1, $2, $3, $4, $5, 'queued', $6, 0, $7)",
    )
    .bind(new.id)
    .bind(new.workspace_id)
    .bind(new.workflow_id)
    .bind(new.version)
    .bind(new.trigger_kind)
    .bind(new.input)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    super::templates::count_execution(conn, new.workflow_id).await?;
    let payload = serde_json::json!({ "execution_id": new.id, "workspace_id": new.workspace_id }).to_string();
    insert_job(
        conn,
        backend,
        &NewJob {
            queue: WORKFLOW_QUEUE,
            dedupe_key: Some(new.id),
            payload: &payload,
            run_at: now_ms(),
        },
    )
    .await?;
    Ok(())
}

/// Extend a held lease inside a transaction: the fence of every write of a running execution.
async fn fence(conn: &mut sqlx::AnyConnection, job: &ClaimedJob, lease_ms: i64) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_token = $3")
        .bind(now_ms() + lease_ms)
        .bind(&job.id)
        .bind(&job.lease_token)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

impl Db {
    /// Store a new workflow (version 1), its trigger and sealed secrets, in one transaction.
    pub async fn insert_workflow(&self, save: &WorkflowSave<'_>) -> StoreResult<()> {
        let w = save.workflow;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO workflows (id, workspace_id, name, description, enabled, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&w.id)
        .bind(&w.workspace_id)
        .bind(&w.name)
        .bind(&w.description)
        .bind(w.enabled)
        .bind(w.version)
        .bind(w.created_at)
        .bind(w.updated_at)
        .execute(&mut *tx)
        .await?;
        write_save_parts(&mut tx, save).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Apply a save to an existing workflow, compare-and-set on `expected_updated_at`
    /// ([`StoreError::Changed`] when another edit came first).
    pub async fn update_workflow(&self, save: &WorkflowSave<'_>, expected_updated_at: i64) -> StoreResult<()> {
        let w = save.workflow;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE workflows SET name = $1, description = $2, enabled = $3, version = $4, updated_at = $5 WHERE workspace_id = $6 AND id = $7 AND updated_at = $8",
        )
        .bind(&w.name)
        .bind(&w.description)
        .bind(w.enabled)
        .bind(w.version)
        .bind(w.updated_at)
        .bind(&w.workspace_id)
        .bind(&w.id)
        .bind(expected_updated_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Changed);
        }
        if save.definition.is_some() {
            // Any other trigger row of the workflow goes (its id is stable, so normally none).
            sqlx::query("DELETE FROM workflow_triggers WHERE workflow_id = $1 AND id <> $2")
                .bind(&w.id)
                .bind(save.trigger.map(|t| t.id.as_str()).unwrap_or_default())
                .execute(&mut *tx)
                .await?;
        }
        write_save_parts(&mut tx, save).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A workflow of the workspace.
    pub async fn workflow(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<WorkflowRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflows WHERE workspace_id = $1 AND id = $2"
        );
        Ok(sqlx::query_as(SQL)
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// The workspace's workflows, in id order after the cursor.
    pub async fn list_workflows(
        &self,
        workspace_id: &WorkspaceId,
        after: &str,
        limit: usize,
    ) -> StoreResult<Page<WorkflowRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflows WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query_as(SQL)
            .bind(workspace_id)
            .bind(after)
            .bind(limit as i64 + 1)
            .fetch_all(self.pool())
            .await?;
        Ok(Page::from_rows(rows, limit, |w: &WorkflowRecord| w.id.clone()))
    }

    /// Delete a workflow, its trigger and the trigger's sealed secrets. Its versions and
    /// executions stay readable by id (an execution in flight finishes on its version).
    pub async fn delete_workflow(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let trigger: Option<(String,)> =
            sqlx::query_as("SELECT id FROM workflow_triggers WHERE workspace_id = $1 AND workflow_id = $2")
                .bind(workspace_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((trigger_id,)) = trigger {
            sqlx::query("DELETE FROM secrets WHERE workspace_id = $1 AND owner_id = $2")
                .bind(workspace_id)
                .bind(&trigger_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM workflow_triggers WHERE id = $1")
                .bind(&trigger_id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM workflows WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The definition (JSON) of one version of a workflow.
    pub async fn workflow_version(&self, workflow_id: &str, version: i64) -> StoreResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT definition FROM workflow_versions WHERE workflow_id = $1 AND version = $2")
                .bind(workflow_id)
                .bind(version)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(d,)| d))
    }

    /// The trigger of a workflow, if it has one.
    pub async fn trigger_of(&self, workflow_id: &str) -> StoreResult<Option<TriggerRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, workspace_id, workflow_id, kind, scheme, next_run_at, created_at FROM workflow_triggers WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// A trigger by id, with its workflow (any workspace: the incoming-webhook route is
    /// authenticated by the signature, not by a key).
    pub async fn trigger(&self, id: &str) -> StoreResult<Option<(TriggerRecord, WorkflowRecord)>> {
        let Some(trigger): Option<TriggerRecord> = sqlx::query_as(
            "SELECT id, workspace_id, workflow_id, kind, scheme, next_run_at, created_at FROM workflow_triggers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let workflow = self.workflow(&trigger.workspace_id, &trigger.workflow_id).await?;
        Ok(workflow.map(|w| (trigger, w)))
    }

    /// Start an execution: insert it and its job.
    pub async fn start_execution(&self, new: &NewExecution<'_>) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_execution(&mut tx, self.backend(), new).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Start an execution for an incoming webhook, unless `delivery_id` was seen on this
    /// trigger before (then `false`, and nothing is started).
    pub async fn start_execution_once(
        &self,
        trigger_id: &str,
        delivery_id: Option<&str>,
        new: &NewExecution<'_>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if let Some(delivery_id) = delivery_id {
            let inserted = sqlx::query(
                "INSERT INTO trigger_deliveries (trigger_id, delivery_id, execution_id, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT (trigger_id, delivery_id) DO NOTHING",
            )
            .bind(trigger_id)
            .bind(delivery_id)
            .bind(new.id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !inserted {
                return Ok(false);
            }
        }
        insert_execution(&mut tx, self.backend(), new).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Fire a schedule's tick: move its `next_run_at` from `due` to `next` (compare-and-set, so
    /// of several nodes looking at the same tick exactly one wins) and, when `execution` is
    /// given, start it in the same transaction. Returns whether this call won.
    pub async fn fire_schedule(
        &self,
        trigger_id: &str,
        due: i64,
        next: Option<i64>,
        execution: Option<&NewExecution<'_>>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let won = sqlx::query("UPDATE workflow_triggers SET next_run_at = $1 WHERE id = $2 AND next_run_at = $3")
            .bind(next)
            .bind(trigger_id)
            .bind(due)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if !won {
            return Ok(false);
        }
        if let Some(new) = execution {
            insert_execution(&mut tx, self.backend(), new).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Schedules whose next tick is due at `now`, with their workflows' enabled flag and
    /// version.
    pub async fn due_schedules(&self, now: i64, limit: usize) -> StoreResult<Vec<(TriggerRecord, i64, i64)>> {
        let rows: Vec<DueRow> = sqlx::query_as(
            "SELECT t.id, t.workspace_id, t.workflow_id, t.kind, t.scheme, t.next_run_at, t.created_at, w.enabled, w.version FROM workflow_triggers t JOIN workflows w ON w.id = t.workflow_id WHERE t.kind = 'schedule' AND t.next_run_at <= $1 ORDER BY t.next_run_at LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    TriggerRecord {
                        id: r.id,
                        workspace_id: r.workspace_id,
                        workflow_id: r.workflow_id,
                        kind: r.kind,
                        scheme: r.scheme,
                        next_run_at: r.next_run_at,
                        created_at: r.created_at,
                    },
                    r.enabled,
                    r.version,
                )
            })
            .collect())
    }

    /// Log a refused incoming webhook (the reason only: never the body or a secret). Only the
    /// newest [`MAX_TRIGGER_FAILURES`] of a trigger are kept.
    pub async fn record_trigger_failure(
        &self,
        workspace_id: &WorkspaceId,
        trigger_id: &str,
        reason: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO trigger_failures (id, workspace_id, trigger_id, reason, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(super::new_id("tfl"))
        .bind(workspace_id)
        .bind(trigger_id)
        .bind(reason.chars().take(300).collect::<String>())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM trigger_failures WHERE workspace_id = $1 AND trigger_id = $2 AND id NOT IN (SELECT id FROM trigger_failures WHERE workspace_id = $1 AND trigger_id = $2 ORDER BY id DESC LIMIT $3)",
        )
        .bind(workspace_id)
        .bind(trigger_id)
        .bind(MAX_TRIGGER_FAILURES)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A trigger's refused deliveries, newest first.
    pub async fn trigger_failures(
        &self,
        workspace_id: &WorkspaceId,
        trigger_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<TriggerFailureRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, workspace_id, trigger_id, reason, created_at FROM trigger_failures WHERE workspace_id = $1 AND trigger_id = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(workspace_id)
        .bind(trigger_id)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?)
    }

    /// An execution of the workspace.
    pub async fn execution(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<ExecutionRecord>> {
        Ok(sqlx::query_as(EXECUTION_SQL)
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// An execution of the workspace and its journal, read from one snapshot (so a step shown
    /// `waiting` is never beside an execution still shown `queued`).
    pub async fn execution_with_steps(
        &self,
        workspace_id: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<(ExecutionRecord, Vec<StepRunRecord>)>> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == super::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let execution: Option<ExecutionRecord> = sqlx::query_as(EXECUTION_SQL)
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(execution) = execution else {
            return Ok(None);
        };
        let steps = sqlx::query_as(STEP_RUNS_SQL).bind(id).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some((execution, steps)))
    }

    /// A workflow's executions, newest first, before the cursor (`""`: from the newest).
    pub async fn list_executions(
        &self,
        workspace_id: &WorkspaceId,
        workflow_id: &str,
        before: &str,
        limit: usize,
    ) -> StoreResult<Page<ExecutionRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            execution_columns!(),
            " FROM workflow_executions WHERE workspace_id = $1 AND workflow_id = $2 AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
        );
        let rows = sqlx::query_as(SQL)
            .bind(workspace_id)
            .bind(workflow_id)
            .bind(before)
            .bind(limit as i64 + 1)
            .fetch_all(self.pool())
            .await?;
        Ok(Page::from_rows(rows, limit, |e: &ExecutionRecord| e.id.clone()))
    }

    /// The journal of an execution, in step order.
    pub async fn step_runs(&self, execution_id: &str) -> StoreResult<Vec<StepRunRecord>> {
        Ok(sqlx::query_as(STEP_RUNS_SQL)
            .bind(execution_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// Whether a cancel was asked for (read by the worker before each step).
    pub async fn cancel_requested(&self, execution_id: &str) -> StoreResult<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT cancel_requested FROM workflow_executions WHERE id = $1")
            .bind(execution_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some_and(|(c,)| c != 0))
    }

    /// Write journal entries in one transaction. Each is fenced by its job's lease: one whose
    /// lease was lost writes nothing (its `written` stays `false`); the others' step rows,
    /// ends, events and job removals commit together. The first write of an execution also
    /// marks it `running`.
    pub async fn write_journal(&self, writes: &[JournalWrite]) -> StoreResult<()> {
        // Rows are locked in job-id order (stable, so one job's writes keep their order): two
        // nodes' batches never wait on each other in a cycle.
        let mut ordered: Vec<&JournalWrite> = writes.iter().collect();
        ordered.sort_by(|a, b| a.job.id.cmp(&b.job.id));
        let mut tx = self.begin_write().await?;
        let mut written = Vec::with_capacity(writes.len());
        let mut events = false;
        for w in ordered {
            if !fence(&mut tx, &w.job, w.lease_ms).await? {
                continue;
            }
            write_one(&mut tx, w).await?;
            events |= w.end.as_ref().is_some_and(|e| e.event.is_some());
            written.push(&w.written);
        }
        tx.commit().await?;
        for flag in written {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if events {
            self.events_committed();
        }
        Ok(())
    }

    /// Ask a queued or running execution to stop before its next step; a job waiting (a
    /// delay, a retry backoff) is made due now so the stop is prompt. Returns the execution
    /// as it is after the request.
    pub async fn request_cancel(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<ExecutionRecord>> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE workflow_executions SET cancel_requested = 1 WHERE workspace_id = $1 AND id = $2 AND status IN ('queued', 'running')",
        )
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed {
            sqlx::query("UPDATE jobs SET run_at = $1 WHERE queue = $2 AND dedupe_key = $3 AND lease_token IS NULL")
                .bind(now_ms())
                .bind(WORKFLOW_QUEUE)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            super::jobs::notify_enqueued(&mut tx, self.backend(), WORKFLOW_QUEUE).await?;
        }
        tx.commit().await?;
        self.execution(workspace_id, id).await
    }

    /// Re-queue a failed execution from the step it failed at: that step's journal row and
    /// every later one are removed (completed earlier steps stay and are not run again).
    /// `false`: it is not `failed`.
    pub async fn retry_execution(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT failed_step FROM workflow_executions WHERE workspace_id = $1 AND id = $2 AND status = 'failed'",
        )
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((failed_step,)) = row else {
            return Ok(false);
        };
        // Compare-and-set: of two concurrent retries, one requeues it.
        let requeued = sqlx::query(
            "UPDATE workflow_executions SET status = 'queued', error = NULL, failed_step = NULL, output = NULL, finished_at = NULL, cancel_requested = 0 WHERE workspace_id = $1 AND id = $2 AND status = 'failed'",
        )
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !requeued {
            return Ok(false);
        }
        let from: Option<(i64,)> =
            sqlx::query_as("SELECT position FROM workflow_step_runs WHERE execution_id = $1 AND step = $2")
                .bind(id)
                .bind(failed_step.unwrap_or_default())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((position,)) = from {
            sqlx::query("DELETE FROM workflow_step_runs WHERE execution_id = $1 AND position >= $2")
                .bind(id)
                .bind(position)
                .execute(&mut *tx)
                .await?;
        }
        let payload = serde_json::json!({ "execution_id": id, "workspace_id": workspace_id }).to_string();
        insert_job(
            &mut tx,
            self.backend(),
            &NewJob {
                queue: WORKFLOW_QUEUE,
                dedupe_key: Some(id),
                payload: &payload,
                run_at: now_ms(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Execution totals per workflow of the workspace.
    pub async fn workflow_usage(&self, workspace_id: &WorkspaceId) -> StoreResult<Vec<WorkflowUsageRow>> {
        Ok(sqlx::query_as(
            "SELECT workflow_id, COUNT(*) AS executions, \
             SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS succeeded, \
             SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed, \
             SUM(CASE WHEN status IN ('queued', 'running') THEN 1 ELSE 0 END) AS active, \
             AVG(CAST(finished_at - created_at AS DOUBLE PRECISION)) AS mean_duration_ms, \
             MAX(finished_at - created_at) AS max_duration_ms \
             FROM workflow_executions WHERE workspace_id = $1 GROUP BY workflow_id ORDER BY workflow_id",
        )
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Connector step totals of the workspace's executions.
    pub async fn connector_step_usage(&self, workspace_id: &WorkspaceId) -> StoreResult<Vec<ConnectorStepUsageRow>> {
        Ok(sqlx::query_as(
            "SELECT s.connector AS connector, COUNT(*) AS steps, SUM(CASE WHEN s.status = 'failed' THEN 1 ELSE 0 END) AS failed \
             FROM workflow_step_runs s JOIN workflow_executions e ON e.id = s.execution_id \
             WHERE e.workspace_id = $1 AND s.connector IS NOT NULL GROUP BY s.connector ORDER BY s.connector",
        )
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?)
    }
}

#[derive(sqlx::FromRow)]
struct DueRow {
    id: String,
    workspace_id: WorkspaceId,
    workflow_id: String,
    kind: String,
    scheme: Option<String>,
    next_run_at: Option<i64>,
    created_at: i64,
    enabled: i64,
    version: i64,
}

/// One journal write, on a transaction that holds the job's lease.
async fn write_one(tx: &mut sqlx::AnyConnection, w: &JournalWrite) -> StoreResult<()> {
    let now = now_ms();
    sqlx::query(
        "UPDATE workflow_executions SET status = 'running', started_at = $1 WHERE id = $2 AND status = 'queued'",
    )
    .bind(now)
    .bind(&w.execution_id)
    .execute(&mut *tx)
    .await?;
    if let Some(s) = &w.step {
        sqlx::query(
            "INSERT INTO workflow_step_runs (execution_id, step, position, status, attempts, idempotency_key, connector, output, error, next_step, trace, wake_at, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (execution_id, step) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, connector = excluded.connector, output = excluded.output, error = excluded.error, next_step = excluded.next_step, trace = excluded.trace, wake_at = excluded.wake_at, finished_at = excluded.finished_at",
        )
        .bind(&s.execution_id)
        .bind(&s.step)
        .bind(s.position)
        .bind(&s.status)
        .bind(s.attempts)
        .bind(&s.idempotency_key)
        .bind(&s.connector)
        .bind(&s.output)
        .bind(&s.error)
        .bind(&s.next_step)
        .bind(&s.trace)
        .bind(s.wake_at)
        .bind(s.started_at)
        .bind(s.finished_at)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(end) = &w.end {
        sqlx::query(
            "UPDATE workflow_executions SET status = $1, output = $2, error = $3, failed_step = $4, finished_at = $5 WHERE id = $6",
        )
        .bind(&end.status)
        .bind(&end.output)
        .bind(&end.error)
        .bind(&end.failed_step)
        .bind(now)
        .bind(&w.execution_id)
        .execute(&mut *tx)
        .await?;
        if let Some((kind, data)) = &end.event {
            super::events::insert_event(&mut *tx, &w.workspace_id, kind, data).await?;
        }
        settle_job_in(&mut *tx, &w.job, &JobFate::Remove).await?;
    }
    Ok(())
}

/// The version row, trigger row and sealed secrets of a save.
async fn write_save_parts(tx: &mut sqlx::AnyConnection, save: &WorkflowSave<'_>) -> StoreResult<()> {
    let w = save.workflow;
    if let Some(link) = save.template {
        super::templates::write_link(tx, &w.workspace_id, &w.id, link, w.updated_at).await?;
    }
    if let Some(definition) = save.definition {
        sqlx::query(
            "INSERT INTO workflow_versions (workflow_id, version, definition, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&w.id)
        .bind(w.version)
        .bind(definition)
        .bind(w.updated_at)
        .execute(&mut *tx)
        .await?;
        if let Some(t) = save.trigger {
            sqlx::query(
                "INSERT INTO workflow_triggers (id, workspace_id, workflow_id, kind, scheme, next_run_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, scheme = excluded.scheme, \
                 next_run_at = CASE WHEN $8 = 1 THEN workflow_triggers.next_run_at ELSE excluded.next_run_at END",
            )
            .bind(&t.id)
            .bind(&t.workspace_id)
            .bind(&t.workflow_id)
            .bind(&t.kind)
            .bind(&t.scheme)
            .bind(t.next_run_at)
            .bind(t.created_at)
            .bind(i64::from(save.keep_next_run))
            .execute(&mut *tx)
            .await?;
        }
    }
    if let Some(owner) = save.unseal {
        sqlx::query("DELETE FROM secrets WHERE workspace_id = $1 AND owner_id = $2")
            .bind(&w.workspace_id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(sealed) = save.sealed {
        super::secrets::put_secret_in(tx, sealed).await?;
    }
    Ok(())
}
