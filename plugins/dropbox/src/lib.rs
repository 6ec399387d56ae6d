//! Dropbox connector: upload files, list folders and create shared links over the Dropbox
//! API v2, with the connection's OAuth2 access token.
//!
//! Dropbox has two hosts: RPC calls (`api_base`, JSON in and out, every call a POST) and
//! content calls (`content_base`, the file's bytes as the body and the JSON arguments in the
//! `Dropbox-API-Arg` header, with every non-ASCII character escaped as `\uXXXX` as Dropbox
//! requires of that header). Errors carry `error_summary` (e.g. `path/not_found/..`), whose
//! leading tag becomes the connector's code. Dropbox has no idempotency key: a retried `upload`
//! in mode `add` fails with `conflict` (or, with `autorename`, keeps a second copy), one in mode
//! `overwrite` writes the same bytes again.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use nexum_connector_sdk::prelude::*;

/// The auth scheme (`[[auth]]` id) whose token every request carries.
const SCHEME: &str = "oauth";
/// The RPC origin when the connection sets no `api_base`.
const DEFAULT_API_BASE: &str = "https://api.dropboxapi.com";
/// The content origin when the connection sets no `content_base`.
const DEFAULT_CONTENT_BASE: &str = "https://content.dropboxapi.com";
/// Tags that only say which argument an error is about (`path/not_found`): the tag after
/// them names the error.
const WRAPPERS: &[&str] = &[
    "path",
    "path_lookup",
    "lookup",
    "from_lookup",
    "from_write",
    "to",
    "reason",
    "settings_error",
];

/// Dropbox's timestamp format, `%Y-%m-%dT%H:%M:%SZ`, with `0` standing for any digit.
const TIMESTAMP_SHAPE: &[u8] = b"0000-00-00T00:00:00Z";

/// Base64 decoding that accepts input with or without `=` padding.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
/// The standard alphabet (`+/`), padding optional.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
/// The URL-safe alphabet (`-_`), padding optional.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// The Dropbox connector.
struct Dropbox;
connector!(Dropbox);

impl Connector for Dropbox {
    fn actions() -> Actions {
        Actions::new()
            .action("upload", upload)
            .action("list_folder", list_folder)
            .action("create_shared_link", create_shared_link)
    }

    /// The signed-in account (`users/get_current_account`, which takes no argument: no body).
    fn test_connection() -> Result<Value, Error> {
        let account = value(call(Request::post(api("/2/users/get_current_account")))?)?;
        Ok(json!({
            "account_id": account["account_id"],
            "email": account["email"],
            "name": account["name"]["display_name"],
            "account_type": account["account_type"][".tag"],
        }))
    }
}

/// Input of `upload`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upload {
    /// Where to put the file.
    path: String,
    /// The file's bytes, base64.
    content_base64: String,
    /// `add` (default) or `overwrite`.
    mode: Option<String>,
    /// Rename on a conflict instead of failing.
    autorename: Option<bool>,
    /// Do not notify the user's clients.
    mute: Option<bool>,
}

/// `POST <content_base>/2/files/upload`: the bytes as the body, the arguments in
/// `Dropbox-API-Arg`.
fn upload(input: Upload) -> Result<Value, Error> {
    let path = input.path.as_str();
    if !is_item_path(path) || path.ends_with('/') {
        return Err(Error::invalid_input(
            "`path` must be a file path such as /Reports/q1.pdf (starting with `/`, not ending with one), or an id:/ns: path",
        ));
    }
    let mode = input.mode.as_deref().unwrap_or("add");
    if !matches!(mode, "add" | "overwrite") {
        return Err(Error::invalid_input("`mode` must be `add` or `overwrite`"));
    }
    let compact: Vec<u8> = input
        .content_base64
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = STANDARD_LENIENT
        .decode(compact.as_slice())
        .or_else(|_| URL_SAFE_LENIENT.decode(compact.as_slice()))
        .map_err(|e| Error::invalid_input(format!("`content_base64` is not base64: {e}")))?;
    let arg = json!({
        "path": path,
        "mode": mode,
        "autorename": input.autorename.unwrap_or(false),
        "mute": input.mute.unwrap_or(false),
        "strict_conflict": false,
    });
    let request = Request::post(content("/2/files/upload"))
        .header("Dropbox-API-Arg", header_json(&arg))
        .header("Content-Type", "application/octet-stream")
        .body(bytes);
    let file = value(call(request)?)?;
    Ok(json!({
        "id": file["id"],
        "name": file["name"],
        "path_display": file["path_display"],
        "path_lower": file["path_lower"],
        "rev": file["rev"],
        "size": file["size"],
        "content_hash": file["content_hash"],
        "server_modified": file["server_modified"],
    }))
}

/// Input of `list_folder`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFolder {
    /// The folder; `""` or `/` for the root.
    path: Option<String>,
    /// Include sub-folders' entries.
    recursive: Option<bool>,
    /// Approximate page size.
    limit: Option<u32>,
    /// The previous page's cursor.
    cursor: Option<String>,
}

