//! `/connections`: an installed connector plus one account's credentials (write-only) and
//! non-secret settings; status, health checks and usage.

use super::AppState;
use super::extract::{ApiJson, ApiQuery, Pagination, Principal};
use super::resolve::resolve;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{LatencySummary, summarize};
use crate::runtime::{CallError, Invocation};
use crate::store::{AuditEntry, ConnectionRecord, ConnectionStatus, InstallationRecord};
use crate::vault::{Credential, SecretFields};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nexum_marketplace::manifest::{AuthKind, Manifest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A connection as the API shows it. Secrets are write-only: only the names of the stored
/// fields appear.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionView {
    /// `conn_…`
    pub id: String,
    /// Display name.
    pub name: String,
    /// The installed connector (`plg_…`).
    pub installation_id: String,
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
    pub status: String,
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
    let usage = state.db.usage(&record.workspace_id, &record.id).await?;
    let usage = match usage {
        Some(u) => UsageView {
            calls: u.calls,
            errors: u.errors,
            latency: summarize(&u.latency_buckets),
        },
        None => UsageView {
            calls: 0,
            errors: 0,
            latency: summarize("[]"),
        },
    };
    Ok(ConnectionView {
        variables: serde_json::from_str(&record.variables).unwrap_or_default(),
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

/// Request to create a connection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// Installed connector: its `plg_…` id or its connector id (e.g. `slack`).
    pub connector: String,
    /// Display name.
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
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections", request_body = CreateConnection,
    responses((status = 201, body = ConnectionView), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateConnection>,
) -> ApiResult<(StatusCode, Json<ConnectionView>)> {
    principal.require(Scope::ConnectionsWrite)?;
    let fields = SecretFields(body.credentials);
    if body.name.trim().is_empty() || body.name.len() > 200 {
        return Err(ApiError::unprocessable("invalid_name", "name must be 1–200 characters"));
    }
    let installation = if body.connector.starts_with("plg_") {
        state.db.installation(&principal.workspace_id, &body.connector).await?
    } else {
        state
            .db
            .installation_by_connector(&principal.workspace_id, &body.connector)
            .await?
    }
    .ok_or_else(|| ApiError::not_found("installed connector"))?;
    let manifest = Manifest::parse(&installation.manifest).map_err(|e| ApiError::internal(&e))?;
    let scheme = pick_scheme(&manifest, body.auth_scheme.as_deref(), &fields)?;
    let fields = match scheme.as_deref().and_then(|id| manifest.auth_scheme(id)) {
        Some(s) if matches!(s.kind, AuthKind::OAuth2(_)) => {
            oauth_fields(&state, &principal.workspace_id, &manifest, s, fields, &body.variables).await?
        }
        _ => fields,
    };
    check_credentials_and_variables(&manifest, scheme.as_deref(), &fields, &body.variables)?;
    let variables =
        serde_json::to_string(&frozen_variables(&manifest, &body.variables)?).map_err(|e| ApiError::internal(&e))?;
    let mut record = crate::store::ConnectionRecord::new(
        &principal.workspace_id,
        &installation.id,
        body.name.trim(),
        scheme.as_deref(),
        &variables,
    );
    if scheme.is_some() {
        record.token_expires_at = crate::oauth::expires_at_of(&fields);
        let sealed = state.vault.seal_fields(&principal.workspace_id, &record.id, &fields)?;
        state.db.insert_connection_with_secret(&record, &sealed).await?;
        state
            .db
            .append_audit(&[AuditEntry::new(
                &principal.workspace_id,
                &principal.key_id,
                "secret.create",
                &record.id,
                format!("scheme={}", scheme.as_deref().unwrap_or_default()),
            )])
            .await?;
    } else {
        record = state
            .db
            .insert_connection(
                &principal.workspace_id,
                &installation.id,
                body.name.trim(),
                None,
                &variables,
            )
            .await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(view(&state, record, Some(&installation)).await?),
    ))
}

/// The stored fields of a new OAuth2 connection made through `POST /connections`:
/// client-credentials providers get a token now (with the connection's own `client_id` and
/// `client_secret`, or the registered app); authorization-code providers accept imported
/// tokens (`access_token`, optional `refresh_token`) and otherwise point to the flow.
async fn oauth_fields(
    state: &AppState,
    workspace_id: &str,
    manifest: &Manifest,
    scheme: &nexum_marketplace::manifest::AuthScheme,
    fields: SecretFields,
    variables: &BTreeMap<String, String>,
) -> ApiResult<SecretFields> {
    if fields.0.contains_key("access_token") {
        return Ok(fields);
    }
    let endpoints = crate::oauth::endpoints_of(scheme)?;
    if !endpoints.uses_client_credentials() {
        return Err(ApiError::unprocessable(
            "oauth_flow_required",
            format!(
                "auth scheme `{}` needs the user's consent: start it with POST /api/v1/connections/oauth/authorize (or import tokens as `access_token` and `refresh_token`)",
                scheme.id
            ),
        ));
    }
    if fields.0.contains_key("client_id") != fields.0.contains_key("client_secret") {
        return Err(ApiError::unprocessable(
            "invalid_credentials",
            "give both `client_id` and `client_secret`, or neither to use the registered OAuth app",
        ));
    }
    let resolved = frozen_variables(manifest, variables)?;
    let token_url = crate::oauth::token_url(manifest, scheme, &resolved)?;
    let (app, _) = crate::oauth::apps::client_app(
        state,
        workspace_id,
        &manifest.id,
        Some(&fields),
        manifest,
        scheme,
        &token_url,
    )
    .await?;
    let issued = state
        .oauth
        .tokens
        .client_credentials(endpoints, &token_url, &app)
        .await
        .map_err(crate::oauth::OAuthError::from)?;
    Ok(crate::oauth::token_fields(&issued, Some(&fields)))
}

/// The connection's variables with the manifest's defaults written in, so a later version
/// of the connector changing a default never silently moves an existing connection.
fn frozen_variables(manifest: &Manifest, given: &BTreeMap<String, String>) -> ApiResult<BTreeMap<String, String>> {
    manifest
        .resolve_variables(given)
        .map_err(|e| ApiError::unprocessable("invalid_variables", e.to_string()))
}

/// Where each auth scheme's secret may go for these variables.
fn credential_hosts(
    manifest: &Manifest,
    variables: &BTreeMap<String, String>,
) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let rules = crate::broker::EgressRules::new("check", manifest, variables, &[])
        .map_err(|e| ApiError::unprocessable("invalid_variables", e.to_string()))?;
    Ok(rules
        .credential_hosts
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().map(|p| p.to_string()).collect()))
        .collect())
}

