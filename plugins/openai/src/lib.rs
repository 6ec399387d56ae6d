//! OpenAI connector: chat completions (`POST /v1/chat/completions`, optionally in JSON mode)
//! and embeddings (`POST /v1/embeddings`) with the API key as `Authorization: Bearer`
//! (injected by the host) and the optional `OpenAI-Organization` / `OpenAI-Project` headers
//! from non-secret connection variables.
//!
//! Rate limits and exhausted quota both answer 429 at OpenAI; this connector tells them
//! apart, as OpenAI's error-code guide does: `rate_limited` is retryable (with the provider's
//! reset hints in the message; the host's workflow retry does the waiting), `quota_exceeded`
//! is not (only a billing change helps).

use base64::Engine as _;
use nexum_connector_sdk::prelude::*;

/// The auth scheme of the API key.
const SCHEME: &str = "api_key";
/// OpenAI's API origin when the connection sets no `api_base`.
const DEFAULT_BASE: &str = "https://api.openai.com";
/// Response headers that say when a rate-limited request may succeed.
const RETRY_HINTS: [&str; 3] = ["retry-after", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"];

/// The OpenAI connector.
struct OpenAi;
connector!(OpenAi);

impl Connector for OpenAi {
    fn actions() -> Actions {
        Actions::new()
            .action("chat_completion", chat_completion)
            .action("create_embeddings", create_embeddings)
    }

    /// List the models the key may use (`GET /v1/models`) and report how many there are.
    fn test_connection() -> Result<Value, Error> {
        let models = send(Request::get(url("/v1/models")))?;
        let count = models["data"].as_array().map_or(0, Vec::len);
        Ok(json!({ "models": count }))
    }
}

/// One chat message.
#[derive(Deserialize, Serialize)]
struct Message {
    /// `system`, `developer`, `user` or `assistant`.
    role: String,
    /// The text.
    content: String,
    /// An optional participant name.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// Input of `chat_completion`.
#[derive(Deserialize)]
struct ChatCompletion {
    /// The model, e.g. `gpt-4o-mini`.
    model: String,
    /// The conversation so far.
    messages: Vec<Message>,
    /// Sampling temperature, 0–2.
    temperature: Option<f64>,
    /// Cap on generated tokens.
    max_tokens: Option<u32>,
    /// `text` or `json_object`.
    response_format: Option<String>,
}

/// POST /v1/chat/completions, one choice.
fn chat_completion(input: ChatCompletion) -> Result<Value, Error> {
    let json_mode = input.response_format.as_deref() == Some("json_object");
    if json_mode
        && !input
            .messages
            .iter()
            .any(|m| m.content.to_ascii_lowercase().contains("json"))
    {
        return Err(Error::invalid_input(
            "response_format `json_object` needs the word \"JSON\" in one of the messages (OpenAI refuses the request otherwise); ask for JSON in the system message",
        ));
    }
    let mut body = json!({ "model": input.model, "messages": input.messages });
    if let Some(temperature) = input.temperature {
        body["temperature"] = json!(temperature);
    }
    // `max_tokens` is deprecated at OpenAI and refused by reasoning models;
    // `max_completion_tokens` is accepted by every current chat model.
    if let Some(max) = input.max_tokens {
        body["max_completion_tokens"] = json!(max);
    }
    if let Some(format) = &input.response_format {
        body["response_format"] = json!({ "type": format });
    }
    let completion = send(Request::post(url("/v1/chat/completions")).json(&body)?)?;
    let choice = &completion["choices"][0];
    if !choice.is_object() {
        return Err(Error::new("invalid_response", "OpenAI answered without a choice"));
    }
    let usage = &completion["usage"];
    Ok(json!({
        "id": completion["id"],
        "content": choice["message"]["content"],
        "refusal": choice["message"]["refusal"],
        "finish_reason": choice["finish_reason"],
        "model": completion["model"].as_str().unwrap_or(&input.model),
        "usage": {
            "prompt_tokens": tokens(&usage["prompt_tokens"]),
            "completion_tokens": tokens(&usage["completion_tokens"]),
            "total_tokens": tokens(&usage["total_tokens"]),
        },
    }))
}

/// The text(s) to embed: one string or a list.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum EmbeddingInput {
    /// One text.
    One(String),
    /// Several texts, embedded in one request.
    Many(Vec<String>),
}

/// Input of `create_embeddings`.
#[derive(Deserialize)]
struct CreateEmbeddings {
    /// The model, e.g. `text-embedding-3-small`.
    model: String,
    /// The text(s).
    input: EmbeddingInput,
    /// Shorter vectors (text-embedding-3 models only).
    dimensions: Option<u32>,
}

/// Output of `create_embeddings`. Typed rather than a `Value`: serialized straight from
/// `f32`, a dimension takes ~11 characters instead of the ~20 of its `f64` widening.
#[derive(Serialize)]
struct Embeddings {
    /// One vector per input, in input order.
    embeddings: Vec<Vec<f32>>,
    /// The model that answered.
    model: String,
    /// Tokens billed.
    usage: EmbeddingUsage,
}

/// Token usage of an embeddings request.
#[derive(Serialize)]
struct EmbeddingUsage {
    /// Tokens in the input.
    prompt_tokens: u64,
    /// Tokens billed in all.
    total_tokens: u64,
}

/// POST /v1/embeddings, asking for base64 vectors (four bytes a dimension instead of ~20 of
/// JSON text); the output lists the vectors in input order.
fn create_embeddings(input: CreateEmbeddings) -> Result<Embeddings, Error> {
    let mut body = json!({ "model": input.model, "input": input.input, "encoding_format": "base64" });
    if let Some(dimensions) = input.dimensions {
        body["dimensions"] = json!(dimensions);
    }
    let answer = send(Request::post(url("/v1/embeddings")).json(&body)?)?;
    let mut data: Vec<&Value> = answer["data"]
        .as_array()
        .map(|items| items.iter().collect())
        .ok_or_else(|| Error::new("invalid_response", "OpenAI answered without `data`"))?;
    data.sort_by_key(|item| item["index"].as_u64().unwrap_or(u64::MAX));
    let embeddings = data
        .iter()
        .map(|item| vector(&item["embedding"]))
        .collect::<Result<Vec<_>, _>>()?;
    let usage = &answer["usage"];
    Ok(Embeddings {
        embeddings,
        model: answer["model"].as_str().unwrap_or(&input.model).to_string(),
        usage: EmbeddingUsage {
            prompt_tokens: tokens(&usage["prompt_tokens"]),
            total_tokens: tokens(&usage["total_tokens"]),
        },
    })
}

/// One embedding: base64 of little-endian f32s (what was asked for), or a JSON array of
/// numbers (what OpenAI-compatible servers that ignore `encoding_format` send).
fn vector(embedding: &Value) -> Result<Vec<f32>, Error> {
    let bad = |why: &str| Error::new("invalid_response", format!("OpenAI sent an embedding that is {why}"));
    match embedding {
        Value::String(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| bad(&format!("not base64 ({e})")))?;
            if !bytes.len().is_multiple_of(4) {
                return Err(bad("not a whole number of f32s"));
            }
            Ok(bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        }
        Value::Array(numbers) => numbers
            .iter()
            .map(|n| n.as_f64().map(|f| f as f32).ok_or_else(|| bad("not all numbers")))
            .collect(),
        _ => Err(bad("missing")),
    }
}

/// A token count (0 when the server left it out).
fn tokens(count: &Value) -> u64 {
    count.as_u64().unwrap_or(0)
}

/// `<api_base><path>`.
fn url(path: &str) -> String {
    let base = var("api_base")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| DEFAULT_BASE.into());
    format!("{}{path}", base.trim_end_matches('/'))
}

