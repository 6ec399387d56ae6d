//! The webhook connector against a loopback receiver: the exact request (method, a path under
//! the configured URL, its query and the call's, static and per-call headers, the body),
//! payload templates, the HMAC-SHA256 signature verified here with the secret the test stored
//! (and that secret nowhere on the wire), refused paths, JSONPath extraction, and the
//! receiver's statuses mapped to retryable errors or not.

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use nexum_host::runtime::{CallOutcome, Connection, Invocation, LoadedConnector};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{Network, TestHost, connector_error};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The signing secret the test stores; it must never appear on the wire.
const SECRET: &str = "whsec_test_signing_secret_5f1c9a";

/// What the receiver answers to a delivery.
fn receipt() -> Value {
    json!({ "ok": true, "id": "evt_1", "data": { "items": [{ "name": "a" }, { "name": "b" }] } })
}

/// A receiver answering anything: `?status=N` answers N with a JSON error, a path ending in
/// `/plain` answers text, anything else answers [`receipt`] with an `x-receiver` header.
async fn receiver() -> Fake {
    async fn answer(uri: Uri, Query(query): Query<HashMap<String, String>>) -> Response {
        if let Some(code) = query.get("status").and_then(|s| s.parse::<u16>().ok()) {
            let status = StatusCode::from_u16(code).expect("status");
            return (status, axum::Json(json!({ "error": "bad payload", "status": code }))).into_response();
        }
        if uri.path().ends_with("/plain") {
            return ([("content-type", "text/plain")], "thanks").into_response();
        }
        ([("x-receiver", "fake")], axum::Json(receipt())).into_response()
    }
    fakes::serve(Router::new().fallback(answer)).await
}

/// A host with the webhook connector loaded and a receiver to point connections at.
struct Setup {
    host: TestHost,
    receiver: Fake,
    connector: Arc<LoadedConnector>,
}

impl Setup {
    async fn new() -> Self {
        let receiver = receiver().await;
        let host = TestHost::new(Network::LoopbackAllowed);
        let connector = host.load("webhook", None);
        Self {
            host,
            receiver,
            connector,
        }
    }

    /// A connection to `<receiver>/hooks/in?src=nexum` with more `variables`, holding the
    /// signing secret when `signed`.
    fn connect(&self, id: &str, variables: &[(&str, &str)], signed: bool) -> Arc<Connection> {
        let url = self.receiver.url("/hooks/in?src=nexum");
        let mut all = vec![("url", url.as_str())];
        all.extend_from_slice(variables);
        if signed {
            self.host
                .connect(&self.connector, id, &all, &[("signing_secret", &[("secret", SECRET)])])
        } else {
            self.host.connect(&self.connector, id, &all, &[])
        }
    }

    /// Run `send` with `input`, under idempotency key `key`.
    async fn send(&self, connection: &Arc<Connection>, input: Value, key: Option<&str>) -> CallOutcome {
        self.host
            .runtime
            .execute_keyed(
                &self.connector,
                connection.clone(),
                Invocation::Action {
                    name: "send".into(),
                    input,
                },
                key.map(str::to_string),
            )
            .await
    }
}

