//! OAuth2 connections against a fake provider on loopback: the authorization-code flow
//! end to end, refused states, client credentials, single-flight refresh across two nodes,
//! rotation, 401 renewal, `invalid_grant` after another node's rotation, failure accounting,
//! and no token in any response or log.

use nexum_tests::app::{Backend, Reply, TestApp};
use nexum_tests::oauth_provider::{CLIENT_ID, CLIENT_SECRET, FakeOAuth, Script};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

/// The generic HTTP connector, authenticating with OAuth2 at the fake.
fn oauth_manifest(extra: &str) -> String {
    let (_, manifest) = nexum_tests::plugins::connector("http");
    let start = manifest.find("[[auth]]").expect("auth block");
    let end = manifest[start..].find("[limits]").expect("limits") + start;
    let auth = format!(
        "[[auth]]\nid = \"api\"\ntype = \"oauth2\"\nlabel = \"Sign in\"\nhosts = [\"{{{{ base_url }}}}\"]\nauthorization_url = \"{{{{ base_url }}}}/authorize\"\ntoken_url = \"{{{{ base_url }}}}/token\"\nscopes = [\"read\", \"write\"]\n{extra}\n"
    );
    format!("{}{}{}", &manifest[..start], auth, &manifest[end..])
}

async fn install(app: &TestApp, manifest: &str) {
    let parsed = nexum_manifest::Manifest::parse(manifest).expect("manifest");
    let accept = nexum_marketplace::permissions::Permissions::of(&parsed);
    let bundle = nexum_tests::bundles::bundle("http", Some(manifest), None);
    let installed = app.install_bundle(&app.key, bundle, Some(&accept)).await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
}

async fn register_app(app: &TestApp, key: &str) {
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

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
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
    let url = started.body["authorization_url"].as_str().expect("url").to_string();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("scope=read+write"), "{url}");
    let at_provider = browser().get(&url).send().await.expect("authorize");
    assert_eq!(at_provider.status(), StatusCode::FOUND);
    let callback = at_provider.headers()[reqwest::header::LOCATION]
        .to_str()
        .expect("location")
        .to_string();
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
        .connection_any_workspace(connection)
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

on_both_databases!(
    authorization_code_flow_connects_and_executes,
    refused_states_leave_no_connection,
    client_credentials_connection,
    unauthorized_upstream_refreshes_once_and_retries_once,
    repeated_failures_exhaust_and_forced_refresh_recovers,
    invalid_grant_after_another_rotation_keeps_the_connection,
    token_endpoint_errors_never_echo_secrets,
);

async fn authorization_code_flow_connects_and_executes(app: TestApp) {
    let fake = setup(&app, "").await;
    let connection = connect(&app, &app.key, &fake).await;
    assert_eq!(fake.exchanges(), 1);
    let called = call_me(&app, &app.key, &connection).await;
    assert_eq!(called.status, StatusCode::OK, "{:?}", called.body);
    assert_eq!(called.body["output"]["status"], 200);
    assert_eq!(called.body["output"]["body"]["user"], "fake-user");
    let view = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(view.body["status"], "connected");
    assert!(view.body["token_expires_at"].as_i64().is_some(), "{:?}", view.body);
    // The connection's own view, listing, events, audit: never a token.
    let list = app.get(&app.key, "/api/v1/connections").await;
    let events = app.get(&app.key, "/api/v1/events").await;
    let apps = app.get(&app.key, "/api/v1/oauth-apps").await;
    assert_eq!(apps.body["data"][0]["client_id"], CLIENT_ID);
    assert_no_secret_leaked(
        &fake,
        &[
            view.body.to_string(),
            list.body.to_string(),
            events.body.to_string(),
            apps.body.to_string(),
            called.body.to_string(),
        ],
    );

    // Reconnecting keeps the id and replaces the tokens.
    let (_, callback) = consent(&app, &app.key, &fake, json!({ "connection_id": connection })).await;
    let (status, _, _) = visit(&callback).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.exchanges(), 2);
    assert_eq!(call_me(&app, &app.key, &connection).await.status, StatusCode::OK);

    // Return URLs only on origins the operator allowed: no open redirect.
    let open_redirect = app
        .post(
            &app.key,
            "/api/v1/connections/oauth/authorize",
            json!({ "connector": "http", "name": "x", "variables": { "base_url": fake.origin() }, "return_url": "http://127.0.0.2:9/phish" }),
        )
        .await;
    assert_eq!(
        open_redirect.code(),
        "return_url_not_allowed",
        "{:?}",
        open_redirect.body
    );
    // A return URL gets the outcome instead of the plain page.
    let (flow, callback) = consent(
        &app,
        &app.key,
        &fake,
        json!({ "return_url": "http://127.0.0.1:9/done" }),
    )
    .await;
    let (status, _, location) = visit(&callback).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.expect("location");
    assert!(
        location.starts_with("http://127.0.0.1:9/done?status=connected"),
        "{location}"
    );
    assert!(location.contains(&flow));
}

