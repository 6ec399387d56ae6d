//! The manifest as TOML spells it, and its validation into [`Manifest`].

use super::auth::{ApiKeyLocation, AuthKind, AuthScheme, OAuth2Endpoints, TokenAuthMethod};
use super::{Action, HostTemplate, Limits, Manifest, ManifestError, Variable};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    id: String,
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_category")]
    category: String,
    icon: Option<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    mail_servers: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
    #[serde(default)]
    auth: Vec<RawAuth>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    actions: BTreeMap<String, RawAction>,
    webhooks: Option<RawWebhooks>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhooks {
    scheme: String,
}

fn default_category() -> String {
    "other".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    label: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(rename = "in")]
    location: Option<String>,
    name: Option<String>,
    prefix: Option<String>,
    authorization_url: Option<String>,
    token_url: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    scope_separator: Option<String>,
    pkce: Option<bool>,
    token_auth_method: Option<String>,
    #[serde(default)]
    extra_authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    extra_token_params: BTreeMap<String, String>,
    #[serde(default)]
    token_response_variables: BTreeMap<String, String>,
    refresh_margin_secs: Option<u64>,
    hmac: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mb: Option<u32>,
    timeout_ms: Option<u64>,
    requests_per_second: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(default)]
    description: String,
    input: Option<Value>,
    output: Option<Value>,
}

fn is_identifier(s: &str, max: usize) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && s.len() <= max
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

impl RawManifest {
    pub(super) fn validate(self) -> Result<Manifest, ManifestError> {
        if !is_identifier(&self.id, 64) {
            return Err(ManifestError::invalid(
                "id",
                "must start with a-z and contain only a-z, 0-9, `-` and `_` (at most 64 characters)",
            ));
        }
        if self.name.trim().is_empty() {
            return Err(ManifestError::invalid("name", "must not be empty"));
        }
        let version = semver::Version::parse(&self.version)
            .map_err(|e| ManifestError::invalid("version", format!("not a semantic version: {e}")))?;
        if let Some(icon) = &self.icon
            && (icon.contains("..") || icon.starts_with('/'))
        {
            return Err(ManifestError::invalid(
                "icon",
                "must be a relative path inside the connector",
            ));
        }
        for name in self.variables.keys() {
            if !is_identifier(name, 64) {
                return Err(ManifestError::invalid(
                    format!("variables.{name}"),
                    "invalid variable name",
                ));
            }
        }
        let allowed_hosts = self
            .allowed_hosts
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let field = format!("allowed_hosts[{i}]");
                let template = HostTemplate::new(h, &self.variables, &field)?;
                if super::HostPattern::parse(template.as_str()).is_ok_and(|p| p.is_mail()) {
                    return Err(ManifestError::invalid(field, "a mail server belongs in `mail_servers`"));
                }
                Ok(template)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mail_servers = self
            .mail_servers
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let field = format!("mail_servers[{i}]");
                let template = HostTemplate::new(h, &self.variables, &field)?;
                if template_adds_wildcard(&template)
                    || super::HostPattern::parse(template.as_str()).is_ok_and(|p| !p.is_mail() || !p.is_one_server())
                {
                    return Err(ManifestError::invalid(
                        field,
                        "must be `smtp://host:port` (STARTTLS) or `smtps://host:port` (implicit TLS) naming one server",
                    ));
                }
                Ok(template)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut seen = BTreeSet::new();
        let mut auth = Vec::with_capacity(self.auth.len());
        for (i, raw) in self.auth.into_iter().enumerate() {
            let scheme = raw.validate(i, &self.variables)?;
            if !seen.insert(scheme.id.clone()) {
                return Err(ManifestError::invalid(
                    format!("auth[{i}].id"),
                    format!("duplicate id `{}`", scheme.id),
                ));
            }
            auth.push(scheme);
        }

        let defaults = Limits::default();
        let limits = Limits {
            memory_mb: self.limits.memory_mb.unwrap_or(defaults.memory_mb),
            timeout_ms: self.limits.timeout_ms.unwrap_or(defaults.timeout_ms),
            requests_per_second: self.limits.requests_per_second.unwrap_or(defaults.requests_per_second),
        };
        if !(1..=4096).contains(&limits.memory_mb) {
            return Err(ManifestError::invalid("limits.memory_mb", "must be between 1 and 4096"));
        }
        if !(1..=900_000).contains(&limits.timeout_ms) {
            return Err(ManifestError::invalid(
                "limits.timeout_ms",
                "must be between 1 and 900000",
            ));
        }
        if limits.requests_per_second == 0 {
            return Err(ManifestError::invalid(
                "limits.requests_per_second",
                "must be at least 1",
            ));
        }

        if self.actions.is_empty() {
            return Err(ManifestError::invalid(
                "actions",
                "a connector must declare at least one action",
            ));
        }
        let mut actions = BTreeMap::new();
        for (name, raw) in self.actions {
            if !is_identifier(&name, 64) {
                return Err(ManifestError::invalid(
                    format!("actions.{name}"),
                    "action names must start with a-z and contain only a-z, 0-9, `-` and `_`",
                ));
            }
            let input = check_schema(raw.input, &format!("actions.{name}.input"))?;
            let output = check_schema(raw.output, &format!("actions.{name}.output"))?;
            actions.insert(
                name,
                Action {
                    description: raw.description,
                    input,
                    output,
                },
            );
        }

        let webhooks = match self.webhooks {
            None => None,
            Some(w) if crate::WEBHOOK_SCHEMES.contains(&w.scheme.as_str()) => {
                Some(crate::Webhooks { scheme: w.scheme })
            }
            Some(_) => {
                return Err(ManifestError::invalid(
                    "webhooks.scheme",
                    format!("expected one of {}", crate::WEBHOOK_SCHEMES.join(", ")),
                ));
            }
        };

        Ok(Manifest {
            id: self.id,
            name: self.name,
            version,
            description: self.description,
            category: self.category,
            icon: self.icon,
            allowed_hosts,
            mail_servers,
            variables: self.variables,
            auth,
            limits,
            actions,
            webhooks,
        })
    }
}

