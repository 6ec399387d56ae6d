//! The web console in headless Chromium over WebDriver, against a real server with loopback
//! fakes: the whole admin loop (sign in, install Slack accepting its permissions, connect it
//! with a token, run `send_message` and read the output and the redacted trace, create a
//! webhook endpoint and see a delivery, sign out), a read-only key that cannot change
//! anything, and a cross-site form post that is refused. Screenshots of the main pages land
//! in `target/console-screenshots/`.

use axum::Router;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use nexum_tests::app::TestApp;
use nexum_tests::browser::{self, Browser};
use nexum_tests::fakes::{self, SLACK_TOKEN};
use serde_json::json;
use std::time::Duration;

/// Sign in through the form with `key`; ends on the connections page.
async fn sign_in(browser: &Browser, app: &TestApp, key: &str) {
    browser.goto(&format!("{}/", app.base)).await;
    assert!(
        browser.url().await.ends_with("/console/sign-in"),
        "{}",
        browser.url().await
    );
    browser.fill("#api_key", key).await;
    browser.click("#sign-in").await;
    assert!(
        browser.url().await.ends_with("/console/connections"),
        "signed in at {}: {}",
        browser.url().await,
        browser.text().await
    );
}

/// Wait (without reloading) until the page's text contains `needle`, as after a form a
/// script submitted.
async fn page_shows(browser: &Browser, needle: &str) -> String {
    for _ in 0..100 {
        let text = browser.text().await;
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "`{needle}` never appeared on {}: {}",
        browser.url().await,
        browser.text().await
    );
}

