//! The client-credentials grant: a connection made from the app's own credentials, renewed
//! by the same grant, and refused (creating nothing) on a wrong secret.

use super::{assert_no_secret_leaked, call_me, expire_now, install, oauth_manifest};
use nexum_tests::app::TestApp;
use nexum_tests::oauth_provider::{CLIENT_ID, CLIENT_SECRET, FakeOAuth};
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(client_credentials_connection);

async fn client_credentials_connection(app: TestApp) {
    nexum_tests::logs::capture();
    let fake = FakeOAuth::start().await;
    let manifest = oauth_manifest("").replace("authorization_url = \"{{ base_url }}/authorize\"\n", "");
    install(&app, &manifest).await;
    let created = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Service", "credentials": { "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET }, "variables": { "base_url": fake.origin() } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(call_me(&app, &app.key, &id).await.status, StatusCode::OK);
    // Expired: a new token comes from the client-credentials grant again.
    fake.revoke_access_tokens();
    expire_now(&app, &id).await;
    let called = call_me(&app, &app.key, &id).await;
    assert_eq!(called.body["output"]["status"], 200, "{:?}", called.body);
    // Wrong client secret: refused, nothing created.
    let refused = app
        .post(
            &app.key,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Bad", "credentials": { "client_id": CLIENT_ID, "client_secret": "wrong-secret-value" }, "variables": { "base_url": fake.origin() } }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{:?}", refused.body);
    assert_eq!(refused.code(), "oauth_rejected");
    assert!(!refused.body.to_string().contains("wrong-secret-value"));
    let list = app.get(&app.key, "/api/v1/connections").await;
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(1));
    assert_no_secret_leaked(&fake, &[created.body.to_string(), list.body.to_string()]);
}
