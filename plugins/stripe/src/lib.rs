//! Stripe connector: customers, invoice items, invoices, PaymentIntents and charges over
//! Stripe's REST API (`/v1/…`). Bodies are form-encoded in Stripe's nested-key style
//! (`metadata[order_id]=42`, `payment_method_types[0]=card`), the secret key travels as
//! `Authorization: Bearer` (injected by the host), every request pins `Stripe-Version`, and
//! every write carries the call's idempotency key as `Idempotency-Key`.

use nexum_connector_sdk::prelude::*;
use std::collections::BTreeMap;

/// The API version every request pins, so response shapes do not change under a workflow.
const STRIPE_VERSION: &str = "2024-06-20";
/// The auth scheme of the secret (or restricted) key.
const SCHEME: &str = "secret_key";
/// Stripe's API origin when the connection sets no `api_base`.
const DEFAULT_BASE: &str = "https://api.stripe.com";

/// Stripe metadata: string values under short keys.
type Metadata = BTreeMap<String, String>;

/// The customer fields an action returns.
const CUSTOMER: &[&str] = &["id", "email", "name", "phone", "description", "metadata", "created"];
/// The invoice item fields `create_invoice_item` returns.
const INVOICE_ITEM: &[&str] = &[
    "id",
    "customer",
    "amount",
    "currency",
    "quantity",
    "description",
    "invoice",
];
/// The invoice fields an action returns.
const INVOICE: &[&str] = &[
    "id",
    "status",
    "customer",
    "number",
    "amount_due",
    "currency",
    "hosted_invoice_url",
    "invoice_pdf",
];
/// The PaymentIntent fields `create_payment_intent` returns.
const PAYMENT_INTENT: &[&str] = &[
    "id",
    "status",
    "amount",
    "currency",
    "customer",
    "payment_method",
    "latest_charge",
    "client_secret",
];
/// The charge fields `list_charges` returns.
const CHARGE: &[&str] = &[
    "id",
    "amount",
    "amount_captured",
    "amount_refunded",
    "currency",
    "status",
    "paid",
    "refunded",
    "customer",
    "payment_intent",
    "description",
    "created",
];

/// The Stripe connector.
struct Stripe;
connector!(Stripe);

impl Connector for Stripe {
    fn actions() -> Actions {
        Actions::new()
            .action("create_customer", create_customer)
            .action("get_customer", get_customer)
            .action("create_invoice_item", create_invoice_item)
            .action("create_invoice", create_invoice)
            .action("finalize_invoice", finalize_invoice)
            .action("create_payment_intent", create_payment_intent)
            .action("list_charges", list_charges)
    }

    /// Read the account's balance: any working key (live or test) may, and it says which mode
    /// the key is in.
    fn test_connection() -> Result<Value, Error> {
        let balance = send(Request::get(url("/v1/balance")))?;
        let available: Vec<Value> = balance["available"]
            .as_array()
            .map(|funds| {
                funds
                    .iter()
                    .map(|f| json!({ "amount": f["amount"], "currency": f["currency"] }))
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!({ "livemode": balance["livemode"], "available": available }))
    }
}

/// Input of `create_customer`.
#[derive(Deserialize)]
struct CreateCustomer {
    /// The customer's email address.
    email: Option<String>,
    /// Full name or business name.
    name: Option<String>,
    /// Phone number.
    phone: Option<String>,
    /// Internal description.
    description: Option<String>,
    /// Key/value strings stored on the customer.
    metadata: Option<Metadata>,
}

/// POST /v1/customers.
fn create_customer(input: CreateCustomer) -> Result<Value, Error> {
    let customer = post(
        "/v1/customers",
        &[
            ("email", json!(input.email)),
            ("name", json!(input.name)),
            ("phone", json!(input.phone)),
            ("description", json!(input.description)),
            ("metadata", json!(input.metadata)),
        ],
    )?;
    Ok(customer_out(&customer))
}

/// Input of `get_customer`.
#[derive(Deserialize)]
struct GetCustomer {
    /// The customer id (`cus_…`).
    id: String,
}

/// GET /v1/customers/{id}; a deleted customer is `{id, deleted: true}` at Stripe.
fn get_customer(input: GetCustomer) -> Result<Value, Error> {
    let customer = send(Request::get(url(&format!("/v1/customers/{}", input.id))))?;
    Ok(customer_out(&customer))
}

/// The [`CUSTOMER`] fields, and whether the customer was deleted.
fn customer_out(c: &Value) -> Value {
    let mut out = pick(c, CUSTOMER);
    out["deleted"] = json!(c["deleted"].as_bool().unwrap_or(false));
    out
}

/// The named `fields` of a Stripe object (`null` where it has none).
fn pick(object: &Value, fields: &[&str]) -> Value {
    Value::Object(fields.iter().map(|f| (f.to_string(), object[*f].clone())).collect())
}

/// Input of `create_invoice_item`.
#[derive(Deserialize)]
struct CreateInvoiceItem {
    /// The customer billed.
    customer: String,
    /// A fixed amount in the smallest currency unit (negative for a credit).
    amount: Option<i64>,
    /// Currency of `amount`.
    currency: Option<String>,
    /// A price object (`price_…`) instead of an amount.
    price: Option<String>,
    /// Units of `price`.
    quantity: Option<u64>,
    /// The line's text on the invoice.
    description: Option<String>,
    /// A draft invoice to add the line to.
    invoice: Option<String>,
    /// Key/value strings stored on the item.
    metadata: Option<Metadata>,
}

/// POST /v1/invoiceitems: a `price` (with `quantity`), or an `amount` with its `currency`.
fn create_invoice_item(input: CreateInvoiceItem) -> Result<Value, Error> {
    match (&input.price, input.amount) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_input(
                "give `price` (with an optional `quantity`) or `amount` with `currency`, not both",
            ));
        }
        (None, None) => return Err(Error::invalid_input("give `price` or `amount` with `currency`")),
        (None, Some(_)) if input.currency.is_none() => {
            return Err(Error::invalid_input("`amount` needs its `currency`"));
        }
        (None, Some(_)) if input.quantity.is_some() => {
            return Err(Error::invalid_input(
                "`quantity` counts units of a `price`; a fixed `amount` is the whole line",
            ));
        }
        _ => {}
    }
    let item = post(
        "/v1/invoiceitems",
        &[
            ("customer", json!(input.customer)),
            ("amount", json!(input.amount)),
            ("currency", json!(input.currency)),
            ("price", json!(input.price)),
            ("quantity", json!(input.quantity)),
            ("description", json!(input.description)),
            ("invoice", json!(input.invoice)),
            ("metadata", json!(input.metadata)),
        ],
    )?;
    Ok(pick(&item, INVOICE_ITEM))
}

