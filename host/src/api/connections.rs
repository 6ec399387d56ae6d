//! `/connections`: an installed connector plus one account's credentials (write-only) and
//! non-secret settings; status, health checks and usage.

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Pagination, Principal, path_id};
use crate::auth::Scope;
use crate::connections::{ConnectionStatus, HealthReport, check_health, manage};
use crate::error::{ApiError, ApiResult};
use crate::ids::ConnectionId;
use crate::jobs::{LatencySummary, summarize};
use crate::store::{ConnectionRecord, InstallationRecord};
use crate::vault::SecretFields;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexum_manifest::Manifest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A connection as the API shows it. Secrets are write-only: only the names of the stored
/// fields appear.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionView {
    /// `conn_…`
    pub id: ConnectionId,
    /// Display name.
    pub name: String,
    /// The installed connector (`plg_…`).
    pub installation_id: crate::ids::InstallationId,
    /// The connector's id (e.g. `slack`).
    pub connector_id: String,
    /// Auth scheme the credentials satisfy.
    pub auth_scheme: Option<String>,
    /// Names of the stored secret fields (never their values).
    pub credential_fields: Vec<String>,
    /// Non-secret variable values.
    pub variables: BTreeMap<String, String>,
    /// `connected`, `disconnected`, `error`, `refresh_exhausted` (reconnect or force a
    /// refresh) or `expired` (reconnect).
    pub status: ConnectionStatus,
    /// Why the last check, call or token refresh failed.
    pub last_error: Option<String>,
    /// When the OAuth2 access token expires (unix ms), if it does.
    pub token_expires_at: Option<i64>,
    /// Consecutive failed OAuth2 refreshes.
    pub refresh_failures: i64,
    /// Unix ms.
    pub last_health_check: Option<i64>,
    /// Unix ms (updated within about a second of a call).
    pub last_used_at: Option<i64>,
    /// Calls, errors and latency percentiles.
    pub usage: UsageView,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Usage of a connection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    /// Action calls.
    pub calls: i64,
    /// Failed calls.
    pub errors: i64,
    /// Latency percentiles (bucket upper bounds).
    pub latency: LatencySummary,
    /// Calls and failures in each of the last 24 UTC hours, oldest first (the last entry
    /// is the current hour).
    pub last_24_hours: Vec<HourlyUsage>,
}

/// Calls and failures of one UTC hour.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HourlyUsage {
    /// Unix ms of the hour's start.
    pub hour: i64,
    /// Action calls.
    pub calls: i64,
    /// Failed calls.
    pub errors: i64,
}

/// The last 24 hours of a connection, zero-filled.
async fn last_24_hours(state: &AppState, record: &ConnectionRecord) -> ApiResult<Vec<HourlyUsage>> {
    const HOUR_MS: i64 = 3_600_000;
    let current = crate::store::now_ms() / HOUR_MS * HOUR_MS;
    let first = current - 23 * HOUR_MS;
    let rows = state
        .db
        .usage_by_hour(&record.workspace_id, record.id.as_str(), first)
        .await?;
    Ok((0..24)
        .map(|i| {
            let hour = first + i * HOUR_MS;
            let (calls, errors) = rows
                .iter()
                .find(|(h, _, _)| *h == hour)
                .map(|(_, c, e)| (*c, *e))
                .unwrap_or((0, 0));
            HourlyUsage { hour, calls, errors }
        })
        .collect())
}

/// A page of connections.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionList {
    /// Connections.
    pub data: Vec<ConnectionView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

async fn view(
    state: &AppState,
    record: ConnectionRecord,
    installation: Option<&InstallationRecord>,
) -> ApiResult<ConnectionView> {
    let installation = match installation {
        Some(i) => i.clone(),
        None => state
            .db
            .installation(&record.workspace_id, &record.installation_id)
            .await?
            .ok_or_else(|| ApiError::not_found("connector installation"))?,
    };
    let manifest = Manifest::parse(&installation.manifest).map_err(|e| ApiError::internal(&e))?;
    let credential_fields = record
        .auth_scheme
        .as_deref()
        .and_then(|s| manifest.auth_scheme(s))
        .map(|s| s.secret_fields().iter().map(|f| f.to_string()).collect())
        .unwrap_or_default();
    let usage = state.db.usage(&record.workspace_id, record.id.as_str()).await?;
    let last_24_hours = last_24_hours(state, &record).await?;
    let usage = match usage {
        Some(u) => UsageView {
            calls: u.calls,
            errors: u.errors,
            latency: summarize(&u.latency_buckets),
            last_24_hours,
        },
        None => UsageView {
            calls: 0,
            errors: 0,
            latency: summarize("[]"),
            last_24_hours,
        },
    };
    Ok(ConnectionView {
        variables: manage::stored_variables(&record)?,
        id: record.id,
        name: record.name,
        installation_id: record.installation_id,
        connector_id: installation.connector_id,
        auth_scheme: record.auth_scheme,
        credential_fields,
        status: record.status,
        last_error: record.last_error,
        token_expires_at: record.token_expires_at,
        refresh_failures: record.refresh_failures,
        last_health_check: record.last_health_check,
        last_used_at: record.last_used_at,
        usage,
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
}

/// `{id}` of a connection.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ConnectionPath {
    /// `conn_…`
    pub id: String,
}

/// Request to create a connection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// Installed connector: its `plg_…` id or its connector id (e.g. `slack`).
    pub connector: String,
    /// Display name: 1–200 characters (counted as UTF-8 bytes), not only whitespace.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Auth scheme id; may be omitted when the connector has exactly one.
    pub auth_scheme: Option<String>,
    /// Secret fields for the scheme (e.g. `{"token": "xoxb-…"}`); write-only.
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
    /// Non-secret variables (e.g. `{"api_base": "https://slack.com"}`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// Create a connection (`connections:write`). Credentials are validated against the auth
/// scheme, sealed, and never returned.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections", operation_id = "create_connection", request_body = CreateConnection,
    responses((status = 201, body = ConnectionView),
        (status = 404, description = "No such installed connector", body = crate::error::Problem),
        (status = 409, description = "Conflicts with an existing connection", body = crate::error::Problem),
        (status = 422, description = "Credentials or variables do not fit the connector's auth scheme and variables, or the body does not match the schema", body = crate::error::Problem),
        (status = 502, description = "The OAuth2 provider refused or failed a client-credentials grant", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateConnection>,
) -> ApiResult<(StatusCode, Json<ConnectionView>)> {
    principal.require(Scope::ConnectionsWrite)?;
    let new = manage::NewConnection {
        connector: body.connector,
        name: body.name,
        auth_scheme: body.auth_scheme,
        credentials: SecretFields(body.credentials),
        variables: body.variables,
    };
    let (record, installation) = manage::create(&state, &principal.workspace_id, &principal.key_id, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, record, Some(&installation)).await?),
    ))
}