async fn refused_states_leave_no_connection(app: TestApp) {
    let fake = setup(&app, "").await;

    // Replay: the second use of a state is refused and creates nothing.
    let (_, callback) = consent(&app, &app.key, &fake, json!({})).await;
    assert_eq!(visit(&callback).await.0, StatusCode::OK);
    let (status, body, _) = visit(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("state_used"), "{body}");

    // Unknown state.
    let forged = format!("{}/api/v1/oauth/callback?code=x&state=not-a-real-state", app.base);
    let (status, body, _) = visit(&forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid_state"), "{body}");

    // Expired state (older than 10 minutes).
    let (flow_id, callback) = consent(&app, &app.key, &fake, json!({})).await;
    sqlx::query("UPDATE oauth_flows SET expires_at = 1 WHERE id = $1")
        .bind(&flow_id)
        .execute(app.state().db.pool())
        .await
        .expect("age the flow");
    let (status, body, _) = visit(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("state_expired"), "{body}");
    let flow = app
        .get(&app.key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
        .await;
    assert_eq!(flow.body["status"], "failed");

    // The user refuses consent.
    fake.deny_consent(true);
    let (flow_id, callback) = consent(&app, &app.key, &fake, json!({})).await;
    let (status, body, _) = visit(&callback).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("access_denied"), "{body}");
    let flow = app
        .get(&app.key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
        .await;
    assert_eq!(flow.body["status"], "failed");
    fake.deny_consent(false);

    // Only the first flow made a connection.
    let list = app.get(&app.key, "/api/v1/connections").await;
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(1), "{:?}", list.body);
    let mine = list.body["data"][0]["id"].as_str().expect("id").to_string();

    // Another workspace sees none of it and cannot reconnect our connection.
    let other = app.new_workspace("other").await;
    assert_eq!(
        app.get(&other, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&other, &format!("/api/v1/connections/{mine}")).await.status,
        StatusCode::NOT_FOUND
    );
    let hijack = app
        .post(
            &other,
            "/api/v1/connections/oauth/authorize",
            json!({ "connection_id": mine }),
        )
        .await;
    assert_eq!(hijack.status, StatusCode::NOT_FOUND, "{:?}", hijack.body);
    // A state minted in our workspace connects in our workspace only, whoever completes it.
    let (flow_id, callback) = consent(&app, &app.key, &fake, json!({})).await;
    assert_eq!(visit(&callback).await.0, StatusCode::OK);
    assert_eq!(
        app.get(&other, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let theirs = app.get(&other, "/api/v1/connections").await;
    assert_eq!(theirs.body["data"].as_array().map(Vec::len), Some(0));
    // Without an app of their own (and no operator app) they cannot start a flow at all.
    install_in(&app, &other).await;
    let no_app = app
        .post(
            &other,
            "/api/v1/connections/oauth/authorize",
            json!({ "connector": "http", "name": "x", "variables": { "base_url": fake.origin() } }),
        )
        .await;
    assert_eq!(no_app.code(), "oauth_app_missing", "{:?}", no_app.body);
    assert_no_secret_leaked(&fake, &[]);
}

async fn install_in(app: &TestApp, key: &str) {
    let manifest = oauth_manifest("");
    let parsed = nexum_manifest::Manifest::parse(&manifest).expect("manifest");
    let accept = nexum_marketplace::permissions::Permissions::of(&parsed);
    let bundle = nexum_tests::bundles::bundle("http", Some(&manifest), None);
    let installed = app.install_bundle(key, bundle, Some(&accept)).await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
}

async fn client_credentials_connection(app: TestApp) {
    nexum_tests::logs::capture();
    let fake = FakeOAuth::start().await;
    let manifest = oauth_manifest("").replace("authorization_url = \"{{ base_url }}/authorize\"\n", "");
    install(&app, &manifest).await;
    let created = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Service", "credentials": { "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET }, "variables": { "base_url": fake.origin() } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(call_me(&app, &app.key, &id).await.status, StatusCode::OK);
    // Expired: a new token comes from the client-credentials grant again.
    fake.revoke_access_tokens();
    expire_now(&app, &id).await;
    let called = call_me(&app, &app.key, &id).await;
    assert_eq!(called.body["output"]["status"], 200, "{:?}", called.body);
    // Wrong client secret: refused, nothing created.
    let refused = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Bad", "credentials": { "client_id": CLIENT_ID, "client_secret": "wrong-secret-value" }, "variables": { "base_url": fake.origin() } }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{:?}", refused.body);
    assert_eq!(refused.code(), "oauth_rejected");
    assert!(!refused.body.to_string().contains("wrong-secret-value"));
    let list = app.get(&app.key, "/api/v1/connections").await;
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(1));
    assert_no_secret_leaked(&fake, &[created.body.to_string(), list.body.to_string()]);
}

