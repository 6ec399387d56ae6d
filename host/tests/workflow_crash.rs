//! `kill -9` in the middle of workflow executions: every execution resumes and completes,
//! no step that was completed (journaled) before the kill runs again, and every attempt of
//! a step carries the same idempotency key.
//!
//! The real binary runs 200 executions of a three-step workflow (`first` → `slow` → `last`,
//! each an HTTP connector call to a loopback fake; `slow` takes 1.5 s). Once a good number of
//! `slow` requests have arrived, the process is killed with SIGKILL and the step journal is
//! read straight from the database: the steps it shows as `succeeded` are the completed
//! ones. A second process on the same data directory and database takes the executions over
//! when the dead process's leases run out, and in the end:
//!
//! - all 200 executions are `succeeded`, each with three `succeeded` steps;
//! - no step journaled as completed before the kill was requested again after it;
//! - every request of a step carried `Idempotency-Key: <execution id>:<step>`;
//! - `first` and `last` were each requested at least once per execution.
//!
//! A step in flight at the kill may run twice (at-least-once); the test prints how many did.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::post;
use futures_util::StreamExt;
use nexum_host::store::Db;
use nexum_tests::app::{Backend, TestApp, fresh_postgres_schema};
use nexum_tests::process::NexumProcess;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_nexum");

/// Executions started.
const EXECUTIONS: usize = 200;

/// `slow` requests that arrive before the kill.
const KILL_AFTER_SLOW: usize = 40;

const SETTINGS: [(&str, &str); 2] = [
    ("NEXUM_DEFAULT_KEY_RATE_LIMIT_PER_MINUTE", "1000000"),
    ("NEXUM_MAX_CONCURRENT_CALLS", "128"),
];

/// One request the fake got.
#[derive(Debug, Clone)]
struct Hit {
    execution: String,
    step: String,
    key: String,
    arrived: Instant,
}

#[derive(Default)]
struct Upstream {
    hits: Mutex<Vec<Hit>>,
}

async fn step(
    State(upstream): State<Arc<Upstream>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> axum::Json<Value> {
    let step = q.get("step").cloned().unwrap_or_default();
    upstream.hits.lock().expect("hits").push(Hit {
        execution: q.get("exe").cloned().unwrap_or_default(),
        step: step.clone(),
        key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        arrived: Instant::now(),
    });
    if step == "slow" {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    axum::Json(json!({ "ok": true, "step": step }))
}

async fn database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite:{}", dir.join("nexum.db").display()),
        Backend::Postgres => fresh_postgres_schema().await,
    }
}

fn http_step(name: &str) -> Value {
    json!({
        "name": name,
        "type": "connector",
        "connection": "{{CONNECTION}}",
        "action": "request",
        "retry": { "attempts": 3, "backoff_ms": 200 },
        "input": {
            "method": "POST",
            "url": "/step",
            "query": { "exe": "{{ execution.id }}", "step": name },
            "json": { "from": "{{ execution.id }}" }
        }
    })
}

async fn statuses(app: &TestApp, ids: &[String]) -> HashMap<String, String> {
    futures_util::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let got = app.get(&app.key, &format!("/api/v1/executions/{id}")).await;
            (id, got.body["status"].as_str().unwrap_or_default().to_string())
        })
        .buffer_unordered(16)
        .collect()
        .await
}