/// Reload `url` until its text contains `needle` (the queue delivers in the background).
async fn wait_for_text(browser: &Browser, url: &str, needle: &str) -> String {
    for _ in 0..100 {
        browser.goto(url).await;
        let text = browser.text().await;
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("`{needle}` never appeared on {url}: {}", browser.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_installs_connects_runs_and_subscribes_in_the_browser() {
    if !browser::available() {
        return;
    }
    let app = TestApp::sqlite().await;
    app.seed_catalogue().await;
    let slack = fakes::slack().await;
    let receiver = fakes::serve(Router::new().route("/hook", post(|| async { StatusCode::NO_CONTENT }))).await;
    let browser = Browser::start().await;

    sign_in(&browser, &app, &app.key).await;
    browser.screenshot("connections-empty").await;

    // The marketplace, then Slack's page with its permissions; install accepting them.
    browser.goto(&format!("{}/console/marketplace", app.base)).await;
    assert!(browser.text().await.contains("Slack"), "{}", browser.text().await);
    browser.screenshot("marketplace").await;
    browser
        .goto(&format!("{}/console/marketplace/connectors/nexum/slack", app.base))
        .await;
    let detail = browser.text().await;
    assert!(detail.contains("api_base"), "the permissions name the hosts: {detail}");
    browser.screenshot("connector-detail").await;
    browser.click("#install").await;
    assert!(
        browser.text().await.contains("Connector installed."),
        "{}",
        browser.text().await
    );
    let installed = app.get(&app.key, "/api/v1/connectors").await;
    assert_eq!(
        installed.body["data"][0]["connector_id"], "slack",
        "{:?}",
        installed.body
    );

    // Connect it with a bot token, pointed at the fake.
    browser.goto(&format!("{}/console/connections", app.base)).await;
    browser
        .find("#connector")
        .await
        .select_by(fantoccini::Locator::Css("option[data-connector='slack']"))
        .await
        .expect("choose slack");
    browser.click("#connect-start").await;
    browser.fill("#name-bot_token", "Team Slack").await;
    browser.fill("#cred-bot_token-token", SLACK_TOKEN).await;
    browser.fill("#var-bot_token-api_base", &slack.origin()).await;
    browser.screenshot("connect").await;
    browser.click("#connect-bot_token").await;
    let page = browser.text().await;
    assert!(page.contains("Connection created."), "{page}");
    assert!(page.contains("Team Slack") && page.contains("connected"), "{page}");
    assert!(!browser.client.source().await.expect("source").contains(SLACK_TOKEN));
    let connection_url = browser.url().await;
    let connection_url = connection_url.split('?').next().unwrap_or_default().to_string();

    // Run send_message: the output, and the trace with the token redacted.
    browser.click("#action-send_message").await;
    browser.fill("#in-channel", "C0123456").await;
    browser.fill("#in-text", "Hello from the console").await;
    browser.click("#run-action").await;
    let output = browser.find("#output").await.text().await.expect("output");
    assert!(output.contains("1700000000.000100"), "{output}");
    let trace = browser.find("#trace").await.text().await.expect("trace");
    assert!(trace.contains("chat.postMessage"), "{trace}");
    assert!(
        trace.contains("[REDACTED]"),
        "the injected header is shown redacted: {trace}"
    );
    let source = browser.client.source().await.expect("source");
    assert!(!source.contains(SLACK_TOKEN), "the token never reaches the page");
    browser.screenshot("action-run").await;
    let sent = slack.requests();
    assert!(
        sent.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("Hello from the console")),
        "the fake got the message"
    );

    // The connection's page shows the call, in the totals and in this hour of the
    // sparkline (usage is written in batches: wait for it).
    let connection_id = connection_url.rsplit('/').next().unwrap_or_default().to_string();
    for _ in 0..100 {
        let shown = app.get(&app.key, &format!("/api/v1/connections/{connection_id}")).await;
        if shown.body["usage"]["last_24_hours"][23]["calls"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.goto(&connection_url).await;
    assert!(
        browser.text().await.contains("1 calls, 0 failed"),
        "{}",
        browser.text().await
    );
    let source = browser.client.source().await.expect("source");
    assert!(
        source.contains("1 calls, 0 failed, in the last 24 hours"),
        "the sparkline: {source}"
    );
    browser.screenshot("connection").await;

    // A webhook endpoint: its secret shown once, a test event, and the delivery in the log.
    browser.goto(&format!("{}/console/webhooks", app.base)).await;
    browser.fill("#url", &receiver.url("/hook")).await;
    browser.click("#create-endpoint").await;
    let secret = browser
        .find("#endpoint-secret-value")
        .await
        .text()
        .await
        .expect("secret");
    assert!(secret.contains("whsec_"), "{secret}");
    let endpoint_url = browser.url().await;
    browser.screenshot("webhook-created").await;
    let endpoints = app.get(&app.key, "/api/v1/webhooks/endpoints").await;
    let endpoint_id = endpoints.body["data"][0]["id"]
        .as_str()
        .expect("endpoint id")
        .to_string();
    let endpoint_page = format!("{}/console/webhooks/{endpoint_id}", app.base);
    if !endpoint_url.starts_with(&endpoint_page) {
        browser.goto(&endpoint_page).await;
    }
    browser.click("#send-test").await;
    assert!(
        browser.text().await.contains("Test event sent."),
        "{}",
        browser.text().await
    );
    let with_messages = browser.url().await;
    let log = wait_for_text(&browser, &with_messages, "204").await;
    assert!(
        log.contains("delivered") || log.contains("succeeded") || log.contains("204"),
        "{log}"
    );
    assert!(
        receiver
            .requests()
            .iter()
            .any(|r| r.header("webhook-signature").is_some()),
        "the receiver got a signed delivery"
    );
    browser.screenshot("webhook-deliveries").await;

    // The other main pages render for an admin.
    for (path, shot) in [
        ("/console/workflows", "workflows"),
        ("/console/admin", "admin"),
        ("/console/admin/audit", "audit"),
    ] {
        browser.goto(&format!("{}{path}", app.base)).await;
        assert!(!browser.has(".problem").await, "{path}: {}", browser.text().await);
        browser.screenshot(shot).await;
    }

    // Sign out: the console is closed again.
    browser.click("#sign-out").await;
    assert!(browser.text().await.contains("You are signed out."));
    browser.goto(&format!("{}/console/connections", app.base)).await;
    assert!(
        browser.url().await.contains("/console/sign-in"),
        "{}",
        browser.url().await
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_sees_no_write_buttons_and_cannot_write() {
    if !browser::available() {
        return;
    }
    let app = TestApp::sqlite().await;
    let slack = fakes::slack().await;
    let connection = app.connect_slack(&app.key, &slack).await;
    let created = app
        .post(
            &app.key,
            "/api/v1/api-keys",
            json!({ "name": "auditor", "scopes": ["connections:read"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let read_only = created.body["key"].as_str().expect("key").to_string();
    let browser = Browser::start().await;
    sign_in(&browser, &app, &read_only).await;

    assert!(
        browser.text().await.contains("Acme"),
        "the key reads: {}",
        browser.text().await
    );
    assert!(!browser.has("#connect-start").await, "no connect button");
    browser
        .goto(&format!("{}/console/connections/{connection}", app.base))
        .await;
    for write in ["#test-connection", "#disconnect", "#reconnect"] {
        assert!(!browser.has(write).await, "{write} is hidden from a read-only key");
    }
    browser
        .goto(&format!(
            "{}/console/connections/{connection}/actions/send_message",
            app.base
        ))
        .await;
    assert!(!browser.has("#run-action").await, "no run button");
    assert!(!browser.has("a[href='/console/admin']").await, "no admin link");

    // A genuine console form, built in the page with the session's own CSRF token, is still
    // refused: the API decides with the key's scopes.
    browser
        .navigate_by_script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
             const t = document.createElement('input'); t.type = 'hidden'; t.name = '_csrf';
             t.value = document.querySelector('meta[name=csrf-token]').content; f.appendChild(t);
             document.body.appendChild(f); f.submit();",
            vec![json!(format!("/console/connections/{connection}/delete"))],
        )
        .await;
    let page = page_shows(&browser, "403").await;
    assert!(page.contains("connections:write"), "{page}");
    let still = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(still.status, StatusCode::OK, "the connection is still there");

    // And the admin pages are refused.
    browser.goto(&format!("{}/console/admin", app.base)).await;
    assert!(browser.text().await.contains("admin"), "{}", browser.text().await);
    assert!(!browser.has("#new-key").await && !browser.has("#create-key").await);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_form_post_is_refused() {
    if !browser::available() {
        return;
    }
    let app = TestApp::sqlite().await;
    let slack = fakes::slack().await;
    let connection = app.connect_slack(&app.key, &slack).await;
    let target = format!("{}/console/connections/{connection}/delete", app.base);
    // Another origin on loopback (same site, other port): a page that posts a form at the
    // console as soon as it loads, with a guessed token.
    let attacker = fakes::serve(Router::new().route(
        "/",
        get(move || {
            let target = target.clone();
            async move {
                Html(format!(
                    "<!doctype html><form id=f method=post action=\"{target}\"><input name=_csrf value=guess></form>\
                     <script>document.getElementById('f').submit()</script>"
                ))
            }
        }),
    ))
    .await;
    let browser = Browser::start().await;
    sign_in(&browser, &app, &app.key).await;

    browser.goto(&attacker.url("/")).await;
    page_shows(&browser, "Request refused").await;
    let still = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(still.status, StatusCode::OK, "the connection survived the forged post");

    // Even from the console's own origin, a form without the session's token is refused.
    browser
        .goto(&format!("{}/console/connections/{connection}", app.base))
        .await;
    browser
        .navigate_by_script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
             document.body.appendChild(f); f.submit();",
            vec![json!(format!("/console/connections/{connection}/delete"))],
        )
        .await;
    page_shows(&browser, "CSRF").await;
    let still = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(still.status, StatusCode::OK);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_account_connects_through_the_providers_sign_in() {
    if !browser::available() {
        return;
    }
    let app = TestApp::sqlite().await;
    let provider = nexum_tests::oauth_provider::FakeOAuth::start().await;
    crate::oauth::install(&app, &crate::oauth::oauth_manifest("")).await;
    crate::oauth::register_app(&app, &app.key).await;
    let browser = Browser::start().await;
    sign_in(&browser, &app, &app.key).await;

    // The connect form offers the provider's sign-in; the browser goes there and comes back.
    browser
        .goto(&format!("{}/console/connections/new?connector=http", app.base))
        .await;
    browser.fill("#name-api", "Fake account").await;
    browser.fill("#var-api-base_url", &provider.origin()).await;
    browser.click("#connect-api").await;
    page_shows(&browser, "The account is connected.").await;
    assert!(
        browser
            .url()
            .await
            .starts_with(&format!("{}/console/oauth/return", app.base))
    );
    assert_eq!(provider.exchanges(), 1, "one code exchanged");
    browser.screenshot("oauth-connected").await;

    browser.click("a[href^='/console/connections/conn_']").await;
    let page = browser.text().await;
    assert!(page.contains("Fake account") && page.contains("connected"), "{page}");
    let source = browser.client.source().await.expect("source");
    for token in provider.secrets() {
        assert!(!source.contains(&token), "no token reaches the page");
    }
    browser.close().await;
}
