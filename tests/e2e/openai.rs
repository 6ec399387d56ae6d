//! The OpenAI connector against a fake OpenAI: the exact Chat Completions and Embeddings
//! bodies, usage in the output, base64 embeddings decoded in input order, the API key only
//! inside `Authorization: Bearer`, the organization and project headers, and 429s told
//! apart: a rate limit is retryable (with the reset hints), exhausted quota is not.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use nexum_host::runtime::{CallError, Connection, Invocation, LoadedConnector};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::sync::Arc;

const KEY: &str = "sk-proj-FakeOpenAiKey0123456789abcdef";
const ORG: &str = "org-AcmeFake123";
const PROJECT: &str = "proj_FakeProject456";

fn authed(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(format!("Bearer {KEY}").as_str())
}

/// OpenAI's error envelope, with the `x-request-id` every answer carries.
fn error(status: StatusCode, headers: &[(&'static str, &'static str)], error: Value) -> Response {
    let mut response = (status, axum::Json(json!({ "error": error }))).into_response();
    response
        .headers_mut()
        .insert("x-request-id", "req_fake789".parse().expect("header value"));
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(*name, value.parse().expect("header value"));
    }
    response
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        &[],
        json!({ "message": "Incorrect API key provided: sk-wrong***0000. You can find your API key at https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key" }),
    )
}

/// The vector the fake embeds input `i` as (exact in f32).
fn vector(i: usize) -> [f32; 3] {
    [0.5 + i as f32, -0.25, 0.125]
}

