//! What an API key used and may still use: per-key usage by endpoint and hour, hourly and
//! daily quotas in headers and 429s, and limits shared by every node through Redis.

use nexum_tests::app::{Backend, TestApp};
use nexum_tests::fakes;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

on_both_databases!(usage_is_reported_per_key_and_endpoint, quotas_count_hours_and_days);

async fn mint(app: &TestApp, body: serde_json::Value) -> (String, String) {
    let made = app.post(&app.key, "/api/v1/api-keys", body).await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    (
        made.body["key"].as_str().expect("key").to_string(),
        made.body["api_key"]["id"].as_str().expect("id").to_string(),
    )
}

async fn usage_is_reported_per_key_and_endpoint(app: TestApp) {
    let (key, id) = mint(&app, json!({ "name": "reporting", "scopes": ["connections:read"] })).await;
    for _ in 0..3 {
        assert_eq!(app.get(&key, "/api/v1/connections").await.status, StatusCode::OK);
    }
    let missing = app
        .get(&key, "/api/v1/connections/conn_00000000000000000000000000")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // Another key's requests are not this key's.
    assert_eq!(app.get(&app.key, "/api/v1/connections").await.status, StatusCode::OK);

    // A made-up method (of any length) is counted under one bounded label and cannot break
    // the recording of anything else.
    let odd = reqwest::Method::from_bytes("X".repeat(3000).as_bytes()).expect("method");
    let weird = app.request(odd, "/api/v1/workspace", Some(&key), None).await;
    assert!(weird.status.is_client_error());

    let report = app.get(&app.key, &format!("/api/v1/api-keys/{id}/usage")).await;
    assert_eq!(report.status, StatusCode::OK, "{:?}", report.body);
    assert_eq!(report.body["requests"], 5, "{:?}", report.body);
    assert_eq!(report.body["client_errors"], 2);
    assert_eq!(report.body["error_rate"], 0.4);
    assert_eq!(report.body["success_rate"], 0.6);
    assert!(report.body["avg_latency_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    assert!(report.body["p95_latency_ms"].as_u64().is_some());
    let endpoints = report.body["by_endpoint"].as_array().expect("endpoints");
    assert_eq!(endpoints[0]["endpoint"], "GET /api/v1/connections");
    assert_eq!(endpoints[0]["requests"], 3);
    assert_eq!(endpoints[1]["endpoint"], "GET /api/v1/connections/{id}");
    assert_eq!(endpoints[1]["client_errors"], 1);
    assert!(
        endpoints.iter().any(|e| e["endpoint"] == "OTHER /api/v1/workspace"),
        "{endpoints:?}"
    );
    assert_eq!(report.body["by_hour"][0]["requests"], 5);

    // The key may read its own usage; a window in the past is empty; a bad window is a 422.
    let own = app.get(&key, &format!("/api/v1/api-keys/{id}/usage")).await;
    assert_eq!(own.status, StatusCode::OK, "{:?}", own.body);
    let past = app
        .get(&app.key, &format!("/api/v1/api-keys/{id}/usage?from=0&to=3600000"))
        .await;
    assert_eq!(past.body["requests"], 0, "{:?}", past.body);
    let backwards = app
        .get(&app.key, &format!("/api/v1/api-keys/{id}/usage?from=10&to=5"))
        .await;
    assert_eq!(backwards.code(), "invalid_window");
    let other = app.new_workspace("other").await;
    assert_eq!(
        app.get(&other, &format!("/api/v1/api-keys/{id}/usage")).await.status,
        StatusCode::NOT_FOUND,
        "another workspace sees nothing of it"
    );
}

async fn quotas_count_hours_and_days(app: TestApp) {
    let (key, _) = mint(
        &app,
        json!({ "name": "metered", "scopes": ["connections:read", "admin"], "quota_per_hour": 3, "quota_per_day": 10 }),
    )
    .await;
    for (hour_left, day_left) in [(2, 9), (1, 8), (0, 7)] {
        let reply = app.get(&key, "/api/v1/connections").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers["quota-hour-limit"], "3");
        assert_eq!(reply.headers["quota-hour-remaining"], hour_left.to_string().as_str());
        assert_eq!(reply.headers["quota-day-limit"], "10");
        assert_eq!(reply.headers["quota-day-remaining"], day_left.to_string().as_str());
    }
    for _ in 0..2 {
        let refused = app.get(&key, "/api/v1/connections").await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code(), "quota_exceeded");
        assert_eq!(refused.headers["quota-hour-remaining"], "0");
        let wait: u64 = refused.headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=3600).contains(&wait), "until the hour ends: {wait}");
    }
    // When the day runs out before the hour, the hour is not charged for the refusal.
    let (tight, _) = mint(
        &app,
        json!({ "name": "tight", "scopes": ["connections:read"], "quota_per_hour": 5, "quota_per_day": 1 }),
    )
    .await;
    assert_eq!(
        app.get(&tight, "/api/v1/connections").await.headers["quota-hour-remaining"],
        "4"
    );
    let refused = app.get(&tight, "/api/v1/connections").await;
    assert_eq!(refused.code(), "quota_exceeded");
    assert_eq!(refused.headers["quota-hour-remaining"], "4", "counted, then given back");
    let again = app.get(&tight, "/api/v1/connections").await;
    assert_eq!(again.headers["quota-hour-remaining"], "4");
    // A key cannot hand out more quota than it has.
    let (parent, _) = mint(&app, json!({ "name": "p", "scopes": ["admin"], "quota_per_day": 5 })).await;
    let wider = app
        .post(
            &parent,
            "/api/v1/api-keys",
            json!({ "name": "c", "scopes": ["admin"], "quota_per_day": 50 }),
        )
        .await;
    assert_eq!(wider.code(), "quota_exceeds_parent", "{:?}", wider.body);
    let inherited = app
        .post(&parent, "/api/v1/api-keys", json!({ "name": "c", "scopes": ["admin"] }))
        .await;
    assert_eq!(inherited.body["api_key"]["quota_per_day"], 5, "{:?}", inherited.body);
}

