//! Builds `plugins/` for wasm32-wasip2 once per test process and hands out component paths.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Directory of a first-party connector crate, e.g. `plugins/slack`.
pub fn connector_dir(name: &str) -> PathBuf {
    repo_root().join("plugins").join(name)
}

/// Path of a built component, building the plugins workspace first if needed.
pub fn component(crate_dir: &str) -> PathBuf {
    let dir = build_all();
    dir.join(format!("nexum_connector_{}.wasm", crate_dir.replace('-', "_")))
}

/// The component bytes and manifest text of a first-party connector.
pub fn connector(crate_dir: &str) -> (Vec<u8>, String) {
    let wasm = std::fs::read(component(crate_dir)).expect("component built");
    let manifest = std::fs::read_to_string(connector_dir(crate_dir).join("connector.toml")).expect("manifest");
    (wasm, manifest)
}

fn build_all() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = repo_root();
            ensure_wasm_target();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let output = Command::new(cargo)
                .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
                .arg(root.join("plugins/Cargo.toml"))
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .expect("cargo runs");
            assert!(
                output.status.success(),
                "building plugins/ for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            root.join("plugins/target/wasm32-wasip2/release")
        })
        .clone()
}

/// Install the `wasm32-wasip2` target through rustup when it is missing, so `cargo test`
/// works on a fresh machine without a manual step.
fn ensure_wasm_target() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let Ok(installed) = installed else { return };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t.trim() == "wasm32-wasip2")
    {
        return;
    }
    eprintln!("installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)…");
    let _ = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status();
}

/// The hostile connector's manifest, allowed to reach two origins (`upstream`, to which its
/// credential is bound, and `other`, to which no credential is bound).
pub fn two_host_hostile_manifest() -> String {
    let base = std::fs::read_to_string(connector_dir("hostile").join("connector.toml")).expect("manifest");
    base.replace(
        "allowed_hosts = [\"{{ upstream }}\"]",
        "allowed_hosts = [\"{{ upstream }}\", \"{{ other }}\"]",
    )
    .replace(
        "[variables.upstream]",
        "[variables.other]\ndescription = \"second origin\"\n\n[variables.upstream]",
    )
}
