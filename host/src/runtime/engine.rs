//! The one wasmtime [`Engine`] of a host: component model, async, pooling allocator and
//! epoch interruption driven by a ticker thread.

use super::RuntimeConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; a looping guest yields at least this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most core module instances one connector component may contain.
pub const CORE_INSTANCES_PER_CALL: u32 = 8;
/// Most linear memories one connector component may contain (their total size is capped
/// by the call's memory limit as a whole, not each alone).
pub const MEMORIES_PER_CALL: u32 = 2;
/// Most tables one connector component may contain.
pub const TABLES_PER_CALL: u32 = 8;

/// Build the engine the whole host shares.
pub fn build_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let instances = config.max_concurrent_calls;
    // Per-component caps match each call's share of the pool, so no component can take
    // more than one slot's worth (a component declaring hundreds of core instances would
    // otherwise take them all and every tenant would get 503). A component over a cap is
    // refused when it is loaded. First-party connectors use 1 memory, ≤ 4 core instances.
    pool.total_component_instances(instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_CALL)
        .max_memories_per_component(MEMORIES_PER_CALL)
        .max_tables_per_component(TABLES_PER_CALL)
        .total_core_instances(instances * CORE_INSTANCES_PER_CALL)
        .total_memories(instances * MEMORIES_PER_CALL)
        .total_tables(instances * TABLES_PER_CALL)
        .total_stacks(instances)
        .max_memory_size(config.max_memory_mb as usize * 1024 * 1024)
        // Keeping a little memory resident avoids madvise/page-fault churn on every call;
        // without it two workers are slower than one (see TOOLCHAIN.md).
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10);

    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .parallel_compilation(true)
        .max_wasm_stack(1 << 20);
    Engine::new(&wasm)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Start ticking `engine`.
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        std::thread::Builder::new().name("nexum-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
