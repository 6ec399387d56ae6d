//! SendGrid connector: `POST /v3/mail/send` (text, HTML, dynamic templates, attachments).

use nexum_connector_sdk::prelude::*;

struct SendGrid;
connector!(SendGrid);

impl Connector for SendGrid {
    fn actions() -> Actions {
        Actions::new().action("send_mail", send_mail)
    }

    fn test_connection() -> Result<Value, Error> {
        // The cheapest call that proves the key: the scopes it carries.
        let scopes = send(Request::get(url("/v3/scopes")))?;
        let can_send = scopes["scopes"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == "mail.send"));
        Ok(json!({ "mail_send": can_send }))
    }
}

#[derive(Deserialize)]
struct Attachment {
    filename: String,
    content: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    disposition: Option<String>,
    content_id: Option<String>,
}

#[derive(Deserialize)]
struct SendMail {
    from: String,
    from_name: Option<String>,
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default)]
    bcc: Vec<String>,
    reply_to: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    template_id: Option<String>,
    template_data: Option<Value>,
    #[serde(default)]
    attachments: Vec<Attachment>,
}

fn addresses(list: &[String]) -> Value {
    Value::Array(list.iter().map(|email| json!({ "email": email })).collect())
}

fn send_mail(input: SendMail) -> Result<Value, Error> {
    if input.template_id.is_none() && input.text.is_none() && input.html.is_none() {
        return Err(Error::invalid_input("give `text`, `html` or a `template_id`"));
    }
    if input.template_id.is_none() && input.subject.is_none() {
        return Err(Error::invalid_input("a message without a template needs a `subject`"));
    }
    let mut personalization = json!({ "to": addresses(&input.to) });
    if !input.cc.is_empty() {
        personalization["cc"] = addresses(&input.cc);
    }
    if !input.bcc.is_empty() {
        personalization["bcc"] = addresses(&input.bcc);
    }
    if let Some(data) = input.template_data {
        personalization["dynamic_template_data"] = data;
    }
    let mut from = json!({ "email": input.from });
    if let Some(name) = input.from_name {
        from["name"] = json!(name);
    }
    let mut body = json!({ "personalizations": [personalization], "from": from });
    if let Some(subject) = input.subject {
        body["subject"] = json!(subject);
    }
    if let Some(reply_to) = input.reply_to {
        body["reply_to"] = json!({ "email": reply_to });
    }
    // SendGrid wants text/plain before text/html.
    let mut content = Vec::new();
    if let Some(text) = input.text {
        content.push(json!({ "type": "text/plain", "value": text }));
    }
    if let Some(html) = input.html {
        content.push(json!({ "type": "text/html", "value": html }));
    }
    if !content.is_empty() {
        body["content"] = Value::Array(content);
    }
    if let Some(template) = input.template_id {
        body["template_id"] = json!(template);
    }
    if !input.attachments.is_empty() {
        body["attachments"] = Value::Array(
            input
                .attachments
                .into_iter()
                .map(|a| {
                    let mut v = json!({ "filename": a.filename, "content": a.content });
                    if let Some(kind) = a.kind {
                        v["type"] = json!(kind);
                    }
                    if let Some(disposition) = a.disposition {
                        v["disposition"] = json!(disposition);
                    }
                    if let Some(id) = a.content_id {
                        v["content_id"] = json!(id);
                    }
                    v
                })
                .collect(),
        );
    }
    let key = credential("api_key")?;
    let response = Request::post(url("/v3/mail/send")).auth(&key).json(&body)?.send()?;
    if !response.is_success() {
        return Err(error(&response));
    }
    // 202 Accepted, no body; the message id is a header.
    Ok(json!({ "accepted": true, "message_id": response.header("x-message-id") }))
}

fn url(path: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| "https://api.sendgrid.com".into());
    format!("{}{path}", base.trim_end_matches('/'))
}

fn send(request: Request<'_>) -> Result<Value, Error> {
    let key = credential("api_key")?;
    let response = request.auth(&key).send()?;
    if !response.is_success() {
        return Err(error(&response));
    }
    response.json()
}

/// SendGrid's `{"errors": [{"message", "field"}]}` under the status's stable code.
fn error(response: &Response) -> Error {
    Error::from_response(response, |detail| {
        let messages: Vec<String> = detail["errors"]
            .as_array()?
            .iter()
            .map(|e| match e["field"].as_str() {
                Some(field) => format!("{field}: {}", e["message"].as_str().unwrap_or_default()),
                None => e["message"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        (!messages.is_empty()).then(|| format!("SendGrid: {}", messages.join("; ")))
    })
}
