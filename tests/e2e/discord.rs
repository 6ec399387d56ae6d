//! The Discord connector against a fake Discord: the exact v10 requests, the bot token only
//! in `Authorization: Bot …`, a nonce derived from the idempotency key, and Discord's errors
//! under stable codes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use nexum_host::runtime::Invocation;
use nexum_tests::fakes::{self, Fake};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};

const TOKEN: &str = "MTA5.fake-discord-bot-token.x1";

fn authed(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(format!("Bot {TOKEN}").as_str())
}

fn denied() -> axum::response::Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "message": "401: Unauthorized", "code": 0 })),
    )
        .into_response()
}

async fn discord() -> Fake {
    let router = Router::new()
        .route(
            "/api/v10/channels/{channel}/messages",
            post(|Path(channel): Path<String>, headers: HeaderMap, body: Bytes| async move {
                if !authed(&headers) {
                    return denied();
                }
                if channel == "40400000" {
                    return (StatusCode::NOT_FOUND, axum::Json(json!({ "message": "Unknown Channel", "code": 10003 })))
                        .into_response();
                }
                if channel == "42900000" {
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        axum::Json(json!({ "message": "You are being rate limited.", "retry_after": 0.5, "global": false, "code": 0 })),
                    )
                        .into_response();
                }
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                axum::Json(json!({ "id": "1111111111", "channel_id": channel, "content": v["content"] })).into_response()
            }),
        )
        .route(
            "/api/v10/channels/{channel}/messages/{message}",
            patch(|Path((_, message)): Path<(String, String)>, headers: HeaderMap| async move {
                if !authed(&headers) {
                    return denied();
                }
                axum::Json(json!({ "id": message })).into_response()
            })
            .delete(|headers: HeaderMap| async move {
                if !authed(&headers) {
                    return denied();
                }
                StatusCode::NO_CONTENT.into_response()
            }),
        )
        .route(
            "/api/v10/users/@me",
            get(|headers: HeaderMap| async move {
                if !authed(&headers) {
                    return denied();
                }
                axum::Json(json!({ "id": "42", "username": "nexum-bot", "bot": true })).into_response()
            }),
        );
    fakes::serve(router).await
}

async fn setup(
    token: &str,
) -> (
    TestHost,
    Fake,
    std::sync::Arc<nexum_host::runtime::LoadedConnector>,
    std::sync::Arc<nexum_host::runtime::Connection>,
) {
    let fake = discord().await;
    let (host, connector, connection) = TestHost::connected(
        "discord",
        &[("api_base", &fake.origin())],
        &[("bot", &[("api_key", token)])],
    );
    (host, fake, connector, connection)
}

#[tokio::test]
async fn messages_are_sent_edited_and_deleted_as_the_bot() {
    let (host, fake, connector, connection) = setup(TOKEN).await;
    let run = |action: &str, input: Value, key: Option<&str>| {
        let (host, connector, connection) = (&host, connector.clone(), connection.clone());
        let action = action.to_string();
        let key = key.map(str::to_string);
        async move {
            host.runtime
                .execute_keyed(&connector, connection, Invocation::Action { name: action, input }, key)
                .await
                .result
        }
    };
    let sent = run(
        "send_message",
        json!({ "channel_id": "12345678", "content": "hello", "reply_to": "99999" }),
        Some("exe_1:post"),
    )
    .await
    .expect("sent");
    assert_eq!(sent, json!({ "id": "1111111111", "channel_id": "12345678" }));
    let again = run(
        "send_message",
        json!({ "channel_id": "12345678", "content": "hello", "reply_to": "99999" }),
        Some("exe_1:post"),
    )
    .await
    .expect("sent again");
    assert_eq!(again["id"], "1111111111");
    let edited = run(
        "edit_message",
        json!({ "channel_id": "12345678", "message_id": "1111111111", "content": "hi" }),
        None,
    )
    .await
    .expect("edited");
    assert_eq!(edited, json!({ "id": "1111111111" }));
    let deleted = run(
        "delete_message",
        json!({ "channel_id": "12345678", "message_id": "1111111111" }),
        None,
    )
    .await
    .expect("deleted");
    assert_eq!(deleted, json!({ "deleted": true }));

    let requests = fake.requests();
    let calls: Vec<(String, String)> = requests.iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert_eq!(
        calls,
        vec![
            ("POST".to_string(), "/api/v10/channels/12345678/messages".to_string()),
            ("POST".to_string(), "/api/v10/channels/12345678/messages".to_string()),
            (
                "PATCH".to_string(),
                "/api/v10/channels/12345678/messages/1111111111".to_string()
            ),
            (
                "DELETE".to_string(),
                "/api/v10/channels/12345678/messages/1111111111".to_string()
            ),
        ]
    );
    let first = requests[0].json();
    assert_eq!(first["content"], "hello");
    assert_eq!(first["message_reference"], json!({ "message_id": "99999" }));
    assert_eq!(first["enforce_nonce"], true);
    let nonce = first["nonce"].as_str().expect("a nonce").to_string();
    assert!(nonce.len() <= 25, "{nonce}");
    assert_eq!(
        requests[1].json()["nonce"],
        nonce.as_str(),
        "the same key, the same nonce"
    );
    assert_eq!(requests[2].json(), json!({ "content": "hi" }));
    for r in &requests {
        assert!(
            !r.everything_but("authorization").contains(TOKEN),
            "the token left Authorization: {r:?}"
        );
    }
    let me = host
        .runtime
        .execute(&connector, connection, Invocation::TestConnection)
        .await;
    assert_eq!(
        me.result.expect("me"),
        json!({ "id": "42", "username": "nexum-bot", "bot": true })
    );
}

#[tokio::test]
async fn discord_errors_map_to_stable_codes() {
    let (host, _fake, connector, connection) = setup(TOKEN).await;
    let (code, message, retryable) = connector_error(
        host.run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel_id": "40400000", "content": "x" }),
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    assert!(
        message.contains("10003") && message.contains("Unknown Channel"),
        "{message}"
    );
    let (code, _, retryable) = connector_error(
        host.run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel_id": "42900000", "content": "x" }),
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    let (host, _fake, connector, connection) = setup("MTA5.revoked-token.zz").await;
    let (code, _, retryable) = connector_error(
        host.run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel_id": "12345678", "content": "x" }),
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));
}
