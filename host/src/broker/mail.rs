//! Brokered mail: a connector sends a message through an SMTP server its manifest declares
//! (`mail_servers`), and the host does the speaking. The same policy as HTTP applies: the
//! server must be declared, its address must pass the address policy after DNS (and the
//! host connects to the address it checked), the credential must be bound to it, and the
//! connection's rate limit counts each message. TLS is never optional: `smtp://` requires
//! STARTTLS and `smtps://` is TLS from the first byte, verified against the web PKI (plus
//! [`super::BrokerConfig::mail_root_certs`]). The host logs in itself (AUTH PLAIN or LOGIN),
//! so the password never enters the sandbox, and everything the server answers is scrubbed.

use super::{Broker, EgressRules, HttpExchange};
use crate::vault::Credential;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncTransport, Message, Tokio1Executor};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use url::Url;

/// A file attached to a message.
#[derive(Debug, Clone)]
pub struct MailAttachment {
    /// File name shown to the recipient.
    pub filename: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// A message a connector asks the host to send.
#[derive(Debug, Clone, Default)]
pub struct MailMessage {
    /// `From` and the envelope sender.
    pub from: String,
    /// `To` recipients.
    pub to: Vec<String>,
    /// `Cc` recipients.
    pub cc: Vec<String>,
    /// Envelope-only recipients.
    pub bcc: Vec<String>,
    /// `Reply-To`.
    pub reply_to: Option<String>,
    /// `Subject`.
    pub subject: String,
    /// Plain-text body.
    pub text: Option<String>,
    /// HTML body.
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<MailAttachment>,
}

/// What the server accepted.
#[derive(Debug, Clone)]
pub struct MailSent {
    /// The `Message-ID` the host gave the message.
    pub message_id: String,
    /// The server's final reply (scrubbed).
    pub response: String,
}

/// Why a message was not sent. Every message is scrubbed of the connection's secrets.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Not a declared `smtp://` / `smtps://` server.
    #[error("{0}")]
    ServerNotAllowed(String),
    /// The server's address is not public.
    #[error("{0}")]
    AddressBlocked(String),
    /// The credential is not bound to this server (or is not a username and password).
    #[error("{0}")]
    CredentialNotBound(String),
    /// The message is malformed or too large.
    #[error("{0}")]
    InvalidMessage(String),
    /// The server refused the login.
    #[error("{0}")]
    AuthFailed(String),
    /// The server refused the message or a recipient for good.
    #[error("{0}")]
    Rejected(String),
    /// A failure worth retrying later.
    #[error("{0}")]
    Temporary(String),
}

/// Most server names whose TLS settings are kept; past it the cache starts over.
const TLS_CACHE_ENTRIES: usize = 256;

/// TLS settings per server name. Building them loads the system's root certificates (file
/// I/O and parsing), which need not happen again for every message to the same server.
#[derive(Default)]
pub(super) struct TlsCache(std::sync::Mutex<std::collections::HashMap<String, TlsParameters>>);

impl TlsCache {
    /// The settings for a session with `host`: its name verified against the system's roots
    /// plus `extra_roots` (PEM).
    fn for_server(&self, host: &str, extra_roots: &[String], rules: &EgressRules) -> Result<TlsParameters, MailError> {
        if let Some(cached) = self.0.lock().ok().and_then(|m| m.get(host).cloned()) {
            return Ok(cached);
        }
        crate::tls::install_crypto_provider();
        let mut tls = TlsParameters::builder(host.to_string());
        for pem in extra_roots {
            let certificate = Certificate::from_pem(pem.as_bytes())
                .map_err(|e| MailError::Temporary(format!("a configured mail root certificate is invalid: {e}")))?;
            tls = tls.add_root_certificate(certificate);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| MailError::Temporary(rules.redactor.scrub(&format!("TLS setup failed: {e}"))))?;
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= TLS_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(host.to_string(), tls.clone());
        }
        Ok(tls)
    }
}

