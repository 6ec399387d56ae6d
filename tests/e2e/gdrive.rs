//! The Google Drive connector against a fake Drive API: the `multipart/related` upload body,
//! parsed back part by part (metadata JSON, exact file bytes, a boundary absent from both);
//! upload idempotency through the app property search; the exact requests of listing (paging),
//! downloading (base64) and exporting; Google Workspace files, folders and big files refused
//! with clear errors before their bytes are fetched; the access token only in
//! `Authorization: Bearer`; Google's errors under stable codes; and the manifest's Google
//! sign-in declarations.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector};
use nexum_tests::consent::{connector_manifest, consent_query, oauth2_scheme};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The access token the tests connect with.
const TOKEN: &str = "ya29.fake-drive-access-token-5e1d";
/// The OAuth client the manifest test builds a consent URL for.
const CLIENT_ID: &str = "1234-nexum.apps.googleusercontent.com";
/// Both Drive scopes, as the consent page must receive them.
const SCOPES: &str = "https://www.googleapis.com/auth/drive.file https://www.googleapis.com/auth/drive.readonly";
/// The file fields the connector asks for.
const FILE_FIELDS: &str = "id,name,mimeType,modifiedTime,size,parents,webViewLink";

/// An ordinary file, a Google Doc, a folder, a file too big to return, a missing file, a file
/// the user may see but not download, and one whose download fails on Google's side.
const BINARY: &str = "1BinaryFile_abc-123";
const DOC: &str = "1GoogleDoc_xyz";
const FOLDER: &str = "0FolderAbc";
const BIG: &str = "1BigFile";
const MISSING: &str = "1Missing";
const DENIED: &str = "1NotYours";
const BROKEN: &str = "1Broken";
/// The id the fake gives every uploaded file.
const UPLOADED: &str = "1Uploaded";

/// The bytes of [`BINARY`] and of the test upload: every byte value, then text that looks like
/// multipart delimiters.
fn binary_bytes() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    bytes.extend_from_slice(b"\r\n--nexum-part-0000000000000000\r\nContent-Type: text/plain\r\n\r\n--\r\n");
    bytes
}

fn authed(headers: &HeaderMap) -> bool {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(format!("Bearer {TOKEN}").as_str())
}

/// Google's JSON error, as Drive v3 sends it.
fn google_error(status: StatusCode, reason: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{ "message": message, "domain": "global", "reason": reason }],
        } })),
    )
        .into_response()
}

fn unauthenticated() -> Response {
    google_error(StatusCode::UNAUTHORIZED, "authError", "Invalid Credentials")
}

/// A file resource as Drive returns it (`size` is an int64 sent as a string).
fn drive_file(id: &str, name: &str, mime_type: &str, size: Option<usize>) -> Value {
    let mut file = json!({
        "id": id,
        "name": name,
        "mimeType": mime_type,
        "modifiedTime": "2025-03-04T05:06:07.000Z",
        "parents": [FOLDER],
        "webViewLink": format!("https://drive.google.com/file/d/{id}/view"),
    });
    if let Some(size) = size {
        file["size"] = json!(size.to_string());
    }
    file
}

/// `files.list`: two pages, the app-property search of idempotent uploads (`exe_1:done` was
/// uploaded before), and a query Drive refuses.
async fn list_files(headers: HeaderMap, Query(query): Query<Vec<(String, String)>>) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let q = param("q").unwrap_or_default();
    if q.starts_with("appProperties has") {
        let files = if q.contains("value='exe_1:done'") {
            json!([drive_file(UPLOADED, "report.pdf", "application/pdf", Some(1234))])
        } else {
            json!([])
        };
        return axum::Json(json!({ "files": files })).into_response();
    }
    if q == "bad query" {
        return google_error(StatusCode::BAD_REQUEST, "invalid", "Invalid Value");
    }
    match param("pageToken") {
        Some("page-2") => axum::Json(json!({
            "incompleteSearch": false,
            "files": [drive_file("1Notes", "notes.txt", "text/plain", Some(12))],
        }))
        .into_response(),
        _ => axum::Json(json!({
            "nextPageToken": "page-2",
            "incompleteSearch": true,
            "files": [
                drive_file(BINARY, "photo.bin", "application/octet-stream", Some(binary_bytes().len())),
                { "id": DOC, "name": "Plan", "mimeType": "application/vnd.google-apps.document", "modifiedTime": "2025-03-01T00:00:00.000Z" },
            ],
        }))
        .into_response(),
    }
}

