//! Nexum host: runs third-party connectors as sandboxed WebAssembly components.
//!
//! A connector gets exactly two powers from the host, brokered HTTP and opaque credential
//! handles; it never sees a secret and reaches only the hosts its manifest declares.
//!
//! - [`runtime`]: wasmtime engine, component cache, per-call stores and limits, and the host
//!   side of each WIT interface;
//! - [`broker`]: outbound HTTP policy (allow-list, address policy, redirects, credential
//!   injection, scrubbing, caps, retries, rate limits, traces);
//! - [`vault`]: secrets in memory and credential handles;
//! - [`harness`]: `nexum connector run`, the author's local loop;
//! - [`connections`], [`oauth`], [`workspaces`], [`marketplace`]: the capabilities under the
//!   API (`marketplace` is the registry of signed connectors and installing from it);
//! - [`webhooks`]: outgoing Standard Webhooks to customers' endpoints (so far only signing);
//! - [`workflows`]: connector steps chained into durable executions (API, cron, incoming
//!   webhooks); [`templates`]: workflow templates (variables, connection slots) and planning
//!   a workflow from one (pure: checked against a view of the workspace the caller fills);
//! - [`api`] (HTTP only), [`auth`], [`store`], [`jobs`], [`state`], [`config`], [`server`]:
//!   `nexum serve`, the REST API over SQLite or PostgreSQL;
//! - [`console`]: the web console at `/console`, an HTTP client of the API (in-process, with
//!   the signed-in API key), server-rendered.
//!
//! Layers point down only: `console` → `api` (over HTTP, in-process) → capabilities (`connections`, `oauth`, `workspaces`,
//! `marketplace`, `jobs`, `workflows`, `templates`) → `runtime` → `broker` / `vault` →
//! `store`. Nothing below `api` imports it.

pub mod api;
pub mod auth;
pub mod author;
pub mod broker;
pub mod config;
pub mod connections;
pub mod console;
pub mod error;
pub mod harness;
pub mod ids;
pub mod jobs;
pub mod limits;
pub mod marketplace;
pub mod metrics;
pub mod oauth;
pub mod quoted;
pub mod runtime;
pub mod server;
pub mod state;
pub mod store;
pub mod templates;
pub mod tls;
pub mod vault;
pub mod webhooks;
pub mod workflows;
pub mod workspaces;
