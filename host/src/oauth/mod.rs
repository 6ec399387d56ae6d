//! OAuth2 connections: keeping the broker's secret fresh.
//!
//! - [`provider`]: the token endpoint (code exchange, refresh, client credentials), policed
//!   and scrubbed;
//! - [`apps`]: which OAuth client (app) a connection uses: its own (client credentials), its
//!   workspace's, or the operator's;
//! - [`flow`]: the authorization-code flow with single-use state and PKCE (S256);
//! - [`refresh`]: single-flight refresh (in-process lock, plus a row lock on PostgreSQL),
//!   re-reading under the lock, rotation, failure accounting and events.
//!
//! Tokens live sealed in the vault like any other secret; nothing here logs or returns one.

pub mod apps;
pub mod flow;
pub mod provider;
pub mod refresh;

pub use provider::{ClientApp, IssuedTokens, ProviderError, TokenClient};
pub use refresh::{RefreshOutcome, RefreshReason, refresh};

use crate::store::{StoreError, now_ms};
use crate::vault::{SecretFields, VaultError};
use nexum_manifest::{AuthScheme, Manifest, OAuth2Endpoints};
use secrecy::ExposeSecret;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use url::Url;

/// How long an authorization flow's state is accepted.
pub const FLOW_TTL: Duration = Duration::from_secs(600);

/// The OAuth side of a host: its token client, per-connection refresh locks and settings.
pub struct OAuthService {
    /// Token endpoint client (address-policed).
    pub tokens: TokenClient,
    /// Failures before `refresh_exhausted`.
    pub max_refresh_failures: u32,
    /// Default return URL after a flow.
    pub return_url: Option<String>,
    /// Origins a flow's `return_url` may point at (besides the default's).
    pub return_origins: Vec<String>,
    /// Refreshes that may hold a database lock at once (well below the pool size).
    pub(crate) refresh_slots: tokio::sync::Semaphore,
    /// Each workspace's share of the refresh slots.
    pub(crate) refresh_share: crate::workspaces::fair_share::FairShare,
    public_url: OnceLock<String>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl OAuthService {
    /// A service whose token requests obey `policy`.
    pub fn new(
        tokens: TokenClient,
        max_refresh_failures: u32,
        public_url: Option<String>,
        return_url: Option<String>,
        return_origins: Vec<String>,
        concurrent_refreshes: usize,
        refreshes_per_workspace: usize,
    ) -> Self {
        let cell = OnceLock::new();
        if let Some(u) = public_url {
            let _ = cell.set(u);
        }
        Self {
            tokens,
            max_refresh_failures,
            return_url,
            return_origins,
            refresh_slots: tokio::sync::Semaphore::new(concurrent_refreshes.max(1)),
            refresh_share: crate::workspaces::fair_share::FairShare::new(refreshes_per_workspace),
            public_url: cell,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// When no public URL is configured, remember the address the server listens on (the
    /// redirect URI is built from it).
    pub fn listening_on(&self, addr: std::net::SocketAddr) {
        if self.public_url.get().is_none() && addr.ip().is_unspecified() {
            tracing::warn!(
                "NEXUM_PUBLIC_URL is not set and the server listens on all interfaces; set it so OAuth providers redirect to a reachable, stable URL"
            );
        }
        let _ = self.public_url.set(format!("http://{addr}"));
    }

    /// Nexum's link that starts a flow in the user's browser: it binds the flow to that
    /// browser, then sends it on to the provider.
    pub fn begin_url(&self, state_token: &str) -> String {
        let callback = self.redirect_uri();
        let base = callback.trim_end_matches("/callback");
        let mut url = format!("{base}/begin?state=");
        url.extend(url::form_urlencoded::byte_serialize(state_token.as_bytes()));
        url
    }

    /// Whether the public URL is https (browser-binding cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.redirect_uri().starts_with("https://")
    }

    /// The redirect URI registered with providers: `<public_url>/api/v1/oauth/callback`.
    pub fn redirect_uri(&self) -> String {
        let base = self
            .public_url
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1:8080");
        format!("{base}/api/v1/oauth/callback")
    }

    /// This process's refresh lock for one connection (single-flight across tasks).
    pub(crate) async fn lock(&self, connection_id: &str) -> LocalRefreshGuard<'_> {
        let mutex = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(connection_id.to_string())
            .or_default()
            .clone();
        let guard = mutex.clone().lock_owned().await;
        LocalRefreshGuard {
            service: self,
            id: connection_id.to_string(),
            mutex,
            guard: Some(guard),
        }
    }
}

/// Held while a connection refreshes in this process; forgets idle locks on drop.
pub(crate) struct LocalRefreshGuard<'a> {
    service: &'a OAuthService,
    id: String,
    mutex: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for LocalRefreshGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self.service.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: ours and the map's. Anyone else waiting holds a third.
        if Arc::strong_count(&self.mutex) == 2 {
            locks.remove(&self.id);
        }
    }
}

