//! Invariant 2, declared egress: allow-list, address policy after DNS, redirects re-checked
//! hop by hop, credentials only to their bound hosts, host-only headers, caps, retries and
//! rate limits. Every refusal is checked at the fake too: nothing arrived.

use nexum_host::runtime::{CallError, Connection, LoadedConnector};
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::{Value, json};
use std::sync::Arc;

const SECRET: &str = "hostile-secret-token";

fn hostile(host: &TestHost, upstream: &str) -> (Arc<LoadedConnector>, Arc<Connection>) {
    let connector = host.load("hostile", None);
    let connection = host.connect(
        &connector,
        &format!("conn_{upstream}"),
        &[("upstream", upstream)],
        &[("token", &[("token", SECRET)])],
    );
    (connector, connection)
}

fn code(result: &Result<Value, CallError>) -> String {
    result.as_ref().expect_err("the call should fail").code().to_string()
}

#[tokio::test]
async fn undeclared_hosts_are_refused() {
    let upstream = fakes::upstream().await;
    let undeclared = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": undeclared.url("/ok") }),
        )
        .await;
    assert_eq!(code(&out.result), "host_not_allowed");
    for url in [
        "https://evil.example.net/",
        "ftp://x/",
        &format!("{}@{}/ok", "http://user:pw", undeclared.addr),
    ] {
        let out = host.run(&connector, &connection, "fetch", json!({ "url": url })).await;
        assert!(
            matches!(code(&out.result).as_str(), "host_not_allowed" | "invalid_request"),
            "{url}: {:?}",
            out.result
        );
    }
    assert!(undeclared.requests().is_empty());
    let out = host
        .run(&connector, &connection, "fetch", json!({ "url": upstream.url("/ok") }))
        .await;
    assert!(out.result.is_ok(), "the declared host still works: {:?}", out.result);
}

#[tokio::test]
async fn loopback_is_refused_unless_the_operator_allows_it() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::Public);
    let (connector, connection) = hostile(&host, &upstream.origin());
    let out = host
        .run(&connector, &connection, "fetch", json!({ "url": upstream.url("/ok") }))
        .await;
    assert_eq!(code(&out.result), "address_blocked");

    // A host name is judged by what it resolves to, not by how it is spelled.
    let manifest = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest");
    let by_name = host.load("hostile", Some(&manifest));
    let localhost = format!("http://localhost:{}", upstream.addr.port());
    let connection = host.connect(&by_name, "conn_localhost", &[("upstream", &localhost)], &[]);
    let out = host
        .run(
            &by_name,
            &connection,
            "fetch",
            json!({ "url": format!("{localhost}/ok") }),
        )
        .await;
    assert_eq!(code(&out.result), "address_blocked");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn cloud_metadata_is_refused_even_when_loopback_is_allowed() {
    let host = TestHost::new(Network::LoopbackAllowed);
    for target in [
        "http://169.254.169.254",
        "http://[::ffff:169.254.169.254]",
        "http://10.0.0.1",
        "http://[fd00:ec2::254]",
    ] {
        let (connector, connection) = hostile(&host, target);
        let out = host
            .run(
                &connector,
                &connection,
                "fetch",
                json!({ "url": format!("{target}/latest/meta-data/"), "credential": "token" }),
            )
            .await;
        assert_eq!(code(&out.result), "address_blocked", "{target}");
        assert!(
            out.trace.http.is_empty(),
            "{target}: refused before any request was sent"
        );
        let message = out.result.expect_err("blocked").to_string();
        assert!(!message.contains(SECRET));
    }
}

#[tokio::test]
async fn redirects_to_undeclared_hosts_are_refused() {
    let upstream = fakes::upstream().await;
    let elsewhere = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    let to = elsewhere.url("/ok");
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url(&format!("/redirect?to={to}")), "credential": "token" }),
        )
        .await;
    assert_eq!(code(&out.result), "host_not_allowed");
    assert!(out.result.expect_err("refused").to_string().contains("redirect"));
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect target must never be contacted"
    );

    // A redirect to the metadata address is refused too.
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/redirect?to=http://169.254.169.254/") }),
        )
        .await;
    assert_eq!(code(&out.result), "host_not_allowed");
    assert_eq!(
        out.trace.http.len(),
        1,
        "only the loopback hop was sent; the metadata hop never was"
    );
}

