//! Slack connector: messages (thread replies too), reactions, channels and file uploads over
//! the Slack Web API with a bot token or OAuth, and posting through an incoming webhook whose
//! URL is itself the credential.

use nexum_connector_sdk::prelude::*;

/// The auth schemes that carry a Web API token, in order of preference.
const TOKEN_SCHEMES: &[&str] = &["oauth", "bot_token"];
/// The auth scheme of an incoming webhook: the host appends `T…/B…/…` to [`WEBHOOK_PATH`].
const WEBHOOK_SCHEME: &str = "incoming_webhook";
/// The path the incoming-webhook credential completes (the manifest's `name`).
const WEBHOOK_PATH: &str = "/services/";

/// The Slack connector.
struct Slack;
connector!(Slack);

impl Connector for Slack {
    fn actions() -> Actions {
        Actions::new()
            .action("send_message", send_message)
            .action("update_message", update_message)
            .action("add_reaction", add_reaction)
            .action("list_channels", list_channels)
            .action("upload_file", upload_file)
            .action("post_webhook", post_webhook)
    }

    /// `auth.test` with a Web API token. An incoming webhook has no identity call and no
    /// side-effect-free request, so a webhook-only connection is described without sending
    /// anything (`verified: false`); a removed webhook shows on the next `post_webhook`.
    fn test_connection() -> Result<Value, Error> {
        if any_credential(TOKEN_SCHEMES).is_err() && credential(WEBHOOK_SCHEME).is_ok() {
            return Ok(json!({ "kind": "incoming_webhook", "verified": false }));
        }
        let me = call("auth.test", &json!({}))?;
        Ok(json!({ "team": me["team"], "team_id": me["team_id"], "user": me["user"], "user_id": me["user_id"] }))
    }
}

/// Input of `send_message`, sent to `chat.postMessage` as it is.
#[derive(Deserialize, Serialize)]
struct SendMessage {
    /// Channel id.
    channel: String,
    /// Message text.
    text: String,
    /// Reply in this thread (the parent message's `ts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_ts: Option<String>,
    /// With `thread_ts`: show the reply in the channel as well.
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_broadcast: Option<bool>,
}

/// Post a message, or a reply in a thread.
fn send_message(input: SendMessage) -> Result<Value, Error> {
    if input.reply_broadcast.is_some() && input.thread_ts.is_none() {
        return Err(Error::invalid_input(
            "`reply_broadcast` only applies to a reply: give `thread_ts`",
        ));
    }
    let sent = call("chat.postMessage", &input)?;
    Ok(json!({ "channel": sent["channel"], "ts": sent["ts"] }))
}

/// Input of `update_message`, sent to `chat.update` as it is.
#[derive(Deserialize, Serialize)]
struct UpdateMessage {
    /// Channel id.
    channel: String,
    /// The message's `ts`.
    ts: String,
    /// The new text.
    text: String,
}

/// Replace a message's text.
fn update_message(input: UpdateMessage) -> Result<Value, Error> {
    let updated = call("chat.update", &input)?;
    Ok(json!({ "channel": updated["channel"], "ts": updated["ts"] }))
}

/// Input of `add_reaction`.
#[derive(Deserialize)]
struct AddReaction {
    /// Channel id.
    channel: String,
    /// The message's `ts`.
    ts: String,
    /// Emoji name, with or without colons.
    name: String,
}

/// Add an emoji reaction to a message.
fn add_reaction(input: AddReaction) -> Result<Value, Error> {
    let body = json!({ "channel": input.channel, "timestamp": input.ts, "name": input.name.trim_matches(':') });
    call("reactions.add", &body)?;
    Ok(json!({ "ok": true }))
}

/// Input of `list_channels`.
#[derive(Deserialize)]
struct ListChannels {
    /// Page size (Slack's default here: 100).
    limit: Option<u32>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// One page of `conversations.list`.
fn list_channels(input: ListChannels) -> Result<Value, Error> {
    let token = slack_token()?;
    let page: Value = Request::get(api_url("conversations.list"))
        .auth(&token)
        .query("limit", input.limit.unwrap_or(100))
        .query_opt("cursor", input.cursor)
        .send_json()?;
    let page = slack_ok(page)?;
    let channels: Vec<Value> = page["channels"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|c| json!({ "id": c["id"], "name": c["name"], "is_private": c["is_private"] }))
                .collect()
        })
        .unwrap_or_default();
    let next = page["response_metadata"]["next_cursor"]
        .as_str()
        .filter(|c| !c.is_empty());
    Ok(json!({ "channels": channels, "next_cursor": next }))
}

