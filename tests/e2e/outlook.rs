//! The Outlook connector against a fake Microsoft Graph and a fake Microsoft identity
//! platform: the exact `sendMail` message (recipients, one body, file attachments whose bytes
//! round-trip), folder listing with `$top`/`$select`/`$filter`/`$search`/`$orderby`, paging
//! links kept on `api_base` and under `/v1.0/me/`, the access token only in
//! `Authorization: Bearer` to Graph, the tenant in the OAuth endpoints' path end to end
//! through a server (PKCE, rotated refresh tokens), and Graph's errors under stable codes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector};
use nexum_tests::consent::{PkceGrant, approve, connector_manifest, oauth2_scheme};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The access token the tests connect with.
const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.fake-graph-access-token.5d1e";
/// The access token the fake identity platform issues for the authorization code.
const ISSUED_TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.issued-by-the-fake-login.77ab";
/// The access tokens it issues on the first and second refresh.
const REFRESHED_TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.refreshed-once.0c1d";
const REFRESHED_AGAIN: &str = "eyJ0eXAiOiJKV1QifQ.refreshed-twice.9e2f";
/// The refresh tokens it issues: Microsoft rotates them on every refresh.
const REFRESH_1: &str = "M.C5_BAY.fake-refresh-token-one";
const REFRESH_2: &str = "M.C5_BAY.fake-refresh-token-two";
const REFRESH_3: &str = "M.C5_BAY.fake-refresh-token-three";
/// The authorization code the fake consent page hands out.
const CODE: &str = "M.C5_BAY.fake-authorization-code";
/// The app registration given to Nexum.
const CLIENT_ID: &str = "00000000-1111-2222-3333-444444444444";
const CLIENT_SECRET: &str = "fake~azure~client~secret~Qx8";
/// The tenant of a single-tenant app registration.
const TENANT: &str = "contoso.onmicrosoft.com";
/// The scopes, as the consent page must receive them.
const SCOPES: &str = "offline_access https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/Mail.Read https://graph.microsoft.com/User.Read";
/// What list_messages always selects.
const FIELDS: &str = "id,subject,from,receivedDateTime,isRead,bodyPreview,hasAttachments,conversationId";

fn authed(headers: &HeaderMap) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    [TOKEN, ISSUED_TOKEN, REFRESHED_TOKEN, REFRESHED_AGAIN]
        .iter()
        .any(|token| given == Some(format!("Bearer {token}").as_str()))
}

/// Graph's JSON error.
fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message, "innerError": { "request-id": "7f0c" } } })),
    )
        .into_response()
}

fn unauthenticated() -> Response {
    graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token has expired or is not yet valid.",
    )
}

fn with_retry_after(mut response: Response, seconds: &str) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, seconds.parse().expect("header value"));
    response
}

/// `POST /me/sendMail`: 202 and no body, or an error some recipients trigger.
async fn send_mail(headers: HeaderMap, body: Bytes) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    let message = &sent["message"];
    let addresses: Vec<&str> = ["toRecipients", "ccRecipients", "bccRecipients"]
        .iter()
        .filter_map(|field| message[*field].as_array())
        .flatten()
        .filter_map(|r| r["emailAddress"]["address"].as_str())
        .collect();
    let has = |address: &str| addresses.contains(&address);
    if has("busy@example.com") {
        return with_retry_after(
            graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            ),
            "7",
        );
    }
    if has("invalid@example.com") {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid.",
        );
    }
    if has("forbidden@example.com") {
        return graph_error(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        );
    }
    if has("large@example.com") {
        return graph_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ErrorRequestEntityTooLarge",
            "The request is too large.",
        );
    }
    if has("unavailable@example.com") {
        return with_retry_after(
            graph_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Service is temporarily unavailable.",
            ),
            "3",
        );
    }
    StatusCode::ACCEPTED.into_response()
}

fn graph_message(n: u32, from: bool) -> Value {
    let mut message = json!({
        "id": format!("AAMkAD{n}="),
        "subject": format!("Report {n}"),
        "receivedDateTime": format!("2024-06-1{n}T10:00:00Z"),
        "isRead": n.is_multiple_of(2),
        "bodyPreview": format!("Preview {n}"),
        "hasAttachments": n == 1,
        "conversationId": format!("AAQkAD{n}="),
        "webLink": format!("https://outlook.office365.com/owa/?ItemID=AAMkAD{n}%3D"),
    });
    if from {
        message["from"] = json!({ "emailAddress": { "name": "Bob", "address": "bob@example.com" } });
    }
    message
}

