//! The Slack connector against a fake Slack: the exact requests, the token only in the
//! `Authorization` header, Slack errors mapped to connector errors, thread replies, the
//! three-step external file upload (bytes to the files host without a token, only there),
//! and incoming webhooks whose URL is the credential (the host appends it to the path).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use nexum_host::runtime::{CallError, Connection, Invocation, LoadedConnector};
use nexum_tests::fakes::{self, Fake, SLACK_TOKEN};
use nexum_tests::host::{Network, TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

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

#[tokio::test]
async fn thread_replies_carry_thread_ts_and_reply_broadcast() {
    let (host, slack, connector, connection) = setup().await;
    let out = host
        .run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel": "C1", "text": "also in the channel", "thread_ts": "1700000000.000100", "reply_broadcast": true }),
        )
        .await;
    assert_eq!(
        out.result.expect("replied"),
        json!({ "channel": "C1", "ts": "1700000000.000100" })
    );
    let requests = slack.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].json(),
        json!({ "channel": "C1", "text": "also in the channel", "thread_ts": "1700000000.000100", "reply_broadcast": true })
    );

    // Broadcasting is only for a reply.
    let out = host
        .run(
            &connector,
            &connection,
            "send_message",
            json!({ "channel": "C1", "text": "x", "reply_broadcast": true }),
        )
        .await;
    assert_eq!(out.result.expect_err("no thread").code(), "invalid_input");
    assert_eq!(slack.requests().len(), 1, "nothing more reached Slack");
}

// ---------------------------------------------------------------------------------------
// File uploads: files.getUploadURLExternal → the bytes to the upload URL → files.completeUploadExternal.

/// The id the fake hands out for an upload.
const FILE_ID: &str = "F0UPLOAD01";
/// The uploaded file's permalink.
const PERMALINK: &str = "https://acme.slack.com/files/U1/F0UPLOAD01/report.bin";
/// The path of the fake's upload URLs (on whatever origin the Web API fake names).
const UPLOAD_PATH: &str = "/upload/v1/CwABAAAAXbxz";

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(format!("Bearer {SLACK_TOKEN}").as_str())
}

/// Slack's files host: takes the bytes at the upload URL and answers `OK - <length>`.
async fn files_host() -> Fake {
    fakes::serve(Router::new().route(
        UPLOAD_PATH,
        post(|body: Bytes| async move { format!("OK - {}", body.len()) }),
    ))
    .await
}

