//! Outlook connector: send mail and list messages of the signed-in Microsoft 365 or
//! Outlook.com account through Microsoft Graph v1.0 (`/v1.0/me/…`), with the connection's
//! OAuth2 access token from the Microsoft identity platform.
//!
//! Graph has no idempotency key for `sendMail`, so the call's idempotency key is not sent
//! anywhere. Paging links (`@odata.nextLink`) are absolute URLs; the connector hands back only
//! their path and query, checked to stay under `/v1.0/me/`, and calls them on `api_base`.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use nexum_connector_sdk::mail::{one_line, split_display, valid_address, valid_media_type};
use nexum_connector_sdk::prelude::*;

/// The Graph origin when the connection sets no `api_base`.
const DEFAULT_API_BASE: &str = "https://graph.microsoft.com";

/// The auth scheme (`[[auth]]` id) whose token every request carries.
const SCHEME: &str = "oauth";

/// What `list_messages` always selects: the fields of its output.
const FIELDS: &[&str] = &[
    "id",
    "subject",
    "from",
    "receivedDateTime",
    "isRead",
    "bodyPreview",
    "hasAttachments",
    "conversationId",
];

/// How many messages a page has when the input says nothing.
const DEFAULT_TOP: u32 = 25;

/// The prefix every paging link must keep: the signed-in user's own resources.
const NEXT_LINK_PREFIX: &str = "/v1.0/me/";

/// Base64 decoding that accepts input with or without `=` padding.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
/// The standard alphabet (`+/`), padding optional.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
/// The URL-safe alphabet (`-_`), padding optional.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

struct Outlook;
connector!(Outlook);

impl Connector for Outlook {
    fn actions() -> Actions {
        Actions::new()
            .action("send_mail", send_mail)
            .action("list_messages", list_messages)
    }

    fn test_connection() -> Result<Value, Error> {
        let me = send(Request::get(url("/v1.0/me")).query("$select", "displayName,mail,userPrincipalName"))?;
        // Accounts without an Exchange `mail` attribute (e.g. some personal ones) still have a UPN.
        let email = match &me["mail"] {
            Value::String(mail) if !mail.is_empty() => me["mail"].clone(),
            _ => me["userPrincipalName"].clone(),
        };
        Ok(json!({ "email": email, "display_name": me["displayName"] }))
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
    /// Graph's `recipient`: `{"emailAddress": {"address", "name"?}}`.
    fn to_graph(&self) -> Result<Value, Error> {
        let (name, address) = match self {
            Recipient::Text(text) => split_display(text),
            Recipient::Named(named) => (named.name.clone(), named.address.trim().to_string()),
        };
        if !valid_address(&address) {
            return Err(Error::invalid_input(format!("`{address}` is not an email address")));
        }
        let mut email = json!({ "address": address });
        if let Some(name) = name.map(|n| one_line(&n)).filter(|n| !n.is_empty()) {
            email["name"] = json!(name);
        }
        Ok(json!({ "emailAddress": email }))
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

/// Input of `send_mail`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMail {
    #[serde(default)]
    to: Vec<Recipient>,
    #[serde(default)]
    cc: Vec<Recipient>,
    #[serde(default)]
    bcc: Vec<Recipient>,
    reply_to: Option<Recipient>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    save_to_sent_items: Option<bool>,
}

fn send_mail(input: SendMail) -> Result<Value, Error> {
    if input.to.is_empty() && input.cc.is_empty() && input.bcc.is_empty() {
        return Err(Error::invalid_input(
            "give at least one recipient in `to`, `cc` or `bcc`",
        ));
    }
    // A Graph message has one body, either text or HTML.
    let body = match (input.text, input.html) {
        (Some(text), None) => json!({ "contentType": "Text", "content": text }),
        (None, Some(html)) => json!({ "contentType": "HTML", "content": html }),
        (Some(_), Some(_)) => {
            return Err(Error::invalid_input(
                "give `text` or `html`, not both: an Outlook message has one body",
            ));
        }
        (None, None) => return Err(Error::invalid_input("give `text` or `html`")),
    };
    let mut message = json!({ "subject": one_line(input.subject.as_deref().unwrap_or_default()), "body": body });
    for (field, list) in [
        ("toRecipients", &input.to),
        ("ccRecipients", &input.cc),
        ("bccRecipients", &input.bcc),
    ] {
        if !list.is_empty() {
            message[field] = Value::Array(list.iter().map(Recipient::to_graph).collect::<Result<_, _>>()?);
        }
    }
    if let Some(reply_to) = &input.reply_to {
        let reply_to = reply_to.to_graph()?;
        message["replyTo"] = json!([reply_to]);
    }
    if !input.attachments.is_empty() {
        message["attachments"] = Value::Array(
            input
                .attachments
                .iter()
                .map(file_attachment)
                .collect::<Result<_, _>>()?,
        );
    }
    let request = json!({ "message": message, "saveToSentItems": input.save_to_sent_items.unwrap_or(true) });
    // Graph has no idempotency key for sendMail: a retried step may send the message again,
    // so `idempotency_key()` is deliberately not used (see README).
    send(Request::post(url("/v1.0/me/sendMail")).json(&request)?)?;
    // 202 Accepted, no body: Graph queued the message.
    Ok(json!({ "sent": true }))
}

/// Graph's `fileAttachment`, its bytes checked and re-encoded as standard padded base64.
fn file_attachment(attachment: &Attachment) -> Result<Value, Error> {
    let name = one_line(&attachment.filename);
    if name.is_empty() {
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
            "attachment `{name}`: `content_type` must be a media type such as application/pdf"
        )));
    }
    let bytes = decode_base64(&attachment.content_base64)
        .map_err(|e| Error::invalid_input(format!("attachment `{name}`: `content_base64` is not base64: {e}")))?;
    Ok(json!({
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": name,
        "contentType": content_type,
        "contentBytes": STANDARD.encode(bytes),
    }))
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
    folder: Option<String>,
    top: Option<u32>,
    filter: Option<String>,
    search: Option<String>,
    #[serde(default)]
    select: Vec<String>,
    next_link: Option<String>,
}

