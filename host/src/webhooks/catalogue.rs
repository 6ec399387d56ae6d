//! The event types a webhook endpoint can receive, each with what its `data` holds. Payloads
//! carry ids and status, never secrets.

use serde::{Deserialize, Serialize};

/// An event type an endpoint can subscribe to (the names of [`catalogue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    /// `connection.created`
    #[serde(rename = "connection.created")]
    ConnectionCreated,
    /// `connection.deleted`
    #[serde(rename = "connection.deleted")]
    ConnectionDeleted,
    /// `connection.status_changed`
    #[serde(rename = "connection.status_changed")]
    ConnectionStatusChanged,
    /// `connection.refresh_failed`
    #[serde(rename = "connection.refresh_failed")]
    ConnectionRefreshFailed,
    /// `endpoint.disabled`
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
    /// `message.attempt.exhausted`
    #[serde(rename = "message.attempt.exhausted")]
    MessageAttemptExhausted,
}

impl EventKind {
    /// The type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ConnectionCreated => "connection.created",
            EventKind::ConnectionDeleted => "connection.deleted",
            EventKind::ConnectionStatusChanged => "connection.status_changed",
            EventKind::ConnectionRefreshFailed => "connection.refresh_failed",
            EventKind::EndpointDisabled => "endpoint.disabled",
            EventKind::MessageAttemptExhausted => "message.attempt.exhausted",
        }
    }
}

/// One event type.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventType {
    /// The type, e.g. `connection.status_changed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What happened.
    pub description: &'static str,
    /// Whether an endpoint receives it only when it names it (high volume).
    pub opt_in: bool,
    /// An example of the `data` it carries.
    pub example: serde_json::Value,
}

/// Every event type the host emits.
pub fn catalogue() -> Vec<EventType> {
    use serde_json::json;
    let t = |kind, description, example| EventType {
        kind,
        description,
        opt_in: super::endpoints::OPT_IN_EVENT_TYPES.contains(&kind),
        example,
    };
    vec![
        t(
            "connection.created",
            "A connection was created (by an admin, or at the end of an OAuth2 flow).",
            json!({ "connection_id": "conn_…", "installation_id": "plg_…", "name": "Acme Slack", "status": "connected" }),
        ),
        t(
            "connection.deleted",
            "A connection was deleted; its secret is wiped.",
            json!({ "connection_id": "conn_…" }),
        ),
        t(
            "connection.status_changed",
            "A connection's status changed (connected, error, expired, refresh_exhausted, disconnected).",
            json!({ "connection_id": "conn_…", "from": "connected", "to": "error", "reason": "invalid_auth: …" }),
        ),
        t(
            "connection.refresh_failed",
            "Refreshing a connection's OAuth2 token failed.",
            json!({ "connection_id": "conn_…", "error": "…", "transient": false, "consecutive_failures": 2, "status": "error" }),
        ),
        t(
            "endpoint.disabled",
            "A webhook endpoint was disabled: it answered 410 Gone, or failed for five days.",
            json!({ "endpoint_id": "wep_…", "reason": "gone" }),
        ),
        t(
            "message.attempt.exhausted",
            "Every attempt to deliver a message to an endpoint failed.",
            json!({ "message_id": "msg_…", "endpoint_id": "wep_…", "attempts": 8 }),
        ),
    ]
}
