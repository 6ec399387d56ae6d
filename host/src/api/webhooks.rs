//! `/webhooks/…` and `/event-types`: a workspace's webhook endpoints (the signing secret is
//! shown once, at creation), the delivery log of a message, and the event catalogue. The
//! delivery itself is [`crate::webhooks`]'s.

use super::AppState;
use super::extract::{ApiJson, ApiPath, Principal};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::store::{AttemptRecord, EndpointRecord};
use crate::webhooks::catalogue::{EventKind, EventType, catalogue};
use crate::webhooks::endpoints::{NewEndpoint, WebhookError, create};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most endpoints one workspace may have.
const MAX_ENDPOINTS: usize = 50;

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Invalid { code, message } => ApiError::unprocessable(code, message),
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
    /// Why: `gone` (it answered 410) or `failing` (five days without a success).
    pub disabled_reason: Option<String>,
    /// Unix ms of the first failure since the last success.
    pub failing_since: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
}

impl From<EndpointRecord> for EndpointView {
    fn from(e: EndpointRecord) -> Self {
        Self {
            event_types: e
                .event_types
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
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
}

/// Endpoints of the workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointList {
    /// Endpoints, oldest first.
    pub data: Vec<EndpointView>,
}

/// Create an endpoint (`admin`). The response holds the only copy of its secret.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints", tag = "webhooks", operation_id = "create_webhook_endpoint", request_body = CreateEndpoint,
    responses((status = 201, body = CreatedEndpoint),
        (status = 422, description = "A URL the address policy refuses (`invalid_url`), or too many endpoints", body = crate::error::Problem)))]
pub async fn create_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    principal.require(Scope::Admin)?;
    if body.event_types.len() > 50 {
        return Err(ApiError::unprocessable(
            "too_many_event_types",
            "at most 50 event types",
        ));
    }
    if state.db.list_webhook_endpoints(&principal.workspace_id).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::unprocessable(
            "too_many_endpoints",
            format!("a workspace may have at most {MAX_ENDPOINTS} endpoints"),
        ));
    }
    let made = create(
        &state,
        &principal.workspace_id,
        &principal.key_id,
        NewEndpoint {
            url: body.url,
            description: body.description,
            event_types: body.event_types.iter().map(|k| k.as_str().to_string()).collect(),
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

/// Delete an endpoint and its secret (`admin`); queued deliveries to it are dropped.
#[utoipa::path(delete, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "delete_webhook_endpoint", params(IdPath),
    responses((status = 204), (status = 404, description = "No such endpoint in this workspace", body = crate::error::Problem)))]
pub async fn delete_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::Admin)?;
    if !state.db.delete_webhook_endpoint(&principal.workspace_id, &id).await? {
        return Err(ApiError::not_found("endpoint"));
    }
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

/// Resend a message to an endpoint now (`admin`), with the same `webhook-id` (receivers
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
    principal.require(Scope::Admin)?;
    let ws = &principal.workspace_id;
    state
        .db
        .webhook_message(ws, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    let endpoint = state
        .db
        .webhook_endpoint(ws, &body.endpoint_id)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    if endpoint.disabled_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "endpoint_disabled",
            "Conflict",
            "the endpoint is disabled; create a new one to receive deliveries again",
        ));
    }
    state.db.enqueue_webhook_retry(ws, &id, &endpoint.id).await?;
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
