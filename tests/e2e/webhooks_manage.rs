//! Managing webhook endpoints over the HTTP API, as a user sees it: custom headers (values
//! never shown back), secret rotation with a grace period (both signatures, then only the
//! new one), per-endpoint rate limits that space deliveries without spending attempts,
//! recovery of failed messages, REST-hook subscriptions, action events that follow
//! subscriptions, disabling an endpoint that keeps failing and enabling it again,
//! `Retry-After` honoured and redirects not followed, and the event catalogue.
//!
//! Time checks are lower bounds only; waits give up after a generous deadline.

use axum::Router;
use axum::http::{StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use nexum_host::config::Config;
use nexum_host::store::now_ms;
use nexum_host::webhooks::{DEFAULT_TOLERANCE_SECS, WebhookSecret, verify};
use nexum_tests::app::TestApp;
use nexum_tests::fakes::{self, Fake, Recorded};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

on_both_databases!(rotation_signs_with_both_secrets_during_grace);
on_both_databases!(a_host_name_resolving_to_a_refused_address_is_refused_at_creation);
on_both_databases!(endpoint_rate_limit_spaces_deliveries);
on_both_databases!(recover_resends_only_failed_messages);
on_both_databases!(rest_hooks_subscribe_and_unsubscribe);
on_both_databases!(action_events_follow_subscriptions);
on_both_databases!(failing_endpoint_is_disabled_after_the_window);
on_both_databases!(retry_after_is_honoured_and_redirects_are_not_followed);
on_both_databases!(event_catalogue_has_schemas);
on_both_databases!(a_receiver_answering_nul_bytes_holds_back_no_other_delivery);
on_both_databases!(failing_endpoints_do_not_report_each_other_forever);
on_both_databases!(moving_an_endpoint_drops_its_headers_and_echoes_are_redacted);
on_both_databases!(endpoint_urls_need_https_and_no_credentials);

const ENDPOINTS: &str = "/api/v1/webhooks/endpoints";

/// How long anything may take before a wait gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// When each request reached a receiver, in arrival order.
type Arrivals = Arc<Mutex<Vec<Instant>>>;

/// Wait until `done` holds, failing after [`PATIENCE`].
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A receiver at `/hook` answering its n-th request (from 0) with `answer(n)`, noting when
/// each request arrived.
async fn receiver(answer: impl Fn(usize) -> Response + Clone + Send + Sync + 'static) -> (Fake, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let handler = move || {
        let n = {
            let mut seen = seen.lock().expect("arrivals");
            seen.push(Instant::now());
            seen.len() - 1
        };
        let response = answer(n);
        async move { response }
    };
    (
        fakes::serve(Router::new().route("/hook", post(handler))).await,
        arrivals,
    )
}

/// Always answer `status`.
fn answering(status: AxumStatus) -> impl Fn(usize) -> Response + Clone + Send + Sync + 'static {
    move |_| status.into_response()
}

/// The same database, restarted with other settings.
async fn restarted(app: TestApp, configure: impl FnOnce(&mut Config)) -> TestApp {
    let backend = app.backend;
    app.shutdown().await;
    TestApp::start_with(backend, configure).await
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("a string, not {v}")).to_string()
}

