//! HubSpot connector: create, update and search contacts, and create deals associated with
//! contacts, over the CRM v3 API (`https://api.hubapi.com/crm/v3/objects/…`), with a public
//! app's OAuth2 token (auth scheme `oauth`) or a private app's access token (auth scheme
//! `private_app`).
//!
//! Contact ids are checked to be digits, and an email address used as the id (`idProperty=email`)
//! is refused if it holds anything that could end or walk out of a path segment and is
//! percent-encoded otherwise, so no input can reach another path. HubSpot's CRM API has no
//! idempotency header: a retried `create_deal` may create a second deal (a retried
//! `create_contact` fails with `contact_exists`, HubSpot's emails being unique).

use nexum_connector_sdk::prelude::*;
use serde_json::Map;
use std::collections::BTreeMap;

/// The API origin when the connection sets no `api_base`.
const DEFAULT_API_BASE: &str = "https://api.hubapi.com";
/// The auth schemes, in order of preference.
const SCHEMES: &[&str] = &["oauth", "private_app"];
/// The contacts collection.
const CONTACTS: &str = "/crm/v3/objects/contacts";
/// The deals collection.
const DEALS: &str = "/crm/v3/objects/deals";
/// HubSpot's default association type from a deal to a contact.
const DEAL_TO_CONTACT: u32 = 3;
/// The most digits a HubSpot object id has (a 64-bit integer).
const MAX_ID_DIGITS: usize = 20;
/// The longest property internal name accepted.
const MAX_PROPERTY_NAME: usize = 100;
/// The longest email address accepted as a contact's id.
const MAX_EMAIL: usize = 254;
/// The page size of `search_contacts` when the input gives none.
const DEFAULT_LIMIT: u32 = 10;
/// The operators that compare with one `value`.
const VALUE_OPERATORS: &[&str] = &[
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
];

/// The HubSpot connector.
struct HubSpot;
connector!(HubSpot);

impl Connector for HubSpot {
    fn actions() -> Actions {
        Actions::new()
            .action("create_contact", create_contact)
            .action("update_contact", update_contact)
            .action("search_contacts", search_contacts)
            .action("create_deal", create_deal)
    }

    /// Read one contact (`GET /crm/v3/objects/contacts?limit=1`): it needs a valid token with
    /// the contacts read scope. Reports the daily request allowance when HubSpot sends it
    /// (private apps).
    fn test_connection() -> Result<Value, Error> {
        let response = send(Request::get(url(CONTACTS)).query("limit", 1), "conflict")?;
        let page: Value = response.json()?;
        let number = |name: &str| response.header(name).and_then(|v| v.trim().parse::<u64>().ok());
        Ok(json!({
            "contacts_readable": true,
            "sample_contact_id": page["results"][0]["id"],
            "daily_limit": number("x-hubspot-ratelimit-daily"),
            "daily_remaining": number("x-hubspot-ratelimit-daily-remaining"),
        }))
    }
}

/// Input of `create_contact`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateContact {
    /// Email address.
    email: Option<String>,
    /// First name.
    firstname: Option<String>,
    /// Last name.
    lastname: Option<String>,
    /// Phone number.
    phone: Option<String>,
    /// Company name (a text property).
    company: Option<String>,
    /// Other properties by internal name.
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

/// `POST /crm/v3/objects/contacts`.
fn create_contact(input: CreateContact) -> Result<Value, Error> {
    let properties = merge_properties(
        vec![
            ("email", input.email),
            ("firstname", input.firstname),
            ("lastname", input.lastname),
            ("phone", input.phone),
            ("company", input.company),
        ],
        input.properties,
    )?;
    let request = Request::post(url(CONTACTS)).json(&json!({ "properties": properties }))?;
    record(&send_json(request, "contact_exists")?)
}

/// Input of `update_contact`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateContact {
    /// The contact's id, or its email with `id_property = email`.
    contact_id: String,
    /// `email` when `contact_id` is an email address.
    id_property: Option<String>,
    /// New email address.
    email: Option<String>,
    /// New first name.
    firstname: Option<String>,
    /// New last name.
    lastname: Option<String>,
    /// New phone number.
    phone: Option<String>,
    /// New company name.
    company: Option<String>,
    /// Other properties by internal name.
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

