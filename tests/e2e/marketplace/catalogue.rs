//! The built-in catalogue: every first-party connector is listed under `nexum` once the
//! server has seeded, installs on a strict host (no unsigned flag, no trusted keys) because
//! the binary pins its digest, and a registry row swapped after seeding is refused.

use super::{permissions_of, strict_app};
use nexum_host::marketplace::catalogue;
use nexum_tests::app::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every connector directory the catalogue must ship (the list).
const EXPECTED: &[&str] = &[
    "discord",
    "dropbox",
    "gdrive",
    "github",
    "gmail",
    "gohighlevel",
    "http",
    "hubspot",
    "openai",
    "outlook",
    "salesforce",
    "sendgrid",
    "slack",
    "smtp",
    "stripe",
    "twilio",
    "webhook",
];

fn built_in(id: &str) -> &'static nexum_marketplace::bundle::Bundle {
    catalogue::bundles()
        .iter()
        .find(|b| b.manifest.id == id)
        .expect("in the catalogue")
}

async fn listed(app: &TestApp) -> Vec<String> {
    let page = app.get(&app.key, "/api/v1/marketplace/packages?limit=100").await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    let mut names: Vec<String> = page.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|p| p["namespace"] == "nexum")
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

async fn the_catalogue_is_listed_and_installs_on_a_strict_host(app: TestApp) {
    let backend = app.backend;
    app.shutdown().await;
    let app = strict_app(backend, &[]).await;
    assert!(listed(&app).await.is_empty(), "nothing is listed before seeding");
    let seeded = catalogue::seed(app.state()).await.expect("seed");
    assert_eq!(seeded.added.len(), EXPECTED.len(), "{seeded:?}");
    assert_eq!(listed(&app).await, EXPECTED);
    // Seeding again (every start) changes nothing.
    let again = catalogue::seed(app.state()).await.expect("seed again");
    assert!(again.added.is_empty() && again.conflicting.is_empty(), "{again:?}");
    assert_eq!(again.unchanged.len(), EXPECTED.len());

    // Installable without the unsigned flag: the binary pins these digests.
    let listing: Value = app.get(&app.key, "/api/v1/marketplace/packages/nexum/slack").await.body;
    let digest = listing["versions"][0]["digest"].as_str().expect("digest").to_string();
    let bytes = built_in("slack").to_bytes().expect("bytes");
    let installed = app
        .post(
            &app.key,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "nexum/slack", "accept_permissions": permissions_of(&bytes) }),
        )
        .await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    assert_eq!(installed.body["source"], "marketplace:nexum/slack");
    assert_eq!(installed.body["signer"], "builtin");
    let versions = app.get(&app.key, "/api/v1/marketplace/packages/nexum/slack").await.body;
    assert_eq!(
        versions["versions"][0]["digest"], digest,
        "the version installed is the pinned one"
    );
    assert_eq!(versions["versions"][0]["signer"], "builtin");
    app.shutdown().await;
}

async fn a_swapped_catalogue_bundle_is_refused(app: TestApp) {
    let backend = app.backend;
    app.shutdown().await;
    let app = strict_app(backend, &[]).await;
    catalogue::seed(app.state()).await.expect("seed");
    // Someone with write access to the registry swaps nexum/http's bundle for other bytes
    // (consistently: new digest row, version pointing at it).
    let parsed = built_in("http");
    let mut files = parsed.files.clone();
    files.insert("README.md".into(), b"# HTTP, now with a surprise".to_vec());
    let swapped = nexum_marketplace::bundle::pack(&files, None).expect("pack");
    let digest = nexum_marketplace::bundle::Bundle::parse(&swapped)
        .expect("swapped")
        .digest;
    let db = app.state().db.pool();
    sqlx::query("INSERT INTO bundles (digest, bytes, created_at) VALUES ($1, $2, 0)")
        .bind(&digest)
        .bind(&swapped)
        .execute(db)
        .await
        .expect("insert bundle");
    sqlx::query("UPDATE package_versions SET digest = $1 WHERE digest = $2")
        .bind(&digest)
        .bind(&parsed.digest)
        .execute(db)
        .await
        .expect("point the version at it");
    let refused = app
        .post(
            &app.key,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": "nexum/http", "accept_permissions": permissions_of(&swapped) }),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unsigned_bundle"),
        "{:?}",
        refused.body
    );
    app.shutdown().await;
}

async fn no_workspace_can_take_the_catalogue_namespace(app: TestApp) {
    catalogue::seed(app.state()).await.expect("seed");
    let keys = nexum_marketplace::signing::generate_keypair().expect("keys");
    let taken = app
        .post(
            &app.key,
            "/api/v1/marketplace/publishers",
            json!({ "namespace": "nexum", "public_key": keys.public }),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{:?}", taken.body);
    // Nor publish into it: the namespace belongs to no workspace.
    let publish = app
        .post_raw(
            &app.key,
            "/api/v1/marketplace/packages?namespace=nexum",
            nexum_tests::bundles::bundle("slack", None, None),
            &[("content-type", "application/octet-stream")],
        )
        .await;
    assert_eq!(publish.status, StatusCode::FORBIDDEN, "{:?}", publish.body);
    app.shutdown().await;
}

on_both_databases!(
    the_catalogue_is_listed_and_installs_on_a_strict_host,
    a_swapped_catalogue_bundle_is_refused,
    no_workspace_can_take_the_catalogue_namespace,
);

#[test]
fn the_binary_pins_exactly_its_catalogue() {
    let digests = catalogue::digests();
    assert_eq!(digests.len(), EXPECTED.len());
    let mut ids: Vec<String> = catalogue::bundles().iter().map(|b| b.manifest.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, EXPECTED);
}
