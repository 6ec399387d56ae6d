//! A fake OAuth2 provider on loopback: authorize and token endpoints plus one protected
//! resource. It checks client authentication and the PKCE verifier (S256), rotates refresh
//! tokens (a rotated one is refused with `invalid_grant` and counted as a stale use), issues
//! short-lived tokens on demand, and can be scripted to fail, echo secrets back, or hold a
//! request until the test releases it.
//!
//! Also the user's side of a sign-in, for any provider (this fake or a connector's own):
//! a browser that keeps cookies and follows no redirects, and helpers to walk it through one.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Client id the fake accepts.
pub const CLIENT_ID: &str = "nexum-test-client";
/// Client secret the fake accepts.
pub const CLIENT_SECRET: &str = "fake-client-secret-5f2a9c";

/// A scripted answer to the next token request.
pub enum Script {
    /// `400 {"error": "invalid_grant"}`.
    InvalidGrant,
    /// `503`.
    ServerError,
    /// `400 invalid_request` whose description echoes every parameter it received.
    EchoParameters,
    /// Signal `arrived`, wait for `release`, then answer `invalid_grant` (another node's
    /// rotation happened meanwhile).
    GatedInvalidGrant {
        /// Notified when the request arrives.
        arrived: Arc<Notify>,
        /// Awaited before answering.
        release: Arc<Notify>,
    },
}

struct Grant {
    challenge: Option<String>,
    redirect_uri: String,
}

#[derive(Default)]
struct Inner {
    deny: AtomicBool,
    always_unauthorized: AtomicBool,
    expires_in: AtomicU64,
    counter: AtomicU64,
    codes: Mutex<HashMap<String, Grant>>,
    access: Mutex<HashMap<String, Instant>>,
    refresh: Mutex<HashMap<String, bool>>,
    script: Mutex<VecDeque<Script>>,
    issued: Mutex<Vec<String>>,
    refreshes: AtomicUsize,
    stale_refresh_uses: AtomicUsize,
    resource_hits: AtomicUsize,
    exchanges: AtomicUsize,
    token_requests: AtomicUsize,
    extra: Mutex<serde_json::Map<String, Value>>,
}

/// A running fake provider.
#[derive(Clone)]
pub struct FakeOAuth {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl FakeOAuth {
    /// Start on 127.0.0.1:0. Tokens live an hour unless [`FakeOAuth::set_expires_in`].
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        inner.expires_in.store(3600, Ordering::SeqCst);
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/api/me", get(me))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Lifetime of tokens issued from now on.
    pub fn set_expires_in(&self, secs: u64) {
        self.inner.expires_in.store(secs, Ordering::SeqCst);
    }

    /// Other top-level fields every token answer carries from now on (Salesforce's
    /// `instance_url`, an `id_token`, …).
    pub fn set_token_extra(&self, fields: Value) {
        *self.inner.extra.lock().expect("lock") = fields.as_object().cloned().unwrap_or_default();
    }

    /// Make the user refuse consent.
    pub fn deny_consent(&self, deny: bool) {
        self.inner.deny.store(deny, Ordering::SeqCst);
    }

    /// Answer 401 to every resource request, whatever the token.
    pub fn always_unauthorized(&self, on: bool) {
        self.inner.always_unauthorized.store(on, Ordering::SeqCst);
    }

    /// Queue scripted answers for the next token requests.
    pub fn script(&self, scripts: impl IntoIterator<Item = Script>) {
        self.inner.script.lock().expect("lock").extend(scripts);
    }

    /// Revoke every access token (the next resource request answers 401).
    pub fn revoke_access_tokens(&self) {
        self.inner.access.lock().expect("lock").clear();
    }

    /// Issue a fresh token set as if another node had refreshed: `(access, refresh)`.
    pub fn mint(&self) -> (String, String) {
        let access = issue_access(&self.inner);
        let refresh = issue_refresh(&self.inner);
        (access, refresh)
    }

    /// Refresh-token grants received.
    pub fn refreshes(&self) -> usize {
        self.inner.refreshes.load(Ordering::SeqCst)
    }

    /// Refresh requests that presented an already-rotated refresh token.
    pub fn stale_refresh_uses(&self) -> usize {
        self.inner.stale_refresh_uses.load(Ordering::SeqCst)
    }

    /// Requests to the protected resource.
    pub fn resource_hits(&self) -> usize {
        self.inner.resource_hits.load(Ordering::SeqCst)
    }

    /// Requests to the token endpoint, whatever they carried.
    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Successful code exchanges.
    pub fn exchanges(&self) -> usize {
        self.inner.exchanges.load(Ordering::SeqCst)
    }

