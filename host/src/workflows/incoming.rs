//! Incoming-webhook triggers: `POST /hooks/{trigger_id}` carries a provider's webhook. It is
//! verified on the byte-exact body in the provider's scheme with every active secret of the
//! trigger, refused when stale or when its delivery id was seen before, and otherwise starts
//! one execution whose `trigger` holds the raw body, its parsed JSON or form, and the
//! headers (credentials stripped). A refusal starts nothing and is logged per trigger with its
//! reason only (never the body or a secret).

use super::KnownTrigger;
use super::manage::{MAX_INPUT_BYTES, trigger_secrets};
use super::signatures::{Incoming, Refused, Scheme, verify};
use crate::ids::{ExecutionId, TriggerId};
use crate::state::AppState;
use crate::store::{NewExecution, StoreError, WORKFLOW_QUEUE, now_ms};
use crate::vault::SecretFields;
use axum::http::HeaderMap;
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Request headers never handed to steps: credentials, and every scheme's signature (with
/// the body, a signature is a replayable request; steps have no use for it).
const STRIPPED_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "x-api-key"];

fn stripped(name: &str) -> bool {
    STRIPPED_HEADERS.contains(&name) || Scheme::ALL.iter().any(|s| s.signature_header() == name)
}

/// What a replay is recognised by: the delivery id where the signature covers it;
/// otherwise a digest of what the signature covers (the body, the URL for Twilio, and the
/// timestamp where the scheme signs one). Header bytes are never the key: a signature can be
/// re-encoded (hex case, whitespace, ECDSA's other `s`) and still verify.
fn replay_key(scheme: Scheme, headers: &HeaderMap, body: &[u8], url: &str, delivery_id: Option<&str>) -> String {
    if let (true, Some(id)) = (scheme.signs_delivery_id(), delivery_id) {
        return format!("id:{id}");
    }
    let timestamp = match scheme {
        Scheme::Slack => "x-slack-request-timestamp",
        Scheme::Sendgrid => "x-twilio-email-event-webhook-timestamp",
        _ => "",
    };
    let timestamp = headers
        .get(timestamp)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let url = if scheme == Scheme::Twilio { url } else { "" };
    let digest = Sha256::new()
        .chain_update(scheme.as_str())
        .chain_update([0])
        .chain_update(timestamp)
        .chain_update([0])
        .chain_update(url)
        .chain_update([0])
        .chain_update(body)
        .finalize();
    format!("sig:{}", hex::encode(digest))
}

/// Why an incoming webhook started nothing.
#[derive(Debug, thiserror::Error)]
pub enum IncomingError {
    /// No webhook trigger has this id.
    #[error("no such trigger")]
    NotFound,
    /// The workflow is disabled.
    #[error("the workflow is disabled")]
    Disabled,
    /// Verification failed.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// This delivery id was accepted before.
    #[error("this delivery was received before (id `{0}`); it starts nothing again")]
    Replayed(String),
    /// The body is larger than an execution input may be.
    #[error("the body is over {MAX_INPUT_BYTES} bytes")]
    TooLarge,
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An accepted delivery.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The execution it started.
    pub execution_id: String,
}

