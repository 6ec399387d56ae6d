//! Google Drive connector: list, upload and download files over the Drive API v3
//! (`/drive/v3/files`, `/upload/drive/v3/files`), with the connection's OAuth2 access token.
//!
//! `upload_file` sends one `multipart/related` request (`uploadType=multipart`): a JSON
//! metadata part and the file's bytes, under a boundary checked to occur in neither. Drive has
//! no idempotency header, so the call's idempotency key is stored on the file as a private app
//! property, and a retry finds the file it already created instead of uploading a second copy.
//! `download_file` reads the file's metadata first: Google Workspace files (Docs, Sheets, …)
//! have no bytes and are exported instead, and files too big for an action's output are refused
//! before any byte is fetched.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nexum_connector_sdk::mail::{decode_base64, valid_media_type};
use nexum_connector_sdk::prelude::*;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The Google APIs origin when the connection sets no `api_base`.
const DEFAULT_API_BASE: &str = "https://www.googleapis.com";

/// The auth scheme (`[[auth]]` id) whose token every request carries.
const SCHEME: &str = "oauth";

/// The file fields every action asks Drive for (a partial response keeps answers small).
const FILE_FIELDS: &str = "id,name,mimeType,modifiedTime,size,parents,webViewLink";

/// The largest file `download_file` returns: its base64 (4/3 of it) plus the rest of the output
/// must fit the host's 1 MiB cap on an action's output.
const MAX_DOWNLOAD_BYTES: u64 = 768_000;

/// The prefix of Google Workspace types (Docs, Sheets, folders, shortcuts, …), which hold no
/// bytes of their own.
const GOOGLE_APPS: &str = "application/vnd.google-apps.";

/// A folder's type.
const FOLDER: &str = "application/vnd.google-apps.folder";

/// A shortcut's type.
const SHORTCUT: &str = "application/vnd.google-apps.shortcut";

/// The private app property that holds an upload's idempotency key.
const KEY_PROPERTY: &str = "nexum_idempotency_key";

/// The sort keys Drive's `orderBy` accepts.
const ORDER_KEYS: &[&str] = &[
    "createdTime",
    "folder",
    "modifiedByMeTime",
    "modifiedTime",
    "name",
    "name_natural",
    "quotaBytesUsed",
    "recency",
    "sharedWithMeTime",
    "starred",
    "viewedByMeTime",
];

/// The connector.
struct Drive;
connector!(Drive);

impl Connector for Drive {
    fn actions() -> Actions {
        Actions::new()
            .action("list_files", list_files)
            .action("upload_file", upload_file)
            .action("download_file", download_file)
    }

    fn test_connection() -> Result<Value, Error> {
        // The cheapest call that proves the token: who the user is and how full the Drive is.
        let about = send(
            Request::get(url("/drive/v3/about"))
                .query("fields", "user(displayName,emailAddress),storageQuota(limit,usage)"),
        )?;
        Ok(json!({
            "email_address": about["user"]["emailAddress"],
            "display_name": about["user"]["displayName"],
            "storage_limit": number(&about["storageQuota"]["limit"]),
            "storage_usage": number(&about["storageQuota"]["usage"]),
        }))
    }
}

/// Input of `list_files`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFiles {
    q: Option<String>,
    page_size: Option<u32>,
    page_token: Option<String>,
    order_by: Option<String>,
    #[serde(default)]
    include_shared_drives: bool,
}

fn list_files(input: ListFiles) -> Result<Value, Error> {
    if input.page_size.is_some_and(|n| !(1..=1000).contains(&n)) {
        return Err(Error::invalid_input("`page_size` must be between 1 and 1000"));
    }
    if let Some(order) = &input.order_by {
        check_order_by(order)?;
    }
    let mut request = Request::get(url("/drive/v3/files"))
        .query_opt("q", input.q.as_deref())
        .query_opt("pageSize", input.page_size)
        .query_opt("pageToken", input.page_token.as_deref())
        .query_opt("orderBy", input.order_by.as_deref())
        .query("fields", format!("nextPageToken,incompleteSearch,files({FILE_FIELDS})"));
    if input.include_shared_drives {
        request = request
            .query("corpora", "allDrives")
            .query("includeItemsFromAllDrives", "true")
            .query("supportsAllDrives", "true");
    }
    let page = send(request)?;
    let files: Vec<Value> = page["files"]
        .as_array()
        .map(|list| list.iter().map(file).collect())
        .unwrap_or_default();
    Ok(json!({
        "files": files,
        "next_page_token": page["nextPageToken"],
        "incomplete_search": page["incompleteSearch"].as_bool().unwrap_or(false),
    }))
}

