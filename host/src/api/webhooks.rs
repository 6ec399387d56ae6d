//! `/webhooks/…` and `/event-types`: a workspace's webhook endpoints (the signing secret is
//! shown once, at creation), the delivery log of a message, and the event catalogue. The
//! delivery itself is [`crate::webhooks`]'s.

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Principal};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::store::{AttemptRecord, ENDPOINT_SOURCE_API, EndpointRecord, message_body, now_ms};
use crate::webhooks::catalogue::{EventKind, EventType, catalogue};
use crate::webhooks::endpoints::{
    DEFAULT_ROTATION_GRACE, EndpointUpdate, NewEndpoint, WebhookError, create, rotate_secret, update,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Most endpoints one workspace may have (REST hooks included).
pub(super) const MAX_ENDPOINTS: usize = 50;

/// Most messages one recovery resends.
const MAX_RECOVER: usize = 10_000;

/// Managing endpoints needs `webhooks:write` (or `admin`).
pub(super) fn require_webhooks_write(principal: &Principal) -> Result<(), ApiError> {
    principal.require_or_admin(Scope::WebhooksWrite)
}

/// Create an endpoint (or REST hook) for `principal`: `webhooks:write` or `admin`, room left
/// in the workspace, then [`create`]; the workspace's remembered endpoints are refreshed.
pub(super) async fn create_for(
    state: &AppState,
    principal: &Principal,
    new: NewEndpoint,
) -> Result<crate::webhooks::endpoints::CreatedEndpoint, ApiError> {
    require_webhooks_write(principal)?;
    if state.db.list_webhook_endpoints(&principal.workspace_id).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::unprocessable(
            "too_many_endpoints",
            format!("a workspace may have at most {MAX_ENDPOINTS} endpoints (REST hooks included)"),
        ));
    }
    let made = create(state, &principal.workspace_id, &principal.key_id, new).await?;
    state.subscriptions.forget(&principal.workspace_id);
    Ok(made)
}
impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Invalid { code, message } => ApiError::unprocessable(code, message),
            WebhookError::NotFound => ApiError::not_found("endpoint"),
            WebhookError::Store(s) => s.into(),
            WebhookError::Vault(v) => v.into(),
        }
    }
}

/// A webhook endpoint (its secret is never shown again after creation).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    /// `wep_…`
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text.
    pub description: String,
    /// Event types it receives (empty: every type that is not opt-in).
    pub event_types: Vec<String>,
    /// Whether deliveries are stopped.
    pub disabled: bool,
    /// Why: `gone` (it answered 410), `failing` (five days without a success) or `manual`.
    pub disabled_reason: Option<String>,
    /// Unix ms of the first failure since the last success.
    pub failing_since: Option<i64>,
    /// Most deliveries per second; none: no limit.
    pub rate_limit_per_sec: Option<i64>,
    /// Names of the custom headers sent with every delivery (their values are sealed and
    /// never shown).
    pub header_names: Vec<String>,
    /// `api`, or `hook` for a REST-hook subscription.
    pub source: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last change (edit or secret rotation).
    pub updated_at: i64,
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect()
}

impl From<EndpointRecord> for EndpointView {
    fn from(e: EndpointRecord) -> Self {
        Self {
            rate_limit_per_sec: e.rate_limit_per_sec,
            header_names: split_list(&e.header_names),
            source: e.source,
            updated_at: e.updated_at,
            event_types: split_list(&e.event_types),
            disabled: e.disabled_at.is_some(),
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since,
            created_at: e.created_at,
            id: e.id,
            url: e.url,
            description: e.description,
        }
    }
}

/// A new endpoint and its signing secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    /// The endpoint.
    pub endpoint: EndpointView,
    /// The `whsec_…` secret deliveries are signed with (Standard Webhooks). Shown once.
    pub secret: String,
}