async fn unauthorized_upstream_refreshes_once_and_retries_once(app: TestApp) {
    let fake = setup(&app, "").await;
    let connection = connect(&app, &app.key, &fake).await;
    // The provider revokes the token early: one refresh, one retry, success.
    fake.revoke_access_tokens();
    let called = call_me(&app, &app.key, &connection).await;
    assert_eq!(called.body["output"]["status"], 200, "{:?}", called.body);
    assert_eq!((fake.refreshes(), fake.resource_hits()), (1, 2));
    // An upstream that refuses every token: still one refresh and one retry, then the 401 is
    // the connector's to report — never a loop.
    fake.always_unauthorized(true);
    let called = call_me(&app, &app.key, &connection).await;
    assert_eq!(called.body["output"]["status"], 401, "{:?}", called.body);
    assert_eq!((fake.refreshes(), fake.resource_hits()), (2, 4));
    assert_eq!(fake.stale_refresh_uses(), 0);
    assert_no_secret_leaked(&fake, &[called.body.to_string()]);
}

async fn repeated_failures_exhaust_and_forced_refresh_recovers(app: TestApp) {
    let fake = setup(&app, "").await;
    let connection = connect(&app, &app.key, &fake).await;
    fake.script([Script::InvalidGrant, Script::InvalidGrant, Script::InvalidGrant]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        expire_now(&app, &connection).await;
        let called = call_me(&app, &app.key, &connection).await;
        assert_eq!(called.status, StatusCode::BAD_GATEWAY, "{:?}", called.body);
        assert_eq!(called.code(), "oauth_invalid_grant");
        let view = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
        statuses.push(view.body["status"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(statuses, ["error", "error", "refresh_exhausted"]);
    // Exhausted: calls fail fast without bothering the provider.
    let before = fake.refreshes();
    let called = call_me(&app, &app.key, &connection).await;
    assert_eq!(
        (called.status, called.code()),
        (StatusCode::CONFLICT, "refresh_exhausted")
    );
    assert_eq!(fake.refreshes(), before);
    // A health check does not make it healthy either.
    let test = app
        .post(&app.key, &format!("/api/v1/connections/{connection}/test"), json!({}))
        .await;
    assert_eq!(test.body["ok"], false, "{:?}", test.body);
    assert_eq!(test.body["status"], "refresh_exhausted");
    // Events: three refresh failures and the status changes.
    let events = app.get(&app.key, "/api/v1/events?type=connection.refresh_failed").await;
    assert_eq!(
        events.body["data"].as_array().map(Vec::len),
        Some(3),
        "{:?}",
        events.body
    );
    let changes = app.get(&app.key, "/api/v1/events?type=connection.status_changed").await;
    let transitions: Vec<(String, String)> = changes.body["data"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["data"]["from"].as_str().unwrap_or_default().into(),
                e["data"]["to"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [
            ("connected".to_string(), "error".to_string()),
            ("error".into(), "refresh_exhausted".into())
        ]
    );
    // Forcing a refresh recovers.
    let forced = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{connection}/refresh"),
            json!({}),
        )
        .await;
    assert_eq!(forced.status, StatusCode::OK, "{:?}", forced.body);
    assert_eq!(forced.body["status"], "connected");
    assert_eq!(call_me(&app, &app.key, &connection).await.status, StatusCode::OK);
    let view = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(view.body["refresh_failures"], 0);
    assert_no_secret_leaked(&fake, &[events.body.to_string(), view.body.to_string()]);
}

async fn invalid_grant_after_another_rotation_keeps_the_connection(app: TestApp) {
    let fake = setup(&app, "").await;
    let connection = connect(&app, &app.key, &fake).await;
    expire_now(&app, &connection).await;
    let arrived = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    fake.script([Script::GatedInvalidGrant {
        arrived: arrived.clone(),
        release: release.clone(),
    }]);
    let base = app.base.clone();
    let key = app.key.clone();
    let id = connection.clone();
    let call = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/connections/{id}/actions/request"))
            .bearer_auth(key)
            .json(&json!({ "url": "/api/me" }))
            .send()
            .await
            .expect("call")
            .json::<Value>()
            .await
            .expect("json")
    });
    arrived.notified().await;
    // Meanwhile "another node" rotated the tokens and stored them.
    let (access, refresh) = fake.mint();
    let state = app.state();
    let ws = state
        .db
        .connection_any_workspace(&connection)
        .await
        .expect("db")
        .expect("row")
        .workspace_id;
    let fields = nexum_host::vault::SecretFields(
        [
            ("access_token".to_string(), access),
            ("refresh_token".to_string(), refresh),
            (
                "expires_at".to_string(),
                (nexum_host::store::now_ms() + 3_600_000).to_string(),
            ),
        ]
        .into(),
    );
    let sealed = state.vault.seal_fields(&ws, &connection, &fields).expect("seal");
    state.db.put_secret(&sealed).await.expect("store");
    release.notify_one();
    let body = call.await.expect("joined");
    assert_eq!(body["output"]["status"], 200, "{body}");
    let view = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(
        (view.body["status"].as_str(), view.body["refresh_failures"].as_i64()),
        (Some("connected"), Some(0))
    );
    assert_no_secret_leaked(&fake, &[body.to_string()]);
}

async fn token_endpoint_errors_never_echo_secrets(app: TestApp) {
    let fake = setup(&app, "").await;
    let (flow_id, callback) = consent(&app, &app.key, &fake, json!({})).await;
    fake.script([Script::EchoParameters]);
    let (status, body, _) = visit(&callback).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body.contains("token_exchange_failed") && body.contains("[REDACTED]"),
        "{body}"
    );
    let flow = app
        .get(&app.key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
        .await;
    assert_eq!(flow.body["status"], "failed");
    let list = app.get(&app.key, "/api/v1/connections").await;
    assert_eq!(
        list.body["data"].as_array().map(Vec::len),
        Some(0),
        "no half-made connection"
    );
    // And on refresh.
    let connection = connect(&app, &app.key, &fake).await;
    fake.script([Script::EchoParameters]);
    let forced = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{connection}/refresh"),
            json!({}),
        )
        .await;
    assert_eq!(forced.status, StatusCode::BAD_GATEWAY, "{:?}", forced.body);
    let view = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    let events = app.get(&app.key, "/api/v1/events").await;
    assert_no_secret_leaked(
        &fake,
        &[
            body,
            flow.body.to_string(),
            forced.body.to_string(),
            view.body.to_string(),
            events.body.to_string(),
        ],
    );
}