/// Create an endpoint; returns its id and secret.
async fn create_endpoint(app: &TestApp, body: Value) -> (String, String) {
    let created = app.post(&app.key, ENDPOINTS, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let secret = text(&created.body["secret"]);
    assert!(secret.starts_with("whsec_"));
    (text(&created.body["endpoint"]["id"]), secret)
}

/// Send the example event to `endpoint`; returns the message id.
async fn send_test(app: &TestApp, endpoint: &str) -> String {
    let sent = app
        .post(&app.key, &format!("{ENDPOINTS}/{endpoint}/test"), json!({}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
    text(&sent.body["message_id"])
}

/// The delivery log of `message`, oldest first.
async fn attempts(app: &TestApp, message: &str) -> Vec<Value> {
    let log = app
        .get(&app.key, &format!("/api/v1/webhooks/messages/{message}/attempts"))
        .await;
    assert_eq!(log.status, StatusCode::OK, "{:?}", log.body);
    log.body["data"].as_array().cloned().unwrap_or_default()
}

/// Whether a logged attempt got a 2xx.
fn succeeded(log: &[Value]) -> bool {
    log.iter()
        .any(|a| a["status_code"].as_i64().is_some_and(|s| (200..300).contains(&s)))
}

/// What `fake` received of `message`.
fn deliveries_of(fake: &Fake, message: &str) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.header("webhook-id") == Some(message))
        .collect()
}

/// The bodies of the deliveries of type `kind` that `fake` received.
fn of_type(fake: &Fake, kind: &str) -> Vec<Value> {
    fake.requests()
        .iter()
        .map(Recorded::json)
        .filter(|body| body["type"] == kind)
        .collect()
}

/// Send a test to `endpoint` and wait for `fake` to receive it.
async fn deliver_test(app: &TestApp, fake: &Fake, endpoint: &str) -> Recorded {
    let message = send_test(app, endpoint).await;
    eventually("the test delivery", async || !deliveries_of(fake, &message).is_empty()).await;
    deliveries_of(fake, &message).remove(0)
}

/// Whether a delivery's signature verifies with `secret` (`whsec_…`).
fn verifies(secret: &str, delivery: &Recorded) -> bool {
    let secret = WebhookSecret::parse(secret).expect("a whsec_ secret");
    let timestamp: i64 = delivery
        .header("webhook-timestamp")
        .expect("webhook-timestamp")
        .parse()
        .expect("seconds");
    verify(
        &secret,
        delivery.header("webhook-id").expect("webhook-id"),
        timestamp,
        &delivery.body,
        delivery.header("webhook-signature").expect("webhook-signature"),
        now_ms() / 1000,
        DEFAULT_TOLERANCE_SECS,
    )
    .is_ok()
}

/// How many signatures a delivery carries.
fn signatures(delivery: &Recorded) -> usize {
    delivery
        .header("webhook-signature")
        .expect("webhook-signature")
        .split_whitespace()
        .count()
}

/// A receiver checking signatures keeps working through a secret rotation: during the
/// grace period each delivery is signed with the old and the new secret, afterwards with
/// the new one only. Custom headers reach the receiver, but their values (and the secret)
/// are never shown back by the API; headers the delivery sets itself are refused.
async fn rotation_signs_with_both_secrets_during_grace(app: TestApp) {
    const TOKEN: &str = "receiver-token-12345";
    let (rx, _) = receiver(answering(AxumStatus::OK)).await;
    for headers in [json!({ "Content-Type": "text/plain" }), json!({ "webhook-id": "mine" })] {
        let refused = app
            .post(
                &app.key,
                ENDPOINTS,
                json!({ "url": rx.url("/hook"), "headers": headers }),
            )
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_headers"),
            "{headers}: {:?}",
            refused.body
        );
    }

    let (id, secret1) = create_endpoint(
        &app,
        json!({
            "url": rx.url("/hook"),
            "event_types": ["connection.created"],
            "headers": { "X-Team": "ops", "Authorization": format!("Bearer {TOKEN}") },
        }),
    )
    .await;
    let one = app.get(&app.key, &format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
    assert_eq!(one.body["header_names"], json!(["authorization", "x-team"]));
    let listed = app.get(&app.key, ENDPOINTS).await;
    assert_eq!(
        listed.body["data"][0]["header_names"],
        json!(["authorization", "x-team"])
    );
    for shown in [&one.body, &listed.body] {
        let shown = shown.to_string();
        assert!(!shown.contains(TOKEN), "a header value was shown: {shown}");
        assert!(!shown.contains(&secret1), "the secret was shown again: {shown}");
    }

    let first = deliver_test(&app, &rx, &id).await;
    assert_eq!(first.header("x-team"), Some("ops"));
    assert_eq!(first.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(signatures(&first), 1);
    assert!(verifies(&secret1, &first));

    // Rotate with an hour of grace: both secrets sign.
    let rotated = app
        .post(
            &app.key,
            &format!("{ENDPOINTS}/{id}/secret/rotate"),
            json!({ "grace_period_secs": 3600 }),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let secret2 = text(&rotated.body["secret"]);
    assert!(secret2.starts_with("whsec_") && secret2 != secret1);
    // An hour after the rotation (which happened between `asked` and now).
    let until = rotated.body["previous_valid_until"].as_i64().expect("until");
    let now = nexum_host::store::now_ms();
    assert!(until > now + 3_500_000 && until <= now + 3_600_000, "{until} vs {now}");
    let during = deliver_test(&app, &rx, &id).await;
    assert_eq!(signatures(&during), 2, "{:?}", during.header("webhook-signature"));
    assert!(verifies(&secret1, &during), "the old secret still verifies");
    assert!(verifies(&secret2, &during), "the new secret verifies");
    assert_eq!(during.header("x-team"), Some("ops"), "headers survive a rotation");

    // Rotate without grace: only the newest secret signs.
    let rotated = app
        .post(
            &app.key,
            &format!("{ENDPOINTS}/{id}/secret/rotate"),
            json!({ "grace_period_secs": 0 }),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let secret3 = text(&rotated.body["secret"]);
    let after = deliver_test(&app, &rx, &id).await;
    assert_eq!(signatures(&after), 1, "{:?}", after.header("webhook-signature"));
    assert!(verifies(&secret3, &after));
    assert!(!verifies(&secret2, &after), "the replaced secret no longer verifies");
    assert!(!verifies(&secret1, &after));

    let shown = app.get(&app.key, ENDPOINTS).await.body.to_string();
    for secret in [&secret1, &secret2, &secret3] {
        assert!(!shown.contains(secret.as_str()), "a secret was shown again");
    }
}

/// A receiver that asked for at most 2 deliveries a second gets them spaced out: six
/// messages sent at once all arrive, over at least 1.5 s, and waiting for the budget does
/// not count as a failed attempt.
async fn endpoint_rate_limit_spaces_deliveries(app: TestApp) {
    let (rx, arrivals) = receiver(answering(AxumStatus::OK)).await;
    let created = app
        .post(
            &app.key,
            ENDPOINTS,
            json!({ "url": rx.url("/hook"), "event_types": ["connection.created"], "rate_limit_per_sec": 2 }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["endpoint"]["rate_limit_per_sec"], 2);
    let id = text(&created.body["endpoint"]["id"]);

    let mut messages = Vec::new();
    for _ in 0..6 {
        messages.push(send_test(&app, &id).await);
    }
    eventually("all six deliveries", async || rx.requests().len() >= 6).await;
    let arrived = arrivals.lock().expect("arrivals").clone();
    let span = arrived[arrived.len() - 1] - arrived[0];
    assert!(
        span >= Duration::from_millis(1500),
        "six deliveries at 2/s took only {span:?}"
    );
    for message in &messages {
        assert_eq!(deliveries_of(&rx, message).len(), 1, "{message} delivered once");
        eventually("the attempt is logged", async || {
            !attempts(&app, message).await.is_empty()
        })
        .await;
        let log = attempts(&app, message).await;
        assert_eq!(log.len(), 1, "waiting spent no attempt: {log:?}");
        assert_eq!(log[0]["attempt"], 1, "{log:?}");
        assert_eq!(log[0]["status_code"], 200, "{log:?}");
    }
}

/// After an outage, a recovery resends exactly the messages the receiver missed: the one
/// it had already accepted is not sent again.
async fn recover_resends_only_failed_messages(app: TestApp) {
    let app = restarted(app, |c| c.webhook_retry_delays_ms = vec![]).await;
    let healthy = Arc::new(AtomicBool::new(true));
    let up = healthy.clone();
    let (rx, _) = receiver(move |_| {
        if up.load(Ordering::SeqCst) {
            AxumStatus::OK.into_response()
        } else {
            AxumStatus::INTERNAL_SERVER_ERROR.into_response()
        }
    })
    .await;
    let (id, _) = create_endpoint(
        &app,
        json!({ "url": rx.url("/hook"), "event_types": ["connection.created"] }),
    )
    .await;

    let a = send_test(&app, &id).await;
    eventually("A is delivered", async || succeeded(&attempts(&app, &a).await)).await;

    healthy.store(false, Ordering::SeqCst);
    let b = send_test(&app, &id).await;
    let c = send_test(&app, &id).await;
    for message in [&b, &c] {
        eventually("the one attempt fails, with no retry planned", async || {
            attempts(&app, message)
                .await
                .iter()
                .any(|x| x["status_code"] == 500 && x["next_attempt_at"].is_null())
        })
        .await;
        let log = attempts(&app, message).await;
        assert_eq!(log.len(), 1, "one attempt only: {log:?}");
    }

    healthy.store(true, Ordering::SeqCst);
    let recover = format!("{ENDPOINTS}/{id}/recover?since=0");
    let recovered = app.request(Method::POST, &recover, Some(&app.key), None).await;
    assert_eq!(recovered.status, StatusCode::ACCEPTED, "{:?}", recovered.body);
    assert_eq!(recovered.body["queued"], 2, "{:?}", recovered.body);
    assert_eq!(recovered.body["more"], false);
    for message in [&b, &c] {
        eventually("the missed message arrives", async || {
            succeeded(&attempts(&app, message).await)
        })
        .await;
        assert_eq!(
            deliveries_of(&rx, message).len(),
            2,
            "failed once, resent once, same webhook-id"
        );
    }
    assert_eq!(deliveries_of(&rx, &a).len(), 1, "A had arrived: not sent again");

    let again = app.request(Method::POST, &recover, Some(&app.key), None).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{:?}", again.body);
    assert_eq!(again.body["queued"], 0, "nothing left to recover");
}

/// An automation platform subscribes to one event with `target_url` and `event`, receives
/// it signed with the secret it was given, and unsubscribes; it can neither see nor remove
/// ordinary endpoints, and a read-only key cannot subscribe.
async fn rest_hooks_subscribe_and_unsubscribe(app: TestApp) {
    let (platform, _) = receiver(answering(AxumStatus::OK)).await;
    let (other_rx, _) = receiver(answering(AxumStatus::OK)).await;
    let minted = app
        .post(
            &app.key,
            "/api/v1/api-keys",
            json!({ "name": "reader", "scopes": ["connections:read"] }),
        )
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{:?}", minted.body);
    let reader = text(&minted.body["key"]);

    let subscription = json!({ "target_url": platform.url("/hook"), "event": "connector.installed" });
    let denied = app.post(&reader, "/api/v1/hooks", subscription.clone()).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{:?}", denied.body);
    let hook = app.post(&app.key, "/api/v1/hooks", subscription).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    assert_eq!(hook.body["event"], "connector.installed");
    assert_eq!(hook.body["target_url"], platform.url("/hook").as_str());
    let hook_id = text(&hook.body["id"]);
    let hook_secret = text(&hook.body["secret"]);
    assert!(hook_secret.starts_with("whsec_"));
    let (ordinary, _) = create_endpoint(
        &app,
        json!({ "url": other_rx.url("/hook"), "event_types": ["connection.created"] }),
    )
    .await;

    let listed = app.get(&reader, "/api/v1/hooks").await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let hooks = listed.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(hooks.len(), 1, "ordinary endpoints are not hooks: {hooks:?}");
    assert_eq!(hooks[0]["id"], hook_id.as_str());
    assert_eq!(hooks[0]["event"], "connector.installed");
    assert_eq!(hooks[0]["target_url"], platform.url("/hook").as_str());
    assert!(!listed.body.to_string().contains(&hook_secret));
    let as_endpoint = app.get(&app.key, &format!("{ENDPOINTS}/{hook_id}")).await;
    assert_eq!(as_endpoint.body["source"], "hook", "{:?}", as_endpoint.body);

    let installed = app.install(&app.key, "slack").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    let connector = text(&installed.body["connector_id"]);
    eventually("the subscription's delivery", async || {
        !of_type(&platform, "connector.installed").is_empty()
    })
    .await;
    let delivery = platform
        .requests()
        .into_iter()
        .find(|r| r.json()["type"] == "connector.installed")
        .expect("delivered");
    let body = delivery.json();
    assert_eq!(body["data"]["connector"], connector.as_str(), "{body}");
    assert!(body["data"]["installation_id"].is_string(), "{body}");
    assert!(body["timestamp"].is_string() || body["timestamp"].is_number(), "{body}");
    assert!(verifies(&hook_secret, &delivery), "signed with the hook's secret");

    let path = format!("/api/v1/hooks/{hook_id}");
    assert_eq!(app.delete(&reader, &path).await.status, StatusCode::FORBIDDEN);
    let removed = app.delete(&app.key, &path).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    assert_eq!(app.delete(&app.key, &path).await.status, StatusCode::NOT_FOUND);
    let listed = app.get(&app.key, "/api/v1/hooks").await;
    assert_eq!(listed.body["data"], json!([]));

    let not_a_hook = app.delete(&app.key, &format!("/api/v1/hooks/{ordinary}")).await;
    assert_eq!(not_a_hook.status, StatusCode::NOT_FOUND, "{:?}", not_a_hook.body);
    assert_eq!(
        app.get(&app.key, &format!("{ENDPOINTS}/{ordinary}")).await.status,
        StatusCode::OK,
        "the ordinary endpoint is untouched"
    );
}

/// Action events go where they are wanted: an endpoint that names `action.executed` hears
/// of every call, one with the default types hears only of failures, and neither payload
/// carries what the action was given.
async fn action_events_follow_subscriptions(app: TestApp) {
    const MESSAGE: &str = "quarterly numbers, do not forward 8812";
    let (every_rx, _) = receiver(answering(AxumStatus::OK)).await;
    let (calls_rx, _) = receiver(answering(AxumStatus::OK)).await;
    create_endpoint(&app, json!({ "url": every_rx.url("/hook") })).await;
    create_endpoint(
        &app,
        json!({ "url": calls_rx.url("/hook"), "event_types": ["action.executed"] }),
    )
    .await;
    let slack = fakes::slack().await;
    let connection = app.connect_slack(&app.key, &slack).await;
    let run = format!("/api/v1/connections/{connection}/actions/send_message");
    let sent = app
        .post(&app.key, &run, json!({ "channel": "C1", "text": MESSAGE }))
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    let failed = app
        .post(&app.key, &run, json!({ "channel": "C404", "text": MESSAGE }))
        .await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{:?}", failed.body);
    let error_code = failed.code().to_string();
    assert!(!error_code.is_empty());

    eventually("both calls reported to the opted-in endpoint", async || {
        of_type(&calls_rx, "action.executed").len() >= 2
    })
    .await;
    eventually("the failure reported to the default endpoint", async || {
        !of_type(&every_rx, "action.failed").is_empty()
    })
    .await;
    // Anything extra would have been fanned out with these: give it time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let executed = of_type(&calls_rx, "action.executed");
    assert_eq!(executed.len(), 2, "{executed:?}");
    assert_eq!(
        calls_rx.requests().len(),
        2,
        "only what it named reaches the opted-in endpoint"
    );
    for event in &executed {
        assert_eq!(event["data"]["connection_id"], connection.as_str(), "{event}");
        assert_eq!(event["data"]["connector"], "slack", "{event}");
        assert_eq!(event["data"]["action"], "send_message", "{event}");
        assert!(event["data"]["duration_ms"].is_number(), "{event}");
    }
    let ok = executed
        .iter()
        .find(|e| e["data"]["ok"] == true)
        .expect("the successful call");
    assert!(ok["data"]["error_code"].is_null(), "{ok}");
    let not_ok = executed
        .iter()
        .find(|e| e["data"]["ok"] == false)
        .expect("the failed call");
    assert_eq!(not_ok["data"]["error_code"], error_code.as_str(), "{not_ok}");

    let failures = of_type(&every_rx, "action.failed");
    assert_eq!(failures.len(), 1, "only the failing call: {failures:?}");
    assert_eq!(failures[0]["data"]["ok"], false);
    assert_eq!(failures[0]["data"]["error_code"], error_code.as_str());
    assert_eq!(failures[0]["data"]["connection_id"], connection.as_str());
    assert!(
        of_type(&every_rx, "action.executed").is_empty(),
        "action.executed is opt-in"
    );

    for delivery in every_rx.requests().iter().chain(calls_rx.requests().iter()) {
        assert!(
            !String::from_utf8_lossy(&delivery.body).contains(MESSAGE),
            "an action's input reached a webhook: {delivery:?}"
        );
    }
}

/// An endpoint that keeps failing for the failure window is disabled (reason `failing`),
/// subscribers hear of it, tests to it are refused, and enabling it clears its failure
/// clock.
async fn failing_endpoint_is_disabled_after_the_window(app: TestApp) {
    // The failure window is 1 ms (the clock is injected through the window), so the second
    // failed attempt, which sees the clock the first one started, disables the endpoint.
    let app = restarted(app, |c| {
        c.webhook_failure_window_ms = 1;
        c.webhook_retry_delays_ms = vec![50, 50, 50];
    })
    .await;
    let (failing_rx, _) = receiver(answering(AxumStatus::INTERNAL_SERVER_ERROR)).await;
    let (watcher_rx, _) = receiver(answering(AxumStatus::OK)).await;
    create_endpoint(
        &app,
        json!({ "url": watcher_rx.url("/hook"), "event_types": ["endpoint.disabled"] }),
    )
    .await;
    let (id, _) = create_endpoint(
        &app,
        json!({ "url": failing_rx.url("/hook"), "event_types": ["connection.created"] }),
    )
    .await;
    let path = format!("{ENDPOINTS}/{id}");

    send_test(&app, &id).await;
    eventually("the endpoint is disabled", async || {
        app.get(&app.key, &path).await.body["disabled"] == true
    })
    .await;
    let shown = app.get(&app.key, &path).await;
    assert_eq!(shown.body["disabled_reason"], "failing", "{:?}", shown.body);
    assert!(shown.body["failing_since"].is_i64(), "{:?}", shown.body);
    assert!(failing_rx.requests().len() >= 2, "disabled after failing again");

    eventually("subscribers hear of it", async || {
        !of_type(&watcher_rx, "endpoint.disabled").is_empty()
    })
    .await;
    let notice = of_type(&watcher_rx, "endpoint.disabled").remove(0);
    assert_eq!(notice["data"]["endpoint_id"], id.as_str(), "{notice}");
    assert_eq!(notice["data"]["reason"], "failing", "{notice}");

    let refused = app.post(&app.key, &format!("{path}/test"), json!({})).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "endpoint_disabled"),
        "{:?}",
        refused.body
    );

    let enabled = app.patch(&app.key, &path, json!({ "enabled": true })).await;
    assert_eq!(enabled.status, StatusCode::OK, "{:?}", enabled.body);
    assert_eq!(enabled.body["disabled"], false);
    assert!(enabled.body["disabled_reason"].is_null(), "{:?}", enabled.body);
    assert!(enabled.body["failing_since"].is_null(), "{:?}", enabled.body);
    let shown = app.get(&app.key, &path).await;
    assert_eq!(shown.body["disabled"], false);
    assert!(shown.body["failing_since"].is_null());
}

/// A receiver asking to be called back later (`429` with `Retry-After: 2`) is not called
/// again sooner; a receiver answering with a redirect does not get its delivery sent
/// somewhere else.
async fn retry_after_is_honoured_and_redirects_are_not_followed(app: TestApp) {
    let app = restarted(app, |c| c.webhook_retry_delays_ms = vec![20, 20]).await;
    let (busy_rx, busy_arrivals) = receiver(|n| {
        if n == 0 {
            (AxumStatus::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "2")]).into_response()
        } else {
            AxumStatus::NO_CONTENT.into_response()
        }
    })
    .await;
    let (elsewhere_rx, _) = receiver(answering(AxumStatus::OK)).await;
    let location = elsewhere_rx.url("/hook");
    let (redirecting_rx, _) =
        receiver(move |_| (AxumStatus::FOUND, [(header::LOCATION, location.clone())]).into_response()).await;
    let (busy, _) = create_endpoint(
        &app,
        json!({ "url": busy_rx.url("/hook"), "event_types": ["connection.created"] }),
    )
    .await;
    let (redirecting, _) = create_endpoint(
        &app,
        json!({ "url": redirecting_rx.url("/hook"), "event_types": ["connection.created"] }),
    )
    .await;

    let message = send_test(&app, &busy).await;
    eventually("the delivery goes through on the retry", async || {
        succeeded(&attempts(&app, &message).await)
    })
    .await;
    let arrived = busy_arrivals.lock().expect("arrivals").clone();
    assert_eq!(arrived.len(), 2, "one refusal, one success");
    let waited = arrived[1] - arrived[0];
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?} despite Retry-After: 2"
    );
    let log = attempts(&app, &message).await;
    assert_eq!(log[0]["status_code"], 429, "{log:?}");
    let planned = log[0]["next_attempt_at"].as_i64().expect("a retry was planned");
    let at = log[0]["created_at"].as_i64().expect("created_at");
    assert!(planned >= at + 2000, "{log:?}");
    assert_eq!(log[1]["status_code"], 204, "{log:?}");
    assert_eq!(deliveries_of(&busy_rx, &message).len(), 2);

    let message = send_test(&app, &redirecting).await;
    eventually("every attempt at the redirecting endpoint is logged", async || {
        attempts(&app, &message)
            .await
            .iter()
            .any(|a| a["status_code"] == 302 && a["next_attempt_at"].is_null())
    })
    .await;
    assert!(!deliveries_of(&redirecting_rx, &message).is_empty());
    assert!(
        elsewhere_rx.requests().is_empty(),
        "the redirect was followed: {:?}",
        elsewhere_rx.requests()
    );
}

