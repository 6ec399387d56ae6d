//! The Discord connector against a fake Discord: the exact v10 requests, the bot token only
//! in `Authorization: Bot …`, a nonce derived from the idempotency key, Discord's errors
//! under stable codes, and channel-webhook messages whose URL is the credential (the host
//! appends `<id>/<token>` to `/api/webhooks/`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use nexum_host::runtime::{CallError, Invocation};
use nexum_tests::fakes::{self, Fake};
use nexum_tests::host::{Network, TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::HashMap;

const TOKEN: &str = "MTA5.fake-discord-bot-token.x1";
/// The channel webhook's id and token: its URL is `/api/webhooks/<id>/<token>`.
const WEBHOOK_ID: &str = "1234567890123";
const WEBHOOK_TOKEN: &str = "fakeWebhookToken-Ab_9xYzQ7";
/// The webhook's channel.
const WEBHOOK_CHANNEL: &str = "12345678";

/// Discord's "execute webhook": the message (with `wait=true`), or Discord's errors.
async fn execute_webhook(
    Path((id, token)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if let Some(error) = webhook_refusal(&id, &token, &headers) {
        return error;
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    if v["content"] == "slow down" {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(
                json!({ "message": "You are being rate limited.", "retry_after": 1.5, "global": false, "code": 0 }),
            ),
        )
            .into_response();
    }
    let channel = match q.get("thread_id").map(String::as_str) {
        Some("40400000") => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({ "message": "Unknown Channel", "code": 10003 })),
            )
                .into_response();
        }
        Some(thread) => thread.to_string(),
        None => WEBHOOK_CHANNEL.to_string(),
    };
    if q.get("wait").map(String::as_str) != Some("true") {
        return StatusCode::NO_CONTENT.into_response();
    }
    axum::Json(json!({ "id": "2222222222", "channel_id": channel, "webhook_id": id, "content": v["content"] }))
        .into_response()
}

/// Discord's "get webhook with token": the webhook object (its token included, as Discord does).
async fn get_webhook(Path((id, token)): Path<(String, String)>, headers: HeaderMap) -> axum::response::Response {
    if let Some(error) = webhook_refusal(&id, &token, &headers) {
        return error;
    }
    axum::Json(json!({
        "id": id, "type": 1, "guild_id": "99999999", "channel_id": WEBHOOK_CHANNEL,
        "name": "Deploys", "avatar": null, "application_id": null, "token": token,
    }))
    .into_response()
}

/// Discord's answer to an unknown webhook or a wrong token; a bot token has no business here.
fn webhook_refusal(id: &str, token: &str, headers: &HeaderMap) -> Option<axum::response::Response> {
    if headers.contains_key("authorization") {
        return Some(
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "message": "no auth here", "code": 0 })),
            )
                .into_response(),
        );
    }
    if id != WEBHOOK_ID {
        return Some(
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({ "message": "Unknown Webhook", "code": 10015 })),
            )
                .into_response(),
        );
    }
    if token != WEBHOOK_TOKEN {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "message": "Invalid Webhook Token", "code": 50027 })),
            )
                .into_response(),
        );
    }
    None
}

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
        .route("/api/webhooks/{id}/{token}", post(execute_webhook).get(get_webhook))
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

/// A host with Discord loaded and a connection made only with a channel webhook, given as
/// `pasted` (the whole URL, or `<id>/<token>`).
fn webhook_setup(
    fake: &Fake,
    pasted: &str,
) -> (
    TestHost,
    std::sync::Arc<nexum_host::runtime::LoadedConnector>,
    std::sync::Arc<nexum_host::runtime::Connection>,
) {
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("discord", None);
    let connection = host.connect(
        &connector,
        "conn_discord_hook",
        &[("api_base", &fake.origin())],
        &[("webhook", &[("api_key", pasted)])],
    );
    (host, connector, connection)
}

