//! OAuth2 over the API: registering provider apps, starting an authorization flow, the
//! provider's callback, polling a flow, forcing a refresh, and reading the event outbox.

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Pagination, Principal, path_id};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::ids::ConnectionId;
use crate::oauth::flow::{self, CallbackOutcome, CallbackParams, FlowRequest};
use crate::oauth::{RefreshOutcome, RefreshReason};
use crate::store::{AppBinding, AuditEntry, OAuthAppRecord, OPERATOR_OWNER};
use crate::vault::SecretFields;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Request to start connecting an account with OAuth2: name the installed `connector` (a
/// new connection), or the `connection_id` to reconnect.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// Installed connector (`plg_…` or connector id). Not needed when reconnecting.
    pub connector: Option<String>,
    /// Reconnect this existing connection (new tokens, same id) instead of creating one.
    pub connection_id: Option<String>,
    /// Name of the new connection (required for one): 1–200 characters (counted as UTF-8
    /// bytes), not only whitespace.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: Option<String>,
    /// OAuth2 auth scheme; defaults to the connector's only one.
    pub auth_scheme: Option<String>,
    /// Non-secret variables of the new connection.
    pub variables: Option<BTreeMap<String, String>>,
    /// Scopes to request instead of the connector's defaults.
    pub scopes: Option<Vec<String>>,
    /// Where the user's browser goes afterwards (with `flow_id`, `status`, and
    /// `connection_id` or `error`); defaults to the server's `oauth_return_url`, else a
    /// plain result page.
    pub return_url: Option<String>,
}

/// A started flow: send the user to `authorization_url`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthorizeResponse {
    /// `oaf_…`: poll `GET /api/v1/connections/oauth/flows/{flow_id}`.
    pub flow_id: String,
    /// The provider's consent page, with state and PKCE challenge.
    pub authorization_url: String,
    /// The redirect URI the provider app must allow.
    pub redirect_uri: String,
    /// Unix ms after which the flow can no longer complete (10 minutes).
    pub expires_at: i64,
}

/// Start the authorization-code flow (`connections:write`).
#[utoipa::path(post, path = "/api/v1/connections/oauth/authorize", tag = "oauth", operation_id = "start_oauth_flow", request_body = AuthorizeRequest,
    responses((status = 201, body = AuthorizeResponse),
        (status = 404, description = "No such installed connector or connection", body = crate::error::Problem),
        (status = 422, description = "Not an OAuth2 connector, no OAuth app registered, invalid name, variables, scopes or return URL, or the body does not match the schema", body = crate::error::Problem),
        (status = 503, description = "The database cannot record the flow right now", body = crate::error::Problem)))]
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<AuthorizeRequest>,
) -> ApiResult<(StatusCode, Json<AuthorizeResponse>)> {
    principal.require(Scope::ConnectionsWrite)?;
    let started = flow::start(
        &state,
        FlowRequest {
            workspace_id: principal.workspace_id.clone(),
            actor: principal.key_id.clone(),
            connector: body.connector,
            connection_id: body.connection_id.as_deref().map(path_id::<ConnectionId>).transpose()?,
            name: body.name,
            auth_scheme: body.auth_scheme,
            variables: body.variables,
            scopes: body.scopes,
            return_url: body.return_url,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AuthorizeResponse {
            flow_id: started.flow_id,
            authorization_url: started.authorization_url,
            redirect_uri: started.redirect_uri,
            expires_at: started.expires_at,
        }),
    ))
}

/// A flow's progress.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlowView {
    /// `oaf_…`
    pub id: String,
    /// `pending`, `exchanging`, `connected` or `failed`.
    pub status: String,
    /// The connection created or reconnected.
    pub connection_id: Option<ConnectionId>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// Unix ms.
    pub completed_at: Option<i64>,
}

