//! Reviews: only an installing workspace reviews, once (however many keys it mints), editable,
//! with the version it verifiably installed; the publisher replies; ratings sort the catalogue.

use super::{acme_slack, installed_acme_slack, permissions_of, published, registered_publisher, restarted_strict};
use nexum_tests::app::TestApp;
use nexum_tests::bundles::{bundle, keys};
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(
    reviews_need_an_install,
    one_editable_review_per_reviewer_with_the_publishers_reply,
);

async fn reviews_need_an_install(app: TestApp) {
    let (k1, k2) = (keys(), keys());
    let app = restarted_strict(app, &[&k1, &k2]).await;
    acme_slack(&app, &k1, &k2).await;
    let b = app.new_workspace("bravo").await;

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
    app.shutdown().await;
}

async fn one_editable_review_per_reviewer_with_the_publishers_reply(app: TestApp) {
    let (k1, k2, k3) = (keys(), keys(), keys());
    let app = restarted_strict(app, &[&k1, &k2, &k3]).await;
    let perms = permissions_of(&acme_slack(&app, &k1, &k2).await);
    let b = app.new_workspace("bravo").await;
    installed_acme_slack(&app, &b, "0.1.0", &perms).await;

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
            json!({ "name": "sock", "scopes": ["connections:read", "connections:write"] }),
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

    // Sorted by rating next to a package nobody rated, acme/slack comes first with the one
    // review it counts, as last edited.
    let m = app.new_workspace("mallory").await;
    registered_publisher(&app, &m, "mallory", &k3).await;
    published(&app, &m, "mallory", bundle("slack", None, Some(&k3))).await;
    let rated = app
        .request(
            reqwest::Method::GET,
            "/api/v1/marketplace/packages?sort=rating",
            None,
            None,
        )
        .await;
    assert_eq!(rated.body["data"][0]["rating"], 5.0);
    app.shutdown().await;
}
