//! `POST /hooks/{trigger_id}`: a provider's webhook that starts a workflow. No API key: the
//! provider's signature over the byte-exact body authenticates it. It answers as soon as the
//! execution is durably queued.

use super::AppState;
use crate::error::ApiError;
use crate::workflows::incoming::{IncomingError, receive};
use crate::workflows::signatures::Refused;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use serde::Serialize;
use std::sync::Arc;

/// An accepted incoming webhook.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HookAccepted {
    /// The execution it started (`exe_…`).
    pub execution_id: String,
}

impl From<IncomingError> for ApiError {
    fn from(e: IncomingError) -> Self {
        let detail = e.to_string();
        match e {
            IncomingError::NotFound => ApiError::not_found("trigger"),
            IncomingError::Disabled => ApiError::new(StatusCode::CONFLICT, "workflow_disabled", "Conflict", detail),
            IncomingError::Refused(Refused::MissingHeader(_) | Refused::Malformed(_)) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_signature_header",
                "Bad request",
                detail,
            ),
            IncomingError::Refused(Refused::Stale(_)) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "stale_timestamp", "Unauthorized", detail)
            }
            IncomingError::Refused(Refused::BadSignature) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", "Unauthorized", detail)
            }
            IncomingError::Replayed(_) => ApiError::new(StatusCode::CONFLICT, "duplicate_delivery", "Conflict", detail),
            IncomingError::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "Payload too large",
                detail,
            ),
            IncomingError::Store(e) => e.into(),
        }
    }
}

/// Receive a provider's webhook for a workflow trigger (no API key: the signature
/// authenticates it). Verified in the trigger's scheme (Standard Webhooks, Stripe, GitHub,
/// Slack, Shopify, Twilio, SendGrid) on the raw body; a replayed delivery id starts nothing.
#[utoipa::path(post, path = "/hooks/{trigger_id}", tag = "workflows", operation_id = "receive_hook", security(()),
    params(("trigger_id" = String, Path, description = "`trg_…`: the workflow's trigger id")),
    request_body(content = String, description = "The provider's payload, byte-exact (any content type)", content_type = "application/octet-stream"),
    responses((status = 202, body = HookAccepted),
        (status = 400, description = "A header the scheme needs is missing or malformed (`invalid_signature_header`)", body = crate::error::Problem),
        (status = 401, description = "No signature matches (`invalid_signature`), or the timestamp is outside the tolerance (`stale_timestamp`)", body = crate::error::Problem),
        (status = 404, description = "No webhook trigger has this id", body = crate::error::Problem),
        (status = 409, description = "The delivery id was received before (`duplicate_delivery`), or the workflow is disabled", body = crate::error::Problem),
        (status = 413, description = "The body is too large", body = crate::error::Problem),
        (status = 429, description = "Too many requests from this address", body = crate::error::Problem)))]
pub async fn receive_hook(
    State(state): State<Arc<AppState>>,
    Path(trigger_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<HookAccepted>), ApiError> {
    let url = format!(
        "{}{}",
        super::workflows::public_base(&state, &headers),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path())
    );
    let accepted = receive(&state, &trigger_id, &headers, &body, &url).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(HookAccepted {
            execution_id: accepted.execution_id,
        }),
    ))
}
