//! `POST /api/v1/connections/{id}/actions/{action}`: the main path.
//!
//! Input is validated against the action's schema before the connector runs and output after;
//! `Idempotency-Key` replays the first response for the same key and body (Stripe-style);
//! `?debug=true` adds the redacted trace of brokered requests and logs.

use super::AppState;
use super::extract::{ApiBytes, ApiPath, ApiQuery, Principal, json_rejection, path_id};
use crate::auth::Scope;
use crate::connections::run_action;
use crate::error::{ApiError, ApiResult};
use crate::ids::ConnectionId;
use crate::runtime::{CallError, CallTrace};
use crate::store::IdempotencyClaim;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `?debug=true`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExecuteParams {
    /// Include the redacted request trace.
    #[serde(default)]
    pub debug: bool,
}

/// A successful execution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Execution {
    /// `exe_…`
    pub execution_id: crate::ids::ExecutionId,
    /// The action's output (validated against its output schema).
    #[schema(value_type = Object)]
    pub output: Value,
    /// Wall-clock time of the call.
    pub duration_ms: f64,
    /// With `?debug=true`: brokered requests (secrets redacted) and connector logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub trace: Option<CallTrace>,
}

/// Execute an action (`actions:execute`).
#[utoipa::path(post, path = "/api/v1/connections/{id}/actions/{action}", tag = "actions", operation_id = "execute_action",
    params(("id" = String, Path, description = "`conn_…`"), ("action" = String, Path, description = "The action's name in the connector's manifest"),
        ExecuteParams,
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~](?:[\t -~]{0,253}[!-~])?$",
            description = "Replay the first response for this key and body (1–255 visible ASCII characters)")),
    request_body(content = Object, description = "The action input (JSON, validated against the action's input schema); an empty body is `{}`"),
    responses(
        (status = 200, body = Execution,
            headers(("idempotent-replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same Idempotency-Key"))),
        (status = 400, description = "The body is not JSON, or the Idempotency-Key is empty or too long", body = crate::error::Problem),
        (status = 404, description = "No such connection, or the connector has no such action (`unknown_action`)", body = crate::error::Problem),
        (status = 409, description = "A request with this Idempotency-Key is still in progress, the connection needs reconnecting, or it changed meanwhile", body = crate::error::Problem),
        (status = 422, description = "The input does not match the action's schema (`invalid_input`), the Idempotency-Key was used with another request, or the connection cannot run", body = crate::error::Problem),
        (status = 429, description = "Rate limited, or the workspace already runs as many connector calls as it may", body = crate::error::Problem),
        (status = 502, description = "The connector or its upstream failed", body = crate::error::Problem),
        (status = 503, description = "The host is at capacity, or the audit log cannot be written right now", body = crate::error::Problem),
        (status = 504, description = "The connector exceeded its deadline", body = crate::error::Problem)))]
