//! Connection variables and host templates such as `{{ api_base }}`, which let one manifest
//! serve SaaS and self-hosted deployments (and loopback fakes in tests).

use super::{HostPattern, ManifestError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A non-secret per-connection setting declared under `[variables.<name>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// What the admin should put here.
    #[serde(default)]
    pub description: String,
    /// Value used when the connection gives none; without one the variable is required.
    pub default: Option<String>,
}

/// An allowed-host entry: a literal [`HostPattern`] or a template over variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HostTemplate(String);

impl HostTemplate {
    /// Check `text` against the declared variables and, when it has no placeholders, parse it.
    pub(crate) fn new(
        text: String,
        variables: &BTreeMap<String, Variable>,
        field: &str,
    ) -> Result<Self, ManifestError> {
        let names = placeholders(&text).map_err(|r| ManifestError::invalid(field, r))?;
        if names.is_empty() {
            HostPattern::parse(&text).map_err(|r| ManifestError::invalid(field, r))?;
        }
        for name in names {
            if !variables.contains_key(&name) {
                return Err(ManifestError::invalid(
                    field,
                    format!("uses `{{{{ {name} }}}}` but [variables.{name}] is not declared"),
                ));
            }
        }
        Ok(Self(text))
    }

    /// The template text as written in the manifest.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Substitute variable values and parse the result.
    pub fn resolve(&self, variables: &BTreeMap<String, String>, field: &str) -> Result<HostPattern, ManifestError> {
        let mut text = self.0.clone();
        for name in placeholders(&self.0).map_err(|r| ManifestError::invalid(field, r))? {
            let value = variables
                .get(&name)
                .ok_or_else(|| ManifestError::invalid(format!("variables.{name}"), "required variable has no value"))?;
            if value.contains('*') {
                // Wildcards are a permission the manifest must state literally, where an admin
                // reviews it; a variable value can only name one concrete origin.
                return Err(ManifestError::invalid(
                    format!("variables.{name}"),
                    "must be a concrete origin such as https://api.example.com; wildcards are not allowed in values",
                ));
            }
            text = replace_placeholder(&text, &name, origin_of(value));
        }
        HostPattern::parse(&text).map_err(|r| ManifestError::invalid(field, format!("{r} (from `{}`)", self.0)))
    }
}

/// Check a URL template (an OAuth endpoint such as `{{ api_base }}/oauth/token`): every
/// placeholder must be a declared variable, and the URL must parse once variables with
/// defaults are filled in.
pub(crate) fn check_url_template(
    text: &str,
    variables: &BTreeMap<String, Variable>,
    field: &str,
) -> Result<(), ManifestError> {
    let names = placeholders(text).map_err(|r| ManifestError::invalid(field, r))?;
    let mut defaults = BTreeMap::new();
    for name in &names {
        match variables.get(name) {
            None => {
                return Err(ManifestError::invalid(
                    field,
                    format!("uses `{{{{ {name} }}}}` but [variables.{name}] is not declared"),
                ));
            }
            Some(v) => {
                if let Some(d) = &v.default {
                    defaults.insert(name.clone(), d.clone());
                }
            }
        }
    }
    if names.iter().all(|n| defaults.contains_key(n)) {
        resolve_url(text, &defaults, field)?;
    }
    Ok(())
}

/// Substitute variable values into a URL template and parse it as an http(s) URL.
pub fn resolve_url(text: &str, variables: &BTreeMap<String, String>, field: &str) -> Result<url::Url, ManifestError> {
    let mut resolved = text.to_string();
    for name in placeholders(text).map_err(|r| ManifestError::invalid(field, r))? {
        let value = variables
            .get(&name)
            .ok_or_else(|| ManifestError::invalid(format!("variables.{name}"), "required variable has no value"))?;
        resolved = replace_placeholder(&resolved, &name, value);
    }
    let url = url::Url::parse(&resolved)
        .map_err(|e| ManifestError::invalid(field, format!("`{resolved}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(ManifestError::invalid(
            field,
            "must be an http or https URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ManifestError::invalid(field, "may not carry user info"));
    }
    Ok(url)
}

/// Names referenced as `{{ name }}` in `text`.
pub(crate) fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("unterminated `{{` placeholder")?;
        let name = after[..end].trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("`{{{{{}}}}}` is not a valid placeholder", &after[..end]));
        }
        names.push(name.to_string());
        rest = &after[end + 2..];
    }
    Ok(names)
}

/// A full URL stands for its origin in a host template, so one variable can be both a
/// target URL (the Webhook connector's `url`) and its allow-list entry. User info and
/// wildcards are still refused when the result is parsed.
fn origin_of(value: &str) -> &str {
    match value.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            &value[..scheme.len() + 3 + end]
        }
        None => value,
    }
}

fn replace_placeholder(text: &str, name: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + value.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        if after[..end].trim() == name {
            out.push_str(value.trim_end_matches('/'));
        } else {
            out.push_str(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}
