//! `kill -9` in the middle of webhook deliveries loses no event.
//!
//! The real binary queues 1,000 test deliveries to a loopback receiver that misbehaves on
//! purpose (a 500 to the first attempt of about one message in five, a 300 ms pause for
//! about one in ten). Once a quarter of them have been answered, the process is killed with
//! SIGKILL, in the middle of its deliveries and retries, and started again on the same data
//! directory and database. The jobs the dead process held come back when their lease runs
//! out (2 × 2 s timeout + 1 s), and in the end:
//!
//! - every one of the 1,000 messages was answered 2xx by the receiver at least once (none
//!   lost), and the delivery log of each shows that 2xx attempt;
//! - the receiver saw no message id it was not given (no invented or mixed-up messages);
//! - every attempt carried a valid Standard Webhooks signature;
//! - every attempt of one message carried the same `webhook-id` and the same event.
//!
//! Duplicates are allowed (delivery is at-least-once: an answer the dead process never
//! heard is sent again); the test prints how many there were.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use futures_util::StreamExt;
use nexum_host::webhooks::{DEFAULT_TOLERANCE_SECS, WebhookSecret, verify};
use nexum_tests::app::{Backend, TestApp, fresh_postgres_schema};
use nexum_tests::process::NexumProcess;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_nexum");

/// Test events sent through the API.
const EVENTS: usize = 1000;

/// API requests in flight while sending them.
const IN_FLIGHT: usize = 16;

/// Messages answered 2xx before the kill.
const KILL_AFTER: usize = 250;

/// Settings of both processes: a 2 s receiver timeout (so the jobs of a dead process are
/// re-claimed 5 s later), quick retries, and a key rate limit that 2,000 requests fit in.
const SETTINGS: [(&str, &str); 3] = [
    ("NEXUM_WEBHOOK_TIMEOUT_MS", "2000"),
    ("NEXUM_WEBHOOK_RETRY_DELAYS_MS", "200,400,800,1600,3200"),
    ("NEXUM_DEFAULT_KEY_RATE_LIMIT_PER_MINUTE", "1000000"),
];

async fn database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite:{}", dir.join("nexum.db").display()),
        Backend::Postgres => fresh_postgres_schema().await,
    }
}

/// One request the receiver got.
struct Hit {
    /// Its `webhook-id`.
    id: String,
    /// When it arrived.
    arrived: Instant,
    /// What the receiver answered.
    status: u16,
    /// Its body, parsed (`Null` if it was not JSON).
    body: Value,
}

/// A loopback webhook receiver that verifies every signature, misbehaves on purpose and
/// records every request.
struct Receiver {
    /// The endpoint's signing secret.
    secret: WebhookSecret,
    /// Every request, in order of answer.
    hits: Mutex<Vec<Hit>>,
    /// Ids seen at least once (only a message's first attempt is failed).
    seen: Mutex<HashSet<String>>,
    /// Requests whose signature did not verify (or that had no signature headers).
    bad_signatures: AtomicUsize,
}

impl Receiver {
    /// Serve `POST /hook` on `listener`, verifying signatures with `secret`.
    fn serve(listener: tokio::net::TcpListener, secret: WebhookSecret) -> Arc<Self> {
        let receiver = Arc::new(Self {
            secret,
            hits: Mutex::default(),
            seen: Mutex::default(),
            bad_signatures: AtomicUsize::new(0),
        });
        let router = Router::new().route("/hook", post(receive)).with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        receiver
    }

    /// Ids answered 2xx (by requests that arrived before `before`, if given).
    fn answered(&self, before: Option<Instant>) -> HashSet<String> {
        self.hits
            .lock()
            .expect("hits")
            .iter()
            .filter(|h| (200..300).contains(&h.status) && before.is_none_or(|t| h.arrived < t))
            .map(|h| h.id.clone())
            .collect()
    }
}

/// Which of ten buckets a message id falls in (FNV-1a: fixed, evenly spread). Buckets 0 and
/// 1 fail their first attempt; bucket 2 is slow.
fn bucket(id: &str) -> u64 {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % 10
}

