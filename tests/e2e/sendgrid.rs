//! The SendGrid connector against a fake SendGrid: the exact v3 Mail Send body (text before
//! HTML, a dynamic template with its data, attachments), the API key only in
//! `Authorization: Bearer`, and SendGrid's errors under stable codes.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use nexum_host::runtime::Invocation;
use nexum_tests::fakes::{self, Fake};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};

const KEY: &str = "SG.fake-sendgrid-key.7d1c";

fn authed(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(format!("Bearer {KEY}").as_str())
}

async fn sendgrid() -> Fake {
    let router = Router::new()
        .route(
            "/v3/mail/send",
            post(|headers: HeaderMap, body: Bytes| async move {
                if !authed(&headers) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(json!({ "errors": [{ "message": "The provided authorization grant is invalid, expired, or revoked", "field": null }] })),
                    )
                        .into_response();
                }
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                match v["from"]["email"].as_str() {
                    Some("unverified@example.com") => (
                        StatusCode::FORBIDDEN,
                        axum::Json(json!({ "errors": [{ "message": "The from address does not match a verified Sender Identity", "field": "from" }] })),
                    )
                        .into_response(),
                    Some("busy@example.com") => (
                        StatusCode::TOO_MANY_REQUESTS,
                        axum::Json(json!({ "errors": [{ "message": "too many requests", "field": null }] })),
                    )
                        .into_response(),
                    _ => (StatusCode::ACCEPTED, [("x-message-id", "msg-abc123")]).into_response(),
                }
            }),
        )
        .route(
            "/v3/scopes",
            get(|headers: HeaderMap| async move {
                if !authed(&headers) {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "errors": [] }))).into_response();
                }
                axum::Json(json!({ "scopes": ["mail.send", "user.profile.read"] })).into_response()
            }),
        );
    fakes::serve(router).await
}

async fn setup(
    key: &str,
) -> (
    TestHost,
    Fake,
    std::sync::Arc<nexum_host::runtime::LoadedConnector>,
    std::sync::Arc<nexum_host::runtime::Connection>,
) {
    let fake = sendgrid().await;
    let (host, connector, connection) = TestHost::connected(
        "sendgrid",
        &[("api_base", &fake.origin())],
        &[("api_key", &[("token", key)])],
    );
    (host, fake, connector, connection)
}

#[tokio::test]
async fn send_mail_posts_the_v3_body_with_the_bearer_key() {
    let (host, fake, connector, connection) = setup(KEY).await;
    let out = host
        .run(
            &connector,
            &connection,
            "send_mail",
            json!({
                "from": "ops@example.com", "from_name": "Ops", "to": ["ada@example.com", "bob@example.com"],
                "cc": ["cc@example.com"], "subject": "Report", "html": "<b>hi</b>", "text": "hi",
                "attachments": [{ "filename": "r.csv", "content": "YSxiCg==", "type": "text/csv" }]
            }),
        )
        .await;
    assert_eq!(
        out.result.expect("sent"),
        json!({ "accepted": true, "message_id": "msg-abc123" })
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v3/mail/send"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "personalizations": [{ "to": [{ "email": "ada@example.com" }, { "email": "bob@example.com" }], "cc": [{ "email": "cc@example.com" }] }],
            "from": { "email": "ops@example.com", "name": "Ops" },
            "subject": "Report",
            "content": [{ "type": "text/plain", "value": "hi" }, { "type": "text/html", "value": "<b>hi</b>" }],
            "attachments": [{ "filename": "r.csv", "content": "YSxiCg==", "type": "text/csv" }]
        })
    );
    assert!(
        !r.everything_but("authorization").contains(KEY),
        "the key left Authorization: {r:?}"
    );
}

#[tokio::test]
async fn dynamic_templates_carry_their_data_and_test_connection_reads_scopes() {
    let (host, fake, connector, connection) = setup(KEY).await;
    let template = "d-0123456789abcdef0123456789abcdef";
    let out = host
        .run(
            &connector,
            &connection,
            "send_mail",
            json!({ "from": "ops@example.com", "to": ["ada@example.com"], "template_id": template, "template_data": { "name": "Ada" } }),
        )
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(
        fake.requests()[0].json(),
        json!({
            "personalizations": [{ "to": [{ "email": "ada@example.com" }], "dynamic_template_data": { "name": "Ada" } }],
            "from": { "email": "ops@example.com" },
            "template_id": template
        })
    );
    let checked = host
        .runtime
        .execute(&connector, connection, Invocation::TestConnection)
        .await;
    assert_eq!(checked.result.expect("connected"), json!({ "mail_send": true }));
}

#[tokio::test]
async fn sendgrid_errors_map_to_stable_codes() {
    let (host, _fake, connector, connection) = setup(KEY).await;
    let mail = |from: &str| json!({ "from": from, "to": ["ada@example.com"], "subject": "s", "text": "t" });
    let (code, message, retryable) = connector_error(
        host.run(&connector, &connection, "send_mail", mail("unverified@example.com"))
            .await,
    );
    assert_eq!((code.as_str(), retryable), ("forbidden", false));
    assert!(message.contains("from: The from address"), "{message}");
    let (code, _, retryable) = connector_error(
        host.run(&connector, &connection, "send_mail", mail("busy@example.com"))
            .await,
    );
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    // No body and no template: refused before any request.
    let (code, _, _) = connector_error(
        host.run(
            &connector,
            &connection,
            "send_mail",
            json!({ "from": "ops@example.com", "to": ["a@example.com"] }),
        )
        .await,
    );
    assert_eq!(code, "invalid_input");
    let (host, _fake, connector, connection) = setup("SG.revoked-key-000").await;
    let (code, _, retryable) = connector_error(
        host.run(&connector, &connection, "send_mail", mail("ops@example.com"))
            .await,
    );
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));
}
