//! The HubSpot connector against a fake HubSpot: the exact CRM v3 requests of every action
//! (paths, `idProperty=email` with the address percent-encoded, JSON bodies with the
//! deal-to-contact associations and search filters), paging through `paging.next.after`,
//! the token only in `Authorization: Bearer`, ids and emails that could leave their path
//! segment refused before any request, HubSpot's errors under stable codes, the manifest's
//! OAuth declarations, and a sign-in through a server (client secret in the form body, PKCE)
//! followed by a refresh, as HubSpot's 30-minute tokens need.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector};
use nexum_tests::consent::{PkceGrant, connector_manifest, oauth2_scheme};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The private-app token the tests connect with.
const TOKEN: &str = "pat-na1-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
/// The access token the fake issues for the authorization code.
const ISSUED_TOKEN: &str = "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4";
/// The access token the fake issues on refresh.
const REFRESHED_TOKEN: &str = "CKzQ5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKRefreshedByTheFakeHubSpot";
/// The refresh token the fake issues.
const REFRESH_TOKEN: &str = "6f18f21e-a743-4509-b7fd-1a5e632fffa1";
/// The authorization code the fake consent page hands out.
const CODE: &str = "bcf33c57-dd7a-4bdb-a7a5-54e0f6fdc6e0";
/// The public app's client id and secret.
const CLIENT_ID: &str = "5fd3fbe7-7c2c-4d0b-9f24-0b0dbaa4b3d0";
const CLIENT_SECRET: &str = "e6cbe5e1-fake-hubspot-client-secret";
/// The scopes, as the consent page must receive them.
const SCOPES: &str = "crm.objects.contacts.read crm.objects.contacts.write crm.objects.deals.write";
/// The correlation id of every fake error.
const CORRELATION: &str = "aeb5f871-7f07-4993-9211-075dc63e7cbf";
/// Every object's creation and modification time.
const STAMP: &str = "2025-03-04T12:00:00.000Z";

fn authed(headers: &HeaderMap) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    [TOKEN, ISSUED_TOKEN, REFRESHED_TOKEN]
        .iter()
        .any(|token| given == Some(format!("Bearer {token}").as_str()))
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// HubSpot's JSON error.
fn hubspot_error(status: StatusCode, category: &str, message: &str) -> Response {
    let body = json!({ "status": "error", "message": message, "correlationId": CORRELATION, "category": category });
    reply(status, body)
}

fn unauthenticated() -> Response {
    hubspot_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
}

/// A CRM object as HubSpot answers it: the sent properties plus HubSpot's own.
fn object(id: &str, sent: &Value) -> Value {
    let mut properties = sent.clone();
    properties["hs_object_id"] = json!(id);
    properties["createdate"] = json!(STAMP);
    properties["lastmodifieddate"] = json!(STAMP);
    json!({ "id": id, "properties": properties, "createdAt": STAMP, "updatedAt": STAMP, "archived": false })
}

/// What the connector outputs for [`object`]`(id, sent)`.
fn output(id: &str, sent: &Value) -> Value {
    json!({ "id": id, "properties": object(id, sent)["properties"], "created_at": STAMP, "updated_at": STAMP, "archived": false })
}

