//! The broker: every outbound request a connector makes goes through here.
//!
//! In order, for each request and again for every redirect hop:
//! 1. the URL's origin must match the connector's allowed hosts (manifest);
//! 2. the connector may not set credential, cookie, host, proxy or its auth scheme's headers;
//! 3. a credential is injected only when the URL's host is one the credential is bound to
//!    (asking for more is refused; a redirect elsewhere simply drops it);
//! 4. the per-connection rate limit is taken;
//! 5. the host name is resolved and private/loopback/link-local/metadata addresses refused
//!    (see [`address`]), and IP literals are checked the same way;
//! 6. the request is sent with a timeout inside the call's deadline; 429/503 answers to
//!    idempotent requests are retried with backoff, honouring `Retry-After`;
//! 7. the response is size-capped and every secret value scrubbed out of its headers and
//!    body when it may hold the secret: the secret went out with this request, or the host
//!    that answered is bound to a credential (it may echo a secret it stored earlier).
//!
//! Scrubbing is no oracle: text a connector could have written itself (a refused URL, a
//! header name, an echo from a host that never saw the secret) goes back to it unscrubbed,
//! because a `[REDACTED]` in it would tell the connector that a guess was right. The same
//! rule decides whether an upstream's error text is scrubbed and whether a redirect target
//! carrying a secret is refused. Traces are always scrubbed, and the runtime scrubs what a
//! connector logs or returns.
//!
//! Each attempt is recorded as an [`HttpExchange`] for debug mode.

pub mod address;
mod egress;
mod headers;
pub mod outbound;
mod rate_limit;
mod retry;
pub use retry::retry_after;
mod mail;
pub mod scrub;
mod trace;

pub use address::{AddressPolicy, BlockedAddress};
pub use egress::EgressRules;
pub use headers::connector_may_set;
pub use mail::{MailAttachment, MailError, MailMessage, MailSent};
pub use outbound::{Outbound, UrlRefused};
pub use scrub::{REDACTED, Redactor};
pub use trace::HttpExchange;

use crate::vault::Credential;
use nexum_manifest::{ApiKeyLocation, AuthKind};
use rate_limit::ConnectionRateLimits;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// Operator settings for outbound traffic.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Which non-public address ranges are reachable anyway.
    pub address_policy: AddressPolicy,
    /// Largest request body a connector may send.
    pub max_request_bytes: usize,
    /// Largest response body handed back to a connector.
    pub max_response_bytes: usize,
    /// Timeout of one upstream attempt (also bounded by the call's deadline).
    pub request_timeout: Duration,
    /// Redirect hops followed before giving up.
    pub max_redirects: u32,
    /// Retries of an idempotent request answered 429/503.
    pub max_retries: u32,
    /// First backoff delay when the upstream gives no `Retry-After`.
    pub retry_base_delay: Duration,
    /// `User-Agent` sent upstream.
    pub user_agent: String,
    /// Most headers one connector request may carry.
    pub max_request_headers: usize,
    /// Most bytes of header names and values one connector request may carry.
    pub max_request_header_bytes: usize,
    /// Longest URL a connector request may have.
    pub max_url_bytes: usize,
    /// PEM certificates a mail server's TLS certificate may chain to, besides the system's
    /// roots (a private relay's CA; the tests' SMTP server).
    pub mail_root_certs: Vec<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            address_policy: AddressPolicy::default(),
            max_request_bytes: 4 << 20,
            max_response_bytes: 8 << 20,
            request_timeout: Duration::from_secs(30),
            max_redirects: 5,
            max_retries: 2,
            retry_base_delay: Duration::from_millis(200),
            user_agent: format!("nexum/{}", env!("CARGO_PKG_VERSION")),
            max_request_headers: 100,
            max_request_header_bytes: 64 * 1024,
            max_url_bytes: 16 * 1024,
            mail_root_certs: Vec::new(),
        }
    }
}

