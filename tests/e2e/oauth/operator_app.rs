//! The operator's OAuth app is shared by every workspace, so it must not cross tenants: it
//! is bound to a token endpoint origin and a publisher key, and never used for the
//! client-credentials grant (whose token is the operator's own account).

use super::{consent, oauth_manifest, visit};
use nexum_marketplace::signing::{KeyPairText, PublicKey};
use nexum_marketplace::{bundle::Bundle, permissions::Permissions};
use nexum_tests::app::{Backend, TestApp};
use nexum_tests::oauth_provider::{CLIENT_ID, CLIENT_SECRET, FakeOAuth};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_databases!(operator_app_is_bound_to_origin_and_publisher);

async fn install(app: &TestApp, key: &str, manifest: &str, signer: Option<&KeyPairText>) {
    let bundle = nexum_tests::bundles::bundle("http", Some(manifest), signer);
    let accept = Permissions::of(&Bundle::parse(&bundle).expect("bundle").manifest);
    let installed = app.install_bundle(key, bundle, Some(&accept)).await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
}

async fn put_operator_app(app: &TestApp, body: Value) -> nexum_tests::app::Reply {
    app.request(
        Method::PUT,
        "/api/v1/operator/oauth-apps/http",
        Some(&app.key),
        Some(body),
    )
    .await
}

async fn start_flow(app: &TestApp, key: &str, fake: &FakeOAuth) -> nexum_tests::app::Reply {
    app.post(
        key,
        "/api/v1/connections/oauth/authorize",
        json!({ "connector": "http", "name": "Account", "variables": { "base_url": fake.origin() } }),
    )
    .await
}

async fn operator_app_is_bound_to_origin_and_publisher(app: TestApp) {
    // Restart trusting a first-party-like publisher key and a second, third-party key.
    let publisher = nexum_tests::bundles::keys();
    let third_party = nexum_tests::bundles::keys();
    let backend: Backend = app.backend;
    app.shutdown().await;
    let lines: Vec<String> = [&publisher, &third_party]
        .iter()
        .map(|k| PublicKey::parse(&k.public).expect("public key").base64)
        .collect();
    let app = TestApp::start_with(backend, |c| c.trusted_publisher_keys = lines).await;
    let provider = FakeOAuth::start().await;
    let attacker = FakeOAuth::start().await;

    // Registering an operator app needs its binding, to a key this host trusts.
    let base = json!({ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET });
    let unbound = put_operator_app(&app, base.clone()).await;
    assert_eq!(unbound.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", unbound.body);
    assert_eq!(unbound.code(), "binding_required");
    let mut with = base.clone();
    with["token_origin"] = json!(provider.origin());
    with["signer"] = json!("unsigned");
    let unsigned = put_operator_app(&app, with.clone()).await;
    assert_eq!(unsigned.code(), "untrusted_signer", "{:?}", unsigned.body);
    with["signer"] = json!(publisher.key_id);
    with["token_origin"] = json!(format!("{}/token", provider.origin()));
    let with_path = put_operator_app(&app, with.clone()).await;
    assert_eq!(with_path.code(), "invalid_token_origin", "{:?}", with_path.body);
    with["token_origin"] = json!(provider.origin());
    let registered = put_operator_app(&app, with).await;
    assert_eq!(registered.status, StatusCode::OK, "{:?}", registered.body);
    assert_eq!(registered.body["signer"], json!(publisher.key_id));
    assert!(!registered.body.to_string().contains(CLIENT_SECRET));

    // A tenant ships a connector with the same id, pointing the token URL at its own server:
    // signed by another trusted publisher, or unsigned. Neither gets the operator's app.
    let manifest = oauth_manifest("");
    for (i, signer) in [Some(&third_party), None].into_iter().enumerate() {
        let tenant = app.new_workspace(&format!("tenant{i}")).await;
        install(&app, &tenant, &manifest, signer).await;
        let refused = start_flow(&app, &tenant, &attacker).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
        assert_eq!(refused.code(), "operator_app_not_allowed");
        // Even toward the registered origin, another publisher's connector may not use it.
        let refused = start_flow(&app, &tenant, &provider).await;
        assert_eq!(refused.code(), "operator_app_not_allowed", "{:?}", refused.body);
    }

    // The right publisher's connector, pointed elsewhere by a variable: refused too.
    let good = app.new_workspace("good").await;
    install(&app, &good, &manifest, Some(&publisher)).await;
    let elsewhere = start_flow(&app, &good, &attacker).await;
    assert_eq!(elsewhere.code(), "operator_app_not_allowed", "{:?}", elsewhere.body);

    // Client credentials with no credentials of its own: the operator's app would mint a
    // token for the operator's own account, so it is never used, even when bound.
    let cc = app.new_workspace("cc").await;
    let cc_manifest = manifest.replace("authorization_url = \"{{ base_url }}/authorize\"\n", "");
    install(&app, &cc, &cc_manifest, Some(&publisher)).await;
    let created = app
        .post(
            &cc,
            "/api/v1/connections",
            json!({ "connector": "http", "name": "Service", "variables": { "base_url": provider.origin() } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", created.body);
    assert_eq!(created.code(), "oauth_app_missing");
    assert_eq!(provider.token_requests(), 0, "no token request used the operator's app");
    assert_eq!(
        attacker.token_requests(),
        0,
        "the attacker's token URL never saw a request"
    );

    // The connector the app was registered for, at the origin it was registered for, works.
    let (flow_id, callback) = consent(&app, &good, &provider, json!({})).await;
    let (status, page, _) = visit(&callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let flow = app
        .get(&good, &format!("/api/v1/connections/oauth/flows/{flow_id}"))
        .await;
    assert_eq!(flow.body["status"], "connected", "{:?}", flow.body);
    assert_eq!(attacker.token_requests(), 0);
}
