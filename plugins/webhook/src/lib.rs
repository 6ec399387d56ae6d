//! Webhook connector: one `send` action that calls the connection's configured URL with static
//! and per-call headers, a JSON payload (or a body rendered from the connection's
//! `payload_template`), an optional HMAC-SHA256 signature keyed by a stored secret the
//! connector never sees, and the answer parsed (JSON when it parses) with optional JSONPath
//! extraction.
//!
//! The signature scheme (README.md shows how to verify it): `X-Webhook-Timestamp: <unix
//! seconds>` and `<signature_header>: sha256=<hex HMAC-SHA256 of "<timestamp>.<body bytes>">`.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use nexum_connector_sdk::bindings::nexum::connector::types::Method;
use nexum_connector_sdk::prelude::*;
use serde_json::Map;
use serde_json_path::JsonPath;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The auth scheme holding the signing secret (`type = "secret"`: the host never sends it
/// anywhere; the connector can only have it key an HMAC).
const SIGNING_SCHEME: &str = "signing_secret";

/// The header carrying the signed timestamp.
const TIMESTAMP_HEADER: &str = "X-Webhook-Timestamp";

/// The signature header when the `signature_header` variable is not set.
const DEFAULT_SIGNATURE_HEADER: &str = "X-Webhook-Signature";

/// The body's content type when the `content_type` variable is not set.
const DEFAULT_CONTENT_TYPE: &str = "application/json";

/// Instructions one template render may execute (the budget of the host's workflow templates).
const TEMPLATE_FUEL: u64 = 200_000;

/// Nesting depth of loops and the like in one template render.
const TEMPLATE_RECURSION_LIMIT: usize = 64;

/// The methods a webhook call may use, in the words of error messages.
const METHODS: &str = "GET, POST, PUT, PATCH or DELETE";

/// The connector.
struct Webhook;
connector!(Webhook);

impl Connector for Webhook {
    fn actions() -> Actions {
        Actions::new().action("send", send)
    }

    /// A generic receiver has no identity call. Check the connection's settings (the template
    /// included), then send a `HEAD` to the URL: no body, no signature, nothing a well-behaved
    /// receiver acts on. Any HTTP answer, whatever its status, proves the URL is reachable.
    fn test_connection() -> Result<Value, Error> {
        let config = Config::load()?;
        if let Some(template) = &config.template {
            check_template(template)?;
        }
        let mut request = Request::new(Method::Head, config.target.url(None)?);
        for (name, value) in &config.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send()?;
        Ok(json!({
            "reachable": true,
            "status": response.status,
            "signed": credential(SIGNING_SCHEME).is_ok()
        }))
    }
}

/// The `send` action's input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendInput {
    /// The body itself, or the template's `input` when the connection has a `payload_template`.
    payload: Option<Value>,
    /// A path appended to the configured URL's path.
    path: Option<String>,
    /// Query parameters appended to the configured URL's own.
    #[serde(default)]
    query: BTreeMap<String, String>,
    /// Headers merged over the connection's static `headers`.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Overrides the connection's `method` for this call.
    method: Option<String>,
    /// What to extract from the response body.
    extract: Option<ExtractSpec>,
}

/// The `extract` input: one JSONPath, or named JSONPaths.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExtractSpec {
    /// `extracted` is this path's value.
    Path(String),
    /// `extracted` is an object with the same keys, each holding its path's value.
    Named(BTreeMap<String, String>),
}

