//! GoHighLevel connector: create and update contacts and add contacts to workflows in one
//! sub-account (location), over the LeadConnector API v2
//! (`https://services.leadconnectorhq.com/contacts/…`) with the connection's OAuth2 access
//! token. Every request carries HighLevel's API version header (`Version: 2021-07-28`).
//!
//! The sub-account is not known before sign-in: the user picks it on HighLevel's consent page
//! and the token response names it (`locationId`); the host copies it into the connection's
//! `location_id` variable (`token_response_variables`), and the connector refuses to run while
//! it is still the manifest's placeholder. Contact and workflow ids become path segments, so
//! they are checked to be letters and digits (and `-` for workflows) before any request.
//! HighLevel's API has no idempotency header, so the call's idempotency key is not sent
//! anywhere.

use nexum_connector_sdk::prelude::*;
use serde_json::Map;

/// The auth scheme (`[[auth]]` id) whose token every request carries.
const SCHEME: &str = "oauth";

/// The API origin when the connection sets no `api_base`.
const DEFAULT_API_BASE: &str = "https://services.leadconnectorhq.com";

/// The API version every request names in its `Version` header.
const API_VERSION: &str = "2021-07-28";

/// The manifest's `location_id` default, standing for "not signed in yet".
const UNSET_LOCATION: &str = "location-id-not-set";

/// The longest contact, location or custom field id accepted.
const MAX_ID: usize = 64;

/// The longest workflow id accepted.
const MAX_WORKFLOW_ID: usize = 64;

/// The longest custom field key accepted.
const MAX_FIELD_KEY: usize = 100;

/// The GoHighLevel connector.
struct GoHighLevel;
connector!(GoHighLevel);

impl Connector for GoHighLevel {
    fn actions() -> Actions {
        Actions::new()
            .action("create_contact", create_contact)
            .action("update_contact", update_contact)
            .action("add_contact_to_workflow", add_contact_to_workflow)
    }

    /// List one contact of the sub-account (`GET /contacts/?locationId=…&limit=1`): it needs a
    /// valid token with `contacts.readonly` for that sub-account (`GET /locations/{id}` would
    /// need `locations.readonly`, a scope the connector does not ask for).
    fn test_connection() -> Result<Value, Error> {
        let location = location_id()?;
        let request = Request::get(url("/contacts/"))
            .query("locationId", &location)
            .query("limit", 1);
        let page = send(request)?;
        Ok(json!({
            "location_id": location,
            "contacts_readable": true,
            "total": page["meta"]["total"].as_u64(),
            "sample_contact_id": page["contacts"][0]["id"],
        }))
    }
}

/// A custom field value of a contact, naming its field by id or by key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomField {
    /// The custom field's id.
    id: Option<String>,
    /// The custom field's key (`contact.lead_score`).
    key: Option<String>,
    /// The value: a string, number, boolean, or a list of options.
    value: Value,
}

/// The contact fields both `create_contact` and `update_contact` take.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactFields {
    /// First name.
    first_name: Option<String>,
    /// Last name.
    last_name: Option<String>,
    /// Full name.
    name: Option<String>,
    /// Email address.
    email: Option<String>,
    /// Phone number.
    phone: Option<String>,
    /// Tags (all of them, on an update).
    tags: Option<Vec<String>>,
    /// Where the contact came from.
    source: Option<String>,
    /// Custom field values.
    custom_fields: Option<Vec<CustomField>>,
}

/// `POST /contacts/` with the connection's `locationId`.
fn create_contact(input: ContactFields) -> Result<Value, Error> {
    let identified = [
        &input.first_name,
        &input.last_name,
        &input.name,
        &input.email,
        &input.phone,
    ]
    .iter()
    .any(|field| field.as_deref().is_some_and(|v| !v.trim().is_empty()));
    if !identified {
        return Err(Error::invalid_input(
            "give at least one of `first_name`, `last_name`, `name`, `email` or `phone`",
        ));
    }
    let location = location_id()?;
    let mut body = contact_body(input)?;
    body.insert("locationId".into(), Value::String(location));
    // No idempotency header exists: a retried step may meet `contact_exists` (or, in a
    // sub-account that allows duplicates, create a second contact).
    let answer = send(Request::post(url("/contacts/")).json(&body)?)?;
    contact_output(&answer)
}

