//! The connector runtime: one wasmtime engine, a cache of compiled components, and a fresh,
//! bounded `Store` per call.
//!
//! A call gets: an empty WASI context (no files, sockets, env or args; stderr captured to
//! report panics), the connection's credential handles, a memory cap, and a wall-clock
//! deadline that covers guest time and host calls alike (epoch interruption makes a looping
//! guest yield so the deadline can fire). A trapping, looping, panicking or memory-hungry
//! connector fails its own call with a clear [`CallError`]; the host keeps serving.

mod bindings;
mod cache;
mod call;
mod connection;
mod engine;
mod host_config;
mod host_credentials;
mod host_execution;
mod host_http;
mod host_log;
mod host_mail;
mod imports;
mod state;
mod trace;

pub use cache::digest;
pub use call::{CallError, Invocation};
pub use connection::{Connection, CredentialRefresher};
pub use engine::build_engine;
pub use imports::{NEXUM_PACKAGE, NEXUM_VERSIONS};
pub use trace::{CallTrace, LogLine};

use crate::broker::Broker;
use bindings::{Connector, ConnectorPre};
use cache::ComponentCache;
use engine::EpochTicker;
use jsonschema::Validator;
use nexum_manifest::Manifest;
use serde_json::Value;
use state::{CallLimiter, CallLimits, CallState};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Operator limits and runtime settings. A connector's own limits are clamped to these.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Largest memory cap any connector may have, in MiB (also the pool's slot size).
    pub max_memory_mb: u32,
    /// Longest deadline any call may have.
    pub max_timeout: Duration,
    /// Largest JSON output a call may return.
    pub max_output_bytes: usize,
    /// Calls that can run at once (pooling allocator slots).
    pub max_concurrent_calls: u32,
    /// Log lines kept per call.
    pub max_log_lines: usize,
    /// Brokered requests allowed per call.
    pub max_http_requests_per_call: usize,
    /// Where precompiled artifacts are kept; `None` compiles in memory only.
    pub artifact_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_memory_mb: 128,
            max_timeout: Duration::from_secs(60),
            max_output_bytes: 1 << 20,
            max_concurrent_calls: 128,
            max_log_lines: 200,
            max_http_requests_per_call: 100,
            artifact_dir: None,
        }
    }
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid component for this engine.
    #[error("not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    /// The component imports something outside the connector world.
    #[error("the component imports `{import}`, which Nexum does not provide: {reason}")]
    ForbiddenImport {
        /// The import's full name.
        import: String,
        /// Why it is refused.
        reason: String,
    },
    /// The component does not implement the connector world.
    #[error("the component does not implement the nexum:connector world: {0}")]
    NotAConnector(String),
    /// An action's JSON Schema could not be compiled.
    #[error("the schema of action `{action}` cannot be compiled: {reason}")]
    BadSchema {
        /// Action name.
        action: String,
        /// Compiler message.
        reason: String,
    },
}

/// Failure to start the runtime.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the connector runtime: {0}")]
pub struct RuntimeStartError(String);

/// A connector ready to run: manifest, component digest, pre-instance, compiled schemas.
pub struct LoadedConnector {
    /// The manifest.
    pub manifest: Arc<Manifest>,
    /// sha256 of the component bytes.
    pub digest: String,
    pre: ConnectorPre<CallState>,
    schemas: HashMap<String, (Validator, Validator)>,
}

impl std::fmt::Debug for LoadedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedConnector")
            .field("id", &self.manifest.id)
            .field("digest", &self.digest)
            .finish()
    }
}

/// The result of a call: its output or error, and its redacted trace.
#[derive(Debug)]
pub struct CallOutcome {
    /// JSON output, or why there is none.
    pub result: Result<Value, CallError>,
    /// What the call did.
    pub trace: CallTrace,
}

