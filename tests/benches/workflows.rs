//! Workflow executions, end to end, on SQLite (the embedded default) with an in-process
//! server.
//!
//! Run with `cargo bench -p nexum-tests --bench workflows` (a number after `--` sets the
//! paced rate: `cargo bench -p nexum-tests --bench workflows -- 1500`).
//!
//! 1. **Incoming webhook → one-step workflow → `succeeded`.** Signed GitHub-style webhooks
//!    are POSTed to the trigger's URL at `NEXUM_BENCH_RATE` per second (default 1000) for
//!    `NEXUM_BENCH_SECS` seconds (default 10), each with its own delivery id, over loopback
//!    HTTP from 8 client tasks; the workflow's one step is a `transform` (no I/O). Reported:
//!    executions, the rate asked for and reached, executions/s (succeeded ÷ (last end − first
//!    creation)), and trigger-to-done latency per execution (its `finished_at − created_at`;
//!    the row is created when the verified request is accepted; millisecond resolution):
//!    p50, p90, p99, max. Also the p99 of the incoming request itself.
//! 2. **Overhead of a 3-step workflow over three direct action calls** (a no-I/O action, so
//!    only the machinery is measured): `NEXUM_BENCH_ROUNDS` rounds (default 300),
//!    alternating three `connections::run_action` calls in a row with one execution of a
//!    workflow of the same three calls (start → woken when it ends). Reported: the median of
//!    each and the difference.

use futures_util::StreamExt;
use hmac::{KeyInit, Mac};
use nexum_host::ids::{ConnectionId, WorkspaceId};
use nexum_tests::app::{Backend, TestApp};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Client tasks sending webhooks.
const SENDERS: u64 = 8;

const SECRET: &str = "bench-webhook-secret";

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(default)
}

/// The `p`th percentile of sorted `values` (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn signature(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn create(app: &TestApp, body: Value) -> Value {
    let created = app.post(&app.key, "/api/v1/workflows", body).await;
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    created.body
}