/// Request to create an endpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// An absolute `https://` (or, for ranges the operator allows, `http://`) URL.
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    /// Free text, at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// Event types to receive (see `GET /event-types`); none or empty: every type that is
    /// not opt-in.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub event_types: Vec<EventKind>,
    /// Custom headers sent with every delivery (at most 20; not `content-type`, `host`,
    /// `webhook-*` or other headers the delivery sets). Their values are sealed like secrets
    /// and never shown again.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Most deliveries per second to this endpoint (1–10000); none: no limit. Deliveries
    /// over the limit wait their turn; none is dropped.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit_per_sec: Option<i64>,
}

/// Endpoints of the workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointList {
    /// Endpoints, oldest first.
    pub data: Vec<EndpointView>,
}

/// Create an endpoint (`webhooks:write` or `admin`). The response holds the only copy of
/// its secret.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints", tag = "webhooks", operation_id = "create_webhook_endpoint", request_body = CreateEndpoint,
    responses((status = 201, body = CreatedEndpoint),
        (status = 422, description = "A URL the address policy refuses (`invalid_url`), bad headers (`invalid_headers`), a bad rate limit, or too many endpoints", body = crate::error::Problem)))]
pub async fn create_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    let made = create_for(
        &state,
        &principal,
        NewEndpoint {
            url: body.url,
            description: body.description,
            event_types: body.event_types.iter().map(|k| k.as_str().to_string()).collect(),
            headers: body.headers,
            rate_limit_per_sec: body.rate_limit_per_sec,
            source: ENDPOINT_SOURCE_API,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint {
            secret: made.secret.expose().to_string(),
            endpoint: made.record.into(),
        }),
    ))
}

/// The workspace's endpoints (`connections:read`).
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints", tag = "webhooks", operation_id = "list_webhook_endpoints",
    responses((status = 200, body = EndpointList)))]
pub async fn list_endpoints(State(state): State<Arc<AppState>>, principal: Principal) -> ApiResult<Json<EndpointList>> {
    principal.require(Scope::ConnectionsRead)?;
    let endpoints = state.db.list_webhook_endpoints(&principal.workspace_id).await?;
    Ok(Json(EndpointList {
        data: endpoints.into_iter().map(EndpointView::from).collect(),
    }))
}

/// `{id}` of an endpoint or message path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    /// `wep_…` or `msg_…`.
    pub id: String,
}

/// One endpoint (`connections:read`).
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "get_webhook_endpoint", params(IdPath),
    responses((status = 200, body = EndpointView), (status = 404, description = "No such endpoint in this workspace", body = crate::error::Problem)))]
pub async fn get_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
) -> ApiResult<Json<EndpointView>> {
    principal.require(Scope::ConnectionsRead)?;
    let endpoint = state
        .db
        .webhook_endpoint(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    Ok(Json(endpoint.into()))
}

/// Delete an endpoint and its secret (`webhooks:write` or `admin`); queued deliveries to
/// it are dropped.
#[utoipa::path(delete, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "delete_webhook_endpoint", params(IdPath),
    responses((status = 204), (status = 404, description = "No such endpoint in this workspace", body = crate::error::Problem)))]
pub async fn delete_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
) -> ApiResult<StatusCode> {
    require_webhooks_write(&principal)?;
    if !state.db.delete_webhook_endpoint(&principal.workspace_id, &id).await? {
        return Err(ApiError::not_found("endpoint"));
    }
    state.subscriptions.forget(&principal.workspace_id);
    Ok(StatusCode::NO_CONTENT)
}

/// One delivery attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// `wat_…`
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// The receiver's status, if it answered.
    pub status_code: Option<i64>,
    /// Time to the answer or the failure, ms.
    pub latency_ms: i64,
    /// The start of the answer (at most 1 KiB).
    pub response_excerpt: String,
    /// Why it failed.
    pub error: Option<String>,
    /// When the next attempt runs (unix ms), if one will.
    pub next_attempt_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> Self {
        Self {
            id: a.id,
            endpoint_id: a.endpoint_id,
            attempt: a.attempt,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            response_excerpt: a.response_excerpt,
            error: a.error,
            next_attempt_at: a.next_attempt_at,
            created_at: a.created_at,
        }
    }
}

