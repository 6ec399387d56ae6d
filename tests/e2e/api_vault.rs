//! Invariant 5, encrypted at rest: a ciphertext moved to another row fails, rotation keeps
//! every secret readable while the server serves, and the database files never contain a
//! secret in plaintext.

use nexum_tests::app::{Backend, TestApp};
use nexum_tests::fakes::{self, SLACK_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(
    a_ciphertext_moved_to_another_row_fails,
    a_secret_given_to_another_owner_fails,
    older_secrets_are_resealed_with_their_owner,
    rotation_keeps_every_secret_readable
);

async fn a_ciphertext_moved_to_another_row_fails(app: TestApp) {
    let slack = fakes::slack().await;
    let first = app.connect_slack(&app.key, &slack).await;
    let second = app
        .post(&app.key, "/api/v1/connections", json!({ "connector": "slack", "name": "Other", "credentials": { "token": "xoxb-other-token-2" }, "variables": { "api_base": slack.origin() } }))
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let db = &app.state().db;
    let ws = app.get(&app.key, "/api/v1/workspace").await.body["id"]
        .as_str()
        .expect("ws")
        .to_string();
    let a = db.secret_of(&ws, &first).await.expect("query").expect("secret a");
    let b = db.secret_of(&ws, &second).await.expect("query").expect("secret b");
    // Copy A's sealed token into B's row: the AAD binds it to A's row, so it must not open.
    db.overwrite_secret_raw(&b.id, &a.key_id, &a.nonce, &a.ciphertext)
        .await
        .expect("tamper");
    app.state().connections.evict_all();
    let run = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{second}/actions/send_message"),
            json!({ "channel": "C1", "text": "x" }),
        )
        .await;
    assert_eq!(run.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(run.code(), "credentials_unreadable");
    assert!(!run.body.to_string().contains(SLACK_TOKEN));
    assert!(slack.requests().is_empty(), "nothing was sent with a foreign secret");
    // A itself is fine.
    let run = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{first}/actions/send_message"),
            json!({ "channel": "C1", "text": "x" }),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK);
    app.shutdown().await;
}