/// Input of `create_invoice`.
#[derive(Deserialize)]
struct CreateInvoice {
    /// The customer billed.
    customer: String,
    /// `charge_automatically` or `send_invoice`.
    collection_method: Option<String>,
    /// Days to pay a `send_invoice` invoice.
    days_until_due: Option<u32>,
    /// Let Stripe finalize and collect automatically.
    auto_advance: Option<bool>,
    /// `include` the customer's pending invoice items, or `exclude` them (Stripe's default).
    pending_invoice_items_behavior: Option<String>,
    /// The invoice's memo.
    description: Option<String>,
    /// Key/value strings stored on the invoice.
    metadata: Option<Metadata>,
}

/// POST /v1/invoices: a draft invoice.
fn create_invoice(input: CreateInvoice) -> Result<Value, Error> {
    let send_invoice = input.collection_method.as_deref() == Some("send_invoice");
    if send_invoice && input.days_until_due.is_none() {
        return Err(Error::invalid_input(
            "collection_method `send_invoice` needs `days_until_due` (the customer pays from the emailed invoice)",
        ));
    }
    if !send_invoice && input.days_until_due.is_some() {
        return Err(Error::invalid_input(
            "`days_until_due` only applies with collection_method `send_invoice`",
        ));
    }
    let invoice = post(
        "/v1/invoices",
        &[
            ("customer", json!(input.customer)),
            ("collection_method", json!(input.collection_method)),
            ("days_until_due", json!(input.days_until_due)),
            ("auto_advance", json!(input.auto_advance)),
            (
                "pending_invoice_items_behavior",
                json!(input.pending_invoice_items_behavior),
            ),
            ("description", json!(input.description)),
            ("metadata", json!(input.metadata)),
        ],
    )?;
    Ok(pick(&invoice, INVOICE))
}

/// Input of `finalize_invoice`.
#[derive(Deserialize)]
struct FinalizeInvoice {
    /// The draft invoice (`in_…`).
    id: String,
    /// Let Stripe collect the finalized invoice automatically.
    auto_advance: Option<bool>,
}

/// POST /v1/invoices/{id}/finalize.
fn finalize_invoice(input: FinalizeInvoice) -> Result<Value, Error> {
    let path = format!("/v1/invoices/{}/finalize", input.id);
    let invoice = post(&path, &[("auto_advance", json!(input.auto_advance))])?;
    Ok(pick(&invoice, INVOICE))
}

