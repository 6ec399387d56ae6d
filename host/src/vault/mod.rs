//! The vault: connection secrets and the credential handles connectors use instead of them.
//!
//! A secret lives in host memory as a [`secrecy::SecretString`] (zeroized on drop, redacted in
//! `Debug`). Connectors only ever hold an index into the call's credential list.

mod credential;

pub use credential::{Credential, CredentialError, SecretMaterial};
