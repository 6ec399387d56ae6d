//! The SMTP connector against a loopback SMTP server (`nexum_tests::smtp`): the envelope and
//! the MIME message as the server received them (Bcc only in the envelope, text and HTML as
//! `multipart/alternative` inside `multipart/mixed`, attachments byte for byte), the login
//! made by the host only once TLS is up and with exactly the stored password, STARTTLS never
//! skipped, implicit TLS, the server's refusals under stable codes, and the password in
//! nothing the call returns.

use base64::Engine as _;
use mail_parser::{Address, MessageParser, MimeHeaders};
use nexum_host::broker::BrokerConfig;
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector, RuntimeConfig};
use nexum_tests::host::{Network, TestHost, connector_error};
use nexum_tests::smtp::{DEFERRED_RECIPIENT, Mode, REJECTED_RECIPIENT, SmtpConfig, SmtpServer};
use serde_json::{Value, json};
use std::sync::Arc;

const USER: &str = "ops@example.com";
const PASSWORD: &str = "smtp-Pa55word-7f3k";

/// A server, a host that trusts its certificate and may reach loopback, and a connection to
/// it.
struct Setup {
    server: SmtpServer,
    host: TestHost,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

impl Setup {
    /// A server with `config`, and a connection whose stored password is `password` and whose
    /// `default_from` is `default_from`.
    async fn new(config: SmtpConfig, password: &str, default_from: &str) -> Self {
        let server = SmtpServer::start_with(config).await;
        let host = trusting(&server);
        let connector = host.load("smtp", None);
        let connection = connect(&host, &connector, &server, password, default_from);
        Self {
            server,
            host,
            connector,
            connection,
        }
    }

    async fn send(&self, input: Value) -> CallOutcome {
        self.host
            .run(&self.connector, &self.connection, "send_mail", input)
            .await
    }

