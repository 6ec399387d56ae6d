//! Managing a workspace's webhook endpoints: creating one (the URL is checked against the
//! host's address policy, and again at every delivery; event types against the catalogue; a
//! fresh `whsec_` secret is sealed in the vault and shown once), changing one, and rotating
//! its secret with a grace period during which deliveries carry both signatures.

use super::sealed::EndpointSecrets;
use super::signing::WebhookSecret;
use crate::ids::WorkspaceId;
use crate::state::AppState;
use crate::store::{AuditEntry, EndpointChanges, EndpointRecord, NewEndpointRow, now_ms};
use std::collections::BTreeMap;
use std::time::Duration;

/// Event types an endpoint receives only when it names them (high volume).
pub const OPT_IN_EVENT_TYPES: &[&str] = &["action.executed"];

/// Most custom headers on one endpoint.
pub const MAX_HEADERS: usize = 20;

/// Highest per-endpoint rate limit, deliveries per second.
pub const MAX_RATE_LIMIT: i64 = 10_000;

/// Longest grace period of a secret rotation.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(7 * 86_400);

/// Grace period of a secret rotation when none is asked for.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(86_400);

/// Headers a delivery sets itself, or that would change how it travels.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "host",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
];

/// Why an endpoint request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The request cannot be served as asked; `code` is stable.
    #[error("{message}")]
    Invalid {
        /// Stable problem code.
        code: &'static str,
        /// What to do about it.
        message: String,
    },
    /// No such endpoint in the workspace.
    #[error("no such endpoint")]
    NotFound,
    /// Database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Vault.
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
}

fn invalid(code: &'static str, message: impl Into<String>) -> WebhookError {
    WebhookError::Invalid {
        code,
        message: message.into(),
    }
}

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Where to POST deliveries (`https://…`, or `http://` for ranges the operator allows).
    pub url: String,
    /// Free text.
    pub description: String,
    /// Event types to receive (empty: all but the opt-in ones).
    pub event_types: Vec<String>,
    /// Custom headers sent with every delivery (values sealed in the vault).
    pub headers: BTreeMap<String, String>,
    /// Most deliveries per second (`None`: no limit).
    pub rate_limit_per_sec: Option<i64>,
    /// `api`, or `hook` for a REST-hook subscription.
    pub source: &'static str,
}

impl Default for NewEndpoint {
    fn default() -> Self {
        Self {
            url: String::new(),
            description: String::new(),
            event_types: Vec::new(),
            headers: BTreeMap::new(),
            rate_limit_per_sec: None,
            source: crate::store::ENDPOINT_SOURCE_API,
        }
    }
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    /// New URL.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// New custom headers (replacing all of them).
    pub headers: Option<BTreeMap<String, String>>,
    /// New rate limit (`Some(None)` removes it).
    pub rate_limit_per_sec: Option<Option<i64>>,
    /// Enable (clearing the failure clock) or disable.
    pub enabled: Option<bool>,
}

/// A created endpoint and its signing secret (shown once).
pub struct CreatedEndpoint {
    /// The stored endpoint.
    pub record: EndpointRecord,
    /// Its signing secret.
    pub secret: WebhookSecret,
}

/// The URL under the address policy, its host name resolved now too (and again at every
/// delivery: DNS can change). No credentials in the URL (it is shown to readers; use a
/// custom header), and `https` unless it reaches only internal addresses the operator
/// allows. A refusal never says what a name resolved to (that would map internal DNS).
async fn check_url(state: &AppState, raw: &str) -> Result<String, WebhookError> {
    let (url, addresses) = state
        .outbound
        .check_url_resolving(raw.trim())
        .await
        .map_err(|e| match e {
            crate::broker::UrlRefused::Blocked(blocked) => invalid(
                "invalid_url",
                format!(
                    "`{}` is, or resolves to, a {} address, which endpoints may not reach",
                    blocked.host, blocked.class
                ),
            ),
            other => invalid("invalid_url", other.to_string()),
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "invalid_url",
            "credentials in the URL are not allowed; send them in a custom header (its value is sealed)",
        ));
    }
    if url.scheme() == "http" && !state.outbound.only_allowed_private(&addresses) {
        return Err(invalid(
            "invalid_url",
            "use https:// (plain http:// only for internal addresses the operator allows)",
        ));
    }
    Ok(url.to_string())
}