/// Whether a template with placeholders also carries a `*`: checks on literal patterns cannot
/// see through `{{ scheme }}://*:*`, so secrets and mail servers refuse the mix outright.
fn template_adds_wildcard(template: &HostTemplate) -> bool {
    template.as_str().contains("{{") && template.as_str().contains('*')
}

/// A path prefix a key may be appended to: starts and ends with `/`, unreserved characters.
fn valid_path_prefix(name: &str) -> bool {
    name.len() <= 200
        && name.starts_with('/')
        && name.ends_with('/')
        && !name.contains("//")
        && !name.split('/').any(|s| s == "." || s == "..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'))
}

fn check_schema(schema: Option<Value>, field: &str) -> Result<Value, ManifestError> {
    let schema = schema.unwrap_or(Value::Bool(true));
    jsonschema::validator_for(&schema)
        .map_err(|e| ManifestError::invalid(field, format!("not a valid JSON Schema: {e}")))?;
    Ok(schema)
}

impl RawAuth {
    fn validate(self, i: usize, variables: &BTreeMap<String, Variable>) -> Result<AuthScheme, ManifestError> {
        let field = |f: &str| format!("auth[{i}].{f}");
        if !is_identifier(&self.id, 64) {
            return Err(ManifestError::invalid(
                field("id"),
                "must start with a-z and contain only a-z, 0-9, `-` and `_`",
            ));
        }
        if self.kind == "secret" {
            if !self.hosts.is_empty() {
                return Err(ManifestError::invalid(
                    field("hosts"),
                    "a `secret` is never sent anywhere (it only keys HMACs); remove `hosts`",
                ));
            }
        } else if self.hosts.is_empty() {
            return Err(ManifestError::invalid(
                field("hosts"),
                "list the hosts this secret may be sent to; it is never sent anywhere else",
            ));
        }
        let hosts = self
            .hosts
            .into_iter()
            .enumerate()
            .map(|(j, h)| {
                let field = format!("auth[{i}].hosts[{j}]");
                let template = HostTemplate::new(h, variables, &field)?;
                if template_adds_wildcard(&template) {
                    return Err(ManifestError::invalid(
                        field,
                        "a secret's host may not put a wildcard next to a `{{ variable }}`; write the host out",
                    ));
                }
                if super::HostPattern::parse(template.as_str()).is_ok_and(|p| p.is_any_host()) {
                    return Err(ManifestError::invalid(
                        field,
                        "a secret may not be bound to every host; name its API's host (wildcard subdomains are fine)",
                    ));
                }
                Ok(template)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let only = |present: bool, name: &str, kind: &str| {
            if present {
                Err(ManifestError::invalid(
                    field(name),
                    format!("is not used by type `{kind}`"),
                ))
            } else {
                Ok(())
            }
        };
        let oauth_fields = self.authorization_url.is_some()
            || self.token_url.is_some()
            || !self.scopes.is_empty()
            || self.scope_separator.is_some()
            || self.pkce.is_some()
            || self.token_auth_method.is_some()
            || !self.extra_authorize_params.is_empty()
            || !self.extra_token_params.is_empty()
            || !self.token_response_variables.is_empty()
            || self.refresh_margin_secs.is_some();
        let kind = match self.kind.as_str() {
            "api_key" => {
                only(oauth_fields, "token_url", "api_key")?;
                let location = match self.location.as_deref() {
                    Some("header") => ApiKeyLocation::Header,
                    Some("query") => ApiKeyLocation::Query,
                    Some("path") => ApiKeyLocation::Path,
                    Some(other) => {
                        return Err(ManifestError::invalid(
                            field("in"),
                            format!("`{other}` is not `header`, `query` or `path`"),
                        ));
                    }
                    None => {
                        return Err(ManifestError::invalid(
                            field("in"),
                            "required for type `api_key` (`header`, `query` or `path`)",
                        ));
                    }
                };
                let name = if location == ApiKeyLocation::Path {
                    self.name.filter(|n| valid_path_prefix(n)).ok_or_else(|| {
                        ManifestError::invalid(
                            field("name"),
                            "required for `in = \"path\"`: the path the key is appended to, starting and ending with `/` (e.g. `/services/`)",
                        )
                    })?
                } else {
                    self.name
                        .filter(|n| {
                            !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                        })
                        .ok_or_else(|| {
                            ManifestError::invalid(field("name"), "required: the header or query parameter name")
                        })?
                };
                if location != ApiKeyLocation::Header && self.prefix.is_some() {
                    return Err(ManifestError::invalid(
                        field("prefix"),
                        "only applies to `in = \"header\"`",
                    ));
                }
                AuthKind::ApiKey {
                    location,
                    name,
                    prefix: self.prefix.unwrap_or_default(),
                }
            }
            "secret" => {
                only(oauth_fields, "token_url", "secret")?;
                only(self.location.is_some(), "in", "secret")?;
                only(self.name.is_some(), "name", "secret")?;
                only(self.prefix.is_some(), "prefix", "secret")?;
                only(self.hmac == Some(false), "hmac", "secret (it is always `true`)")?;
                AuthKind::Secret
            }
            "bearer" | "basic" => {
                only(oauth_fields, "token_url", &self.kind)?;
                only(self.location.is_some(), "in", &self.kind)?;
                only(self.name.is_some(), "name", &self.kind)?;
                only(self.prefix.is_some(), "prefix", &self.kind)?;
                if self.kind == "bearer" {
                    AuthKind::Bearer
                } else {
                    AuthKind::Basic
                }
            }
            "oauth2" => {
                only(self.location.is_some(), "in", "oauth2")?;
                only(self.name.is_some(), "name", "oauth2")?;
                only(self.prefix.is_some(), "prefix", "oauth2")?;
                let token_url = self
                    .token_url
                    .ok_or_else(|| ManifestError::invalid(field("token_url"), "required for type `oauth2`"))?;
                super::template::check_url_template(&token_url, variables, &field("token_url"))?;
                if let Some(u) = &self.authorization_url {
                    super::template::check_url_template(u, variables, &field("authorization_url"))?;
                }
                let token_auth_method = match self.token_auth_method.as_deref() {
                    None | Some("basic") => TokenAuthMethod::Basic,
                    Some("body") => TokenAuthMethod::Body,
                    Some(other) => {
                        return Err(ManifestError::invalid(
                            field("token_auth_method"),
                            format!("`{other}` is not `basic` or `body`"),
                        ));
                    }
                };
                check_token_response_variables(
                    &self.token_response_variables,
                    variables,
                    [Some(token_url.as_str()), self.authorization_url.as_deref()],
                    &field("token_response_variables"),
                )?;
                AuthKind::OAuth2(OAuth2Endpoints {
                    authorization_url: self.authorization_url,
                    token_url,
                    scopes: self.scopes,
                    scope_separator: self.scope_separator.unwrap_or_else(|| " ".into()),
                    pkce: self.pkce.unwrap_or(true),
                    token_auth_method,
                    extra_authorize_params: self.extra_authorize_params,
                    extra_token_params: self.extra_token_params,
                    token_response_variables: self.token_response_variables,
                    refresh_margin_secs: self.refresh_margin_secs.unwrap_or(300),
                })
            }
            other => {
                return Err(ManifestError::invalid(
                    field("type"),
                    format!("`{other}` is not one of api_key, bearer, basic, oauth2, secret"),
                ));
            }
        };
        let hmac = self.hmac.unwrap_or(false) || matches!(kind, AuthKind::Secret);
        if hmac && matches!(kind, AuthKind::Basic) {
            // An HMAC of a password is an offline oracle on it; Basic secrets never key one.
            return Err(ManifestError::invalid(
                field("hmac"),
                "a basic (username and password) scheme cannot declare `hmac = true`",
            ));
        }
        let label = self.label.unwrap_or_else(|| self.id.clone());
        Ok(AuthScheme {
            id: self.id,
            label,
            kind,
            hosts,
            hmac,
        })
    }
}

/// `token_response_variables` (connection variable → token response field): each variable
/// declared, each field a plain name that is not a token or secret (variables are not
/// secret: a token copied into one would be shown to every reader of the connection), and
/// no variable the OAuth endpoints themselves use (the token endpoint receives the client
/// secret, so its address must not come from what it answered).
fn check_token_response_variables(
    mapping: &BTreeMap<String, String>,
    variables: &BTreeMap<String, Variable>,
    endpoints: [Option<&str>; 2],
    at: &str,
) -> Result<(), ManifestError> {
    if !mapping.is_empty() && endpoints[1].is_none() {
        return Err(ManifestError::invalid(
            at,
            "set by a user's sign-in: needs the authorization-code flow (an authorization_url)",
        ));
    }
    for (variable, source) in mapping {
        let here = format!("{at}.{variable}");
        if !variables.contains_key(variable) {
            return Err(ManifestError::invalid(here, "not a declared variable"));
        }
        let plain =
            !source.is_empty() && source.len() <= 64 && source.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain {
            return Err(ManifestError::invalid(
                here,
                "name one top-level field of the token response (A-Z, a-z, 0-9, _)",
            ));
        }
        let lower = source.to_ascii_lowercase();
        if ["token", "secret", "password", "code"]
            .iter()
            .any(|w| lower.contains(w))
        {
            return Err(ManifestError::invalid(
                here,
                format!("`{source}` may hold a secret; connection variables are not secret"),
            ));
        }
        let used = |url: &str| {
            super::template::placeholders(url)
                .unwrap_or_default()
                .contains(variable)
        };
        if endpoints.into_iter().flatten().any(used) {
            return Err(ManifestError::invalid(
                here,
                "the OAuth endpoints cannot use a variable the token response sets",
            ));
        }
    }
    Ok(())
}
