//! A connection's credential for one auth scheme: the secret, where it goes, and what a
//! connector may know about it (kind, scheme id, label).

use base64::Engine as _;
use nexum_manifest::{AuthKind, AuthScheme};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// The secret material behind a credential.
pub enum SecretMaterial {
    /// A single token or key (api_key, bearer, oauth2 access token).
    Token(SecretString),
    /// HTTP Basic credentials; the username is not secret, the password is.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
}

impl std::fmt::Debug for SecretMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretMaterial([REDACTED])")
    }
}

/// A credential satisfying one of the manifest's auth schemes.
#[derive(Debug)]
pub struct Credential {
    /// The scheme (and with it the injection point and bound hosts) this credential is for.
    pub scheme: AuthScheme,
    /// Non-secret label shown to connectors and admins, e.g. the account name.
    pub label: String,
    /// The secret.
    pub secret: SecretMaterial,
    /// When an OAuth2 access token expires (unix ms), if the provider said.
    pub expires_at: Option<i64>,
    /// When an OAuth2 access token was issued (unix ms).
    pub issued_at: Option<i64>,
    /// Other secrets stored with this one (an OAuth2 refresh token or client secret): never
    /// sent by the broker, but scrubbed like the main secret.
    pub companions: Vec<SecretString>,
}

/// Fields an OAuth2 connection stores: the token set and, for client-credentials
/// connections with their own app, the client id and secret.
pub const OAUTH2_STORED_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "expires_at",
    "issued_at",
    "client_id",
    "client_secret",
    "oauth_app",
];

/// Why credential fields were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    /// A field the scheme needs is missing or empty.
    #[error("auth scheme `{scheme}` needs the field `{field}`")]
    MissingField {
        /// Scheme id.
        scheme: String,
        /// Field name.
        field: String,
    },
    /// A field the scheme does not use was given.
    #[error("auth scheme `{scheme}` has no field `{field}` (expected: {expected})")]
    UnknownField {
        /// Scheme id.
        scheme: String,
        /// Field name.
        field: String,
        /// The fields the scheme takes.
        expected: String,
    },
    /// A secret contains characters that cannot go into an HTTP header.
    #[error("the `{field}` of auth scheme `{scheme}` contains characters not allowed in HTTP headers")]
    InvalidCharacters {
        /// Scheme id.
        scheme: String,
        /// Field name.
        field: String,
    },
}

impl Credential {
    /// Build a credential from the fields an admin supplied, checked against the scheme.
    pub fn from_fields(
        scheme: &AuthScheme,
        fields: &BTreeMap<String, String>,
        label: impl Into<String>,
    ) -> Result<Self, CredentialError> {
        let expected = match scheme.kind {
            AuthKind::OAuth2(_) => OAUTH2_STORED_FIELDS,
            _ => scheme.secret_fields(),
        };
        if let Some(extra) = fields.keys().find(|k| !expected.contains(&k.as_str())) {
            return Err(CredentialError::UnknownField {
                scheme: scheme.id.clone(),
                field: extra.clone(),
                expected: expected.join(", "),
            });
        }
        let get = |name: &str| -> Result<String, CredentialError> {
            let value = fields
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| CredentialError::MissingField {
                    scheme: scheme.id.clone(),
                    field: name.into(),
                })?;
            if value.bytes().any(|b| b < 0x20 || b == 0x7f) {
                return Err(CredentialError::InvalidCharacters {
                    scheme: scheme.id.clone(),
                    field: name.into(),
                });
            }
            Ok(value.clone())
        };
        let secret = match scheme.kind {
            AuthKind::Basic => SecretMaterial::Basic {
                username: get("username")?,
                password: SecretString::from(get("password")?),
            },
            AuthKind::ApiKey { .. } => SecretMaterial::Token(SecretString::from(get("api_key")?)),
            AuthKind::Bearer => SecretMaterial::Token(SecretString::from(get("token")?)),
            AuthKind::OAuth2(_) => SecretMaterial::Token(SecretString::from(get("access_token")?)),
        };
        let mut companions = Vec::new();
        let mut expires_at = None;
        let mut issued_at = None;
        if let AuthKind::OAuth2(_) = scheme.kind {
            for name in ["refresh_token", "client_secret"] {
                if fields.get(name).is_some_and(|v| !v.is_empty()) {
                    companions.push(SecretString::from(get(name)?));
                }
            }
            expires_at = fields.get("expires_at").and_then(|v| v.parse::<i64>().ok());
            issued_at = fields.get("issued_at").and_then(|v| v.parse::<i64>().ok());
        }
        Ok(Self {
            scheme: scheme.clone(),
            label: label.into(),
            secret,
            expires_at,
            issued_at,
            companions,
        })
    }

    /// The key used for `hmac-sha256`: the token, or the Basic password.
    pub fn hmac_key(&self) -> &[u8] {
        match &self.secret {
            SecretMaterial::Token(t) => t.expose_secret().as_bytes(),
            SecretMaterial::Basic { password, .. } => password.expose_secret().as_bytes(),
        }
    }

    /// Every form in which this secret could appear on the wire: raw, Basic-encoded,
    /// percent-encoded. The broker scrubs all of them from anything a connector or log sees.
    pub fn redaction_needles(&self) -> Vec<Vec<u8>> {
        let mut needles = Vec::new();
        let mut add = |s: &str| {
            needles.push(s.as_bytes().to_vec());
            let encoded = percent_encode(s);
            if encoded != s {
                needles.push(encoded.into_bytes());
            }
        };
        match &self.secret {
            SecretMaterial::Token(t) => add(t.expose_secret()),
            SecretMaterial::Basic { username, password } => {
                add(password.expose_secret());
                add(&basic_value(username, password.expose_secret()));
            }
        }
        for companion in &self.companions {
            add(companion.expose_secret());
        }
        needles
    }

    /// The value of the `Authorization` header for header-injected schemes, or of the API key.
    pub(crate) fn wire_value(&self) -> Zeroizing<String> {
        Zeroizing::new(match (&self.scheme.kind, &self.secret) {
            (AuthKind::Basic, SecretMaterial::Basic { username, password }) => {
                format!("Basic {}", basic_value(username, password.expose_secret()))
            }
            (AuthKind::ApiKey { prefix, .. }, SecretMaterial::Token(t)) => format!("{prefix}{}", t.expose_secret()),
            (_, SecretMaterial::Token(t)) => format!("Bearer {}", t.expose_secret()),
            (_, SecretMaterial::Basic { username, password }) => {
                format!("Basic {}", basic_value(username, password.expose_secret()))
            }
        })
    }

    /// The raw API key, for query-parameter injection.
    pub(crate) fn raw_token(&self) -> &str {
        match &self.secret {
            SecretMaterial::Token(t) => t.expose_secret(),
            SecretMaterial::Basic { password, .. } => password.expose_secret(),
        }
    }
}

fn basic_value(username: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
}

fn percent_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
