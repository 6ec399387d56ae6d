//! Workflows over the HTTP API, as a user sees them: a three-step Slack workflow makes
//! exactly the expected requests; definitions are checked with errors that name the field;
//! each definition change is a new version; `on_error: continue`, retry from the failed
//! step, step timeouts and cancel; incoming webhooks verified in the provider's scheme
//! (valid, bad signature, stale, replayed); schedules fire each tick once across two nodes;
//! execution events reach the outbox; and tenant walls hold for workflows, executions and
//! triggers.
//!
//! Waits give up after a generous deadline; no test asserts on timing.

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use hmac::{KeyInit, Mac};
use nexum_tests::app::{Backend, TestApp};
use nexum_tests::fakes::{self, SLACK_TOKEN};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

on_both_databases!(three_step_slack_workflow_makes_exactly_the_expected_requests);
on_both_databases!(definitions_are_checked_with_errors_naming_the_field);
on_both_databases!(each_definition_change_is_a_new_version);
on_both_databases!(on_error_continue_retry_from_failed_step_and_step_timeout);
on_both_databases!(cancel_stops_before_the_next_step);
on_both_databases!(incoming_webhooks_are_verified_deduplicated_and_logged);
on_both_databases!(tenant_walls_hold_for_workflows_executions_and_triggers);
on_both_databases!(execution_events_reach_the_outbox_and_usage_counts);

const WORKFLOWS: &str = "/api/v1/workflows";

