//! Non-public ranges are granted per workspace: the operator opens an internal subnet to
//! one tenant's connectors, and every other tenant is still refused those addresses.

use nexum_tests::app::{Backend, TestApp};
use nexum_tests::fakes;
use reqwest::StatusCode;
use serde_json::json;

async fn connect_http(app: &TestApp, key: &str, origin: &str) -> String {
    assert_eq!(app.install(key, "http").await.status, StatusCode::CREATED);
    let created = app
        .post(
            key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Internal", "credentials": { "token": "internal-token-1234" }, "variables": { "base_url": origin } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_range_opens_only_for_its_workspace() {
    // The host itself allows no non-public range: loopback is an internal network here.
    let app = TestApp::start_with(Backend::Sqlite, |c| c.allow_ranges.clear()).await;
    let internal = fakes::upstream().await;
    let tenant = app.new_workspace("tenant").await;
    let other = app.new_workspace("other").await;
    let tenant_ws = app.get(&tenant, "/api/v1/workspace").await.body["id"]
        .as_str()
        .expect("ws")
        .to_string();
    let mine = connect_http(&app, &tenant, &internal.origin()).await;
    let theirs = connect_http(&app, &other, &internal.origin()).await;
    assert_eq!(call(&app, &tenant, &mine).await.code(), "address_blocked");

    // Only operator keys grant ranges, and only well-formed ones.
    let path = format!("/api/v1/workspaces/{tenant_ws}/allowed-ranges");
    let by_tenant = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&tenant),
            Some(json!({ "ranges": ["127.0.0.0/8"] })),
        )
        .await;
    assert_eq!(by_tenant.status, StatusCode::FORBIDDEN, "{:?}", by_tenant.body);
    let bad = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&app.key),
            Some(json!({ "ranges": ["127.0.0.1/99"] })),
        )
        .await;
    assert_eq!(bad.code(), "invalid_range", "{:?}", bad.body);
    let granted = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&app.key),
            Some(json!({ "ranges": ["127.0.0.1/8"] })),
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{:?}", granted.body);
    assert_eq!(granted.body["ranges"], json!(["127.0.0.0/8"]));

    let ok = call(&app, &tenant, &mine).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(internal.requests().len(), 1);
    // Another workspace, same address: still refused, and nothing reached the upstream.
    assert_eq!(call(&app, &other, &theirs).await.code(), "address_blocked");
    assert_eq!(internal.requests().len(), 1);

    // Removing the grant closes it again.
    let revoked = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&app.key),
            Some(json!({ "ranges": [] })),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(call(&app, &tenant, &mine).await.code(), "address_blocked");
    app.shutdown().await;
}

async fn call(app: &TestApp, key: &str, conn: &str) -> nexum_tests::app::Reply {
    app.post(
        key,
        &format!("/api/v1/connections/{conn}/actions/request"),
        json!({ "url": "/internal" }),
    )
    .await
}
