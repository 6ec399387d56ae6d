//! Mail through an SMTP server the manifest lists in `mail_servers` (`nexum:connector/mail`,
//! WIT 0.1.2).
//!
//! The sandbox has no sockets: the host speaks SMTP, secures the session (`smtp://host:port`
//! upgrades with STARTTLS, never falling back to plaintext; `smtps://host:port` is TLS from the
//! first byte) and logs in with the connection's credential itself, so the password never
//! enters the connector.
//!
//! ```ignore
//! use nexum_connector_sdk::mail::{self, Attachment, Message};
//! use nexum_connector_sdk::prelude::*;
//!
//! let login = credential("login")?;
//! let sent = Message::new("Ops <ops@example.com>")
//!     .to("ada@example.com")
//!     .subject("Report")
//!     .text("Attached.")
//!     .attach(Attachment::from_base64("r.csv", "text/csv", "YSxiCg==")?)
//!     .send("smtps://smtp.example.com:465", Some(&login))?;
//! log::info(&format!("queued as {}", sent.message_id));
//! ```
//!
//! Connectors that build messages for an HTTP mail API share the checks here too:
//! [`split_display`], [`valid_address`], [`valid_media_type`], [`one_line`] and
//! [`decode_base64`].

use crate::bindings::nexum::connector::mail as wit;
use crate::{Credential, Error};

/// A file attached to a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name shown to the recipient.
    pub filename: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The file's bytes.
    pub data: Vec<u8>,
}

impl Attachment {
    /// An attachment of `data`.
    pub fn new(filename: impl Into<String>, content_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self {
            filename: filename.into(),
            content_type: content_type.into(),
            data: data.into(),
        }
    }

    /// An attachment whose bytes arrive base64-encoded, as files do in JSON. The standard and
    /// the URL-safe alphabets are accepted, with or without `=` padding, and whitespace (line
    /// breaks of MIME-style base64) is ignored. Anything else is an `invalid_input` error.
    pub fn from_base64(
        filename: impl Into<String>,
        content_type: impl Into<String>,
        base64: &str,
    ) -> Result<Self, Error> {
        let filename = filename.into();
        let data = decode_base64(base64)
            .map_err(|why| Error::invalid_input(format!("the content of `{filename}` is not valid base64: {why}")))?;
        Ok(Self::new(filename, content_type, data))
    }
}

/// A message to send. Addresses are `user@example.com` or `Name <user@example.com>`; the host
/// checks them, encodes the headers and builds the MIME structure (`multipart/alternative`
/// for a text and an HTML body, `multipart/mixed` with attachments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The `From` header and the envelope sender.
    pub from: String,
    /// Recipients in `To`.
    pub to: Vec<String>,
    /// Recipients in `Cc`.
    pub cc: Vec<String>,
    /// Recipients only in the envelope (never in a header).
    pub bcc: Vec<String>,
    /// The `Reply-To` header.
    pub reply_to: Option<String>,
    /// The `Subject` header (the host encodes it when it is not ASCII).
    pub subject: String,
    /// The plain-text body.
    pub text: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
    /// Files attached to the message.
    pub attachments: Vec<Attachment>,
}

impl Message {
    /// An empty message from `from`.
    pub fn new(from: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            ..Self::default()
        }
    }

    /// Add a `To` recipient.
    pub fn to(mut self, address: impl Into<String>) -> Self {
        self.to.push(address.into());
        self
    }

    /// Add a `Cc` recipient.
    pub fn cc(mut self, address: impl Into<String>) -> Self {
        self.cc.push(address.into());
        self
    }

    /// Add a blind recipient: in the envelope only, never in a header.
    pub fn bcc(mut self, address: impl Into<String>) -> Self {
        self.bcc.push(address.into());
        self
    }

    /// Set `Reply-To`.
    pub fn reply_to(mut self, address: impl Into<String>) -> Self {
        self.reply_to = Some(address.into());
        self
    }

    /// Set the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Set the plain-text body.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Set the HTML body.
    pub fn html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// Attach a file.
    pub fn attach(mut self, attachment: Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }

    /// How many envelope recipients the message has (`to`, `cc` and `bcc` together).
    pub fn recipient_count(&self) -> usize {
        self.to.len() + self.cc.len() + self.bcc.len()
    }

    /// Send through `server`, like [`send`], without copying the message first (attachments
    /// can be large).
    pub fn send(self, server: &str, auth: Option<&Credential>) -> Result<Sent, Error> {
        let sent = wit::send(server, &self.into(), auth)?;
        Ok(sent.into())
    }
}

impl From<Message> for wit::Message {
    fn from(m: Message) -> Self {
        wit::Message {
            from: m.from,
            to: m.to,
            cc: m.cc,
            bcc: m.bcc,
            reply_to: m.reply_to,
            subject: m.subject,
            text: m.text,
            html: m.html,
            attachments: m
                .attachments
                .into_iter()
                .map(|a| wit::Attachment {
                    filename: a.filename,
                    content_type: a.content_type,
                    data: a.data,
                })
                .collect(),
        }
    }
}

/// What the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The `Message-ID` the host gave the message, e.g. `<01j…@example.com>`.
    pub message_id: String,
    /// The server's final reply, e.g. `250 2.0.0 Ok: queued as 12345`.
    pub response: String,
}

impl From<wit::Sent> for Sent {
    fn from(s: wit::Sent) -> Self {
        Self {
            message_id: s.message_id,
            response: s.response,
        }
    }
}

