//! Workflows: definitions, executions and their step journal, and triggers (schedules and
//! incoming webhooks). Being built (issue 15); so far:
//!
//! - [`signatures`]: verification of incoming webhooks in each provider's own signature
//!   scheme (Standard Webhooks, Stripe, GitHub, Slack, Shopify), which the incoming-webhook
//!   trigger will run on the raw body before it starts anything.

pub mod signatures;
