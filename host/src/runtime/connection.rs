//! A connection as the runtime sees it: resolved variables, credentials and egress rules.

use crate::broker::EgressRules;
use crate::vault::Credential;
use nexum_manifest::{Manifest, ManifestError};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Renews a connection's credentials when an upstream rejects them (an OAuth2 access token
/// revoked or expired early). Implemented by the host's OAuth service.
pub trait CredentialRefresher: Send + Sync + std::fmt::Debug {
    /// The upstream answered 401 to a request carrying `stale`'s credential. Return the
    /// connection with a renewed credential, or `None` when it cannot be renewed (the 401
    /// then goes back to the connector as it was).
    fn refresh_after_unauthorized<'a>(
        &'a self,
        stale: &'a Connection,
    ) -> Pin<Box<dyn Future<Output = Option<Arc<Connection>>> + Send + 'a>>;
}

/// Everything one connection brings to a call. Build it once and share it (`Arc`) across
/// calls: its egress rules and rate limiter key are per connection.
#[derive(Debug)]
pub struct Connection {
    /// Connection id (also the rate-limiter key).
    pub id: String,
    /// Variable values, defaults applied.
    pub variables: BTreeMap<String, String>,
    /// Credentials, at most one per auth scheme.
    pub credentials: Vec<Credential>,
    /// Where this connection's requests and secrets may go.
    pub egress: EgressRules,
    /// Renews OAuth2 credentials after an upstream 401 (absent for static secrets).
    pub refresher: Option<Arc<dyn CredentialRefresher>>,
}

impl Connection {
    /// Resolve `variables` against the manifest and compute the egress rules.
    pub fn new(
        id: impl Into<String>,
        manifest: &Manifest,
        variables: &BTreeMap<String, String>,
        credentials: Vec<Credential>,
    ) -> Result<Self, ManifestError> {
        let id = id.into();
        let variables = manifest.resolve_variables(variables)?;
        let egress = EgressRules::new(id.clone(), manifest, &variables, &credentials)?;
        Ok(Self {
            id,
            variables,
            credentials,
            egress,
            refresher: None,
        })
    }

    /// Let the connection also reach the non-public `ranges` its workspace was granted.
    pub fn with_granted_ranges(mut self, ranges: Vec<ipnet::IpNet>) -> Self {
        self.egress.granted_ranges = ranges;
        self
    }

    /// Attach a refresher (OAuth2 connections).
    pub fn with_refresher(mut self, refresher: Arc<dyn CredentialRefresher>) -> Self {
        self.refresher = Some(refresher);
        self
    }
}
