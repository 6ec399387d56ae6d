//! Credentials only to their bound hosts: refused on an allowed but unbound host, and dropped
//! when a redirect leaves the bound host.

use super::{SECRET, code, two_host_manifest};
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

#[tokio::test]
async fn credentials_go_only_to_their_bound_hosts() {
    let bound = fakes::upstream().await;
    let unbound = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("hostile", Some(&two_host_manifest()));
    let connection = host.connect(
        &connector,
        "conn_two",
        &[("upstream", &bound.origin()), ("other", &unbound.origin())],
        &[("token", &[("token", SECRET)])],
    );

    // Asking for the credential on an allowed but unbound host is refused before sending.
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": unbound.url("/echo"), "credential": "token" }),
        )
        .await;
    assert_eq!(code(&out.result), "credential_not_bound");
    assert!(unbound.requests().is_empty());

    // Without the credential the same host is fine.
    let out = host
        .run(&connector, &connection, "fetch", json!({ "url": unbound.url("/ok") }))
        .await;
    assert!(out.result.is_ok());

    // A redirect from the bound host to the unbound one is followed, without the secret.
    unbound.clear();
    let to = unbound.url("/echo");
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": bound.url(&format!("/redirect?to={to}")), "credential": "token" }),
        )
        .await;
    assert_eq!(out.result.expect("followed")["status"], 200);
    assert_eq!(
        bound.requests()[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let hop = &unbound.requests()[0];
    assert_eq!(hop.header("authorization"), None);
    assert!(!hop.everything_but("").contains(SECRET));
    assert_eq!(out.trace.http.len(), 2);
    assert_eq!(out.trace.http[1].credential, None);
}
