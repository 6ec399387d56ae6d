//! The Gmail connector against a fake Gmail API and a fake Google sign-in: the MIME message
//! `send_message` builds, parsed back (multipart structure, RFC 2047 subject, CRLF line
//! endings, attachment bytes); the exact requests of every action; the access token only in
//! `Authorization: Bearer` to the API origin; the manifest's OAuth declarations (PKCE,
//! offline access, client secret in the body, the token endpoint bound) end to end through a
//! server; and Google's errors under stable codes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use mail_parser::{Encoding, MessageParser, MessagePart, MimeHeaders};
use nexum_host::runtime::{CallError, Connection, Invocation, LoadedConnector};
use nexum_tests::consent::{PkceGrant, connector_manifest, consent_query, oauth2_scheme};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The access token the tests connect with.
const TOKEN: &str = "ya29.fake-google-access-token-7f3c";
/// The access token the fake Google issues for the authorization code.
const ISSUED_TOKEN: &str = "ya29.issued-by-the-fake-google-41aa";
/// The access token the fake Google issues on refresh.
const REFRESHED_TOKEN: &str = "ya29.refreshed-by-the-fake-google-9be0";
/// The refresh token the fake Google issues with the code.
const REFRESH_TOKEN: &str = "1//fake-google-refresh-token-c0de";
/// The authorization code the fake consent page hands out.
const CODE: &str = "4/fake-google-authorization-code";
/// The OAuth client registered with Nexum.
const CLIENT_ID: &str = "1234-nexum.apps.googleusercontent.com";
/// Its secret.
const CLIENT_SECRET: &str = "GOCSPX-fake-google-client-secret";
/// Both Gmail scopes, as the consent page must receive them.
const SCOPES: &str = "https://www.googleapis.com/auth/gmail.send https://www.googleapis.com/auth/gmail.readonly";

/// A message the fake knows (multipart, UTF-8), one in ISO-8859-1, and one with a huge body.
const MESSAGE: &str = "18c2f0a1b2c3d4e5";
const LATIN1_MESSAGE: &str = "18c2f0a1b2c3d4e6";
const HUGE_MESSAGE: &str = "18c2f0a1b2c3d4e7";

fn authed(headers: &HeaderMap) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    [TOKEN, ISSUED_TOKEN, REFRESHED_TOKEN]
        .iter()
        .any(|token| given == Some(format!("Bearer {token}").as_str()))
}

/// Google's JSON error.
fn google_error(status: StatusCode, code: &str, reason: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": {
            "code": status.as_u16(),
            "message": message,
            "status": code,
            "errors": [{ "message": message, "domain": "global", "reason": reason }],
        } })),
    )
        .into_response()
}

fn unauthenticated() -> Response {
    google_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    )
}

fn header_list(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect(),
    )
}

/// `users.messages.send`: the raw MIME decides the answer (recipients that trigger errors).
async fn send_message(headers: HeaderMap, body: Bytes) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    let raw = URL_SAFE_NO_PAD
        .decode(sent["raw"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let mime = String::from_utf8_lossy(&raw);
    if mime.contains("busy@example.com") {
        let mut response = google_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "rateLimitExceeded",
            "Too many concurrent requests for user",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, "7".parse().expect("header value"));
        return response;
    }
    if mime.contains("throttled@example.com") {
        return google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "userRateLimitExceeded",
            "User-rate limit exceeded",
        );
    }
    if mime.contains("invalid@example.com") {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "invalidArgument",
            "Invalid To header",
        );
    }
    let thread = sent["threadId"].as_str().unwrap_or("18c2f0a1b2c3d4e9");
    axum::Json(json!({ "id": "18c2f0a1b2c3d4e9", "threadId": thread, "labelIds": ["SENT"] })).into_response()
}