/// Input of `create_payment_intent`.
#[derive(Deserialize)]
struct CreatePaymentIntent {
    /// In the smallest currency unit.
    amount: u64,
    /// ISO currency, lower case.
    currency: String,
    /// The customer paying.
    customer: Option<String>,
    /// A saved payment method.
    payment_method: Option<String>,
    /// Explicit payment method types.
    payment_method_types: Option<Vec<String>>,
    /// Offer the Dashboard's payment methods.
    automatic_payment_methods: Option<bool>,
    /// Confirm at once.
    confirm: Option<bool>,
    /// The customer is not present.
    off_session: Option<bool>,
    /// Where Stripe sends the receipt.
    receipt_email: Option<String>,
    /// Shown in the Dashboard.
    description: Option<String>,
    /// Key/value strings stored on the PaymentIntent.
    metadata: Option<Metadata>,
}

/// POST /v1/payment_intents.
fn create_payment_intent(input: CreatePaymentIntent) -> Result<Value, Error> {
    if input.off_session == Some(true) && input.confirm != Some(true) {
        return Err(Error::invalid_input(
            "`off_session` needs `confirm: true` (an absent customer is charged at once or not at all)",
        ));
    }
    if input.automatic_payment_methods == Some(true) && input.payment_method_types.is_some() {
        return Err(Error::invalid_input(
            "give `automatic_payment_methods` or `payment_method_types`, not both",
        ));
    }
    let automatic = input
        .automatic_payment_methods
        .map(|enabled| json!({ "enabled": enabled }));
    let intent = post(
        "/v1/payment_intents",
        &[
            ("amount", json!(input.amount)),
            ("currency", json!(input.currency)),
            ("customer", json!(input.customer)),
            ("payment_method", json!(input.payment_method)),
            ("payment_method_types", json!(input.payment_method_types)),
            ("automatic_payment_methods", json!(automatic)),
            ("confirm", json!(input.confirm)),
            ("off_session", json!(input.off_session)),
            ("receipt_email", json!(input.receipt_email)),
            ("description", json!(input.description)),
            ("metadata", json!(input.metadata)),
        ],
    )?;
    Ok(pick(&intent, PAYMENT_INTENT))
}

/// Input of `list_charges`.
#[derive(Deserialize)]
struct ListCharges {
    /// Page size, 1–100.
    limit: Option<u32>,
    /// The previous page's `last_id`.
    starting_after: Option<String>,
    /// Only this customer's charges.
    customer: Option<String>,
    /// Created at or after (Unix seconds).
    created_gte: Option<i64>,
    /// Created at or before (Unix seconds).
    created_lte: Option<i64>,
}

/// GET /v1/charges, one page: Stripe's cursor is the last id of the previous page.
fn list_charges(input: ListCharges) -> Result<Value, Error> {
    let request = Request::get(url("/v1/charges"))
        .query_opt("limit", input.limit)
        .query_opt("starting_after", input.starting_after.as_deref())
        .query_opt("customer", input.customer.as_deref())
        .query_opt("created[gte]", input.created_gte)
        .query_opt("created[lte]", input.created_lte);
    let page = send(request)?;
    let charges: Vec<Value> = page["data"]
        .as_array()
        .map(|data| data.iter().map(|charge| pick(charge, CHARGE)).collect())
        .unwrap_or_default();
    let last_id = charges.last().map_or(Value::Null, |c| c["id"].clone());
    Ok(json!({
        "charges": charges,
        "has_more": page["has_more"].as_bool().unwrap_or(false),
        "last_id": last_id,
    }))
}

/// `<api_base><path>`.
fn url(path: &str) -> String {
    let base = var("api_base")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| DEFAULT_BASE.into());
    format!("{}{path}", base.trim_end_matches('/'))
}

