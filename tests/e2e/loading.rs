//! Loading components: imports beyond the connector world are refused by name, garbage is
//! refused, and precompiled artifacts are only trusted when this host wrote them.

use nexum_host::broker::{Broker, BrokerConfig};
use nexum_host::runtime::{Connection, Invocation, LoadError, Runtime, RuntimeConfig};
use nexum_manifest::Manifest;
use nexum_tests::plugins;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

fn runtime(artifacts: Option<std::path::PathBuf>) -> Runtime {
    let config = RuntimeConfig {
        max_concurrent_calls: 4,
        artifact_dir: artifacts,
        ..RuntimeConfig::default()
    };
    Runtime::new(config, Broker::new(BrokerConfig::default()).expect("broker")).expect("runtime")
}

#[test]
fn a_component_importing_the_filesystem_is_refused_by_name() {
    let (wasm, manifest) = plugins::connector("hostile-imports");
    let err = runtime(None)
        .load(Manifest::parse(&manifest).expect("manifest"), &wasm)
        .expect_err("refused");
    match &err {
        LoadError::ForbiddenImport { import, .. } => assert!(import.starts_with("wasi:filesystem/"), "{import}"),
        other => panic!("expected a forbidden import, got {other}"),
    }
    assert!(err.to_string().contains("wasi:filesystem"), "{err}");
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let (_, manifest) = plugins::connector("slack");
    let manifest = Manifest::parse(&manifest).expect("manifest");
    let err = runtime(None)
        .load(manifest.clone(), b"\0asm not really")
        .expect_err("garbage");
    assert!(matches!(err, LoadError::InvalidComponent(_)), "{err}");
    // A core module is not a component either.
    let err = runtime(None)
        .load(manifest, b"\0asm\x01\0\0\0")
        .expect_err("core module");
    assert!(
        matches!(err, LoadError::InvalidComponent(_) | LoadError::NotAConnector(_)),
        "{err}"
    );
}

#[tokio::test]
async fn precompiled_artifacts_are_reused_and_tampered_ones_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wasm, manifest) = plugins::connector("hostile");
    let manifest = Manifest::parse(&manifest).expect("manifest");
    let digest = nexum_host::runtime::digest(&wasm);

    let first = runtime(Some(dir.path().to_path_buf()));
    first.load(manifest.clone(), &wasm).expect("compiled");
    let artifact = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&digest)))
        .expect("an artifact named by digest was written");

    // Corrupt the artifact: a new host must notice, recompile and still run correctly.
    let mut bytes = std::fs::read(&artifact).expect("artifact");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&artifact, &bytes).expect("tamper");
    let second = runtime(Some(dir.path().to_path_buf()));
    let connector = second.load(manifest.clone(), &wasm).expect("recompiled");
    let connection = Arc::new(Connection::new("c", &manifest, &BTreeMap::new(), vec![]).expect("connection"));
    let out = second
        .execute(
            &connector,
            connection,
            Invocation::Action {
                name: "ok".into(),
                input: json!({}),
            },
        )
        .await;
    assert_eq!(out.result.expect("runs"), json!({ "echo": {} }));
    assert_ne!(
        std::fs::read(&artifact).expect("artifact"),
        bytes,
        "the bad artifact was replaced"
    );
}

/// A component that instantiates one core module `instances` times, each instance with
/// `memories_each` memories of one page (hand-made: no toolchain makes such a thing).
fn component_with(instances: u32, memories_each: u32) -> Vec<u8> {
    use wasm_encoder::{Component, InstanceSection, MemorySection, MemoryType, Module, ModuleArg, ModuleSection};
    let mut module = Module::new();
    let mut memories = MemorySection::new();
    for _ in 0..memories_each {
        memories.memory(MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
    }
    module.section(&memories);
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    let mut section = InstanceSection::new();
    for _ in 0..instances {
        section.instantiate(0, Vec::<(&str, ModuleArg)>::new());
    }
    component.section(&section);
    component.finish()
}

#[test]
fn a_component_with_hundreds_of_core_instances_is_refused_at_load() {
    // 300 instances would take every core-instance slot of the pool, leaving every other
    // tenant's call at capacity; the loader refuses it instead.
    let (_, manifest) = plugins::connector("slack");
    let manifest = Manifest::parse(&manifest).expect("manifest");
    let err = runtime(None)
        .load(manifest, &component_with(300, 0))
        .expect_err("refused");
    assert!(matches!(err, LoadError::InvalidComponent(_)), "{err}");
    assert!(err.to_string().contains("core module instances"), "{err}");
}

#[test]
fn a_component_with_many_memories_is_refused_at_load() {
    // Each memory alone would be under the call's memory cap; many of them would multiply it.
    let (_, manifest) = plugins::connector("slack");
    let manifest = Manifest::parse(&manifest).expect("manifest");
    for (instances, memories_each) in [(1, 40), (4, 1)] {
        let err = runtime(None)
            .load(manifest.clone(), &component_with(instances, memories_each))
            .expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("linear memories") || text.contains("defined memories count"),
            "{err}"
        );
    }
}

