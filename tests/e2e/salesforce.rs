//! The Salesforce connector against a fake org and a fake Salesforce login: the exact REST
//! requests of every action (SOQL in `q`, paging by `nextRecordsUrl` on the same instance,
//! JSON bodies of creates and updates); inputs that could leave their path segment or the
//! instance refused; Salesforce's error arrays under stable codes; no action before sign-in
//! set `instance_url`; and, through a server, the sign-in that takes the org's `instance_url`
//! from the token response and binds the token to it.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector};
use nexum_tests::consent::{PkceGrant, connector_manifest, consent_query, oauth2_scheme};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The access token the tests connect with (Salesforce session ids carry a `!`).
const TOKEN: &str = "00D5g000004ABCD!AQ4AQFakeSalesforceSessionTokenX1";
/// The access token the fake login issues for the authorization code.
const ISSUED_TOKEN: &str = "00D5g000004ABCD!AQ4AQIssuedByTheFakeLogin41aa";
/// The access token the fake login issues on refresh.
const REFRESHED_TOKEN: &str = "00D5g000004ABCD!AQ4AQRefreshedByTheFakeLogin9be0";
/// The refresh token the fake login issues with the code.
const REFRESH_TOKEN: &str = "5Aep861FakeSalesforceRefreshTokenC0de";
/// The authorization code the fake consent page hands out.
const CODE: &str = "aPrxFakeSalesforceAuthorizationCode==";
/// The connected app's consumer key and secret.
const CLIENT_ID: &str = "3MVG9FakeConsumerKey.nexum";
const CLIENT_SECRET: &str = "FAKE0CONSUMER0SECRET0D1E";
/// The scopes, as the consent page must receive them.
const SCOPES: &str = "api refresh_token";

/// The query locator of the first page's `nextRecordsUrl`.
const NEXT: &str = "/services/data/v61.0/query/01gD0000002HU6KIAW-2000";
/// A record of the fake org, and a well-formed id it does not have.
const ACME: &str = "001D000000IRFmaIAH";
const NOBODY: &str = "001D000000IRFmaXXX";

fn authed(headers: &HeaderMap) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    [TOKEN, ISSUED_TOKEN, REFRESHED_TOKEN]
        .iter()
        .any(|token| given == Some(format!("Bearer {token}").as_str()))
}

/// Salesforce's error array.
fn errors(status: StatusCode, code: &str, message: &str, fields: &[&str]) -> Response {
    (
        status,
        axum::Json(json!([{ "message": message, "errorCode": code, "fields": fields }])),
    )
        .into_response()
}

fn account(id: &str, name: &str) -> Value {
    json!({
        "attributes": { "type": "Account", "url": format!("/services/data/v61.0/sobjects/Account/{id}") },
        "Id": id,
        "Name": name,
    })
}