fn check_description(description: &str) -> Result<String, WebhookError> {
    if description.chars().count() > 500 {
        return Err(invalid(
            "invalid_description",
            "description must be at most 500 characters",
        ));
    }
    Ok(description.trim().to_string())
}

fn check_event_types(types: &[String]) -> Result<(), WebhookError> {
    if types.len() > 50 {
        return Err(invalid("too_many_event_types", "at most 50 event types"));
    }
    match types
        .iter()
        .find(|t| t.is_empty() || t.len() > 100 || t.contains(',') || t.contains(char::is_whitespace))
    {
        Some(bad) => Err(invalid("invalid_event_type", format!("`{bad}` is not an event type"))),
        None => Ok(()),
    }
}

fn check_rate_limit(limit: Option<i64>) -> Result<(), WebhookError> {
    match limit {
        Some(n) if !(1..=MAX_RATE_LIMIT).contains(&n) => Err(invalid(
            "invalid_rate_limit",
            format!("rate_limit_per_sec must be from 1 to {MAX_RATE_LIMIT}"),
        )),
        _ => Ok(()),
    }
}

/// Check custom headers and normalize their names to lower case.
fn check_headers(headers: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, WebhookError> {
    if headers.len() > MAX_HEADERS {
        return Err(invalid(
            "invalid_headers",
            format!("at most {MAX_HEADERS} custom headers"),
        ));
    }
    let mut checked = BTreeMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if axum::http::HeaderName::from_bytes(lower.as_bytes()).is_err() || lower.len() > 100 {
            return Err(invalid("invalid_headers", format!("`{name}` is not a header name")));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            return Err(invalid(
                "invalid_headers",
                format!("`{name}` is set by the delivery itself and cannot be customized"),
            ));
        }
        if value.len() > 1024 || axum::http::HeaderValue::from_str(value).is_err() {
            return Err(invalid(
                "invalid_headers",
                format!("the value of `{name}` must be visible ASCII, at most 1024 bytes"),
            ));
        }
        if checked.insert(lower, value.clone()).is_some() {
            return Err(invalid("invalid_headers", format!("`{name}` is given twice")));
        }
    }
    Ok(checked)
}

/// Create an endpoint in `workspace_id` as `actor`.
pub async fn create(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    new: NewEndpoint,
) -> Result<CreatedEndpoint, WebhookError> {
    let url = check_url(state, &new.url).await?;
    let description = check_description(&new.description)?;
    check_event_types(&new.event_types)?;
    check_rate_limit(new.rate_limit_per_sec)?;
    let headers = check_headers(&new.headers)?;
    let secret = WebhookSecret::generate().map_err(|e| invalid("randomness", e.to_string()))?;
    let header_names: Vec<String> = headers.keys().cloned().collect();
    let record = EndpointRecord::new(
        workspace_id,
        &NewEndpointRow {
            url: &url,
            description: &description,
            event_types: &new.event_types,
            rate_limit_per_sec: new.rate_limit_per_sec,
            source: new.source,
            header_names: &header_names,
        },
    );
    let sealed = EndpointSecrets::new(secret.clone(), headers).seal(state, workspace_id, &record.id)?;
    state.db.insert_webhook_endpoint(&record, &sealed).await?;
    audit(state, workspace_id, actor, "secret.create", &record.id).await?;
    Ok(CreatedEndpoint { record, secret })
}

