//! What a caller asks of a connector, and how a call can fail.

use serde::Serialize;
use serde_json::Value;

/// What to run.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// Run an action with a JSON input.
    Action {
        /// Action name, as declared in the manifest.
        name: String,
        /// Input, validated against the action's input schema before the guest runs.
        input: Value,
    },
    /// Run the connector's credential check.
    TestConnection,
}

/// Why a call produced no output. Every message is safe to show an API client: secret
/// values are scrubbed before a `CallError` is built.
#[derive(Debug, Clone, thiserror::Error, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallError {
    /// The manifest declares no such action.
    #[error("the connector has no action `{name}`")]
    UnknownAction {
        /// The requested name.
        name: String,
    },
    /// The input does not match the action's input schema.
    #[error("input does not match the action's schema: {}", errors.join("; "))]
    InvalidInput {
        /// One message per violation, with its JSON pointer.
        errors: Vec<String>,
    },
    /// The connector reported a failure.
    #[error("{code}: {message}")]
    Connector {
        /// The connector's stable code.
        code: String,
        /// Its explanation.
        message: String,
        /// Whether retrying may help.
        retryable: bool,
    },
    /// The connector's output is not JSON or does not match the output schema.
    #[error("the connector returned invalid output: {}", errors.join("; "))]
    InvalidOutput {
        /// What is wrong.
        errors: Vec<String>,
    },
    /// The output exceeds the host's cap.
    #[error("the connector returned {size} bytes of output, over the {limit}-byte cap")]
    OutputTooLarge {
        /// Output size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The call ran past its deadline (guest time and host calls together).
    #[error("the connector did not finish within its {limit_ms} ms deadline")]
    Timeout {
        /// The deadline.
        limit_ms: u64,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("the connector exceeded its {limit_mb} MiB memory cap")]
    MemoryExceeded {
        /// The cap.
        limit_mb: u32,
    },
    /// The guest panicked.
    #[error("the connector panicked: {message}")]
    Panicked {
        /// The panic message from the guest's stderr.
        message: String,
    },
    /// The guest trapped (or broke a host-side rule) for another reason.
    #[error("the connector crashed: {message}")]
    Trapped {
        /// The trap.
        message: String,
    },
    /// The host has no free instance slot right now.
    #[error("the host is at capacity; retry shortly")]
    AtCapacity,
}

impl CallError {
    /// The stable code: the host's own, or the connector's for a connector error.
    pub fn code(&self) -> &str {
        match self {
            Self::Connector { code, .. } => code,
            other => other.metric_label(),
        }
    }

    /// The outcome label for metrics: the host's own codes, with every connector-chosen code
    /// folded into `connector_error` so a connector cannot grow the metric's label set.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Connector { .. } => "connector_error",
            Self::UnknownAction { .. } => "unknown_action",
            Self::InvalidInput { .. } => "invalid_input",
            Self::InvalidOutput { .. } => "invalid_output",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::Timeout { .. } => "timeout",
            Self::MemoryExceeded { .. } => "memory_exceeded",
            Self::Panicked { .. } => "connector_panicked",
            Self::Trapped { .. } => "connector_crashed",
            Self::AtCapacity => "at_capacity",
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connector { retryable, .. } => *retryable,
            Self::Timeout { .. } | Self::AtCapacity => true,
            _ => false,
        }
    }
}
