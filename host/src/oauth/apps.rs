//! Which OAuth client a connection authenticates as: client credentials stored with the
//! connection itself, else the workspace's app for the connector, else the operator's.

use super::{ClientApp, OAuthError};
use crate::ids::WorkspaceId;
use crate::state::AppState;
use crate::store::OPERATOR_OWNER;
use crate::vault::SecretFields;
use nexum_manifest::{AuthScheme, Manifest};
use secrecy::SecretString;
use std::collections::BTreeMap;
use url::Url;

/// Where a connection's app came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppSource {
    /// Client id and secret stored with the connection.
    Connection,
    /// The workspace's registered app.
    Workspace,
    /// The operator's app, shared by every workspace.
    Operator,
}

impl AppSource {
    /// The name recorded with the tokens (`oauth_app`).
    pub fn as_str(self) -> &'static str {
        match self {
            AppSource::Connection => "connection",
            AppSource::Workspace => "workspace",
            AppSource::Operator => "operator",
        }
    }
}

/// The app for a connection of `connector_id` in `workspace_id`.
///
/// The operator's client secret is only ever sent to the token URL the connector declares
/// by default: a workspace that points the connector elsewhere (through a variable) must
/// register its own app, or it could collect the operator's secret.
pub async fn client_app(
    state: &AppState,
    workspace_id: &WorkspaceId,
    connector_id: &str,
    stored: Option<&SecretFields>,
    manifest: &Manifest,
    scheme: &AuthScheme,
    token_url: &Url,
) -> Result<(ClientApp, AppSource), OAuthError> {
    if let Some(fields) = stored
        && let (Some(id), Some(secret)) = (fields.0.get("client_id"), fields.0.get("client_secret"))
    {
        return Ok((
            ClientApp {
                client_id: id.clone(),
                client_secret: SecretString::from(secret.clone()),
            },
            AppSource::Connection,
        ));
    }
    // Tokens were issued to one app: refresh them with that one, even if the workspace has
    // registered (or removed) its own app since.
    let recorded = stored.and_then(|f| f.0.get("oauth_app")).map(String::as_str);
    if recorded != Some(AppSource::Operator.as_str())
        && let Some(app) = open_app(state, workspace_id.as_str(), connector_id).await?
    {
        return Ok((app, AppSource::Workspace));
    }
    if recorded == Some(AppSource::Workspace.as_str()) {
        return Err(OAuthError::AppMissing(connector_id.to_string()));
    }
    if let Some(app) = open_app(state, OPERATOR_OWNER, connector_id).await? {
        let default_url = manifest
            .resolve_variables(&BTreeMap::new())
            .ok()
            .and_then(|vars| super::token_url(manifest, scheme, &vars).ok());
        if default_url.as_ref() != Some(token_url) {
            return Err(OAuthError::Invalid {
                code: "operator_app_not_allowed",
                message: format!(
                    "the operator's OAuth app for `{connector_id}` is only used with the connector's default token URL; register a workspace app (PUT /api/v1/oauth-apps/{connector_id}) to use {}",
                    token_url.origin().ascii_serialization()
                ),
            });
        }
        return Ok((app, AppSource::Operator));
    }
    Err(OAuthError::AppMissing(connector_id.to_string()))
}

async fn open_app(state: &AppState, owner: &str, connector_id: &str) -> Result<Option<ClientApp>, OAuthError> {
    let Some(record) = state.db.oauth_app(owner, connector_id).await? else {
        return Ok(None);
    };
    let Some(sealed) = state.db.secret_of(owner, &record.id).await? else {
        return Ok(None);
    };
    let fields = state.vault.open_fields(&sealed)?;
    let secret = fields.0.get("client_secret").cloned().unwrap_or_default();
    Ok(Some(ClientApp {
        client_id: record.client_id,
        client_secret: SecretString::from(secret),
    }))
}
