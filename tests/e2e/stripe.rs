//! The Stripe connector against a fake Stripe: the exact form bodies in Stripe's nested-key
//! encoding (`metadata[order_id]`, `payment_method_types[0]`), the pinned `Stripe-Version`,
//! the call's idempotency key as `Idempotency-Key` on writes only, the secret key only
//! inside `Authorization: Bearer`, cursor paging of charges, and Stripe's error objects
//! mapped to stable, correctly retryable codes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector};
use nexum_tests::fakes::{self, Fake, Recorded};
use nexum_tests::host::{TestHost, connector_error};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const KEY: &str = "sk_test_51FakeStripeSecretKey0123456789";
const VERSION: &str = "2024-06-20";
const FORM: &str = "application/x-www-form-urlencoded";

fn authed(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(format!("Bearer {KEY}").as_str())
}

/// Stripe's error envelope, with the `Request-Id` every Stripe answer carries.
fn error(status: StatusCode, error: Value) -> Response {
    (
        status,
        [("request-id", "req_fake123")],
        axum::Json(json!({ "error": error })),
    )
        .into_response()
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        json!({ "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****0000" }),
    )
}

fn ok(body: Value) -> Response {
    axum::Json(body).into_response()
}

fn form_map(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The form fields of a recorded request, in the order they were sent.
fn form(r: &Recorded) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn customer() -> Value {
    json!({
        "id": "cus_123", "object": "customer", "email": "ada@example.com", "name": "Ada Lovelace",
        "phone": null, "description": "VIP", "metadata": { "order_id": "42" }, "created": 1700000000,
        "livemode": false, "balance": 0
    })
}

fn charge(id: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "charge", "amount": 1000, "amount_captured": 1000, "amount_refunded": 0,
        "currency": "usd", "status": "succeeded", "paid": true, "refunded": false, "customer": "cus_123",
        "payment_intent": "pi_1", "description": null, "created": created,
        "receipt_url": "https://pay.stripe.com/receipts/fake"
    })
}

/// What the connector makes of [`charge`].
fn charge_out(id: &str, created: i64) -> Value {
    json!({
        "id": id, "amount": 1000, "amount_captured": 1000, "amount_refunded": 0, "currency": "usd",
        "status": "succeeded", "paid": true, "refunded": false, "customer": "cus_123",
        "payment_intent": "pi_1", "description": null, "created": created
    })
}

fn invoice(status: &str) -> Value {
    let finalized = status != "draft";
    json!({
        "id": "in_1", "object": "invoice", "status": status, "customer": "cus_123",
        "number": if finalized { json!("A1B2C3-0001") } else { Value::Null },
        "amount_due": 2500, "currency": "usd",
        "hosted_invoice_url": if finalized { json!("https://invoice.stripe.com/i/acct_1/test_1") } else { Value::Null },
        "invoice_pdf": if finalized { json!("https://pay.stripe.com/invoice/acct_1/test_1/pdf") } else { Value::Null }
    })
}