/// `users.messages.list`: two pages, an empty search, and a refused query.
async fn list_messages(headers: HeaderMap, Query(query): Query<Vec<(String, String)>>) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match (param("q"), param("pageToken")) {
        (Some("bad:query"), _) => google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "invalidArgument",
            "Invalid query",
        ),
        (Some("nothing"), _) => axum::Json(json!({ "resultSizeEstimate": 0 })).into_response(),
        (_, Some("page-2")) => axum::Json(json!({
            "messages": [{ "id": "m3", "threadId": "t2" }],
            "resultSizeEstimate": 3,
        }))
        .into_response(),
        _ => axum::Json(json!({
            "messages": [{ "id": "m1", "threadId": "t1" }, { "id": "m2", "threadId": "t1" }],
            "nextPageToken": "page-2",
            "resultSizeEstimate": 3,
        }))
        .into_response(),
    }
}

/// `users.messages.get` in the three formats Gmail knows.
async fn get_message(
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let format = query.get("format").map(String::as_str).unwrap_or("full");
    let payload = match id.as_str() {
        "404404" => {
            return google_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "notFound",
                "Requested entity was not found.",
            );
        }
        "500500" => {
            return google_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "backendError",
                "Backend Error",
            );
        }
        MESSAGE => json!({
            "partId": "",
            "mimeType": "multipart/mixed",
            "filename": "",
            "headers": header_list(&[
                ("From", "Bob <bob@example.com>"),
                ("To", "Ada <ada@example.com>"),
                ("Subject", "Grüße"),
                ("Date", "Mon, 10 Jun 2024 10:00:00 +0000"),
                ("Message-Id", "<CAFoo123@mail.gmail.com>"),
            ]),
            "body": { "size": 0 },
            "parts": [
                {
                    "partId": "0",
                    "mimeType": "multipart/alternative",
                    "filename": "",
                    "headers": header_list(&[("Content-Type", "multipart/alternative; boundary=\"b2\"")]),
                    "body": { "size": 0 },
                    "parts": [
                        {
                            "partId": "0.0",
                            "mimeType": "text/plain",
                            "filename": "",
                            "headers": header_list(&[("Content-Type", "text/plain; charset=\"UTF-8\"")]),
                            // Gmail's data is base64url, sometimes padded.
                            "body": { "size": 38, "data": URL_SAFE.encode("Hallo Ada,\r\nanbei der Bericht für Q3.\r\n") },
                        },
                        {
                            "partId": "0.1",
                            "mimeType": "text/html",
                            "filename": "",
                            "headers": header_list(&[("Content-Type", "text/html; charset=\"UTF-8\"")]),
                            "body": { "size": 24, "data": URL_SAFE_NO_PAD.encode("<p>Hallo <b>Ada</b></p>") },
                        },
                    ],
                },
                {
                    "partId": "1",
                    "mimeType": "application/pdf",
                    "filename": "report.pdf",
                    "headers": header_list(&[("Content-Disposition", "attachment; filename=\"report.pdf\"")]),
                    "body": { "attachmentId": "ANGjdJ8wXyz", "size": 52341 },
                },
            ],
        }),
        LATIN1_MESSAGE => json!({
            "partId": "",
            "mimeType": "text/plain",
            "filename": "",
            "headers": header_list(&[("Subject", "Grüße"), ("Content-Type", "text/plain; charset=\"ISO-8859-1\"")]),
            "body": { "size": 5, "data": URL_SAFE_NO_PAD.encode([0x47_u8, 0x72, 0xFC, 0xDF, 0x65]) },
        }),
        HUGE_MESSAGE => json!({
            "partId": "",
            "mimeType": "text/plain",
            "filename": "",
            "headers": header_list(&[("Subject", "long")]),
            "body": { "size": 300_000, "data": URL_SAFE_NO_PAD.encode("é".repeat(150_000)) },
        }),
        _ => return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "notFound", "Not Found"),
    };
    let mut message = json!({
        "id": id,
        "threadId": "t1",
        "labelIds": ["INBOX", "UNREAD"],
        "snippet": "Hallo Ada, anbei der Bericht für Q3.",
        "historyId": "901",
        "internalDate": "1718013600000",
        "sizeEstimate": 4321,
    });
    match format {
        "full" => message["payload"] = payload,
        "metadata" => {
            message["payload"] = json!({ "partId": "", "mimeType": payload["mimeType"], "filename": "", "headers": payload["headers"], "body": { "size": 0 } });
        }
        _ => {}
    }
    axum::Json(message).into_response()
}

