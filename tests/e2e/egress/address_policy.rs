//! The address policy, judged after DNS: loopback only when the operator allows it, and
//! cloud metadata and private ranges never, refused before anything is sent.

use super::{SECRET, code, hostile};
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

#[tokio::test]
async fn loopback_is_refused_unless_the_operator_allows_it() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::Public);
    let (connector, connection) = hostile(&host, &upstream.origin());
    let out = host
        .run(&connector, &connection, "fetch", json!({ "url": upstream.url("/ok") }))
        .await;
    assert_eq!(code(&out.result), "address_blocked");

    // A host name is judged by what it resolves to, not by how it is spelled.
    let manifest = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest");
    let by_name = host.load("hostile", Some(&manifest));
    let localhost = format!("http://localhost:{}", upstream.addr.port());
    let connection = host.connect(&by_name, "conn_localhost", &[("upstream", &localhost)], &[]);
    let out = host
        .run(
            &by_name,
            &connection,
            "fetch",
            json!({ "url": format!("{localhost}/ok") }),
        )
        .await;
    assert_eq!(code(&out.result), "address_blocked");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn cloud_metadata_is_refused_even_when_loopback_is_allowed() {
    let host = TestHost::new(Network::LoopbackAllowed);
    for target in [
        "http://169.254.169.254",
        "http://[::ffff:169.254.169.254]",
        "http://10.0.0.1",
        "http://[fd00:ec2::254]",
    ] {
        let (connector, connection) = hostile(&host, target);
        let out = host
            .run(
                &connector,
                &connection,
                "fetch",
                json!({ "url": format!("{target}/latest/meta-data/"), "credential": "token" }),
            )
            .await;
        assert_eq!(code(&out.result), "address_blocked", "{target}");
        assert!(
            out.trace.http.is_empty(),
            "{target}: refused before any request was sent"
        );
        let message = out.result.expect_err("blocked").to_string();
        assert!(!message.contains(SECRET));
    }
}