/// A manifest whose connector may reach two origins, with the credential bound to the first.
fn two_host_manifest() -> String {
    let base = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest");
    base.replace(
        "allowed_hosts = [\"{{ upstream }}\"]",
        "allowed_hosts = [\"{{ upstream }}\", \"{{ other }}\"]",
    )
    .replace(
        "[variables.upstream]",
        "[variables.other]\ndescription = \"second origin\"\n\n[variables.upstream]",
    )
}

#[tokio::test]
async fn credentials_go_only_to_their_bound_hosts() {
    let bound = fakes::upstream().await;
    let unbound = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("hostile", Some(&two_host_manifest()));
    let connection = host.connect(
        &connector,
        "conn_two",
        &[("upstream", &bound.origin()), ("other", &unbound.origin())],
        &[("token", &[("token", SECRET)])],
    );

    // Asking for the credential on an allowed but unbound host is refused before sending.
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": unbound.url("/echo"), "credential": "token" }),
        )
        .await;
    assert_eq!(code(&out.result), "credential_not_bound");
    assert!(unbound.requests().is_empty());

    // Without the credential the same host is fine.
    let out = host
        .run(&connector, &connection, "fetch", json!({ "url": unbound.url("/ok") }))
        .await;
    assert!(out.result.is_ok());

    // A redirect from the bound host to the unbound one is followed, without the secret.
    unbound.clear();
    let to = unbound.url("/echo");
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": bound.url(&format!("/redirect?to={to}")), "credential": "token" }),
        )
        .await;
    assert_eq!(out.result.expect("followed")["status"], 200);
    assert_eq!(
        bound.requests()[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let hop = &unbound.requests()[0];
    assert_eq!(hop.header("authorization"), None);
    assert!(!hop.everything_but("").contains(SECRET));
    assert_eq!(out.trace.http.len(), 2);
    assert_eq!(out.trace.http[1].credential, None);
}

#[tokio::test]
async fn host_only_headers_cannot_be_set_by_connectors() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    for header in [
        "Authorization",
        "cookie",
        "Host",
        "Proxy-Authorization",
        "proxy-connection",
        "Transfer-Encoding",
    ] {
        let out = host
            .run(
                &connector,
                &connection,
                "fetch",
                json!({ "url": upstream.url("/echo"), "headers": [[header, "Bearer stolen"]] }),
            )
            .await;
        assert_eq!(code(&out.result), "header_forbidden", "{header}");
    }
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn an_api_key_scheme_header_is_host_only_too() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let manifest = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest")
        .replace(
            "type = \"bearer\"",
            "type = \"api_key\"\nin = \"header\"\nname = \"X-Api-Key\"",
        );
    let connector = host.load("hostile", Some(&manifest));
    let connection = host.connect(
        &connector,
        "conn_apikey",
        &[("upstream", &upstream.origin())],
        &[("token", &[("api_key", SECRET)])],
    );
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/echo"), "headers": [["x-api-key", "forged"]] }),
        )
        .await;
    assert_eq!(code(&out.result), "header_forbidden");
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/echo"), "credential": "token" }),
        )
        .await;
    assert!(out.result.is_ok());
    assert_eq!(upstream.requests()[0].header("x-api-key"), Some(SECRET));
}

#[tokio::test]
async fn huge_responses_are_cut_off() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    for path in ["/huge", "/huge-declared"] {
        let out = host
            .run(&connector, &connection, "fetch", json!({ "url": upstream.url(path) }))
            .await;
        assert_eq!(code(&out.result), "response_too_large", "{path}");
    }
    let out = host.run(&connector, &connection, "ok", json!({})).await;
    assert!(out.result.is_ok());
}

