//! JSON-friendly helpers over the host's brokered HTTP.

use crate::bindings::nexum::connector::http::send;
use crate::bindings::nexum::connector::types::Method;
use crate::{Credential, Error};
use serde::{Serialize, de::DeserializeOwned};

/// An outbound request. Build it, optionally attach a [`Credential`], then [`send`](Self::send).
pub struct Request<'a> {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    auth: Option<&'a Credential>,
}

impl<'a> Request<'a> {
    /// A request with any method.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            auth: None,
        }
    }
    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }
    /// A POST request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }
    /// A PUT request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }
    /// A PATCH request.
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }
    /// A DELETE request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Append a URL query parameter (percent-encoded).
    pub fn query(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((key.into(), value.to_string()));
        self
    }

    /// Append a query parameter only when `value` is `Some`.
    pub fn query_opt(self, key: impl Into<String>, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    /// Add a header. Credentials are attached with [`auth`](Self::auth), never as headers.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Let the host inject this credential's secret into the request.
    pub fn auth(mut self, credential: &'a Credential) -> Self {
        self.auth = Some(credential);
        self
    }

    /// Send `body` as JSON (`content-type: application/json`).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::new("invalid_input", format!("cannot encode request body: {e}")))?;
        self.headers.push(("content-type".into(), "application/json".into()));
        self.body = Some(bytes);
        Ok(self)
    }

    /// Send raw bytes as the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Send through the host broker. Any HTTP status is a successful [`Response`]; policy
    /// refusals, timeouts and transport failures are errors.
    pub fn send(self) -> Result<Response, Error> {
        let mut url = self.url;
        if !self.query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            let pairs: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                .collect();
            url.push_str(&pairs.join("&"));
        }
        let request = crate::bindings::nexum::connector::http::Request::new(self.method, &url);
        for (name, value) in &self.headers {
            request.header(name, value)?;
        }
        if let Some(body) = &self.body {
            request.body(body)?;
        }
        let response = send(request, self.auth)?;
        Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }

    /// Send, require a 2xx status, and decode the JSON body.
    pub fn send_json<T: DeserializeOwned>(self) -> Result<T, Error> {
        self.send()?.error_for_status()?.json()
    }

    /// Send and return the JSON body (`null` when the body is empty, as for a 202 or 204); a
    /// non-2xx answer becomes the error `on_error` makes of it, for providers whose error
    /// bodies carry their own codes.
    pub fn send_value(self, on_error: impl FnOnce(&Response) -> Error) -> Result<serde_json::Value, Error> {
        let response = self.send()?;
        if !response.is_success() {
            return Err(on_error(&response));
        }
        if response.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        response.json()
    }
}

/// An upstream response, already size-capped and scrubbed of secrets by the host.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Header name/value pairs, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Turn a non-2xx status into an [`Error`] via [`Error::from_status`].
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(Error::from_status(self.status, &self.body))
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Decode the body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Percent-encode everything outside RFC 3986's unreserved set.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
