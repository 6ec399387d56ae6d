//! The Dropbox connector against fake Dropbox RPC and content hosts: uploads go to the
//! content host with the bytes as the body and the arguments in `Dropbox-API-Arg` (pure
//! ASCII, non-ASCII escaped as `\uXXXX` and decoded back to the same path), RPC calls to the
//! API host with the exact JSON bodies, folder listings page with the cursor, an existing
//! shared link is returned, the token goes only in `Authorization: Bearer` and never to the
//! token endpoint, Dropbox's `error_summary` tags become stable codes, and the manifest
//! declares Dropbox's sign-in (PKCE, offline access, the token endpoint bound).

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The access token the tests connect with.
const TOKEN: &str = "sl.fake-dropbox-access-token-u7Kq2";
/// A token the fake reports as expired.
const EXPIRED: &str = "sl.fake-dropbox-expired-token-0000";
/// The scopes the consent page must receive.
const SCOPES: &str = "account_info.read files.metadata.read files.content.read files.content.write sharing.write";
/// A shared link as Dropbox returns it.
const LINK: &str = "https://www.dropbox.com/scl/fi/k2b9x1fakelink/q1.pdf?rlkey=fake0rlkey&dl=0";

/// The fake's answer to a bad or expired token, or `None` for [`TOKEN`].
fn auth_failure(headers: &HeaderMap) -> Option<Response> {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if given == Some(format!("Bearer {TOKEN}").as_str()) {
        return None;
    }
    let tag = if given == Some(format!("Bearer {EXPIRED}").as_str()) {
        "expired_access_token"
    } else {
        "invalid_access_token"
    };
    Some(dropbox_error(
        StatusCode::UNAUTHORIZED,
        &format!("{tag}/.."),
        json!({ ".tag": tag }),
    ))
}

/// Dropbox's JSON error.
fn dropbox_error(status: StatusCode, summary: &str, error: Value) -> Response {
    (status, axum::Json(json!({ "error_summary": summary, "error": error }))).into_response()
}

/// Dropbox's answer to a malformed call: 400 with plain text.
fn bad_input(function: &str, problem: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Error in call to API function \"{function}\": {problem}"),
    )
        .into_response()
}

fn not_found() -> Response {
    dropbox_error(
        StatusCode::CONFLICT,
        "path/not_found/..",
        json!({ ".tag": "path", "path": { ".tag": "not_found" } }),
    )
}

/// A shared link's metadata.
fn link_metadata(url: &str, name: &str, path_lower: &str) -> Value {
    json!({
        ".tag": "file",
        "url": url,
        "id": "id:a4ayc_80_OEAAAAAAAAAXw",
        "name": name,
        "path_lower": path_lower,
        "expires": "2025-12-31T23:59:59Z",
        "link_permissions": {
            "can_revoke": true,
            "effective_audience": { ".tag": "public" },
            "resolved_visibility": { ".tag": "password" },
        },
        "client_modified": "2025-03-01T10:00:00Z",
        "server_modified": "2025-03-01T10:00:01Z",
        "rev": "5e4b1f0a2c3d",
        "size": 7212,
    })
}

/// `files/upload` on the content host: the path comes from `Dropbox-API-Arg` (a JSON
/// document, as Dropbox decodes it) and picks an error.
async fn upload(headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = auth_failure(&headers) {
        return refused;
    }
    let Some(arg) = headers
        .get("dropbox-api-arg")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
    else {
        return bad_input("files/upload", "Dropbox-API-Arg is missing or not JSON");
    };
    let path = arg["path"].as_str().unwrap_or_default().to_string();
    match path.as_str() {
        "/exists.txt" => {
            return dropbox_error(
                StatusCode::CONFLICT,
                "path/conflict/file/..",
                json!({ ".tag": "path", "reason": { ".tag": "conflict", "conflict": { ".tag": "file" } }, "upload_session_id": "AAAAAAAAAJ" }),
            );
        }
        "/full.bin" => {
            return dropbox_error(
                StatusCode::CONFLICT,
                "path/insufficient_space/...",
                json!({ ".tag": "path", "reason": { ".tag": "insufficient_space" }, "upload_session_id": "AAAAAAAAAK" }),
            );
        }
        "/noscope.txt" => {
            return dropbox_error(
                StatusCode::UNAUTHORIZED,
                "missing_scope/..",
                json!({ ".tag": "missing_scope", "required_scope": "files.content.write" }),
            );
        }
        _ => {}
    }
    let name = path.rsplit('/').next().unwrap_or_default().to_string();
    axum::Json(json!({
        "name": name,
        "id": "id:a4ayc_80_OEAAAAAAAAAYa",
        "client_modified": "2025-03-04T12:00:00Z",
        "server_modified": "2025-03-04T12:00:00Z",
        "rev": "a1c10ce0dd78",
        "size": body.len(),
        "path_lower": path.to_lowercase(),
        "path_display": path,
        "is_downloadable": true,
        "content_hash": "599d71033d700ac892a0e48fa61b125d0f5994be3ffa1ecbfe1d3b5f8f80f9b2",
    }))
    .into_response()
}