/// List connections (`connections:read`).
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections", operation_id = "list_connections", params(Pagination),
    responses((status = 200, body = ConnectionList), (status = 422, description = "`limit` outside 1–100", body = crate::error::Problem)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ConnectionList>> {
    principal.require(Scope::ConnectionsRead)?;
    let p = state
        .db
        .list_connections(&principal.workspace_id, page.after(), page.limit()?)
        .await?;
    let mut data = Vec::with_capacity(p.items.len());
    for record in p.items {
        data.push(view(&state, record, None).await?);
    }
    Ok(Json(ConnectionList {
        data,
        next_cursor: p.next_cursor,
    }))
}

/// One connection with status and usage (`connections:read`).
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections", operation_id = "get_connection", params(ConnectionPath),
    responses((status = 200, body = ConnectionView), (status = 404, description = "No such connection in this workspace", body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(ConnectionPath { id }): ApiPath<ConnectionPath>,
) -> ApiResult<Json<ConnectionView>> {
    principal.require(Scope::ConnectionsRead)?;
    let id: ConnectionId = path_id(&id)?;
    let _ = state.recorder.flush(&state.db).await;
    let record = state
        .db
        .connection(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    Ok(Json(view(&state, record, None).await?))
}

/// Request to change a connection. Omitted fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnection {
    /// New name: 1–200 characters (counted as UTF-8 bytes), not only whitespace.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: Option<String>,
    /// Replace all variables.
    pub variables: Option<BTreeMap<String, String>>,
    /// Replace the secret fields (write-only).
    pub credentials: Option<BTreeMap<String, String>>,
}

/// Change name, variables or credentials (`connections:write`).
#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections", operation_id = "update_connection", params(ConnectionPath),
    request_body = UpdateConnection,
    responses((status = 200, body = ConnectionView),
        (status = 404, description = "No such connection in this workspace", body = crate::error::Problem),
        (status = 409, description = "Changed by another request meanwhile; read it again and retry", body = crate::error::Problem),
        (status = 422, description = "Credentials or variables do not fit the connector (`credentials_required` when a change moves where the stored secret goes), or the body does not match the schema", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(ConnectionPath { id }): ApiPath<ConnectionPath>,
    ApiJson(body): ApiJson<UpdateConnection>,
) -> ApiResult<Json<ConnectionView>> {
    principal.require(Scope::ConnectionsWrite)?;
    let id: ConnectionId = path_id(&id)?;
    let change = manage::ConnectionChange {
        name: body.name,
        variables: body.variables,
        credentials: body.credentials.map(SecretFields),
    };
    let (record, installation) =
        manage::update(&state, &principal.workspace_id, &principal.key_id, &id, change).await?;
    Ok(Json(view(&state, record, Some(&installation)).await?))
}

/// Delete a connection: disconnects it and wipes its secret (`connections:write`).
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections", operation_id = "delete_connection", params(ConnectionPath),
    responses((status = 204, description = "Deleted; its secret is wiped"),
        (status = 404, description = "No such connection in this workspace", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(ConnectionPath { id }): ApiPath<ConnectionPath>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::ConnectionsWrite)?;
    let id: ConnectionId = path_id(&id)?;
    manage::delete(&state, &principal.workspace_id, &principal.key_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run the connector's test-connection and record the result (`connections:write`).
#[utoipa::path(post, path = "/api/v1/connections/{id}/test", tag = "connections", operation_id = "test_connection", params(ConnectionPath),
    responses((status = 200, description = "The check ran; `ok` says whether the credentials work", body = HealthReport),
        (status = 404, description = "No such connection in this workspace", body = crate::error::Problem),
        (status = 409, description = "The connection needs reconnecting, or changed meanwhile", body = crate::error::Problem),
        (status = 429, description = "Rate limited, or the workspace already runs as many connector calls as it may", body = crate::error::Problem),
        (status = 502, description = "The OAuth2 provider failed a token refresh", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now", body = crate::error::Problem)))]
pub async fn test(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(ConnectionPath { id }): ApiPath<ConnectionPath>,
) -> ApiResult<Json<HealthReport>> {
    principal.require(Scope::ConnectionsWrite)?;
    let id: ConnectionId = path_id(&id)?;
    Ok(Json(
        check_health(&state, &principal.workspace_id, &id, &principal.key_id).await?,
    ))
}
