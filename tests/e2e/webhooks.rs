//! Outgoing webhooks (capability level; the HTTP API comes next): an event in the outbox is
//! fanned out to the workspace's endpoints and delivered signed (Standard Webhooks), retried
//! on failure with the same `webhook-id`, logged attempt by attempt; `410 Gone` disables an
//! endpoint; endpoint URLs go through the address policy; other workspaces see nothing.

use axum::Router;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use nexum_host::ids::WorkspaceId;
use nexum_host::webhooks::endpoints::{NewEndpoint, create};
use nexum_host::webhooks::verify;
use nexum_tests::app::TestApp;
use nexum_tests::fakes;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

on_both_databases!(events_are_delivered_signed_and_retried);

async fn workspace_of(app: &TestApp, key: &str) -> WorkspaceId {
    app.get(key, "/api/v1/workspace").await.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("workspace id")
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(60), "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn events_are_delivered_signed_and_retried(app: TestApp) {
    let backend = app.backend;
    app.shutdown().await;
    let app = TestApp::start_with(backend, |c| c.webhook_retry_delays_ms = vec![20, 20]).await;
    let state = app.state().clone();
    // A receiver that fails the first delivery and accepts the next.
    let counter = Arc::new(AtomicUsize::new(0));
    let receiver = fakes::serve(Router::new().route(
        "/hook",
        post(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    AxumStatus::INTERNAL_SERVER_ERROR
                } else {
                    AxumStatus::NO_CONTENT
                }
            }
        }),
    ))
    .await;
    let gone = fakes::serve(Router::new().route("/hook", post(|| async { AxumStatus::GONE }))).await;

    let ws = workspace_of(&app, &app.key).await;
    let endpoint = create(
        &state,
        &ws,
        "test",
        NewEndpoint {
            url: receiver.url("/hook"),
            description: "receiver".into(),
            event_types: vec![],
        },
    )
    .await
    .expect("endpoint");
    let gone_endpoint = create(
        &state,
        &ws,
        "test",
        NewEndpoint {
            url: gone.url("/hook"),
            description: "retired".into(),
            event_types: vec!["connection.created".into()],
        },
    )
    .await
    .expect("endpoint");
    // Another workspace's event never reaches this workspace's endpoints.
    let other_key = app.new_workspace("other").await;
    let other = workspace_of(&app, &other_key).await;
    state
        .db
        .append_event(&other, "connection.created", &json!({ "connection_id": "conn_other" }))
        .await
        .expect("event");
    state
        .db
        .append_event(&ws, "connection.created", &json!({ "connection_id": "conn_1" }))
        .await
        .expect("event");

    let created = || -> Vec<fakes::Recorded> {
        receiver
            .requests()
            .into_iter()
            .filter(|r| r.json()["type"] == "connection.created")
            .collect()
    };
    wait_for("a failed then a successful delivery", || created().len() >= 2).await;
    // (The receiver also gets `endpoint.disabled` below: it subscribes to every type.)
    let requests = created();
    assert_eq!(requests.len(), 2, "delivered once it succeeded, not again");
    let id = requests[0].header("webhook-id").expect("webhook-id").to_string();
    assert_eq!(
        requests[1].header("webhook-id"),
        Some(id.as_str()),
        "stable across retries"
    );
    for r in &requests {
        let timestamp: i64 = r.header("webhook-timestamp").expect("timestamp").parse().expect("secs");
        verify(
            &endpoint.secret,
            &id,
            timestamp,
            &r.body,
            r.header("webhook-signature").expect("signature"),
            nexum_host::store::now_ms() / 1000,
            300,
        )
        .expect("the signature verifies");
        assert_eq!(r.json()["type"], "connection.created");
        assert_eq!(r.json()["data"]["connection_id"], "conn_1");
    }
    let attempts = state.db.webhook_attempts(&ws, &id).await.expect("attempts");
    let of_endpoint: Vec<_> = attempts
        .iter()
        .filter(|a| a.endpoint_id == endpoint.record.id)
        .collect();
    assert_eq!(of_endpoint.len(), 2);
    assert_eq!(of_endpoint[0].status_code, Some(500));
    assert!(of_endpoint[0].next_attempt_at.is_some());
    assert_eq!(of_endpoint[1].status_code, Some(204));
    assert!(
        state
            .db
            .webhook_attempts(&other, &id)
            .await
            .expect("attempts")
            .is_empty()
    );

    // 410 Gone disabled the other endpoint, and said so in the outbox.
    let db = state.db.clone();
    let gone_id = gone_endpoint.record.id.clone();
    let started = Instant::now();
    loop {
        let e = db
            .webhook_endpoint(&ws, &gone_id)
            .await
            .expect("endpoint")
            .expect("exists");
        if e.disabled_at.is_some() {
            assert_eq!(e.disabled_reason.as_deref(), Some("gone"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never disabled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gone.requests().len(), 1, "no retry after 410");
    let events = app.get(&app.key, "/api/v1/events?type=endpoint.disabled").await;
    assert_eq!(
        events.body["data"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        events.body
    );

    // Endpoint URLs go through the address policy: metadata and private ranges are refused.
    for url in [
        "http://169.254.169.254/latest",
        "http://10.0.0.7/hook",
        "ftp://example.com/",
    ] {
        let refused = create(
            &state,
            &ws,
            "test",
            NewEndpoint {
                url: url.into(),
                description: String::new(),
                event_types: vec![],
            },
        )
        .await;
        assert!(
            matches!(
                refused,
                Err(nexum_host::webhooks::endpoints::WebhookError::Invalid {
                    code: "invalid_url",
                    ..
                })
            ),
            "{url}"
        );
    }
}

/// Two nodes on one PostgreSQL share the fan-out and the deliveries: every event reaches
/// the receiver exactly once (it always answers 2xx), whichever node claims it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_deliver_each_message_once() {
    use nexum_tests::app::Backend;
    let a = TestApp::start(Backend::Postgres).await;
    let key_file = a.data_dir.path().join("master.keys");
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestApp::start_on(Backend::Postgres, dir, a.database_url.clone(), |c| {
        c.master_key_file = key_file
    })
    .await;
    let receiver = fakes::serve(Router::new().route("/hook", post(|| async { AxumStatus::NO_CONTENT }))).await;
    let ws = workspace_of(&a, &a.key).await;
    create(
        a.state(),
        &ws,
        "test",
        NewEndpoint {
            url: receiver.url("/hook"),
            description: String::new(),
            event_types: vec!["test.ping".into()],
        },
    )
    .await
    .expect("endpoint");
    const EVENTS: usize = 300;
    for i in 0..EVENTS {
        let node = if i % 2 == 0 { &a } else { &b };
        node.state()
            .db
            .append_event(&ws, "test.ping", &json!({ "n": i }))
            .await
            .expect("event");
    }
    wait_for("every event delivered", || receiver.requests().len() >= EVENTS).await;
    // Give a duplicate, if any, the time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = receiver.requests();
    let mut ids: Vec<String> = requests
        .iter()
        .map(|r| r.header("webhook-id").expect("id").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), EVENTS, "one message per event");
    assert_eq!(requests.len(), EVENTS, "no message delivered twice");
    let mut seen: Vec<i64> = requests
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().expect("n"))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..EVENTS as i64).collect::<Vec<_>>());
    b.shutdown().await;
    a.shutdown().await;
}
