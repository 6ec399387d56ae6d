//! Invariants 1 and 6: secrets never enter guest memory and never come back out — not
//! through an echoing upstream, response headers, errors, traces or logs. The HMAC operation
//! uses the secret without revealing it.

use hmac::{Hmac, KeyInit, Mac};
use nexum_tests::fakes;
use nexum_tests::host::{Network, TestHost};
use serde_json::json;
use sha2::Sha256;

const SECRET: &str = "tok_live_5f2b9c0e7d1a4b3c";

#[tokio::test]
async fn an_echoing_upstream_cannot_leak_the_token_to_the_connector() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("hostile", None);
    let connection = host.connect(
        &connector,
        "conn_echo",
        &[("upstream", &upstream.origin())],
        &[("token", &[("token", SECRET)])],
    );
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/echo"), "credential": "token" }),
        )
        .await;
    let output = out.result.expect("echo ok");
    // The upstream really received and reflected it…
    assert_eq!(
        upstream.requests()[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    // …but the connector saw only the redaction, in the body and in the reflected header.
    let text = output.to_string();
    assert!(!text.contains(SECRET), "secret reached the connector: {text}");
    assert!(output["body"].as_str().expect("body").contains("Bearer [REDACTED]"));
    let headers = output["headers"].as_array().expect("headers");
    assert!(
        headers
            .iter()
            .any(|h| h[0] == "x-echo-authorization" && h[1] == "Bearer [REDACTED]"),
        "{headers:?}"
    );
    // And neither the trace nor its JSON form carries it.
    assert!(!serde_json::to_string(&out.trace).expect("trace").contains(SECRET));
}

#[tokio::test]
async fn basic_auth_and_query_keys_are_scrubbed_in_every_encoding() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let base = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest");

    // A Basic scheme cannot declare `hmac = true`.
    let basic_manifest = base
        .replace("type = \"bearer\"", "type = \"basic\"")
        .replace("hmac = true", "");
    let basic = host.load("hostile", Some(&basic_manifest));
    let connection = host.connect(
        &basic,
        "conn_basic",
        &[("upstream", &upstream.origin())],
        &[("token", &[("username", "svc"), ("password", "pa ss/w0rd+")])],
    );
    let out = host
        .run(
            &basic,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/echo"), "credential": "token" }),
        )
        .await;
    let text = out.result.expect("ok").to_string();
    assert!(
        upstream.requests()[0]
            .header("authorization")
            .expect("auth")
            .starts_with("Basic ")
    );
    assert!(text.contains("Basic [REDACTED]"), "{text}");
    assert!(!text.contains("pa ss/w0rd+") && !text.contains("c3ZjOnBh"));

    upstream.clear();
    let query = host.load(
        "hostile",
        Some(&base.replace(
            "type = \"bearer\"",
            "type = \"api_key\"\nin = \"query\"\nname = \"key\"",
        )),
    );
    let connection = host.connect(
        &query,
        "conn_query",
        &[("upstream", &upstream.origin())],
        &[("token", &[("api_key", "k3y/with+chars")])],
    );
    let out = host
        .run(
            &query,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/echo?key=forged&x=1"), "credential": "token" }),
        )
        .await;
    let received = &upstream.requests()[0];
    assert_eq!(
        received.query.as_deref(),
        Some("x=1&key=k3y%2Fwith%2Bchars"),
        "the host's key replaces a forged one"
    );
    let text = out.result.expect("ok").to_string();
    assert!(
        !text.contains("k3y%2Fwith%2Bchars") && !text.contains("k3y/with+chars"),
        "{text}"
    );
    assert!(!out.trace.http[0].url.contains("k3y"), "{}", out.trace.http[0].url);
}