/// The Web API's external-upload methods. `files.getUploadURLExternal` hands out an upload URL
/// on `upload_origin` (the files host, or a foreign one).
async fn upload_api(upload_origin: String) -> Fake {
    let ticket = move |headers: HeaderMap, Query(q): Query<HashMap<String, String>>| {
        let upload_origin = upload_origin.clone();
        async move {
            if !bearer_ok(&headers) {
                return axum::Json(json!({ "ok": false, "error": "invalid_auth" }));
            }
            let length = q.get("length").and_then(|l| l.parse::<u64>().ok());
            if !q.contains_key("filename") || length.is_none() {
                return axum::Json(json!({ "ok": false, "error": "invalid_arguments" }));
            }
            axum::Json(json!({
                "ok": true,
                "upload_url": format!("{upload_origin}{UPLOAD_PATH}?sig=f4ke"),
                "file_id": FILE_ID,
            }))
        }
    };
    let complete = |headers: HeaderMap, body: Bytes| async move {
        if !bearer_ok(&headers) {
            return axum::Json(json!({ "ok": false, "error": "invalid_auth" }));
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let file = &v["files"][0];
        axum::Json(json!({
            "ok": true,
            "files": [{ "id": file["id"], "title": file["title"], "permalink": PERMALINK }],
        }))
    };
    fakes::serve(
        Router::new()
            .route("/api/files.getUploadURLExternal", get(ticket))
            .route("/api/files.completeUploadExternal", post(complete)),
    )
    .await
}

/// A bot-token connection whose Web API is `api` and whose files host is `files_base`.
fn upload_connection(host: &TestHost, connector: &LoadedConnector, api: &Fake, files_base: &str) -> Arc<Connection> {
    host.connect(
        connector,
        "conn_upload",
        &[("api_base", &api.origin()), ("files_base", files_base)],
        &[("bot_token", &[("token", SLACK_TOKEN)])],
    )
}

#[tokio::test]
async fn upload_file_runs_the_external_upload_flow_with_the_bytes_intact() {
    let files = files_host().await;
    let api = upload_api(files.origin()).await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("slack", None);
    let connection = upload_connection(&host, &connector, &api, &files.origin());
    // Every byte value, and the bytes that text-minded code likes to mangle.
    let bytes: Vec<u8> = (0..=255_u8).chain(*b"\r\n\0 end").collect();
    let out = host
        .run(
            &connector,
            &connection,
            "upload_file",
            json!({
                "channel": "C1",
                "filename": "report.bin",
                "content_base64": base64::engine::general_purpose::STANDARD.encode(&bytes),
                "title": "Q3 report",
                "initial_comment": "Here it is",
                "thread_ts": "1700000000.000100",
                "alt_text": "a chart",
            }),
        )
        .await;
    assert_eq!(
        out.result.expect("uploaded"),
        json!({ "file_id": FILE_ID, "permalink": PERMALINK })
    );

    // Three requests, in this order, the token only on the Web API's two.
    let calls: Vec<(&str, &str, Option<&str>)> = out
        .trace
        .http
        .iter()
        .map(|x| (x.method.as_str(), x.url.as_str(), x.credential.as_deref()))
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0].0, "GET");
    assert!(
        calls[0].1.starts_with(&api.url("/api/files.getUploadURLExternal?")),
        "{calls:?}"
    );
    assert_eq!(calls[0].2, Some("bot_token"));
    assert_eq!(
        (calls[1].0, calls[1].1),
        ("POST", files.url(&format!("{UPLOAD_PATH}?sig=f4ke")).as_str())
    );
    assert_eq!(calls[1].2, None, "no credential goes to the upload URL");
    assert_eq!(
        (calls[2].0, calls[2].1),
        ("POST", api.url("/api/files.completeUploadExternal").as_str())
    );
    assert_eq!(calls[2].2, Some("bot_token"));

    let api_requests = api.requests();
    assert_eq!(api_requests.len(), 2);
    let ticket = &api_requests[0];
    assert_eq!(
        (ticket.method.as_str(), ticket.path.as_str()),
        ("GET", "/api/files.getUploadURLExternal")
    );
    assert_eq!(
        ticket.query.as_deref(),
        Some(format!("filename=report.bin&length={}&alt_txt=a%20chart", bytes.len()).as_str())
    );
    assert!(ticket.body.is_empty());
    let complete = &api_requests[1];
    assert_eq!(
        (complete.method.as_str(), complete.path.as_str()),
        ("POST", "/api/files.completeUploadExternal")
    );
    assert_eq!(complete.header("content-type"), Some("application/json"));
    assert_eq!(
        complete.json(),
        json!({
            "files": [{ "id": FILE_ID, "title": "Q3 report" }],
            "channel_id": "C1",
            "initial_comment": "Here it is",
            "thread_ts": "1700000000.000100",
        })
    );
    api_requests.iter().for_each(assert_token_only_in_authorization);

    let uploads = files.requests();
    assert_eq!(uploads.len(), 1);
    let upload = &uploads[0];
    assert_eq!((upload.method.as_str(), upload.path.as_str()), ("POST", UPLOAD_PATH));
    assert_eq!(upload.query.as_deref(), Some("sig=f4ke"));
    assert_eq!(upload.header("content-type"), Some("application/octet-stream"));
    assert_eq!(upload.header("authorization"), None, "the upload URL is pre-authorised");
    assert_eq!(&upload.body[..], bytes.as_slice(), "the bytes arrived intact");
    assert!(!upload.everything_but("").contains(SLACK_TOKEN));
}

