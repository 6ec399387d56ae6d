//! Guest SDK for Nexum connectors.
//!
//! A connector is a Rust crate built for `wasm32-wasip2`. It implements [`Connector`],
//! registers typed action handlers with [`Actions`], and calls upstream APIs through the host's
//! brokered HTTP with [`Request`]. Secrets never enter the connector: a [`Credential`] is an
//! opaque handle that the host turns into an `Authorization` header (or query parameter) on
//! its side of the sandbox. Mail goes out through [`mail`]: the host speaks SMTP to a server
//! the manifest declares and logs in with the credential itself.
//!
//! ```ignore
//! use nexum_connector_sdk::prelude::*;
//!
//! struct Echo;
//! connector!(Echo);
//!
//! #[derive(Deserialize)]
//! struct Say { text: String }
//!
//! impl Connector for Echo {
//!     fn actions() -> Actions {
//!         Actions::new().action("say", |input: Say| Ok(json!({ "said": input.text })))
//!     }
//! }
//! ```

mod actions;
mod error;
mod http;
pub mod mail;

pub use actions::{Actions, Connector};
pub use error::Error;
pub use http::{Request, Response};

/// Raw bindings generated from the `nexum:connector@0.1.2` WIT package (`wit/0.1.2/`). Prefer
/// the SDK types.
#[allow(missing_docs, unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/0.1.2",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "::nexum_connector_sdk::bindings",
    });
}

/// The call's idempotency key: the same on every attempt of one workflow step
/// (`<execution id>:<step name>`), or the API client's `Idempotency-Key`; `None` when the call
/// has none. Pass it upstream (e.g. as an `Idempotency-Key` header) so a retry does not repeat
/// a side effect. Needs a host that implements `nexum:connector@0.1.1`.
pub fn idempotency_key() -> Option<String> {
    bindings::nexum::connector::execution::idempotency_key()
}

/// An opaque handle to one of the connection's secrets. It can be attached to a [`Request`]
/// or used to compute an HMAC; its value is never visible to the connector.
pub type Credential = bindings::nexum::connector::credentials::Credential;

/// The kind of secret behind a [`Credential`].
pub type CredentialKind = bindings::nexum::connector::types::CredentialKind;

/// The connection's credential for auth scheme `scheme` (an `[[auth]]` id in the manifest).
///
/// Fails with code `missing_credential` when the connection has none for that scheme.
pub fn credential(scheme: &str) -> Result<Credential, Error> {
    bindings::nexum::connector::credentials::get(scheme).ok_or_else(|| {
        Error::new(
            "missing_credential",
            format!("the connection has no credential for auth scheme `{scheme}`"),
        )
    })
}

/// The first credential the connection has among `schemes`, in order of preference.
pub fn any_credential(schemes: &[&str]) -> Result<Credential, Error> {
    schemes
        .iter()
        .find_map(|s| bindings::nexum::connector::credentials::get(s))
        .ok_or_else(|| {
            Error::new(
                "missing_credential",
                format!("the connection has no credential for any of {schemes:?}"),
            )
        })
}

/// The value of a non-secret connection variable declared in the manifest's `[variables]`.
pub fn var(name: &str) -> Option<String> {
    bindings::nexum::connector::config::get(name)
}

/// Logging into the call's trace (visible with `?debug=true` and in `nexum connector run`).
pub mod log {
    use crate::bindings::nexum::connector::log::log;
    use crate::bindings::nexum::connector::types::LogLevel;

    /// Log at debug level.
    pub fn debug(message: &str) {
        log(LogLevel::Debug, message);
    }
    /// Log at info level.
    pub fn info(message: &str) {
        log(LogLevel::Info, message);
    }
    /// Log at warn level.
    pub fn warn(message: &str) {
        log(LogLevel::Warn, message);
    }
    /// Log at error level.
    pub fn error(message: &str) {
        log(LogLevel::Error, message);
    }
}

/// Everything a connector usually needs, in one import.
pub mod prelude {
    pub use crate::{
        Actions, Connector, Credential, Error, Request, Response, any_credential, connector, credential,
        idempotency_key, log, mail, var,
    };
    pub use serde::{Deserialize, Serialize, de::DeserializeOwned};
    pub use serde_json::{Value, json};
}

/// Export a type implementing [`Connector`] as this component's `nexum:connector/actions`.
#[macro_export]
macro_rules! connector {
    ($ty:ty) => {
        struct __NexumConnectorExport;

        impl $crate::bindings::exports::nexum::connector::actions::Guest for __NexumConnectorExport {
            fn execute(
                name: ::std::string::String,
                input: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::nexum::connector::types::ConnectorError,
            > {
                $crate::__dispatch_execute::<$ty>(&name, &input)
            }

            fn test_connection() -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::nexum::connector::types::ConnectorError,
            > {
                $crate::__dispatch_test_connection::<$ty>()
            }
        }

        $crate::bindings::__export_connector_world!(__NexumConnectorExport with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub fn __dispatch_execute<C: Connector>(
    name: &str,
    input: &str,
) -> Result<String, bindings::nexum::connector::types::ConnectorError> {
    C::actions().dispatch(name, input).map_err(Into::into)
}

#[doc(hidden)]
pub fn __dispatch_test_connection<C: Connector>() -> Result<String, bindings::nexum::connector::types::ConnectorError> {
    let value = C::test_connection().map_err(bindings::nexum::connector::types::ConnectorError::from)?;
    serde_json::to_string(&value).map_err(|e| Error::new("invalid_output", e.to_string()).into())
}
