//! Outgoing webhooks, following the [Standard Webhooks](https://www.standardwebhooks.com/)
//! specification.
//!
//! This capability is where the host notifies customers' HTTP endpoints of events: webhook
//! endpoints registered per workspace (each with its own `whsec_` signing secret), signing of
//! every delivery, fan-out of events from the event outbox to the endpoints subscribed to them,
//! and delivery attempts with retries and backoff.
//!
//! - [`endpoints`]: creating and changing an endpoint (URL under the address policy, a
//!   fresh `whsec_` secret sealed in the vault with the custom headers' values, see
//!   [`sealed`]), and rotating its secret with a grace period;
//! - [`catalogue`]: every event type, with a JSON Schema and an example of its data;
//! - [`subscriptions`]: whether a workspace receives an event type (so high-volume events
//!   are written only when someone receives them);
//! - fan-out (`jobs::webhook_fanout`): outbox events become messages and one delivery job
//!   per subscribed endpoint, in one transaction;
//! - [`delivery`]: the queue handler that signs, POSTs (no redirects, 15 s), logs every
//!   attempt, retries on [`schedule`] honouring `Retry-After`, disables on `410 Gone` or
//!   after failing for five days;
//! - [`signing`]: [`WebhookSecret`] (`whsec_…`), the `v1` HMAC-SHA256 signature over
//!   `{msg_id}.{timestamp}.{body}`, the space-separated `webhook-signature` header used for
//!   zero-downtime secret rotation, verification with a timestamp tolerance, and the three
//!   `webhook-*` headers of a delivery.

pub mod catalogue;
pub mod delivery;
pub mod endpoints;
pub mod schedule;
pub mod sealed;
pub mod signing;
pub mod subscriptions;

pub use subscriptions::Subscriptions;

pub use signing::{
    DEFAULT_TOLERANCE_SECS, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP, SecretError,
    VerifyError, WebhookHeaders, WebhookSecret, sign, signature_header, verify,
};
