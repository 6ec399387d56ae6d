//! Invariant 4, signed code only, and the marketplace: signatures checked by the host
//! itself, permissions accepted explicitly (and again when an upgrade widens them), pinned
//! versions with rollback, publishing rules, browsing, installs from a (possibly malicious)
//! marketplace, reviews and usage counts.

use axum::Router;
use axum::routing::get;
use nexum_marketplace::bundle::Bundle;

use nexum_marketplace::permissions::Permissions;
use nexum_marketplace::signing::{KeyPairText, PublicKey};
use nexum_tests::app::{Backend, TestApp};
use nexum_tests::bundles::{bundle, keys, manifest_with_version};
use nexum_tests::fakes::{self, SLACK_TOKEN};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_databases!(
    signed_installs_need_trust_and_accepted_permissions,
    publish_browse_install_review
);

fn key_line(k: &KeyPairText) -> String {
    PublicKey::parse(&k.public).expect("pub").base64
}

fn permissions_of(bundle: &[u8]) -> Permissions {
    Permissions::of(&Bundle::parse(bundle).expect("bundle").manifest)
}

/// A strict host (no unsigned dev flag) trusting `trusted`.
async fn strict_app(backend: Backend, trusted: &[&KeyPairText]) -> TestApp {
    let keys: Vec<String> = trusted.iter().map(|k| key_line(k)).collect();
    TestApp::start_with(backend, |c| {
        c.allow_unsigned_connectors = false;
        c.trusted_publisher_keys = keys;
    })
    .await
}