/// Why the broker did not return a response. Messages carry a secret value only where the
/// connector wrote it itself (it knew it already); everything else is scrubbed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    /// The origin is not among the connector's allowed hosts.
    #[error("{url} is not in the connector's allowed hosts")]
    HostNotAllowed {
        /// The refused URL (query removed).
        url: String,
    },
    /// The host resolved to a refused address.
    #[error(transparent)]
    AddressBlocked(#[from] BlockedAddress),
    /// The connector tried to set a host-only header.
    #[error("connectors may not set the `{name}` header")]
    HeaderForbidden {
        /// Header name.
        name: String,
    },
    /// The credential is not bound to the URL's host.
    #[error("credential `{scheme}` is not bound to {host}; it was not sent")]
    CredentialNotBound {
        /// Auth scheme id.
        scheme: String,
        /// The host it was asked to go to.
        host: String,
    },
    /// The request is malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request body exceeds the cap.
    #[error("request body exceeds {limit} bytes")]
    RequestTooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The response body exceeds the cap.
    #[error("response body exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The connection's request rate is exhausted until after the deadline.
    #[error("connection rate limit reached; retry in {} ms", retry_after.as_millis())]
    RateLimited {
        /// How long until a request is allowed.
        retry_after: Duration,
    },
    /// The attempt or the call's deadline ran out.
    #[error("upstream request timed out")]
    Timeout,
    /// Connecting, TLS or reading failed.
    #[error("upstream request failed: {0}")]
    Transport(String),
}

/// A request as a connector built it.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers set by the connector.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<Vec<u8>>,
}

/// A response as the connector receives it: capped and scrubbed.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case, values scrubbed.
    pub headers: Vec<(String, String)>,
    /// Body, scrubbed.
    pub body: Vec<u8>,
}

/// The gateway every connector request goes through, shared by every call on a host. It
/// sends through the host's one [`Outbound`].
pub struct Broker {
    outbound: Arc<Outbound>,
    rate_limits: ConnectionRateLimits,
    mail_tls: mail::TlsCache,
}

