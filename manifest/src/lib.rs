//! The connector manifest, `connector.toml`: everything the host must know about a connector
//! before running it, and everything an admin reviews before installing it. It is the
//! connector's contract, so it has its own crate: the runtime, broker and vault depend on it
//! without depending on the marketplace.
//!
//! Parsing is strict: unknown keys are refused, and every semantic error names the field
//! (`auth[1].hosts[0]`, `actions.send_message.input`, …).

mod auth;
mod hosts;
mod raw;
mod template;

pub use auth::{ApiKeyLocation, AuthKind, AuthScheme, MAX_PATH_KEY_CHARS, OAuth2Endpoints, TokenAuthMethod, path_key};
pub use hosts::{HostPattern, PortPattern, SchemePattern};
pub use template::{HostTemplate, Variable};

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// File name of the manifest inside a connector directory or bundle.
pub const MANIFEST_FILE: &str = "connector.toml";

/// A parsed, validated connector manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// Stable connector id: lower-case letters, digits, `-` and `_`, e.g. `slack`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Semantic version of this connector release.
    pub version: semver::Version,
    /// One-paragraph description.
    pub description: String,
    /// Marketplace category, e.g. `communication`.
    pub category: String,
    /// Path of the icon file, relative to the manifest.
    pub icon: Option<String>,
    /// Outbound hosts the connector may reach (`scheme://host[:port]`, `*.` wildcards,
    /// `{{ variable }}` templates).
    pub allowed_hosts: Vec<HostTemplate>,
    /// SMTP servers the connector may send mail through (`smtp://host:port` with STARTTLS,
    /// `smtps://host:port` with implicit TLS; `{{ variable }}` templates).
    pub mail_servers: Vec<HostTemplate>,
    /// Non-secret per-connection settings, readable by the connector.
    pub variables: BTreeMap<String, Variable>,
    /// How the connection authenticates, where the host injects each secret, and which hosts
    /// each secret may be sent to.
    pub auth: Vec<AuthScheme>,
    /// Resource limits requested by the connector (the host clamps them to its maxima).
    pub limits: Limits,
    /// The connector's actions by name.
    pub actions: BTreeMap<String, Action>,
    /// How the provider signs the webhooks it sends (`[webhooks] scheme = "stripe"`), so a
    /// workflow triggered by them on a connection of this connector needs no scheme choice.
    pub webhooks: Option<Webhooks>,
}

/// Signature schemes a manifest's `[webhooks] scheme` may name (the host verifies each).
pub const WEBHOOK_SCHEMES: &[&str] = &[
    "standard_webhooks",
    "stripe",
    "github",
    "slack",
    "shopify",
    "twilio",
    "sendgrid",
];

/// What a connector says about its provider's incoming webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhooks {
    /// The signature scheme, one of [`WEBHOOK_SCHEMES`].
    pub scheme: String,
}

/// Resource limits a connector asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Linear memory cap in MiB.
    pub memory_mb: u32,
    /// Wall-clock deadline of one call in milliseconds, host calls included.
    pub timeout_ms: u64,
    /// Outbound requests per second per connection.
    pub requests_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 32,
            timeout_ms: 10_000,
            requests_per_second: 10,
        }
    }
}

/// One action a connector exports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// What the action does.
    pub description: String,
    /// JSON Schema of the input; `true` (anything) when the manifest gives none.
    pub input: Value,
    /// JSON Schema of the output; `true` (anything) when the manifest gives none.
    pub output: Value,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// The TOML is malformed, has an unknown key, a missing key or a value of the wrong type.
    #[error("invalid connector.toml: {0}")]
    Syntax(String),
    /// A value is well-formed TOML but not acceptable; `field` is its path.
    #[error("invalid connector.toml: `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the offending field, e.g. `auth[0].hosts[1]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ManifestError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl Manifest {
    /// Parse and validate a `connector.toml` document.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let raw: raw::RawManifest =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string().trim_end().to_string()))?;
        raw.validate()
    }

    /// The auth scheme with id `id`.
    pub fn auth_scheme(&self, id: &str) -> Option<&AuthScheme> {
        self.auth.iter().find(|a| a.id == id)
    }

    /// The values of every variable for a connection: explicit `values` over defaults.
    /// Fails naming the first unknown variable or required variable without a value.
    pub fn resolve_variables(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ManifestError> {
        if let Some(unknown) = values.keys().find(|k| !self.variables.contains_key(*k)) {
            return Err(ManifestError::invalid(
                format!("variables.{unknown}"),
                "the connector declares no such variable",
            ));
        }
        let mut resolved = BTreeMap::new();
        for (name, var) in &self.variables {
            match values.get(name).or(var.default.as_ref()) {
                Some(v) => {
                    resolved.insert(name.clone(), v.clone());
                }
                None => {
                    return Err(ManifestError::invalid(
                        format!("variables.{name}"),
                        "required variable has no value",
                    ));
                }
            }
        }
        Ok(resolved)
    }

    /// The concrete allowed-host patterns for a connection with these variable values.
    pub fn resolve_allowed_hosts(
        &self,
        variables: &BTreeMap<String, String>,
    ) -> Result<Vec<HostPattern>, ManifestError> {
        self.allowed_hosts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let field = format!("allowed_hosts[{i}]");
                let pattern = t.resolve(variables, &field)?;
                if pattern.is_mail() {
                    return Err(ManifestError::invalid(field, "a mail server belongs in `mail_servers`"));
                }
                Ok(pattern)
            })
            .collect()
    }

    /// The concrete mail-server patterns for a connection with these variable values.
    pub fn resolve_mail_servers(
        &self,
        variables: &BTreeMap<String, String>,
    ) -> Result<Vec<HostPattern>, ManifestError> {
        self.mail_servers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let field = format!("mail_servers[{i}]");
                let pattern = t.resolve(variables, &field)?;
                if !pattern.is_mail() || !pattern.is_one_server() {
                    return Err(ManifestError::invalid(
                        field,
                        "must resolve to one server: `smtp://host:port` or `smtps://host:port`",
                    ));
                }
                Ok(pattern)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
