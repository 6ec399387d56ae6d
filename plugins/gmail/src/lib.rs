//! Gmail connector: send mail as the signed-in Google account and read its mailbox over the
//! Gmail API v1 (`/gmail/v1/users/me/…`), with the connection's OAuth2 access token.
//!
//! `send_message` builds an RFC 5322 message with `mail-builder` (`multipart/mixed` around a
//! `multipart/alternative` of text and HTML, attachments base64 with their file name, RFC 2047
//! encoded headers, CRLF line endings) and posts it base64url-encoded as `raw`. Gmail has no
//! idempotency header, so the call's idempotency key is not sent anywhere.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use nexum_connector_sdk::mail::{one_line, split_display, valid_address, valid_media_type};
use nexum_connector_sdk::prelude::*;

/// The Gmail API origin when the connection sets no `api_base`.
const DEFAULT_API_BASE: &str = "https://gmail.googleapis.com";

/// The auth scheme (`[[auth]]` id) whose token every request carries.
const SCHEME: &str = "oauth";

/// The most of one decoded body (`text`, `html`) `get_message` returns, so the output stays
/// under the host's output cap; a longer body is cut at a character boundary.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// How deep `get_message` follows nested MIME parts.
const MAX_DEPTH: usize = 16;

/// Base64 decoding that accepts input with or without `=` padding.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
/// The standard alphabet (`+/`), padding optional: attachments as callers give them.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
/// The URL-safe alphabet (`-_`), padding optional: Gmail's `body.data`.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

struct Gmail;
connector!(Gmail);

impl Connector for Gmail {
    fn actions() -> Actions {
        Actions::new()
            .action("send_message", send_message)
            .action("list_messages", list_messages)
            .action("get_message", get_message)
    }

    fn test_connection() -> Result<Value, Error> {
        // The cheapest call that proves the token: the mailbox's profile.
        let profile = send(Request::get(url("/profile")))?;
        Ok(json!({ "email_address": profile["emailAddress"], "messages_total": profile["messagesTotal"] }))
    }
}

/// An address as the input gives it: `ada@example.com`, `Ada <ada@example.com>`, or
/// `{"address": "ada@example.com", "name": "Ada"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Recipient {
    /// A bare address, or `Name <address>`.
    Text(String),
    /// An address with an optional display name.
    Named(NamedRecipient),
}

/// The object form of a [`Recipient`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedRecipient {
    address: String,
    name: Option<String>,
}

impl Recipient {
    /// The recipient as a header address: its display name on one line (if any) and its
    /// checked address.
    fn to_address<'x>(&self) -> Result<Address<'x>, Error> {
        let (name, address) = match self {
            Recipient::Text(text) => split_display(text),
            Recipient::Named(named) => (named.name.clone(), named.address.trim().to_string()),
        };
        if !valid_address(&address) {
            return Err(Error::invalid_input(format!("`{address}` is not an email address")));
        }
        let name = name.map(|n| one_line(&n)).filter(|n| !n.is_empty());
        Ok(Address::new_address(name, address))
    }
}

/// A file to attach.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Attachment {
    filename: String,
    content_type: Option<String>,
    content_base64: String,
}

/// Input of `send_message`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    #[serde(default)]
    to: Vec<Recipient>,
    #[serde(default)]
    cc: Vec<Recipient>,
    #[serde(default)]
    bcc: Vec<Recipient>,
    from: Option<Recipient>,
    reply_to: Option<Recipient>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    thread_id: Option<String>,
    in_reply_to: Option<String>,
}

fn send_message(input: SendMessage) -> Result<Value, Error> {
    if input.to.is_empty() && input.cc.is_empty() && input.bcc.is_empty() {
        return Err(Error::invalid_input(
            "give at least one recipient in `to`, `cc` or `bcc`",
        ));
    }
    if input.text.is_none() && input.html.is_none() {
        return Err(Error::invalid_input("give `text`, `html` or both"));
    }
    if let Some(thread) = &input.thread_id
        && !is_id(thread)
    {
        return Err(Error::invalid_input("`thread_id` must be a Gmail thread id"));
    }
    let mime = mime_message(&input)?;
    let mut body = json!({ "raw": URL_SAFE_NO_PAD.encode(mime.as_slice()) });
    if let Some(thread) = input.thread_id {
        body["threadId"] = json!(thread);
    }
    // Gmail has no idempotency header or request id: a retried step may send the message
    // again, so `idempotency_key()` is deliberately not used (see README).
    let sent = send(Request::post(url("/messages/send")).json(&body)?)?;
    Ok(json!({ "id": sent["id"], "thread_id": sent["threadId"], "label_ids": array(&sent["labelIds"]) }))
}

