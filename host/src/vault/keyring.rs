//! The master keyring: AES-256 keys with ids, one of them active for new writes, all of them
//! able to open old ciphertexts, so the master key can rotate without downtime.
//!
//! Sources, in order: `NEXUM_MASTER_KEY` (`<id>:<base64>[,<id>:<base64>…]`, first is active;
//! a bare base64 key gets the id `env`), else a key file (`NEXUM_MASTER_KEY_FILE`, default
//! `<data_dir>/master.keys`: one `<id> <base64>` per line, last is active), generated with a
//! loud warning on the embedded default's first start.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::path::Path;
use zeroize::Zeroizing;

/// Why the keyring could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// A key is not 32 bytes of base64.
    #[error("{source_name}: key `{id}` is not 32 bytes of base64")]
    BadKey {
        /// `NEXUM_MASTER_KEY` or the file path.
        source_name: String,
        /// Key id.
        id: String,
    },
    /// A line or entry is malformed.
    #[error("{source_name}: {reason}")]
    Malformed {
        /// `NEXUM_MASTER_KEY` or the file path.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// An ordered set of keys; the active one seals, any one opens.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, Zeroizing<[u8; 32]>)>,
    active: usize,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.ids())
            .field("active", &self.active_id())
            .finish()
    }
}

impl Keyring {
    /// A keyring with one fresh random key (tests, first start).
    pub fn generate() -> Self {
        Self {
            keys: vec![(new_key_id(), random_key())],
            active: 0,
        }
    }

    /// The active key's id and bytes.
    pub fn active(&self) -> (&str, &[u8; 32]) {
        let (id, key) = &self.keys[self.active];
        (id, key)
    }

    /// The active key's id.
    pub fn active_id(&self) -> &str {
        &self.keys[self.active].0
    }

    /// Every key id, oldest first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// The key with id `id`.
    pub fn get(&self, id: &str) -> Option<&[u8; 32]> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, key)| &**key)
    }

    /// Parse `NEXUM_MASTER_KEY`'s value.
    pub fn from_env_value(value: &str) -> Result<Self, KeyringError> {
        let source_name = "NEXUM_MASTER_KEY".to_string();
        let mut keys = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, b64) = match entry.split_once(':') {
                Some((id, b64)) => (id.to_string(), b64),
                None => ("env".to_string(), entry),
            };
            keys.push((
                id.clone(),
                decode_key(b64).ok_or(KeyringError::BadKey {
                    source_name: source_name.clone(),
                    id,
                })?,
            ));
        }
        if keys.is_empty() {
            return Err(KeyringError::Malformed {
                source_name,
                reason: "no key given".into(),
            });
        }
        Ok(Self { keys, active: 0 })
    }

    /// Load a key file, or create one with a fresh key when it does not exist.
    /// Returns the keyring and whether it was just created.
    pub fn load_or_create_file(path: &Path) -> Result<(Self, bool), KeyringError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::parse_file(&text, &path.display().to_string())?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keyring = Self::generate();
                keyring.write_file(path)?;
                Ok((keyring, true))
            }
            Err(source) => Err(KeyringError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Load an existing key file.
    pub fn load_file(path: &Path) -> Result<Self, KeyringError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyringError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_file(&text, &path.display().to_string())
    }

    fn parse_file(text: &str, source_name: &str) -> Result<Self, KeyringError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, b64) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| KeyringError::Malformed {
                    source_name: source_name.to_string(),
                    reason: format!("line {} is not `<id> <base64 key>`", n + 1),
                })?;
            let key = decode_key(b64.trim()).ok_or_else(|| KeyringError::BadKey {
                source_name: source_name.to_string(),
                id: id.to_string(),
            })?;
            keys.push((id.to_string(), key));
        }
        if keys.is_empty() {
            return Err(KeyringError::Malformed {
                source_name: source_name.to_string(),
                reason: "no keys".into(),
            });
        }
        let active = keys.len() - 1;
        Ok(Self { keys, active })
    }

    /// Add a fresh key and make it active; returns its id.
    pub fn rotate(&mut self) -> String {
        let id = new_key_id();
        self.keys.push((id.clone(), random_key()));
        self.active = self.keys.len() - 1;
        id
    }

    /// Write the keyring as a key file (mode 0600), atomically.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyringError> {
        let io = |source| KeyringError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut text = Zeroizing::new(String::from(
            "# Nexum master keys: `<id> <base64>`, the last line is the active key.\n# Keep this file secret and backed up: without it, stored secrets cannot be decrypted.\n",
        ));
        // The active key goes last so a reload keeps it active.
        let mut order: Vec<usize> = (0..self.keys.len()).filter(|&i| i != self.active).collect();
        order.push(self.active);
        for i in order {
            let (id, key) = &self.keys[i];
            text.push_str(&format!("{id} {}\n", STANDARD.encode(**key)));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // A name of our own, so concurrent writers never rename each other's half-written file.
        let tmp = path.with_extension(format!("tmp.{}.{}", std::process::id(), ulid::Ulid::new()));
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }
}

fn decode_key(b64: &str) -> Option<Zeroizing<[u8; 32]>> {
    let bytes = Zeroizing::new(STANDARD.decode(b64.trim()).ok()?);
    let array: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(Zeroizing::new(array))
}

fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    // The OS random source failing at key generation is unrecoverable.
    getrandom::fill(&mut *key).expect("the OS random source is available");
    key
}

fn new_key_id() -> String {
    format!("k{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keys_parse_with_ids_and_first_active() {
        let a = STANDARD.encode([1u8; 32]);
        let b = STANDARD.encode([2u8; 32]);
        let ring = Keyring::from_env_value(&format!("new:{a}, old:{b}")).expect("keys");
        assert_eq!(ring.active_id(), "new");
        assert_eq!(ring.get("old"), Some(&[2u8; 32]));
        assert_eq!(Keyring::from_env_value(&a).expect("bare").active_id(), "env");
        assert!(Keyring::from_env_value("x:short").is_err());
    }

    #[test]
    fn key_files_round_trip_and_rotation_keeps_old_keys() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("master.keys");
        let (mut ring, created) = Keyring::load_or_create_file(&path).expect("create");
        assert!(created);
        let first = ring.active_id().to_string();
        let second = ring.rotate();
        ring.write_file(&path).expect("write");
        let reloaded = Keyring::load_file(&path).expect("reload");
        assert_eq!(reloaded.active_id(), second);
        assert!(reloaded.get(&first).is_some());
    }
}
