//! The GitHub connector against a fake GitHub: the exact requests of every action (paths,
//! JSON bodies, query strings, GitHub's `Accept`, API-version and `User-Agent` headers), the
//! token only in `Authorization: Bearer`, paging through the `Link` header, owner and
//! repository names that could leave their path segment refused before any request,
//! GitHub's errors under stable codes (rate limits retryable with their reset time), the
//! manifest's OAuth declarations, and a sign-in through a server whose token endpoint answers
//! JSON only when asked for it, as GitHub's does.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector};
use nexum_tests::consent::{PkceGrant, connector_manifest, oauth2_scheme};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The personal access token the tests connect with.
const TOKEN: &str = "github_pat_11AAAAAAA0fakeFineGrainedToken_5c1d";
/// The access token the fake GitHub issues for the authorization code.
const ISSUED_TOKEN: &str = "gho_fakeOAuthAppUserToken00000000000001";
/// The authorization code the fake consent page hands out.
const CODE: &str = "5f3c9e0a1b2c3d4e5f60";
/// The OAuth app registered with Nexum.
const CLIENT_ID: &str = "Ov23liFakeGitHubClient";
/// Its secret.
const CLIENT_SECRET: &str = "fake-github-client-secret-0a1b2c3d4e5f";
/// GitHub's media type.
const MEDIA_TYPE: &str = "application/vnd.github+json";
/// The reset time the fake's exhausted rate limit announces (2025-01-01T00:00:00Z).
const RESET: &str = "1735689600";

fn authed(headers: &HeaderMap) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    [TOKEN, ISSUED_TOKEN]
        .iter()
        .any(|token| given == Some(format!("Bearer {token}").as_str()))
}

/// GitHub's JSON error.
fn github_error(status: StatusCode, message: &str, docs: &str) -> Response {
    (
        status,
        axum::Json(json!({ "message": message, "documentation_url": docs, "status": status.as_u16().to_string() })),
    )
        .into_response()
}

fn bad_credentials() -> Response {
    github_error(
        StatusCode::UNAUTHORIZED,
        "Bad credentials",
        "https://docs.github.com/rest",
    )
}

/// A repository as `GET /user/repos` lists it (trimmed to the fields that matter).
fn repository(id: u64, owner: &str, name: &str, private: bool) -> Value {
    json!({
        "id": id,
        "node_id": "R_kgDOfake",
        "name": name,
        "full_name": format!("{owner}/{name}"),
        "owner": { "login": owner, "id": 583231, "type": "User" },
        "private": private,
        "visibility": if private { "private" } else { "public" },
        "html_url": format!("https://github.com/{owner}/{name}"),
        "description": null,
        "fork": false,
        "url": format!("https://api.github.com/repos/{owner}/{name}"),
        "default_branch": "main",
        "archived": false,
        "pushed_at": "2025-03-01T10:00:00Z",
        "updated_at": "2025-03-02T11:00:00Z",
    })
}