/// Send `count` signed webhooks tagged `run` at `rate` per second; returns the request
/// latencies (ms) and the rate reached.
async fn send(url: &str, run: &str, count: u64, rate: f64) -> (Vec<f64>, f64) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let started = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|first| {
            let (client, url, run) = (client.clone(), url.to_string(), run.to_string());
            tokio::spawn(async move {
                let requests = futures_util::stream::iter((first..count).step_by(SENDERS as usize)).map(|n| {
                    let (client, url, run) = (client.clone(), url.clone(), run.clone());
                    async move {
                        let due = started + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                        let body = json!({ "run": run, "n": n, "repository": { "name": "nexum" } }).to_string();
                        let sent = Instant::now();
                        let response = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-hub-signature-256", signature(body.as_bytes()))
                            .header("x-github-delivery", format!("{run}-{n}"))
                            .body(body)
                            .send()
                            .await
                            .expect("sent");
                        assert_eq!(response.status().as_u16(), 202, "{:?}", response.text().await);
                        sent.elapsed().as_secs_f64() * 1000.0
                    }
                });
                requests.buffer_unordered(64).collect::<Vec<f64>>().await
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for s in senders {
        latencies.extend(s.await.expect("sender"));
    }
    let reached = count as f64 / started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (latencies, reached)
}

/// (status, created_at, finished_at) of every execution of `workflow`.
async fn executions(app: &TestApp, workflow: &str) -> Vec<(String, i64, Option<i64>)> {
    sqlx::query_as("SELECT status, created_at, finished_at FROM workflow_executions WHERE workflow_id = $1")
        .bind(workflow)
        .fetch_all(app.state().db.pool())
        .await
        .expect("executions")
}

async fn incoming(app: &TestApp, rate: f64, secs: f64) {
    let workflow = create(
        app,
        json!({ "name": "bench", "trigger": { "type": "webhook", "scheme": "github", "secrets": [SECRET] },
            "steps": [ { "name": "pick", "type": "transform", "output": { "repo": "{{ trigger.json.repository.name }}", "n": "{{ trigger.json.n }}" } } ] }),
    )
    .await;
    let url = workflow["trigger"]["url"].as_str().expect("url").to_string();
    let id = workflow["id"].as_str().expect("id").to_string();
    // Warm up (not reported).
    send(&url, "warmup", 500, 1000.0).await;
    let warm = executions(app, &id).await.len();
    let count = (rate * secs).round() as u64;
    eprintln!("incoming: {count} webhooks at {rate}/s…");
    let (requests, reached) = send(&url, "paced", count, rate).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let rows = loop {
        let rows = executions(app, &id).await;
        let done = rows.iter().filter(|r| r.0 == "succeeded").count();
        if done >= warm + count as usize || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The paced run's executions: the newest `count` by creation.
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_by_key(|r| r.1);
    let paced = &rows[rows.len().saturating_sub(count as usize)..];
    let succeeded: Vec<_> = paced.iter().filter(|r| r.0 == "succeeded").collect();
    let mut latency: Vec<f64> = succeeded.iter().filter_map(|r| r.2.map(|f| (f - r.1) as f64)).collect();
    latency.sort_by(f64::total_cmp);
    let first = paced.iter().map(|r| r.1).min().unwrap_or(0);
    let last = succeeded.iter().filter_map(|r| r.2).max().unwrap_or(first);
    let per_sec = succeeded.len() as f64 / ((last - first).max(1) as f64 / 1000.0);
    println!(
        "{:<34} {:>6} {:>9} {:>9} {:>10} {:>7} {:>7} {:>7} {:>7} {:>12}",
        "run", "execs", "offered/s", "reached/s", "succeeded/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "request p99"
    );
    println!(
        "{:<34} {:>6} {:>9.0} {:>9.0} {:>10.0} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>9.1} ms",
        "sqlite webhook → transform",
        succeeded.len(),
        rate,
        reached,
        per_sec,
        percentile(&latency, 50.0),
        percentile(&latency, 90.0),
        percentile(&latency, 99.0),
        percentile(&latency, 100.0),
        percentile(&requests, 99.0),
    );
}

async fn overhead(app: &TestApp, rounds: usize) {
    // A no-I/O action (the hostile test connector's `ok`, which echoes its input), so what is
    // measured is the workflow machinery, not an upstream or the connection's rate limit.
    assert_eq!(app.install(&app.key, "hostile").await.status.as_u16(), 201);
    let created = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "hostile", "name": "echo", "credentials": { "token": "t0k3n-bench" } }),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    let conn = created.body["id"].as_str().expect("id").to_string();
    let workspace: WorkspaceId = app.get(&app.key, "/api/v1/workspace").await.body["id"]
        .as_str()
        .expect("workspace")
        .parse()
        .expect("workspace id");
    let connection: ConnectionId = conn.parse().expect("connection id");
    let calls = [
        ("ok", json!({ "n": 1 })),
        ("ok", json!({ "n": 2 })),
        ("ok", json!({ "n": 3 })),
    ];
    let steps: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (action, input))| json!({ "name": format!("s{i}"), "type": "connector", "connection": conn, "action": action, "input": input }))
        .collect();
    let workflow = create(app, json!({ "name": "three calls", "steps": steps })).await;
    let state = app.state().clone();
    let record = state
        .db
        .workflow(&workspace, workflow["id"].as_str().expect("id"))
        .await
        .expect("read")
        .expect("workflow");
    let direct_once = || {
        let (state, workspace, connection, calls) =
            (state.clone(), workspace.clone(), connection.clone(), calls.clone());
        async move {
            let started = Instant::now();
            for (action, input) in calls {
                let out =
                    nexum_host::connections::run_action(&state, &workspace, "bench", &connection, action, input, None)
                        .await
                        .expect("call");
                assert!(out.result.is_ok(), "{:?}", out.result);
            }
            started.elapsed().as_secs_f64() * 1000.0
        }
    };
    let workflow_once = || {
        let (state, record) = (state.clone(), record.clone());
        async move {
            let started = Instant::now();
            let id = nexum_host::workflows::manage::start(&state, &record, "manual", &json!({}))
                .await
                .expect("started");
            let guard = state.workflows.waiters.watch(&id);
            loop {
                let now = state
                    .db
                    .execution(&record.workspace_id, &id)
                    .await
                    .expect("read")
                    .expect("exists");
                if now.is_finished() {
                    assert_eq!(now.status, "succeeded", "{:?}", now.error);
                    break;
                }
                tokio::select! {
                    _ = guard.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
            started.elapsed().as_secs_f64() * 1000.0
        }
    };
    for _ in 0..50 {
        direct_once().await;
        workflow_once().await;
    }
    let (mut direct, mut flows) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        direct.push(direct_once().await);
        flows.push(workflow_once().await);
    }
    direct.sort_by(f64::total_cmp);
    flows.sort_by(f64::total_cmp);
    let (d, w) = (percentile(&direct, 50.0), percentile(&flows, 50.0));
    println!(
        "3 direct calls: median {d:.3} ms; 3-step workflow: median {w:.3} ms; overhead {:.3} ms ({rounds} rounds)",
        w - d
    );
}

fn main() {
    let arg_rate = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<f64>().ok())
        .filter(|v| *v > 0.0);
    let rate = arg_rate.unwrap_or_else(|| env_f64("NEXUM_BENCH_RATE", 1000.0));
    let secs = env_f64("NEXUM_BENCH_SECS", 10.0);
    let rounds = env_f64("NEXUM_BENCH_ROUNDS", 300.0) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let app = TestApp::start_with(Backend::Sqlite, |c| {
            c.public_rate_limit_per_minute = 0;
        })
        .await;
        incoming(&app, rate, secs).await;
        overhead(&app, rounds).await;
        app.shutdown().await;
    });
    rt.shutdown_timeout(Duration::from_secs(5));
}
