//! Outgoing webhooks, following the [Standard Webhooks](https://www.standardwebhooks.com/)
//! specification.
//!
//! This capability is where the host notifies customers' HTTP endpoints of events: webhook
//! endpoints registered per workspace (each with its own `whsec_` signing secret), signing of
//! every delivery, fan-out of events from the event outbox to the endpoints subscribed to them,
//! and delivery attempts with retries and backoff.
//!
//! Only signing exists so far:
//!
//! - [`signing`]: [`WebhookSecret`] (`whsec_…`), the `v1` HMAC-SHA256 signature over
//!   `{msg_id}.{timestamp}.{body}`, the space-separated `webhook-signature` header used for
//!   zero-downtime secret rotation, verification with a timestamp tolerance, and the three
//!   `webhook-*` headers of a delivery.

pub mod signing;

pub use signing::{
    DEFAULT_TOLERANCE_SECS, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP, SecretError,
    VerifyError, WebhookHeaders, WebhookSecret, sign, signature_header, verify,
};
