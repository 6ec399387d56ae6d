//! SMTP connector: send mail through the connection's own server. The connector builds the
//! message; the host speaks SMTP (STARTTLS or implicit TLS, never plaintext) and logs in with
//! the stored password, which never enters the sandbox.

use nexum_connector_sdk::mail::{Attachment, Message};
use nexum_connector_sdk::prelude::*;

struct Smtp;
connector!(Smtp);

impl Connector for Smtp {
    fn actions() -> Actions {
        Actions::new().action("send_mail", send_mail)
    }

    fn test_connection() -> Result<Value, Error> {
        let server = server()?;
        let login = login();
        let greeting = mail::check(&server, login.as_ref())?;
        Ok(json!({ "server": server, "greeting": greeting }))
    }
}

/// A file as the API client sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileInput {
    filename: String,
    content_type: Option<String>,
    content_base64: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMail {
    from: Option<String>,
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default)]
    bcc: Vec<String>,
    reply_to: Option<String>,
    subject: String,
    text: Option<String>,
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<FileInput>,
}

fn send_mail(input: SendMail) -> Result<Value, Error> {
    let from = match input.from.filter(|f| !f.trim().is_empty()) {
        Some(from) => from,
        None => var("default_from")
            .filter(|f| !f.trim().is_empty())
            .ok_or_else(|| Error::invalid_input("give `from`, or set the connection's `default_from` variable"))?,
    };
    check_address("from", &from)?;
    if input.to.is_empty() {
        return Err(Error::invalid_input("`to` needs at least one recipient"));
    }
    for (field, list) in [("to", &input.to), ("cc", &input.cc), ("bcc", &input.bcc)] {
        for (i, address) in list.iter().enumerate() {
            check_address(&format!("{field}[{i}]"), address)?;
        }
    }
    if let Some(reply_to) = &input.reply_to {
        check_address("reply_to", reply_to)?;
    }
    if input.text.is_none() && input.html.is_none() {
        return Err(Error::invalid_input("give `text`, `html` or both"));
    }
    let attachments = input
        .attachments
        .into_iter()
        .enumerate()
        .map(|(i, file)| attachment(i, file))
        .collect::<Result<Vec<_>, _>>()?;
    let message = Message {
        from,
        to: input.to,
        cc: input.cc,
        bcc: input.bcc,
        reply_to: input.reply_to,
        subject: input.subject,
        text: input.text,
        html: input.html,
        attachments,
    };
    let accepted = message.recipient_count();
    let server = server()?;
    let login = login();
    let sent = message.send(&server, login.as_ref())?;
    log::info(&format!(
        "{server} accepted {} for {accepted} recipient(s)",
        sent.message_id
    ));
    Ok(json!({ "message_id": sent.message_id, "response": sent.response, "accepted": accepted }))
}

/// Decode one attachment, naming it in any error.
fn attachment(index: usize, file: FileInput) -> Result<Attachment, Error> {
    if file.filename.trim().is_empty() {
        return Err(Error::invalid_input(format!(
            "`attachments[{index}].filename` is empty"
        )));
    }
    let content_type = file
        .content_type
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "application/octet-stream".into());
    Attachment::from_base64(file.filename, content_type, &file.content_base64)
        .map_err(|e| Error::invalid_input(format!("`attachments[{index}].content_base64`: {}", e.message)))
}

/// A light check that `address` looks like one (`user@host` or `Name <user@host>`), so an
/// obvious mistake is named by its field; the host parses every address fully.
fn check_address(field: &str, address: &str) -> Result<(), Error> {
    if address.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "`{field}` contains a line break or another control character"
        )));
    }
    if !address.contains('@') {
        return Err(Error::invalid_input(format!(
            "`{field}` is not an email address: `{address}`"
        )));
    }
    Ok(())
}

/// The connection's server, `smtps://host:port` or `smtp://host:port`.
fn server() -> Result<String, Error> {
    var("server")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::new(
                "missing_variable",
                "the connection has no `server` (smtps://host:465 or smtp://host:587)",
            )
        })
}

/// The connection's login, if it has one: the host logs in with it (an open relay on a
/// private network needs none).
fn login() -> Option<Credential> {
    credential("login").ok()
}
