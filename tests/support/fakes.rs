//! Recording fakes of outside APIs, served by axum on 127.0.0.1:0.

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request as a fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string.
    pub query: Option<String>,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
}

impl Recorded {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// Everything received, as text, for "the secret appears nowhere else" checks.
    pub fn everything_but(&self, header: &str) -> String {
        let mut s = format!("{} {} {:?}\n", self.method, self.path, self.query);
        for (n, v) in &self.headers {
            if n != header {
                s.push_str(&format!("{n}: {v}\n"));
            }
        }
        s.push_str(&String::from_utf8_lossy(&self.body));
        s
    }
}

/// A running fake with a log of what it received.
#[derive(Clone)]
pub struct Fake {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Fake {
    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `origin` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("log").clone()
    }

    /// Forget recorded requests.
    pub fn clear(&self) {
        self.log.lock().expect("log").clear();
    }
}

/// Serve `router` on 127.0.0.1:0, recording every request.
pub async fn serve(router: Router) -> Fake {
    serve_on(router, 0).await
}

/// Serve `router` on 127.0.0.1:`port`, recording every request.
pub async fn serve_on(router: Router, port: u16) -> Fake {
    let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let app = router.layer(middleware::from_fn_with_state(log.clone(), record));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Fake { addr, log }
}

async fn record(State(log): State<Arc<Mutex<Vec<Recorded>>>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 << 20).await.unwrap_or_default();
    log.lock().expect("log").push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The bot token the fake Slack accepts.
pub const SLACK_TOKEN: &str = "xoxb-1111-2222-fake-slack-token";
/// The authorization code the fake Slack hands out.
pub const SLACK_OAUTH_CODE: &str = "slack-oauth-code-7731";
/// The Slack app's client id the fake accepts.
pub const SLACK_CLIENT_ID: &str = "1111.2222";
/// The Slack app's client secret the fake accepts.
pub const SLACK_CLIENT_SECRET: &str = "slack-client-secret-9d1e";

/// A fake Slack Web API on an ephemeral port; see [`slack_on`].
pub async fn slack() -> Fake {
    slack_on(0).await
}

