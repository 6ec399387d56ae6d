//! Webhook deliveries per second, end to end: from an event appended to the outbox to the
//! receiver's 2xx, through fan-out, the durable queue, signing and the outbound client.
//!
//! Run with `cargo bench -p nexum-tests --bench webhooks` (a number after `--` sets the
//! paced rate: `cargo bench -p nexum-tests --bench webhooks -- 5000`).
//!
//! For SQLite, and for PostgreSQL when it answers at `NEXUM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; skipped otherwise), an in-process server
//! delivers to one endpoint on a quiet loopback receiver that answers 204:
//!
//! - `paced`: events appended at `NEXUM_BENCH_RATE` per second (default 2000) for
//!   `NEXUM_BENCH_SECS` seconds (default 10);
//! - `burst`: `NEXUM_BENCH_BURST` events (default 10,000) appended as fast as possible.
//!
//! Reported per run: events, the append rate asked for and reached, messages delivered and
//! duplicates, deliveries/s (delivered ÷ (last receipt − first event's creation)), and the
//! latency of each message's first receipt after its event's creation (p50, p90, p99, max;
//! the event's timestamp has millisecond resolution).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use nexum_host::ids::WorkspaceId;
use nexum_host::state::AppState;
use nexum_tests::app::{Backend, TestApp, postgres_url};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Tasks appending events at once.
const PRODUCERS: u64 = 8;

/// How long a run may take to deliver everything before it is reported incomplete.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

/// What to run, from the environment and the command line.
struct Settings {
    /// Events per second offered in the paced run.
    rate: f64,
    /// Length of the paced run, in seconds.
    secs: f64,
    /// Events in the burst run.
    burst: u64,
}

impl Settings {
    fn from_env() -> Self {
        let env = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .unwrap_or(default)
        };
        // `cargo bench` passes `--bench`; a bare number is the rate.
        let arg_rate = std::env::args()
            .skip(1)
            .find_map(|a| a.parse::<f64>().ok())
            .filter(|v| *v > 0.0);
        Self {
            rate: arg_rate.unwrap_or_else(|| env("NEXUM_BENCH_RATE", 2000.0)),
            secs: env("NEXUM_BENCH_SECS", 10.0),
            burst: env("NEXUM_BENCH_BURST", 10_000.0) as u64,
        }
    }
}

/// One delivery as the receiver saw it.
struct Received {
    /// The event's sequence number in its run.
    n: u64,
    /// The event's creation (the body's `timestamp`), unix ms.
    event_ms: f64,
    /// When the receiver got it, unix ms.
    received_ms: f64,
}

/// The receiver's record: deliveries per run, and the distinct events of each run.
#[derive(Default)]
struct Log {
    deliveries: HashMap<String, Vec<Received>>,
    distinct: HashMap<String, HashSet<u64>>,
}

/// A quiet receiver: records and answers 204.
#[derive(Default)]
struct Receiver {
    log: Mutex<Log>,
}

