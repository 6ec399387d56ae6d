//! OAuth2 connections against a fake provider on loopback: the authorization-code flow
//! end to end, refused states, client credentials, single-flight refresh across two nodes,
//! rotation, 401 renewal, `invalid_grant` after another node's rotation, failure accounting,
//! and no token in any response or log.

use nexum_tests::app::{Reply, TestApp};
use nexum_tests::oauth_provider::{CLIENT_ID, CLIENT_SECRET, FakeOAuth, follow_redirect, fresh_browser, location};
use reqwest::StatusCode;
use serde_json::{Value, json};

mod client_credentials;
mod flow;
mod operator_app;
mod refresh;
mod slack;
mod sweep;
mod token_errors;
mod token_variables;

/// The generic HTTP connector, authenticating with OAuth2 at the fake.
pub(crate) fn oauth_manifest(extra: &str) -> String {
    let (_, manifest) = nexum_tests::plugins::connector("http");
    let start = manifest.find("[[auth]]").expect("auth block");
    let end = manifest[start..].find("[limits]").expect("limits") + start;
    let auth = format!(
        "[[auth]]\nid = \"api\"\ntype = \"oauth2\"\nlabel = \"Sign in\"\nhosts = [\"{{{{ base_url }}}}\"]\nauthorization_url = \"{{{{ base_url }}}}/authorize\"\ntoken_url = \"{{{{ base_url }}}}/token\"\nscopes = [\"read\", \"write\"]\n{extra}\n"
    );
    format!("{}{}{}", &manifest[..start], auth, &manifest[end..])
}

pub(crate) async fn install(app: &TestApp, manifest: &str) {
    let parsed = nexum_manifest::Manifest::parse(manifest).expect("manifest");
    let accept = nexum_marketplace::permissions::Permissions::of(&parsed);
    let bundle = nexum_tests::bundles::bundle("http", Some(manifest), None);
    let installed = app.install_bundle(&app.key, bundle, Some(&accept)).await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
}

pub(crate) async fn register_app(app: &TestApp, key: &str) {
    let put = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/oauth-apps/http",
            Some(key),
            Some(json!({ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET })),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert!(!put.body.to_string().contains(CLIENT_SECRET));
}

async fn setup(app: &TestApp, extra: &str) -> FakeOAuth {
    nexum_tests::logs::capture();
    let fake = FakeOAuth::start().await;
    install(app, &oauth_manifest(extra)).await;
    register_app(app, &app.key).await;
    fake
}

/// The user's browser, the same for every test here: keeps cookies, follows no redirects
/// (the tests follow them). [`fresh_browser`] is another one, with no cookies.
fn browser() -> reqwest::Client {
    static BROWSER: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    BROWSER.get_or_init(fresh_browser).clone()
}

/// Open Nexum's authorization link in `browser`: it binds the flow to the browser and
/// redirects to the provider. Returns the provider URL.
async fn open_link(browser: &reqwest::Client, link: &str) -> String {
    let opened = browser.get(link).send().await.expect("link");
    assert_eq!(opened.status(), StatusCode::FOUND, "{link}");
    assert!(opened.headers().contains_key(reqwest::header::SET_COOKIE));
    location(&opened)
}

/// Start a flow and return (flow id, the callback URL the provider sends the browser to).
async fn consent(app: &TestApp, key: &str, fake: &FakeOAuth, extra: Value) -> (String, String) {
    let mut body = json!({ "connector": "http", "name": "Fake account", "variables": { "base_url": fake.origin() } });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        if e.contains_key("connection_id") {
            // A reconnect names the connection only.
            b.clear();
        }
        b.extend(e.clone());
    }
    let started = app.post(key, "/api/v1/connections/oauth/authorize", body).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let link = started.body["authorization_url"].as_str().expect("url").to_string();
    assert!(
        link.starts_with(&format!("{}/api/v1/oauth/begin?state=", app.base)),
        "{link}"
    );
    let url = open_link(&browser(), &link).await;
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("scope=read+write"), "{url}");
    let callback = follow_redirect(&browser(), &url).await;
    assert!(
        callback.starts_with(&format!("{}/api/v1/oauth/callback?", app.base)),
        "{callback}"
    );
    (started.body["flow_id"].as_str().expect("flow").to_string(), callback)
}

async fn visit(url: &str) -> (StatusCode, String, Option<String>) {
    let response = browser().get(url).send().await.expect("callback");
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    (status, response.text().await.unwrap_or_default(), location)
}

/// The whole flow; returns the new connection id.
async fn connect(app: &TestApp, key: &str, fake: &FakeOAuth) -> String {
    let (flow_id, callback) = consent(app, key, fake, json!({})).await;
    let (status, page, _) = visit(&callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let flow = app
        .get(key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
        .await;
    assert_eq!(flow.body["status"], "connected", "{:?}", flow.body);
    flow.body["connection_id"].as_str().expect("connection").to_string()
}

async fn call_me(app: &TestApp, key: &str, connection: &str) -> Reply {
    app.post(
        key,
        &format!("/api/v1/connections/{connection}/actions/request"),
        json!({ "url": "/api/me" }),
    )
    .await
}

/// No token, code or client secret the provider ever issued appears in `texts` or in any
/// log line captured so far.
fn assert_no_secret_leaked(fake: &FakeOAuth, texts: &[String]) {
    let logs = nexum_tests::logs::captured();
    for secret in fake.secrets() {
        assert!(!logs.contains(&secret), "a secret was logged: {secret}");
        for t in texts {
            assert!(!t.contains(&secret), "a secret was returned: {secret} in {t}");
        }
    }
}

async fn expire_now(app: &TestApp, connection: &str) {
    // Make the stored token look expired, as time would.
    let state = app.state();
    let record = state
        .db
        .connection_any_workspace(&connection.parse().expect("connection id"))
        .await
        .expect("db")
        .expect("row");
    let sealed = state
        .db
        .secret_of(&record.workspace_id, connection)
        .await
        .expect("db")
        .expect("secret");
    let mut fields = state.vault.open_fields(&sealed).expect("open");
    fields.0.insert("expires_at".into(), "1".into());
    fields.0.insert("issued_at".into(), "0".into());
    let resealed = state
        .vault
        .seal_fields(&record.workspace_id, connection, &fields)
        .expect("seal");
    state.db.put_secret(&resealed).await.expect("put");
    sqlx::query("UPDATE connections SET token_expires_at = 1 WHERE id = $1")
        .bind(connection)
        .execute(state.db.pool())
        .await
        .expect("expiry column");
    state.connections.evict_all();
}