/// The attempts of a message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptList {
    /// Attempts, oldest first, across the message's endpoints.
    pub data: Vec<AttemptView>,
}

/// Every delivery attempt of a message (`connections:read`): the delivery log.
#[utoipa::path(get, path = "/api/v1/webhooks/messages/{id}/attempts", tag = "webhooks", operation_id = "list_webhook_attempts", params(IdPath),
    responses((status = 200, body = AttemptList), (status = 404, description = "No such message in this workspace", body = crate::error::Problem)))]
pub async fn list_attempts(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
) -> ApiResult<Json<AttemptList>> {
    principal.require(Scope::ConnectionsRead)?;
    state
        .db
        .webhook_message(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    let attempts = state.db.webhook_attempts(&principal.workspace_id, &id).await?;
    Ok(Json(AttemptList {
        data: attempts.into_iter().map(AttemptView::from).collect(),
    }))
}

/// Which endpoint to resend a message to.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryMessage {
    /// `wep_…`: an enabled endpoint of this workspace.
    pub endpoint_id: String,
}

/// Resend a message to an endpoint now (`webhooks:write` or `admin`), with the same `webhook-id` (receivers
/// dedupe); the attempt appears in the delivery log.
#[utoipa::path(post, path = "/api/v1/webhooks/messages/{id}/retry", tag = "webhooks", operation_id = "retry_webhook_message", params(IdPath), request_body = RetryMessage,
    responses((status = 202, description = "Queued"),
        (status = 404, description = "No such message or endpoint in this workspace", body = crate::error::Problem),
        (status = 409, description = "The endpoint is disabled (`endpoint_disabled`)", body = crate::error::Problem)))]
pub async fn retry_message(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
    ApiJson(body): ApiJson<RetryMessage>,
) -> ApiResult<StatusCode> {
    require_webhooks_write(&principal)?;
    let ws = &principal.workspace_id;
    state
        .db
        .webhook_message(ws, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    let endpoint = enabled_endpoint(&state, ws, &body.endpoint_id).await?;
    state.db.enqueue_webhook_retry(ws, &id, &endpoint.id, false).await?;
    state.queue.wake(crate::store::DELIVERY_QUEUE);
    Ok(StatusCode::ACCEPTED)
}

/// The event catalogue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventTypeList {
    /// Every event type, with an example of its `data`.
    pub data: Vec<EventType>,
}

/// The event types endpoints can subscribe to (any key).
#[utoipa::path(get, path = "/api/v1/event-types", tag = "webhooks", operation_id = "list_event_types",
    responses((status = 200, body = EventTypeList)))]
pub async fn event_types(_principal: Principal) -> Json<EventTypeList> {
    Json(EventTypeList { data: catalogue() })
}

/// An endpoint of the workspace that is enabled: 404 when there is none, 409 when disabled.
async fn enabled_endpoint(
    state: &AppState,
    ws: &crate::ids::WorkspaceId,
    id: &str,
) -> Result<EndpointRecord, ApiError> {
    let endpoint = state
        .db
        .webhook_endpoint(ws, id)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    if endpoint.disabled_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "endpoint_disabled",
            "Conflict",
            "the endpoint is disabled; enable it (PATCH with `\"enabled\": true`) to send to it again",
        ));
    }
    Ok(endpoint)
}

