//! The connector author's loop, behind `nexum connector new | build | sign | inspect |
//! publish` and `nexum keygen`.
//!
//! `new` scaffolds a self-contained crate: the guest SDK and the WIT package are vendored into
//! it (`sdk/`), so it builds anywhere with `rustup target add wasm32-wasip2`, no repository
//! checkout needed, and its unit test passes out of the box.

use crate::harness::{HarnessError, build_crate};
use nexum_manifest::{MANIFEST_FILE, Manifest};
use nexum_marketplace::bundle::{self, Bundle, COMPONENT_FILE};
use nexum_marketplace::permissions::Permissions;
use nexum_marketplace::signing::{self, PublicKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod openapi;

/// Why an author command failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    /// A file problem.
    #[error("{path}: {reason}")]
    File {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Building failed.
    #[error(transparent)]
    Build(#[from] HarnessError),
    /// The bundle is invalid.
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    /// Signing failed.
    #[error(transparent)]
    Signing(#[from] signing::SigningError),
    /// The name is not usable.
    #[error("`{0}` is not a valid connector name (a-z, 0-9, -; starting with a letter)")]
    BadName(String),
    /// Publishing failed.
    #[error("publish failed: {0}")]
    Publish(String),
    /// The workflow template is invalid; each line names a field.
    #[error("{0}")]
    Template(String),
}

/// A file problem at `path`.
pub(crate) fn file_err(path: &Path, e: impl std::fmt::Display) -> AuthorError {
    AuthorError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Write `text` to `path`, creating its directory.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), AuthorError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    }
    std::fs::write(path, text).map_err(|e| file_err(path, e))
}

const SDK_LIB: &str = include_str!("../../../plugins/sdk/src/lib.rs");
const SDK_ACTIONS: &str = include_str!("../../../plugins/sdk/src/actions.rs");
const SDK_ERROR: &str = include_str!("../../../plugins/sdk/src/error.rs");
const SDK_HTTP: &str = include_str!("../../../plugins/sdk/src/http.rs");
const SDK_MAIL: &str = include_str!("../../../plugins/sdk/src/mail.rs");
/// The WIT package version the SDK pins; its directory under `wit/`, in the repository and in
/// the vendored `sdk/` alike.
const WIT_VERSION_DIR: &str = "0.1.2";
const WIT: &str = include_str!("../../../wit/0.1.2/connector.wit");
/// The SDK's `wit_bindgen::generate!` path in the repository (`plugins/sdk` → `wit/0.1.2`) and
/// what it becomes in the vendored copy (`sdk/` → `sdk/wit/0.1.2`).
const SDK_WIT_PATH: &str = "path: \"../../wit/0.1.2\"";
const VENDORED_WIT_PATH: &str = "path: \"wit/0.1.2\"";

/// Refuse a connector name that is not a-z, 0-9 and `-`, starting with a letter (at most 64).
pub(crate) fn check_name(name: &str) -> Result<(), AuthorError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AuthorError::BadName(name.to_string()))
    }
}

/// The scaffold's `Cargo.toml` for crate `name`: a standalone workspace holding the crate and
/// its vendored SDK.
pub(crate) fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
description = "A Nexum connector."
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
nexum-connector-sdk = {{ path = "sdk" }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

# A standalone workspace, so the crate builds wherever it is copied.
[workspace]
members = [".", "sdk"]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"
"#
    )
}

