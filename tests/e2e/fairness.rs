//! Fair sharing between tenants: a workspace hammering a slow upstream holds at most its
//! share of the call slots; the rest wait their turn briefly, then answer 429
//! `workspace_busy`, and another workspace's calls still run.

use nexum_tests::app::TestApp;
use nexum_tests::fakes;
use nexum_tests::stall::Stall;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

on_both_databases!(one_workspace_cannot_fill_the_call_pool);

async fn one_workspace_cannot_fill_the_call_pool(app: TestApp) {
    let backend = app.backend;
    app.shutdown().await;
    let app = TestApp::start_with(backend, |c| {
        c.max_concurrent_calls = 4;
        c.max_calls_per_workspace = 2;
    })
    .await;
    let stall = Stall::start(usize::MAX).await;
    assert_eq!(app.install(&app.key, "http").await.status, StatusCode::CREATED);
    let created = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Slow", "credentials": { "token": "slow-token-123456" }, "variables": { "base_url": stall.origin } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let path = format!(
        "/api/v1/connections/{}/actions/request",
        created.body["id"].as_str().expect("id")
    );

    // Workspace A starts as many calls as the whole pool has slots.
    let (replies, mut answered) = tokio::sync::mpsc::channel(4);
    let app = std::sync::Arc::new(app);
    for _ in 0..4 {
        let (app, path, replies) = (app.clone(), path.clone(), replies.clone());
        tokio::spawn(async move {
            let reply = app.post(&app.key, &path, json!({ "url": "/slow" })).await;
            let _ = replies.send((reply.status, reply.code().to_string())).await;
        });
    }
    // Two run (and hang upstream); two wait for a turn that does not come, then are turned
    // away.
    for _ in 0..2 {
        let (status, code) = tokio::time::timeout(Duration::from_secs(60), answered.recv())
            .await
            .expect("the calls over the workspace's share are answered")
            .expect("reply");
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::TOO_MANY_REQUESTS, "workspace_busy")
        );
    }
    stall.wait_for(2).await;
    assert_eq!(stall.arrived(), 2, "only the workspace's share reached the upstream");

    // Workspace B is unaffected: its call gets a slot and runs.
    let other = app.new_workspace("other").await;
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&other, &slack).await;
    let sent = app
        .post(
            &other,
            &format!("/api/v1/connections/{conn}/actions/send_message"),
            json!({ "channel": "C1", "text": "still served" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    stall.release();
    for _ in 0..2 {
        let _ = tokio::time::timeout(Duration::from_secs(60), answered.recv()).await;
    }
}