#[tokio::test]
async fn upload_file_takes_text_and_keeps_an_unshared_file_private() {
    let files = files_host().await;
    let api = upload_api(files.origin()).await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("slack", None);
    let connection = upload_connection(&host, &connector, &api, &files.origin());
    let out = host
        .run(
            &connector,
            &connection,
            "upload_file",
            json!({ "filename": "hello.py", "content": "print('héllo')\n", "snippet_type": "python" }),
        )
        .await;
    assert_eq!(out.result.expect("uploaded")["file_id"], FILE_ID);
    let api_requests = api.requests();
    let text = "print('héllo')\n";
    assert_eq!(
        api_requests[0].query.as_deref(),
        Some(format!("filename=hello.py&length={}&snippet_type=python", text.len()).as_str())
    );
    assert_eq!(
        api_requests[1].json(),
        json!({ "files": [{ "id": FILE_ID, "title": "hello.py" }] }),
        "no channel: the file is not shared"
    );
    assert_eq!(&files.requests()[0].body[..], text.as_bytes());
}

#[tokio::test]
async fn an_upload_url_off_the_files_host_is_refused() {
    let files = files_host().await;
    let elsewhere = files_host().await;
    // Slack (or something posing as it) hands out an upload URL on another origin.
    let api = upload_api(elsewhere.origin()).await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("slack", None);
    let connection = upload_connection(&host, &connector, &api, &files.origin());
    let (code, message, retryable) = connector_error(
        host.run(
            &connector,
            &connection,
            "upload_file",
            json!({ "channel": "C1", "filename": "a.txt", "content": "secret plans" }),
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("upload_url_refused", false));
    assert!(
        message.contains(&elsewhere.origin()) && message.contains(&files.origin()),
        "{message}"
    );
    assert!(
        !message.contains("sig=f4ke"),
        "the signed URL stays out of the message: {message}"
    );
    assert!(elsewhere.requests().is_empty(), "nothing was sent off the files host");
    assert!(files.requests().is_empty());
    assert_eq!(api.requests().len(), 1, "the upload was not completed");

    // With the default files host (https://files.slack.com), a loopback upload URL is refused too.
    let default_files = host.connect(
        &connector,
        "conn_default_files",
        &[("api_base", &api.origin())],
        &[("bot_token", &[("token", SLACK_TOKEN)])],
    );
    let (code, _, _) = connector_error(
        host.run(
            &connector,
            &default_files,
            "upload_file",
            json!({ "filename": "a.txt", "content": "x" }),
        )
        .await,
    );
    assert_eq!(code, "upload_url_refused");
    assert!(elsewhere.requests().is_empty());
}

#[tokio::test]
async fn upload_file_input_is_checked_before_anything_is_sent() {
    let files = files_host().await;
    let api = upload_api(files.origin()).await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("slack", None);
    let connection = upload_connection(&host, &connector, &api, &files.origin());
    let bad = [
        // Both contents, or neither.
        json!({ "filename": "a.txt", "content": "x", "content_base64": "eA==" }),
        json!({ "filename": "a.txt" }),
        // A thread, or a comment, without the channel to share in.
        json!({ "filename": "a.txt", "content": "x", "thread_ts": "1.2" }),
        json!({ "filename": "a.txt", "content": "x", "initial_comment": "hi" }),
        // Not base64, or nothing once decoded.
        json!({ "filename": "a.txt", "content_base64": "not base64!" }),
        json!({ "filename": "a.txt", "content_base64": "QQ=" }),
        json!({ "filename": "a.txt", "content_base64": " \n" }),
    ];
    for input in bad {
        let out = host.run(&connector, &connection, "upload_file", input.clone()).await;
        assert_eq!(out.result.expect_err("refused").code(), "invalid_input", "{input}");
    }
    assert!(api.requests().is_empty() && files.requests().is_empty());
}

// ---------------------------------------------------------------------------------------
// Incoming webhooks: the URL is the credential; the host appends it to `/services/`.

/// The incoming webhook's key: what follows `/services/` in its URL.
const HOOK_KEY: &str = "T0SLACK01/B0HOOK002/s3cretHookToken9f8e7d6c";
/// The secret part of the key.
const HOOK_SECRET: &str = "s3cretHookToken9f8e7d6c";

/// Slack's incoming webhooks: `ok` for [`HOOK_KEY`], Slack's plain-text errors otherwise
/// (chosen by the message's text).
async fn hooks() -> Fake {
    let hook = |Path((team, bot, secret)): Path<(String, String, String)>, body: Bytes| async move {
        if format!("{team}/{bot}/{secret}") != HOOK_KEY {
            return (StatusCode::NOT_FOUND, "no_service").into_response();
        }
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
        };
        match v["text"].as_str() {
            None => (StatusCode::BAD_REQUEST, "no_text").into_response(),
            Some("archived") => (StatusCode::GONE, "channel_is_archived").into_response(),
            Some("prohibited") => (StatusCode::FORBIDDEN, "action_prohibited").into_response(),
            Some("busy") => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "30")],
                "rate_limited",
            )
                .into_response(),
            Some("boom") => (StatusCode::INTERNAL_SERVER_ERROR, "rollup_error").into_response(),
            Some(_) => "ok".into_response(),
        }
    };
    fakes::serve(Router::new().route("/services/{team}/{bot}/{secret}", post(hook))).await
}