/// `PATCH /crm/v3/objects/contacts/{contactId}` (with `?idProperty=email` for an email).
fn update_contact(input: UpdateContact) -> Result<Value, Error> {
    let (segment, by_email) = contact_segment(&input.contact_id, input.id_property.as_deref())?;
    let properties = merge_properties(
        vec![
            ("email", input.email),
            ("firstname", input.firstname),
            ("lastname", input.lastname),
            ("phone", input.phone),
            ("company", input.company),
        ],
        input.properties,
    )?;
    let request = Request::patch(url(&format!("{CONTACTS}/{segment}")))
        .query_opt("idProperty", by_email.then_some("email"))
        .json(&json!({ "properties": properties }))?;
    record(&send_json(request, "contact_exists")?)
}

/// One search filter.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    /// The property's internal name.
    property: String,
    /// HubSpot's operator (`EQ`, `BETWEEN`, `IN`, …).
    operator: String,
    /// The compared value (BETWEEN's lower bound).
    value: Option<Value>,
    /// BETWEEN's upper bound.
    high_value: Option<Value>,
    /// IN and NOT_IN's values.
    #[serde(default)]
    values: Vec<Value>,
}

/// Filters that must all match.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterGroup {
    /// The group's filters.
    filters: Vec<Filter>,
}

/// The order of search results.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sort {
    /// The property to sort by.
    property: String,
    /// `ASCENDING` (default) or `DESCENDING`.
    direction: Option<String>,
}

/// Input of `search_contacts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchContacts {
    /// Free text.
    query: Option<String>,
    /// One group of filters.
    #[serde(default)]
    filters: Vec<Filter>,
    /// Alternative groups of filters.
    #[serde(default)]
    filter_groups: Vec<FilterGroup>,
    /// Result order.
    sort: Option<Sort>,
    /// Properties to return.
    #[serde(default)]
    properties: Vec<String>,
    /// Page size, 1–100.
    limit: Option<u32>,
    /// The previous page's `next_after`.
    after: Option<String>,
}

/// `POST /crm/v3/objects/contacts/search`; the next page starts at `paging.next.after`.
fn search_contacts(input: SearchContacts) -> Result<Value, Error> {
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid_input("`limit` must be between 1 and 100"));
    }
    let mut body = json!({ "limit": limit });
    if let Some(query) = &input.query {
        if query.trim().is_empty() {
            return Err(Error::invalid_input("`query` must not be blank"));
        }
        body["query"] = json!(query.trim());
    }
    if !input.filters.is_empty() && !input.filter_groups.is_empty() {
        return Err(Error::invalid_input(
            "give either `filters` (all must match) or `filter_groups` (any group may match), not both",
        ));
    }
    let groups: Vec<Value> = if input.filters.is_empty() {
        input
            .filter_groups
            .iter()
            .map(|group| filters_json(&group.filters).map(|filters| json!({ "filters": filters })))
            .collect::<Result<_, Error>>()?
    } else {
        vec![json!({ "filters": filters_json(&input.filters)? })]
    };
    if !groups.is_empty() {
        body["filterGroups"] = Value::Array(groups);
    }
    if let Some(sort) = &input.sort {
        check_property_name("sort.property", &sort.property)?;
        let direction = sort.direction.as_deref().unwrap_or("ASCENDING");
        if !matches!(direction, "ASCENDING" | "DESCENDING") {
            return Err(Error::invalid_input("`sort.direction` must be ASCENDING or DESCENDING"));
        }
        body["sorts"] = json!([{ "propertyName": sort.property, "direction": direction }]);
    }
    if !input.properties.is_empty() {
        for name in &input.properties {
            check_property_name("properties", name)?;
        }
        body["properties"] = json!(input.properties);
    }
    if let Some(after) = &input.after {
        if after.is_empty() {
            return Err(Error::invalid_input("`after` must be a previous page's next_after"));
        }
        body["after"] = json!(after);
    }
    let request = Request::post(url(&format!("{CONTACTS}/search"))).json(&body)?;
    let page = send_json(request, "conflict")?;
    let contacts = page["results"]
        .as_array()
        .ok_or_else(|| Error::new("invalid_response", "HubSpot did not answer a list of results"))?
        .iter()
        .map(record)
        .collect::<Result<Vec<Value>, Error>>()?;
    let next_after = page["paging"]["next"]["after"].as_str().map(str::to_string);
    Ok(json!({
        "contacts": contacts,
        "total": page["total"].as_u64().unwrap_or_default(),
        "next_after": next_after,
    }))
}

