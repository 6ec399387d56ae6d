//! Bad input gets the right status and a problem body, and changes nothing.

use nexum_tests::app::TestApp;
use nexum_tests::fakes;
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(bad_input_is_refused_and_changes_nothing);

async fn bad_input_is_refused_and_changes_nothing(app: TestApp) {
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let run = format!("/api/v1/connections/{conn}/actions/send_message");
    let json_ct = [("content-type", "application/json")];
    let connections_before = app.get(&app.key, "/api/v1/connections").await.body;

    let checks = [
        (app.post_raw(&app.key, &run, b"{not json".to_vec(), &json_ct).await, StatusCode::BAD_REQUEST, "bad_request"),
        (app.post(&app.key, &run, json!({ "channel": 42, "text": "x" })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        (app.post(&app.key, &run, json!({ "channel": "C1" })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        (app.post_raw(&app.key, &run, b"{}".to_vec(), &[("content-type", "text/plain")]).await, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (app.post_raw(&app.key, &run, vec![b' '; 2 << 20], &json_ct).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (app.post(&app.key, &format!("/api/v1/connections/{conn}/actions/nope"), json!({})).await, StatusCode::NOT_FOUND, "unknown_action"),
        (app.post(&app.key, "/api/v1/connections", json!({ "connector": "slack", "name": "x", "credentials": { "password": "p" } })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_credentials"),
        (app.post(&app.key, "/api/v1/connections", json!({ "connector": "slack", "name": 5 })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (app.post(&app.key, "/api/v1/connections", json!({ "connector": "slack", "name": "x", "credentials": { "token": "t0k3n-long" }, "variables": { "api_base": "*://*:*" } })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_variables"),
        (app.post(&app.key, "/api/v1/connections", json!({ "connector": "slack", "name": "x", "credentials": { "token": "xoxb-1" } })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_credentials"),
        (app.post(&app.key, "/api/v1/connections", json!({ "connector": "slack", "name": "x", "auth_scheme": "oauth", "credentials": { "access_token": "abc" } })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_credentials"),
        (app.post(&app.key, "/api/v1/connections", json!({ "connector": "slack", "name": "x", "extra": true })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (app.get(&app.key, "/api/v1/connections?limit=1000").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_limit"),
        (app.get(&app.key, "/api/v1/nowhere").await, StatusCode::NOT_FOUND, "not_found"),
    ];
    for (i, (reply, status, code)) in checks.iter().enumerate() {
        assert_eq!(reply.status, *status, "case {i}: {:?}", reply.body);
        assert_eq!(reply.code(), *code, "case {i}: {:?}", reply.body);
        assert_eq!(
            reply.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "case {i}"
        );
        assert_eq!(reply.body["status"], status.as_u16());
        assert!(reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // A bad component or manifest upload installs nothing.
    let form_bad = app.post(&app.key, "/api/v1/connectors", json!({})).await;
    assert!(form_bad.status.is_client_error());
    assert!(slack.requests().is_empty(), "no bad input reached Slack");
    assert_eq!(
        app.get(&app.key, "/api/v1/connections").await.body,
        connections_before,
        "no bad input changed anything"
    );
    app.shutdown().await;
}
