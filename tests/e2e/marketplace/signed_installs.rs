//! Signed code only: the host checks signatures itself against its trusted publisher keys,
//! permissions are accepted explicitly and again when an upgrade (or a rollback forward)
//! widens them, and versions stay pinned with rollback.

use super::{permissions_of, strict_app};
use nexum_marketplace::signing::PublicKey;
use nexum_tests::app::TestApp;
use nexum_tests::bundles::{bundle, keys, manifest_with_version};
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(signed_installs_need_trust_and_accepted_permissions);

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
    let same = manifest_with_version("slack", "0.2.0");
    let wider = same.replacen(
        "allowed_hosts = [\"{{ api_base }}\"",
        "allowed_hosts = [\"{{ api_base }}\", \"https://edgeapi.slack.com\"",
        1,
    );
    assert_ne!(wider, same, "the manifest gained a host");
    let upgrade = bundle("slack", Some(&wider), Some(&publisher));
    let old_acceptance = app.install_bundle(&app.key, upgrade.clone(), Some(&perms)).await;
    assert_eq!(
        (old_acceptance.status, old_acceptance.code()),
        (StatusCode::CONFLICT, "permissions_widened")
    );
    assert_eq!(
        old_acceptance.body["errors"]["diff"]["added_hosts"],
        json!(["https://edgeapi.slack.com"])
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