/// A form-encoded POST of `fields` to `path`, carrying the call's idempotency key so a
/// retried workflow step does not create a second object.
fn post(path: &str, fields: &[(&str, Value)]) -> Result<Value, Error> {
    let mut request = Request::post(url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(stripe_form(fields));
    if let Some(key) = idempotency_key() {
        request = request.header("Idempotency-Key", key);
    }
    send(request)
}

/// Send with the secret key and the pinned API version; Stripe's error object becomes the
/// connector error (see [`stripe_error`]).
fn send(request: Request<'_>) -> Result<Value, Error> {
    let key = credential(SCHEME)?;
    let response = request.header("Stripe-Version", STRIPE_VERSION).auth(&key).send()?;
    if response.is_success() {
        return response.json();
    }
    Err(stripe_error(&response))
}

/// Stripe's `{"error": {type, code, decline_code, message, param}}` as a connector error:
/// 401 `unauthorized`, 403 `forbidden`, a missing object (`resource_missing`, or any 404)
/// `not_found`, a card error under Stripe's own code (`card_declined`, `expired_card`…),
/// an idempotency key reused with other parameters `idempotency_conflict`, 409 `conflict`,
/// 429 `rate_limited` and 5xx `upstream_error` (both retryable), other 400/402 `bad_request`.
/// The message names Stripe's code, decline code, parameter and request id. A
/// `Stripe-Should-Retry` header overrides the retryability.
fn stripe_error(response: &Response) -> Error {
    let body: Value = response.json().unwrap_or(Value::Null);
    let detail = &body["error"];
    let mapped = match detail["message"].as_str() {
        Some(message) => {
            let kind = detail["type"].as_str().unwrap_or_default();
            let stripe_code = detail["code"].as_str().filter(|c| !c.is_empty());
            let (code, retryable) = match (response.status, kind, stripe_code) {
                (401, ..) => ("unauthorized", false),
                (403, ..) => ("forbidden", false),
                (404, ..) | (_, _, Some("resource_missing")) => ("not_found", false),
                (_, "card_error", Some(card_code)) => (card_code, false),
                (_, "card_error", None) => ("card_error", false),
                (_, "idempotency_error", _) => ("idempotency_conflict", false),
                (409, ..) => ("conflict", true),
                (429, ..) => ("rate_limited", true),
                (500..=599, ..) => ("upstream_error", true),
                (400 | 402, ..) => ("bad_request", false),
                _ => ("upstream_error", false),
            };
            let mut facts = vec![format!("HTTP {}", response.status)];
            if !kind.is_empty() {
                facts.push(kind.to_string());
            }
            if let Some(c) = stripe_code {
                facts.push(format!("code {c}"));
            }
            if let Some(d) = detail["decline_code"].as_str() {
                facts.push(format!("decline_code {d}"));
            }
            if let Some(p) = detail["param"].as_str().filter(|p| !p.is_empty()) {
                facts.push(format!("param `{p}`"));
            }
            if let Some(id) = response.header("request-id") {
                facts.push(format!("request {id}"));
            }
            Error::new(code, format!("Stripe: {message} ({})", facts.join(", "))).with_retryable(retryable)
        }
        None => Error::from_status(response.status, &response.body),
    };
    match response.header("stripe-should-retry") {
        Some("true") => mapped.with_retryable(true),
        Some("false") => mapped.with_retryable(false),
        _ => mapped,
    }
}

/// Encode `fields` as a Stripe form body (see [`form_pairs`]).
fn stripe_form(fields: &[(&str, Value)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_pairs(fields) {
        form.append_pair(&name, &value);
    }
    form.finish()
}

/// Stripe's form encoding of `fields`, in order: an object nests as `name[key]`, an array as
/// `name[0]`, `name[1]`…, booleans and numbers as their JSON text; `null` (an absent
/// optional field) and empty arrays and objects are left out.
fn form_pairs(fields: &[(&str, Value)]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (name, value) in fields {
        flatten(name, value, &mut pairs);
    }
    pairs
}

/// Flatten `value` under `key` into `out`.
fn flatten(key: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push((key.to_string(), b.to_string())),
        Value::Number(n) => out.push((key.to_string(), n.to_string())),
        Value::String(s) => out.push((key.to_string(), s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{key}[{i}]"), item, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{key}[{k}]"), v, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn scalars_keep_their_order_and_nulls_are_left_out() {
        let fields = [
            ("email", json!("ada@example.com")),
            ("name", Value::Null),
            ("amount", json!(2500)),
            ("confirm", json!(true)),
        ];
        assert_eq!(
            form_pairs(&fields),
            pairs(&[("email", "ada@example.com"), ("amount", "2500"), ("confirm", "true")])
        );
    }

    #[test]
    fn objects_nest_and_arrays_are_indexed() {
        let fields = [
            ("metadata", json!({ "order_id": "42" })),
            (
                "items",
                json!([{ "price": "price_1", "quantity": 2 }, { "price": "price_2" }]),
            ),
            ("expand", json!(["customer", "latest_charge"])),
            ("empty", json!([])),
            ("automatic_payment_methods", json!({ "enabled": true })),
        ];
        assert_eq!(
            form_pairs(&fields),
            pairs(&[
                ("metadata[order_id]", "42"),
                ("items[0][price]", "price_1"),
                ("items[0][quantity]", "2"),
                ("items[1][price]", "price_2"),
                ("expand[0]", "customer"),
                ("expand[1]", "latest_charge"),
                ("automatic_payment_methods[enabled]", "true"),
            ])
        );
    }

    #[test]
    fn the_body_is_percent_encoded() {
        let fields = [
            ("description", json!("Tea & cake = 4€")),
            ("metadata", json!({ "order id": "a+b" })),
        ];
        assert_eq!(
            stripe_form(&fields),
            "description=Tea+%26+cake+%3D+4%E2%82%AC&metadata%5Border+id%5D=a%2Bb"
        );
    }
}