/// A fake Slack Web API: `chat.postMessage`, `chat.update`, `reactions.add`,
/// `conversations.list` and `auth.test`, answering `invalid_auth` to any other token.
pub async fn slack_on(port: u16) -> Fake {
    async fn authed(headers: &HeaderMap) -> bool {
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {SLACK_TOKEN}"))
    }
    async fn post_message(headers: HeaderMap, body: Bytes) -> axum::Json<Value> {
        if !authed(&headers).await {
            return axum::Json(json!({ "ok": false, "error": "invalid_auth" }));
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        if v["channel"] == "C404" {
            return axum::Json(json!({ "ok": false, "error": "channel_not_found" }));
        }
        axum::Json(
            json!({ "ok": true, "channel": v["channel"], "ts": "1700000000.000100", "message": { "text": v["text"] } }),
        )
    }
    async fn update(headers: HeaderMap, body: Bytes) -> axum::Json<Value> {
        if !authed(&headers).await {
            return axum::Json(json!({ "ok": false, "error": "invalid_auth" }));
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        axum::Json(json!({ "ok": true, "channel": v["channel"], "ts": v["ts"], "text": v["text"] }))
    }
    async fn react(headers: HeaderMap) -> axum::Json<Value> {
        if !authed(&headers).await {
            return axum::Json(json!({ "ok": false, "error": "invalid_auth" }));
        }
        axum::Json(json!({ "ok": true }))
    }
    async fn list(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> axum::Json<Value> {
        if !authed(&headers).await {
            return axum::Json(json!({ "ok": false, "error": "invalid_auth" }));
        }
        let page2 = q.get("cursor").map(String::as_str) == Some("page2");
        let channels = if page2 {
            json!([{ "id": "C3", "name": "random", "is_private": false, "num_members": 3 }])
        } else {
            json!([{ "id": "C1", "name": "general", "is_private": false }, { "id": "C2", "name": "secret-plans", "is_private": true }])
        };
        axum::Json(
            json!({ "ok": true, "channels": channels, "response_metadata": { "next_cursor": if page2 { "" } else { "page2" } } }),
        )
    }
    async fn auth_test(headers: HeaderMap) -> axum::Json<Value> {
        if !authed(&headers).await {
            return axum::Json(json!({ "ok": false, "error": "invalid_auth" }));
        }
        axum::Json(
            json!({ "ok": true, "url": "https://acme.slack.com/", "team": "Acme", "user": "nexum-bot", "team_id": "T1", "user_id": "U1" }),
        )
    }
    /// Slack's OAuth v2 consent page: the user approves at once.
    async fn oauth_authorize(Query(q): Query<HashMap<String, String>>) -> Response {
        let mut target = url::Url::parse(
            q.get("redirect_uri")
                .map(String::as_str)
                .unwrap_or("http://127.0.0.1:9/"),
        )
        .unwrap_or_else(|_| url::Url::parse("http://127.0.0.1:9/").expect("url"));
        target
            .query_pairs_mut()
            .append_pair("code", SLACK_OAUTH_CODE)
            .append_pair("state", q.get("state").map(String::as_str).unwrap_or_default());
        (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
    }
    /// `oauth.v2.access`: Slack answers 200 with `ok: false` on errors.
    async fn oauth_access(body: Bytes) -> axum::Json<Value> {
        let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
        let client_ok = form.get("client_id").is_some_and(|v| v == SLACK_CLIENT_ID)
            && form.get("client_secret").is_some_and(|v| v == SLACK_CLIENT_SECRET);
        if !client_ok {
            return axum::Json(json!({ "ok": false, "error": "invalid_client_id" }));
        }
        if form.get("code").map(String::as_str) != Some(SLACK_OAUTH_CODE) {
            return axum::Json(json!({ "ok": false, "error": "invalid_code" }));
        }
        axum::Json(
            json!({ "ok": true, "access_token": SLACK_TOKEN, "token_type": "bot", "scope": "chat:write,channels:read", "bot_user_id": "UBOT", "team": { "id": "T1", "name": "Acme" } }),
        )
    }
    serve_on(
        Router::new()
            .route("/oauth/v2/authorize", get(oauth_authorize))
            .route("/api/oauth.v2.access", post(oauth_access))
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update))
            .route("/api/reactions.add", post(react))
            .route("/api/conversations.list", get(list))
            .route("/api/auth.test", post(auth_test)),
        port,
    )
    .await
}

/// An upstream with hostile behaviours: `/ok`, `/echo` (reflects the request, including
/// `Authorization`), `/redirect?to=`, `/huge` (20 MiB, chunked), `/huge-declared`,
/// `/slow?ms=`, `/flaky` (503 with `Retry-After: 0` twice, then 200), `/always-503`.
pub async fn upstream() -> Fake {
    let flaky = Arc::new(AtomicUsize::new(0));
    async fn echo(request: Request) -> Response {
        let auth = request.headers().get(header::AUTHORIZATION).cloned();
        let headers: HashMap<String, String> = request
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let query = request.uri().query().map(str::to_string);
        let mut response = axum::Json(json!({ "headers": headers, "query": query })).into_response();
        if let Some(auth) = auth {
            response.headers_mut().insert("x-echo-authorization", auth);
        }
        response
    }
    async fn redirect(Query(q): Query<HashMap<String, String>>) -> Response {
        let to = q.get("to").cloned().unwrap_or_default();
        (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
    }
    async fn huge() -> Response {
        let chunk = Bytes::from(vec![b'z'; 1 << 20]);
        let stream = futures_stream(chunk, 20);
        Response::new(Body::from_stream(stream))
    }
    async fn huge_declared() -> Response {
        Response::new(Body::from(vec![b'z'; 20 << 20]))
    }
    async fn slow(Query(q): Query<HashMap<String, String>>) -> &'static str {
        let ms = q.get("ms").and_then(|m| m.parse().ok()).unwrap_or(5000);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        "finally"
    }
    let flaky_handler = move || {
        let flaky = flaky.clone();
        async move {
            if flaky.fetch_add(1, Ordering::SeqCst) < 2 {
                (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "0")], "busy").into_response()
            } else {
                axum::Json(json!({ "ok": true })).into_response()
            }
        }
    };
    serve(
        Router::new()
            .route("/ok", any(|| async { axum::Json(json!({ "ok": true })) }))
            .route("/echo", any(echo))
            .route("/redirect", any(redirect))
            .route("/huge", get(huge))
            .route("/huge-declared", get(huge_declared))
            .route("/slow", get(slow))
            .route("/flaky", any(flaky_handler))
            .route(
                "/always-503",
                any(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
            )
            .route(
                "/items/{id}",
                get(|axum::extract::Path(id): axum::extract::Path<String>| async move {
                    axum::Json(json!({ "id": id, "name": format!("Item {id}") }))
                }),
            )
            .route("/items", post(|| async { axum::Json(json!({ "id": "new-1" })) }))
            .route(
                "/retry-forever",
                any(|| async {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "18446744073709551615")],
                        "later",
                    )
                }),
            )
            .route(
                "/gzip",
                get(|| async { ([(header::CONTENT_ENCODING, "gzip")], vec![0x1f_u8, 0x8b, 0x08, 0x00]) }),
            ),
    )
    .await
}

fn futures_stream(chunk: Bytes, count: usize) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::iter((0..count).map(move |_| Ok(chunk.clone())))
}
