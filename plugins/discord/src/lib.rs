//! Discord connector: bot messages over the Discord REST API (v10), `Authorization: Bot …`.

use nexum_connector_sdk::prelude::*;

struct Discord;
connector!(Discord);

impl Connector for Discord {
    fn actions() -> Actions {
        Actions::new()
            .action("send_message", send_message)
            .action("edit_message", edit_message)
            .action("delete_message", delete_message)
    }

    fn test_connection() -> Result<Value, Error> {
        let me = send(Request::get(url("/users/@me")))?;
        Ok(json!({ "id": me["id"], "username": me["username"], "bot": me["bot"] }))
    }
}

#[derive(Deserialize)]
struct SendMessage {
    channel_id: String,
    content: String,
    reply_to: Option<String>,
}

fn send_message(input: SendMessage) -> Result<Value, Error> {
    let mut body = json!({ "content": input.content });
    if let Some(reply_to) = input.reply_to {
        body["message_reference"] = json!({ "message_id": reply_to });
    }
    // Discord dedupes on a nonce when `enforce_nonce` is set: a retried step posts once.
    if let Some(key) = idempotency_key() {
        body["nonce"] = json!(nonce(&key));
        body["enforce_nonce"] = json!(true);
    }
    let sent = send(Request::post(url(&format!("/channels/{}/messages", input.channel_id))).json(&body)?)?;
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

#[derive(Deserialize)]
struct EditMessage {
    channel_id: String,
    message_id: String,
    content: String,
}

fn edit_message(input: EditMessage) -> Result<Value, Error> {
    let path = format!("/channels/{}/messages/{}", input.channel_id, input.message_id);
    let edited = send(Request::patch(url(&path)).json(&json!({ "content": input.content }))?)?;
    Ok(json!({ "id": edited["id"] }))
}

#[derive(Deserialize)]
struct DeleteMessage {
    channel_id: String,
    message_id: String,
}

fn delete_message(input: DeleteMessage) -> Result<Value, Error> {
    let path = format!("/channels/{}/messages/{}", input.channel_id, input.message_id);
    send(Request::delete(url(&path)))?;
    Ok(json!({ "deleted": true }))
}

fn url(path: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| "https://discord.com".into());
    format!("{}/api/v10{path}", base.trim_end_matches('/'))
}

/// Send with the bot token; Discord's `{"message", "code"}` error becomes the message under
/// the status's stable code (401 `unauthorized`, 403 `forbidden`, 429 `rate_limited`).
fn send(request: Request<'_>) -> Result<Value, Error> {
    let bot = credential("bot")?;
    let response = request.auth(&bot).send()?;
    if response.is_success() {
        if response.status == 204 || response.body.is_empty() {
            return Ok(Value::Null);
        }
        return response.json();
    }
    Err(Error::from_response(&response, |detail| {
        Some(format!(
            "Discord error {}: {}",
            detail["code"].as_i64()?,
            detail["message"].as_str()?
        ))
    }))
}