/// Verify and accept one incoming webhook. `url` is the public URL the provider called
/// (Twilio signs it).
pub async fn receive(
    state: &Arc<AppState>,
    trigger_id: &str,
    headers: &HeaderMap,
    body: &[u8],
    url: &str,
) -> Result<Accepted, IncomingError> {
    if trigger_id.parse::<TriggerId>().is_err() {
        return Err(IncomingError::NotFound);
    }
    let known = match state.workflows.remembered_trigger(trigger_id) {
        Some(known) => known,
        None => {
            let (trigger, workflow) = state.db.trigger(trigger_id).await?.ok_or(IncomingError::NotFound)?;
            let fields = if trigger.kind == "webhook" {
                trigger_secrets(state, &trigger.workspace_id, &trigger.id).await
            } else {
                SecretFields::default()
            };
            let known = KnownTrigger {
                trigger,
                workflow,
                secrets: fields,
            };
            // Secrets that could not be opened (a transient error) are not remembered.
            if known.trigger.kind == "webhook" && known.secrets.0.is_empty() {
                std::sync::Arc::new(known)
            } else {
                state.workflows.remember_trigger(known)
            }
        }
    };
    let (trigger, workflow) = (&known.trigger, &known.workflow);
    if trigger.kind != "webhook" {
        return Err(IncomingError::NotFound);
    }
    if workflow.enabled == 0 {
        return Err(IncomingError::Disabled);
    }
    let scheme: Scheme = trigger
        .scheme
        .as_deref()
        .and_then(|s| serde_json::from_value(Value::String(s.to_string())).ok())
        .ok_or(StoreError::Corrupt("workflow_triggers"))?;
    let secrets: Vec<&str> = known.secrets.0.values().map(String::as_str).collect();
    let incoming = Incoming { headers, body, url };
    let now_secs = now_ms() / 1000;
    let verified = match verify(scheme, &secrets, &incoming, now_secs) {
        Ok(v) => v,
        Err(refused) => {
            log_failure(state, &trigger.workspace_id, &trigger.id, &refused.to_string()).await;
            return Err(refused.into());
        }
    };
    let input = trigger_input(scheme, headers, body, verified.delivery_id.as_deref());
    let text = input.to_string();
    if text.len() > MAX_INPUT_BYTES * 2 {
        log_failure(state, &trigger.workspace_id, &trigger.id, "body too large").await;
        return Err(IncomingError::TooLarge);
    }
    let execution_id = ExecutionId::generate().to_string();
    let replay = replay_key(scheme, headers, body, url, verified.delivery_id.as_deref());
    let started = state
        .db
        .start_execution_once(
            &trigger.id,
            Some(&replay),
            &NewExecution {
                id: &execution_id,
                workspace_id: &trigger.workspace_id,
                workflow_id: &workflow.id,
                version: workflow.version,
                trigger_kind: "webhook",
                input: &text,
            },
        )
        .await?;
    if !started {
        let id = verified
            .delivery_id
            .unwrap_or_else(|| "(the same signed request)".into());
        log_failure(state, &trigger.workspace_id, &trigger.id, "replayed delivery id").await;
        return Err(IncomingError::Replayed(id.chars().take(100).collect()));
    }
    state.queue.wake(WORKFLOW_QUEUE);
    Ok(Accepted { execution_id })
}

async fn log_failure(state: &AppState, workspace_id: &crate::ids::WorkspaceId, trigger_id: &str, reason: &str) {
    if !state.workflows.failure_log_allows(trigger_id, now_ms()) {
        return;
    }
    if let Err(e) = state.db.record_trigger_failure(workspace_id, trigger_id, reason).await {
        tracing::warn!(error = %e, "could not log a refused incoming webhook");
    }
}

/// What steps see as `trigger`: `body` (text, or base64 when not UTF-8), `json` (when the
/// body is JSON), `form` (when it is a form), `headers` (lower-case names, credentials
/// stripped), `delivery_id` and `scheme`.
fn trigger_input(scheme: Scheme, headers: &HeaderMap, body: &[u8], delivery_id: Option<&str>) -> Value {
    let (text, encoding) = match std::str::from_utf8(body) {
        Ok(t) => (t.to_string(), "utf8"),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), "base64"),
    };
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let json_body = serde_json::from_slice::<Value>(body).ok();
    let form = content_type.starts_with("application/x-www-form-urlencoded").then(|| {
        let mut map = Map::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            map.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        Value::Object(map)
    });
    let mut shown = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        if stripped(name) {
            continue;
        }
        shown.insert(
            name.to_string(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    json!({
        "scheme": scheme.as_str(),
        "delivery_id": delivery_id,
        "headers": shown,
        "body": text,
        "body_encoding": encoding,
        "json": json_body,
        "form": form,
    })
}