/// Send `message` through `server` (`smtp://host:port` with STARTTLS, or `smtps://host:port`
/// with implicit TLS), which must be one of the manifest's `mail_servers`. With `auth`, the
/// host logs in with that credential (a `basic` scheme bound to the server); the connector
/// never sees the password.
///
/// Errors carry stable codes: `server_not_allowed`, `address_blocked`,
/// `credential_not_bound`, `invalid_input` (a malformed or oversized message),
/// `unauthorized` (the server refused the login, as for an HTTP 401: the connection's status
/// turns to `error`), `rejected` (a permanent 5xx refusal) and `temporary_failure` (a 4xx
/// reply, a connection, TLS or time-out failure; the only retryable one).
pub fn send(server: &str, message: &Message, auth: Option<&Credential>) -> Result<Sent, Error> {
    message.clone().send(server, auth)
}

/// Connect to `server`, secure the session and log in with `auth` without sending anything:
/// a connection test. Returns the server's greeting. Errors as for [`send`].
pub fn check(server: &str, auth: Option<&Credential>) -> Result<String, Error> {
    Ok(wit::check(server, auth)?)
}

impl From<wit::MailError> for Error {
    fn from(e: wit::MailError) -> Self {
        match e {
            wit::MailError::ServerNotAllowed(m) => Error::new("server_not_allowed", m),
            wit::MailError::AddressBlocked(m) => Error::new("address_blocked", m),
            wit::MailError::CredentialNotBound(m) => Error::new("credential_not_bound", m),
            wit::MailError::InvalidMessage(m) => Error::new("invalid_input", m),
            // The code an HTTP 401 gets (`Error::from_status`), so the host treats a refused
            // login like any other bad credential.
            wit::MailError::AuthFailed(m) => Error::new("unauthorized", m),
            wit::MailError::Rejected(m) => Error::new("rejected", m),
            wit::MailError::Temporary(m) => Error::new("temporary_failure", m).with_retryable(true),
        }
    }
}

/// Split `Name <address>` (the name optionally quoted) into the display name and the
/// address, both trimmed; a bare address has no name. The address is not checked: see
/// [`valid_address`].
pub fn split_display(text: &str) -> (Option<String>, String) {
    let text = text.trim();
    if let Some(open) = text.rfind('<')
        && let Some(inner) = text[open + 1..].strip_suffix('>')
    {
        let name = text[..open].trim().trim_matches('"').trim();
        return ((!name.is_empty()).then(|| name.to_string()), inner.trim().to_string());
    }
    (None, text.to_string())
}

/// Whether `address` is a plain `local@domain` address (at most 64 characters before the `@`,
/// 254 in all, a domain that neither starts nor ends with `.`) with nothing that could end a
/// header or smuggle in another address: no whitespace, control characters, `<>(),;:"[]\`.
pub fn valid_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.is_empty()
        && address.len() <= 254
        && !local.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && address.chars().all(|c| {
            !c.is_control()
                && !c.is_whitespace()
                && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | ':' | '"' | '[' | ']' | '\\')
        })
}

/// Whether `value` is a `type/subtype` media type (e.g. `application/pdf`) of RFC 6838
/// token characters, without parameters, fit for a `Content-Type` header.
pub fn valid_media_type(value: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    value
        .split_once('/')
        .is_some_and(|(kind, subtype)| token(kind) && token(subtype))
}

/// `text` on one line, as a header value must be (a line break would start a new header):
/// control characters (line breaks, tabs) become spaces, and the ends are trimmed.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Decode base64, as files arrive in JSON. Accepts the standard (`+/`) and the URL-safe
/// (`-_`) alphabets, with or without `=` padding, and ignores whitespace (spaces, tabs and the
/// line breaks of MIME-style base64). The error says what is wrong, e.g. which byte is outside
/// the alphabet.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let mut symbols: usize = 0;
    let mut padding: usize = 0;
    for (i, byte) in text.bytes().enumerate() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            other => return Err(format!("byte {i} (`{}`) is outside the alphabet", other.escape_ascii())),
        };
        if padding > 0 {
            return Err("`=` padding may only end the text".into());
        }
        symbols += 1;
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if symbols % 4 == 1 {
        return Err("the text is truncated (one symbol too many or too few)".into());
    }
    if padding > 0 && (padding > 2 || !(symbols + padding).is_multiple_of(4)) {
        return Err("wrong `=` padding".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn decodes_padded_unpadded_url_safe_and_wrapped_base64() {
        assert_eq!(decode_base64("").as_deref(), Ok(&b""[..]));
        assert_eq!(decode_base64("YSxiCg==").as_deref(), Ok(&b"a,b\n"[..]));
        assert_eq!(decode_base64("YSxiCg").as_deref(), Ok(&b"a,b\n"[..]));
        assert_eq!(decode_base64("aGVsbG8=").as_deref(), Ok(&b"hello"[..]));
        assert_eq!(decode_base64("aGVs\r\nbG8h").as_deref(), Ok(&b"hello!"[..]));
        assert_eq!(decode_base64("-_-_").as_deref(), Ok(&[0xfb, 0xff, 0xbf][..]));
        assert_eq!(decode_base64("+/+/").as_deref(), Ok(&[0xfb, 0xff, 0xbf][..]));
    }

    #[test]
    fn refuses_what_is_not_base64() {
        assert!(decode_base64("not base64!").is_err());
        assert!(decode_base64("YSxiC").is_err());
        assert!(decode_base64("YS=xiCg").is_err());
        assert!(decode_base64("YSxiCg===").is_err());
        assert!(decode_base64("YSxiCg=").is_err());
    }
}
