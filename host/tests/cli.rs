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
    let app = nexum_tests::app::TestApp::start_with(nexum_tests::app::Backend::Sqlite, |c| c.cache_ttl_ms = 0).await;
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

/// The whole author loop as a new user runs it, timed: scaffold, test, build, keygen, sign,
/// publish, install (host verifies), connect and execute against a loopback fake.
#[tokio::test(flavor = "multi_thread")]
async fn scaffold_to_published_to_executed() {
    use std::time::Instant;
    let started = Instant::now();
    let upstream = fakes::upstream().await;
    let work = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str], dir: &std::path::Path| {
        let out = nexum()
            .args(args)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", work.path().join("target"))
            .output()
            .expect("nexum runs");
        assert!(
            out.status.success(),
            "nexum {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["connector", "new", "acme-items"], work.path());
    let dir = work.path().join("acme-items");
    let test = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "-q"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", work.path().join("target"))
        .output()
        .expect("cargo test");
    assert!(
        test.status.success(),
        "the scaffold's own test fails: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let scaffolded = started.elapsed();

    run(&["connector", "build", "--out", "acme.nxb"], &dir);
    run(&["keygen", "--dir", "keys"], &dir);
    run(&["connector", "sign", "acme.nxb", "--key", "keys/publisher.key"], &dir);
    let inspected = run(
        &["connector", "inspect", "acme.nxb", "--trust", "keys/publisher.pub"],
        &dir,
    );
    let inspected: serde_json::Value = serde_json::from_str(&inspected).expect("inspect json");
    assert_eq!(inspected["signature_verified"], true);
    assert_eq!(
        inspected["permissions"]["auth"]["api_key"]["hosts"],
        serde_json::json!(["{{ api_base }}"])
    );

    let public = std::fs::read_to_string(dir.join("keys/publisher.pub")).expect("pub");
    let key_line = nexum_marketplace::signing::PublicKey::parse(&public)
        .expect("key")
        .base64;
    let app = nexum_tests::app::TestApp::start_with(nexum_tests::app::Backend::Sqlite, |c| {
        c.allow_unsigned_connectors = false;
        c.trusted_publisher_keys = vec![key_line.clone()];
    })
    .await;
    let reg = app
        .post(
            &app.key,
            "/api/v1/marketplace/publishers",
            serde_json::json!({ "namespace": "acme", "public_key": public }),
        )
        .await;
    assert_eq!(reg.status, reqwest::StatusCode::CREATED);
    let out = nexum()
        .args([
            "connector",
            "publish",
            "acme.nxb",
            "--namespace",
            "acme",
            "--marketplace",
            &app.base,
        ])
        .env("NEXUM_API_KEY", &app.key)
        .current_dir(&dir)
        .output()
        .expect("publish");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let published = started.elapsed();

    let perms = inspected["permissions"].clone();
    let installed = app
        .post(
            &app.key,
            "/api/v1/connectors/from-marketplace",
            serde_json::json!({ "package": "acme/acme_items", "accept_permissions": perms }),
        )
        .await;
    assert_eq!(installed.status, reqwest::StatusCode::CREATED, "{:?}", installed.body);
    let conn = app
        .post(&app.key, "/api/v1/connections", serde_json::json!({ "connector": "acme_items", "name": "items", "credentials": { "api_key": "ak_live_123456" }, "variables": { "api_base": upstream.origin() } }))
        .await;
    assert_eq!(conn.status, reqwest::StatusCode::CREATED, "{:?}", conn.body);
    let id = conn.body["id"].as_str().expect("id");
    let run = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{id}/actions/get_item"),
            serde_json::json!({ "id": "42" }),
        )
        .await;
    assert_eq!(run.status, reqwest::StatusCode::OK, "{:?}", run.body);
    assert_eq!(run.body["output"], serde_json::json!({ "id": "42", "name": "Item 42" }));
    let seen = upstream.requests();
    assert_eq!(seen[0].path, "/items/42");
    assert_eq!(seen[0].header("x-api-key"), Some("ak_live_123456"));
    eprintln!(
        "author loop: scaffold+test {:.1}s, published {:.1}s, executed {:.1}s",
        scaffolded.as_secs_f64(),
        published.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    app.shutdown().await;
}

/// Signatures verify with the stock `minisign` tool (Debian's package), as the README shows.
/// CI installs minisign and sets NEXUM_REQUIRE_MINISIGN=1; elsewhere the test is skipped
/// with a note when the tool is absent.
#[test]
fn bundles_verify_with_stock_minisign() {
    if Command::new("minisign").arg("-v").output().is_err() {
        assert!(
            std::env::var("NEXUM_REQUIRE_MINISIGN").is_err(),
            "minisign is required here but not installed"
        );
        eprintln!("skipping: the minisign tool is not installed (apt-get install minisign)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = nexum_tests::bundles::keys();
    let bytes = nexum_tests::bundles::bundle("slack", None, Some(&keys));
    let mut archive = tar::Archive::new(bytes.as_slice());
    archive.unpack(dir.path()).expect("unpack");
    std::fs::write(dir.path().join("publisher.pub"), &keys.public).expect("pub");
    let verified = Command::new("minisign")
        .args(["-V", "-m", "SHA256SUMS", "-p", "publisher.pub"])
        .current_dir(dir.path())
        .output()
        .expect("minisign runs");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("nexum bundle slack@0.1.0 sha256:"));
    let sums = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .expect("sha256sum");
    assert!(sums.status.success());
    // A modified checksum list fails stock verification.
    let sums_path = dir.path().join("SHA256SUMS");
    let edited = std::fs::read_to_string(&sums_path)
        .expect("sums")
        .replace("component.wasm", "component.wasm ");
    std::fs::write(&sums_path, edited).expect("edit");
    let refused = Command::new("minisign")
        .args(["-V", "-m", "SHA256SUMS", "-p", "publisher.pub"])
        .current_dir(dir.path())
        .output()
        .expect("minisign");
    assert!(!refused.status.success());
}

/// A new user's first start of the real binary: the marketplace already lists the whole
/// built-in catalogue, and a strict host (no unsigned flag) installs from it.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_start_lists_the_built_in_catalogue() {
    use nexum_tests::app::Backend;
    use nexum_tests::process::NexumProcess;
    use reqwest::StatusCode;

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("nexum.db").display());
    let server = NexumProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_nexum")),
        dir.path(),
        &url,
        &[("NEXUM_ALLOW_UNSIGNED_CONNECTORS", "false")],
    );
    let key = server.first_key.clone().expect("operator key on first start");
    let app = server.app(&key, Backend::Sqlite, &url);
    let page = app.get(&key, "/api/v1/marketplace/packages?limit=100").await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    let mut listed: Vec<&str> = page.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|p| p["namespace"] == "nexum")
        .filter_map(|p| p["name"].as_str())
        .collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "discord",
            "dropbox",
            "gdrive",
            "github",
            "gmail",
            "gohighlevel",
            "http",
            "hubspot",
            "openai",
            "outlook",
            "salesforce",
            "sendgrid",
            "slack",
            "smtp",
            "stripe",
            "twilio",
            "webhook"
        ]
    );
    // Install one as an admin would: first refused with the permissions to review, then
    // installed with them accepted.
    let review = app
        .post(
            &key,
            "/api/v1/connectors/from-marketplace",
            serde_json::json!({ "package": "nexum/twilio" }),
        )
        .await;
    assert_eq!(review.code(), "permissions_not_accepted", "{:?}", review.body);
    let installed = app
        .post(
            &key,
            "/api/v1/connectors/from-marketplace",
            serde_json::json!({ "package": "nexum/twilio", "accept_permissions": review.body["errors"]["permissions"] }),
        )
        .await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    assert_eq!(installed.body["signer"], "builtin", "{:?}", installed.body);
}

