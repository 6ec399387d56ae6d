//! A connection's credential for one auth scheme: the secret, where it goes, and what a
//! connector may know about it (kind, scheme id, label).

use base64::Engine as _;
use nexum_manifest::{ApiKeyLocation, AuthKind, AuthScheme};
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
    /// A key appended to a URL path is neither the part after the scheme's path nor a URL
    /// with that path.
    #[error(
        "the `api_key` of auth scheme `{scheme}` must be the webhook URL (or its part after `{prefix}`): letters, digits, `-`, `_`, `.`, `~` in `/`-separated segments"
    )]
    InvalidPathKey {
        /// Scheme id.
        scheme: String,
        /// The path the key is appended to.
        prefix: String,
    },
    /// A secret an admin typed is too short to be a real credential, or to be scrubbed
    /// reliably from what a connector sees, or absurdly long.
    #[error("the `{field}` of auth scheme `{scheme}` must be {MIN_SECRET_CHARS}–{MAX_SECRET_CHARS} characters")]
    TooShort {
        /// Scheme id.
        scheme: String,
        /// Field name.
        field: String,
    },
}

/// Shortest API key, bearer token or password an admin may store. Real credentials are far
/// longer; a very short one would match unrelated text and could not be scrubbed safely.
pub const MIN_SECRET_CHARS: usize = 8;

/// Longest secret an admin may type: real keys and tokens are far shorter, and a bound
/// keeps scrubbing every response that carried it cheap.
pub const MAX_SECRET_CHARS: usize = 4096;