/// Input of `update_contact`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateContact {
    /// The contact's id.
    contact_id: String,
    /// First name.
    first_name: Option<String>,
    /// Last name.
    last_name: Option<String>,
    /// Full name.
    name: Option<String>,
    /// Email address.
    email: Option<String>,
    /// Phone number.
    phone: Option<String>,
    /// Tags: all of the contact's tags from now on.
    tags: Option<Vec<String>>,
    /// Where the contact came from.
    source: Option<String>,
    /// Custom field values.
    custom_fields: Option<Vec<CustomField>>,
}

/// `PUT /contacts/{contactId}` with the fields given (no `locationId`: the contact has one).
fn update_contact(input: UpdateContact) -> Result<Value, Error> {
    check_contact_id(&input.contact_id)?;
    let path = format!("/contacts/{}", input.contact_id);
    let body = contact_body(ContactFields {
        first_name: input.first_name,
        last_name: input.last_name,
        name: input.name,
        email: input.email,
        phone: input.phone,
        tags: input.tags,
        source: input.source,
        custom_fields: input.custom_fields,
    })?;
    if body.is_empty() {
        return Err(Error::invalid_input("give at least one field to update"));
    }
    // The token must belong to a sub-account before anything is sent.
    location_id()?;
    let answer = send(Request::put(url(&path)).json(&body)?)?;
    contact_output(&answer)
}

/// Input of `add_contact_to_workflow`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddToWorkflow {
    /// The contact's id.
    contact_id: String,
    /// The workflow's id.
    workflow_id: String,
    /// When the workflow starts for the contact (ISO 8601 with offset).
    event_start_time: Option<String>,
}

/// `POST /contacts/{contactId}/workflow/{workflowId}`, with `eventStartTime` when given.
fn add_contact_to_workflow(input: AddToWorkflow) -> Result<Value, Error> {
    check_contact_id(&input.contact_id)?;
    if !is_workflow_id(&input.workflow_id) {
        return Err(Error::invalid_input(format!(
            "`workflow_id` must be a GoHighLevel workflow id (letters, digits and `-`), got `{}`",
            input.workflow_id
        )));
    }
    let mut body = Map::new();
    if let Some(at) = input.event_start_time {
        if !is_datetime(&at) {
            return Err(Error::invalid_input(format!(
                "`event_start_time` must be an ISO 8601 date-time with an offset, e.g. 2025-06-23T03:30:00+01:00, got `{at}`"
            )));
        }
        body.insert("eventStartTime".into(), Value::String(at));
    }
    location_id()?;
    let path = format!("/contacts/{}/workflow/{}", input.contact_id, input.workflow_id);
    let answer = send(Request::post(url(&path)).json(&body)?)?;
    // HighLevel spells it `succeded`; a 2xx without it is taken as done.
    let added = answer["succeded"]
        .as_bool()
        .or_else(|| answer["succeeded"].as_bool())
        .unwrap_or(true);
    Ok(json!({ "added": added, "contact_id": input.contact_id, "workflow_id": input.workflow_id }))
}

/// The request body HighLevel expects for `fields`: `firstName`, `lastName`, `name`,
/// `email`, `phone`, `tags`, `source`, `customFields` (`[{id | key, field_value}]`), each only
/// when given.
fn contact_body(fields: ContactFields) -> Result<Map<String, Value>, Error> {
    let mut body = Map::new();
    let named = [
        ("firstName", fields.first_name),
        ("lastName", fields.last_name),
        ("name", fields.name),
        ("email", fields.email),
        ("phone", fields.phone),
        ("source", fields.source),
    ];
    for (key, value) in named {
        if let Some(value) = value {
            body.insert(key.to_string(), Value::String(value));
        }
    }
    if let Some(tags) = fields.tags {
        if tags.iter().any(|tag| tag.trim().is_empty()) {
            return Err(Error::invalid_input("`tags` must not hold a blank tag"));
        }
        body.insert(
            "tags".into(),
            Value::Array(tags.into_iter().map(Value::String).collect()),
        );
    }
    if let Some(custom) = fields.custom_fields {
        let list = custom
            .into_iter()
            .map(custom_field_json)
            .collect::<Result<Vec<Value>, Error>>()?;
        body.insert("customFields".into(), Value::Array(list));
    }
    Ok(body)
}

