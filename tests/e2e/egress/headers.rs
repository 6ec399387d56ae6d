//! Host-only headers: connectors cannot set authentication, framing or proxy headers, an
//! API-key scheme's own header, or the encodings that could hide a secret in a compressed body.

use super::{SECRET, code, hostile};
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;

#[tokio::test]
async fn host_only_headers_cannot_be_set_by_connectors() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    for header in [
        "Authorization",
        "cookie",
        "Host",
        "Proxy-Authorization",
        "proxy-connection",
        "Transfer-Encoding",
    ] {
        let out = host
            .run(
                &connector,
                &connection,
                "fetch",
                json!({ "url": upstream.url("/echo"), "headers": [[header, "Bearer stolen"]] }),
            )
            .await;
        assert_eq!(code(&out.result), "header_forbidden", "{header}");
    }
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn an_api_key_scheme_header_is_host_only_too() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let manifest = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest")
        .replace(
            "type = \"bearer\"",
            "type = \"api_key\"\nin = \"header\"\nname = \"X-Api-Key\"",
        );
    let connector = host.load("hostile", Some(&manifest));
    let connection = host.connect(
        &connector,
        "conn_apikey",
        &[("upstream", &upstream.origin())],
        &[("token", &[("api_key", SECRET)])],
    );
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/echo"), "headers": [["x-api-key", "forged"]] }),
        )
        .await;
    assert_eq!(code(&out.result), "header_forbidden");
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/echo"), "credential": "token" }),
        )
        .await;
    assert!(out.result.is_ok());
    assert_eq!(upstream.requests()[0].header("x-api-key"), Some(SECRET));
}

#[tokio::test]
async fn compressed_bodies_that_could_hide_a_secret_are_refused() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let (connector, connection) = hostile(&host, &upstream.origin());
    for header in ["Accept-Encoding", "Range"] {
        let out = host
            .run(
                &connector,
                &connection,
                "fetch",
                json!({ "url": upstream.url("/echo"), "headers": [[header, "gzip"]] }),
            )
            .await;
        assert_eq!(code(&out.result), "header_forbidden", "{header}");
    }
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/gzip"), "credential": "token" }),
        )
        .await;
    assert_eq!(code(&out.result), "transport");
    assert!(out.result.expect_err("refused").to_string().contains("gzip"));
}
