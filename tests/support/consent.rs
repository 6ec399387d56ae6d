//! The OAuth sign-in mechanics the connectors' end-to-end tests share, on both sides.
//!
//! Nexum's side: register a connector's OAuth app, start an authorization-code flow, open its
//! link in a fresh browser, approve the consent page and read the connected flow. What a test
//! checks of the consent page (its path, its query) stays in the test, between
//! [`open_consent_page`] and [`ConsentPage::approve`].
//!
//! The provider's side: a fake consent page that approves at once, and what it remembers of a
//! PKCE sign-in for the fake's own token endpoint to check the code exchange against. The
//! token endpoints themselves differ from provider to provider (their errors, their answers)
//! and stay with each fake.
//!
//! And the manifest's side: a connector's OAuth2 scheme, and the consent URL Nexum would
//! build from it.

use crate::app::{Reply, TestApp};
use crate::fakes::Recorded;
use crate::oauth_provider::{follow_redirect, fresh_browser};
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nexum_manifest::{AuthKind, AuthScheme, Manifest, OAuth2Endpoints};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Register the OAuth app `client_id`/`client_secret` for installed connector `connector`
/// (`PUT /api/v1/oauth-apps/{connector}` with `key`), expecting `200 OK`.
pub async fn register_oauth_app(app: &TestApp, key: &str, connector: &str, client_id: &str, client_secret: &str) {
    let put = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/oauth-apps/{connector}"),
            Some(key),
            Some(json!({ "client_id": client_id, "client_secret": client_secret })),
        )
        .await;
    assert_eq!(put.status, reqwest::StatusCode::OK, "{:?}", put.body);
}

/// Start an authorization-code flow (`POST /api/v1/connections/oauth/authorize` with `key`
/// and `body`), expecting `201 Created`. Returns (flow id, Nexum's authorization link).
pub async fn start_flow(app: &TestApp, key: &str, body: Value) -> (String, String) {
    let started = app.post(key, "/api/v1/connections/oauth/authorize", body).await;
    assert_eq!(started.status, reqwest::StatusCode::CREATED, "{:?}", started.body);
    let flow_id = started.body["flow_id"].as_str().expect("flow").to_string();
    let link = started.body["authorization_url"].as_str().expect("link").to_string();
    (flow_id, link)
}

/// A sign-in under way: a fresh browser opened Nexum's authorization link, which bound the
/// flow to it and sent it to the provider's consent page.
pub struct ConsentPage {
    /// The consent page's URL, parsed.
    pub url: url::Url,
    /// The consent page URL's query parameters (`client_id`, `scope`, `redirect_uri`, …).
    pub query: HashMap<String, String>,
    /// The consent page's URL exactly as the redirect named it.
    location: String,
    /// The user's browser, holding the cookie that binds the flow to it.
    browser: reqwest::Client,
}

/// Open Nexum's authorization `link` in a [`fresh_browser`], expect its redirect and return
/// the consent page it points to (not opened yet).
pub async fn open_consent_page(link: &str) -> ConsentPage {
    let browser = fresh_browser();
    let location = follow_redirect(&browser, link).await;
    let url = url::Url::parse(&location).expect("consent URL");
    let query = url.query_pairs().into_owned().collect();
    ConsentPage {
        url,
        query,
        location,
        browser,
    }
}

