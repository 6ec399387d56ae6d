//! Typed action dispatch: JSON in, JSON out, by action name.

use crate::Error;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

type Handler = Box<dyn Fn(&str) -> Result<String, Error>>;

/// What a connector implements. Export it with [`connector!`](crate::connector).
pub trait Connector {
    /// The connector's actions, by name. Names must match the manifest's `[actions.*]`.
    fn actions() -> Actions;

    /// Check that the connection's credentials work and describe the account.
    /// The default reports that the connector has no check.
    fn test_connection() -> Result<Value, Error> {
        Err(Error::new(
            "not_supported",
            "this connector does not implement test-connection",
        ))
    }
}

/// A table of named action handlers with typed inputs and outputs.
#[derive(Default)]
pub struct Actions {
    handlers: Vec<(&'static str, Handler)>,
}

impl Actions {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `handler` under `name`. Its input is deserialized from the call's JSON
    /// (a mismatch is an `invalid_input` error) and its output serialized back.
    pub fn action<I, O, F>(mut self, name: &'static str, handler: F) -> Self
    where
        I: DeserializeOwned,
        O: Serialize,
        F: Fn(I) -> Result<O, Error> + 'static,
    {
        self.handlers.push((
            name,
            Box::new(move |raw: &str| {
                let input: I = serde_json::from_str(raw)
                    .map_err(|e| Error::new("invalid_input", format!("input does not match `{name}`: {e}")))?;
                let output = handler(input)?;
                serde_json::to_string(&output)
                    .map_err(|e| Error::new("invalid_output", format!("cannot encode output: {e}")))
            }),
        ));
        self
    }

    /// Run the action called `name` on a JSON-encoded input.
    pub fn dispatch(&self, name: &str, input: &str) -> Result<String, Error> {
        let handler = self
            .handlers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h)
            .ok_or_else(|| Error::new("unknown_action", format!("no action named `{name}`")))?;
        handler(input)
    }
}
