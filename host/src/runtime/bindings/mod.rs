//! Host bindings, one module per released version of the `nexum:connector` WIT package.
//!
//! Each `v0_x` module is generated from `wit/0.x/` and never changes once that version is
//! released. The rest of the runtime implements the newest version through the re-exports
//! below (`bindings::nexum::…`, `bindings::Connector`, `bindings::ConnectorPre`); when 0.2
//! ships, `v0_2` becomes the re-exported one and 0.1's imports are implemented by delegating
//! to it, with both linked side by side (see `wit/README.md`).

pub mod v0_1;

/// The newest WIT version the host implements; what `bindings::…` paths refer to.
pub use v0_1 as latest;

pub use latest::{Connector, ConnectorPre, nexum};
