//! Discord connector: bot messages over the Discord REST API (v10), `Authorization: Bot …`,
//! and messages through a channel webhook whose URL is itself the credential (the host
//! appends `<id>/<token>` to `/api/webhooks/`).

use nexum_connector_sdk::prelude::*;

/// The auth scheme of a bot token.
const BOT_SCHEME: &str = "bot";
/// The auth scheme of a channel webhook: the host appends `<id>/<token>` to [`WEBHOOK_PATH`].
const WEBHOOK_SCHEME: &str = "webhook";
/// The path the webhook credential completes (the manifest's `name`).
const WEBHOOK_PATH: &str = "/api/webhooks/";
/// Discord's cap on embeds in one message.
const MAX_EMBEDS: usize = 10;
/// Discord's JSON error code for a webhook that no longer exists.
const UNKNOWN_WEBHOOK: i64 = 10015;

/// The Discord connector.
struct Discord;
connector!(Discord);

impl Connector for Discord {
    fn actions() -> Actions {
        Actions::new()
            .action("send_message", send_message)
            .action("edit_message", edit_message)
            .action("delete_message", delete_message)
            .action("send_webhook_message", send_webhook_message)
    }

    /// The bot's own user with a bot token; otherwise the webhook itself ("get webhook with
    /// token": its name and channel, no bot needed).
    fn test_connection() -> Result<Value, Error> {
        if let Ok(bot) = credential(BOT_SCHEME) {
            let me = send(Request::get(url("/users/@me")), &bot)?;
            return Ok(json!({ "id": me["id"], "username": me["username"], "bot": me["bot"] }));
        }
        let Ok(hook) = credential(WEBHOOK_SCHEME) else {
            return Err(Error::new(
                "missing_credential",
                "the connection has neither a bot token (auth scheme `bot`) nor a webhook (auth scheme `webhook`)",
            ));
        };
        let webhook = send(Request::get(webhook_url()), &hook)?;
        Ok(json!({ "name": webhook["name"], "channel_id": webhook["channel_id"] }))
    }
}

/// Input of `send_message`.
#[derive(Deserialize)]
struct SendMessage {
    /// Channel id.
    channel_id: String,
    /// Message text.
    content: String,
    /// A message id to reply to.
    reply_to: Option<String>,
}

/// Post a message as the bot.
fn send_message(input: SendMessage) -> Result<Value, Error> {
    let bot = bot()?;
    let mut body = json!({ "content": input.content });
    if let Some(reply_to) = input.reply_to {
        body["message_reference"] = json!({ "message_id": reply_to });
    }
    // Discord dedupes on a nonce when `enforce_nonce` is set: a retried step posts once.
    if let Some(key) = idempotency_key() {
        body["nonce"] = json!(nonce(&key));
        body["enforce_nonce"] = json!(true);
    }
    let path = format!("/channels/{}/messages", input.channel_id);
    let sent = send(Request::post(url(&path)).json(&body)?, &bot)?;
    Ok(json!({ "id": sent["id"], "channel_id": sent["channel_id"] }))
}

