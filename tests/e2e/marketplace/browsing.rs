//! Browsing the catalogue: public (no key), searched by text, category and sort, each
//! package with its latest version, that version's permissions and all its versions.

use super::{acme_slack, restarted_strict};
use nexum_tests::app::TestApp;
use nexum_tests::bundles::keys;
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(the_catalogue_is_public_and_searchable);

async fn the_catalogue_is_public_and_searchable(app: TestApp) {
    let (k1, k2) = (keys(), keys());
    let app = restarted_strict(app, &[&k1, &k2]).await;
    acme_slack(&app, &k1, &k2).await;

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
    assert_eq!(
        pkg["permissions"]["allowed_hosts"],
        json!(["{{ api_base }}", "{{ files_base }}", "{{ hooks_base }}"])
    );
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
    // A cursor at the end of u64 is past the last page, not an overflow.
    let far = app
        .request(
            reqwest::Method::GET,
            "/api/v1/marketplace/packages?cursor=18446744073709551615",
            None,
            None,
        )
        .await;
    assert_eq!(far.status, StatusCode::OK, "{:?}", far.body);
    assert_eq!(far.body["data"], json!([]));
    app.shutdown().await;
}

/// Endpoints that need no key are limited per client address; keyed ones are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_catalogue_is_rate_limited_per_address() {
    let app = TestApp::start_with(nexum_tests::app::Backend::Sqlite, |c| {
        c.public_rate_limit_per_minute = 3
    })
    .await;
    let browse = || app.request(reqwest::Method::GET, "/api/v1/marketplace/packages", None, None);
    for _ in 0..3 {
        assert_eq!(browse().await.status, StatusCode::OK);
    }
    let refused = browse().await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.code(), "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(app.get(&app.key, "/api/v1/connections").await.status, StatusCode::OK);
    app.shutdown().await;
}
