//! Nexum marketplace: the formats that connector authors, hosts and the registry share.
//!
//! - [`manifest`]: the strict `connector.toml` parser (identity, auth schemes and where their
//!   secrets go, allowed outbound hosts, actions with JSON Schemas, limits);
//! - [`bundle`]: the signed, content-addressed `.nxb` bundle, parsed defensively;
//! - [`signing`]: minisign publisher keys, signatures and the trust policy a host applies;
//! - [`permissions`]: what a connector may do, and what an upgrade adds.

pub mod bundle;
pub mod manifest;
pub mod permissions;
pub mod signing;

#[cfg(test)]
mod tests;