/// Failure to build the broker's HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the outbound HTTP client: {0}")]
pub struct BrokerBuildError(#[source] reqwest::Error);

impl Broker {
    /// A broker with an outbound owner of its own (the connector harness, tests).
    pub fn new(config: BrokerConfig) -> Result<Self, BrokerBuildError> {
        Ok(Self::with_outbound(Outbound::new(config)?))
    }

    /// A broker sending through the host's shared outbound owner.
    pub fn with_outbound(outbound: Arc<Outbound>) -> Self {
        Self::with_counters(outbound, Arc::new(crate::limits::Counters::local()))
    }

    /// A broker sending through `outbound`, counting connection rate limits in `counters`
    /// (shared between nodes when they are in Redis).
    pub fn with_counters(outbound: Arc<Outbound>, counters: Arc<crate::limits::Counters>) -> Self {
        Self {
            outbound,
            rate_limits: ConnectionRateLimits::new(counters),
            mail_tls: mail::TlsCache::default(),
        }
    }

    /// The broker's settings.
    pub fn config(&self) -> &BrokerConfig {
        self.outbound.config()
    }

    /// The outbound owner it sends through.
    pub fn outbound(&self) -> &Arc<Outbound> {
        &self.outbound
    }

    /// Police and send one connector request; see the module docs for the steps.
    pub async fn send(
        &self,
        rules: &EgressRules,
        request: OutboundRequest,
        credential: Option<&Credential>,
        deadline: Instant,
        exchanges: &mut Vec<HttpExchange>,
    ) -> Result<OutboundResponse, BrokerError> {
        let mut upstream_may_hold_secret = false;
        let result = self
            .send_inner(
                rules,
                request,
                credential,
                deadline,
                exchanges,
                &mut upstream_may_hold_secret,
            )
            .await;
        // Scrubbing an error made of the connector's own text (or of an answer from a host
        // that never had the secret) would tell it whether that text matched a secret.
        result.map_err(|e| {
            if upstream_may_hold_secret {
                redact_error(e, &rules.redactor)
            } else {
                e
            }
        })
    }

    async fn send_inner(
        &self,
        rules: &EgressRules,
        request: OutboundRequest,
        credential: Option<&Credential>,
        deadline: Instant,
        exchanges: &mut Vec<HttpExchange>,
        may_hold_secret: &mut bool,
    ) -> Result<OutboundResponse, BrokerError> {
        let mut url = parse_url(&request.url)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            if !connector_may_set(name, &rules.scheme_headers) {
                return Err(BrokerError::HeaderForbidden {
                    name: name.to_ascii_lowercase(),
                });
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| BrokerError::InvalidRequest(format!("`{name}` is not a valid header name")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                BrokerError::InvalidRequest(format!("the value of `{name}` is not a valid header value"))
            })?;
            headers.append(name, value);
        }
        let mut body = request.body;
        if body.as_ref().is_some_and(|b| b.len() > self.config().max_request_bytes) {
            return Err(BrokerError::RequestTooLarge {
                limit: self.config().max_request_bytes as u64,
            });
        }
        let mut method = request.method;
        if !rules.allows(&url) {
            return Err(BrokerError::HostNotAllowed {
                url: origin_and_path(&url),
            });
        }
        if let Some(c) = credential
            && !rules.credential_bound(&c.scheme.id, &url)
        {
            return Err(BrokerError::CredentialNotBound {
                scheme: c.scheme.id.clone(),
                host: url.host_str().unwrap_or_default().to_string(),
            });
        }
        if let Some(c) = credential
            && let AuthKind::ApiKey {
                location: ApiKeyLocation::Path,
                name: prefix,
                ..
            } = &c.scheme.kind
            && url.path() != prefix
        {
            // The key completes exactly this path; appended anywhere else it could name
            // another resource (or be echoed by one).
            return Err(BrokerError::InvalidRequest(format!(
                "the `{}` credential is appended to the path `{prefix}`; send the request to exactly that path",
                c.scheme.id
            )));
        }
        self.rate_limits
            .acquire(&rules.connection_key, rules.requests_per_second, deadline)
            .await?;

        // What a host answers may hold the secret when the secret went out with this request
        // or the host is bound to a credential. Only then is its answer scrubbed (and a
        // redirect it sends checked): scrubbing an answer from a host that never had the
        // secret would tell a connector whether a string it sent there equals the secret.
        // Until a hop is sent, `may_hold_secret` describes the previous hop, which supplied
        // the URL being checked.
        for hop in 0..=self.config().max_redirects {
            if hop > 0 && !rules.allows(&url) {
                return Err(BrokerError::HostNotAllowed {
                    url: format!("redirect to {}", origin_and_path(&url)),
                });
            }
            self.check_ip_literal(&url, &rules.granted_ranges)?;
            let attach = credential.filter(|c| rules.credential_bound(&c.scheme.id, &url));
            // Per hop: a host the secret did not go to on this hop (and is not bound to)
            // cannot echo it; a redirect that would carry it there is refused below.
            *may_hold_secret = attach.is_some() || rules.bound_to_any_credential(&url);
            let started = Instant::now();
            let response = self
                .send_with_retries(
                    rules,
                    &method,
                    &url,
                    &headers,
                    body.as_deref(),
                    attach,
                    deadline,
                    hop,
                    exchanges,
                )
                .await?;
            let status = response.status();
            if status.is_redirection()
                && let Some(next) = redirect_target(&url, response.headers())
            {
                if *may_hold_secret && rules.redactor.contains(next.as_str()) {
                    return Err(BrokerError::Transport(
                        "the upstream redirected to a URL carrying the credential; refused".into(),
                    ));
                }
                if status == StatusCode::SEE_OTHER
                    || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                        && method == Method::POST)
                {
                    method = Method::GET;
                    body = None;
                    headers.remove(reqwest::header::CONTENT_TYPE);
                }
                url = next;
                continue;
            }
            let result = self.read_body(response, deadline).await;
            if let Some(last) = exchanges.last_mut() {
                last.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                match &result {
                    Ok((_, bytes)) => last.response_bytes = bytes.len(),
                    Err(e) => last.error = Some(rules.redactor.scrub(&e.to_string())),
                }
            }
            let (response_headers, bytes) = result?;
            let scrub = |text: &str| {
                if *may_hold_secret {
                    rules.redactor.scrub(text)
                } else {
                    text.to_string()
                }
            };
            return Ok(OutboundResponse {
                status: status.as_u16(),
                headers: response_headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), scrub(&String::from_utf8_lossy(v.as_bytes()))))
                    .collect(),
                body: if *may_hold_secret {
                    rules.redactor.scrub_vec(bytes)
                } else {
                    bytes
                },
            });
        }
        Err(BrokerError::Transport(format!(
            "more than {} redirects",
            self.config().max_redirects
        )))
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_with_retries(
        &self,
        rules: &EgressRules,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
        credential: Option<&Credential>,
        deadline: Instant,
        hop: u32,
        exchanges: &mut Vec<HttpExchange>,
    ) -> Result<reqwest::Response, BrokerError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(BrokerError::Timeout);
            }
            let (wire_url, wire_headers) = inject(url, headers, credential);
            let mut exchange = HttpExchange {
                method: method.to_string(),
                url: rules.redactor.scrub(wire_url.as_str()),
                attempt,
                hop,
                credential: credential.map(|c| c.scheme.id.clone()),
                request_headers: trace_headers(&wire_headers, &rules.redactor),
                status: None,
                response_headers: Vec::new(),
                response_bytes: 0,
                duration_ms: 0.0,
                error: None,
            };
            let started = Instant::now();
            let mut builder = self
                .outbound
                .policed_for(&rules.granted_ranges)
                .client
                .request(method.clone(), wire_url)
                .headers(wire_headers)
                .timeout(remaining.min(self.config().request_timeout));
            if let Some(b) = body {
                builder = builder.body(b.to_vec());
            }
            let outcome = builder.send().await;
            exchange.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            let response = match outcome {
                Ok(r) => r,
                Err(e) => {
                    let err = classify(e);
                    exchange.error = Some(rules.redactor.scrub(&err.to_string()));
                    exchanges.push(exchange);
                    return Err(err);
                }
            };
            exchange.status = Some(response.status().as_u16());
            exchange.response_headers = trace_headers(response.headers(), &rules.redactor);
            exchanges.push(exchange);

            if attempt <= self.config().max_retries
                && retry::is_idempotent(method)
                && retry::is_retryable_status(response.status())
            {
                let wait = retry::retry_after(response.headers())
                    .unwrap_or_else(|| retry::backoff(self.config().retry_base_delay, attempt));
                if Instant::now().checked_add(wait).is_some_and(|at| at < deadline) {
                    drop(response);
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        deadline: Instant,
    ) -> Result<(HeaderMap, Vec<u8>), BrokerError> {
        let limit = self.config().max_response_bytes;
        if let Some(encoding) = response.headers().get(reqwest::header::CONTENT_ENCODING)
            && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
        {
            // We never ask for compression; an encoded body could hide a secret from scrubbing.
            return Err(BrokerError::Transport(format!(
                "the upstream sent a `{}`-encoded body, which the broker cannot inspect; refused",
                String::from_utf8_lossy(encoding.as_bytes())
            )));
        }
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(BrokerError::ResponseTooLarge { limit: limit as u64 });
        }
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        let read = async {
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > limit {
                    return Err(BrokerError::ResponseTooLarge { limit: limit as u64 });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(())
        };
        match tokio::time::timeout_at(deadline.into(), read).await {
            Ok(Ok(())) => Ok((headers, body)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BrokerError::Timeout),
        }
    }

    fn check_ip_literal(&self, url: &Url, granted: &[ipnet::IpNet]) -> Result<(), BrokerError> {
        self.outbound
            .policed_for(granted)
            .policy
            .check_url(url)
            .map_err(BrokerError::AddressBlocked)
    }
}

