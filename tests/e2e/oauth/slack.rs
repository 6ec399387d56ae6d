//! The Slack connector signing in with OAuth at the fake Slack, next to a plain bot token.

use super::{browser, follow_redirect, open_link, visit};
use nexum_tests::app::TestApp;
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(slack_connects_with_oauth);

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
    let link = started.body["authorization_url"].as_str().expect("url");
    let url = &open_link(&browser(), link).await;
    assert!(
        url.starts_with(&format!("{}/oauth/v2/authorize?", slack.origin())),
        "{url}"
    );
    assert!(
        url.contains("scope=chat%3Awrite%2Cchannels%3Aread%2Creactions%3Awrite%2Cfiles%3Awrite"),
        "{url}"
    );
    let callback = follow_redirect(&browser(), url).await;
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
