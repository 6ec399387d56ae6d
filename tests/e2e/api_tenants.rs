//! Invariant 7, tenant walls: workspace B's key gets 404 for every one of workspace A's ids,
//! and A's data is untouched afterwards.

use nexum_tests::app::TestApp;
use nexum_tests::fakes;
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_databases!(other_workspaces_get_404_for_everything);

async fn other_workspaces_get_404_for_everything(app: TestApp) {
    let slack = fakes::slack().await;
    let a = app.key.clone();
    let conn = app.connect_slack(&a, &slack).await;
    let installation = app.get(&a, "/api/v1/connectors").await.body["data"][0]["id"]
        .as_str()
        .expect("plg")
        .to_string();
    let member = app
        .post(
            &a,
            "/api/v1/members",
            json!({ "email": "ann@a.test", "role": "member" }),
        )
        .await
        .body["id"]
        .as_str()
        .expect("member")
        .to_string();
    let key = app
        .post(
            &a,
            "/api/v1/api-keys",
            json!({ "name": "a-ci", "scopes": ["connections:read"] }),
        )
        .await
        .body["api_key"]["id"]
        .as_str()
        .expect("key")
        .to_string();

    let b = app.new_workspace("bravo").await;
    let attempts = [
        (Method::GET, format!("/api/v1/connections/{conn}"), None),
        (
            Method::PATCH,
            format!("/api/v1/connections/{conn}"),
            Some(json!({ "name": "stolen" })),
        ),
        (
            Method::POST,
            format!("/api/v1/connections/{conn}/test"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/connections/{conn}/actions/send_message"),
            Some(json!({ "channel": "C1", "text": "x" })),
        ),
        (Method::DELETE, format!("/api/v1/connections/{conn}"), None),
        (Method::GET, format!("/api/v1/connectors/{installation}"), None),
        (Method::DELETE, format!("/api/v1/connectors/{installation}"), None),
        (Method::GET, format!("/api/v1/members/{member}"), None),
        (
            Method::PATCH,
            format!("/api/v1/members/{member}"),
            Some(json!({ "role": "owner" })),
        ),
        (Method::DELETE, format!("/api/v1/members/{member}"), None),
        (Method::GET, format!("/api/v1/api-keys/{key}"), None),
        (Method::DELETE, format!("/api/v1/api-keys/{key}"), None),
    ];
    for (method, path, body) in attempts {
        let r = app.request(method.clone(), &path, Some(&b), body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path} from workspace B: {:?}",
            r.body
        );
        assert_eq!(r.body["type"], "https://nexum.dev/problems/not_found");
    }
    // B cannot build a connection on A's installation either.
    let r = app
        .post(
            &b,
            "/api/v1/connections",
            json!({ "connector": installation, "name": "x", "credentials": { "token": "t0k3n-bb" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Listings are scoped.
    for path in [
        "/api/v1/connections",
        "/api/v1/connectors",
        "/api/v1/members",
        "/api/v1/api-keys",
        "/api/v1/audit-log",
    ] {
        let listed = app.get(&b, path).await;
        assert_eq!(listed.status, StatusCode::OK, "{path}");
        let text = listed.body.to_string();
        assert!(
            !text.contains(&conn) && !text.contains(&installation) && !text.contains(&member) && !text.contains(&key),
            "{path} leaks A: {text}"
        );
    }
    // Nothing of A changed, and A still works.
    assert!(slack.requests().is_empty());
    let got = app.get(&a, &format!("/api/v1/connections/{conn}")).await;
    assert_eq!(got.body["name"], "Acme");
    let run = app
        .post(
            &a,
            &format!("/api/v1/connections/{conn}/actions/send_message"),
            json!({ "channel": "C1", "text": "still mine" }),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK);
    assert_eq!(
        app.get(&a, &format!("/api/v1/api-keys/{key}")).await.body["revoked_at"],
        serde_json::Value::Null
    );
    app.shutdown().await;
}