async fn rotation_keeps_every_secret_readable(app: TestApp) {
    let slack = fakes::slack().await;
    let mut connections = Vec::new();
    for _ in 0..3 {
        connections.push(app.connect_slack(&app.key, &slack).await);
    }
    let state = app.state();
    let before = state.vault.active_key_id();
    // Rotate while a stream of calls is in flight.
    let calls = {
        let (base, key, conn) = (app.base.clone(), app.key.clone(), connections[0].clone());
        tokio::spawn(async move {
            let client = reqwest::Client::builder().no_proxy().build().expect("client");
            let mut statuses = Vec::new();
            for _ in 0..20 {
                let r = client
                    .post(format!("{base}/api/v1/connections/{conn}/actions/send_message"))
                    .bearer_auth(&key)
                    .json(&json!({ "channel": "C1", "text": "during rotation" }))
                    .send()
                    .await
                    .expect("send");
                statuses.push(r.status());
            }
            statuses
        })
    };
    let report = state.vault.rotate(&state.db, false).await.expect("rotate");
    assert_ne!(report.active_key, before);
    assert_eq!(report.resealed, 3);
    assert!(
        calls.await.expect("join").iter().all(|s| *s == StatusCode::OK),
        "every call during rotation succeeded"
    );
    state.connections.evict_all();
    for conn in &connections {
        let run = app
            .post(
                &app.key,
                &format!("/api/v1/connections/{conn}/actions/send_message"),
                json!({ "channel": "C1", "text": "after" }),
            )
            .await;
        assert_eq!(run.status, StatusCode::OK);
    }
    let (old_rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM secrets WHERE key_id <> $1")
        .bind(&report.active_key)
        .fetch_one(state.db.pool())
        .await
        .expect("count");
    assert_eq!(old_rows, 0, "every row is under the new key");

    // The raw database never holds the token.
    let backend = app.backend;
    if backend == Backend::Postgres {
        for table in [
            "workspaces",
            "members",
            "api_keys",
            "installations",
            "connections",
            "secrets",
            "audit_log",
            "idempotency_keys",
            "connection_usage",
        ] {
            let sql = format!("SELECT COALESCE(string_agg(t::text, '|'), '') FROM {table} t");
            let (dump,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_one(state.db.pool())
                .await
                .expect("dump");
            assert!(!dump.contains(SLACK_TOKEN), "table {table} holds the token");
        }
    }
    let (dir, _) = app.shutdown().await;
    if backend == Backend::Sqlite {
        // The database file and its write-ahead log, byte for byte.
        let mut checked = 0;
        for entry in std::fs::read_dir(dir.path()).expect("data dir") {
            let path = entry.expect("entry").path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("nexum.db"))
            {
                // SQLite deletes its -wal/-shm files when the last connection closes, which may
                // happen between listing and reading: a vanished file holds no token.
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => panic!("reading {}: {e}", path.display()),
                };
                assert!(
                    !bytes.windows(SLACK_TOKEN.len()).any(|w| w == SLACK_TOKEN.as_bytes()),
                    "{} holds the token",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 1);
    }
}

/// Pointing a secret row at another connection (its `owner_id` changed in the database)
/// does not hand that connection the secret: the owner is part of the associated data.
async fn a_secret_given_to_another_owner_fails(app: TestApp) {
    let slack = fakes::slack().await;
    let first = app.connect_slack(&app.key, &slack).await;
    let second = app
        .post(&app.key, "/api/v1/connections", json!({ "connector": "slack", "name": "Other", "credentials": { "token": "xoxb-other-token-2" }, "variables": { "api_base": slack.origin() } }))
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let db = &app.state().db;
    // Drop B's own secret and give A's row to B.
    sqlx::query("DELETE FROM secrets WHERE owner_id = $1")
        .bind(&second)
        .execute(db.pool())
        .await
        .expect("delete");
    sqlx::query("UPDATE secrets SET owner_id = $1 WHERE owner_id = $2")
        .bind(&second)
        .bind(&first)
        .execute(db.pool())
        .await
        .expect("reassign");
    app.state().connections.evict_all();
    let run = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{second}/actions/send_message"),
            json!({ "channel": "C1", "text": "x" }),
        )
        .await;
    assert_eq!(run.code(), "credentials_unreadable", "{:?}", run.body);
    assert!(
        slack.requests().is_empty(),
        "nothing was sent with another connection's secret"
    );
    app.shutdown().await;
}

/// Rows sealed in the older, ownerless format keep working and are re-sealed with their
/// owner at the next start.
async fn older_secrets_are_resealed_with_their_owner(app: TestApp) {
    let slack = fakes::slack().await;
    let connection = app.connect_slack(&app.key, &slack).await;
    let state = app.state().clone();
    let ws = app.get(&app.key, "/api/v1/workspace").await.body["id"]
        .as_str()
        .expect("ws")
        .to_string();
    let row = state
        .db
        .secret_of(&ws, &connection)
        .await
        .expect("query")
        .expect("secret");
    let fields = state.vault.open_fields(&row).expect("opens");
    // Write it back as an older server would have: version 1 associated data.
    let legacy = state
        .vault
        .seal_value(&ws, &row.id, &serde_json::to_vec(&fields.0).expect("json"))
        .expect("seal");
    state
        .db
        .overwrite_secret_raw(&row.id, &legacy.key_id, &legacy.nonce, &legacy.ciphertext)
        .await
        .expect("legacy");
    sqlx::query("UPDATE secrets SET aad_version = 1 WHERE id = $1")
        .bind(&row.id)
        .execute(state.db.pool())
        .await
        .expect("version");
    state.connections.evict_all();
    let path = format!("/api/v1/connections/{connection}/actions/send_message");
    let run = app
        .post(&app.key, &path, json!({ "channel": "C1", "text": "old" }))
        .await;
    assert_eq!(run.status, StatusCode::OK, "an older row still opens: {:?}", run.body);
    assert_eq!(state.db.count_secrets_needing_upgrade().await.expect("count"), 1);
    // The next start re-seals it.
    let backend = app.backend;
    let key = app.key.clone();
    let (dir, url) = app.shutdown().await;
    let key_file = dir.path().join("master.keys");
    let app = TestApp::start_on(backend, dir, url, |c| c.master_key_file = key_file).await;
    let started = std::time::Instant::now();
    while app.state().db.count_secrets_needing_upgrade().await.expect("count") > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "never re-sealed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let run = app.post(&key, &path, json!({ "channel": "C1", "text": "new" })).await;
    assert_eq!(run.status, StatusCode::OK, "{:?}", run.body);
    app.shutdown().await;
}
