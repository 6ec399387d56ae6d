//! The Twilio connector against a fake Twilio: the exact requests (form-encoded body, the
//! account's path), the Auth Token only inside `Authorization: Basic`, the idempotency key
//! passed upstream, and Twilio's errors mapped to stable, correctly retryable codes.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine;
use nexum_host::runtime::{CallError, Invocation};
use nexum_tests::fakes::{self, Fake};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-5e3f9a";
const MESSAGE: &str = "SM0123456789abcdef0123456789abcdef";

fn authed(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn unauthorized() -> (StatusCode, axum::Json<Value>) {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "code": 20003, "message": "Authenticate", "status": 401 })),
    )
}

/// A fake Twilio REST API: `To` = `+15005550009` is refused with 400 (Twilio's "not a
/// mobile number" test number), `+15005550429` with 429.
async fn twilio() -> Fake {
    let messages = format!("/2010-04-01/Accounts/{SID}/Messages.json");
    let message = format!("/2010-04-01/Accounts/{SID}/Messages/{MESSAGE}.json");
    let account = format!("/2010-04-01/Accounts/{SID}.json");
    let router = Router::new()
        .route(
            &messages,
            post(|headers: HeaderMap, body: Bytes| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                let form: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(&body).into_owned().collect();
                match form.get("To").map(String::as_str) {
                    Some("+15005550009") => (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({ "code": 21614, "message": "'To' number is not a valid mobile number", "status": 400 })),
                    ),
                    Some("+15005550429") => (
                        StatusCode::TOO_MANY_REQUESTS,
                        axum::Json(json!({ "code": 20429, "message": "Too Many Requests", "status": 429 })),
                    ),
                    _ => (
                        StatusCode::CREATED,
                        axum::Json(json!({ "sid": MESSAGE, "status": "queued", "to": form.get("To"), "from": form.get("From") })),
                    ),
                }
            }),
        )
        .route(
            &message,
            get(|headers: HeaderMap| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                (
                    StatusCode::OK,
                    axum::Json(json!({ "sid": MESSAGE, "status": "undelivered", "error_code": 30003, "error_message": "Unreachable destination handset" })),
                )
            }),
        )
        .route(
            &account,
            get(|headers: HeaderMap| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                (
                    StatusCode::OK,
                    axum::Json(json!({ "sid": SID, "friendly_name": "Acme", "status": "active" })),
                )
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
    let fake = twilio().await;
    let (host, connector, connection) = TestHost::connected(
        "twilio",
        &[("api_base", &fake.origin()), ("account_sid", SID)],
        &[("account", &[("username", SID), ("password", token)])],
    );
    (host, fake, connector, connection)
}

#[tokio::test]
async fn send_sms_posts_the_form_twilio_expects_with_basic_auth() {
    let (host, fake, connector, connection) = setup(TOKEN).await;
    let out = host
        .runtime
        .execute_keyed(
            &connector,
            connection,
            Invocation::Action {
                name: "send_sms".into(),
                input: json!({ "to": "+15551234567", "from": "+15557654321", "body": "Your code is 4711 & more" }),
            },
            Some("exe_1:notify".into()),
        )
        .await;
    assert_eq!(
        out.result.expect("sent"),
        json!({ "sid": MESSAGE, "status": "queued", "to": "+15551234567", "from": "+15557654321" })
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", format!("/2010-04-01/Accounts/{SID}/Messages.json").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "To=%2B15551234567&From=%2B15557654321&Body=Your+code+is+4711+%26+more"
    );
    assert_eq!(r.header("i-twilio-idempotency-token"), Some("exe_1:notify"));
    assert!(
        !r.everything_but("authorization").contains(TOKEN),
        "the Auth Token left Authorization: {r:?}"
    );
}

#[tokio::test]
async fn get_message_and_test_connection_read_the_account() {
    let (host, fake, connector, connection) = setup(TOKEN).await;
    let out = host
        .run(&connector, &connection, "get_message", json!({ "sid": MESSAGE }))
        .await;
    assert_eq!(
        out.result.expect("read"),
        json!({ "sid": MESSAGE, "status": "undelivered", "error_code": 30003, "error_message": "Unreachable destination handset" })
    );
    let checked = host
        .runtime
        .execute(&connector, connection, Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({ "sid": SID, "friendly_name": "Acme", "status": "active" })
    );
    let paths: Vec<(String, String)> = fake
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        paths,
        vec![
            (
                "GET".to_string(),
                format!("/2010-04-01/Accounts/{SID}/Messages/{MESSAGE}.json")
            ),
            ("GET".to_string(), format!("/2010-04-01/Accounts/{SID}.json")),
        ]
    );
}

#[tokio::test]
async fn twilio_errors_map_to_stable_codes() {
    let (host, _fake, connector, connection) = setup(TOKEN).await;
    let cases = [
        ("+15005550009", "bad_request", false, "21614"),
        ("+15005550429", "rate_limited", true, "20429"),
    ];
    for (to, code, retryable, twilio_code) in cases {
        let out = host
            .run(
                &connector,
                &connection,
                "send_sms",
                json!({ "to": to, "from": "+15557654321", "body": "x" }),
            )
            .await;
        let (c, message, r) = connector_error(out);
        assert_eq!((c.as_str(), r), (code, retryable), "{to}: {message}");
        assert!(message.contains(twilio_code), "{message}");
    }
    // A wrong Auth Token is an auth failure (the connection's status flips on it).
    let (host, _fake, connector, connection) = setup("wrong-token-0000").await;
    let out = host
        .run(
            &connector,
            &connection,
            "send_sms",
            json!({ "to": "+15551234567", "from": "+15557654321", "body": "x" }),
        )
        .await;
    let (code, _, retryable) = connector_error(out);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false)); // Neither `from` nor a messaging service: refused before any request.
    let out = host
        .run(
            &connector,
            &connection,
            "send_sms",
            json!({ "to": "+15551234567", "body": "x" }),
        )
        .await;
    assert!(
        matches!(out.result, Err(CallError::Connector { ref code, .. }) if code == "invalid_input"),
        "{:?}",
        out.result
    );
}