pub async fn execute(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath((id, action)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<ExecuteParams>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Response {
    match execute_inner(&state, &principal, &id, &action, params.debug, &headers, body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn execute_inner(
    state: &Arc<AppState>,
    principal: &Principal,
    id: &str,
    action: &str,
    debug: bool,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    principal
        .require(Scope::ActionsExecute)
        .map_err(IntoResponse::into_response)?;
    let id: ConnectionId = path_id(id).map_err(IntoResponse::into_response)?;
    let input = parse_input(headers, &body).map_err(IntoResponse::into_response)?;

    let idempotency_key = headers.get("idempotency-key").map(|v| v.to_str().map(str::to_string));
    let idempotency_key = match idempotency_key {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= 255 => Some(k),
        Some(_) => {
            return Err(
                ApiError::bad_request("Idempotency-Key must be 1–255 visible ASCII characters").into_response(),
            );
        }
    };
    let mut fence = None;
    if let Some(key) = &idempotency_key {
        let fingerprint = hex::encode(
            Sha256::new()
                .chain_update(id.as_str())
                .chain_update([0])
                .chain_update(action)
                .chain_update([0])
                .chain_update(&body)
                .finalize(),
        );
        match state
            .db
            .claim_idempotency_key(
                &principal.workspace_id,
                key,
                &fingerprint,
                i64::try_from(state.config.idempotency_lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            )
            .await
        {
            Ok(IdempotencyClaim::Mine { fence: mine }) => fence = Some(mine),
            Ok(IdempotencyClaim::Seen(previous)) if previous.fingerprint != fingerprint => {
                return Err(ApiError::unprocessable(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request; use a new key",
                )
                .into_response());
            }
            Ok(IdempotencyClaim::Seen(previous)) => {
                return Err(match (previous.status_code, previous.response) {
                    (Some(status), Some(body)) => replay(status, body),
                    _ => ApiError::conflict("a request with this Idempotency-Key is still in progress")
                        .with_retry_after(1)
                        .into_response(),
                });
            }
            Err(e) => return Err(ApiError::from(e).into_response()),
        }
    }

    let response = run(state, principal, &id, action, debug, input, idempotency_key.as_deref()).await;
    if let (Some(key), Some(fence)) = (&idempotency_key, fence) {
        let status = response.0;
        if status.is_server_error() && status != StatusCode::BAD_GATEWAY && status != StatusCode::GATEWAY_TIMEOUT {
            // A server fault is not an answer worth replaying: free the key for a retry. If
            // the release itself fails the key would stay claimed, so say so instead of
            // answering as if a retry could succeed.
            if let Err(e) = state
                .db
                .release_idempotency_key(&principal.workspace_id, key, fence)
                .await
            {
                tracing::error!(error = %e, "could not release an Idempotency-Key after a failed request");
                return Err(ApiError::internal(&e)
                    .with_extra(serde_json::json!({ "idempotency_key": "still claimed; retry with a new key" }))
                    .into_response());
            }
        } else if let Err(e) = state
            .db
            .complete_idempotency_key(&principal.workspace_id, key, fence, status.as_u16(), &response.1)
            .await
        {
            tracing::warn!(error = %e, "could not store the idempotent response");
        }
    }
    Ok(finish(response))
}

fn parse_input(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
    if !is_json {
        return Err(json_rejection(
            axum::extract::rejection::JsonRejection::MissingJsonContentType(Default::default()),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// (status, JSON body, is_problem)
type Rendered = (StatusCode, String, bool);

async fn run(
    state: &Arc<AppState>,
    principal: &Principal,
    id: &ConnectionId,
    action: &str,
    debug: bool,
    input: Value,
    idempotency_key: Option<&str>,
) -> Rendered {
    let outcome = match run_action(
        state,
        &principal.workspace_id,
        &principal.key_id,
        id,
        action,
        input,
        idempotency_key,
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(e) => return problem(e.into()),
    };
    let duration_ms = outcome.trace.duration_ms;
    let trace = debug.then_some(outcome.trace);
    match outcome.result {
        Ok(output) => {
            let body = Execution {
                execution_id: crate::ids::ExecutionId::generate(),
                output,
                duration_ms,
                trace,
            };
            match serde_json::to_string(&body) {
                Ok(json) => (StatusCode::OK, json, false),
                Err(e) => problem(ApiError::internal(&e)),
            }
        }
        Err(e) => {
            let mut extra = serde_json::json!({ "retryable": e.is_retryable(), "error": e });
            if let Some(trace) = trace {
                match serde_json::to_value(trace) {
                    Ok(trace) => extra["trace"] = trace,
                    Err(err) => return problem(ApiError::internal(&err)),
                }
            }
            problem(call_error(&e).with_extra(extra))
        }
    }
}

fn call_error(e: &CallError) -> ApiError {
    let detail = e.to_string();
    match e {
        CallError::UnknownAction { .. } => ApiError::new(StatusCode::NOT_FOUND, "unknown_action", "Not found", detail),
        CallError::InvalidInput { errors } => {
            ApiError::unprocessable("invalid_input", detail).with_extra(serde_json::json!({ "validation": errors }))
        }
        CallError::Timeout { .. } => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", "Connector timed out", detail)
        }
        CallError::AtCapacity => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "at_capacity",
            "Service unavailable",
            detail,
        )
        .with_retry_after(1),
        other => ApiError::new(
            StatusCode::BAD_GATEWAY,
            other.code().to_string(),
            "Connector call failed",
            detail,
        ),
    }
}

fn problem(e: ApiError) -> Rendered {
    let status = e.status();
    (status, e.problem_json(), true)
}

fn finish((status, body, is_problem): Rendered) -> Response {
    let content_type = if is_problem {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn replay(status: i64, body: String) -> Response {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let is_problem = !status.is_success();
    let mut response = finish((status, body, is_problem));
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
