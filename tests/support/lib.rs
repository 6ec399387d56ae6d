//! Shared support for Nexum's end-to-end tests and benchmarks: building the connector
//! components once, recording loopback fakes of outside APIs, and ready-made hosts.
//!
//! Nothing here talks to anything but 127.0.0.1.

pub mod app;
pub mod browser;
pub mod bundles;
pub mod consent;
pub mod fakes;
pub mod host;
pub mod logs;
pub mod oauth_provider;
pub mod plugins;
pub mod process;
pub mod smtp;
pub mod stall;
