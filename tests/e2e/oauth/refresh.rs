//! Token refresh: renewal on a 401, failure accounting up to `refresh_exhausted` and forced
//! recovery, `invalid_grant` after another node's rotation, and single-flight refresh under
//! a race across two nodes.

use super::{assert_no_secret_leaked, call_me, connect, expire_now, setup};
use nexum_tests::app::{Backend, TestApp};
use nexum_tests::oauth_provider::Script;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

on_both_databases!(
    unauthorized_upstream_refreshes_once_and_retries_once,
    repeated_failures_exhaust_and_forced_refresh_recovers,
    invalid_grant_after_another_rotation_keeps_the_connection,
);

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
    let forced = app.force_refresh(&app.key, &connection).await;
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
        .connection_any_workspace(&connection.parse().expect("connection id"))
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

/// 50 concurrent actions on an expired token, spread over two nodes sharing PostgreSQL (and
/// over one node on SQLite): exactly one refresh at the provider, in each of two rounds, and
/// never a rotated refresh token presented again.
async fn refresh_race(backend: Backend) {
    let capacity = |c: &mut nexum_host::config::Config| c.max_concurrent_calls = 64;
    let app = TestApp::start_with(backend, capacity).await;
    let fake = setup(&app, "").await;
    let connection = connect(&app, &app.key, &fake).await;
    let second = match backend {
        Backend::Postgres => Some(app.second_node(capacity).await),
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
