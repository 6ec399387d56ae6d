//! Built directly against the frozen `nexum:connector@0.1.0` (`wit/0.1/`), without the SDK, so
//! the test-suite always has a component that imports `@0.1.0` and nothing newer.
#![allow(unsafe_code, missing_docs)] // wit-bindgen's generated glue

mod bindings {
    wit_bindgen::generate!({ path: "../../wit/0.1", world: "connector" });
}

use bindings::exports::nexum::connector::actions::Guest;
use bindings::nexum::connector::types::{ConnectorError, LogLevel};
use bindings::nexum::connector::{config, log};

struct Compat;

impl Guest for Compat {
    fn execute(name: String, input: String) -> Result<String, ConnectorError> {
        log::log(LogLevel::Info, &format!("running `{name}`"));
        if name != "echo" {
            return Err(error("unknown_action", name));
        }
        let input: serde_json::Value = serde_json::from_str(&input).map_err(|e| error("invalid_input", e))?;
        Ok(serde_json::json!({ "echo": input, "greeting": config::get("greeting") }).to_string())
    }

    fn test_connection() -> Result<String, ConnectorError> {
        Ok("{}".into())
    }
}

fn error(code: &str, detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError {
        code: code.into(),
        message: detail.to_string(),
        retryable: false,
    }
}

bindings::export!(Compat with_types_in bindings);