fn list_messages(input: ListMessages) -> Result<Value, Error> {
    for field in &input.select {
        if !is_property(field) {
            return Err(Error::invalid_input(format!(
                "`select`: `{field}` is not a Graph message property name"
            )));
        }
    }
    let request = match &input.next_link {
        // A later page: the link carries the first page's query.
        Some(link) => Request::get(format!("{}{}", api_base(), checked_next_link(link)?)),
        None => first_page(&input)?,
    };
    let page = send(request)?;
    let messages: Vec<Value> = page["value"]
        .as_array()
        .map(|list| list.iter().map(|m| summary(m, &input.select)).collect())
        .unwrap_or_default();
    let next_link = match page["@odata.nextLink"].as_str() {
        Some(link) => Value::String(relative_next_link(link)?),
        None => Value::Null,
    };
    Ok(json!({ "messages": messages, "next_link": next_link }))
}

/// The request for a folder's first page.
fn first_page(input: &ListMessages) -> Result<Request<'static>, Error> {
    let folder = input.folder.as_deref().unwrap_or("inbox");
    // Well-known names (inbox, sentitems, …) and Graph ids use only these characters; the
    // folder becomes a path segment, so nothing else may get there.
    if folder.is_empty()
        || folder.len() > 512
        || !folder
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
    {
        return Err(Error::invalid_input(
            "`folder` must be a well-known folder name (inbox, sentitems, …) or a folder id",
        ));
    }
    if input.filter.is_some() && input.search.is_some() {
        return Err(Error::invalid_input(
            "give `filter` or `search`, not both: Graph does not combine them for messages",
        ));
    }
    let top = input.top.unwrap_or(DEFAULT_TOP);
    if !(1..=1000).contains(&top) {
        return Err(Error::invalid_input("`top` must be between 1 and 1000"));
    }
    let mut select: Vec<&str> = FIELDS.to_vec();
    for extra in &input.select {
        if !select.contains(&extra.as_str()) {
            select.push(extra.as_str());
        }
    }
    let mut request = Request::get(url(&format!("/v1.0/me/mailFolders/{folder}/messages")))
        .query("$top", top)
        .query("$select", select.join(","));
    if let Some(filter) = &input.filter {
        request = request.query("$filter", filter);
    }
    if let Some(search) = &input.search {
        // Graph wants the KQL search in double quotes.
        let quoted = if search.len() >= 2 && search.starts_with('"') && search.ends_with('"') {
            search.clone()
        } else {
            format!("\"{}\"", search.replace('"', "\\\""))
        };
        request = request.query("$search", quoted);
    }
    // Graph refuses $orderby with $search, and with a $filter not on the ordered property.
    if input.filter.is_none() && input.search.is_none() {
        request = request.query("$orderby", "receivedDateTime desc");
    }
    Ok(request)
}