/// Input of `upload_file`: exactly one of `content_base64` and `content`.
#[derive(Deserialize)]
struct UploadFile {
    /// Share in this channel; without it the file stays private to the bot.
    channel: Option<String>,
    /// File name, e.g. `report.csv`.
    filename: String,
    /// The file's bytes, base64.
    content_base64: Option<String>,
    /// The file's text, uploaded as UTF-8.
    content: Option<String>,
    /// Title shown in Slack (default: the file name).
    title: Option<String>,
    /// Message posted with the file (needs `channel`).
    initial_comment: Option<String>,
    /// Share as a reply in this thread of `channel`.
    thread_ts: Option<String>,
    /// Image description for screen readers (Slack's `alt_txt`).
    alt_text: Option<String>,
    /// Syntax type of a text snippet, e.g. `python`.
    snippet_type: Option<String>,
}

/// Slack's external upload flow: ask for an upload URL, send the bytes there (no token: the
/// URL is pre-authorised, and only an URL on `files_base` is used), then complete the upload,
/// sharing it in `channel` (or a thread of it) when given.
fn upload_file(input: UploadFile) -> Result<Value, Error> {
    if input.channel.is_none() && (input.thread_ts.is_some() || input.initial_comment.is_some()) {
        return Err(Error::invalid_input(
            "`thread_ts` and `initial_comment` need the `channel` to share the file in",
        ));
    }
    let bytes = match (&input.content_base64, &input.content) {
        (Some(encoded), None) => {
            mail::decode_base64(encoded).map_err(|_| Error::invalid_input("`content_base64` is not valid base64"))?
        }
        (None, Some(text)) => text.as_bytes().to_vec(),
        _ => {
            return Err(Error::invalid_input(
                "give the file as exactly one of `content_base64` and `content`",
            ));
        }
    };
    if bytes.is_empty() {
        return Err(Error::invalid_input("the file is empty"));
    }

    // 1. An upload URL and the file's id.
    let token = slack_token()?;
    let ticket: Value = Request::get(api_url("files.getUploadURLExternal"))
        .auth(&token)
        .query("filename", &input.filename)
        .query("length", bytes.len())
        .query_opt("alt_txt", input.alt_text.as_deref())
        .query_opt("snippet_type", input.snippet_type.as_deref())
        .send_json()?;
    let ticket = slack_ok(ticket)?;
    let (Some(upload_url), Some(file_id)) = (ticket["upload_url"].as_str(), ticket["file_id"].as_str()) else {
        return Err(Error::new(
            "invalid_response",
            "files.getUploadURLExternal answered without `upload_url` and `file_id`",
        ));
    };

    // 2. The bytes, to Slack's files host only, and without the token.
    let files_base = var("files_base").unwrap_or_else(|| "https://files.slack.com".into());
    if !is_on_origin(upload_url, origin_of(&files_base)) {
        return Err(Error::new(
            "upload_url_refused",
            format!(
                "Slack handed out an upload URL on {}, which is not the files host `{}` (variable `files_base`); the file was not sent",
                origin_of(upload_url),
                origin_of(&files_base)
            ),
        ));
    }
    let uploaded = Request::post(upload_url)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()?;
    if !uploaded.is_success() {
        let error = Error::from_status(uploaded.status, &uploaded.body);
        return Err(Error {
            message: format!("sending the file's bytes to the upload URL failed: {}", error.message),
            ..error
        });
    }

    // 3. Complete the upload (and share it).
    let title = input.title.as_deref().unwrap_or(&input.filename);
    let mut body = json!({ "files": [{ "id": file_id, "title": title }] });
    if let Some(channel) = &input.channel {
        body["channel_id"] = json!(channel);
    }
    if let Some(comment) = &input.initial_comment {
        body["initial_comment"] = json!(comment);
    }
    if let Some(thread_ts) = &input.thread_ts {
        body["thread_ts"] = json!(thread_ts);
    }
    let done = call("files.completeUploadExternal", &body)?;
    Ok(json!({ "file_id": file_id, "permalink": done["files"][0]["permalink"].as_str() }))
}

/// Input of `post_webhook`, sent to the incoming webhook as it is.
#[derive(Deserialize, Serialize)]
struct PostWebhook {
    /// Message text (the notification text when `blocks` are given).
    text: String,
    /// Block Kit blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    blocks: Option<Vec<Value>>,
    /// Unfurl links in the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    unfurl_links: Option<bool>,
}