    async fn test_connection(&self) -> CallOutcome {
        self.host
            .runtime
            .execute(&self.connector, self.connection.clone(), Invocation::TestConnection)
            .await
    }
}

/// A host that may reach loopback and trusts `server`'s self-signed certificate.
fn trusting(server: &SmtpServer) -> TestHost {
    TestHost::with(
        Network::LoopbackAllowed,
        RuntimeConfig {
            max_concurrent_calls: 16,
            ..RuntimeConfig::default()
        },
        BrokerConfig {
            mail_root_certs: vec![server.cert_pem().to_string()],
            ..BrokerConfig::default()
        },
    )
}

fn connect(
    host: &TestHost,
    connector: &LoadedConnector,
    server: &SmtpServer,
    password: &str,
    default_from: &str,
) -> Arc<Connection> {
    let url = server.url();
    host.connect(
        connector,
        "conn_smtp",
        &[("server", url.as_str()), ("default_from", default_from)],
        &[("login", &[("username", USER), ("password", password)])],
    )
}

/// A small valid message to `to`.
fn mail_to(to: &[&str]) -> Value {
    json!({ "from": "ops@example.com", "to": to, "subject": "Status", "text": "All good." })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Neither the call's result nor its trace carries `password`, in any form the redactor
/// knows (the trace is checked as JSON, as the API would show it).
fn assert_password_absent(outcome: &CallOutcome, password: &str) {
    let seen = format!(
        "{:?}\n{}",
        outcome.result,
        serde_json::to_string(&outcome.trace).expect("trace")
    );
    assert!(!seen.contains(password), "the password left the host: {seen}");
}

fn position(commands: &[String], verb: &str) -> usize {
    commands
        .iter()
        .position(|c| c == verb)
        .unwrap_or_else(|| panic!("no {verb} in {commands:?}"))
}

fn addresses(list: Option<&Address<'_>>) -> Vec<String> {
    list.map(|a| a.iter().filter_map(|x| x.address()).map(str::to_string).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn send_mail_over_starttls_delivers_the_whole_message_after_a_login_under_tls() {
    let s = Setup::new(SmtpConfig::new(Mode::Starttls, USER, PASSWORD), PASSWORD, "").await;
    assert!(s.server.url().starts_with("smtp://127.0.0.1:"));
    let pdf: Vec<u8> = b"%PDF-1.4\n".iter().copied().chain((0..=255u8).rev()).collect();
    let blob: Vec<u8> = (0..=255u8).collect();
    let out = s
        .send(json!({
            "from": "Ops Team <ops@example.com>",
            "to": ["ada@example.com", "Bob <bob@example.com>"],
            "cc": ["carol@example.com"],
            "bcc": ["hidden@example.com"],
            "reply_to": "replies@example.com",
            "subject": "Quarterly report — résumé",
            "text": "The numbers are attached.",
            "html": "<p>The <b>numbers</b> are attached.</p>",
            "attachments": [
                { "filename": "report.pdf", "content_type": "application/pdf", "content_base64": b64(&pdf) },
                { "filename": "raw.bin", "content_base64": b64(&blob) }
            ]
        }))
        .await;
    assert_password_absent(&out, PASSWORD);
    let output = out.result.expect("sent");
    assert_eq!(output["accepted"], 4, "{output}");
    let message_id = output["message_id"].as_str().expect("message_id");
    let response = output["response"].as_str().expect("response");
    assert!(response.starts_with("250"), "{response}");

    let sessions = s.server.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let session = &sessions[0];
    assert!(session.tls, "{session:#?}");
    assert_eq!(session.error, None);
    // STARTTLS first; the login and the mail only after it.
    let starttls = position(&session.commands, "STARTTLS");
    let auth = position(&session.commands, "AUTH PLAIN");
    let mail = position(&session.commands, "MAIL");
    assert!(starttls < auth && auth < mail, "{:?}", session.commands);
    // The host logged in itself, with exactly the stored credential.
    assert_eq!(session.auths.len(), 1, "{:?}", session.commands);
    let login = &session.auths[0];
    assert_eq!(
        (
            login.mechanism.as_str(),
            login.username.as_str(),
            login.password.as_str()
        ),
        ("PLAIN", USER, PASSWORD)
    );
    assert!(login.tls && login.accepted);

    // The envelope: the bare sender, every recipient including Bcc.
    assert_eq!(session.deliveries.len(), 1);
    let delivery = &session.deliveries[0];
    assert!(delivery.tls);
    assert_eq!(delivery.authenticated_as.as_deref(), Some(USER));
    assert_eq!(delivery.from, "ops@example.com");
    let mut recipients = delivery.recipients.clone();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "ada@example.com",
            "bob@example.com",
            "carol@example.com",
            "hidden@example.com"
        ]
    );

    // The message: Bcc nowhere in it, and no secret.
    let raw = delivery.text();
    assert!(
        !raw.contains("hidden@example.com"),
        "the Bcc recipient is in the message:\n{raw}"
    );
    assert!(!raw.contains(PASSWORD));
    let message = MessageParser::default()
        .parse(delivery.data.as_slice())
        .expect("a MIME message");
    assert_eq!(addresses(message.from()), ["ops@example.com"]);
    assert_eq!(
        message.from().and_then(|a| a.first()).and_then(|a| a.name()),
        Some("Ops Team")
    );
    assert_eq!(addresses(message.to()), ["ada@example.com", "bob@example.com"]);
    assert_eq!(addresses(message.cc()), ["carol@example.com"]);
    assert!(message.bcc().is_none(), "{raw}");
    assert_eq!(addresses(message.reply_to()), ["replies@example.com"]);
    assert_eq!(message.subject(), Some("Quarterly report — résumé"));
    // The output names the message the server got (`<id>` in the header, the same id inside).
    assert_eq!(
        message.message_id(),
        Some(message_id.trim_start_matches('<').trim_end_matches('>')),
        "{raw}"
    );

    // multipart/mixed: a multipart/alternative (text, then HTML), then the two files.
    assert!(message.is_content_type("multipart", "mixed"), "{raw}");
    let alternative = message
        .parts
        .iter()
        .find(|p| p.is_content_type("multipart", "alternative"))
        .unwrap_or_else(|| panic!("no multipart/alternative part:\n{raw}"));
    let inner: Vec<String> = alternative
        .sub_parts()
        .expect("sub-parts")
        .iter()
        .filter_map(|id| message.part(*id))
        .filter_map(|p| p.content_type())
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
        .collect();
    assert_eq!(inner, ["text/plain", "text/html"], "{raw}");
    assert_eq!(
        message.body_text(0).as_deref().map(str::trim),
        Some("The numbers are attached.")
    );
    assert_eq!(
        message.body_html(0).as_deref().map(str::trim),
        Some("<p>The <b>numbers</b> are attached.</p>")
    );
    let files: Vec<(String, String, Vec<u8>)> = message
        .attachments()
        .map(|a| {
            let content_type = a
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
                .unwrap_or_default();
            (
                a.attachment_name().unwrap_or_default().to_string(),
                content_type,
                a.contents().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("report.pdf".to_string(), "application/pdf".to_string(), pdf),
            ("raw.bin".to_string(), "application/octet-stream".to_string(), blob),
        ]
    );
}

#[tokio::test]
async fn implicit_tls_with_auth_login_and_the_default_sender() {
    let mut config = SmtpConfig::new(Mode::Implicit, USER, PASSWORD);
    config.mechanisms = vec!["LOGIN"];
    let s = Setup::new(config, PASSWORD, "Nexum <noreply@example.com>").await;
    assert!(s.server.url().starts_with("smtps://127.0.0.1:"));
    // No `from`: the connection's `default_from` is the sender.
    let out = s
        .send(json!({ "to": ["ada@example.com"], "subject": "Hi", "text": "Hello over implicit TLS." }))
        .await;
    assert_password_absent(&out, PASSWORD);
    let output = out.result.expect("sent");
    assert_eq!(output["accepted"], 1, "{output}");

    let sessions = s.server.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let session = &sessions[0];
    assert!(session.tls);
    assert!(
        !session.commands.iter().any(|c| c == "STARTTLS"),
        "{:?}",
        session.commands
    );
    let login = &session.auths[0];
    assert_eq!(
        (
            login.mechanism.as_str(),
            login.username.as_str(),
            login.password.as_str()
        ),
        ("LOGIN", USER, PASSWORD)
    );
    assert!(login.tls && login.accepted);
    let delivery = &session.deliveries[0];
    assert!(delivery.tls);
    assert_eq!(delivery.from, "noreply@example.com");
    assert_eq!(delivery.recipients, ["ada@example.com"]);
    let message = MessageParser::default()
        .parse(delivery.data.as_slice())
        .expect("a MIME message");
    assert_eq!(
        message.from().and_then(|a| a.first()).and_then(|a| a.name()),
        Some("Nexum")
    );
    assert_eq!(
        message.body_text(0).as_deref().map(str::trim),
        Some("Hello over implicit TLS.")
    );
}

#[tokio::test]
async fn a_server_without_starttls_gets_no_login_and_no_mail() {
    // smtp:// to a server that offers no STARTTLS (as when an attacker strips it): the host
    // must not fall back to plaintext, although the server would take AUTH and mail so.
    let s = Setup::new(SmtpConfig::new(Mode::NoStarttls, USER, PASSWORD), PASSWORD, "").await;
    let out = s.send(mail_to(&["ada@example.com"])).await;
    assert_password_absent(&out, PASSWORD);
    let (code, message, retryable) = connector_error(out);
    assert_eq!((code.as_str(), retryable), ("temporary_failure", true), "{message}");
    let checked = s.test_connection().await;
    assert_password_absent(&checked, PASSWORD);
    let (code, message, retryable) = connector_error(checked);
    assert_eq!((code.as_str(), retryable), ("temporary_failure", true), "{message}");

    let sessions = s.server.sessions();
    assert!(!sessions.is_empty(), "the host never connected");
    for session in &sessions {
        assert!(!session.tls);
        assert!(session.auths.is_empty(), "{:?}", session.commands);
        assert!(session.deliveries.is_empty());
        assert!(
            !session
                .commands
                .iter()
                .any(|c| c.starts_with("AUTH") || matches!(c.as_str(), "MAIL" | "RCPT" | "DATA")),
            "{:?}",
            session.commands
        );
    }
    assert!(!format!("{sessions:?}").contains(PASSWORD));
}

#[tokio::test]
async fn a_refused_login_is_unauthorized_and_the_echoed_password_is_scrubbed() {
    const WRONG: &str = "not-the-Passw0rd-91x";
    let mut config = SmtpConfig::new(Mode::Starttls, USER, PASSWORD);
    // The server quotes the credentials it refused in its 535 reply.
    config.echo_credentials = true;
    let s = Setup::new(config, WRONG, "").await;
    let out = s.send(mail_to(&["ada@example.com"])).await;
    assert_password_absent(&out, WRONG);
    let (code, message, retryable) = connector_error(out);
    // The code an HTTP 401 gets, so the connection's status turns to `error`.
    assert_eq!((code.as_str(), retryable), ("unauthorized", false), "{message}");

    let checked = s.test_connection().await;
    assert_password_absent(&checked, WRONG);
    let (code, _, retryable) = connector_error(checked);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));

    let sessions = s.server.sessions();
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    for session in &sessions {
        // What the host sent was the stored password, and only under TLS.
        assert_eq!(session.auths.len(), 1, "{:?}", session.commands);
        let login = &session.auths[0];
        assert_eq!((login.username.as_str(), login.password.as_str()), (USER, WRONG));
        assert!(login.tls && !login.accepted);
        assert!(session.deliveries.is_empty());
    }
}

#[tokio::test]
async fn refused_and_deferred_recipients_map_to_rejected_and_retryable() {
    let s = Setup::new(SmtpConfig::new(Mode::Starttls, USER, PASSWORD), PASSWORD, "").await;
    let (code, message, retryable) = connector_error(s.send(mail_to(&["ada@example.com", REJECTED_RECIPIENT])).await);
    assert_eq!((code.as_str(), retryable), ("rejected", false), "{message}");
    assert!(message.contains("550"), "{message}");
    let (code, message, retryable) = connector_error(s.send(mail_to(&[DEFERRED_RECIPIENT])).await);
    assert_eq!((code.as_str(), retryable), ("temporary_failure", true), "{message}");
    assert!(message.contains("451"), "{message}");

    assert!(s.server.deliveries().is_empty());
    let refused: Vec<(String, u16)> = s
        .server
        .sessions()
        .into_iter()
        .flat_map(|session| session.refused_recipients)
        .collect();
    assert_eq!(
        refused,
        [
            (REJECTED_RECIPIENT.to_string(), 550),
            (DEFERRED_RECIPIENT.to_string(), 451)
        ]
    );
}

#[tokio::test]
async fn a_server_the_manifest_does_not_list_is_never_contacted() {
    let server = SmtpServer::start(Mode::Starttls, USER, PASSWORD).await;
    let host = trusting(&server);
    let manifest =
        std::fs::read_to_string(nexum_tests::plugins::connector_dir("smtp").join("connector.toml")).expect("manifest");
    let elsewhere = manifest.replace(
        r#"mail_servers = ["{{ server }}"]"#,
        r#"mail_servers = ["smtps://smtp.example.com:465"]"#,
    );
    assert_ne!(
        elsewhere, manifest,
        "the manifest no longer declares `{{{{ server }}}}`"
    );
    let connector = host.load("smtp", Some(elsewhere.as_str()));
    let connection = connect(&host, &connector, &server, PASSWORD, "");
    let out = host
        .run(&connector, &connection, "send_mail", mail_to(&["ada@example.com"]))
        .await;
    assert_password_absent(&out, PASSWORD);
    let (code, message, retryable) = connector_error(out);
    assert_eq!((code.as_str(), retryable), ("server_not_allowed", false), "{message}");
    assert!(server.sessions().is_empty(), "{:#?}", server.sessions());
}

#[tokio::test]
async fn test_connection_logs_in_without_sending() {
    let s = Setup::new(SmtpConfig::new(Mode::Starttls, USER, PASSWORD), PASSWORD, "").await;
    let out = s.test_connection().await;
    assert_password_absent(&out, PASSWORD);
    let account = out.result.expect("connected");
    assert_eq!(account["server"], s.server.url());
    assert!(account["greeting"].as_str().is_some_and(|g| !g.is_empty()), "{account}");

    let sessions = s.server.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let session = &sessions[0];
    assert!(session.tls);
    assert!(session.auths[0].tls && session.auths[0].accepted);
    assert!(session.deliveries.is_empty());
    assert!(!session.commands.iter().any(|c| c == "MAIL"), "{:?}", session.commands);
}

#[tokio::test]
async fn bad_input_is_refused_before_any_session() {
    let s = Setup::new(SmtpConfig::new(Mode::Starttls, USER, PASSWORD), PASSWORD, "").await;
    let cases = [
        (
            json!({ "from": "ops@example.com", "to": ["ada@example.com"], "subject": "s", "text": "t",
                    "attachments": [{ "filename": "a.bin", "content_base64": "%%% not base64 %%%" }] }),
            "attachments[0].content_base64",
        ),
        (
            json!({ "from": "ops@example.com", "to": ["ada@example.com"], "subject": "s" }),
            "`text`, `html`",
        ),
        // No `from` and the connection has no `default_from`.
        (
            json!({ "to": ["ada@example.com"], "subject": "s", "text": "t" }),
            "default_from",
        ),
        (
            json!({ "from": "ops@example.com", "to": ["not an address"], "subject": "s", "text": "t" }),
            "to[0]",
        ),
    ];
    // The host's own cap: 100 recipients a message, whatever a connector's schema allows.
    let many: Vec<String> = (0..60).map(|i| format!("r{i}@example.com")).collect();
    let cases = cases.into_iter().chain([(
        json!({ "from": "ops@example.com", "to": many, "cc": many, "subject": "s", "text": "t" }),
        "at most 100 recipients",
    )]);
    for (input, expected) in cases {
        let (code, message, retryable) = connector_error(s.send(input).await);
        assert_eq!((code.as_str(), retryable), ("invalid_input", false), "{message}");
        assert!(message.contains(expected), "{message}");
    }
    // No recipient at all: the manifest's schema refuses it before the connector runs.
    let out = s
        .send(json!({ "from": "ops@example.com", "to": [], "subject": "s", "text": "t" }))
        .await;
    assert!(
        matches!(out.result, Err(CallError::InvalidInput { .. })),
        "{:?}",
        out.result
    );
    assert!(s.server.sessions().is_empty(), "{:#?}", s.server.sessions());
}