fn pick_scheme(manifest: &Manifest, requested: Option<&str>, fields: &SecretFields) -> ApiResult<Option<String>> {
    match requested {
        Some(id) => manifest.auth_scheme(id).map(|s| Some(s.id.clone())).ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_auth_scheme",
                format!(
                    "the connector has no auth scheme `{id}` (it has: {})",
                    manifest
                        .auth
                        .iter()
                        .map(|a| a.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }),
        None if manifest.auth.is_empty() => Ok(None),
        None if manifest.auth.len() == 1 => Ok(Some(manifest.auth[0].id.clone())),
        None if fields.0.is_empty() => Ok(None),
        None => {
            // Several schemes: the one whose fields were given (a bot token's `token` is not
            // an OAuth `access_token`).
            let accepted = |s: &&nexum_marketplace::manifest::AuthScheme| {
                let names: &[&str] = match s.kind {
                    AuthKind::OAuth2(_) => crate::vault::OAUTH2_STORED_FIELDS,
                    _ => s.secret_fields(),
                };
                fields.0.keys().all(|k| names.contains(&k.as_str()))
            };
            let candidates: Vec<&str> = manifest.auth.iter().filter(accepted).map(|s| s.id.as_str()).collect();
            match candidates.as_slice() {
                [one] => Ok(Some(one.to_string())),
                [] => Err(ApiError::unprocessable(
                    "invalid_credentials",
                    format!(
                        "no auth scheme of this connector takes the fields {}; name one in `auth_scheme`",
                        fields.0.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                    ),
                )),
                several => Err(ApiError::unprocessable(
                    "auth_scheme_required",
                    format!("name one of the auth schemes {} in `auth_scheme`", several.join(", ")),
                )),
            }
        }
    }
}

fn check_credentials_and_variables(
    manifest: &Manifest,
    scheme: Option<&str>,
    fields: &SecretFields,
    variables: &BTreeMap<String, String>,
) -> ApiResult<()> {
    if let Some(id) = scheme {
        let scheme = manifest
            .auth_scheme(id)
            .ok_or_else(|| ApiError::unprocessable("unknown_auth_scheme", id.to_string()))?;
        Credential::from_fields(scheme, &fields.0, "")
            .map_err(|e| ApiError::unprocessable("invalid_credentials", e.to_string()))?;
    } else if !fields.0.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_credentials",
            "this connector takes no credentials",
        ));
    }
    let resolved = manifest
        .resolve_variables(variables)
        .map_err(|e| ApiError::unprocessable("invalid_variables", e.to_string()))?;

    crate::broker::EgressRules::new("check", manifest, &resolved, &[])
        .map_err(|e| ApiError::unprocessable("invalid_variables", e.to_string()))?;
    Ok(())
}

