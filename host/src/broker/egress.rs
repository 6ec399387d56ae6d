//! A connection's resolved egress rules: where it may go, where each credential may go, and
//! which secret values must never come back.

use super::Redactor;
use crate::vault::Credential;
use nexum_manifest::{HostPattern, Manifest, ManifestError};
use std::collections::{BTreeMap, HashMap};
use url::Url;

/// Egress rules for one connection, computed once from its manifest, variables and
/// credentials and reused for every call.
#[derive(Debug, Clone)]
pub struct EgressRules {
    /// Key of the connection's rate limiter (its id).
    pub connection_key: String,
    /// Allowed origins.
    pub allowed_hosts: Vec<HostPattern>,
    /// SMTP servers the connector may send mail through.
    pub mail_servers: Vec<HostPattern>,
    /// For each auth scheme id, the origins its secret may go to.
    pub credential_hosts: HashMap<String, Vec<HostPattern>>,
    /// Headers written by the connector's auth schemes, lower-case.
    pub scheme_headers: Vec<String>,
    /// Outbound requests per second.
    pub requests_per_second: u32,
    /// Scrubs this connection's secret values.
    pub redactor: Redactor,
    /// Non-public ranges the connection's workspace was granted by the operator, on top of
    /// the host's own.
    pub granted_ranges: Vec<ipnet::IpNet>,
}

impl EgressRules {
    /// Resolve the manifest's templates with the connection's variables.
    pub fn new(
        connection_key: impl Into<String>,
        manifest: &Manifest,
        variables: &BTreeMap<String, String>,
        credentials: &[Credential],
    ) -> Result<Self, ManifestError> {
        let allowed_hosts = manifest.resolve_allowed_hosts(variables)?;
        let mail_servers = manifest.resolve_mail_servers(variables)?;
        let mut credential_hosts = HashMap::new();
        let mut scheme_headers = Vec::new();
        for (i, scheme) in manifest.auth.iter().enumerate() {
            let hosts = scheme
                .hosts
                .iter()
                .enumerate()
                .map(|(j, t)| {
                    let field = format!("auth[{i}].hosts[{j}]");
                    let pattern = t.resolve(variables, &field)?;
                    if pattern.is_any_host() {
                        return Err(ManifestError::Invalid {
                            field,
                            reason: "a secret may not be bound to every host".into(),
                        });
                    }
                    Ok(pattern)
                })
                .collect::<Result<Vec<_>, _>>()?;
            credential_hosts.insert(scheme.id.clone(), hosts);
            if let Some(h) = scheme.injected_header() {
                scheme_headers.push(h);
            }
        }
        let redactor = Redactor::new(credentials.iter().flat_map(Credential::redaction_needles).collect());
        Ok(Self {
            connection_key: connection_key.into(),
            allowed_hosts,
            mail_servers,
            credential_hosts,
            scheme_headers,
            requests_per_second: manifest.limits.requests_per_second,
            redactor,
            granted_ranges: Vec::new(),
        })
    }

    /// Whether the connector may reach `url`.
    pub fn allows(&self, url: &Url) -> bool {
        self.allowed_hosts.iter().any(|p| p.matches(url))
    }

    /// Whether the connector may send mail through `server` (an `smtp://` or `smtps://` URL).
    pub fn allows_mail_server(&self, server: &Url) -> bool {
        self.mail_servers.iter().any(|p| p.matches(server))
    }

    /// Whether the secret of auth scheme `scheme` may be sent to `url`.
    pub fn credential_bound(&self, scheme: &str, url: &Url) -> bool {
        self.credential_hosts
            .get(scheme)
            .is_some_and(|hosts| hosts.iter().any(|p| p.matches(url)))
    }

    /// Whether any auth scheme's secret may be sent to `url`: such a host may hold the secret
    /// and echo it even to a request that did not carry it.
    pub fn bound_to_any_credential(&self, url: &Url) -> bool {
        self.credential_hosts.values().flatten().any(|p| p.matches(url))
    }
}