/// A multipart body's boundary and its parts (headers text, content).
type Multipart = (String, Vec<(String, Vec<u8>)>);

/// Split a `multipart/related` body into its boundary and its parts (header block, content);
/// `None` unless it is exactly `--b CRLF part (CRLF --b CRLF part)* CRLF --b-- CRLF`.
fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Multipart> {
    let boundary = content_type.strip_prefix("multipart/related; boundary=")?.to_string();
    let opening = format!("--{boundary}\r\n");
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body.strip_prefix(opening.as_bytes())?;
    let mut parts = Vec::new();
    loop {
        let end = find(rest, delimiter.as_bytes())?;
        let part = &rest[..end];
        let split = find(part, b"\r\n\r\n")?;
        parts.push((
            String::from_utf8(part[..split].to_vec()).ok()?,
            part[split + 4..].to_vec(),
        ));
        rest = &rest[end + delimiter.len()..];
        if rest == b"--\r\n" {
            return Some((boundary, parts));
        }
        rest = rest.strip_prefix(b"\r\n")?;
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `files.create` on the upload endpoint: the metadata's name picks the answer.
async fn upload(headers: HeaderMap, body: Bytes) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some((_, parts)) = parse_multipart(content_type, &body).filter(|(_, parts)| parts.len() == 2) else {
        return google_error(StatusCode::BAD_REQUEST, "badContent", "Malformed multipart body.");
    };
    let metadata: Value = serde_json::from_slice(&parts[0].1).unwrap_or_default();
    match metadata["name"].as_str() {
        Some("full.bin") => google_error(
            StatusCode::FORBIDDEN,
            "storageQuotaExceeded",
            "The user's Drive storage quota has been exceeded.",
        ),
        Some("busy.bin") => google_error(
            StatusCode::FORBIDDEN,
            "userRateLimitExceeded",
            "User rate limit exceeded.",
        ),
        Some("rate.bin") => {
            let mut response = google_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rateLimitExceeded",
                "Rate limit exceeded.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "3".parse().expect("header value"));
            response
        }
        Some(name) => {
            let mime_type = metadata["mimeType"].as_str().unwrap_or("application/octet-stream");
            let mut file = drive_file(UPLOADED, name, mime_type, Some(parts[1].1.len()));
            if let Some(parents) = metadata.get("parents") {
                file["parents"] = parents.clone();
            } else {
                file["parents"] = json!(["0AMyDriveRoot"]);
            }
            axum::Json(file).into_response()
        }
        None => google_error(StatusCode::BAD_REQUEST, "required", "Required parameter: name"),
    }
}

/// `files.get`: metadata, or the bytes with `alt=media`.
async fn get_file(
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let media = query.get("alt").map(String::as_str) == Some("media");
    match (id.as_str(), media) {
        (BINARY, false) => axum::Json(drive_file(
            BINARY,
            "photo.bin",
            "application/octet-stream",
            Some(binary_bytes().len()),
        ))
        .into_response(),
        (BINARY, true) => ([(header::CONTENT_TYPE, "application/octet-stream")], binary_bytes()).into_response(),
        (DOC, false) => {
            axum::Json(json!({ "id": DOC, "name": "Plan", "mimeType": "application/vnd.google-apps.document" }))
                .into_response()
        }
        (DOC, true) => google_error(
            StatusCode::FORBIDDEN,
            "fileNotDownloadable",
            "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
        ),
        (FOLDER, _) => {
            axum::Json(json!({ "id": FOLDER, "name": "Reports", "mimeType": "application/vnd.google-apps.folder" }))
                .into_response()
        }
        (BIG, false) => axum::Json(drive_file(BIG, "video.mp4", "video/mp4", Some(5_000_000))).into_response(),
        (DENIED, false) => axum::Json(drive_file(DENIED, "secret.pdf", "application/pdf", Some(10))).into_response(),
        (DENIED, true) => google_error(
            StatusCode::FORBIDDEN,
            "insufficientFilePermissions",
            "The user does not have sufficient permissions for this file.",
        ),
        (BROKEN, false) => {
            axum::Json(drive_file(BROKEN, "flaky.bin", "application/octet-stream", Some(10))).into_response()
        }
        (BROKEN, true) => google_error(StatusCode::INTERNAL_SERVER_ERROR, "backendError", "Backend Error"),
        _ => google_error(StatusCode::NOT_FOUND, "notFound", &format!("File not found: {id}.")),
    }
}

/// `files.export`: the Doc as PDF; any other conversion is refused.
async fn export(headers: HeaderMap, Path(id): Path<String>, Query(query): Query<HashMap<String, String>>) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    if id == DOC && query.get("mimeType").map(String::as_str) == Some("application/pdf") {
        return (
            [(header::CONTENT_TYPE, "application/pdf")],
            b"%PDF-1.7 the plan".to_vec(),
        )
            .into_response();
    }
    google_error(
        StatusCode::BAD_REQUEST,
        "badRequest",
        "The requested conversion is not supported.",
    )
}