/// Where and how to connect, once the policy has passed.
struct Route {
    /// The server as declared (for traces).
    server: String,
    /// The name the certificate must carry.
    host: String,
    /// The checked address to connect to.
    address: IpAddr,
    port: u16,
    implicit_tls: bool,
}

impl Broker {
    /// Send `message` through `server` for a connection with `rules`, logging in with
    /// `credential` when given. Recorded in `exchanges` like an HTTP request.
    pub async fn send_mail(
        &self,
        rules: &EgressRules,
        server: &str,
        message: MailMessage,
        credential: Option<&Credential>,
        deadline: Instant,
        exchanges: &mut Vec<HttpExchange>,
    ) -> Result<MailSent, MailError> {
        let started = Instant::now();
        let result = self.send_mail_inner(rules, server, message, credential, deadline).await;
        record(exchanges, rules, server, credential, "SMTP SEND", started, &result);
        result
    }

    /// Connect to `server`, secure the session and log in without sending anything.
    pub async fn check_mail(
        &self,
        rules: &EgressRules,
        server: &str,
        credential: Option<&Credential>,
        deadline: Instant,
        exchanges: &mut Vec<HttpExchange>,
    ) -> Result<String, MailError> {
        let started = Instant::now();
        let result = async {
            let route = self.route(rules, server, credential, deadline).await?;
            let transport = self.transport(&route, credential, deadline, rules)?;
            let check = tokio::time::timeout_at(deadline.into(), transport.test_connection()).await;
            match check {
                Ok(Ok(true)) => Ok(format!("{} accepted the session", route.server)),
                Ok(Ok(false)) => Err(MailError::Temporary(format!("{} closed the session", route.server))),
                Ok(Err(e)) => Err(classify(&e, rules)),
                Err(_) => Err(MailError::Temporary("the mail server did not answer in time".into())),
            }
        }
        .await;
        record(exchanges, rules, server, credential, "SMTP CHECK", started, &result);
        result
    }

    async fn send_mail_inner(
        &self,
        rules: &EgressRules,
        server: &str,
        message: MailMessage,
        credential: Option<&Credential>,
        deadline: Instant,
    ) -> Result<MailSent, MailError> {
        let limit = self.config().max_request_bytes;
        check_size(&message, limit)?;
        let (message, message_id) = build_message(message)?;
        let formatted = message.formatted();
        if formatted.len() > limit {
            return Err(MailError::InvalidMessage(format!(
                "the message is {} bytes; the limit is {limit}",
                formatted.len()
            )));
        }
        let route = self.route(rules, server, credential, deadline).await?;
        let transport = self.transport(&route, credential, deadline, rules)?;
        let sent = tokio::time::timeout_at(deadline.into(), transport.send_raw(message.envelope(), &formatted)).await;
        match sent {
            Ok(Ok(response)) => Ok(MailSent {
                message_id,
                response: rules.redactor.scrub(&format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )),
            }),
            Ok(Err(e)) => Err(classify(&e, rules)),
            Err(_) => Err(MailError::Temporary("the mail server did not answer in time".into())),
        }
    }

    /// Police `server` and resolve it to an address the policy admits.
    async fn route(
        &self,
        rules: &EgressRules,
        server: &str,
        credential: Option<&Credential>,
        deadline: Instant,
    ) -> Result<Route, MailError> {
        let url = parse_server(server)?;
        if !rules.allows_mail_server(&url) {
            return Err(MailError::ServerNotAllowed(format!(
                "{server} is not one of the connector's mail servers"
            )));
        }
        if let Some(c) = credential {
            if !rules.credential_bound(&c.scheme.id, &url) {
                return Err(MailError::CredentialNotBound(format!(
                    "the `{}` credential is not bound to {server}",
                    c.scheme.id
                )));
            }
            if c.login().is_none() {
                return Err(MailError::CredentialNotBound(format!(
                    "the `{}` credential is not a username and password, which SMTP needs",
                    c.scheme.id
                )));
            }
        }
        self.rate_limits
            .acquire(&rules.connection_key, rules.requests_per_second, deadline)
            .await
            .map_err(|e| MailError::Temporary(e.to_string()))?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string();
        let port = url.port().unwrap_or_default();
        // `smtp:` is not a special scheme: the url crate keeps an IPv4 host as text.
        let addresses: Vec<IpAddr> = match (url.host(), host.parse::<IpAddr>()) {
            (_, Ok(ip)) => vec![ip],
            (Some(url::Host::Ipv6(v6)), _) => vec![v6.into()],
            _ => {
                let patience =
                    super::outbound::RESOLVE_PATIENCE.min(deadline.saturating_duration_since(Instant::now()));
                match tokio::time::timeout(patience, tokio::net::lookup_host((host.as_str(), port))).await {
                    Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                    _ => Vec::new(),
                }
            }
        };
        let policy = &self.outbound.policed_for(&rules.granted_ranges).policy;
        for address in &addresses {
            policy
                .check(&host, *address)
                .map_err(|e| MailError::AddressBlocked(e.to_string()))?;
        }
        let address = *addresses
            .first()
            .ok_or_else(|| MailError::Temporary(format!("cannot resolve {host}")))?;
        Ok(Route {
            server: server.to_string(),
            host,
            address,
            port,
            implicit_tls: url.scheme() == "smtps",
        })
    }

    /// An SMTP client for one message: connects to the checked address, verifies the
    /// certificate against the server's name, requires TLS and logs in with `credential`.
    fn transport(
        &self,
        route: &Route,
        credential: Option<&Credential>,
        deadline: Instant,
        rules: &EgressRules,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let tls = self
            .mail_tls
            .for_server(&route.host, &self.config().mail_root_certs, rules)?;
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .min(self.config().request_timeout)
            .max(Duration::from_millis(1));
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(route.address.to_string())
            .port(route.port)
            .timeout(Some(timeout))
            .tls(if route.implicit_tls {
                Tls::Wrapper(tls)
            } else {
                Tls::Required(tls)
            });
        if let Some((username, password)) = credential.and_then(Credential::login) {
            builder = builder
                .credentials(Credentials::new(username.to_string(), password.to_string()))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(builder.build())
    }
}

