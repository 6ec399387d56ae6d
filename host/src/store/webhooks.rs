//! Outgoing webhook rows: endpoints, messages (one per event fanned out), and the log of
//! delivery attempts. The fan-out turns undelivered outbox events into messages and one
//! delivery job per subscribed endpoint, in one transaction, so no event is lost or fanned
//! out twice.

use super::{Db, StoreResult, jobs::insert_job, new_id, now_ms};
use crate::ids::WorkspaceId;

/// Queue of webhook delivery jobs.
pub const DELIVERY_QUEUE: &str = "webhook.deliver";

/// What a delivery job carries: which message goes to which endpoint.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeliveryJob {
    /// The workspace both belong to.
    pub workspace_id: WorkspaceId,
    /// `msg_…`
    pub message_id: String,
    /// `wep_…`
    pub endpoint_id: String,
    /// The message's body, carried by jobs made at fan-out so a delivery needs no read of
    /// the message (manual retries and recoveries read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl DeliveryJob {
    /// The job's payload.
    fn payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The body of a delivery: `{"type", "timestamp" (unix ms of the event), "data"}`.
pub fn message_body(kind: &str, timestamp_ms: i64, data: serde_json::Value) -> String {
    serde_json::json!({ "type": kind, "timestamp": timestamp_ms, "data": data }).to_string()
}

/// A delivery attempt that has run, to be written with its job's fate.
#[derive(Debug, Clone)]
pub struct FinishedDelivery {
    /// The attempt's log row.
    pub attempt: AttemptRecord,
    /// Whether the receiver answered 2xx.
    pub succeeded: bool,
    /// The job that ran it.
    pub job: super::ClaimedJob,
    /// What becomes of the job.
    pub fate: super::JobFate,
}

/// A webhook endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRecord {
    /// `wep_…`
    pub id: String,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text.
    pub description: String,
    /// Comma-separated event types it receives (empty: every type except opt-in ones).
    pub event_types: String,
    /// Unix ms it was disabled, if it is.
    pub disabled_at: Option<i64>,
    /// Why (`gone`, `failing`, `manual`).
    pub disabled_reason: Option<String>,
    /// Unix ms of the first failure since the last success.
    pub failing_since: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; changes with every edit and secret rotation.
    pub updated_at: i64,
    /// Most deliveries per second (`None`: no limit).
    pub rate_limit_per_sec: Option<i64>,
    /// `api`, or `hook` for a REST-hook subscription.
    pub source: String,
    /// Comma-separated names of its custom headers (the values are sealed with its secret).
    pub header_names: String,
}

/// Where an endpoint came from.
pub const ENDPOINT_SOURCE_API: &str = "api";
/// An endpoint made by a REST-hook subscription (`POST /hooks`).
pub const ENDPOINT_SOURCE_HOOK: &str = "hook";

/// A new endpoint row.
#[derive(Debug, Clone)]
pub struct NewEndpointRow<'a> {
    /// Checked URL.
    pub url: &'a str,
    /// Free text.
    pub description: &'a str,
    /// Event types (empty: all but opt-in).
    pub event_types: &'a [String],
    /// Deliveries per second, if limited.
    pub rate_limit_per_sec: Option<i64>,
    /// [`ENDPOINT_SOURCE_API`] or [`ENDPOINT_SOURCE_HOOK`].
    pub source: &'a str,
    /// Names of its custom headers.
    pub header_names: &'a [String],
}

/// A change to an endpoint; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    /// New checked URL.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// New rate limit (`Some(None)` removes it).
    pub rate_limit_per_sec: Option<Option<i64>>,
    /// New custom header names (their values are sealed by the caller).
    pub header_names: Option<Vec<String>>,
    /// `Some(true)`: enable again (clears the failure clock); `Some(false)`: disable.
    pub enabled: Option<bool>,
}

