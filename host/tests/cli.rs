//! `nexum connector run`, the author's harness, driven as a user would: the real binary
//! against a fake Slack on loopback.

use nexum_tests::fakes::{self, SLACK_TOKEN};
use nexum_tests::plugins;
use std::process::Command;

fn nexum() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nexum"))
}

#[tokio::test(flavor = "multi_thread")]
async fn run_prints_output_and_a_redacted_trace() {
    let slack = fakes::slack().await;
    let component = plugins::component("slack");
    let out = nexum()
        .args(["connector", "run"])
        .arg(&component)
        .arg("send_message")
        .arg("--manifest")
        .arg(plugins::connector_dir("slack").join("connector.toml"))
        .args(["--input", r#"{"channel":"C1","text":"from the harness"}"#])
        .arg(format!("--credential=bot_token={SLACK_TOKEN}"))
        .arg(format!("--var=api_base={}", slack.origin()))
        .args(["--allow-range", "127.0.0.0/8"])
        .output()
        .expect("nexum runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let output: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output on stdout");
    assert_eq!(output["channel"], "C1");
    assert!(
        stderr.contains("POST") && stderr.contains("/api/chat.postMessage [200]"),
        "{stderr}"
    );
    assert!(stderr.contains("authorization: [REDACTED]"), "{stderr}");
    assert!(!stderr.contains(SLACK_TOKEN) && !stdout.contains(SLACK_TOKEN));
    assert_eq!(slack.requests()[0].json()["text"], "from the harness");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_error_exits_non_zero_with_its_code() {
    let slack = fakes::slack().await;
    let out = nexum()
        .args(["connector", "run"])
        .arg(plugins::component("slack"))
        .arg("--test-connection")
        .arg("--manifest")
        .arg(plugins::connector_dir("slack").join("connector.toml"))
        .arg("--credential=bot_token=xoxb-not-the-right-one")
        .arg(format!("--var=api_base={}", slack.origin()))
        .args(["--allow-range", "127.0.0.0/8", "--json"])
        .output()
        .expect("nexum runs");
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["error"]["code"], "invalid_auth");
    assert_eq!(doc["trace"]["http"][0]["status"], 200);
}

#[test]
fn usage_errors_are_clear() {
    let out = nexum()
        .args(["connector", "run"])
        .arg(plugins::component("slack"))
        .arg("send_message")
        .arg("--manifest")
        .arg(plugins::connector_dir("slack").join("connector.toml"))
        .arg("--credential=nope=x")
        .output()
        .expect("nexum runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no auth scheme `nope`") && stderr.contains("bot_token"),
        "{stderr}"
    );

    let out = nexum()
        .args(["connector", "run", "/no/such/connector.wasm", "x"])
        .output()
        .expect("nexum runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connector.toml"));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_create_key_mints_a_working_key() {
    let app = nexum_tests::app::TestApp::sqlite().await;
    let out = nexum()
        .args(["admin", "create-key", "--name", "ci", "--scopes", "connections:read"])
        .env("NEXUM_DATA_DIR", app.data_dir.path())
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("nexum runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(key.starts_with("nx_live_"));
    assert_eq!(app.get(&key, "/api/v1/workspace").await.status, reqwest::StatusCode::OK);
    let denied = app
        .post(
            &key,
            "/api/v1/api-keys",
            serde_json::json!({ "name": "x", "scopes": [] }),
        )
        .await;
    assert_eq!(
        denied.status,
        reqwest::StatusCode::FORBIDDEN,
        "the key has only the scopes asked for"
    );

    let bad = nexum()
        .args(["admin", "create-key", "--scopes", "godmode"])
        .env("NEXUM_DATA_DIR", app.data_dir.path())
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("nexum runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope `godmode`"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_from_the_cli_while_the_server_serves() {
    let slack = fakes::slack().await;
    let app =
        nexum_tests::app::TestApp::start_with(nexum_tests::app::Backend::Sqlite, &[("NEXUM_CACHE_TTL_MS", "0")]).await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let run = format!("/api/v1/connections/{conn}/actions/send_message");
    let input = serde_json::json!({ "channel": "C1", "text": "x" });
    assert_eq!(
        app.post(&app.key, &run, input.clone()).await.status,
        reqwest::StatusCode::OK
    );

    let out = nexum()
        .args(["keys", "rotate"])
        .env("NEXUM_DATA_DIR", app.data_dir.path())
        .env("DATABASE_URL", &app.database_url)
        .env_remove("NEXUM_MASTER_KEY")
        .output()
        .expect("nexum runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted secrets: 1"));

    // The running server never saw the new key; it reloads the key file on demand.
    let after = app.post(&app.key, &run, input).await;
    assert_eq!(after.status, reqwest::StatusCode::OK, "{:?}", after.body);
    let keys = std::fs::read_to_string(app.data_dir.path().join("master.keys")).expect("key file");
    assert_eq!(
        keys.lines().filter(|l| !l.starts_with('#')).count(),
        2,
        "old key kept for old ciphertexts"
    );
    app.shutdown().await;
}
