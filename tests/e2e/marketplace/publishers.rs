//! Publishers: a namespace is registered once, and only its current keys publish into it,
//! across a key rotation.

use super::{published, registered_publisher, restarted_strict, rotated};
use nexum_tests::app::TestApp;
use nexum_tests::bundles::{bundle, keys, manifest_with_version};
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(
    a_namespace_is_registered_once,
    a_key_id_cannot_be_squatted,
    only_current_keys_publish_across_a_rotation,
);

async fn a_namespace_is_registered_once(app: TestApp) {
    let (k1, k2) = (keys(), keys());
    let app = restarted_strict(app, &[&k1, &k2]).await;

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
    app.shutdown().await;
}

/// A key the namespace never registered cannot publish; after a rotation the retired key
/// cannot either, and the new one can.
async fn only_current_keys_publish_across_a_rotation(app: TestApp) {
    let (k1, k2) = (keys(), keys());
    let app = restarted_strict(app, &[&k1, &k2]).await;
    registered_publisher(&app, &app.key, "acme", &k1).await;
    published(&app, &app.key, "acme", bundle("slack", None, Some(&k1))).await;

    let other_key = app
        .publish(
            &app.key,
            "acme",
            bundle("slack", Some(&manifest_with_version("slack", "0.1.1")), Some(&k2)),
        )
        .await;
    assert_eq!(other_key.code(), "unknown_or_revoked_key");
    // Rotation: add k2, revoke k1; k1 can no longer publish, k2 can.
    rotated(&app, "acme", &k1, &k2).await;
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
    app.shutdown().await;
}

/// Key ids are self-chosen: a publisher that registers a key claiming someone else's key id
/// first does not lock the rightful owner out of registering (and publishing with) it.
async fn a_key_id_cannot_be_squatted(app: TestApp) {
    use base64::Engine;
    use nexum_marketplace::signing::PublicKey;
    let real = keys();
    let app = restarted_strict(app, &[&real]).await;
    // A forged key: the victim's key id, other key bytes.
    let line = PublicKey::parse(&real.public).expect("public").base64;
    let mut raw = base64::engine::general_purpose::STANDARD.decode(&line).expect("base64");
    let last = raw.len() - 1;
    raw[last] ^= 0x55;
    let forged = base64::engine::general_purpose::STANDARD.encode(&raw);
    assert_eq!(PublicKey::parse(&forged).expect("parses").key_id, real.key_id);
    let squatter = app.new_workspace("squatter").await;
    let squat = app
        .post(
            &squatter,
            "/api/v1/marketplace/publishers",
            json!({ "namespace": "squat", "public_key": forged }),
        )
        .await;
    assert_eq!(squat.status, StatusCode::CREATED, "{:?}", squat.body);

    registered_publisher(&app, &app.key, "acme", &real).await;
    published(&app, &app.key, "acme", bundle("slack", None, Some(&real))).await;
    // The squatter cannot publish the victim's signed bundle as its own either.
    let stolen = app
        .publish(&squatter, "squat", bundle("slack", None, Some(&real)))
        .await;
    assert!(stolen.status.is_client_error(), "{:?}", stolen.body);
    app.shutdown().await;
}