/// `files/list_folder`: `/Reports` has two pages, the root one; other paths pick an error.
async fn list_folder(headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = auth_failure(&headers) {
        return refused;
    }
    let args: Value = serde_json::from_slice(&body).unwrap_or_default();
    match args["path"].as_str() {
        Some("/Reports") => axum::Json(json!({
            "entries": [
                { ".tag": "folder", "name": "2024", "path_lower": "/reports/2024", "path_display": "/Reports/2024", "id": "id:a4ayc_80_OEAAAAAAAAAXz" },
                { ".tag": "file", "name": "q1.pdf", "path_lower": "/reports/q1.pdf", "path_display": "/Reports/q1.pdf", "id": "id:a4ayc_80_OEAAAAAAAAAXw",
                  "client_modified": "2025-03-01T10:00:00Z", "server_modified": "2025-03-01T10:00:01Z", "rev": "5e4b1f0a2c3d", "size": 7212,
                  "is_downloadable": true, "content_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
            ],
            "cursor": "AAE1-first-page-cursor",
            "has_more": true,
        }))
        .into_response(),
        Some("") => axum::Json(json!({
            "entries": [{ ".tag": "folder", "name": "Reports", "path_lower": "/reports", "path_display": "/Reports", "id": "id:a4ayc_80_OEAAAAAAAAAXy" }],
            "cursor": "AAE1-root-cursor",
            "has_more": false,
        }))
        .into_response(),
        Some("/missing") => not_found(),
        Some("/busy") => {
            let mut response = dropbox_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests/..",
                json!({ "reason": { ".tag": "too_many_requests" }, "retry_after": 300 }),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "300".parse().expect("value"));
            response
        }
        Some("/down") => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
        _ => bad_input(
            "files/list_folder",
            "request body: path: 'Reports' did not match pattern '(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)'",
        ),
    }
}

/// `files/list_folder/continue`.
async fn list_folder_continue(headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = auth_failure(&headers) {
        return refused;
    }
    let args: Value = serde_json::from_slice(&body).unwrap_or_default();
    match args["cursor"].as_str() {
        Some("AAE1-first-page-cursor") => axum::Json(json!({
            "entries": [{ ".tag": "deleted", "name": "old.pdf", "path_lower": "/reports/old.pdf", "path_display": "/Reports/old.pdf" }],
            "cursor": "AAE1-last-page-cursor",
            "has_more": false,
        }))
        .into_response(),
        _ => dropbox_error(StatusCode::CONFLICT, "reset/..", json!({ ".tag": "reset" })),
    }
}

/// `sharing/create_shared_link_with_settings`.
async fn create_shared_link(headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = auth_failure(&headers) {
        return refused;
    }
    let args: Value = serde_json::from_slice(&body).unwrap_or_default();
    match args["path"].as_str() {
        Some("/Reports/shared.pdf") => dropbox_error(
            StatusCode::CONFLICT,
            "shared_link_already_exists/metadata/...",
            json!({
                ".tag": "shared_link_already_exists",
                "shared_link_already_exists": {
                    ".tag": "metadata",
                    "metadata": link_metadata(
                        "https://www.dropbox.com/scl/fi/existing0link/shared.pdf?rlkey=old&dl=0",
                        "shared.pdf",
                        "/reports/shared.pdf",
                    ),
                },
            }),
        ),
        Some("/Reports/bare.pdf") => dropbox_error(
            StatusCode::CONFLICT,
            "shared_link_already_exists/..",
            json!({ ".tag": "shared_link_already_exists" }),
        ),
        Some("/missing") => not_found(),
        Some(path) => {
            let name = path.rsplit('/').next().unwrap_or_default();
            axum::Json(link_metadata(LINK, name, &path.to_lowercase())).into_response()
        }
        None => bad_input(
            "sharing/create_shared_link_with_settings",
            "request body: missing 'path'",
        ),
    }
}

