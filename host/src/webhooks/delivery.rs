//! Delivering one message to one endpoint: a job on the durable queue. Each attempt is
//! signed afresh (Standard Webhooks; the `webhook-id` is the message id, stable across
//! retries; during a secret rotation both signatures are sent), POSTed with the endpoint's
//! custom headers through the host's policed outbound client (the address policy is checked
//! again at every delivery, redirects are never followed, the timeout is 15 s by default),
//! logged, and then finished, retried on the schedule (honouring `Retry-After` on 429/503),
//! or given up. `410 Gone` disables the endpoint; so does failing continuously for the
//! failure window. An endpoint's rate limit defers a delivery without spending an attempt.

use super::schedule::{RetrySchedule, random_jitter};
use super::sealed::EndpointSecrets;
use super::signing::WebhookHeaders;
use crate::ids::WorkspaceId;
use crate::jobs::queue::{HandlerFuture, Outcome, QueueHandler};
use crate::state::AppState;
use crate::store::group_commit::{BatchWrite, GroupCommit};
use crate::store::{
    AttemptRecord, ClaimedJob, DELIVERY_QUEUE, DeliveryJob, EndpointRecord, FinishedDelivery, JobFate, new_id, now_ms,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most bytes of a receiver's answer kept in the delivery log.
const EXCERPT_BYTES: usize = 1024;

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Finished deliveries written in one transaction at most.
const FINISH_BATCH: usize = 256;

/// Longest a delivery waits for its record to commit.
const FINISH_PATIENCE: Duration = Duration::from_secs(10);

/// Endpoints whose secrets (and rate-limit turns) are kept in memory at most at once.
const REMEMBERED_ENDPOINTS: usize = 4096;

/// Runs `webhook.deliver` jobs.
pub struct DeliveryHandler {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<AppState>,
    schedule: RetrySchedule,
    failure_window: Duration,
    timeout: Duration,
    /// Endpoint id → (its `updated_at` when opened, its secrets): an edit or a rotation
    /// changes `updated_at`, so a stale entry is never used.
    secrets: Mutex<HashMap<String, (i64, Arc<EndpointSecrets>)>>,
    /// Writes finished deliveries (log row, failure clock, job fate) by group commit.
    finisher: GroupCommit<FinishedDelivery>,
    /// Rate-limited endpoint id → unix ms of the next free turn on this node.
    turns: Mutex<HashMap<String, i64>>,
}

impl DeliveryHandler {
    /// A handler for `state`, retrying on `schedule`, giving a receiver `timeout` to answer
    /// and disabling endpoints that fail for `failure_window`.
    pub fn new(state: Arc<AppState>, schedule: RetrySchedule, timeout: Duration, failure_window: Duration) -> Self {
        let write: BatchWrite<FinishedDelivery> = Arc::new(|db, finished: Vec<FinishedDelivery>| {
            Box::pin(async move { db.finish_deliveries(finished).await })
        });
        let finisher = GroupCommit::start(state.db.clone(), "finished webhook deliveries", FINISH_BATCH, write);
        Self {
            inner: Arc::new(Inner {
                finisher,
                turns: Mutex::default(),
                state,
                schedule,
                failure_window,
                timeout,
                secrets: Mutex::default(),
            }),
        }
    }
}

impl QueueHandler for DeliveryHandler {
    fn queue(&self) -> &'static str {
        DELIVERY_QUEUE
    }

    fn lease(&self) -> Duration {
        // Longer than one attempt can take, so a slow receiver is never sent a second,
        // concurrent delivery (the heartbeat extends it while the attempt runs, too).
        self.inner.timeout * 2 + Duration::from_secs(1)
    }

    fn handle(&self, job: ClaimedJob) -> HandlerFuture {
        let inner = self.inner.clone();
        Box::pin(async move { inner.deliver(job).await })
    }
}

/// How one attempt went.
struct Answer {
    status: Option<u16>,
    retry_after: Option<Duration>,
    excerpt: String,
    error: Option<String>,
}

impl Answer {
    fn failed(error: String) -> Self {
        Self {
            status: None,
            retry_after: None,
            excerpt: String::new(),
            error: Some(error),
        }
    }
}