async fn about(headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    if query.get("fields").map(String::as_str) != Some("user(displayName,emailAddress),storageQuota(limit,usage)") {
        return google_error(
            StatusCode::BAD_REQUEST,
            "required",
            "The 'fields' parameter is required.",
        );
    }
    axum::Json(json!({
        "user": { "kind": "drive#user", "displayName": "Ada Lovelace", "emailAddress": "ada@example.com" },
        "storageQuota": { "limit": "16106127360", "usage": "123456" },
    }))
    .into_response()
}

/// A host with the Drive connector and one connection holding `token`, pointed at a fake Drive
/// API; its token endpoint is a second fake that must never be called.
struct Setup {
    host: TestHost,
    drive: Fake,
    token_endpoint: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

async fn setup(token: &str) -> Setup {
    let drive = fakes::serve(
        Router::new()
            .route("/drive/v3/files", get(list_files))
            .route("/drive/v3/files/{id}", get(get_file))
            .route("/drive/v3/files/{id}/export", get(export))
            .route("/drive/v3/about", get(about))
            .route("/upload/drive/v3/files", post(upload)),
    )
    .await;
    let token_endpoint = fakes::serve(Router::new()).await;
    let (host, connector, connection) = TestHost::connected(
        "gdrive",
        &[("api_base", &drive.origin()), ("token_base", &token_endpoint.origin())],
        &[("oauth", &[("access_token", token)])],
    );
    Setup {
        host,
        drive,
        token_endpoint,
        connector,
        connection,
    }
}

impl Setup {
    async fn run(&self, action: &str, input: Value) -> CallOutcome {
        self.run_keyed(action, input, None).await
    }

    /// Run `action` under idempotency key `key`.
    async fn run_keyed(&self, action: &str, input: Value, key: Option<&str>) -> CallOutcome {
        self.host
            .runtime
            .execute_keyed(
                &self.connector,
                self.connection.clone(),
                Invocation::Action {
                    name: action.into(),
                    input,
                },
                key.map(str::to_string),
            )
            .await
    }

