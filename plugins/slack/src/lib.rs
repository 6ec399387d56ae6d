//! Slack connector: messages, reactions and channels over the Slack Web API.

use nexum_connector_sdk::prelude::*;

struct Slack;
connector!(Slack);

impl Connector for Slack {
    fn actions() -> Actions {
        Actions::new()
            .action("send_message", send_message)
            .action("update_message", update_message)
            .action("add_reaction", add_reaction)
            .action("list_channels", list_channels)
    }

    fn test_connection() -> Result<Value, Error> {
        let me = call("auth.test", &json!({}))?;
        Ok(json!({ "team": me["team"], "team_id": me["team_id"], "user": me["user"], "user_id": me["user_id"] }))
    }
}

#[derive(Deserialize, Serialize)]
struct SendMessage {
    channel: String,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_ts: Option<String>,
}

fn send_message(input: SendMessage) -> Result<Value, Error> {
    let sent = call("chat.postMessage", &input)?;
    Ok(json!({ "channel": sent["channel"], "ts": sent["ts"] }))
}

#[derive(Deserialize, Serialize)]
struct UpdateMessage {
    channel: String,
    ts: String,
    text: String,
}

fn update_message(input: UpdateMessage) -> Result<Value, Error> {
    let updated = call("chat.update", &input)?;
    Ok(json!({ "channel": updated["channel"], "ts": updated["ts"] }))
}

#[derive(Deserialize)]
struct AddReaction {
    channel: String,
    ts: String,
    name: String,
}

fn add_reaction(input: AddReaction) -> Result<Value, Error> {
    let body = json!({ "channel": input.channel, "timestamp": input.ts, "name": input.name.trim_matches(':') });
    call("reactions.add", &body)?;
    Ok(json!({ "ok": true }))
}

#[derive(Deserialize)]
struct ListChannels {
    limit: Option<u32>,
    cursor: Option<String>,
}

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

/// POST a JSON body to a Web API method and unwrap Slack's `{ "ok": false }` errors.
fn call(method: &str, body: &impl Serialize) -> Result<Value, Error> {
    let token = slack_token()?;
    let response: Value = Request::post(api_url(method)).auth(&token).json(body)?.send_json()?;
    slack_ok(response)
}

fn slack_token() -> Result<Credential, Error> {
    any_credential(&["oauth", "bot_token"])
}

fn api_url(method: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| "https://slack.com".into());
    format!("{}/api/{method}", base.trim_end_matches('/'))
}

fn slack_ok(response: Value) -> Result<Value, Error> {
    if response["ok"].as_bool() == Some(true) {
        return Ok(response);
    }
    let code = response["error"].as_str().unwrap_or("slack_error").to_string();
    let retryable = matches!(code.as_str(), "ratelimited" | "service_unavailable" | "request_timeout");
    Err(Error::new(code.clone(), format!("Slack answered `{code}`")).with_retryable(retryable))
}