/// Discord nonces are at most 25 characters: a digest of the idempotency key.
fn nonce(key: &str) -> String {
    // FNV-1a, 64-bit: stable and short (not a security property; it only dedupes).
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Input of `edit_message`.
#[derive(Deserialize)]
struct EditMessage {
    /// Channel id.
    channel_id: String,
    /// The message to edit.
    message_id: String,
    /// The new text.
    content: String,
}

/// Replace the text of a message the bot sent.
fn edit_message(input: EditMessage) -> Result<Value, Error> {
    let bot = bot()?;
    let path = format!("/channels/{}/messages/{}", input.channel_id, input.message_id);
    let edited = send(
        Request::patch(url(&path)).json(&json!({ "content": input.content }))?,
        &bot,
    )?;
    Ok(json!({ "id": edited["id"] }))
}

/// Input of `delete_message`.
#[derive(Deserialize)]
struct DeleteMessage {
    /// Channel id.
    channel_id: String,
    /// The message to delete.
    message_id: String,
}

/// Delete a message.
fn delete_message(input: DeleteMessage) -> Result<Value, Error> {
    let bot = bot()?;
    let path = format!("/channels/{}/messages/{}", input.channel_id, input.message_id);
    send(Request::delete(url(&path)), &bot)?;
    Ok(json!({ "deleted": true }))
}

/// Input of `send_webhook_message`; everything but `thread_id` is the "execute webhook" body.
#[derive(Deserialize, Serialize)]
struct SendWebhookMessage {
    /// Message text.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    /// Override the webhook's name for this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// Override the webhook's avatar for this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar_url: Option<String>,
    /// Embed objects, at most [`MAX_EMBEDS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    embeds: Vec<Value>,
    /// Send as a text-to-speech message.
    #[serde(skip_serializing_if = "Option::is_none")]
    tts: Option<bool>,
    /// Post into this thread of the webhook's channel (a query parameter, not in the body).
    #[serde(skip_serializing)]
    thread_id: Option<String>,
}

/// POST `<api_base>/api/webhooks/?wait=true`; the host appends the webhook's `<id>/<token>`
/// to the path. `wait=true` makes Discord answer the message it created.
fn send_webhook_message(input: SendWebhookMessage) -> Result<Value, Error> {
    if input.content.as_deref().is_none_or(str::is_empty) && input.embeds.is_empty() {
        return Err(Error::invalid_input("give `content`, `embeds` or both"));
    }
    if input.embeds.len() > MAX_EMBEDS {
        return Err(Error::invalid_input(format!(
            "Discord takes at most {MAX_EMBEDS} embeds in one message"
        )));
    }
    let hook = credential(WEBHOOK_SCHEME).map_err(|_| {
        Error::new(
            "missing_credential",
            "send_webhook_message needs a connection made with a webhook URL (auth scheme `webhook`); with a bot token, use send_message",
        )
    })?;
    let request = Request::post(webhook_url())
        .query("wait", "true")
        .query_opt("thread_id", input.thread_id.as_deref())
        .json(&input)?;
    let sent = send(request, &hook)?;
    Ok(json!({ "id": sent["id"], "channel_id": sent["channel_id"] }))
}

/// The bot token, or an error telling a webhook-only connection what it can do instead.
fn bot() -> Result<Credential, Error> {
    credential(BOT_SCHEME).map_err(|missing| {
        if credential(WEBHOOK_SCHEME).is_ok() {
            Error::new(
                "missing_credential",
                "this action needs a bot token (auth scheme `bot`); this connection has only a channel webhook, which can only send_webhook_message",
            )
        } else {
            missing
        }
    })
}

/// The API origin from the `api_base` variable.
fn base() -> String {
    let base = var("api_base").unwrap_or_else(|| "https://discord.com".into());
    base.trim_end_matches('/').to_string()
}

/// `<api_base>/api/v10<path>`.
fn url(path: &str) -> String {
    format!("{}/api/v10{path}", base())
}

/// `<api_base>/api/webhooks/`: exactly the path the webhook credential completes.
fn webhook_url() -> String {
    format!("{}{}", base(), WEBHOOK_PATH)
}

/// Send with `auth`. Discord's `{"message", "code"}` error (with `retry_after` on a 429)
/// becomes the message under the status's stable code (401 `unauthorized`, 403 `forbidden`,
/// 404 `not_found`, 429 `rate_limited`, 5xx `upstream_error`); a webhook that no longer exists
/// (`10015 Unknown Webhook`) is `token_revoked`, so the connection's status shows it.
fn send<'a>(request: Request<'a>, auth: &'a Credential) -> Result<Value, Error> {
    let response = request.auth(auth).send()?;
    if response.is_success() {
        if response.status == 204 || response.body.is_empty() {
            return Ok(Value::Null);
        }
        return response.json();
    }
    let error = Error::from_response(&response, |detail| {
        let mut message = format!(
            "Discord error {}: {}",
            detail["code"].as_i64()?,
            detail["message"].as_str()?
        );
        if let Some(after) = detail["retry_after"].as_f64() {
            message.push_str(&format!(" (retry after {after} s)"));
        }
        Some(message)
    });
    let code = response.json::<Value>().ok().and_then(|detail| detail["code"].as_i64());
    if code == Some(UNKNOWN_WEBHOOK) {
        return Err(Error::new("token_revoked", error.message));
    }
    Err(error)
}