impl Inner {
    async fn deliver(&self, job: ClaimedJob) -> Outcome {
        let state = &self.state;
        let Ok(mut delivery) = serde_json::from_str::<DeliveryJob>(&job.payload) else {
            tracing::error!(job = %job.id, "a webhook delivery job is unreadable; dropped");
            return Outcome::GiveUp;
        };
        let ws = &delivery.workspace_id;
        let endpoint = match state.subscriptions.endpoint(&state.db, ws, &delivery.endpoint_id).await {
            Ok(Some(endpoint)) => endpoint,
            Ok(None) => return Outcome::GiveUp, // deleted meanwhile
            Err(e) => return retry_soon(format!("database: {e}")),
        };
        let body = match delivery.body.take() {
            Some(body) => body,
            None => match state.db.webhook_message(ws, &delivery.message_id).await {
                Ok(Some(message)) => message.payload,
                Ok(None) => return Outcome::GiveUp,
                Err(e) => return retry_soon(format!("database: {e}")),
            },
        };
        if endpoint.disabled_at.is_some() {
            return Outcome::GiveUp;
        }
        if let Some(limit) = endpoint.rate_limit_per_sec {
            let key = format!("webhook-endpoint:{}", endpoint.id);
            let decision = state
                .counters
                .rate(&key, u32::try_from(limit).unwrap_or(u32::MAX), Duration::from_secs(1))
                .await;
            if !decision.allowed {
                return Outcome::Defer {
                    at_ms: self.next_turn(&endpoint.id, limit, decision.retry_after),
                };
            }
        }
        let Some(secrets) = self.secrets_of(&endpoint).await else {
            return retry_soon("the endpoint's signing secret could not be read".into());
        };
        let attempt = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        let started = Instant::now();
        let answer = self
            .post(&endpoint.url, &secrets, &delivery.message_id, body.as_bytes())
            .await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let succeeded = answer.status.is_some_and(|s| (200..300).contains(&s));
        let gone = answer.status == Some(410);
        let now = now_ms();
        // The failure clock as it will be after this attempt (the endpoint as remembered: a
        // few seconds late at most, nothing next to the failure window).
        let failing_since = (!succeeded).then(|| endpoint.failing_since.unwrap_or(now));
        let window = i64::try_from(self.failure_window.as_millis()).unwrap_or(i64::MAX);
        let failed_too_long = failing_since.is_some_and(|since| now - since >= window);
        let next_at = if succeeded || gone || failed_too_long {
            None
        } else {
            self.schedule
                .delay_before(attempt.saturating_add(1), random_jitter())
                .map(|d| {
                    let d = answer.retry_after.map_or(d, |ra| ra.min(MAX_RETRY_AFTER).max(d));
                    now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
                })
        };
        let fate = match next_at {
            Some(run_at) => JobFate::Retry {
                run_at,
                error: answer
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("status {}", answer.status.unwrap_or(0))),
            },
            None => JobFate::Remove,
        };
        let finished = FinishedDelivery {
            attempt: AttemptRecord {
                id: new_id("wat"),
                workspace_id: ws.clone(),
                message_id: delivery.message_id.clone(),
                endpoint_id: endpoint.id.clone(),
                attempt: i64::from(attempt),
                status_code: answer.status.map(i64::from),
                latency_ms,
                response_excerpt: answer.excerpt,
                error: answer.error,
                next_attempt_at: next_at,
                created_at: now,
            },
            succeeded,
            job,
            fate,
        };
        if !self.finisher.submit(finished, FINISH_PATIENCE).await {
            // Nothing was written: the job stays claimed and runs again when its lease lapses.
            tracing::warn!(message = %delivery.message_id, "a finished webhook delivery could not be recorded");
            return Outcome::Settled;
        }
        if !succeeded && endpoint.failing_since.is_none() {
            // The failure clock just started: let the next attempt see it.
            state.subscriptions.forget(ws);
        }
        if gone {
            disable(state, ws, &endpoint.id, "gone").await;
        } else if failed_too_long {
            disable(state, ws, &endpoint.id, "failing").await;
        } else if !succeeded && next_at.is_none() && !is_about_deliveries(&body) {
            // (A message that is itself about failed deliveries is not reported in turn:
            // failing endpoints would otherwise multiply reports of each other forever.)
            let payload = serde_json::json!({ "message_id": delivery.message_id, "endpoint_id": endpoint.id, "attempts": attempt });
            if let Err(e) = state.db.append_event(ws, "message.attempt.exhausted", &payload).await {
                tracing::warn!(error = %e, "could not record message.attempt.exhausted");
            }
        }
        Outcome::Settled
    }

    /// When a delivery refused by `endpoint_id`'s rate limit runs again: each refused
    /// delivery gets its own later turn, `1/limit` s after the previous one, so a backlog
    /// behind a low limit is deferred once each, not woken all together again and again.
    fn next_turn(&self, endpoint_id: &str, limit: i64, retry_after: Duration) -> i64 {
        let earliest = now_ms() + i64::try_from(retry_after.as_millis()).unwrap_or(1000).max(1);
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        if turns.len() >= REMEMBERED_ENDPOINTS {
            turns.clear();
        }
        take_turn(&mut turns, endpoint_id, limit, earliest)
    }

    /// The endpoint's opened secrets, from memory while the endpoint is unchanged.
    async fn secrets_of(&self, endpoint: &EndpointRecord) -> Option<Arc<EndpointSecrets>> {
        let cached = {
            let cache = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&endpoint.id)
                .filter(|(version, _)| *version == endpoint.updated_at)
                .map(|(_, s)| s.clone())
        };
        if cached.is_some() {
            return cached;
        }
        let opened = Arc::new(EndpointSecrets::load(&self.state, &endpoint.workspace_id, &endpoint.id).await?);
        let mut cache = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= REMEMBERED_ENDPOINTS {
            cache.clear();
        }
        cache.insert(endpoint.id.clone(), (endpoint.updated_at, opened.clone()));
        Some(opened)
    }

    /// POST one signed attempt. The URL is checked against the address policy again (DNS
    /// may have changed since the endpoint was created; the policed resolver checks the
    /// resolved addresses too), and redirects are not followed.
    async fn post(&self, url: &str, secrets: &EndpointSecrets, msg_id: &str, body: &[u8]) -> Answer {
        let state = &self.state;
        let url = match state.outbound.check_url(url) {
            Ok(u) => u,
            Err(e) => return Answer::failed(e.to_string()),
        };
        let now = now_ms();
        let headers = WebhookHeaders::signed(&secrets.current, secrets.previous_at(now), msg_id, now / 1000, body);
        let mut request = state.outbound.client().post(url).timeout(self.timeout);
        for (name, value) in &secrets.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request = request.header("content-type", "application/json").body(body.to_vec());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Answer::failed(crate::broker::classify(e).to_string()),
        };
        let status = response.status().as_u16();
        let retry_after = crate::broker::retry_after(response.headers());
        let mut excerpt = Vec::new();
        let mut stream = response;
        while excerpt.len() < EXCERPT_BYTES {
            match stream.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - excerpt.len())]),
                _ => break,
            }
        }
        Answer {
            status: Some(status),
            retry_after,
            excerpt: scrub(&String::from_utf8_lossy(&excerpt), secrets),
            error: (!(200..300).contains(&status)).then(|| format!("the endpoint answered {status}")),
        }
    }
}

