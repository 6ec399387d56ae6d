//! Connection variables set by the token response (`token_response_variables`), as
//! Salesforce's `instance_url`: the provider's value is stored on the connection at sign-in;
//! an unusable or missing value fails the sign-in and creates nothing.

use super::{consent, oauth_manifest, register_app, visit};
use nexum_tests::app::TestApp;
use nexum_tests::oauth_provider::FakeOAuth;
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(the_token_response_sets_a_connection_variable);

/// The generic HTTP connector whose credential also goes to an `instance_url` the token
/// response names.
fn manifest() -> String {
    oauth_manifest("token_response_variables = { instance_url = \"instance_url\" }")
        .replace(
            "[[auth]]",
            "[variables.instance_url]\ndescription = \"Set at sign-in\"\ndefault = \"https://login.example.com\"\n\n[[auth]]",
        )
        .replace(
            "hosts = [\"{{ base_url }}\"]\nauthorization_url",
            "hosts = [\"{{ base_url }}\", \"{{ instance_url }}\"]\nauthorization_url",
        )
}

async fn the_token_response_sets_a_connection_variable(app: TestApp) {
    let fake = FakeOAuth::start().await;
    let text = manifest();
    assert!(text.contains("\"{{ instance_url }}\"]"), "{text}");
    super::install(&app, &text).await;
    register_app(&app, &app.key).await;
    let instance = "https://acme.my.example.com";
    fake.set_token_extra(json!({ "instance_url": instance }));
    let (flow_id, callback) = consent(&app, &app.key, &fake, json!({})).await;
    let (status, page, _) = visit(&callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let flow = app
        .get(&app.key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
        .await;
    let connection = flow.body["connection_id"].as_str().expect("connected").to_string();
    let shown = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(shown.body["variables"]["instance_url"], instance, "{:?}", shown.body);
    assert_eq!(shown.body["variables"]["base_url"], fake.origin());

    // An answer whose value is no origin, or without the field: the sign-in fails.
    for extra in [json!({ "instance_url": "not a url" }), json!({})] {
        fake.set_token_extra(extra.clone());
        let (flow_id, callback) = consent(&app, &app.key, &fake, json!({ "name": "Second" })).await;
        let (status, page, _) = visit(&callback).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{extra}: {page}");
        assert!(page.contains("instance_url"), "{page}");
        let flow = app
            .get(&app.key, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
            .await;
        assert_eq!(flow.body["status"], "failed", "{extra}");
    }
    let list = app.get(&app.key, "/api/v1/connections").await;
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(1), "nothing half-made");
    app.shutdown().await;
}
