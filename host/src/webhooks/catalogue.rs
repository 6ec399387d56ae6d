//! The event types a webhook endpoint can receive, each with a JSON Schema and an example of
//! what its `data` holds. Payloads carry ids and status, never secrets, inputs or outputs.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
    /// `connector.installed`
    #[serde(rename = "connector.installed")]
    ConnectorInstalled,
    /// `connector.upgraded`
    #[serde(rename = "connector.upgraded")]
    ConnectorUpgraded,
    /// `connector.uninstalled`
    #[serde(rename = "connector.uninstalled")]
    ConnectorUninstalled,
    /// `action.failed`
    #[serde(rename = "action.failed")]
    ActionFailed,
    /// `action.executed` (opt-in)
    #[serde(rename = "action.executed")]
    ActionExecuted,
    /// `endpoint.disabled`
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
    /// `message.attempt.exhausted`
    #[serde(rename = "message.attempt.exhausted")]
    MessageAttemptExhausted,
    /// `execution.started`
    #[serde(rename = "execution.started")]
    ExecutionStarted,
    /// `execution.succeeded`
    #[serde(rename = "execution.succeeded")]
    ExecutionSucceeded,
    /// `execution.failed`
    #[serde(rename = "execution.failed")]
    ExecutionFailed,
    /// `execution.cancelled`
    #[serde(rename = "execution.cancelled")]
    ExecutionCancelled,
}

impl EventKind {
    /// Every kind, in catalogue order.
    pub const ALL: [EventKind; 15] = [
        EventKind::ConnectionCreated,
        EventKind::ConnectionDeleted,
        EventKind::ConnectionStatusChanged,
        EventKind::ConnectionRefreshFailed,
        EventKind::ConnectorInstalled,
        EventKind::ConnectorUpgraded,
        EventKind::ConnectorUninstalled,
        EventKind::ActionFailed,
        EventKind::ActionExecuted,
        EventKind::EndpointDisabled,
        EventKind::MessageAttemptExhausted,
        EventKind::ExecutionStarted,
        EventKind::ExecutionSucceeded,
        EventKind::ExecutionFailed,
        EventKind::ExecutionCancelled,
    ];

    /// The type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ConnectionCreated => "connection.created",
            EventKind::ConnectionDeleted => "connection.deleted",
            EventKind::ConnectionStatusChanged => "connection.status_changed",
            EventKind::ConnectionRefreshFailed => "connection.refresh_failed",
            EventKind::ConnectorInstalled => "connector.installed",
            EventKind::ConnectorUpgraded => "connector.upgraded",
            EventKind::ConnectorUninstalled => "connector.uninstalled",
            EventKind::ActionFailed => "action.failed",
            EventKind::ActionExecuted => "action.executed",
            EventKind::EndpointDisabled => "endpoint.disabled",
            EventKind::MessageAttemptExhausted => "message.attempt.exhausted",
            EventKind::ExecutionStarted => "execution.started",
            EventKind::ExecutionSucceeded => "execution.succeeded",
            EventKind::ExecutionFailed => "execution.failed",
            EventKind::ExecutionCancelled => "execution.cancelled",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether an endpoint receives it only when it names it (high volume).
    pub fn opt_in(self) -> bool {
        super::endpoints::OPT_IN_EVENT_TYPES.contains(&self.as_str())
    }

