//! Generic HTTP connector: one `request` action against any public host, with the
//! connection's credential attached when the URL is on the configured `base_url`.

use nexum_connector_sdk::bindings::nexum::connector::types::Method;
use nexum_connector_sdk::prelude::*;
use std::collections::BTreeMap;

struct Http;
connector!(Http);

impl Connector for Http {
    fn actions() -> Actions {
        Actions::new().action("request", request)
    }

    fn test_connection() -> Result<Value, Error> {
        let base = base_url()?;
        let credential = credential("api").ok();
        let mut req = Request::get(base.clone());
        if let Some(c) = &credential {
            req = req.auth(c);
        }
        let response = req.send()?;
        if response.status == 401 || response.status == 403 {
            return Err(Error::from_status(response.status, &response.body));
        }
        Ok(json!({ "base_url": base, "status": response.status }))
    }
}

#[derive(Deserialize)]
struct RequestInput {
    #[serde(default = "default_method")]
    method: String,
    /// Absolute URL, or a path joined to the connection's `base_url`.
    url: String,
    #[serde(default)]
    query: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// JSON body (sent as `application/json`).
    json: Option<Value>,
    /// Raw text body.
    body: Option<String>,
    /// Attach the connection's credential. By default it is attached only to URLs under
    /// `base_url`; `true` forces it (the host refuses hosts it is not bound to).
    authenticate: Option<bool>,
}

fn default_method() -> String {
    "GET".into()
}

fn request(input: RequestInput) -> Result<Value, Error> {
    let method = match input.method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        other => return Err(Error::invalid_input(format!("unsupported method `{other}`"))),
    };
    let base = var("base_url").filter(|b| !b.is_empty());
    let url = if input.url.starts_with("http://") || input.url.starts_with("https://") {
        input.url
    } else {
        format!(
            "{}/{}",
            base_url()?.trim_end_matches('/'),
            input.url.trim_start_matches('/')
        )
    };
    let on_base = base.as_deref().is_some_and(|b| {
        let b = b.trim_end_matches('/');
        url == b || url.starts_with(&format!("{b}/")) || url.starts_with(&format!("{b}?"))
    });
    let authenticate = input.authenticate.unwrap_or(on_base);
    let mut req = Request::new(method, url);
    for (k, v) in input.query {
        req = req.query(k, v);
    }
    // A retried workflow step sends the same key, so an API that honours it does the work once.
    let caller_set_key = input.headers.keys().any(|k| k.eq_ignore_ascii_case("idempotency-key"));
    if let (Some(key), false) = (idempotency_key(), caller_set_key) {
        req = req.header("Idempotency-Key", key);
    }
    for (k, v) in input.headers {
        req = req.header(k, v);
    }
    if let Some(json) = &input.json {
        req = req.json(json)?;
    } else if let Some(body) = input.body {
        req = req.body(body);
    }
    let credential = if authenticate { credential("api").ok() } else { None };
    if let Some(c) = &credential {
        req = req.auth(c);
    }
    let response = req.send()?;
    let body = serde_json::from_slice::<Value>(&response.body).unwrap_or_else(|_| Value::String(response.text()));
    let headers: BTreeMap<String, String> = response.headers.into_iter().collect();
    Ok(json!({ "status": response.status, "headers": headers, "body": body }))
}

fn base_url() -> Result<String, Error> {
    var("base_url")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::invalid_input("the connection has no `base_url` variable set"))
}