/// Scaffold a connector crate named `name` inside `parent`; returns its directory.
pub fn scaffold(parent: &Path, name: &str) -> Result<PathBuf, AuthorError> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(file_err(&dir, "already exists; choose another name or directory"));
    }
    let id = name.replace('-', "_");
    write(&dir.join("Cargo.toml"), &cargo_toml(name))?;
    write(
        &dir.join("connector.toml"),
        &format!(
            r#"id = "{id}"
name = "{name}"
version = "0.1.0"
description = "Reads and creates items in the Example API."
category = "other"
# The only origin this connector may call. `api_base` is a per-connection variable, so the
# same connector works against SaaS, self-hosted and local mocks.
allowed_hosts = ["{{{{ api_base }}}}"]

[variables.api_base]
description = "API origin"
default = "https://api.example.com"

[[auth]]
id = "api_key"
type = "api_key"
in = "header"
name = "X-Api-Key"
label = "Example API key"
hosts = ["{{{{ api_base }}}}"]

[limits]
memory_mb = 16
timeout_ms = 10000
requests_per_second = 10

[actions.get_item]
description = "Fetch one item by id."
input = {{ type = "object", required = ["id"], additionalProperties = false, properties.id = {{ type = "string", minLength = 1 }} }}
output = {{ type = "object", required = ["id", "name"], properties.id = {{ type = "string" }}, properties.name = {{ type = "string" }} }}

[actions.create_item]
description = "Create an item."
input = {{ type = "object", required = ["name"], additionalProperties = false, properties.name = {{ type = "string", minLength = 1 }} }}
output = {{ type = "object", required = ["id"] }}
"#
        ),
    )?;
    write(
        &dir.join("src/lib.rs"),
        r#"//! A Nexum connector. Each action is a typed function; the host injects the API key.

use nexum_connector_sdk::prelude::*;

struct Example;
connector!(Example);

impl Connector for Example {
    fn actions() -> Actions {
        Actions::new().action("get_item", get_item).action("create_item", create_item)
    }

    fn test_connection() -> Result<Value, Error> {
        let key = credential("api_key")?;
        Request::get(items_url(&base(), None)).auth(&key).send()?.error_for_status()?;
        Ok(json!({ "ok": true }))
    }
}

#[derive(Deserialize)]
struct GetItem {
    id: String,
}

fn get_item(input: GetItem) -> Result<Value, Error> {
    let key = credential("api_key")?;
    let item: Value = Request::get(items_url(&base(), Some(&input.id))).auth(&key).send_json()?;
    Ok(json!({ "id": item["id"], "name": item["name"] }))
}

#[derive(Deserialize, Serialize)]
struct CreateItem {
    name: String,
}

fn create_item(input: CreateItem) -> Result<Value, Error> {
    let key = credential("api_key")?;
    let created: Value = Request::post(items_url(&base(), None)).auth(&key).json(&input)?.send_json()?;
    Ok(json!({ "id": created["id"] }))
}

fn base() -> String {
    var("api_base").unwrap_or_else(|| "https://api.example.com".into())
}

/// `<base>/items` or `<base>/items/<id>`.
fn items_url(base: &str, id: Option<&str>) -> String {
    let base = base.trim_end_matches('/');
    match id {
        Some(id) => format!("{base}/items/{id}"),
        None => format!("{base}/items"),
    }
}

#[cfg(test)]
mod tests {
    use super::items_url;

    #[test]
    fn builds_item_urls() {
        assert_eq!(items_url("https://api.example.com/", Some("42")), "https://api.example.com/items/42");
        assert_eq!(items_url("http://127.0.0.1:9000", None), "http://127.0.0.1:9000/items");
    }
}
"#,
    )?;
    write(
        &dir.join("README.md"),
        &format!(
            "# {name}\n\nA Nexum connector.\n\n```sh\ncargo test                     # unit tests\nnexum connector run . get_item --input '{{\"id\":\"1\"}}' --credential api_key=... --var api_base=http://127.0.0.1:9000 --allow-range 127.0.0.0/8\nnexum connector build          # → target/{id}-0.1.0.nxb\nnexum connector sign target/{id}-0.1.0.nxb --key ~/.nexum/publisher.key\nnexum connector publish target/{id}-0.1.0.nxb --marketplace http://127.0.0.1:8080 --namespace <yours>\n```\n"
        ),
    )?;
    write(&dir.join(".gitignore"), "/target\n")?;
    vendor_sdk(&dir)?;
    Ok(dir)
}