/// The signature a receiver computes for `request`: `sha256=` and the hex HMAC-SHA256, keyed
/// with the secret the test stored, of `<timestamp>.<body as received>`.
fn expected_signature(request: &Recorded) -> String {
    let timestamp = request.header("x-webhook-timestamp").expect("a timestamp header");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The timestamp header holds Unix seconds close to now.
fn assert_fresh(request: &Recorded) {
    let timestamp: u64 = request
        .header("x-webhook-timestamp")
        .expect("a timestamp header")
        .parse()
        .expect("Unix seconds");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    assert!(
        timestamp.abs_diff(now) <= 300,
        "timestamp {timestamp} is not now ({now})"
    );
}

/// How many `name` headers `request` carried.
fn count_headers(request: &Recorded, name: &str) -> usize {
    request.headers.iter().filter(|(n, _)| n == name).count()
}

/// The secret, raw, hex or base64, is in no recorded request: not in the URL, a header or a body.
fn assert_secret_never_sent(requests: &[Recorded]) {
    let forms = [
        SECRET.to_string(),
        hex::encode(SECRET),
        base64::engine::general_purpose::STANDARD.encode(SECRET),
    ];
    for request in requests {
        let everything = request.everything_but("");
        for form in &forms {
            assert!(
                !everything.contains(form.as_str()),
                "the signing secret went out: {request:?}"
            );
        }
    }
}

#[tokio::test]
async fn send_delivers_the_payload_signed_with_the_stored_secret() {
    let setup = Setup::new().await;
    // A static header cannot forge the signature: the connector sets it last.
    let connection = setup.connect(
        "conn_webhook_signed",
        &[(
            "headers",
            r#"{"X-Source": "nexum", "X-Env": "staging", "X-Webhook-Signature": "forged"}"#,
        )],
        true,
    );
    let payload = json!({ "event": "order.created", "id": 42, "tags": ["a", "b"], "note": "café & <b>" });
    let out = setup
        .send(
            &connection,
            json!({
                "payload": payload.clone(),
                "path": "orders/42",
                "query": { "q": "a b", "n": "1" },
                "headers": { "X-Env": "production", "X-Trace": "t-1" }
            }),
            Some("exe_1:notify"),
        )
        .await;
    let output = out.result.expect("delivered");
    assert_eq!(output["status"], 200);
    assert_eq!(output["body"], receipt());
    assert_eq!(output["headers"]["x-receiver"], "fake");
    assert!(output.get("extracted").is_none(), "{output}");

    let requests = setup.receiver.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
        ("POST", "/hooks/in/orders/42", Some("src=nexum&n=1&q=a%20b"))
    );
    assert_eq!(r.json(), payload);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-source"), Some("nexum"));
    // Per-call headers win over static ones, and each goes out once.
    assert_eq!(r.header("x-env"), Some("production"));
    assert_eq!(count_headers(r, "x-env"), 1);
    assert_eq!(r.header("x-trace"), Some("t-1"));
    assert_eq!(r.header("idempotency-key"), Some("exe_1:notify"));
    assert_fresh(r);
    assert_eq!(count_headers(r, "x-webhook-signature"), 1);
    assert_eq!(r.header("x-webhook-signature"), Some(expected_signature(r).as_str()));
    assert_secret_never_sent(&requests);
    assert!(!output.to_string().contains(SECRET));
}