/// A filter group's filters as HubSpot spells them; at least one.
fn filters_json(filters: &[Filter]) -> Result<Vec<Value>, Error> {
    if filters.is_empty() {
        return Err(Error::invalid_input("a filter group needs at least one filter"));
    }
    filters.iter().map(filter_json).collect()
}

/// One filter as HubSpot spells it, after checking the operator gets the values it takes.
fn filter_json(filter: &Filter) -> Result<Value, Error> {
    check_property_name("filters.property", &filter.property)?;
    let operator = filter.operator.as_str();
    let mut out = json!({ "propertyName": filter.property, "operator": operator });
    let refuse = |what: &str| Error::invalid_input(format!("filter on `{}`: {operator} {what}", filter.property));
    match operator {
        "HAS_PROPERTY" | "NOT_HAS_PROPERTY" => {
            if filter.value.is_some() || filter.high_value.is_some() || !filter.values.is_empty() {
                return Err(refuse("takes no value"));
            }
        }
        "IN" | "NOT_IN" => {
            if filter.values.is_empty() || filter.value.is_some() || filter.high_value.is_some() {
                return Err(refuse("takes `values` (a list) only"));
            }
            if !filter.values.iter().all(is_scalar) {
                return Err(refuse("takes strings or numbers in `values`"));
            }
            out["values"] = json!(filter.values);
        }
        "BETWEEN" => match (&filter.value, &filter.high_value) {
            (Some(low), Some(high)) if is_scalar(low) && is_scalar(high) && filter.values.is_empty() => {
                out["value"] = low.clone();
                out["highValue"] = high.clone();
            }
            _ => {
                return Err(refuse(
                    "takes `value` (the lower bound) and `high_value` (the upper bound)",
                ));
            }
        },
        op if VALUE_OPERATORS.contains(&op) => match &filter.value {
            Some(value) if is_scalar(value) && filter.high_value.is_none() && filter.values.is_empty() => {
                out["value"] = value.clone();
            }
            _ => return Err(refuse("takes one `value`")),
        },
        _ => return Err(refuse("is not a HubSpot search operator")),
    }
    Ok(out)
}

/// Whether `value` is a string, number or boolean.
fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Input of `create_deal`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateDeal {
    /// The deal's name.
    dealname: String,
    /// Amount, a number or a decimal string.
    amount: Option<Value>,
    /// Stage id.
    dealstage: Option<String>,
    /// Pipeline id.
    pipeline: Option<String>,
    /// Close date.
    closedate: Option<String>,
    /// Contacts to associate.
    #[serde(default)]
    contact_ids: Vec<String>,
    /// Other properties by internal name.
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

/// `POST /crm/v3/objects/deals`, with one association (type 3, deal to contact) per contact.
fn create_deal(input: CreateDeal) -> Result<Value, Error> {
    if input.dealname.trim().is_empty() {
        return Err(Error::invalid_input("`dealname` must not be blank"));
    }
    let amount = match input.amount {
        None => None,
        Some(Value::String(text)) => Some(text),
        Some(Value::Number(number)) => Some(number.to_string()),
        Some(_) => return Err(Error::invalid_input("`amount` must be a number or a decimal string")),
    };
    if let Some(id) = input.contact_ids.iter().find(|id| !is_object_id(id)) {
        return Err(Error::invalid_input(format!(
            "`contact_ids`: `{id}` is not a HubSpot contact id (digits)"
        )));
    }
    let properties = merge_properties(
        vec![
            ("dealname", Some(input.dealname)),
            ("amount", amount),
            ("dealstage", input.dealstage),
            ("pipeline", input.pipeline),
            ("closedate", input.closedate),
        ],
        input.properties,
    )?;
    let mut body = json!({ "properties": properties });
    if !input.contact_ids.is_empty() {
        let associations: Vec<Value> = input
            .contact_ids
            .iter()
            .map(|id| {
                json!({
                    "to": { "id": id },
                    "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": DEAL_TO_CONTACT }],
                })
            })
            .collect();
        body["associations"] = Value::Array(associations);
    }
    record(&send_json(Request::post(url(DEALS)).json(&body)?, "conflict")?)
}