fn parse_url(raw: &str) -> Result<Url, BrokerError> {
    let url = Url::parse(raw).map_err(|e| BrokerError::InvalidRequest(format!("bad URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BrokerError::InvalidRequest(format!(
            "scheme `{}` is not http or https",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BrokerError::InvalidRequest(
            "URLs may not carry user info; use a credential".into(),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BrokerError::InvalidRequest("the URL has no host".into()));
    }
    Ok(url)
}

fn origin_and_path(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn redirect_target(current: &Url, headers: &HeaderMap) -> Option<Url> {
    let location = headers.get(reqwest::header::LOCATION)?.to_str().ok()?;
    let next = current.join(location).ok()?;
    matches!(next.scheme(), "http" | "https").then_some(next)
}

/// The URL and headers as they go on the wire, with the credential injected where its
/// scheme says. The header value is marked sensitive so hyper never logs it.
fn inject(url: &Url, headers: &HeaderMap, credential: Option<&Credential>) -> (Url, HeaderMap) {
    let mut url = url.clone();
    let mut headers = headers.clone();
    let Some(c) = credential else { return (url, headers) };
    match &c.scheme.kind {
        AuthKind::ApiKey {
            location: ApiKeyLocation::Query,
            name,
            ..
        } => {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != name.as_str())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let mut pairs = url.query_pairs_mut();
            pairs.clear();
            pairs.extend_pairs(kept);
            pairs.append_pair(name, c.raw_token());
        }
        AuthKind::ApiKey {
            location: ApiKeyLocation::Path,
            name: prefix,
            ..
        } => {
            // Checked when sending began: the path is exactly `prefix`, and the key (checked
            // when stored) is unreserved segments, so the result stays under the prefix. A
            // redirect keeps the path it names: the key is only ever appended to `prefix`.
            if url.path() == prefix {
                url.set_path(&format!("{prefix}{}", c.raw_token()));
            }
        }
        AuthKind::Secret => {}
        kind => {
            let header = match kind {
                AuthKind::ApiKey { name, .. } => name.as_str(),
                _ => "authorization",
            };
            if let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(header.as_bytes()),
                HeaderValue::from_str(&c.wire_value()),
            ) {
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        }
    }
    (url, headers)
}

fn trace_headers(headers: &HeaderMap, redactor: &Redactor) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            let value = if v.is_sensitive() {
                REDACTED.to_string()
            } else {
                redactor.scrub(&String::from_utf8_lossy(v.as_bytes()))
            };
            (n.as_str().to_string(), value)
        })
        .collect()
}

/// Map a reqwest failure to a broker error, recognising the address policy's refusal.
pub(crate) fn classify(e: reqwest::Error) -> BrokerError {
    if e.is_timeout() {
        return BrokerError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(blocked) = err.downcast_ref::<BlockedAddress>() {
            return BrokerError::AddressBlocked(blocked.clone());
        }
        source = err.source();
    }
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    BrokerError::Transport(message)
}

/// `e` with secrets scrubbed from every part an upstream or a redirect could have supplied.
fn redact_error(e: BrokerError, redactor: &Redactor) -> BrokerError {
    match e {
        BrokerError::AddressBlocked(b) => BrokerError::AddressBlocked(BlockedAddress {
            host: redactor.scrub(&b.host),
            ..b
        }),
        BrokerError::Transport(m) => BrokerError::Transport(redactor.scrub(&m)),
        BrokerError::InvalidRequest(m) => BrokerError::InvalidRequest(redactor.scrub(&m)),
        BrokerError::HostNotAllowed { url } => BrokerError::HostNotAllowed {
            url: redactor.scrub(&url),
        },
        other => other,
    }
}