/// `GET /me/mailFolders/{folder}/messages`: two pages linked by an absolute nextLink on the
/// fake's own origin; `elsewhere` links to another origin, `missing` is 404, `throttled` 429.
async fn list_messages(
    headers: HeaderMap,
    Path(folder): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match folder.as_str() {
        "missing" => graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ),
        "throttled" => with_retry_after(
            graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            ),
            "0",
        ),
        "elsewhere" => axum::Json(json!({
            "value": [graph_message(1, true)],
            "@odata.nextLink": "https://evil.example/v1.0/me/mailFolders/elsewhere/messages?%24skip=2",
        }))
        .into_response(),
        _ if query.get("$skip").map(String::as_str) == Some("2") => {
            axum::Json(json!({ "value": [graph_message(3, true)] })).into_response()
        }
        _ => axum::Json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('ada')/mailFolders('inbox')/messages",
            "value": [graph_message(1, true), graph_message(2, false)],
            "@odata.nextLink": format!("http://{host}/v1.0/me/mailFolders/{folder}/messages?%24top=2&%24skip=2"),
        }))
        .into_response(),
    }
}

async fn me(headers: HeaderMap) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    // A personal account: no Exchange `mail`, a UPN.
    axum::Json(json!({ "displayName": "Ada Lovelace", "mail": null, "userPrincipalName": "ada@contoso.onmicrosoft.com", "id": "1a2b" }))
        .into_response()
}

/// A fake Graph plus the identity platform's authorize and token endpoints under
/// `/{tenant}/oauth2/v2.0/`, on one origin. The consent page approves at once and remembers
/// the tenant and PKCE challenge; the token endpoint wants the same tenant, the client secret
/// in the body and the matching verifier, and rotates the refresh token on every refresh.
async fn microsoft() -> Fake {
    let grant = PkceGrant::default();
    let remembered = grant.clone();
    let authorize = move |Path(tenant): Path<String>, Query(q): Query<HashMap<String, String>>| {
        let remembered = remembered.clone();
        async move {
            let (Some(redirect_uri), Some(challenge)) = (q.get("redirect_uri"), q.get("code_challenge")) else {
                return (StatusCode::BAD_REQUEST, "redirect_uri and code_challenge required").into_response();
            };
            if tenant != TENANT {
                return (StatusCode::BAD_REQUEST, "unknown tenant").into_response();
            }
            remembered.remember(challenge, redirect_uri);
            approve(redirect_uri, CODE, &q)
        }
    };
    let token = move |Path(tenant): Path<String>, headers: HeaderMap, body: Bytes| {
        let grant = grant.clone();
        async move {
            let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
            let field = |name: &str| form.get(name).map(String::as_str);
            let oauth_error =
                |error: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": error }))).into_response();
            if tenant != TENANT
                || headers.contains_key(header::AUTHORIZATION)
                || field("client_id") != Some(CLIENT_ID)
                || field("client_secret") != Some(CLIENT_SECRET)
            {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({ "error": "invalid_client" })),
                )
                    .into_response();
            }
            let issued = |access: &str, refresh: &str| {
                axum::Json(json!({
                    "token_type": "Bearer",
                    "scope": "https://graph.microsoft.com/Mail.Read https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/User.Read",
                    "expires_in": 3600,
                    "access_token": access,
                    "refresh_token": refresh,
                }))
                .into_response()
            };
            match (field("grant_type"), field("refresh_token")) {
                (Some("authorization_code"), _) => {
                    if !grant.redeem(&form, CODE) {
                        return oauth_error("invalid_grant");
                    }
                    issued(ISSUED_TOKEN, REFRESH_1)
                }
                (Some("refresh_token"), Some(REFRESH_1)) => issued(REFRESHED_TOKEN, REFRESH_2),
                (Some("refresh_token"), Some(REFRESH_2)) => issued(REFRESHED_AGAIN, REFRESH_3),
                _ => oauth_error("invalid_grant"),
            }
        }
    };
    let router = Router::new()
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/me/sendMail", post(send_mail))
        .route("/v1.0/me/mailFolders/{folder}/messages", get(list_messages))
        .route("/v1.0/me", get(me));
    fakes::serve(router).await
}

