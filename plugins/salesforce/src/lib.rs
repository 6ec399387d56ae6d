//! Salesforce connector: SOQL queries with paging, and creating and updating records, over the
//! REST API (`<instance_url>/services/data/<api_version>/…`) with the connection's OAuth2
//! access token.
//!
//! The org's API host (`instance_url`) is not known before sign-in: the host copies it from the
//! token response into the connection's variables (`token_response_variables`), and the
//! connector refuses to run while it is still the manifest's placeholder. Query paging follows
//! Salesforce's `nextRecordsUrl`, a path on the same instance, accepted back only when it is a
//! plain path under `/services/data/`. Salesforce's REST API has no idempotency header, so the
//! call's idempotency key is not sent anywhere.

use nexum_connector_sdk::prelude::*;
use serde_json::Map;

/// The auth scheme (`[[auth]]` id) whose token every request carries.
const SCHEME: &str = "oauth";

/// The REST API version when the connection sets no `api_version`.
const DEFAULT_API_VERSION: &str = "v61.0";

/// The manifest's `instance_url` default, standing for "not signed in yet".
const UNSET_INSTANCE: &str = "https://instance-url-not-set.invalid";

/// Where every REST resource (and every `nextRecordsUrl`) lives.
const DATA_PREFIX: &str = "/services/data/";

/// The connector.
struct Salesforce;
connector!(Salesforce);

impl Connector for Salesforce {
    fn actions() -> Actions {
        Actions::new()
            .action("query", query)
            .action("create_record", create_record)
            .action("update_record", update_record)
    }

    fn test_connection() -> Result<Value, Error> {
        // The version's resource directory: it needs a valid session (unlike `/services/data/`)
        // and proves the org serves this API version.
        let resources = send(Request::get(data_url("/")?))?;
        let mut names: Vec<&String> = resources.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        names.sort();
        Ok(json!({ "instance_url": instance_url()?, "api_version": api_version()?, "resources": names }))
    }
}

/// Input of `query`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    soql: Option<String>,
    next: Option<String>,
    #[serde(default)]
    include_deleted: bool,
    batch_size: Option<u32>,
}

fn query(input: Query) -> Result<Value, Error> {
    let request = match (&input.soql, &input.next) {
        (Some(soql), None) => {
            if soql.trim().is_empty() {
                return Err(Error::invalid_input("`soql` must not be blank"));
            }
            let resource = if input.include_deleted { "/queryAll" } else { "/query" };
            Request::get(data_url(resource)?).query("q", soql.trim())
        }
        (None, Some(next)) => Request::get(format!("{}{}", instance_url()?, checked_next(next)?)),
        _ => {
            return Err(Error::invalid_input(
                "give either `soql` (a new query) or `next` (the `next` of the previous page), not both",
            ));
        }
    };
    let request = match input.batch_size {
        Some(size) if !(200..=2000).contains(&size) => {
            return Err(Error::invalid_input("`batch_size` must be between 200 and 2000"));
        }
        Some(size) => request.header("Sforce-Query-Options", format!("batchSize={size}")),
        None => request,
    };
    let page = send(request)?;
    let next = match page["nextRecordsUrl"].as_str() {
        Some(link) => Value::String(
            checked_next(link)
                .map_err(|_| {
                    Error::new(
                        "unexpected_response",
                        "Salesforce answered with a nextRecordsUrl outside /services/data/",
                    )
                })?
                .to_string(),
        ),
        None => Value::Null,
    };
    Ok(json!({
        "total_size": page["totalSize"].as_u64().unwrap_or_default(),
        "done": page["done"].as_bool().unwrap_or(next.is_null()),
        "records": Value::Array(page["records"].as_array().cloned().unwrap_or_default()),
        "next": next,
    }))
}

/// `link` if it is a path under `/services/data/` that cannot leave it: letters, digits,
/// `/ . - _` only (no query, no percent-encoding), no `//`, no `.` or `..` segments.
fn checked_next(link: &str) -> Result<&str, Error> {
    let valid = link.starts_with(DATA_PREFIX)
        && link.len() <= 2048
        && link
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'))
        && !link.contains("//")
        && link.split('/').all(|segment| segment != "." && segment != "..");
    if valid {
        Ok(link)
    } else {
        Err(Error::invalid_input(
            "`next` must be the `next` a previous query returned (a path under /services/data/)",
        ))
    }
}

/// Input of `create_record`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRecord {
    sobject: String,
    fields: Map<String, Value>,
}

fn create_record(input: CreateRecord) -> Result<Value, Error> {
    check_sobject(&input.sobject)?;
    check_fields(&input.fields)?;
    // No idempotency header exists for sObject rows: a retried step may create a second record.
    let path = format!("/sobjects/{}/", input.sobject);
    let created = send(Request::post(data_url(&path)?).json(&input.fields)?)?;
    Ok(json!({ "id": created["id"], "success": created["success"].as_bool().unwrap_or(true) }))
}

/// Input of `update_record`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRecord {
    sobject: String,
    id: String,
    fields: Map<String, Value>,
}

fn update_record(input: UpdateRecord) -> Result<Value, Error> {
    check_sobject(&input.sobject)?;
    // The id becomes a path segment: only a record id's characters may get there.
    let id_ok = matches!(input.id.len(), 15 | 18) && input.id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !id_ok {
        return Err(Error::invalid_input(
            "`id` must be a Salesforce record id (15 or 18 letters and digits)",
        ));
    }
    check_fields(&input.fields)?;
    // Salesforce answers 204 No Content.
    let path = format!("/sobjects/{}/{}", input.sobject, input.id);
    send(Request::patch(data_url(&path)?).json(&input.fields)?)?;
    Ok(json!({ "id": input.id, "success": true }))
}

