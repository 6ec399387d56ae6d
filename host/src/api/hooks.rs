//! `/hooks`: REST-hook subscriptions for automation platforms (Zapier, Make, n8n "instant
//! triggers"). A subscription is a webhook endpoint for one event type, made with the
//! platform's own vocabulary (`target_url`, `event`) and removed with `DELETE`, so a
//! platform subscribes when a user turns a trigger on and unsubscribes when they turn it
//! off. Deliveries are the same signed Standard Webhooks deliveries as any endpoint's.

use super::AppState;
use super::extract::{ApiJson, ApiPath, Principal};
use super::webhooks::{IdPath, create_for, require_webhooks_write};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::store::{ENDPOINT_SOURCE_HOOK, EndpointRecord};
use crate::webhooks::catalogue::EventKind;
use crate::webhooks::endpoints::NewEndpoint;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A REST-hook subscription.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HookView {
    /// `wep_…`: the id to unsubscribe with.
    pub id: String,
    /// Where events are POSTed.
    pub target_url: String,
    /// The event type it receives.
    pub event: String,
    /// Unix ms.
    pub created_at: i64,
}

impl From<EndpointRecord> for HookView {
    fn from(e: EndpointRecord) -> Self {
        Self {
            id: e.id,
            target_url: e.url,
            event: e.event_types,
            created_at: e.created_at,
        }
    }
}

/// A new subscription.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// The platform's callback URL (checked against the address policy like any endpoint).
    #[schema(min_length = 1, max_length = 2048)]
    pub target_url: String,
    /// The event type to receive (see `GET /event-types`).
    pub event: EventKind,
}

/// A subscription and the secret its deliveries are signed with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Subscribed {
    /// `wep_…`: the id to unsubscribe with.
    pub id: String,
    /// Where events are POSTed.
    pub target_url: String,
    /// The event type it receives.
    pub event: String,
    /// The `whsec_…` secret deliveries are signed with (Standard Webhooks). Shown once.
    pub secret: String,
}

/// Subscriptions of the workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HookList {
    /// Subscriptions, oldest first.
    pub data: Vec<HookView>,
}

/// Subscribe `target_url` to one event type (`webhooks:write` or `admin`).
#[utoipa::path(post, path = "/api/v1/hooks", tag = "webhooks", operation_id = "subscribe_hook", request_body = Subscribe,
    responses((status = 201, body = Subscribed),
        (status = 422, description = "A URL the address policy refuses (`invalid_url`), or too many endpoints", body = crate::error::Problem)))]
pub async fn subscribe(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<Subscribe>,
) -> ApiResult<(StatusCode, Json<Subscribed>)> {
    let made = create_for(
        &state,
        &principal,
        NewEndpoint {
            url: body.target_url,
            description: format!("REST hook: {}", body.event.as_str()),
            event_types: vec![body.event.as_str().to_string()],
            source: ENDPOINT_SOURCE_HOOK,
            ..NewEndpoint::default()
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Subscribed {
            secret: made.secret.expose().to_string(),
            id: made.record.id,
            target_url: made.record.url,
            event: made.record.event_types,
        }),
    ))
}

/// The workspace's REST-hook subscriptions (`connections:read`).
#[utoipa::path(get, path = "/api/v1/hooks", tag = "webhooks", operation_id = "list_hooks",
    responses((status = 200, body = HookList)))]
pub async fn list(State(state): State<Arc<AppState>>, principal: Principal) -> ApiResult<Json<HookList>> {
    principal.require(Scope::ConnectionsRead)?;
    let hooks = state.db.list_webhook_endpoints(&principal.workspace_id).await?;
    Ok(Json(HookList {
        data: hooks
            .into_iter()
            .filter(|e| e.source == ENDPOINT_SOURCE_HOOK)
            .map(HookView::from)
            .collect(),
    }))
}

/// Unsubscribe (`webhooks:write` or `admin`): the subscription and its secret are deleted.
#[utoipa::path(delete, path = "/api/v1/hooks/{id}", tag = "webhooks", operation_id = "unsubscribe_hook", params(IdPath),
    responses((status = 204), (status = 404, description = "No such subscription in this workspace", body = crate::error::Problem)))]
pub async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(IdPath { id }): ApiPath<IdPath>,
) -> ApiResult<StatusCode> {
    require_webhooks_write(&principal)?;
    let ws = &principal.workspace_id;
    let is_hook = state
        .db
        .webhook_endpoint(ws, &id)
        .await?
        .is_some_and(|e| e.source == ENDPOINT_SOURCE_HOOK);
    if !is_hook || !state.db.delete_webhook_endpoint(ws, &id).await? {
        return Err(ApiError::not_found("subscription"));
    }
    state.subscriptions.forget(ws);
    Ok(StatusCode::NO_CONTENT)
}
