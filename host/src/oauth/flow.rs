//! The authorization-code flow.
//!
//! `start` checks everything that can be checked before the user leaves (installation,
//! scheme, variables, token URL binding, app), stores a flow under the SHA-256 of a random
//! state with the PKCE verifier sealed, and returns the provider URL. `complete` claims the
//! flow by its state exactly once, exchanges the code, and creates (or reconnects) the
//! connection with its tokens in one transaction; any failure leaves no connection behind.

use super::{FLOW_TTL, OAuthError, apps, endpoints_of, provider, token_fields, token_url};
use crate::ids::{ConnectionId, InstallationId, WorkspaceId};
use crate::state::AppState;
use crate::store::{
    AuditEntry, ConnectionRecord, ConnectionSettings, ConnectionStatus, FlowClaim, InstallationRecord, OAuthFlowRecord,
    TokenUpdate, new_id, now_ms,
};
use crate::vault::Sealed;
use base64::Engine as _;
use nexum_manifest::Manifest;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What an API client asks to start.
#[derive(Debug, Clone)]
pub struct FlowRequest {
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// API key id that starts it.
    pub actor: String,
    /// `plg_…` or connector id (ignored when reconnecting).
    pub connector: Option<String>,
    /// Reconnect this connection instead of creating one.
    pub connection_id: Option<ConnectionId>,
    /// Name of the new connection.
    pub name: Option<String>,
    /// Auth scheme id (defaults to the connector's only OAuth2 scheme).
    pub auth_scheme: Option<String>,
    /// Variables of the new connection.
    pub variables: Option<BTreeMap<String, String>>,
    /// Scopes to request instead of the manifest's.
    pub scopes: Option<Vec<String>>,
    /// Where to send the browser afterwards.
    pub return_url: Option<String>,
}

/// A started flow.
#[derive(Debug, Clone)]
pub struct StartedFlow {
    /// `oaf_…`
    pub flow_id: String,
    /// Send the user here.
    pub authorization_url: String,
    /// The redirect URI the provider app must allow.
    pub redirect_uri: String,
    /// Unix ms after which the flow can no longer complete.
    pub expires_at: i64,
}