/// List connections (`connections:read`).
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections", params(Pagination), responses((status = 200, body = ConnectionList)))]
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
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections", responses((status = 200, body = ConnectionView), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectionView>> {
    principal.require(Scope::ConnectionsRead)?;
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
    /// New name.
    pub name: Option<String>,
    /// Replace all variables.
    pub variables: Option<BTreeMap<String, String>>,
    /// Replace the secret fields (write-only).
    pub credentials: Option<BTreeMap<String, String>>,
}

/// Change name, variables or credentials (`connections:write`).
#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections", request_body = UpdateConnection, responses((status = 200, body = ConnectionView)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateConnection>,
) -> ApiResult<Json<ConnectionView>> {
    principal.require(Scope::ConnectionsWrite)?;
    let fields = body.credentials.map(SecretFields);
    let record = state
        .db
        .connection(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    let installation = state
        .db
        .installation(&principal.workspace_id, &record.installation_id)
        .await?
        .ok_or_else(|| ApiError::not_found("connector installation"))?;
    let manifest = Manifest::parse(&installation.manifest).map_err(|e| ApiError::internal(&e))?;
    let name = body.name.unwrap_or_else(|| record.name.clone());
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::unprocessable("invalid_name", "name must be 1–200 characters"));
    }
    let variables = match body.variables {
        Some(v) => v,
        None => serde_json::from_str(&record.variables).unwrap_or_default(),
    };
    match &fields {
        Some(f) => check_credentials_and_variables(&manifest, record.auth_scheme.as_deref(), f, &variables)?,
        None => check_credentials_and_variables(&manifest, None, &SecretFields::default(), &variables)?,
    }
    let variables = frozen_variables(&manifest, &variables)?;
    // A stored secret was entered for the hosts it is bound to now. Moving those hosts (by
    // changing a variable) without re-entering the secret would let whoever can edit the
    // connection send an existing secret somewhere new.
    if fields.is_none() && record.auth_scheme.is_some() {
        let old_vars: BTreeMap<String, String> = serde_json::from_str(&record.variables).unwrap_or_default();
        let old = frozen_variables(&manifest, &old_vars)?;
        if credential_hosts(&manifest, &old)? != credential_hosts(&manifest, &variables)? {
            return Err(ApiError::unprocessable(
                "credentials_required",
                "this change moves where the stored credentials are sent; send `credentials` again with it",
            ));
        }
    }
    let variables_json = serde_json::to_string(&variables).map_err(|e| ApiError::internal(&e))?;
    state
        .db
        .update_connection_settings(&principal.workspace_id, &id, name.trim(), &variables_json)
        .await?;
    if let Some(f) = &fields
        && record.auth_scheme.is_some()
    {
        let sealed = state.vault.seal_fields(&principal.workspace_id, &id, f)?;
        let is_oauth = record
            .auth_scheme
            .as_deref()
            .and_then(|s| manifest.auth_scheme(s))
            .is_some_and(|s| matches!(s.kind, AuthKind::OAuth2(_)));
        if is_oauth {
            // New tokens replace the old under the refresh lock, with their expiry, and give
            // the connection a fresh start (failures reset, `expired` or `exhausted` left).
            let _local = state.oauth.lock(&id).await;
            let lock = state.db.lock_for_refresh(&principal.workspace_id, &id).await?;
            lock.finish(crate::store::TokenUpdate {
                secret: Some(&sealed),
                token_expires_at: crate::oauth::expires_at_of(f),
                refresh_failures: 0,
                status: ConnectionStatus::Connected,
                last_error: None,
                failed_event: None,
            })
            .await?;
        } else {
            state.db.put_secret(&sealed).await?;
        }
        state
            .db
            .append_audit(&[AuditEntry::new(
                &principal.workspace_id,
                &principal.key_id,
                "secret.update",
                &id,
                "",
            )])
            .await?;
    }
    state.connections.evict(&id);
    let record = state
        .db
        .connection(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    Ok(Json(view(&state, record, Some(&installation)).await?))
}

