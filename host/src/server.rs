//! `nexum serve`: open the database (migrating it), load the keyring, bootstrap the first
//! workspace, start background jobs, serve HTTP, and shut down gracefully (in-flight
//! requests finish; buffered usage and audit records are flushed).

use crate::api;
use crate::broker::{AddressPolicy, Broker, BrokerConfig, Outbound};
use crate::config::Config;
use crate::jobs::{self, Recorder};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::state::AppState;
use crate::store::Db;
use crate::vault::{KeySource, Keyring, Vault};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Database.
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Keyring.
    #[error("master key: {0}")]
    Keyring(#[from] crate::vault::KeyringError),
    /// Runtime or broker.
    #[error("{0}")]
    Runtime(String),
    /// Listening socket or data directory.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Load the vault: `NEXUM_MASTER_KEY`, else the key file (created with a warning).
pub fn open_vault(config: &Config) -> Result<Vault, StartError> {
    if let Ok(value) = std::env::var("NEXUM_MASTER_KEY") {
        return Ok(Vault::new(Keyring::from_env_value(&value)?, KeySource::Env));
    }
    let (keyring, created) = Keyring::load_or_create_file(&config.master_key_file)?;
    if created {
        tracing::warn!(
            path = %config.master_key_file.display(),
            "generated a new master key file. Every stored secret depends on it: back it up, and in production set NEXUM_MASTER_KEY or NEXUM_MASTER_KEY_FILE instead"
        );
        eprintln!(
            "\n  WARNING: generated a new master key at {}\n  Back it up: without it, stored credentials cannot be decrypted.\n",
            config.master_key_file.display()
        );
    }
    Ok(Vault::new(keyring, KeySource::File(config.master_key_file.clone())))
}

/// Open and migrate the database.
pub async fn open_db(config: &Config) -> Result<Db, StartError> {
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let db = Db::connect(&config.database_url, config.db_max_connections).await?;
    db.migrate().await?;
    Ok(db)
}

/// Build the application state (database, vault, runtime).
pub async fn build_state(config: Config) -> Result<Arc<AppState>, StartError> {
    let db = open_db(&config).await?;
    let vault = open_vault(&config)?;
    let mut trust = config.trust_policy();
    // The built-in catalogue and starter templates: trusted as the bytes this binary carries.
    trust.pinned = crate::marketplace::catalogue::digests();
    trust.pinned.extend(crate::templates::starter::digests());
    // The one owner of outbound traffic: connectors, token endpoints, marketplace fetches.
    let outbound = Outbound::new(BrokerConfig {
        address_policy: AddressPolicy {
            allowed_ranges: config.allow_ranges.clone(),
        },
        mail_root_certs: config.mail_root_certs.clone(),
        ..BrokerConfig::default()
    })
    .map_err(|e| StartError::Runtime(e.to_string()))?;
    let counters = Arc::new(match &config.redis_url {
        Some(url) => crate::limits::Counters::redis(url)
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?,
        None => crate::limits::Counters::local(),
    });
    let runtime = Runtime::new(
        RuntimeConfig {
            max_memory_mb: config.max_memory_mb,
            max_concurrent_calls: config.max_concurrent_calls,
            artifact_dir: Some(config.artifact_dir()),
            ..RuntimeConfig::default()
        },
        Broker::with_counters(outbound.clone(), counters.clone()),
    )
    .map_err(|e| StartError::Runtime(e.to_string()))?;
    let tokens = crate::oauth::TokenClient::new(outbound.clone(), Duration::from_millis(config.oauth_token_timeout_ms));
    let oauth = crate::oauth::OAuthService::new(
        tokens,
        config.oauth_max_refresh_failures,
        config.public_url.clone(),
        config.oauth_return_url.clone(),
        config.oauth_return_origins.clone(),
        (config.db_max_connections as usize / 2).max(1),
        config.max_refreshes_per_workspace as usize,
    );
    let call_share = crate::workspaces::fair_share::FairShare::new(config.max_calls_per_workspace as usize);
    let state = Arc::new(AppState {
        config,
        audit: crate::store::AuditWriter::start(db.clone()),
        queue: crate::jobs::Queue::new(db.clone()),
        call_share,
        db,
        outbound,
        vault: Arc::new(vault),
        runtime: Arc::new(runtime),
        keys: Default::default(),
        counters,
        connections: Default::default(),
        recorder: Arc::new(Recorder::default()),
        metrics: Default::default(),
        shutting_down: Default::default(),
        trust,
        oauth,
        subscriptions: Default::default(),
        workflows: Default::default(),
    });
    upgrade_sealed_secrets(&state).await?;
    Ok(state)
}

/// Re-seal, in the background, secrets written before their owner was bound into the
/// associated data (they keep working meanwhile).
async fn upgrade_sealed_secrets(state: &Arc<AppState>) -> Result<(), StartError> {
    let pending = state.db.count_secrets_needing_upgrade().await?;
    if pending == 0 {
        return Ok(());
    }
    tracing::info!(secrets = pending, "re-sealing secrets with their owner bound");
    let state = state.clone();
    tokio::spawn(async move {
        match state.vault.rotate(&state.db, true).await {
            Ok(report) if report.unreadable > 0 => tracing::warn!(
                resealed = report.resealed,
                unreadable = report.unreadable,
                "secrets re-sealed; some could not be opened and keep their old sealing"
            ),
            Ok(report) => tracing::info!(resealed = report.resealed, "secrets re-sealed"),
            Err(e) => tracing::warn!(error = %e, "re-sealing secrets failed; the next start tries again"),
        }
    });
    Ok(())
}

/// Create the first workspace and an operator key when the database has none. Returns the
/// key (to print once) when it did.
pub async fn bootstrap(state: &AppState) -> Result<Option<String>, StartError> {
    Ok(crate::workspaces::bootstrap(state).await?.map(|key| key.to_string()))
}

/// List the connector catalogue and the starter templates built into this binary in the
/// registry (every start; a no-op when nothing changed). A failure is logged, not fatal: the server still serves.
pub async fn seed_catalogue(state: &AppState) {
    let namespace = crate::marketplace::catalogue::NAMESPACE;
    match crate::marketplace::catalogue::seed(state).await {
        Ok(seeded) => log_seeded("connector catalogue", namespace, &seeded),
        Err(e) => tracing::error!(error = %e, "cannot list the built-in connector catalogue"),
    }
    match crate::templates::starter::seed(state).await {
        Ok(seeded) => log_seeded("starter templates", namespace, &seeded),
        Err(e) => tracing::error!(error = %e, "cannot list the starter templates"),
    }
}

/// Log what seeding `what` did, warning about each version listed with other bytes.
fn log_seeded(what: &str, namespace: &str, seeded: &crate::marketplace::catalogue::Seeded) {
    tracing::info!(
        added = seeded.added.len(),
        unchanged = seeded.unchanged.len(),
        "built-in {what} listed under `{namespace}`"
    );
    for name in &seeded.conflicting {
        tracing::warn!(
            item = %name,
            "the registry already lists this built-in version with other bytes; raise its version to publish this build"
        );
    }
}

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state.
    pub state: Arc<AppState>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    jobs: jobs::Scheduler,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Bind, start background jobs and serve everything until [`Server::shutdown`].
    pub async fn start(state: Arc<AppState>) -> Result<Self, StartError> {
        Self::start_surface(state, api::Surface::Full).await
    }

    /// Bind and serve one surface.
    pub async fn start_surface(state: Arc<AppState>, surface: api::Surface) -> Result<Self, StartError> {
        let listener = tokio::net::TcpListener::bind(state.config.listen).await?;
        let addr = listener.local_addr()?;
        state.oauth.listening_on(addr);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let periodic = jobs::all()
            .into_iter()
            .filter(|job| {
                surface == api::Surface::Full
                    || !matches!(
                        job.name(),
                        "oauth-refresh-sweep" | "webhook-fanout" | "workflow-schedules"
                    )
            })
            .collect();
        let jobs = jobs::Scheduler::start(&state, periodic, &stop_rx);
        let mut workers = Vec::new();
        if surface == api::Surface::Full {
            let schedule = crate::webhooks::schedule::RetrySchedule::new(
                state
                    .config
                    .webhook_retry_delays_ms
                    .iter()
                    .map(|ms| Duration::from_millis(*ms))
                    .collect(),
            );
            let handler = crate::webhooks::delivery::DeliveryHandler::new(
                state.clone(),
                schedule,
                Duration::from_millis(state.config.webhook_timeout_ms),
                Duration::from_millis(state.config.webhook_failure_window_ms),
            );
            let settings = jobs::WorkerSettings {
                concurrency: state.config.webhook_concurrency as usize,
                ..jobs::WorkerSettings::default()
            };
            workers.push(state.queue.spawn_worker(Arc::new(handler), settings, stop_rx.clone()));
            let executions = crate::workflows::engine::ExecutionHandler::new(state.clone());
            let settings = jobs::WorkerSettings {
                concurrency: state.config.workflow_concurrency as usize,
                ..jobs::WorkerSettings::default()
            };
            workers.push(
                state
                    .queue
                    .spawn_worker(Arc::new(executions), settings, stop_rx.clone()),
            );
        }
        let app = api::router_for(state.clone(), surface);
        // The web console sits beside the API and calls it in-process.
        let app = match surface {
            api::Surface::Full => crate::console::mount(app, state.clone()),
            api::Surface::MarketplaceOnly => app,
        };
        let mut shutdown_rx = stop_rx;
        let task = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = shutdown_rx.changed().await;
                })
                .await
        });
        Ok(Self {
            addr,
            state,
            stop,
            task,
            jobs,
            workers,
        })
    }

    /// Stop accepting, let in-flight requests finish, flush buffers.
    pub async fn shutdown(self) {
        self.state.shutting_down.store(true, Ordering::Relaxed);
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.jobs.join().await;
        for worker in self.workers {
            let _ = worker.await;
        }
        if let Err(e) = self.state.recorder.flush(&self.state.db).await {
            tracing::error!(error = %e, "final flush of usage and audit records failed");
        }
    }

    /// Serve until the process gets SIGINT or SIGTERM, then shut down gracefully.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        self.shutdown().await;
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