/// Vendor the guest SDK and its WIT package into `<dir>/sdk`, the SDK pointed at that WIT.
pub(crate) fn vendor_sdk(dir: &Path) -> Result<(), AuthorError> {
    let sdk = dir.join("sdk");
    write(
        &sdk.join("Cargo.toml"),
        r#"[package]
name = "nexum-connector-sdk"
version = "0.1.0"
edition = "2024"
description = "Guest SDK for Nexum connectors (vendored by `nexum connector new`)."
publish = false

[dependencies]
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc"] }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
"#,
    )?;
    write(&sdk.join("src/lib.rs"), &vendored_sdk_lib())?;
    write(&sdk.join("src/actions.rs"), SDK_ACTIONS)?;
    write(&sdk.join("src/error.rs"), SDK_ERROR)?;
    write(&sdk.join("src/http.rs"), SDK_HTTP)?;
    write(&sdk.join("src/mail.rs"), SDK_MAIL)?;
    write(&sdk.join("wit").join(WIT_VERSION_DIR).join("connector.wit"), WIT)?;
    Ok(())
}

/// The SDK's `lib.rs` with its WIT path pointed at the vendored copy.
fn vendored_sdk_lib() -> String {
    SDK_LIB.replace(SDK_WIT_PATH, VENDORED_WIT_PATH)
}

/// Build a connector crate and pack it (unsigned) into `out` (default
/// `<dir>/target/<id>-<version>.nxb`); returns the path and the bundle.
pub fn build_bundle(dir: &Path, out: Option<&Path>) -> Result<(PathBuf, Bundle), AuthorError> {
    let wasm_path = build_crate(dir)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest_text = std::fs::read_to_string(&manifest_path).map_err(|e| file_err(&manifest_path, e))?;
    let manifest = Manifest::parse(&manifest_text).map_err(|e| file_err(&manifest_path, e))?;
    let mut files = BTreeMap::new();
    files.insert(MANIFEST_FILE.to_string(), manifest_text.into_bytes());
    files.insert(
        COMPONENT_FILE.to_string(),
        std::fs::read(&wasm_path).map_err(|e| file_err(&wasm_path, e))?,
    );
    if let Ok(readme) = std::fs::read(dir.join("README.md")) {
        files.insert("README.md".into(), readme);
    }
    if let Some(icon) = &manifest.icon {
        let ext = Path::new(icon).extension().and_then(|e| e.to_str()).unwrap_or_default();
        if matches!(ext, "svg" | "png") {
            let path = dir.join(icon);
            files.insert(
                format!("icon.{ext}"),
                std::fs::read(&path).map_err(|e| file_err(&path, e))?,
            );
        }
    }
    let bytes = bundle::pack(&files, None)?;
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| {
        dir.join("target")
            .join(format!("{}-{}.nxb", manifest.id, manifest.version))
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| file_err(parent, e))?;
    }
    std::fs::write(&out, &bytes).map_err(|e| file_err(&out, e))?;
    Ok((out, Bundle::parse(&bytes)?))
}

/// Read and parse a bundle file.
pub fn read_bundle(path: &Path) -> Result<Bundle, AuthorError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    Ok(Bundle::parse(&bytes)?)
}

/// Sign the bundle at `path` in place with the secret key file `key`.
pub fn sign_file(path: &Path, key: &Path, password: Option<&str>) -> Result<Bundle, AuthorError> {
    let bundle = read_bundle(path)?;
    let secret = std::fs::read_to_string(key).map_err(|e| file_err(key, e))?;
    let signature = signing::sign(&bundle, &secret, password)?;
    let bytes = bundle.with_signature(&signature)?;
    std::fs::write(path, &bytes).map_err(|e| file_err(path, e))?;
    Ok(Bundle::parse(&bytes)?)
}

/// Write a new key pair as `<dir>/publisher.key` (0600) and `<dir>/publisher.pub`.
pub fn keygen(dir: &Path) -> Result<(PathBuf, PathBuf, String), AuthorError> {
    let (secret_path, public_path) = (dir.join("publisher.key"), dir.join("publisher.pub"));
    for p in [&secret_path, &public_path] {
        if p.exists() {
            return Err(file_err(p, "already exists; refusing to overwrite a key"));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let keys = signing::generate_keypair()?;
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&secret_path).map_err(|e| file_err(&secret_path, e))?;
        f.write_all(keys.secret.as_bytes())
            .map_err(|e| file_err(&secret_path, e))?;
    }
    std::fs::write(&public_path, &keys.public).map_err(|e| file_err(&public_path, e))?;
    Ok((secret_path, public_path, keys.key_id))
}

