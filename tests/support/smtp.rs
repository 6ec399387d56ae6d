//! A loopback SMTP server for the mail tests, on 127.0.0.1:0 with a self-signed certificate
//! for `localhost` and 127.0.0.1 (hand [`SmtpServer::cert_pem`] to the broker as an extra
//! root).
//!
//! It speaks enough ESMTP for a real client: EHLO/HELO, STARTTLS, AUTH PLAIN (initial
//! response or continuation) and AUTH LOGIN, MAIL FROM, RCPT TO, DATA (dot-unstuffed), RSET,
//! NOOP and QUIT. It accepts one username and password (535 otherwise), refuses
//! [`REJECTED_RECIPIENT`] for good (550) and defers [`DEFERRED_RECIPIENT`] (451), and records
//! every session: whether TLS was up for AUTH and DATA, the mechanism, the decoded username
//! and password, the envelope and the raw message. Each record is written before the reply
//! the client waits for, so a test reads it as soon as its call returns.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The recipient the server refuses for good: `550 5.1.1 … User unknown`.
pub const REJECTED_RECIPIENT: &str = "nobody@example.com";
/// The recipient the server defers: `451 4.2.0 … try again later`.
pub const DEFERRED_RECIPIENT: &str = "busy@example.com";
/// The name the server gives itself in its greeting and EHLO reply.
pub const SERVER_NAME: &str = "smtp.nexum.test";

/// Longest command line the server reads (RFC 5321 allows 512; AUTH responses run longer).
const MAX_COMMAND_LINE: usize = 16 * 1024;
/// Longest line of message data.
const MAX_DATA_LINE: usize = 64 * 1024;
/// Largest message the server takes.
const MAX_MESSAGE: usize = 64 << 20;

/// How the server secures its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `smtp://`: a plaintext greeting, STARTTLS offered, and AUTH and MAIL refused with 530
    /// until the session is encrypted.
    Starttls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://` without STARTTLS: AUTH and mail are taken in plaintext. What a server behind
    /// a STARTTLS-stripping attacker looks like; a client must refuse to go on.
    NoStarttls,
}

/// What the server accepts and how it behaves.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// How sessions are secured.
    pub mode: Mode,
    /// The only username AUTH accepts.
    pub username: String,
    /// The only password AUTH accepts.
    pub password: String,
    /// The AUTH mechanisms EHLO offers, in order (`PLAIN`, `LOGIN`).
    pub mechanisms: Vec<&'static str>,
    /// Whether MAIL needs a successful AUTH first (530 otherwise).
    pub require_auth: bool,
    /// Echo the received username and password in the 535 reply, as a careless server might,
    /// to prove the host scrubs what the server says.
    pub echo_credentials: bool,
}

impl SmtpConfig {
    /// A server in `mode` accepting `username` and `password` with AUTH PLAIN or LOGIN, mail
    /// only after AUTH, and no echo.
    pub fn new(mode: Mode, username: &str, password: &str) -> Self {
        Self {
            mode,
            username: username.to_string(),
            password: password.to_string(),
            mechanisms: vec!["PLAIN", "LOGIN"],
            require_auth: true,
            echo_credentials: false,
        }
    }
}

/// One AUTH exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthAttempt {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: String,
    /// The decoded username (PLAIN's authentication identity).
    pub username: String,
    /// The decoded password.
    pub password: String,
    /// Whether the session was encrypted when the credentials arrived.
    pub tls: bool,
    /// Whether the server accepted them.
    pub accepted: bool,
}

/// One message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The accepted envelope recipients (`RCPT TO`), in order.
    pub recipients: Vec<String>,
    /// The message as received after DATA, dot-unstuffed, without the final `.` line.
    pub data: Vec<u8>,
    /// Whether the session was encrypted during DATA.
    pub tls: bool,
    /// The username the session had logged in as.
    pub authenticated_as: Option<String>,
}

impl Delivery {
    /// The message as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// One TCP connection, as the server saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Whether the session became (or started) encrypted.
    pub tls: bool,
    /// The name the client gave in its last EHLO or HELO.
    pub client_name: Option<String>,
    /// The verbs received in order (`AUTH` with its mechanism), never their arguments.
    pub commands: Vec<String>,
    /// Every AUTH exchange that got as far as credentials.
    pub auths: Vec<AuthAttempt>,
    /// Recipients refused, with the reply code.
    pub refused_recipients: Vec<(String, u16)>,
    /// Messages accepted.
    pub deliveries: Vec<Delivery>,
    /// Why the session ended abnormally (a TLS handshake or I/O failure), if it did.
    pub error: Option<String>,
}