/// The fake org's REST API under `/services/data/v61.0/`.
async fn org_api(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if !authed(&headers) {
        return errors(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
            &[],
        );
    }
    let not_found = || {
        errors(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            &[],
        )
    };
    let Some(rest) = uri.path().strip_prefix("/services/data/v61.0/") else {
        return not_found();
    };
    let query: HashMap<String, String> = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let soql = query.get("q").map(String::as_str).unwrap_or_default();
    let fields: Value = serde_json::from_slice(&body).unwrap_or_default();
    match (method.as_str(), rest) {
        ("GET", "") => axum::Json(json!({
            "query": "/services/data/v61.0/query",
            "queryAll": "/services/data/v61.0/queryAll",
            "sobjects": "/services/data/v61.0/sobjects",
            "limits": "/services/data/v61.0/limits",
        }))
        .into_response(),
        ("GET", "query") => match soql {
            "SELECT Id, Name FROM Account ORDER BY Name" => axum::Json(json!({
                "totalSize": 3,
                "done": false,
                "nextRecordsUrl": NEXT,
                "records": [account(ACME, "Acme"), account("001D000000IRFmbIAH", "Globex")],
            }))
            .into_response(),
            "SELECT Id FROM Account WHERE Name = 'Nobody'" => {
                axum::Json(json!({ "totalSize": 0, "done": true, "records": [] })).into_response()
            }
            "SELECT Id FROM Lead" => axum::Json(json!({
                "totalSize": 5000,
                "done": false,
                "nextRecordsUrl": "https://evil.example.com/services/data/v61.0/query/x",
                "records": [],
            }))
            .into_response(),
            "SELECT Bogus__c FROM Account" => errors(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                "\nSELECT Bogus__c FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Bogus__c' on entity 'Account'.",
                &[],
            ),
            _ => errors(
                StatusCode::BAD_REQUEST,
                "MALFORMED_QUERY",
                "unexpected token: SELEC",
                &[],
            ),
        },
        ("GET", "queryAll") => axum::Json(json!({
            "totalSize": 1,
            "done": true,
            "records": [{ "attributes": { "type": "Account", "url": "/services/data/v61.0/sobjects/Account/001D000000IRFmcIAH" }, "Id": "001D000000IRFmcIAH", "IsDeleted": true }],
        }))
        .into_response(),
        ("GET", "query/01gD0000002HU6KIAW-2000") => axum::Json(json!({
            "totalSize": 3,
            "done": true,
            "records": [account("001D000000IRFmdIAH", "Initech")],
        }))
        .into_response(),
        ("POST", "sobjects/Account/" | "sobjects/My_Object__c/") => {
            if fields.get("Name").is_none() {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [Name]",
                    &["Name"],
                );
            }
            if fields["Name"] == "Over limit" {
                return errors(
                    StatusCode::FORBIDDEN,
                    "REQUEST_LIMIT_EXCEEDED",
                    "TotalRequests Limit exceeded.",
                    &[],
                );
            }
            (
                StatusCode::CREATED,
                axum::Json(json!({ "id": "001D000000IqhSLIAZ", "errors": [], "success": true })),
            )
                .into_response()
        }
        ("PATCH", path) => {
            let Some(id) = path.strip_prefix("sobjects/Account/") else {
                return not_found();
            };
            if id != ACME && id != &ACME[..15] {
                return not_found();
            }
            if fields.get("Bogus__c").is_some() {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    "No such column 'Bogus__c' on sobject of type Account",
                    &[],
                );
            }
            if fields["Name"] == "Locked" {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access to this record or 1 records: 001D000000IRFmaIAH",
                    &[],
                );
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(),
    }
}

/// A fake org (its REST API on any path) on an origin of its own, as an instance is.
async fn org() -> Fake {
    fakes::serve(Router::new().fallback(org_api)).await
}

/// A host with the Salesforce connector and one connection holding `token`, on a fake org;
/// `login_base` is a second fake that must never be called.
struct Setup {
    host: TestHost,
    org: Fake,
    login: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

async fn setup(token: &str) -> Setup {
    let org = org().await;
    let login = fakes::serve(Router::new()).await;
    let (host, connector, connection) = TestHost::connected(
        "salesforce",
        &[("instance_url", &org.origin()), ("login_base", &login.origin())],
        &[("oauth", &[("access_token", token)])],
    );
    Setup {
        host,
        org,
        login,
        connector,
        connection,
    }
}

impl Setup {
    async fn run(&self, action: &str, input: Value) -> CallOutcome {
        self.run_keyed(action, input, None).await
    }

    /// Run `action` under idempotency key `key`.
    async fn run_keyed(&self, action: &str, input: Value, key: Option<&str>) -> CallOutcome {
        self.host
            .runtime
            .execute_keyed(
                &self.connector,
                self.connection.clone(),
                Invocation::Action {
                    name: action.into(),
                    input,
                },
                key.map(str::to_string),
            )
            .await
    }