impl EndpointRecord {
    /// A new, enabled endpoint of `workspace_id` with a fresh id.
    pub fn new(workspace_id: &WorkspaceId, new: &NewEndpointRow<'_>) -> Self {
        let now = now_ms();
        Self {
            id: new_id("wep"),
            workspace_id: workspace_id.clone(),
            url: new.url.to_string(),
            description: new.description.to_string(),
            event_types: new.event_types.join(","),
            disabled_at: None,
            disabled_reason: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
            rate_limit_per_sec: new.rate_limit_per_sec,
            source: new.source.to_string(),
            header_names: new.header_names.join(","),
        }
    }

    /// Whether it receives events of `kind`.
    pub fn subscribes_to(&self, kind: &str, opt_in: &[&str]) -> bool {
        let types: Vec<&str> = self
            .event_types
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if types.is_empty() {
            !opt_in.contains(&kind)
        } else {
            types.contains(&kind)
        }
    }
}

/// One event as sent to endpoints.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRecord {
    /// `msg_…`, the `webhook-id` of every attempt.
    pub id: String,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The outbox event it came from.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// The JSON body sent.
    pub payload: String,
    /// Unix ms.
    pub created_at: i64,
}

/// One delivery attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRecord {
    /// `wat_…`
    pub id: String,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Message.
    pub message_id: String,
    /// Endpoint.
    pub endpoint_id: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// The receiver's status, if it answered.
    pub status_code: Option<i64>,
    /// Time to the answer (or the failure), ms.
    pub latency_ms: i64,
    /// The start of the receiver's answer (capped).
    pub response_excerpt: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// When the next attempt runs, if there is one.
    pub next_attempt_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
}

macro_rules! endpoint_columns {
    () => {
        "id, workspace_id, url, description, event_types, disabled_at, disabled_reason, failing_since, created_at, updated_at, rate_limit_per_sec, source, header_names"
    };
}

macro_rules! message_columns {
    () => {
        "id, workspace_id, event_id, event_type, payload, created_at"
    };
}

macro_rules! attempt_columns {
    () => {
        "id, workspace_id, message_id, endpoint_id, attempt, status_code, latency_ms, response_excerpt, error, next_attempt_at, created_at"
    };
}

/// An outbox event waiting for fan-out.
#[derive(Debug, Clone, sqlx::FromRow)]
struct PendingEvent {
    id: String,
    workspace_id: WorkspaceId,
    #[sqlx(rename = "type")]
    kind: String,
    payload: String,
    created_at: i64,
}