/// Poll a flow (`connections:read`). Flows of other workspaces are 404.
#[utoipa::path(get, path = "/api/v1/connections/oauth/flows/{id}", tag = "oauth", operation_id = "get_oauth_flow",
    params(("id" = String, Path, description = "`oaf_…`")),
    responses((status = 200, body = FlowView), (status = 404, description = "No such flow in this workspace", body = crate::error::Problem)))]
pub async fn get_flow(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<FlowView>> {
    principal.require(Scope::ConnectionsRead)?;
    let flow = state
        .db
        .oauth_flow(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("OAuth flow"))?;
    Ok(Json(FlowView {
        id: flow.id,
        status: flow.status,
        connection_id: flow.connection_id,
        error: flow.error,
        created_at: flow.created_at,
        expires_at: flow.expires_at,
        completed_at: flow.completed_at,
    }))
}

/// What the provider appends to the redirect URI (RFC 6749 §4.1.2). Other parameters are
/// ignored.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The single-use state the flow was started with (it names the flow).
    pub state: Option<String>,
    /// The authorization code (on consent).
    pub code: Option<String>,
    /// The provider's error code (on refusal), e.g. `access_denied`.
    pub error: Option<String>,
    /// The provider's description of the error.
    pub error_description: Option<String>,
}

/// The provider redirects the user's browser here (no API key: the single-use state is the
/// credential). On success the connection exists and the browser goes to the flow's return
/// URL, or sees a plain page; on failure nothing is created and the reason is shown (or
/// passed to the return URL as `error` and `error_description`).
#[utoipa::path(get, path = "/api/v1/oauth/callback", tag = "oauth", operation_id = "oauth_callback", params(CallbackQuery),
    security(()),
    responses(
        (status = 200, description = "Connected (plain page; when no return URL is set)", content_type = "text/html; charset=utf-8", body = String),
        (status = 303, description = "To the return URL, with `status`, `flow_id`, and `connection_id` or `error` and `error_description`",
            headers(("location" = String, description = "The return URL with the outcome"))),
        (status = 400, description = "No `state`, an unknown, used or expired one, the provider's refusal, or no `code`", body = crate::error::Problem),
        (status = 403, description = "The user denied access (`access_denied`)", body = crate::error::Problem),
        (status = 409, description = "The connection changed meanwhile", body = crate::error::Problem),
        (status = 502, description = "The provider's token endpoint failed", body = crate::error::Problem),
        (status = 503, description = "The database cannot record the outcome right now", body = crate::error::Problem)))]