    /// Every request carried the token in `Authorization: Bearer` and nowhere else, and the
    /// login origin was never called.
    fn assert_token_only_in_authorization(&self) {
        for r in self.org.requests() {
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

#[tokio::test]
async fn query_pages_through_next_records_url() {
    let s = setup(TOKEN).await;
    let soql = "SELECT Id, Name FROM Account ORDER BY Name";
    let first = s.run("query", json!({ "soql": soql, "batch_size": 500 })).await;
    assert_eq!(
        first.result.expect("queried"),
        json!({
            "total_size": 3,
            "done": false,
            "records": [account(ACME, "Acme"), account("001D000000IRFmbIAH", "Globex")],
            "next": NEXT,
        })
    );
    let second = s.run("query", json!({ "next": NEXT })).await;
    assert_eq!(
        second.result.expect("queried"),
        json!({ "total_size": 3, "done": true, "records": [account("001D000000IRFmdIAH", "Initech")], "next": null })
    );
    let deleted = s
        .run(
            "query",
            json!({ "soql": "SELECT Id, IsDeleted FROM Account", "include_deleted": true }),
        )
        .await;
    let deleted = deleted.result.expect("queried");
    assert_eq!(
        (&deleted["total_size"], &deleted["records"][0]["IsDeleted"]),
        (&json!(1), &json!(true))
    );
    let empty = s
        .run(
            "query",
            json!({ "soql": "  SELECT Id FROM Account WHERE Name = 'Nobody' " }),
        )
        .await;
    assert_eq!(
        empty.result.expect("queried"),
        json!({ "total_size": 0, "done": true, "records": [], "next": null })
    );

    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({
            "instance_url": s.org.origin(),
            "api_version": "v61.0",
            "resources": ["limits", "query", "queryAll", "sobjects"],
        })
    );

    let requests = s.org.requests();
    let calls: Vec<(&str, &str)> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(
        calls,
        [
            ("GET", "/services/data/v61.0/query"),
            ("GET", NEXT),
            ("GET", "/services/data/v61.0/queryAll"),
            ("GET", "/services/data/v61.0/query"),
            ("GET", "/services/data/v61.0/"),
        ]
    );
    assert_eq!(query_pairs(&requests[0]), [("q".to_string(), soql.to_string())]);
    assert_eq!(requests[0].header("sforce-query-options"), Some("batchSize=500"));
    assert_eq!(requests[1].query, None, "the locator is the whole next page");
    assert_eq!(requests[1].header("sforce-query-options"), None);
    assert_eq!(
        query_pairs(&requests[2]),
        [("q".to_string(), "SELECT Id, IsDeleted FROM Account".to_string())]
    );
    assert_eq!(
        query_pairs(&requests[3]),
        [(
            "q".to_string(),
            "SELECT Id FROM Account WHERE Name = 'Nobody'".to_string()
        )],
        "trimmed"
    );
    assert_eq!(requests[4].query, None);
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn create_and_update_send_the_fields_as_json() {
    let s = setup(TOKEN).await;
    let fields = json!({ "Name": "Acme", "Industry": "Energy", "NumberOfEmployees": 42, "Website": null, "ns__Tier__c": "Gold" });
    let created = s
        .run_keyed(
            "create_record",
            json!({ "sobject": "Account", "fields": fields }),
            Some("exe_1:create"),
        )
        .await;
    assert_eq!(
        created.result.expect("created"),
        json!({ "id": "001D000000IqhSLIAZ", "success": true })
    );
    let custom = s
        .run(
            "create_record",
            json!({ "sobject": "My_Object__c", "fields": { "Name": "x" } }),
        )
        .await;
    assert_eq!(custom.result.expect("created")["id"], "001D000000IqhSLIAZ");
    let updated = s
        .run(
            "update_record",
            json!({ "sobject": "Account", "id": ACME, "fields": { "Industry": "Banking", "Website": null } }),
        )
        .await;
    assert_eq!(updated.result.expect("updated"), json!({ "id": ACME, "success": true }));
    let short_id = &ACME[..15];
    let updated = s
        .run(
            "update_record",
            json!({ "sobject": "Account", "id": short_id, "fields": { "Name": "Acme Corp" } }),
        )
        .await;
    assert_eq!(
        updated.result.expect("updated"),
        json!({ "id": short_id, "success": true })
    );

    let requests = s.org.requests();
    let calls: Vec<(&str, &str)> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    let patch_long = format!("/services/data/v61.0/sobjects/Account/{ACME}");
    let patch_short = format!("/services/data/v61.0/sobjects/Account/{short_id}");
    assert_eq!(
        calls,
        [
            ("POST", "/services/data/v61.0/sobjects/Account/"),
            ("POST", "/services/data/v61.0/sobjects/My_Object__c/"),
            ("PATCH", patch_long.as_str()),
            ("PATCH", patch_short.as_str()),
        ]
    );
    for r in &requests {
        assert_eq!(r.query, None);
        assert_eq!(r.header("content-type"), Some("application/json"));
        // Salesforce has no idempotency header: the key goes nowhere.
        assert!(!r.everything_but("").contains("exe_1:create"), "{r:?}");
    }
    assert_eq!(requests[0].json(), fields);
    assert_eq!(requests[1].json(), json!({ "Name": "x" }));
    assert_eq!(requests[2].json(), json!({ "Industry": "Banking", "Website": null }));
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn salesforce_errors_map_to_stable_codes() {
    let s = setup(TOKEN).await;

    let (code, message, retryable) = connector_error(
        s.run(
            "create_record",
            json!({ "sobject": "Account", "fields": { "Industry": "Energy" } }),
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("required_field_missing", false));
    assert!(
        message.contains("REQUIRED_FIELD_MISSING") && message.contains("(fields: Name)"),
        "{message}"
    );
    let (code, message, retryable) =
        connector_error(s.run("query", json!({ "soql": "SELECT Bogus__c FROM Account" })).await);
    assert_eq!((code.as_str(), retryable), ("invalid_field", false));
    assert!(message.contains("No such column 'Bogus__c'"), "{message}");
    let (code, _, _) = connector_error(s.run("query", json!({ "soql": "SELEC Id" })).await);
    assert_eq!(code, "malformed_query");
    let (code, message, retryable) = connector_error(
        s.run(
            "create_record",
            json!({ "sobject": "Account", "fields": { "Name": "Over limit" } }),
        )
        .await,
    );
    assert_eq!(
        (code.as_str(), retryable),
        ("rate_limited", true),
        "the org's API limit"
    );
    assert!(message.contains("REQUEST_LIMIT_EXCEEDED"), "{message}");
    let (code, _, retryable) = connector_error(
        s.run(
            "update_record",
            json!({ "sobject": "Account", "id": NOBODY, "fields": { "Name": "x" } }),
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    let (code, _, retryable) = connector_error(
        s.run(
            "update_record",
            json!({ "sobject": "Account", "id": ACME, "fields": { "Name": "Locked" } }),
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("unable_to_lock_row", true));
    let (code, _, _) = connector_error(
        s.run(
            "update_record",
            json!({ "sobject": "Account", "id": ACME, "fields": { "Bogus__c": 1 } }),
        )
        .await,
    );
    assert_eq!(code, "invalid_field");
    // A nextRecordsUrl off the instance is not handed back to be followed.
    let (code, _, _) = connector_error(s.run("query", json!({ "soql": "SELECT Id FROM Lead" })).await);
    assert_eq!(code, "unexpected_response");

    // Refused before any request, by the connector: both or neither of soql and next, a next
    // that climbs out of /services/data/.
    let before = s.org.requests().len();
    for input in [
        json!({ "soql": "SELECT Id FROM Account", "next": NEXT }),
        json!({}),
        json!({ "soql": "   " }),
        json!({ "next": "/services/data/v61.0/../../../secur/frontdoor.jsp" }),
        json!({ "next": "/services/data//evil" }),
    ] {
        let (code, _, _) = connector_error(s.run("query", input.clone()).await);
        assert_eq!(code, "invalid_input", "{input}");
    }
    // … and by the input schema: another host, names and ids that would change the path.
    for (action, input) in [
        (
            "query",
            json!({ "next": "https://evil.example.com/services/data/v61.0/query/x" }),
        ),
        ("query", json!({ "next": "/services/data/v61.0/query?q=x" })),
        (
            "create_record",
            json!({ "sobject": "Account/../User", "fields": { "Name": "x" } }),
        ),
        ("create_record", json!({ "sobject": "Account", "fields": {} })),
        (
            "create_record",
            json!({ "sobject": "Account", "fields": { "Bad-Name": 1 } }),
        ),
        (
            "update_record",
            json!({ "sobject": "Account", "id": "001D0000", "fields": { "Name": "x" } }),
        ),
        (
            "update_record",
            json!({ "sobject": "Account", "id": "001D000000IRFma/AH", "fields": { "Name": "x" } }),
        ),
    ] {
        let out = s.run(action, input.clone()).await;
        assert!(
            matches!(out.result, Err(CallError::InvalidInput { .. })),
            "{input}: {:?}",
            out.result
        );
    }
    assert_eq!(s.org.requests().len(), before);

    // A session Salesforce refuses is an auth failure: the connection's status flips on it.
    let s = setup("00D5g000004ABCD!AQ4AQExpiredSessionToken0000").await;
    let (code, message, retryable) = connector_error(s.run("query", json!({ "soql": "SELECT Id FROM Account" })).await);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));
    assert!(message.contains("INVALID_SESSION_ID"), "{message}");
    assert!(nexum_host::connections::calls::AUTH_FAILURE_CODES.contains(&code.as_str()));
}

#[tokio::test]
async fn nothing_runs_before_sign_in_sets_the_instance_url() {
    let org = org().await;
    let login = fakes::serve(Router::new()).await;
    // No instance_url: the manifest's placeholder.
    let (host, connector, connection) = TestHost::connected(
        "salesforce",
        &[("login_base", &login.origin())],
        &[("oauth", &[("access_token", TOKEN)])],
    );
    let (code, message, _) = connector_error(
        host.run(
            &connector,
            &connection,
            "query",
            json!({ "soql": "SELECT Id FROM Account" }),
        )
        .await,
    );
    assert_eq!(code, "invalid_configuration");
    assert!(
        message.contains("instance_url") && message.contains("sign"),
        "{message}"
    );
    let checked = host
        .runtime
        .execute(&connector, connection.clone(), Invocation::TestConnection)
        .await;
    assert!(
        matches!(&checked.result, Err(CallError::Connector { code, .. }) if code == "invalid_configuration"),
        "{:?}",
        checked.result
    );

    // A malformed API version is refused before anything is sent, too.
    let broken = host.connect(
        &connector,
        "conn_bad_version",
        &[("instance_url", &org.origin()), ("api_version", "61")],
        &[("oauth", &[("access_token", TOKEN)])],
    );
    let (code, message, _) = connector_error(
        host.run(
            &connector,
            &broken,
            "query",
            json!({ "soql": "SELECT Id FROM Account" }),
        )
        .await,
    );
    assert_eq!(code, "invalid_configuration");
    assert!(message.contains("api_version"), "{message}");
    assert!(org.requests().is_empty() && login.requests().is_empty());
}

#[test]
fn the_manifest_takes_instance_url_from_the_token_response() {
    let manifest = connector_manifest("salesforce");
    let (scheme, endpoints) = oauth2_scheme(&manifest, "oauth");
    assert!(endpoints.pkce);
    assert_eq!(endpoints.token_auth_method, nexum_manifest::TokenAuthMethod::Body);
    assert_eq!(endpoints.joined_scopes(&endpoints.scopes), SCOPES);
    assert_eq!(
        endpoints.token_response_variables,
        BTreeMap::from([("instance_url".to_string(), "instance_url".to_string())])
    );
    let variables = manifest.resolve_variables(&BTreeMap::new()).expect("defaults");
    assert!(
        variables["instance_url"].ends_with(".invalid"),
        "a placeholder that never resolves: {variables:?}"
    );
    assert_eq!(variables["api_version"], "v61.0");
    let authorize = endpoints
        .authorization_url_for(&variables)
        .expect("url")
        .expect("authorization-code flow");
    assert_eq!(
        authorize.as_str(),
        "https://login.salesforce.com/services/oauth2/authorize"
    );
    let token_url = nexum_host::oauth::token_url(&manifest, scheme, &variables).expect("bound token URL");
    assert_eq!(token_url.as_str(), "https://login.salesforce.com/services/oauth2/token");

    // A sandbox signs in at test.salesforce.com.
    let sandbox = manifest
        .resolve_variables(&BTreeMap::from([(
            "login_base".to_string(),
            "https://test.salesforce.com".to_string(),
        )]))
        .expect("sandbox");
    let token_url = nexum_host::oauth::token_url(&manifest, scheme, &sandbox).expect("bound token URL");
    assert_eq!(token_url.as_str(), "https://test.salesforce.com/services/oauth2/token");

    let (q, pkce) = consent_query(endpoints, &authorize, CLIENT_ID);
    assert!(pkce, "PKCE");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["response_type"], "code");
}

/// A fake Salesforce login (consent page and token endpoint) whose token answers name
/// `instance_url` as the org's instance, as Salesforce's do on the code exchange and on
/// every refresh. The consent page approves at once and remembers the PKCE challenge; the
/// token endpoint wants the consumer secret in the body and the matching verifier.
async fn login(instance_url: String) -> Fake {
    let grant = PkceGrant::default();
    let consent_page = grant.consent_page(CODE);
    let token = move |headers: HeaderMap, body: Bytes| {
        let grant = grant.clone();
        let instance_url = instance_url.clone();
        async move {
            let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
            let field = |name: &str| form.get(name).map(String::as_str);
            let oauth_error = |error: &str, description: &str| {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({ "error": error, "error_description": description })),
                )
                    .into_response()
            };
            if headers.contains_key(header::AUTHORIZATION)
                || field("client_id") != Some(CLIENT_ID)
                || field("client_secret") != Some(CLIENT_SECRET)
            {
                return oauth_error("invalid_client", "invalid client credentials");
            }
            let access_token = match field("grant_type") {
                Some("authorization_code") => {
                    if !grant.redeem(&form, CODE) {
                        return oauth_error("invalid_grant", "authentication failure");
                    }
                    ISSUED_TOKEN
                }
                Some("refresh_token") if field("refresh_token") == Some(REFRESH_TOKEN) => REFRESHED_TOKEN,
                _ => return oauth_error("invalid_grant", "expired access/refresh token"),
            };
            let mut answer = json!({
                "access_token": access_token,
                "signature": "ZmFrZS1zaWduYXR1cmU=",
                "scope": SCOPES,
                "instance_url": instance_url,
                "id": "https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000AbCdEAAV",
                "token_type": "Bearer",
                "issued_at": "1718013600000",
            });
            // Salesforce issues the refresh token with the code only.
            if access_token == ISSUED_TOKEN {
                answer["refresh_token"] = json!(REFRESH_TOKEN);
            }
            axum::Json(answer).into_response()
        }
    };
    fakes::serve(
        Router::new()
            .route("/services/oauth2/authorize", consent_page)
            .route("/services/oauth2/token", post(token)),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_and_takes_the_instance_url_from_the_token_response() {
    use nexum_tests::app::TestApp;
    use nexum_tests::consent::{open_consent_page, register_oauth_app, start_flow, token_form};

    let org = org().await;
    let login = login(org.origin()).await;
    let app = TestApp::sqlite().await;
    let installed = app.install(&app.key, "salesforce").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    register_oauth_app(&app, &app.key, "salesforce", CLIENT_ID, CLIENT_SECRET).await;
    let (flow_id, link) = start_flow(
        &app,
        &app.key,
        json!({ "connector": "salesforce", "name": "Acme", "variables": { "login_base": login.origin() } }),
    )
    .await;

    let consent = open_consent_page(&link).await;
    assert_eq!(
        consent.url.origin(),
        url::Url::parse(&login.origin()).expect("origin").origin()
    );
    assert_eq!(consent.url.path(), "/services/oauth2/authorize");
    let q = &consent.query;
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["code_challenge_method"], "S256");
    let (connection, _flow) = consent.approve(&app, &app.key, &flow_id).await;

    // The org's host came from the token response; nobody typed it.
    let shown = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(
        shown.body["variables"]["instance_url"],
        org.origin(),
        "{:?}",
        shown.body
    );
    assert_eq!(shown.body["variables"]["login_base"], login.origin());

    let query = format!("/api/v1/connections/{connection}/actions/query");
    let listed = app
        .post(
            &app.key,
            &query,
            json!({ "soql": "SELECT Id, Name FROM Account ORDER BY Name" }),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["output"]["next"], NEXT);
    let forced = app.force_refresh(&app.key, &connection).await;
    assert_eq!(forced.status, StatusCode::OK, "{:?}", forced.body);
    assert_eq!(forced.body["outcome"], "refreshed");
    let update = format!("/api/v1/connections/{connection}/actions/update_record");
    let updated = app
        .post(
            &app.key,
            &update,
            json!({ "sobject": "Account", "id": ACME, "fields": { "Name": "Acme Corp" } }),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.body["output"], json!({ "id": ACME, "success": true }));

    // The access tokens went to the instance only, in Authorization only; the consumer secret
    // and refresh token to the login origin only.
    let api = org.requests();
    assert_eq!(api.len(), 2);
    assert_eq!(
        api[0].header("authorization"),
        Some(format!("Bearer {ISSUED_TOKEN}").as_str())
    );
    assert_eq!(
        api[1].header("authorization"),
        Some(format!("Bearer {REFRESHED_TOKEN}").as_str())
    );
    for r in &api {
        let all = r.everything_but("authorization");
        for secret in [ISSUED_TOKEN, REFRESHED_TOKEN, REFRESH_TOKEN, CLIENT_SECRET] {
            assert!(
                !all.contains(secret),
                "a secret reached the instance outside Authorization: {r:?}"
            );
        }
    }
    let token_requests: Vec<Recorded> = login
        .requests()
        .into_iter()
        .filter(|r| r.path == "/services/oauth2/token")
        .collect();
    assert_eq!(token_requests.len(), 2);
    let exchange = token_form(&token_requests[0]);
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert!(exchange.contains_key("code_verifier"));
    let refresh = token_form(&token_requests[1]);
    assert_eq!(
        (refresh["grant_type"].as_str(), refresh["refresh_token"].as_str()),
        ("refresh_token", REFRESH_TOKEN)
    );
    for text in [listed.body.to_string(), forced.body.to_string(), shown.body.to_string()] {
        assert!(
            !text.contains(ISSUED_TOKEN) && !text.contains(REFRESH_TOKEN) && !text.contains(CLIENT_SECRET),
            "{text}"
        );
    }
    app.shutdown().await;
}