#[tokio::test]
async fn oversized_request_bodies_are_refused() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    let body = "b".repeat(5 << 20);
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/ok"), "method": "POST", "body": body }),
        )
        .await;
    assert_eq!(code(&out.result), "request_too_large");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn idempotent_requests_retry_on_503_honouring_retry_after() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/flaky") }),
        )
        .await;
    assert_eq!(out.result.expect("third attempt succeeds")["status"], 200);
    assert_eq!(
        out.trace.http.iter().map(|x| x.status).collect::<Vec<_>>(),
        vec![Some(503), Some(503), Some(200)]
    );
    assert_eq!(out.trace.http[2].attempt, 3);

    // POST is not idempotent: one attempt, the 503 goes back to the connector.
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/always-503"), "method": "POST" }),
        )
        .await;
    assert_eq!(out.result.expect("answered")["status"], 503);
    assert_eq!(out.trace.http.len(), 1);
}

#[tokio::test]
async fn the_per_connection_rate_limit_applies_across_calls() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let manifest = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest")
        .replace("requests_per_second = 1000", "requests_per_second = 1")
        .replace("timeout_ms = 1000", "timeout_ms = 300");
    let connector = host.load("hostile", Some(&manifest));
    let connection = host.connect(&connector, "conn_rate", &[("upstream", &upstream.origin())], &[]);
    let first = host
        .run(&connector, &connection, "fetch", json!({ "url": upstream.url("/ok") }))
        .await;
    assert!(first.result.is_ok());
    let second = host
        .run(&connector, &connection, "fetch", json!({ "url": upstream.url("/ok") }))
        .await;
    let err = second.result.expect_err("rate limited");
    assert_eq!(err.code(), "rate_limited");
    assert!(err.is_retryable());
    assert_eq!(upstream.requests().len(), 1);

    // Another connection has its own budget.
    let other = host.connect(&connector, "conn_rate_other", &[("upstream", &upstream.origin())], &[]);
    assert!(
        host.run(&connector, &other, "fetch", json!({ "url": upstream.url("/ok") }))
            .await
            .result
            .is_ok()
    );
}

#[tokio::test]
async fn compressed_bodies_that_could_hide_a_secret_are_refused() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    for header in ["Accept-Encoding", "Range"] {
        let out = host
            .run(
                &connector,
                &connection,
                "fetch",
                json!({ "url": upstream.url("/echo"), "headers": [[header, "gzip"]] }),
            )
            .await;
        assert_eq!(code(&out.result), "header_forbidden", "{header}");
    }
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/gzip"), "credential": "token" }),
        )
        .await;
    assert_eq!(code(&out.result), "transport");
    assert!(out.result.expect_err("refused").to_string().contains("gzip"));
}

#[tokio::test]
async fn header_floods_are_capped_as_they_arrive() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    let headers: Vec<(String, String)> = (0..150).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/ok"), "headers": headers }),
        )
        .await;
    assert_eq!(code(&out.result), "invalid_request");
    let big = vec![("x-big".to_string(), "v".repeat(70 * 1024))];
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/ok"), "headers": big }),
        )
        .await;
    assert_eq!(code(&out.result), "invalid_request");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn an_absurd_retry_after_is_not_waited_for() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/retry-forever") }),
        )
        .await;
    assert_eq!(out.result.expect("the 429 goes back to the connector")["status"], 429);
    let out = host.run(&connector, &connection, "ok", json!({})).await;
    assert!(out.result.is_ok(), "the host is still serving");
}

#[tokio::test]
async fn a_redirect_carrying_a_query_key_to_another_host_is_refused() {
    let bound = fakes::upstream().await;
    let unbound = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let manifest = two_host_manifest().replace(
        "type = \"bearer\"",
        "type = \"api_key\"\nin = \"query\"\nname = \"key\"",
    );
    let connector = host.load("hostile", Some(&manifest));
    let connection = host.connect(
        &connector,
        "conn_qredirect",
        &[("upstream", &bound.origin()), ("other", &unbound.origin())],
        &[("token", &[("api_key", SECRET)])],
    );
    // A canonical-host redirect that keeps the query string would carry the key along.
    let to = unbound.url(&format!("/echo?key={SECRET}"));
    let location = url_escape(&to);
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": bound.url(&format!("/redirect?to={location}")), "credential": "token" }),
        )
        .await;
    assert_eq!(code(&out.result), "transport");
    assert!(unbound.requests().is_empty(), "the key must not follow the redirect");
    assert!(!format!("{:?}", out).contains(SECRET));
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