/// A host with the Outlook connector and one connection holding `token`, pointed at a fake
/// Graph; its token endpoint is a second fake that must never be called.
struct Setup {
    host: TestHost,
    graph: Fake,
    login: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

async fn setup(token: &str) -> Setup {
    let graph = microsoft().await;
    let login = fakes::serve(Router::new()).await;
    let (host, connector, connection) = TestHost::connected(
        "outlook",
        &[("api_base", &graph.origin()), ("login_base", &login.origin())],
        &[("oauth", &[("access_token", token)])],
    );
    Setup {
        host,
        graph,
        login,
        connector,
        connection,
    }
}

impl Setup {
    async fn run(&self, action: &str, input: Value) -> CallOutcome {
        self.host.run(&self.connector, &self.connection, action, input).await
    }

    /// Every request went to Graph with the token in `Authorization: Bearer` and nowhere
    /// else, and the identity platform was never called.
    fn assert_token_only_in_authorization(&self) {
        for r in self.graph.requests() {
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
        assert!(self.login.requests().is_empty());
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

#[tokio::test]
async fn send_mail_posts_one_graph_message_with_its_attachments() {
    let s = setup(TOKEN).await;
    let report: Vec<u8> = (0..=255u8).rev().collect();
    let out = s
        .run(
            "send_mail",
            json!({
                "to": ["Ada Lovelace <ada@example.com>", { "address": "bob@example.com" }],
                "cc": [{ "address": "cc@example.com", "name": "C. C." }],
                "bcc": ["hidden@example.com"],
                "reply_to": "replies@example.com",
                "subject": "Quartalsbericht\nQ3 — Grüße",
                "html": "<p>Hallo <b>Ada</b></p>",
                // URL-safe alphabet, no padding, wrapped: accepted, and sent as standard base64.
                "attachments": [{ "filename": "report.bin", "content_type": "application/octet-stream", "content_base64": format!("{}\n", URL_SAFE_NO_PAD.encode(&report)) }],
                "save_to_sent_items": false,
            }),
        )
        .await;
    assert_eq!(out.result.expect("sent"), json!({ "sent": true }));
    let plain = s
        .run(
            "send_mail",
            json!({ "to": ["ada@example.com"], "subject": "Hi", "text": "Hello\nAda" }),
        )
        .await;
    assert_eq!(plain.result.expect("sent"), json!({ "sent": true }));

    let requests = s.graph.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
            ("POST", "/v1.0/me/sendMail", None)
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(
        requests[0].json(),
        json!({
            "message": {
                "subject": "Quartalsbericht Q3 — Grüße",
                "body": { "contentType": "HTML", "content": "<p>Hallo <b>Ada</b></p>" },
                "toRecipients": [
                    { "emailAddress": { "address": "ada@example.com", "name": "Ada Lovelace" } },
                    { "emailAddress": { "address": "bob@example.com" } },
                ],
                "ccRecipients": [{ "emailAddress": { "address": "cc@example.com", "name": "C. C." } }],
                "bccRecipients": [{ "emailAddress": { "address": "hidden@example.com" } }],
                "replyTo": [{ "emailAddress": { "address": "replies@example.com" } }],
                "attachments": [{
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": "report.bin",
                    "contentType": "application/octet-stream",
                    "contentBytes": STANDARD.encode(&report),
                }],
            },
            "saveToSentItems": false,
        })
    );
    let sent = requests[0].json();
    let bytes = STANDARD
        .decode(
            sent["message"]["attachments"][0]["contentBytes"]
                .as_str()
                .expect("contentBytes"),
        )
        .expect("standard base64");
    assert_eq!(bytes, report, "the attachment's bytes round-trip");
    assert_eq!(
        requests[1].json(),
        json!({
            "message": {
                "subject": "Hi",
                "body": { "contentType": "Text", "content": "Hello\nAda" },
                "toRecipients": [{ "emailAddress": { "address": "ada@example.com" } }],
            },
            "saveToSentItems": true,
        })
    );
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn list_messages_pages_through_next_links_on_api_base() {
    let s = setup(TOKEN).await;
    let first = s
        .run("list_messages", json!({ "top": 2, "select": ["webLink"] }))
        .await
        .result
        .expect("listed");
    let next = "/v1.0/me/mailFolders/inbox/messages?%24top=2&%24skip=2";
    assert_eq!(
        first,
        json!({
            "messages": [
                {
                    "id": "AAMkAD1=", "subject": "Report 1",
                    "from": { "address": "bob@example.com", "name": "Bob" },
                    "received_at": "2024-06-11T10:00:00Z", "is_read": false, "preview": "Preview 1",
                    "has_attachments": true, "conversation_id": "AAQkAD1=",
                    "fields": { "webLink": "https://outlook.office365.com/owa/?ItemID=AAMkAD1%3D" },
                },
                {
                    "id": "AAMkAD2=", "subject": "Report 2", "from": null,
                    "received_at": "2024-06-12T10:00:00Z", "is_read": true, "preview": "Preview 2",
                    "has_attachments": false, "conversation_id": "AAQkAD2=",
                    "fields": { "webLink": "https://outlook.office365.com/owa/?ItemID=AAMkAD2%3D" },
                },
            ],
            "next_link": next,
        })
    );
    let second = s
        .run("list_messages", json!({ "next_link": next, "folder": "ignored" }))
        .await
        .result
        .expect("listed");
    assert_eq!(second["messages"][0]["id"], "AAMkAD3=");
    assert_eq!(second["next_link"], Value::Null);
    let filtered = s
        .run(
            "list_messages",
            json!({ "folder": "sentitems", "filter": "isRead eq false" }),
        )
        .await;
    assert!(filtered.result.is_ok(), "{:?}", filtered.result);
    let searched = s.run("list_messages", json!({ "search": "from:ada" })).await;
    assert!(searched.result.is_ok(), "{:?}", searched.result);
    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({ "email": "ada@contoso.onmicrosoft.com", "display_name": "Ada Lovelace" })
    );

    let requests = s.graph.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1.0/me/mailFolders/inbox/messages",
            "/v1.0/me/mailFolders/inbox/messages",
            "/v1.0/me/mailFolders/sentitems/messages",
            "/v1.0/me/mailFolders/inbox/messages",
            "/v1.0/me",
        ]
    );
    assert_eq!(
        query_pairs(&requests[0]),
        pairs(&[
            ("$top", "2"),
            ("$select", &format!("{FIELDS},webLink")),
            ("$orderby", "receivedDateTime desc"),
        ])
    );
    assert_eq!(
        requests[1].query.as_deref(),
        Some("%24top=2&%24skip=2"),
        "the link as Graph gave it"
    );
    assert_eq!(
        query_pairs(&requests[2]),
        pairs(&[("$top", "25"), ("$select", FIELDS), ("$filter", "isRead eq false")])
    );
    assert_eq!(
        query_pairs(&requests[3]),
        pairs(&[("$top", "25"), ("$select", FIELDS), ("$search", "\"from:ada\"")])
    );
    assert_eq!(
        query_pairs(&requests[4]),
        pairs(&[("$select", "displayName,mail,userPrincipalName")])
    );
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn paging_links_never_leave_api_base_or_the_signed_in_user() {
    let s = setup(TOKEN).await;
    // Graph answering with a link to another origin: refused, not handed back.
    let (code, _, retryable) = connector_error(s.run("list_messages", json!({ "folder": "elsewhere" })).await);
    assert_eq!((code.as_str(), retryable), ("unexpected_response", false));
    let before = s.graph.requests().len();
    // An absolute link, or one outside /v1.0/me/, is refused by the input schema…
    for link in [
        "https://evil.example/v1.0/me/messages",
        "//evil.example/v1.0/me/messages",
        "/v1.0/users/someone-else/messages",
    ] {
        let out = s.run("list_messages", json!({ "next_link": link })).await;
        assert!(
            matches!(out.result, Err(CallError::InvalidInput { .. })),
            "{link}: {:?}",
            out.result
        );
    }
    // …and one that would climb out of it with dot segments by the connector.
    for link in [
        "/v1.0/me/../../beta/users/someone-else/messages",
        "/v1.0/me/%2e%2e/%2E%2E/beta/users",
        "/v1.0/me/messages#fragment",
        "/v1.0/me/messages?x=a b",
    ] {
        let (code, _, _) = connector_error(s.run("list_messages", json!({ "next_link": link })).await);
        assert_eq!(code, "invalid_input", "{link}");
    }
    assert_eq!(s.graph.requests().len(), before, "no such link was called");
}

#[tokio::test]
async fn graph_errors_map_to_stable_codes() {
    let s = setup(TOKEN).await;
    let mail = |to: &str| json!({ "to": [to], "subject": "s", "text": "t" });
    let cases = [
        ("busy@example.com", "rate_limited", true, "ApplicationThrottled"),
        (
            "invalid@example.com",
            "invalid_argument",
            false,
            "ErrorInvalidRecipients",
        ),
        ("forbidden@example.com", "forbidden", false, "ErrorAccessDenied"),
        (
            "large@example.com",
            "request_too_large",
            false,
            "ErrorRequestEntityTooLarge",
        ),
        ("unavailable@example.com", "upstream_error", true, "ServiceUnavailable"),
    ];
    for (to, expected, expected_retryable, graph_code) in cases {
        let (code, message, retryable) = connector_error(s.run("send_mail", mail(to)).await);
        assert_eq!(
            (code.as_str(), retryable),
            (expected, expected_retryable),
            "{to}: {message}"
        );
        assert!(message.contains(graph_code), "{message}");
    }
    let (_, message, _) = connector_error(s.run("send_mail", mail("busy@example.com")).await);
    assert!(message.contains("retry after 7 s"), "{message}");
    let (code, _, retryable) = connector_error(s.run("list_messages", json!({ "folder": "missing" })).await);
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    let (code, message, retryable) = connector_error(s.run("list_messages", json!({ "folder": "throttled" })).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true), "{message}");

    // Refused before any request.
    let before = s.graph.requests().len();
    for input in [
        json!({ "subject": "s", "text": "t" }),
        json!({ "to": ["ada@example.com"], "subject": "s" }),
        json!({ "to": ["ada@example.com"], "text": "t", "html": "<p>t</p>" }),
        json!({ "to": ["ada@example.com, evil@example.com"], "text": "t" }),
        json!({ "to": ["ada@example.com"], "text": "t", "attachments": [{ "filename": "a", "content_base64": "not base64!" }] }),
    ] {
        let (code, _, _) = connector_error(s.run("send_mail", input.clone()).await);
        assert_eq!(code, "invalid_input", "{input}");
    }
    let (code, _, _) = connector_error(
        s.run(
            "list_messages",
            json!({ "filter": "isRead eq false", "search": "report" }),
        )
        .await,
    );
    assert_eq!(code, "invalid_input");
    let out = s.run("list_messages", json!({ "folder": "../users" })).await;
    assert!(
        matches!(out.result, Err(CallError::InvalidInput { .. })),
        "{:?}",
        out.result
    );
    assert_eq!(s.graph.requests().len(), before);

    // A token Graph refuses is an auth failure: the connection's status flips on it.
    let s = setup("eyJ0eXAiOiJKV1QifQ.revoked-token.0000").await;
    let (code, message, retryable) = connector_error(s.run("send_mail", mail("ada@example.com")).await);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));
    assert!(message.contains("InvalidAuthenticationToken"), "{message}");
    assert!(nexum_host::connections::calls::AUTH_FAILURE_CODES.contains(&code.as_str()));
}