/// `POST /repos/{owner}/{repo}/issues`: the repository's name picks an error.
async fn create_issue(headers: HeaderMap, Path((owner, repo)): Path<(String, String)>, body: Bytes) -> Response {
    if !authed(&headers) {
        return bad_credentials();
    }
    let docs = "https://docs.github.com/rest/issues/issues#create-an-issue";
    match repo.as_str() {
        "missing" => return github_error(StatusCode::NOT_FOUND, "Not Found", docs),
        "exhausted" => {
            let mut response = github_error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 583231.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            );
            let h = response.headers_mut();
            h.insert("x-ratelimit-limit", "5000".parse().expect("value"));
            h.insert("x-ratelimit-remaining", "0".parse().expect("value"));
            h.insert("x-ratelimit-reset", RESET.parse().expect("value"));
            h.insert("x-ratelimit-resource", "core".parse().expect("value"));
            return response;
        }
        "secondary" => {
            let mut response = github_error(
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                docs,
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "60".parse().expect("value"));
            return response;
        }
        "busy" => {
            let mut response = github_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests", docs);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "30".parse().expect("value"));
            return response;
        }
        "readonly" => {
            return github_error(
                StatusCode::FORBIDDEN,
                "Resource not accessible by personal access token",
                docs,
            );
        }
        "no-issues" => return github_error(StatusCode::GONE, "Issues are disabled for this repo", docs),
        "down" => return (StatusCode::BAD_GATEWAY, "<html>Unicorn!</html>").into_response(),
        "strict" => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({
                    "message": "Validation Failed",
                    "errors": [
                        { "resource": "Issue", "code": "missing_field", "field": "title" },
                        { "resource": "Issue", "code": "invalid", "field": "assignees", "value": "ghost" },
                    ],
                    "documentation_url": docs,
                    "status": "422",
                })),
            )
                .into_response();
        }
        _ => {}
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "id": 1,
            "node_id": "I_kwDOfake",
            "url": format!("https://api.github.com/repos/{owner}/{repo}/issues/1347"),
            "html_url": format!("https://github.com/{owner}/{repo}/issues/1347"),
            "number": 1347,
            "state": "open",
            "title": sent["title"],
            "body": sent["body"],
        })),
    )
        .into_response()
}

/// `POST /repos/{owner}/{repo}/issues/{number}/comments`.
async fn comment(headers: HeaderMap, Path((owner, repo, number)): Path<(String, String, u64)>) -> Response {
    if !authed(&headers) {
        return bad_credentials();
    }
    if number == 404 {
        return github_error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
        );
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "id": 1_900_000_001_u64,
            "html_url": format!("https://github.com/{owner}/{repo}/issues/{number}#issuecomment-1900000001"),
            "body": "x",
            "created_at": "2025-03-04T12:00:00Z",
        })),
    )
        .into_response()
}

/// `GET /user/repos`: four pages of one or two repositories; the `Link` header lists the
/// relations in varying order, as GitHub's may.
async fn list_repos(headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if !authed(&headers) {
        return bad_credentials();
    }
    let base = "https://api.github.com/user/repos?per_page=2";
    let (repos, link) = match query.get("page").map(String::as_str) {
        None | Some("1") => (
            json!([
                repository(1296269, "octocat", "Hello-World", true),
                repository(1300192, "octo-org", "Spoon-Knife", false)
            ]),
            format!("<{base}&page=2>; rel=\"next\", <{base}&page=4>; rel=\"last\""),
        ),
        Some("2") => (
            json!([repository(1300193, "octo-org", "docs", false)]),
            format!(
                "<{base}&page=1>; rel=\"prev\", <{base}&page=4>; rel=\"last\", <{base}&page=3>; rel=\"next\", <{base}&page=1>; rel=\"first\""
            ),
        ),
        _ => (
            json!([repository(1300194, "octocat", "linguist", false)]),
            format!("<{base}&page=3>; rel=\"prev\", <{base}&page=1>; rel=\"first\""),
        ),
    };
    ([(header::LINK, link)], axum::Json(repos)).into_response()
}

/// `GET /user`, with the classic scopes header.
async fn user(headers: HeaderMap) -> Response {
    if !authed(&headers) {
        return bad_credentials();
    }
    (
        [("x-oauth-scopes", "repo, read:org")],
        axum::Json(json!({
            "login": "octocat",
            "id": 583231,
            "name": "The Octocat",
            "html_url": "https://github.com/octocat",
            "type": "User",
        })),
    )
        .into_response()
}