/// Send one request to the configured URL and describe the answer.
fn send(input: SendInput) -> Result<Value, Error> {
    let config = Config::load()?;
    let verb = match input.method.as_deref() {
        None => config.verb,
        Some(text) => Verb::parse(text)
            .ok_or_else(|| Error::invalid_input(format!("`method` `{text}` is not one of {METHODS}")))?,
    };
    // Everything that can be refused is checked before anything is sent, so a refused call
    // never half-happened.
    let url = config.target.url(input.path.as_deref())?;
    let extract = input.extract.map(Extract::compile).transpose()?;
    for (name, value) in &input.headers {
        check_header(name, value).map_err(|why| Error::invalid_input(format!("`headers`: {why}")))?;
    }
    let body = if verb.has_body() {
        config.body(input.payload)?
    } else if input.payload.is_some() {
        return Err(Error::invalid_input(
            "GET and DELETE send no body: leave `payload` out and put parameters in `query`",
        ));
    } else {
        None
    };

    let mut headers = Headers::default();
    if body.is_some() {
        headers.set("Content-Type", &config.content_type);
    }
    for (name, value) in &config.headers {
        headers.set(name, value);
    }
    for (name, value) in &input.headers {
        headers.set(name, value);
    }
    // A retried workflow step sends the same key, so a receiver that honours it acts once.
    if !headers.contains("Idempotency-Key")
        && let Some(key) = idempotency_key()
    {
        headers.set("Idempotency-Key", &key);
    }
    // Set last: no static or per-call header can replace the signature.
    if let Ok(secret) = credential(SIGNING_SCHEME) {
        let (timestamp, signature) = sign(&secret, body.as_deref().unwrap_or_default())?;
        headers.set(TIMESTAMP_HEADER, &timestamp);
        headers.set(&config.signature_header, &signature);
    }

    let mut request = Request::new(verb.method(), url);
    for (key, value) in input.query {
        request = request.query(key, value);
    }
    for (name, value) in headers.0 {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send()?;
    if !response.is_success() {
        // 429 → `rate_limited` and 5xx → `upstream_error`, both retryable; any other status is
        // not, with the status and the start of the receiver's body in the message.
        return Err(Error::from_status(response.status, &response.body));
    }
    Ok(describe(&response, extract.as_ref()))
}

/// The output: status, headers (repeated ones joined with `, `), the body as JSON when it
/// parses (a string otherwise, `null` when empty) and, when asked, what `extract` selects.
fn describe(response: &Response, extract: Option<&Extract>) -> Value {
    let body = if response.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice::<Value>(&response.body).unwrap_or_else(|_| Value::String(response.text()))
    };
    let mut headers = Map::new();
    for (name, value) in &response.headers {
        match headers.get_mut(name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    let extracted = extract.map(|e| e.apply(&body));
    let mut output = json!({ "status": response.status, "headers": headers, "body": body });
    if let Some(extracted) = extracted {
        output["extracted"] = extracted;
    }
    output
}

/// The connection's settings (its `[variables]`), checked.
struct Config {
    /// The configured URL, split where a per-call path goes.
    target: Target,
    /// The method when the call names none.
    verb: Verb,
    /// Static headers from the `headers` variable.
    headers: Vec<(String, String)>,
    /// The `payload_template` variable, when set.
    template: Option<String>,
    /// The body's `Content-Type`; whether it is JSON decides how the body is made.
    content_type: String,
    /// The header the signature goes in.
    signature_header: String,
}

impl Config {
    /// Read and check every variable; a bad one is an `invalid_configuration` error.
    fn load() -> Result<Self, Error> {
        let url = setting("url").ok_or_else(|| config_error("url", "is not set: give the receiver's URL"))?;
        let target = Target::parse(&url)?;
        let verb = match setting("method") {
            None => Verb::Post,
            Some(text) => {
                Verb::parse(&text).ok_or_else(|| config_error("method", format!("`{text}` is not one of {METHODS}")))?
            }
        };
        let headers = match setting("headers") {
            None => Vec::new(),
            Some(text) => static_headers(&text)?,
        };
        let content_type = setting("content_type").unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
        if !valid_header_value(&content_type) {
            return Err(config_error(
                "content_type",
                "must be a media type on one line, e.g. application/json",
            ));
        }
        let signature_header = setting("signature_header").unwrap_or_else(|| DEFAULT_SIGNATURE_HEADER.to_string());
        if !valid_header_name(&signature_header) || signature_header.eq_ignore_ascii_case(TIMESTAMP_HEADER) {
            return Err(config_error(
                "signature_header",
                format!("must be a header name such as {DEFAULT_SIGNATURE_HEADER} (other than {TIMESTAMP_HEADER})"),
            ));
        }
        let template = var("payload_template").filter(|t| !t.trim().is_empty());
        Ok(Self {
            target,
            verb,
            headers,
            template,
            content_type,
            signature_header,
        })
    }

    /// The request body of a method that carries one. With a template: the template rendered
    /// over `{input: payload}`, which must parse as JSON when the content type is JSON. Without
    /// one: the payload as JSON, or, for a non-JSON content type, the payload string as is.
    fn body(&self, payload: Option<Value>) -> Result<Option<Vec<u8>>, Error> {
        let json = is_json(&self.content_type);
        if let Some(template) = &self.template {
            let rendered = render(template, payload.unwrap_or(Value::Null))?;
            if json && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&rendered) {
                return Err(Error::new(
                    "invalid_template_output",
                    format!(
                        "payload_template rendered text that is not JSON ({e}); pipe values through `tojson`, \
                         or set the `content_type` variable for a non-JSON body"
                    ),
                ));
            }
            return Ok(Some(rendered.into_bytes()));
        }
        match payload {
            None => Ok(None),
            Some(value) if json => serde_json::to_vec(&value)
                .map(Some)
                .map_err(|e| Error::invalid_input(format!("cannot encode `payload`: {e}"))),
            Some(Value::String(text)) => Ok(Some(text.into_bytes())),
            Some(_) => Err(Error::invalid_input(format!(
                "with content_type `{}` and no payload_template, `payload` must be a string (sent as is)",
                self.content_type
            ))),
        }
    }
}

/// A connection variable, trimmed; `None` when unset or blank.
fn setting(name: &str) -> Option<String> {
    var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// An error in a connection variable: the connection needs fixing, a retry cannot help.
fn config_error(name: &str, why: impl std::fmt::Display) -> Error {
    Error::new("invalid_configuration", format!("connection variable `{name}` {why}"))
}

/// The `headers` variable: a JSON object whose values are strings.
fn static_headers(text: &str) -> Result<Vec<(String, String)>, Error> {
    let map: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
        config_error(
            "headers",
            format!("must be a JSON object of strings, e.g. {{\"X-Source\": \"nexum\"}} ({e})"),
        )
    })?;
    for (name, value) in &map {
        check_header(name, value).map_err(|why| config_error("headers", why))?;
    }
    Ok(map.into_iter().collect())
}