/// The RFC 5322 message for `input`, CRLF line endings throughout.
fn mime_message(input: &SendMessage) -> Result<Vec<u8>, Error> {
    let mut builder = MessageBuilder::new();
    if let Some(from) = &input.from {
        builder = builder.from(from.to_address()?);
    }
    if let Some(to) = address_list(&input.to)? {
        builder = builder.to(to);
    }
    if let Some(cc) = address_list(&input.cc)? {
        builder = builder.cc(cc);
    }
    // Gmail reads Bcc from the message and removes the header before delivery.
    if let Some(bcc) = address_list(&input.bcc)? {
        builder = builder.bcc(bcc);
    }
    if let Some(reply_to) = &input.reply_to {
        builder = builder.reply_to(reply_to.to_address()?);
    }
    if let Some(original) = &input.in_reply_to {
        // Gmail threads a reply by References/In-Reply-To (with `thread_id` and the subject).
        let id = message_id(original)?;
        builder = builder.in_reply_to(id.clone()).references(id);
    }
    if let Some(subject) = &input.subject {
        // A header is one line: line breaks would start new headers.
        builder = builder.subject(one_line(subject));
    }
    if let Some(text) = &input.text {
        builder = builder.text_body(text.as_str());
    }
    if let Some(html) = &input.html {
        builder = builder.html_body(html.as_str());
    }
    for attachment in &input.attachments {
        let part = attachment_part(attachment)?;
        builder.attachments.get_or_insert_with(Vec::new).push(part);
    }
    builder
        .write_to_vec()
        .map_err(|e| Error::new("internal", format!("cannot build the MIME message: {e}")))
}

/// `list` as one address-list header, or `None` when it is empty.
fn address_list<'x>(list: &[Recipient]) -> Result<Option<Address<'x>>, Error> {
    if list.is_empty() {
        return Ok(None);
    }
    let addresses = list.iter().map(Recipient::to_address).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Address::new_list(addresses)))
}

/// An attachment part: base64 transfer encoding whatever the type (so the bytes survive
/// exactly), `Content-Disposition: attachment` with the file name.
fn attachment_part<'x>(attachment: &Attachment) -> Result<MimePart<'x>, Error> {
    let filename = one_line(&attachment.filename);
    if filename.is_empty() {
        return Err(Error::invalid_input("an attachment needs a `filename`"));
    }
    let content_type = attachment
        .content_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("application/octet-stream")
        .to_ascii_lowercase();
    if !valid_media_type(&content_type) {
        return Err(Error::invalid_input(format!(
            "attachment `{filename}`: `content_type` must be a media type such as application/pdf"
        )));
    }
    let bytes = decode_base64(&attachment.content_base64)
        .map_err(|e| Error::invalid_input(format!("attachment `{filename}`: `content_base64` is not base64: {e}")))?;
    // An explicit Content-Transfer-Encoding makes mail-builder write the body as given.
    Ok(MimePart::new(ContentType::new(content_type), mime_base64(&bytes))
        .attachment(filename)
        .transfer_encoding("base64"))
}

/// `bytes` in base64, as MIME wants it: lines of at most 76 characters ending in CRLF.
fn mime_base64(bytes: &[u8]) -> Vec<u8> {
    let encoded = STANDARD.encode(bytes);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Decode base64 in either alphabet, padding optional, whitespace ignored.
fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD_LENIENT
        .decode(compact.as_slice())
        .or_else(|_| URL_SAFE_LENIENT.decode(compact.as_slice()))
}

/// Input of `list_messages`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListMessages {
    q: Option<String>,
    max_results: Option<u32>,
    page_token: Option<String>,
    #[serde(default)]
    label_ids: Vec<String>,
    include_spam_trash: Option<bool>,
}