/// A fake GitHub: the REST API plus the OAuth app's consent page and token endpoint on one
/// origin. The consent page approves at once and remembers the PKCE challenge; the token
/// endpoint wants the client secret in the body and the matching verifier, answers
/// form-encoded unless asked for JSON (as GitHub does) and reports a wrong code with a 200
/// `{"error": "bad_verification_code"}` (as GitHub does).
async fn github() -> Fake {
    let grant = PkceGrant::default();
    let consent_page = grant.consent_page(CODE);
    let token = move |headers: HeaderMap, body: Bytes| {
        let grant = grant.clone();
        async move {
            let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
            let field = |name: &str| form.get(name).map(String::as_str);
            let wants_json = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("application/json"));
            let answer = |fields: Value| -> Response {
                if wants_json {
                    return axum::Json(fields).into_response();
                }
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in fields.as_object().expect("object") {
                    form.append_pair(k, v.as_str().unwrap_or_default());
                }
                (
                    [(header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")],
                    form.finish(),
                )
                    .into_response()
            };
            if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
                return answer(
                    json!({ "error": "incorrect_client_credentials", "error_description": "The client_id and/or client_secret passed are incorrect." }),
                );
            }
            if !grant.redeem(&form, CODE) {
                return answer(
                    json!({ "error": "bad_verification_code", "error_description": "The code passed is incorrect or expired." }),
                );
            }
            answer(json!({ "access_token": ISSUED_TOKEN, "token_type": "bearer", "scope": "repo" }))
        }
    };
    let router = Router::new()
        .route("/login/oauth/authorize", consent_page)
        .route("/login/oauth/access_token", post(token))
        .route("/user", get(user))
        .route("/user/repos", get(list_repos))
        .route("/repos/{owner}/{repo}/issues", post(create_issue))
        .route("/repos/{owner}/{repo}/issues/{number}/comments", post(comment));
    fakes::serve(router).await
}

/// A host with the GitHub connector and one connection holding personal access token `token`
/// (auth scheme `token`), pointed at a fake GitHub.
struct Setup {
    host: TestHost,
    github: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

async fn setup(token: &str) -> Setup {
    let github = github().await;
    let (host, connector, connection) = TestHost::connected(
        "github",
        &[("api_base", &github.origin()), ("oauth_base", &github.origin())],
        &[("token", &[("token", token)])],
    );
    Setup {
        host,
        github,
        connector,
        connection,
    }
}

impl Setup {
    async fn run(&self, action: &str, input: Value) -> CallOutcome {
        self.host.run(&self.connector, &self.connection, action, input).await
    }