#[tokio::test]
async fn webhook_messages_go_to_the_webhook_path_with_the_key_appended_by_the_host() {
    let fake = discord().await;
    // The admin pasted the URL Discord shows (Copy Webhook URL).
    let pasted = format!("https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}");
    let (host, connector, connection) = webhook_setup(&fake, &pasted);
    let embeds = json!([{ "title": "v1.2", "description": "all green", "color": 3066993 }]);
    let out = host
        .run(
            &connector,
            &connection,
            "send_webhook_message",
            json!({
                "content": "Deployed",
                "username": "Deploy bot",
                "avatar_url": "https://example.com/avatar.png",
                "embeds": embeds,
                "tts": false,
            }),
        )
        .await;
    let output = out.result.expect("sent");
    assert_eq!(output, json!({ "id": "2222222222", "channel_id": WEBHOOK_CHANNEL }));
    assert_eq!(out.trace.http[0].credential.as_deref(), Some("webhook"));
    let trace = serde_json::to_string(&out.trace).expect("trace json");
    assert!(!trace.contains(WEBHOOK_TOKEN), "{trace}");

    // Into a thread, and with embeds only.
    let out = host
        .run(
            &connector,
            &connection,
            "send_webhook_message",
            json!({ "embeds": embeds, "thread_id": "87654321" }),
        )
        .await;
    assert_eq!(
        out.result.expect("sent in the thread"),
        json!({ "id": "2222222222", "channel_id": "87654321" })
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let path = format!("/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", path.as_str())
    );
    assert_eq!(requests[0].query.as_deref(), Some("wait=true"));
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        requests[0].json(),
        json!({
            "content": "Deployed",
            "username": "Deploy bot",
            "avatar_url": "https://example.com/avatar.png",
            "embeds": embeds,
            "tts": false,
        })
    );
    assert_eq!(
        (requests[1].method.as_str(), requests[1].path.as_str()),
        ("POST", path.as_str())
    );
    assert_eq!(requests[1].query.as_deref(), Some("wait=true&thread_id=87654321"));
    assert_eq!(requests[1].json(), json!({ "embeds": embeds }));
    for r in &requests {
        assert_eq!(r.header("authorization"), None, "the key is in the path, nowhere else");
        let elsewhere = r.everything_but("").replacen(&path, "", 1);
        assert!(!elsewhere.contains(WEBHOOK_TOKEN), "the token left the path: {r:?}");
    }

    // test-connection reads the webhook itself (no bot needed): its name and channel only.
    fake.clear();
    let me = host
        .runtime
        .execute(&connector, connection.clone(), Invocation::TestConnection)
        .await;
    let account = me.result.expect("webhook");
    assert_eq!(account, json!({ "name": "Deploys", "channel_id": WEBHOOK_CHANNEL }));
    assert!(!serde_json::to_string(&me.trace).expect("trace").contains(WEBHOOK_TOKEN));
    let requests = fake.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", path.as_str())
    );
    assert_eq!(requests[0].query, None);

    // The bot's actions need a bot.
    fake.clear();
    let out = host
        .run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel_id": "12345678", "content": "x" }),
        )
        .await;
    let Err(CallError::Connector { code, message, .. }) = out.result else {
        panic!("expected missing_credential, got {:?}", out.result)
    };
    assert_eq!(code, "missing_credential");
    assert!(message.contains("send_webhook_message"), "{message}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn webhook_errors_map_to_stable_codes() {
    let fake = discord().await;
    let (host, connector, connection) = webhook_setup(&fake, &format!("{WEBHOOK_ID}/{WEBHOOK_TOKEN}"));
    let run = |input: Value| host.run(&connector, &connection, "send_webhook_message", input);

    let (code, message, retryable) = connector_error(run(json!({ "content": "slow down" })).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    assert!(message.contains("retry after 1.5 s"), "{message}");
    let (code, message, _) = connector_error(run(json!({ "content": "x", "thread_id": "40400000" })).await);
    assert_eq!(code, "not_found");
    assert!(message.contains("10003"), "{message}");

    // At least one of content and embeds, and at most ten embeds: refused before sending.
    fake.clear();
    for input in [
        json!({ "username": "nobody" }),
        json!({ "content": "" }),
        json!({ "embeds": [] }),
        json!({ "content": "x", "embeds": vec![json!({ "title": "e" }); 11] }),
    ] {
        let out = run(input.clone()).await;
        assert!(
            matches!(out.result, Err(CallError::InvalidInput { .. })),
            "{input}: {:?}",
            out.result
        );
    }
    assert!(fake.requests().is_empty());

    // A wrong token is unauthorized; a deleted webhook is a revoked credential. Both flip the
    // connection's status.
    let (host, connector, wrong) = webhook_setup(&fake, &format!("{WEBHOOK_ID}/notTheRightToken123"));
    let (code, message, _) = connector_error(
        host.run(&connector, &wrong, "send_webhook_message", json!({ "content": "x" }))
            .await,
    );
    assert_eq!(code, "unauthorized", "{message}");
    let (host, connector, deleted) = webhook_setup(&fake, &format!("99999999999/{WEBHOOK_TOKEN}"));
    let (code, message, retryable) = connector_error(
        host.run(&connector, &deleted, "send_webhook_message", json!({ "content": "x" }))
            .await,
    );
    assert_eq!((code.as_str(), retryable), ("token_revoked", false), "{message}");
    assert!(message.contains("Unknown Webhook"), "{message}");
}

#[tokio::test]
async fn a_bot_connection_cannot_send_webhook_messages() {
    let (host, fake, connector, connection) = setup(TOKEN).await;
    let (code, message, _) = connector_error(
        host.run(
            &connector,
            &connection,
            "send_webhook_message",
            json!({ "content": "x" }),
        )
        .await,
    );
    assert_eq!(code, "missing_credential");
    assert!(message.contains("`webhook`"), "{message}");
    assert!(fake.requests().is_empty());
}