async fn profile(headers: HeaderMap) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    axum::Json(
        json!({ "emailAddress": "ada@example.com", "messagesTotal": 1234, "threadsTotal": 900, "historyId": "901" }),
    )
    .into_response()
}

/// A fake Gmail API plus Google's consent page and token endpoint on one origin. The consent
/// page approves at once and remembers the PKCE challenge; the token endpoint wants the
/// client secret in the body and the verifier that matches, and issues
/// [`ISSUED_TOKEN`] with [`REFRESH_TOKEN`], then [`REFRESHED_TOKEN`] on refresh.
async fn google() -> Fake {
    let grant = PkceGrant::default();
    let consent_page = grant.consent_page(CODE);
    let token = move |headers: HeaderMap, body: Bytes| {
        let grant = grant.clone();
        async move {
            let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
            let field = |name: &str| form.get(name).map(String::as_str);
            let oauth_error =
                |error: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": error }))).into_response();
            if headers.contains_key(header::AUTHORIZATION)
                || field("client_id") != Some(CLIENT_ID)
                || field("client_secret") != Some(CLIENT_SECRET)
            {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({ "error": "invalid_client" })),
                )
                    .into_response();
            }
            match field("grant_type") {
                Some("authorization_code") => {
                    if !grant.redeem(&form, CODE) {
                        return oauth_error("invalid_grant");
                    }
                    axum::Json(json!({
                        "access_token": ISSUED_TOKEN,
                        "refresh_token": REFRESH_TOKEN,
                        "expires_in": 3599,
                        "token_type": "Bearer",
                        "scope": SCOPES,
                    }))
                    .into_response()
                }
                // Google keeps the refresh token: a refresh answers with an access token only.
                Some("refresh_token") if field("refresh_token") == Some(REFRESH_TOKEN) => axum::Json(json!({
                    "access_token": REFRESHED_TOKEN,
                    "expires_in": 3599,
                    "token_type": "Bearer",
                    "scope": SCOPES,
                }))
                .into_response(),
                _ => oauth_error("invalid_grant"),
            }
        }
    };
    let router = Router::new()
        .route("/o/oauth2/v2/auth", consent_page)
        .route("/token", post(token))
        .route("/gmail/v1/users/me/messages/send", post(send_message))
        .route("/gmail/v1/users/me/messages", get(list_messages))
        .route("/gmail/v1/users/me/messages/{id}", get(get_message))
        .route("/gmail/v1/users/me/profile", get(profile));
    fakes::serve(router).await
}

/// A host with the Gmail connector and one connection holding `token`, pointed at a fake
/// Gmail API; its token endpoint is a second fake that must never be called.
struct Setup {
    host: TestHost,
    gmail: Fake,
    token_endpoint: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

async fn setup(token: &str) -> Setup {
    let gmail = google().await;
    let token_endpoint = fakes::serve(Router::new()).await;
    let (host, connector, connection) = TestHost::connected(
        "gmail",
        &[("api_base", &gmail.origin()), ("token_base", &token_endpoint.origin())],
        &[("oauth", &[("access_token", token)])],
    );
    Setup {
        host,
        gmail,
        token_endpoint,
        connector,
        connection,
    }
}

impl Setup {
    async fn run(&self, action: &str, input: Value) -> nexum_host::runtime::CallOutcome {
        self.host.run(&self.connector, &self.connection, action, input).await
    }

