//! Delivering one message to one endpoint: a job on the durable queue. Each attempt is
//! signed afresh (Standard Webhooks; the `webhook-id` is the message id, stable across
//! retries), POSTed through the host's policed outbound client (the address policy is
//! checked again at every delivery, redirects are never followed, 15 s timeout), logged, and
//! then finished, retried on the schedule (honouring `Retry-After` on 429/503), or given up.
//! `410 Gone` disables the endpoint; so does failing continuously for the failure window.

use super::schedule::{RetrySchedule, random_jitter};
use super::signing::{WebhookHeaders, WebhookSecret};
use crate::ids::WorkspaceId;
use crate::jobs::queue::{HandlerFuture, Outcome, QueueHandler};
use crate::state::AppState;
use crate::store::{AttemptRecord, ClaimedJob, DELIVERY_QUEUE, DeliveryJob, new_id, now_ms};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a receiver may take to answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Most bytes of a receiver's answer kept in the delivery log.
const EXCERPT_BYTES: usize = 1024;

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How long an endpoint may fail without a success before it is disabled.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(5 * 86_400);

/// Runs `webhook.deliver` jobs.
pub struct DeliveryHandler {
    state: Arc<AppState>,
    schedule: RetrySchedule,
    failure_window: Duration,
}

impl DeliveryHandler {
    /// A handler for `state`, retrying on `schedule` and disabling endpoints that fail for
    /// `failure_window`.
    pub fn new(state: Arc<AppState>, schedule: RetrySchedule, failure_window: Duration) -> Self {
        Self {
            state,
            schedule,
            failure_window,
        }
    }
}

impl QueueHandler for DeliveryHandler {
    fn queue(&self) -> &'static str {
        DELIVERY_QUEUE
    }

    fn lease(&self) -> Duration {
        // Longer than one attempt can take, so a slow receiver is never sent a second,
        // concurrent delivery.
        DELIVERY_TIMEOUT * 2 + Duration::from_secs(15)
    }

    fn handle(&self, job: ClaimedJob) -> HandlerFuture {
        let (state, schedule, window) = (self.state.clone(), self.schedule.clone(), self.failure_window);
        Box::pin(async move { deliver(&state, &schedule, window, job).await })
    }
}

/// How one attempt went.
struct Answer {
    status: Option<u16>,
    retry_after: Option<Duration>,
    excerpt: String,
    error: Option<String>,
}

