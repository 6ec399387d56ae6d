//! Auth schemes: what secret a connection holds, where the host injects it, and which hosts
//! it may ever be sent to.

use super::HostTemplate;
use serde::Serialize;
use std::collections::BTreeMap;

/// One way a connection can authenticate, declared as an `[[auth]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthScheme {
    /// Scheme id the connector asks for (`credentials.get(id)`), e.g. `bot_token`.
    pub id: String,
    /// What the admin is asked for, e.g. "Bot User OAuth Token".
    pub label: String,
    /// The kind of secret and where the host puts it.
    #[serde(flatten)]
    pub kind: AuthKind,
    /// The only hosts this secret is ever sent to.
    pub hosts: Vec<HostTemplate>,
    /// Whether the connector may compute HMAC-SHA256 with this secret (`hmac = true`, e.g.
    /// for a provider's request-signing scheme). Off by default: a MAC under a password or
    /// token sent to another host would let that host attack the secret offline.
    pub hmac: bool,
}

/// The kind of secret and its injection point.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthKind {
    /// A static key sent in a header (`prefix` + key) or a query parameter.
    ApiKey {
        /// Header or query.
        #[serde(rename = "in")]
        location: ApiKeyLocation,
        /// Header or parameter name, e.g. `X-Api-Key` or `api_key`.
        name: String,
        /// Prepended to the key in a header, e.g. `Token `.
        prefix: String,
    },
    /// A token sent as `Authorization: Bearer <token>`.
    Bearer,
    /// A username and password sent as HTTP Basic auth.
    Basic,
    /// An OAuth2 access token sent as `Authorization: Bearer <token>`, kept fresh by the host.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Endpoints),
    /// A shared secret the host never sends anywhere: its only use is an HMAC computed through
    /// the credential handle (signing outgoing webhooks). `type = "secret"`, no `hosts`.
    Secret,
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyLocation {
    /// A request header.
    Header,
    /// A URL query parameter.
    Query,
    /// The end of the URL path: the key is appended to a request whose path is exactly the
    /// scheme's `name` (a prefix such as `/services/`). For providers whose webhook URL is
    /// the secret (Slack incoming webhooks, Discord channel webhooks).
    Path,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// HTTP Basic with client id and secret (`client_secret_basic`).
    Basic,
    /// Client id and secret in the form body (`client_secret_post`).
    Body,
}

/// An OAuth2 provider's endpoints and options.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OAuth2Endpoints {
    /// Authorization endpoint; absent for client-credentials-only providers.
    pub authorization_url: Option<String>,
    /// Token endpoint.
    pub token_url: String,
    /// Scopes requested by default.
    pub scopes: Vec<String>,
    /// Separator used to join scopes (`" "` per RFC 6749; some providers use `,`).
    pub scope_separator: String,
    /// Use PKCE (S256) in the authorization-code flow.
    pub pkce: bool,
    /// How to authenticate at the token endpoint.
    pub token_auth_method: TokenAuthMethod,
    /// Extra query parameters for the authorization request.
    pub extra_authorize_params: BTreeMap<String, String>,
    /// Extra form parameters for token requests.
    pub extra_token_params: BTreeMap<String, String>,
    /// Connection variables the token response sets (variable → top-level field), e.g.
    /// Salesforce's `instance_url`: the org's own API host, known only after sign-in. The
    /// provider's value overrides any given one and is checked like any variable value.
    pub token_response_variables: BTreeMap<String, String>,
    /// Refresh proactively when the token expires within this many seconds.
    pub refresh_margin_secs: u64,
}

impl OAuth2Endpoints {
    /// Whether this provider uses the client-credentials grant (no authorization URL, so no
    /// user consent step): server-to-server providers.
    pub fn uses_client_credentials(&self) -> bool {
        self.authorization_url.is_none()
    }

    /// The token endpoint for a connection with these variable values.
    pub fn token_url_for(&self, variables: &BTreeMap<String, String>) -> Result<url::Url, super::ManifestError> {
        super::template::resolve_url(&self.token_url, variables, "token_url")
    }

    /// The authorization endpoint for a connection with these variable values.
    pub fn authorization_url_for(
        &self,
        variables: &BTreeMap<String, String>,
    ) -> Result<Option<url::Url>, super::ManifestError> {
        self.authorization_url
            .as_deref()
            .map(|u| super::template::resolve_url(u, variables, "authorization_url"))
            .transpose()
    }

    /// The scopes joined with the provider's separator.
    pub fn joined_scopes(&self, scopes: &[String]) -> String {
        scopes.join(&self.scope_separator)
    }
}

impl AuthScheme {
    /// The request header this scheme writes, lower-case (`authorization` or the API key
    /// header). A connector may never set it itself.
    pub fn injected_header(&self) -> Option<String> {
        match &self.kind {
            AuthKind::ApiKey {
                location: ApiKeyLocation::Header,
                name,
                ..
            } => Some(name.to_ascii_lowercase()),
            AuthKind::ApiKey {
                location: ApiKeyLocation::Query | ApiKeyLocation::Path,
                ..
            }
            | AuthKind::Secret => None,
            AuthKind::Bearer | AuthKind::Basic | AuthKind::OAuth2(_) => Some("authorization".into()),
        }
    }

    /// The credential fields an admin must supply for this scheme.
    pub fn secret_fields(&self) -> &'static [&'static str] {
        match self.kind {
            AuthKind::ApiKey { .. } => &["api_key"],
            AuthKind::Bearer => &["token"],
            AuthKind::Basic => &["username", "password"],
            AuthKind::OAuth2(_) => &["access_token"],
            AuthKind::Secret => &["secret"],
        }
    }
}

/// The longest key a path-injected scheme accepts.
pub const MAX_PATH_KEY_CHARS: usize = 512;

/// The key to store for a path-injected scheme (`in = "path"`, `prefix` its `name`): `value`
/// itself when it is already the part after the prefix (`T000/B000/XXXX`), or the part after
/// the prefix when an admin pasted the whole URL (`https://hooks.slack.com/services/T000/…`).
/// `None` when it is neither: only unreserved characters in non-empty segments separated by
/// `/`, no `.` or `..` segment, so appending it can never leave the prefix.
pub fn path_key(prefix: &str, value: &str) -> Option<String> {
    let value = value.trim();
    let key = if value.starts_with("https://") || value.starts_with("http://") {
        let url = url::Url::parse(value).ok()?;
        if url.query().is_some() || url.fragment().is_some() {
            return None;
        }
        url.path().strip_prefix(prefix)?.to_string()
    } else {
        value
            .strip_prefix(prefix.trim_start_matches('/'))
            .unwrap_or(value)
            .to_string()
    };
    let valid = !key.is_empty()
        && key.len() <= MAX_PATH_KEY_CHARS
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        });
    valid.then_some(key)
}
