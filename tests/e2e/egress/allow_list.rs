//! The declared allow-list: only the manifest's hosts, by scheme and authority, are reached.

use super::{code, hostile};
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

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