/// Start an authorization-code flow.
pub async fn start(state: &AppState, request: FlowRequest) -> Result<StartedFlow, OAuthError> {
    let ws = &request.workspace_id;
    let existing = match &request.connection_id {
        Some(id) => Some(
            state
                .db
                .connection(ws, id)
                .await?
                .ok_or(OAuthError::NotFound("connection"))?,
        ),
        None => None,
    };
    let installation = match (&existing, &request.connector) {
        (Some(c), _) => state.db.installation(ws, &c.installation_id).await?,
        (None, Some(connector)) => match connector.parse::<InstallationId>() {
            Ok(id) => state.db.installation(ws, &id).await?,
            Err(_) => state.db.installation_by_connector(ws, connector).await?,
        },
        (None, None) => {
            return Err(OAuthError::Invalid {
                code: "connector_required",
                message: "name the installed `connector`, or the `connection_id` to reconnect".into(),
            });
        }
    }
    .ok_or(OAuthError::NotFound("installed connector"))?;
    let manifest = parse_manifest(&installation)?;
    let scheme_id = match (&existing, &request.auth_scheme) {
        (Some(c), _) => c.auth_scheme.clone().unwrap_or_default(),
        (None, Some(s)) => s.clone(),
        (None, None) => {
            let oauth: Vec<&str> = manifest
                .auth
                .iter()
                .filter(|a| endpoints_of(a).is_ok())
                .map(|a| a.id.as_str())
                .collect();
            match oauth.as_slice() {
                [one] => one.to_string(),
                [] => {
                    return Err(OAuthError::Invalid {
                        code: "not_oauth2",
                        message: format!("connector `{}` has no OAuth2 auth scheme", manifest.id),
                    });
                }
                _ => {
                    return Err(OAuthError::Invalid {
                        code: "auth_scheme_required",
                        message: format!("name one of the OAuth2 schemes in `auth_scheme`: {}", oauth.join(", ")),
                    });
                }
            }
        }
    };
    let scheme = manifest.auth_scheme(&scheme_id).ok_or_else(|| OAuthError::Invalid {
        code: "unknown_auth_scheme",
        message: format!("the connector has no auth scheme `{scheme_id}`"),
    })?;
    let endpoints = endpoints_of(scheme)?;
    if existing.is_some() && request.variables.is_some() {
        return Err(OAuthError::Invalid {
            code: "variables_on_reconnect",
            message:
                "a reconnect keeps the connection's variables; change them with PATCH /api/v1/connections/{id} first"
                    .into(),
        });
    }
    let given = match (&existing, &request.variables) {
        (_, Some(v)) => v.clone(),
        (Some(c), None) => serde_json::from_str(&c.variables).unwrap_or_default(),
        (None, None) => BTreeMap::new(),
    };
    let variables = manifest.resolve_variables(&given).map_err(|e| OAuthError::Invalid {
        code: "invalid_variables",
        message: e.to_string(),
    })?;
    let authorization_url = endpoints
        .authorization_url_for(&variables)
        .map_err(|e| OAuthError::Invalid {
            code: "invalid_variables",
            message: e.to_string(),
        })?
        .ok_or_else(|| OAuthError::Invalid {
            code: "client_credentials_provider",
            message: format!(
                "auth scheme `{scheme_id}` uses the client-credentials grant (no user consent): create the connection with POST /api/v1/connections"
            ),
        })?;
    let token_url = token_url(&manifest, scheme, &variables)?;
    let (app, _) = flow_app(state, ws, &installation, &token_url).await?;
    let name = match (&existing, &request.name) {
        (Some(c), _) => c.name.clone(),
        (None, Some(n)) if !n.trim().is_empty() && n.len() <= 200 => n.trim().to_string(),
        (None, _) => {
            return Err(OAuthError::Invalid {
                code: "invalid_name",
                message: "name must be 1–200 characters".into(),
            });
        }
    };
    let return_url = match request.return_url.as_deref() {
        Some(u) => {
            // The server's own origin (its console) is always an allowed destination.
            let mut allowed = state.oauth.return_origins.clone();
            if let Ok(own) = url::Url::parse(&state.oauth.redirect_uri()) {
                allowed.push(own.origin().ascii_serialization());
            }
            Some(check_return_url(u, &allowed)?)
        }
        None => None,
    };
    let scopes = request.scopes.clone().unwrap_or_else(|| endpoints.scopes.clone());
    if scopes
        .iter()
        .any(|s| s.is_empty() || s.len() > 200 || s.contains(char::is_whitespace))
    {
        return Err(OAuthError::Invalid {
            code: "invalid_scopes",
            message: "scopes must be non-empty words without spaces".into(),
        });
    }
    // The admin accepted the scopes the installed manifest declares; a flow may ask for
    // fewer, never others.
    if let Some(extra) = scopes.iter().find(|s| !endpoints.scopes.contains(s)) {
        return Err(OAuthError::Invalid {
            code: "scope_not_accepted",
            message: format!(
                "scope `{extra}` is not among the scopes accepted when the connector was installed ({})",
                endpoints.scopes.join(" ")
            ),
        });
    }

    let mut raw_state = [0u8; 32];
    getrandom::fill(&mut raw_state).map_err(|_| OAuthError::Invalid {
        code: "randomness",
        message: "no randomness available".into(),
    })?;
    let state_token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw_state);
    let flow_id = new_id("oaf");
    let redirect_uri = state.oauth.redirect_uri();
    let (url, verifier) = provider::authorization_url(
        endpoints,
        &authorization_url,
        &app.client_id,
        &redirect_uri,
        &state_token,
        &scopes,
    )?;
    let verifier_plain = verifier
        .as_ref()
        .map(|v| v.expose_secret().as_bytes())
        .unwrap_or_default();
    let sealed = state.vault.seal_value(ws, &flow_id, verifier_plain)?;
    let now = now_ms();
    let flow = OAuthFlowRecord {
        id: flow_id.clone(),
        state_hash: hash_state(&state_token),
        workspace_id: ws.clone(),
        actor: request.actor.clone(),
        installation_id: installation.id.clone(),
        connection_id: existing.as_ref().map(|c| c.id.clone()),
        name,
        auth_scheme: scheme_id,
        variables: serde_json::to_string(&variables).unwrap_or_else(|_| "{}".into()),
        scopes: scopes.join(" "),
        return_url,
        verifier_key_id: sealed.key_id,
        verifier_nonce: sealed.nonce,
        verifier_ciphertext: sealed.ciphertext,
        status: "pending".into(),
        error: None,
        created_at: now,
        expires_at: now + FLOW_TTL.as_millis() as i64,
        completed_at: None,
        authorize_url: Some(without_state(&url)),
        browser_hash: None,
    };
    state.db.insert_oauth_flow(&flow).await?;
    Ok(StartedFlow {
        flow_id,
        authorization_url: state.oauth.begin_url(&state_token),
        redirect_uri,
        expires_at: flow.expires_at,
    })
}