/// A human (and JSON) description of a bundle.
pub fn inspect(bundle: &Bundle, trusted: &[PublicKey]) -> serde_json::Value {
    let signer = bundle.signature.as_deref().map(signing::signature_key_id);
    let verified = match &signer {
        Some(Ok(id)) => trusted
            .iter()
            .find(|k| &k.key_id == id)
            .map(|k| signing::verify_with(bundle, k).is_ok()),
        _ => None,
    };
    let m = &bundle.manifest;
    serde_json::json!({
        "connector": format!("{}@{}", m.id, m.version),
        "name": m.name,
        "digest": format!("sha256:{}", bundle.digest),
        "signer": match signer { Some(Ok(id)) => serde_json::json!(id), Some(Err(e)) => serde_json::json!(format!("malformed signature: {e}")), None => serde_json::json!("unsigned") },
        "signature_verified": verified,
        "permissions": Permissions::of(m),
        "auth": m.auth,
        "actions": m.actions.iter().map(|(name, a)| (name.clone(), serde_json::json!({ "description": a.description, "input": a.input, "output": a.output }))).collect::<serde_json::Map<_, _>>(),
        "files": bundle.files.iter().map(|(n, b)| (n.clone(), serde_json::json!(b.len()))).collect::<serde_json::Map<_, _>>(),
    })
}

/// Publish a bundle to a marketplace.
pub async fn publish(
    bundle_path: &Path,
    marketplace: &str,
    namespace: &str,
    api_key: &str,
) -> Result<serde_json::Value, AuthorError> {
    let url = format!(
        "{}/api/v1/marketplace/packages?namespace={namespace}",
        marketplace.trim_end_matches('/')
    );
    upload(bundle_path, &url, api_key).await
}

/// POST the file at `path` to `url` as `application/octet-stream` with `api_key`; the JSON
/// answer, or the problem's detail (and each named field) as the error.
pub async fn upload(path: &Path, url: &str, api_key: &str) -> Result<serde_json::Value, AuthorError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    crate::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| AuthorError::Publish(e.to_string()))?;
    let response = client
        .post(url)
        .bearer_auth(api_key)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .map_err(|e| AuthorError::Publish(e.without_url().to_string()))?;
    let status = response.status();
    let body: serde_json::Value = serde_json::from_slice(
        &response
            .bytes()
            .await
            .map_err(|e| AuthorError::Publish(e.to_string()))?,
    )
    .unwrap_or_default();
    if !status.is_success() {
        let mut detail = format!("{status}: {}", body["detail"].as_str().unwrap_or("no detail"));
        for problem in body["errors"].as_array().into_iter().flatten() {
            if let (Some(path), Some(message)) = (problem["path"].as_str(), problem["message"].as_str()) {
                detail.push_str(&format!("\n  {path}: {message}"));
            }
        }
        return Err(AuthorError::Publish(detail));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// If the SDK's WIT path changes and this file is not updated, the scaffold would vendor
    /// an SDK pointing at a directory that does not exist; catch it here, not in a user's build.
    #[test]
    fn vendored_sdk_points_at_the_vendored_wit() {
        assert_eq!(
            SDK_LIB.matches(SDK_WIT_PATH).count(),
            1,
            "plugins/sdk/src/lib.rs no longer uses {SDK_WIT_PATH}"
        );
        let lib = vendored_sdk_lib();
        assert!(lib.contains(VENDORED_WIT_PATH));
        assert!(!lib.contains(SDK_WIT_PATH));
        assert!(VENDORED_WIT_PATH.contains(&format!("wit/{WIT_VERSION_DIR}\"")));
        assert!(WIT.contains(&format!("package nexum:connector@{WIT_VERSION_DIR};")));
    }
}