/// Most recipients (To, Cc and Bcc together) one message may have: one rate-limit token
/// must not buy a mass mailing.
pub const MAX_RECIPIENTS: usize = 100;

/// Refuse a message that cannot fit the request cap or names too many recipients, before
/// any MIME encoding copies it (base64 grows attachments by a third).
fn check_size(m: &MailMessage, limit: usize) -> Result<(), MailError> {
    let recipients = m.to.len() + m.cc.len() + m.bcc.len();
    if recipients > MAX_RECIPIENTS {
        return Err(MailError::InvalidMessage(format!(
            "a message may have at most {MAX_RECIPIENTS} recipients; it has {recipients}"
        )));
    }
    let text = [&m.from, &m.subject]
        .into_iter()
        .chain(m.text.as_ref())
        .chain(m.html.as_ref())
        .chain(m.reply_to.as_ref())
        .chain(m.to.iter().chain(&m.cc).chain(&m.bcc))
        .map(String::len)
        .sum::<usize>();
    let attachments = m
        .attachments
        .iter()
        .map(|a| a.data.len().div_ceil(3) * 4 + a.filename.len() + a.content_type.len())
        .sum::<usize>();
    if text.saturating_add(attachments) > limit {
        return Err(MailError::InvalidMessage(format!(
            "the message would be over {limit} bytes once encoded"
        )));
    }
    Ok(())
}

