//! Creating a webhook endpoint: the URL is checked against the host's address policy (and
//! again at every delivery), event types against the catalogue, and a fresh `whsec_` secret
//! is sealed in the vault and shown once.

use super::signing::WebhookSecret;
use crate::ids::WorkspaceId;
use crate::state::AppState;
use crate::store::{AuditEntry, EndpointRecord};
use crate::vault::SecretFields;
use std::collections::BTreeMap;

/// Event types an endpoint receives only when it names them (high volume).
pub const OPT_IN_EVENT_TYPES: &[&str] = &["action.executed"];

/// Why an endpoint was not created.
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
    /// Database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Vault.
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
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
}

/// A created endpoint and its signing secret (shown once).
pub struct CreatedEndpoint {
    /// The stored endpoint.
    pub record: EndpointRecord,
    /// Its signing secret.
    pub secret: WebhookSecret,
}

/// Create an endpoint in `workspace_id` as `actor`.
pub async fn create(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    new: NewEndpoint,
) -> Result<CreatedEndpoint, WebhookError> {
    let url = state
        .outbound
        .check_url(new.url.trim())
        .map_err(|e| WebhookError::Invalid {
            code: "invalid_url",
            message: e.to_string(),
        })?;
    if new.description.len() > 500 {
        return Err(WebhookError::Invalid {
            code: "invalid_description",
            message: "description must be at most 500 characters".into(),
        });
    }
    if let Some(bad) = new
        .event_types
        .iter()
        .find(|t| t.is_empty() || t.len() > 100 || t.contains(',') || t.contains(char::is_whitespace))
    {
        return Err(WebhookError::Invalid {
            code: "invalid_event_type",
            message: format!("`{bad}` is not an event type"),
        });
    }
    let secret = WebhookSecret::generate().map_err(|e| WebhookError::Invalid {
        code: "randomness",
        message: e.to_string(),
    })?;
    let record = state
        .db
        .insert_webhook_endpoint(workspace_id, url.as_str(), new.description.trim(), &new.event_types)
        .await?;
    let fields = SecretFields(BTreeMap::from([("secret".to_string(), secret.expose().to_string())]));
    let sealed = state.vault.seal_fields(workspace_id, &record.id, &fields)?;
    state.db.put_secret(&sealed).await?;
    state
        .db
        .append_audit(&[AuditEntry::new(
            workspace_id,
            actor,
            "secret.create",
            &record.id,
            "webhook endpoint",
        )])
        .await?;
    Ok(CreatedEndpoint { record, secret })
}
