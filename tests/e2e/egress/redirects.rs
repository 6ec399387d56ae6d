//! Redirects re-checked hop by hop: no hop to an undeclared host or a blocked address, and
//! no hop to another host that would carry a query-string key along.

use super::{SECRET, code, hostile, two_host_manifest};
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

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