/// The named fields and the free-form `properties` as one property map: each name given once,
/// every free-form name a property internal name, at least one property.
fn merge_properties(
    named: Vec<(&'static str, Option<String>)>,
    extra: BTreeMap<String, String>,
) -> Result<Map<String, Value>, Error> {
    let mut merged = Map::new();
    for (name, value) in named {
        if let Some(value) = value {
            merged.insert(name.to_string(), Value::String(value));
        }
    }
    for (name, value) in extra {
        check_property_name("properties", &name)?;
        if merged.contains_key(&name) {
            return Err(Error::invalid_input(format!(
                "`{name}` is given twice: as a field and in `properties`"
            )));
        }
        merged.insert(name, Value::String(value));
    }
    if merged.is_empty() {
        return Err(Error::invalid_input("give at least one property to set"));
    }
    Ok(merged)
}

/// Refuse `name` unless it is a property internal name: a letter, then letters, digits and
/// `_`, at most [`MAX_PROPERTY_NAME`].
fn check_property_name(field: &str, name: &str) -> Result<(), Error> {
    let valid = name.len() <= MAX_PROPERTY_NAME
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "`{field}`: `{name}` is not a HubSpot property internal name (a letter, then letters, digits, `_`)"
        )))
    }
}

/// Whether `id` is a HubSpot object id: 1 to [`MAX_ID_DIGITS`] digits.
fn is_object_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_DIGITS && id.bytes().all(|b| b.is_ascii_digit())
}

/// The path segment naming a contact, and whether it is an email (`idProperty=email`). An id
/// must be digits; an email must hold one `@` and nothing that ends or walks out of a segment
/// (`/`, `\`, `?`, `#`, `%`, `..`, whitespace), and is percent-encoded.
fn contact_segment(id: &str, id_property: Option<&str>) -> Result<(String, bool), Error> {
    match id_property {
        None if is_object_id(id) => Ok((id.to_string(), false)),
        None => Err(Error::invalid_input(format!(
            "`contact_id` must be a HubSpot contact id (digits), got `{id}`; for an email address set `id_property` to email"
        ))),
        Some("email") => {
            let plausible = id.len() <= MAX_EMAIL
                && id.matches('@').count() == 1
                && !id.starts_with('@')
                && !id.ends_with('@')
                && !id.contains("..")
                && id
                    .bytes()
                    .all(|b| b >= 0x80 || (b.is_ascii_graphic() && !matches!(b, b'/' | b'\\' | b'?' | b'#' | b'%')));
            if plausible {
                Ok((percent_encode(id), true))
            } else {
                Err(Error::invalid_input(format!(
                    "`contact_id` must be an email address (one `@`; no `/`, `\\`, `?`, `#`, `%`, `..` or spaces) with id_property = email, got `{id}`"
                )))
            }
        }
        Some(other) => Err(Error::invalid_input(format!(
            "`id_property` must be email, got `{other}`"
        ))),
    }
}

/// Percent-encode everything outside RFC 3986's unreserved set.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A CRM object (`{id, properties, createdAt, updatedAt, archived}`) as the actions output it.
fn record(object: &Value) -> Result<Value, Error> {
    let id = object["id"]
        .as_str()
        .ok_or_else(|| Error::new("invalid_response", "HubSpot answered an object without an id"))?;
    let properties = match &object["properties"] {
        Value::Object(map) => Value::Object(map.clone()),
        _ => json!({}),
    };
    Ok(json!({
        "id": id,
        "properties": properties,
        "created_at": object["createdAt"],
        "updated_at": object["updatedAt"],
        "archived": object["archived"],
    }))
}

/// `<api_base><path>`.
fn url(path: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| DEFAULT_API_BASE.into());
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Send with the connection's token; a non-2xx answer becomes [`api_error`], a 409 under
/// `conflict`.
fn send(request: Request<'_>, conflict: &str) -> Result<Response, Error> {
    let token = any_credential(SCHEMES)?;
    let response = request.header("Accept", "application/json").auth(&token).send()?;
    if response.is_success() {
        Ok(response)
    } else {
        Err(api_error(&response, conflict))
    }
}