/// A connection made only with an incoming webhook, given as `pasted` (the key, or the whole
/// URL), its hooks host pointed at `hooks`.
fn webhook_connection(host: &TestHost, connector: &LoadedConnector, hooks: &Fake, pasted: &str) -> Arc<Connection> {
    host.connect(
        connector,
        "conn_hook",
        &[("hooks_base", &hooks.origin())],
        &[("incoming_webhook", &[("api_key", pasted)])],
    )
}

#[tokio::test]
async fn post_webhook_sends_to_the_hook_with_the_key_appended_by_the_host() {
    let hooks = hooks().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("slack", None);
    let blocks = json!([{ "type": "section", "text": { "type": "mrkdwn", "text": "*Deployed* v1.2" } }]);
    // The admin gave the key, or pasted the whole URL Slack shows: the same hook either way.
    for pasted in [
        HOOK_KEY.to_string(),
        format!("https://hooks.slack.com/services/{HOOK_KEY}"),
    ] {
        hooks.clear();
        let connection = webhook_connection(&host, &connector, &hooks, &pasted);
        let out = host
            .run(
                &connector,
                &connection,
                "post_webhook",
                json!({ "text": "Deployed v1.2", "blocks": blocks, "unfurl_links": false }),
            )
            .await;
        let output = out.result.expect("posted");
        assert_eq!(output, json!({ "ok": true }));

        let requests = hooks.requests();
        assert_eq!(requests.len(), 1, "{pasted}");
        let r = &requests[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, format!("/services/{HOOK_KEY}"), "{pasted}");
        assert_eq!(r.query, None);
        assert_eq!(r.header("authorization"), None, "the key is in the path, nowhere else");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.json(),
            json!({ "text": "Deployed v1.2", "blocks": blocks, "unfurl_links": false })
        );
        assert!(!r.everything_but("").replacen(HOOK_KEY, "", 1).contains(HOOK_SECRET));

        // The key shows nowhere the caller can see: output, trace (debug mode), logs.
        assert_eq!(out.trace.http.len(), 1);
        assert_eq!(out.trace.http[0].credential.as_deref(), Some("incoming_webhook"));
        assert_eq!(out.trace.http[0].status, Some(200));
        let trace = serde_json::to_string(&out.trace).expect("trace json");
        assert!(!trace.contains(HOOK_SECRET), "{trace}");
        assert!(!output.to_string().contains(HOOK_SECRET));
    }
}

