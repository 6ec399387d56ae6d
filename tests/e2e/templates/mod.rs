//! Workflow templates over the HTTP API: signed publishing (tampered, unsigned and untrusted
//! templates refused), private templates invisible to other workspaces, dry runs reporting
//! each kind of mismatch, a real use creating a workflow that runs (and is counted),
//! upgrading to a newer version with a diff, review rules, yank, and search and filters on
//! both databases. The starter templates each run against fakes in `starters.rs`.

use crate::marketplace::{key_line, registered_publisher};
use nexum_marketplace::signing::{self, KeyPairText};
use nexum_marketplace::template::{TEMPLATE_FILE, TemplateBundle, pack_template};
use nexum_tests::app::{Backend, TestApp};
use nexum_tests::fakes::{self, SLACK_TOKEN};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

mod starters;

on_both_databases!(
    signed_templates_only_and_tampering_is_caught,
    a_private_template_is_invisible_to_other_workspaces,
    a_dry_run_reports_each_kind_of_mismatch,
    a_real_use_creates_a_disabled_workflow_that_runs_and_is_counted,
    an_upgrade_shows_the_diff_and_keeps_the_mapping,
    an_upgrade_takes_the_new_versions_trigger_and_slots,
    reviews_need_a_use_and_yanked_versions_cannot_be_used,
    search_and_filters_happen_in_the_database,
);