/// The app an authorization-code flow of `installation` authenticates as (the same at start
/// and at the callback, so a binding that changed meanwhile is caught).
async fn flow_app(
    state: &AppState,
    workspace_id: &WorkspaceId,
    installation: &crate::store::InstallationRecord,
    token_url: &url::Url,
) -> Result<(super::ClientApp, apps::AppSource), OAuthError> {
    apps::client_app(
        state,
        apps::AppLookup {
            workspace_id,
            connector_id: &installation.connector_id,
            signer: &installation.signer,
            stored: None,
            token_url,
            client_credentials: false,
        },
    )
    .await
}

/// The provider URL with its `state` taken out (kept until the browser opens the link).
fn without_state(url: &url::Url) -> String {
    let mut kept = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "state")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    kept.query_pairs_mut().clear().extend_pairs(pairs);
    kept.to_string()
}

/// The name of the cookie binding flow `flow_id` to a browser.
pub fn binding_cookie(flow_id: &str) -> String {
    format!("nexum_oauth_{flow_id}")
}

/// A browser opened Nexum's link for a flow: where to send it, and the cookie that binds
/// the flow to it.
#[derive(Debug)]
pub struct BegunFlow {
    /// The provider's authorization URL, with the state.
    pub provider_url: String,
    /// `(name, value)` of the binding cookie.
    pub cookie: (String, String),
}

/// Bind the flow whose state is `state_token` to the browser opening the link, once. A
/// second opening (another browser, a leaked link) is refused.
pub async fn begin(state: &AppState, state_token: &str) -> Result<BegunFlow, OAuthError> {
    let refused = |message: &str| OAuthError::Invalid {
        code: "invalid_state",
        message: message.to_string(),
    };
    if state_token.is_empty() || state_token.len() > 512 {
        return Err(refused("this link has no valid state; start the connection again"));
    }
    let mut binding = [0u8; 32];
    getrandom::fill(&mut binding).map_err(|_| OAuthError::Invalid {
        code: "randomness",
        message: "no randomness available".into(),
    })?;
    let binding = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(binding);
    let flow = state
        .db
        .bind_oauth_flow(&hash_state(state_token), &hash_state(&binding))
        .await?
        .ok_or_else(|| {
            refused("this link was already opened, has expired or is unknown; start the connection again")
        })?;
    let Some(base) = flow.authorize_url.as_deref() else {
        return Err(refused(
            "this flow was started before links were bound to browsers; start the connection again",
        ));
    };
    let mut provider = url::Url::parse(base).map_err(|_| refused("the stored authorization URL is unreadable"))?;
    provider.query_pairs_mut().append_pair("state", state_token);
    Ok(BegunFlow {
        provider_url: provider.to_string(),
        cookie: (binding_cookie(&flow.id), binding),
    })
}

