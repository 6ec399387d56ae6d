//! Creating, changing and deleting connections. Credentials are validated against the
//! connector's auth scheme and sealed before anything is stored; variables are validated
//! and frozen (defaults written in); a change that would move where a stored secret is sent
//! needs the secret again.

use super::status::{Observation, next_status};
use super::{ConnectionError, ConnectionResult};
use crate::ids::{ConnectionId, InstallationId, WorkspaceId};
use crate::state::AppState;
use crate::store::{AuditEntry, ConnectionRecord, ConnectionSettings, InstallationRecord};
use crate::vault::{Credential, SecretFields};
use nexum_manifest::{AuthKind, Manifest};
use std::collections::BTreeMap;

/// What a new connection is made of.
pub struct NewConnection {
    /// Installed connector: its `plg_…` id or its connector id (e.g. `slack`).
    pub connector: String,
    /// Display name.
    pub name: String,
    /// Auth scheme id; may be omitted when the connector has exactly one.
    pub auth_scheme: Option<String>,
    /// Secret fields for the scheme.
    pub credentials: SecretFields,
    /// Non-secret variables.
    pub variables: BTreeMap<String, String>,
}

/// A change to a connection; `None` leaves a part as it is.
pub struct ConnectionChange {
    /// New name.
    pub name: Option<String>,
    /// Replace all variables.
    pub variables: Option<BTreeMap<String, String>>,
    /// Replace the secret fields.
    pub credentials: Option<SecretFields>,
}

fn check_name(name: &str) -> ConnectionResult<()> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ConnectionError::invalid(
            "invalid_name",
            "name must be 1–200 characters",
        ));
    }
    Ok(())
}

fn parse_manifest(installation: &InstallationRecord) -> ConnectionResult<Manifest> {
    Manifest::parse(&installation.manifest).map_err(|e| ConnectionError::Load(Box::new(e)))
}

/// Create a connection in `workspace_id` as `actor`. Returns it with its installation.
pub async fn create(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    new: NewConnection,
) -> ConnectionResult<(ConnectionRecord, InstallationRecord)> {
    check_name(&new.name)?;
    let installation = if let Ok(id) = new.connector.parse::<InstallationId>() {
        state.db.installation(workspace_id, &id).await?
    } else {
        state.db.installation_by_connector(workspace_id, &new.connector).await?
    }
    .ok_or(ConnectionError::NotFound("installed connector"))?;
    let manifest = parse_manifest(&installation)?;
    let fields = new.credentials;
    let scheme = pick_scheme(&manifest, new.auth_scheme.as_deref(), &fields)?;
    check_typed_secrets(&manifest, scheme.as_deref(), &fields)?;
    let fields = match scheme.as_deref().and_then(|id| manifest.auth_scheme(id)) {
        Some(s) if matches!(s.kind, AuthKind::OAuth2(_)) => {
            oauth_fields(state, workspace_id, &installation, &manifest, s, fields, &new.variables).await?
        }
        _ => fields,
    };
    check_credentials_and_variables(&manifest, scheme.as_deref(), &fields, &new.variables)?;
    let variables = serde_json::to_string(&frozen_variables(&manifest, &new.variables)?)
        .map_err(|_| ConnectionError::Corrupt("connection variables"))?;
    let mut record = ConnectionRecord::new(
        workspace_id,
        &installation.id,
        new.name.trim(),
        scheme.as_deref(),
        &variables,
    );
    if scheme.is_some() {
        record.token_expires_at = crate::oauth::expires_at_of(&fields);
        let sealed = state.vault.seal_fields(workspace_id, record.id.as_str(), &fields)?;
        state.db.insert_connection_with_secret(&record, &sealed).await?;
        state
            .db
            .append_audit(&[AuditEntry::new(
                workspace_id,
                actor,
                "secret.create",
                record.id.as_str(),
                format!("scheme={}", scheme.as_deref().unwrap_or_default()),
            )])
            .await?;
    } else {
        record = state
            .db
            .insert_connection(workspace_id, &installation.id, new.name.trim(), None, &variables)
            .await?;
    }
    Ok((record, installation))
}