/// [`send`], then decode the JSON body.
fn send_json(request: Request<'_>, conflict: &str) -> Result<Value, Error> {
    send(request, conflict)?.json()
}

/// HubSpot's `{status, message, correlationId, category, errors[]}` under a stable code: 401
/// `unauthorized` (the connection's status flips), 403 `missing_scope` for `MISSING_SCOPES`
/// (naming the scopes to add) and `forbidden` otherwise, 404 `not_found`, 409 `conflict`
/// (`contact_exists` on contacts, naming the existing contact), 400 `bad_request` (HubSpot's
/// `VALIDATION_ERROR`, with each refused property), 429 `rate_limited` (retryable, naming the
/// limit that was hit), 5xx `upstream_error` (retryable). The correlation id HubSpot's support
/// asks for ends the message.
fn api_error(response: &Response, conflict: &str) -> Error {
    let detail: Value = response.json().unwrap_or(Value::Null);
    let status = response.status;
    let said = detail["message"].as_str().map(str::trim).filter(|m| !m.is_empty());
    let category = detail["category"]
        .as_str()
        .or_else(|| detail["errorType"].as_str())
        .unwrap_or_default();
    let mapped = Error::from_status(status, &response.body);
    let (code, retryable) = match (status, category) {
        (429, _) => ("rate_limited", true),
        (401, _) => ("unauthorized", false),
        (403, "MISSING_SCOPES") => ("missing_scope", false),
        (403, _) => ("forbidden", false),
        (404, _) => ("not_found", false),
        (409, _) => (conflict, false),
        (400 | 422, _) => ("bad_request", false),
        _ => (mapped.code.as_str(), mapped.retryable),
    };
    let mut message = match said {
        Some(text) if category.is_empty() => format!("HubSpot {status}: {text}"),
        Some(text) => format!("HubSpot {status} {category}: {text}"),
        None => mapped.message.clone(),
    };
    if status == 409
        && let Some(existing) = said.and_then(existing_id)
    {
        message = format!("the contact already exists: existing contact id {existing} ({message})");
    }
    let details = error_details(&detail["errors"]);
    if !details.is_empty() {
        message.push_str(&format!(" ({details})"));
    }
    let scopes = required_scopes(&detail["errors"]);
    if !scopes.is_empty() {
        message.push_str(&format!(
            "; the connection needs the scopes {}: add them to the app and sign in again",
            scopes.join(", ")
        ));
    }
    if status == 429
        && let Some(policy) = detail["policyName"].as_str()
    {
        message.push_str(&format!("; limit {policy}"));
    }
    if let Some(secs) = response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        message.push_str(&format!("; retry after {secs} s"));
    }
    if let Some(id) = detail["correlationId"].as_str() {
        message.push_str(&format!("; correlation id {id}"));
    }
    Error::new(code, message).with_retryable(retryable)
}

/// The contact id in HubSpot's "Contact already exists. Existing ID: 12345".
fn existing_id(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("Existing ID:")?;
    let rest = rest.trim_start();
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest.get(..end).filter(|id| !id.is_empty())
}

/// HubSpot's `errors` list as text: `PROPERTY_DOESNT_EXIST: Property "x" does not exist; …`.
fn error_details(errors: &Value) -> String {
    let Some(list) = errors.as_array() else {
        return String::new();
    };
    list.iter()
        .take(10)
        .filter_map(|e| {
            let text = e["message"].as_str()?.trim();
            if text.is_empty() {
                return None;
            }
            Some(match e["code"].as_str() {
                Some(code) => format!("{code}: {text}"),
                None => text.to_string(),
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The scopes a `MISSING_SCOPES` answer names (`errors[].context.requiredGranularScopes`, or
/// `requiredScopes`), each once.
fn required_scopes(errors: &Value) -> Vec<&str> {
    let mut scopes: Vec<&str> = Vec::new();
    for error in errors.as_array().into_iter().flatten() {
        for key in ["requiredGranularScopes", "requiredScopes"] {
            let named = error["context"][key].as_array().into_iter().flatten();
            for scope in named.filter_map(Value::as_str) {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
    }
    scopes
}
