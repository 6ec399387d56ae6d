//! Two jobs. Rebuild when a migration is added or changed: `sqlx::migrate!` embeds the
//! migration files at compile time, and Cargo does not otherwise notice new files there.
//!
//! And build the first-party connector catalogue (`plugins/`, `wasm32-wasip2`, release) and
//! embed it in the binary, so a fresh `nexum serve` lists and installs every catalogue
//! connector with nothing else on disk. The host trusts exactly these bytes: it pins their
//! digests at start-up (see `src/marketplace/catalogue.rs`).
//!
//! And embed the starter workflow templates (`templates/<id>/`: `template.json`, optional
//! `README.md` and icon), pinned the same way (see `src/templates/starter.rs`).
//!
//! The plugins are their own cargo workspace with their own `target/`, so the nested build
//! never contends for this build's lock. Variables the outer cargo sets for *this* crate
//! (target, flags, wrappers such as clippy-driver) are removed so they cannot leak into the
//! wasm build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The catalogue: `plugins/<dir>`, built as `nexum-connector-<dir>`.
const CATALOGUE: &[&str] = &[
    "http",
    "slack",
    "twilio",
    "sendgrid",
    "discord",
    "webhook",
    "gmail",
    "outlook",
    "smtp",
    "stripe",
    "openai",
    "github",
    "dropbox",
    "gdrive",
    "salesforce",
    "hubspot",
    "gohighlevel",
];

fn main() {
    let host = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = host
        .parent()
        .expect("the host crate sits in the repository")
        .to_path_buf();
    let plugins = root.join("plugins");
    watch(&plugins, &root);
    build(&plugins);
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("catalogue.rs"), generate(&plugins)).expect("write catalogue.rs");
    std::fs::write(
        out.join("starter_templates.rs"),
        generate_starters(&root.join("templates")),
    )
    .expect("write starter_templates.rs");
}

fn watch(plugins: &Path, root: &Path) {
    println!("cargo:rerun-if-changed={}", root.join("migrations").display());
    println!("cargo:rerun-if-changed={}", root.join("templates").display());
    println!("cargo:rerun-if-env-changed=NEXUM_CATALOGUE_CARGO");
    for path in [
        plugins.join("Cargo.toml"),
        plugins.join("Cargo.lock"),
        plugins.join("sdk"),
        root.join("wit"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for dir in CATALOGUE {
        for file in ["Cargo.toml", "connector.toml", "README.md", "src", "icon.svg"] {
            println!("cargo:rerun-if-changed={}", plugins.join(dir).join(file).display());
        }
    }
}

fn build(plugins: &Path) {
    let cargo = std::env::var("NEXUM_CATALOGUE_CARGO")
        .or_else(|_| std::env::var("CARGO"))
        .unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        // Where `generate` reads the components from, whatever a user's cargo config says.
        .arg("--target-dir")
        .arg(plugins.join("target"));
    for dir in CATALOGUE {
        command.args(["-p", &format!("nexum-connector-{dir}")]);
    }
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let keep = name == "CARGO_HOME"
            || name == "CARGO_MAKEFLAGS"
            || name.starts_with("CARGO_NET_")
            || name.starts_with("CARGO_HTTP_")
            || name.starts_with("CARGO_REGISTRIES_");
        let outer = (name.starts_with("CARGO_") && !keep)
            || matches!(
                name.as_str(),
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC"
                    | "RUSTDOC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTC_LINKER"
                    | "CLIPPY_ARGS"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
            );
        if outer {
            command.env_remove(&name);
        }
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the connector catalogue: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
            "\n\nThe catalogue is WebAssembly: run `rustup target add wasm32-wasip2` once, then build again."
        } else {
            ""
        };
        panic!("building the connector catalogue (plugins/, wasm32-wasip2) failed:\n{stderr}{hint}");
    }
}

fn generate(plugins: &Path) -> String {
    let wasm_dir = plugins.join("target/wasm32-wasip2/release");
    let mut code = String::from("// Generated by host/build.rs: the connector catalogue built into this binary.\n\n");
    code.push_str("const BUILT_IN: &[BuiltIn] = &[\n");
    for dir in CATALOGUE {
        let source = plugins.join(dir);
        let wasm = wasm_dir.join(format!("nexum_connector_{dir}.wasm"));
        let optional = |file: &str, macro_name: &str| {
            let path = source.join(file);
            if path.exists() {
                format!("Some({macro_name}!({:?}))", path.display().to_string())
            } else {
                "None".to_string()
            }
        };
        code.push_str(&format!(
            "    BuiltIn {{\n        dir: {dir:?},\n        manifest: include_str!({:?}),\n        component: include_bytes!({:?}),\n        readme: {},\n        icon_svg: {},\n    }},\n",
            source.join("connector.toml").display().to_string(),
            wasm.display().to_string(),
            optional("README.md", "include_str"),
            optional("icon.svg", "include_bytes"),
        ));
    }
    code.push_str("];\n");
    code
}

/// Every `templates/<id>/` holding a `template.json`, sorted by directory.
fn generate_starters(templates: &Path) -> String {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(templates)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("template.json").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    let mut code = String::from("// Generated by host/build.rs: the starter templates built into this binary.\n\n");
    code.push_str("const STARTERS: &[StarterFiles] = &[\n");
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let readme = dir.join("README.md");
        let readme = if readme.is_file() {
            format!("Some(include_str!({:?}))", readme.display().to_string())
        } else {
            "None".to_string()
        };
        let icon = ["icon.svg", "icon.png", "icon.jpg", "icon.jpeg", "icon.webp"]
            .iter()
            .find(|f| dir.join(f).is_file())
            .map(|f| {
                format!(
                    "Some(({f:?}, include_bytes!({:?}).as_slice()))",
                    dir.join(f).display().to_string()
                )
            })
            .unwrap_or_else(|| "None".to_string());
        code.push_str(&format!(
            "    StarterFiles {{\n        dir: {name:?},\n        template: include_bytes!({:?}),\n        readme: {readme},\n        icon: {icon},\n    }},\n",
            dir.join("template.json").display().to_string(),
        ));
    }
    code.push_str("];\n");
    code
}