/// The template author's loop with the real binary: scaffold, validate (and a broken
/// template's problems named by field), keygen, sign, publish, then the template is listed.
#[tokio::test(flavor = "multi_thread")]
async fn template_scaffold_validate_sign_publish() {
    let work = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        nexum()
            .args(args)
            .current_dir(work.path())
            .output()
            .expect("nexum runs")
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "nexum {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["template", "new", "weekly-report"]);
    let validated = ok(&["template", "validate", "weekly-report"]);
    assert!(validated.contains("weekly-report@0.1.0 is valid"), "{validated}");
    assert!(validated.contains("api → nexum/http ^0.1"), "{validated}");

    // A broken copy: every problem is named by its field, and the exit code says so.
    let broken = work.path().join("broken");
    std::fs::create_dir_all(&broken).expect("dir");
    let text = std::fs::read_to_string(work.path().join("weekly-report/template.json")).expect("read");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("json");
    value["difficulty"] = serde_json::json!("EASY");
    std::fs::write(broken.join("template.json"), value.to_string()).expect("write");
    let refused = run(&["template", "validate", "broken"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("difficulty") || stderr.contains("EASY"), "{stderr}");
    value["difficulty"] = serde_json::json!("BEGINNER");
    value["workflow"]["steps"][0]["slot"] = serde_json::json!("nowhere");
    std::fs::write(broken.join("template.json"), value.to_string()).expect("write");
    let refused = run(&["template", "validate", "broken"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("workflow.steps[0].slot"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    ok(&["keygen", "--dir", "keys"]);
    let signed = ok(&["template", "sign", "weekly-report", "--key", "keys/publisher.key"]);
    assert!(signed.contains("weekly-report-0.1.0.nxt"), "{signed}");
    let public = std::fs::read_to_string(work.path().join("keys/publisher.pub")).expect("pub");
    let app = nexum_tests::app::TestApp::sqlite().await;
    let reg = app
        .post(
            &app.key,
            "/api/v1/marketplace/publishers",
            serde_json::json!({ "namespace": "acme", "public_key": public }),
        )
        .await;
    assert_eq!(reg.status, reqwest::StatusCode::CREATED, "{:?}", reg.body);
    let out = nexum()
        .args([
            "template",
            "publish",
            "weekly-report/target/weekly-report-0.1.0.nxt",
            "--namespace",
            "acme",
            "--marketplace",
            &app.base,
            "--private",
        ])
        .env("NEXUM_API_KEY", &app.key)
        .current_dir(work.path())
        .output()
        .expect("publish");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("published acme/weekly-report 0.1.0 (private)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let listed = app.get(&app.key, "/api/v1/templates/acme/weekly-report").await;
    assert_eq!(listed.status, reqwest::StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["private"], true);
    assert_eq!(listed.body["slots"][0]["connector"], "nexum/http");
    // Publishing the same bytes again is a no-op; a bundle edited after signing is refused.
    let again = nexum()
        .args([
            "template",
            "publish",
            "weekly-report/target/weekly-report-0.1.0.nxt",
            "--namespace",
            "acme",
            "--marketplace",
            &app.base,
        ])
        .env("NEXUM_API_KEY", &app.key)
        .current_dir(work.path())
        .output()
        .expect("publish again");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("(private)"),
        "leaving the visibility out keeps it: {}",
        String::from_utf8_lossy(&again.stdout)
    );
    app.shutdown().await;
}

/// `connector new --from-openapi` as an author runs it: the generated crate declares exactly the
/// chosen operations with the document's schemas, passes its own test, builds, and each action
/// sends the exact request the document describes to a loopback fake, the credential only in
/// `authorization`.
#[tokio::test(flavor = "multi_thread")]
async fn scaffold_from_openapi_builds_and_calls_the_api() {
    use axum::Json;
    use axum::extract::Path as UrlPath;
    use axum::http::StatusCode;
    use axum::routing::get;
    use serde_json::{Value, json};

    const TOKEN: &str = "pet_tok_5f8a2c9e41d7";
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/openapi/petstore.json");
    let work = tempfile::tempdir().expect("tempdir");
    let target = work.path().join("target");
    let new = |operations: &str| {
        nexum()
            .args(["connector", "new", "petstore", "--from-openapi"])
            .arg(&spec)
            .args(["--operations", operations])
            .current_dir(work.path())
            .output()
            .expect("nexum runs")
    };

    // An unknown operation is refused by name, listing what the document has; nothing is written.
    let refused = new("listPets,adoptPet");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("no operation `adoptPet`") && stderr.contains("deletePet"),
        "{stderr}"
    );
    assert!(!work.path().join("petstore").exists());

    let out = new("listPets,createPet,getPet");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = work.path().join("petstore");

    // The manifest: exactly the three actions, with the document's schemas.
    let text = std::fs::read_to_string(dir.join("connector.toml")).expect("connector.toml");
    let manifest = nexum_manifest::Manifest::parse(&text).expect("the generated manifest parses");
    assert_eq!(
        manifest.actions.keys().map(String::as_str).collect::<Vec<_>>(),
        ["create_pet", "get_pet", "list_pets"]
    );
    assert_eq!(
        manifest.allowed_hosts.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
        ["{{ api_base }}"]
    );
    assert_eq!(
        manifest.variables["api_base"].default.as_deref(),
        Some("https://petstore.example.com")
    );
    let mut schemes: Vec<&str> = manifest.auth.iter().map(|a| a.id.as_str()).collect();
    schemes.sort_unstable();
    assert_eq!(schemes, ["api_key_auth", "bearer_auth"]);
    let list = &manifest.actions["list_pets"];
    assert_eq!(
        list.input,
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "limit": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20, "description": "How many pets to return." },
                "cursor": { "type": "string", "description": "The `next_cursor` of the previous page; omit it for the first page." }
            }
        })
    );
    assert_eq!(list.output["required"], json!(["data", "next_cursor"]));
    assert_eq!(
        list.output["properties"]["next_cursor"]["type"],
        json!(["string", "null"])
    );
    let get_pet = &manifest.actions["get_pet"];
    assert_eq!(get_pet.input["required"], json!(["petId"]));
    assert_eq!(get_pet.input["properties"]["petId"]["type"], "string");
    assert_eq!(get_pet.output["required"], json!(["id", "name", "species"]));
    let create = &manifest.actions["create_pet"];
    assert_eq!(create.input["required"], json!(["body"]));
    assert_eq!(create.input["additionalProperties"], false);
    let body = &create.input["properties"]["body"];
    assert_eq!(body["required"], json!(["name", "species"]));
    assert!(
        body["properties"].get("id").is_none(),
        "readOnly `id` is not an input: {body}"
    );
    assert_eq!(body["properties"]["species"]["enum"], json!(["cat", "dog", "bird"]));
    assert_eq!(create.output["properties"]["id"]["type"], "string");
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md");
    assert!(
        readme.contains("`create_pet` | `createPet` | `POST /v1/pets`"),
        "{readme}"
    );

    // Its own unit tests pass on the host, and it builds into a bundle.
    let test = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "-q"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo test");
    assert!(
        test.status.success(),
        "the generated crate's own test fails: {}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    let built = nexum()
        .args(["connector", "build"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("nexum runs");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    assert!(dir.join("target/petstore-0.1.0.nxb").exists());

    // A fake Petstore on loopback.
    let pet =
        |id: &str, name: &Value, species: &Value| json!({ "id": id, "name": name, "species": species, "tag": null });
    let fake = fakes::serve(
        axum::Router::new()
            .route(
                "/v1/pets",
                get(move || async move {
                    Json(json!({ "data": [pet("p1", &json!("Rex"), &json!("dog"))], "next_cursor": null }))
                })
                .post(move |Json(input): Json<Value>| async move {
                    (StatusCode::CREATED, Json(pet("p2", &input["name"], &input["species"])))
                }),
            )
            .route(
                "/v1/pets/{petId}",
                get(move |UrlPath(id): UrlPath<String>| async move {
                    if id == "p1" {
                        (StatusCode::OK, Json(pet("p1", &json!("Rex"), &json!("dog"))))
                    } else {
                        (
                            StatusCode::NOT_FOUND,
                            Json(json!({ "code": 404, "message": format!("no pet with id {id}") })),
                        )
                    }
                }),
            ),
    )
    .await;
    let run = |args: &[&str]| -> (Option<i32>, Value) {
        let out = nexum()
            .args(["connector", "run"])
            .arg(&dir)
            .args(args)
            .arg(format!("--credential=bearer_auth={TOKEN}"))
            .arg(format!("--var=api_base={}", fake.origin()))
            .args(["--allow-range", "127.0.0.0/8", "--json"])
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("nexum runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
            "the token leaked: {stdout}{stderr}"
        );
        let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
        (out.status.code(), doc)
    };

    // list_pets: GET with the query from the input; the token only in `authorization`.
    let (code, doc) = run(&["list_pets", "--input", r#"{"limit":2,"cursor":"c1"}"#]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(
        doc["output"],
        json!({ "data": [{ "id": "p1", "name": "Rex", "species": "dog", "tag": null }], "next_cursor": null })
    );
    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str(), seen[0].query.as_deref()),
        ("GET", "/v1/pets", Some("limit=2&cursor=c1"))
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(seen[0].body.is_empty());
    assert!(!seen[0].everything_but("authorization").contains(TOKEN));
    fake.clear();

    // create_pet: POST with exactly the input's `body` as JSON.
    let (code, doc) = run(&[
        "create_pet",
        "--input",
        r#"{"body":{"name":"Mittens","species":"cat"}}"#,
    ]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(
        doc["output"],
        json!({ "id": "p2", "name": "Mittens", "species": "cat", "tag": null })
    );
    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str(), seen[0].query.as_deref()),
        ("POST", "/v1/pets", None)
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].json(), json!({ "name": "Mittens", "species": "cat" }));
    assert!(!seen[0].everything_but("authorization").contains(TOKEN));
    fake.clear();

    // get_pet: the path parameter fills its segment.
    let (code, doc) = run(&["get_pet", "--input", r#"{"petId":"p1"}"#]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["output"]["id"], "p1");
    assert_eq!(fake.requests()[0].path, "/v1/pets/p1");
    fake.clear();

    // ...as one encoded segment, so `../` cannot climb out of /pets; the API's 404 becomes
    // `not_found`, not retryable, with the API's own message.
    let (code, doc) = run(&["get_pet", "--input", r#"{"petId":"../admin"}"#]);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["error"]["code"], "not_found");
    assert_eq!(doc["error"]["retryable"], false);
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("no pet with id ../admin")),
        "{doc}"
    );
    assert_eq!(fake.requests()[0].path, "/v1/pets/..%2Fadmin");
    fake.clear();

    // Input the schema refuses (a missing required body field, an unknown field) never reaches
    // the API.
    for input in [
        r#"{"body":{"name":"Tweety"}}"#,
        r#"{"body":{"name":"Tweety","species":"bird"},"x":1}"#,
    ] {
        let (code, doc) = run(&["create_pet", "--input", input]);
        assert_eq!(code, Some(1), "{doc}");
        assert_eq!(doc["error"]["code"], "invalid_input", "{doc}");
    }
    assert!(fake.requests().is_empty());

    // test-connection lists the first page.
    let (code, doc) = run(&["--test-connection"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["output"], json!({ "ok": true, "checked": "GET /pets" }));
    let seen = fake.requests();
    assert_eq!((seen[0].path.as_str(), seen[0].query.as_deref()), ("/v1/pets", None));
}