    /// Every request carried GitHub's headers and the token in `Authorization: Bearer`, and
    /// the token nowhere else.
    fn assert_github_headers_and_token_only_in_authorization(&self) {
        let requests = self.github.requests();
        assert!(!requests.is_empty());
        for r in requests {
            assert_eq!(r.header("accept"), Some(MEDIA_TYPE), "{r:?}");
            assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"), "{r:?}");
            assert!(
                r.header("user-agent")
                    .is_some_and(|ua| ua.starts_with("nexum-connector-github/")),
                "{r:?}"
            );
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
    }
}

fn call(r: &Recorded) -> (&str, &str, Option<&str>) {
    (r.method.as_str(), r.path.as_str(), r.query.as_deref())
}

#[tokio::test]
async fn issues_and_comments_are_posted_as_github_expects() {
    let s = setup(TOKEN).await;
    let out = s
        .run(
            "create_issue",
            json!({
                "owner": "octo-org",
                "repo": "hello.world",
                "title": "Found a bug ✓",
                "body": "I'm having a problem with this.\n\n```\nstack\n```",
                "labels": ["bug", "needs triage"],
                "assignees": ["octocat", "hubot"],
            }),
        )
        .await;
    assert_eq!(
        out.result.expect("created"),
        json!({
            "id": 1,
            "number": 1347,
            "url": "https://github.com/octo-org/hello.world/issues/1347",
            "api_url": "https://api.github.com/repos/octo-org/hello.world/issues/1347",
            "state": "open",
        })
    );
    // Title only: no empty body, labels or assignees are sent.
    let minimal = s
        .run(
            "create_issue",
            json!({ "owner": "octocat", "repo": "Hello-World", "title": "Just a title" }),
        )
        .await;
    assert_eq!(minimal.result.expect("created")["number"], 1347);
    let commented = s
        .run(
            "comment_on_issue",
            json!({ "owner": "octo-org", "repo": "hello.world", "issue_number": 1347, "body": "Me too 👍" }),
        )
        .await;
    assert_eq!(
        commented.result.expect("commented"),
        json!({
            "id": 1_900_000_001_u64,
            "url": "https://github.com/octo-org/hello.world/issues/1347#issuecomment-1900000001",
            "created_at": "2025-03-04T12:00:00Z",
        })
    );

    let requests = s.github.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(call(&requests[0]), ("POST", "/repos/octo-org/hello.world/issues", None));
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        requests[0].json(),
        json!({
            "title": "Found a bug ✓",
            "body": "I'm having a problem with this.\n\n```\nstack\n```",
            "labels": ["bug", "needs triage"],
            "assignees": ["octocat", "hubot"],
        })
    );
    assert_eq!(call(&requests[1]), ("POST", "/repos/octocat/Hello-World/issues", None));
    assert_eq!(requests[1].json(), json!({ "title": "Just a title" }));
    assert_eq!(
        call(&requests[2]),
        ("POST", "/repos/octo-org/hello.world/issues/1347/comments", None)
    );
    assert_eq!(requests[2].json(), json!({ "body": "Me too 👍" }));
    s.assert_github_headers_and_token_only_in_authorization();
}

#[tokio::test]
async fn repositories_page_through_the_link_header_and_test_connection_reads_the_user() {
    let s = setup(TOKEN).await;
    let first = s
        .run(
            "list_repositories",
            json!({
                "visibility": "all",
                "affiliation": ["owner", "organization_member"],
                "sort": "updated",
                "direction": "desc",
                "per_page": 2,
            }),
        )
        .await;
    assert_eq!(
        first.result.expect("listed"),
        json!({
            "repositories": [
                {
                    "id": 1296269, "name": "Hello-World", "full_name": "octocat/Hello-World", "owner": "octocat",
                    "private": true, "visibility": "private", "description": null,
                    "url": "https://github.com/octocat/Hello-World", "default_branch": "main", "fork": false,
                    "archived": false, "pushed_at": "2025-03-01T10:00:00Z", "updated_at": "2025-03-02T11:00:00Z",
                },
                {
                    "id": 1300192, "name": "Spoon-Knife", "full_name": "octo-org/Spoon-Knife", "owner": "octo-org",
                    "private": false, "visibility": "public", "description": null,
                    "url": "https://github.com/octo-org/Spoon-Knife", "default_branch": "main", "fork": false,
                    "archived": false, "pushed_at": "2025-03-01T10:00:00Z", "updated_at": "2025-03-02T11:00:00Z",
                },
            ],
            "next_page": 2,
        })
    );
    // `rel="next"` is found wherever it sits in the header, and not confused with `last`.
    let second = s.run("list_repositories", json!({ "per_page": 2, "page": 2 })).await;
    let second = second.result.expect("listed");
    assert_eq!(second["next_page"], 3);
    assert_eq!(second["repositories"][0]["full_name"], "octo-org/docs");
    let last = s.run("list_repositories", json!({ "per_page": 2, "page": 4 })).await;
    let last = last.result.expect("listed");
    assert_eq!(last["next_page"], Value::Null, "no next page on the last one");
    assert_eq!(last["repositories"].as_array().expect("array").len(), 1);

    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({
            "login": "octocat",
            "id": 583231,
            "name": "The Octocat",
            "url": "https://github.com/octocat",
            "scopes": ["repo", "read:org"],
        })
    );

    let requests = s.github.requests();
    let calls: Vec<(&str, &str, Option<&str>)> = requests.iter().map(call).collect();
    assert_eq!(
        calls,
        [
            (
                "GET",
                "/user/repos",
                Some("visibility=all&affiliation=owner%2Corganization_member&sort=updated&direction=desc&per_page=2")
            ),
            ("GET", "/user/repos", Some("per_page=2&page=2")),
            ("GET", "/user/repos", Some("per_page=2&page=4")),
            ("GET", "/user", None),
        ]
    );
    s.assert_github_headers_and_token_only_in_authorization();
}