    /// Every request went to the API with the token in `Authorization: Bearer` and nowhere
    /// else, and the token endpoint was never called.
    fn assert_token_only_in_authorization(&self) {
        for r in self.gmail.requests() {
            assert_eq!(
                r.header("authorization"),
                Some(format!("Bearer {TOKEN}").as_str()),
                "{r:?}"
            );
            assert!(
                !r.everything_but("authorization").contains(TOKEN),
                "the token left Authorization: {r:?}"
            );
        }
        assert!(self.token_endpoint.requests().is_empty());
    }
}

fn query_pairs(r: &Recorded) -> Vec<(String, String)> {
    url::form_urlencoded::parse(r.query.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn content_type(part: &MessagePart<'_>) -> String {
    let ct = part.content_type().expect("content type");
    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase()
}

#[tokio::test]
async fn send_message_posts_a_mime_message_that_parses_back() {
    let s = setup(TOKEN).await;
    let report: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    let notes = "line one\nline two\n";
    let subject = "Grüße — Quartalsbericht Q3 ✓";
    let text = "Hallo Ada,\nanbei der Bericht für Q3.\n";
    let html = "<p>Hallo <b>Ada</b>,</p><p>anbei der Bericht für Q3.</p>";
    let out = s
        .run(
            "send_message",
            json!({
                "to": ["Ada Lovelace <ada@example.com>", { "address": "bob@example.com", "name": "Bob, the Builder" }],
                "cc": ["cc@example.com"],
                "bcc": ["hidden@example.com"],
                "reply_to": "replies@example.com",
                "subject": subject,
                "text": text,
                "html": html,
                "attachments": [
                    { "filename": "report.bin", "content_type": "application/octet-stream", "content_base64": STANDARD.encode(&report) },
                    // URL-safe alphabet, no padding, wrapped: accepted too.
                    { "filename": "notes.txt", "content_type": "text/plain", "content_base64": format!("{}\n", URL_SAFE_NO_PAD.encode(notes)) },
                ],
                "thread_id": "18c2f0a1b2c3d4e5",
                "in_reply_to": "<CAFoo123@mail.gmail.com>",
            }),
        )
        .await;
    assert_eq!(
        out.result.expect("sent"),
        json!({ "id": "18c2f0a1b2c3d4e9", "thread_id": "18c2f0a1b2c3d4e5", "label_ids": ["SENT"] })
    );

    let requests = s.gmail.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
        ("POST", "/gmail/v1/users/me/messages/send", None)
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["raw", "threadId"]);
    assert_eq!(body["threadId"], "18c2f0a1b2c3d4e5");
    let raw = body["raw"].as_str().expect("raw");
    assert!(
        raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "raw is base64url without padding"
    );
    let mime = URL_SAFE_NO_PAD.decode(raw).expect("base64url");
    s.assert_token_only_in_authorization();
    assert!(!String::from_utf8_lossy(&mime).contains(TOKEN));

    // CRLF everywhere: no bare LF, no bare CR.
    for (i, b) in mime.iter().enumerate() {
        if *b == b'\n' {
            assert!(i > 0 && mime[i - 1] == b'\r', "bare LF at byte {i}");
        }
        if *b == b'\r' {
            assert_eq!(mime.get(i + 1), Some(&b'\n'), "bare CR at byte {i}");
        }
    }
    let text_mime = String::from_utf8(mime.clone()).expect("MIME is ASCII");
    let (head, _) = text_mime.split_once("\r\n\r\n").expect("headers end");
    assert!(head.is_ascii(), "headers are ASCII (RFC 2047): {head}");
    assert!(head.contains("Subject: =?utf-8?"), "{head}");
    assert!(head.contains("In-Reply-To: <CAFoo123@mail.gmail.com>\r\n"), "{head}");
    assert!(head.contains("References: <CAFoo123@mail.gmail.com>\r\n"), "{head}");
    assert!(head.contains("MIME-Version: 1.0\r\n"), "{head}");
    assert!(
        text_mime.contains("Content-Disposition: attachment; filename=\"report.bin\"\r\n"),
        "{text_mime}"
    );

    let message = MessageParser::default().parse(&mime).expect("a MIME message");
    assert_eq!(message.subject(), Some(subject));
    let addresses = |list: Option<&mail_parser::Address<'_>>| -> Vec<(Option<String>, String)> {
        list.expect("address header")
            .iter()
            .map(|a| {
                (
                    a.name().map(str::to_string),
                    a.address().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        addresses(message.to()),
        [
            (Some("Ada Lovelace".to_string()), "ada@example.com".to_string()),
            (Some("Bob, the Builder".to_string()), "bob@example.com".to_string()),
        ]
    );
    assert_eq!(addresses(message.cc()), [(None, "cc@example.com".to_string())]);
    assert_eq!(addresses(message.bcc()), [(None, "hidden@example.com".to_string())]);
    assert_eq!(
        addresses(message.reply_to()),
        [(None, "replies@example.com".to_string())]
    );

    // multipart/mixed [ multipart/alternative [text, html], report.bin, notes.txt ]
    let root = &message.parts[0];
    assert_eq!(content_type(root), "multipart/mixed");
    let children: Vec<&MessagePart<'_>> = root
        .sub_parts()
        .expect("multipart")
        .iter()
        .map(|&i| &message.parts[i as usize])
        .collect();
    assert_eq!(
        children.iter().map(|p| content_type(p)).collect::<Vec<_>>(),
        ["multipart/alternative", "application/octet-stream", "text/plain"]
    );
    let alternatives: Vec<String> = children[0]
        .sub_parts()
        .expect("multipart")
        .iter()
        .map(|&i| content_type(&message.parts[i as usize]))
        .collect();
    assert_eq!(alternatives, ["text/plain", "text/html"]);
    assert_eq!(message.body_text(0).expect("text").replace("\r\n", "\n"), text);
    assert_eq!(message.body_html(0).expect("html"), html);

    let attachments: Vec<&MessagePart<'_>> = message.attachments().collect();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0].attachment_name(), Some("report.bin"));
    assert_eq!(attachments[0].contents(), report.as_slice(), "the bytes round-trip");
    assert_eq!(attachments[0].encoding, Encoding::Base64);
    assert_eq!(attachments[1].attachment_name(), Some("notes.txt"));
    assert_eq!(attachments[1].contents(), notes.as_bytes());
    assert_eq!(
        attachments[1].encoding,
        Encoding::Base64,
        "text attachments are base64 too"
    );
}

#[tokio::test]
async fn headers_cannot_be_injected() {
    let s = setup(TOKEN).await;
    // A line break in a subject or name is folded to a space: no header of its own.
    let out = s
        .run(
            "send_message",
            json!({
                "to": [{ "address": "ada@example.com", "name": "Ada\r\nBcc: evil@example.com" }],
                "subject": "Hello\r\nBcc: evil@example.com",
                "text": "hi",
            }),
        )
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    let raw = s.gmail.requests()[0].json()["raw"].as_str().expect("raw").to_string();
    let mime = URL_SAFE_NO_PAD.decode(raw).expect("base64url");
    let message = MessageParser::default().parse(&mime).expect("a MIME message");
    assert!(message.bcc().is_none(), "no Bcc header was smuggled in");
    let subject = message.subject().expect("subject");
    assert!(
        subject.starts_with("Hello") && subject.ends_with("Bcc: evil@example.com"),
        "{subject}"
    );
    let text = String::from_utf8_lossy(&mime);
    let (head, _) = text.split_once("\r\n\r\n").expect("headers end");
    assert!(!head.contains("\r\nBcc:"), "{head}");
    // An address with a line break (or anything but one address) is refused before sending.
    for to in [
        "ada@example.com\r\nBcc: evil@example.com",
        "ada@example.com, evil@example.com",
        "not-an-address",
    ] {
        let (code, _, _) = connector_error(
            s.run("send_message", json!({ "to": [to], "subject": "x", "text": "x" }))
                .await,
        );
        assert_eq!(code, "invalid_input", "{to}");
    }
    assert_eq!(s.gmail.requests().len(), 1, "nothing more was sent");
}

#[tokio::test]
async fn messages_are_listed_and_read_and_test_connection_reads_the_profile() {
    let s = setup(TOKEN).await;
    let first = s
        .run(
            "list_messages",
            json!({ "q": "from:ada is:unread", "max_results": 2, "label_ids": ["INBOX", "UNREAD"], "include_spam_trash": false }),
        )
        .await;
    assert_eq!(
        first.result.expect("listed"),
        json!({
            "messages": [{ "id": "m1", "thread_id": "t1" }, { "id": "m2", "thread_id": "t1" }],
            "next_page_token": "page-2",
            "result_size_estimate": 3,
        })
    );
    let second = s.run("list_messages", json!({ "page_token": "page-2" })).await;
    assert_eq!(
        second.result.expect("listed"),
        json!({ "messages": [{ "id": "m3", "thread_id": "t2" }], "next_page_token": null, "result_size_estimate": 3 })
    );
    let empty = s.run("list_messages", json!({ "q": "nothing" })).await;
    assert_eq!(
        empty.result.expect("listed"),
        json!({ "messages": [], "next_page_token": null, "result_size_estimate": 0 })
    );

    let full = s.run("get_message", json!({ "id": MESSAGE })).await;
    assert_eq!(
        full.result.expect("read"),
        json!({
            "id": MESSAGE,
            "thread_id": "t1",
            "label_ids": ["INBOX", "UNREAD"],
            "snippet": "Hallo Ada, anbei der Bericht für Q3.",
            "internal_date": "1718013600000",
            "size_estimate": 4321,
            "subject": "Grüße",
            "from": "Bob <bob@example.com>",
            "to": "Ada <ada@example.com>",
            "cc": null,
            "date": "Mon, 10 Jun 2024 10:00:00 +0000",
            "message_id": "<CAFoo123@mail.gmail.com>",
            "text": "Hallo Ada,\r\nanbei der Bericht für Q3.\r\n",
            "html": "<p>Hallo <b>Ada</b></p>",
            "body_truncated": false,
            "attachments": [{ "filename": "report.pdf", "mime_type": "application/pdf", "size": 52341, "attachment_id": "ANGjdJ8wXyz" }],
        })
    );
    let metadata = s
        .run("get_message", json!({ "id": MESSAGE, "format": "metadata" }))
        .await
        .result
        .expect("read");
    assert_eq!(
        (&metadata["subject"], &metadata["text"], &metadata["attachments"]),
        (&json!("Grüße"), &Value::Null, &json!([]))
    );
    let latin1 = s
        .run("get_message", json!({ "id": LATIN1_MESSAGE }))
        .await
        .result
        .expect("read");
    assert_eq!(latin1["text"], "Grüße", "ISO-8859-1 decoded");
    let huge = s
        .run("get_message", json!({ "id": HUGE_MESSAGE }))
        .await
        .result
        .expect("read");
    assert_eq!(huge["body_truncated"], true);
    assert_eq!(huge["text"].as_str().expect("text").len(), 256 * 1024);

    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({ "email_address": "ada@example.com", "messages_total": 1234 })
    );

    let requests = s.gmail.requests();
    let calls: Vec<(&str, &str)> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    let get = format!("/gmail/v1/users/me/messages/{MESSAGE}");
    assert_eq!(
        calls,
        [
            ("GET", "/gmail/v1/users/me/messages"),
            ("GET", "/gmail/v1/users/me/messages"),
            ("GET", "/gmail/v1/users/me/messages"),
            ("GET", get.as_str()),
            ("GET", get.as_str()),
            ("GET", format!("/gmail/v1/users/me/messages/{LATIN1_MESSAGE}").as_str()),
            ("GET", format!("/gmail/v1/users/me/messages/{HUGE_MESSAGE}").as_str()),
            ("GET", "/gmail/v1/users/me/profile"),
        ]
    );
    assert_eq!(
        query_pairs(&requests[0]),
        pairs(&[
            ("q", "from:ada is:unread"),
            ("maxResults", "2"),
            ("includeSpamTrash", "false"),
            ("labelIds", "INBOX"),
            ("labelIds", "UNREAD"),
        ])
    );
    assert_eq!(query_pairs(&requests[1]), pairs(&[("pageToken", "page-2")]));
    assert_eq!(query_pairs(&requests[3]), pairs(&[("format", "full")]));
    assert_eq!(query_pairs(&requests[4]), pairs(&[("format", "metadata")]));
    assert_eq!(requests[7].query, None);
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn gmail_errors_map_to_stable_codes() {
    let s = setup(TOKEN).await;
    let mail = |to: &str| json!({ "to": [to], "subject": "s", "text": "t" });

    let (code, message, retryable) = connector_error(s.run("send_message", mail("busy@example.com")).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    assert!(
        message.contains("Too many concurrent requests") && message.contains("retry after 7 s"),
        "{message}"
    );
    let (code, _, retryable) = connector_error(s.run("send_message", mail("throttled@example.com")).await);
    assert_eq!(
        (code.as_str(), retryable),
        ("rate_limited", true),
        "Gmail's 403 rate limits"
    );
    let (code, message, retryable) = connector_error(s.run("send_message", mail("invalid@example.com")).await);
    assert_eq!((code.as_str(), retryable), ("invalid_argument", false));
    assert!(
        message.contains("INVALID_ARGUMENT") && message.contains("Invalid To header"),
        "{message}"
    );
    let (code, _, retryable) = connector_error(s.run("list_messages", json!({ "q": "bad:query" })).await);
    assert_eq!((code.as_str(), retryable), ("invalid_argument", false));
    let (code, _, retryable) = connector_error(s.run("get_message", json!({ "id": "404404" })).await);
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    let (code, _, retryable) = connector_error(s.run("get_message", json!({ "id": "500500" })).await);
    assert_eq!((code.as_str(), retryable), ("upstream_error", true));

    // Refused before any request: no recipient, no body, bad base64; an id that would leave
    // its path segment is refused by the input schema.
    let before = s.gmail.requests().len();
    for input in [
        json!({ "subject": "s", "text": "t" }),
        json!({ "to": ["ada@example.com"], "subject": "s" }),
        json!({ "to": ["ada@example.com"], "text": "t", "attachments": [{ "filename": "a", "content_base64": "not base64!" }] }),
    ] {
        let (code, _, _) = connector_error(s.run("send_message", input).await);
        assert_eq!(code, "invalid_input");
    }
    let out = s.run("get_message", json!({ "id": "../profile" })).await;
    assert!(
        matches!(out.result, Err(CallError::InvalidInput { .. })),
        "{:?}",
        out.result
    );
    assert_eq!(s.gmail.requests().len(), before);

    // A token Google refuses is an auth failure: the connection's status flips on it.
    let s = setup("ya29.revoked-google-token-0000").await;
    let (code, message, retryable) = connector_error(s.run("list_messages", json!({})).await);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));
    assert!(message.contains("UNAUTHENTICATED"), "{message}");
    assert!(nexum_host::connections::calls::AUTH_FAILURE_CODES.contains(&code.as_str()));
}

#[test]
fn the_manifest_declares_google_sign_in() {
    let manifest = connector_manifest("gmail");
    let (scheme, endpoints) = oauth2_scheme(&manifest, "oauth");
    assert!(endpoints.pkce);
    assert_eq!(endpoints.token_auth_method, nexum_manifest::TokenAuthMethod::Body);
    assert_eq!(endpoints.joined_scopes(&endpoints.scopes), SCOPES);
    let variables = manifest.resolve_variables(&BTreeMap::new()).expect("defaults");
    let authorize = endpoints
        .authorization_url_for(&variables)
        .expect("url")
        .expect("authorization-code flow");
    assert_eq!(authorize.as_str(), "https://accounts.google.com/o/oauth2/v2/auth");
    // The token URL is one the scheme is bound to (else the host refuses the flow).
    let token_url = nexum_host::oauth::token_url(&manifest, scheme, &variables).expect("bound token URL");
    assert_eq!(token_url.as_str(), "https://oauth2.googleapis.com/token");
    let (q, pkce) = consent_query(endpoints, &authorize, CLIENT_ID);
    assert!(pkce, "PKCE");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["response_type"], "code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_with_google_and_uses_then_refreshes_the_token() {
    use nexum_tests::app::TestApp;
    use nexum_tests::consent::{open_consent_page, register_oauth_app, start_flow, token_form};

    let google = google().await;
    let app = TestApp::sqlite().await;
    let installed = app.install(&app.key, "gmail").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    register_oauth_app(&app, &app.key, "gmail", CLIENT_ID, CLIENT_SECRET).await;
    let origin = google.origin();
    let (flow_id, link) = start_flow(
        &app,
        &app.key,
        json!({
            "connector": "gmail",
            "name": "Ada's mailbox",
            "variables": { "api_base": origin, "oauth_base": origin, "token_base": origin },
        }),
    )
    .await;

    // Nexum's link binds the flow to the browser and sends it to Google's consent page.
    let consent = open_consent_page(&link).await;
    assert_eq!(consent.url.path(), "/o/oauth2/v2/auth");
    let q = &consent.query;
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/api/v1/oauth/callback", app.base));
    let (connection, flow) = consent.approve(&app, &app.key, &flow_id).await;

    let list = format!("/api/v1/connections/{connection}/actions/list_messages");
    let listed = app.post(&app.key, &list, json!({ "max_results": 2 })).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["output"]["next_page_token"], "page-2");
    let forced = app.force_refresh(&app.key, &connection).await;
    assert_eq!(forced.status, StatusCode::OK, "{:?}", forced.body);
    assert_eq!(forced.body["outcome"], "refreshed");
    let again = app.post(&app.key, &list, json!({})).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);

    let requests = google.requests();
    let token_requests: Vec<&Recorded> = requests.iter().filter(|r| r.path == "/token").collect();
    assert_eq!(token_requests.len(), 2);
    let exchange = token_form(token_requests[0]);
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert!(exchange.contains_key("code_verifier"));
    let refresh = token_form(token_requests[1]);
    assert_eq!(
        (refresh["grant_type"].as_str(), refresh["refresh_token"].as_str()),
        ("refresh_token", REFRESH_TOKEN)
    );
    let api: Vec<&Recorded> = requests.iter().filter(|r| r.path.starts_with("/gmail/")).collect();
    assert_eq!(api.len(), 2);
    assert_eq!(
        api[0].header("authorization"),
        Some(format!("Bearer {ISSUED_TOKEN}").as_str())
    );
    assert_eq!(
        api[1].header("authorization"),
        Some(format!("Bearer {REFRESHED_TOKEN}").as_str())
    );
    for r in &requests {
        for token in [ISSUED_TOKEN, REFRESHED_TOKEN] {
            assert!(
                !r.everything_but("authorization").contains(token),
                "an access token left Authorization: {r:?}"
            );
        }
        if r.path != "/token" {
            let all = r.everything_but("");
            assert!(
                !all.contains(CLIENT_SECRET) && !all.contains(REFRESH_TOKEN),
                "a client or refresh secret reached {}: {r:?}",
                r.path
            );
        } else {
            assert!(
                r.header("authorization").is_none(),
                "the client secret goes in the body"
            );
        }
    }
    for text in [listed.body.to_string(), forced.body.to_string(), flow.body.to_string()] {
        assert!(
            !text.contains(ISSUED_TOKEN) && !text.contains(REFRESH_TOKEN) && !text.contains(CLIENT_SECRET),
            "{text}"
        );
    }
    app.shutdown().await;
}