pub async fn callback(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Response {
    let params = CallbackParams {
        state: query.state,
        code: query.code,
        error: query.error,
        error_description: query.error_description,
        cookies: super::oauth_begin::cookies(&headers),
    };
    let default_return = state.oauth.return_url.clone();
    // Detached: once the provider has issued tokens they are saved even if the browser
    // goes away mid-exchange (the flow never stays half-done).
    let worker = state.clone();
    let completed = tokio::spawn(async move { flow::complete(&worker, params).await })
        .await
        .unwrap_or_else(|_| {
            Err(crate::oauth::OAuthError::Invalid {
                code: "callback_failed",
                message: "the callback stopped unexpectedly; start the connection again".into(),
            })
        });
    match completed {
        Ok(CallbackOutcome::Connected { flow, connection_id }) => {
            match flow.return_url.or(default_return) {
                Some(url) => redirect(
                    &url,
                    &[
                        ("status", "connected"),
                        ("flow_id", &flow.id),
                        ("connection_id", connection_id.as_str()),
                    ],
                ),
                None => (
                    StatusCode::OK,
                    Html(format!(
                        "<!doctype html><meta charset=utf-8><title>Connected</title><p>Connected (<code>{connection_id}</code>). You can close this window.</p>"
                    )),
                )
                    .into_response(),
            }
        }
        Ok(CallbackOutcome::Failed {
            code,
            message,
            flow,
            upstream,
        }) => {
            let flow_id = flow.as_ref().map(|f| f.id.clone()).unwrap_or_default();
            match flow.and_then(|f| f.return_url).or(default_return) {
                Some(url) => redirect(
                    &url,
                    &[
                        ("status", "failed"),
                        ("flow_id", &flow_id),
                        ("error", code),
                        ("error_description", &message),
                    ],
                ),
                None => {
                    let status = if upstream {
                        StatusCode::BAD_GATEWAY
                    } else if code == "access_denied" {
                        StatusCode::FORBIDDEN
                    } else {
                        StatusCode::BAD_REQUEST
                    };
                    ApiError::new(status, code, "Connection not made", message).into_response()
                }
            }
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn redirect(base: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(base) else {
        return ApiError::bad_request("the return URL is invalid").into_response();
    };
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
    }
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response()
}

/// Result of a forced refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefreshResult {
    /// `refreshed`.
    pub outcome: String,
    /// The connection's status now.
    pub status: crate::connections::ConnectionStatus,
    /// When the new access token expires (unix ms).
    pub token_expires_at: Option<i64>,
}

/// Refresh a connection's OAuth2 token now, even after `refresh_exhausted`
/// (`connections:write`). A failure answers with the provider's (scrubbed) reason.
#[utoipa::path(post, path = "/api/v1/connections/{id}/refresh", tag = "oauth", operation_id = "refresh_connection",
    params(super::connections::ConnectionPath),
    responses((status = 200, body = RefreshResult),
        (status = 404, description = "No such connection in this workspace", body = crate::error::Problem),
        (status = 409, description = "Reconnect needed (`refresh_exhausted`, `token_expired`), or changed meanwhile", body = crate::error::Problem),
        (status = 422, description = "The connection has no OAuth2 token to refresh, or no OAuth app is registered for it", body = crate::error::Problem),
        (status = 502, description = "The provider refused or failed the refresh", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn force_refresh(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RefreshResult>> {
    principal.require(Scope::ConnectionsWrite)?;
    let id: ConnectionId = path_id(&id)?;
    let outcome = crate::oauth::refresh(&state, &principal.workspace_id, &id, RefreshReason::Forced, None).await?;
    state.connections.evict(&id);
    let record = state
        .db
        .connection(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    state
        .db
        .append_audit(&[AuditEntry::new(
            &principal.workspace_id,
            &principal.key_id,
            "secret.refresh",
            id.as_str(),
            "forced",
        )])
        .await?;
    Ok(Json(RefreshResult {
        outcome: match outcome {
            RefreshOutcome::Refreshed => "refreshed",
            RefreshOutcome::AlreadyFresh => "already_fresh",
        }
        .into(),
        status: record.status,
        token_expires_at: record.token_expires_at,
    }))
}

/// A registered OAuth app (the secret is write-only).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuthAppView {
    /// `oap_…`
    pub id: String,
    /// Connector it is for.
    pub connector_id: String,
    /// `workspace` or `operator`.
    pub owner: String,
    /// Public client id.
    pub client_id: String,
    /// Operator apps: the only token endpoint origin the client secret is sent to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_origin: Option<String>,
    /// Operator apps: the publisher key id a connector must be signed by to use the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The redirect URI to register with the provider.
    pub redirect_uri: String,
    /// Unix ms.
    pub updated_at: i64,
}

/// A page of apps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuthAppList {
    /// Apps this workspace can use: its own and the operator's.
    pub data: Vec<OAuthAppView>,
}

/// Register an app's credentials (both endpoints read this; the document shows each its own
/// shape: [`WorkspaceOAuthApp`], [`OperatorOAuthApp`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutOAuthApp {
    /// Client id from the provider.
    pub client_id: String,
    /// Client secret from the provider (write-only; sealed in the vault).
    pub client_secret: String,
    /// Operator apps only, required there: the origin of the provider's token endpoint
    /// (`https://slack.com`). The secret is never sent anywhere else.
    #[serde(default)]
    pub token_origin: Option<String>,
    /// Operator apps only, required there: the trusted publisher key id (minisign) whose
    /// signed connector may use the app. A same-named connector from anyone else may not.
    #[serde(default)]
    pub signer: Option<String>,
}

/// A workspace app's credentials.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the document's shape of `PutOAuthApp` for `PUT /oauth-apps/{connector_id}`
pub struct WorkspaceOAuthApp {
    /// Client id from the provider: 1–500 characters (surrounding whitespace is trimmed), no
    /// control characters.
    #[schema(
        pattern = r"^[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f]{0,498}[^\x00-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    client_id: String,
    /// Client secret from the provider (write-only; sealed in the vault): 8–2000 characters,
    /// no control characters.
    #[schema(min_length = 8, max_length = 2000, pattern = r"^[^\x00-\x1f]*$")]
    client_secret: String,
    /// Operator apps only: must be absent (or `null`) here.
    #[schema(schema_with = null_only)]
    token_origin: Option<String>,
    /// Operator apps only: must be absent (or `null`) here.
    #[schema(schema_with = null_only)]
    signer: Option<String>,
}

/// An operator app's credentials and what they are bound to.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the document's shape of `PutOAuthApp` for `PUT /operator/oauth-apps/{connector_id}`
pub struct OperatorOAuthApp {
    /// Client id from the provider: 1–500 characters (surrounding whitespace is trimmed), no
    /// control characters.
    #[schema(
        pattern = r"^[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f]{0,498}[^\x00-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    client_id: String,
    /// Client secret from the provider (write-only; sealed in the vault): 8–2000 characters,
    /// no control characters.
    #[schema(min_length = 8, max_length = 2000, pattern = r"^[^\x00-\x1f]*$")]
    client_secret: String,
    /// The origin of the provider's token endpoint (`https://slack.com`): an http(s) origin
    /// with no path, query or credentials. The secret is never sent anywhere else.
    #[schema(format = "uri")]
    token_origin: String,
    /// The publisher key id (minisign) this host trusts whose signed connector may use the
    /// app. A same-named connector from anyone else may not.
    signer: String,
}

/// A property that may only be absent or `null`.
fn null_only() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Null)
        .build()
}

/// `{connector_id}` of an OAuth app.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ConnectorIdPath {
    /// The connector's id (e.g. `slack`): 1–100 of `A-Z`, `a-z`, `0-9`, `-`, `_`.
    #[param(pattern = r"^[A-Za-z0-9_-]{1,100}$")]
    pub connector_id: String,
}