#[tokio::test]
async fn hmac_uses_the_secret_without_revealing_it() {
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("hostile", None);
    let connection = host.connect(&connector, "conn_hmac", &[], &[("token", &[("token", SECRET)])]);
    let out = host
        .run(
            &connector,
            &connection,
            "hmac",
            json!({ "scheme": "token", "data": "v0:1700000000:{\"a\":1}" }),
        )
        .await;
    let output = out.result.expect("hmac");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(b"v0:1700000000:{\"a\":1}");
    assert_eq!(output["hmac"], hex::encode(mac.finalize().into_bytes()));
    assert_eq!(output["label"], "test account");
    assert!(!output.to_string().contains(SECRET));

    let missing = host
        .run(
            &connector,
            &connection,
            "hmac",
            json!({ "scheme": "nope", "data": "x" }),
        )
        .await;
    assert_eq!(
        missing.result.expect_err("no such credential").code(),
        "missing_credential"
    );
}

#[tokio::test]
async fn hmac_is_refused_for_schemes_that_do_not_declare_it() {
    // Without `hmac = true`, a MAC keyed with a bearer token (or a password) sent to a host
    // the secret is not bound to would let that host attack the secret offline.
    let host = TestHost::new(Network::LoopbackAllowed);
    let manifest = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest");
    assert!(manifest.contains("hmac = true"));
    let connector = host.load("hostile", Some(&manifest.replace("hmac = true", "")));
    let connection = host.connect(&connector, "conn_nohmac", &[], &[("token", &[("token", SECRET)])]);
    let out = host
        .run(
            &connector,
            &connection,
            "hmac",
            json!({ "scheme": "token", "data": "x" }),
        )
        .await;
    let err = out.result.expect_err("HMAC with an undeclared scheme");
    assert!(err.to_string().contains("hmac = true"), "{err}");
    assert!(!err.to_string().contains(SECRET));
}

#[tokio::test]
async fn errors_and_logs_from_upstream_are_scrubbed() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("http", None);
    let connection = host.connect(
        &connector,
        "conn_err",
        &[("base_url", &upstream.origin())],
        &[("api", &[("token", SECRET)])],
    );
    // The connector's output is built from an upstream answer containing the token.
    let out = host
        .run(&connector, &connection, "request", json!({ "url": "/echo" }))
        .await;
    assert!(!format!("{:?}", out.result).contains(SECRET));
    assert!(!format!("{:?}", out.trace).contains(SECRET));
}

fn two_host_manifest() -> String {
    nexum_tests::plugins::two_host_hostile_manifest()
}

#[tokio::test]
async fn no_redaction_oracle_on_responses_from_hosts_the_secret_is_not_bound_to() {
    // A connector sends a guess to an echo on an allowed host the credential is not bound to.
    // If the echo came back `[REDACTED]` the connector would learn its guess was the secret;
    // it must come back exactly as sent (the connector knew that string already).
    let bound = fakes::upstream().await;
    let unbound = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("hostile", Some(&two_host_manifest()));
    let connection = host.connect(
        &connector,
        "conn_oracle",
        &[("upstream", &bound.origin()), ("other", &unbound.origin())],
        &[("token", &[("token", SECRET)])],
    );
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": unbound.url(&format!("/echo?guess={SECRET}")) }),
        )
        .await;
    let output = out.result.expect("echo ok");
    assert_eq!(
        output["saw_redaction"],
        json!(false),
        "the connector saw its guess redacted, so it learned the secret: {output}"
    );
    assert!(unbound.requests()[0].header("authorization").is_none());
    // The copies that leave the call are scrubbed all the same.
    assert!(!output.to_string().contains(SECRET), "{output}");
    assert!(!serde_json::to_string(&out.trace).expect("trace").contains(SECRET));
}