/// 50 concurrent actions on an expired token, spread over two nodes sharing PostgreSQL (and
/// over one node on SQLite): exactly one refresh at the provider, in each of two rounds, and
/// never a rotated refresh token presented again.
async fn refresh_race(backend: Backend) {
    let capacity = |c: &mut nexum_host::config::Config| c.max_concurrent_calls = 64;
    let app = TestApp::start_with(backend, capacity).await;
    let fake = setup(&app, "").await;
    let connection = connect(&app, &app.key, &fake).await;
    let second = match backend {
        Backend::Postgres => {
            let dir = tempfile::tempdir().expect("dir");
            let key_file = app.data_dir.path().join("master.keys");
            Some(
                TestApp::start_on(backend, dir, app.database_url.clone(), |c| {
                    c.master_key_file = key_file.into();
                    capacity(c);
                })
                .await,
            )
        }
        Backend::Sqlite => None,
    };
    for round in 1..=2 {
        expire_now(&app, &connection).await;
        if let Some(s) = &second {
            s.state().connections.evict_all();
        }
        let mut calls = Vec::new();
        for i in 0..50 {
            let node = match (&second, i % 2) {
                (Some(s), 1) => s.base.clone(),
                _ => app.base.clone(),
            };
            let key = app.key.clone();
            let id = connection.clone();
            calls.push(tokio::spawn(async move {
                reqwest::Client::new()
                    .post(format!("{node}/api/v1/connections/{id}/actions/request"))
                    .bearer_auth(key)
                    .json(&json!({ "url": "/api/me" }))
                    .send()
                    .await
                    .expect("call")
                    .json::<Value>()
                    .await
                    .expect("json")
            }));
        }
        for call in calls {
            let body = call.await.expect("joined");
            assert_eq!(body["output"]["status"], 200, "{body}");
        }
        assert_eq!(fake.refreshes(), round, "exactly one refresh per expiry");
    }
    assert_eq!(fake.stale_refresh_uses(), 0);
    assert_no_secret_leaked(&fake, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_race_two_nodes_postgres() {
    refresh_race(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_race_sqlite() {
    refresh_race(Backend::Sqlite).await;
}

async fn slack_connects_with_oauth(app: TestApp) {
    use nexum_tests::fakes::{SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_TOKEN};
    nexum_tests::logs::capture();
    let slack = nexum_tests::fakes::slack().await;
    assert_eq!(app.install(&app.key, "slack").await.status, StatusCode::CREATED);
    let put = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/oauth-apps/slack",
            Some(&app.key),
            Some(json!({ "client_id": SLACK_CLIENT_ID, "client_secret": SLACK_CLIENT_SECRET })),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    let started = app
        .post(
            &app.key,
            "/api/v1/connections/oauth/authorize",
            json!({ "connector": "slack", "name": "Acme via OAuth", "variables": { "api_base": slack.origin() } }),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let url = started.body["authorization_url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!("{}/oauth/v2/authorize?", slack.origin())),
        "{url}"
    );
    assert!(
        url.contains("scope=chat%3Awrite%2Cchannels%3Aread%2Creactions%3Awrite"),
        "{url}"
    );
    let at_slack = browser().get(url).send().await.expect("authorize");
    let callback = at_slack.headers()[reqwest::header::LOCATION]
        .to_str()
        .expect("location")
        .to_string();
    let (status, page, _) = visit(&callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let flow = app
        .get(
            &app.key,
            &format!(
                "/api/v1/connections/oauth/flows/{}",
                started.body["flow_id"].as_str().expect("flow")
            ),
        )
        .await;
    let connection = flow.body["connection_id"].as_str().expect("connection");
    let sent = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{connection}/actions/send_message"),
            json!({ "channel": "C1", "text": "hello from OAuth" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    let view = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(view.body["auth_scheme"], "oauth");
    for text in [
        view.body.to_string(),
        sent.body.to_string(),
        nexum_tests::logs::captured(),
    ] {
        assert!(!text.contains(SLACK_TOKEN) && !text.contains(SLACK_CLIENT_SECRET));
    }
    // A bot token still works, and is picked by its field name.
    let bot = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "slack", "name": "Acme bot", "credentials": { "token": SLACK_TOKEN }, "variables": { "api_base": slack.origin() } }),
        )
        .await;
    assert_eq!(
        (bot.status, bot.body["auth_scheme"].as_str()),
        (StatusCode::CREATED, Some("bot_token"))
    );
}

on_both_databases!(slack_connects_with_oauth);

async fn sweep_refreshes_ahead_and_expires_what_cannot_refresh(app: TestApp) {
    let fake = setup(&app, "").await;
    let connection = connect(&app, &app.key, &fake).await;
    expire_now(&app, &connection).await;
    assert_eq!(app.run_job_now("oauth-refresh-sweep").await.handled, 1);
    assert_eq!(fake.refreshes(), 1);
    let view = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert!(
        view.body["token_expires_at"].as_i64().unwrap_or(0) > nexum_host::store::now_ms(),
        "{:?}",
        view.body
    );
    // Nothing due: the sweep leaves the provider alone.
    assert_eq!(app.run_job_now("oauth-refresh-sweep").await.handled, 0);

    // Imported tokens without a refresh token: once lapsed, `expired`, never healthy.
    let (access, _) = fake.mint();
    let imported = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Imported", "credentials": { "access_token": access, "expires_at": "1" }, "variables": { "base_url": fake.origin() } }),
        )
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{:?}", imported.body);
    let id = imported.body["id"].as_str().expect("id").to_string();
    app.run_job_now("oauth-refresh-sweep").await;
    let view = app.get(&app.key, &format!("/api/v1/connections/{id}")).await;
    assert_eq!(view.body["status"], "expired", "{:?}", view.body);
    let called = call_me(&app, &app.key, &id).await;
    assert_eq!((called.status, called.code()), (StatusCode::CONFLICT, "token_expired"));
    let test = app
        .post(&app.key, &format!("/api/v1/connections/{id}/test"), json!({}))
        .await;
    assert_eq!(
        (test.body["ok"].as_bool(), test.body["status"].as_str()),
        (Some(false), Some("expired"))
    );
    // Importing fresh tokens brings it back.
    let (access, _) = fake.mint();
    let later = (nexum_host::store::now_ms() + 3_600_000).to_string();
    let patched = app
        .patch(
            &app.key,
            &format!("/api/v1/connections/{id}"),
            json!({ "credentials": { "access_token": access, "expires_at": later } }),
        )
        .await;
    assert_eq!(patched.body["status"], "connected", "{:?}", patched.body);
    assert_eq!(call_me(&app, &app.key, &id).await.body["output"]["status"], 200);
    // A revoked token that cannot be refreshed: the 401 marks it expired, and the call's
    // own outcome does not make it look healthy again.
    let (access, _) = fake.mint();
    let later = (nexum_host::store::now_ms() + 3_600_000).to_string();
    let revoked = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Revoked", "credentials": { "access_token": access, "expires_at": later }, "variables": { "base_url": fake.origin() } }),
        )
        .await;
    let revoked_id = revoked.body["id"].as_str().expect("id").to_string();
    fake.revoke_access_tokens();
    let called = call_me(&app, &app.key, &revoked_id).await;
    assert_eq!(called.body["output"]["status"], 401, "{:?}", called.body);
    let view = app.get(&app.key, &format!("/api/v1/connections/{revoked_id}")).await;
    assert_eq!(view.body["status"], "expired", "{:?}", view.body);
    assert_no_secret_leaked(&fake, &[imported.body.to_string(), view.body.to_string()]);
}

on_both_databases!(sweep_refreshes_ahead_and_expires_what_cannot_refresh);