/// `POST /crm/v3/objects/contacts`: the email (or a property) picks an error.
async fn create_contact(headers: HeaderMap, body: Bytes) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    let properties = &sent["properties"];
    if properties.get("favorite_color").is_some() {
        let body = json!({
            "status": "error", "correlationId": CORRELATION, "category": "VALIDATION_ERROR",
            "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"favorite_color\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"favorite_color\"}]",
            "errors": [{ "message": "Property \"favorite_color\" does not exist", "code": "PROPERTY_DOESNT_EXIST", "context": { "propertyName": ["favorite_color"] } }],
        });
        return reply(StatusCode::BAD_REQUEST, body);
    }
    match properties["email"].as_str() {
        Some("taken@example.com") => {
            return hubspot_error(
                StatusCode::CONFLICT,
                "CONFLICT",
                "Contact already exists. Existing ID: 12345",
            );
        }
        Some("busy@example.com") => {
            let body = json!({
                "status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
                "correlationId": CORRELATION, "policyName": "SECONDLY", "groupName": "publicapi:private-app:4711",
            });
            return reply(StatusCode::TOO_MANY_REQUESTS, body);
        }
        Some("down@example.com") => {
            return (StatusCode::BAD_GATEWAY, "<html><body>502 Bad Gateway</body></html>").into_response();
        }
        _ => {}
    }
    reply(StatusCode::CREATED, object("151", properties))
}

/// `PATCH /crm/v3/objects/contacts/{id}`: contact 151, also known as
/// `ada.lovelace+crm@example.com`.
async fn update_contact(
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    let known = match q.get("idProperty").map(String::as_str) {
        Some("email") => id == "ada.lovelace+crm@example.com",
        _ => id == "151",
    };
    if !known {
        return hubspot_error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "resource not found");
    }
    axum::Json(object("151", &sent["properties"])).into_response()
}

/// `POST /crm/v3/objects/contacts/search`: three contacts, two on the first page.
async fn search(headers: HeaderMap, body: Bytes) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    let page = match sent["after"].as_str() {
        None => json!({
            "total": 3,
            "results": [
                object("151", &json!({ "email": "ada@example.com", "firstname": "Ada" })),
                object("152", &json!({ "email": "grace@example.com", "firstname": "Grace" })),
            ],
            "paging": { "next": { "after": "2", "link": "?after=2" } },
        }),
        Some(_) => json!({
            "total": 3,
            "results": [object("153", &json!({ "email": "hedy@example.com", "firstname": "Hedy" }))],
        }),
    };
    axum::Json(page).into_response()
}

/// `GET /crm/v3/objects/contacts?limit=1`, with a private app's daily allowance.
async fn list_contacts(headers: HeaderMap) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    (
        [
            ("x-hubspot-ratelimit-daily", "250000"),
            ("x-hubspot-ratelimit-daily-remaining", "249987"),
        ],
        axum::Json(json!({
            "results": [object("151", &json!({ "email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace" }))],
            "paging": { "next": { "after": "152", "link": "https://api.hubapi.com/crm/v3/objects/contacts?after=152&limit=1" } },
        })),
    )
        .into_response()
}

