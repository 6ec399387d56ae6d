//! A connection as the runtime sees it: resolved variables, credentials and egress rules.

use crate::broker::EgressRules;
use crate::vault::Credential;
use nexum_marketplace::manifest::{Manifest, ManifestError};
use std::collections::BTreeMap;

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
        })
    }
}