/// Refuse an `orderBy` with a key Drive does not know (the schema checks only its shape).
fn check_order_by(order: &str) -> Result<(), Error> {
    let unknown = order.split(',').map(str::trim).find(|&key| {
        let name = key.strip_suffix(" desc").unwrap_or(key).trim_end();
        !ORDER_KEYS.contains(&name)
    });
    match unknown {
        None => Ok(()),
        Some(key) => Err(Error::invalid_input(format!(
            "`order_by`: `{key}` is not a sort key; use {}, each optionally followed by ` desc`",
            ORDER_KEYS.join(", ")
        ))),
    }
}

/// Input of `upload_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadFile {
    name: String,
    content_base64: String,
    mime_type: Option<String>,
    #[serde(default)]
    parents: Vec<String>,
    description: Option<String>,
}

fn upload_file(input: UploadFile) -> Result<Value, Error> {
    if input.name.trim().is_empty() {
        return Err(Error::invalid_input("`name` must not be blank"));
    }
    let mime_type = input
        .mime_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("application/octet-stream")
        .to_ascii_lowercase();
    if !valid_media_type(&mime_type) {
        return Err(Error::invalid_input(
            "`mime_type` must be a media type such as application/pdf",
        ));
    }
    if mime_type.starts_with(GOOGLE_APPS) {
        return Err(Error::invalid_input(
            "`mime_type` must be the content's own type (e.g. text/csv); Google Workspace types (application/vnd.google-apps.*) hold no bytes",
        ));
    }
    if input.parents.len() > 1 {
        return Err(Error::invalid_input("`parents`: a Drive file has one parent folder"));
    }
    if let Some(parent) = input.parents.iter().find(|p| !is_id(p)) {
        return Err(Error::invalid_input(format!(
            "`parents`: `{parent}` is not a Drive folder id"
        )));
    }
    let content = decode_base64(&input.content_base64)
        .map_err(|e| Error::invalid_input(format!("`content_base64` is not base64: {e}")))?;

    // A retry of the same call (same key) returns what the first attempt uploaded.
    let key = idempotency_key().map(|k| property_value(&k));
    if let Some(key) = &key
        && let Some(existing) = find_uploaded(key)?
    {
        let mut out = file(&existing);
        out["reused"] = json!(true);
        return Ok(out);
    }

    let mut metadata = json!({ "name": input.name, "mimeType": mime_type });
    if !input.parents.is_empty() {
        metadata["parents"] = json!(input.parents);
    }
    if let Some(description) = &input.description {
        metadata["description"] = json!(description);
    }
    if let Some(key) = &key {
        metadata["appProperties"][KEY_PROPERTY] = json!(key);
    }
    let metadata = serde_json::to_vec(&metadata)
        .map_err(|e| Error::new("internal", format!("cannot encode the file's metadata: {e}")))?;
    let boundary = boundary_for(&[metadata.as_slice(), content.as_slice()])?;
    let mut body = Vec::with_capacity(metadata.len() + content.len() + 4 * boundary.len() + 128);
    body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n").as_bytes());
    body.extend_from_slice(&metadata);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: {mime_type}\r\n\r\n").as_bytes());
    body.extend_from_slice(&content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());

    let uploaded = send(
        Request::post(url("/upload/drive/v3/files"))
            .query("uploadType", "multipart")
            .query("supportsAllDrives", "true")
            .query("fields", FILE_FIELDS)
            .header("Content-Type", format!("multipart/related; boundary={boundary}"))
            .body(body),
    )?;
    let mut out = file(&uploaded);
    out["reused"] = json!(false);
    Ok(out)
}

/// The file an earlier attempt uploaded under idempotency key `key`, if Drive has it (and it
/// is not in the trash).
fn find_uploaded(key: &str) -> Result<Option<Value>, Error> {
    let escaped = key.replace('\\', "\\\\").replace('\'', "\\'");
    let q = format!("appProperties has {{ key='{KEY_PROPERTY}' and value='{escaped}' }} and trashed = false");
    let page = send(
        Request::get(url("/drive/v3/files"))
            .query("q", q)
            .query("pageSize", 1)
            .query("fields", format!("files({FILE_FIELDS})"))
            .query("corpora", "allDrives")
            .query("includeItemsFromAllDrives", "true")
            .query("supportsAllDrives", "true"),
    )?;
    Ok(page["files"].as_array().and_then(|files| files.first()).cloned())
}