/// POST to `<hooks_base>/services/`; the host appends the webhook's key to the path.
fn post_webhook(input: PostWebhook) -> Result<Value, Error> {
    let hook = credential(WEBHOOK_SCHEME).map_err(|_| {
        Error::new(
            "missing_credential",
            "post_webhook needs a connection made with an incoming webhook URL (auth scheme `incoming_webhook`); with a bot token, use send_message",
        )
    })?;
    let base = var("hooks_base").unwrap_or_else(|| "https://hooks.slack.com".into());
    let url = format!("{}{}", base.trim_end_matches('/'), WEBHOOK_PATH);
    let response = Request::post(url).auth(&hook).json(&input)?.send()?;
    if response.is_success() {
        return Ok(json!({ "ok": true }));
    }
    Err(webhook_error(&response))
}

/// An incoming webhook's error: Slack answers a plain-text code (`invalid_payload`,
/// `channel_not_found`, `channel_is_archived`, `action_prohibited`, …), kept as the error's
/// code. A removed or disabled webhook (`no_service`, `invalid_token`, …) becomes
/// `token_revoked`, so the connection's status shows it; 429 is `rate_limited` and 5xx
/// `upstream_error`, both retryable.
fn webhook_error(response: &Response) -> Error {
    let status = response.status;
    let text = response.text();
    let code = Some(text.trim()).filter(|t| {
        !t.is_empty()
            && t.len() <= 64
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    });
    match (status, code) {
        (429, _) => {
            let wait = response
                .header("retry-after")
                .map(|s| format!("; retry after {} s", s.trim()))
                .unwrap_or_default();
            Error::new("rate_limited", format!("Slack rate-limited the incoming webhook{wait}")).with_retryable(true)
        }
        (500..=599, code) => {
            let detail = code.map(|c| format!(" `{c}`")).unwrap_or_default();
            Error::new("upstream_error", format!("Slack answered HTTP {status}{detail}")).with_retryable(true)
        }
        (_, Some(code @ ("no_service" | "no_service_id" | "invalid_token" | "no_team" | "team_disabled"))) => {
            Error::new(
                "token_revoked",
                format!(
                    "Slack answered `{code}` (HTTP {status}): the incoming webhook was removed or disabled; connect a new webhook URL"
                ),
            )
        }
        (_, Some(code)) => Error::new(code, format!("Slack answered `{code}` (HTTP {status})")),
        (_, None) => Error::from_status(status, &response.body),
    }
}

/// POST a JSON body to a Web API method and unwrap Slack's `{ "ok": false }` errors.
fn call(method: &str, body: &impl Serialize) -> Result<Value, Error> {
    let token = slack_token()?;
    let response: Value = Request::post(api_url(method)).auth(&token).json(body)?.send_json()?;
    slack_ok(response)
}

/// The Web API token: OAuth first, then a bot token. A webhook-only connection is told which
/// action it can use instead.
fn slack_token() -> Result<Credential, Error> {
    any_credential(TOKEN_SCHEMES).map_err(|missing| {
        if credential(WEBHOOK_SCHEME).is_ok() {
            Error::new(
                "missing_credential",
                "this action needs a bot token or \"Add to Slack\" (OAuth); this connection has only an incoming webhook, which can only post_webhook",
            )
        } else {
            missing
        }
    })
}

/// `<api_base>/api/<method>`.
fn api_url(method: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| "https://slack.com".into());
    format!("{}/api/{method}", base.trim_end_matches('/'))
}

/// The Web API's answer, or its `error` under Slack's own code.
fn slack_ok(response: Value) -> Result<Value, Error> {
    if response["ok"].as_bool() == Some(true) {
        return Ok(response);
    }
    let code = response["error"].as_str().unwrap_or("slack_error").to_string();
    let retryable = matches!(code.as_str(), "ratelimited" | "service_unavailable" | "request_timeout");
    Err(Error::new(code.clone(), format!("Slack answered `{code}`")).with_retryable(retryable))
}

/// Whether `url` is on the origin `base` (compared case-insensitively, a trailing `/` on
/// `base` ignored): `https://files.slack.com/upload/…` is, while
/// `https://files.slack.com.example/…` and `https://files.slack.com@example/…` are not.
fn is_on_origin(url: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    url.get(..base.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(base))
        && url.as_bytes().get(base.len()) == Some(&b'/')
}

/// `scheme://authority` of `url`, for an error message (never the path or query, which may
/// carry a signature).
fn origin_of(url: &str) -> &str {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let end = url[authority..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority + i);
    &url[..end]
}