#[tokio::test]
async fn a_bound_hosts_echo_is_scrubbed_even_without_the_credential() {
    // A host the credential is bound to may hold the secret and echo it to any request, so
    // its answers are scrubbed even when this request did not carry the credential.
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("hostile", None);
    let connection = host.connect(
        &connector,
        "conn_bound_echo",
        &[("upstream", &upstream.origin())],
        &[("token", &[("token", SECRET)])],
    );
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url(&format!("/echo?stored={SECRET}")) }),
        )
        .await;
    let output = out.result.expect("echo ok");
    assert!(upstream.requests()[0].header("authorization").is_none());
    assert_eq!(output["saw_redaction"], json!(true), "{output}");
    assert!(
        output["body"].as_str().expect("body").contains("stored=[REDACTED]"),
        "{output}"
    );
}

#[tokio::test]
async fn errors_about_what_the_connector_wrote_are_no_redaction_oracle() {
    // Refusals that quote the connector's own URL or header name come back to it as written:
    // were the secret scrubbed out of them, it could test guesses with no request ever sent.
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("hostile", None);
    let connection = host.connect(
        &connector,
        "conn_error_oracle",
        &[("upstream", &upstream.origin())],
        &[("token", &[("token", SECRET)])],
    );
    let guesses = [
        (
            "host_not_allowed",
            json!({ "url": format!("https://not-allowed.invalid/{SECRET}"), "report_error": true }),
        ),
        (
            "invalid_request",
            json!({
                "url": upstream.url("/ok"),
                "headers": [[format!("bad name {SECRET}"), "v"]],
                "report_error": true,
            }),
        ),
    ];
    for (code, input) in guesses {
        let out = host.run(&connector, &connection, "fetch", input).await;
        let output = out.result.expect("reported");
        assert_eq!(output["error"], code, "{output}");
        assert_eq!(
            output["saw_redaction"],
            json!(false),
            "the connector saw its guess redacted in an error: {output}"
        );
        // What leaves the call (its output, its trace) is scrubbed as ever.
        assert!(
            output["message"].as_str().expect("message").contains("[REDACTED]"),
            "{output}"
        );
        assert!(!output.to_string().contains(SECRET), "{output}");
        assert!(!serde_json::to_string(&out.trace).expect("trace").contains(SECRET));
    }
    assert!(upstream.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_redirect_echoing_a_guess_is_no_redaction_oracle() {
    // A host that never had the secret redirects to a URL carrying the connector's guess: the
    // redirect is followed like any other (refusing it only for the right guess would answer
    // the guess). From a host bound to the credential, which may hold the secret, it is
    // refused as before.
    let bound = fakes::upstream().await;
    let unbound = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let connector = host.load("hostile", Some(&two_host_manifest()));
    let connection = host.connect(
        &connector,
        "conn_redirect_oracle",
        &[("upstream", &bound.origin()), ("other", &unbound.origin())],
        &[("token", &[("token", SECRET)])],
    );
    let to = unbound.url(&format!("/echo?g={SECRET}"));
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": unbound.url(&format!("/redirect?to={to}")) }),
        )
        .await;
    let output = out.result.expect("redirect followed");
    assert_eq!(output["status"], 200, "{output}");
    assert_eq!(output["saw_redaction"], json!(false), "{output}");
    assert_eq!(unbound.requests().len(), 2);
    assert!(!output.to_string().contains(SECRET), "{output}");
    assert!(!serde_json::to_string(&out.trace).expect("trace").contains(SECRET));

    unbound.clear();
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": bound.url(&format!("/redirect?to={to}")) }),
        )
        .await;
    let err = out
        .result
        .expect_err("a bound host's redirect carrying the secret is refused");
    assert_eq!(err.code(), "transport");
    assert!(unbound.requests().is_empty());
}