/// The stored fields of a new OAuth2 connection made through `POST /connections`:
/// client-credentials providers get a token now (with the connection's own `client_id` and
/// `client_secret`, or the registered app); authorization-code providers accept imported
/// tokens (`access_token`, optional `refresh_token`) and otherwise point to the flow.
async fn oauth_fields(
    state: &AppState,
    workspace_id: &WorkspaceId,
    installation: &InstallationRecord,
    manifest: &Manifest,
    scheme: &nexum_manifest::AuthScheme,
    fields: SecretFields,
    variables: &BTreeMap<String, String>,
) -> ConnectionResult<SecretFields> {
    if fields.0.contains_key("access_token") {
        return Ok(fields);
    }
    let endpoints = crate::oauth::endpoints_of(scheme)?;
    if !endpoints.uses_client_credentials() {
        return Err(ConnectionError::invalid(
            "oauth_flow_required",
            format!(
                "auth scheme `{}` needs the user's consent: start it with POST /api/v1/connections/oauth/authorize (or import tokens as `access_token` and `refresh_token`)",
                scheme.id
            ),
        ));
    }
    if fields.0.contains_key("client_id") != fields.0.contains_key("client_secret") {
        return Err(ConnectionError::invalid(
            "invalid_credentials",
            "give both `client_id` and `client_secret`, or neither to use the registered OAuth app",
        ));
    }
    let resolved = frozen_variables(manifest, variables)?;
    let token_url = crate::oauth::token_url(manifest, scheme, &resolved)?;
    let (app, _) = crate::oauth::apps::client_app(
        state,
        crate::oauth::apps::AppLookup {
            workspace_id,
            connector_id: &manifest.id,
            signer: &installation.signer,
            stored: Some(&fields),
            token_url: &token_url,
            client_credentials: true,
        },
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
fn frozen_variables(
    manifest: &Manifest,
    given: &BTreeMap<String, String>,
) -> ConnectionResult<BTreeMap<String, String>> {
    manifest
        .resolve_variables(given)
        .map_err(|e| ConnectionError::invalid("invalid_variables", e.to_string()))
}

/// Where each auth scheme's secret may go for these variables.
fn credential_hosts(
    manifest: &Manifest,
    variables: &BTreeMap<String, String>,
) -> ConnectionResult<BTreeMap<String, Vec<String>>> {
    let rules = crate::broker::EgressRules::new("check", manifest, variables, &[])
        .map_err(|e| ConnectionError::invalid("invalid_variables", e.to_string()))?;
    Ok(rules
        .credential_hosts
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().map(|p| p.to_string()).collect()))
        .collect())
}

