//! Nexum marketplace: the formats that connector authors, hosts and the registry share.
//!
//! - [`manifest`]: the strict `connector.toml` parser (identity, auth schemes and where their
//!   secrets go, allowed outbound hosts, actions with JSON Schemas, limits).

pub mod manifest;