async fn signed_installs_need_trust_and_accepted_permissions(app: TestApp) {
    let backend = app.backend;
    app.shutdown().await;
    let publisher = keys();
    let app = strict_app(backend, &[&publisher]).await;
    let signed = bundle("slack", None, Some(&publisher));
    let perms = permissions_of(&signed);

    let unsigned = app
        .install_bundle(&app.key, bundle("slack", None, None), Some(&perms))
        .await;
    assert_eq!(
        (unsigned.status, unsigned.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unsigned_bundle")
    );
    let raw = app.install(&app.key, "slack").await;
    assert_eq!(raw.code(), "unsigned_bundle", "raw uploads are unsigned too");
    let stranger = app
        .install_bundle(&app.key, bundle("slack", None, Some(&keys())), Some(&perms))
        .await;
    assert_eq!(stranger.code(), "untrusted_publisher");
    let mut tampered = signed.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x20;
    let tampered = app.install_bundle(&app.key, tampered, Some(&perms)).await;
    assert_eq!(tampered.status, StatusCode::UNPROCESSABLE_ENTITY);

    let unaccepted = app.install_bundle(&app.key, signed.clone(), None).await;
    assert_eq!(unaccepted.code(), "permissions_not_accepted");
    assert_eq!(
        unaccepted.body["errors"]["permissions"],
        serde_json::to_value(&perms).expect("json")
    );
    assert_eq!(
        app.get(&app.key, "/api/v1/connectors").await.body["data"],
        json!([]),
        "nothing was installed"
    );

    let installed = app.install_bundle(&app.key, signed, Some(&perms)).await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    assert_eq!(
        installed.body["signer"],
        PublicKey::parse(&publisher.public).expect("pub").key_id
    );
    let id = installed.body["id"].as_str().expect("id").to_string();

    // 0.2.0 asks for a new host: refused until the admin accepts the diff.
    let wider = manifest_with_version("slack", "0.2.0").replace(
        "allowed_hosts = [\"{{ api_base }}\"]",
        "allowed_hosts = [\"{{ api_base }}\", \"https://files.slack.com\"]",
    );
    let upgrade = bundle("slack", Some(&wider), Some(&publisher));
    let old_acceptance = app.install_bundle(&app.key, upgrade.clone(), Some(&perms)).await;
    assert_eq!(
        (old_acceptance.status, old_acceptance.code()),
        (StatusCode::CONFLICT, "permissions_widened")
    );
    assert_eq!(
        old_acceptance.body["errors"]["diff"]["added_hosts"],
        json!(["https://files.slack.com"])
    );
    assert_eq!(
        app.get(&app.key, &format!("/api/v1/connectors/{id}")).await.body["version"],
        "0.1.0",
        "still pinned"
    );
    let accepted = app
        .install_bundle(&app.key, upgrade.clone(), Some(&permissions_of(&upgrade)))
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{:?}", accepted.body);
    assert_eq!(accepted.body["version"], "0.2.0");
    assert_eq!(accepted.body["id"], id.as_str(), "an upgrade keeps the installation");

    let back = app
        .post(
            &app.key,
            &format!("/api/v1/connectors/{id}/rollback"),
            json!({ "version": "0.1.0" }),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{:?}", back.body);
    assert_eq!(back.body["version"], "0.1.0");
    // Forward again to 0.2.0 by rollback: that widens, so it needs acceptance too.
    let widen = app
        .post(
            &app.key,
            &format!("/api/v1/connectors/{id}/rollback"),
            json!({ "version": "0.2.0" }),
        )
        .await;
    assert_eq!(
        (widen.status, widen.code()),
        (StatusCode::CONFLICT, "permissions_widened")
    );
    let accepted = app
        .post(
            &app.key,
            &format!("/api/v1/connectors/{id}/rollback"),
            json!({ "version": "0.2.0", "accept_permissions": permissions_of(&upgrade) }),
        )
        .await;
    assert_eq!(accepted.body["version"], "0.2.0", "{:?}", accepted.body);
    let never = app
        .post(
            &app.key,
            &format!("/api/v1/connectors/{id}/rollback"),
            json!({ "version": "9.9.9" }),
        )
        .await;
    assert_eq!(never.code(), "unknown_version");
    app.shutdown().await;
}

async fn publish_browse_install_review(app: TestApp) {
    let backend = app.backend;
    app.shutdown().await;
    let (k1, k2, k3) = (keys(), keys(), keys());
    let app = strict_app(backend, &[&k1, &k2, &k3]).await;
    let slack = fakes::slack().await;

    let reg = app
        .post(
            &app.key,
            "/api/v1/marketplace/publishers",
            json!({ "namespace": "acme", "public_key": k1.public }),
        )
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{:?}", reg.body);
    let taken = app
        .post(
            &app.key,
            "/api/v1/marketplace/publishers",
            json!({ "namespace": "acme", "public_key": k2.public }),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);

    let v1 = bundle("slack", None, Some(&k1));
    let published = app.publish(&app.key, "acme", v1.clone()).await;
    assert_eq!(published.status, StatusCode::CREATED, "{:?}", published.body);
    assert_eq!(published.body["package"], "acme/slack");
    assert_eq!(
        app.publish(&app.key, "acme", v1.clone()).await.status,
        StatusCode::OK,
        "re-publishing identical bytes is idempotent"
    );
    let different = bundle(
        "slack",
        Some(&manifest_with_version("slack", "0.1.0").replace("Send, update", "Send and update")),
        Some(&k1),
    );
    let immutable = app.publish(&app.key, "acme", different).await;
    assert_eq!(immutable.status, StatusCode::CONFLICT);
    let other_key = app
        .publish(
            &app.key,
            "acme",
            bundle("slack", Some(&manifest_with_version("slack", "0.1.1")), Some(&k2)),
        )
        .await;
    assert_eq!(other_key.code(), "unknown_or_revoked_key");
    // Rotation: add k2, revoke k1; k1 can no longer publish, k2 can.
    assert_eq!(
        app.post(
            &app.key,
            "/api/v1/marketplace/publishers/acme/keys",
            json!({ "public_key": k2.public })
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let k1_id = PublicKey::parse(&k1.public).expect("pub").key_id;
    assert_eq!(
        app.delete(&app.key, &format!("/api/v1/marketplace/publishers/acme/keys/{k1_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let revoked = app
        .publish(
            &app.key,
            "acme",
            bundle("slack", Some(&manifest_with_version("slack", "0.1.1")), Some(&k1)),
        )
        .await;
    assert_eq!(revoked.code(), "unknown_or_revoked_key");
    let v2 = app
        .publish(
            &app.key,
            "acme",
            bundle("slack", Some(&manifest_with_version("slack", "0.2.0")), Some(&k2)),
        )
        .await;
    assert_eq!(v2.status, StatusCode::CREATED, "{:?}", v2.body);
    // Another workspace cannot publish into acme.
    let b = app.new_workspace("bravo").await;
    let foreign = app
        .publish(
            &b,
            "acme",
            bundle("slack", Some(&manifest_with_version("slack", "0.3.0")), Some(&k2)),
        )
        .await;
    assert_eq!(foreign.code(), "not_your_namespace");

    // Browse (public, no key).
    let found = app
        .request(
            reqwest::Method::GET,
            "/api/v1/marketplace/packages?q=slack&category=communication&sort=installs",
            None,
            None,
        )
        .await;
    assert_eq!(found.status, StatusCode::OK);
    let pkg = &found.body["data"][0];
    assert_eq!(pkg["package"], "acme/slack");
    assert_eq!(pkg["latest_version"], "0.2.0");
    assert_eq!(pkg["permissions"]["allowed_hosts"], json!(["{{ api_base }}"]));
    assert_eq!(pkg["versions"].as_array().map(Vec::len), Some(2));
    let none = app
        .request(
            reqwest::Method::GET,
            "/api/v1/marketplace/packages?q=nothing-like-this",
            None,
            None,
        )
        .await;
    assert_eq!(none.body["data"], json!([]));

    // Reviews need an install.
    let early = app
        .post(
            &b,
            "/api/v1/marketplace/packages/acme/slack/reviews",
            json!({ "stars": 5 }),
        )
        .await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::FORBIDDEN, "install_required")
    );

    // Install from the marketplace (this server's registry), connect, execute.
    let listing: Value = app.get(&b, "/api/v1/marketplace/packages/acme/slack").await.body;
    let digest_v1 = listing["versions"][0]["digest"].as_str().expect("digest").to_string();
    let perms = permissions_of(&v1);
    let installed = app
        .post(
            &b,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "acme/slack", "version": "0.1.0", "accept_permissions": perms }),
        )
        .await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    assert_eq!(installed.body["source"], "marketplace:acme/slack");
    let conn = app
        .post(&b, "/api/v1/connections", json!({ "connector": "slack", "name": "x", "credentials": { "token": SLACK_TOKEN }, "variables": { "api_base": slack.origin() } }))
        .await
        .body["id"]
        .as_str()
        .expect("conn")
        .to_string();
    let run = app
        .post(
            &b,
            &format!("/api/v1/connections/{conn}/actions/send_message"),
            json!({ "channel": "C1", "text": "from the marketplace" }),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK, "{:?}", run.body);
    app.state().recorder.flush(&app.state().db).await.expect("flush");
    let listing: Value = app.get(&b, "/api/v1/marketplace/packages/acme/slack").await.body;
    assert_eq!(listing["versions"][0]["installs"], 1);
    assert_eq!(listing["versions"][0]["executions"], 1);
    assert_eq!(listing["installs"], 1);
    let download = reqwest::get(format!("{}/api/v1/marketplace/bundles/{digest_v1}", app.base))
        .await
        .expect("download");
    assert_eq!(
        Bundle::parse(&download.bytes().await.expect("bytes"))
            .expect("bundle")
            .digest,
        digest_v1
    );

    // Reviews: one per user, editable, with the verified version; the publisher replies.
    let review = app
        .post(
            &b,
            "/api/v1/marketplace/packages/acme/slack/reviews",
            json!({ "stars": 4, "body": "works" }),
        )
        .await;
    assert_eq!(review.status, StatusCode::OK, "{:?}", review.body);
    assert_eq!(review.body["version"], "0.1.0");
    let edited = app
        .post(
            &b,
            "/api/v1/marketplace/packages/acme/slack/reviews",
            json!({ "stars": 2, "body": "flaky" }),
        )
        .await;
    assert_eq!(edited.body["id"], review.body["id"]);
    assert_eq!(
        app.post(
            &b,
            "/api/v1/marketplace/packages/acme/slack/reviews",
            json!({ "stars": 6 })
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let rid = review.body["id"].as_str().expect("id");
    let replied = app
        .post(
            &app.key,
            &format!("/api/v1/marketplace/packages/acme/slack/reviews/{rid}/reply"),
            json!({ "reply": "fixed in 0.2.0" }),
        )
        .await;
    assert_eq!(replied.status, StatusCode::NO_CONTENT);
    let reviews = app
        .request(
            reqwest::Method::GET,
            "/api/v1/marketplace/packages/acme/slack/reviews",
            None,
            None,
        )
        .await;
    assert_eq!(reviews.body["count"], 1);
    assert_eq!(reviews.body["average"], 2.0);
    assert_eq!(reviews.body["data"][0]["reply"], "fixed in 0.2.0");
    assert_eq!(reviews.body["data"][0]["verified_install_of"], "0.1.0");
    assert!(reviews.body["data"][0].get("workspace_id").is_none() && reviews.body["data"][0].get("author").is_none());
    // A second key of the same workspace is the same reviewer, not a second vote.
    let extra = app
        .post(
            &b,
            "/api/v1/api-keys",
            json!({ "name": "sock", "scopes": ["connections:read"] }),
        )
        .await
        .body["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(
        app.post(
            &extra,
            "/api/v1/marketplace/packages/acme/slack/reviews",
            json!({ "stars": 5 })
        )
        .await
        .status,
        StatusCode::OK
    );
    let reviews = app
        .request(
            reqwest::Method::GET,
            "/api/v1/marketplace/packages/acme/slack/reviews",
            None,
            None,
        )
        .await;
    assert_eq!(reviews.body["count"], 1, "one review per reviewer");

    // Another namespace publishing the same content with its own key: each version keeps
    // its own signature, and the same connector id cannot silently replace acme's install.
    let m = app.new_workspace("mallory").await;
    assert_eq!(
        app.post(
            &m,
            "/api/v1/marketplace/publishers",
            json!({ "namespace": "mallory", "public_key": k3.public })
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.publish(&m, "mallory", bundle("slack", None, Some(&k3)))
            .await
            .status,
        StatusCode::CREATED
    );
    let acme_copy = reqwest::get(format!(
        "{}/api/v1/marketplace/packages/acme/slack/versions/0.1.0/bundle",
        app.base
    ))
    .await
    .expect("get")
    .bytes()
    .await
    .expect("bytes");
    let acme_sig = Bundle::parse(&acme_copy).expect("bundle").signature.expect("signed");
    assert_eq!(
        nexum_marketplace::signing::signature_key_id(&acme_sig).expect("id"),
        PublicKey::parse(&k1.public).expect("pub").key_id
    );
    let takeover = app
        .post(
            &b,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "mallory/slack", "accept_permissions": perms }),
        )
        .await;
    assert_eq!(
        (takeover.status, takeover.code()),
        (StatusCode::CONFLICT, "publisher_changed"),
        "{:?}",
        takeover.body
    );
    // Remote marketplaces are fetched under the address policy.
    let ssrf = app
        .post(
            &b,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "acme/slack", "marketplace": "http://169.254.169.254", "accept_permissions": perms }),
        )
        .await;
    assert_eq!(ssrf.code(), "marketplace_address_blocked");
    let rated = app
        .request(
            reqwest::Method::GET,
            "/api/v1/marketplace/packages?sort=rating",
            None,
            None,
        )
        .await;
    assert_eq!(rated.body["data"][0]["rating"], 5.0);

    // A yanked version cannot be newly installed.
    assert_eq!(
        app.post(
            &app.key,
            "/api/v1/marketplace/packages/acme/slack/versions/0.1.0/yank",
            json!({})
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let c = app.new_workspace("charlie").await;
    let yanked = app
        .post(
            &c,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "acme/slack", "version": "0.1.0", "accept_permissions": perms }),
        )
        .await;
    assert_eq!(yanked.code(), "version_yanked");
    let latest = app
        .post(
            &c,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "acme/slack", "accept_permissions": perms }),
        )
        .await;
    assert_eq!(latest.status, StatusCode::CREATED, "{:?}", latest.body);
    assert_eq!(latest.body["version"], "0.2.0");
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
