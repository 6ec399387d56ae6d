//! The main path over HTTP: bootstrap key → installed Slack → connection → executed action,
//! with the token reaching the fake Slack and nowhere else.

use nexum_tests::app::TestApp;
use nexum_tests::fakes::{self, SLACK_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(
    a_change_decided_against_stale_variables_is_refused,
    bootstrap_to_executed_action,
    connection_lifecycle,
    idempotent_execution,
    debug_trace_is_redacted
);

async fn bootstrap_to_executed_action(app: TestApp) {
    let slack = fakes::slack().await;
    assert!(app.key.starts_with("nx_live_") && app.key.len() >= 8 + 43);

    let installed = app.install(&app.key, "slack").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    assert_eq!(installed.body["connector_id"], "slack");
    assert_eq!(
        installed.body["permissions"]["credential_hosts"]["bot_token"],
        json!(["{{ api_base }}"])
    );
    assert!(installed.body["actions"]["send_message"]["input"]["required"].is_array());

    let conn = app.connect_slack(&app.key, &slack).await;
    let run = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{conn}/actions/send_message"),
            json!({ "channel": "C1", "text": "hello" }),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK, "{:?}", run.body);
    assert_eq!(
        run.body["output"],
        json!({ "channel": "C1", "ts": "1700000000.000100" })
    );
    assert!(
        run.body["execution_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("exe_"))
    );
    assert!(run.body.get("trace").is_none());

    let received = slack.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/api/chat.postMessage");
    assert_eq!(received[0].json(), json!({ "channel": "C1", "text": "hello" }));
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {SLACK_TOKEN}").as_str())
    );
    assert!(!received[0].everything_but("authorization").contains(SLACK_TOKEN));
    assert_eq!(
        run.headers.get("ratelimit-limit").and_then(|v| v.to_str().ok()),
        Some("600")
    );
    app.shutdown().await;
}

async fn connection_lifecycle(app: TestApp) {
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let path = format!("/api/v1/connections/{conn}");

    let got = app.get(&app.key, &path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["status"], "connected");
    assert_eq!(got.body["credential_fields"], json!(["token"]));
    assert!(!got.body.to_string().contains(SLACK_TOKEN), "secrets are write-only");

    let tested = app.post(&app.key, &format!("{path}/test"), json!({})).await;
    assert_eq!(tested.body["ok"], true, "{:?}", tested.body);
    assert_eq!(tested.body["account"]["team"], "Acme");

    for text in ["one", "two", "three"] {
        let run = app
            .post(
                &app.key,
                &format!("{path}/actions/send_message"),
                json!({ "channel": "C1", "text": text }),
            )
            .await;
        assert_eq!(run.status, StatusCode::OK);
    }
    let failed = app
        .post(
            &app.key,
            &format!("{path}/actions/send_message"),
            json!({ "channel": "C404", "text": "x" }),
        )
        .await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
    assert_eq!(failed.code(), "channel_not_found");
    assert_eq!(failed.body["errors"]["retryable"], false);

    let got = app.get(&app.key, &path).await;
    assert_eq!(got.body["usage"]["calls"], 4);
    assert_eq!(got.body["usage"]["errors"], 1);
    assert!(got.body["usage"]["latency"]["p50_ms"].as_u64().is_some());
    assert!(got.body["last_used_at"].as_i64().is_some());
    assert!(got.body["last_health_check"].as_i64().is_some());

    // Rotate the token through the API: the old one stops being sent.
    let updated = app
        .patch(
            &app.key,
            &path,
            json!({ "credentials": { "token": "xoxb-revoked-token" }, "name": "Acme 2" }),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.body["name"], "Acme 2");
    let tested = app.post(&app.key, &format!("{path}/test"), json!({})).await;
    assert_eq!(tested.body["ok"], false);
    let got = app.get(&app.key, &path).await;
    assert_eq!(got.body["status"], "error");
    assert!(
        got.body["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid_auth"))
    );

    let listed = app.get(&app.key, "/api/v1/connections?limit=1").await;
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));

    let deleted = app.delete(&app.key, &path).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&app.key, &path).await.status, StatusCode::NOT_FOUND);
    let run = app
        .post(
            &app.key,
            &format!("{path}/actions/send_message"),
            json!({ "channel": "C1", "text": "x" }),
        )
        .await;
    assert_eq!(run.status, StatusCode::NOT_FOUND);
    let secrets: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM secrets")
        .fetch_one(app.state().db.pool())
        .await
        .expect("count");
    assert_eq!(secrets.0, 0, "deleting the connection wiped its secret");

    let audit = app.get(&app.key, "/api/v1/audit-log?limit=100").await;
    let actions: Vec<&str> = audit.body["data"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in ["secret.create", "secret.use", "secret.update", "secret.delete"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    assert!(
        !audit.body.to_string().contains("xoxb-"),
        "the audit log never holds values"
    );
    app.shutdown().await;
}

async fn idempotent_execution(app: TestApp) {
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let path = format!("/api/v1/connections/{conn}/actions/send_message");
    let body = serde_json::to_vec(&json!({ "channel": "C1", "text": "once" })).expect("json");
    let headers = [("content-type", "application/json"), ("idempotency-key", "order-42")];
    let first = app.post_raw(&app.key, &path, body.clone(), &headers).await;
    let second = app.post_raw(&app.key, &path, body, &headers).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.body, second.body);
    assert_eq!(
        second.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(slack.requests().len(), 1, "the action ran once");

    let other = serde_json::to_vec(&json!({ "channel": "C1", "text": "different" })).expect("json");
    let reused = app.post_raw(&app.key, &path, other, &headers).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.code(), "idempotency_key_reused");
    assert_eq!(slack.requests().len(), 1);
    app.shutdown().await;
}