/// The app-property value for an idempotency key: Drive allows 124 bytes for a property's key
/// and value together, so a longer key is stored as a hash of itself.
fn property_value(key: &str) -> String {
    if key.len() <= 100 {
        key.to_string()
    } else {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        format!("hash:{:016x}", hasher.finish())
    }
}

/// A multipart boundary that occurs in none of `parts` (checked byte by byte), derived from
/// their contents.
fn boundary_for(parts: &[&[u8]]) -> Result<String, Error> {
    for salt in 0u32..8 {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        for part in parts {
            part.hash(&mut hasher);
        }
        let boundary = format!("nexum-part-{:016x}", hasher.finish());
        if !parts.iter().any(|part| contains(part, boundary.as_bytes())) {
            return Ok(boundary);
        }
    }
    Err(Error::new(
        "internal",
        "no multipart boundary absent from the file could be found",
    ))
}

/// Whether `needle` (not empty) occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Input of `download_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadFile {
    file_id: String,
    export_mime_type: Option<String>,
}

fn download_file(input: DownloadFile) -> Result<Value, Error> {
    // The id becomes a path segment: only Drive's id characters may get there.
    if !is_id(&input.file_id) {
        return Err(Error::invalid_input(
            "`file_id` must be a Drive file id (letters, digits, `-`, `_`)",
        ));
    }
    if let Some(export) = &input.export_mime_type
        && !valid_media_type(export)
    {
        return Err(Error::invalid_input(
            "`export_mime_type` must be a media type such as application/pdf",
        ));
    }
    let path = format!("/drive/v3/files/{}", input.file_id);
    let meta = send(
        Request::get(url(&path))
            .query("fields", "id,name,mimeType,size,shortcutDetails(targetId)")
            .query("supportsAllDrives", "true"),
    )?;
    let name = meta["name"].as_str().unwrap_or_default().to_string();
    let mime_type = meta["mimeType"].as_str().unwrap_or_default().to_string();
    let (request, out_type, exported) = if mime_type == FOLDER {
        return Err(Error::new(
            "not_downloadable",
            format!(
                "`{name}` is a folder: list its files with list_files and q `'{}' in parents`",
                input.file_id
            ),
        ));
    } else if mime_type == SHORTCUT {
        let target = meta["shortcutDetails"]["targetId"].as_str().unwrap_or("its target");
        return Err(Error::new(
            "not_downloadable",
            format!("`{name}` is a shortcut: download the file it points to ({target})"),
        ));
    } else if mime_type.starts_with(GOOGLE_APPS) {
        let Some(export) = input.export_mime_type else {
            return Err(Error::new(
                "not_downloadable",
                format!(
                    "`{name}` is a Google Workspace file ({mime_type}), which has no bytes to download: export it by giving `export_mime_type`, e.g. {}",
                    export_hint(&mime_type)
                ),
            ));
        };
        let request = Request::get(url(&format!("{path}/export"))).query("mimeType", export.as_str());
        (request, export, true)
    } else {
        if input.export_mime_type.is_some() {
            return Err(Error::invalid_input(format!(
                "`export_mime_type` applies only to Google Docs, Sheets, Slides and Drawings; `{name}` is a {mime_type} file: leave it out"
            )));
        }
        if let Some(size) = number(&meta["size"]).as_u64()
            && size > MAX_DOWNLOAD_BYTES
        {
            return Err(too_large(&name, size));
        }
        let request = Request::get(url(&path))
            .query("alt", "media")
            .query("supportsAllDrives", "true");
        (request, mime_type, false)
    };
    let token = credential(SCHEME)?;
    let response = request.auth(&token).send()?;
    if !response.is_success() {
        return Err(api_error(&response));
    }
    let size = response.body.len() as u64;
    if size > MAX_DOWNLOAD_BYTES {
        return Err(too_large(&name, size));
    }
    Ok(json!({
        "id": meta["id"],
        "name": name,
        "mime_type": out_type,
        "size": size,
        "content_base64": STANDARD.encode(response.body.as_slice()),
        "exported": exported,
    }))
}

