//! Host bindings, one module per 0.x line of the `nexum:connector` WIT package.
//!
//! Each `v0_x` module is generated from the newest release of its line (`v0_1` from
//! `wit/0.1.2/`; additive releases are patch versions, which wasmtime links to components
//! built against any earlier 0.x.y). The rest of the runtime implements the newest version
//! through the re-exports below (`bindings::nexum::…`, `bindings::Connector`,
//! `bindings::ConnectorPre`); when a breaking 0.2 ships, `v0_2` becomes the re-exported one
//! and 0.1's imports are implemented by delegating to it, with both linked side by side (see
//! `wit/README.md`).

pub mod v0_1;

/// The newest WIT version the host implements; what `bindings::…` paths refer to.
pub use v0_1 as latest;

pub use latest::{Connector, ConnectorPre, nexum};