fn list_messages(input: ListMessages) -> Result<Value, Error> {
    if input.max_results.is_some_and(|n| !(1..=500).contains(&n)) {
        return Err(Error::invalid_input("`max_results` must be between 1 and 500"));
    }
    let mut request = Request::get(url("/messages"))
        .query_opt("q", input.q.as_deref())
        .query_opt("maxResults", input.max_results)
        .query_opt("pageToken", input.page_token.as_deref())
        .query_opt("includeSpamTrash", input.include_spam_trash);
    for label in &input.label_ids {
        request = request.query("labelIds", label);
    }
    let page = send(request)?;
    // Gmail leaves `messages` out of an empty page.
    let messages: Vec<Value> = page["messages"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| json!({ "id": m["id"], "thread_id": m["threadId"] }))
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({
        "messages": messages,
        "next_page_token": page["nextPageToken"],
        "result_size_estimate": page["resultSizeEstimate"],
    }))
}

/// How much of a message `get_message` asks Gmail for.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
enum Format {
    /// Headers, labels, snippet and the decoded body parts.
    #[default]
    Full,
    /// Headers, labels and snippet.
    Metadata,
    /// Labels and snippet only.
    Minimal,
}

impl Format {
    /// Gmail's name for it.
    fn as_str(self) -> &'static str {
        match self {
            Format::Full => "full",
            Format::Metadata => "metadata",
            Format::Minimal => "minimal",
        }
    }
}

/// Input of `get_message`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetMessage {
    id: String,
    format: Option<Format>,
}

fn get_message(input: GetMessage) -> Result<Value, Error> {
    // The id becomes a path segment: only Gmail's id characters may get there.
    if !is_id(&input.id) {
        return Err(Error::invalid_input(
            "`id` must be a Gmail message id (letters, digits, `-`, `_`)",
        ));
    }
    let format = input.format.unwrap_or_default();
    let message = send(Request::get(url(&format!("/messages/{}", input.id))).query("format", format.as_str()))?;
    let payload = &message["payload"];
    let mut bodies = Bodies::default();
    if format == Format::Full {
        walk(payload, 0, &mut bodies);
    }
    Ok(json!({
        "id": message["id"],
        "thread_id": message["threadId"],
        "label_ids": array(&message["labelIds"]),
        "snippet": message["snippet"],
        "internal_date": message["internalDate"],
        "size_estimate": message["sizeEstimate"],
        "subject": header(payload, "Subject"),
        "from": header(payload, "From"),
        "to": header(payload, "To"),
        "cc": header(payload, "Cc"),
        "date": header(payload, "Date"),
        "message_id": header(payload, "Message-ID"),
        "text": bodies.text,
        "html": bodies.html,
        "body_truncated": bodies.truncated,
        "attachments": bodies.attachments,
    }))
}

/// What `walk` found in a message's parts.
#[derive(Default)]
struct Bodies {
    text: Option<String>,
    html: Option<String>,
    attachments: Vec<Value>,
    truncated: bool,
}

/// Collect the first `text/plain` and `text/html` bodies and every attachment of `part`
/// and its sub-parts.
fn walk(part: &Value, depth: usize, bodies: &mut Bodies) {
    if depth > MAX_DEPTH {
        return;
    }
    let mime_type = part["mimeType"].as_str().unwrap_or_default().to_ascii_lowercase();
    let filename = part["filename"].as_str().unwrap_or_default();
    if !filename.is_empty() {
        bodies.attachments.push(json!({
            "filename": filename,
            "mime_type": mime_type,
            "size": part["body"]["size"],
            "attachment_id": part["body"]["attachmentId"],
        }));
    } else if mime_type == "text/plain" && bodies.text.is_none() {
        bodies.text = decode_body(part).map(|text| clip(text, &mut bodies.truncated));
    } else if mime_type == "text/html" && bodies.html.is_none() {
        bodies.html = decode_body(part).map(|html| clip(html, &mut bodies.truncated));
    }
    if let Some(parts) = part["parts"].as_array() {
        for sub in parts {
            walk(sub, depth + 1, bodies);
        }
    }
}