/// A running SMTP server; stops accepting when dropped.
pub struct SmtpServer {
    addr: SocketAddr,
    mode: Mode,
    cert_pem: String,
    shared: Arc<Shared>,
    accept_loop: JoinHandle<()>,
}

impl SmtpServer {
    /// Start a server in `mode` that accepts `username` and `password`.
    pub async fn start(mode: Mode, username: &str, password: &str) -> Self {
        Self::start_with(SmtpConfig::new(mode, username, password)).await
    }

    /// Start a server with explicit settings.
    pub async fn start_with(config: SmtpConfig) -> Self {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("self-signed certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let tls = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("server certificate");
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let mode = config.mode;
        let shared = Arc::new(Shared {
            config,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            sessions: Mutex::default(),
        });
        let accept_loop = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    tokio::spawn(serve(shared.clone(), tcp));
                }
            }
        });
        Self {
            addr,
            mode,
            cert_pem: cert.pem(),
            shared,
            accept_loop,
        }
    }

    /// The server as a connection's `server` variable: `smtps://127.0.0.1:<port>` in
    /// [`Mode::Implicit`], `smtp://127.0.0.1:<port>` otherwise.
    pub fn url(&self) -> String {
        let scheme = if self.mode == Mode::Implicit { "smtps" } else { "smtp" };
        format!("{scheme}://{}", self.addr)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its certificate (PEM), to trust as a root.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Every session so far, oldest first.
    pub fn sessions(&self) -> Vec<Session> {
        self.shared.sessions.lock().expect("sessions").clone()
    }

    /// Every message accepted so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.sessions().into_iter().flat_map(|s| s.deliveries).collect()
    }

    /// Forget the sessions recorded so far.
    pub fn clear(&self) {
        self.shared.sessions.lock().expect("sessions").clear();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// What every connection task shares.
struct Shared {
    config: SmtpConfig,
    acceptor: TlsAcceptor,
    sessions: Mutex<Vec<Session>>,
}

impl Shared {
    /// Record a new session; returns its index.
    fn open(&self) -> usize {
        let mut sessions = self.sessions.lock().expect("sessions");
        sessions.push(Session::default());
        sessions.len() - 1
    }

    /// Change session `index`'s record (a no-op after [`SmtpServer::clear`]).
    fn record(&self, index: usize, change: impl FnOnce(&mut Session)) {
        if let Some(session) = self.sessions.lock().expect("sessions").get_mut(index) {
            change(session);
        }
    }
}

/// One connection, recorded.
async fn serve(shared: Arc<Shared>, tcp: TcpStream) {
    let index = shared.open();
    if let Err(e) = session(&shared, index, tcp).await {
        shared.record(index, |s| s.error = Some(e.to_string()));
    }
}

async fn session(shared: &Shared, index: usize, mut tcp: TcpStream) -> io::Result<()> {
    let mut state = State {
        shared,
        index,
        tls: false,
        authenticated: None,
        transaction: None,
    };
    let greeting = format!("220 {SERVER_NAME} ESMTP Nexum test server ready\r\n");
    if shared.config.mode == Mode::Implicit {
        let mut tls = shared.acceptor.accept(tcp).await?;
        state.secured();
        write_flush(&mut tls, &greeting).await?;
        converse(tls, &mut state).await?;
        return Ok(());
    }
    write_flush(&mut tcp, &greeting).await?;
    if let Next::Upgrade(tcp) = converse(tcp, &mut state).await? {
        let tls = shared.acceptor.accept(tcp).await?;
        state.secured();
        converse(tls, &mut state).await?;
    }
    Ok(())
}

/// A session's state between commands.
struct State<'a> {
    shared: &'a Shared,
    index: usize,
    tls: bool,
    /// The username a successful AUTH logged in as.
    authenticated: Option<String>,
    /// The mail transaction under way (after MAIL FROM).
    transaction: Option<Transaction>,
}

