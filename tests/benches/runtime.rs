//! Runtime benchmarks (criterion), run with `cargo bench -p nexum-tests`.
//!
//! - `no_io/bare_wasmtime`: instantiate + call `execute` of the same component with plain
//!   wasmtime (same engine settings, pooling, imports stubbed) — the floor;
//! - `no_io/nexum`: the same action through `Runtime::execute` (fresh store, WASI context,
//!   credential table, schema checks, limits) on one thread;
//! - `get/direct_reqwest` vs `get/brokered`: a GET to the same loopback server, directly and
//!   from inside a connector through the broker (fresh instance per call);
//! - after criterion: calls/s of the no-I/O action on a 2-worker tokio runtime.

use criterion::{BenchmarkId, Criterion};
use nexum_host::broker::{AddressPolicy, Broker, BrokerConfig};
use nexum_host::runtime::{Connection, Invocation, LoadedConnector, Runtime, RuntimeConfig};
use nexum_manifest::Manifest;
use nexum_tests::{fakes, plugins};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

struct BareState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn runtime(threads_hint: u32) -> Runtime {
    let broker = Broker::new(BrokerConfig {
        address_policy: AddressPolicy {
            allowed_ranges: vec!["127.0.0.0/8".parse().expect("cidr")],
        },
        ..BrokerConfig::default()
    })
    .expect("broker");
    Runtime::new(
        RuntimeConfig {
            max_concurrent_calls: 64 * threads_hint,
            ..RuntimeConfig::default()
        },
        broker,
    )
    .expect("runtime")
}

fn hostile(runtime: &Runtime, upstream: &str) -> (Arc<LoadedConnector>, Arc<Connection>) {
    let (wasm, manifest) = plugins::connector("hostile");
    let manifest = Manifest::parse(&manifest).expect("manifest");
    let mut vars = BTreeMap::new();
    vars.insert("upstream".to_string(), upstream.to_string());
    let connection = Connection::new("conn_bench", &manifest, &vars, vec![]).expect("connection");
    // The benchmark must not be throttled by the connector's own rate limit.
    let mut connection = connection;
    connection.egress.requests_per_second = 1_000_000;
    (runtime.load(manifest, &wasm).expect("load"), Arc::new(connection))
}

fn bench_no_io(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("no_io");

    // Bare wasmtime: same engine settings, imports stubbed, dynamic call of `execute`.
    let engine: Engine = nexum_host::runtime::build_engine(&RuntimeConfig::default()).expect("engine");
    let ticker_engine = engine.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(10));
            ticker_engine.increment_epoch();
        }
    });
    let component = Component::from_file(&engine, plugins::component("hostile")).expect("component");
    let mut linker = Linker::<BareState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    linker.define_unknown_imports_as_traps(&component).expect("stubs");
    let pre = linker.instantiate_pre(&component).expect("pre");
    let iface = component
        .get_export_index(None, "nexum:connector/actions@0.1.0")
        .expect("actions export");
    let execute = component.get_export_index(Some(&iface), "execute").expect("execute");
    group.bench_function("bare_wasmtime", |b| {
        b.to_async(rt).iter(|| async {
            let mut store = Store::new(
                &engine,
                BareState {
                    wasi: WasiCtxBuilder::new().build(),
                    table: ResourceTable::new(),
                },
            );
            store.set_epoch_deadline(100);
            let instance = pre.instantiate_async(&mut store).await.expect("instantiate");
            let func = instance.get_func(&mut store, execute).expect("func");
            let mut results = [Val::Bool(false)];
            func.call_async(
                &mut store,
                &[Val::String("ok".into()), Val::String("{}".into())],
                &mut results,
            )
            .await
            .expect("call");
            results
        })
    });

    let runtime = runtime(1);
    let (connector, connection) = hostile(&runtime, "https://api.example.com");
    group.bench_function("nexum", |b| {
        b.to_async(rt).iter(|| async {
            let out = runtime
                .execute(
                    &connector,
                    connection.clone(),
                    Invocation::Action {
                        name: "ok".into(),
                        input: json!({}),
                    },
                )
                .await;
            assert!(out.result.is_ok());
            out
        })
    });
    group.finish();
}

fn bench_get(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let upstream = rt.block_on(fakes::upstream());
    let url = upstream.url("/ok");
    let mut group = c.benchmark_group("get");
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    group.bench_function(BenchmarkId::new("direct_reqwest", "loopback"), |b| {
        b.to_async(rt).iter(|| async {
            let body = client
                .get(&url)
                .send()
                .await
                .expect("send")
                .bytes()
                .await
                .expect("body");
            assert!(!body.is_empty());
            upstream.clear();
        })
    });
    let runtime = runtime(1);
    let (connector, connection) = hostile(&runtime, &upstream.origin());
    group.bench_function(BenchmarkId::new("brokered", "loopback"), |b| {
        b.to_async(rt).iter(|| async {
            let out = runtime
                .execute(
                    &connector,
                    connection.clone(),
                    Invocation::Action {
                        name: "fetch".into(),
                        input: json!({ "url": url }),
                    },
                )
                .await;
            assert!(out.result.is_ok(), "{:?}", out.result);
            upstream.clear();
        })
    });
    group.finish();
}

/// Calls/s of the no-I/O action on a 2-worker runtime with 8 concurrent callers.
fn throughput_two_threads() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let runtime = Arc::new(runtime(2));
    let (connector, connection) = hostile(&runtime, "https://api.example.com");
    let calls = Arc::new(AtomicU64::new(0));
    let window = Duration::from_secs(5);
    rt.block_on(async {
        let started = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (runtime, connector, connection, calls) =
                    (runtime.clone(), connector.clone(), connection.clone(), calls.clone());
                tokio::spawn(async move {
                    while started.elapsed() < window {
                        let out = runtime
                            .execute(
                                &connector,
                                connection.clone(),
                                Invocation::Action {
                                    name: "ok".into(),
                                    input: json!({}),
                                },
                            )
                            .await;
                        assert!(out.result.is_ok());
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("join");
        }
        let n = calls.load(Ordering::Relaxed);
        println!(
            "throughput/no_io/2_threads: {n} calls in {:.1} s = {:.0} calls/s",
            started.elapsed().as_secs_f64(),
            n as f64 / started.elapsed().as_secs_f64()
        );
    });
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let mut c = Criterion::default().configure_from_args();
    bench_no_io(&mut c, &rt);
    bench_get(&mut c, &rt);
    c.final_summary();
    throughput_two_threads();
}