/// Two nodes on one database. With `redis`, both count in Redis.
async fn two_nodes(redis: bool) -> (TestApp, TestApp) {
    let redis_url = redis.then(|| "redis://127.0.0.1:6379".to_string());
    let url = redis_url.clone();
    let a = TestApp::start_with(Backend::Postgres, move |c| c.redis_url = url).await;
    let b = a.second_node(move |c| c.redis_url = redis_url).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_rate_is_shared_by_every_node_through_redis() {
    for shared in [true, false] {
        let (a, b) = two_nodes(shared).await;
        let (key, _) = mint(
            &a,
            json!({ "name": "n", "scopes": ["connections:read"], "rate_limit_per_minute": 3 }),
        )
        .await;
        let statuses = [
            a.get(&key, "/api/v1/connections").await.status,
            a.get(&key, "/api/v1/connections").await.status,
            b.get(&key, "/api/v1/connections").await.status,
            b.get(&key, "/api/v1/connections").await.status,
        ];
        if shared {
            assert_eq!(statuses[..3], [StatusCode::OK; 3]);
            assert_eq!(
                statuses[3],
                StatusCode::TOO_MANY_REQUESTS,
                "the budget is one for both nodes"
            );
        } else {
            assert_eq!(
                statuses,
                [StatusCode::OK; 4],
                "without Redis each node counts for itself"
            );
        }
        b.shutdown().await;
        a.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_rate_is_shared_by_every_node_through_redis() {
    let (a, b) = two_nodes(true).await;
    let upstream = fakes::upstream().await;
    // One request per second, and a call may not wait for the next.
    let (_, manifest) = nexum_tests::plugins::connector("http");
    let manifest = manifest
        .replace("requests_per_second = 20", "requests_per_second = 1")
        .replace("timeout_ms = 30000", "timeout_ms = 300");
    let accept =
        nexum_marketplace::permissions::Permissions::of(&nexum_manifest::Manifest::parse(&manifest).expect("manifest"));
    let installed = a
        .install_bundle(
            &a.key,
            nexum_tests::bundles::bundle("http", Some(&manifest), None),
            Some(&accept),
        )
        .await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    let created = a
        .post(
            &a.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Once a second", "credentials": { "token": "rate-token-123456" }, "variables": { "base_url": upstream.origin() } }),
        )
        .await;
    let path = format!(
        "/api/v1/connections/{}/actions/request",
        created.body["id"].as_str().expect("id")
    );
    // Two calls within the same second, one on each node: the second is over the shared
    // budget. (If the machine stalled for a second between them, try again.)
    for attempt in 0.. {
        let started = Instant::now();
        let first = a.post(&a.key, &path, json!({ "url": "/one" })).await;
        let second = b.post(&a.key, &path, json!({ "url": "/two" })).await;
        if started.elapsed() >= Duration::from_millis(900) && attempt < 3 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        assert_eq!(second.code(), "rate_limited", "{:?}", second.body);
        break;
    }
    b.shutdown().await;
    a.shutdown().await;
}