impl State<'_> {
    /// TLS is up: everything learnt before it is forgotten (RFC 3207 §4.2).
    fn secured(&mut self) {
        self.tls = true;
        self.authenticated = None;
        self.transaction = None;
        self.shared.record(self.index, |s| s.tls = true);
    }

    /// Whether this session must still run STARTTLS before AUTH or MAIL.
    fn needs_starttls(&self) -> bool {
        self.shared.config.mode == Mode::Starttls && !self.tls
    }

    fn record(&self, change: impl FnOnce(&mut Session)) {
        self.shared.record(self.index, change);
    }
}

struct Transaction {
    from: String,
    recipients: Vec<String>,
}

/// How a conversation on one stream ended.
enum Next<S> {
    /// QUIT or the client went away.
    Done,
    /// STARTTLS was accepted: continue over TLS on this stream.
    Upgrade(S),
}

/// How an AUTH exchange ended.
enum AuthOutcome {
    /// The client sent credentials.
    Credentials { username: String, password: String },
    /// The client cancelled with `*`.
    Cancelled,
    /// A response was not base64 or not the mechanism's shape.
    Malformed,
    /// The client went away.
    Closed,
}

/// Serve commands on `stream` until QUIT, the end of the stream, or STARTTLS.
async fn converse<S>(stream: S, state: &mut State<'_>) -> io::Result<Next<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut io = BufReader::new(stream);
    loop {
        let Some(line) = read_line(&mut io, MAX_COMMAND_LINE).await? else {
            return Ok(Next::Done);
        };
        let line = String::from_utf8_lossy(trim_crlf(&line)).into_owned();
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
            None => (line.trim().to_ascii_uppercase(), ""),
        };
        if verb != "AUTH" {
            state.record(|s| s.commands.push(verb.clone()));
        }
        let shared = state.shared;
        let config = &shared.config;
        match verb.as_str() {
            "EHLO" => {
                state.transaction = None;
                state.record(|s| s.client_name = Some(arg.to_string()));
                let mut lines = vec![
                    format!("{SERVER_NAME} greets {arg}"),
                    "8BITMIME".to_string(),
                    "SMTPUTF8".to_string(),
                    "ENHANCEDSTATUSCODES".to_string(),
                    format!("SIZE {MAX_MESSAGE}"),
                ];
                if state.needs_starttls() {
                    lines.push("STARTTLS".to_string());
                } else if !config.mechanisms.is_empty() {
                    lines.push(format!("AUTH {}", config.mechanisms.join(" ")));
                }
                reply(&mut io, &multiline(250, &lines)).await?;
            }
            "HELO" => {
                state.transaction = None;
                state.record(|s| s.client_name = Some(arg.to_string()));
                reply(&mut io, &format!("250 {SERVER_NAME}\r\n")).await?;
            }
            "STARTTLS" => {
                if config.mode != Mode::Starttls {
                    reply(&mut io, "502 5.5.1 STARTTLS is not offered here\r\n").await?;
                } else if state.tls {
                    reply(&mut io, "503 5.5.1 TLS is already active\r\n").await?;
                } else {
                    reply(&mut io, "220 2.0.0 Ready to start TLS\r\n").await?;
                    // Whatever the client sent after STARTTLS in plaintext is dropped with
                    // the buffer, as RFC 3207 requires.
                    return Ok(Next::Upgrade(io.into_inner()));
                }
            }
            "AUTH" => {
                let mut words = arg.split_whitespace();
                let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
                let initial = words.next().map(str::to_string);
                state.record(|s| s.commands.push(format!("AUTH {mechanism}")));
                if state.needs_starttls() {
                    reply(&mut io, "530 5.7.0 Must issue a STARTTLS command first\r\n").await?;
                    continue;
                }
                if state.authenticated.is_some() {
                    reply(&mut io, "503 5.5.1 Already authenticated\r\n").await?;
                    continue;
                }
                if !config.mechanisms.iter().any(|m| *m == mechanism) {
                    reply(&mut io, "504 5.5.4 Unrecognized authentication type\r\n").await?;
                    continue;
                }
                let (username, password) = match authenticate(&mut io, &mechanism, initial).await? {
                    AuthOutcome::Credentials { username, password } => (username, password),
                    AuthOutcome::Cancelled => {
                        reply(&mut io, "501 5.7.0 Authentication cancelled\r\n").await?;
                        continue;
                    }
                    AuthOutcome::Malformed => {
                        reply(&mut io, "501 5.5.2 Cannot decode the response\r\n").await?;
                        continue;
                    }
                    AuthOutcome::Closed => return Ok(Next::Done),
                };
                let accepted = username == config.username && password == config.password;
                let attempt = AuthAttempt {
                    mechanism,
                    username: username.clone(),
                    password: password.clone(),
                    tls: state.tls,
                    accepted,
                };
                state.record(|s| s.auths.push(attempt));
                if accepted {
                    state.authenticated = Some(username);
                    reply(&mut io, "235 2.7.0 Authentication successful\r\n").await?;
                } else if config.echo_credentials {
                    let echo = format!("535 5.7.8 Authentication failed for {username} with password {password}\r\n");
                    reply(&mut io, &echo).await?;
                } else {
                    reply(&mut io, "535 5.7.8 Authentication credentials invalid\r\n").await?;
                }
            }
            "MAIL" => {
                if state.needs_starttls() {
                    reply(&mut io, "530 5.7.0 Must issue a STARTTLS command first\r\n").await?;
                } else if config.require_auth && state.authenticated.is_none() {
                    reply(&mut io, "530 5.7.0 Authentication required\r\n").await?;
                } else if state.transaction.is_some() {
                    reply(&mut io, "503 5.5.1 Error: nested MAIL command\r\n").await?;
                } else if let Some(from) = path(arg, "FROM:") {
                    state.transaction = Some(Transaction {
                        from,
                        recipients: Vec::new(),
                    });
                    reply(&mut io, "250 2.1.0 Ok\r\n").await?;
                } else {
                    reply(&mut io, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n").await?;
                }
            }
            "RCPT" => {
                let index = state.index;
                match (&mut state.transaction, path(arg, "TO:")) {
                    (None, _) => reply(&mut io, "503 5.5.1 Error: need MAIL command\r\n").await?,
                    (Some(_), None) => reply(&mut io, "501 5.5.4 Syntax: RCPT TO:<address>\r\n").await?,
                    (Some(_), Some(to)) if to.eq_ignore_ascii_case(REJECTED_RECIPIENT) => {
                        shared.record(index, |s| s.refused_recipients.push((to.clone(), 550)));
                        let refusal = format!("550 5.1.1 <{to}>: Recipient address rejected: User unknown\r\n");
                        reply(&mut io, &refusal).await?;
                    }
                    (Some(_), Some(to)) if to.eq_ignore_ascii_case(DEFERRED_RECIPIENT) => {
                        shared.record(index, |s| s.refused_recipients.push((to.clone(), 451)));
                        let deferral = format!("451 4.2.0 <{to}>: Mailbox busy, try again later\r\n");
                        reply(&mut io, &deferral).await?;
                    }
                    (Some(transaction), Some(to)) => {
                        transaction.recipients.push(to);
                        reply(&mut io, "250 2.1.5 Ok\r\n").await?;
                    }
                }
            }
            "DATA" => {
                let ready = state.transaction.as_ref().map(|t| !t.recipients.is_empty());
                match ready {
                    None => reply(&mut io, "503 5.5.1 Error: need RCPT command\r\n").await?,
                    Some(false) => reply(&mut io, "554 5.5.1 Error: no valid recipients\r\n").await?,
                    Some(true) => {
                        reply(&mut io, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                        let data = read_data(&mut io).await?;
                        let Some(transaction) = state.transaction.take() else {
                            continue;
                        };
                        let delivery = Delivery {
                            from: transaction.from,
                            recipients: transaction.recipients,
                            data,
                            tls: state.tls,
                            authenticated_as: state.authenticated.clone(),
                        };
                        let mut queued = 0;
                        state.record(|s| {
                            s.deliveries.push(delivery);
                            queued = s.deliveries.len();
                        });
                        let done = format!("250 2.0.0 Ok: queued as NX{}Q{queued}\r\n", state.index);
                        reply(&mut io, &done).await?;
                    }
                }
            }
            "RSET" => {
                state.transaction = None;
                reply(&mut io, "250 2.0.0 Ok\r\n").await?;
            }
            "NOOP" => reply(&mut io, "250 2.0.0 Ok\r\n").await?,
            "QUIT" => {
                reply(&mut io, "221 2.0.0 Bye\r\n").await?;
                return Ok(Next::Done);
            }
            "" => reply(&mut io, "500 5.5.2 Error: bad syntax\r\n").await?,
            _ => reply(&mut io, "502 5.5.2 Error: command not recognized\r\n").await?,
        }
    }
}

/// Run the AUTH exchange of `mechanism` (already checked to be offered), taking the optional
/// initial response from the AUTH line.
async fn authenticate<S>(io: &mut BufReader<S>, mechanism: &str, initial: Option<String>) -> io::Result<AuthOutcome>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match mechanism {
        "PLAIN" => {
            let response = match initial {
                Some(response) => response,
                None => match challenge(io, "").await? {
                    Some(response) => response,
                    None => return Ok(AuthOutcome::Closed),
                },
            };
            if response == "*" {
                return Ok(AuthOutcome::Cancelled);
            }
            // `=` is an empty initial response (RFC 4954 §4).
            let decoded = if response == "=" {
                Some(Vec::new())
            } else {
                decode(&response)
            };
            let Some(decoded) = decoded else {
                return Ok(AuthOutcome::Malformed);
            };
            // authzid NUL authcid NUL passwd (RFC 4616).
            let mut fields = decoded.split(|b| *b == 0);
            match (fields.next(), fields.next(), fields.next(), fields.next()) {
                (Some(_authzid), Some(username), Some(password), None) => Ok(AuthOutcome::Credentials {
                    username: String::from_utf8_lossy(username).into_owned(),
                    password: String::from_utf8_lossy(password).into_owned(),
                }),
                _ => Ok(AuthOutcome::Malformed),
            }
        }
        _ => {
            // LOGIN: the username (perhaps as the initial response), then the password, each
            // base64 after a base64 prompt.
            let username = match initial {
                Some(response) => response,
                None => match challenge(io, &BASE64.encode("Username:")).await? {
                    Some(response) => response,
                    None => return Ok(AuthOutcome::Closed),
                },
            };
            if username == "*" {
                return Ok(AuthOutcome::Cancelled);
            }
            let password = match challenge(io, &BASE64.encode("Password:")).await? {
                Some(response) => response,
                None => return Ok(AuthOutcome::Closed),
            };
            if password == "*" {
                return Ok(AuthOutcome::Cancelled);
            }
            match (decode(&username), decode(&password)) {
                (Some(username), Some(password)) => Ok(AuthOutcome::Credentials {
                    username: String::from_utf8_lossy(&username).into_owned(),
                    password: String::from_utf8_lossy(&password).into_owned(),
                }),
                _ => Ok(AuthOutcome::Malformed),
            }
        }
    }
}