/// A fake Stripe API. PaymentIntents: `pm_card_chargeDeclined` is declined (402, as Stripe's
/// test card), amount 4290 is rate limited (429), 5000 fails with `Stripe-Should-Retry:
/// false` (500), and the idempotency key `reused-key` was used before with other parameters.
async fn stripe() -> Fake {
    let router = Router::new()
        .route(
            "/v1/customers",
            post(|headers: HeaderMap| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                ok(json!({
                    "id": "cus_123", "object": "customer", "email": "ada@example.com", "name": "Ada Lovelace",
                    "phone": null, "description": "VIP", "metadata": { "order_id": "42", "plan": "pro" },
                    "created": 1700000000, "livemode": false
                }))
            }),
        )
        .route(
            "/v1/customers/{id}",
            get(|Path(id): Path<String>, headers: HeaderMap| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                match id.as_str() {
                    "cus_123" => ok(customer()),
                    "cus_gone" => ok(json!({ "id": "cus_gone", "object": "customer", "deleted": true })),
                    _ => error(
                        StatusCode::NOT_FOUND,
                        json!({ "type": "invalid_request_error", "code": "resource_missing", "param": "id",
                                "message": format!("No such customer: '{id}'"),
                                "doc_url": "https://stripe.com/docs/error-codes/resource-missing" }),
                    ),
                }
            }),
        )
        .route(
            "/v1/invoiceitems",
            post(|headers: HeaderMap, body: Bytes| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                let f = form_map(&body);
                if f.get("currency").map(String::as_str) == Some("xxx") {
                    return error(
                        StatusCode::BAD_REQUEST,
                        json!({ "type": "invalid_request_error", "param": "currency",
                                "message": "Invalid currency: xxx. Stripe currently supports these currencies: usd, eur, gbp" }),
                    );
                }
                ok(json!({
                    "id": "ii_1", "object": "invoiceitem", "customer": f.get("customer"), "amount": 2500,
                    "currency": "usd", "quantity": 1, "description": f.get("description"), "invoice": null
                }))
            }),
        )
        .route(
            "/v1/invoices",
            post(|headers: HeaderMap| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                ok(invoice("draft"))
            }),
        )
        .route(
            "/v1/invoices/{id}/finalize",
            post(|Path(id): Path<String>, headers: HeaderMap| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                if id != "in_1" {
                    return error(
                        StatusCode::NOT_FOUND,
                        json!({ "type": "invalid_request_error", "code": "resource_missing", "param": "invoice",
                                "message": format!("No such invoice: '{id}'") }),
                    );
                }
                ok(invoice("open"))
            }),
        )
        .route(
            "/v1/payment_intents",
            post(|headers: HeaderMap, body: Bytes| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                if headers.get("idempotency-key").and_then(|v| v.to_str().ok()) == Some("reused-key") {
                    return error(
                        StatusCode::BAD_REQUEST,
                        json!({ "type": "idempotency_error",
                                "message": "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than 'reused-key' if you meant to execute a different request." }),
                    );
                }
                let f = form_map(&body);
                let field = |name: &str| f.get(name).map(String::as_str);
                if field("payment_method") == Some("pm_card_chargeDeclined") {
                    return error(
                        StatusCode::PAYMENT_REQUIRED,
                        json!({ "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                                "message": "Your card was declined." }),
                    );
                }
                match field("amount") {
                    Some("4290") => {
                        return error(
                            StatusCode::TOO_MANY_REQUESTS,
                            json!({ "type": "invalid_request_error", "code": "rate_limit",
                                    "message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits." }),
                        );
                    }
                    Some("5000") => {
                        return (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            [("stripe-should-retry", "false")],
                            axum::Json(json!({ "error": { "type": "api_error", "message": "Something went wrong on Stripe's end." } })),
                        )
                            .into_response();
                    }
                    _ => {}
                }
                let confirmed = field("confirm") == Some("true");
                ok(json!({
                    "id": "pi_1", "object": "payment_intent",
                    "status": if confirmed { "succeeded" } else { "requires_payment_method" },
                    "amount": field("amount").and_then(|a| a.parse::<i64>().ok()),
                    "currency": field("currency"), "customer": field("customer"),
                    "payment_method": field("payment_method"),
                    "latest_charge": if confirmed { json!("ch_1") } else { Value::Null },
                    "client_secret": "pi_1_secret_abc"
                }))
            }),
        )
        .route(
            "/v1/charges",
            get(|headers: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                if q.get("starting_after").map(String::as_str) == Some("ch_2") {
                    ok(json!({ "object": "list", "url": "/v1/charges", "has_more": false, "data": [charge("ch_1", 1700000100)] }))
                } else {
                    ok(json!({ "object": "list", "url": "/v1/charges", "has_more": true,
                               "data": [charge("ch_3", 1700000300), charge("ch_2", 1700000200)] }))
                }
            }),
        )
        .route(
            "/v1/balance",
            get(|headers: HeaderMap| async move {
                if !authed(&headers) {
                    return unauthorized();
                }
                ok(json!({
                    "object": "balance", "livemode": false,
                    "available": [{ "amount": 123456, "currency": "usd", "source_types": { "card": 123456 } }],
                    "pending": [{ "amount": 0, "currency": "usd" }]
                }))
            }),
        );
    fakes::serve(router).await
}

struct Setup {
    host: TestHost,
    fake: Fake,
    connector: Arc<LoadedConnector>,
    connection: Arc<Connection>,
}

impl Setup {
    async fn new(key: &str) -> Self {
        let fake = stripe().await;
        let (host, connector, connection) = TestHost::connected(
            "stripe",
            &[("api_base", &fake.origin())],
            &[("secret_key", &[("token", key)])],
        );
        Self {
            host,
            fake,
            connector,
            connection,
        }
    }

