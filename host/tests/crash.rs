//! What survives `kill -9` of the real binary: every `secret.use` audit record of a call
//! that was answered, and an Idempotency-Key whose request died with the process (its claim
//! lapses with its lease, so a retry runs the request once more and then replays).

use nexum_tests::app::{Backend, TestApp, fresh_postgres_schema};
use nexum_tests::fakes;
use nexum_tests::process::NexumProcess;
use nexum_tests::stall::Stall;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_nexum");

async fn database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite:{}", dir.join("nexum.db").display()),
        Backend::Postgres => fresh_postgres_schema().await,
    }
}

/// Every `secret.use` record in the workspace's audit log.
async fn secret_uses(app: &TestApp) -> usize {
    let mut count = 0;
    let mut cursor = String::new();
    loop {
        let page = app
            .get(&app.key, &format!("/api/v1/audit-log?limit=100&cursor={cursor}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let data = page.body["data"].as_array().cloned().unwrap_or_default();
        count += data.iter().filter(|e| e["action"] == "secret.use").count();
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return count,
        }
    }
}

async fn audit_survives(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database(backend, dir.path()).await;
    let slack = fakes::slack().await;
    let first = NexumProcess::start(Path::new(BINARY), dir.path(), &url, &[]);
    let key = first.first_key.clone().expect("operator key on first start");
    let app = first.app(&key, backend, &url);
    let connection = app.connect_slack(&key, &slack).await;
    let path = format!("/api/v1/connections/{connection}/actions/send_message");
    for i in 0..40 {
        let sent = app
            .post(&key, &path, json!({ "channel": "C1", "text": format!("message {i}") }))
            .await;
        assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    }
    // Killed right after the last answer: no shutdown flush runs.
    first.kill9();

    let second = NexumProcess::start(Path::new(BINARY), dir.path(), &url, &[]);
    let app = second.app(&key, backend, &url);
    assert_eq!(secret_uses(&app).await, 40, "every answered call is in the audit log");
    assert_eq!(slack.requests().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_survive_sigkill_sqlite() {
    audit_survives(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_survive_sigkill_postgres() {
    audit_survives(Backend::Postgres).await;
}

async fn idempotency_claim_lapses(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database(backend, dir.path()).await;
    let stall = Stall::start(1).await;
    let upstream = stall.origin.clone();
    let lease = [("NEXUM_IDEMPOTENCY_LEASE_SECS", "2")];
    let first = NexumProcess::start(Path::new(BINARY), dir.path(), &url, &lease);
    let key = first.first_key.clone().expect("operator key");
    let app = first.app(&key, backend, &url);
    let installed = app.install(&key, "http").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    let created = app
        .post(
            &key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Stalling", "credentials": { "token": "stall-token-123456" }, "variables": { "base_url": upstream } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let path = format!(
        "/api/v1/connections/{}/actions/request",
        created.body["id"].as_str().expect("id")
    );
    let body = serde_json::to_vec(&json!({ "url": "/charge" })).expect("json");
    let headers = [("content-type", "application/json"), ("idempotency-key", "charge-1")];

    // The first attempt reaches the upstream and hangs there; then the process dies.
    let in_flight = {
        let (app, path, body) = (first.app(&key, backend, &url), path.clone(), body.clone());
        tokio::spawn(async move { app.post_raw(&app.key, &path, body, &headers).await })
    };
    stall.wait_for(1).await;
    first.kill9();
    let _ = in_flight.await;

    // After a restart the claim lapses with its lease and a retry runs the request.
    let second = NexumProcess::start(Path::new(BINARY), dir.path(), &url, &lease);
    let app = second.app(&key, backend, &url);
    let started = Instant::now();
    let retried = loop {
        let reply = app.post_raw(&key, &path, body.clone(), &headers).await;
        if reply.status != StatusCode::CONFLICT {
            break reply;
        }
        assert_eq!(reply.code(), "conflict", "{:?}", reply.body);
        assert!(started.elapsed() < Duration::from_secs(60), "the claim never lapsed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(retried.status, StatusCode::OK, "{:?}", retried.body);
    assert_eq!(retried.body["output"]["body"], json!({ "ok": true }));
    assert_eq!(stall.arrived(), 2);
    // From now on the key replays that answer without running anything.
    let replayed = app.post_raw(&key, &path, body, &headers).await;
    assert_eq!(replayed.status, StatusCode::OK);
    assert_eq!(replayed.body, retried.body);
    assert_eq!(
        replayed.headers.get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(stall.arrived(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_claim_lapses_after_sigkill_sqlite() {
    idempotency_claim_lapses(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_claim_lapses_after_sigkill_postgres() {
    idempotency_claim_lapses(Backend::Postgres).await;
}