fn pick_scheme(
    manifest: &Manifest,
    requested: Option<&str>,
    fields: &SecretFields,
) -> ConnectionResult<Option<String>> {
    match requested {
        Some(id) => manifest.auth_scheme(id).map(|s| Some(s.id.clone())).ok_or_else(|| {
            ConnectionError::invalid(
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
        // A signing secret is optional: without fields the connection simply has none.
        None if fields.0.is_empty() && manifest.auth.iter().all(|s| matches!(s.kind, AuthKind::Secret)) => Ok(None),
        None if manifest.auth.len() == 1 => Ok(Some(manifest.auth[0].id.clone())),
        None if fields.0.is_empty() => Ok(None),
        None => {
            // Several schemes: the one whose fields were given (a bot token's `token` is not
            // an OAuth `access_token`).
            let accepted = |s: &&nexum_manifest::AuthScheme| {
                let names: &[&str] = match s.kind {
                    AuthKind::OAuth2(_) => crate::vault::OAUTH2_STORED_FIELDS,
                    _ => s.secret_fields(),
                };
                fields.0.keys().all(|k| names.contains(&k.as_str()))
            };
            let candidates: Vec<&str> = manifest.auth.iter().filter(accepted).map(|s| s.id.as_str()).collect();
            match candidates.as_slice() {
                [one] => Ok(Some(one.to_string())),
                [] => Err(ConnectionError::invalid(
                    "invalid_credentials",
                    format!(
                        "no auth scheme of this connector takes the fields {}; name one in `auth_scheme`",
                        fields.0.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                    ),
                )),
                several => Err(ConnectionError::invalid(
                    "auth_scheme_required",
                    format!("name one of the auth schemes {} in `auth_scheme`", several.join(", ")),
                )),
            }
        }
    }
}

/// Secrets an admin typed (not ones a provider issued) must not be too short to scrub.
fn check_typed_secrets(manifest: &Manifest, scheme: Option<&str>, fields: &SecretFields) -> ConnectionResult<()> {
    match scheme.and_then(|id| manifest.auth_scheme(id)) {
        Some(scheme) => crate::vault::check_secret_length(scheme, &fields.0)
            .map_err(|e| ConnectionError::invalid("invalid_credentials", e.to_string())),
        None => Ok(()),
    }
}

fn check_credentials_and_variables(
    manifest: &Manifest,
    scheme: Option<&str>,
    fields: &SecretFields,
    variables: &BTreeMap<String, String>,
) -> ConnectionResult<()> {
    if let Some(id) = scheme {
        let scheme = manifest
            .auth_scheme(id)
            .ok_or_else(|| ConnectionError::invalid("unknown_auth_scheme", id.to_string()))?;
        Credential::from_fields(scheme, &fields.0, "")
            .map_err(|e| ConnectionError::invalid("invalid_credentials", e.to_string()))?;
    } else if !fields.0.is_empty() {
        return Err(ConnectionError::invalid(
            "invalid_credentials",
            "this connector takes no credentials",
        ));
    }
    let resolved = manifest
        .resolve_variables(variables)
        .map_err(|e| ConnectionError::invalid("invalid_variables", e.to_string()))?;

    let rules = crate::broker::EgressRules::new("check", manifest, &resolved, &[])
        .map_err(|e| ConnectionError::invalid("invalid_variables", e.to_string()))?;
    check_pasted_webhook_url(manifest, scheme, fields, &rules)
}

/// A webhook URL pasted whole as a path key names its host: it must be one the key will be
/// sent to, or the admin's paste says one host while the key would go to another.
fn check_pasted_webhook_url(
    manifest: &nexum_manifest::Manifest,
    scheme: Option<&str>,
    fields: &SecretFields,
    rules: &crate::broker::EgressRules,
) -> ConnectionResult<()> {
    let Some(scheme) = scheme.and_then(|id| manifest.auth_scheme(id)) else {
        return Ok(());
    };
    let is_path_key = matches!(
        scheme.kind,
        AuthKind::ApiKey {
            location: nexum_manifest::ApiKeyLocation::Path,
            ..
        }
    );
    let pasted = fields
        .0
        .get("api_key")
        .and_then(|v| url::Url::parse(v.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    match pasted {
        Some(url) if is_path_key && !rules.credential_bound(&scheme.id, &url) => Err(ConnectionError::invalid(
            "invalid_credentials",
            format!(
                "the pasted webhook URL is for {}, but this connection sends the `{}` key to {}; set the connection's host variable to match",
                url.host_str().unwrap_or_default(),
                scheme.id,
                scheme.hosts.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// Change a connection's name, variables or credentials in `workspace_id` as `actor`.
/// Returns the stored connection afterwards, with its installation.
pub async fn update(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    id: &ConnectionId,
    change: ConnectionChange,
) -> ConnectionResult<(ConnectionRecord, InstallationRecord)> {
    let fields = change.credentials;
    let record = state
        .db
        .connection(workspace_id, id)
        .await?
        .ok_or(ConnectionError::NotFound("connection"))?;
    let installation = state
        .db
        .installation(workspace_id, &record.installation_id)
        .await?
        .ok_or(ConnectionError::NotFound("connector installation"))?;
    let manifest = parse_manifest(&installation)?;
    let name = change.name.unwrap_or_else(|| record.name.clone());
    check_name(&name)?;
    let stored_variables = stored_variables(&record)?;
    let variables = match change.variables {
        Some(v) => v,
        None => stored_variables.clone(),
    };
    match &fields {
        Some(f) => {
            check_typed_secrets(&manifest, record.auth_scheme.as_deref(), f)?;
            check_credentials_and_variables(&manifest, record.auth_scheme.as_deref(), f, &variables)?
        }
        None => check_credentials_and_variables(&manifest, None, &SecretFields::default(), &variables)?,
    }
    let variables = frozen_variables(&manifest, &variables)?;
    // A stored secret was entered for the hosts it is bound to now. Moving those hosts (by
    // changing a variable) without re-entering the secret would let whoever can edit the
    // connection send an existing secret somewhere new.
    if fields.is_none() && record.auth_scheme.is_some() {
        let old = frozen_variables(&manifest, &stored_variables)?;
        if credential_hosts(&manifest, &old)? != credential_hosts(&manifest, &variables)? {
            return Err(ConnectionError::invalid(
                "credentials_required",
                "this change moves where the stored credentials are sent; send `credentials` again with it",
            ));
        }
    }
    let variables_json =
        serde_json::to_string(&variables).map_err(|_| ConnectionError::Corrupt("connection variables"))?;
    // Variables and secret change together or not at all, and only if nobody changed the
    // variables since they were read above: otherwise, between two writes (or two racing
    // PATCHes), one host could receive the secret entered for another.
    let settings = ConnectionSettings {
        name: name.trim(),
        variables: &variables_json,
        expected_variables: &record.variables,
    };
    let sealed = match &fields {
        Some(f) if record.auth_scheme.is_some() => Some(state.vault.seal_fields(workspace_id, id.as_str(), f)?),
        _ => None,
    };
    let is_oauth = record
        .auth_scheme
        .as_deref()
        .and_then(|s| manifest.auth_scheme(s))
        .is_some_and(|s| matches!(s.kind, AuthKind::OAuth2(_)));
    if let (Some(sealed), Some(f), true) = (&sealed, &fields, is_oauth) {
        // New tokens replace the old under the refresh lock, with their expiry, and give
        // the connection a fresh start (failures reset, `expired` or `exhausted` left).
        let _local = state.oauth.lock(id.as_str()).await;
        let lock = state.db.lock_for_refresh(workspace_id, id).await?;
        lock.finish(crate::store::TokenUpdate {
            secret: Some(sealed),
            token_expires_at: crate::oauth::expires_at_of(f),
            refresh_failures: 0,
            status: next_status(record.status, Observation::Reconnected),
            last_error: None,
            failed_event: None,
            settings: Some(settings),
            expected_variables: None,
        })
        .await
        .map_err(changed)?;
    } else if !state
        .db
        .update_connection_settings(workspace_id, id, &settings, sealed.as_ref())
        .await?
    {
        return Err(changed(crate::store::StoreError::Changed));
    }
    if sealed.is_some() {
        state
            .db
            .append_audit(&[AuditEntry::new(workspace_id, actor, "secret.update", id.as_str(), "")])
            .await?;
    }
    state.connections.evict(id);
    let record = state
        .db
        .connection(workspace_id, id)
        .await?
        .ok_or(ConnectionError::NotFound("connection"))?;
    Ok((record, installation))
}

/// A compare-and-set that lost: the connection changed (or went away) since it was read.
fn changed(e: crate::store::StoreError) -> ConnectionError {
    match e {
        crate::store::StoreError::Changed => ConnectionError::Changed,
        other => other.into(),
    }
}

/// Delete a connection: disconnects it and wipes its secret, as `actor`.
pub async fn delete(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    id: &ConnectionId,
) -> ConnectionResult<()> {
    if !state.db.delete_connection(workspace_id, id).await? {
        return Err(ConnectionError::NotFound("connection"));
    }
    state.connections.evict(id);
    state
        .db
        .append_audit(&[AuditEntry::new(workspace_id, actor, "secret.delete", id.as_str(), "")])
        .await?;
    Ok(())
}

/// A connection's stored variables (an unreadable value is a server fault, never `{}`).
pub fn stored_variables(record: &ConnectionRecord) -> ConnectionResult<BTreeMap<String, String>> {
    serde_json::from_str(&record.variables).map_err(|_| ConnectionError::Corrupt("connection variables"))
}