async fn deliver(state: &AppState, schedule: &RetrySchedule, window: Duration, job: ClaimedJob) -> Outcome {
    let Ok(delivery) = serde_json::from_str::<DeliveryJob>(&job.payload) else {
        tracing::error!(job = %job.id, "a webhook delivery job is unreadable; dropped");
        return Outcome::GiveUp;
    };
    let ws = &delivery.workspace_id;
    let (message, endpoint) = match (
        state.db.webhook_message(ws, &delivery.message_id).await,
        state.db.webhook_endpoint(ws, &delivery.endpoint_id).await,
    ) {
        (Ok(Some(m)), Ok(Some(e))) => (m, e),
        (Ok(_), Ok(_)) => return Outcome::GiveUp, // deleted meanwhile
        (Err(e), _) | (_, Err(e)) => {
            return Outcome::Retry {
                at_ms: now_ms() + 1000,
                error: format!("database: {e}"),
            };
        }
    };
    if endpoint.disabled_at.is_some() {
        return Outcome::GiveUp;
    }
    let secret = match state.db.secret_of(ws, &endpoint.id).await {
        Ok(Some(sealed)) => state
            .vault
            .open_fields(&sealed)
            .ok()
            .and_then(|f| f.0.get("secret").and_then(|s| WebhookSecret::parse(s).ok())),
        _ => None,
    };
    let Some(secret) = secret else {
        return Outcome::Retry {
            at_ms: now_ms() + 5000,
            error: "the endpoint's signing secret could not be read".into(),
        };
    };
    let attempt = u32::try_from(job.attempts).unwrap_or(u32::MAX);
    let started = Instant::now();
    let answer = post(state, &endpoint.url, &secret, &message.id, message.payload.as_bytes()).await;
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let succeeded = answer.status.is_some_and(|s| (200..300).contains(&s));
    let gone = answer.status == Some(410);
    let now = now_ms();
    let next_at = if succeeded || gone {
        None
    } else {
        schedule
            .delay_before(attempt.saturating_add(1), random_jitter())
            .map(|d| {
                let d = answer.retry_after.map_or(d, |ra| ra.min(MAX_RETRY_AFTER).max(d));
                now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            })
    };
    let logged = state
        .db
        .insert_webhook_attempt(&AttemptRecord {
            id: new_id("wat"),
            workspace_id: ws.clone(),
            message_id: message.id.clone(),
            endpoint_id: endpoint.id.clone(),
            attempt: i64::from(attempt),
            status_code: answer.status.map(i64::from),
            latency_ms,
            response_excerpt: answer.excerpt,
            error: answer.error.clone(),
            next_attempt_at: next_at,
            created_at: now,
        })
        .await;
    if let Err(e) = logged {
        tracing::warn!(error = %e, "a webhook attempt could not be logged");
    }
    let failing_since = state
        .db
        .note_webhook_result(&endpoint.id, succeeded, now)
        .await
        .ok()
        .flatten();
    if succeeded {
        return Outcome::Done;
    }
    if gone {
        disable(state, ws, &endpoint.id, "gone").await;
        return Outcome::GiveUp;
    }
    if failing_since.is_some_and(|since| now - since >= i64::try_from(window.as_millis()).unwrap_or(i64::MAX)) {
        disable(state, ws, &endpoint.id, "failing").await;
        return Outcome::GiveUp;
    }
    match next_at {
        Some(at_ms) => Outcome::Retry {
            at_ms,
            error: answer
                .error
                .unwrap_or_else(|| format!("status {}", answer.status.unwrap_or(0))),
        },
        None => {
            let payload =
                serde_json::json!({ "message_id": message.id, "endpoint_id": endpoint.id, "attempts": attempt });
            if let Err(e) = state.db.append_event(ws, "message.attempt.exhausted", &payload).await {
                tracing::warn!(error = %e, "could not record message.attempt.exhausted");
            }
            Outcome::GiveUp
        }
    }
}

async fn disable(state: &AppState, ws: &WorkspaceId, endpoint_id: &str, reason: &str) {
    match state.db.disable_webhook_endpoint(endpoint_id, reason).await {
        Ok(true) => {
            let payload = serde_json::json!({ "endpoint_id": endpoint_id, "reason": reason });
            if let Err(e) = state.db.append_event(ws, "endpoint.disabled", &payload).await {
                tracing::warn!(error = %e, "could not record endpoint.disabled");
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not disable a webhook endpoint"),
    }
}

/// POST one signed attempt. The URL is checked against the address policy again (DNS may
/// have changed since the endpoint was created; the policed resolver checks the resolved
/// addresses too), and redirects are not followed.
async fn post(state: &AppState, url: &str, secret: &WebhookSecret, msg_id: &str, body: &[u8]) -> Answer {
    let failed = |error: String| Answer {
        status: None,
        retry_after: None,
        excerpt: String::new(),
        error: Some(error),
    };
    let url = match state.outbound.check_url(url) {
        Ok(u) => u,
        Err(e) => return failed(e.to_string()),
    };
    let timestamp = now_ms() / 1000;
    let headers = WebhookHeaders::signed(secret, None, msg_id, timestamp, body);
    let mut request = state
        .outbound
        .client()
        .post(url)
        .timeout(DELIVERY_TIMEOUT)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers.pairs() {
        request = request.header(name, value);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return failed(crate::broker::classify(e).to_string()),
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
        excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
        error: (!(200..300).contains(&status)).then(|| format!("the endpoint answered {status}")),
    }
}