impl Db {
    /// Store a new endpoint with its sealed secret record, in one transaction.
    pub async fn insert_webhook_endpoint(
        &self,
        record: &EndpointRecord,
        secret: &super::SecretRecord,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(concat!(
            "INSERT INTO webhook_endpoints (",
            endpoint_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, NULL, NULL, NULL, $6, $7, $8, $9, $10)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.url)
        .bind(&record.description)
        .bind(&record.event_types)
        .bind(record.created_at)
        .bind(record.updated_at)
        .bind(record.rate_limit_per_sec)
        .bind(&record.source)
        .bind(&record.header_names)
        .execute(&mut *tx)
        .await?;
        super::secrets::put_secret_in(&mut tx, secret).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Apply `changes` to an endpoint, and replace its sealed secret record when `sealed` is
    /// given, in one transaction. Returns the endpoint afterwards (`None`: no such endpoint).
    /// With `expected_updated_at`, a change made meanwhile (another edit or rotation) wins and
    /// this one fails with [`StoreError::Changed`](super::StoreError::Changed). `updated_at`
    /// grows with every change, even two in one millisecond.
    pub async fn update_webhook_endpoint(
        &self,
        workspace_id: &WorkspaceId,
        id: &str,
        changes: &EndpointChanges,
        sealed: Option<&super::SecretRecord>,
        expected_updated_at: Option<i64>,
    ) -> StoreResult<Option<EndpointRecord>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let (enable, disable) = match changes.enabled {
            Some(true) => (true, false),
            Some(false) => (false, true),
            None => (false, false),
        };
        let updated = sqlx::query(
            "UPDATE webhook_endpoints SET url = COALESCE($1, url), description = COALESCE($2, description), event_types = COALESCE($3, event_types), rate_limit_per_sec = CASE WHEN $4 THEN $5 ELSE rate_limit_per_sec END, header_names = COALESCE($6, header_names), disabled_at = CASE WHEN $7 THEN NULL WHEN $8 AND disabled_at IS NULL THEN $9 ELSE disabled_at END, disabled_reason = CASE WHEN $7 THEN NULL WHEN $8 AND disabled_at IS NULL THEN 'manual' ELSE disabled_reason END, failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END, updated_at = CASE WHEN updated_at >= $9 THEN updated_at + 1 ELSE $9 END WHERE workspace_id = $10 AND id = $11 AND ($12 < 0 OR updated_at = $12)",
        )
        .bind(changes.url.as_deref())
        .bind(changes.description.as_deref())
        .bind(changes.event_types.as_ref().map(|t| t.join(",")))
        .bind(changes.rate_limit_per_sec.is_some())
        .bind(changes.rate_limit_per_sec.flatten())
        .bind(changes.header_names.as_ref().map(|h| h.join(",")))
        .bind(enable)
        .bind(disable)
        .bind(now)
        .bind(workspace_id)
        .bind(id)
        .bind(expected_updated_at.unwrap_or(-1))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !updated {
            tx.rollback().await?;
            if expected_updated_at.is_some() && self.webhook_endpoint(workspace_id, id).await?.is_some() {
                return Err(super::StoreError::Changed);
            }
            return Ok(None);
        }
        if let Some(secret) = sealed {
            super::secrets::put_secret_in(&mut tx, secret).await?;
        }
        let record = sqlx::query_as(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// One endpoint of a workspace.
    pub async fn webhook_endpoint(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<EndpointRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// A message of a workspace.
    pub async fn webhook_message(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<MessageRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM webhook_messages WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Turn up to `limit` undelivered outbox events into messages and delivery jobs for the
    /// enabled endpoints subscribed to them, marking the events delivered, all in one
    /// transaction. `opt_in` types go only to endpoints that name them. Returns the number
    /// of events handled.
    pub async fn fan_out_events(&self, limit: usize, opt_in: &[&str]) -> StoreResult<usize> {
        // A read first: an idle outbox never takes the write lock.
        let pending: Option<(String,)> = sqlx::query_as("SELECT id FROM events WHERE delivered_at IS NULL LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        if pending.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let events: Vec<PendingEvent> = sqlx::query_as(match self.backend() {
            super::Backend::Postgres => {
                "SELECT id, workspace_id, type, payload, created_at FROM events WHERE delivered_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
            }
            super::Backend::Sqlite => {
                "SELECT id, workspace_id, type, payload, created_at FROM events WHERE delivered_at IS NULL ORDER BY id LIMIT $1"
            }
        })
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        let now = now_ms();
        let mut endpoints: std::collections::HashMap<WorkspaceId, Vec<EndpointRecord>> = Default::default();
        let mut messages: Vec<[String; 5]> = Vec::new();
        let mut jobs: Vec<[String; 3]> = Vec::new();
        for event in &events {
            if !endpoints.contains_key(&event.workspace_id) {
                let found: Vec<EndpointRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    endpoint_columns!(),
                    " FROM webhook_endpoints WHERE workspace_id = $1 AND disabled_at IS NULL"
                ))
                .bind(&event.workspace_id)
                .fetch_all(&mut *tx)
                .await?;
                endpoints.insert(event.workspace_id.clone(), found);
            }
            // An event about an endpoint's failed deliveries is not sent to that endpoint.
            let about: Option<String> =
                matches!(event.kind.as_str(), "message.attempt.exhausted" | "endpoint.disabled")
                    .then(|| serde_json::from_str::<serde_json::Value>(&event.payload).ok())
                    .flatten()
                    .and_then(|p| p["endpoint_id"].as_str().map(str::to_string));
            let subscribed: Vec<&EndpointRecord> = endpoints[&event.workspace_id]
                .iter()
                .filter(|e| e.subscribes_to(&event.kind, opt_in) && about.as_deref() != Some(e.id.as_str()))
                .collect();
            if subscribed.is_empty() {
                continue;
            }
            let message_id = new_id("msg");
            let data = serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null);
            let body = message_body(&event.kind, event.created_at, data);
            for endpoint in subscribed {
                let payload = DeliveryJob {
                    workspace_id: event.workspace_id.clone(),
                    message_id: message_id.clone(),
                    endpoint_id: endpoint.id.clone(),
                    body: Some(body.clone()),
                }
                .payload();
                jobs.push([new_id("job"), format!("{message_id}:{}", endpoint.id), payload]);
            }
            messages.push([
                message_id,
                event.workspace_id.to_string(),
                event.id.clone(),
                event.kind.clone(),
                body,
            ]);
        }
        // Multi-row statements: a batch costs a handful of statements, not three per event.
        for chunk in messages.chunks(super::batch::MAX_VALUES / 6) {
            let sql = format!(
                concat!("INSERT INTO webhook_messages (", message_columns!(), ") VALUES {}"),
                super::batch::value_rows(chunk.len(), 6, 1)
            );
            let mut insert = sqlx::query(super::batch::statement(sql));
            for [id, ws, event_id, kind, body] in chunk {
                insert = insert.bind(id).bind(ws).bind(event_id).bind(kind).bind(body).bind(now);
            }
            insert.execute(&mut *tx).await?;
        }
        for chunk in jobs.chunks(super::batch::MAX_VALUES / 7) {
            let sql = format!(
                "INSERT INTO jobs (id, queue, dedupe_key, payload, run_at, attempts, created_at) VALUES {} ON CONFLICT (queue, dedupe_key) DO NOTHING",
                super::batch::value_rows(chunk.len(), 7, 1)
            );
            let mut insert = sqlx::query(super::batch::statement(sql));
            for [id, dedupe, payload] in chunk {
                insert = insert
                    .bind(id)
                    .bind(DELIVERY_QUEUE)
                    .bind(dedupe)
                    .bind(payload)
                    .bind(now)
                    .bind(0_i64)
                    .bind(now);
            }
            insert.execute(&mut *tx).await?;
        }
        if !jobs.is_empty() {
            super::jobs::notify_enqueued(&mut tx, self.backend(), DELIVERY_QUEUE).await?;
        }
        let ids: Vec<&String> = events.iter().map(|e| &e.id).collect();
        for chunk in ids.chunks(super::batch::MAX_VALUES - 1) {
            let sql = format!(
                "UPDATE events SET delivered_at = $1 WHERE id IN ({})",
                super::batch::value_list(chunk.len(), 2)
            );
            let mut update = sqlx::query(super::batch::statement(sql)).bind(now);
            for id in chunk {
                update = update.bind(*id);
            }
            update.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(events.len())
    }

    /// The attempts of a message, oldest first.
    pub async fn webhook_attempts(
        &self,
        workspace_id: &WorkspaceId,
        message_id: &str,
    ) -> StoreResult<Vec<AttemptRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            attempt_columns!(),
            " FROM webhook_attempts WHERE workspace_id = $1 AND message_id = $2 ORDER BY id"
        ))
        .bind(workspace_id)
        .bind(message_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Disable an endpoint (`gone`, `failing`, `manual`) unless it already is; returns
    /// whether this call disabled it.
    pub async fn disable_webhook_endpoint(
        &self,
        workspace_id: &WorkspaceId,
        endpoint_id: &str,
        reason: &str,
    ) -> StoreResult<bool> {
        let now = now_ms();
        Ok(sqlx::query(
            "UPDATE webhook_endpoints SET disabled_at = $1, disabled_reason = $2, updated_at = CASE WHEN updated_at >= $1 THEN updated_at + 1 ELSE $1 END WHERE workspace_id = $3 AND id = $4 AND disabled_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(workspace_id)
        .bind(endpoint_id)
        .execute(self.writer())
        .await?
        .rows_affected()
            == 1)
    }
}

impl Db {
    /// A workspace's endpoints, oldest first.
    pub async fn list_webhook_endpoints(&self, workspace_id: &WorkspaceId) -> StoreResult<Vec<EndpointRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE workspace_id = $1 ORDER BY id"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Delete an endpoint and its sealed secret; returns whether it existed. Jobs already
    /// queued for it give up when they find it gone.
    pub async fn delete_webhook_endpoint(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if deleted {
            sqlx::query("DELETE FROM secrets WHERE workspace_id = $1 AND owner_id = $2")
                .bind(workspace_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}

impl Db {
    /// Queue one more delivery of `message_id` to `endpoint_id` now. A manual retry
    /// (`once: false`) queues its own job, so it runs even while a scheduled retry is pending;
    /// a recovery (`once: true`) queues nothing while the message's own delivery job is still
    /// pending there (it will run anyway), so repeating a recovery adds nothing. Returns
    /// whether a job was queued.
    pub async fn enqueue_webhook_retry(
        &self,
        workspace_id: &WorkspaceId,
        message_id: &str,
        endpoint_id: &str,
        once: bool,
    ) -> StoreResult<bool> {
        let payload = DeliveryJob {
            workspace_id: workspace_id.clone(),
            message_id: message_id.to_string(),
            endpoint_id: endpoint_id.to_string(),
            body: None,
        }
        .payload();
        let dedupe = if once {
            format!("{message_id}:{endpoint_id}")
        } else {
            format!("{message_id}:{endpoint_id}:{}", new_id("retry"))
        };
        self.enqueue_job(&super::NewJob {
            queue: DELIVERY_QUEUE,
            dedupe_key: Some(&dedupe),
            payload: &payload,
            run_at: now_ms(),
        })
        .await
    }
}

impl Db {
    /// Messages attempted at `endpoint_id` from `since` to `until` (unix ms) that have never
    /// had a successful attempt there, oldest first, at most `limit`.
    pub async fn failed_webhook_messages(
        &self,
        workspace_id: &WorkspaceId,
        endpoint_id: &str,
        since: i64,
        until: i64,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT a.message_id FROM webhook_attempts a WHERE a.workspace_id = $1 AND a.endpoint_id = $2 AND a.created_at >= $3 AND a.created_at < $4 AND NOT EXISTS (SELECT 1 FROM webhook_attempts ok WHERE ok.workspace_id = a.workspace_id AND ok.message_id = a.message_id AND ok.endpoint_id = a.endpoint_id AND ok.status_code >= 200 AND ok.status_code < 300) GROUP BY a.message_id ORDER BY MIN(a.created_at), a.message_id LIMIT $5",
        )
        .bind(workspace_id)
        .bind(endpoint_id)
        .bind(since)
        .bind(until)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Store a message that goes to one endpoint only (an example sent by
    /// `POST …/endpoints/{id}/test`) and queue its delivery, in one transaction. Returns the
    /// message id.
    pub async fn insert_direct_message(
        &self,
        workspace_id: &WorkspaceId,
        endpoint_id: &str,
        event_type: &str,
        body: &str,
    ) -> StoreResult<String> {
        let message_id = new_id("msg");
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(concat!(
            "INSERT INTO webhook_messages (",
            message_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&message_id)
        .bind(workspace_id)
        .bind(format!("direct:{message_id}"))
        .bind(event_type)
        .bind(body)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let payload = DeliveryJob {
            workspace_id: workspace_id.clone(),
            message_id: message_id.clone(),
            endpoint_id: endpoint_id.to_string(),
            body: Some(body.to_string()),
        }
        .payload();
        let dedupe = format!("{message_id}:{endpoint_id}");
        insert_job(
            &mut tx,
            self.backend(),
            &super::NewJob {
                queue: DELIVERY_QUEUE,
                dedupe_key: Some(&dedupe),
                payload: &payload,
                run_at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(message_id)
    }

    /// Write finished deliveries in one transaction: each attempt's log row, its effect on
    /// the endpoint's failure clock (a success clears it, a failure starts it if it is not
    /// running), and its job's fate, fenced by the job's lease.
    ///
    /// When the batch cannot be written, each delivery is written on its own, so one bad
    /// row never holds back the others; a delivery whose row still cannot be written has its
    /// job settled anyway (its attempt goes unlogged, with an error in the server's log).
    pub async fn finish_deliveries(&self, finished: Vec<FinishedDelivery>) -> StoreResult<()> {
        let Err(batch_error) = self.finish_batch(&finished).await else {
            return Ok(());
        };
        if finished.len() > 1 {
            tracing::warn!(error = %batch_error, deliveries = finished.len(), "a batch of finished deliveries failed; writing them one by one");
        }
        for done in finished {
            if let Err(e) = self.finish_batch(std::slice::from_ref(&done)).await {
                tracing::error!(error = %e, job = %done.job.id, "a finished delivery could not be logged; settling its job without the log row");
                self.settle_job(&done.job, &done.fate).await?;
            }
        }
        Ok(())
    }

    async fn finish_batch(&self, finished: &[FinishedDelivery]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // Multi-row statements for the common case (log rows; jobs done): a batch of
        // deliveries costs a few statements.
        for chunk in finished.chunks(super::batch::MAX_VALUES / 11) {
            let sql = format!(
                concat!("INSERT INTO webhook_attempts (", attempt_columns!(), ") VALUES {}"),
                super::batch::value_rows(chunk.len(), 11, 1)
            );
            let mut insert = sqlx::query(super::batch::statement(sql));
            for FinishedDelivery { attempt, .. } in chunk {
                insert = insert
                    .bind(&attempt.id)
                    .bind(&attempt.workspace_id)
                    .bind(&attempt.message_id)
                    .bind(&attempt.endpoint_id)
                    .bind(attempt.attempt)
                    .bind(attempt.status_code)
                    .bind(attempt.latency_ms)
                    .bind(&attempt.response_excerpt)
                    .bind(&attempt.error)
                    .bind(attempt.next_attempt_at)
                    .bind(attempt.created_at);
            }
            insert.execute(&mut *tx).await?;
        }
        let removed: Vec<&super::ClaimedJob> = finished
            .iter()
            .filter(|f| f.fate == super::JobFate::Remove)
            .map(|f| &f.job)
            .collect();
        for chunk in removed.chunks(super::batch::MAX_VALUES / 2) {
            let fences: Vec<String> = (0..chunk.len())
                .map(|i| format!("(id = ${} AND lease_token = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!("DELETE FROM jobs WHERE {}", fences.join(" OR "));
            let mut delete = sqlx::query(super::batch::statement(sql));
            for job in chunk {
                delete = delete.bind(&job.id).bind(&job.lease_token);
            }
            let deleted = delete.execute(&mut *tx).await?.rows_affected();
            if deleted < chunk.len() as u64 {
                tracing::warn!(
                    lost = chunk.len() as u64 - deleted,
                    "some deliveries' leases were lost before they were recorded"
                );
            }
        }
        // The failure clock: cleared by a success, started (if not running) by a failure.
        let mut cleared: Vec<&str> = finished
            .iter()
            .filter(|f| f.succeeded)
            .map(|f| f.attempt.endpoint_id.as_str())
            .collect();
        cleared.sort_unstable();
        cleared.dedup();
        for chunk in cleared.chunks(super::batch::MAX_VALUES) {
            let sql = format!(
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE failing_since IS NOT NULL AND id IN ({})",
                super::batch::value_list(chunk.len(), 1)
            );
            let mut update = sqlx::query(super::batch::statement(sql));
            for id in chunk {
                update = update.bind(*id);
            }
            update.execute(&mut *tx).await?;
        }
        for done in finished {
            if !done.succeeded {
                sqlx::query("UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1")
                    .bind(&done.attempt.endpoint_id)
                    .bind(done.attempt.created_at)
                    .execute(&mut *tx)
                    .await?;
            }
            if done.fate != super::JobFate::Remove
                && !super::jobs::settle_job_in(&mut tx, &done.job, &done.fate).await?
            {
                tracing::warn!(job = %done.job.id, "a delivery's lease was lost before it was recorded");
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