/// The provider's answer at the callback.
#[derive(Debug, Clone, Default)]
pub struct CallbackParams {
    /// `state`.
    pub state: Option<String>,
    /// `code`.
    pub code: Option<String>,
    /// `error` (e.g. `access_denied`).
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// The browser's cookies (`name → value`); the flow's binding cookie must be among them.
    pub cookies: BTreeMap<String, String>,
}

/// How a callback ended.
#[derive(Debug)]
pub enum CallbackOutcome {
    /// Connected: the flow and the connection.
    Connected {
        /// The flow.
        flow: OAuthFlowRecord,
        /// The connection created or reconnected.
        connection_id: ConnectionId,
    },
    /// Refused, with a problem code and message; `flow` when the state named one.
    Failed {
        /// Problem code (`access_denied`, `invalid_state`, `state_expired`, …).
        code: &'static str,
        /// What happened and what to do.
        message: String,
        /// The flow, when the state was known.
        flow: Option<OAuthFlowRecord>,
        /// Whether the provider (rather than the request) failed.
        upstream: bool,
    },
}

/// Finish a flow from the provider's redirect.
pub async fn complete(state: &AppState, params: CallbackParams) -> Result<CallbackOutcome, OAuthError> {
    let failed = |code, message: String, flow: Option<OAuthFlowRecord>| CallbackOutcome::Failed {
        code,
        message,
        flow,
        upstream: false,
    };
    let Some(state_token) = params.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 512) else {
        return Ok(failed(
            "missing_state",
            "the callback has no `state`; start the connection again".into(),
            None,
        ));
    };
    // The browser completing the flow must be the one that opened Nexum's link: checked
    // before the state is used up, so a stranger's visit does not burn the user's flow.
    if let Some(pending) = state.db.oauth_flow_by_state(&hash_state(state_token)).await?
        && pending.status == "pending"
    {
        let presented = params.cookies.get(&binding_cookie(&pending.id)).map(|c| hash_state(c));
        if pending.browser_hash.is_none() || presented != pending.browser_hash {
            return Ok(failed(
                "browser_mismatch",
                "this authorization was started in another browser: open the link Nexum gave you in this browser, or start the connection again".into(),
                None,
            ));
        }
    }
    let flow = match state.db.claim_oauth_flow(&hash_state(state_token)).await? {
        FlowClaim::Claimed(flow) => flow,
        FlowClaim::Unknown => {
            return Ok(failed(
                "invalid_state",
                "this OAuth state is unknown: start the connection again".into(),
                None,
            ));
        }
        FlowClaim::Expired(flow) => {
            let message = "this authorization took longer than 10 minutes and expired: start the connection again";
            state
                .db
                .finish_oauth_flow(&flow.id, "failed", None, Some(message))
                .await?;
            return Ok(failed("state_expired", message.into(), Some(flow)));
        }
        FlowClaim::Used(flow) => {
            return Ok(failed(
                "state_used",
                "this authorization was already used; start the connection again".into(),
                Some(flow),
            ));
        }
    };
    match exchange(state, &flow, &params).await {
        Ok(connection_id) => {
            state
                .db
                .finish_oauth_flow(&flow.id, "connected", Some(connection_id.as_str()), None)
                .await?;
            Ok(CallbackOutcome::Connected { flow, connection_id })
        }
        Err((code, message, upstream)) => {
            state
                .db
                .finish_oauth_flow(&flow.id, "failed", None, Some(&message))
                .await?;
            Ok(CallbackOutcome::Failed {
                code,
                message,
                flow: Some(flow),
                upstream,
            })
        }
    }
}