fn base64_vector(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A fake OpenAI API. Chat models: `gpt-quota` has no quota left, `gpt-busy` is rate limited,
/// `gpt-down` is overloaded (503), `gpt-missing` does not exist, `gpt-long` overflows the
/// context. Embedding model `compat-embedder` ignores `encoding_format` (JSON floats).
async fn openai() -> Fake {
    let router = Router::new()
        .route(
            "/v1/chat/completions",
            post(|headers: HeaderMap, body: Bytes| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                match v["model"].as_str().unwrap_or_default() {
                    "gpt-quota" => error(
                        StatusCode::TOO_MANY_REQUESTS,
                        &[],
                        json!({ "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
                                "type": "insufficient_quota", "param": null, "code": "insufficient_quota" }),
                    ),
                    "gpt-busy" => error(
                        StatusCode::TOO_MANY_REQUESTS,
                        &[("retry-after", "20"), ("x-ratelimit-reset-requests", "1s"), ("x-ratelimit-reset-tokens", "6m0s")],
                        json!({ "message": "Rate limit reached for gpt-busy in organization org-AcmeFake123 on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                                "type": "requests", "param": null, "code": "rate_limit_exceeded" }),
                    ),
                    "gpt-down" => error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &[],
                        json!({ "message": "The engine is currently overloaded, please try again later",
                                "type": "server_error", "param": null, "code": null }),
                    ),
                    "gpt-missing" => error(
                        StatusCode::NOT_FOUND,
                        &[],
                        json!({ "message": "The model `gpt-missing` does not exist or you do not have access to it.",
                                "type": "invalid_request_error", "param": null, "code": "model_not_found" }),
                    ),
                    "gpt-long" => error(
                        StatusCode::BAD_REQUEST,
                        &[],
                        json!({ "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
                                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded" }),
                    ),
                    _ => {
                        let json_mode = v["response_format"]["type"] == "json_object";
                        let content = if json_mode { r#"{"sentiment":"positive"}"# } else { "Hello! How can I help?" };
                        axum::Json(json!({
                            "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1741570283,
                            "model": "gpt-4o-mini-2024-07-18",
                            "choices": [{ "index": 0, "message": { "role": "assistant", "content": content, "refusal": null, "annotations": [] },
                                          "logprobs": null, "finish_reason": "stop" }],
                            "usage": { "prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
                                       "prompt_tokens_details": { "cached_tokens": 0 } },
                            "service_tier": "default", "system_fingerprint": "fp_fake"
                        }))
                        .into_response()
                    }
                }
            }),
        )
        .route(
            "/v1/embeddings",
            post(|headers: HeaderMap, body: Bytes| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                let count = match &v["input"] {
                    Value::Array(items) => items.len(),
                    _ => 1,
                };
                let floats = v["model"] == "compat-embedder";
                // Newest first, as nothing promises the order: the connector sorts by index.
                let data: Vec<Value> = (0..count)
                    .rev()
                    .map(|i| {
                        let embedding = if floats { json!(vector(i)) } else { json!(base64_vector(&vector(i))) };
                        json!({ "object": "embedding", "index": i, "embedding": embedding })
                    })
                    .collect();
                axum::Json(json!({
                    "object": "list", "data": data, "model": v["model"],
                    "usage": { "prompt_tokens": 4 * count, "total_tokens": 4 * count }
                }))
                .into_response()
            }),
        )
        .route(
            "/v1/models",
            get(|headers: HeaderMap| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                axum::Json(json!({ "object": "list", "data": [
                    { "id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system" },
                    { "id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system" },
                    { "id": "o4-mini", "object": "model", "created": 1744225351, "owned_by": "system" }
                ] }))
                .into_response()
            }),
        );
    fakes::serve(router).await
}

struct Setup {
    host: TestHost,
    fake: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

impl Setup {
    /// A connection with `key`, billed to [`ORG`] and [`PROJECT`].
    async fn new(key: &str) -> Self {
        let fake = openai().await;
        let (host, connector, connection) = TestHost::connected(
            "openai",
            &[
                ("api_base", &fake.origin()),
                ("organization", ORG),
                ("project", PROJECT),
            ],
            &[("api_key", &[("token", key)])],
        );
        Self {
            host,
            fake,
            connector,
            connection,
        }
    }

    async fn run(&self, action: &str, input: Value) -> Result<Value, CallError> {
        self.host
            .run(&self.connector, &self.connection, action, input)
            .await
            .result
    }

    async fn error(&self, action: &str, input: Value) -> (String, String, bool) {
        connector_error(self.host.run(&self.connector, &self.connection, action, input).await)
    }

    fn last(&self) -> Recorded {
        self.fake.requests().last().cloned().expect("a request reached OpenAI")
    }
}

/// Every request: JSON, the key only in `Authorization`, the connection's org and project.
fn assert_openai_request(r: &Recorded) {
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert!(
        !r.everything_but("authorization").contains(KEY),
        "the API key left Authorization: {r:?}"
    );
    assert_eq!(r.header("openai-organization"), Some(ORG));
    assert_eq!(r.header("openai-project"), Some(PROJECT));
}

#[tokio::test]
async fn chat_completion_posts_the_exact_body_and_reports_usage() {
    let s = Setup::new(KEY).await;
    let out = s
        .run(
            "chat_completion",
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    { "role": "system", "content": "You are terse." },
                    { "role": "user", "content": "Hi", "name": "ada" }
                ],
                "temperature": 0.2,
                "max_tokens": 50
            }),
        )
        .await;
    assert_eq!(
        out.expect("completed"),
        json!({
            "id": "chatcmpl-abc123", "content": "Hello! How can I help?", "refusal": null, "finish_reason": "stop",
            "model": "gpt-4o-mini-2024-07-18",
            "usage": { "prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29 }
        })
    );
    let r = s.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                { "role": "system", "content": "You are terse." },
                { "role": "user", "content": "Hi", "name": "ada" }
            ],
            "temperature": 0.2,
            "max_completion_tokens": 50
        })
    );
    assert_openai_request(&r);

    // JSON mode: the format is sent, the reply is the model's JSON text.
    let out = s
        .run(
            "chat_completion",
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    { "role": "system", "content": "Answer in JSON with a `sentiment` field." },
                    { "role": "user", "content": "I love it" }
                ],
                "response_format": "json_object"
            }),
        )
        .await
        .expect("completed");
    assert_eq!(out["content"], r#"{"sentiment":"positive"}"#);
    assert_eq!(
        s.last().json(),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                { "role": "system", "content": "Answer in JSON with a `sentiment` field." },
                { "role": "user", "content": "I love it" }
            ],
            "response_format": { "type": "json_object" }
        })
    );

    // OpenAI refuses JSON mode when no message mentions JSON: said before anything is sent.
    let sent = s.fake.requests().len();
    let (code, message, retryable) = s
        .error(
            "chat_completion",
            json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "I love it" }], "response_format": "json_object" }),
        )
        .await;
    assert_eq!((code.as_str(), retryable), ("invalid_input", false), "{message}");
    assert!(message.contains("JSON"), "{message}");
    assert_eq!(s.fake.requests().len(), sent);
}