/// A part's `body.data` (base64url) decoded as text in its charset: ISO-8859-1 (and, close
/// enough, windows-1252) byte by byte, anything else as UTF-8.
fn decode_body(part: &Value) -> Option<String> {
    let data = part["body"]["data"].as_str()?;
    let bytes = URL_SAFE_LENIENT.decode(data.as_bytes()).ok()?;
    let latin1 = charset(part).is_some_and(|c| matches!(c.as_str(), "iso-8859-1" | "latin1" | "windows-1252"));
    Some(if latin1 {
        bytes.iter().copied().map(char::from).collect()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The `charset` parameter of a part's `Content-Type` header, lower-case.
fn charset(part: &Value) -> Option<String> {
    let content_type = header(part, "Content-Type");
    let lower = content_type.as_str()?.to_ascii_lowercase();
    let start = lower.find("charset=")? + "charset=".len();
    let value = lower[start..].split(';').next().unwrap_or_default();
    Some(value.trim().trim_matches('"').to_string())
}

/// `text`, cut to [`MAX_BODY_BYTES`] at a character boundary (setting `truncated`).
fn clip(mut text: String, truncated: &mut bool) -> String {
    if text.len() > MAX_BODY_BYTES {
        let mut end = MAX_BODY_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        *truncated = true;
    }
    text
}

/// The value of header `name` (case-insensitive) in a payload part's `headers`, or null.
fn header(part: &Value, name: &str) -> Value {
    part["headers"]
        .as_array()
        .and_then(|headers| {
            headers
                .iter()
                .find(|h| h["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        })
        .map(|h| h["value"].clone())
        .unwrap_or(Value::Null)
}

/// `value` if it is an array, else an empty one.
fn array(value: &Value) -> Value {
    Value::Array(value.as_array().cloned().unwrap_or_default())
}

/// The id of the message replied to, without angle brackets.
fn message_id(value: &str) -> Result<String, Error> {
    let id = value.trim().trim_start_matches('<').trim_end_matches('>');
    let valid = !id.is_empty()
        && id.len() <= 900
        && id
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '<' && c != '>');
    if valid {
        Ok(id.to_string())
    } else {
        Err(Error::invalid_input(
            "`in_reply_to` must be the Message-ID of the message replied to, e.g. <abc@mail.gmail.com>",
        ))
    }
}

/// A Gmail message or thread id: letters, digits, `-` and `_`.
fn is_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `<api_base>/gmail/v1/users/me<path>`.
fn url(path: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| DEFAULT_API_BASE.into());
    format!("{}/gmail/v1/users/me{path}", base.trim_end_matches('/'))
}

/// Send with the connection's access token; a non-2xx answer becomes [`api_error`].
fn send(request: Request<'_>) -> Result<Value, Error> {
    let token = credential(SCHEME)?;
    request.auth(&token).send_value(api_error)
}

/// Google's `{"error": {"code", "message", "status", "errors": [{"reason"}]}}` under a stable
/// code: 400 `invalid_argument` (`failed_precondition` for FAILED_PRECONDITION), 401
/// `unauthorized` (the host marks the connection failed), 403 `forbidden` — but
/// `rate_limited` (retryable) for the per-user rate limits and `quota_exceeded` for the daily
/// quota —, 404 `not_found`, 429 `rate_limited` and 5xx `upstream_error` (both retryable).
fn api_error(response: &Response) -> Error {
    let detail: Value = response.json().unwrap_or(Value::Null);
    let error = &detail["error"];
    let status = error["status"].as_str();
    let reason = error["errors"][0]["reason"].as_str();
    let mapped = Error::from_status(response.status, &response.body);
    let (code, retryable) = match (response.status, status, reason) {
        (400, Some("FAILED_PRECONDITION"), _) => ("failed_precondition", false),
        (400, _, _) => ("invalid_argument", false),
        (403, _, Some("rateLimitExceeded" | "userRateLimitExceeded")) => ("rate_limited", true),
        (403, _, Some("dailyLimitExceeded" | "quotaExceeded")) => ("quota_exceeded", false),
        (413, _, _) => ("request_too_large", false),
        _ => (mapped.code.as_str(), mapped.retryable),
    };
    let mut message = match error["message"].as_str() {
        Some(text) => format!("Gmail {} {}: {text}", response.status, status.unwrap_or("error")),
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
