//! Invariant 3, bounded guests: a looping, memory-hungry, panicking or over-talkative
//! connector fails its own call with a clear error, and the host serves the next call.

use nexum_host::runtime::{CallError, Connection, LoadedConnector};
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;
use std::sync::Arc;

fn hostile(host: &TestHost, upstream: &str) -> (Arc<LoadedConnector>, Arc<Connection>) {
    let connector = host.load("hostile", None);
    let connection = host.connect(
        &connector,
        "conn_hostile",
        &[("upstream", upstream)],
        &[("token", &[("token", "hostile-secret-token")])],
    );
    (connector, connection)
}

/// The host still runs a healthy call afterwards.
async fn still_serving(host: &TestHost, connector: &LoadedConnector, connection: &Arc<Connection>) {
    let out = host.run(connector, connection, "ok", json!({ "n": 1 })).await;
    assert_eq!(
        out.result.expect("the next call succeeds"),
        json!({ "echo": { "n": 1 } })
    );
}

#[tokio::test]
async fn an_infinite_loop_hits_the_deadline() {
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, "https://api.example.com");
    let out = host.run(&connector, &connection, "spin", json!({})).await;
    assert_eq!(out.result, Err(CallError::Timeout { limit_ms: 1000 }));
    still_serving(&host, &connector, &connection).await;
}

#[tokio::test]
async fn a_loop_does_not_block_other_calls() {
    let host = Arc::new(TestHost::new(Network::LoopbackAllowed));
    let (connector, connection) = hostile(&host, "https://api.example.com");
    let spinning = {
        let (host, connector, connection) = (host.clone(), connector.clone(), connection.clone());
        tokio::spawn(async move { host.run(&connector, &connection, "spin", json!({})).await })
    };
    // While one call spins, others on the same runtime complete.
    for n in 0..5 {
        let out = host.run(&connector, &connection, "ok", json!({ "n": n })).await;
        assert_eq!(
            out.result.expect("served while another call loops"),
            json!({ "echo": { "n": n } })
        );
    }
    assert!(matches!(
        spinning.await.expect("join").result,
        Err(CallError::Timeout { .. })
    ));
}

#[tokio::test]
async fn a_memory_bomb_hits_the_cap() {
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, "https://api.example.com");
    let out = host.run(&connector, &connection, "memory_bomb", json!({})).await;
    assert_eq!(out.result, Err(CallError::MemoryExceeded { limit_mb: 32 }));
    still_serving(&host, &connector, &connection).await;
}

#[tokio::test]
async fn a_panic_fails_the_call_with_its_message() {
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, "https://api.example.com");
    let out = host.run(&connector, &connection, "panic", json!({})).await;
    match out.result {
        Err(CallError::Panicked { message }) => {
            assert!(message.contains("hostile connector panicked on purpose"), "{message}")
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    still_serving(&host, &connector, &connection).await;
}

#[tokio::test]
async fn oversized_output_is_refused() {
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, "https://api.example.com");
    let out = host
        .run(&connector, &connection, "oversized_output", json!({ "bytes": 4 << 20 }))
        .await;
    match out.result {
        Err(CallError::OutputTooLarge { size, limit }) => {
            assert_eq!(limit, 1 << 20);
            assert!(size > 4 << 20);
        }
        other => panic!("expected output_too_large, got {other:?}"),
    }
    still_serving(&host, &connector, &connection).await;
}

#[tokio::test]
async fn the_deadline_counts_time_spent_in_host_calls() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    // The upstream takes 5 s; the connector's deadline is 1 s and must cover the wait.
    let started = std::time::Instant::now();
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/slow?ms=5000") }),
        )
        .await;
    assert_eq!(out.result.expect_err("timed out").code(), "timeout");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the call waited for the upstream"
    );
    still_serving(&host, &connector, &connection).await;
}

#[tokio::test]
async fn log_floods_are_capped() {
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, "https://api.example.com");
    let out = host
        .run(&connector, &connection, "log_flood", json!({ "bytes": 5000 }))
        .await;
    assert!(out.result.is_ok());
    assert_eq!(out.trace.logs.len(), host.runtime.config().max_log_lines);
    assert_eq!(out.trace.logs_dropped, 5000 - host.runtime.config().max_log_lines);
    assert!(out.trace.logs.iter().all(|l| l.message.len() <= 2048 + '…'.len_utf8()));
}

#[tokio::test]
async fn huge_connector_errors_are_truncated() {
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, "https://api.example.com");
    let out = host
        .run(&connector, &connection, "fail", json!({ "bytes": 1 << 20 }))
        .await;
    match out.result {
        Err(CallError::Connector { code, message, .. }) => {
            assert_eq!(code.len(), 64);
            assert_eq!(message.len(), 4096);
        }
        other => panic!("expected a connector error, got {other:?}"),
    }
    still_serving(&host, &connector, &connection).await;
}

#[tokio::test]
async fn unsent_requests_cannot_hoard_host_memory() {
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, "https://api.example.com");
    // One reused 1 MiB guest buffer, copied into ten unsent requests: the host holds at most
    // twice the request-body cap (8 MiB by default) for one call.
    let out = host
        .run(
            &connector,
            &connection,
            "hoard",
            json!({ "count": 10, "bytes": 1 << 20 }),
        )
        .await;
    match out.result {
        Err(CallError::Connector { code, message, .. }) => {
            assert_eq!(code, "refused");
            // The 8th body would take the buffered URLs and bodies past 8 MiB.
            assert!(
                message.contains("request 7") && message.contains("buffer at most"),
                "{message}"
            );
        }
        other => panic!("the host buffered 10 MiB of unsent bodies: {other:?}"),
    }
    // Many small unsent requests: the count is capped too, and the call ends.
    let out = host
        .run(&connector, &connection, "hoard", json!({ "count": 100, "bytes": 1 }))
        .await;
    assert!(out.result.is_err(), "100 unsent requests were kept: {:?}", out.result);
    // Requests that are dropped or sent give their budget back within the call.
    let out = host
        .run(
            &connector,
            &connection,
            "hoard",
            json!({ "count": 16, "bytes": 1 << 18 }),
        )
        .await;
    assert_eq!(out.result.map(|v| v["kept"].clone()), Ok(json!(16)));
    still_serving(&host, &connector, &connection).await;
}