#[tokio::test]
async fn the_payload_template_shapes_the_body() {
    let setup = Setup::new().await;
    let template = r#"{"text": "Order {{ input.id }} shipped", "customer": {{ input.customer.name | tojson }}, "items": {{ input.items | tojson }}, "count": {{ input.items | length }}{% if input.note %}, "note": {{ input.note | tojson }}{% endif %}}"#;
    let connection = setup.connect("conn_webhook_template", &[("payload_template", template)], false);
    let order = json!({ "id": 42, "customer": { "name": "Ada \"The Countess\" Lovelace" }, "items": [{ "sku": "A1", "qty": 2 }] });
    let out = setup.send(&connection, json!({ "payload": order.clone() }), None).await;
    assert_eq!(out.result.expect("delivered")["status"], 200);
    let requests = setup.receiver.requests();
    let r = &requests[0];
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({ "text": "Order 42 shipped", "customer": "Ada \"The Countess\" Lovelace", "items": [{ "sku": "A1", "qty": 2 }], "count": 1 })
    );
    // No signing secret: unsigned. No idempotency key for the call: none sent.
    assert_eq!(r.header("x-webhook-signature"), None);
    assert_eq!(r.header("x-webhook-timestamp"), None);
    assert_eq!(r.header("idempotency-key"), None);

    // A field the template prints but the payload lacks is the template's error; nothing is sent.
    setup.receiver.clear();
    let (code, message, retryable) = connector_error(
        setup
            .send(&connection, json!({ "payload": { "id": 1, "items": [] } }), None)
            .await,
    );
    assert_eq!((code.as_str(), retryable), ("invalid_template", false), "{message}");

    // A template whose output is not JSON is refused under a JSON content type…
    let broken = setup.connect(
        "conn_webhook_broken",
        &[("payload_template", r#"{"text": {{ input.text }}}"#)],
        false,
    );
    let (code, message, retryable) =
        connector_error(setup.send(&broken, json!({ "payload": { "text": "hi" } }), None).await);
    assert_eq!(
        (code.as_str(), retryable),
        ("invalid_template_output", false),
        "{message}"
    );
    assert!(setup.receiver.requests().is_empty());

    // …and sent as rendered under another one.
    let text = setup.connect(
        "conn_webhook_text",
        &[
            ("payload_template", "Order {{ input.id }} for {{ input.customer.name }}"),
            ("content_type", "text/plain; charset=utf-8"),
        ],
        false,
    );
    let out = setup.send(&text, json!({ "payload": order }), None).await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    let requests = setup.receiver.requests();
    let r = &requests[0];
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(&r.body[..], "Order 42 for Ada \"The Countess\" Lovelace".as_bytes());
}

#[tokio::test]
async fn paths_that_would_leave_the_url_are_refused_before_anything_is_sent() {
    let setup = Setup::new().await;
    let connection = setup.connect("conn_webhook_paths", &[], true);
    for path in [
        "../admin",
        "orders/../../admin",
        "%2e%2E/admin",
        "./orders",
        "..;/admin",
        "https://evil.example/x",
        "//evil.example/x",
        "orders?admin=1",
        "orders#top",
        "orders\\..\\admin",
    ] {
        let (code, message, retryable) = connector_error(
            setup
                .send(&connection, json!({ "payload": {}, "path": path }), None)
                .await,
        );
        assert_eq!(
            (code.as_str(), retryable),
            ("invalid_input", false),
            "{path}: {message}"
        );
    }
    assert!(setup.receiver.requests().is_empty(), "a refused path was sent");

    // What stays under the URL goes out, percent-encoded.
    let out = setup
        .send(&connection, json!({ "payload": {}, "path": "/a b/ü" }), None)
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(setup.receiver.requests()[0].path, "/hooks/in/a%20b/%C3%BC");
    assert_secret_never_sent(&setup.receiver.requests());
}

#[tokio::test]
async fn responses_are_parsed_and_extracted_with_jsonpath() {
    let setup = Setup::new().await;
    let connection = setup.connect("conn_webhook_extract", &[], false);
    let out = setup
        .send(
            &connection,
            json!({ "payload": { "n": 1 }, "extract": "$.data.items[1].name" }),
            None,
        )
        .await;
    assert_eq!(out.result.expect("delivered")["extracted"], "b");

    let out = setup
        .send(
            &connection,
            json!({ "payload": { "n": 2 }, "extract": { "id": "$.id", "names": "$.data.items[*].name", "missing": "$.nope" } }),
            None,
        )
        .await;
    let output = out.result.expect("delivered");
    assert_eq!(
        output["extracted"],
        json!({ "id": "evt_1", "names": ["a", "b"], "missing": null })
    );
    assert_eq!(output["body"], receipt());

    // A body that is not JSON comes back as a string.
    let out = setup
        .send(&connection, json!({ "path": "plain", "extract": "$" }), None)
        .await;
    let output = out.result.expect("delivered");
    assert_eq!(
        (&output["body"], &output["extracted"]),
        (&json!("thanks"), &json!("thanks"))
    );

    // An invalid path is the caller's error, found before the webhook is sent.
    let sent = setup.receiver.requests().len();
    for path in ["$[", "data.id"] {
        let (code, message, retryable) = connector_error(
            setup
                .send(&connection, json!({ "payload": {}, "extract": path }), None)
                .await,
        );
        assert_eq!(
            (code.as_str(), retryable),
            ("invalid_input", false),
            "{path}: {message}"
        );
    }
    assert_eq!(setup.receiver.requests().len(), sent);
}

#[tokio::test]
async fn receiver_errors_are_retryable_only_when_a_retry_can_help() {
    let setup = Setup::new().await;
    let connection = setup.connect("conn_webhook_errors", &[], true);
    let failing = |status: &str| json!({ "payload": { "n": 1 }, "query": { "status": status } });
    for (status, expected_code, expected_retryable) in [
        ("500", "upstream_error", true),
        ("429", "rate_limited", true),
        ("400", "bad_request", false),
        ("404", "not_found", false),
    ] {
        let (code, message, retryable) = connector_error(setup.send(&connection, failing(status), None).await);
        assert_eq!(
            (code.as_str(), retryable),
            (expected_code, expected_retryable),
            "{status}: {message}"
        );
        // The status and the start of the receiver's answer are in the message.
        assert!(message.contains(status) && message.contains("bad payload"), "{message}");
    }
    // POST is not retried by the broker: one delivery attempt per call.
    assert_eq!(setup.receiver.requests().len(), 4);
    assert_secret_never_sent(&setup.receiver.requests());
}

#[tokio::test]
async fn methods_get_and_test_connection() {
    let setup = Setup::new().await;
    let connection = setup.connect("conn_webhook_put", &[("method", "PUT")], true);
    let out = setup
        .send(&connection, json!({ "payload": { "state": "open" } }), None)
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    // A GET carries no body and no content type; its signature covers `<timestamp>.`.
    let out = setup
        .send(
            &connection,
            json!({ "method": "GET", "query": { "since": "2024-01-01" } }),
            None,
        )
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    let requests = setup.receiver.requests();
    let (put, get) = (&requests[0], &requests[1]);
    assert_eq!(put.method, "PUT");
    assert_eq!(put.json(), json!({ "state": "open" }));
    assert_eq!(
        put.header("x-webhook-signature"),
        Some(expected_signature(put).as_str())
    );
    assert_eq!(
        (get.method.as_str(), get.query.as_deref()),
        ("GET", Some("src=nexum&since=2024-01-01"))
    );
    assert!(get.body.is_empty());
    assert_eq!(get.header("content-type"), None);
    assert_eq!(
        get.header("x-webhook-signature"),
        Some(expected_signature(get).as_str())
    );

    // A payload with a bodiless method is refused, not dropped.
    let (code, _, retryable) = connector_error(
        setup
            .send(&connection, json!({ "method": "DELETE", "payload": { "id": 1 } }), None)
            .await,
    );
    assert_eq!((code.as_str(), retryable), ("invalid_input", false));
    assert_eq!(setup.receiver.requests().len(), 2);

    // test-connection: a HEAD to the URL, nothing signed, any answer means reachable.
    setup.receiver.clear();
    let checked = setup
        .host
        .runtime
        .execute(&setup.connector, connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("reachable"),
        json!({ "reachable": true, "status": 200, "signed": true })
    );
    let requests = setup.receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (
            requests[0].method.as_str(),
            requests[0].path.as_str(),
            requests[0].query.as_deref()
        ),
        ("HEAD", "/hooks/in", Some("src=nexum"))
    );
    assert_eq!(requests[0].header("x-webhook-signature"), None);
    assert_secret_never_sent(&requests);
}