#[tokio::test]
async fn webhook_errors_map_to_stable_codes() {
    let hooks = hooks().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("slack", None);
    let connection = webhook_connection(&host, &connector, &hooks, HOOK_KEY);
    for (text, code, retryable) in [
        ("archived", "channel_is_archived", false),
        ("prohibited", "action_prohibited", false),
        ("busy", "rate_limited", true),
        ("boom", "upstream_error", true),
    ] {
        let (got, message, got_retryable) = connector_error(
            host.run(&connector, &connection, "post_webhook", json!({ "text": text }))
                .await,
        );
        assert_eq!((got.as_str(), got_retryable), (code, retryable), "{text}: {message}");
        assert!(!message.contains(HOOK_SECRET), "{message}");
        if text == "busy" {
            assert!(message.contains("30"), "the wait is passed on: {message}");
        }
    }

    // A removed webhook: its key is revoked, which marks the connection as failing.
    let removed = webhook_connection(&host, &connector, &hooks, "T0SLACK01/B0HOOK002/removedHookToken00000");
    let (code, message, retryable) = connector_error(
        host.run(&connector, &removed, "post_webhook", json!({ "text": "hello?" }))
            .await,
    );
    assert_eq!((code.as_str(), retryable), ("token_revoked", false), "{message}");
    assert!(message.contains("no_service"), "{message}");
    assert!(!message.contains("removedHookToken"), "{message}");
}

#[tokio::test]
async fn a_webhook_only_connection_can_only_post_to_its_webhook() {
    let hooks = hooks().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("slack", None);
    let connection = webhook_connection(&host, &connector, &hooks, HOOK_KEY);
    for (action, input) in [
        ("send_message", json!({ "channel": "C1", "text": "hi" })),
        ("list_channels", json!({})),
        ("upload_file", json!({ "filename": "a.txt", "content": "x" })),
    ] {
        let out = host.run(&connector, &connection, action, input).await;
        let Err(CallError::Connector { code, message, .. }) = out.result else {
            panic!("{action}: expected missing_credential, got {:?}", out.result)
        };
        assert_eq!(code, "missing_credential", "{action}");
        assert!(message.contains("post_webhook"), "{action}: {message}");
        assert!(out.trace.http.is_empty(), "{action} sent a request");
    }

    // test-connection: a webhook has no identity call, and anything sent to it posts.
    let out = host
        .runtime
        .execute(&connector, connection, Invocation::TestConnection)
        .await;
    assert_eq!(
        out.result.expect("described"),
        json!({ "kind": "incoming_webhook", "verified": false })
    );
    assert!(out.trace.http.is_empty());
    assert!(hooks.requests().is_empty(), "nothing was posted");
}

#[tokio::test]
async fn a_bot_connection_cannot_post_to_a_webhook() {
    let (host, slack, connector, connection) = setup().await;
    let (code, message, _) = connector_error(
        host.run(&connector, &connection, "post_webhook", json!({ "text": "hi" }))
            .await,
    );
    assert_eq!(code, "missing_credential");
    assert!(message.contains("incoming_webhook"), "{message}");
    assert!(slack.requests().is_empty());
}

/// An admin who pastes a whole incoming-webhook URL says which host the key belongs to: a
/// connection whose `hooks_base` points elsewhere is refused, naming the host, never the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_webhook_url_must_name_the_host_the_key_goes_to() {
    let app = nexum_tests::app::TestApp::sqlite().await;
    let installed = app.install(&app.key, "slack").await;
    assert_eq!(installed.status.as_u16(), 201, "{:?}", installed.body);
    let create = |url: &str, hooks_base: Option<&str>| {
        let mut body = json!({
            "connector": "slack",
            "name": "alerts",
            "auth_scheme": "incoming_webhook",
            "credentials": { "api_key": url },
        });
        if let Some(base) = hooks_base {
            body["variables"] = json!({ "hooks_base": base });
        }
        body
    };
    let refused = app
        .post(
            &app.key,
            "/api/v1/connections",
            create(
                "https://hooks.slack.com/services/T0001/B0002/pastedSecret99",
                Some("https://hooks.evil.example"),
            ),
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (422, "invalid_credentials"),
        "{:?}",
        refused.body
    );
    let detail = refused.body["detail"].as_str().expect("detail");
    assert!(
        detail.contains("hooks.slack.com") && !detail.contains("pastedSecret99"),
        "{detail}"
    );
    let created = app
        .post(
            &app.key,
            "/api/v1/connections",
            create("https://hooks.slack.com/services/T0001/B0002/pastedSecret99", None),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    app.shutdown().await;
}
