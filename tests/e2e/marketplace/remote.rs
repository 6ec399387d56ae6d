//! Installing from a remote marketplace: fetched under the address policy, never trusted
//! (the host verifies publisher and digest itself), and a standalone registry serving only
//! the marketplace API.

use super::{permissions_of, restarted_strict, strict_app};
use axum::Router;
use axum::routing::get;
use nexum_marketplace::bundle::Bundle;
use nexum_tests::app::{Backend, TestApp};
use nexum_tests::bundles::{bundle, keys};
use nexum_tests::fakes;
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(remote_marketplaces_are_fetched_under_the_address_policy);

async fn remote_marketplaces_are_fetched_under_the_address_policy(app: TestApp) {
    let k1 = keys();
    let app = restarted_strict(app, &[&k1]).await;
    let perms = permissions_of(&bundle("slack", None, Some(&k1)));
    let b = app.new_workspace("bravo").await;

    // Remote marketplaces are fetched under the address policy.
    let ssrf = app
        .post(
            &b,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "acme/slack", "marketplace": "http://169.254.169.254", "accept_permissions": perms }),
        )
        .await;
    assert_eq!(ssrf.code(), "marketplace_address_blocked");
    app.shutdown().await;
}

/// A fake marketplace on loopback that lists `version` with `listed_digest` and serves `bytes`.
async fn fake_marketplace(listed_digest: String, bytes: Vec<u8>) -> fakes::Fake {
    let listing = json!({ "latest_version": "0.1.0", "versions": [{ "version": "0.1.0", "digest": listed_digest, "yanked": false }] });
    fakes::serve(
        Router::new()
            .route(
                "/api/v1/marketplace/packages/evil/slack",
                get(move || {
                    let l = listing.clone();
                    async move { axum::Json(l) }
                }),
            )
            .route(
                "/api/v1/marketplace/packages/evil/slack/versions/{version}/bundle",
                get(move || {
                    let b = bytes.clone();
                    async move { b }
                }),
            ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malicious_marketplace_is_refused() {
    let trusted = keys();
    let app = strict_app(Backend::Sqlite, &[&trusted]).await;
    // Signed by a key the host does not trust: the marketplace's word does not matter.
    let rogue = bundle("slack", None, Some(&keys()));
    let digest = Bundle::parse(&rogue).expect("bundle").digest;
    let perms = permissions_of(&rogue);
    let evil = fake_marketplace(digest, rogue).await;
    let refused = app
        .post(
            &app.key,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "evil/slack", "marketplace": evil.origin(), "accept_permissions": perms }),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "untrusted_publisher"),
        "{:?}",
        refused.body
    );

    // Correctly signed, but not the bundle the marketplace listed.
    let good = bundle("slack", None, Some(&trusted));
    let swapped = fake_marketplace("0".repeat(64), good).await;
    let refused = app
        .post(
            &app.key,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "evil/slack", "marketplace": swapped.origin(), "accept_permissions": perms }),
        )
        .await;
    assert_eq!(refused.code(), "digest_mismatch");
    assert_eq!(
        app.get(&app.key, "/api/v1/connectors").await.body["data"],
        json!([]),
        "nothing was installed"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_registry_serves_only_the_marketplace() {
    use nexum_host::config::Config;
    use nexum_host::server::{self, Server};
    let dir = tempfile::tempdir().expect("dir");
    let env = std::collections::HashMap::from([
        ("NEXUM_DATA_DIR".to_string(), dir.path().display().to_string()),
        ("NEXUM_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ("NEXUM_HEALTH_CHECK_INTERVAL_SECS".to_string(), "0".to_string()),
    ]);
    let config = Config::load(None, |k| env.get(k).cloned()).expect("config");
    let state = server::build_state(config).await.expect("state");
    let key = server::bootstrap(&state).await.expect("bootstrap").expect("first key");
    let registry = Server::start_surface(state, nexum_host::api::Surface::MarketplaceOnly)
        .await
        .expect("start");
    let base = format!("http://{}", registry.addr);
    let client = reqwest::Client::new();

    let publisher = keys();
    let reg = client
        .post(format!("{base}/api/v1/marketplace/publishers"))
        .bearer_auth(&key)
        .json(&json!({ "namespace": "solo", "public_key": publisher.public }))
        .send()
        .await
        .expect("register");
    assert_eq!(reg.status(), StatusCode::CREATED);
    let published = client
        .post(format!("{base}/api/v1/marketplace/packages?namespace=solo"))
        .bearer_auth(&key)
        .body(bundle("slack", None, Some(&publisher)))
        .send()
        .await
        .expect("publish");
    assert_eq!(published.status(), StatusCode::CREATED);
    let listing = client
        .get(format!("{base}/api/v1/marketplace/packages/solo/slack"))
        .send()
        .await
        .expect("get");
    assert_eq!(listing.status(), StatusCode::OK);
    // The rest of the API is not served by a standalone registry.
    let other = client
        .get(format!("{base}/api/v1/connections"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    // A host elsewhere installs from it, verifying the publisher itself.
    let host = strict_app(Backend::Sqlite, &[&publisher]).await;
    let perms = permissions_of(&bundle("slack", None, Some(&publisher)));
    let installed = host
        .post(
            &host.key,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "solo/slack", "marketplace": base, "accept_permissions": perms }),
        )
        .await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    assert_eq!(installed.body["source"], "marketplace:solo/slack");
    host.shutdown().await;
    registry.shutdown().await;
}