/// Delete a connection: disconnects it and wipes its secret (`connections:write`).
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections", responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::ConnectionsWrite)?;
    if !state.db.delete_connection(&principal.workspace_id, &id).await? {
        return Err(ApiError::not_found("connection"));
    }
    state.connections.evict(&id);
    state
        .db
        .append_audit(&[AuditEntry::new(
            &principal.workspace_id,
            &principal.key_id,
            "secret.delete",
            &id,
            "",
        )])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Result of a connection test.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    /// Whether the credentials work.
    pub ok: bool,
    /// New status.
    pub status: String,
    /// What the connector reported about the account (on success).
    #[schema(value_type = Object)]
    pub account: Option<Value>,
    /// The failure (on error).
    pub error: Option<String>,
}

/// Run the connector's test-connection and record the result (`connections:write`).
#[utoipa::path(post, path = "/api/v1/connections/{id}/test", tag = "connections", responses((status = 200, body = TestResult)))]
pub async fn test(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TestResult>> {
    principal.require(Scope::ConnectionsWrite)?;
    Ok(Json(
        check_health(&state, &principal.workspace_id, &id, &principal.key_id).await?,
    ))
}

/// `current` when it is a status only a reconnect or refresh may leave, else `next`.
fn sticky_or(current: &str, next: ConnectionStatus) -> ConnectionStatus {
    match current {
        "refresh_exhausted" => ConnectionStatus::RefreshExhausted,
        "expired" => ConnectionStatus::Expired,
        _ => next,
    }
}

/// Run test-connection for a connection and store the new status (used by the API and by the
/// periodic health checker).
pub async fn check_health(state: &AppState, workspace_id: &str, id: &str, actor: &str) -> ApiResult<TestResult> {
    let resolved = match resolve(state, workspace_id, id).await {
        Ok(r) => r,
        Err(e) if e.status() == StatusCode::NOT_FOUND => return Err(e),
        Err(e) => {
            let message = e.problem().detail;
            state
                .db
                .set_connection_status(workspace_id, id, ConnectionStatus::Error, Some(&message), true)
                .await?;
            return Ok(TestResult {
                ok: false,
                status: "error".into(),
                account: None,
                error: Some(message),
            });
        }
    };
    let current = resolved.record.status.clone();
    let resolved = match crate::oauth::ensure_fresh(state, resolved).await {
        Ok(r) => r,
        Err(e) => {
            // The token is unusable: never healthy. Refresh already recorded why.
            state
                .db
                .set_connection_status(
                    workspace_id,
                    id,
                    sticky_or(&current, ConnectionStatus::Error),
                    Some(&e.problem().detail),
                    true,
                )
                .await?;
            state.connections.evict(id);
            let status = state
                .db
                .connection(workspace_id, id)
                .await?
                .map(|r| r.status)
                .unwrap_or_else(|| "error".into());
            return Ok(TestResult {
                ok: false,
                status,
                account: None,
                error: Some(e.problem().detail),
            });
        }
    };
    let outcome = state
        .runtime
        .execute(
            &resolved.connector,
            resolved.connection.clone(),
            Invocation::TestConnection,
        )
        .await;
    state.recorder.audit(AuditEntry::new(
        workspace_id,
        actor,
        "secret.use",
        id,
        "test-connection",
    ));
    let result = match outcome.result {
        Ok(account) => TestResult {
            ok: true,
            status: "connected".into(),
            account: Some(account),
            error: None,
        },
        Err(CallError::Connector { code, .. }) if code == "not_supported" => TestResult {
            ok: true,
            status: "connected".into(),
            account: None,
            error: None,
        },
        Err(e) => TestResult {
            ok: false,
            status: "error".into(),
            account: None,
            error: Some(e.to_string()),
        },
    };
    let status = if result.ok {
        sticky_or(&current, ConnectionStatus::Connected)
    } else {
        sticky_or(&current, ConnectionStatus::Error)
    };
    // A dying token is not made healthy by a test that still passes: only a reconnect or a
    // successful refresh leaves `refresh_exhausted` or `expired`.
    let result = TestResult {
        ok: result.ok && !ConnectionStatus::is_sticky(status.as_str()),
        status: status.as_str().into(),
        ..result
    };
    let error = result
        .error
        .clone()
        .or_else(|| (!result.ok).then(|| format!("the connection is {}", status.as_str())));
    state
        .db
        .set_connection_status(workspace_id, id, status, error.as_deref(), true)
        .await?;
    state.connections.evict(id);
    Ok(result)
}
