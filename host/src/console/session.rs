//! The console's sign-in session: the pasted API key, sealed with the vault's active key into
//! an HttpOnly, SameSite=Strict cookie scoped to `/console` (so it can never authenticate a
//! REST call), with a per-session CSRF token that every state-changing form must echo.

use crate::vault::Vault;
use crate::vault::cipher::Sealed;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// The session cookie's name over plain HTTP (local use).
pub const COOKIE: &str = "nexum_console";
/// Its name over HTTPS: the `__Host-` prefix makes browsers refuse it unless it is
/// `Secure`, host-only and `Path=/`, so a sibling subdomain cannot plant one.
pub const HOST_COOKIE: &str = "__Host-nexum_console";
/// Where the cookie is sent over plain HTTP: the console only.
pub const COOKIE_PATH: &str = "/console";
/// How long a sign-in lasts, in seconds (12 hours).
pub const LIFETIME_SECS: i64 = 12 * 3600;
/// The associated-data "workspace" and "row" the vault binds session cookies to, so no other
/// sealed value (a PKCE verifier, a secret) opens as a session and vice versa.
const SEAL_SCOPE: (&str, &str) = ("console", "session");

/// A signed-in console user: the key acts for them, the CSRF token guards their forms.
#[derive(Serialize, Deserialize)]
pub struct Session {
    /// The API key every console request is made with.
    #[serde(rename = "k")]
    pub api_key: String,
    /// The token every state-changing form carries back.
    #[serde(rename = "c")]
    pub csrf: String,
    /// The key's scopes when it signed in (to hide buttons; the API still decides).
    #[serde(rename = "s")]
    pub scopes: Vec<String>,
    /// The key's display name.
    #[serde(rename = "n")]
    pub key_name: String,
    /// Unix ms after which the cookie is refused.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.api_key.zeroize();
        self.csrf.zeroize();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("key_name", &self.key_name)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why a session could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The vault could not seal it (no randomness).
    #[error("the session could not be sealed")]
    Seal,
}

impl Session {
    /// A new session for `api_key` with a fresh CSRF token.
    pub fn new(api_key: String, key_name: String, scopes: Vec<String>, now_ms: i64) -> Result<Self, SessionError> {
        let mut token = [0u8; 32];
        getrandom::fill(&mut token).map_err(|_| SessionError::Seal)?;
        Ok(Self {
            api_key,
            csrf: URL_SAFE_NO_PAD.encode(token),
            scopes,
            key_name,
            expires_at: now_ms + LIFETIME_SECS * 1000,
        })
    }

    /// Whether the key held `scope` (or `admin`, which covers a workspace's write scopes).
    pub fn may(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// The cookie value: `<key id>.<nonce>.<ciphertext>`, base64url.
    pub fn seal(&self, vault: &Vault) -> Result<String, SessionError> {
        let json = Zeroizing::new(serde_json::to_vec(self).map_err(|_| SessionError::Seal)?);
        let sealed = vault
            .seal_value(SEAL_SCOPE.0, SEAL_SCOPE.1, &json)
            .map_err(|_| SessionError::Seal)?;
        Ok(format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(sealed.key_id.as_bytes()),
            URL_SAFE_NO_PAD.encode(&sealed.nonce),
            URL_SAFE_NO_PAD.encode(&sealed.ciphertext)
        ))
    }

    /// The session a request's cookie holds, if it opens and has not expired.
    pub fn from_headers(headers: &HeaderMap, vault: &Vault, secure: bool, now_ms: i64) -> Option<Self> {
        let value = cookie(headers, if secure { HOST_COOKIE } else { COOKIE })?;
        let mut parts = value.split('.');
        let (Some(key_id), Some(nonce), Some(ciphertext), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let sealed = Sealed {
            key_id: String::from_utf8(URL_SAFE_NO_PAD.decode(key_id).ok()?).ok()?,
            nonce: URL_SAFE_NO_PAD.decode(nonce).ok()?,
            ciphertext: URL_SAFE_NO_PAD.decode(ciphertext).ok()?,
        };
        let json = vault.open_untrusted_value(SEAL_SCOPE.0, SEAL_SCOPE.1, &sealed).ok()?;
        let session: Session = serde_json::from_slice(&json).ok()?;
        (session.expires_at > now_ms).then_some(session)
    }
}

/// The `Set-Cookie` header that stores `value` (or, with `None`, clears the cookie); over
/// HTTPS (`secure`) the `__Host-` cookie.
pub fn set_cookie(value: Option<&str>, secure: bool) -> HeaderValue {
    let (name, path, flag) = if secure {
        (HOST_COOKIE, "/", "; Secure")
    } else {
        (COOKIE, COOKIE_PATH, "")
    };
    let (value, age) = match value {
        Some(v) => (v, LIFETIME_SECS),
        None => ("", 0),
    };
    let text = format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={age}{flag}");
    // Base64url, ASCII names and attributes only: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("nexum_console=; Max-Age=0"))
}

/// One cookie of a request; `None` when it is missing or sent twice (a second one was
/// planted from elsewhere: trust neither).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Whether a state-changing request comes from the console's own pages: a cross-site or
/// cross-origin `Sec-Fetch-Site`, or an `Origin` other than the request's own host, is
/// refused even before the CSRF token is looked at.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match url::Url::parse(origin) {
        Ok(url) => {
            let authority = match (url.host_str(), url.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => return false,
            };
            authority.eq_ignore_ascii_case(host)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::vault::{KeySource, Keyring};

    fn vault() -> Vault {
        Vault::new(Keyring::generate(), KeySource::Env)
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={value}")).unwrap(),
        );
        headers
    }

    #[test]
    fn a_sealed_session_opens_with_its_key_and_csrf() {
        let vault = vault();
        let session = Session::new("nx_live_abc".into(), "ops".into(), vec!["admin".into()], 1_000).unwrap();
        let cookie = session.seal(&vault).unwrap();
        assert!(!cookie.contains("nx_live_abc"), "the key is not readable in the cookie");
        let opened = Session::from_headers(&with_cookie(&cookie), &vault, false, 2_000).unwrap();
        assert!(
            Session::from_headers(&with_cookie(&cookie), &vault, true, 2_000).is_none(),
            "over https only the __Host- cookie counts"
        );
        let mut planted = with_cookie(&cookie);
        planted.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={cookie}")).unwrap(),
        );
        assert!(
            Session::from_headers(&planted, &vault, false, 2_000).is_none(),
            "two cookies: neither"
        );
        assert_eq!(opened.api_key, "nx_live_abc");
        assert!(opened.csrf_matches(&session.csrf));
        assert!(!opened.csrf_matches(""));
        assert!(!opened.csrf_matches("guess"));
    }

    #[test]
    fn an_expired_tampered_or_foreign_cookie_is_no_session() {
        let vault = vault();
        let session = Session::new("nx_live_abc".into(), "ops".into(), vec![], 1_000).unwrap();
        let cookie = session.seal(&vault).unwrap();
        assert!(Session::from_headers(&with_cookie(&cookie), &vault, false, session.expires_at).is_none());
        let mut tampered = cookie.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(Session::from_headers(&with_cookie(&tampered), &vault, false, 2_000).is_none());
        assert!(Session::from_headers(&with_cookie(&cookie), &self::vault(), false, 2_000).is_none());
    }

    #[test]
    fn cross_origin_writes_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:9999"));
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(!same_origin(&headers));
    }
}