async fn debug_trace_is_redacted(app: TestApp) {
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let run = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{conn}/actions/send_message?debug=true"),
            json!({ "channel": "C1", "text": "hi" }),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK);
    let exchange = &run.body["trace"]["http"][0];
    assert_eq!(exchange["method"], "POST");
    assert_eq!(exchange["status"], 200);
    assert!(exchange["request_headers"].to_string().contains("[REDACTED]"));
    assert!(!run.body.to_string().contains(SLACK_TOKEN));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_secret_needs_the_secret_again() {
    let app = TestApp::sqlite().await;
    let slack = fakes::slack().await;
    let evil = fakes::upstream().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let path = format!("/api/v1/connections/{conn}");
    // A key that may edit connections but was never given the token tries to redirect it.
    let moved = app
        .patch(&app.key, &path, json!({ "variables": { "api_base": evil.origin() } }))
        .await;
    assert_eq!(
        (moved.status, moved.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "credentials_required")
    );
    let tested = app.post(&app.key, &format!("{path}/test"), json!({})).await;
    assert_eq!(tested.body["ok"], true, "still pointing at the real host");
    assert!(
        evil.requests().is_empty(),
        "the stored token never went to the new host"
    );
    // Renaming alone is fine; moving with a fresh secret is fine.
    assert_eq!(
        app.patch(&app.key, &path, json!({ "name": "renamed" })).await.status,
        StatusCode::OK
    );
    let with_secret = app
        .patch(
            &app.key,
            &path,
            json!({ "variables": { "api_base": evil.origin() }, "credentials": { "token": "xoxb-new-one" } }),
        )
        .await;
    assert_eq!(with_secret.status, StatusCode::OK);
    // Defaults are frozen into the connection at creation.
    let got = app.get(&app.key, &path).await;
    assert_eq!(got.body["variables"]["api_base"], evil.origin());
    app.shutdown().await;
}

/// Variables and secret change in one compare-and-set write: a change decided against
/// variables another request has since replaced (two racing PATCHes, another node) is
/// refused, so a new secret is never paired with the old hosts or the reverse.
async fn a_change_decided_against_stale_variables_is_refused(app: TestApp) {
    use nexum_host::ids::{ConnectionId, WorkspaceId};
    use nexum_host::store::ConnectionSettings;
    let slack = fakes::slack().await;
    let other = fakes::upstream().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let workspace = app.get(&app.key, "/api/v1/workspace").await;
    let ws: WorkspaceId = workspace.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("workspace id");
    let id: ConnectionId = conn.parse().expect("connection id");
    let state = app.state();
    let before = state.db.connection(&ws, &id).await.expect("db").expect("connection");

    // Another request moves the connection, with a fresh secret.
    let moved = app
        .patch(
            &app.key,
            &format!("/api/v1/connections/{conn}"),
            json!({ "variables": { "api_base": other.origin() }, "credentials": { "token": "xoxb-moved-token-1" } }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);

    // A write decided against the variables read before that loses, and changes nothing.
    let stale = ConnectionSettings {
        name: "stale rename",
        variables: &before.variables,
        expected_variables: &before.variables,
    };
    let written = state
        .db
        .update_connection_settings(&ws, &id, &stale, None)
        .await
        .expect("db");
    assert!(!written, "a stale compare-and-set must not write");
    let (now, secret) = state
        .db
        .connection_with_secret(&ws, &id)
        .await
        .expect("db")
        .expect("connection");
    assert!(now.variables.contains(&other.origin()), "{}", now.variables);
    assert_ne!(now.name, "stale rename");
    let fields = state.vault.open_fields(&secret.expect("secret")).expect("opens");
    assert_eq!(fields.0.get("token").map(String::as_str), Some("xoxb-moved-token-1"));
    app.shutdown().await;
}
