//! The template marketplace, end to end over loopback HTTP, with an in-process server.
//!
//! Run with `cargo bench -p nexum-tests --bench templates`.
//!
//! 1. **Publishing**: `NEXUM_BENCH_TEMPLATES` signed templates (default 1,000) in eight
//!    categories and four difficulties, published one after another through
//!    `POST /api/v1/templates` (signature check against the namespace's keys, strict parse
//!    of the template and its workflow, the listing row rewritten). Reported: publishes/s.
//! 2. **Browsing** that catalogue: each query `NEXUM_BENCH_ROUNDS` times (default 200) from
//!    one client, filtered, sorted and paged by the database. Reported per query: p50, p99.
//! 3. **A dry run of a use** (`?dry_run=true`): the bundle re-read and verified against the
//!    host's trust policy, the template parsed, the workspace read, the plan made. Reported:
//!    p50, p99.
//!
//! SQLite always; PostgreSQL too when the local `test` database answers.

use nexum_marketplace::signing::{self, KeyPairText, PublicKey};
use nexum_marketplace::template::{TEMPLATE_FILE, TemplateBundle, pack_template};
use nexum_tests::app::{Backend, TestApp};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

const CATEGORIES: [&str; 8] = [
    "SALES",
    "SUPPORT",
    "MARKETING",
    "DATA_PROCESSING",
    "AUTOMATION",
    "ANALYTICS",
    "CONTENT",
    "COMMUNICATION",
];
const DIFFICULTIES: [&str; 4] = ["BEGINNER", "INTERMEDIATE", "ADVANCED", "EXPERT"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
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

/// Template number `i`, signed by `keys`.
fn signed_template(i: usize, keys: &KeyPairText) -> Vec<u8> {
    let connector = if i.is_multiple_of(3) {
        "nexum/http"
    } else {
        "nexum/slack"
    };
    let (slot_action, input) = if i.is_multiple_of(3) {
        ("request", json!({ "method": "GET", "url": "{{ vars.path }}" }))
    } else {
        (
            "send_message",
            json!({ "channel": "{{ vars.path }}", "text": "{{ trigger.text }}" }),
        )
    };
    let template = json!({
        "id": format!("bench-{i}"), "name": format!("Bench template {i}"),
        "summary": format!("Template number {i} for the benchmark."),
        "description": "# Bench\n\nA template.", "category": CATEGORIES[i % CATEGORIES.len()],
        "difficulty": DIFFICULTIES[i % DIFFICULTIES.len()], "tags": ["bench", format!("t{}", i % 10)],
        "setup_minutes": 1 + i % 60, "version": "1.0.0", "changelog": "First.",
        "variables": { "path": { "description": "Where", "type": "string", "default": "/x" } },
        "slots": { "main": { "connector": connector, "version": "^0.1", "actions": [slot_action], "description": "The one" } },
        "workflow": { "steps": [ { "name": "go", "type": "connector", "slot": "main", "action": slot_action, "input": input } ] }
    });
    let mut files = BTreeMap::new();
    files.insert(TEMPLATE_FILE.to_string(), serde_json::to_vec(&template).expect("json"));
    let unsigned = TemplateBundle::parse(&pack_template(&files, None).expect("pack")).expect("parse");
    let signature = signing::sign(&unsigned, &keys.secret, None).expect("sign");
    unsigned.with_signature(&signature).expect("repack")
}

async fn timed(app: &TestApp, path: &str, rounds: usize, post: Option<&Value>) -> (f64, f64) {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let reply = match post {
            Some(body) => app.post(&app.key, path, body.clone()).await,
            None => app.get(&app.key, path).await,
        };
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(reply.status.as_u16(), 200, "{path}: {:?}", reply.body);
    }
    samples.sort_by(f64::total_cmp);
    (percentile(&samples, 50.0), percentile(&samples, 99.0))
}

async fn bench(backend: Backend, label: &str) {
    let count = env_usize("NEXUM_BENCH_TEMPLATES", 1000);
    let rounds = env_usize("NEXUM_BENCH_ROUNDS", 200);
    let keys = signing::generate_keypair().expect("keys");
    let line = PublicKey::parse(&keys.public).expect("pub").base64;
    let app = TestApp::start_with(backend, |c| {
        c.trusted_publisher_keys = vec![line];
        // One client making thousands of requests a minute: no per-key budget in the way.
        c.default_key_rate_limit_per_minute = u32::MAX;
    })
    .await;
    app.seed_catalogue().await;
    let reg = app
        .post(
            &app.key,
            "/api/v1/marketplace/publishers",
            json!({ "namespace": "bench", "public_key": keys.public }),
        )
        .await;
    assert_eq!(reg.status.as_u16(), 201, "{:?}", reg.body);
    let bundles: Vec<Vec<u8>> = (0..count).map(|i| signed_template(i, &keys)).collect();
    let started = Instant::now();
    for bundle in bundles {
        let published = app.publish_template(&app.key, "bench", bundle, false).await;
        assert_eq!(published.status.as_u16(), 201, "{:?}", published.body);
    }
    let publish_rate = count as f64 / started.elapsed().as_secs_f64();
    println!("{label}: published {count} templates at {publish_rate:.0}/s");

    let queries = [
        ("newest, first page", "/api/v1/templates?limit=20".to_string()),
        ("text search", "/api/v1/templates?q=template%20number%20777".to_string()),
        (
            "category + difficulty",
            "/api/v1/templates?category=SALES&difficulty=BEGINNER".to_string(),
        ),
        (
            "connector used",
            "/api/v1/templates?connector=nexum/http&limit=50".to_string(),
        ),
        ("sorted by rating", "/api/v1/templates?sort=rating&limit=20".to_string()),
        ("sorted by uses", "/api/v1/templates?sort=uses&limit=20".to_string()),
        (
            "deep page",
            format!("/api/v1/templates?limit=20&cursor={}", count.saturating_sub(20)),
        ),
        ("one template's page", "/api/v1/templates/bench/bench-500".to_string()),
    ];
    println!("| {label} browse ({count} templates, {rounds} rounds) | p50 | p99 |");
    println!("|---|---|---|");
    for (name, path) in &queries {
        let (p50, p99) = timed(&app, path, rounds, None).await;
        println!("| {name} | {p50:.2} ms | {p99:.2} ms |");
    }
    let dry = json!({ "connections": { "main": "conn_00000000000000000000000000" } });
    let (p50, p99) = timed(
        &app,
        "/api/v1/templates/bench/bench-7/use?dry_run=true",
        rounds,
        Some(&dry),
    )
    .await;
    println!("| dry run of a use (verify, parse, plan) | {p50:.2} ms | {p99:.2} ms |");
    app.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    nexum_host::tls::install_crypto_provider();
    bench(Backend::Sqlite, "SQLite").await;
    let url = nexum_tests::app::postgres_url();
    if nexum_host::store::Db::connect(&url, 1).await.is_ok() {
        bench(Backend::Postgres, "PostgreSQL").await;
    } else {
        println!("PostgreSQL at {url} does not answer; skipped");
    }
}
