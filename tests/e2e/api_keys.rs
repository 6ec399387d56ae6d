//! API keys: 401 for bad, expired and revoked keys; 403 for a missing scope; 429 with
//! `Retry-After` and `RateLimit-*` headers past the key's rate.

use nexum_tests::app::TestApp;
use nexum_tests::fakes;
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_databases!(
    keys_are_checked_and_scoped,
    rate_limits_answer_429_with_retry_after,
    revoking_a_key_revokes_every_key_it_minted
);

async fn keys_are_checked_and_scoped(app: TestApp) {
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let run = format!("/api/v1/connections/{conn}/actions/send_message");
    let input = json!({ "channel": "C1", "text": "x" });

    // Missing, malformed and unknown keys.
    let none = app.request(Method::GET, "/api/v1/workspace", None, None).await;
    assert_eq!((none.status, none.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    for bad in ["nope", "nx_live_short", &format!("nx_live_{}", "A".repeat(43))] {
        let r = app.get(bad, "/api/v1/workspace").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
    }

    // A read-only key can read but not execute or write.
    let created = app
        .post(
            &app.key,
            "/api/v1/api-keys",
            json!({ "name": "reader", "scopes": ["connections:read"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let reader = created.body["key"].as_str().expect("key").to_string();
    assert!(reader.starts_with(created.body["api_key"]["prefix"].as_str().expect("prefix")));
    assert_eq!(
        app.get(&reader, &format!("/api/v1/connections/{conn}")).await.status,
        StatusCode::OK
    );
    let denied = app.post(&reader, &run, input.clone()).await;
    assert_eq!((denied.status, denied.code()), (StatusCode::FORBIDDEN, "missing_scope"));
    assert!(
        denied.body["detail"]
            .as_str()
            .expect("detail")
            .contains("actions:execute")
    );
    let denied = app.delete(&reader, &format!("/api/v1/connections/{conn}")).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    // Nor can it mint itself more power.
    let escalation = app
        .post(&reader, "/api/v1/api-keys", json!({ "name": "x", "scopes": ["admin"] }))
        .await;
    assert_eq!(escalation.status, StatusCode::FORBIDDEN);
    assert!(slack.requests().is_empty());
    assert_eq!(
        app.get(&app.key, &format!("/api/v1/connections/{conn}")).await.status,
        StatusCode::OK
    );

    // Only the hash is stored.
    let row: (Vec<u8>, String) = sqlx::query_as("SELECT hash, prefix FROM api_keys WHERE id = $1")
        .bind(created.body["api_key"]["id"].as_str().expect("id"))
        .fetch_one(app.state().db.pool())
        .await
        .expect("row");
    assert_eq!(row.0.len(), 32);
    assert!(!String::from_utf8_lossy(&row.0).contains(&reader[8..]));
    assert_eq!(row.1.len(), "nx_live_".len() + 4);

    // Revocation takes effect at once.
    let exec = app
        .post(
            &app.key,
            "/api/v1/api-keys",
            json!({ "name": "runner", "scopes": ["actions:execute"] }),
        )
        .await;
    let runner = exec.body["key"].as_str().expect("key").to_string();
    let runner_id = exec.body["api_key"]["id"].as_str().expect("id").to_string();
    assert_eq!(app.post(&runner, &run, input.clone()).await.status, StatusCode::OK);
    assert_eq!(
        app.delete(&app.key, &format!("/api/v1/api-keys/{runner_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let revoked = app.post(&runner, &run, input.clone()).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    assert!(revoked.body["detail"].as_str().expect("detail").contains("revoked"));

    // Expired keys are refused.
    let expiring = app
        .post(
            &app.key,
            "/api/v1/api-keys",
            json!({ "name": "old", "scopes": ["connections:read"], "expires_in_days": 1 }),
        )
        .await;
    let old = expiring.body["key"].as_str().expect("key").to_string();
    sqlx::query("UPDATE api_keys SET expires_at = 1 WHERE id = $1")
        .bind(expiring.body["api_key"]["id"].as_str().expect("id"))
        .execute(app.state().db.pool())
        .await
        .expect("expire");
    let expired = app.get(&old, "/api/v1/workspace").await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.body["detail"].as_str().expect("detail").contains("expired"));

    // last_used_at is recorded.
    let _ = app.get(&app.key, "/api/v1/connections").await;
    app.state().recorder.flush(&app.state().db).await.expect("flush");
    let listed = app.get(&app.key, "/api/v1/api-keys").await;
    assert!(
        listed.body["data"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["last_used_at"].as_i64().is_some())
    );
    app.shutdown().await;
}

async fn rate_limits_answer_429_with_retry_after(app: TestApp) {
    let created = app
        .post(
            &app.key,
            "/api/v1/api-keys",
            json!({ "name": "slow", "scopes": ["connections:read"], "rate_limit_per_minute": 3 }),
        )
        .await;
    let slow = created.body["key"].as_str().expect("key").to_string();
    for remaining in ["2", "1", "0"] {
        let r = app.get(&slow, "/api/v1/workspace").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.headers.get("ratelimit-limit").and_then(|v| v.to_str().ok()),
            Some("3")
        );
        assert_eq!(
            r.headers.get("ratelimit-remaining").and_then(|v| v.to_str().ok()),
            Some(remaining)
        );
    }
    let limited = app.get(&slow, "/api/v1/workspace").await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let retry: u64 = limited
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry));
    // Other keys are unaffected.
    assert_eq!(app.get(&app.key, "/api/v1/workspace").await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_never_outlives_or_outpaces_its_creator() {
    let app = TestApp::sqlite().await;
    let child = app
        .post(&app.key, "/api/v1/api-keys", json!({ "name": "child", "scopes": ["admin", "connections:read"], "expires_in_days": 1, "rate_limit_per_minute": 100 }))
        .await;
    assert_eq!(child.status, StatusCode::CREATED, "{:?}", child.body);
    let child_key = child.body["key"].as_str().expect("key").to_string();
    let child_expiry = child.body["api_key"]["expires_at"].as_i64().expect("expiry");

    let longer = app
        .post(
            &child_key,
            "/api/v1/api-keys",
            json!({ "name": "g", "scopes": ["connections:read"], "expires_in_days": 30 }),
        )
        .await;
    assert_eq!(
        (longer.status, longer.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "expiry_exceeds_parent")
    );
    let faster = app
        .post(
            &child_key,
            "/api/v1/api-keys",
            json!({ "name": "g", "scopes": ["connections:read"], "rate_limit_per_minute": 1000 }),
        )
        .await;
    assert_eq!(
        (faster.status, faster.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "rate_limit_exceeds_parent")
    );

    let defaults = app
        .post(
            &child_key,
            "/api/v1/api-keys",
            json!({ "name": "g", "scopes": ["connections:read"] }),
        )
        .await;
    assert_eq!(defaults.status, StatusCode::CREATED, "{:?}", defaults.body);
    assert_eq!(defaults.body["api_key"]["expires_at"].as_i64(), Some(child_expiry));
    assert!(
        defaults.body["api_key"]["rate_limit_per_minute"]
            .as_i64()
            .is_some_and(|r| r <= 100)
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_member_revokes_their_keys() {
    let app = TestApp::sqlite().await;
    let owner_key = app.new_workspace("acme").await;
    let minted = app
        .post(
            &owner_key,
            "/api/v1/api-keys",
            json!({ "name": "laptop", "scopes": ["connections:read"] }),
        )
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{:?}", minted.body);
    let laptop = minted.body["key"].as_str().expect("key").to_string();
    assert_eq!(app.get(&laptop, "/api/v1/connections").await.status, StatusCode::OK);

    let members = app.get(&owner_key, "/api/v1/members").await;
    let owner = members.body["data"][0]["id"]
        .as_str()
        .expect("owner member")
        .to_string();
    let removed = app.delete(&owner_key, &format!("/api/v1/members/{owner}")).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    // Both of the member's keys stopped working at once, rather than living on as keys of
    // the workspace.
    assert_eq!(
        app.get(&laptop, "/api/v1/connections").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(&owner_key, "/api/v1/connections").await.status,
        StatusCode::UNAUTHORIZED
    );
    app.shutdown().await;
}

async fn revoking_a_key_revokes_every_key_it_minted(app: TestApp) {
    let mint = |key: String, name: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post(
                    &key,
                    "/api/v1/api-keys",
                    json!({ "name": name, "scopes": ["admin", "connections:read"] }),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            (
                r.body["api_key"]["id"].as_str().expect("id").to_string(),
                r.body["key"].as_str().expect("key").to_string(),
            )
        }
    };
    let (child_id, child) = mint(app.key.clone(), "child").await;
    let (_, grandchild) = mint(child.clone(), "grandchild").await;
    let (_, sibling) = mint(app.key.clone(), "sibling").await;
    for key in [&child, &grandchild, &sibling] {
        assert_eq!(app.get(key, "/api/v1/connections").await.status, StatusCode::OK);
    }
    let revoked = app.delete(&app.key, &format!("/api/v1/api-keys/{child_id}")).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{:?}", revoked.body);
    assert_eq!(
        app.get(&child, "/api/v1/connections").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(&grandchild, "/api/v1/connections").await.status,
        StatusCode::UNAUTHORIZED,
        "a key minted by a revoked key kept working"
    );
    assert_eq!(app.get(&sibling, "/api/v1/connections").await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_keys_cannot_write() {
    let app = TestApp::sqlite().await;
    let owner_key = app.new_workspace("acme").await;
    let minted = app
        .post(
            &owner_key,
            "/api/v1/api-keys",
            json!({ "name": "ci", "scopes": ["connections:read", "connections:write"] }),
        )
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{:?}", minted.body);
    let ci = minted.body["key"].as_str().expect("key").to_string();
    let write = json!({ "connector": "nope", "name": "x" });
    let before = app.post(&ci, "/api/v1/connections", write.clone()).await;
    assert_ne!(before.code(), "missing_scope", "{:?}", before.body);

    let members = app.get(&owner_key, "/api/v1/members").await;
    let owner = members.body["data"][0]["id"].as_str().expect("member").to_string();
    let demoted = app
        .patch(
            &owner_key,
            &format!("/api/v1/members/{owner}"),
            json!({ "role": "viewer" }),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{:?}", demoted.body);

    // The key still holds `connections:write`, but its member may now only read.
    let after = app.post(&ci, "/api/v1/connections", write).await;
    assert_eq!(
        (after.status, after.code()),
        (StatusCode::FORBIDDEN, "missing_scope"),
        "{:?}",
        after.body
    );
    assert_eq!(app.get(&ci, "/api/v1/connections").await.status, StatusCode::OK);
    let admin = app.get(&owner_key, "/api/v1/api-keys").await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN, "a viewer's own key kept admin");
    // Nor may a viewer rate a connector in the public marketplace.
    let review = app
        .post(
            &ci,
            "/api/v1/marketplace/packages/acme/anything/reviews",
            json!({ "stars": 1, "body": "viewer spam" }),
        )
        .await;
    assert_eq!(review.code(), "missing_scope", "{:?}", review.body);
    app.shutdown().await;
}

/// Another node still trusts a revoked key from its cache for a few seconds; in that window
/// the key can mint nothing that would outlive the revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_mints_nothing_on_another_node() {
    let a = TestApp::postgres().await;
    let b = a.second_node(|c| c.cache_ttl_ms = 60_000).await;
    let parent = a
        .post(
            &a.key,
            "/api/v1/api-keys",
            json!({ "name": "p", "scopes": ["admin", "connections:read", "workspaces:create"] }),
        )
        .await;
    let (parent_key, parent_id) = (
        parent.body["key"].as_str().expect("key").to_string(),
        parent.body["api_key"]["id"].as_str().expect("id").to_string(),
    );
    // Node B verifies (and caches) the key, then node A revokes it.
    assert_eq!(b.get(&parent_key, "/api/v1/api-keys").await.status, StatusCode::OK);
    let revoked = a
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/api-keys/{parent_id}"),
            Some(&a.key),
            None,
        )
        .await;
    assert!(revoked.status.is_success(), "{:?}", revoked.body);
    let minted = b
        .post(
            &parent_key,
            "/api/v1/api-keys",
            json!({ "name": "escape", "scopes": ["connections:read"] }),
        )
        .await;
    assert_ne!(minted.status, StatusCode::CREATED, "{:?}", minted.body);
    let keys = a.get(&a.key, "/api/v1/api-keys").await;
    assert!(
        !keys.body.to_string().contains("\"escape\""),
        "no key was minted: {:?}",
        keys.body
    );
    // Nor a workspace with a fresh owner key.
    let escaped = b
        .post(
            &parent_key,
            "/api/v1/workspaces",
            json!({ "name": "escape", "owner_email": "e@x.test" }),
        )
        .await;
    assert_ne!(escaped.status, StatusCode::CREATED, "{:?}", escaped.body);
    b.shutdown().await;
    a.shutdown().await;
}

/// A workspace's first key inherits the limits of the key that created the workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_workspaces_key_never_outlives_its_creator() {
    let app = TestApp::sqlite().await;
    let operator = app
        .post(
            &app.key,
            "/api/v1/api-keys",
            json!({ "name": "short", "scopes": ["workspaces:create"], "expires_in_days": 1, "rate_limit_per_minute": 30 }),
        )
        .await;
    assert_eq!(operator.status, StatusCode::CREATED, "{:?}", operator.body);
    let short = operator.body["key"].as_str().expect("key").to_string();
    let expiry = operator.body["api_key"]["expires_at"].as_i64().expect("expiry");
    let made = app
        .post(
            &short,
            "/api/v1/workspaces",
            json!({ "name": "w", "owner_email": "o@w.test" }),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    assert_eq!(made.body["owner_key"]["api_key"]["expires_at"].as_i64(), Some(expiry));
    assert!(
        made.body["owner_key"]["api_key"]["rate_limit_per_minute"]
            .as_i64()
            .is_some_and(|r| r <= 30),
        "{:?}",
        made.body
    );
    app.shutdown().await;
}
