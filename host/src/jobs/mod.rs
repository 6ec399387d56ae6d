//! Background work of a server: batched writes of usage, last-use times and audit records
//! ([`Recorder`]), and periodic connection health checks ([`health`]).

pub mod health;
mod recorder;

pub use recorder::{LATENCY_BOUNDS_MS, LatencySummary, Recorder, merge_buckets, summarize};