/// Deserialize a present field (even `null`) as `Some`, so `null` can mean "remove".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Changes to an endpoint; absent fields are left as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    /// A new URL (checked like at creation).
    #[schema(min_length = 1, max_length = 2048)]
    pub url: Option<String>,
    /// New free text, at most 500 characters.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// New event types (empty: every type that is not opt-in).
    #[schema(max_items = 50)]
    pub event_types: Option<Vec<EventKind>>,
    /// New custom headers, replacing all of them (`{}` removes them).
    pub headers: Option<BTreeMap<String, String>>,
    /// A new rate limit (1–10000 per second); `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    pub rate_limit_per_sec: Option<Option<i64>>,
    /// `true` enables a disabled endpoint (and clears its failure clock); `false` disables it.
    pub enabled: Option<bool>,
}

/// Change an endpoint (`webhooks:write` or `admin`).
#[utoipa::path(patch, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "update_webhook_endpoint", params(IdPath), request_body = UpdateEndpoint,
    responses((status = 200, body = EndpointView),
        (status = 404, description = "No such endpoint in this workspace", body = crate::error::Problem),
        (status = 409, description = "The endpoint's headers or secret changed meanwhile (`changed_meanwhile`); read and retry", body = crate::error::Problem),
        (status = 422, description = "A URL the address policy refuses, bad headers or a bad rate limit", body = crate::error::Problem)))]
pub async fn update_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
    ApiJson(body): ApiJson<UpdateEndpoint>,
) -> ApiResult<Json<EndpointView>> {
    require_webhooks_write(&principal)?;
    let changed = update(
        &state,
        &principal.workspace_id,
        &principal.key_id,
        &id,
        EndpointUpdate {
            url: body.url,
            description: body.description,
            event_types: body
                .event_types
                .map(|types| types.iter().map(|k| k.as_str().to_string()).collect()),
            headers: body.headers,
            rate_limit_per_sec: body.rate_limit_per_sec,
            enabled: body.enabled,
        },
    )
    .await?;
    state.subscriptions.forget(&principal.workspace_id);
    Ok(Json(changed.into()))
}

/// How to rotate a secret.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// Seconds the old secret keeps signing (a second signature in `webhook-signature`),
    /// 0–604800; default 86400 (one day).
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_period_secs: Option<u64>,
}

/// A rotated secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    /// The endpoint.
    pub endpoint: EndpointView,
    /// The new `whsec_…` secret. Shown once.
    pub secret: String,
    /// Unix ms until which deliveries are also signed with the previous secret.
    pub previous_valid_until: i64,
}

/// Rotate an endpoint's signing secret (`webhooks:write` or `admin`). Deliveries carry a
/// signature with the new secret and, during the grace period, one with the old secret too,
/// so receivers switch without losing a delivery.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/secret/rotate", tag = "webhooks", operation_id = "rotate_webhook_secret", params(IdPath), request_body = RotateSecret,
    responses((status = 200, body = RotatedSecret),
        (status = 404, description = "No such endpoint in this workspace", body = crate::error::Problem),
        (status = 409, description = "The endpoint's headers or secret changed meanwhile (`changed_meanwhile`); retry", body = crate::error::Problem),
        (status = 422, description = "A grace period longer than 7 days", body = crate::error::Problem)))]
pub async fn rotate_endpoint_secret(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
    ApiJson(body): ApiJson<RotateSecret>,
) -> ApiResult<Json<RotatedSecret>> {
    require_webhooks_write(&principal)?;
    let grace = body
        .grace_period_secs
        .map_or(DEFAULT_ROTATION_GRACE, Duration::from_secs);
    let (record, secret, previous_valid_until) =
        rotate_secret(&state, &principal.workspace_id, &principal.key_id, &id, grace).await?;
    state.subscriptions.forget(&principal.workspace_id);
    Ok(Json(RotatedSecret {
        previous_valid_until,
        secret: secret.expose().to_string(),
        endpoint: record.into(),
    }))
}

/// The time range of a recovery.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecoverRange {
    /// Unix ms: resend messages first attempted at or after this time.
    #[param(minimum = 0)]
    pub since: i64,
    /// Unix ms: and before this time (default: now).
    #[param(minimum = 0)]
    pub until: Option<i64>,
}