/// Send a `334` challenge and read the client's response line.
async fn challenge<S>(io: &mut BufReader<S>, prompt: &str) -> io::Result<Option<String>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    reply(io, &format!("334 {prompt}\r\n")).await?;
    let line = read_line(io, MAX_COMMAND_LINE).await?;
    Ok(line.map(|l| String::from_utf8_lossy(trim_crlf(&l)).trim().to_string()))
}

fn decode(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text.trim()).ok()
}

/// Read message data up to the lone `.` line, undoing dot-stuffing (RFC 5321 §4.5.2).
async fn read_data<R>(io: &mut R) -> io::Result<Vec<u8>>
where
    R: AsyncBufRead + Unpin,
{
    let mut data = Vec::new();
    loop {
        let line = read_line(io, MAX_DATA_LINE)
            .await?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the client left during DATA"))?;
        if trim_crlf(&line) == b"." {
            return Ok(data);
        }
        data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line[..]));
        if data.len() > MAX_MESSAGE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "message too large"));
        }
    }
}

/// One line including its terminator; `None` at the end of the stream.
async fn read_line<R>(io: &mut R, max: usize) -> io::Result<Option<Vec<u8>>>
where
    R: AsyncBufRead + Unpin,
{
    let mut line = Vec::new();
    let read = io.take(max as u64).read_until(b'\n', &mut line).await?;
    if read == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "line too long or cut off by the end of the stream",
        ));
    }
    Ok(Some(line))
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `<keyword><address>` with optional parameters after it (e.g. `BODY=8BITMIME`); the address
/// without its angle brackets.
fn path(arg: &str, keyword: &str) -> Option<String> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}

/// A multi-line reply: `250-first`, …, `250 last`.
fn multiline(code: u16, lines: &[String]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let separator = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{separator}{line}\r\n"));
    }
    out
}

async fn reply<S>(io: &mut BufReader<S>, text: &str) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    write_flush(io.get_mut(), text).await
}

async fn write_flush<W>(out: &mut W, text: &str) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    out.write_all(text.as_bytes()).await?;
    out.flush().await
}