/// Export formats worth suggesting for a Google Workspace type.
fn export_hint(mime_type: &str) -> &'static str {
    match mime_type.strip_prefix(GOOGLE_APPS).unwrap_or_default() {
        "document" => {
            "application/pdf, text/plain or application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        }
        "spreadsheet" => {
            "text/csv (the first sheet), application/pdf or application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        }
        "presentation" => {
            "application/pdf or application/vnd.openxmlformats-officedocument.presentationml.presentation"
        }
        "drawing" => "image/png, image/svg+xml or application/pdf",
        _ => "application/pdf",
    }
}

/// The error for a file over [`MAX_DOWNLOAD_BYTES`].
fn too_large(name: &str, size: u64) -> Error {
    Error::new(
        "file_too_large",
        format!(
            "`{name}` is {size} bytes; download_file returns at most {MAX_DOWNLOAD_BYTES} bytes (its base64 must fit an action's 1 MiB output)"
        ),
    )
}

/// A Drive file as the actions return it.
fn file(f: &Value) -> Value {
    json!({
        "id": f["id"],
        "name": f["name"],
        "mime_type": f["mimeType"],
        "modified_time": f["modifiedTime"],
        "size": number(&f["size"]),
        "parents": Value::Array(f["parents"].as_array().cloned().unwrap_or_default()),
        "web_view_link": f["webViewLink"],
    })
}

/// An int64 Drive sends as a JSON string (`"size": "1024"`) as a number; null when absent.
fn number(value: &Value) -> Value {
    match value {
        Value::String(s) => s.parse::<u64>().map(Value::from).unwrap_or(Value::Null),
        Value::Number(_) => value.clone(),
        _ => Value::Null,
    }
}

/// A Drive file or folder id: letters, digits, `-` and `_`.
fn is_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `<api_base><path>`.
fn url(path: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| DEFAULT_API_BASE.into());
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Send with the connection's access token; a non-2xx answer becomes [`api_error`].
fn send(request: Request<'_>) -> Result<Value, Error> {
    let token = credential(SCHEME)?;
    request.auth(&token).send_value(api_error)
}

/// Google's `{"error": {"code", "message", "errors": [{"reason"}]}}` under a stable code, by
/// reason first: `rate_limited` (retryable) for the per-user rate limits, `quota_exceeded` for
/// the project's daily quota, `storage_quota_exceeded` when the Drive is full,
/// `not_downloadable`, `file_too_large` for an export over Google's limit, and
/// `permission_denied` when the user may not touch that one file (not a connection failure);
/// then by status: 400 `invalid_argument`, 401 `unauthorized`, 403 `forbidden`, 404
/// `not_found`, 413 `request_too_large`, 429 `rate_limited` and 5xx `upstream_error`.
fn api_error(response: &Response) -> Error {
    let detail: Value = response.json().unwrap_or(Value::Null);
    let error = &detail["error"];
    let reason = error["errors"][0]["reason"].as_str();
    let mapped = Error::from_status(response.status, &response.body);
    let (code, retryable) = match (response.status, reason) {
        (_, Some("rateLimitExceeded" | "userRateLimitExceeded")) => ("rate_limited", true),
        (_, Some("dailyLimitExceeded" | "quotaExceeded")) => ("quota_exceeded", false),
        (_, Some("storageQuotaExceeded" | "teamDriveFileLimitExceeded")) => ("storage_quota_exceeded", false),
        (_, Some("fileNotDownloadable" | "cannotDownloadAbusiveFile")) => ("not_downloadable", false),
        (_, Some("exportSizeLimitExceeded")) => ("file_too_large", false),
        (_, Some("insufficientFilePermissions" | "appNotAuthorizedToFile")) => ("permission_denied", false),
        (400, _) => ("invalid_argument", false),
        (413, _) => ("request_too_large", false),
        _ => (mapped.code.as_str(), mapped.retryable),
    };
    let mut message = match error["message"].as_str() {
        Some(text) => format!("Google Drive {} {}: {text}", response.status, reason.unwrap_or("error")),
        None => mapped.message.clone(),
    };
    if let Some(wait) = response.header("retry-after").map(str::trim)
        && !wait.is_empty()
        && wait.len() <= 64
    {
        message.push_str(&format!(" (retry after {wait} s)"));
    }
    Error::new(code, message).with_retryable(retryable)
}