/// What a recovery queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recovered {
    /// Messages queued again (not those still pending).
    pub queued: usize,
    /// Whether more failed messages are in the range (at most 10,000 are queued per call;
    /// call again with `since` after the last one's time).
    pub more: bool,
}

/// Resend every message that failed to reach this endpoint in a time range (`webhooks:write`
/// or `admin`): each message first attempted in `[since, until)` that has no successful
/// attempt there is queued again, with the same `webhook-id` (one whose delivery is still
/// pending is left to it; repeating a recovery queues nothing more).
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/recover", tag = "webhooks", operation_id = "recover_webhook_endpoint", params(IdPath, RecoverRange),
    responses((status = 202, body = Recovered),
        (status = 404, description = "No such endpoint in this workspace", body = crate::error::Problem),
        (status = 409, description = "The endpoint is disabled (`endpoint_disabled`)", body = crate::error::Problem),
        (status = 422, description = "`until` is not after `since` (`invalid_range`)", body = crate::error::Problem)))]
pub async fn recover_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
    ApiQuery(range): ApiQuery<RecoverRange>,
) -> ApiResult<(StatusCode, Json<Recovered>)> {
    require_webhooks_write(&principal)?;
    let ws = &principal.workspace_id;
    let endpoint = enabled_endpoint(&state, ws, &id).await?;
    let until = range.until.unwrap_or_else(|| now_ms() + 1);
    if range.since < 0 || until <= range.since {
        return Err(ApiError::unprocessable(
            "invalid_range",
            "`until` must be after `since` (unix ms)",
        ));
    }
    let failed = state
        .db
        .failed_webhook_messages(ws, &endpoint.id, range.since, until, MAX_RECOVER + 1)
        .await?;
    let more = failed.len() > MAX_RECOVER;
    let mut queued = 0;
    for message_id in failed.iter().take(MAX_RECOVER) {
        if state
            .db
            .enqueue_webhook_retry(ws, message_id, &endpoint.id, true)
            .await?
        {
            queued += 1;
        }
    }
    state.queue.wake(crate::store::DELIVERY_QUEUE);
    Ok((StatusCode::ACCEPTED, Json(Recovered { queued, more })))
}

/// Which example to send.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendTest {
    /// The event type whose example is sent (default `connection.created`).
    pub event_type: Option<EventKind>,
}

/// A queued example.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SentTest {
    /// `msg_…`: the `webhook-id` of the delivery; its attempts are at
    /// `/webhooks/messages/{id}/attempts`.
    pub message_id: String,
}

/// Send an example event to this endpoint only (`webhooks:write` or `admin`), signed and
/// retried like any delivery. Its `data` is the catalogue's example for the type.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/test", tag = "webhooks", operation_id = "test_webhook_endpoint", params(IdPath), request_body = SendTest,
    responses((status = 202, body = SentTest),
        (status = 404, description = "No such endpoint in this workspace", body = crate::error::Problem),
        (status = 409, description = "The endpoint is disabled (`endpoint_disabled`)", body = crate::error::Problem)))]
pub async fn test_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
    ApiJson(body): ApiJson<SendTest>,
) -> ApiResult<(StatusCode, Json<SentTest>)> {
    require_webhooks_write(&principal)?;
    let ws = &principal.workspace_id;
    let endpoint = enabled_endpoint(&state, ws, &id).await?;
    let kind = body.event_type.unwrap_or(EventKind::ConnectionCreated);
    let body = message_body(kind.as_str(), now_ms(), kind.example());
    let message_id = state
        .db
        .insert_direct_message(ws, &endpoint.id, kind.as_str(), &body)
        .await?;
    state.queue.wake(crate::store::DELIVERY_QUEUE);
    Ok((StatusCode::ACCEPTED, Json(SentTest { message_id })))
}