/// Refuse admin-supplied secrets shorter than [`MIN_SECRET_CHARS`]: the scheme's secret, and
/// for OAuth2 the tokens and client secret an admin imports or types (tokens the provider
/// issues never pass through here). Called when credentials are written, not when stored
/// ones are opened, so an existing connection keeps working.
pub fn check_secret_length(scheme: &AuthScheme, fields: &BTreeMap<String, String>) -> Result<(), CredentialError> {
    let checked: &[&str] = match scheme.kind {
        AuthKind::Basic => &["password"],
        AuthKind::ApiKey { .. } => &["api_key"],
        AuthKind::Bearer => &["token"],
        AuthKind::Secret => &["secret"],
        AuthKind::OAuth2(_) => &["access_token", "refresh_token", "client_secret"],
    };
    for field in checked {
        if let Some(value) = fields.get(*field)
            && !(MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&value.chars().count())
        {
            return Err(CredentialError::TooShort {
                scheme: scheme.id.clone(),
                field: (*field).into(),
            });
        }
    }
    Ok(())
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
            AuthKind::ApiKey {
                location: ApiKeyLocation::Path,
                name: ref prefix,
                ..
            } => {
                let key = nexum_manifest::path_key(prefix, &get("api_key")?).ok_or_else(|| {
                    CredentialError::InvalidPathKey {
                        scheme: scheme.id.clone(),
                        prefix: prefix.clone(),
                    }
                })?;
                // The length rule applies to what is sent (and scrubbed), not to the URL
                // it was pasted in.
                if key.chars().count() < MIN_SECRET_CHARS {
                    return Err(CredentialError::TooShort {
                        scheme: scheme.id.clone(),
                        field: "api_key".into(),
                    });
                }
                SecretMaterial::Token(SecretString::from(key))
            }
            AuthKind::ApiKey { .. } => SecretMaterial::Token(SecretString::from(get("api_key")?)),
            AuthKind::Bearer => SecretMaterial::Token(SecretString::from(get("token")?)),
            AuthKind::Secret => SecretMaterial::Token(SecretString::from(get("secret")?)),
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

    /// Every form in which this secret could appear on the wire or in an echo: raw,
    /// Basic-encoded, base64 (standard and URL-safe alphabets, at each of the three
    /// alignments it can have inside a longer encoded blob) and hex. The [`Redactor`] also
    /// matches each of them with any character JSON- or percent-escaped, so the broker
    /// scrubs all of these from anything a connector or log sees.
    ///
    /// [`Redactor`]: crate::broker::Redactor
    pub fn redaction_needles(&self) -> Vec<Vec<u8>> {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        let mut add = |s: &str| {
            for form in encodings(s) {
                if !needles.contains(&form) {
                    needles.push(form);
                }
            }
        };
        match &self.secret {
            SecretMaterial::Token(t) => {
                add(t.expose_secret());
                // A path key is several segments (`<id>/<token>`), and a provider may echo
                // one alone (Discord's webhook answer carries `"token"`).
                if let AuthKind::ApiKey {
                    location: ApiKeyLocation::Path,
                    ..
                } = self.scheme.kind
                {
                    for segment in t.expose_secret().split('/') {
                        if segment.len() >= MIN_SECRET_CHARS && segment != t.expose_secret() {
                            add(segment);
                        }
                    }
                }
            }
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

    /// The username and password of a Basic credential, for an SMTP login.
    pub(crate) fn login(&self) -> Option<(&str, &str)> {
        match &self.secret {
            SecretMaterial::Basic { username, password } => Some((username, password.expose_secret())),
            SecretMaterial::Token(_) => None,
        }
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

/// The encodings of `s` a secret may travel in (escaped forms are the redactor's business).
fn encodings(s: &str) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let raw = s.as_bytes();
    let mut forms = vec![
        raw.to_vec(),
        hex::encode(raw).into_bytes(),
        hex::encode_upper(raw).into_bytes(),
    ];
    // Inside a longer blob the secret starts 0, 1 or 2 bytes into a 3-byte group. Encode it
    // behind that many filler bytes and keep only the characters made of secret bits alone:
    // from ceil(8k/6) to floor(8(k+n)/6); the others depend on the neighbours.
    for k in 0..3 {
        let mut shifted = vec![b'x'; k];
        shifted.extend_from_slice(raw);
        let (first, last) = ((8 * k).div_ceil(6), 8 * shifted.len() / 6);
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            if let Some(core) = engine.encode(&shifted).get(first..last) {
                forms.push(core.as_bytes().to_vec());
            }
        }
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{REDACTED, Redactor};

    fn bearer(token: &str) -> Credential {
        let scheme = AuthScheme {
            id: "token".into(),
            label: "Token".into(),
            kind: AuthKind::Bearer,
            hosts: Vec::new(),
            hmac: false,
        };
        let fields = BTreeMap::from([("token".to_string(), token.to_string())]);
        Credential::from_fields(&scheme, &fields, "").expect("credential")
    }

    #[test]
    fn every_common_encoding_of_a_secret_is_scrubbed() {
        let secret = "s3cr3t/t0k+en=é";
        let redactor = Redactor::new(bearer(secret).redaction_needles());
        let json = serde_json::to_string(&serde_json::json!({ "echo": secret })).expect("json");
        let forms = [
            secret.to_string(),
            "s3cr3t%2Ft0k%2Ben%3D%C3%A9".to_string(),
            "s3cr3t%2ft0k%2ben%3d%c3%a9".to_string(),
            json,
            r"s3cr3t\/t0k+en=\u00e9".replace(r"\u00e9", "é"),
            r"s3cr3t\u002ft0k\u002ben\u003d\u00e9".to_string(),
            base64::engine::general_purpose::STANDARD.encode(secret),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
            hex::encode(secret),
            hex::encode_upper(secret),
        ];
        for form in forms {
            let scrubbed = redactor.scrub(&format!("before {form} after"));
            assert!(scrubbed.contains(REDACTED), "not scrubbed: {form} → {scrubbed}");
            assert!(!scrubbed.contains("s3cr3t"), "left a piece: {scrubbed}");
        }
    }

    #[test]
    fn json_and_percent_forms_real_encoders_write_are_scrubbed() {
        let secret = "s3cr3t/t0k+en=é&<x>'";
        let redactor = Redactor::new(bearer(secret).redaction_needles());
        let forms = [
            // .NET System.Text.Json: `+<>&'` and non-ASCII, upper-case hex.
            r"s3cr3t/t0k\u002Ben=\u00E9\u0026\u003Cx\u003E\u0027",
            // Python json.dumps: only non-ASCII, `/` raw.
            r"s3cr3t/t0k+en=\u00e9&<x>'",
            // PHP json_encode: `\/` and `\u00e9` together.
            r"s3cr3t\/t0k+en=\u00e9&<x>'",
            // Go encoding/json: only `<>&`, non-ASCII raw.
            r"s3cr3t/t0k+en=é\u0026\u003cx\u003e'",
            // Percent-encoding with mixed-case hex.
            "s3cr3t%2Ft0k%2ben%3D%C3%a9%26%3cx%3E%27",
        ];
        for form in forms {
            assert_eq!(
                redactor.scrub(&format!("before {form} after")),
                format!("before {REDACTED} after"),
                "{form}"
            );
        }
    }

    #[test]
    fn base64_is_scrubbed_at_every_alignment() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        let secret = "s3cr3t/t0k+en=é?>";
        let redactor = Redactor::new(bearer(secret).redaction_needles());
        for (prefix, suffix) in [("", ""), ("x", ""), ("xy", ""), ("xy", "tail")] {
            let blob = format!("{prefix}{secret}{suffix}");
            for encoded in [
                STANDARD.encode(&blob),
                URL_SAFE.encode(&blob),
                URL_SAFE_NO_PAD.encode(&blob),
            ] {
                let scrubbed = redactor.scrub(&format!("<{encoded}>"));
                let (head, tail) = scrubbed
                    .trim_matches(['<', '>'])
                    .split_once(REDACTED)
                    .unwrap_or_else(|| panic!("not scrubbed: {encoded}"));
                // What is left are the characters that mix secret bits with the neighbours'.
                assert!(head.len() <= 3, "{encoded} → {scrubbed}");
                assert!(tail.len() <= 3 + 4 * suffix.len().div_ceil(3), "{encoded} → {scrubbed}");
            }
        }
    }
}
