//! A deliberately hostile connector. Each action attacks one sandbox invariant; the host's
//! test-suite runs them and checks that the attack fails and the host keeps serving.

use nexum_connector_sdk::bindings::nexum::connector::types::Method;
use nexum_connector_sdk::prelude::*;

struct Hostile;
connector!(Hostile);

impl Connector for Hostile {
    fn actions() -> Actions {
        Actions::new()
            .action("ok", |input: Value| Ok(json!({ "echo": input })))
            .action("spin", |_: Value| -> Result<Value, Error> { spin() })
            .action("memory_bomb", |_: Value| -> Result<Value, Error> { memory_bomb() })
            .action("panic", |_: Value| -> Result<Value, Error> {
                panic!("hostile connector panicked on purpose")
            })
            .action("fetch", fetch)
            .action("hoard", hoard)
            .action("oversized_output", |input: SizeInput| {
                Ok(json!({ "blob": "x".repeat(input.bytes) }))
            })
            .action("log_flood", |input: SizeInput| {
                for i in 0..input.bytes {
                    log::info(&format!("flood line {i} {}", "y".repeat(1000)));
                }
                Ok(json!({ "logged": input.bytes }))
            })
            .action("fail", |input: SizeInput| -> Result<Value, Error> {
                Err(Error::new("c".repeat(input.bytes), "m".repeat(input.bytes)))
            })
            .action("hmac", |input: HmacInput| {
                let cred = credential(&input.scheme)?;
                let mac = cred.hmac_sha256(input.data.as_bytes());
                Ok(json!({ "hmac": mac.iter().map(|b| format!("{b:02x}")).collect::<String>(), "label": cred.label() }))
            })
    }

    fn test_connection() -> Result<Value, Error> {
        Ok(json!({ "hostile": true }))
    }
}

fn spin() -> Result<Value, Error> {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn memory_bomb() -> Result<Value, Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

#[derive(Deserialize)]
struct SizeInput {
    bytes: usize,
}

#[derive(Deserialize)]
struct HoardInput {
    /// Unsent requests to create and keep.
    count: usize,
    /// Body bytes to give each.
    bytes: usize,
}

/// Make the host buffer as much as it will: many unsent requests, each with a large body
/// from one reused guest buffer (so the guest's own memory cap never bites).
fn hoard(input: HoardInput) -> Result<Value, Error> {
    use nexum_connector_sdk::bindings::nexum::connector::http::Request;
    let body = vec![0x5A; input.bytes];
    let mut kept = Vec::new();
    for i in 0..input.count {
        let request = Request::new(Method::Post, "https://api.example.com/");
        if let Err(e) = request.body(&body) {
            return Err(Error::new("refused", format!("request {i}: {e:?}")));
        }
        kept.push(request);
    }
    Ok(json!({ "kept": kept.len() }))
}

#[derive(Deserialize)]
struct HmacInput {
    scheme: String,
    data: String,
}

#[derive(Deserialize)]
struct FetchInput {
    url: String,
    #[serde(default)]
    method: Option<String>,
    /// Attach the credential of this auth scheme.
    credential: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// Report a failed send in the output (with what the connector saw) instead of failing.
    #[serde(default)]
    report_error: bool,
}

/// Send whatever request the test asks for and report what came back, verbatim.
fn fetch(input: FetchInput) -> Result<Value, Error> {
    let method = match input.method.as_deref().unwrap_or("GET") {
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        _ => Method::Get,
    };
    let credential = match &input.credential {
        Some(scheme) => Some(credential(scheme)?),
        None => None,
    };
    let mut req = Request::new(method, input.url);
    for (k, v) in input.headers {
        req = req.header(k, v);
    }
    if let Some(body) = input.body {
        req = req.body(body);
    }
    if let Some(c) = &credential {
        req = req.auth(c);
    }
    // What the connector itself observed, before the host scrubs the action's output: a
    // redaction mark here would tell it that something it sent matched a secret.
    let response = match req.send() {
        Ok(response) => response,
        Err(e) if input.report_error => {
            let saw_redaction = e.message.contains("[REDACTED]");
            return Ok(json!({ "error": e.code, "message": e.message, "saw_redaction": saw_redaction }));
        }
        Err(e) => return Err(e),
    };
    let text = response.text();
    let saw_redaction = text.contains("[REDACTED]") || response.headers.iter().any(|(_, v)| v.contains("[REDACTED]"));
    Ok(json!({ "status": response.status, "headers": response.headers, "body": text, "saw_redaction": saw_redaction }))
}
