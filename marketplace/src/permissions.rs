//! What a connector may do, as an admin reviews and accepts it, and the diff between two
//! versions: an upgrade that widens permissions needs the admin's explicit acceptance.

use nexum_manifest::{AuthKind, Manifest};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A connector's permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Outbound host patterns (as written; templates resolve per connection).
    pub allowed_hosts: BTreeSet<String>,
    /// SMTP servers the connector may send mail through (as written).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub mail_servers: BTreeSet<String>,
    /// Auth schemes: id → `type` plus the hosts the secret may go to.
    pub auth: BTreeMap<String, AuthGrant>,
    /// Requested memory cap (MiB).
    pub memory_mb: u32,
    /// Requested deadline (ms).
    pub timeout_ms: u64,
    /// Requested outbound rate.
    pub requests_per_second: u32,
    /// Defaults of the variables used in host templates: where traffic and secrets go when a
    /// connection does not set them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_defaults: BTreeMap<String, String>,
}

/// One auth scheme's grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthGrant {
    /// `api_key`, `bearer`, `basic`, `oauth2` or `secret`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Hosts the secret may be sent to.
    pub hosts: BTreeSet<String>,
    /// OAuth scopes requested (oauth2 only).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub scopes: BTreeSet<String>,
    /// Whether the connector may compute HMACs with the secret.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hmac: bool,
}

/// What a new version adds over an old one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PermissionDiff {
    /// New outbound hosts and mail servers.
    pub added_hosts: Vec<String>,
    /// New auth schemes.
    pub added_auth: Vec<String>,
    /// New hosts for an existing scheme's secret, as `scheme: host`.
    pub added_credential_hosts: Vec<String>,
    /// New OAuth scopes, as `scheme: scope`.
    pub added_scopes: Vec<String>,
    /// Schemes whose secret newly may key HMACs.
    pub added_hmac: Vec<String>,
    /// Limits that grew, as `name: old → new`.
    pub raised_limits: Vec<String>,
    /// Host-variable defaults that changed or appeared, as `name: old → new`.
    pub changed_host_defaults: Vec<String>,
}

impl PermissionDiff {
    /// Whether the new version asks for anything more.
    pub fn widens(&self) -> bool {
        !(self.added_hosts.is_empty()
            && self.added_auth.is_empty()
            && self.added_credential_hosts.is_empty()
            && self.added_scopes.is_empty()
            && self.added_hmac.is_empty()
            && self.raised_limits.is_empty()
            && self.changed_host_defaults.is_empty())
    }
}

impl Permissions {
    /// The permissions a manifest asks for.
    pub fn of(manifest: &Manifest) -> Self {
        let auth = manifest
            .auth
            .iter()
            .map(|a| {
                let (kind, scopes) = match &a.kind {
                    AuthKind::ApiKey { .. } => ("api_key", BTreeSet::new()),
                    AuthKind::Bearer => ("bearer", BTreeSet::new()),
                    AuthKind::Basic => ("basic", BTreeSet::new()),
                    AuthKind::OAuth2(o) => ("oauth2", o.scopes.iter().cloned().collect()),
                    AuthKind::Secret => ("secret", BTreeSet::new()),
                };
                let hosts = a.hosts.iter().map(|h| h.as_str().to_string()).collect();
                (
                    a.id.clone(),
                    AuthGrant {
                        kind: kind.into(),
                        hosts,
                        scopes,
                        hmac: a.hmac,
                    },
                )
            })
            .collect();
        let templates: Vec<&str> = manifest
            .allowed_hosts
            .iter()
            .chain(&manifest.mail_servers)
            .chain(manifest.auth.iter().flat_map(|a| a.hosts.iter()))
            .map(|h| h.as_str())
            .collect();
        let host_defaults = manifest
            .variables
            .iter()
            .filter(|(name, _)| {
                templates
                    .iter()
                    .any(|t| t.contains(&format!("{{{{ {name} }}}}")) || t.contains(&format!("{{{{{name}}}}}")))
            })
            .filter_map(|(name, v)| v.default.clone().map(|d| (name.clone(), d)))
            .collect();
        Self {
            host_defaults,
            allowed_hosts: manifest.allowed_hosts.iter().map(|h| h.as_str().to_string()).collect(),
            mail_servers: manifest.mail_servers.iter().map(|h| h.as_str().to_string()).collect(),
            auth,
            memory_mb: manifest.limits.memory_mb,
            timeout_ms: manifest.limits.timeout_ms,
            requests_per_second: manifest.limits.requests_per_second,
        }
    }

    /// What `self` (new) asks for beyond `old`.
    pub fn diff_from(&self, old: &Permissions) -> PermissionDiff {
        let mut d = PermissionDiff {
            added_hosts: self
                .allowed_hosts
                .difference(&old.allowed_hosts)
                .chain(self.mail_servers.difference(&old.mail_servers))
                .cloned()
                .collect(),
            ..PermissionDiff::default()
        };
        for (id, grant) in &self.auth {
            match old.auth.get(id) {
                None => d.added_auth.push(format!("{id} ({})", grant.kind)),
                Some(prev) => {
                    if prev.kind != grant.kind {
                        d.added_auth
                            .push(format!("{id} ({} instead of {})", grant.kind, prev.kind));
                    }
                    d.added_credential_hosts
                        .extend(grant.hosts.difference(&prev.hosts).map(|h| format!("{id}: {h}")));
                    d.added_scopes
                        .extend(grant.scopes.difference(&prev.scopes).map(|s| format!("{id}: {s}")));
                    if grant.hmac && !prev.hmac {
                        d.added_hmac.push(id.clone());
                    }
                }
            }
        }
        let mut raise = |name: &str, old: u64, new: u64| {
            if new > old {
                d.raised_limits.push(format!("{name}: {old} → {new}"));
            }
        };
        raise("memory_mb", old.memory_mb.into(), self.memory_mb.into());
        raise("timeout_ms", old.timeout_ms, self.timeout_ms);
        raise(
            "requests_per_second",
            old.requests_per_second.into(),
            self.requests_per_second.into(),
        );
        for (name, value) in &self.host_defaults {
            if old.host_defaults.get(name) != Some(value) {
                let before = old.host_defaults.get(name).map(String::as_str).unwrap_or("(none)");
                d.changed_host_defaults.push(format!("{name}: {before} → {value}"));
            }
        }
        d
    }
}