#[tokio::test]
async fn embeddings_are_decoded_in_input_order() {
    let s = Setup::new(KEY).await;
    let one = s
        .run(
            "create_embeddings",
            json!({ "model": "text-embedding-3-small", "input": "hello", "dimensions": 3 }),
        )
        .await;
    assert_eq!(
        one.expect("embedded"),
        json!({ "embeddings": [[0.5, -0.25, 0.125]], "model": "text-embedding-3-small",
                "usage": { "prompt_tokens": 4, "total_tokens": 4 } })
    );
    let r = s.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/embeddings"));
    assert_eq!(
        r.json(),
        json!({ "model": "text-embedding-3-small", "input": "hello", "encoding_format": "base64", "dimensions": 3 })
    );
    assert_openai_request(&r);

    let many = s
        .run(
            "create_embeddings",
            json!({ "model": "text-embedding-3-small", "input": ["first", "second", "third"] }),
        )
        .await;
    assert_eq!(
        many.expect("embedded"),
        json!({ "embeddings": [[0.5, -0.25, 0.125], [1.5, -0.25, 0.125], [2.5, -0.25, 0.125]],
                "model": "text-embedding-3-small", "usage": { "prompt_tokens": 12, "total_tokens": 12 } })
    );
    assert_eq!(
        s.last().json(),
        json!({ "model": "text-embedding-3-small", "input": ["first", "second", "third"], "encoding_format": "base64" })
    );

    // A compatible server that answers JSON floats anyway.
    let floats = s
        .run(
            "create_embeddings",
            json!({ "model": "compat-embedder", "input": ["a", "b"] }),
        )
        .await;
    assert_eq!(
        floats.expect("embedded")["embeddings"],
        json!([[0.5, -0.25, 0.125], [1.5, -0.25, 0.125]])
    );
}

#[tokio::test]
async fn rate_limits_retry_but_exhausted_quota_does_not() {
    let s = Setup::new(KEY).await;
    let chat = |model: &str| json!({ "model": model, "messages": [{ "role": "user", "content": "Hi" }] });

    let (code, message, retryable) = s.error("chat_completion", chat("gpt-busy")).await;
    assert_eq!((code.as_str(), retryable), ("rate_limited", true), "{message}");
    for needle in [
        "Rate limit reached",
        "code rate_limit_exceeded",
        "retry-after: 20",
        "x-ratelimit-reset-requests: 1s",
        "x-ratelimit-reset-tokens: 6m0s",
        "req_fake789",
    ] {
        assert!(message.contains(needle), "{needle}: {message}");
    }

    let (code, message, retryable) = s.error("chat_completion", chat("gpt-quota")).await;
    assert_eq!((code.as_str(), retryable), ("quota_exceeded", false), "{message}");
    assert!(message.contains("exceeded your current quota"), "{message}");

    let (code, message, retryable) = s.error("chat_completion", chat("gpt-down")).await;
    assert_eq!((code.as_str(), retryable), ("upstream_error", true), "{message}");
    assert!(message.contains("overloaded"), "{message}");

    let (code, message, retryable) = s.error("chat_completion", chat("gpt-missing")).await;
    assert_eq!((code.as_str(), retryable), ("not_found", false), "{message}");
    assert!(message.contains("code model_not_found"), "{message}");

    let (code, message, retryable) = s.error("chat_completion", chat("gpt-long")).await;
    assert_eq!(
        (code.as_str(), retryable),
        ("context_length_exceeded", false),
        "{message}"
    );
    assert!(message.contains("param `messages`"), "{message}");

    // Every one of those was sent once: the guest does not retry or sleep.
    assert_eq!(s.fake.requests().len(), 5);

    // A wrong key is an auth failure (the connection's status flips on it).
    let wrong = Setup::new("sk-proj-wrong-key-0000").await;
    let (code, message, retryable) = wrong
        .error(
            "create_embeddings",
            json!({ "model": "text-embedding-3-small", "input": "x" }),
        )
        .await;
    assert_eq!((code.as_str(), retryable), ("unauthorized", false), "{message}");
    assert!(message.contains("code invalid_api_key"), "{message}");
}

#[tokio::test]
async fn test_connection_counts_models_and_org_headers_are_optional() {
    let s = Setup::new(KEY).await;
    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(checked.result.expect("connected"), json!({ "models": 3 }));
    let r = s.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/v1/models"));
    assert_openai_request(&r);

    // Without organization and project, neither header is sent.
    let plain = s.host.connect(
        &s.connector,
        "conn_plain",
        &[("api_base", &s.fake.origin())],
        &[("api_key", &[("token", KEY)])],
    );
    let checked = s
        .host
        .runtime
        .execute(&s.connector, plain, Invocation::TestConnection)
        .await;
    assert_eq!(checked.result.expect("connected"), json!({ "models": 3 }));
    let r = s.last();
    assert_eq!(r.header("openai-organization"), None);
    assert_eq!(r.header("openai-project"), None);

    // A project variable that is not a project id is named, not sent.
    let sent = s.fake.requests().len();
    let odd = s.host.connect(
        &s.connector,
        "conn_odd",
        &[("api_base", &s.fake.origin()), ("project", "my project")],
        &[("api_key", &[("token", KEY)])],
    );
    let (code, message, _) = connector_error(
        s.host
            .run(
                &s.connector,
                &odd,
                "chat_completion",
                json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "Hi" }] }),
            )
            .await,
    );
    assert_eq!(code, "invalid_configuration", "{message}");
    assert!(message.contains("proj_"), "{message}");
    assert_eq!(s.fake.requests().len(), sent);
}
