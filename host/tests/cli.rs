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
