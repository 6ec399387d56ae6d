//! Size caps: responses cut off (streamed or declared), request bodies and request headers
//! refused above their limits before anything is sent.

use super::{code, hostile};
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

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
