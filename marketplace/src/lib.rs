//! Nexum marketplace: the formats that connector authors, hosts and the registry share.
//!
//! The manifest itself (`connector.toml`) is the `nexum-manifest` crate: it is the connector's
//! contract with the host, not a marketplace concern.
//!
//! - [`bundle`]: the signed, content-addressed `.nxb` bundle, parsed defensively;
//! - [`signing`]: minisign publisher keys, signatures and the trust policy a host applies;
//! - [`template`]: the signed workflow-template bundle (`.nxt`), in the same archive format;
//! - [`permissions`]: what a connector may do, and what an upgrade adds.

pub mod bundle;
pub mod permissions;
pub mod signing;
pub mod template;

#[cfg(test)]
mod tests;
