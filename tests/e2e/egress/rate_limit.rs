//! The per-connection rate limit from the manifest, across calls, with one budget per connection.

use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

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
