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
    // A receiver that fails the first `connection.created` delivery and accepts the next
    // (other types, such as the `endpoint.disabled` below, which may come first, are
    // accepted).
    let counter = Arc::new(AtomicUsize::new(0));
    let receiver = fakes::serve(Router::new().route(
        "/hook",
        post(move |body: String| {
            let n = if body.contains("\"connection.created\"") {
                counter.fetch_add(1, Ordering::SeqCst)
            } else {
                usize::MAX
            };
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
            ..NewEndpoint::default()
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
            ..NewEndpoint::default()
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
    // The log row of an attempt commits just after the receiver answers it.
    let started = Instant::now();
    let attempts = loop {
        let attempts = state.db.webhook_attempts(&ws, &id).await.expect("attempts");
        if attempts.iter().filter(|a| a.endpoint_id == endpoint.record.id).count() >= 2 {
            break attempts;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the second attempt was never logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
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
                ..NewEndpoint::default()
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
    let b = a.second_node(|_| {}).await;
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
            ..NewEndpoint::default()
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

on_both_databases!(endpoints_through_the_api);

/// The HTTP API: create (the secret shown once), list, read, the delivery log, the event
/// catalogue, delete; refusals are problems; another workspace sees none of it. Deliveries
/// verify with the reference implementation (`standardwebhooks` on PyPI) when it is there.
async fn endpoints_through_the_api(app: TestApp) {
    let receiver = fakes::serve(Router::new().route("/hook", post(|| async { AxumStatus::OK }))).await;
    let types = app.get(&app.key, "/api/v1/event-types").await;
    assert!(
        types.body["data"].to_string().contains("connection.status_changed"),
        "{:?}",
        types.body
    );
    let created = app
        .post(
            &app.key,
            "/api/v1/webhooks/endpoints",
            json!({ "url": receiver.url("/hook"), "description": "ops", "event_types": ["connection.status_changed"] }),
        )
        .await;
    assert_eq!(created.status, reqwest::StatusCode::CREATED, "{:?}", created.body);
    let secret = created.body["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("whsec_"));
    let id = created.body["endpoint"]["id"].as_str().expect("id").to_string();
    let listed = app.get(&app.key, "/api/v1/webhooks/endpoints").await;
    assert_eq!(listed.body["data"][0]["id"], id.as_str());
    assert!(!listed.body.to_string().contains(&secret), "the secret is shown once");

    for (body, code) in [
        (json!({ "url": "http://169.254.169.254/" }), "invalid_url"),
        (
            json!({ "url": receiver.url("/hook"), "event_types": ["no.such_type"] }),
            "invalid_body",
        ),
    ] {
        let refused = app.post(&app.key, "/api/v1/webhooks/endpoints", body).await;
        assert_eq!(refused.status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.code(), code, "{:?}", refused.body);
    }
    let other = app.new_workspace("other").await;
    assert_eq!(
        app.get(&other, &format!("/api/v1/webhooks/endpoints/{id}"))
            .await
            .status,
        reqwest::StatusCode::NOT_FOUND
    );

    let ws = workspace_of(&app, &app.key).await;
    app.state()
        .db
        .append_event(
            &ws,
            "connection.status_changed",
            &json!({ "connection_id": "conn_9", "from": "connected", "to": "error" }),
        )
        .await
        .expect("event");
    wait_for("the delivery", || !receiver.requests().is_empty()).await;
    let delivered = receiver.requests().remove(0);
    let message = delivered.header("webhook-id").expect("id").to_string();
    // The attempt's log row commits just after the receiver answers.
    let started = Instant::now();
    let log = loop {
        let log = app
            .get(&app.key, &format!("/api/v1/webhooks/messages/{message}/attempts"))
            .await;
        if log.body["data"].as_array().is_some_and(|a| !a.is_empty()) {
            break log;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the attempt was never logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(log.body["data"][0]["status_code"], 200, "{:?}", log.body);
    assert_eq!(
        app.get(&other, &format!("/api/v1/webhooks/messages/{message}/attempts"))
            .await
            .status,
        reqwest::StatusCode::NOT_FOUND
    );
    verify_with_reference_library(&secret, &delivered);

    // A manual retry sends it again, with the same id, and logs a second attempt.
    let retried = app
        .post(
            &app.key,
            &format!("/api/v1/webhooks/messages/{message}/retry"),
            json!({ "endpoint_id": id }),
        )
        .await;
    assert_eq!(retried.status, reqwest::StatusCode::ACCEPTED, "{:?}", retried.body);
    wait_for("the resend", || receiver.requests().len() >= 2).await;
    assert_eq!(receiver.requests()[1].header("webhook-id"), Some(message.as_str()));
    let unknown = app
        .post(
            &app.key,
            &format!("/api/v1/webhooks/messages/{message}/retry"),
            json!({ "endpoint_id": "wep_nope" }),
        )
        .await;
    assert_eq!(unknown.status, reqwest::StatusCode::NOT_FOUND);

    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhooks/endpoints/{id}"),
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(deleted.status, reqwest::StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&app.key, &format!("/api/v1/webhooks/endpoints/{id}"))
            .await
            .status,
        reqwest::StatusCode::NOT_FOUND
    );
}

/// Verify a delivery with the `standardwebhooks` Python package. Required when
/// `NEXUM_REQUIRE_STANDARDWEBHOOKS` is set (CI installs it); otherwise skipped if missing.
fn verify_with_reference_library(secret: &str, delivered: &fakes::Recorded) {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("body");
    std::fs::write(&body, &delivered.body).expect("body");
    let script = r#"
import json, sys
try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    sys.exit(3)
secret, body_path, msg_id, ts, sig = sys.argv[1:6]
payload = open(body_path, "rb").read().decode()
Webhook(secret).verify(payload, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
print("verified")
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(secret)
        .arg(&body)
        .arg(delivered.header("webhook-id").expect("id"))
        .arg(delivered.header("webhook-timestamp").expect("timestamp"))
        .arg(delivered.header("webhook-signature").expect("signature"))
        .output()
        .expect("python3 runs");
    if out.status.code() == Some(3) {
        assert!(
            std::env::var_os("NEXUM_REQUIRE_STANDARDWEBHOOKS").is_none(),
            "the standardwebhooks package is required here: pip install standardwebhooks"
        );
        eprintln!("skipping the reference-library check: pip install standardwebhooks");
        return;
    }
    assert!(
        out.status.success(),
        "standardwebhooks refused the delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

on_both_databases!(connection_lifecycle_events_reach_subscribers);

/// Creating and deleting a connection emit `connection.created` and `connection.deleted`,
/// written with the change itself, and delivered to an endpoint that subscribed to them.
async fn connection_lifecycle_events_reach_subscribers(app: TestApp) {
    let receiver = fakes::serve(Router::new().route("/hook", post(|| async { AxumStatus::OK }))).await;
    let created = app
        .post(
            &app.key,
            "/api/v1/webhooks/endpoints",
            json!({ "url": receiver.url("/hook"), "event_types": ["connection.created", "connection.deleted"] }),
        )
        .await;
    assert_eq!(created.status, reqwest::StatusCode::CREATED, "{:?}", created.body);
    let slack = fakes::slack().await;
    let connection = app.connect_slack(&app.key, &slack).await;
    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/connections/{connection}"),
            Some(&app.key),
            None,
        )
        .await;
    assert!(deleted.status.is_success(), "{:?}", deleted.body);
    wait_for("both events delivered", || receiver.requests().len() >= 2).await;
    let mut seen: Vec<(String, String)> = receiver
        .requests()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["type"].as_str().unwrap_or_default().to_string(),
                body["data"]["connection_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("connection.created".to_string(), connection.clone()),
            ("connection.deleted".to_string(), connection.clone()),
        ]
    );
}