/// Why a header cannot be sent, if it cannot.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if !valid_header_name(name) {
        return Err(format!("`{name}` is not a valid header name"));
    }
    if !valid_header_value(value) {
        return Err(format!(
            "the value of `{name}` holds a line break or another control character"
        ));
    }
    Ok(())
}

/// An RFC 9110 token.
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A value on one line: no control characters but tab.
fn valid_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !c.is_control())
}

/// `application/json` or any `+json` media type, parameters aside.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// Headers unique by name regardless of case: a later `set` replaces an earlier one.
#[derive(Default)]
struct Headers(Vec<(String, String)>);

impl Headers {
    /// Set `name` to `value`, replacing any header of that name.
    fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.0.push((name.to_string(), value.to_string()));
    }

    /// Whether a header called `name` is set.
    fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// The methods a webhook call may use.
#[derive(Clone, Copy)]
enum Verb {
    /// `GET`: no body.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`: no body.
    Delete,
}

impl Verb {
    /// Parse a method name, in any case.
    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "GET" => Some(Self::Get),
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "PATCH" => Some(Self::Patch),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }

    /// The broker's method.
    fn method(self) -> Method {
        match self {
            Self::Get => Method::Get,
            Self::Post => Method::Post,
            Self::Put => Method::Put,
            Self::Patch => Method::Patch,
            Self::Delete => Method::Delete,
        }
    }

    /// Whether requests with this method carry a body.
    fn has_body(self) -> bool {
        !matches!(self, Self::Get | Self::Delete)
    }
}

/// The configured URL, split where a per-call `path` goes.
struct Target {
    /// `scheme://authority`.
    origin: String,
    /// The path, possibly empty.
    path: String,
    /// The query without its `?`, when there is one.
    query: Option<String>,
}

impl Target {
    /// Split an absolute `http(s)://` URL; a fragment is dropped (it is never sent).
    fn parse(url: &str) -> Result<Self, Error> {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let not_http = || config_error("url", "must be an absolute http:// or https:// URL");
        let (scheme, rest) = url.split_once("://").ok_or_else(not_http)?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(not_http());
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        if authority.is_empty()
            || authority.contains(['@', '\\'])
            || authority.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(config_error("url", "must name a host, without user info"));
        }
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        Ok(Self {
            origin: format!("{}://{authority}", scheme.to_ascii_lowercase()),
            path: path.to_string(),
            query: query.filter(|q| !q.is_empty()).map(str::to_string),
        })
    }

    /// The URL to call: the configured one, with `extra` (a per-call path) appended to its path.
    fn url(&self, extra: Option<&str>) -> Result<String, Error> {
        let mut url = self.origin.clone();
        match extra.map(relative_path).transpose()?.filter(|p| !p.is_empty()) {
            Some(path) => {
                url.push_str(self.path.trim_end_matches('/'));
                url.push('/');
                url.push_str(&path);
            }
            None => url.push_str(&self.path),
        }
        if let Some(query) = &self.query {
            url.push('?');
            url.push_str(query);
        }
        Ok(url)
    }
}