#[tokio::test]
async fn names_that_could_leave_their_path_segment_are_refused_before_any_request() {
    let s = setup(TOKEN).await;
    // The schema's character sets refuse separators, encodings and queries outright.
    for (owner, repo) in [
        ("octocat/../../user", "x"),
        ("octocat", "Hello-World/issues"),
        ("octocat", "x%2F..%2Fuser"),
        ("octocat", "x?page=2"),
        ("-octocat", "x"),
        ("octocat", ""),
    ] {
        let out = s
            .run("create_issue", json!({ "owner": owner, "repo": repo, "title": "t" }))
            .await;
        assert!(
            matches!(out.result, Err(CallError::InvalidInput { .. })),
            "{owner}/{repo}: {:?}",
            out.result
        );
    }
    // `.` and `..` fit the repository character set but would walk the path: the connector
    // refuses them itself.
    for repo in [".", ".."] {
        let (code, message, retryable) = connector_error(
            s.run(
                "comment_on_issue",
                json!({ "owner": "octocat", "repo": repo, "issue_number": 1, "body": "hi" }),
            )
            .await,
        );
        assert_eq!((code.as_str(), retryable), ("invalid_input", false), "{repo}");
        assert!(message.contains("`repo`"), "{message}");
    }
    // A blank title is refused too (GitHub would answer 422).
    let (code, _, _) = connector_error(
        s.run(
            "create_issue",
            json!({ "owner": "octocat", "repo": "Hello-World", "title": "   " }),
        )
        .await,
    );
    assert_eq!(code, "invalid_input");
    assert!(s.github.requests().is_empty(), "{:?}", s.github.requests());
}