    /// Run `action` with `input` under idempotency key `key`.
    async fn run(&self, action: &str, input: Value, key: Option<&str>) -> CallOutcome {
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

    /// The last request the fake received.
    fn last(&self) -> Recorded {
        self.fake.requests().last().cloned().expect("a request reached Stripe")
    }
}

/// Every request: the pinned version, the key only in `Authorization`.
fn assert_stripe_request(r: &Recorded) {
    assert_eq!(r.header("stripe-version"), Some(VERSION), "{r:?}");
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert!(
        !r.everything_but("authorization").contains(KEY),
        "the secret key left Authorization: {r:?}"
    );
}

fn assert_invalid_input(outcome: CallOutcome, needle: &str) {
    match outcome.result {
        Err(CallError::Connector {
            code,
            message,
            retryable,
        }) => {
            assert_eq!((code.as_str(), retryable), ("invalid_input", false), "{message}");
            assert!(message.contains(needle), "{message}");
        }
        other => panic!("expected invalid_input, got {other:?}"),
    }
}

#[tokio::test]
async fn create_customer_posts_nested_metadata_with_the_idempotency_key() {
    let s = Setup::new(KEY).await;
    let input = json!({
        "email": "ada@example.com", "name": "Ada Lovelace", "description": "VIP",
        "metadata": { "order_id": "42", "plan": "pro" }
    });
    let out = s.run("create_customer", input, Some("exe_1:customer")).await;
    assert_eq!(
        out.result.expect("created"),
        json!({
            "id": "cus_123", "email": "ada@example.com", "name": "Ada Lovelace", "phone": null,
            "description": "VIP", "metadata": { "order_id": "42", "plan": "pro" }, "created": 1700000000,
            "deleted": false
        })
    );
    let r = s.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/customers"));
    assert_eq!(r.header("content-type"), Some(FORM));
    assert_eq!(r.header("idempotency-key"), Some("exe_1:customer"));
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "email=ada%40example.com&name=Ada+Lovelace&description=VIP&metadata%5Border_id%5D=42&metadata%5Bplan%5D=pro"
    );
    assert_eq!(
        form(&r),
        pairs(&[
            ("email", "ada@example.com"),
            ("name", "Ada Lovelace"),
            ("description", "VIP"),
            ("metadata[order_id]", "42"),
            ("metadata[plan]", "pro"),
        ])
    );
    assert_stripe_request(&r);

    // A call without a key sends none (Stripe would otherwise dedupe unrelated calls).
    s.run("create_customer", json!({ "email": "bob@example.com" }), None)
        .await
        .result
        .expect("created");
    let r = s.last();
    assert_eq!(r.header("idempotency-key"), None);
    assert_eq!(form(&r), pairs(&[("email", "bob@example.com")]));

    // Reads: no body, no idempotency key; a deleted customer says so.
    let read = s
        .run("get_customer", json!({ "id": "cus_123" }), Some("exe_1:read"))
        .await;
    assert_eq!(read.result.expect("read")["metadata"], json!({ "order_id": "42" }));
    let r = s.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/v1/customers/cus_123"));
    assert_eq!(r.header("idempotency-key"), None);
    assert_stripe_request(&r);
    let gone = s.run("get_customer", json!({ "id": "cus_gone" }), None).await;
    assert_eq!(
        gone.result.expect("read"),
        json!({ "id": "cus_gone", "email": null, "name": null, "phone": null, "description": null,
                "metadata": null, "created": null, "deleted": true })
    );
}

