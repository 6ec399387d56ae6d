//! The Slack connector against a fake Slack: the exact requests, the token only in the
//! `Authorization` header, Slack errors mapped to connector errors.

use nexum_host::runtime::{CallError, Invocation};
use nexum_tests::fakes::{self, SLACK_TOKEN};
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

async fn setup() -> (
    TestHost,
    fakes::Fake,
    std::sync::Arc<nexum_host::runtime::LoadedConnector>,
    std::sync::Arc<nexum_host::runtime::Connection>,
) {
    let slack = fakes::slack().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("slack", None);
    let connection = host.connect(
        &connector,
        "conn_slack",
        &[("api_base", &slack.origin())],
        &[("bot_token", &[("token", SLACK_TOKEN)])],
    );
    (host, slack, connector, connection)
}

/// The token was sent as `Authorization: Bearer …` and nowhere else in the request.
fn assert_token_only_in_authorization(request: &fakes::Recorded) {
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {SLACK_TOKEN}").as_str())
    );
    assert!(
        !request.everything_but("authorization").contains(SLACK_TOKEN),
        "token leaked outside Authorization: {request:?}"
    );
}

#[tokio::test]
async fn send_message_posts_exact_json_with_bearer_token() {
    let (host, slack, connector, connection) = setup().await;
    let out = host
        .run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel": "C1", "text": "hello", "thread_ts": "1.2" }),
        )
        .await;
    assert_eq!(
        out.result.expect("sent"),
        json!({ "channel": "C1", "ts": "1700000000.000100" })
    );

    let requests = slack.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/api/chat.postMessage"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({ "channel": "C1", "text": "hello", "thread_ts": "1.2" })
    );
    assert_token_only_in_authorization(r);
}

#[tokio::test]
async fn update_message_and_add_reaction_send_what_slack_expects() {
    let (host, slack, connector, connection) = setup().await;
    let out = host
        .run(
            &connector,
            &connection,
            "update_message",
            json!({ "channel": "C1", "ts": "1.2", "text": "edited" }),
        )
        .await;
    assert_eq!(out.result.expect("updated"), json!({ "channel": "C1", "ts": "1.2" }));
    let out = host
        .run(
            &connector,
            &connection,
            "add_reaction",
            json!({ "channel": "C1", "ts": "1.2", "name": ":thumbsup:" }),
        )
        .await;
    assert_eq!(out.result.expect("reacted"), json!({ "ok": true }));

    let requests = slack.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", "/api/chat.update")
    );
    assert_eq!(
        requests[0].json(),
        json!({ "channel": "C1", "ts": "1.2", "text": "edited" })
    );
    assert_eq!(
        (requests[1].method.as_str(), requests[1].path.as_str()),
        ("POST", "/api/reactions.add")
    );
    assert_eq!(
        requests[1].json(),
        json!({ "channel": "C1", "timestamp": "1.2", "name": "thumbsup" })
    );
    requests.iter().for_each(assert_token_only_in_authorization);
}

#[tokio::test]
async fn list_channels_pages_with_a_cursor() {
    let (host, slack, connector, connection) = setup().await;
    let first = host
        .run(&connector, &connection, "list_channels", json!({ "limit": 2 }))
        .await
        .result
        .expect("page 1");
    assert_eq!(first["channels"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        first["channels"][1],
        json!({ "id": "C2", "name": "secret-plans", "is_private": true })
    );
    assert_eq!(first["next_cursor"], "page2");
    let second = host
        .run(&connector, &connection, "list_channels", json!({ "cursor": "page2" }))
        .await
        .result
        .expect("page 2");
    assert_eq!(
        second["channels"],
        json!([{ "id": "C3", "name": "random", "is_private": false }])
    );
    assert_eq!(second["next_cursor"], serde_json::Value::Null);

    let requests = slack.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/api/conversations.list")
    );
    assert_eq!(requests[0].query.as_deref(), Some("limit=2"));
    assert_eq!(requests[1].query.as_deref(), Some("limit=100&cursor=page2"));
    assert!(requests[0].body.is_empty());
    requests.iter().for_each(assert_token_only_in_authorization);
}

#[tokio::test]
async fn test_connection_calls_auth_test() {
    let (host, slack, connector, connection) = setup().await;
    let out = host
        .runtime
        .execute(&connector, connection, Invocation::TestConnection)
        .await;
    assert_eq!(
        out.result.expect("auth ok"),
        json!({ "team": "Acme", "team_id": "T1", "user": "nexum-bot", "user_id": "U1" })
    );
    let requests = slack.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", "/api/auth.test")
    );
    assert_token_only_in_authorization(&requests[0]);
}

#[tokio::test]
async fn slack_errors_become_connector_errors() {
    let (host, _slack, connector, connection) = setup().await;
    let out = host
        .run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel": "C404", "text": "x" }),
        )
        .await;
    match out.result {
        Err(CallError::Connector { code, retryable, .. }) => {
            assert_eq!(code, "channel_not_found");
            assert!(!retryable);
        }
        other => panic!("expected channel_not_found, got {other:?}"),
    }

    let wrong = host.connect(
        &connector,
        "conn_wrong",
        &[("api_base", &_slack.origin())],
        &[("bot_token", &[("token", "xoxb-wrong-token")])],
    );
    let out = host
        .runtime
        .execute(&connector, wrong, Invocation::TestConnection)
        .await;
    assert_eq!(out.result.expect_err("bad token").code(), "invalid_auth");
}

#[tokio::test]
async fn input_is_validated_against_the_schema_before_the_connector_runs() {
    let (host, slack, connector, connection) = setup().await;
    let out = host
        .run(&connector, &connection, "send_message", json!({ "channel": "C1" }))
        .await;
    let Err(CallError::InvalidInput { errors }) = out.result else {
        panic!("expected invalid input, got {:?}", out.result)
    };
    assert!(errors.iter().any(|e| e.contains("text")), "{errors:?}");
    let out = host
        .run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel": "C1", "text": "x", "extra": 1 }),
        )
        .await;
    assert!(matches!(out.result, Err(CallError::InvalidInput { .. })));
    let out = host.run(&connector, &connection, "no_such_action", json!({})).await;
    assert_eq!(out.result.expect_err("unknown").code(), "unknown_action");
    assert!(slack.requests().is_empty(), "nothing may reach Slack on bad input");
}

#[tokio::test]
async fn debug_trace_shows_the_request_with_the_token_redacted() {
    let (host, _slack, connector, connection) = setup().await;
    let out = host
        .run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel": "C1", "text": "hi" }),
        )
        .await;
    assert!(out.result.is_ok());
    let x = &out.trace.http[0];
    assert_eq!(x.method, "POST");
    assert!(x.url.ends_with("/api/chat.postMessage"));
    assert_eq!(x.status, Some(200));
    assert_eq!(x.credential.as_deref(), Some("bot_token"));
    assert!(
        x.request_headers
            .contains(&("authorization".into(), "[REDACTED]".into()))
    );
    let rendered = serde_json::to_string(&out.trace).expect("trace json");
    assert!(!rendered.contains(SLACK_TOKEN));
}