impl Receiver {
    /// Distinct events of `run` received so far.
    fn distinct(&self, run: &str) -> usize {
        self.log.lock().expect("log").distinct.get(run).map_or(0, HashSet::len)
    }
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

async fn receive(State(rx): State<Arc<Receiver>>, body: Bytes) -> StatusCode {
    let received_ms = unix_ms();
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let run = v["data"]["run"].as_str().unwrap_or_default().to_string();
    let n = v["data"]["n"].as_u64().unwrap_or(u64::MAX);
    let event_ms = v["timestamp"].as_f64().unwrap_or(f64::NAN);
    let mut log = rx.log.lock().expect("log");
    log.distinct.entry(run.clone()).or_default().insert(n);
    log.deliveries.entry(run).or_default().push(Received {
        n,
        event_ms,
        received_ms,
    });
    StatusCode::NO_CONTENT
}

/// One run's results.
struct Row {
    backend: &'static str,
    run: &'static str,
    events: u64,
    /// Events/s asked for (`None`: as fast as possible).
    offered: Option<f64>,
    /// Events/s actually appended.
    appended: f64,
    /// Distinct events delivered.
    delivered: usize,
    /// Deliveries beyond the first of an event.
    duplicates: usize,
    /// Delivered ÷ (last receipt − first event's creation).
    per_sec: f64,
    /// p50, p90, p99, max latency in ms.
    latency: [f64; 4],
}

/// A server on one backend with an endpoint on the receiver.
struct Bench {
    backend: &'static str,
    state: Arc<AppState>,
    workspace: WorkspaceId,
    receiver: Arc<Receiver>,
}

impl Bench {
    /// Append `events` events tagged `run` (at `rate` per second, or as fast as possible),
    /// wait until the receiver has them all, and measure.
    async fn run(&self, run: &'static str, events: u64, rate: Option<f64>) -> Row {
        let started = Instant::now();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|first| {
                let (state, workspace) = (self.state.clone(), self.workspace.clone());
                tokio::spawn(async move {
                    for n in (first..events).step_by(PRODUCERS as usize) {
                        if let Some(rate) = rate {
                            let due = started + Duration::from_secs_f64(n as f64 / rate);
                            tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                        }
                        state
                            .db
                            .append_event(
                                &workspace,
                                "connection.created",
                                &json!({ "connection_id": format!("conn_{n}"), "run": run, "n": n }),
                            )
                            .await
                            .expect("event appended");
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.await.expect("producer");
        }
        let appended = events as f64 / started.elapsed().as_secs_f64();
        let deadline = Instant::now() + DRAIN_LIMIT;
        while self.receiver.distinct(run) < events as usize && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let log = self.receiver.log.lock().expect("log");
        let deliveries = log.deliveries.get(run).map(Vec::as_slice).unwrap_or_default();
        // Each event's first receipt: (creation, receipt).
        let mut first: HashMap<u64, (f64, f64)> = HashMap::new();
        for d in deliveries {
            let entry = first.entry(d.n).or_insert((d.event_ms, d.received_ms));
            entry.1 = entry.1.min(d.received_ms);
        }
        let mut latencies: Vec<f64> = first.values().map(|(e, r)| r - e).collect();
        latencies.sort_by(f64::total_cmp);
        let created = first.values().map(|(e, _)| *e).fold(f64::INFINITY, f64::min);
        let last = first.values().map(|(_, r)| *r).fold(f64::NEG_INFINITY, f64::max);
        let span_secs = (last - created) / 1000.0;
        Row {
            backend: self.backend,
            run,
            events,
            offered: rate,
            appended,
            delivered: first.len(),
            duplicates: deliveries.len() - first.len(),
            per_sec: if span_secs > 0.0 {
                first.len() as f64 / span_secs
            } else {
                0.0
            },
            latency: [
                percentile(&latencies, 50.0),
                percentile(&latencies, 90.0),
                percentile(&latencies, 99.0),
                latencies.last().copied().unwrap_or(f64::NAN),
            ],
        }
    }
}

/// The `p`th percentile of sorted `values` (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Start a server on `backend`, run the paced and the burst runs, shut it down.
async fn bench_backend(backend: Backend, settings: &Settings) -> Vec<Row> {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let app = TestApp::start_with(backend, |c| {
        c.webhook_fanout_ms = 20;
        if let Some(n) = std::env::var("NEXUM_BENCH_DB_CONNECTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            c.db_max_connections = n;
        }
        if let Some(n) = std::env::var("NEXUM_BENCH_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            c.webhook_concurrency = n;
        }
    })
    .await;
    let receiver = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route("/hook", post(receive)).with_state(receiver.clone());
    let serving = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let created = app
        .post(
            &app.key,
            "/api/v1/webhooks/endpoints",
            json!({ "url": format!("http://{addr}/hook"), "event_types": ["connection.created"] }),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    let workspace: WorkspaceId = app.get(&app.key, "/api/v1/workspace").await.body["id"]
        .as_str()
        .expect("workspace id")
        .parse()
        .expect("workspace id");
    let bench = Bench {
        backend: name,
        state: app.state().clone(),
        workspace,
        receiver,
    };

    // Warm the pools and connections up; not reported.
    bench.run("warmup", 200, Some(1000.0)).await;
    let paced_events = (settings.rate * settings.secs).round() as u64;
    let mut rows = Vec::new();
    for (run, events, rate) in [
        ("paced", paced_events, Some(settings.rate)),
        ("burst", settings.burst, None),
    ] {
        eprintln!("{name}/{run}: {events} events…");
        let row = bench.run(run, events, rate).await;
        if row.delivered < events as usize {
            eprintln!(
                "{name}/{run}: only {} of {events} delivered within {DRAIN_LIMIT:?}",
                row.delivered
            );
        }
        rows.push(row);
    }
    drop(bench);
    app.shutdown().await;
    serving.abort();
    rows
}

/// Whether PostgreSQL answers at the test URL.
async fn postgres_reachable() -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(5),
            nexum_host::store::Db::connect(&postgres_url(), 1)
        )
        .await,
        Ok(Ok(_))
    )
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<9} {:<6} {:>7} {:>9} {:>10} {:>9} {:>5} {:>12} {:>8} {:>8} {:>8} {:>8}",
        "backend",
        "run",
        "events",
        "offered/s",
        "appended/s",
        "delivered",
        "dup",
        "deliveries/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms"
    );
    for r in rows {
        let offered = r.offered.map_or_else(|| "max".to_string(), |o| format!("{o:.0}"));
        println!(
            "{:<9} {:<6} {:>7} {:>9} {:>10.0} {:>9} {:>5} {:>12.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            r.backend,
            r.run,
            r.events,
            offered,
            r.appended,
            r.delivered,
            r.duplicates,
            r.per_sec,
            r.latency[0],
            r.latency[1],
            r.latency[2],
            r.latency[3]
        );
    }
}

fn main() {
    let settings = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rows = rt.block_on(async {
        let mut rows = bench_backend(Backend::Sqlite, &settings).await;
        if postgres_reachable().await {
            rows.extend(bench_backend(Backend::Postgres, &settings).await);
        } else {
            eprintln!("skipping PostgreSQL: not reachable (set NEXUM_TEST_POSTGRES_URL)");
        }
        rows
    });
    print_table(&rows);
    rt.shutdown_timeout(Duration::from_secs(5));
}
