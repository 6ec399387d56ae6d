//! Installing from this server's marketplace: the connector connects and executes, installs
//! and executions are counted, the bundle is downloadable by digest; a same-named connector
//! from another publisher cannot replace the install; a yanked version is not newly installed.

use super::{acme_slack, installed_acme_slack, permissions_of, restarted_strict};
use nexum_marketplace::bundle::Bundle;
use nexum_marketplace::signing::PublicKey;
use nexum_tests::app::TestApp;
use nexum_tests::bundles::{bundle, keys};
use nexum_tests::fakes::{self, SLACK_TOKEN};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_databases!(
    an_install_from_the_marketplace_runs_and_is_counted,
    another_publisher_cannot_replace_an_install,
    a_yanked_version_cannot_be_newly_installed,
);

async fn an_install_from_the_marketplace_runs_and_is_counted(app: TestApp) {
    let (k1, k2) = (keys(), keys());
    let app = restarted_strict(app, &[&k1, &k2]).await;
    let slack = fakes::slack().await;
    let v1 = acme_slack(&app, &k1, &k2).await;
    let b = app.new_workspace("bravo").await;

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
    app.shutdown().await;
}

async fn another_publisher_cannot_replace_an_install(app: TestApp) {
    let (k1, k2, k3) = (keys(), keys(), keys());
    let app = restarted_strict(app, &[&k1, &k2, &k3]).await;
    let perms = permissions_of(&acme_slack(&app, &k1, &k2).await);
    let b = app.new_workspace("bravo").await;
    installed_acme_slack(&app, &b, "0.1.0", &perms).await;

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
    app.shutdown().await;
}

async fn a_yanked_version_cannot_be_newly_installed(app: TestApp) {
    let (k1, k2) = (keys(), keys());
    let app = restarted_strict(app, &[&k1, &k2]).await;
    let perms = permissions_of(&acme_slack(&app, &k1, &k2).await);

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