async fn executions_resume(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database(backend, dir.path()).await;
    let upstream = Arc::new(Upstream::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let router = Router::new().route("/step", post(step)).with_state(upstream.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let first = NexumProcess::start(Path::new(BINARY), dir.path(), &url, &SETTINGS);
    let key = first.first_key.clone().expect("operator key");
    let app = first.app(&key, backend, &url);
    assert_eq!(app.install(&key, "http").await.status, StatusCode::CREATED);
    let connection = app
        .post(
            &key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "fake", "credentials": { "token": "t0k3n-crash-test" }, "variables": { "base_url": origin } }),
        )
        .await;
    assert_eq!(connection.status, StatusCode::CREATED, "{:?}", connection.body);
    let connection = connection.body["id"].as_str().expect("id").to_string();
    let steps: Vec<Value> = ["first", "slow", "last"]
        .iter()
        .map(|n| {
            let text = http_step(n).to_string().replace("{{CONNECTION}}", &connection);
            serde_json::from_str(&text).expect("json")
        })
        .collect();
    let created = app
        .post(
            &key,
            "/api/v1/workflows",
            json!({ "name": "three steps", "steps": steps }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let workflow = created.body["id"].as_str().expect("id").to_string();

    let path = format!("/api/v1/workflows/{workflow}/execute");
    let ids: Vec<String> = futures_util::stream::iter(0..EXECUTIONS)
        .map(|i| {
            let (app, path) = (&app, &path);
            async move {
                let r = app.post(&app.key, path, json!({ "n": i })).await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
                r.body["id"].as_str().expect("id").to_string()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let started = Instant::now();
    loop {
        let slow = upstream
            .hits
            .lock()
            .expect("hits")
            .iter()
            .filter(|h| h.step == "slow")
            .count();
        if slow >= KILL_AFTER_SLOW {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {slow} slow requests arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill9();
    let killed = Instant::now();

    // What the dead process had journaled as completed.
    let db = Db::connect(&url, 2).await.expect("database");
    let mut completed: HashSet<(String, String)> = HashSet::new();
    for id in &ids {
        for row in db.step_runs(id).await.expect("journal") {
            if row.status == "succeeded" {
                completed.insert((id.clone(), row.step.clone()));
            }
        }
    }
    let finished_before = completed.iter().filter(|(_, s)| s == "last").count();
    eprintln!(
        "[{backend:?}] killed with {} steps journaled as completed ({finished_before} executions finished)",
        completed.len()
    );

    let second = NexumProcess::start(Path::new(BINARY), dir.path(), &url, &SETTINGS);
    let app = second.app(&key, backend, &url);
    let started = Instant::now();
    loop {
        let now = statuses(&app, &ids).await;
        let done = now.values().filter(|s| *s == "succeeded").count();
        let failed: Vec<_> = now
            .iter()
            .filter(|(_, s)| *s == "failed" || *s == "cancelled")
            .collect();
        assert!(failed.is_empty(), "executions ended badly: {failed:?}");
        if done == EXECUTIONS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{done} of {EXECUTIONS} executions succeeded after the restart"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    for id in ids.iter().take(20) {
        let got = app.get(&key, &format!("/api/v1/executions/{id}")).await;
        let steps = got.body["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), 3, "{}", got.body);
        for s in steps {
            assert_eq!(s["status"], "succeeded", "{}", got.body);
            assert_eq!(
                s["idempotency_key"],
                format!("{id}:{}", s["name"].as_str().unwrap_or_default())
            );
        }
    }

    let hits = upstream.hits.lock().expect("hits").clone();
    let rerun: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.arrived >= killed && completed.contains(&(h.execution.clone(), h.step.clone())))
        .collect();
    assert!(
        rerun.is_empty(),
        "completed steps ran again after the restart: {rerun:?}"
    );
    let wrong_keys: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.key != format!("{}:{}", h.execution, h.step))
        .collect();
    assert!(
        wrong_keys.is_empty(),
        "requests with another idempotency key: {wrong_keys:?}"
    );
    let mut per_step: HashMap<(&str, &str), usize> = HashMap::new();
    for h in &hits {
        *per_step.entry((h.execution.as_str(), h.step.as_str())).or_default() += 1;
    }
    for id in &ids {
        for step in ["first", "slow", "last"] {
            assert!(per_step.contains_key(&(id.as_str(), step)), "{id} never ran {step}");
        }
    }
    let twice = per_step.values().filter(|n| **n > 1).count();
    eprintln!(
        "[{backend:?}] {} requests for {} steps; {twice} steps in flight at the kill ran twice",
        hits.len(),
        per_step.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_workflow_resumes_every_execution_sqlite() {
    executions_resume(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_workflow_resumes_every_execution_postgres() {
    executions_resume(Backend::Postgres).await;
}
