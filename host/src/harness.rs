//! `nexum connector run`: run one action of a local connector with a real broker, and show
//! the output and the redacted request trace. This is how an author debugs.

use crate::broker::{AddressPolicy, Broker, BrokerConfig};
use crate::runtime::{CallOutcome, CallTrace, Connection, Invocation, LoadError, Runtime, RuntimeConfig};
use crate::vault::{Credential, CredentialError};
use ipnet::IpNet;
use nexum_manifest::{AuthKind, MANIFEST_FILE, Manifest, ManifestError};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Why the harness could not run the call (as opposed to the connector failing it).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest was refused.
    #[error("{path}: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// No manifest could be found for a bare component.
    #[error("no {MANIFEST_FILE} next to {0}; pass --manifest")]
    NoManifest(PathBuf),
    /// Building the connector crate failed.
    #[error("building the connector failed: {0}")]
    Build(String),
    /// A `--credential` flag is malformed or does not fit the scheme.
    #[error("--credential {spec}: {reason}")]
    CredentialFlag {
        /// The flag value (secret part removed).
        spec: String,
        /// Why.
        reason: String,
    },
    /// The credential fields were refused.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The runtime or broker could not start.
    #[error("{0}")]
    Start(String),
}

/// A connector found on disk: its manifest and component bytes.
pub struct LocalConnector {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The component bytes.
    pub wasm: Vec<u8>,
    /// Where the component came from.
    pub component_path: PathBuf,
}

/// Find the manifest and component for `target`: a connector crate directory (built with
/// `cargo build --release --target wasm32-wasip2`), a directory holding a `.wasm`, or a
/// component file.
pub fn locate(target: &Path, manifest: Option<&Path>) -> Result<LocalConnector, HarnessError> {
    let (manifest_path, component_path) = if target.is_dir() {
        let manifest_path = manifest
            .map(Path::to_path_buf)
            .unwrap_or_else(|| target.join(MANIFEST_FILE));
        let component_path = if target.join("Cargo.toml").exists() {
            build_crate(target)?
        } else {
            find_wasm(target)?
        };
        (manifest_path, component_path)
    } else {
        let manifest_path = match manifest {
            Some(m) => m.to_path_buf(),
            None => {
                let beside = target.with_file_name(MANIFEST_FILE);
                if !beside.exists() {
                    return Err(HarnessError::NoManifest(target.to_path_buf()));
                }
                beside
            }
        };
        (manifest_path, target.to_path_buf())
    };
    let text = read_to_string(&manifest_path)?;
    let manifest = Manifest::parse(&text).map_err(|source| HarnessError::Manifest {
        path: manifest_path.clone(),
        source,
    })?;
    let wasm = std::fs::read(&component_path).map_err(|source| HarnessError::Read {
        path: component_path.clone(),
        source,
    })?;
    Ok(LocalConnector {
        manifest,
        wasm,
        component_path,
    })
}

fn read_to_string(path: &Path) -> Result<String, HarnessError> {
    std::fs::read_to_string(path).map_err(|source| HarnessError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn find_wasm(dir: &Path) -> Result<PathBuf, HarnessError> {
    let entries = std::fs::read_dir(dir).map_err(|source| HarnessError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| HarnessError::Build(format!("{} has neither a Cargo.toml nor a .wasm file", dir.display())))
}

/// Build a connector crate for `wasm32-wasip2` and return the component's path.
pub fn build_crate(dir: &Path) -> Result<PathBuf, HarnessError> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .output()
        .map_err(|e| HarnessError::Build(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
            "\nhint: run `rustup target add wasm32-wasip2`"
        } else {
            ""
        };
        return Err(HarnessError::Build(format!("{}{hint}", stderr.trim_end())));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let package_name = package_name(dir)?;
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"].as_str().map(|n| n.replace('-', "_")) == Some(package_name.replace('-', "_"))
        })
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| HarnessError::Build("cargo produced no .wasm file; is the crate a `cdylib`?".into()))
}

fn package_name(dir: &Path) -> Result<String, HarnessError> {
    let text = read_to_string(&dir.join("Cargo.toml"))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| HarnessError::Build(format!("Cargo.toml: {e}")))?;
    doc.get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| HarnessError::Build("Cargo.toml has no [package] name".into()))
}