/// `users/get_current_account`: no argument, so no body (a JSON content type would need
/// `null`, as Dropbox insists).
async fn current_account(headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = auth_failure(&headers) {
        return refused;
    }
    if headers.contains_key(header::CONTENT_TYPE) && body.as_ref() != b"null" {
        return bad_input(
            "users/get_current_account",
            "request body: could not decode input as JSON",
        );
    }
    axum::Json(json!({
        "account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
        "name": {
            "given_name": "Franz",
            "surname": "Ferdinand",
            "familiar_name": "Franz",
            "display_name": "Franz Ferdinand (Personal)",
            "abbreviated_name": "FF",
        },
        "email": "franz@example.com",
        "email_verified": true,
        "disabled": false,
        "locale": "en",
        "is_paired": false,
        "account_type": { ".tag": "basic" },
        "country": "US",
    }))
    .into_response()
}

/// The fake RPC host and the fake content host, apart as Dropbox's are.
async fn dropbox() -> (Fake, Fake) {
    let api = fakes::serve(
        Router::new()
            .route("/2/files/list_folder", post(list_folder))
            .route("/2/files/list_folder/continue", post(list_folder_continue))
            .route("/2/sharing/create_shared_link_with_settings", post(create_shared_link))
            .route("/2/users/get_current_account", post(current_account)),
    )
    .await;
    let content = fakes::serve(Router::new().route("/2/files/upload", post(upload))).await;
    (api, content)
}

/// A host with the Dropbox connector and one connection holding `token`, pointed at the
/// fakes; its token endpoint is a third fake that must never be called.
struct Setup {
    host: TestHost,
    api: Fake,
    content: Fake,
    token_endpoint: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

async fn setup(token: &str) -> Setup {
    let (api, content) = dropbox().await;
    let token_endpoint = fakes::serve(Router::new()).await;
    let (host, connector, connection) = TestHost::connected(
        "dropbox",
        &[
            ("api_base", &api.origin()),
            ("content_base", &content.origin()),
            ("token_base", &token_endpoint.origin()),
        ],
        &[("oauth", &[("access_token", token)])],
    );
    Setup {
        host,
        api,
        content,
        token_endpoint,
        connector,
        connection,
    }
}

impl Setup {
    async fn run(&self, action: &str, input: Value) -> CallOutcome {
        self.host.run(&self.connector, &self.connection, action, input).await
    }

