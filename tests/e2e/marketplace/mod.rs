//! Invariant 4, signed code only, and the marketplace: signatures checked by the host
//! itself, permissions accepted explicitly (and again when an upgrade widens them), pinned
//! versions with rollback, publishing rules, browsing, installs from a (possibly malicious)
//! marketplace, reviews and usage counts.

use nexum_marketplace::bundle::Bundle;
use nexum_marketplace::permissions::Permissions;
use nexum_marketplace::signing::{KeyPairText, PublicKey};
use nexum_tests::app::{Backend, TestApp};
use nexum_tests::bundles::{bundle, manifest_with_version};
use reqwest::StatusCode;
use serde_json::json;

mod browsing;
mod catalogue;
mod installing;
mod publishers;
mod publishing;
mod remote;
mod reviews;
mod signed_installs;

pub(crate) fn key_line(k: &KeyPairText) -> String {
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

/// The scenario's host, shut down and started again strict, trusting `trusted`.
async fn restarted_strict(app: TestApp, trusted: &[&KeyPairText]) -> TestApp {
    let backend = app.backend;
    app.shutdown().await;
    strict_app(backend, trusted).await
}

/// `key`'s workspace registers `namespace` with `publisher`'s public key.
pub(crate) async fn registered_publisher(app: &TestApp, key: &str, namespace: &str, publisher: &KeyPairText) {
    let reg = app
        .post(
            key,
            "/api/v1/marketplace/publishers",
            json!({ "namespace": namespace, "public_key": publisher.public }),
        )
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{:?}", reg.body);
}

/// `bundle` published into `namespace` by `key`'s workspace, as a new version.
async fn published(app: &TestApp, key: &str, namespace: &str, bundle: Vec<u8>) {
    let published = app.publish(key, namespace, bundle).await;
    assert_eq!(published.status, StatusCode::CREATED, "{:?}", published.body);
}

/// `namespace` (owned by the instance key's workspace) rotates its keys: `new` is added, then
/// `old` is revoked.
async fn rotated(app: &TestApp, namespace: &str, old: &KeyPairText, new: &KeyPairText) {
    assert_eq!(
        app.post(
            &app.key,
            &format!("/api/v1/marketplace/publishers/{namespace}/keys"),
            json!({ "public_key": new.public })
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let old_id = PublicKey::parse(&old.public).expect("pub").key_id;
    assert_eq!(
        app.delete(
            &app.key,
            &format!("/api/v1/marketplace/publishers/{namespace}/keys/{old_id}")
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

/// acme/slack with a publisher's history behind it: `acme` registered by the instance key's
/// workspace with `k1`, 0.1.0 signed by `k1`, then `k1` rotated out for `k2`, which signs
/// 0.2.0. Returns the 0.1.0 bundle.
async fn acme_slack(app: &TestApp, k1: &KeyPairText, k2: &KeyPairText) -> Vec<u8> {
    registered_publisher(app, &app.key, "acme", k1).await;
    let v1 = bundle("slack", None, Some(k1));
    published(app, &app.key, "acme", v1.clone()).await;
    rotated(app, "acme", k1, k2).await;
    published(
        app,
        &app.key,
        "acme",
        bundle("slack", Some(&manifest_with_version("slack", "0.2.0")), Some(k2)),
    )
    .await;
    v1
}

/// `key`'s workspace installs acme/slack `version` from this server's marketplace, accepting
/// `perms`.
async fn installed_acme_slack(app: &TestApp, key: &str, version: &str, perms: &Permissions) {
    let installed = app
        .post(
            key,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "acme/slack", "version": version, "accept_permissions": perms }),
        )
        .await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
}
