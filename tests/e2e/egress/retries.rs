//! Retries: idempotent requests retry on 503 honouring `Retry-After`, POST does not, and an
//! absurd `Retry-After` is handed back rather than waited for.

use super::hostile;
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

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