/// Take the next turn of `endpoint_id` at or after `earliest` (unix ms): turns are
/// `1000 / limit` ms apart.
fn take_turn(turns: &mut HashMap<String, i64>, endpoint_id: &str, limit: i64, earliest: i64) -> i64 {
    let spacing = (1000 / limit.max(1)).max(1);
    let next = turns.entry(endpoint_id.to_string()).or_insert(earliest);
    let at = (*next).max(earliest);
    *next = at + spacing;
    at
}

/// Event types about deliveries themselves.
const DELIVERY_EVENT_TYPES: &[&str] = &["message.attempt.exhausted", "endpoint.disabled"];

/// Whether a message body is an event about deliveries (see [`DELIVERY_EVENT_TYPES`]).
fn is_about_deliveries(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["type"].as_str().map(|t| DELIVERY_EVENT_TYPES.contains(&t)))
        .unwrap_or(false)
}

/// What of a receiver's answer is kept: NUL bytes dropped (PostgreSQL text cannot hold
/// them) and the endpoint's custom header values redacted, in case the receiver echoes
/// its request (they may be credentials).
fn scrub(excerpt: &str, secrets: &EndpointSecrets) -> String {
    let mut kept = excerpt.replace('\0', "");
    for value in secrets.headers.values() {
        if value.len() >= 4 {
            kept = kept.replace(value.as_str(), "[REDACTED]");
        }
    }
    kept
}

fn retry_soon(error: String) -> Outcome {
    Outcome::Retry {
        at_ms: now_ms() + 1000,
        error,
    }
}

async fn disable(state: &AppState, ws: &WorkspaceId, endpoint_id: &str, reason: &str) {
    match state.db.disable_webhook_endpoint(ws, endpoint_id, reason).await {
        Ok(true) => {
            state.subscriptions.forget(ws);
            let payload = serde_json::json!({ "endpoint_id": endpoint_id, "reason": reason });
            if let Err(e) = state.db.append_event(ws, "endpoint.disabled", &payload).await {
                tracing::warn!(error = %e, "could not record endpoint.disabled");
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not disable a webhook endpoint"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_deliveries_take_turns_one_limit_interval_apart() {
        let mut turns = HashMap::new();
        // 4 per second: turns 250 ms apart, from the earliest allowed time on.
        let taken: Vec<i64> = (0..4).map(|_| take_turn(&mut turns, "wep_a", 4, 1_000)).collect();
        assert_eq!(taken, [1_000, 1_250, 1_500, 1_750]);
        // Another endpoint has its own turns; an idle endpoint starts again at `earliest`.
        assert_eq!(take_turn(&mut turns, "wep_b", 4, 1_100), 1_100);
        assert_eq!(take_turn(&mut turns, "wep_a", 4, 9_000), 9_000);
    }

    #[test]
    fn scrubbing_drops_nul_bytes_and_redacts_header_values() {
        let secrets = EndpointSecrets::new(
            crate::webhooks::WebhookSecret::generate().expect("secret"),
            std::collections::BTreeMap::from([("authorization".to_string(), "Bearer s3cret".to_string())]),
        );
        assert_eq!(scrub("a\0b you sent Bearer s3cret", &secrets), "ab you sent [REDACTED]");
    }
}
