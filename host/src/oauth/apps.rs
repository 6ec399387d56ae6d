//! Which OAuth client a connection authenticates as: client credentials stored with the
//! connection itself, else the workspace's app for the connector, else the operator's (only
//! where its binding holds).

use super::{ClientApp, OAuthError};
use crate::ids::WorkspaceId;
use crate::state::AppState;
use crate::store::{OAuthAppRecord, OPERATOR_OWNER};
use crate::vault::SecretFields;
use secrecy::SecretString;
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

/// What choosing a connection's app depends on.
#[derive(Debug, Clone, Copy)]
pub struct AppLookup<'a> {
    /// The connection's workspace.
    pub workspace_id: &'a WorkspaceId,
    /// The installation's connector id.
    pub connector_id: &'a str,
    /// The installation's signer: a trusted key id, or `unsigned`.
    pub signer: &'a str,
    /// Fields stored with the connection (its own client credentials, the app its tokens
    /// were issued to).
    pub stored: Option<&'a SecretFields>,
    /// Where the client secret would be sent.
    pub token_url: &'a Url,
    /// Whether the grant is client credentials (a token for the app's own account).
    pub client_credentials: bool,
}

/// The app for a connection.
///
/// The operator's app is shared by every workspace, so it is used only where it cannot
/// leak: never for the client-credentials grant (that token is the operator's own account
/// at the provider), only toward the token endpoint origin it was registered for, and only
/// for a connector signed by the publisher key it was registered for. A tenant's connector
/// with the same id, signed by someone else or pointing elsewhere, never gets it.
pub async fn client_app(state: &AppState, lookup: AppLookup<'_>) -> Result<(ClientApp, AppSource), OAuthError> {
    let connector_id = lookup.connector_id;
    if let Some(fields) = lookup.stored
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
    let recorded = lookup.stored.and_then(|f| f.0.get("oauth_app")).map(String::as_str);
    if recorded != Some(AppSource::Operator.as_str())
        && let Some((app, _)) = open_app(state, lookup.workspace_id.as_str(), connector_id).await?
    {
        return Ok((app, AppSource::Workspace));
    }
    if recorded == Some(AppSource::Workspace.as_str()) || lookup.client_credentials {
        return Err(OAuthError::AppMissing(connector_id.to_string()));
    }
    let Some((app, record)) = open_app(state, OPERATOR_OWNER, connector_id).await? else {
        return Err(OAuthError::AppMissing(connector_id.to_string()));
    };
    let origin = lookup.token_url.origin().ascii_serialization();
    // The signer must also still be trusted by this host (a key removed from the trust
    // list takes the operator's app away from what it signed).
    let bound = record.token_origin.as_deref() == Some(origin.as_str())
        && record.signer.as_deref() == Some(lookup.signer)
        && lookup.signer != "unsigned"
        && state.trust.trusts(lookup.signer);
    if !bound {
        return Err(OAuthError::Invalid {
            code: "operator_app_not_allowed",
            message: format!(
                "the operator's OAuth app for `{connector_id}` is only used by the connector signed by the key it was registered for, with its token endpoint on the origin it was registered for; register a workspace app (PUT /api/v1/oauth-apps/{connector_id}) to use {origin}"
            ),
        });
    }
    Ok((app, AppSource::Operator))
}

async fn open_app(
    state: &AppState,
    owner: &str,
    connector_id: &str,
) -> Result<Option<(ClientApp, OAuthAppRecord)>, OAuthError> {
    let Some(record) = state.db.oauth_app(owner, connector_id).await? else {
        return Ok(None);
    };
    let Some(sealed) = state.db.secret_of(owner, &record.id).await? else {
        return Ok(None);
    };
    let fields = state.vault.open_fields(&sealed)?;
    let secret = fields.0.get("client_secret").cloned().unwrap_or_default();
    Ok(Some((
        ClientApp {
            client_id: record.client_id.clone(),
            client_secret: SecretString::from(secret),
        },
        record,
    )))
}