/// One message of a page, in the connector's shape.
fn summary(message: &Value, select: &[String]) -> Value {
    let from = &message["from"]["emailAddress"];
    let from = if from.is_object() {
        json!({ "address": from["address"], "name": from["name"] })
    } else {
        Value::Null
    };
    let mut out = json!({
        "id": message["id"],
        "subject": message["subject"],
        "from": from,
        "received_at": message["receivedDateTime"],
        "is_read": message["isRead"],
        "preview": message["bodyPreview"],
        "has_attachments": message["hasAttachments"],
        "conversation_id": message["conversationId"],
    });
    if !select.is_empty() {
        let fields: serde_json::Map<String, Value> = select
            .iter()
            .map(|name| (name.clone(), message[name.as_str()].clone()))
            .collect();
        out["fields"] = Value::Object(fields);
    }
    out
}

/// The path and query of Graph's absolute `@odata.nextLink`, for the next call on
/// `api_base`. The link must be on `api_base`'s own origin and stay under `/v1.0/me/`;
/// anything else is refused rather than handed back to be followed.
fn relative_next_link(link: &str) -> Result<String, Error> {
    let base = api_base();
    let unexpected = || {
        Error::new(
            "unexpected_response",
            "Microsoft Graph answered with a paging link outside this connection's API origin",
        )
    };
    // Graph percent-encodes its links; a stray space is encoded here rather than refused.
    let rest = strip_prefix_ignore_case(link, &base)
        .ok_or_else(unexpected)?
        .replace(' ', "%20");
    if !rest.starts_with('/') {
        return Err(unexpected());
    }
    checked_next_link(&rest).map_err(|_| unexpected())?;
    Ok(rest)
}

/// `link` if it is a path and query under `/v1.0/me/` that cannot leave it: printable ASCII,
/// no fragment, no `.`/`..` segments (nor their percent-encoded forms), no backslash.
fn checked_next_link(link: &str) -> Result<&str, Error> {
    let path = link.split('?').next().unwrap_or_default();
    let valid = link.starts_with(NEXT_LINK_PREFIX)
        && link.len() <= 8192
        && link.bytes().all(|b| b.is_ascii_graphic())
        && !link.contains('#')
        && !link.contains('\\')
        && !path.to_ascii_lowercase().contains("%2e")
        && path.split('/').all(|segment| segment != "." && segment != "..");
    if valid {
        Ok(link)
    } else {
        Err(Error::invalid_input(
            "`next_link` must be the `next_link` a previous list_messages returned",
        ))
    }
}

/// `text` without the prefix `prefix`, compared ASCII case-insensitively.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// A Graph property name: a letter, then letters and digits.
fn is_property(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric())
}

/// The connection's Graph origin, without a trailing slash.
fn api_base() -> String {
    let base = var("api_base").unwrap_or_else(|| DEFAULT_API_BASE.into());
    base.trim_end_matches('/').to_string()
}

/// `<api_base><path>`.
fn url(path: &str) -> String {
    format!("{}{path}", api_base())
}

/// Send with the connection's access token; a non-2xx answer becomes [`graph_error`].
fn send(request: Request<'_>) -> Result<Value, Error> {
    let token = credential(SCHEME)?;
    request.auth(&token).send_value(graph_error)
}

/// Graph's `{"error": {"code", "message"}}` under a stable code: 400 `invalid_argument`, 401
/// `unauthorized` (the host marks the connection failed), 403 `forbidden`, 404 `not_found`,
/// 413 `request_too_large`, 429 `rate_limited` and 5xx `upstream_error` (both retryable),
/// with Graph's own code and any `Retry-After` in the message.
fn graph_error(response: &Response) -> Error {
    let detail: Value = response.json().unwrap_or(Value::Null);
    let error = &detail["error"];
    let mapped = Error::from_status(response.status, &response.body);
    let (code, retryable) = match response.status {
        400 => ("invalid_argument", false),
        413 => ("request_too_large", false),
        _ => (mapped.code.as_str(), mapped.retryable),
    };
    let mut message = match (error["code"].as_str(), error["message"].as_str()) {
        (Some(graph_code), Some(text)) => format!("Microsoft Graph {} {graph_code}: {text}", response.status),
        (None, Some(text)) => format!("Microsoft Graph {}: {text}", response.status),
        _ => mapped.message.clone(),
    };
    if let Some(wait) = response.header("retry-after").map(str::trim)
        && !wait.is_empty()
        && wait.len() <= 64
    {
        message.push_str(&format!(" (retry after {wait} s)"));
    }
    Error::new(code, message).with_retryable(retryable)
}