    /// Every request carried the token in `Authorization: Bearer` and nowhere else, and the
    /// token endpoint was never called.
    fn assert_token_only_in_authorization(&self) {
        for r in self.api.requests().iter().chain(self.content.requests().iter()) {
            assert_eq!(
                r.header("authorization"),
                Some(format!("Bearer {TOKEN}").as_str()),
                "{r:?}"
            );
            assert!(
                !r.everything_but("authorization").contains(TOKEN),
                "the token left Authorization: {r:?}"
            );
        }
        assert!(self.token_endpoint.requests().is_empty());
    }
}

fn call(r: &Recorded) -> (&str, &str) {
    (r.method.as_str(), r.path.as_str())
}

#[tokio::test]
async fn upload_sends_the_bytes_with_an_ascii_dropbox_api_arg() {
    let s = setup(TOKEN).await;
    let bytes: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    let path = "/Berichte/Grüße 😀.txt";
    let out = s
        .run(
            "upload",
            json!({ "path": path, "content_base64": STANDARD.encode(&bytes) }),
        )
        .await;
    assert_eq!(
        out.result.expect("uploaded"),
        json!({
            "id": "id:a4ayc_80_OEAAAAAAAAAYa",
            "name": "Grüße 😀.txt",
            "path_display": path,
            "path_lower": "/berichte/grüße 😀.txt",
            "rev": "a1c10ce0dd78",
            "size": 512,
            "content_hash": "599d71033d700ac892a0e48fa61b125d0f5994be3ffa1ecbfe1d3b5f8f80f9b2",
            "server_modified": "2025-03-04T12:00:00Z",
        })
    );
    // Overwrite, with autorename and mute; base64url without padding is accepted too.
    let small = [0xfb_u8, 0xff, 0xbf, 0x3e];
    let overwritten = s
        .run(
            "upload",
            json!({
                "path": "/notes.txt",
                "content_base64": URL_SAFE_NO_PAD.encode(small),
                "mode": "overwrite",
                "autorename": true,
                "mute": true,
            }),
        )
        .await;
    assert_eq!(overwritten.result.expect("uploaded")["size"], 4);

    assert!(s.api.requests().is_empty(), "uploads go to the content host");
    let requests = s.content.requests();
    assert_eq!(requests.len(), 2);
    let r = &requests[0];
    assert_eq!(call(r), ("POST", "/2/files/upload"));
    assert_eq!(r.query, None);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body.as_ref(), bytes.as_slice(), "the bytes, unchanged, are the body");
    let arg = r.header("dropbox-api-arg").expect("Dropbox-API-Arg");
    assert!(
        arg.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "printable ASCII only: {arg}"
    );
    assert!(
        arg.contains(r"/Berichte/Gr\u00fc\u00dfe \ud83d\ude00.txt"),
        "non-ASCII escaped as UTF-16 \\uXXXX: {arg}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(arg).expect("JSON"),
        json!({ "path": path, "mode": "add", "autorename": false, "mute": false, "strict_conflict": false })
    );
    let r = &requests[1];
    assert_eq!(r.body.as_ref(), small.as_slice());
    assert_eq!(
        serde_json::from_str::<Value>(r.header("dropbox-api-arg").expect("arg")).expect("JSON"),
        json!({ "path": "/notes.txt", "mode": "overwrite", "autorename": true, "mute": true, "strict_conflict": false })
    );
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn folders_are_listed_page_by_page_and_test_connection_reads_the_account() {
    let s = setup(TOKEN).await;
    let first = s
        .run(
            "list_folder",
            json!({ "path": "/Reports", "recursive": true, "limit": 2 }),
        )
        .await;
    assert_eq!(
        first.result.expect("listed"),
        json!({
            "entries": [
                {
                    "type": "folder", "name": "2024", "id": "id:a4ayc_80_OEAAAAAAAAAXz",
                    "path_display": "/Reports/2024", "path_lower": "/reports/2024",
                    "size": null, "rev": null, "content_hash": null, "client_modified": null, "server_modified": null,
                },
                {
                    "type": "file", "name": "q1.pdf", "id": "id:a4ayc_80_OEAAAAAAAAAXw",
                    "path_display": "/Reports/q1.pdf", "path_lower": "/reports/q1.pdf",
                    "size": 7212, "rev": "5e4b1f0a2c3d",
                    "content_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                    "client_modified": "2025-03-01T10:00:00Z", "server_modified": "2025-03-01T10:00:01Z",
                },
            ],
            "cursor": "AAE1-first-page-cursor",
            "has_more": true,
        })
    );
    // The cursor carries the listing: the other arguments are not sent with it.
    let next = s
        .run(
            "list_folder",
            json!({ "path": "/Reports", "recursive": true, "cursor": "AAE1-first-page-cursor" }),
        )
        .await;
    let next = next.result.expect("listed");
    assert_eq!(next["has_more"], false);
    assert_eq!(next["cursor"], "AAE1-last-page-cursor");
    assert_eq!(next["entries"][0]["type"], "deleted");
    assert_eq!(next["entries"][0]["name"], "old.pdf");
    // The root is "" for Dropbox, whether the input says "/" or nothing.
    for input in [json!({ "path": "/" }), json!({})] {
        let root = s.run("list_folder", input).await.result.expect("listed");
        assert_eq!(root["entries"][0]["name"], "Reports");
    }

    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({
            "account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
            "email": "franz@example.com",
            "name": "Franz Ferdinand (Personal)",
            "account_type": "basic",
        })
    );