/// `files/list_folder`, or `files/list_folder/continue` with a cursor (which carries the first
/// page's arguments, so the others are ignored then).
fn list_folder(input: ListFolder) -> Result<Value, Error> {
    let page = if let Some(cursor) = input.cursor {
        rpc("/2/files/list_folder/continue", &json!({ "cursor": cursor }))?
    } else {
        let path = input.path.as_deref().unwrap_or_default();
        // Dropbox names the root "", and refuses "/" for it.
        let path = if path == "/" { "" } else { path.trim_end_matches('/') };
        let valid = path.is_empty() || path.starts_with('/') || path.starts_with("id:") || path.starts_with("ns:");
        if !valid {
            return Err(Error::invalid_input(
                "`path` must be a folder path such as /Reports, \"\" for the root, or an id:/ns: path",
            ));
        }
        if input.limit.is_some_and(|n| !(1..=2000).contains(&n)) {
            return Err(Error::invalid_input("`limit` must be between 1 and 2000"));
        }
        let mut body = json!({ "path": path, "recursive": input.recursive.unwrap_or(false) });
        if let Some(limit) = input.limit {
            body["limit"] = json!(limit);
        }
        rpc("/2/files/list_folder", &body)?
    };
    let entries: Vec<Value> = page["entries"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    json!({
                        "type": e[".tag"],
                        "name": e["name"],
                        "id": e["id"],
                        "path_display": e["path_display"],
                        "path_lower": e["path_lower"],
                        "size": e["size"],
                        "rev": e["rev"],
                        "content_hash": e["content_hash"],
                        "client_modified": e["client_modified"],
                        "server_modified": e["server_modified"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({ "entries": entries, "cursor": page["cursor"], "has_more": page["has_more"] }))
}

/// Input of `create_shared_link`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSharedLink {
    /// The file or folder.
    path: String,
    /// The link's settings.
    settings: Option<LinkSettings>,
}

/// Dropbox's `SharedLinkSettings`, as far as this action offers them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkSettings {
    /// `public`, `team` or `no_one`.
    audience: Option<String>,
    /// `viewer`, `editor` or `max`.
    access: Option<String>,
    /// Whether the link allows downloading.
    allow_download: Option<bool>,
    /// Expiry, `YYYY-MM-DDTHH:MM:SSZ`.
    expires: Option<String>,
    /// A password the link requires.
    link_password: Option<String>,
}

/// `sharing/create_shared_link_with_settings`; an item that already has a link answers
/// `shared_link_already_exists`, usually with that link, which is then returned.
fn create_shared_link(input: CreateSharedLink) -> Result<Value, Error> {
    let path = input.path.as_str();
    if !is_item_path(path) {
        return Err(Error::invalid_input(
            "`path` must be a file or folder path such as /Reports/q1.pdf, or an id:/ns: path",
        ));
    }
    let mut body = json!({ "path": path });
    if let Some(settings) = input.settings {
        body["settings"] = link_settings(settings)?;
    }
    let response = call(Request::post(api("/2/sharing/create_shared_link_with_settings")).json(&body)?)?;
    if response.status == 409 {
        let detail: Value = response.json().unwrap_or(Value::Null);
        let existing = &detail["error"]["shared_link_already_exists"]["metadata"];
        if detail["error"][".tag"] == "shared_link_already_exists" && existing["url"].is_string() {
            return Ok(link_output(existing, true));
        }
    }
    Ok(link_output(&value(response)?, false))
}

/// `settings` as Dropbox's JSON, checking what the schema cannot.
fn link_settings(settings: LinkSettings) -> Result<Value, Error> {
    let check = |field: &str, value: Option<&str>, allowed: &[&str]| match value {
        Some(v) if !allowed.contains(&v) => Err(Error::invalid_input(format!(
            "`settings.{field}` must be one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    };
    check("audience", settings.audience.as_deref(), &["public", "team", "no_one"])?;
    check("access", settings.access.as_deref(), &["viewer", "editor", "max"])?;
    if let Some(expires) = &settings.expires {
        let shaped = expires.len() == TIMESTAMP_SHAPE.len()
            && expires
                .bytes()
                .zip(TIMESTAMP_SHAPE)
                .all(|(c, s)| if *s == b'0' { c.is_ascii_digit() } else { c == *s });
        if !shaped {
            return Err(Error::invalid_input(
                "`settings.expires` must be a UTC time like 2025-12-31T23:59:59Z",
            ));
        }
    }
    let mut out = json!({});
    if let Some(audience) = settings.audience {
        out["audience"] = json!(audience);
    }
    if let Some(access) = settings.access {
        out["access"] = json!(access);
    }
    if let Some(allow) = settings.allow_download {
        out["allow_download"] = json!(allow);
    }
    if let Some(expires) = settings.expires {
        out["expires"] = json!(expires);
    }
    if let Some(password) = settings.link_password {
        out["require_password"] = json!(true);
        out["link_password"] = json!(password);
    }
    Ok(out)
}

/// A `SharedLinkMetadata` as this action's output.
fn link_output(link: &Value, already_existed: bool) -> Value {
    json!({
        "url": link["url"],
        "name": link["name"],
        "id": link["id"],
        "path_lower": link["path_lower"],
        "audience": link["link_permissions"]["effective_audience"][".tag"],
        "expires": link["expires"],
        "already_existed": already_existed,
    })
}

/// `value` as JSON that is safe in an HTTP header: every character outside printable ASCII
/// escaped as `\uXXXX` (UTF-16, so astral characters become surrogate pairs), as Dropbox
/// requires of `Dropbox-API-Arg`. Only string contents can hold such characters, and there the
/// escape means the same character.
fn header_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            let mut units = [0_u16; 2];
            for unit in c.encode_utf16(&mut units).iter() {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `<api_base><path>`.
fn api(path: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| DEFAULT_API_BASE.into());
    format!("{}{path}", base.trim_end_matches('/'))
}

/// `<content_base><path>`.
fn content(path: &str) -> String {
    let base = var("content_base").unwrap_or_else(|| DEFAULT_CONTENT_BASE.into());
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Send with the connection's access token.
fn call(request: Request<'_>) -> Result<Response, Error> {
    let token = credential(SCHEME)?;
    request.auth(&token).send()
}

/// Whether `path` names a file or folder: `/…` (not the root), or an `id:` or `ns:` path.
fn is_item_path(path: &str) -> bool {
    (path.len() > 1 && path.starts_with('/')) || path.starts_with("id:") || path.starts_with("ns:")
}

/// An RPC call: POST `body` as JSON to `<api_base><path>`.
fn rpc(path: &str, body: &Value) -> Result<Value, Error> {
    value(call(Request::post(api(path)).json(body)?)?)
}

/// The JSON of a 2xx `response`, or [`api_error`].
fn value(response: Response) -> Result<Value, Error> {
    if !response.is_success() {
        return Err(api_error(&response));
    }
    if response.body.is_empty() {
        return Ok(Value::Null);
    }
    response.json()
}

/// The tag naming a Dropbox error in its `error_summary`: the first tag, or the one after a
/// wrapper such as `path` (`path/not_found/..` → `not_found`), as `[a-z0-9_]` only.
fn summary_tag(summary: &str) -> String {
    let mut tags = summary
        .split('/')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.starts_with('.'));
    let first = tags.next().unwrap_or_default();
    let tag = if WRAPPERS.contains(&first) {
        tags.next().unwrap_or(first)
    } else {
        first
    };
    tag.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Dropbox's `{error_summary, error: {.tag …}, user_message}` under a stable code: 409 errors
/// by their tag (`not_found`, `conflict`, `insufficient_space`, `malformed_path`,
/// `no_write_permission`, `disallowed_name`, `email_not_verified`, `cursor_reset` for an
/// expired cursor, …); 401 `unauthorized` (`token_expired`, `account_inactive`,
/// `missing_scope` where Dropbox says so); 403 `forbidden`; 429 and
/// `too_many_write_operations` `rate_limited` (retryable, with Retry-After); 400
/// `bad_request` (Dropbox's plain-text explanation as the message); 5xx `upstream_error`
/// (retryable).
fn api_error(response: &Response) -> Error {
    let detail: Value = response.json().unwrap_or(Value::Null);
    let summary = detail["error_summary"].as_str().map(str::trim).unwrap_or_default();
    let tag = summary_tag(summary);
    let mapped = Error::from_status(response.status, &response.body);
    let (code, retryable) = match (response.status, tag.as_str()) {
        (429, _) | (_, "too_many_requests" | "too_many_write_operations") => ("rate_limited", true),
        (401, "expired_access_token") => ("token_expired", false),
        (401, "user_suspended") => ("account_inactive", false),
        (401, "missing_scope") => ("missing_scope", false),
        (401, _) => ("unauthorized", false),
        (403, _) => ("forbidden", false),
        (409, "reset") => ("cursor_reset", false),
        (409, "") => ("conflict", false),
        (409, t) => (t, false),
        _ => (mapped.code.as_str(), mapped.retryable),
    };
    let mut message = if summary.is_empty() {
        mapped.message.clone()
    } else {
        format!("Dropbox {}: {summary}", response.status)
    };
    if let Some(text) = detail["user_message"]["text"].as_str() {
        message.push_str(&format!(" ({text})"));
    }
    if let Some(scope) = detail["error"]["required_scope"].as_str() {
        message.push_str(&format!(
            "; the connection needs the `{scope}` scope: reconnect after adding it to the app"
        ));
    }
    let wait = response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| detail["error"]["retry_after"].as_u64());
    if retryable && let Some(wait) = wait {
        message.push_str(&format!(" (retry after {wait} s)"));
    }
    Error::new(code, message).with_retryable(retryable)
}