/// The first value of header `name` as text ("" when missing).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let arrived = Instant::now();
    let id = header(&headers, "webhook-id").to_string();
    let signed = header(&headers, "webhook-timestamp")
        .parse::<i64>()
        .is_ok_and(|timestamp| {
            verify(
                &rx.secret,
                &id,
                timestamp,
                &body,
                header(&headers, "webhook-signature"),
                nexum_host::store::now_ms() / 1000,
                DEFAULT_TOLERANCE_SECS,
            )
            .is_ok()
        });
    if !signed {
        rx.bad_signatures.fetch_add(1, Ordering::SeqCst);
    }
    let first = rx.seen.lock().expect("seen").insert(id.clone());
    let status = match bucket(&id) {
        0 | 1 if first => AxumStatus::INTERNAL_SERVER_ERROR,
        2 => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            AxumStatus::OK
        }
        _ => AxumStatus::OK,
    };
    rx.hits.lock().expect("hits").push(Hit {
        id,
        arrived,
        status: status.as_u16(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    status
}

/// Poll `progress` (done, wanted) every 200 ms until done reaches wanted; fail after `limit`.
async fn wait_until(what: &str, limit: Duration, mut progress: impl FnMut() -> (usize, usize)) {
    let started = Instant::now();
    loop {
        let (done, wanted) = progress();
        if done >= wanted {
            return;
        }
        assert!(started.elapsed() < limit, "{what}: {done} of {wanted} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Queue one test delivery of `connection.created` through `path`; returns its message id.
async fn send_test(app: &TestApp, path: &str) -> String {
    let reply = app
        .post(&app.key, path, json!({ "event_type": "connection.created" }))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    reply.body["message_id"].as_str().expect("message_id").to_string()
}

/// Whether the delivery log of message `id` shows a 2xx attempt.
async fn logged_2xx(app: &TestApp, id: &str) -> bool {
    let log = app
        .get(&app.key, &format!("/api/v1/webhooks/messages/{id}/attempts"))
        .await;
    assert_eq!(log.status, StatusCode::OK, "{:?}", log.body);
    log.body["data"].as_array().is_some_and(|attempts| {
        attempts
            .iter()
            .any(|a| a["status_code"].as_u64().is_some_and(|s| (200..300).contains(&s)))
    })
}

async fn no_event_lost(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database(backend, dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));

    let first = NexumProcess::start(Path::new(BINARY), dir.path(), &url, &SETTINGS);
    let key = first.first_key.clone().expect("operator key on first start");
    let app = first.app(&key, backend, &url);
    let created = app
        .post(
            &key,
            "/api/v1/webhooks/endpoints",
            json!({ "url": hook, "event_types": ["connection.created"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let endpoint = created.body["endpoint"]["id"]
        .as_str()
        .expect("endpoint id")
        .to_string();
    let secret = WebhookSecret::parse(created.body["secret"].as_str().expect("secret")).expect("a whsec_ secret");
    let receiver = Receiver::serve(listener, secret);

    let path = format!("/api/v1/webhooks/endpoints/{endpoint}/test");
    let sent: Vec<String> = futures_util::stream::iter(0..EVENTS)
        .map(|_| send_test(&app, &path))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let sent: HashSet<String> = sent.into_iter().collect();
    assert_eq!(sent.len(), EVENTS, "every test event has a message id of its own");

    wait_until(
        "messages answered 2xx before the kill",
        Duration::from_secs(120),
        || (receiver.answered(None).len().min(KILL_AFTER), KILL_AFTER),
    )
    .await;
    first.kill9();
    let killed = Instant::now();
    let before_kill = receiver.answered(Some(killed));
    eprintln!(
        "[{backend:?}] killed with {} of {EVENTS} messages answered 2xx",
        before_kill.len()
    );
    if before_kill.len() >= EVENTS {
        eprintln!("[{backend:?}] (the kill came after the last delivery: nothing was interrupted)");
    }

    let second = NexumProcess::start(Path::new(BINARY), dir.path(), &url, &SETTINGS);
    let app = second.app(&key, backend, &url);
    wait_until(
        "messages answered 2xx after the restart",
        Duration::from_secs(180),
        || (receiver.answered(None).intersection(&sent).count(), EVENTS),
    )
    .await;

    // The delivery log agrees: each message has its 2xx attempt on record.
    let started = Instant::now();
    let mut unlogged: Vec<String> = sent.iter().cloned().collect();
    while !unlogged.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} messages have no 2xx attempt in their delivery log, e.g. {:?}",
            unlogged.len(),
            unlogged.first()
        );
        let checked: Vec<(String, bool)> = futures_util::stream::iter(unlogged)
            .map(|id| {
                let app = &app;
                async move {
                    let ok = logged_2xx(app, &id).await;
                    (id, ok)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        unlogged = checked.into_iter().filter(|(_, ok)| !ok).map(|(id, _)| id).collect();
        if !unlogged.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let hits = receiver.hits.lock().expect("hits");
    let mut by_id: HashMap<&str, Vec<&Hit>> = HashMap::new();
    for hit in hits.iter() {
        by_id.entry(hit.id.as_str()).or_default().push(hit);
    }
    let after_restart: HashSet<&str> = hits
        .iter()
        .filter(|h| h.arrived >= killed)
        .map(|h| h.id.as_str())
        .collect();
    let duplicates_after_restart = before_kill
        .iter()
        .filter(|id| after_restart.contains(id.as_str()))
        .count();
    let answered_twice = by_id
        .values()
        .filter(|attempts| attempts.iter().filter(|h| (200..300).contains(&h.status)).count() > 1)
        .count();
    eprintln!(
        "[{backend:?}] {} attempts ({} answered 500, {} after the restart) for {} messages; \
         {duplicates_after_restart} answered before the kill were sent again after it; \
         {answered_twice} messages answered 2xx more than once",
        hits.len(),
        hits.iter().filter(|h| h.status == 500).count(),
        hits.iter().filter(|h| h.arrived >= killed).count(),
        by_id.len(),
    );

    assert_eq!(
        receiver.bad_signatures.load(Ordering::SeqCst),
        0,
        "every attempt is signed with the endpoint's secret"
    );
    let strangers: Vec<&&str> = by_id.keys().filter(|id| !sent.contains(**id)).collect();
    assert!(
        strangers.is_empty(),
        "the receiver saw ids nobody was given: {strangers:?}"
    );
    let lost: Vec<&String> = sent.iter().filter(|id| !by_id.contains_key(id.as_str())).collect();
    assert!(lost.is_empty(), "messages never delivered: {lost:?}");
    // The id is the message: every attempt under one `webhook-id` carries the same event.
    for (id, attempts) in &by_id {
        assert_eq!(
            attempts[0].body["type"], "connection.created",
            "{id}: {}",
            attempts[0].body
        );
        assert!(
            attempts.iter().all(|h| h.body == attempts[0].body),
            "the attempts of {id} carry different events"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_loses_no_event_sqlite() {
    no_event_lost(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_loses_no_event_postgres() {
    no_event_lost(Backend::Postgres).await;
}