/// Turn `--credential` flags into credentials. Forms: `scheme=value` for single-secret
/// schemes, `scheme=user:password` for basic, or `scheme.field=value`.
pub fn parse_credentials(manifest: &Manifest, flags: &[String]) -> Result<Vec<Credential>, HarnessError> {
    let mut fields: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for flag in flags {
        let (key, value) = flag.split_once('=').ok_or_else(|| HarnessError::CredentialFlag {
            spec: flag.split(['=', ':']).next().unwrap_or_default().to_string(),
            reason: "expected <scheme>=<secret> or <scheme>.<field>=<value>".into(),
        })?;
        let (scheme_id, field) = match key.split_once('.') {
            Some((s, f)) => (s, Some(f)),
            None => (key, None),
        };
        let scheme = manifest
            .auth_scheme(scheme_id)
            .ok_or_else(|| HarnessError::CredentialFlag {
                spec: key.to_string(),
                reason: format!(
                    "the connector has no auth scheme `{scheme_id}` (it has: {})",
                    manifest
                        .auth
                        .iter()
                        .map(|a| a.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let entry = fields.entry(scheme_id.to_string()).or_default();
        match (field, &scheme.kind) {
            (Some(f), _) => {
                entry.insert(f.to_string(), value.to_string());
            }
            (None, AuthKind::Basic) => {
                let (user, pass) = value.split_once(':').ok_or_else(|| HarnessError::CredentialFlag {
                    spec: key.to_string(),
                    reason: "basic auth takes <scheme>=<username>:<password>".into(),
                })?;
                entry.insert("username".into(), user.into());
                entry.insert("password".into(), pass.into());
            }
            (None, _) => {
                entry.insert(scheme.secret_fields()[0].to_string(), value.to_string());
            }
        }
    }
    fields
        .into_iter()
        .map(|(scheme_id, f)| {
            let scheme = manifest
                .auth_scheme(&scheme_id)
                .ok_or_else(|| HarnessError::CredentialFlag {
                    spec: scheme_id.clone(),
                    reason: "unknown scheme".into(),
                })?;
            Ok(Credential::from_fields(scheme, &f, "local")?)
        })
        .collect()
}

/// Everything `nexum connector run` needs.
pub struct RunOptions {
    /// Connector directory or component file.
    pub target: PathBuf,
    /// Manifest override.
    pub manifest: Option<PathBuf>,
    /// What to run.
    pub invocation: Invocation,
    /// `--credential` flags.
    pub credentials: Vec<String>,
    /// `--var` values.
    pub variables: BTreeMap<String, String>,
    /// Non-public ranges to allow (`--allow-range`).
    pub allow_ranges: Vec<IpNet>,
}

/// Load the connector and run the invocation with a real broker.
pub async fn run(options: RunOptions) -> Result<CallOutcome, HarnessError> {
    let local = locate(&options.target, options.manifest.as_deref())?;
    let credentials = parse_credentials(&local.manifest, &options.credentials)?;
    let broker = Broker::new(BrokerConfig {
        address_policy: AddressPolicy {
            allowed_ranges: options.allow_ranges,
        },
        ..BrokerConfig::default()
    })
    .map_err(|e| HarnessError::Start(e.to_string()))?;
    let runtime = Runtime::new(
        RuntimeConfig {
            max_concurrent_calls: 4,
            ..RuntimeConfig::default()
        },
        broker,
    )
    .map_err(|e| HarnessError::Start(e.to_string()))?;
    let connection = Connection::new("local", &local.manifest, &options.variables, credentials).map_err(|source| {
        HarnessError::Manifest {
            path: options.manifest.clone().unwrap_or_else(|| PathBuf::from(MANIFEST_FILE)),
            source,
        }
    })?;
    let connector = runtime.load(local.manifest, &local.wasm)?;
    Ok(runtime
        .execute(&connector, Arc::new(connection), options.invocation)
        .await)
}

/// A human-readable rendering of a call trace (already redacted).
pub fn render_trace(trace: &CallTrace) -> String {
    let mut out = String::new();
    for x in &trace.http {
        let status = x.status.map(|s| s.to_string()).unwrap_or_else(|| "---".into());
        let _ = writeln!(
            out,
            "→ {} {} [{}] {:.1} ms{}{}",
            x.method,
            x.url,
            status,
            x.duration_ms,
            x.credential
                .as_ref()
                .map(|c| format!(" credential={c}"))
                .unwrap_or_default(),
            if x.attempt > 1 {
                format!(" attempt={}", x.attempt)
            } else {
                String::new()
            },
        );
        for (n, v) in &x.request_headers {
            let _ = writeln!(out, "    > {n}: {v}");
        }
        for (n, v) in &x.response_headers {
            let _ = writeln!(out, "    < {n}: {v}");
        }
        if let Some(e) = &x.error {
            let _ = writeln!(out, "    ! {e}");
        }
    }
    for line in &trace.logs {
        let _ = writeln!(out, "[{}] {}", line.level, line.message);
    }
    if trace.logs_dropped > 0 {
        let _ = writeln!(out, "({} log lines dropped)", trace.logs_dropped);
    }
    let _ = writeln!(out, "call took {:.1} ms", trace.duration_ms);
    out
}