/// `nexum:connector@0.1.1` only adds an interface: a component built against the frozen
/// 0.1.0 (imports and exports all `@0.1.0`) still loads and runs unchanged, and one built
/// with the current SDK (0.1.1) reads the call's idempotency key.
#[tokio::test]
async fn a_component_built_against_0_1_0_still_loads_and_runs() {
    let (wasm, manifest) = plugins::connector("compat-v0-1");
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, &wasm).expect("component");
    let ty = component.component_type();
    let names: Vec<String> = ty
        .imports(&engine)
        .map(|(n, _)| n.to_string())
        .chain(ty.exports(&engine).map(|(n, _)| n.to_string()))
        .filter(|n| n.starts_with("nexum:connector/"))
        .collect();
    assert!(
        names.contains(&"nexum:connector/actions@0.1.0".to_string()),
        "{names:?}"
    );
    assert!(names.iter().all(|n| n.ends_with("@0.1.0")), "{names:?}");

    let manifest = Manifest::parse(&manifest).expect("manifest");
    let rt = runtime(None);
    let connector = rt.load(manifest.clone(), &wasm).expect("a 0.1.0 component loads");
    let variables = BTreeMap::from([("greeting".to_string(), "hi".to_string())]);
    let connection = Arc::new(Connection::new("c", &manifest, &variables, vec![]).expect("connection"));
    let out = rt
        .execute_keyed(
            &connector,
            connection,
            Invocation::Action {
                name: "echo".into(),
                input: json!({ "n": 1 }),
            },
            Some("exe_1:step".into()),
        )
        .await;
    assert_eq!(
        out.result.expect("runs"),
        json!({ "echo": { "n": 1 }, "greeting": "hi" })
    );

    let (wasm, _) = plugins::connector("http");
    let component = wasmtime::component::Component::new(&engine, &wasm).expect("component");
    let imports: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(n, _)| n.to_string())
        .collect();
    assert!(
        imports.contains(&"nexum:connector/execution@0.1.2".to_string()),
        "the SDK's connectors are built against the newest 0.1 release: {imports:?}"
    );
}

/// `nexum:connector@0.1.2` only adds the `mail` interface: the Slack connector as it was
/// built against 0.1.1 (kept byte for byte in `tests/fixtures/v0_1_1/`) still loads and
/// posts a message unchanged.
#[tokio::test]
async fn a_component_built_against_0_1_1_still_loads_and_runs() {
    let fixtures = plugins::repo_root().join("tests/fixtures/v0_1_1");
    let wasm = std::fs::read(fixtures.join("slack.wasm")).expect("the 0.1.1 Slack component");
    let manifest = std::fs::read_to_string(fixtures.join("slack.connector.toml")).expect("its manifest");
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, &wasm).expect("component");
    let imports: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(n, _)| n.to_string())
        .filter(|n| n.starts_with("nexum:connector/"))
        .collect();
    assert!(imports.iter().all(|n| n.ends_with("@0.1.1")), "{imports:?}");
    assert!(!imports.iter().any(|n| n.contains("/mail@")), "{imports:?}");

    let slack = nexum_tests::fakes::slack().await;
    let manifest = Manifest::parse(&manifest).expect("manifest");
    let rt = runtime(None);
    let connector = rt.load(manifest.clone(), &wasm).expect("a 0.1.1 component loads");
    let variables = BTreeMap::from([("api_base".to_string(), slack.origin())]);
    let scheme = manifest.auth_scheme("bot_token").expect("scheme");
    let credential = nexum_host::vault::Credential::from_fields(
        scheme,
        &BTreeMap::from([("token".to_string(), nexum_tests::fakes::SLACK_TOKEN.to_string())]),
        "",
    )
    .expect("credential");
    let connection = Connection::new("c", &manifest, &variables, vec![credential])
        .expect("connection")
        .with_granted_ranges(vec!["127.0.0.0/8".parse().expect("range")]);
    let out = rt
        .execute(
            &connector,
            Arc::new(connection),
            Invocation::Action {
                name: "send_message".into(),
                input: json!({ "channel": "C1", "text": "still here" }),
            },
        )
        .await;
    assert_eq!(out.result.expect("runs")["channel"], "C1");
    assert_eq!(slack.requests()[0].path, "/api/chat.postMessage");
}