/// `smtp://host:port` or `smtps://host:port`, nothing else.
fn parse_server(server: &str) -> Result<Url, MailError> {
    let refused = |why: &str| MailError::ServerNotAllowed(format!("`{server}` {why}"));
    let url = Url::parse(server).map_err(|_| refused("is not a URL"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(refused("is not smtp://host:port (STARTTLS) or smtps://host:port (TLS)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("carries user info; use a credential"));
    }
    if url.host_str().is_none_or(str::is_empty) || url.port().is_none() {
        return Err(refused("needs a host and a port"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(refused("must not have a path or query"));
    }
    Ok(url)
}

/// The message as lettre builds it (MIME, encoded headers, no `Bcc` header), and its id.
fn build_message(m: MailMessage) -> Result<(Message, String), MailError> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| MailError::InvalidMessage(format!("{what}: {e}"));
    let mailbox = |field: &str, text: &str| -> Result<Mailbox, MailError> {
        text.parse::<Mailbox>().map_err(|e| {
            invalid(
                &format!("`{field}` address `{}`", text.chars().take(200).collect::<String>()),
                &e,
            )
        })
    };
    if m.to.is_empty() && m.cc.is_empty() && m.bcc.is_empty() {
        return Err(MailError::InvalidMessage(
            "a message needs at least one recipient".into(),
        ));
    }
    let from = mailbox("from", &m.from)?;
    let domain = from.email.domain().to_string();
    let message_id = format!("<{}@{domain}>", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let mut builder = Message::builder()
        .from(from)
        .subject(m.subject)
        .message_id(Some(message_id.clone()));
    for to in &m.to {
        builder = builder.to(mailbox("to", to)?);
    }
    for cc in &m.cc {
        builder = builder.cc(mailbox("cc", cc)?);
    }
    for bcc in &m.bcc {
        builder = builder.bcc(mailbox("bcc", bcc)?);
    }
    if let Some(reply_to) = &m.reply_to {
        builder = builder.reply_to(mailbox("reply_to", reply_to)?);
    }
    let body = match (m.text, m.html) {
        (Some(text), Some(html)) => MultiPart::alternative_plain_html(text, html),
        (Some(text), None) => MultiPart::mixed().singlepart(SinglePart::plain(text)),
        (None, Some(html)) => MultiPart::mixed().singlepart(SinglePart::html(html)),
        (None, None) => {
            return Err(MailError::InvalidMessage(
                "a message needs a text or an HTML body".into(),
            ));
        }
    };
    let message = if m.attachments.is_empty() {
        builder.multipart(body)
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for a in m.attachments {
            let content_type = ContentType::parse(&a.content_type)
                .map_err(|e| invalid(&format!("content type of `{}`", a.filename), &e))?;
            mixed = mixed.singlepart(Attachment::new(a.filename).body(a.data, content_type));
        }
        builder.multipart(mixed)
    };
    let message = message.map_err(|e| invalid("the message", &e))?;
    Ok((message, message_id))
}

/// Sort lettre's error into what a connector can act on; scrubbed, since the server had the
/// credential.
fn classify(e: &lettre::transport::smtp::Error, rules: &EgressRules) -> MailError {
    let text = rules.redactor.scrub(&e.to_string());
    let code = e.status().map(|c| c.to_string());
    if e.is_permanent() {
        if code
            .as_deref()
            .is_some_and(|c| matches!(c, "530" | "534" | "535" | "538"))
        {
            MailError::AuthFailed(text)
        } else {
            MailError::Rejected(text)
        }
    } else if e.is_tls() || (e.is_client() && text.contains("STARTTLS")) {
        // No TLS, no login: a server that cannot (or, stripped by someone in the path,
        // seems not to) offer STARTTLS gets nothing, and trying later may help.
        MailError::Temporary(text)
    } else if e.is_client() {
        MailError::Rejected(text)
    } else {
        MailError::Temporary(text)
    }
}

fn record<T>(
    exchanges: &mut Vec<HttpExchange>,
    rules: &EgressRules,
    server: &str,
    credential: Option<&Credential>,
    method: &str,
    started: Instant,
    result: &Result<T, MailError>,
) {
    exchanges.push(HttpExchange {
        method: method.into(),
        url: rules.redactor.scrub(server),
        attempt: 1,
        hop: 0,
        credential: credential.map(|c| c.scheme.id.clone()),
        request_headers: Vec::new(),
        status: None,
        response_headers: Vec::new(),
        response_bytes: 0,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        error: result.as_ref().err().map(|e| rules.redactor.scrub(&e.to_string())),
    });
}