#[tokio::test]
async fn github_errors_map_to_stable_codes() {
    let s = setup(TOKEN).await;
    let issue = |repo: &str| json!({ "owner": "octocat", "repo": repo, "title": "t" });

    let (code, message, retryable) = connector_error(s.run("create_issue", issue("exhausted")).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    assert!(
        message.contains("API rate limit exceeded") && message.contains("2025-01-01T00:00:00Z"),
        "the reset time is in the message: {message}"
    );
    let (code, message, retryable) = connector_error(s.run("create_issue", issue("secondary")).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    assert!(message.contains("retry after 60 s"), "{message}");
    let (code, message, retryable) = connector_error(s.run("create_issue", issue("busy")).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    assert!(message.contains("retry after 30 s"), "{message}");

    let (code, message, retryable) = connector_error(s.run("create_issue", issue("strict")).await);
    assert_eq!((code.as_str(), retryable), ("validation_failed", false));
    assert!(
        message.contains("Validation Failed")
            && message.contains("Issue.title missing_field")
            && message.contains("Issue.assignees invalid"),
        "every refused field is named: {message}"
    );
    let (code, message, retryable) = connector_error(s.run("create_issue", issue("missing")).await);
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    assert!(
        message.contains("Not Found") && message.contains("docs.github.com"),
        "{message}"
    );
    let (code, _, retryable) = connector_error(
        s.run(
            "comment_on_issue",
            json!({ "owner": "octocat", "repo": "Hello-World", "issue_number": 404, "body": "hi" }),
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    let (code, message, retryable) = connector_error(s.run("create_issue", issue("readonly")).await);
    assert_eq!((code.as_str(), retryable), ("forbidden", false));
    assert!(message.contains("Resource not accessible"), "{message}");
    let (code, _, retryable) = connector_error(s.run("create_issue", issue("no-issues")).await);
    assert_eq!((code.as_str(), retryable), ("gone", false));
    let (code, _, retryable) = connector_error(s.run("create_issue", issue("down")).await);
    assert_eq!((code.as_str(), retryable), ("upstream_error", true));

    // A token GitHub refuses is an auth failure: the connection's status flips on it.
    let s = setup("github_pat_revoked000000000000000000").await;
    let (code, message, retryable) = connector_error(s.run("list_repositories", json!({})).await);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));
    assert!(message.contains("Bad credentials"), "{message}");
    assert!(nexum_host::connections::calls::AUTH_FAILURE_CODES.contains(&code.as_str()));
}

#[test]
fn the_manifest_declares_github_sign_in_and_webhooks() {
    let manifest = connector_manifest("github");
    assert_eq!(manifest.webhooks.as_ref().map(|w| w.scheme.as_str()), Some("github"));
    assert!(matches!(
        manifest.auth_scheme("token").expect("token scheme").kind,
        nexum_manifest::AuthKind::Bearer
    ));
    let (scheme, endpoints) = oauth2_scheme(&manifest, "oauth");
    assert!(endpoints.pkce);
    assert_eq!(endpoints.token_auth_method, nexum_manifest::TokenAuthMethod::Body);
    assert_eq!(endpoints.scopes, ["repo"]);
    let variables = manifest.resolve_variables(&BTreeMap::new()).expect("defaults");
    let authorize = endpoints
        .authorization_url_for(&variables)
        .expect("url")
        .expect("authorization-code flow");
    assert_eq!(authorize.as_str(), "https://github.com/login/oauth/authorize");
    let token_url = nexum_host::oauth::token_url(&manifest, scheme, &variables).expect("bound token URL");
    assert_eq!(token_url.as_str(), "https://github.com/login/oauth/access_token");
    let hosts = manifest.resolve_allowed_hosts(&variables).expect("hosts");
    assert_eq!(hosts.len(), 1, "the connector reaches the API only: {hosts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_with_github_and_uses_the_token() {
    use nexum_tests::app::TestApp;
    use nexum_tests::consent::{open_consent_page, register_oauth_app, start_flow};

    let github = github().await;
    let app = TestApp::sqlite().await;
    let installed = app.install(&app.key, "github").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    register_oauth_app(&app, &app.key, "github", CLIENT_ID, CLIENT_SECRET).await;
    let origin = github.origin();
    let (flow_id, link) = start_flow(
        &app,
        &app.key,
        json!({
            "connector": "github",
            "name": "Ada on GitHub",
            "variables": { "api_base": origin, "oauth_base": origin },
        }),
    )
    .await;

    let consent = open_consent_page(&link).await;
    assert_eq!(consent.url.path(), "/login/oauth/authorize");
    let q = &consent.query;
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["scope"], "repo");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/api/v1/oauth/callback", app.base));
    let (connection, flow) = consent.approve(&app, &app.key, &flow_id).await;

    let listed = app
        .post(
            &app.key,
            &format!("/api/v1/connections/{connection}/actions/list_repositories"),
            json!({ "per_page": 2 }),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["output"]["next_page"], 2);

    let requests = github.requests();
    let exchanges: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.path == "/login/oauth/access_token")
        .collect();
    assert_eq!(exchanges.len(), 1);
    // GitHub answers JSON only when asked; the client secret goes in the form body.
    assert_eq!(exchanges[0].header("accept"), Some("application/json"));
    assert!(exchanges[0].header("authorization").is_none());
    let api: Vec<&Recorded> = requests.iter().filter(|r| r.path == "/user/repos").collect();
    assert_eq!(api.len(), 1);
    assert_eq!(
        api[0].header("authorization"),
        Some(format!("Bearer {ISSUED_TOKEN}").as_str())
    );
    for r in &requests {
        assert!(
            !r.everything_but("authorization").contains(ISSUED_TOKEN),
            "the access token left Authorization: {r:?}"
        );
        if r.path != "/login/oauth/access_token" {
            assert!(
                !r.everything_but("").contains(CLIENT_SECRET),
                "the client secret reached {}: {r:?}",
                r.path
            );
        }
    }
    for text in [listed.body.to_string(), flow.body.to_string()] {
        assert!(!text.contains(ISSUED_TOKEN) && !text.contains(CLIENT_SECRET), "{text}");
    }
    app.shutdown().await;
}
