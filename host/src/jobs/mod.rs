//! Background work of a server: batched writes of usage, last-use times and audit records
//! ([`Recorder`]), periodic connection health checks ([`health`]), and the OAuth2 refresh
//! sweep ([`oauth_refresh`]).

pub mod health;
pub mod oauth_refresh;
mod recorder;

pub use recorder::{LATENCY_BOUNDS_MS, LatencySummary, Recorder, merge_buckets, summarize};
