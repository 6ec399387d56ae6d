//! Service surface: health, readiness, metrics, OpenAPI, offline docs, members, pagination,
//! workspace creation rights, periodic health checks, graceful shutdown and restart.

use nexum_tests::app::{Backend, TestApp};
use nexum_tests::fakes;
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_databases!(
    service_endpoints_answer,
    members_and_pagination,
    state_survives_a_restart
);

async fn service_endpoints_answer(app: TestApp) {
    for (path, expected) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let r = reqwest::get(format!("{}{path}", app.base)).await.expect("get");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.expect("text"), expected);
    }
    let r = app
        .request(Method::GET, "/api/v1/workspace", Some(&app.key), None)
        .await;
    assert!(r.headers.get("x-request-id").is_some());
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("nexum_http_requests_total"), "{metrics}");

    let doc = app.request(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
    for path in [
        "/api/v1/connections/{id}/actions/{action}",
        "/api/v1/connectors",
        "/api/v1/api-keys",
    ] {
        assert!(
            doc.body["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let page = reqwest::get(format!("{}/docs", app.base))
        .await
        .expect("docs")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains("/docs/swagger-ui-bundle.js") && !page.contains("https://"),
        "docs must work offline"
    );
    let js = reqwest::get(format!("{}/docs/swagger-ui-bundle.js", app.base))
        .await
        .expect("js");
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.bytes().await.expect("bytes").len() > 100_000);

    // Only operator keys create workspaces.
    let b = app.new_workspace("charlie").await;
    let denied = app
        .post(
            &b,
            "/api/v1/workspaces",
            json!({ "name": "d", "owner_email": "o@d.test" }),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    app.shutdown().await;
}

async fn members_and_pagination(app: TestApp) {
    for i in 0..5 {
        let r = app
            .post(
                &app.key,
                "/api/v1/members",
                json!({ "email": format!("m{i}@x.test"), "role": "viewer" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let dup = app
        .post(
            &app.key,
            "/api/v1/members",
            json!({ "email": "m0@x.test", "role": "viewer" }),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get(&app.key, &format!("/api/v1/members?limit=2&cursor={cursor}"))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        for m in page.body["data"].as_array().expect("data") {
            seen.push(m["email"].as_str().expect("email").to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "owner plus five members, each exactly once: {seen:?}");
    let id = app.get(&app.key, "/api/v1/members?limit=100").await.body["data"][1]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let promoted = app
        .patch(&app.key, &format!("/api/v1/members/{id}"), json!({ "role": "admin" }))
        .await;
    assert_eq!(promoted.body["role"], "admin");
    let bad_role = app
        .patch(&app.key, &format!("/api/v1/members/{id}"), json!({ "role": "emperor" }))
        .await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.shutdown().await;
}

async fn state_survives_a_restart(app: TestApp) {
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let key = app.key.clone();
    let backend = app.backend;
    let (dir, url) = app.shutdown().await;
    let again = TestApp::start_on(backend, dir, url, |_| {}).await;
    assert!(again.key.is_empty(), "the bootstrap key is printed once, never again");
    let run = again
        .post(
            &key,
            &format!("/api/v1/connections/{conn}/actions/send_message"),
            json!({ "channel": "C1", "text": "after restart" }),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK, "{:?}", run.body);
    if backend == Backend::Sqlite {
        assert!(
            again.data_dir.path().join("artifacts").exists(),
            "precompiled artifacts are kept on disk"
        );
    }
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_health_checks_mark_dead_connections() {
    let slack = fakes::slack().await;
    // Hourly checks: the timer would not fire during the test, so the run below is the only one.
    let app = TestApp::start_with(Backend::Sqlite, |c| c.health_check_interval_secs = 3600).await;
    let installed = app.install(&app.key, "slack").await;
    assert_eq!(installed.status, StatusCode::CREATED);
    let created = app
        .post(&app.key, "/api/v1/connections", json!({ "connector": "slack", "name": "dead", "credentials": { "token": "xoxb-wrong-token" }, "variables": { "api_base": slack.origin() } }))
        .await;
    let id = created.body["id"].as_str().expect("id").to_string();
    // Nothing was checked yet, so the connection is due: one run of the job checks it.
    assert!(app.run_job_now("health-checks").await.handled >= 1);
    let got = app.get(&app.key, &format!("/api/v1/connections/{id}")).await;
    let status = got.body["status"].as_str().unwrap_or_default().to_string();
    assert!(
        got.body["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid_auth")),
        "{}",
        got.body
    );
    assert!(got.body["last_health_check"].as_i64().is_some());
    assert_eq!(status, "error", "the checker never marked the dead connection");
    assert!(slack.requests().iter().any(|r| r.path == "/api/auth.test"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_calls_finish() {
    let upstream = fakes::upstream().await;
    let app = TestApp::sqlite().await;
    assert_eq!(app.install(&app.key, "http").await.status, StatusCode::CREATED);
    let created = app
        .post(&app.key, "/api/v1/connections", json!({ "connector": "http", "name": "slow", "credentials": { "token": "t0k3n-slow" }, "variables": { "base_url": upstream.origin() } }))
        .await;
    let id = created.body["id"].as_str().expect("id").to_string();
    let (base, key) = (app.base.clone(), app.key.clone());
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/connections/{id}/actions/request"))
            .bearer_auth(key)
            .json(&json!({ "url": "/slow?ms=800" }))
            .send()
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    app.shutdown().await;
    let response = in_flight
        .await
        .expect("join")
        .expect("the in-flight call got an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["output"]["body"], "finally");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_error_codes_do_not_become_metric_labels() {
    // A hostile connector picks a new error code on every call; if each became a label of
    // the actions counter, the metrics registry (and every scrape) would grow without bound.
    let app = TestApp::start(Backend::Sqlite).await;
    let installed = app.install(&app.key, "hostile").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    let created = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "hostile", "name": "h", "credentials": { "token": "hostile-token-0000" } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    for bytes in [7, 8, 9] {
        let failed = app
            .post(
                &app.key,
                &format!("/api/v1/connections/{id}/actions/fail"),
                json!({ "bytes": bytes }),
            )
            .await;
        assert!(
            failed.status.is_client_error() || failed.status.is_server_error(),
            "{:?}",
            failed.body
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        !metrics.contains("ccccccc"),
        "a connector's code became a label:\n{metrics}"
    );
    assert!(metrics.contains("connector_error"), "{metrics}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_corrupt_row_does_not_stop_health_checks_for_everyone() {
    let slack = fakes::slack().await;
    let app = TestApp::start_with(Backend::Sqlite, |c| c.health_check_interval_secs = 3600).await;
    let good = app.connect_slack(&app.key, &slack).await;
    // Another tenant's row holds a status this version does not know (a manual edit, or a
    // newer node's value): it must be skipped, not fail the whole cross-tenant query.
    let other_key = app.new_workspace("other").await;
    let created = app
        .post(&other_key, "/api/v1/connections", json!({ "connector": "slack", "name": "x", "credentials": { "token": "xoxb-1111-2222-fake-slack-token" }, "variables": { "api_base": slack.origin() } }))
        .await;
    let bad = if created.status == StatusCode::CREATED {
        created.body["id"].as_str().expect("id").to_string()
    } else {
        // Slack is not installed in the new workspace: install it there first.
        assert_eq!(app.install(&other_key, "slack").await.status, StatusCode::CREATED);
        let created = app
            .post(&other_key, "/api/v1/connections", json!({ "connector": "slack", "name": "x", "credentials": { "token": "xoxb-1111-2222-fake-slack-token" }, "variables": { "api_base": slack.origin() } }))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        created.body["id"].as_str().expect("id").to_string()
    };
    sqlx::query("UPDATE connections SET status = 'pending' WHERE id = $1")
        .bind(&bad)
        .execute(app.state().db.pool())
        .await
        .expect("corrupt the row");
    assert_eq!(app.run_job_now("health-checks").await.handled, 1);
    let got = app.get(&app.key, &format!("/api/v1/connections/{good}")).await;
    assert!(got.body["last_health_check"].as_i64().is_some(), "{}", got.body);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_id_answers_exactly_like_an_unknown_one() {
    let app = TestApp::start(Backend::Sqlite).await;
    for (malformed, unknown) in [
        (
            "/api/v1/connectors/plg_BAD",
            "/api/v1/connectors/plg_0000000000000000000000000",
        ),
        (
            "/api/v1/connections/conn_BAD",
            "/api/v1/connections/conn_0000000000000000000000000",
        ),
        (
            "/api/v1/connections/ws_000",
            "/api/v1/connections/conn_0000000000000000000000001",
        ),
    ] {
        let (a, b) = (app.get(&app.key, malformed).await, app.get(&app.key, unknown).await);
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{malformed}: {:?}", a.body);
        assert_eq!(a.body, b.body, "{malformed} and {unknown} must be indistinguishable");
    }
    app.shutdown().await;
}