impl ConsentPage {
    /// Approve: open the consent page (which must redirect back to Nexum's callback), open
    /// the callback in the same browser (which must answer `200 OK`), then read flow
    /// `flow_id` with `key`, which must be `connected`. Returns (the new connection's id, the
    /// flow as read).
    pub async fn approve(self, app: &TestApp, key: &str, flow_id: &str) -> (String, Reply) {
        let callback = follow_redirect(&self.browser, &self.location).await;
        let done = self.browser.get(callback).send().await.expect("callback");
        assert_eq!(done.status(), reqwest::StatusCode::OK);
        let flow = app
            .get(key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
            .await;
        assert_eq!(flow.body["status"], "connected", "{:?}", flow.body);
        let connection = flow.body["connection_id"].as_str().expect("connection").to_string();
        (connection, flow)
    }
}

/// The form fields of a recorded request's body (a token request's, say).
pub fn token_form(r: &Recorded) -> HashMap<String, String> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

/// A fake consent page's approval: `302 Found` to `redirect_uri` with `code` and the `state`
/// of the consent request `query` (empty when it has none).
pub fn approve(redirect_uri: &str, code: &str, query: &HashMap<String, String>) -> Response {
    let mut target = url::Url::parse(redirect_uri).expect("redirect uri");
    target
        .query_pairs_mut()
        .append_pair("code", code)
        .append_pair("state", query.get("state").map(String::as_str).unwrap_or_default());
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// What a fake provider's consent page remembers of the PKCE sign-in it approved (the code
/// challenge and the redirect URI), for the fake's token endpoint to check the code exchange
/// against. Clones share it.
#[derive(Clone, Default)]
pub struct PkceGrant(Arc<Mutex<Option<(String, String)>>>);

impl PkceGrant {
    /// A consent page (`GET`) that approves at once: it wants `redirect_uri` and
    /// `code_challenge` (`400` without them), remembers them here and sends the browser back
    /// with `code` (see [`approve`]).
    pub fn consent_page(&self, code: &'static str) -> MethodRouter {
        let remembered = self.clone();
        get(move |Query(q): Query<HashMap<String, String>>| {
            let remembered = remembered.clone();
            async move {
                let (Some(redirect_uri), Some(challenge)) = (q.get("redirect_uri"), q.get("code_challenge")) else {
                    return (StatusCode::BAD_REQUEST, "redirect_uri and code_challenge required").into_response();
                };
                remembered.remember(challenge, redirect_uri);
                approve(redirect_uri, code, &q)
            }
        })
    }

    /// Remember the approved sign-in's code `challenge` and `redirect_uri` (for a consent
    /// page of a test's own).
    pub fn remember(&self, challenge: &str, redirect_uri: &str) {
        *self.0.lock().expect("lock") = Some((challenge.to_string(), redirect_uri.to_string()));
    }

    /// Whether the code exchange `form` redeems the remembered sign-in: a sign-in was
    /// approved, and `form` carries `code`, its `redirect_uri` and the `code_verifier` whose
    /// S256 challenge it sent. The sign-in is forgotten either way (a code is good once).
    pub fn redeem(&self, form: &HashMap<String, String>, code: &str) -> bool {
        let Some((expected, redirect_uri)) = self.0.lock().expect("lock").take() else {
            return false;
        };
        let field = |name: &str| form.get(name).map(String::as_str);
        let verifier = field("code_verifier").unwrap_or_default();
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        field("code") == Some(code) && field("redirect_uri") == Some(redirect_uri.as_str()) && computed == expected
    }
}

/// First-party connector `connector`'s manifest (from `plugins/`), parsed.
pub fn connector_manifest(connector: &str) -> Manifest {
    let (_, text) = crate::plugins::connector(connector);
    Manifest::parse(&text).expect("manifest")
}

/// `manifest`'s auth scheme `id`, which must be there and be OAuth2: (the scheme, its
/// endpoints).
pub fn oauth2_scheme<'m>(manifest: &'m Manifest, id: &str) -> (&'m AuthScheme, &'m OAuth2Endpoints) {
    let scheme = manifest.auth_scheme(id).expect("oauth scheme");
    let AuthKind::OAuth2(endpoints) = &scheme.kind else {
        panic!("not oauth2: {scheme:?}");
    };
    (scheme, endpoints)
}

/// The query of the consent URL Nexum builds for `endpoints`, authorizing at `authorize` for
/// OAuth app `client_id` with the scheme's own scopes (redirect URI
/// `https://nexum.example.com/api/v1/oauth/callback`, state `state-1`), and whether a PKCE
/// verifier came with it.
pub fn consent_query(
    endpoints: &OAuth2Endpoints,
    authorize: &url::Url,
    client_id: &str,
) -> (HashMap<String, String>, bool) {
    let (consent, verifier) = nexum_host::oauth::provider::authorization_url(
        endpoints,
        authorize,
        client_id,
        "https://nexum.example.com/api/v1/oauth/callback",
        "state-1",
        &endpoints.scopes,
    )
    .expect("consent URL");
    (consent.query_pairs().into_owned().collect(), verifier.is_some())
}