#[tokio::test]
async fn an_invoice_is_built_from_items_and_finalized() {
    let s = Setup::new(KEY).await;
    let item = s
        .run(
            "create_invoice_item",
            json!({ "customer": "cus_123", "amount": 2500, "currency": "usd", "description": "Consulting, May",
                    "metadata": { "project": "apollo" } }),
            Some("exe_2:item"),
        )
        .await;
    assert_eq!(
        item.result.expect("item"),
        json!({ "id": "ii_1", "customer": "cus_123", "amount": 2500, "currency": "usd", "quantity": 1,
                "description": "Consulting, May", "invoice": null })
    );
    let r = s.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/invoiceitems"));
    assert_eq!(
        form(&r),
        pairs(&[
            ("customer", "cus_123"),
            ("amount", "2500"),
            ("currency", "usd"),
            ("description", "Consulting, May"),
            ("metadata[project]", "apollo"),
        ])
    );
    assert_eq!(r.header("idempotency-key"), Some("exe_2:item"));

    let draft = s
        .run(
            "create_invoice",
            json!({ "customer": "cus_123", "collection_method": "send_invoice", "days_until_due": 30,
                    "auto_advance": false, "pending_invoice_items_behavior": "include" }),
            Some("exe_2:invoice"),
        )
        .await;
    assert_eq!(
        draft.result.expect("draft"),
        json!({ "id": "in_1", "status": "draft", "customer": "cus_123", "number": null, "amount_due": 2500,
                "currency": "usd", "hosted_invoice_url": null, "invoice_pdf": null })
    );
    let r = s.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/invoices"));
    assert_eq!(
        form(&r),
        pairs(&[
            ("customer", "cus_123"),
            ("collection_method", "send_invoice"),
            ("days_until_due", "30"),
            ("auto_advance", "false"),
            ("pending_invoice_items_behavior", "include"),
        ])
    );
    assert_eq!(r.header("idempotency-key"), Some("exe_2:invoice"));

    let open = s
        .run(
            "finalize_invoice",
            json!({ "id": "in_1", "auto_advance": true }),
            Some("exe_2:finalize"),
        )
        .await;
    assert_eq!(
        open.result.expect("finalized"),
        json!({ "id": "in_1", "status": "open", "customer": "cus_123", "number": "A1B2C3-0001", "amount_due": 2500,
                "currency": "usd", "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test_1",
                "invoice_pdf": "https://pay.stripe.com/invoice/acct_1/test_1/pdf" })
    );
    let r = s.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/invoices/in_1/finalize")
    );
    assert_eq!(form(&r), pairs(&[("auto_advance", "true")]));
    assert_eq!(r.header("idempotency-key"), Some("exe_2:finalize"));
    for r in s.fake.requests() {
        assert_eq!(r.header("content-type"), Some(FORM));
        assert_stripe_request(&r);
    }

    // What the schema cannot say is refused before anything reaches Stripe.
    let sent = s.fake.requests().len();
    assert_invalid_input(
        s.run(
            "create_invoice",
            json!({ "customer": "cus_123", "collection_method": "send_invoice" }),
            None,
        )
        .await,
        "days_until_due",
    );
    assert_invalid_input(
        s.run(
            "create_invoice",
            json!({ "customer": "cus_123", "days_until_due": 14 }),
            None,
        )
        .await,
        "send_invoice",
    );
    assert_invalid_input(
        s.run(
            "create_invoice_item",
            json!({ "customer": "cus_123", "amount": 100, "currency": "usd", "price": "price_1" }),
            None,
        )
        .await,
        "not both",
    );
    assert_invalid_input(
        s.run(
            "create_invoice_item",
            json!({ "customer": "cus_123", "amount": 100 }),
            None,
        )
        .await,
        "currency",
    );
    assert_invalid_input(
        s.run("create_invoice_item", json!({ "customer": "cus_123" }), None)
            .await,
        "price",
    );
    assert_eq!(s.fake.requests().len(), sent);
}

