//! The authorization-code flow through the browser callback: connect, execute, reconnect,
//! return URLs; and the callbacks it refuses (replayed, unknown, expired, denied, another
//! workspace's), none of which leaves a connection behind.

use super::{assert_no_secret_leaked, call_me, connect, consent, oauth_manifest, setup, visit};
use nexum_tests::app::TestApp;
use nexum_tests::oauth_provider::{CLIENT_ID, FakeOAuth};
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(
    authorization_code_flow_connects_and_executes,
    refused_states_leave_no_connection,
    flows_stay_within_what_was_accepted,
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

/// A flow asks only for scopes the admin accepted, and a reconnect's tokens are not stored
/// if the connection was pointed at other hosts while the user was at the provider.
async fn flows_stay_within_what_was_accepted(app: TestApp) {
    let fake = setup(&app, "").await;
    let elsewhere = FakeOAuth::start().await;
    let start = |scopes: serde_json::Value| json!({ "connector": "http", "name": "x", "variables": { "base_url": fake.origin() }, "scopes": scopes });
    let wider = app
        .post(
            &app.key,
            "/api/v1/connections/oauth/authorize",
            start(json!(["read", "admin"])),
        )
        .await;
    assert_eq!(wider.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", wider.body);
    assert_eq!(wider.code(), "scope_not_accepted");
    let narrower = app
        .post(&app.key, "/api/v1/connections/oauth/authorize", start(json!(["read"])))
        .await;
    assert_eq!(narrower.status, StatusCode::CREATED, "{:?}", narrower.body);

    let connection = connect(&app, &app.key, &fake).await;
    let (flow_id, callback) = consent(&app, &app.key, &fake, json!({ "connection_id": connection })).await;
    // Meanwhile an admin points the connection elsewhere, with tokens for there.
    let (token, _) = elsewhere.mint();
    let moved = app
        .patch(
            &app.key,
            &format!("/api/v1/connections/{connection}"),
            json!({ "variables": { "base_url": elsewhere.origin() }, "credentials": { "access_token": token } }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    let (status, body, _) = visit(&callback).await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(body.contains("connection_changed"), "{body}");
    let flow = app
        .get(&app.key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
        .await;
    assert_eq!(flow.body["status"], "failed", "{:?}", flow.body);
    // The tokens for the new hosts stayed: calls go to the new hosts with them.
    let called = call_me(&app, &app.key, &connection).await;
    assert_eq!(called.status, StatusCode::OK, "{:?}", called.body);
    assert_eq!(called.body["output"]["status"], 200, "{:?}", called.body);
    assert_eq!(elsewhere.resource_hits(), 1);
}

on_both_databases!(a_flow_completes_only_in_the_browser_that_opened_its_link);

/// The link is bound to the first browser that opens it: a leaked link opened elsewhere is
/// refused, and a callback arriving in another browser neither connects nor burns the
/// user's flow.
async fn a_flow_completes_only_in_the_browser_that_opened_its_link(app: TestApp) {
    let fake = setup(&app, "").await;
    let started = app
        .post(
            &app.key,
            "/api/v1/connections/oauth/authorize",
            json!({ "connector": "http", "name": "Bound", "variables": { "base_url": fake.origin() } }),
        )
        .await;
    let link = started.body["authorization_url"].as_str().expect("link").to_string();
    let flow_id = started.body["flow_id"].as_str().expect("flow").to_string();
    let user = super::fresh_browser();
    let provider_url = super::open_link(&user, &link).await;
    // Opened again (forwarded, leaked): refused.
    let again = super::fresh_browser().get(&link).send().await.expect("link");
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    // The provider sends the callback; a stranger's browser presenting it gets nothing.
    let callback = super::follow_redirect(&user, &provider_url).await;
    let stranger = super::fresh_browser().get(&callback).send().await.expect("callback");
    assert_eq!(stranger.status(), StatusCode::BAD_REQUEST);
    assert!(stranger.text().await.unwrap_or_default().contains("browser_mismatch"));
    let flow = app
        .get(&app.key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
        .await;
    assert_eq!(flow.body["status"], "pending", "the user's flow is intact");
    // The user's own browser completes it.
    let mine = user.get(&callback).send().await.expect("callback");
    assert_eq!(mine.status(), StatusCode::OK);
    let flow = app
        .get(&app.key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
        .await;
    assert_eq!(flow.body["status"], "connected", "{:?}", flow.body);
}