/// Refuse an object name that is not an API name (it becomes a path segment).
fn check_sobject(name: &str) -> Result<(), Error> {
    if is_api_name(name) {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "`sobject`: `{name}` is not an object API name such as Account or My_Object__c"
        )))
    }
}

/// Refuse an empty field map or a key that is not a field API name.
fn check_fields(fields: &Map<String, Value>) -> Result<(), Error> {
    if fields.is_empty() {
        return Err(Error::invalid_input("`fields` must name at least one field"));
    }
    match fields.keys().find(|name| !is_api_name(name)) {
        Some(name) => Err(Error::invalid_input(format!(
            "`fields`: `{name}` is not a field API name such as Name or Amount__c"
        ))),
        None => Ok(()),
    }
}

/// A Salesforce API name: a letter, then letters, digits and `_` (`My_Object__c`,
/// `ns__Field__c`), at most 100 characters.
fn is_api_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.len() <= 100
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A Salesforce `errorCode` (`INVALID_FIELD`): upper-case letters, digits and `_`, so that
/// lower-cased it is a stable code of ours.
fn is_error_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The connection's instance origin, without a trailing slash; an error until sign-in set it.
fn instance_url() -> Result<String, Error> {
    let value = var("instance_url").unwrap_or_default();
    let value = value.trim().trim_end_matches('/');
    if value.is_empty() || value.eq_ignore_ascii_case(UNSET_INSTANCE) {
        return Err(Error::new(
            "invalid_configuration",
            "the connection has no instance_url yet: connect it by signing in with Salesforce (the sign-in sets it), or set instance_url to your org's API origin, e.g. https://acme.my.salesforce.com",
        ));
    }
    Ok(value.to_string())
}

/// The connection's REST API version, `vNN.0`.
fn api_version() -> Result<String, Error> {
    let version = var("api_version").unwrap_or_else(|| DEFAULT_API_VERSION.into());
    let version = version.trim();
    let valid = version
        .strip_prefix('v')
        .and_then(|number| number.split_once('.'))
        .is_some_and(|(major, minor)| {
            (2..=3).contains(&major.len()) && major.bytes().all(|b| b.is_ascii_digit()) && minor == "0"
        });
    if valid {
        Ok(version.to_string())
    } else {
        Err(Error::new(
            "invalid_configuration",
            format!("api_version `{version}` is not a REST API version such as {DEFAULT_API_VERSION}"),
        ))
    }
}

/// `<instance_url>/services/data/<api_version><path>`.
fn data_url(path: &str) -> Result<String, Error> {
    Ok(format!("{}{DATA_PREFIX}{}{path}", instance_url()?, api_version()?))
}

/// Send with the connection's access token; a non-2xx answer becomes [`api_error`].
fn send(request: Request<'_>) -> Result<Value, Error> {
    let token = credential(SCHEME)?;
    request.auth(&token).send_value(api_error)
}

/// Salesforce's `[{"message", "errorCode", "fields"}]` under a stable code: its `errorCode`
/// lower-cased (`invalid_field`, `required_field_missing`, `malformed_query`, …), except
/// `INVALID_SESSION_ID` → `unauthorized` (the host marks the connection failed),
/// `API_DISABLED_FOR_ORG` → `forbidden`, `NOT_FOUND` → `not_found`, and
/// `REQUEST_LIMIT_EXCEEDED` → `rate_limited`; retryable for the rate limit, row locks and 5xx.
/// The message lists every error with the fields it names.
fn api_error(response: &Response) -> Error {
    let detail: Value = response.json().unwrap_or(Value::Null);
    let errors: Vec<&Value> = match &detail {
        Value::Array(list) => list.iter().filter(|e| e["message"].is_string()).collect(),
        _ => Vec::new(),
    };
    let mapped = Error::from_status(response.status, &response.body);
    let salesforce_code = errors
        .first()
        .and_then(|e| e["errorCode"].as_str())
        .filter(|c| is_error_code(c));
    let (code, retryable) = match salesforce_code {
        Some("INVALID_SESSION_ID") => ("unauthorized".to_string(), false),
        Some("API_DISABLED_FOR_ORG") => ("forbidden".to_string(), false),
        Some("NOT_FOUND") => ("not_found".to_string(), false),
        Some("REQUEST_LIMIT_EXCEEDED") => ("rate_limited".to_string(), true),
        Some(other @ ("UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE")) => (other.to_ascii_lowercase(), true),
        Some(other) => (other.to_ascii_lowercase(), mapped.retryable),
        None => (mapped.code.clone(), mapped.retryable),
    };
    let described: Vec<String> = errors
        .iter()
        .take(10)
        .map(|e| {
            let text = e["message"].as_str().unwrap_or_default();
            let code = e["errorCode"].as_str().unwrap_or("ERROR");
            let fields: Vec<&str> = e["fields"]
                .as_array()
                .map(|list| list.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if fields.is_empty() {
                format!("{code}: {text}")
            } else {
                format!("{code}: {text} (fields: {})", fields.join(", "))
            }
        })
        .collect();
    let message = if described.is_empty() {
        mapped.message
    } else {
        format!("Salesforce {}: {}", response.status, described.join("; "))
    };
    Error::new(code, message).with_retryable(retryable)
}
