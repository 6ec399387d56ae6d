//! The shared state of a running host: every capability reaches its collaborators through
//! [`AppState`]. It lives here, below `api/`, so domain code never imports the HTTP layer.

use crate::auth::KeyCache;
use crate::broker::Outbound;
use crate::config::Config;
use crate::connections::ConnectionCache;
use crate::jobs::Recorder;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::store::Db;
use crate::vault::Vault;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Everything a handler, a job or a capability can reach.
pub struct AppState {
    /// Settings.
    pub config: Config,
    /// Database.
    pub db: Db,
    /// The one owner of outbound HTTP (address policy, policed resolver, pool, caps).
    pub outbound: Arc<Outbound>,
    /// Secrets.
    pub vault: Arc<Vault>,
    /// Connector runtime (its broker owns all outbound traffic).
    pub runtime: Arc<Runtime>,
    /// Verified API keys.
    pub keys: KeyCache,
    /// Rate-limit and quota counters (per key, per connection), in Redis when configured.
    pub counters: Arc<crate::limits::Counters>,
    /// Resolved connections and compiled connectors.
    pub connections: ConnectionCache,
    /// Batched usage and last-use writes (approximate: up to half a second of them is lost
    /// if the process is killed).
    pub recorder: Arc<Recorder>,
    /// Each workspace's share of the connector-call slots.
    pub call_share: crate::workspaces::fair_share::FairShare,
    /// The durable job queue (webhook deliveries, workflow executions).
    pub queue: crate::jobs::Queue,
    /// Durable, group-committed audit appends (`secret.use` is written before the call).
    pub audit: crate::store::AuditWriter,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Set when shutdown begins (readiness turns 503).
    pub shutting_down: AtomicBool,
    /// Which connector bundles this host installs.
    pub trust: nexum_marketplace::signing::TrustPolicy,
    /// OAuth2 flows and token refresh.
    pub oauth: crate::oauth::OAuthService,
    /// Which event types each workspace's webhook endpoints receive (remembered briefly).
    pub subscriptions: crate::webhooks::Subscriptions,
    /// Workflow templates, parsed definitions and callers waiting on executions.
    pub workflows: crate::workflows::Workflows,
}