    let requests = s.api.requests();
    let calls: Vec<(&str, &str)> = requests.iter().map(call).collect();
    assert_eq!(
        calls,
        [
            ("POST", "/2/files/list_folder"),
            ("POST", "/2/files/list_folder/continue"),
            ("POST", "/2/files/list_folder"),
            ("POST", "/2/files/list_folder"),
            ("POST", "/2/users/get_current_account"),
        ]
    );
    for r in &requests[..4] {
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(
        requests[0].json(),
        json!({ "path": "/Reports", "recursive": true, "limit": 2 })
    );
    assert_eq!(requests[1].json(), json!({ "cursor": "AAE1-first-page-cursor" }));
    assert_eq!(requests[2].json(), json!({ "path": "", "recursive": false }));
    assert_eq!(requests[3].json(), json!({ "path": "", "recursive": false }));
    assert!(requests[4].body.is_empty(), "get_current_account takes no body");
    assert_eq!(requests[4].header("content-type"), None);
    assert!(s.content.requests().is_empty());
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn shared_links_are_created_or_the_existing_one_returned() {
    let s = setup(TOKEN).await;
    let created = s
        .run(
            "create_shared_link",
            json!({
                "path": "/Reports/q1.pdf",
                "settings": {
                    "audience": "public",
                    "access": "viewer",
                    "allow_download": true,
                    "expires": "2025-12-31T23:59:59Z",
                    "link_password": "correct horse",
                },
            }),
        )
        .await;
    assert_eq!(
        created.result.expect("created"),
        json!({
            "url": LINK,
            "name": "q1.pdf",
            "id": "id:a4ayc_80_OEAAAAAAAAAXw",
            "path_lower": "/reports/q1.pdf",
            "audience": "public",
            "expires": "2025-12-31T23:59:59Z",
            "already_existed": false,
        })
    );
    let existing = s
        .run("create_shared_link", json!({ "path": "/Reports/shared.pdf" }))
        .await;
    let existing = existing.result.expect("the existing link");
    assert_eq!(
        existing["url"],
        "https://www.dropbox.com/scl/fi/existing0link/shared.pdf?rlkey=old&dl=0"
    );
    assert_eq!(existing["already_existed"], true);
    // Without the link in Dropbox's answer there is nothing to return.
    let (code, message, retryable) = connector_error(
        s.run("create_shared_link", json!({ "path": "/Reports/bare.pdf" }))
            .await,
    );
    assert_eq!((code.as_str(), retryable), ("shared_link_already_exists", false));
    assert!(message.contains("shared_link_already_exists"), "{message}");

    let requests = s.api.requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(call(r), ("POST", "/2/sharing/create_shared_link_with_settings"));
    }
    assert_eq!(
        requests[0].json(),
        json!({
            "path": "/Reports/q1.pdf",
            "settings": {
                "audience": "public",
                "access": "viewer",
                "allow_download": true,
                "expires": "2025-12-31T23:59:59Z",
                "require_password": true,
                "link_password": "correct horse",
            },
        })
    );
    assert_eq!(requests[1].json(), json!({ "path": "/Reports/shared.pdf" }));
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn dropbox_errors_map_to_stable_codes() {
    let s = setup(TOKEN).await;
    let folder = |path: &str| json!({ "path": path });
    let file = |path: &str| json!({ "path": path, "content_base64": "aGk=" });

    let (code, message, retryable) = connector_error(s.run("list_folder", folder("/missing")).await);
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    assert!(message.contains("path/not_found"), "{message}");
    let (code, _, retryable) = connector_error(s.run("create_shared_link", json!({ "path": "/missing" })).await);
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    let (code, message, retryable) = connector_error(s.run("upload", file("/exists.txt")).await);
    assert_eq!((code.as_str(), retryable), ("conflict", false));
    assert!(message.contains("path/conflict/file"), "{message}");
    let (code, _, retryable) = connector_error(s.run("upload", file("/full.bin")).await);
    assert_eq!((code.as_str(), retryable), ("insufficient_space", false));
    let (code, message, retryable) = connector_error(s.run("upload", file("/noscope.txt")).await);
    assert_eq!((code.as_str(), retryable), ("missing_scope", false));
    assert!(message.contains("files.content.write"), "{message}");
    let (code, _, retryable) = connector_error(s.run("list_folder", json!({ "cursor": "AAE1-expired-cursor" })).await);
    assert_eq!((code.as_str(), retryable), ("cursor_reset", false));
    let (code, message, retryable) = connector_error(s.run("list_folder", folder("/busy")).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    assert!(message.contains("retry after 300 s"), "{message}");
    let (code, _, retryable) = connector_error(s.run("list_folder", folder("/down")).await);
    assert_eq!((code.as_str(), retryable), ("upstream_error", true));
    let (code, message, retryable) = connector_error(s.run("list_folder", folder("/Malformed")).await);
    assert_eq!((code.as_str(), retryable), ("bad_request", false));
    assert!(message.contains("did not match pattern"), "Dropbox's text: {message}");

    // Refused before any request: a relative or folder-like upload path, bad base64, a
    // relative folder; an expiry in another format is refused by the schema.
    let before = (s.api.requests().len(), s.content.requests().len());
    for (action, input) in [
        ("upload", file("Reports/q1.pdf")),
        ("upload", file("/Reports/")),
        ("upload", json!({ "path": "/a.txt", "content_base64": "not base64!" })),
        ("list_folder", folder("Reports")),
        ("create_shared_link", json!({ "path": "x1" })),
    ] {
        let (code, _, _) = connector_error(s.run(action, input.clone()).await);
        assert_eq!(code, "invalid_input", "{action} {input}");
    }
    let out = s
        .run(
            "create_shared_link",
            json!({ "path": "/a.txt", "settings": { "expires": "tomorrow" } }),
        )
        .await;
    assert!(
        matches!(out.result, Err(CallError::InvalidInput { .. })),
        "{:?}",
        out.result
    );
    assert_eq!((s.api.requests().len(), s.content.requests().len()), before);

    // Tokens Dropbox refuses are auth failures: the connection's status flips on them.
    for (token, expected) in [
        ("sl.revoked-dropbox-token-00000000", "unauthorized"),
        (EXPIRED, "token_expired"),
    ] {
        let s = setup(token).await;
        let (code, message, retryable) = connector_error(s.run("list_folder", json!({})).await);
        assert_eq!((code.as_str(), retryable), (expected, false), "{message}");
        assert!(nexum_host::connections::calls::AUTH_FAILURE_CODES.contains(&code.as_str()));
        assert!(s.token_endpoint.requests().is_empty());
    }
}

#[test]
fn the_manifest_declares_dropbox_sign_in() {
    let (_, text) = nexum_tests::plugins::connector("dropbox");
    let manifest = nexum_manifest::Manifest::parse(&text).expect("manifest");
    let scheme = manifest.auth_scheme("oauth").expect("oauth scheme");
    let nexum_manifest::AuthKind::OAuth2(endpoints) = &scheme.kind else {
        panic!("not oauth2: {scheme:?}");
    };
    assert!(endpoints.pkce);
    assert_eq!(endpoints.joined_scopes(&endpoints.scopes), SCOPES);
    let variables = manifest.resolve_variables(&BTreeMap::new()).expect("defaults");
    let authorize = endpoints
        .authorization_url_for(&variables)
        .expect("url")
        .expect("authorization-code flow");
    assert_eq!(authorize.as_str(), "https://www.dropbox.com/oauth2/authorize");
    let token_url = nexum_host::oauth::token_url(&manifest, scheme, &variables).expect("bound token URL");
    assert_eq!(token_url.as_str(), "https://api.dropboxapi.com/oauth2/token");
    let (consent, verifier) = nexum_host::oauth::provider::authorization_url(
        endpoints,
        &authorize,
        "fake-app-key",
        "https://nexum.example.com/api/v1/oauth/callback",
        "state-1",
        &endpoints.scopes,
    )
    .expect("consent URL");
    assert!(verifier.is_some(), "PKCE");
    let q: HashMap<String, String> = consent.query_pairs().into_owned().collect();
    assert_eq!(q["token_access_type"], "offline", "a refresh token is issued");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["response_type"], "code");
    // Both API hosts are reachable, and the token is bound to both.
    let hosts = manifest.resolve_allowed_hosts(&variables).expect("hosts");
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    for host in ["https://api.dropboxapi.com", "https://content.dropboxapi.com"] {
        assert!(
            scheme.hosts.iter().any(|h| {
                h.resolve(&variables, "hosts")
                    .is_ok_and(|p| p.matches(&url::Url::parse(host).expect("url")))
            }),
            "the token is bound to {host}"
        );
    }
}