    /// Every secret the fake ever handed out or accepted (tokens, codes, client secret).
    pub fn secrets(&self) -> Vec<String> {
        let mut all = self.inner.issued.lock().expect("lock").clone();
        all.push(CLIENT_SECRET.to_string());
        all
    }
}

/// A new user's browser, with no cookies yet: it keeps cookies (the sign-in is bound to the
/// browser that opened the authorization link) and follows no redirects (the tests follow
/// them, looking at each hop).
pub fn fresh_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Where a redirect points: `response`'s `Location` header (which must be there).
pub fn location(response: &reqwest::Response) -> String {
    response.headers()[reqwest::header::LOCATION]
        .to_str()
        .expect("location")
        .to_string()
}

/// Open `url` in `browser`, expect a `302 Found` and return where it points: Nexum's
/// authorization link sends the browser to the provider's consent page, and the consent page
/// sends it back to Nexum's callback URL (with a code, or an error).
pub async fn follow_redirect(browser: &reqwest::Client, url: &str) -> String {
    let response = browser.get(url).send().await.expect("redirect");
    assert_eq!(response.status(), StatusCode::FOUND, "{url}");
    location(&response)
}

fn fresh(inner: &Inner, prefix: &str) -> String {
    let n = inner.counter.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let value = format!("{prefix}-{n}-{:x}", nanos ^ (u128::from(n) << 64));
    inner.issued.lock().expect("lock").push(value.clone());
    value
}

fn issue_access(inner: &Inner) -> String {
    let token = fresh(inner, "fake-at");
    let lifetime = Duration::from_secs(inner.expires_in.load(Ordering::SeqCst));
    inner
        .access
        .lock()
        .expect("lock")
        .insert(token.clone(), Instant::now() + lifetime);
    token
}

fn issue_refresh(inner: &Inner) -> String {
    let token = fresh(inner, "fake-rt");
    inner.refresh.lock().expect("lock").insert(token.clone(), false);
    token
}

async fn authorize(State(inner): State<Arc<Inner>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return (StatusCode::BAD_REQUEST, "redirect_uri missing").into_response();
    };
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return (StatusCode::BAD_REQUEST, "bad client_id or response_type").into_response();
    }
    let state = q.get("state").cloned().unwrap_or_default();
    let mut target = url::Url::parse(redirect_uri).expect("redirect uri");
    if inner.deny.load(Ordering::SeqCst) {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user denied access")
            .append_pair("state", &state);
    } else {
        let challenge = match (
            q.get("code_challenge"),
            q.get("code_challenge_method").map(String::as_str),
        ) {
            (Some(c), Some("S256")) => Some(c.clone()),
            (Some(_), _) => return (StatusCode::BAD_REQUEST, "only S256 is supported").into_response(),
            (None, _) => None,
        };
        let code = fresh(&inner, "fake-code");
        inner.codes.lock().expect("lock").insert(
            code.clone(),
            Grant {
                challenge,
                redirect_uri: redirect_uri.clone(),
            },
        );
        target
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &state);
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": code, "error_description": description }).to_string(),
    )
        .into_response()
}

async fn token(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    // Client authentication: HTTP Basic or form fields.
    let (id, secret) = match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(basic) if basic.starts_with("Basic ") => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&basic[6..])
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&decoded).into_owned();
            let (i, s) = text.split_once(':').unwrap_or_default();
            let decode = |v: &str| {
                url::form_urlencoded::parse(format!("v={v}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (decode(i), decode(s))
        }
        _ => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    if grant_type == "refresh_token" {
        inner.refreshes.fetch_add(1, Ordering::SeqCst);
    }
    let scripted = inner.script.lock().expect("lock").pop_front();
    match scripted {
        Some(Script::InvalidGrant) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "token revoked"),
        Some(Script::ServerError) => return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response(),
        Some(Script::EchoParameters) => {
            let echoed = format!("bad request: {} client_secret={secret}", String::from_utf8_lossy(&body));
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &echoed);
        }
        Some(Script::GatedInvalidGrant { arrived, release }) => {
            arrived.notify_one();
            release.notified().await;
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "refresh token was rotated");
        }
        None => {}
    }
    let expires_in = inner.expires_in.load(Ordering::SeqCst);
    match grant_type.as_str() {
        "authorization_code" => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some(grant) = inner.codes.lock().expect("lock").remove(&code) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code");
            };
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri mismatch");
            }
            if let Some(challenge) = grant.challenge {
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let computed =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                if computed != challenge {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verification failed");
                }
            }
            inner.exchanges.fetch_add(1, Ordering::SeqCst);
            let access = issue_access(&inner);
            let refresh = issue_refresh(&inner);
            tokens(&inner, &access, Some(&refresh), expires_in)
        }
        "refresh_token" => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let mut refresh = inner.refresh.lock().expect("lock");
            match refresh.get(&presented).copied() {
                None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown refresh token"),
                Some(true) => {
                    inner.stale_refresh_uses.fetch_add(1, Ordering::SeqCst);
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "refresh token already rotated",
                    );
                }
                Some(false) => {
                    refresh.insert(presented, true);
                }
            }
            drop(refresh);
            let access = issue_access(&inner);
            let rotated = issue_refresh(&inner);
            tokens(&inner, &access, Some(&rotated), expires_in)
        }
        "client_credentials" => {
            let access = issue_access(&inner);
            tokens(&inner, &access, None, expires_in)
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "unsupported"),
    }
}

fn tokens(inner: &Inner, access: &str, refresh: Option<&str>, expires_in: u64) -> Response {
    let mut body = json!({ "access_token": access, "token_type": "bearer", "expires_in": expires_in });
    for (k, v) in inner.extra.lock().expect("lock").iter() {
        body[k] = v.clone();
    }
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn me(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    inner.resource_hits.fetch_add(1, Ordering::SeqCst);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let valid = !inner.always_unauthorized.load(Ordering::SeqCst)
        && inner
            .access
            .lock()
            .expect("lock")
            .get(&token)
            .is_some_and(|exp| *exp > Instant::now());
    if !valid {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", "expired or revoked");
    }
    (StatusCode::OK, axum::Json(json!({ "user": "fake-user" }))).into_response()
}