#[test]
fn the_manifest_puts_the_tenant_in_the_identity_platform_path() {
    let manifest = connector_manifest("outlook");
    let (scheme, endpoints) = oauth2_scheme(&manifest, "oauth");
    assert!(endpoints.pkce);
    assert_eq!(endpoints.token_auth_method, nexum_manifest::TokenAuthMethod::Body);
    assert_eq!(endpoints.joined_scopes(&endpoints.scopes), SCOPES);
    for (tenant, authorize, token) in [
        (
            None,
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        ),
        (
            Some(TENANT),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize",
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
        ),
    ] {
        let given: BTreeMap<String, String> = tenant
            .map(|t| ("tenant".to_string(), t.to_string()))
            .into_iter()
            .collect();
        let variables = manifest.resolve_variables(&given).expect("variables");
        let url = endpoints
            .authorization_url_for(&variables)
            .expect("url")
            .expect("authorization-code flow");
        assert_eq!(url.as_str(), authorize);
        // The token URL is one the scheme is bound to (else the host refuses the flow).
        let bound = nexum_host::oauth::token_url(&manifest, scheme, &variables).expect("bound token URL");
        assert_eq!(bound.as_str(), token);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_with_microsoft_in_its_tenant_and_keeps_the_rotated_refresh_token() {
    use nexum_tests::app::TestApp;
    use nexum_tests::consent::{open_consent_page, register_oauth_app, start_flow, token_form};

    let microsoft = microsoft().await;
    let app = TestApp::sqlite().await;
    let installed = app.install(&app.key, "outlook").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    register_oauth_app(&app, &app.key, "outlook", CLIENT_ID, CLIENT_SECRET).await;
    let origin = microsoft.origin();
    let (flow_id, link) = start_flow(
        &app,
        &app.key,
        json!({
            "connector": "outlook",
            "name": "Ada's mailbox",
            "variables": { "api_base": origin, "login_base": origin, "tenant": TENANT },
        }),
    )
    .await;

    let consent = open_consent_page(&link).await;
    assert_eq!(consent.url.path(), format!("/{TENANT}/oauth2/v2.0/authorize"));
    let q = &consent.query;
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/api/v1/oauth/callback", app.base));
    let (connection, flow) = consent.approve(&app, &app.key, &flow_id).await;

    let list = format!("/api/v1/connections/{connection}/actions/list_messages");
    let listed = app.post(&app.key, &list, json!({ "top": 2 })).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["output"]["messages"][0]["id"], "AAMkAD1=");
    for _ in 0..2 {
        let forced = app.force_refresh(&app.key, &connection).await;
        assert_eq!(forced.status, StatusCode::OK, "{:?}", forced.body);
        assert_eq!(forced.body["outcome"], "refreshed");
    }
    let sent = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{connection}/actions/send_mail"),
            json!({ "to": ["bob@example.com"], "subject": "Hi", "text": "Hello" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    assert_eq!(sent.body["output"], json!({ "sent": true }));

    let requests = microsoft.requests();
    let token_path = format!("/{TENANT}/oauth2/v2.0/token");
    let grants: Vec<(String, Option<String>)> = requests
        .iter()
        .filter(|r| r.path == token_path)
        .map(|r| {
            let f = token_form(r);
            (f["grant_type"].clone(), f.get("refresh_token").cloned())
        })
        .collect();
    assert_eq!(
        grants,
        [
            ("authorization_code".to_string(), None),
            ("refresh_token".to_string(), Some(REFRESH_1.to_string())),
            ("refresh_token".to_string(), Some(REFRESH_2.to_string())),
        ],
        "the rotated refresh token was kept"
    );
    let bearers: Vec<Option<&str>> = requests
        .iter()
        .filter(|r| r.path.starts_with("/v1.0/"))
        .map(|r| r.header("authorization"))
        .collect();
    assert_eq!(
        bearers,
        [
            Some(format!("Bearer {ISSUED_TOKEN}").as_str()),
            Some(format!("Bearer {REFRESHED_AGAIN}").as_str()),
        ]
    );
    for r in &requests {
        for token in [ISSUED_TOKEN, REFRESHED_TOKEN, REFRESHED_AGAIN] {
            assert!(
                !r.everything_but("authorization").contains(token),
                "an access token left Authorization: {r:?}"
            );
        }
        if r.path == token_path {
            assert!(
                r.header("authorization").is_none(),
                "the client secret goes in the body"
            );
        } else {
            let all = r.everything_but("");
            for secret in [CLIENT_SECRET, REFRESH_1, REFRESH_2, REFRESH_3] {
                assert!(
                    !all.contains(secret),
                    "a client or refresh secret reached {}: {r:?}",
                    r.path
                );
            }
        }
    }
    for text in [listed.body.to_string(), sent.body.to_string(), flow.body.to_string()] {
        for secret in [ISSUED_TOKEN, REFRESH_1, CLIENT_SECRET] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    app.shutdown().await;
}