/// The connector runtime of one host.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: ComponentCache,
    broker: Arc<Broker>,
    config: RuntimeConfig,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Build the engine, linker and cache and start the epoch ticker.
    pub fn new(config: RuntimeConfig, broker: Broker) -> Result<Self, RuntimeStartError> {
        let fail = |e: &dyn std::fmt::Display| RuntimeStartError(e.to_string());
        let engine = engine::build_engine(&config).map_err(|e| fail(&e))?;
        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| fail(&e))?;
        Connector::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s).map_err(|e| fail(&e))?;
        let cache = ComponentCache::new(&engine, config.artifact_dir.clone()).map_err(|e| fail(&e))?;
        let ticker = EpochTicker::start(&engine).map_err(|e| fail(&e))?;
        Ok(Self {
            engine,
            linker,
            cache,
            broker: Arc::new(broker),
            config,
            _ticker: ticker,
        })
    }

    /// The runtime's settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Compile (or fetch from cache), check imports, pre-instantiate and compile schemas.
    pub fn load(&self, manifest: Manifest, wasm: &[u8]) -> Result<Arc<LoadedConnector>, LoadError> {
        let digest = digest(wasm);
        let pre = match self.cache.get(&digest) {
            Some(pre) => pre,
            None => {
                let component = self
                    .cache
                    .compile(&self.engine, &digest, wasm)
                    .map_err(|e| LoadError::InvalidComponent(format!("{e:#}")))?;
                imports::check_imports(&self.engine, &component)?;
                let instance_pre = self
                    .linker
                    .instantiate_pre(&component)
                    .map_err(|e| LoadError::NotAConnector(format!("{e:#}")))?;
                let pre = ConnectorPre::new(instance_pre).map_err(|e| LoadError::NotAConnector(format!("{e:#}")))?;
                self.cache.insert(&digest, pre.clone());
                pre
            }
        };
        let mut schemas = HashMap::new();
        for (name, action) in &manifest.actions {
            let compile = |schema: &Value| {
                jsonschema::validator_for(schema).map_err(|e| LoadError::BadSchema {
                    action: name.clone(),
                    reason: e.to_string(),
                })
            };
            schemas.insert(name.clone(), (compile(&action.input)?, compile(&action.output)?));
        }
        Ok(Arc::new(LoadedConnector {
            manifest: Arc::new(manifest),
            digest,
            pre,
            schemas,
        }))
    }

    /// Run one invocation on a fresh instance.
    pub async fn execute(
        &self,
        connector: &LoadedConnector,
        connection: Arc<Connection>,
        invocation: Invocation,
    ) -> CallOutcome {
        self.execute_keyed(connector, connection, invocation, None).await
    }

    /// Run one invocation on a fresh instance; the connector can read `idempotency_key`
    /// (stable across retries of the same logical call) to pass upstream.
    pub async fn execute_keyed(
        &self,
        connector: &LoadedConnector,
        connection: Arc<Connection>,
        invocation: Invocation,
        idempotency_key: Option<String>,
    ) -> CallOutcome {
        let started = Instant::now();
        let mut outcome = self
            .execute_inner(connector, connection, &invocation, idempotency_key, started)
            .await;
        outcome.trace.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        outcome
    }

    async fn execute_inner(
        &self,
        connector: &LoadedConnector,
        connection: Arc<Connection>,
        invocation: &Invocation,
        idempotency_key: Option<String>,
        started: Instant,
    ) -> CallOutcome {
        let fail = |e: CallError| CallOutcome {
            result: Err(e),
            trace: CallTrace::default(),
        };
        let (input_json, output_schema) = match invocation {
            Invocation::Action { name, input } => {
                let Some((input_schema, output_schema)) = connector.schemas.get(name) else {
                    return fail(CallError::UnknownAction { name: name.clone() });
                };
                let errors: Vec<String> = input_schema
                    .iter_errors(input)
                    .take(10)
                    .map(describe_violation)
                    .collect();
                if !errors.is_empty() {
                    return fail(CallError::InvalidInput { errors });
                }
                (Some(input.to_string()), Some(output_schema))
            }
            Invocation::TestConnection => (None, None),
        };

        let limits = &connector.manifest.limits;
        let memory_mb = limits.memory_mb.min(self.config.max_memory_mb);
        let timeout = Duration::from_millis(limits.timeout_ms).min(self.config.max_timeout);
        let deadline = started + timeout;
        let redactor = connection.egress.redactor.clone();
        let initial_connection = connection.clone();

        let stderr = MemoryOutputPipe::new(8 * 1024);
        let state = CallState {
            wasi: WasiCtxBuilder::new().stderr(stderr.clone()).build(),
            table: ResourceTable::new(),
            limiter: CallLimiter::new(memory_mb as usize * 1024 * 1024),
            stderr,
            connection,
            broker: self.broker.clone(),
            deadline,
            trace: CallTrace::default(),
            limits: CallLimits {
                max_log_lines: self.config.max_log_lines,
                max_log_line_bytes: 2048,
                max_credential_handles: 64,
                max_http_requests: self.config.max_http_requests_per_call,
            },
            handles_issued: 0,
            unsent_requests: 0,
            unsent_bytes: 0,
            refreshed_after_401: false,
            idempotency_key,
        };
        let mut store = Store::new(&self.engine, state);
        // WASI handles (streams, pollables) and credential handles share this table; a guest
        // that never drops them must not grow host memory without bound.
        store.data_mut().table.set_max_capacity(1024);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);

        let pre = connector.pre.clone();
        let run = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let actions = instance.nexum_connector_actions();
            match (invocation, &input_json) {
                (Invocation::Action { name, .. }, Some(input)) => actions.call_execute(&mut store, name, input).await,
                _ => actions.call_test_connection(&mut store).await,
            }
        };
        let finished = tokio::time::timeout_at(deadline.into(), run).await;

        let state = store.into_data();
        // A token renewed during the call is scrubbed too: take the call's final connection.
        let redactor = if Arc::ptr_eq(&state.connection, &initial_connection) {
            redactor
        } else {
            crate::broker::Redactor::merged(&redactor, &state.connection.egress.redactor)
        };
        let trace = state.trace;
        let result = match finished {
            Err(_elapsed) => Err(CallError::Timeout {
                limit_ms: timeout.as_millis() as u64,
            }),
            Ok(Err(trap)) => Err(classify_trap(
                &trap,
                &state.limiter,
                &state.stderr,
                memory_mb,
                &redactor,
            )),
            Ok(Ok(Err(e))) => Err(CallError::Connector {
                code: redactor.scrub(truncate(&e.code, 64)),
                message: redactor.scrub(truncate(&e.message, 4096)),
                retryable: e.retryable,
            }),
            Ok(Ok(Ok(output))) => self.check_output(&output, output_schema, &redactor),
        };
        CallOutcome { result, trace }
    }

    fn check_output(
        &self,
        output: &str,
        schema: Option<&Validator>,
        redactor: &crate::broker::Redactor,
    ) -> Result<Value, CallError> {
        if output.len() > self.config.max_output_bytes {
            return Err(CallError::OutputTooLarge {
                size: output.len(),
                limit: self.config.max_output_bytes,
            });
        }
        let scrubbed = redactor.scrub(output);
        let value: Value = serde_json::from_str(&scrubbed).map_err(|e| CallError::InvalidOutput {
            errors: vec![format!("not JSON: {e}")],
        })?;
        if let Some(schema) = schema {
            let errors: Vec<String> = schema.iter_errors(&value).take(10).map(describe_violation).collect();
            if !errors.is_empty() {
                return Err(CallError::InvalidOutput { errors });
            }
        }
        Ok(value)
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn describe_violation(e: jsonschema::ValidationError<'_>) -> String {
    let path = e.instance_path().to_string();
    let at = if path.is_empty() { "/".to_string() } else { path };
    format!("{at}: {e}")
}

fn classify_trap(
    trap: &wasmtime::Error,
    limiter: &CallLimiter,
    stderr: &MemoryOutputPipe,
    memory_mb: u32,
    redactor: &crate::broker::Redactor,
) -> CallError {
    let text = String::from_utf8_lossy(&stderr.contents()).into_owned();
    if limiter.memory_refused {
        return CallError::MemoryExceeded { limit_mb: memory_mb };
    }
    if let Some(at) = text.find("panicked at") {
        let message = text[at..]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("note:"))
            .collect::<Vec<_>>()
            .join("\n");
        let message = if message.trim().is_empty() {
            text[at..].lines().next().unwrap_or_default().to_string()
        } else {
            message
        };
        return CallError::Panicked {
            message: redactor.scrub(message.trim()),
        };
    }
    let message = match trap.downcast_ref::<wasmtime::Trap>() {
        Some(t) => t.to_string(),
        None => format!("{trap:#}"),
    };
    if message.contains("maximum concurrent") || message.contains("pooling allocator") {
        return CallError::AtCapacity;
    }
    CallError::Trapped {
        message: redactor.scrub(&message),
    }
}