type ExchangeError = (&'static str, String, bool);

async fn exchange(
    state: &AppState,
    flow: &OAuthFlowRecord,
    params: &CallbackParams,
) -> Result<ConnectionId, ExchangeError> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(flow = %flow.id, error = %e, "OAuth callback failed");
        (
            "internal",
            "the connection could not be saved; try again".to_string(),
            false,
        )
    };
    if let Some(error) = &params.error {
        let error: String = error.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
        let description = params
            .error_description
            .as_deref()
            .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        let code = if error == "access_denied" {
            "access_denied"
        } else {
            "provider_error"
        };
        return Err((
            code,
            format!("the provider did not authorize the connection ({error}){description}"),
            false,
        ));
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(("missing_code", "the callback has no `code`".into(), false));
    };
    let ws = &flow.workspace_id;
    let installation = state
        .db
        .installation(ws, &flow.installation_id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or(("invalid_connection", "the connector was uninstalled".to_string(), false))?;
    let manifest = parse_manifest(&installation).map_err(|e| internal(&e))?;
    let scheme = manifest.auth_scheme(&flow.auth_scheme).ok_or((
        "invalid_connection",
        "the connector changed its auth schemes".to_string(),
        false,
    ))?;
    let endpoints = endpoints_of(scheme).map_err(|e| ("invalid_connection", e.to_string(), false))?;
    let variables: BTreeMap<String, String> = serde_json::from_str(&flow.variables).unwrap_or_default();
    let token_url =
        token_url(&manifest, scheme, &variables).map_err(|e| ("invalid_connection", e.to_string(), false))?;
    let (app, source) = flow_app(state, ws, &installation, &token_url)
        .await
        .map_err(|e| ("oauth_app_missing", e.to_string(), false))?;
    let sealed = Sealed {
        key_id: flow.verifier_key_id.clone(),
        nonce: flow.verifier_nonce.clone(),
        ciphertext: flow.verifier_ciphertext.clone(),
    };
    let verifier = state
        .vault
        .open_value(ws, &flow.id, &sealed)
        .map_err(|e| internal(&e))?;
    let verifier = std::str::from_utf8(&verifier).map_err(|e| internal(&e))?;
    let verifier = (endpoints.pkce && !verifier.is_empty()).then_some(verifier);
    let issued = state
        .oauth
        .tokens
        .exchange_code(endpoints, &token_url, &state.oauth.redirect_uri(), &app, code, verifier)
        .await
        .map_err(|e| ("token_exchange_failed", e.to_string(), true))?;
    let with_provided = with_provided_variables(&manifest, &variables, &issued.variables)?;
    let mut fields = token_fields(&issued, None);
    fields.0.insert("oauth_app".into(), source.as_str().into());
    let expires_at = super::expires_at_of(&fields);

    if let Some(id) = &flow.connection_id {
        let sealed = state
            .vault
            .seal_fields(ws, id.as_str(), &fields)
            .map_err(|e| internal(&e))?;
        let _local = state.oauth.lock(id.as_str()).await;
        let mut lock = state.db.lock_for_refresh(ws, id).await.map_err(|e| internal(&e))?;
        let Some(current) = lock.connection().await.map_err(|e| internal(&e))? else {
            let _ = lock.release().await;
            return Err(("invalid_connection", "the connection was deleted".into(), false));
        };
        // The tokens were granted for the hosts of the variables the flow started with; if
        // the connection was pointed elsewhere meanwhile, they are not stored.
        let now_resolved = serde_json::from_str::<BTreeMap<String, String>>(&current.variables)
            .ok()
            .and_then(|v| manifest.resolve_variables(&v).ok());
        if now_resolved.as_ref() != Some(&variables) {
            let _ = lock.release().await;
            return Err((
                "connection_changed",
                "the connection's variables changed while the flow was open; start the reconnect again".into(),
                false,
            ));
        }
        // The provider may name another value for a variable it sets (an org moved to
        // another instance): the connection follows it.
        let provided_json = serde_json::to_string(&with_provided).unwrap_or_else(|_| "{}".into());
        let settings = (with_provided != variables).then(|| ConnectionSettings {
            name: &current.name,
            variables: &provided_json,
            expected_variables: &current.variables,
        });
        lock.finish(TokenUpdate {
            secret: Some(&sealed),
            token_expires_at: expires_at,
            refresh_failures: 0,
            status: ConnectionStatus::Connected,
            last_error: None,
            failed_event: None,
            settings,
            expected_variables: Some(&current.variables),
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Changed => (
                "connection_changed",
                "the connection's variables changed while the flow was open; start the reconnect again".to_string(),
                false,
            ),
            other => internal(&other),
        })?;
        state.connections.evict(id);
        audit(state, flow, id.as_str(), "secret.update").await;
        return Ok(id.clone());
    }
    let provided_json = serde_json::to_string(&with_provided).unwrap_or_else(|_| "{}".into());
    let mut record = ConnectionRecord::new(
        ws,
        &installation.id,
        &flow.name,
        Some(&flow.auth_scheme),
        &provided_json,
    );
    record.token_expires_at = expires_at;
    let sealed = state
        .vault
        .seal_fields(ws, record.id.as_str(), &fields)
        .map_err(|e| internal(&e))?;
    state
        .db
        .insert_connection_with_secret(&record, &sealed)
        .await
        .map_err(|e| internal(&e))?;
    audit(state, flow, record.id.as_str(), "secret.create").await;
    Ok(record.id)
}

