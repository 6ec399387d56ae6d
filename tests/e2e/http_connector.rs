//! The generic HTTP connector: a request action that uses the credential only on its base URL.

use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

const TOKEN: &str = "generic-http-secret-123";

#[tokio::test]
async fn request_action_sends_method_path_query_body_and_credential() {
    let api = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("http", None);
    let connection = host.connect(
        &connector,
        "conn_http",
        &[("base_url", &api.origin())],
        &[("api", &[("token", TOKEN)])],
    );
    let out = host
        .run(&connector, &connection, "request", json!({
            "method": "POST", "url": "/echo", "query": { "q": "a b" }, "headers": { "x-trace": "1" }, "json": { "hello": "world" }
        }))
        .await;
    let output = out.result.expect("request ok");
    assert_eq!(output["status"], 200);
    let requests = api.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
        ("POST", "/echo", Some("q=a%20b"))
    );
    assert_eq!(r.header("x-trace"), Some("1"));
    assert_eq!(r.json(), json!({ "hello": "world" }));
    assert_eq!(r.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    // The echo reflected the token; the connector saw it scrubbed.
    assert_eq!(output["body"]["headers"]["authorization"], "Bearer [REDACTED]");
    assert!(!output.to_string().contains(TOKEN));
}

#[tokio::test]
async fn other_hosts_are_called_without_the_credential() {
    let api = fakes::upstream().await;
    let other = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("http", None);
    let connection = host.connect(
        &connector,
        "conn_http2",
        &[("base_url", &api.origin())],
        &[("api", &[("token", TOKEN)])],
    );
    let out = host
        .run(&connector, &connection, "request", json!({ "url": other.url("/ok") }))
        .await;
    assert_eq!(out.result.expect("ok")["status"], 200);
    assert_eq!(other.requests()[0].header("authorization"), None);

    // Forcing the credential onto a host it is not bound to is refused, and nothing is sent.
    other.clear();
    let out = host
        .run(
            &connector,
            &connection,
            "request",
            json!({ "url": other.url("/ok"), "authenticate": true }),
        )
        .await;
    assert_eq!(out.result.expect_err("refused").code(), "credential_not_bound");
    assert!(other.requests().is_empty());
}