/// Why an OAuth operation failed. Never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The connection, installation or flow is not in this workspace.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request cannot be served as asked.
    #[error("{message}")]
    Invalid {
        /// Problem code.
        code: &'static str,
        /// What to do about it.
        message: String,
    },
    /// No OAuth app (client id and secret) is registered for the connector.
    #[error(
        "no OAuth app is registered for connector `{0}`: PUT /api/v1/oauth-apps/{0} with the client id and secret from the provider"
    )]
    AppMissing(String),
    /// The token endpoint refused or failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Automatic refresh stopped after too many failures.
    #[error(
        "automatic token refresh stopped after {0} consecutive failures; reconnect the account or POST /api/v1/connections/{{id}}/refresh"
    )]
    Exhausted(i64),
    /// The access token expired and there is no refresh token.
    #[error("the access token expired and the provider issued no refresh token; reconnect the account")]
    Expired,
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Vault.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// The OAuth2 endpoints of `scheme`, or a 422 when it is not an OAuth2 scheme.
pub fn endpoints_of(scheme: &AuthScheme) -> Result<&OAuth2Endpoints, OAuthError> {
    match &scheme.kind {
        nexum_manifest::AuthKind::OAuth2(e) => Ok(e),
        _ => Err(OAuthError::Invalid {
            code: "not_oauth2",
            message: format!("auth scheme `{}` does not use OAuth2", scheme.id),
        }),
    }
}

/// The token URL for these variables. The provider receives the client secret and refresh
/// token there, so it must be one of the hosts the scheme's tokens are bound to.
pub fn token_url(
    manifest: &Manifest,
    scheme: &AuthScheme,
    variables: &BTreeMap<String, String>,
) -> Result<Url, OAuthError> {
    let endpoints = endpoints_of(scheme)?;
    let invalid = |message: String| OAuthError::Invalid {
        code: "invalid_variables",
        message,
    };
    let url = endpoints.token_url_for(variables).map_err(|e| invalid(e.to_string()))?;
    let rules =
        crate::broker::EgressRules::new("check", manifest, variables, &[]).map_err(|e| invalid(e.to_string()))?;
    if !rules.credential_bound(&scheme.id, &url) {
        return Err(OAuthError::Invalid {
            code: "token_url_not_bound",
            message: format!(
                "the token URL {} is not among the hosts auth scheme `{}` is bound to; the connector's manifest must list it",
                url.origin().ascii_serialization(),
                scheme.id
            ),
        });
    }
    Ok(url)
}

/// Whether a token expiring at `expires_at` should be refreshed now: within the provider's
/// margin, but never more than half its lifetime early (so short-lived tokens are not
/// refreshed on every call).
pub fn needs_refresh(expires_at: Option<i64>, issued_at: Option<i64>, margin_secs: u64, now: i64) -> bool {
    let Some(expires_at) = expires_at else { return false };
    let mut margin = i64::try_from(margin_secs).unwrap_or(i64::MAX).saturating_mul(1000);
    if let Some(issued) = issued_at {
        margin = margin.min(expires_at.saturating_sub(issued).max(0) / 2);
    }
    expires_at.saturating_sub(now) <= margin
}

/// The sealed fields of a token set, keeping the connection's own client credentials.
pub fn token_fields(issued: &IssuedTokens, previous: Option<&SecretFields>) -> SecretFields {
    let now = now_ms();
    let mut fields = BTreeMap::new();
    if let Some(prev) = previous {
        for key in ["client_id", "client_secret", "refresh_token", "oauth_app"] {
            if let Some(v) = prev.0.get(key) {
                fields.insert(key.to_string(), v.clone());
            }
        }
    }
    fields.insert("access_token".into(), issued.access_token.expose_secret().to_string());
    if let Some(rt) = &issued.refresh_token {
        fields.insert("refresh_token".into(), rt.expose_secret().to_string());
    }
    fields.insert("issued_at".into(), now.to_string());
    if let Some(lifetime) = issued.expires_in {
        let ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2);
        fields.insert("expires_at".into(), now.saturating_add(ms).to_string());
    }
    SecretFields(fields)
}

/// The access-token expiry recorded in sealed fields.
pub fn expires_at_of(fields: &SecretFields) -> Option<i64> {
    fields.0.get("expires_at").and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn absurd_expiry_values_do_not_overflow() {
        // An imported token may claim any expiry; none may panic the sweep.
        assert!(super::needs_refresh(Some(i64::MIN), Some(i64::MAX), 60, 1_000));
        assert!(!super::needs_refresh(Some(i64::MAX), Some(i64::MIN), 60, 1_000));
        assert!(super::needs_refresh(Some(i64::MIN), None, u64::MAX, i64::MAX));
        // A margin beyond i64 must mean "always early", not wrap to a negative margin.
        let now = 1_700_000_000_000;
        assert!(super::needs_refresh(Some(now + 86_400_000), None, u64::MAX, now));
    }

    use super::needs_refresh;

    #[test]
    fn refresh_is_due_within_the_margin_but_never_earlier_than_half_the_lifetime() {
        let now = 1_000_000;
        // No expiry: never proactively.
        assert!(!needs_refresh(None, None, 300, now));
        // An hour-long token: due in the last five minutes.
        assert!(!needs_refresh(Some(now + 301_000), Some(now - 3_299_000), 300, now));
        assert!(needs_refresh(Some(now + 299_000), Some(now - 3_301_000), 300, now));
        // A two-minute token is not refreshed on every call: due only in its second half.
        assert!(!needs_refresh(Some(now + 90_000), Some(now - 30_000), 300, now));
        assert!(needs_refresh(Some(now + 50_000), Some(now - 70_000), 300, now));
        // Expired is always due.
        assert!(needs_refresh(Some(now - 1), Some(now - 10_000), 300, now));
    }
}