    /// What happened, for people.
    fn description(self) -> &'static str {
        match self {
            EventKind::ConnectionCreated => "A connection was created (by an admin, or at the end of an OAuth2 flow).",
            EventKind::ConnectionDeleted => "A connection was deleted; its secret is wiped.",
            EventKind::ConnectionStatusChanged => {
                "A connection's status changed (connected, error, expired, refresh_exhausted, disconnected)."
            }
            EventKind::ConnectionRefreshFailed => "Refreshing a connection's OAuth2 token failed.",
            EventKind::ConnectorInstalled => "A connector was installed in the workspace.",
            EventKind::ConnectorUpgraded => "An installed connector was pinned to another version.",
            EventKind::ConnectorUninstalled => "A connector was uninstalled.",
            EventKind::ActionFailed => {
                "A connector action failed (the connector's error, a policy refusal, a timeout…)."
            }
            EventKind::ActionExecuted => {
                "A connector action ran, whatever its result. Opt-in: an endpoint receives it only when it names it."
            }
            EventKind::EndpointDisabled => {
                "A webhook endpoint was disabled: it answered 410 Gone, or failed for five days."
            }
            EventKind::MessageAttemptExhausted => "Every attempt to deliver a message to an endpoint failed.",
            EventKind::ExecutionStarted => "A workflow execution began its first step.",
            EventKind::ExecutionSucceeded => "A workflow execution finished every step.",
            EventKind::ExecutionFailed => "A workflow execution failed (a step failed with `on_error: fail`).",
            EventKind::ExecutionCancelled => "A workflow execution was cancelled before its next step.",
        }
    }

    /// The fields of its `data`: name, JSON type, whether it may be null, and an example.
    fn fields(self) -> Vec<(&'static str, &'static str, bool, Value)> {
        match self {
            EventKind::ConnectionCreated => vec![
                ("connection_id", "string", false, json!("conn_…")),
                ("installation_id", "string", false, json!("plg_…")),
                ("name", "string", false, json!("Acme Slack")),
                ("status", "string", false, json!("connected")),
            ],
            EventKind::ConnectionDeleted => vec![("connection_id", "string", false, json!("conn_…"))],
            EventKind::ConnectionStatusChanged => vec![
                ("connection_id", "string", false, json!("conn_…")),
                ("from", "string", false, json!("connected")),
                ("to", "string", false, json!("error")),
                ("reason", "string", true, json!("invalid_auth: …")),
            ],
            EventKind::ConnectionRefreshFailed => vec![
                ("connection_id", "string", false, json!("conn_…")),
                ("error", "string", false, json!("invalid_grant: …")),
                ("transient", "boolean", false, json!(false)),
                ("consecutive_failures", "integer", false, json!(2)),
                ("status", "string", false, json!("error")),
            ],
            EventKind::ConnectorInstalled | EventKind::ConnectorUninstalled => vec![
                ("installation_id", "string", false, json!("plg_…")),
                ("connector", "string", false, json!("slack")),
                ("version", "string", false, json!("1.2.0")),
            ],
            EventKind::ConnectorUpgraded => vec![
                ("installation_id", "string", false, json!("plg_…")),
                ("connector", "string", false, json!("slack")),
                ("from_version", "string", false, json!("1.2.0")),
                ("version", "string", false, json!("1.3.0")),
            ],
            EventKind::ActionFailed | EventKind::ActionExecuted => vec![
                ("connection_id", "string", false, json!("conn_…")),
                ("connector", "string", false, json!("slack")),
                ("action", "string", false, json!("send_message")),
                ("ok", "boolean", false, json!(self == EventKind::ActionExecuted)),
                (
                    "error_code",
                    "string",
                    true,
                    if self == EventKind::ActionExecuted {
                        Value::Null
                    } else {
                        json!("rate_limited")
                    },
                ),
                ("duration_ms", "number", false, json!(182.4)),
            ],
            EventKind::EndpointDisabled => vec![
                ("endpoint_id", "string", false, json!("wep_…")),
                ("reason", "string", false, json!("gone")),
            ],
            EventKind::MessageAttemptExhausted => vec![
                ("message_id", "string", false, json!("msg_…")),
                ("endpoint_id", "string", false, json!("wep_…")),
                ("attempts", "integer", false, json!(8)),
            ],
            EventKind::ExecutionStarted
            | EventKind::ExecutionSucceeded
            | EventKind::ExecutionFailed
            | EventKind::ExecutionCancelled => vec![
                ("execution_id", "string", false, json!("exe_…")),
                ("workflow_id", "string", false, json!("wf_…")),
                ("version", "integer", false, json!(3)),
                ("trigger", "string", false, json!("webhook")),
                (
                    "error",
                    "string",
                    true,
                    if self == EventKind::ExecutionFailed {
                        json!("connector: rate_limited: …")
                    } else {
                        Value::Null
                    },
                ),
                (
                    "failed_step",
                    "string",
                    true,
                    if self == EventKind::ExecutionFailed {
                        json!("send")
                    } else {
                        Value::Null
                    },
                ),
            ],
        }
    }

    /// An example of its `data`.
    pub fn example(self) -> Value {
        Value::Object(
            self.fields()
                .into_iter()
                .map(|(n, _, _, e)| (n.to_string(), e))
                .collect(),
        )
    }

    /// The JSON Schema of its `data`.
    pub fn schema(self) -> Value {
        let fields = self.fields();
        let properties: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(name, kind, nullable, _)| {
                let schema = if *nullable {
                    json!({ "type": [kind, "null"] })
                } else {
                    json!({ "type": kind })
                };
                (name.to_string(), schema)
            })
            .collect();
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": fields.iter().map(|(n, ..)| *n).collect::<Vec<_>>(),
            "properties": properties,
        })
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
    /// The JSON Schema of the `data` it carries.
    #[schema(value_type = Object)]
    pub schema: Value,
    /// An example of the `data` it carries.
    #[schema(value_type = Object)]
    pub example: Value,
}

/// Every event type the host emits.
pub fn catalogue() -> Vec<EventType> {
    EventKind::ALL
        .into_iter()
        .map(|kind| EventType {
            kind: kind.as_str(),
            description: kind.description(),
            opt_in: kind.opt_in(),
            schema: kind.schema(),
            example: kind.example(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_matches_its_schema() {
        for kind in EventKind::ALL {
            let schema = kind.schema();
            let example = kind.example();
            let validator = jsonschema::validator_for(&schema).expect("a valid schema");
            assert!(validator.is_valid(&example), "{} example does not match", kind.as_str());
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
    }
}
