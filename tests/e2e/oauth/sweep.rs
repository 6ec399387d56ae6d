//! The background refresh sweep: it refreshes ahead of expiry, and marks `expired` what has
//! no refresh token (imported tokens, a revoked token) until fresh tokens are imported.

use super::{assert_no_secret_leaked, call_me, connect, expire_now, setup};
use nexum_tests::app::TestApp;
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(sweep_refreshes_ahead_and_expires_what_cannot_refresh);

async fn sweep_refreshes_ahead_and_expires_what_cannot_refresh(app: TestApp) {
    let fake = setup(&app, "").await;
    let connection = connect(&app, &app.key, &fake).await;
    expire_now(&app, &connection).await;
    assert_eq!(app.run_job_now("oauth-refresh-sweep").await.handled, 1);
    assert_eq!(fake.refreshes(), 1);
    let view = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert!(
        view.body["token_expires_at"].as_i64().unwrap_or(0) > nexum_host::store::now_ms(),
        "{:?}",
        view.body
    );
    // Nothing due: the sweep leaves the provider alone.
    assert_eq!(app.run_job_now("oauth-refresh-sweep").await.handled, 0);

    // Imported tokens without a refresh token: once lapsed, `expired`, never healthy.
    let (access, _) = fake.mint();
    let imported = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Imported", "credentials": { "access_token": access, "expires_at": "1" }, "variables": { "base_url": fake.origin() } }),
        )
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{:?}", imported.body);
    let id = imported.body["id"].as_str().expect("id").to_string();
    app.run_job_now("oauth-refresh-sweep").await;
    let view = app.get(&app.key, &format!("/api/v1/connections/{id}")).await;
    assert_eq!(view.body["status"], "expired", "{:?}", view.body);
    let called = call_me(&app, &app.key, &id).await;
    assert_eq!((called.status, called.code()), (StatusCode::CONFLICT, "token_expired"));
    let test = app
        .post(&app.key, &format!("/api/v1/connections/{id}/test"), json!({}))
        .await;
    assert_eq!(
        (test.body["ok"].as_bool(), test.body["status"].as_str()),
        (Some(false), Some("expired"))
    );
    // Importing fresh tokens brings it back.
    let (access, _) = fake.mint();
    let later = (nexum_host::store::now_ms() + 3_600_000).to_string();
    let patched = app
        .patch(
            &app.key,
            &format!("/api/v1/connections/{id}"),
            json!({ "credentials": { "access_token": access, "expires_at": later } }),
        )
        .await;
    assert_eq!(patched.body["status"], "connected", "{:?}", patched.body);
    assert_eq!(call_me(&app, &app.key, &id).await.body["output"]["status"], 200);
    // A revoked token that cannot be refreshed: the 401 marks it expired, and the call's
    // own outcome does not make it look healthy again.
    let (access, _) = fake.mint();
    let later = (nexum_host::store::now_ms() + 3_600_000).to_string();
    let revoked = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Revoked", "credentials": { "access_token": access, "expires_at": later }, "variables": { "base_url": fake.origin() } }),
        )
        .await;
    let revoked_id = revoked.body["id"].as_str().expect("id").to_string();
    fake.revoke_access_tokens();
    let called = call_me(&app, &app.key, &revoked_id).await;
    assert_eq!(called.body["output"]["status"], 401, "{:?}", called.body);
    let view = app.get(&app.key, &format!("/api/v1/connections/{revoked_id}")).await;
    assert_eq!(view.body["status"], "expired", "{:?}", view.body);
    assert_no_secret_leaked(&fake, &[imported.body.to_string(), view.body.to_string()]);
}

on_both_databases!(workspaces_take_turns_in_the_sweep);

/// One workspace with many tokens claiming to have expired long ago cannot fill the sweep's
/// batch: every workspace's most urgent connection comes first.
async fn workspaces_take_turns_in_the_sweep(app: TestApp) {
    use nexum_host::ids::{InstallationId, WorkspaceId};
    let other_key = app.new_workspace("other").await;
    for key in [&app.key, &other_key] {
        assert_eq!(app.install(key, "http").await.status, StatusCode::CREATED);
    }
    let db = app.state().db.clone();
    let installs: Vec<(String, String)> =
        sqlx::query_as("SELECT workspace_id, id FROM installations ORDER BY created_at")
            .fetch_all(db.pool())
            .await
            .expect("installations");
    let [(greedy_ws, greedy_inst), (other_ws, other_inst)] = installs.as_slice() else {
        panic!("two installations expected: {installs:?}");
    };
    let now = nexum_host::store::now_ms();
    let add = |ws: &str, inst: &str, expires: i64| {
        let db = db.clone();
        let ws: WorkspaceId = ws.parse().expect("workspace id");
        let inst: InstallationId = inst.parse().expect("installation id");
        async move {
            let record = db
                .insert_connection(&ws, &inst, "c", Some("api"), "{}")
                .await
                .expect("insert");
            sqlx::query("UPDATE connections SET token_expires_at = $1 WHERE id = $2")
                .bind(expires)
                .bind(&record.id)
                .execute(db.pool())
                .await
                .expect("expiry");
            record.id
        }
    };
    // Tokens claiming to have expired at the dawn of time, all in one workspace.
    for _ in 0..5 {
        add(greedy_ws, greedy_inst, i64::MIN).await;
    }
    let honest = add(other_ws, other_inst, now + 60_000).await;
    let batch = db.connections_expiring(now + 3_600_000, 2).await.expect("due");
    assert_eq!(batch.len(), 2);
    assert!(
        batch.iter().any(|c| c.id == honest),
        "the other workspace gets its turn in the first batch"
    );
}
