//! The GoHighLevel connector against a fake LeadConnector API: the exact v2 requests of every
//! action (`Version: 2021-07-28`, the connection's `locationId` in created contacts, custom
//! fields as `{id | key, field_value}`), the token only in `Authorization: Bearer`, ids that
//! could leave their path segment refused before any request, HighLevel's errors (a message
//! string or list) under stable codes, no action before sign-in set `location_id`, and,
//! through a server, the sign-in that takes the sub-account's `locationId` from the token
//! response, followed by a refresh, as HighLevel's day-long tokens need.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector};
use nexum_tests::consent::{approve, connector_manifest, oauth2_scheme};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The access token the tests connect with (HighLevel's are JWTs).
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdXRoQ2xhc3MiOiJMb2NhdGlvbiJ9.FakeGhlAccessToken01";
/// The access token the fake issues for the authorization code.
const ISSUED_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzb3VyY2UiOiJJTlRFR1JBVElPTiJ9.IssuedByTheFakeGhl";
/// The access token the fake issues on refresh.
const REFRESHED_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyZWZyZXNoZWQiOnRydWV9.RefreshedByTheFakeGhl";
/// The refresh token issued with the code, and the one a refresh rotates it to.
const REFRESH_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJyZWZyZXNoIjoxfQ.FakeGhlRefreshToken1";
const ROTATED_REFRESH_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJyZWZyZXNoIjoyfQ.FakeGhlRefreshToken2";
/// The authorization code the fake consent page hands out.
const CODE: &str = "7f3b0c1e9a2d4c5b8e6f0a1b2c3d4e5f6a7b8c9d";
/// The Marketplace app's client id and secret.
const CLIENT_ID: &str = "66a0f1e2d3c4b5a697887766-lz1x0y2z";
const CLIENT_SECRET: &str = "5e8f2c1a-fake-ghl-client-secret-9b7d";
/// The scopes, as the consent page must receive them.
const SCOPES: &str = "contacts.readonly contacts.write workflows.readonly";
/// The sub-account the sign-in chooses, its agency, and the signed-in user.
const LOCATION: &str = "ve9EPM428h8vShlRW1KT";
const COMPANY: &str = "Gm8Tq2FbY7cLhXnDwJ3k";
const USER: &str = "y0BeYjuRIlDwsDcOHOJo";
/// An existing contact, the contact a create makes, and the contact a duplicate matches.
const CONTACT: &str = "seD4PfOuKoVMLkEZqohJ";
const CREATED: &str = "ocQHyuzHvysMo5N5VsXc";
const EXISTING: &str = "yXW7lzWXV7Hg0Eq6DUR9";
/// A workflow of the sub-account.
const WORKFLOW: &str = "78559bb3-b920-461e-b010-7b2a2816d2a9";
/// Every contact's creation and modification time.
const ADDED: &str = "2025-03-04T12:00:00.000Z";
const UPDATED: &str = "2025-03-05T08:30:00.000Z";

fn authed(headers: &HeaderMap) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    [TOKEN, ISSUED_TOKEN, REFRESHED_TOKEN]
        .iter()
        .any(|token| given == Some(format!("Bearer {token}").as_str()))
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// HighLevel's JSON error: `message` a string, or a list of strings on validation errors.
fn ghl_error(status: StatusCode, message: Value) -> Response {
    reply(status, json!({ "statusCode": status.as_u16(), "message": message }))
}

fn invalid_jwt() -> Response {
    ghl_error(StatusCode::UNAUTHORIZED, json!("Invalid JWT"))
}

/// A contact as HighLevel answers it: the fields sent, plus HighLevel's own.
fn contact(id: &str, sent: &Value) -> Value {
    let mut contact = json!({
        "id": id, "locationId": LOCATION, "type": "lead", "dnd": false, "tags": [],
        "dateAdded": ADDED, "dateUpdated": UPDATED, "customFields": [],
    });
    for key in ["firstName", "lastName", "email", "phone", "source", "tags"] {
        if let Some(value) = sent.get(key) {
            contact[key] = value.clone();
        }
    }
    if let Some(email) = sent["email"].as_str() {
        contact["emailLowerCase"] = json!(email.to_lowercase());
    }
    if let Some(fields) = sent["customFields"].as_array() {
        let id_of = |f: &Value| f.get("id").cloned().unwrap_or_else(|| json!("Kq3cB1DkRm0s8fQzT7wY"));
        contact["customFields"] = fields
            .iter()
            .map(|f| json!({ "id": id_of(f), "value": f["field_value"] }))
            .collect();
    }
    contact
}

/// What the connector outputs for a contact HighLevel answered.
fn output(contact: &Value) -> Value {
    json!({
        "id": contact["id"], "first_name": contact["firstName"], "last_name": contact["lastName"],
        "email": contact["email"], "phone": contact["phone"], "tags": contact["tags"],
        "date_added": ADDED, "date_updated": UPDATED, "contact": contact,
    })
}

/// `GET /contacts/?locationId=…&limit=1`: one contact of the location.
async fn list_contacts(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if !authed(&headers) {
        return invalid_jwt();
    }
    if q.get("locationId").map(String::as_str) != Some(LOCATION) {
        return ghl_error(
            StatusCode::FORBIDDEN,
            json!("The token does not have access to this location."),
        );
    }
    let first = contact(CONTACT, &json!({ "firstName": "Ada", "email": "ada@example.com" }));
    let next = format!(
        "https://services.leadconnectorhq.com/contacts/?locationId={LOCATION}&limit=1&startAfter=1741089600000&startAfterId={CONTACT}"
    );
    let meta = json!({ "total": 1204, "nextPageUrl": next, "startAfterId": CONTACT, "startAfter": 1741089600000_u64, "currentPage": 1, "nextPage": 2, "prevPage": null });
    axum::Json(json!({ "contacts": [first], "meta": meta })).into_response()
}

/// `POST /contacts/`: the email picks an error.
async fn create_contact(headers: HeaderMap, body: Bytes) -> Response {
    if !authed(&headers) {
        return invalid_jwt();
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    match sent["email"].as_str() {
        Some("taken@example.com") => {
            let meta = json!({ "contactName": "Ada Lovelace", "contactId": EXISTING, "matchingField": "email" });
            let body = json!({ "statusCode": 400, "message": "This location does not allow duplicated contacts.", "meta": meta });
            reply(StatusCode::BAD_REQUEST, body)
        }
        Some("bad@example") => {
            let body = json!({ "statusCode": 422, "message": ["email must be an email", "phone must be a valid phone number"], "error": "Unprocessable Entity" });
            reply(StatusCode::UNPROCESSABLE_ENTITY, body)
        }
        Some("busy@example.com") => ghl_error(
            StatusCode::TOO_MANY_REQUESTS,
            json!("Too many requests, please try again later."),
        ),
        Some("down@example.com") => {
            (StatusCode::BAD_GATEWAY, "<html><body>502 Bad Gateway</body></html>").into_response()
        }
        _ => reply(StatusCode::CREATED, json!({ "contact": contact(CREATED, &sent) })),
    }
}

/// `PUT /contacts/{id}`: CONTACT is in the location; one contact is in another.
async fn update_contact(headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if !authed(&headers) {
        return invalid_jwt();
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    match id.as_str() {
        CONTACT => axum::Json(json!({ "succeded": true, "contact": contact(CONTACT, &sent) })).into_response(),
        "ElsewhereContact00001" => ghl_error(
            StatusCode::FORBIDDEN,
            json!("The token does not have access to this location."),
        ),
        _ => ghl_error(StatusCode::BAD_REQUEST, json!("Contact not found")),
    }
}

/// `POST /contacts/{id}/workflow/{workflowId}`: one workflow; another needs a scope the
/// token lacks.
async fn add_to_workflow(headers: HeaderMap, Path((id, workflow)): Path<(String, String)>) -> Response {
    if !authed(&headers) {
        return invalid_jwt();
    }
    match (id.as_str(), workflow.as_str()) {
        (CONTACT, WORKFLOW) => reply(StatusCode::CREATED, json!({ "succeded": true })),
        (_, "9f1c2d3e-no-scope") => ghl_error(
            StatusCode::UNAUTHORIZED,
            json!("The token is not authorized for this scope."),
        ),
        _ => ghl_error(StatusCode::NOT_FOUND, json!("Workflow not found")),
    }
}

/// A fake HighLevel: the API, the consent page and the token endpoint on one origin. The
/// consent page approves at once (as if the user chose LOCATION); the token endpoint wants
/// the client secret and `user_type=Location` in the form body, and answers with the
/// sub-account's `locationId`, on the code exchange and on every refresh.
async fn ghl() -> Fake {
    let redirect: Arc<Mutex<Option<String>>> = Arc::default();
    let remembered = redirect.clone();
    let authorize = move |Query(q): Query<HashMap<String, String>>| {
        let remembered = remembered.clone();
        async move {
            let Some(redirect_uri) = q.get("redirect_uri") else {
                return (StatusCode::BAD_REQUEST, "redirect_uri required").into_response();
            };
            *remembered.lock().expect("lock") = Some(redirect_uri.clone());
            approve(redirect_uri, CODE, &q)
        }
    };
    let token = move |headers: HeaderMap, body: Bytes| {
        let redirect = redirect.clone();
        async move {
            let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
            let field = |name: &str| form.get(name).map(String::as_str);
            let refuse = |error: &str, description: &str| {
                reply(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": error, "error_description": description }),
                )
            };
            if headers.contains_key(header::AUTHORIZATION)
                || field("client_id") != Some(CLIENT_ID)
                || field("client_secret") != Some(CLIENT_SECRET)
            {
                return refuse("invalid_client", "Invalid client credentials");
            }
            if field("user_type") != Some("Location") {
                return refuse("invalid_request", "user_type must be Location for a sub-account app");
            }
            let (access_token, refresh_token) = match field("grant_type") {
                Some("authorization_code") => {
                    let expected = redirect.lock().expect("lock").take();
                    if field("code") != Some(CODE) || expected.as_deref() != field("redirect_uri") {
                        return refuse("invalid_grant", "Invalid grant: authorization code is invalid");
                    }
                    (ISSUED_TOKEN, REFRESH_TOKEN)
                }
                Some("refresh_token") if field("refresh_token") == Some(REFRESH_TOKEN) => {
                    (REFRESHED_TOKEN, ROTATED_REFRESH_TOKEN)
                }
                _ => return refuse("invalid_grant", "Invalid grant: refresh token is invalid"),
            };
            axum::Json(json!({
                "access_token": access_token, "token_type": "Bearer", "expires_in": 86399,
                "refresh_token": refresh_token, "scope": SCOPES, "userType": "Location",
                "companyId": COMPANY, "locationId": LOCATION, "userId": USER, "isBulkInstallation": false,
            }))
            .into_response()
        }
    };
    let router = Router::new()
        .route("/oauth/chooselocation", get(authorize))
        .route("/oauth/token", post(token))
        .route("/contacts/", get(list_contacts).post(create_contact))
        .route("/contacts/{id}", put(update_contact))
        .route("/contacts/{id}/workflow/{workflow}", post(add_to_workflow));
    fakes::serve(router).await
}

/// A host with the GoHighLevel connector and one connection to LOCATION holding `token`,
/// pointed at a fake HighLevel.
struct Setup {
    host: TestHost,
    ghl: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

async fn setup(token: &str) -> Setup {
    let ghl = ghl().await;
    let (host, connector, connection) = TestHost::connected(
        "gohighlevel",
        &[
            ("api_base", &ghl.origin()),
            ("oauth_base", &ghl.origin()),
            ("location_id", LOCATION),
        ],
        &[("oauth", &[("access_token", token)])],
    );
    Setup {
        host,
        ghl,
        connector,
        connection,
    }
}

impl Setup {
    async fn run(&self, action: &str, input: Value) -> CallOutcome {
        self.host.run(&self.connector, &self.connection, action, input).await
    }

    /// Every request named the API version, asked for JSON and carried the token in
    /// `Authorization: Bearer`, and the token nowhere else.
    fn assert_headers_and_token_only_in_authorization(&self) {
        let requests = self.ghl.requests();
        assert!(!requests.is_empty());
        for r in requests {
            assert_eq!(r.header("version"), Some("2021-07-28"), "{r:?}");
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
async fn contacts_are_created_in_the_location_and_updated() {
    let s = setup(TOKEN).await;
    let input = json!({
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+14155550123",
        "tags": ["webinar", "lead"], "source": "website form",
        "custom_fields": [
            { "id": "MgobCB14YMVKuE4Ka8p1", "value": "Analytical Engines" },
            { "key": "contact.lead_score", "value": 42 },
            { "key": "contact.interests", "value": ["math", "poetry"] },
        ],
    });
    let sent = json!({
        "locationId": LOCATION, "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
        "phone": "+14155550123", "tags": ["webinar", "lead"], "source": "website form",
        "customFields": [
            { "id": "MgobCB14YMVKuE4Ka8p1", "field_value": "Analytical Engines" },
            { "key": "contact.lead_score", "field_value": 42 },
            { "key": "contact.interests", "field_value": ["math", "poetry"] },
        ],
    });
    let created = s.run("create_contact", input).await;
    assert_eq!(created.result.expect("created"), output(&contact(CREATED, &sent)));
    let input = json!({ "contact_id": CONTACT, "name": "Ada King", "phone": "+14155550100", "tags": [] });
    let changes = json!({ "name": "Ada King", "phone": "+14155550100", "tags": [] });
    let updated = s.run("update_contact", input).await;
    assert_eq!(updated.result.expect("updated"), output(&contact(CONTACT, &changes)));

    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({ "location_id": LOCATION, "contacts_readable": true, "total": 1204, "sample_contact_id": CONTACT })
    );

    let requests = s.ghl.requests();
    let calls: Vec<(&str, &str, Option<&str>)> = requests.iter().map(call).collect();
    let put_path = format!("/contacts/{CONTACT}");
    let list_query = format!("locationId={LOCATION}&limit=1");
    assert_eq!(
        calls,
        [
            ("POST", "/contacts/", None),
            ("PUT", put_path.as_str(), None),
            ("GET", "/contacts/", Some(list_query.as_str())),
        ]
    );
    assert_eq!(requests[0].json(), sent);
    assert_eq!(requests[1].json(), changes, "no locationId on an update");
    for r in &requests[..2] {
        assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    }
    assert!(requests[2].body.is_empty());
    s.assert_headers_and_token_only_in_authorization();
}

#[tokio::test]
async fn contacts_are_added_to_workflows_now_or_later() {
    let s = setup(TOKEN).await;
    let input =
        json!({ "contact_id": CONTACT, "workflow_id": WORKFLOW, "event_start_time": "2025-06-23T03:30:00+01:00" });
    let later = s
        .host
        .runtime
        .execute_keyed(
            &s.connector,
            s.connection.clone(),
            Invocation::Action {
                name: "add_contact_to_workflow".into(),
                input,
            },
            Some("exe_7:enroll".to_string()),
        )
        .await;
    let added = json!({ "added": true, "contact_id": CONTACT, "workflow_id": WORKFLOW });
    assert_eq!(later.result.expect("added"), added);
    let now = s
        .run(
            "add_contact_to_workflow",
            json!({ "contact_id": CONTACT, "workflow_id": WORKFLOW }),
        )
        .await;
    assert_eq!(now.result.expect("added"), added);

    let requests = s.ghl.requests();
    let path = format!("/contacts/{CONTACT}/workflow/{WORKFLOW}");
    let calls: Vec<(&str, &str, Option<&str>)> = requests.iter().map(call).collect();
    assert_eq!(calls, [("POST", path.as_str(), None), ("POST", path.as_str(), None)]);
    assert_eq!(
        requests[0].json(),
        json!({ "eventStartTime": "2025-06-23T03:30:00+01:00" })
    );
    assert_eq!(requests[1].json(), json!({}), "no start time: HighLevel starts now");
    for r in &requests {
        assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
        // HighLevel has no idempotency header: the key goes nowhere.
        assert!(!r.everything_but("").contains("exe_7:enroll"), "{r:?}");
    }
    s.assert_headers_and_token_only_in_authorization();
}

#[tokio::test]
async fn ids_that_could_leave_their_path_segment_are_refused_before_any_request() {
    let s = setup(TOKEN).await;
    let update = |id: &str| json!({ "contact_id": id, "first_name": "x" });
    let enroll = |contact: &str, workflow: &str| json!({ "contact_id": contact, "workflow_id": workflow });
    // The input schema refuses separators, dots, encodings, queries and malformed times.
    for (action, input) in [
        ("update_contact", update("seD4PfOuKoVMLkEZqohJ/../x")),
        ("update_contact", update("..")),
        ("update_contact", update("seD4%2F..")),
        ("update_contact", update("seD4?locationId=other")),
        ("update_contact", update("")),
        ("add_contact_to_workflow", enroll("../contacts", WORKFLOW)),
        ("add_contact_to_workflow", enroll(CONTACT, "../../locations")),
        ("add_contact_to_workflow", enroll(CONTACT, "78559bb3.b920")),
        ("add_contact_to_workflow", enroll(CONTACT, "-78559bb3")),
        (
            "add_contact_to_workflow",
            json!({ "contact_id": CONTACT, "workflow_id": WORKFLOW, "event_start_time": "tomorrow" }),
        ),
        ("create_contact", json!({})),
        (
            "create_contact",
            json!({ "email": "a@example.com", "custom_fields": [{ "id": "a/b", "value": "x" }] }),
        ),
        (
            "create_contact",
            json!({ "email": "a@example.com", "location_id": "other" }),
        ),
    ] {
        let out = s.run(action, input.clone()).await;
        assert!(
            matches!(out.result, Err(CallError::InvalidInput { .. })),
            "{input}: {:?}",
            out.result
        );
    }
    // What the schema lets through but the connector refuses itself: nobody to create,
    // nothing to update, a custom field named twice or not at all, a blank tag.
    // [action, input, in the message]
    let refused = json!([
        ["create_contact", { "tags": ["lead"], "source": "form" }, "at least one of"],
        ["create_contact", { "first_name": "   " }, "at least one of"],
        ["update_contact", { "contact_id": CONTACT }, "at least one field"],
        ["create_contact", { "email": "a@example.com", "custom_fields": [{ "id": "MgobCB14YMVKuE4Ka8p1", "key": "contact.x", "value": 1 }] }, "not both"],
        ["create_contact", { "email": "a@example.com", "custom_fields": [{ "value": 1 }] }, "not both"],
        ["create_contact", { "email": "a@example.com", "tags": [" "] }, "blank tag"],
    ]);
    for case in refused.as_array().expect("cases") {
        let action = case[0].as_str().expect("action");
        let (code, message, retryable) = connector_error(s.run(action, case[1].clone()).await);
        assert_eq!((code.as_str(), retryable), ("invalid_input", false), "{case}");
        assert!(message.contains(case[2].as_str().expect("needle")), "{case}: {message}");
    }
    assert!(s.ghl.requests().is_empty(), "{:?}", s.ghl.requests());
}

#[tokio::test]
async fn highlevel_errors_map_to_stable_codes() {
    let s = setup(TOKEN).await;
    let create = |email: &str| json!({ "email": email, "first_name": "Ada" });
    let duplicate = format!(
        "existing contact id {EXISTING} (matching field email); GoHighLevel 400: This location does not allow duplicated contacts."
    );
    // [action, input, code, retryable, in the message]
    let cases = json!([
        ["create_contact", create("taken@example.com"), "contact_exists", false, duplicate],
        ["create_contact", create("bad@example"), "bad_request", false, "GoHighLevel 422 Unprocessable Entity: email must be an email; phone must be a valid phone number"],
        ["create_contact", create("busy@example.com"), "rate_limited", true, "Too many requests"],
        ["create_contact", create("down@example.com"), "upstream_error", true, "HTTP 502"],
        ["update_contact", { "contact_id": "GoneContact0000000001", "first_name": "x" }, "not_found", false, "GoHighLevel 400: Contact not found"],
        ["update_contact", { "contact_id": "ElsewhereContact00001", "first_name": "x" }, "forbidden", false, "does not have access to this location"],
        ["add_contact_to_workflow", { "contact_id": CONTACT, "workflow_id": "00000000-0000-0000-0000-000000000000" }, "not_found", false, "GoHighLevel 404: Workflow not found"],
        // The scopes to add are named.
        ["add_contact_to_workflow", { "contact_id": CONTACT, "workflow_id": "9f1c2d3e-no-scope" }, "missing_scope", false, "workflows.readonly"],
    ]);
    for case in cases.as_array().expect("cases") {
        let action = case[0].as_str().expect("action");
        let (code, message, retryable) = connector_error(s.run(action, case[1].clone()).await);
        assert_eq!(
            (json!(code), json!(retryable)),
            (case[2].clone(), case[3].clone()),
            "{case}: {message}"
        );
        assert!(message.contains(case[4].as_str().expect("needle")), "{case}: {message}");
    }

    // A token HighLevel refuses is an auth failure: the connection's status flips on it.
    let s = setup("eyJhbGciOiJIUzI1NiJ9.eyJleHBpcmVkIjp0cnVlfQ.ExpiredGhlToken").await;
    let (code, message, retryable) = connector_error(s.run("create_contact", create("ada@example.com")).await);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false));
    assert!(message.contains("GoHighLevel 401: Invalid JWT"), "{message}");
    assert!(nexum_host::connections::calls::AUTH_FAILURE_CODES.contains(&code.as_str()));
}

#[tokio::test]
async fn nothing_runs_before_sign_in_sets_the_location() {
    let ghl = ghl().await;
    // No location_id: the manifest's placeholder.
    let (host, connector, connection) = TestHost::connected(
        "gohighlevel",
        &[("api_base", &ghl.origin()), ("oauth_base", &ghl.origin())],
        &[("oauth", &[("access_token", TOKEN)])],
    );
    for (action, input) in [
        ("create_contact", json!({ "email": "ada@example.com" })),
        ("update_contact", json!({ "contact_id": CONTACT, "first_name": "Ada" })),
        (
            "add_contact_to_workflow",
            json!({ "contact_id": CONTACT, "workflow_id": WORKFLOW }),
        ),
    ] {
        let (code, message, _) = connector_error(host.run(&connector, &connection, action, input).await);
        assert_eq!(code, "invalid_configuration", "{action}");
        assert!(
            message.contains("location_id") && message.contains("signing in"),
            "{message}"
        );
    }
    let checked = host
        .runtime
        .execute(&connector, connection.clone(), Invocation::TestConnection)
        .await;
    assert!(
        matches!(&checked.result, Err(CallError::Connector { code, .. }) if code == "invalid_configuration"),
        "{:?}",
        checked.result
    );
    // A location id that is no id is refused too, before anything is sent.
    let broken = host.connect(
        &connector,
        "conn_bad_location",
        &[("api_base", &ghl.origin()), ("location_id", "ve9EPM/../other")],
        &[("oauth", &[("access_token", TOKEN)])],
    );
    let (code, message, _) = connector_error(
        host.run(
            &connector,
            &broken,
            "create_contact",
            json!({ "email": "ada@example.com" }),
        )
        .await,
    );
    assert_eq!(code, "invalid_configuration");
    assert!(message.contains("not a GoHighLevel location id"), "{message}");
    assert!(ghl.requests().is_empty(), "{:?}", ghl.requests());
}

#[test]
fn the_manifest_takes_the_location_from_the_token_response() {
    let manifest = connector_manifest("gohighlevel");
    let (scheme, endpoints) = oauth2_scheme(&manifest, "oauth");
    assert!(!endpoints.pkce, "HighLevel documents no PKCE");
    assert_eq!(endpoints.token_auth_method, nexum_manifest::TokenAuthMethod::Body);
    assert_eq!(endpoints.joined_scopes(&endpoints.scopes), SCOPES);
    assert_eq!(
        endpoints.token_response_variables,
        BTreeMap::from([("location_id".to_string(), "locationId".to_string())])
    );
    assert_eq!(
        endpoints.extra_token_params,
        BTreeMap::from([("user_type".to_string(), "Location".to_string())])
    );
    let variables = manifest.resolve_variables(&BTreeMap::new()).expect("defaults");
    assert_eq!(
        variables["location_id"], "location-id-not-set",
        "a placeholder that is no id"
    );
    let authorize = endpoints
        .authorization_url_for(&variables)
        .expect("url")
        .expect("authorization-code flow");
    assert_eq!(
        authorize.as_str(),
        "https://marketplace.gohighlevel.com/oauth/chooselocation"
    );
    let token_url = nexum_host::oauth::token_url(&manifest, scheme, &variables).expect("bound token URL");
    assert_eq!(token_url.as_str(), "https://services.leadconnectorhq.com/oauth/token");
    let hosts = manifest.resolve_allowed_hosts(&variables).expect("hosts");
    assert_eq!(hosts.len(), 1, "the connector reaches the API only: {hosts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_takes_the_location_from_the_token_response_and_refreshes() {
    use nexum_tests::app::TestApp;
    use nexum_tests::consent::{open_consent_page, register_oauth_app, start_flow, token_form};

    let ghl = ghl().await;
    let app = TestApp::sqlite().await;
    let installed = app.install(&app.key, "gohighlevel").await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    register_oauth_app(&app, &app.key, "gohighlevel", CLIENT_ID, CLIENT_SECRET).await;
    let origin = ghl.origin();
    let start = json!({ "connector": "gohighlevel", "name": "Acme Dental", "variables": { "api_base": origin, "oauth_base": origin } });
    let (flow_id, link) = start_flow(&app, &app.key, start).await;

    let consent = open_consent_page(&link).await;
    assert_eq!(consent.url.path(), "/oauth/chooselocation");
    let q = &consent.query;
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["redirect_uri"], format!("{}/api/v1/oauth/callback", app.base));
    assert!(!q.contains_key("code_challenge"), "no PKCE: {q:?}");
    let (connection, flow) = consent.approve(&app, &app.key, &flow_id).await;

    // The sub-account came from the token response; nobody typed it.
    let shown = app.get(&app.key, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(shown.body["variables"]["location_id"], LOCATION, "{:?}", shown.body);

    let actions = format!("/api/v1/connections/{connection}/actions");
    let input = json!({ "first_name": "Grace", "email": "grace@example.com" });
    let created = app.post(&app.key, &format!("{actions}/create_contact"), input).await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    assert_eq!(created.body["output"]["id"], CREATED);
    // HighLevel's tokens last a day: the host renews them with the refresh token.
    let forced = app.force_refresh(&app.key, &connection).await;
    assert_eq!(forced.status, StatusCode::OK, "{:?}", forced.body);
    assert_eq!(forced.body["outcome"], "refreshed");
    let input = json!({ "contact_id": CONTACT, "workflow_id": WORKFLOW });
    let enrolled = app
        .post(&app.key, &format!("{actions}/add_contact_to_workflow"), input)
        .await;
    assert_eq!(enrolled.status, StatusCode::OK, "{:?}", enrolled.body);
    assert_eq!(enrolled.body["output"]["added"], true);

    let requests = ghl.requests();
    let api: Vec<&Recorded> = requests.iter().filter(|r| r.path.starts_with("/contacts/")).collect();
    assert_eq!(api.len(), 2);
    assert_eq!(
        api[0].json(),
        json!({ "locationId": LOCATION, "firstName": "Grace", "email": "grace@example.com" })
    );
    assert_eq!(
        api[0].header("authorization"),
        Some(format!("Bearer {ISSUED_TOKEN}").as_str())
    );
    assert_eq!(
        api[1].header("authorization"),
        Some(format!("Bearer {REFRESHED_TOKEN}").as_str())
    );
    let token_requests: Vec<&Recorded> = requests.iter().filter(|r| r.path == "/oauth/token").collect();
    assert_eq!(token_requests.len(), 2);
    let exchange = token_form(token_requests[0]);
    assert_eq!(
        (
            exchange["grant_type"].as_str(),
            exchange["code"].as_str(),
            exchange["user_type"].as_str()
        ),
        ("authorization_code", CODE, "Location")
    );
    assert_eq!(
        (exchange["client_id"].as_str(), exchange["client_secret"].as_str()),
        (CLIENT_ID, CLIENT_SECRET),
        "the client credentials go in the form body"
    );
    assert!(!exchange.contains_key("code_verifier"));
    let refresh = token_form(token_requests[1]);
    assert_eq!(
        (
            refresh["grant_type"].as_str(),
            refresh["refresh_token"].as_str(),
            refresh["user_type"].as_str()
        ),
        ("refresh_token", REFRESH_TOKEN, "Location")
    );
    for r in &token_requests {
        assert!(r.header("authorization").is_none(), "{r:?}");
    }
    // No token or secret reached the API outside Authorization, or any answer of Nexum's.
    let secrets = [
        ISSUED_TOKEN,
        REFRESHED_TOKEN,
        REFRESH_TOKEN,
        ROTATED_REFRESH_TOKEN,
        CLIENT_SECRET,
    ];
    let texts = [&created.body, &forced.body, &enrolled.body, &flow.body, &shown.body].map(Value::to_string);
    for text in api.iter().map(|r| r.everything_but("authorization")).chain(texts) {
        assert!(!secrets.iter().any(|secret| text.contains(secret)), "{text}");
    }
    app.shutdown().await;
}