/// A non-empty connection variable that must start with `prefix`.
fn id_variable(name: &str, prefix: &str) -> Result<Option<String>, Error> {
    match var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.starts_with(prefix) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) => {
            Ok(Some(v))
        }
        Some(_) => Err(Error::new(
            "invalid_configuration",
            format!("the `{name}` variable must be an OpenAI id starting with `{prefix}`, or empty"),
        )),
    }
}

/// Send with the API key and the organization/project headers; OpenAI's error object
/// becomes the connector error (see [`openai_error`]).
fn send(mut request: Request<'_>) -> Result<Value, Error> {
    let key = credential(SCHEME)?;
    if let Some(organization) = id_variable("organization", "org-")? {
        request = request.header("OpenAI-Organization", organization);
    }
    if let Some(project) = id_variable("project", "proj_")? {
        request = request.header("OpenAI-Project", project);
    }
    let response = request.auth(&key).send()?;
    if response.is_success() {
        return response.json();
    }
    Err(openai_error(&response))
}

/// OpenAI's `{"error": {message, type, param, code}}` as a connector error: 401
/// `unauthorized`, 403 `forbidden` (e.g. an unsupported region), 404 `not_found` (e.g.
/// `model_not_found`), 400 `context_length_exceeded` or `bad_request`, 429
/// `insufficient_quota` → `quota_exceeded` (not retryable) and other 429s → `rate_limited`
/// (retryable), 5xx `upstream_error` (retryable). The message keeps OpenAI's type, code,
/// param and request id, and for retryable errors the `retry-after` and
/// `x-ratelimit-reset-*` hints.
fn openai_error(response: &Response) -> Error {
    let body: Value = response.json().unwrap_or(Value::Null);
    let detail = &body["error"];
    let kind = detail["type"].as_str().unwrap_or_default();
    let code = detail["code"].as_str().unwrap_or_default();
    let (stable, retryable) = match response.status {
        429 if code == "insufficient_quota" || kind == "insufficient_quota" => ("quota_exceeded", false),
        429 => ("rate_limited", true),
        401 => ("unauthorized", false),
        403 => ("forbidden", false),
        404 => ("not_found", false),
        400 if code == "context_length_exceeded" => ("context_length_exceeded", false),
        400 | 422 => ("bad_request", false),
        409 => ("conflict", true),
        500..=599 => ("upstream_error", true),
        _ => ("upstream_error", false),
    };
    let mut facts = vec![format!("HTTP {}", response.status)];
    if !kind.is_empty() {
        facts.push(format!("type {kind}"));
    }
    if !code.is_empty() {
        facts.push(format!("code {code}"));
    }
    if let Some(param) = detail["param"].as_str().filter(|p| !p.is_empty()) {
        facts.push(format!("param `{param}`"));
    }
    if let Some(id) = response.header("x-request-id") {
        facts.push(format!("request {id}"));
    }
    if retryable {
        facts.extend(
            RETRY_HINTS
                .iter()
                .filter_map(|h| response.header(h).map(|v| format!("{h}: {v}"))),
        );
    }
    let message = match detail["message"].as_str() {
        Some(message) => format!("OpenAI: {message} ({})", facts.join(", ")),
        None => {
            let text = response.text();
            let snippet: String = text.chars().take(300).collect();
            format!("OpenAI answered {} ({})", snippet.trim(), facts.join(", "))
        }
    };
    Error::new(stable, message).with_retryable(retryable)
}