/// The flow's variables with those the token response set (its values win: the provider
/// knows the account's own host), checked as any connection's variables are: declared,
/// and every host template still resolving to a valid origin.
fn with_provided_variables(
    manifest: &Manifest,
    variables: &BTreeMap<String, String>,
    provided: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ExchangeError> {
    if provided.is_empty() {
        return Ok(variables.clone());
    }
    let mut merged = variables.clone();
    merged.extend(provided.iter().map(|(k, v)| (k.clone(), v.clone())));
    let names = provided.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    let unusable = |e: nexum_manifest::ManifestError| {
        (
            "token_exchange_failed",
            format!("the provider's answer set {names} to an unusable value: {e}"),
            true,
        )
    };
    let resolved = manifest.resolve_variables(&merged).map_err(unusable)?;
    crate::broker::EgressRules::new("check", manifest, &resolved, &[]).map_err(unusable)?;
    Ok(resolved)
}

async fn audit(state: &AppState, flow: &OAuthFlowRecord, connection_id: &str, action: &str) {
    let entry = AuditEntry::new(
        &flow.workspace_id,
        &flow.actor,
        action,
        connection_id,
        format!("scheme={} oauth_flow={}", flow.auth_scheme, flow.id),
    );
    if let Err(e) = state.db.append_audit(&[entry]).await {
        tracing::warn!(error = %e, "could not audit an OAuth connection");
    }
}

fn parse_manifest(installation: &InstallationRecord) -> Result<Manifest, OAuthError> {
    Manifest::parse(&installation.manifest).map_err(|e| OAuthError::Invalid {
        code: "invalid_connection",
        message: e.to_string(),
    })
}

/// A flow's return URL must be on an origin the operator allowed: the callback redirects the
/// user's browser there, and Nexum must not be an open redirect.
fn check_return_url(u: &str, allowed_origins: &[String]) -> Result<String, OAuthError> {
    let parsed = url::Url::parse(u).map_err(|_| OAuthError::Invalid {
        code: "invalid_return_url",
        message: format!("`return_url` is not an absolute URL: {u}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || u.len() > 2000 {
        return Err(OAuthError::Invalid {
            code: "invalid_return_url",
            message: "`return_url` must be an http or https URL".into(),
        });
    }
    let origin = parsed.origin().ascii_serialization();
    if !allowed_origins.contains(&origin) {
        let allowed = if allowed_origins.is_empty() {
            "none configured".to_string()
        } else {
            allowed_origins.join(", ")
        };
        return Err(OAuthError::Invalid {
            code: "return_url_not_allowed",
            message: format!(
                "`return_url` must be on an allowed origin ({allowed}); the operator sets them with NEXUM_OAUTH_RETURN_ORIGINS"
            ),
        });
    }
    Ok(u.to_string())
}

/// The stored form of a state: its SHA-256, so the table never holds a usable state.
pub fn hash_state(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}