async fn create(app: &TestApp, body: Value) -> Value {
    let created = app.post(&app.key, WORKFLOWS, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body
}

/// Start an execution and wait (server side) for it to end.
async fn run(app: &TestApp, workflow: &str, input: Value) -> Value {
    let r = app
        .post(&app.key, &format!("{WORKFLOWS}/{workflow}/execute?wait=30"), input)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// Poll an execution until `done` says so (30 s at most).
async fn wait_for(app: &TestApp, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let got = app.get(&app.key, &format!("/api/v1/executions/{id}")).await;
        assert_eq!(got.status, StatusCode::OK, "{:?}", got.body);
        if done(&got.body) {
            return got.body;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{what}: {}", got.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn step<'a>(execution: &'a Value, name: &str) -> &'a Value {
    execution["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or(&Value::Null)
}

async fn three_step_slack_workflow_makes_exactly_the_expected_requests(app: TestApp) {
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let workflow = create(
        &app,
        json!({
            "name": "announce",
            "vars": { "channel": "C1" },
            "steps": [
                { "name": "list", "type": "connector", "connection": conn, "action": "list_channels", "input": { "limit": 10 } },
                { "name": "check", "type": "condition", "condition": "steps.list.output.channels | length > 0", "else": "nothing" },
                { "name": "send", "type": "connector", "connection": conn, "action": "send_message",
                  "input": { "channel": "{{ vars.channel }}", "text": "{{ trigger.who }} sees {{ steps.list.output.channels | length }} channels, first {{ steps.list.output.channels[0].name }}" } },
                { "name": "nothing", "type": "transform", "if": "not steps.check.output.result", "output": { "skipped": true } }
            ],
            "output": { "ts": "{{ steps.send.output.ts }}" }
        }),
    )
    .await;
    assert_eq!(workflow["version"], 1);
    let id = workflow["id"].as_str().expect("id");
    slack.clear();

    let done = run(&app, id, json!({ "who": "Ada" })).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"], json!({ "ts": "1700000000.000100" }));
    assert_eq!(done["version"], 1);
    let requests = slack.requests();
    let calls: Vec<(String, String)> = requests.iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert_eq!(
        calls,
        vec![
            ("GET".to_string(), "/api/conversations.list".to_string()),
            ("POST".to_string(), "/api/chat.postMessage".to_string())
        ]
    );
    assert_eq!(
        requests[1].json(),
        json!({ "channel": "C1", "text": "Ada sees 2 channels, first general" })
    );
    for r in &requests {
        assert!(!r.everything_but("authorization").contains(SLACK_TOKEN));
    }
    let exe = done["id"].as_str().expect("id");
    assert_eq!(step(&done, "list")["status"], "succeeded");
    assert_eq!(step(&done, "list")["idempotency_key"], format!("{exe}:list"));
    assert_eq!(step(&done, "list")["connector"], "slack");
    assert_eq!(step(&done, "check")["output"], json!({ "result": true }));
    assert_eq!(step(&done, "send")["attempts"], 1);
    assert_eq!(step(&done, "nothing")["status"], "skipped");
    // The redacted broker trace of each connector step: the request, never the token.
    let trace = step(&done, "send")["trace"].to_string();
    assert!(trace.contains("chat.postMessage"), "{trace}");
    assert!(!trace.contains(SLACK_TOKEN), "{trace}");

    let listed = app.get(&app.key, &format!("{WORKFLOWS}/{id}/executions")).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["data"][0]["id"], exe);
}

async fn definitions_are_checked_with_errors_naming_the_field(app: TestApp) {
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let refused = |body: Value| {
        let app = &app;
        async move {
            let r = app.post(&app.key, WORKFLOWS, body).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
            assert_eq!(r.code(), "invalid_workflow");
            r.body["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .map(|e| e["path"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        }
    };
    let paths = refused(json!({ "name": "x", "steps": [
        { "name": "a", "type": "connector", "connection": "conn_00000000000000000000000000", "action": "send_message", "input": {} }
    ] }))
    .await;
    assert_eq!(paths, vec!["steps[0].connection"]);
    let paths = refused(json!({ "name": "x", "steps": [
        { "name": "a", "type": "connector", "connection": conn, "action": "teleport", "input": {} }
    ] }))
    .await;
    assert_eq!(paths, vec!["steps[0].action"]);
    // The action's schema: `channel` and `text` are required; `limit` must be an integer.
    let paths = refused(json!({ "name": "x", "steps": [
        { "name": "a", "type": "connector", "connection": conn, "action": "send_message", "input": { "text": "{{ trigger.t }}" } },
        { "name": "b", "type": "connector", "connection": conn, "action": "list_channels", "input": { "limit": "ten" } }
    ] }))
    .await;
    assert!(paths.contains(&"steps[0].input".to_string()), "{paths:?}");
    assert!(paths.contains(&"steps[1].input.limit".to_string()), "{paths:?}");
    // Templates: a later step, an unknown root, a syntax error.
    let paths = refused(json!({ "name": "x", "steps": [
        { "name": "a", "type": "connector", "connection": conn, "action": "send_message",
          "input": { "channel": "{{ steps.b.output.x }}", "text": "{{ secrets.token }}" } },
        { "name": "b", "type": "transform", "output": { "x": "{{ unclosed" } }
    ] }))
    .await;
    assert!(
        paths.iter().any(|p| p.starts_with("steps[0].input.channel")),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p.starts_with("steps[0].input.text")), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("steps[1].output.x")), "{paths:?}");
    // Strict shape: an unknown field and a bad cron name their place.
    let paths =
        refused(json!({ "name": "x", "steps": [ { "name": "a", "type": "delay", "seconds": 1, "colour": "red" } ] }))
            .await;
    assert!(paths[0].starts_with("steps[0]"), "{paths:?}");
    let paths = refused(
        json!({ "name": "x", "trigger": { "type": "schedule", "cron": "every tuesday" },
        "steps": [ { "name": "a", "type": "transform", "output": {} } ] }),
    )
    .await;
    assert_eq!(paths, vec!["trigger.cron"]);
    let paths = refused(
        json!({ "name": "x", "trigger": { "type": "webhook", "scheme": "github" },
        "steps": [ { "name": "a", "type": "transform", "output": {} } ] }),
    )
    .await;
    assert_eq!(paths, vec!["trigger.secrets"]);
    // Nothing was stored.
    let listed = app.get(&app.key, WORKFLOWS).await;
    assert_eq!(listed.body["data"], json!([]));
}

async fn each_definition_change_is_a_new_version(app: TestApp) {
    let workflow = create(
        &app,
        json!({ "name": "v", "steps": [ { "name": "a", "type": "transform", "output": { "v": 1 } } ] }),
    )
    .await;
    let id = workflow["id"].as_str().expect("id");
    let first = run(&app, id, json!({})).await;
    assert_eq!(first["output"], json!({ "v": 1 }));

    let renamed = app
        .patch(&app.key, &format!("{WORKFLOWS}/{id}"), json!({ "name": "renamed" }))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(renamed.body["version"], 1, "a rename is not a new version");
    let changed = app
        .patch(
            &app.key,
            &format!("{WORKFLOWS}/{id}"),
            json!({ "steps": [ { "name": "a", "type": "transform", "output": { "v": "{{ trigger.n + trigger.n }}" } } ] }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(changed.body["version"], 2);
    assert_eq!(changed.body["name"], "renamed");
    let second = run(&app, id, json!({ "n": 21 })).await;
    assert_eq!(
        (second["version"].clone(), second["output"].clone()),
        (json!(2), json!({ "v": 42 }))
    );
    // The first execution still says which version it ran.
    let again = app
        .get(
            &app.key,
            &format!("/api/v1/executions/{}", first["id"].as_str().unwrap_or_default()),
        )
        .await;
    assert_eq!(again.body["version"], 1);

    let bad = app
        .patch(&app.key, &format!("{WORKFLOWS}/{id}"), json!({ "steps": [] }))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", bad.body);
    assert_eq!(app.get(&app.key, &format!("{WORKFLOWS}/{id}")).await.body["version"], 2);

    assert_eq!(
        app.delete(&app.key, &format!("{WORKFLOWS}/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&app.key, &format!("{WORKFLOWS}/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let gone = app
        .post(&app.key, &format!("{WORKFLOWS}/{id}/execute"), json!({}))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

/// A Slack-like fake whose `chat.postMessage` fails with `channel_not_found` while `failing`.
async fn switchable_slack(failing: Arc<AtomicBool>, posts: Arc<AtomicUsize>, lists: Arc<AtomicUsize>) -> fakes::Fake {
    let router = Router::new()
        .route(
            "/api/chat.postMessage",
            post(move |body: Bytes| {
                let (failing, posts) = (failing.clone(), posts.clone());
                async move {
                    posts.fetch_add(1, Ordering::SeqCst);
                    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                    if failing.load(Ordering::SeqCst) {
                        axum::Json(json!({ "ok": false, "error": "channel_not_found" }))
                    } else {
                        axum::Json(json!({ "ok": true, "channel": v["channel"], "ts": "1.1" }))
                    }
                }
            }),
        )
        .route(
            "/api/conversations.list",
            get(move || {
                let lists = lists.clone();
                async move {
                    lists.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({ "ok": true, "channels": [{ "id": "C1", "name": "general" }] }))
                }
            }),
        );
    fakes::serve(router).await
}

async fn on_error_continue_retry_from_failed_step_and_step_timeout(app: TestApp) {
    let failing = Arc::new(AtomicBool::new(true));
    let (posts, lists) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let slack = switchable_slack(failing.clone(), posts.clone(), lists.clone()).await;
    let conn = app.connect_slack(&app.key, &slack).await;

    // `continue`: the failure is recorded and the next step sees it.
    let tolerant = create(
        &app,
        json!({ "name": "tolerant", "steps": [
            { "name": "send", "type": "connector", "connection": conn, "action": "send_message",
              "input": { "channel": "C404", "text": "hi" }, "on_error": "continue" },
            { "name": "report", "type": "transform", "output": { "send": "{{ steps.send.status }}" } }
        ] }),
    )
    .await;
    let done = run(&app, tolerant["id"].as_str().expect("id"), json!({})).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"], json!({ "send": "failed" }));
    assert!(
        step(&done, "send")["error"]
            .as_str()
            .unwrap_or_default()
            .contains("channel_not_found")
    );

    // `fail` (default): the execution fails at `send`; a retry re-runs from `send` only.
    let strict = create(
        &app,
        json!({ "name": "strict", "steps": [
            { "name": "list", "type": "connector", "connection": conn, "action": "list_channels", "input": {} },
            { "name": "send", "type": "connector", "connection": conn, "action": "send_message",
              "input": { "channel": "{{ steps.list.output.channels[0].id }}", "text": "hi" } }
        ] }),
    )
    .await;
    let (lists_before, posts_before) = (lists.load(Ordering::SeqCst), posts.load(Ordering::SeqCst));
    let failed = run(&app, strict["id"].as_str().expect("id"), json!({})).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failed_step"], "send");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("channel_not_found"),
        "{failed}"
    );
    let exe = failed["id"].as_str().expect("id").to_string();
    let not_failed = app
        .post(&app.key, &format!("/api/v1/executions/{exe}/cancel"), json!({}))
        .await;
    assert_eq!(
        not_failed.status,
        StatusCode::CONFLICT,
        "an ended execution cannot be cancelled"
    );

    failing.store(false, Ordering::SeqCst);
    let retried = app
        .post(&app.key, &format!("/api/v1/executions/{exe}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{:?}", retried.body);
    let done = wait_for(&app, &exe, "retried execution succeeds", |e| e["status"] == "succeeded").await;
    assert_eq!(
        lists.load(Ordering::SeqCst) - lists_before,
        1,
        "the completed step did not run again"
    );
    assert_eq!(
        posts.load(Ordering::SeqCst) - posts_before,
        2,
        "the failed step ran again, once"
    );
    assert_eq!(step(&done, "send")["idempotency_key"], format!("{exe}:send"));
    let again = app
        .post(&app.key, &format!("/api/v1/executions/{exe}/retry"), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "only a failed execution is retried");

    // A step timeout fails the step (and, retried, fails again).
    let upstream = fakes::upstream().await;
    assert_eq!(app.install(&app.key, "http").await.status, StatusCode::CREATED);
    let http = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "up", "credentials": { "token": "t0k3n-upstream" }, "variables": { "base_url": upstream.origin() } }),
        )
        .await;
    assert_eq!(http.status, StatusCode::CREATED, "{:?}", http.body);
    let slow = create(
        &app,
        json!({ "name": "slow", "steps": [
            { "name": "wait", "type": "connector", "connection": http.body["id"], "action": "request",
              "input": { "url": "/slow?ms=5000" }, "timeout_secs": 1, "retry": { "attempts": 2, "backoff_ms": 10 } }
        ] }),
    )
    .await;
    let timed_out = run(&app, slow["id"].as_str().expect("id"), json!({})).await;
    assert_eq!(timed_out["status"], "failed", "{timed_out}");
    assert!(
        timed_out["error"].as_str().unwrap_or_default().contains("step_timeout"),
        "{timed_out}"
    );
    assert_eq!(step(&timed_out, "wait")["attempts"], 2);
}

async fn cancel_stops_before_the_next_step(app: TestApp) {
    let workflow = create(
        &app,
        json!({ "name": "waits", "steps": [
            { "name": "pause", "type": "delay", "seconds": 3600 },
            { "name": "after", "type": "transform", "output": { "ran": true } }
        ] }),
    )
    .await;
    let started = app
        .post(
            &app.key,
            &format!("{WORKFLOWS}/{}/execute", workflow["id"].as_str().expect("id")),
            json!({}),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let exe = started.body["id"].as_str().expect("id").to_string();
    let waiting = wait_for(&app, &exe, "the delay begins", |e| {
        step(e, "pause")["status"] == "waiting"
    })
    .await;
    assert_eq!(waiting["status"], "running");
    let cancelled = app
        .post(&app.key, &format!("/api/v1/executions/{exe}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::ACCEPTED, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["cancel_requested"], true);
    let done = wait_for(&app, &exe, "the execution is cancelled", |e| e["status"] == "cancelled").await;
    assert_eq!(step(&done, "after"), &Value::Null, "the next step never ran");
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

async fn hook(app: &TestApp, url: &str, body: &[u8], headers: &[(&str, String)]) -> (StatusCode, Value) {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let mut req = client
        .post(url)
        .body(body.to_vec())
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let response = req.send().await.expect("sent");
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    let _ = app;
    (status, body)
}

async fn incoming_webhooks_are_verified_deduplicated_and_logged(app: TestApp) {
    const SECRET: &str = "gh-webhook-s3cret";
    const OLD: &str = "gh-webhook-old-s3cret";
    let workflow = create(
        &app,
        json!({ "name": "on push", "trigger": { "type": "webhook", "scheme": "github", "secrets": [SECRET, OLD] },
            "steps": [ { "name": "pick", "type": "transform",
                "output": { "repo": "{{ trigger.json.repository.name }}", "event": "{{ trigger.headers['x-github-event'] }}" } } ] }),
    )
    .await;
    let shown = workflow.to_string();
    assert!(
        !shown.contains(SECRET) && !shown.contains(OLD),
        "secrets are never returned: {shown}"
    );
    let url = workflow["trigger"]["url"].as_str().expect("trigger url").to_string();
    assert!(url.starts_with(&app.base) && url.contains("/hooks/trg_"), "{url}");
    let id = workflow["id"].as_str().expect("id");

    let body = br#"{"repository":{"name":"nexum"},"ref":"refs/heads/main"}"#;
    let signed = |secret: &str, delivery: &str| {
        vec![
            ("x-hub-signature-256", format!("sha256={}", hmac_hex(secret, &[body]))),
            ("x-github-delivery", delivery.to_string()),
            ("x-github-event", "push".to_string()),
        ]
    };
    let (status, accepted) = hook(&app, &url, body, &signed(SECRET, "d-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let exe = accepted["execution_id"].as_str().expect("execution id").to_string();
    let done = wait_for(&app, &exe, "the webhook's execution ends", |e| {
        e["status"] == "succeeded"
    })
    .await;
    assert_eq!(done["output"], json!({ "repo": "nexum", "event": "push" }));
    assert_eq!(done["trigger"], "webhook");
    assert_eq!(
        done["input"]["body"],
        String::from_utf8_lossy(body).as_ref(),
        "the raw body, byte-exact"
    );

    // Rotation: the older secret still verifies (another delivery: another body).
    let other = br#"{"repository":{"name":"nexum"},"ref":"refs/heads/dev"}"#;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(OLD.as_bytes()).expect("key");
    mac.update(other);
    let old_signed = vec![
        (
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        ),
        ("x-github-delivery", "d-2".to_string()),
        ("x-github-event", "push".to_string()),
    ];
    let (status, _) = hook(&app, &url, other, &old_signed).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The same signed body again, even re-encoded (upper-case hex), is the same delivery.
    let mut shouted = signed(SECRET, "d-1-shouted");
    shouted[0].1 = format!("sha256={}", hmac_hex(SECRET, &[body]).to_uppercase());
    let (status, _) = hook(&app, &url, body, &shouted).await;
    assert_eq!(status, StatusCode::CONFLICT, "a re-encoded signature is still a replay");
    // A replayed delivery id starts nothing.
    let (status, replay) = hook(&app, &url, body, &signed(SECRET, "d-1")).await;
    assert_eq!(
        (status, replay["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_delivery"))
    );
    // The same signed request under another delivery id is still the same delivery.
    let (status, _) = hook(&app, &url, body, &signed(SECRET, "d-1-again")).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a replay cannot dodge dedupe by changing the id header"
    );
    // A bad signature, a tampered body, a missing header.
    let (status, bad) = hook(&app, &url, body, &signed("wrong", "d-3")).await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_signature"))
    );
    let (status, _) = hook(&app, &url, br#"{"repository":{"name":"evil"}}"#, &signed(SECRET, "d-4")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, missing) = hook(&app, &url, body, &[]).await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_signature_header"))
    );
    let (status, _) = hook(
        &app,
        &format!("{}/hooks/trg_00000000000000000000000000", app.base),
        body,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let executions = app.get(&app.key, &format!("{WORKFLOWS}/{id}/executions")).await;
    assert_eq!(
        executions.body["data"].as_array().map(Vec::len),
        Some(2),
        "only the two verified deliveries ran"
    );
    let failures = app.get(&app.key, &format!("{WORKFLOWS}/{id}/trigger/failures")).await;
    assert_eq!(failures.status, StatusCode::OK, "{:?}", failures.body);
    let reasons: Vec<&str> = failures.body["data"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f["reason"].as_str())
        .collect();
    // Six refusals; the log keeps at most 5 a second per trigger (6 when they straddle a second).
    assert!((5..=6).contains(&reasons.len()), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("replayed")), "{reasons:?}");
    assert!(
        reasons.iter().all(|r| !r.contains(SECRET) && !r.contains("nexum")),
        "{reasons:?}"
    );

    // Stripe: a stale timestamp is refused even with a good signature.
    const STRIPE: &str = "whsec_stripe_test";
    let stripe = create(
        &app,
        json!({ "name": "stripe", "trigger": { "type": "webhook", "scheme": "stripe", "secrets": [STRIPE] },
            "steps": [ { "name": "a", "type": "transform", "output": { "id": "{{ trigger.json.id }}" } } ] }),
    )
    .await;
    let stripe_url = stripe["trigger"]["url"].as_str().expect("url").to_string();
    let event = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
    let stamp = |t: i64| {
        let t = t.to_string();
        vec![(
            "stripe-signature",
            format!("t={t},v1={}", hmac_hex(STRIPE, &[t.as_bytes(), b".", event])),
        )]
    };
    let now = nexum_host::store::now_ms() / 1000;
    let (status, stale) = hook(&app, &stripe_url, event, &stamp(now - 600)).await;
    assert_eq!(
        (status, stale["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("stale_timestamp"))
    );
    let (status, _) = hook(&app, &stripe_url, event, &stamp(now)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = hook(&app, &stripe_url, event, &stamp(now)).await;
    assert_eq!(status, StatusCode::CONFLICT, "Stripe's event id dedupes");

    // A disabled workflow starts nothing.
    let off = app
        .patch(&app.key, &format!("{WORKFLOWS}/{id}"), json!({ "enabled": false }))
        .await;
    assert_eq!(off.status, StatusCode::OK);
    let (status, _) = hook(&app, &url, body, &signed(SECRET, "d-9")).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

async fn tenant_walls_hold_for_workflows_executions_and_triggers(app: TestApp) {
    let slack = fakes::slack().await;
    let conn = app.connect_slack(&app.key, &slack).await;
    let workflow = create(
        &app,
        json!({ "name": "mine", "trigger": { "type": "webhook", "scheme": "github", "secrets": ["s"] },
            "steps": [ { "name": "a", "type": "transform", "output": {} } ] }),
    )
    .await;
    let id = workflow["id"].as_str().expect("id");
    let done = run(&app, id, json!({})).await;
    let exe = done["id"].as_str().expect("id");

    let other = app.new_workspace("other").await;
    for path in [
        format!("{WORKFLOWS}/{id}"),
        format!("{WORKFLOWS}/{id}/executions"),
        format!("{WORKFLOWS}/{id}/trigger/failures"),
        format!("/api/v1/executions/{exe}"),
    ] {
        let r = app.get(&other, &path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {:?}", r.body);
    }
    for path in [
        format!("{WORKFLOWS}/{id}/execute"),
        format!("/api/v1/executions/{exe}/cancel"),
        format!("/api/v1/executions/{exe}/retry"),
    ] {
        let r = app.post(&other, &path, json!({})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {:?}", r.body);
    }
    let r = app
        .patch(&other, &format!("{WORKFLOWS}/{id}"), json!({ "name": "stolen" }))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&other, &format!("{WORKFLOWS}/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&other, WORKFLOWS).await.body["data"], json!([]));
    // Another workspace's connection cannot be used in a step.
    let r = app
        .post(
            &other,
            WORKFLOWS,
            json!({ "name": "borrow", "steps": [ { "name": "a", "type": "connector", "connection": conn, "action": "list_channels", "input": {} } ] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["errors"][0]["path"], "steps[0].connection");
    assert_eq!(
        app.get(&app.key, &format!("{WORKFLOWS}/{id}")).await.body["name"],
        "mine"
    );
}

async fn execution_events_reach_the_outbox_and_usage_counts(app: TestApp) {
    let endpoint = app
        .post(
            &app.key,
            "/api/v1/webhooks/endpoints",
            json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["execution.succeeded", "execution.failed"] }),
        )
        .await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{:?}", endpoint.body);
    let ok = create(
        &app,
        json!({ "name": "ok", "steps": [ { "name": "a", "type": "transform", "output": { "x": 1 } } ] }),
    )
    .await;
    let bad = create(
        &app,
        json!({ "name": "bad", "steps": [ { "name": "a", "type": "transform", "output": { "x": "{{ trigger.missing.deeper }}" } } ] }),
    )
    .await;
    let done = run(&app, ok["id"].as_str().expect("id"), json!({})).await;
    assert_eq!(done["status"], "succeeded");
    let failed = run(&app, bad["id"].as_str().expect("id"), json!({})).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("steps[0].output.x"),
        "{failed}"
    );

    let events = app.get(&app.key, "/api/v1/events?type=execution.succeeded").await;
    assert_eq!(events.status, StatusCode::OK, "{:?}", events.body);
    let data = events.body["data"].as_array().expect("events");
    assert_eq!(data.len(), 1, "{data:?}");
    let failed_events = app.get(&app.key, "/api/v1/events?type=execution.failed").await;
    assert_eq!(failed_events.body["data"].as_array().map(Vec::len), Some(1));
    // `execution.started` has no subscriber here, so it was not written at all.
    let started = app.get(&app.key, "/api/v1/events?type=execution.started").await;
    assert_eq!(started.body["data"], json!([]));

    let usage = app.get(&app.key, "/api/v1/workflows/usage").await;
    assert_eq!(usage.status, StatusCode::OK, "{:?}", usage.body);
    let rows = usage.body["workflows"].as_array().expect("rows");
    let of = |id: &Value| {
        rows.iter()
            .find(|r| r["workflow_id"] == *id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(of(&ok["id"])["succeeded"], 1);
    assert_eq!(of(&ok["id"])["success_rate"], 1.0);
    assert_eq!(of(&bad["id"])["failed"], 1);
}

/// Schedules: with two nodes on one PostgreSQL database, both looking for due ticks at the
/// same (injected) instant, each tick starts exactly one execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_tick_starts_exactly_one_execution_across_two_nodes() {
    let app = TestApp::start(Backend::Postgres).await;
    let second = app.second_node(|_| {}).await;
    // A yearly schedule: its real ticks are months away, so the nodes' own one-second looks
    // never race the injected clock.
    let workflow = create(
        &app,
        json!({ "name": "new year", "trigger": { "type": "schedule", "cron": "0 0 1 1 *", "timezone": "Europe/Berlin" },
            "steps": [ { "name": "a", "type": "transform", "output": { "at": "{{ trigger.scheduled_at }}" } } ] }),
    )
    .await;
    let id = workflow["id"].as_str().expect("id");
    let first = workflow["trigger"]["next_run_at"].as_i64().expect("next tick");
    assert_eq!(first % 3_600_000, 0, "midnight in Berlin is on the hour");
    let mut next = first;
    for tick in 0..3 {
        let at = next + 5_000;
        let (a, b) = tokio::join!(
            nexum_host::workflows::schedule::fire_due(app.state(), at),
            nexum_host::workflows::schedule::fire_due(second.state(), at),
        );
        assert_eq!(a.expect("node a") + b.expect("node b"), 1, "tick {tick} started once");
        // Looking again at the same instant starts nothing more.
        assert_eq!(
            nexum_host::workflows::schedule::fire_due(app.state(), at)
                .await
                .expect("again"),
            0
        );
        let shown = app.get(&app.key, &format!("{WORKFLOWS}/{id}")).await;
        let moved = shown.body["trigger"]["next_run_at"].as_i64().expect("next");
        assert!(moved > at, "the next tick is ahead: {moved} after {at}");
        next = moved;
    }
    let started = Instant::now();
    loop {
        let listed = app.get(&app.key, &format!("{WORKFLOWS}/{id}/executions")).await;
        let data = listed.body["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(data.len(), 3, "{data:?}");
        if data.iter().all(|e| e["status"] == "succeeded") {
            assert!(data.iter().all(|e| e["trigger"] == "schedule"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{data:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A tick missed by hours is skipped by default: nothing starts, the next tick is ahead.
    let late = next + 10 * 3_600_000;
    assert_eq!(
        nexum_host::workflows::schedule::fire_due(app.state(), late)
            .await
            .expect("late"),
        0
    );
    let shown = app.get(&app.key, &format!("{WORKFLOWS}/{id}")).await;
    assert!(shown.body["trigger"]["next_run_at"].as_i64().expect("next") > late);
}