#[tokio::test]
async fn a_callers_idempotency_key_wins_and_bad_settings_are_named() {
    let setup = Setup::new().await;
    let connection = setup.connect("conn_webhook_key", &[], false);
    let out = setup
        .send(
            &connection,
            json!({ "payload": {}, "headers": { "Idempotency-Key": "caller-key" } }),
            Some("exe_9:step"),
        )
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    let requests = setup.receiver.requests();
    assert_eq!(requests[0].header("idempotency-key"), Some("caller-key"));
    assert_eq!(count_headers(&requests[0], "idempotency-key"), 1);

    // Static headers that are not a JSON object of strings: the connection needs fixing.
    setup.receiver.clear();
    let broken = setup.connect("conn_webhook_bad_headers", &[("headers", "X-Source: nexum")], false);
    let (code, message, retryable) = connector_error(setup.send(&broken, json!({ "payload": {} }), None).await);
    assert_eq!((code.as_str(), retryable), ("invalid_configuration", false));
    assert!(message.contains("`headers`"), "{message}");
    let checked = setup
        .host
        .runtime
        .execute(&setup.connector, broken, Invocation::TestConnection)
        .await;
    assert_eq!(checked.result.expect_err("refused").code(), "invalid_configuration");
    assert!(setup.receiver.requests().is_empty());
}