/// One custom field value as HighLevel spells it: `{"id" | "key", "field_value"}`.
fn custom_field_json(field: CustomField) -> Result<Value, Error> {
    let mut out = match (field.id, field.key) {
        (Some(id), None) if is_id(&id) => json!({ "id": id }),
        (None, Some(key)) if is_field_key(&key) => json!({ "key": key }),
        (Some(_), Some(_)) | (None, None) => {
            return Err(Error::invalid_input(
                "each of `custom_fields` names its field by `id` or by `key`, not both",
            ));
        }
        _ => {
            return Err(Error::invalid_input(
                "a custom field's `id` is letters and digits, and its `key` letters, digits, `_` and `.` (e.g. contact.lead_score)",
            ));
        }
    };
    let valid = match &field.value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        Value::Null | Value::Object(_) => false,
    };
    if !valid {
        return Err(Error::invalid_input(
            "a custom field's `value` is a string, number, boolean or a list of strings",
        ));
    }
    out["field_value"] = field.value;
    Ok(out)
}

/// A contact answer (`{"contact": {...}}`, with `succeded` on updates) as the actions output it.
fn contact_output(answer: &Value) -> Result<Value, Error> {
    let contact = &answer["contact"];
    let id = contact["id"]
        .as_str()
        .ok_or_else(|| Error::new("invalid_response", "GoHighLevel answered without a contact id"))?;
    let tags = contact["tags"].as_array().cloned().unwrap_or_default();
    Ok(json!({
        "id": id,
        "first_name": contact["firstName"],
        "last_name": contact["lastName"],
        "email": contact["email"],
        "phone": contact["phone"],
        "tags": tags,
        "date_added": contact["dateAdded"],
        "date_updated": contact["dateUpdated"],
        "contact": contact,
    }))
}

/// Refuse a contact id that is not letters and digits (it becomes a path segment).
fn check_contact_id(id: &str) -> Result<(), Error> {
    if is_id(id) {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "`contact_id` must be a GoHighLevel contact id (letters and digits), got `{id}`"
        )))
    }
}

/// A HighLevel object id: 1 to [`MAX_ID`] ASCII letters and digits.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A workflow id (a UUID): a letter or digit, then letters, digits and `-`, at most
/// [`MAX_WORKFLOW_ID`]; no `.`, `/` or `%`, so it cannot leave its path segment.
fn is_workflow_id(id: &str) -> bool {
    id.len() <= MAX_WORKFLOW_ID
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A custom field key: letters, digits, `_` and `.` (`contact.lead_score`), at most
/// [`MAX_FIELD_KEY`].
fn is_field_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_FIELD_KEY
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// `YYYY-MM-DDTHH:MM:SS`, optional fraction (1 to 9 digits), then `Z` or `±HH:MM`.
fn is_datetime(text: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let bytes = text.as_bytes();
    if bytes.len() < SHAPE.len() || bytes.len() > 40 {
        return false;
    }
    let head = SHAPE.iter().zip(bytes).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        other => got == other,
    });
    let Some(rest) = text.get(SHAPE.len()..) else {
        return false;
    };
    let rest = match rest.strip_prefix('.') {
        Some(fraction) => {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=9).contains(&digits) {
                return false;
            }
            fraction.get(digits..).unwrap_or_default()
        }
        None => rest,
    };
    let offset = |sign: &str| {
        rest.strip_prefix(sign).is_some_and(|hm| {
            let b = hm.as_bytes();
            b.len() == 5 && b[2] == b':' && b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit())
        })
    };
    head && (rest == "Z" || offset("+") || offset("-"))
}

