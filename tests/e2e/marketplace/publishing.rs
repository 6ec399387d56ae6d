//! Publishing versions: identical bytes are idempotent, a published version is immutable,
//! and only the namespace's own workspace publishes into it.

use super::{registered_publisher, restarted_strict};
use nexum_tests::app::TestApp;
use nexum_tests::bundles::{bundle, keys, manifest_with_version};
use reqwest::StatusCode;

on_both_databases!(
    published_versions_are_immutable,
    only_the_owning_workspace_publishes_into_a_namespace,
);

async fn published_versions_are_immutable(app: TestApp) {
    let k1 = keys();
    let app = restarted_strict(app, &[&k1]).await;
    registered_publisher(&app, &app.key, "acme", &k1).await;

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
    app.shutdown().await;
}

async fn only_the_owning_workspace_publishes_into_a_namespace(app: TestApp) {
    let k1 = keys();
    let app = restarted_strict(app, &[&k1]).await;
    registered_publisher(&app, &app.key, "acme", &k1).await;

    // Another workspace cannot publish into acme, even signed with acme's own key.
    let b = app.new_workspace("bravo").await;
    let foreign = app
        .publish(
            &b,
            "acme",
            bundle("slack", Some(&manifest_with_version("slack", "0.3.0")), Some(&k1)),
        )
        .await;
    assert_eq!(foreign.code(), "not_your_namespace");
    app.shutdown().await;
}