/// Check and encode a per-call `path`. It is appended under the configured URL's path, so it
/// may neither climb out of it (no `.` or `..` segment, percent-encoded or not, nor `..;`) nor
/// name another origin (no `scheme://`, no leading `//`, no `\`), nor smuggle a query or a
/// fragment. Characters outside RFC 3986's `pchar` are percent-encoded.
fn relative_path(path: &str) -> Result<String, Error> {
    let refuse = |why: &str| Error::invalid_input(format!("`path` {why}"));
    if path.contains("://") || path.starts_with("//") {
        return Err(refuse(
            "must be a path under the connection's URL, not a URL of its own",
        ));
    }
    if path.contains(['?', '#', '\\']) || path.chars().any(char::is_control) {
        return Err(refuse(
            "may not contain `?`, `#`, `\\` or control characters (put parameters in `query`)",
        ));
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.trim_start_matches('/').split('/').enumerate() {
        let plain = segment.to_ascii_lowercase().replace("%2e", ".");
        let name = plain.split(';').next().unwrap_or_default();
        if name == "." || name == ".." {
            return Err(refuse("may not contain `.` or `..` segments"));
        }
        if i > 0 {
            out.push('/');
        }
        encode_segment(segment, &mut out);
    }
    Ok(out)
}

/// Append `segment` to `out`, percent-encoding every byte outside RFC 3986's `pchar` (an
/// existing `%XX` escape is kept).
fn encode_segment(segment: &str, out: &mut String) {
    let bytes = segment.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let escape = b == b'%'
            && bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
        if escape || b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Compiled `extract` paths.
enum Extract {
    /// One path.
    One(JsonPath),
    /// Named paths.
    Named(Vec<(String, JsonPath)>),
}

impl Extract {
    /// Parse every path; an invalid one is `invalid_input`.
    fn compile(spec: ExtractSpec) -> Result<Self, Error> {
        match spec {
            ExtractSpec::Path(path) => Ok(Self::One(compile_path(&path)?)),
            ExtractSpec::Named(paths) => paths
                .into_iter()
                .map(|(name, path)| Ok((name, compile_path(&path)?)))
                .collect::<Result<Vec<_>, Error>>()
                .map(Self::Named),
        }
    }

    /// What the paths select in `body`.
    fn apply(&self, body: &Value) -> Value {
        match self {
            Self::One(path) => select(path, body),
            Self::Named(paths) => Value::Object(
                paths
                    .iter()
                    .map(|(name, path)| (name.clone(), select(path, body)))
                    .collect(),
            ),
        }
    }
}

/// Parse one JSONPath (RFC 9535).
fn compile_path(path: &str) -> Result<JsonPath, Error> {
    JsonPath::parse(path).map_err(|e| {
        Error::invalid_input(format!(
            "`extract` path `{path}` is not a JSONPath (RFC 9535, starting with `$`): {e}"
        ))
    })
}

/// A path's value in `body`: `null` when it matches nothing, the value when it matches one
/// node, an array of the values when it matches several.
fn select(path: &JsonPath, body: &Value) -> Value {
    let mut nodes: Vec<Value> = path.query(body).all().into_iter().cloned().collect();
    match nodes.len() {
        0 => Value::Null,
        1 => nodes.pop().unwrap_or(Value::Null),
        _ => Value::Array(nodes),
    }
}

/// The template engine: printing or iterating an undefined value is an error (testing one,
/// `{% if input.note %}`, is not), no auto-escaping, minijinja's built-in filters (`tojson`,
/// `default`, `length`, …), bounded by fuel and recursion depth.
fn engine<'source>() -> Environment<'source> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(TEMPLATE_RECURSION_LIMIT);
    env
}

/// Whether `template` compiles.
fn check_template(template: &str) -> Result<(), Error> {
    match engine().template_from_str(template) {
        Ok(_) => Ok(()),
        Err(e) => Err(template_error(e)),
    }
}

/// Render `template` over `{input: payload}`.
fn render(template: &str, payload: Value) -> Result<String, Error> {
    engine()
        .render_str(template, json!({ "input": payload }))
        .map_err(template_error)
}

/// A template that does not compile or render: the connection's template needs fixing.
fn template_error(e: minijinja::Error) -> Error {
    Error::new("invalid_template", format!("payload_template: {e}"))
}

/// The signature headers' values for `body`: the timestamp (Unix seconds) and
/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, keyed with the stored secret by the host
/// (the connector never sees the key).
fn sign(secret: &Credential, body: &[u8]) -> Result<(String, String), Error> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| {
            Error::new(
                "clock_error",
                "the clock reads before 1970; cannot timestamp the signature",
            )
        })?
        .as_secs()
        .to_string();
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let mac = secret.hmac_sha256(&signed);
    Ok((timestamp, format!("sha256={}", to_hex(&mac))))
}

/// Lower-case hex.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}