fn app_view(state: &AppState, app: OAuthAppRecord) -> OAuthAppView {
    OAuthAppView {
        owner: if app.owner == OPERATOR_OWNER {
            "operator".into()
        } else {
            "workspace".into()
        },
        id: app.id,
        connector_id: app.connector_id,
        client_id: app.client_id,
        token_origin: app.token_origin,
        signer: app.signer,
        redirect_uri: state.oauth.redirect_uri(),
        updated_at: app.updated_at,
    }
}

/// Apps this workspace can use (`connections:read`).
#[utoipa::path(get, path = "/api/v1/oauth-apps", tag = "oauth", operation_id = "list_oauth_apps", responses((status = 200, body = OAuthAppList)))]
pub async fn list_apps(State(state): State<Arc<AppState>>, principal: Principal) -> ApiResult<Json<OAuthAppList>> {
    principal.require(Scope::ConnectionsRead)?;
    let apps = state.db.oauth_apps_for(&principal.workspace_id).await?;
    Ok(Json(OAuthAppList {
        data: apps.into_iter().map(|a| app_view(&state, a)).collect(),
    }))
}

/// Register or replace the workspace's app for a connector (`admin`).
#[utoipa::path(put, path = "/api/v1/oauth-apps/{connector_id}", tag = "oauth", operation_id = "put_oauth_app",
    params(ConnectorIdPath), request_body = WorkspaceOAuthApp,
    responses((status = 200, body = OAuthAppView),
        (status = 422, description = "Invalid client id or secret, `token_origin` or `signer` given (`binding_not_allowed`), or the body does not match the schema", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn put_app(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(ConnectorIdPath { connector_id }): ApiPath<ConnectorIdPath>,
    ApiJson(body): ApiJson<PutOAuthApp>,
) -> ApiResult<Json<OAuthAppView>> {
    principal.require(Scope::Admin)?;
    if body.token_origin.is_some() || body.signer.is_some() {
        return Err(ApiError::unprocessable(
            "binding_not_allowed",
            "`token_origin` and `signer` bind operator apps; a workspace app is used only by this workspace's own connectors",
        ));
    }
    let owner = principal.workspace_id.to_string();
    put_app_for(&state, &principal, &owner, &connector_id, body, None).await
}

/// Register or replace the operator's app for a connector, shared by every workspace
/// (operator keys: `workspaces:create`).
#[utoipa::path(put, path = "/api/v1/operator/oauth-apps/{connector_id}", tag = "oauth", operation_id = "put_operator_oauth_app",
    params(ConnectorIdPath), request_body = OperatorOAuthApp,
    responses((status = 200, body = OAuthAppView),
        (status = 422, description = "Missing or invalid binding (`binding_required`, `invalid_token_origin`, `untrusted_signer`: the signer must be a publisher key this host trusts) or credentials", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn put_operator_app(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(ConnectorIdPath { connector_id }): ApiPath<ConnectorIdPath>,
    ApiJson(body): ApiJson<PutOAuthApp>,
) -> ApiResult<Json<OAuthAppView>> {
    principal.require(Scope::WorkspacesCreate)?;
    let binding = operator_binding(&state, &body)?;
    put_app_for(&state, &principal, OPERATOR_OWNER, &connector_id, body, Some(binding)).await
}

/// What an operator app is bound to, checked: an origin with nothing after it, and a
/// publisher key this host trusts.
fn operator_binding(state: &AppState, body: &PutOAuthApp) -> ApiResult<AppBinding> {
    let (Some(origin), Some(signer)) = (body.token_origin.as_deref(), body.signer.as_deref()) else {
        return Err(ApiError::unprocessable(
            "binding_required",
            "an operator app is shared by every workspace, so it needs `token_origin` (the provider's token endpoint origin, e.g. https://slack.com) and `signer` (the publisher key id of the connector allowed to use it)",
        ));
    };
    let parsed = url::Url::parse(origin)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
        .filter(|u| u.path() == "/" && u.query().is_none() && u.fragment().is_none() && u.username().is_empty());
    let Some(parsed) = parsed else {
        return Err(ApiError::unprocessable(
            "invalid_token_origin",
            "`token_origin` must be an http(s) origin with no path, query or credentials, e.g. https://slack.com",
        ));
    };
    if signer == "unsigned" || !state.trust.trusts(signer) {
        return Err(ApiError::unprocessable(
            "untrusted_signer",
            "`signer` must be the key id of a publisher key this host trusts (NEXUM_TRUSTED_PUBLISHER_KEYS or the first-party key)",
        ));
    }
    Ok(AppBinding {
        token_origin: parsed.origin().ascii_serialization(),
        signer: signer.to_string(),
    })
}

async fn put_app_for(
    state: &AppState,
    principal: &Principal,
    owner: &str,
    connector_id: &str,
    body: PutOAuthApp,
    binding: Option<AppBinding>,
) -> ApiResult<Json<OAuthAppView>> {
    let secret = SecretFields(BTreeMap::from([("client_secret".to_string(), body.client_secret)]));
    let valid_id = |s: &str| {
        !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !valid_id(connector_id) {
        return Err(ApiError::unprocessable("invalid_connector", "not a connector id"));
    }
    let client_id = body.client_id.trim();
    if client_id.is_empty() || client_id.chars().count() > 500 || client_id.bytes().any(|b| b < 0x20) {
        return Err(ApiError::unprocessable(
            "invalid_client_id",
            "client_id must be 1–500 printable characters",
        ));
    }
    let client_secret_ok = secret.0.get("client_secret").is_some_and(|s| {
        (crate::vault::MIN_SECRET_CHARS..=2000).contains(&s.chars().count()) && !s.bytes().any(|b| b < 0x20)
    });
    if !client_secret_ok {
        return Err(ApiError::unprocessable(
            "invalid_client_secret",
            format!(
                "client_secret must be {}–2000 printable characters",
                crate::vault::MIN_SECRET_CHARS
            ),
        ));
    }
    let app = state
        .db
        .put_oauth_app(owner, connector_id, client_id, binding.as_ref())
        .await?;
    let sealed = state.vault.seal_fields(owner, &app.id, &secret)?;
    state.db.put_secret(&sealed).await?;
    state
        .db
        .append_audit(&[AuditEntry::new(
            &principal.workspace_id,
            &principal.key_id,
            "oauth_app.put",
            &app.id,
            format!(
                "connector={connector_id} owner={}",
                if owner == OPERATOR_OWNER {
                    "operator"
                } else {
                    "workspace"
                }
            ),
        )])
        .await?;
    Ok(Json(app_view(state, app)))
}

/// Remove the workspace's app for a connector (`admin`).
#[utoipa::path(delete, path = "/api/v1/oauth-apps/{connector_id}", tag = "oauth", operation_id = "delete_oauth_app",
    params(ConnectorIdPath),
    responses((status = 204, description = "Removed"), (status = 404, description = "This workspace has no app for the connector", body = crate::error::Problem)))]
pub async fn delete_app(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(ConnectorIdPath { connector_id }): ApiPath<ConnectorIdPath>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::Admin)?;
    if !state
        .db
        .delete_oauth_app(principal.workspace_id.as_str(), &connector_id)
        .await?
    {
        return Err(ApiError::not_found("OAuth app"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the operator's app for a connector (`workspaces:create`).
#[utoipa::path(delete, path = "/api/v1/operator/oauth-apps/{connector_id}", tag = "oauth", operation_id = "delete_operator_oauth_app",
    params(ConnectorIdPath),
    responses((status = 204, description = "Removed"), (status = 404, description = "The operator has no app for the connector", body = crate::error::Problem)))]
pub async fn delete_operator_app(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(ConnectorIdPath { connector_id }): ApiPath<ConnectorIdPath>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::WorkspacesCreate)?;
    if !state.db.delete_oauth_app(OPERATOR_OWNER, &connector_id).await? {
        return Err(ApiError::not_found("OAuth app"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Filter of the event list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only this type, e.g. `connection.status_changed`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// `evt_…`
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Payload.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Unix ms.
    pub created_at: i64,
}

/// A page of events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventList {
    /// Events, oldest first.
    pub data: Vec<EventView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// The workspace's event outbox, oldest first (`connections:read`).
#[utoipa::path(get, path = "/api/v1/events", tag = "oauth", operation_id = "list_events", params(EventQuery),
    responses((status = 200, body = EventList), (status = 422, description = "`limit` outside 1–100", body = crate::error::Problem)))]
pub async fn list_events(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventList>> {
    principal.require(Scope::ConnectionsRead)?;
    let page = Pagination {
        limit: query.limit,
        cursor: query.cursor,
    };
    let p = state
        .db
        .list_events(
            &principal.workspace_id,
            query.kind.as_deref(),
            page.after(),
            page.limit()?,
        )
        .await?;
    Ok(Json(EventList {
        data: p
            .items
            .into_iter()
            .map(|e| EventView {
                data: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
                id: e.id,
                kind: e.kind,
                created_at: e.created_at,
            })
            .collect(),
        next_cursor: p.next_cursor,
    }))
}
