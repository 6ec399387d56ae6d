//! Compiled components, keyed by the sha256 of their bytes: in memory as ready-to-instantiate
//! `InstancePre`s, and on disk as precompiled artifacts so a restart skips Cranelift.
//!
//! `Component::deserialize` trusts its input completely, so the host only loads artifacts it
//! wrote itself: each artifact carries an HMAC-SHA256 tag under a key that never leaves this
//! host's artifact directory. A tampered, foreign or stale artifact is ignored and rebuilt.

use super::bindings::ConnectorPre;
use super::state::CallState;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Hex sha256 of a component's bytes: its identity everywhere in Nexum.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// In-memory cache of pre-instantiated components plus the on-disk artifact store.
pub struct ComponentCache {
    ready: Mutex<HashMap<String, ConnectorPre<CallState>>>,
    artifacts: Option<ArtifactStore>,
}

impl ComponentCache {
    /// A cache; with `artifact_dir`, compiled code is also kept on disk.
    pub fn new(engine: &Engine, artifact_dir: Option<PathBuf>) -> std::io::Result<Self> {
        let artifacts = artifact_dir.map(|dir| ArtifactStore::open(engine, dir)).transpose()?;
        Ok(Self {
            ready: Mutex::new(HashMap::new()),
            artifacts,
        })
    }

    /// The cached pre-instance for `digest`, if any.
    pub fn get(&self, digest: &str) -> Option<ConnectorPre<CallState>> {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }

    /// Remember a pre-instance.
    pub fn insert(&self, digest: &str, pre: ConnectorPre<CallState>) {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.to_string(), pre);
    }

    /// Load `bytes` from a verified artifact, or compile them and store the artifact.
    pub fn compile(&self, engine: &Engine, digest: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        if let Some(store) = &self.artifacts {
            if let Some(component) = store.load(engine, digest) {
                return Ok(component);
            }
            let component = Component::new(engine, bytes)?;
            if let Err(e) = store.save(digest, &component) {
                tracing::warn!(error = %e, digest, "could not write the precompiled artifact; continuing without it");
            }
            return Ok(component);
        }
        Component::new(engine, bytes)
    }
}

/// Precompiled artifacts on disk, authenticated with this host's key.
struct ArtifactStore {
    dir: PathBuf,
    key: [u8; 32],
    fingerprint: String,
}

impl ArtifactStore {
    fn open(engine: &Engine, dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let key_path = dir.join("artifact.key");
        let key = match std::fs::read(&key_path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                key
            }
            _ => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
                write_private(&key_path, &key)?;
                key
            }
        };
        // Artifacts are only valid for the exact wasmtime build and engine settings.
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        let fingerprint = hex::encode(&hasher.0.finalize()[..8]);
        Ok(Self { dir, key, fingerprint })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.fingerprint))
    }

    fn tag(&self, bytes: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(bytes);
        mac.finalize().into_bytes().to_vec()
    }

    fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let file = std::fs::read(&path).ok()?;
        if file.len() < 32 {
            return None;
        }
        let (tag, artifact) = file.split_at(32);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).ok()?;
        mac.update(artifact);
        if mac.verify_slice(tag).is_err() {
            tracing::warn!(path = %path.display(), "precompiled artifact failed authentication; recompiling");
            return None;
        }
        deserialize_own_artifact(engine, artifact)
            .inspect_err(|e| tracing::warn!(error = %e, "precompiled artifact unusable; recompiling"))
            .ok()
    }

    fn save(&self, digest: &str, component: &Component) -> wasmtime::Result<()> {
        let artifact = component.serialize()?;
        let mut file = self.tag(&artifact);
        file.extend_from_slice(&artifact);
        let path = self.path(digest);
        let tmp = path.with_extension("tmp");
        write_private(&tmp, &file)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// Deserialize an artifact whose HMAC tag proved this host wrote it.
#[allow(unsafe_code)]
fn deserialize_own_artifact(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artifact` was produced by `Component::serialize` on this host (its HMAC tag
    // verifies under a key only this host holds) for an engine with the same compatibility
    // hash (part of the file name), which is what `deserialize` requires.
    unsafe { Component::deserialize(engine, artifact) }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