/// Change an endpoint of `workspace_id` as `actor`.
pub async fn update(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    id: &str,
    update: EndpointUpdate,
) -> Result<EndpointRecord, WebhookError> {
    let url = match update.url.as_deref() {
        Some(u) => Some(check_url(state, u).await?),
        None => None,
    };
    let mut changes = EndpointChanges {
        url,
        description: update.description.as_deref().map(check_description).transpose()?,
        event_types: update.event_types,
        rate_limit_per_sec: update.rate_limit_per_sec,
        header_names: None,
        enabled: update.enabled,
    };
    if let Some(types) = &changes.event_types {
        check_event_types(types)?;
    }
    if let Some(limit) = changes.rate_limit_per_sec {
        check_rate_limit(limit)?;
    }
    let mut headers = update.headers;
    let current = state
        .db
        .webhook_endpoint(workspace_id, id)
        .await?
        .ok_or(WebhookError::NotFound)?;
    if let Some(new_url) = &changes.url
        && headers.is_none()
        && origin(new_url) != origin(&current.url)
    {
        // The custom headers (perhaps credentials) were meant for the old receiver: a move
        // to another origin drops them unless the same request sets them again.
        headers = Some(BTreeMap::new());
    }
    let mut sealed = None;
    let mut expected = None;
    if let Some(headers) = headers {
        let headers = check_headers(&headers)?;
        let mut secrets = EndpointSecrets::load(state, workspace_id, id)
            .await
            .ok_or(WebhookError::NotFound)?;
        changes.header_names = Some(headers.keys().cloned().collect());
        secrets.headers = headers;
        sealed = Some(secrets.seal(state, workspace_id, id)?);
        // Written only if nothing changed the endpoint since `current` was read.
        expected = Some(current.updated_at);
    }
    let record = state
        .db
        .update_webhook_endpoint(workspace_id, id, &changes, sealed.as_ref(), expected)
        .await?
        .ok_or(WebhookError::NotFound)?;
    if sealed.is_some() || changes.url.is_some() {
        audit(state, workspace_id, actor, "secret.update", id).await?;
    }
    Ok(record)
}

/// Give an endpoint a new signing secret. The old one keeps signing (a second signature in
/// `webhook-signature`) for `grace`, so receivers can switch without losing a delivery.
/// Returns the endpoint, the new secret and the unix ms until which the old one signs.
pub async fn rotate_secret(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    id: &str,
    grace: Duration,
) -> Result<(EndpointRecord, WebhookSecret, i64), WebhookError> {
    if grace > MAX_ROTATION_GRACE {
        return Err(invalid(
            "invalid_grace_period",
            format!(
                "the grace period may be at most {} seconds",
                MAX_ROTATION_GRACE.as_secs()
            ),
        ));
    }
    let (version, mut secrets) = load_versioned(state, workspace_id, id).await?;
    let fresh = WebhookSecret::generate().map_err(|e| invalid("randomness", e.to_string()))?;
    let until = now_ms() + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let old = std::mem::replace(&mut secrets.current, fresh.clone());
    secrets.previous = (!grace.is_zero()).then_some((old, until));
    let sealed = secrets.seal(state, workspace_id, id)?;
    let record = state
        .db
        .update_webhook_endpoint(
            workspace_id,
            id,
            &EndpointChanges::default(),
            Some(&sealed),
            Some(version),
        )
        .await?
        .ok_or(WebhookError::NotFound)?;
    audit(state, workspace_id, actor, "secret.rotate", id).await?;
    Ok((record, fresh, if grace.is_zero() { now_ms() } else { until }))
}

/// `scheme://host:port` of a URL (empty when it does not parse).
fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The endpoint's `updated_at` and its opened secrets: a sealed change is written only if
/// the endpoint is still at that version, so two concurrent changes cannot undo each other.
async fn load_versioned(
    state: &AppState,
    workspace_id: &WorkspaceId,
    id: &str,
) -> Result<(i64, EndpointSecrets), WebhookError> {
    let endpoint = state
        .db
        .webhook_endpoint(workspace_id, id)
        .await?
        .ok_or(WebhookError::NotFound)?;
    let secrets = EndpointSecrets::load(state, workspace_id, id)
        .await
        .ok_or(WebhookError::NotFound)?;
    Ok((endpoint.updated_at, secrets))
}

async fn audit(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    action: &str,
    endpoint_id: &str,
) -> Result<(), WebhookError> {
    state
        .db
        .append_audit(&[AuditEntry::new(
            workspace_id,
            actor,
            action,
            endpoint_id,
            "webhook endpoint",
        )])
        .await?;
    Ok(())
}
