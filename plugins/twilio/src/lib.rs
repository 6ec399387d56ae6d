//! Twilio connector: send SMS (form-encoded, HTTP Basic with the Account SID and Auth Token)
//! and read a message's status, over Twilio's REST API (`/2010-04-01/Accounts/{sid}/…`).

use nexum_connector_sdk::prelude::*;

struct Twilio;
connector!(Twilio);

impl Connector for Twilio {
    fn actions() -> Actions {
        Actions::new()
            .action("send_sms", send_sms)
            .action("get_message", get_message)
    }

    fn test_connection() -> Result<Value, Error> {
        // The cheapest identity call: the account itself.
        let account = send(Request::get(account_url(".json")?))?;
        Ok(json!({ "sid": account["sid"], "friendly_name": account["friendly_name"], "status": account["status"] }))
    }
}

#[derive(Deserialize)]
struct SendSms {
    to: String,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    body: String,
    status_callback: Option<String>,
}

fn send_sms(input: SendSms) -> Result<Value, Error> {
    if input.from.is_none() && input.messaging_service_sid.is_none() {
        return Err(Error::invalid_input("give `from` or `messaging_service_sid`"));
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("To", &input.to);
    if let Some(from) = &input.from {
        form.append_pair("From", from);
    }
    if let Some(service) = &input.messaging_service_sid {
        form.append_pair("MessagingServiceSid", service);
    }
    form.append_pair("Body", &input.body);
    if let Some(callback) = &input.status_callback {
        form.append_pair("StatusCallback", callback);
    }
    let mut request = Request::post(account_url("/Messages.json")?)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.finish());
    // A retried workflow step sends the same key (Twilio dedupes on it).
    if let Some(key) = idempotency_key() {
        request = request.header("I-Twilio-Idempotency-Token", key);
    }
    let sent = send(request)?;
    Ok(json!({ "sid": sent["sid"], "status": sent["status"], "to": sent["to"], "from": sent["from"] }))
}

#[derive(Deserialize)]
struct GetMessage {
    sid: String,
}

fn get_message(input: GetMessage) -> Result<Value, Error> {
    let message = send(Request::get(account_url(&format!("/Messages/{}.json", input.sid))?))?;
    Ok(json!({
        "sid": message["sid"],
        "status": message["status"],
        "error_code": message["error_code"],
        "error_message": message["error_message"],
    }))
}

/// `<api_base>/2010-04-01/Accounts/<account_sid><suffix>`.
fn account_url(suffix: &str) -> Result<String, Error> {
    let base = var("api_base").unwrap_or_else(|| "https://api.twilio.com".into());
    let sid = var("account_sid")
        .filter(|s| s.starts_with("AC") && s.len() == 34 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| Error::new("invalid_configuration", "account_sid must be your AC… Account SID"))?;
    Ok(format!(
        "{}/2010-04-01/Accounts/{sid}{suffix}",
        base.trim_end_matches('/')
    ))
}

/// Send with the account's credentials; Twilio's JSON error (`code`, `message`) becomes the
/// connector error, keeping the status mapping (401 → `unauthorized`, 429 and 5xx retryable).
fn send(request: Request<'_>) -> Result<Value, Error> {
    let account = credential("account")?;
    let response = request.auth(&account).send()?;
    if response.is_success() {
        return response.json();
    }
    Err(Error::from_response(&response, |detail| {
        Some(format!(
            "Twilio error {}: {}",
            detail["code"].as_i64()?,
            detail["message"].as_str()?
        ))
    }))
}