/// `GET /event-types` documents every event a user can subscribe to: a JSON Schema of its
/// data whose required fields all appear in the example, and which types are opt-in.
async fn event_catalogue_has_schemas(app: TestApp) {
    let listed = app.get(&app.key, "/api/v1/event-types").await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let types = listed.body["data"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<String> = types.iter().map(|t| text(&t["type"])).collect();
    names.sort();
    let mut expected = vec![
        "connection.created",
        "connection.deleted",
        "connection.status_changed",
        "connection.refresh_failed",
        "connector.installed",
        "connector.upgraded",
        "connector.uninstalled",
        "action.failed",
        "action.executed",
        "endpoint.disabled",
        "message.attempt.exhausted",
        "execution.started",
        "execution.succeeded",
        "execution.failed",
        "execution.cancelled",
    ];
    expected.sort_unstable();
    assert_eq!(names, expected);
    for t in &types {
        let name = text(&t["type"]);
        assert!(t["description"].as_str().is_some_and(|d| !d.is_empty()), "{name}");
        assert_eq!(t["schema"]["type"], "object", "{name}");
        let example = t["example"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: an example object"));
        let required = t["schema"]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: required fields"));
        assert!(!required.is_empty(), "{name}");
        for field in required {
            let field = text(field);
            assert!(example.contains_key(&field), "{name}: the example lacks {field}");
            assert!(
                t["schema"]["properties"].get(&field).is_some(),
                "{name}: {field} has no schema"
            );
        }
        assert_eq!(t["opt_in"], name == "action.executed", "{name}");
    }
}

/// A URL whose host *name* resolves to an address the policy refuses (here `localhost`, on a
/// host that allows only 127.0.0.2) is refused when the endpoint is created or changed,
/// not only later at delivery; a literal the policy allows is accepted.
async fn a_host_name_resolving_to_a_refused_address_is_refused_at_creation(app: TestApp) {
    // Only 127.0.0.2 is allowed; `localhost` resolves to 127.0.0.1 (and perhaps ::1).
    let app = restarted(app, |c| c.allow_ranges = vec!["127.0.0.2/32".parse().expect("range")]).await;
    let refused = app
        .post(&app.key, ENDPOINTS, json!({ "url": "http://localhost:9/hook" }))
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    assert_eq!(refused.code(), "invalid_url", "{:?}", refused.body);
    let hooked = app
        .post(
            &app.key,
            "/api/v1/hooks",
            json!({ "target_url": "http://localhost:9/hook", "event": "connection.created" }),
        )
        .await;
    assert_eq!(hooked.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", hooked.body);
    // An allowed literal is fine at creation; moving it to a refused name is not.
    let (id, _) = create_endpoint(&app, json!({ "url": "http://127.0.0.2:9/hook" })).await;
    let moved = app
        .patch(
            &app.key,
            &format!("{ENDPOINTS}/{id}"),
            json!({ "url": "http://localhost:9/hook" }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", moved.body);
    let unchanged = app.get(&app.key, &format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(unchanged.body["url"], "http://127.0.0.2:9/hook");
}

/// A receiver that answers with NUL bytes (which PostgreSQL text cannot hold) is logged
/// without them, and another endpoint's deliveries finishing in the same batch are logged
/// and settled normally: one bad answer holds back nothing.
async fn a_receiver_answering_nul_bytes_holds_back_no_other_delivery(app: TestApp) {
    let app = restarted(app, |c| c.webhook_retry_delays_ms = vec![]).await;
    let nul = move |_| (AxumStatus::INTERNAL_SERVER_ERROR, "bad\0answer\0").into_response();
    let (bad_rx, _) = receiver(nul).await;
    let (good_rx, _) = receiver(answering(AxumStatus::OK)).await;
    let (bad, _) = create_endpoint(
        &app,
        json!({ "url": bad_rx.url("/hook"), "event_types": ["connection.created"] }),
    )
    .await;
    let (good, _) = create_endpoint(
        &app,
        json!({ "url": good_rx.url("/hook"), "event_types": ["connection.created"] }),
    )
    .await;
    let mut messages = Vec::new();
    for _ in 0..5 {
        messages.push((send_test(&app, &bad).await, false));
        messages.push((send_test(&app, &good).await, true));
    }
    for (message, ok) in &messages {
        eventually("every attempt logged", async || {
            attempts(&app, message).await.len() == 1
        })
        .await;
        let log = attempts(&app, message).await;
        assert_eq!(succeeded(&log), *ok, "{log:?}");
        assert!(!log[0].to_string().contains('\0'));
    }
    let bad_log = attempts(&app, &messages[0].0).await;
    assert_eq!(bad_log[0]["response_excerpt"], "badanswer");
    // Nothing is left claimed: each good message reached its receiver exactly once.
    for (message, ok) in &messages {
        if *ok {
            assert_eq!(deliveries_of(&good_rx, message).len(), 1);
        }
    }
}

/// Endpoints that keep failing are not told about each other's failures forever: a
/// `message.attempt.exhausted` is not reported in turn when it cannot be delivered, and an
/// endpoint never receives the reports about itself.
async fn failing_endpoints_do_not_report_each_other_forever(app: TestApp) {
    let app = restarted(app, |c| c.webhook_retry_delays_ms = vec![]).await;
    let (rx_a, _) = receiver(answering(AxumStatus::INTERNAL_SERVER_ERROR)).await;
    let (rx_b, _) = receiver(answering(AxumStatus::INTERNAL_SERVER_ERROR)).await;
    // Both receive every (non-opt-in) type, failures of deliveries included.
    let (a, _) = create_endpoint(&app, json!({ "url": rx_a.url("/hook") })).await;
    create_endpoint(&app, json!({ "url": rx_b.url("/hook") })).await;
    let first = send_test(&app, &a).await;
    eventually("the test send failed once", async || {
        attempts(&app, &first).await.len() == 1
    })
    .await;
    // A's exhausted report goes to B only (not back to A); B fails it; that failure is not
    // reported again. So each receiver sees a bounded number of requests.
    eventually("B got A's report", async || {
        !of_type(&rx_b, "message.attempt.exhausted").is_empty()
    })
    .await;
    let settled = async || {
        let events = app.get(&app.key, "/api/v1/events?type=message.attempt.exhausted").await;
        events.body["data"].as_array().map(Vec::len).unwrap_or(0)
    };
    let mut seen = settled().await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = settled().await;
    }
    assert_eq!(seen, 1, "one report (A's test send), not a chain of reports");
    assert!(
        of_type(&rx_a, "message.attempt.exhausted").is_empty(),
        "A is not told about itself"
    );
    assert_eq!(of_type(&rx_b, "message.attempt.exhausted").len(), 1);
}

/// Moving an endpoint to another origin drops its custom headers (perhaps credentials meant
/// for the old receiver) unless the same request sets them; a receiver that echoes its
/// request has the header values redacted from the delivery log.
async fn moving_an_endpoint_drops_its_headers_and_echoes_are_redacted(app: TestApp) {
    let echo = |_| AxumStatus::OK.into_response();
    let (old_rx, _) = receiver(echo).await;
    let echoing = fakes::serve(Router::new().route(
        "/hook",
        post(|headers: axum::http::HeaderMap| async move { format!("you sent {:?}", headers.get("authorization")) }),
    ))
    .await;
    let (id, _) = create_endpoint(
        &app,
        json!({ "url": echoing.url("/hook"), "event_types": ["connection.created"], "headers": { "Authorization": "Bearer s3cret-token" } }),
    )
    .await;
    let echoed = send_test(&app, &id).await;
    eventually("the echo is logged", async || succeeded(&attempts(&app, &echoed).await)).await;
    let log = attempts(&app, &echoed).await.last().cloned().expect("attempt");
    let excerpt = text(&log["response_excerpt"]);
    assert!(
        !excerpt.contains("s3cret-token") && excerpt.contains("[REDACTED]"),
        "{excerpt}"
    );

    let moved = app
        .patch(
            &app.key,
            &format!("{ENDPOINTS}/{id}"),
            json!({ "url": old_rx.url("/hook") }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.body["header_names"], json!([]), "headers dropped with the move");
    let delivered = deliver_test(&app, &old_rx, &id).await;
    assert_eq!(delivered.header("authorization"), None);
    let audit = app.get(&app.key, "/api/v1/audit-log?limit=100").await;
    assert!(
        audit.body["data"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "secret.update" && e["target"] == id.as_str()),
        "{:?}",
        audit.body
    );
}

/// Endpoint URLs must be `https` unless they reach only internal addresses the operator
/// allows, and may not carry credentials (they are shown to readers).
async fn endpoint_urls_need_https_and_no_credentials(app: TestApp) {
    for url in ["http://1.1.1.1/hook", "https://user:pass@127.0.0.1:9/hook"] {
        let refused = app.post(&app.key, ENDPOINTS, json!({ "url": url })).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {:?}",
            refused.body
        );
        assert_eq!(refused.code(), "invalid_url");
        assert!(!refused.body.to_string().contains("pass@"), "{:?}", refused.body);
    }
    // The test host allows loopback, so plain http to it is fine.
    create_endpoint(&app, json!({ "url": "http://127.0.0.1:9/hook" })).await;
}
