//! What is sealed in the vault for each endpoint: its signing secret, the previous secret
//! while a rotation's grace period runs (deliveries carry both signatures until then), and
//! the values of its custom headers (which may carry a receiver's credentials).

use super::signing::WebhookSecret;
use crate::ids::WorkspaceId;
use crate::state::AppState;
use crate::store::SecretRecord;
use crate::vault::{SecretFields, VaultError};
use std::collections::BTreeMap;

const CURRENT: &str = "secret";
const PREVIOUS: &str = "previous";
const PREVIOUS_UNTIL: &str = "previous_until";
const HEADER_PREFIX: &str = "header:";

/// An endpoint's sealed material, opened.
#[derive(Clone)]
pub struct EndpointSecrets {
    /// Signs every delivery.
    pub current: WebhookSecret,
    /// The secret before the last rotation and the unix ms until which it still signs.
    pub previous: Option<(WebhookSecret, i64)>,
    /// Custom header name (lower case) → value, sent with every delivery.
    pub headers: BTreeMap<String, String>,
}

impl Drop for EndpointSecrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for value in self.headers.values_mut() {
            value.zeroize();
        }
    }
}

impl EndpointSecrets {
    /// A fresh secret and these headers.
    pub fn new(current: WebhookSecret, headers: BTreeMap<String, String>) -> Self {
        Self {
            current,
            previous: None,
            headers,
        }
    }

    /// The previous secret, if it still signs at `now_ms`.
    pub fn previous_at(&self, now_ms: i64) -> Option<&WebhookSecret> {
        self.previous
            .as_ref()
            .filter(|(_, until)| now_ms < *until)
            .map(|(secret, _)| secret)
    }

    /// Seal for `endpoint_id` of `workspace_id`.
    pub fn seal(
        &self,
        state: &AppState,
        workspace_id: &WorkspaceId,
        endpoint_id: &str,
    ) -> Result<SecretRecord, VaultError> {
        let mut fields = BTreeMap::from([(CURRENT.to_string(), self.current.expose().to_string())]);
        if let Some((previous, until)) = &self.previous {
            fields.insert(PREVIOUS.into(), previous.expose().to_string());
            fields.insert(PREVIOUS_UNTIL.into(), until.to_string());
        }
        for (name, value) in &self.headers {
            fields.insert(format!("{HEADER_PREFIX}{name}"), value.clone());
        }
        state
            .vault
            .seal_fields(workspace_id, endpoint_id, &SecretFields(fields))
    }

    /// Open an endpoint's sealed record; `None` when it is missing or unreadable.
    pub async fn load(state: &AppState, workspace_id: &WorkspaceId, endpoint_id: &str) -> Option<Self> {
        let sealed = state.db.secret_of(workspace_id, endpoint_id).await.ok()??;
        let fields = state.vault.open_fields(&sealed).ok()?;
        let current = WebhookSecret::parse(fields.0.get(CURRENT)?).ok()?;
        let previous = match (fields.0.get(PREVIOUS), fields.0.get(PREVIOUS_UNTIL)) {
            (Some(p), Some(until)) => Some((WebhookSecret::parse(p).ok()?, until.parse().ok()?)),
            _ => None,
        };
        let headers = fields
            .0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(HEADER_PREFIX)?.to_string(), v.clone())))
            .collect();
        Some(Self {
            current,
            previous,
            headers,
        })
    }
}
