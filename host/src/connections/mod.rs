//! Connections: an installed connector plus one account's credentials (sealed in the vault)
//! and non-secret variables.
//!
//! - [`resolve`]: from a connection id to something the runtime can call (store → vault →
//!   runtime), cached;
//! - [`freshness`]: before a call, an OAuth2 token about to expire is refreshed, and after an
//!   upstream 401 it is renewed once;
//! - [`calls`]: running an action or test-connection on a connection, with the bookkeeping
//!   (usage, audit, metrics) and the status it implies;
//! - [`health`]: test-connection as a health check;
//! - [`manage`]: create, update and delete, with credential and variable validation;
//! - [`status`]: the one function that decides a connection's status.

pub mod calls;
pub mod freshness;
pub mod health;
pub mod manage;
pub mod resolve;
pub mod status;

pub use calls::{ActionRun, run_action};
pub use freshness::{ConnectionRefresher, ensure_fresh};
pub use health::{HealthReport, check_health};
pub use resolve::{ConnectionCache, Resolved, load_connector, resolve};
pub use status::{ConnectionStatus, Observation, next_status};

use crate::oauth::OAuthError;
use crate::store::StoreError;
use crate::vault::VaultError;

/// How long a call waits for one of its workspace's call slots before 429 `workspace_busy`.
pub const CALL_SLOT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a connection operation failed. Never carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The connection (or what it points at) is not in this workspace.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The request or the stored connection cannot be served as asked; `code` is stable.
    #[error("{message}")]
    Invalid {
        /// Stable problem code.
        code: &'static str,
        /// What to do about it.
        message: String,
    },
    /// The stored credentials did not decrypt (wrong or missing master key, tampering).
    #[error("the connection's stored credentials could not be decrypted; reconnect it")]
    CredentialsUnreadable(#[source] VaultError),
    /// A stored value could not be read back; a server fault.
    #[error("stored {0} is unreadable")]
    Corrupt(&'static str),
    /// The connector component could not be compiled or loaded; a server fault.
    #[error("the connector could not be loaded")]
    Load(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The workspace already runs its share of connector calls.
    #[error(transparent)]
    WorkspaceBusy(#[from] crate::workspaces::fair_share::WorkspaceBusy),
    /// The connection was changed (or deleted) by another request since this one read it.
    #[error("the connection was changed by another request meanwhile; read it again and retry")]
    Changed,
    /// The connector's test-connection reported a failure.
    #[error("{0}")]
    TestFailed(String),
    /// The OAuth side (token refresh, provider) failed.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Vault (sealing).
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl ConnectionError {
    /// A 422-class error with a stable code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    /// Whether this is the server's fault rather than the request's or the account's.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Store(_)
                | Self::Corrupt(_)
                | Self::Load(_)
                | Self::Vault(_)
                | Self::CredentialsUnreadable(_)
                | Self::OAuth(OAuthError::Store(_) | OAuthError::Vault(_))
        )
    }

    /// A message safe to store as a connection's `last_error` or show to its admin: server
    /// faults are logged here and described generically.
    pub fn public_message(&self) -> String {
        if matches!(self, Self::CredentialsUnreadable(_)) {
            return self.to_string();
        }
        if self.is_internal() {
            tracing::error!(error = %crate::error::cause_chain(self), "connection operation failed");
            return "the server failed; see its log".into();
        }
        self.to_string()
    }

    /// Whether the connection (or what it needs) is simply not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_) | Self::OAuth(OAuthError::NotFound(_)))
    }
}

/// Result alias for connection operations.
pub type ConnectionResult<T> = Result<T, ConnectionError>;