/// `POST /crm/v3/objects/deals`: a deal named "No scope" meets a token without the deals scope.
async fn create_deal(headers: HeaderMap, body: Bytes) -> Response {
    if !authed(&headers) {
        return unauthenticated();
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    if sent["properties"]["dealname"] == "No scope" {
        let body = json!({
            "status": "error", "correlationId": CORRELATION, "category": "MISSING_SCOPES",
            "message": "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
            "errors": [{ "message": "One or more of the following scopes are required.", "context": { "requiredGranularScopes": ["crm.objects.deals.write"] } }],
            "links": { "scopes": "https://developers.hubspot.com/scopes" },
        });
        return reply(StatusCode::FORBIDDEN, body);
    }
    reply(StatusCode::CREATED, object("9001", &sent["properties"]))
}

/// A fake HubSpot: the CRM API, the consent page and the token endpoint on one origin. The
/// consent page approves at once and remembers the PKCE challenge; the token endpoint wants
/// the client secret in the form body (never in `Authorization`), the matching verifier, and
/// issues 30-minute tokens with a refresh token.
async fn hubspot() -> Fake {
    let grant = PkceGrant::default();
    let consent_page = grant.consent_page(CODE);
    let token = move |headers: HeaderMap, body: Bytes| {
        let grant = grant.clone();
        async move {
            let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
            let field = |name: &str| form.get(name).map(String::as_str);
            let refuse = |status: &str, error: &str, message: &str| {
                let body = json!({ "status": status, "message": message, "correlationId": CORRELATION, "error": error, "error_description": message });
                reply(StatusCode::BAD_REQUEST, body)
            };
            if headers.contains_key(header::AUTHORIZATION)
                || field("client_id") != Some(CLIENT_ID)
                || field("client_secret") != Some(CLIENT_SECRET)
            {
                return refuse("BAD_CLIENT_ID", "invalid_client", "bad client credentials");
            }
            let access_token = match field("grant_type") {
                Some("authorization_code") => {
                    if !grant.redeem(&form, CODE) {
                        return refuse("BAD_AUTH_CODE", "invalid_grant", "missing or unknown auth code");
                    }
                    ISSUED_TOKEN
                }
                Some("refresh_token") if field("refresh_token") == Some(REFRESH_TOKEN) => REFRESHED_TOKEN,
                _ => return refuse("BAD_REFRESH_TOKEN", "invalid_grant", "missing or unknown refresh token"),
            };
            let tokens = json!({ "token_type": "bearer", "refresh_token": REFRESH_TOKEN, "access_token": access_token, "expires_in": 1800 });
            axum::Json(tokens).into_response()
        }
    };
    let router = Router::new()
        .route("/oauth/authorize", consent_page)
        .route("/oauth/v1/token", post(token))
        .route("/crm/v3/objects/contacts", get(list_contacts).post(create_contact))
        .route("/crm/v3/objects/contacts/search", post(search))
        .route("/crm/v3/objects/contacts/{id}", patch(update_contact))
        .route("/crm/v3/objects/deals", post(create_deal));
    fakes::serve(router).await
}

/// A host with the HubSpot connector and one connection holding private-app token `token`,
/// pointed at a fake HubSpot.
struct Setup {
    host: TestHost,
    hubspot: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

async fn setup(token: &str) -> Setup {
    let hubspot = hubspot().await;
    let (host, connector, connection) = TestHost::connected(
        "hubspot",
        &[("api_base", &hubspot.origin()), ("oauth_base", &hubspot.origin())],
        &[("private_app", &[("token", token)])],
    );
    Setup {
        host,
        hubspot,
        connector,
        connection,
    }
}

impl Setup {
    async fn run(&self, action: &str, input: Value) -> CallOutcome {
        self.host.run(&self.connector, &self.connection, action, input).await
    }

    /// Every request asked for JSON and carried the token in `Authorization: Bearer`, and
    /// the token nowhere else.
    fn assert_token_only_in_authorization(&self) {
        let requests = self.hubspot.requests();
        assert!(!requests.is_empty());
        for r in requests {
            assert_eq!(r.header("accept"), Some("application/json"), "{r:?}");
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
async fn contacts_are_created_and_updated_by_id_or_email() {
    let s = setup(TOKEN).await;
    let input = json!({
        "email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace", "phone": "+44 20 7946 0958",
        "company": "Analytical Engines Ltd", "properties": { "jobtitle": "Mathematician", "lifecyclestage": "lead" },
    });
    let sent = json!({
        "email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace", "phone": "+44 20 7946 0958",
        "company": "Analytical Engines Ltd", "jobtitle": "Mathematician", "lifecyclestage": "lead",
    });
    let created = s.run("create_contact", input).await;
    assert_eq!(created.result.expect("created"), output("151", &sent));
    let input =
        json!({ "contact_id": "151", "phone": "+44 20 7946 0000", "properties": { "hs_lead_status": "IN_PROGRESS" } });
    let patch_by_id = json!({ "phone": "+44 20 7946 0000", "hs_lead_status": "IN_PROGRESS" });
    let updated = s.run("update_contact", input).await;
    assert_eq!(updated.result.expect("updated"), output("151", &patch_by_id));
    let input = json!({ "contact_id": "ada.lovelace+crm@example.com", "id_property": "email", "lastname": "King", "company": "" });
    let by_email = s.run("update_contact", input).await;
    assert_eq!(by_email.result.expect("updated")["id"], "151");

    let requests = s.hubspot.requests();
    let calls: Vec<(&str, &str, Option<&str>)> = requests.iter().map(call).collect();
    assert_eq!(
        calls,
        [
            ("POST", "/crm/v3/objects/contacts", None),
            ("PATCH", "/crm/v3/objects/contacts/151", None),
            // The address is one percent-encoded path segment.
            (
                "PATCH",
                "/crm/v3/objects/contacts/ada.lovelace%2Bcrm%40example.com",
                Some("idProperty=email")
            ),
        ]
    );
    for r in &requests {
        assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    }
    assert_eq!(requests[0].json(), json!({ "properties": sent }));
    assert_eq!(requests[1].json(), json!({ "properties": patch_by_id }));
    assert_eq!(
        requests[2].json(),
        json!({ "properties": { "lastname": "King", "company": "" } })
    );
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn deals_associate_contacts_and_search_pages_through_after() {
    let s = setup(TOKEN).await;
    let input = json!({
        "dealname": "Difference Engine No. 2", "amount": 1500.5, "dealstage": "appointmentscheduled",
        "pipeline": "default", "closedate": "2025-06-30T17:00:00Z", "contact_ids": ["151", "152"],
        "properties": { "hubspot_owner_id": "31151" },
    });
    let deal_properties = json!({
        "dealname": "Difference Engine No. 2", "amount": "1500.5", "dealstage": "appointmentscheduled",
        "pipeline": "default", "closedate": "2025-06-30T17:00:00Z", "hubspot_owner_id": "31151",
    });
    let deal = s.run("create_deal", input).await;
    assert_eq!(deal.result.expect("created"), output("9001", &deal_properties));
    let plain = s
        .run("create_deal", json!({ "dealname": "Plain", "amount": "99.90" }))
        .await;
    assert_eq!(plain.result.expect("created")["id"], "9001");

    let input = json!({
        "query": " ada ",
        "filters": [
            { "property": "lifecyclestage", "operator": "EQ", "value": "lead" },
            { "property": "createdate", "operator": "BETWEEN", "value": "2025-01-01T00:00:00Z", "high_value": "2025-12-31T23:59:59Z" },
        ],
        "sort": { "property": "createdate", "direction": "DESCENDING" }, "properties": ["email", "firstname"], "limit": 2,
    });
    let first = s.run("search_contacts", input).await;
    assert_eq!(
        first.result.expect("searched"),
        json!({
            "contacts": [
                output("151", &json!({ "email": "ada@example.com", "firstname": "Ada" })),
                output("152", &json!({ "email": "grace@example.com", "firstname": "Grace" })),
            ],
            "total": 3,
            "next_after": "2",
        })
    );
    let input = json!({
        "filter_groups": [
            { "filters": [{ "property": "email", "operator": "IN", "values": ["hedy@example.com", "ada@example.com"] }] },
            { "filters": [{ "property": "phone", "operator": "HAS_PROPERTY" }] },
        ],
        "after": "2",
    });
    let last = s.run("search_contacts", input).await;
    let last = last.result.expect("searched");
    assert_eq!(last["next_after"], Value::Null, "no next page on the last one");
    assert_eq!(last["contacts"][0]["id"], "153");

    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({ "contacts_readable": true, "sample_contact_id": "151", "daily_limit": 250000, "daily_remaining": 249987 })
    );

    let requests = s.hubspot.requests();
    let calls: Vec<(&str, &str, Option<&str>)> = requests.iter().map(call).collect();
    assert_eq!(
        calls,
        [
            ("POST", "/crm/v3/objects/deals", None),
            ("POST", "/crm/v3/objects/deals", None),
            ("POST", "/crm/v3/objects/contacts/search", None),
            ("POST", "/crm/v3/objects/contacts/search", None),
            ("GET", "/crm/v3/objects/contacts", Some("limit=1")),
        ]
    );
    let association = |id: &str| json!({ "to": { "id": id }, "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3 }] });
    assert_eq!(
        requests[0].json(),
        json!({ "properties": deal_properties, "associations": [association("151"), association("152")] })
    );
    assert_eq!(
        requests[1].json(),
        json!({ "properties": { "dealname": "Plain", "amount": "99.90" } }),
        "no associations without contacts"
    );
    assert_eq!(
        requests[2].json(),
        json!({
            "limit": 2,
            "query": "ada",
            "filterGroups": [{ "filters": [
                { "propertyName": "lifecyclestage", "operator": "EQ", "value": "lead" },
                { "propertyName": "createdate", "operator": "BETWEEN", "value": "2025-01-01T00:00:00Z", "highValue": "2025-12-31T23:59:59Z" },
            ] }],
            "sorts": [{ "propertyName": "createdate", "direction": "DESCENDING" }],
            "properties": ["email", "firstname"],
        })
    );
    assert_eq!(
        requests[3].json(),
        json!({
            "limit": 10,
            "filterGroups": [
                { "filters": [{ "propertyName": "email", "operator": "IN", "values": ["hedy@example.com", "ada@example.com"] }] },
                { "filters": [{ "propertyName": "phone", "operator": "HAS_PROPERTY" }] },
            ],
            "after": "2",
        })
    );
    s.assert_token_only_in_authorization();
}

#[tokio::test]
async fn ids_that_could_leave_their_path_segment_are_refused_before_any_request() {
    let s = setup(TOKEN).await;
    let by_id = |id: &str| json!({ "contact_id": id, "lastname": "x" });
    let by_email = |id: &str| json!({ "contact_id": id, "id_property": "email", "lastname": "x" });
    // The input schema refuses separators, encodings, queries and ids that are not digits.
    for (action, input) in [
        ("update_contact", by_id("151/../152")),
        ("update_contact", by_id("../151")),
        ("update_contact", by_id("151?archived=true")),
        ("update_contact", by_id("151%2F..")),
        ("update_contact", by_email("ada/../x@example.com")),
        ("create_deal", json!({ "dealname": "d", "contact_ids": ["151/.."] })),
        ("create_deal", json!({ "dealname": "d", "amount": "12 EUR" })),
        ("create_contact", json!({ "properties": { "bad-name": "x" } })),
        ("search_contacts", json!({ "limit": 101 })),
    ] {
        let out = s.run(action, input.clone()).await;
        assert!(
            matches!(out.result, Err(CallError::InvalidInput { .. })),
            "{input}: {:?}",
            out.result
        );
    }
    // What the schema lets through but the connector refuses itself: `..` in an address, an
    // address without id_property (or digits with it), nothing to set, a property given
    // twice, filters that do not fit their operator, a blank deal name.
    let filter = |f: Value| json!({ "filters": [f] });
    let twice = json!({ "email": "ada@example.com", "properties": { "email": "grace@example.com" } });
    for (action, input, needle) in [
        ("update_contact", by_email("ada..lovelace@example.com"), "`contact_id`"),
        ("update_contact", by_id("ada@example.com"), "id_property"),
        ("update_contact", by_email("151"), "email address"),
        (
            "update_contact",
            json!({ "contact_id": "151" }),
            "at least one property",
        ),
        ("create_contact", twice, "given twice"),
        (
            "search_contacts",
            filter(json!({ "property": "email", "operator": "IN", "value": "ada@example.com" })),
            "IN takes `values`",
        ),
        (
            "search_contacts",
            filter(json!({ "property": "amount", "operator": "BETWEEN", "value": 1 })),
            "high_value",
        ),
        ("create_deal", json!({ "dealname": "   " }), "`dealname`"),
    ] {
        let (code, message, retryable) = connector_error(s.run(action, input.clone()).await);
        assert_eq!((code.as_str(), retryable), ("invalid_input", false), "{input}");
        assert!(message.contains(needle), "{input}: {message}");
    }
    assert!(s.hubspot.requests().is_empty(), "{:?}", s.hubspot.requests());
}

#[tokio::test]
async fn hubspot_errors_map_to_stable_codes() {
    let s = setup(TOKEN).await;
    let contact = |email: &str| json!({ "email": email, "firstname": "Ada" });

    let (code, message, retryable) = connector_error(s.run("create_contact", contact("taken@example.com")).await);
    assert_eq!((code.as_str(), retryable), ("contact_exists", false));
    assert!(
        message.contains("existing contact id 12345") && message.contains(CORRELATION),
        "the existing contact and the correlation id are named: {message}"
    );
    let unknown = json!({ "email": "ada@example.com", "properties": { "favorite_color": "green" } });
    let (code, message, retryable) = connector_error(s.run("create_contact", unknown).await);
    assert_eq!((code.as_str(), retryable), ("bad_request", false));
    assert!(
        message.contains("VALIDATION_ERROR")
            && message.contains("PROPERTY_DOESNT_EXIST: Property \"favorite_color\" does not exist"),
        "{message}"
    );
    let (code, message, retryable) = connector_error(s.run("create_contact", contact("busy@example.com")).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true));
    assert!(message.contains("secondly limit.; limit SECONDLY"), "{message}");
    let (code, _, retryable) = connector_error(s.run("create_contact", contact("down@example.com")).await);
    assert_eq!((code.as_str(), retryable), ("upstream_error", true));
    let missing = json!({ "contact_id": "999", "lastname": "x" });
    let (code, message, retryable) = connector_error(s.run("update_contact", missing).await);
    assert_eq!((code.as_str(), retryable), ("not_found", false));
    assert!(message.contains("OBJECT_NOT_FOUND"), "{message}");
    let (code, message, retryable) = connector_error(s.run("create_deal", json!({ "dealname": "No scope" })).await);
    assert_eq!((code.as_str(), retryable), ("missing_scope", false));
    assert!(
        message.contains("MISSING_SCOPES") && message.contains("crm.objects.deals.write"),
        "the scope to add is named: {message}"
    );

    // A token HubSpot refuses is an auth failure: the connection's status flips on it.
    let s = setup("pat-na1-revoked0-0000-0000-0000-000000000000").await;
    let (code, message, retryable) = connector_error(s.run("search_contacts", json!({ "query": "ada" })).await);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));
    assert!(message.contains("Authentication credentials not found"), "{message}");
    assert!(nexum_host::connections::calls::AUTH_FAILURE_CODES.contains(&code.as_str()));
}

#[test]
fn the_manifest_declares_hubspot_sign_in() {
    let manifest = connector_manifest("hubspot");
    let private_app = manifest.auth_scheme("private_app").expect("private app scheme");
    assert!(matches!(private_app.kind, nexum_manifest::AuthKind::Bearer));
    let (scheme, endpoints) = oauth2_scheme(&manifest, "oauth");
    assert!(endpoints.pkce);
    assert_eq!(endpoints.token_auth_method, nexum_manifest::TokenAuthMethod::Body);
    assert_eq!(endpoints.joined_scopes(&endpoints.scopes), SCOPES);
    let variables = manifest.resolve_variables(&BTreeMap::new()).expect("defaults");
    let authorize = endpoints
        .authorization_url_for(&variables)
        .expect("url")
        .expect("authorization-code flow");
    assert_eq!(authorize.as_str(), "https://app.hubspot.com/oauth/authorize");
    let token_url = nexum_host::oauth::token_url(&manifest, scheme, &variables).expect("bound token URL");
    assert_eq!(token_url.as_str(), "https://api.hubapi.com/oauth/v1/token");
    let hosts = manifest.resolve_allowed_hosts(&variables).expect("hosts");
    assert_eq!(hosts.len(), 1, "the connector reaches the API only: {hosts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_with_hubspot_and_refreshes_the_token() {
    use nexum_tests::app::TestApp;
    use nexum_tests::consent::{open_consent_page, register_oauth_app, start_flow, token_form};

    let hubspot = hubspot().await;
    let app = TestApp::sqlite().await;
    let installed = app.install(&app.key, "hubspot").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    register_oauth_app(&app, &app.key, "hubspot", CLIENT_ID, CLIENT_SECRET).await;
    let origin = hubspot.origin();
    let start = json!({ "connector": "hubspot", "name": "Acme CRM", "variables": { "api_base": origin, "oauth_base": origin } });
    let (flow_id, link) = start_flow(&app, &app.key, start).await;

    let consent = open_consent_page(&link).await;
    assert_eq!(consent.url.path(), "/oauth/authorize");
    let q = &consent.query;
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/api/v1/oauth/callback", app.base));
    let (connection, flow) = consent.approve(&app, &app.key, &flow_id).await;

    let actions = format!("/api/v1/connections/{connection}/actions");
    let searched = app
        .post(
            &app.key,
            &format!("{actions}/search_contacts"),
            json!({ "query": "ada", "limit": 2 }),
        )
        .await;
    assert_eq!(searched.status, StatusCode::OK, "{:?}", searched.body);
    assert_eq!(searched.body["output"]["next_after"], "2");
    // HubSpot's tokens last 30 minutes: the host renews them with the refresh token.
    let forced = app.force_refresh(&app.key, &connection).await;
    assert_eq!(forced.status, StatusCode::OK, "{:?}", forced.body);
    assert_eq!(forced.body["outcome"], "refreshed");
    let input = json!({ "dealname": "Signed in", "contact_ids": ["151"] });
    let deal = app.post(&app.key, &format!("{actions}/create_deal"), input).await;
    assert_eq!(deal.status, StatusCode::OK, "{:?}", deal.body);
    assert_eq!(deal.body["output"]["id"], "9001");

    let requests = hubspot.requests();
    let api: Vec<&Recorded> = requests.iter().filter(|r| r.path.starts_with("/crm/")).collect();
    assert_eq!(api.len(), 2);
    assert_eq!(
        api[0].header("authorization"),
        Some(format!("Bearer {ISSUED_TOKEN}").as_str())
    );
    assert_eq!(
        api[1].header("authorization"),
        Some(format!("Bearer {REFRESHED_TOKEN}").as_str())
    );
    let token_requests: Vec<&Recorded> = requests.iter().filter(|r| r.path == "/oauth/v1/token").collect();
    assert_eq!(token_requests.len(), 2);
    let exchange = token_form(token_requests[0]);
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(
        (exchange["client_id"].as_str(), exchange["client_secret"].as_str()),
        (CLIENT_ID, CLIENT_SECRET),
        "the client credentials go in the form body"
    );
    assert!(exchange.contains_key("code_verifier"));
    let refresh = token_form(token_requests[1]);
    assert_eq!(
        (refresh["grant_type"].as_str(), refresh["refresh_token"].as_str()),
        ("refresh_token", REFRESH_TOKEN)
    );
    for r in &token_requests {
        assert!(r.header("authorization").is_none(), "{r:?}");
    }
    // No token or secret reached the API outside Authorization, or any answer of Nexum's.
    let secrets = [ISSUED_TOKEN, REFRESHED_TOKEN, REFRESH_TOKEN, CLIENT_SECRET];
    let texts = [&searched.body, &forced.body, &deal.body, &flow.body].map(Value::to_string);
    for text in api.iter().map(|r| r.everything_but("authorization")).chain(texts) {
        assert!(!secrets.iter().any(|secret| text.contains(secret)), "{text}");
    }
    app.shutdown().await;
}