    /// Every request carried the token in `Authorization: Bearer` and nowhere else, and the
    /// token endpoint was never called.
    fn assert_token_only_in_authorization(&self) {
        for r in self.drive.requests() {
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

fn query_pairs(r: &Recorded) -> Vec<(String, String)> {
    url::form_urlencoded::parse(r.query.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The metadata JSON and the content of a recorded upload, checked part by part.
fn uploaded_parts(r: &Recorded) -> (Value, String, Vec<u8>) {
    let content_type = r.header("content-type").expect("content type");
    let (boundary, parts) = parse_multipart(content_type, &r.body).expect("a multipart/related body");
    assert!(
        !boundary.is_empty()
            && boundary.len() <= 70
            && boundary.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{boundary}"
    );
    assert_eq!(parts.len(), 2, "metadata and media");
    assert_eq!(parts[0].0, "Content-Type: application/json; charset=UTF-8");
    let metadata: Value = serde_json::from_slice(&parts[0].1).expect("metadata JSON");
    assert!(
        find(&parts[1].1, boundary.as_bytes()).is_none(),
        "the boundary occurs in the content"
    );
    assert!(
        find(&parts[0].1, boundary.as_bytes()).is_none(),
        "the boundary occurs in the metadata"
    );
    (metadata, parts[1].0.clone(), parts[1].1.clone())
}

#[tokio::test]
async fn upload_file_sends_a_multipart_body_that_parses_back() {
    let s = setup(TOKEN).await;
    let bytes = binary_bytes();
    let out = s
        .run(
            "upload_file",
            json!({
                "name": "photo.bin",
                "mime_type": "Image/PNG",
                "content_base64": STANDARD.encode(bytes.as_slice()),
                "parents": [FOLDER],
                "description": "Quarterly\r\n--photo",
            }),
        )
        .await;
    assert_eq!(
        out.result.expect("uploaded"),
        json!({
            "id": UPLOADED,
            "name": "photo.bin",
            "mime_type": "image/png",
            "modified_time": "2025-03-04T05:06:07.000Z",
            "size": bytes.len(),
            "parents": [FOLDER],
            "web_view_link": format!("https://drive.google.com/file/d/{UPLOADED}/view"),
            "reused": false,
        })
    );

    let requests = s.drive.requests();
    assert_eq!(requests.len(), 1, "no idempotency key: no search first");
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/upload/drive/v3/files"));
    assert_eq!(
        query_pairs(r),
        pairs(&[
            ("uploadType", "multipart"),
            ("supportsAllDrives", "true"),
            ("fields", FILE_FIELDS)
        ])
    );
    let (metadata, media_headers, content) = uploaded_parts(r);
    assert_eq!(
        metadata,
        json!({ "name": "photo.bin", "mimeType": "image/png", "parents": [FOLDER], "description": "Quarterly\r\n--photo" })
    );
    assert_eq!(media_headers, "Content-Type: image/png");
    assert_eq!(content, bytes, "the file's bytes, unchanged");
    s.assert_token_only_in_authorization();

    // Without a type or folder: octet-stream into My Drive's root; empty files are files too.
    s.drive.clear();
    let out = s
        .run("upload_file", json!({ "name": "empty", "content_base64": "" }))
        .await;
    assert_eq!(out.result.expect("uploaded")["parents"], json!(["0AMyDriveRoot"]));
    let (metadata, media_headers, content) = uploaded_parts(&s.drive.requests()[0]);
    assert_eq!(
        metadata,
        json!({ "name": "empty", "mimeType": "application/octet-stream" })
    );
    assert_eq!(media_headers, "Content-Type: application/octet-stream");
    assert!(content.is_empty());
}

#[tokio::test]
async fn an_upload_retried_under_the_same_key_reuses_the_first_file() {
    let s = setup(TOKEN).await;
    let input =
        json!({ "name": "report.pdf", "mime_type": "application/pdf", "content_base64": STANDARD.encode(b"%PDF-1.7") });

    // The first attempt already uploaded it: the search finds it, nothing is uploaded.
    let out = s.run_keyed("upload_file", input.clone(), Some("exe_1:done")).await;
    let reused = out.result.expect("reused");
    let search_fields = format!("files({FILE_FIELDS})");
    assert_eq!((&reused["id"], &reused["reused"]), (&json!(UPLOADED), &json!(true)));
    assert_eq!(reused["size"], 1234);
    let requests = s.drive.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/drive/v3/files")
    );
    assert_eq!(
        query_pairs(&requests[0]),
        pairs(&[
            (
                "q",
                "appProperties has { key='nexum_idempotency_key' and value='exe_1:done' } and trashed = false"
            ),
            ("pageSize", "1"),
            ("fields", search_fields.as_str()),
            ("corpora", "allDrives"),
            ("includeItemsFromAllDrives", "true"),
            ("supportsAllDrives", "true"),
        ])
    );

    // A fresh key (with a quote, escaped in the search): searched, then uploaded carrying it.
    s.drive.clear();
    let out = s.run_keyed("upload_file", input, Some("exe_2:o'brien")).await;
    assert_eq!(out.result.expect("uploaded")["reused"], false);
    let requests = s.drive.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        query_pairs(&requests[0])[0],
        (
            "q".to_string(),
            "appProperties has { key='nexum_idempotency_key' and value='exe_2:o\\'brien' } and trashed = false"
                .to_string()
        )
    );
    assert_eq!(requests[1].method, "POST");
    let (metadata, _, content) = uploaded_parts(&requests[1]);
    assert_eq!(
        metadata,
        json!({ "name": "report.pdf", "mimeType": "application/pdf", "appProperties": { "nexum_idempotency_key": "exe_2:o'brien" } })
    );
    assert_eq!(content, b"%PDF-1.7");
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn list_files_pages_and_maps_the_fields() {
    let s = setup(TOKEN).await;
    let first = s
        .run(
            "list_files",
            json!({ "q": "trashed = false", "page_size": 2, "order_by": "folder,modifiedTime desc", "include_shared_drives": true }),
        )
        .await;
    assert_eq!(
        first.result.expect("listed"),
        json!({
            "files": [
                {
                    "id": BINARY, "name": "photo.bin", "mime_type": "application/octet-stream",
                    "modified_time": "2025-03-04T05:06:07.000Z", "size": binary_bytes().len(), "parents": [FOLDER],
                    "web_view_link": format!("https://drive.google.com/file/d/{BINARY}/view"),
                },
                {
                    "id": DOC, "name": "Plan", "mime_type": "application/vnd.google-apps.document",
                    "modified_time": "2025-03-01T00:00:00.000Z", "size": null, "parents": [], "web_view_link": null,
                },
            ],
            "next_page_token": "page-2",
            "incomplete_search": true,
        })
    );
    let second = s.run("list_files", json!({ "page_token": "page-2" })).await;
    let second = second.result.expect("listed");
    assert_eq!(
        (&second["next_page_token"], &second["incomplete_search"]),
        (&Value::Null, &json!(false))
    );
    assert_eq!(second["files"][0]["id"], "1Notes");
    assert_eq!(second["files"][0]["size"], 12);

    // A sort key Drive does not know is refused before any request.
    let (code, message, _) = connector_error(s.run("list_files", json!({ "order_by": "size desc" })).await);
    assert_eq!(code, "invalid_input");
    assert!(message.contains("`size desc`"), "{message}");

    let requests = s.drive.requests();
    assert_eq!(requests.len(), 2);
    let list_fields = format!("nextPageToken,incompleteSearch,files({FILE_FIELDS})");
    assert_eq!(
        query_pairs(&requests[0]),
        pairs(&[
            ("q", "trashed = false"),
            ("pageSize", "2"),
            ("orderBy", "folder,modifiedTime desc"),
            ("fields", list_fields.as_str()),
            ("corpora", "allDrives"),
            ("includeItemsFromAllDrives", "true"),
            ("supportsAllDrives", "true"),
        ])
    );
    assert_eq!(
        query_pairs(&requests[1]),
        pairs(&[("pageToken", "page-2"), ("fields", list_fields.as_str())])
    );
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn download_file_returns_base64_and_exports_google_docs() {
    let s = setup(TOKEN).await;
    let metadata_query = pairs(&[
        ("fields", "id,name,mimeType,size,shortcutDetails(targetId)"),
        ("supportsAllDrives", "true"),
    ]);

    let out = s.run("download_file", json!({ "file_id": BINARY })).await;
    let bytes = binary_bytes();
    assert_eq!(
        out.result.expect("downloaded"),
        json!({
            "id": BINARY,
            "name": "photo.bin",
            "mime_type": "application/octet-stream",
            "size": bytes.len(),
            "content_base64": STANDARD.encode(bytes.as_slice()),
            "exported": false,
        })
    );
    let requests = s.drive.requests();
    let path = format!("/drive/v3/files/{BINARY}");
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", path.as_str())
    );
    assert_eq!(query_pairs(&requests[0]), metadata_query);
    assert_eq!(
        (requests[1].method.as_str(), requests[1].path.as_str()),
        ("GET", path.as_str())
    );
    assert_eq!(
        query_pairs(&requests[1]),
        pairs(&[("alt", "media"), ("supportsAllDrives", "true")])
    );

    // A Google Doc has no bytes: a clear error naming export formats, after the metadata only.
    s.drive.clear();
    let (code, message, retryable) = connector_error(s.run("download_file", json!({ "file_id": DOC })).await);
    assert_eq!((code.as_str(), retryable), ("not_downloadable", false));
    assert!(
        message.contains("Google Workspace")
            && message.contains("export_mime_type")
            && message.contains("application/pdf"),
        "{message}"
    );
    assert_eq!(s.drive.requests().len(), 1);

    // With an export format it is exported.
    s.drive.clear();
    let out = s
        .run(
            "download_file",
            json!({ "file_id": DOC, "export_mime_type": "application/pdf" }),
        )
        .await;
    assert_eq!(
        out.result.expect("exported"),
        json!({
            "id": DOC,
            "name": "Plan",
            "mime_type": "application/pdf",
            "size": 17,
            "content_base64": STANDARD.encode(b"%PDF-1.7 the plan"),
            "exported": true,
        })
    );
    let requests = s.drive.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].path, format!("/drive/v3/files/{DOC}/export"));
    assert_eq!(query_pairs(&requests[1]), pairs(&[("mimeType", "application/pdf")]));

    // A folder, and a file too big for an action's output: refused before any byte is fetched.
    s.drive.clear();
    let (code, message, _) = connector_error(s.run("download_file", json!({ "file_id": FOLDER })).await);
    assert_eq!(code, "not_downloadable");
    assert!(
        message.contains("folder") && message.contains("list_files"),
        "{message}"
    );
    let (code, message, retryable) = connector_error(s.run("download_file", json!({ "file_id": BIG })).await);
    assert_eq!((code.as_str(), retryable), ("file_too_large", false));
    assert!(message.contains("5000000"), "{message}");
    assert!(s.drive.requests().iter().all(|r| r.query.as_deref()
        == Some("fields=id%2Cname%2CmimeType%2Csize%2CshortcutDetails%28targetId%29&supportsAllDrives=true")));
    assert_eq!(s.drive.requests().len(), 2, "metadata only");

    // An export format for an ordinary file is a mistake, said so.
    let (code, message, _) = connector_error(
        s.run(
            "download_file",
            json!({ "file_id": BINARY, "export_mime_type": "application/pdf" }),
        )
        .await,
    );
    assert_eq!(code, "invalid_input");
    assert!(message.contains("export_mime_type"), "{message}");

    // An id that would leave its path segment never reaches Drive.
    s.drive.clear();
    for id in ["../about", "1abc/export", "a%2Fb", "x?alt=media"] {
        let out = s.run("download_file", json!({ "file_id": id })).await;
        assert!(
            matches!(out.result, Err(CallError::InvalidInput { .. })),
            "{id}: {:?}",
            out.result
        );
    }
    assert!(s.drive.requests().is_empty());

    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({ "email_address": "ada@example.com", "display_name": "Ada Lovelace", "storage_limit": 16106127360_u64, "storage_usage": 123456 })
    );
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn drive_errors_map_to_stable_codes() {
    let s = setup(TOKEN).await;
    let upload = |name: &str| json!({ "name": name, "content_base64": STANDARD.encode(b"bytes") });

    let (code, message, retryable) = connector_error(s.run("upload_file", upload("full.bin")).await);
    assert_eq!((code.as_str(), retryable), ("storage_quota_exceeded", false));
    assert!(
        message.contains("storageQuotaExceeded") && message.contains("storage quota"),
        "{message}"
    );
    let (code, _, retryable) = connector_error(s.run("upload_file", upload("busy.bin")).await);
    assert_eq!(
        (code.as_str(), retryable),
        ("rate_limited", true),
        "Drive's 403 rate limits"
    );
    let (code, message, retryable) = connector_error(s.run("upload_file", upload("rate.bin")).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    assert!(message.contains("retry after 3 s"), "{message}");

    let (code, message, retryable) = connector_error(s.run("download_file", json!({ "file_id": MISSING })).await);
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    assert!(
        message.contains("notFound") && message.contains("File not found"),
        "{message}"
    );
    // One file the user may not read is no reason to mark the connection failed.
    let (code, _, retryable) = connector_error(s.run("download_file", json!({ "file_id": DENIED })).await);
    assert_eq!((code.as_str(), retryable), ("permission_denied", false));
    assert!(!nexum_host::connections::calls::AUTH_FAILURE_CODES.contains(&code.as_str()));
    let (code, _, retryable) = connector_error(s.run("download_file", json!({ "file_id": BROKEN })).await);
    assert_eq!((code.as_str(), retryable), ("upstream_error", true));
    let (code, message, _) = connector_error(s.run("list_files", json!({ "q": "bad query" })).await);
    assert_eq!(code, "invalid_argument");
    assert!(message.contains("Invalid Value"), "{message}");

    // Refused before any request: a Google Docs type to upload bytes as, bad base64.
    let before = s.drive.requests().len();
    for input in [
        json!({ "name": "x", "mime_type": "application/vnd.google-apps.document", "content_base64": "" }),
        json!({ "name": "x", "content_base64": "not base64!" }),
        json!({ "name": "  ", "content_base64": "" }),
    ] {
        let (code, _, _) = connector_error(s.run("upload_file", input).await);
        assert_eq!(code, "invalid_input");
    }
    assert_eq!(s.drive.requests().len(), before);

    // A token Google refuses is an auth failure: the connection's status flips on it.
    let s = setup("ya29.revoked-drive-token-0000").await;
    let (code, message, retryable) = connector_error(s.run("list_files", json!({})).await);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));
    assert!(message.contains("Invalid Credentials"), "{message}");
    assert!(nexum_host::connections::calls::AUTH_FAILURE_CODES.contains(&code.as_str()));
}

#[test]
fn the_manifest_declares_google_sign_in() {
    let manifest = connector_manifest("gdrive");
    let (scheme, endpoints) = oauth2_scheme(&manifest, "oauth");
    assert!(endpoints.pkce);
    assert_eq!(endpoints.token_auth_method, nexum_manifest::TokenAuthMethod::Body);
    assert_eq!(endpoints.joined_scopes(&endpoints.scopes), SCOPES);
    let variables = manifest.resolve_variables(&BTreeMap::new()).expect("defaults");
    assert_eq!(variables["api_base"], "https://www.googleapis.com");
    let authorize = endpoints
        .authorization_url_for(&variables)
        .expect("url")
        .expect("authorization-code flow");
    assert_eq!(authorize.as_str(), "https://accounts.google.com/o/oauth2/v2/auth");
    let token_url = nexum_host::oauth::token_url(&manifest, scheme, &variables).expect("bound token URL");
    assert_eq!(token_url.as_str(), "https://oauth2.googleapis.com/token");
    let (q, pkce) = consent_query(endpoints, &authorize, CLIENT_ID);
    assert!(pkce, "PKCE");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], SCOPES);
}
