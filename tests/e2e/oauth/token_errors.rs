//! Errors from the provider's token endpoint, at the callback exchange and on refresh: the
//! provider echoing what it was sent never puts a secret into a response, an event or a log.

use super::{assert_no_secret_leaked, connect, consent, setup, visit};
use nexum_tests::app::TestApp;
use nexum_tests::oauth_provider::Script;
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(token_endpoint_errors_never_echo_secrets);

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
    let forced = app.force_refresh(&app.key, &connection).await;
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