/// A webhook URL that is itself the secret (`in = "path"`): the host appends the key to the
/// declared path only, accepts the whole pasted URL, and the key never shows.
#[tokio::test]
async fn a_path_key_completes_only_its_own_path_and_never_shows() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let base = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest");
    let manifest = base
        .replace(
            "type = \"bearer\"",
            "type = \"api_key\"\nin = \"path\"\nname = \"/hooks/\"",
        )
        .replace("hmac = true", "");
    let connector = host.load("hostile", Some(&manifest));
    const KEY: &str = "T0001/B0002/s3cretPathKey9";
    // The admin pasted the whole URL; the host keeps the part after the prefix.
    let pasted = format!("{}/hooks/{KEY}", upstream.origin());
    let connection = host.connect(
        &connector,
        "conn_path",
        &[("upstream", &upstream.origin())],
        &[("token", &[("api_key", &pasted)])],
    );
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/hooks/?wait=true"), "credential": "token", "method": "POST", "body": "hi" }),
        )
        .await;
    let output = out.result.expect("sent");
    let received = &upstream.requests()[0];
    assert_eq!(received.path, format!("/hooks/{KEY}"));
    assert_eq!(received.query.as_deref(), Some("wait=true"));
    assert_eq!(received.header("authorization"), None);
    assert!(!output.to_string().contains("s3cretPathKey9"), "{output}");
    let trace = serde_json::to_string(&out.trace).expect("trace");
    assert!(!trace.contains("s3cretPathKey9"), "{trace}");

    // Anywhere else on the same host the key is not appended: the request is refused.
    for path in ["/other/", "/hooks/extra", "/hooks", "/hooks/../hooks/x/"] {
        let out = host
            .run(
                &connector,
                &connection,
                "fetch",
                json!({ "url": upstream.url(path), "credential": "token", "report_error": true }),
            )
            .await;
        let output = out.result.expect("reported");
        assert_eq!(output["error"], "invalid_request", "{path}: {output}");
    }
    assert_eq!(upstream.requests().len(), 1, "nothing else was sent");

    // A value that could climb out of the prefix is refused when the connection is made.
    for bad in [
        "../admin/x",
        "T0001//B",
        "a/./b",
        "x?y=1",
        "https://evil.example/other/T/B/X",
    ] {
        let manifest = nexum_manifest::Manifest::parse(&manifest).expect("manifest");
        let scheme = manifest.auth_scheme("token").expect("scheme");
        let fields = std::collections::BTreeMap::from([("api_key".to_string(), bad.to_string())]);
        assert!(
            nexum_host::vault::Credential::from_fields(scheme, &fields, "").is_err(),
            "{bad} was accepted"
        );
    }
}

/// A `type = "secret"` credential keys HMACs and is never sent anywhere, even when the
/// connector attaches it to a request.
#[tokio::test]
async fn a_signing_secret_keys_hmacs_but_never_travels() {
    let upstream = fakes::upstream().await;
    let host = TestHost::new(Network::LoopbackAllowed);
    let base = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest");
    let manifest = base
        .replace("type = \"bearer\"", "type = \"secret\"")
        .replace("hosts = [\"{{ upstream }}\"]\nhmac = true", "");
    assert!(
        manifest.contains("type = \"secret\"") && !manifest.contains("hmac = true"),
        "{manifest}"
    );
    let connector = host.load("hostile", Some(&manifest));
    const SIGNING: &str = "whsec_signing_9d8c7b6a5f4e";
    let connection = host.connect(
        &connector,
        "conn_signing",
        &[("upstream", &upstream.origin())],
        &[("token", &[("secret", SIGNING)])],
    );
    let out = host
        .run(
            &connector,
            &connection,
            "hmac",
            json!({ "scheme": "token", "data": "payload" }),
        )
        .await;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SIGNING.as_bytes()).expect("key");
    mac.update(b"payload");
    assert_eq!(
        out.result.expect("hmac")["hmac"],
        hex::encode(mac.finalize().into_bytes())
    );
    let out = host
        .run(
            &connector,
            &connection,
            "fetch",
            json!({ "url": upstream.url("/echo"), "credential": "token", "report_error": true }),
        )
        .await;
    assert_eq!(out.result.expect("reported")["error"], "credential_not_bound");
    assert!(upstream.requests().is_empty(), "a signing secret went out");
}