/// A template posting to a Slack channel from a manual trigger, with `overrides` merged
/// over its top-level fields.
fn slack_template(id: &str, version: &str, overrides: Value) -> Value {
    let mut template = json!({
        "id": id, "name": format!("Post {id}"), "summary": "Post a line to Slack.",
        "description": "# Post\n\nPosts the trigger's text.", "category": "COMMUNICATION",
        "difficulty": "BEGINNER", "tags": ["slack"], "setup_minutes": 3, "version": version,
        "changelog": "First release.",
        "variables": {
            "channel": { "description": "Channel id", "type": "string", "pattern": "^C[A-Z0-9]+$" },
            "prefix": { "description": "Put before the text", "type": "string", "default": "FYI" }
        },
        "slots": { "chat": { "connector": "nexum/slack", "version": "^0.1", "actions": ["send_message"], "description": "The Slack workspace" } },
        "workflow": { "steps": [ { "name": "post", "type": "connector", "slot": "chat", "action": "send_message",
            "input": { "channel": "{{ vars.channel }}", "text": "{{ vars.prefix }}: {{ trigger.text }}" } } ] }
    });
    if let (Some(base), Some(extra)) = (template.as_object_mut(), overrides.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    template
}

/// `template` packed, and signed by `key` when given.
fn bundle(template: &Value, key: Option<&KeyPairText>) -> Vec<u8> {
    let mut files = BTreeMap::new();
    files.insert(TEMPLATE_FILE.to_string(), serde_json::to_vec(template).expect("json"));
    let unsigned = pack_template(&files, None).expect("pack");
    match key {
        None => unsigned,
        Some(key) => {
            let parsed = TemplateBundle::parse(&unsigned).expect("parse");
            let signature = signing::sign(&parsed, &key.secret, None).expect("sign");
            parsed.with_signature(&signature).expect("repack")
        }
    }
}

/// The scenario's server restarted on the same database (and with the same key), trusting
/// exactly `keys`.
async fn trusting(app: TestApp, keys: &[&KeyPairText]) -> TestApp {
    let backend: Backend = app.backend;
    let key = app.key.clone();
    let (dir, url) = app.shutdown().await;
    let lines: Vec<String> = keys.iter().map(|k| key_line(k)).collect();
    let mut restarted = TestApp::start_on(backend, dir, url, |c| c.trusted_publisher_keys = lines).await;
    restarted.key = key;
    restarted
}

async fn publish(app: &TestApp, key: &str, namespace: &str, bytes: Vec<u8>, private: bool) -> Value {
    let published = app.publish_template(key, namespace, bytes, private).await;
    assert_eq!(published.status, StatusCode::CREATED, "{:?}", published.body);
    published.body
}

/// `nexum/slack` installed from the catalogue and a connection to `fake`; its id.
async fn catalogue_slack(app: &TestApp, key: &str, fake: &fakes::Fake) -> String {
    let installed = app.install_catalogue(key, "slack").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    let created = app
        .post(
            key,
            "/api/v1/connections",
            json!({ "connector": "slack", "name": "Team", "credentials": { "token": SLACK_TOKEN }, "variables": { "api_base": fake.origin() } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().expect("id").to_string()
}

/// A trusted `acme` publisher (the instance key's workspace) with `acme/post-line` 1.0.0
/// published, on a server that seeded the catalogue. Returns the server and the key pair.
async fn acme_with_template(app: TestApp) -> (TestApp, KeyPairText) {
    let keys = signing::generate_keypair().expect("keys");
    let app = trusting(app, &[&keys]).await;
    app.seed_catalogue().await;
    registered_publisher(&app, &app.key, "acme", &keys).await;
    publish(
        &app,
        &app.key,
        "acme",
        bundle(&slack_template("post-line", "1.0.0", json!({})), Some(&keys)),
        false,
    )
    .await;
    (app, keys)
}

fn use_path(template: &str) -> String {
    format!("/api/v1/templates/{template}/use")
}

async fn signed_templates_only_and_tampering_is_caught(app: TestApp) {
    let (app, keys) = acme_with_template(app).await;
    let template = slack_template("other", "1.0.0", json!({}));
    // Unsigned, and signed by a key the namespace never registered: refused at publish.
    let unsigned = app
        .publish_template(&app.key, "acme", bundle(&template, None), false)
        .await;
    assert_eq!(
        (unsigned.status, unsigned.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unsigned_bundle")
    );
    let stranger = signing::generate_keypair().expect("keys");
    let foreign = app
        .publish_template(&app.key, "acme", bundle(&template, Some(&stranger)), false)
        .await;
    assert_eq!(
        (foreign.status, foreign.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_or_revoked_key"),
        "{:?}",
        foreign.body
    );
    // A bundle whose template.json was edited after signing: its sums no longer match.
    let mut tampered = bundle(&template, Some(&keys));
    let at = tampered.windows(4).position(|w| w == b"Post").expect("in the tar");
    tampered[at] = b'H';
    let refused = app.publish_template(&app.key, "acme", tampered, false).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_bundle")
    );
    // An invalid template names its fields.
    let invalid = slack_template("bad", "1.0.0", json!({ "category": "GARDENING", "setup_minutes": 0 }));
    let invalid = app
        .publish_template(&app.key, "acme", bundle(&invalid, Some(&keys)), false)
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", invalid.body);
    assert!(invalid.body.to_string().contains("category"), "{:?}", invalid.body);
    // Immutable versions: other bytes under the same version conflict; the same bytes are a no-op.
    let again = app
        .publish_template(
            &app.key,
            "acme",
            bundle(&slack_template("post-line", "1.0.0", json!({})), Some(&keys)),
            false,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    let changed = slack_template("post-line", "1.0.0", json!({ "summary": "Something else." }));
    let changed = app
        .publish_template(&app.key, "acme", bundle(&changed, Some(&keys)), false)
        .await;
    assert_eq!(changed.status, StatusCode::CONFLICT, "{:?}", changed.body);

    // A host that does not trust acme's key refuses to use its template.
    let strict = trusting(app, &[]).await;
    let dry = strict
        .post(
            &strict.key,
            &format!("{}?dry_run=true", use_path("acme/post-line")),
            json!({}),
        )
        .await;
    assert_eq!(
        (dry.status, dry.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "untrusted_template"),
        "{:?}",
        dry.body
    );
    // Trusted again, but the stored bundle swapped for other (consistent, signed) bytes.
    let app = trusting(strict, &[&keys]).await;
    let swapped = bundle(
        &slack_template("post-line", "1.0.0", json!({ "summary": "Swapped." })),
        Some(&keys),
    );
    sqlx::query("UPDATE template_versions SET bundle = $1 WHERE version = '1.0.0' AND template_id = (SELECT id FROM templates WHERE namespace = 'acme' AND name = 'post-line')")
        .bind(&swapped)
        .execute(app.state().db.pool())
        .await
        .expect("swap");
    let dry = app
        .post(
            &app.key,
            &format!("{}?dry_run=true", use_path("acme/post-line")),
            json!({}),
        )
        .await;
    assert_eq!(
        (dry.status, dry.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "template_tampered"),
        "{:?}",
        dry.body
    );
    // The same bytes re-signed by a key the host trusts but that belongs to another
    // namespace: its digest matches and the host trusts it, yet it is not acme's to sign.
    let beta_keys = signing::generate_keypair().expect("keys");
    let app = trusting(app, &[&keys, &beta_keys]).await;
    let beta = app.new_workspace("beta").await;
    registered_publisher(&app, &beta, "beta", &beta_keys).await;
    let resigned = bundle(&slack_template("post-line", "1.0.0", json!({})), Some(&beta_keys));
    let digest = TemplateBundle::parse(&resigned).expect("parse").digest;
    sqlx::query("UPDATE template_versions SET bundle = $1, digest = $2 WHERE version = '1.0.0' AND template_id = (SELECT id FROM templates WHERE namespace = 'acme' AND name = 'post-line')")
        .bind(&resigned)
        .bind(&digest)
        .execute(app.state().db.pool())
        .await
        .expect("swap");
    let dry = app
        .post(
            &app.key,
            &format!("{}?dry_run=true", use_path("acme/post-line")),
            json!({}),
        )
        .await;
    assert_eq!(
        (dry.status, dry.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "untrusted_template"),
        "{:?}",
        dry.body
    );
    assert!(
        dry.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("namespace `acme`"),
        "{:?}",
        dry.body
    );
    app.shutdown().await;
}

async fn a_private_template_is_invisible_to_other_workspaces(app: TestApp) {
    let (app, keys) = acme_with_template(app).await;
    publish(
        &app,
        &app.key,
        "acme",
        bundle(&slack_template("secret-flow", "1.0.0", json!({})), Some(&keys)),
        true,
    )
    .await;
    let mine = app.get(&app.key, "/api/v1/templates?q=secret-flow").await;
    assert_eq!(mine.body["total"], 1, "{:?}", mine.body);
    assert_eq!(mine.body["data"][0]["private"], true);
    let other = app.new_workspace("other").await;
    let theirs = app.get(&other, "/api/v1/templates?q=secret-flow").await;
    assert_eq!(theirs.body["total"], 0, "{:?}", theirs.body);
    for path in [
        "/api/v1/templates/acme/secret-flow".to_string(),
        "/api/v1/templates/acme/secret-flow/versions/1.0.0".to_string(),
        "/api/v1/templates/acme/secret-flow/versions/1.0.0/bundle".to_string(),
        "/api/v1/templates/acme/secret-flow/reviews".to_string(),
    ] {
        assert_eq!(app.get(&other, &path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let used = app
        .post(
            &other,
            &format!("{}?dry_run=true", use_path("acme/secret-flow")),
            json!({}),
        )
        .await;
    assert_eq!(used.status, StatusCode::NOT_FOUND);
    // The public one is visible to both.
    assert_eq!(
        app.get(&other, "/api/v1/templates/acme/post-line").await.status,
        StatusCode::OK
    );
    app.shutdown().await;
}

fn codes(plan: &Value) -> Vec<(String, String)> {
    plan["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap_or("").to_string(),
                p["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn a_dry_run_reports_each_kind_of_mismatch(app: TestApp) {
    let (app, keys) = acme_with_template(app).await;
    let slack = fakes::slack().await;
    let dry = use_path("acme/post-line") + "?dry_run=true";

    // Nothing installed: the package to install is named; the slot and variable are missing.
    let plan = app.post(&app.key, &dry, json!({ "variables": { "prefix": 7 } })).await;
    assert_eq!(plan.status, StatusCode::OK, "{:?}", plan.body);
    assert_eq!(plan.body["ready"], false);
    assert_eq!(
        codes(&plan.body),
        vec![
            ("missing_connector".into(), "connections.chat".into()),
            ("missing_slot".into(), "connections.chat".into()),
            ("missing_variable".into(), "variables.channel".into()),
            ("bad_variable".into(), "variables.prefix".into()),
        ]
    );
    assert_eq!(plan.body["problems"][0]["package"], "nexum/slack");
    assert_eq!(plan.body["workflow"], Value::Null);

    // Slack uploaded (not from the publisher): the wrong connector; a bad pattern; an
    // unknown slot and variable; a connection that does not exist.
    let uploaded = app.connect_slack(&app.key, &slack).await;
    let plan = app
        .post(
            &app.key,
            &dry,
            json!({ "connections": { "chat": uploaded, "extra": "conn_nope" }, "variables": { "channel": "general", "colour": "red" } }),
        )
        .await;
    assert_eq!(
        codes(&plan.body),
        vec![
            ("missing_connector".into(), "connections.chat".into()),
            ("wrong_connector".into(), "connections.chat".into()),
            ("unknown_slot".into(), "connections.extra".into()),
            ("bad_variable".into(), "variables.channel".into()),
            ("unknown_variable".into(), "variables.colour".into()),
        ],
        "{:?}",
        plan.body
    );
    assert_eq!(plan.body["problems"][1]["found"], "upload:slack");
    let missing = app
        .post(
            &app.key,
            &dry,
            json!({ "connections": { "chat": "conn_00000000000000000000000000" }, "variables": { "channel": "C1" } }),
        )
        .await;
    assert!(
        codes(&missing.body).contains(&("unknown_connection".into(), "connections.chat".into())),
        "{:?}",
        missing.body
    );

    // A version range the installed connector is outside of (^0.2 against 0.1.0), in a
    // second workspace that installs the catalogue's Slack.
    publish(
        &app,
        &app.key,
        "acme",
        bundle(
            &slack_template("post-line", "2.0.0", json!({ "slots": { "chat": { "connector": "nexum/slack", "version": "^0.2", "actions": ["send_message"], "description": "Slack" } } })),
            Some(&keys),
        ),
        false,
    )
    .await;
    let other = app.new_workspace("ranges").await;
    let conn = catalogue_slack(&app, &other, &slack).await;
    let body = json!({ "connections": { "chat": conn }, "variables": { "channel": "C1" } });
    let plan = app.post(&other, &dry, body.clone()).await;
    assert_eq!(
        codes(&plan.body),
        vec![("version_out_of_range".into(), "connections.chat".into())],
        "{:?}",
        plan.body
    );
    assert_eq!(plan.body["version"], "2.0.0");
    // The same request on 1.0.0 is ready and shows the workflow it would create.
    let ready = app
        .post(
            &other,
            "/api/v1/templates/acme/post-line/versions/1.0.0/use?dry_run=true",
            body.clone(),
        )
        .await;
    assert_eq!(ready.body["ready"], true, "{:?}", ready.body);
    assert_eq!(ready.body["workflow"]["steps"][0]["connection"], conn);
    assert_eq!(
        ready.body["workflow"]["vars"],
        json!({ "channel": "C1", "prefix": "FYI" })
    );
    assert_eq!(ready.body["workflow"]["enabled"], false);
    // A dry run created nothing; the real call on 2.0.0 is refused with the same problem.
    let listed = app.get(&other, "/api/v1/workflows").await;
    assert_eq!(listed.body["data"], json!([]));
    let refused = app.post(&other, &use_path("acme/post-line"), body).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "template_use_refused")
    );
    assert_eq!(
        refused.body["errors"][0]["path"], "connections.chat",
        "{:?}",
        refused.body
    );
    assert_eq!(
        app.get(&other, "/api/v1/workflows").await.body["data"],
        json!([]),
        "nothing half-created"
    );
    app.shutdown().await;
}

async fn a_real_use_creates_a_disabled_workflow_that_runs_and_is_counted(app: TestApp) {
    let (app, _keys) = acme_with_template(app).await;
    let slack = fakes::slack().await;
    let conn = catalogue_slack(&app, &app.key, &slack).await;
    let created = app
        .post(
            &app.key,
            &use_path("acme/post-line"),
            json!({ "connections": { "chat": conn }, "variables": { "channel": "C42" }, "name": "Team posts" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["template"], "acme/post-line");
    assert_eq!(created.body["version"], "1.0.0");
    let workflow = &created.body["workflow"];
    assert_eq!(workflow["enabled"], false, "disabled unless asked");
    assert_eq!(workflow["name"], "Team posts");
    let id = workflow["id"].as_str().expect("id");
    let shown = app.get(&app.key, &format!("/api/v1/workflows/{id}")).await.body;
    assert_eq!(
        shown["template"],
        json!({ "template": "acme/post-line", "version": "1.0.0" })
    );
    slack.clear();
    let run = app
        .post(
            &app.key,
            &format!("/api/v1/workflows/{id}/execute?wait=30"),
            json!({ "text": "deploy done" }),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK, "{:?}", run.body);
    assert_eq!(run.body["status"], "succeeded", "{:?}", run.body);
    let requests = slack.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/api/chat.postMessage");
    assert_eq!(
        requests[0].json(),
        json!({ "channel": "C42", "text": "FYI: deploy done" })
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {SLACK_TOKEN}").as_str())
    );
    // One use and one execution of 1.0.0.
    let listing = app.get(&app.key, "/api/v1/templates/acme/post-line").await.body;
    assert_eq!(
        (listing["uses"].clone(), listing["executions"].clone()),
        (json!(1), json!(1)),
        "{listing}"
    );
    assert_eq!(listing["versions"][0]["uses"], 1);
    assert_eq!(listing["slots"][0]["installed"], "0.1.0");
    assert_eq!(listing["ready"], true);
    // A secret sent where it does not belong is not repeated in the error.
    let misplaced = app
        .post(
            &app.key,
            &use_path("acme/post-line"),
            json!({ "connections": { "chat": conn }, "trigger_secrets": "whsec_bWlzcGxhY2VkLXNlY3JldA==" }),
        )
        .await;
    assert_eq!(
        (misplaced.status, misplaced.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
    assert!(
        !misplaced.body.to_string().contains("bWlzcGxhY2Vk"),
        "{:?}",
        misplaced.body
    );
    // Nor in a workflow's own definition (parsed after the body), nor as an enum value.
    for trigger in [
        json!({ "type": "webhook", "scheme": "github", "secrets": "gh-misplaced-secret-1" }),
        json!({ "type": "webhook", "scheme": "gh-misplaced-secret-1", "secrets": ["x"] }),
    ] {
        let refused = app
            .post(
                &app.key,
                "/api/v1/workflows",
                json!({ "name": "leaky", "trigger": trigger, "steps": [ { "name": "t", "type": "transform", "output": {} } ] }),
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
        assert!(refused.body.to_string().contains("trigger"), "{:?}", refused.body);
        assert!(!refused.body.to_string().contains("misplaced"), "{:?}", refused.body);
    }
    app.shutdown().await;
}

async fn an_upgrade_shows_the_diff_and_keeps_the_mapping(app: TestApp) {
    let (app, keys) = acme_with_template(app).await;
    let slack = fakes::slack().await;
    let conn = catalogue_slack(&app, &app.key, &slack).await;
    let created = app
        .post(
            &app.key,
            &use_path("acme/post-line"),
            json!({ "connections": { "chat": conn }, "variables": { "channel": "C7" }, "enabled": true }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["workflow"]["id"].as_str().expect("id").to_string();
    let mut newer = slack_template("post-line", "1.1.0", json!({ "changelog": "Bolder." }));
    newer["workflow"]["steps"][0]["input"]["text"] = json!("*{{ vars.prefix }}*: {{ trigger.text }}");
    publish(&app, &app.key, "acme", bundle(&newer, Some(&keys)), false).await;

    let upgrade = format!("/api/v1/workflows/{id}/template-upgrade");
    let dry = app.post(&app.key, &format!("{upgrade}?dry_run=true"), json!({})).await;
    assert_eq!(dry.status, StatusCode::OK, "{:?}", dry.body);
    assert_eq!(
        (dry.body["from"].clone(), dry.body["to"].clone()),
        (json!("1.0.0"), json!("1.1.0"))
    );
    assert_eq!(
        dry.body["changes"],
        json!([{ "path": "steps[0].input.text", "before": "{{ vars.prefix }}: {{ trigger.text }}", "after": "*{{ vars.prefix }}*: {{ trigger.text }}" }])
    );
    assert_eq!(
        app.get(&app.key, &format!("/api/v1/workflows/{id}")).await.body["version"],
        1,
        "a dry run changes nothing"
    );

    let done = app.post(&app.key, &upgrade, json!({})).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    let workflow = &done.body["workflow"];
    assert_eq!(workflow["version"], 2);
    assert_eq!(workflow["enabled"], true, "kept");
    assert_eq!(workflow["steps"][0]["connection"], conn, "the mapping is kept");
    assert_eq!(workflow["vars"]["channel"], "C7", "the values are kept");
    let shown = app.get(&app.key, &format!("/api/v1/workflows/{id}")).await.body;
    assert_eq!(shown["template"]["version"], "1.1.0");
    slack.clear();
    let run = app
        .post(
            &app.key,
            &format!("/api/v1/workflows/{id}/execute?wait=30"),
            json!({ "text": "v2" }),
        )
        .await;
    assert_eq!(run.body["status"], "succeeded", "{:?}", run.body);
    assert_eq!(slack.requests()[0].json()["text"], "*FYI*: v2");
    // Not made from a template: a clear 422.
    let plain = app
        .post(
            &app.key,
            "/api/v1/workflows",
            json!({ "name": "plain", "steps": [ { "name": "t", "type": "transform", "output": {} } ] }),
        )
        .await;
    let plain_id = plain.body["id"].as_str().expect("id");
    let refused = app
        .post(
            &app.key,
            &format!("/api/v1/workflows/{plain_id}/template-upgrade"),
            json!({}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "not_from_template")
    );
    app.shutdown().await;
}

async fn an_upgrade_takes_the_new_versions_trigger_and_slots(app: TestApp) {
    let (app, keys) = acme_with_template(app).await;
    let slack = fakes::slack().await;
    let conn = catalogue_slack(&app, &app.key, &slack).await;
    let created = app
        .post(
            &app.key,
            &use_path("acme/post-line"),
            json!({ "connections": { "chat": conn }, "variables": { "channel": "C7" } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["workflow"]["id"].as_str().expect("id").to_string();
    let upgrade = format!("/api/v1/workflows/{id}/template-upgrade");
    let with_trigger = |version: &str, trigger: Value| {
        let mut t = slack_template("post-line", version, json!({}));
        t["workflow"]["trigger"] = trigger;
        t
    };
    let problem_codes = |body: &Value| -> Vec<String> {
        body["errors"]
            .as_array()
            .or_else(|| body["problems"].as_array())
            .into_iter()
            .flatten()
            .map(|p| p["code"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    // 2.0.0 adds a GitHub webhook: its signing secret must come with the upgrade.
    let v2 = with_trigger("2.0.0", json!({ "type": "webhook", "scheme": "github" }));
    publish(&app, &app.key, "acme", bundle(&v2, Some(&keys)), false).await;
    let bare = app.post(&app.key, &upgrade, json!({})).await;
    assert_eq!(bare.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", bare.body);
    assert_eq!(problem_codes(&bare.body), vec!["bad_trigger_secrets"]);
    let secret = "github-hook-secret-value-1";
    let done = app
        .post(&app.key, &upgrade, json!({ "trigger_secrets": [secret] }))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["workflow"]["trigger"]["type"], "webhook");
    assert_eq!(done.body["workflow"]["trigger"]["scheme"], "github");
    assert!(!done.body.to_string().contains(secret), "write-only");

    // 2.1.0 keeps the scheme: the workflow keeps its secret. 3.0.0 changes it: a new one
    // is needed, and a dry run says so next to the diff.
    let v21 = with_trigger("2.1.0", json!({ "type": "webhook", "scheme": "github" }));
    publish(&app, &app.key, "acme", bundle(&v21, Some(&keys)), false).await;
    let kept = app.post(&app.key, &upgrade, json!({})).await;
    assert_eq!(kept.status, StatusCode::OK, "{:?}", kept.body);
    let v3 = with_trigger("3.0.0", json!({ "type": "webhook", "scheme": "stripe" }));
    publish(&app, &app.key, "acme", bundle(&v3, Some(&keys)), false).await;
    let dry = app.post(&app.key, &format!("{upgrade}?dry_run=true"), json!({})).await;
    assert_eq!(dry.status, StatusCode::OK, "{:?}", dry.body);
    assert_eq!(problem_codes(&dry.body), vec!["bad_trigger_secrets"]);
    assert_eq!(dry.body["changes"][0]["path"], "trigger.scheme", "{:?}", dry.body);

    // 4.0.0 has no trigger and renames the slot: the workflow becomes manual, the old
    // slot's connection is not carried over, and the new slot needs one.
    let mut v4 = slack_template("post-line", "4.0.0", json!({}));
    v4["slots"] = json!({ "main": v4["slots"]["chat"].clone() });
    v4["workflow"]["steps"][0]["slot"] = json!("main");
    publish(&app, &app.key, "acme", bundle(&v4, Some(&keys)), false).await;
    let missing = app.post(&app.key, &upgrade, json!({ "version": "4.0.0" })).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", missing.body);
    assert_eq!(
        problem_codes(&missing.body),
        vec!["missing_slot"],
        "no unknown_slot for the old one"
    );
    let done = app
        .post(
            &app.key,
            &upgrade,
            json!({ "version": "4.0.0", "connections": { "main": conn } }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["workflow"]["trigger"]["type"], "manual");
    assert_eq!(done.body["workflow"]["steps"][0]["connection"], conn);

    // Moving between versions is not a use: only 1.0.0 was used.
    let listing = app.get(&app.key, "/api/v1/templates/acme/post-line").await.body;
    let uses: Vec<(String, i64)> = listing["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap_or_default().to_string(),
                v["uses"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        uses,
        vec![
            ("1.0.0".to_string(), 1),
            ("2.0.0".to_string(), 0),
            ("2.1.0".to_string(), 0),
            ("3.0.0".to_string(), 0),
            ("4.0.0".to_string(), 0)
        ]
    );
    assert_eq!(listing["uses"], 1);
    app.shutdown().await;
}

async fn reviews_need_a_use_and_yanked_versions_cannot_be_used(app: TestApp) {
    let (app, keys) = acme_with_template(app).await;
    let slack = fakes::slack().await;
    let reviewer = app.new_workspace("reviewer").await;
    let reviews = "/api/v1/templates/acme/post-line/reviews";
    let early = app.post(&reviewer, reviews, json!({ "stars": 5 })).await;
    assert_eq!((early.status, early.code()), (StatusCode::FORBIDDEN, "use_required"));
    let conn = catalogue_slack(&app, &reviewer, &slack).await;
    let used = app
        .post(
            &reviewer,
            &use_path("acme/post-line"),
            json!({ "connections": { "chat": conn }, "variables": { "channel": "C1" } }),
        )
        .await;
    assert_eq!(used.status, StatusCode::CREATED, "{:?}", used.body);
    let review = app
        .post(&reviewer, reviews, json!({ "stars": 4, "body": "Saved me an hour." }))
        .await;
    assert_eq!(review.status, StatusCode::OK, "{:?}", review.body);
    assert_eq!(review.body["version"], "1.0.0", "verified use of 1.0.0");
    let bad = app.post(&reviewer, reviews, json!({ "stars": 6 })).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // One review per reviewer: writing again edits it.
    let edited = app.post(&reviewer, reviews, json!({ "stars": 2 })).await;
    assert_eq!(edited.body["id"], review.body["id"]);
    let listed = app.get(&reviewer, reviews).await;
    assert_eq!(
        (listed.body["count"].clone(), listed.body["average"].clone()),
        (json!(1), json!(2.0))
    );
    // Only the publisher replies.
    let review_id = review.body["id"].as_str().expect("id");
    let reply_path = format!("{reviews}/{review_id}/reply");
    assert_eq!(
        app.post(&reviewer, &reply_path, json!({ "reply": "mine now" }))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&app.key, &reply_path, json!({ "reply": "Thanks!" }))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&reviewer, reviews).await.body["data"][0]["reply"], "Thanks!");

    // Yank: the version cannot be newly used; the workflow made from it stays.
    publish(
        &app,
        &app.key,
        "acme",
        bundle(&slack_template("post-line", "1.1.0", json!({})), Some(&keys)),
        false,
    )
    .await;
    let yank = "/api/v1/templates/acme/post-line/versions/1.1.0/yank";
    assert_eq!(
        app.post(&reviewer, yank, json!({})).await.status,
        StatusCode::FORBIDDEN,
        "not the publisher"
    );
    assert_eq!(app.post(&app.key, yank, json!({})).await.status, StatusCode::NO_CONTENT);
    let listing = app.get(&reviewer, "/api/v1/templates/acme/post-line").await.body;
    assert_eq!(listing["latest_version"], "1.0.0", "{listing}");
    assert_eq!(listing["versions"][1]["yanked"], true);
    let yanked = app
        .post(
            &reviewer,
            "/api/v1/templates/acme/post-line/versions/1.1.0/use?dry_run=true",
            json!({}),
        )
        .await;
    assert_eq!(
        (yanked.status, yanked.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "version_yanked")
    );
    assert_eq!(
        app.post(
            &app.key,
            "/api/v1/templates/acme/post-line/versions/1.0.0/yank",
            json!({})
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let gone = app.get(&reviewer, "/api/v1/templates?q=post-line").await;
    assert_eq!(gone.body["total"], 0, "every version yanked: not listed");
    let wid = used.body["workflow"]["id"].as_str().expect("id");
    assert_eq!(
        app.get(&reviewer, &format!("/api/v1/workflows/{wid}")).await.status,
        StatusCode::OK
    );
    app.shutdown().await;
}

async fn search_and_filters_happen_in_the_database(app: TestApp) {
    let (app, keys) = acme_with_template(app).await;
    let slack = fakes::slack().await;
    let variants = [
        ("sales-digest", "SALES", "INTERMEDIATE", "Résumé des ventes"),
        ("support-triage", "SUPPORT", "ADVANCED", "Triage tickets"),
        ("data-sync", "DATA_PROCESSING", "EXPERT", "Sync rows"),
    ];
    for (id, category, difficulty, name) in variants {
        let template = slack_template(
            id,
            "1.0.0",
            json!({ "category": category, "difficulty": difficulty, "name": name }),
        );
        publish(&app, &app.key, "acme", bundle(&template, Some(&keys)), false).await;
    }
    let names = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|t| t["template"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let q = |query: &str| format!("/api/v1/templates?{query}");
    let acme = |query: &str| {
        let q = q(query);
        let app = &app;
        async move {
            let got = app.get(&app.key, &q).await;
            assert_eq!(got.status, StatusCode::OK, "{q}: {:?}", got.body);
            names(&got.body)
                .into_iter()
                .filter(|n| n.starts_with("acme/"))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(acme("category=SUPPORT").await, vec!["acme/support-triage"]);
    assert_eq!(acme("difficulty=EXPERT").await, vec!["acme/data-sync"]);
    assert_eq!(
        acme("q=R%C3%89SUM%C3%89").await,
        vec!["acme/sales-digest"],
        "case-insensitive beyond ASCII"
    );
    assert_eq!(acme("q=100%25").await, Vec::<String>::new(), "% is matched literally");
    assert_eq!(
        acme("connector=nexum/slack&category=COMMUNICATION").await,
        vec!["acme/post-line"]
    );
    assert_eq!(acme("connector=nexum/discord").await, Vec::<String>::new());
    // Newest first by default; paging with a total and a cursor.
    let page = app.get(&app.key, &q("q=acme/&limit=2")).await.body;
    assert_eq!(page["total"], 4, "{page}");
    assert_eq!(names(&page), vec!["acme/data-sync", "acme/support-triage"]);
    let next = page["next_cursor"].as_str().expect("a next page");
    let page2 = app
        .get(&app.key, &q(&format!("q=acme/&limit=2&cursor={next}")))
        .await
        .body;
    assert_eq!(names(&page2), vec!["acme/sales-digest", "acme/post-line"]);
    assert_eq!(page2["next_cursor"], Value::Null);
    // Uses and ratings sort; featured filters.
    let conn = catalogue_slack(&app, &app.key, &slack).await;
    let used = app
        .post(
            &app.key,
            &use_path("acme/support-triage"),
            json!({ "connections": { "chat": conn }, "variables": { "channel": "C1" } }),
        )
        .await;
    assert_eq!(used.status, StatusCode::CREATED, "{:?}", used.body);
    assert_eq!(acme("sort=uses").await[0], "acme/support-triage");
    app.post(
        &app.key,
        &use_path("acme/sales-digest"),
        json!({ "connections": { "chat": conn }, "variables": { "channel": "C1" } }),
    )
    .await;
    assert_eq!(
        app.post(
            &app.key,
            "/api/v1/templates/acme/sales-digest/reviews",
            json!({ "stars": 5 })
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post(
            &app.key,
            "/api/v1/templates/acme/support-triage/reviews",
            json!({ "stars": 3 })
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        acme("sort=rating").await[..2],
        ["acme/sales-digest", "acme/support-triage"]
    );
    assert_eq!(
        app.post(
            &app.key,
            "/api/v1/templates/acme/data-sync/featured",
            json!({ "featured": true })
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(acme("featured=true").await, vec!["acme/data-sync"]);
    // Bad parameters are clear 422s.
    for (query, code) in [
        ("sort=best", "invalid_sort"),
        ("category=GARDENING", "invalid_category"),
        ("difficulty=EASY", "invalid_difficulty"),
        ("limit=0", "invalid_limit"),
        ("cursor=x", "invalid_cursor"),
    ] {
        let got = app.get(&app.key, &q(query)).await;
        assert_eq!(
            (got.status, got.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{query}"
        );
    }
    app.shutdown().await;
}