#[tokio::test]
async fn payment_intents_encode_arrays_and_nested_flags() {
    let s = Setup::new(KEY).await;
    let out = s
        .run(
            "create_payment_intent",
            json!({ "amount": 4200, "currency": "eur", "customer": "cus_123", "payment_method": "pm_card_visa",
                    "payment_method_types": ["card", "sepa_debit"], "confirm": true, "off_session": true,
                    "metadata": { "order_id": "42" } }),
            Some("exe_3:charge"),
        )
        .await;
    assert_eq!(
        out.result.expect("paid"),
        json!({ "id": "pi_1", "status": "succeeded", "amount": 4200, "currency": "eur", "customer": "cus_123",
                "payment_method": "pm_card_visa", "latest_charge": "ch_1", "client_secret": "pi_1_secret_abc" })
    );
    let r = s.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/payment_intents"));
    assert_eq!(
        form(&r),
        pairs(&[
            ("amount", "4200"),
            ("currency", "eur"),
            ("customer", "cus_123"),
            ("payment_method", "pm_card_visa"),
            ("payment_method_types[0]", "card"),
            ("payment_method_types[1]", "sepa_debit"),
            ("confirm", "true"),
            ("off_session", "true"),
            ("metadata[order_id]", "42"),
        ])
    );
    assert_eq!(r.header("idempotency-key"), Some("exe_3:charge"));
    assert_stripe_request(&r);

    let out = s
        .run(
            "create_payment_intent",
            json!({ "amount": 1000, "currency": "usd", "automatic_payment_methods": true, "receipt_email": "ada@example.com" }),
            None,
        )
        .await;
    assert_eq!(out.result.expect("created")["status"], "requires_payment_method");
    assert_eq!(
        form(&s.last()),
        pairs(&[
            ("amount", "1000"),
            ("currency", "usd"),
            ("automatic_payment_methods[enabled]", "true"),
            ("receipt_email", "ada@example.com"),
        ])
    );

    let sent = s.fake.requests().len();
    assert_invalid_input(
        s.run(
            "create_payment_intent",
            json!({ "amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "off_session": true }),
            None,
        )
        .await,
        "confirm",
    );
    assert_invalid_input(
        s.run(
            "create_payment_intent",
            json!({ "amount": 1000, "currency": "usd", "automatic_payment_methods": true, "payment_method_types": ["card"] }),
            None,
        )
        .await,
        "not both",
    );
    assert_eq!(s.fake.requests().len(), sent);
}

#[tokio::test]
async fn stripe_errors_map_to_stable_codes() {
    let s = Setup::new(KEY).await;
    let intent = |amount: u64, payment_method: &str| json!({ "amount": amount, "currency": "usd", "payment_method": payment_method, "confirm": true });

    let (code, message, retryable) = connector_error(
        s.run("create_payment_intent", intent(1000, "pm_card_chargeDeclined"), None)
            .await,
    );
    assert_eq!((code.as_str(), retryable), ("card_declined", false), "{message}");
    for needle in ["Your card was declined.", "decline_code generic_decline", "req_fake123"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }

    let (code, message, retryable) =
        connector_error(s.run("create_payment_intent", intent(4290, "pm_card_visa"), None).await);
    assert_eq!((code.as_str(), retryable), ("rate_limited", true), "{message}");
    assert!(message.contains("code rate_limit"), "{message}");

    // Stripe-Should-Retry: false wins over "5xx is retryable".
    let (code, message, retryable) =
        connector_error(s.run("create_payment_intent", intent(5000, "pm_card_visa"), None).await);
    assert_eq!((code.as_str(), retryable), ("upstream_error", false), "{message}");
    assert!(message.contains("Something went wrong"), "{message}");

    let (code, message, retryable) = connector_error(
        s.run(
            "create_payment_intent",
            intent(1000, "pm_card_visa"),
            Some("reused-key"),
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("idempotency_conflict", false), "{message}");

    let (code, message, retryable) = connector_error(s.run("get_customer", json!({ "id": "cus_missing" }), None).await);
    assert_eq!((code.as_str(), retryable), ("not_found", false), "{message}");
    assert!(message.contains("No such customer: 'cus_missing'"), "{message}");
    assert!(message.contains("param `id`"), "{message}");

    let (code, message, retryable) = connector_error(
        s.run(
            "create_invoice_item",
            json!({ "customer": "cus_123", "amount": 100, "currency": "xxx" }),
            None,
        )
        .await,
    );
    assert_eq!((code.as_str(), retryable), ("bad_request", false), "{message}");
    assert!(message.contains("param `currency`"), "{message}");

    // A wrong key is an auth failure (the connection's status flips on it).
    let wrong = Setup::new("sk_test_wrong_key_0000").await;
    let (code, message, retryable) = connector_error(wrong.run("get_customer", json!({ "id": "cus_123" }), None).await);
    assert_eq!((code.as_str(), retryable), ("unauthorized", false), "{message}");
    let checked = wrong
        .host
        .runtime
        .execute(&wrong.connector, wrong.connection.clone(), Invocation::TestConnection)
        .await;
    let (code, _, _) = connector_error(checked);
    assert_eq!(code, "unauthorized");
}

#[tokio::test]
async fn charges_are_paged_by_the_last_id_and_test_connection_reads_the_balance() {
    let s = Setup::new(KEY).await;
    let first = s.run("list_charges", json!({ "limit": 2 }), None).await;
    assert_eq!(
        first.result.expect("page 1"),
        json!({ "charges": [charge_out("ch_3", 1700000300), charge_out("ch_2", 1700000200)], "has_more": true, "last_id": "ch_2" })
    );
    let r = s.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
        ("GET", "/v1/charges", Some("limit=2"))
    );
    assert!(r.body.is_empty());
    let second = s
        .run(
            "list_charges",
            json!({ "limit": 2, "starting_after": "ch_2", "customer": "cus_123", "created_gte": 1700000000 }),
            None,
        )
        .await;
    assert_eq!(
        second.result.expect("page 2"),
        json!({ "charges": [charge_out("ch_1", 1700000100)], "has_more": false, "last_id": "ch_1" })
    );
    assert_eq!(
        s.last().query.as_deref(),
        Some("limit=2&starting_after=ch_2&customer=cus_123&created%5Bgte%5D=1700000000")
    );

    let checked = s
        .host
        .runtime
        .execute(&s.connector, s.connection.clone(), Invocation::TestConnection)
        .await;
    assert_eq!(
        checked.result.expect("connected"),
        json!({ "livemode": false, "available": [{ "amount": 123456, "currency": "usd" }] })
    );
    let r = s.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/v1/balance"));
    for r in s.fake.requests() {
        assert_eq!(r.header("idempotency-key"), None, "reads carry no idempotency key");
        assert_stripe_request(&r);
    }
}