/// The connection's sub-account id; an error until sign-in set it.
fn location_id() -> Result<String, Error> {
    let value = var("location_id").unwrap_or_default();
    let value = value.trim();
    if value.is_empty() || value == UNSET_LOCATION {
        return Err(Error::new(
            "invalid_configuration",
            "the connection has no location_id yet: connect it by signing in with HighLevel and choosing a sub-account (the sign-in sets it), or set location_id to the sub-account's id",
        ));
    }
    if !is_id(value) {
        return Err(Error::new(
            "invalid_configuration",
            format!("location_id `{value}` is not a GoHighLevel location id (letters and digits)"),
        ));
    }
    Ok(value.to_string())
}

/// `<api_base><path>`.
fn url(path: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| DEFAULT_API_BASE.into());
    format!("{}{path}", base.trim().trim_end_matches('/'))
}

/// Send with the connection's access token, the API version and `Accept: application/json`;
/// a non-2xx answer becomes [`api_error`].
fn send(request: Request<'_>) -> Result<Value, Error> {
    let token = credential(SCHEME)?;
    request
        .header("Version", API_VERSION)
        .header("Accept", "application/json")
        .auth(&token)
        .send_value(api_error)
}

/// HighLevel's `{statusCode, message, error}` (`message` a string or a list of strings) under a
/// stable code: 400 with `meta.contactId` or "does not allow duplicated contacts"
/// `contact_exists` (naming the existing contact), 400/422 `bad_request` (each refusal in the
/// message; `not_found` when it says "… not found"), 401/403 about a scope `missing_scope`,
/// other 401 `unauthorized` (the connection's status flips), other 403 `forbidden` (e.g. the
/// token has no access to the location), 404 `not_found`, 429 `rate_limited` (retryable), 5xx
/// `upstream_error` (retryable).
fn api_error(response: &Response) -> Error {
    let detail: Value = response.json().unwrap_or(Value::Null);
    let status = response.status;
    let said = messages(&detail["message"]);
    let lower = said.to_ascii_lowercase();
    let existing = detail["meta"]["contactId"].as_str().filter(|id| is_id(id));
    let duplicate = existing.is_some() || lower.contains("duplicated contact");
    let mapped = Error::from_status(status, &response.body);
    let (code, retryable) = match status {
        429 => ("rate_limited", true),
        400 | 422 if duplicate => ("contact_exists", false),
        400 | 422 if lower.trim_end_matches('.').ends_with("not found") => ("not_found", false),
        400 | 422 => ("bad_request", false),
        401 | 403 if lower.contains("scope") => ("missing_scope", false),
        401 => ("unauthorized", false),
        403 => ("forbidden", false),
        404 => ("not_found", false),
        _ => (mapped.code.as_str(), mapped.retryable),
    };
    let mut message = if said.is_empty() {
        mapped.message.clone()
    } else {
        match detail["error"].as_str().filter(|e| !e.trim().is_empty()) {
            Some(error) => format!("GoHighLevel {status} {error}: {said}"),
            None => format!("GoHighLevel {status}: {said}"),
        }
    };
    if code == "contact_exists" {
        let matching = detail["meta"]["matchingField"]
            .as_str()
            .map(|field| format!(" (matching field {field})"))
            .unwrap_or_default();
        message = match existing {
            Some(id) => format!("the contact already exists: existing contact id {id}{matching}; {message}"),
            None => format!("the contact already exists; {message}"),
        };
    }
    if code == "missing_scope" {
        message.push_str(
            "; the connection needs the scopes contacts.readonly, contacts.write and workflows.readonly: add them to the app and sign in again",
        );
    }
    if let Some(secs) = response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        message.push_str(&format!("; retry after {secs} s"));
    }
    Error::new(code, message).with_retryable(retryable)
}

/// HighLevel's `message`: a string, or a list of strings (one per refused field) joined with
/// `; `; empty when it is neither.
fn messages(message: &Value) -> String {
    match message {
        Value::String(text) => text.trim().to_string(),
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .take(10)
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::new(),
    }
}
