//! The vault: connection secrets, sealed at rest and opened only in host memory.
//!
//! - [`cipher`]: AES-256-GCM, random nonce per write, AAD binding each ciphertext to its
//!   workspace and row;
//! - [`keyring`]: master keys with ids; one seals, all open; rotation without downtime;
//! - [`Credential`]: an opened secret as the broker uses it (zeroized on drop).
//!
//! Secret fields are sealed as one JSON object per connection. Plaintext buffers are
//! zeroized after use; nothing here logs or returns a value.

pub mod cipher;
mod credential;
pub mod keyring;

pub use cipher::{CipherError, SealContext, Sealed};
pub use credential::{
    Credential, CredentialError, MIN_SECRET_CHARS, OAUTH2_STORED_FIELDS, SecretMaterial, check_secret_length,
};
pub use keyring::{Keyring, KeyringError};

use crate::store::{Db, SecretRecord, StoreError, new_id};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::RwLock;
use zeroize::{Zeroize, Zeroizing};

/// Where the keyring comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `NEXUM_MASTER_KEY`.
    Env,
    /// A key file.
    File(PathBuf),
}

/// Secret fields of a connection (`token`, `password`, …), zeroized on drop.
#[derive(Default)]
pub struct SecretFields(pub BTreeMap<String, String>);

impl Drop for SecretFields {
    fn drop(&mut self) {
        for value in self.0.values_mut() {
            value.zeroize();
        }
    }
}

impl std::fmt::Debug for SecretFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretFields({:?} = [REDACTED])", self.0.keys().collect::<Vec<_>>())
    }
}

/// Why a vault operation failed. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Sealing or opening failed.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The keyring could not be loaded or saved.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An opened payload is not the expected JSON object.
    #[error("an opened secret is not a JSON object of strings")]
    Corrupt,
    /// Rotation needs a key file (env keys are rotated by the operator).
    #[error(
        "the master key comes from NEXUM_MASTER_KEY: put a new `<id>:<base64>` first in it on every node (keep the old one), restart, then run `nexum keys rotate --reseal-only`"
    )]
    EnvKeyRotation,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RotationReport {
    /// The key now sealing new writes.
    pub active_key: String,
    /// Rows re-encrypted under it.
    pub resealed: usize,
    /// Rows that could not be opened and were left as they are.
    pub unreadable: usize,
}

/// The process's vault.
pub struct Vault {
    keyring: RwLock<Keyring>,
    source: KeySource,
}

impl Vault {
    /// A vault over `keyring` loaded from `source`.
    pub fn new(keyring: Keyring, source: KeySource) -> Self {
        Self {
            keyring: RwLock::new(keyring),
            source,
        }
    }

    /// The active key id.
    pub fn active_key_id(&self) -> String {
        self.read().active_id().to_string()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        self.keyring.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Seal `fields` for `owner_id`; returns the row to store (a fresh `sec_` id each write).
    pub fn seal_fields(
        &self,
        workspace_id: &(impl AsRef<str> + ?Sized),
        owner_id: &str,
        fields: &SecretFields,
    ) -> Result<SecretRecord, VaultError> {
        let id = new_id("sec");
        let plaintext = Zeroizing::new(serde_json::to_vec(&fields.0).map_err(|_| VaultError::Corrupt)?);
        let sealed = cipher::seal(
            &self.read(),
            SealContext {
                workspace_id: workspace_id.as_ref(),
                row_id: &id,
                owner_id: Some(owner_id),
            },
            &plaintext,
        )?;
        Ok(SecretRecord {
            id,
            workspace_id: workspace_id.as_ref().to_string(),
            owner_id: owner_id.into(),
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            updated_at: crate::store::now_ms(),
            aad_version: crate::store::AAD_VERSION,
        })
    }

    /// Open a stored secret row. An unknown key id triggers one reload of the key file, so a
    /// node learns keys another node's rotation added.
    pub fn open_fields(&self, record: &SecretRecord) -> Result<SecretFields, VaultError> {
        let sealed = Sealed {
            key_id: record.key_id.clone(),
            nonce: record.nonce.clone(),
            ciphertext: record.ciphertext.clone(),
        };
        let context = record_context(record);
        // Bind the first attempt on its own so the read guard is released before a reload
        // takes the write lock.
        let first = cipher::open(&self.read(), context, &sealed);
        let plaintext = match first {
            Err(CipherError::UnknownKey(_)) => {
                self.reload()?;
                cipher::open(&self.read(), context, &sealed)?
            }
            other => other?,
        };
        let fields: BTreeMap<String, String> = serde_json::from_slice(&plaintext).map_err(|_| VaultError::Corrupt)?;
        Ok(SecretFields(fields))
    }

    /// Seal a short value stored outside `secrets` (an OAuth PKCE verifier), bound to its
    /// workspace and row.
    pub fn seal_value(
        &self,
        workspace_id: &(impl AsRef<str> + ?Sized),
        row_id: &str,
        plaintext: &[u8],
    ) -> Result<Sealed, VaultError> {
        Ok(cipher::seal(
            &self.read(),
            SealContext {
                workspace_id: workspace_id.as_ref(),
                row_id,
                owner_id: None,
            },
            plaintext,
        )?)
    }

    /// Open a value sealed with [`Vault::seal_value`].
    pub fn open_value(
        &self,
        workspace_id: &(impl AsRef<str> + ?Sized),
        row_id: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let context = SealContext {
            workspace_id: workspace_id.as_ref(),
            row_id,
            owner_id: None,
        };
        let first = cipher::open(&self.read(), context, sealed);
        Ok(match first {
            Err(CipherError::UnknownKey(_)) => {
                self.reload()?;
                cipher::open(&self.read(), context, sealed)?
            }
            other => other?,
        })
    }

    /// Open a value whose key id came from outside (a browser's cookie): like
    /// [`Vault::open_value`] but never re-reads the key file, so a client cannot make the
    /// server do file work and take the keyring's lock on every request.
    pub fn open_untrusted_value(
        &self,
        workspace_id: &(impl AsRef<str> + ?Sized),
        row_id: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let context = SealContext {
            workspace_id: workspace_id.as_ref(),
            row_id,
            owner_id: None,
        };
        Ok(cipher::open(&self.read(), context, sealed)?)
    }

    /// Re-read the key file (no-op for env keys).
    pub fn reload(&self) -> Result<(), VaultError> {
        if let KeySource::File(path) = &self.source {
            let fresh = Keyring::load_file(path)?;
            *self.keyring.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        }
        Ok(())
    }

    /// Add a new active key to the key file (unless `reseal_only`) and re-encrypt every row
    /// under the active key. Safe while servers run: rows are swapped one at a time with a
    /// compare-and-set, and servers reload the key file when they meet the new key id.
    pub async fn rotate(&self, db: &Db, reseal_only: bool) -> Result<RotationReport, VaultError> {
        if !reseal_only {
            let KeySource::File(path) = &self.source else {
                return Err(VaultError::EnvKeyRotation);
            };
            // One rotation at a time: two concurrent read-add-write cycles would drop a key
            // that rows may already be sealed with.
            let lock_path = path.with_extension("lock");
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| KeyringError::Io {
                    path: lock_path.display().to_string(),
                    source: e,
                })?;
            lock.lock().map_err(|e| KeyringError::Io {
                path: lock_path.display().to_string(),
                source: e,
            })?;
            let mut next = Keyring::load_file(path)?;
            next.rotate();
            next.write_file(path)?;
            *self.keyring.write().unwrap_or_else(|p| p.into_inner()) = next;
        }
        let active = self.active_key_id();
        let mut resealed = 0;
        let mut unreadable = 0;
        let mut cursor = String::new();
        loop {
            let batch = db.secrets_not_sealed_with(&active, &cursor, 200).await?;
            let Some(last) = batch.last() else { break };
            cursor = last.id.clone();
            for row in &batch {
                // A row that does not open (tampered, or sealed with a key no longer held) is
                // reported and passed over; it must not stop every row after it.
                let fields = match self.open_fields(row) {
                    Ok(fields) => fields,
                    Err(e) => {
                        tracing::warn!(secret = %row.id, error = %e, "a secret could not be opened to re-seal it");
                        unreadable += 1;
                        continue;
                    }
                };
                let plaintext = Zeroizing::new(serde_json::to_vec(&fields.0).map_err(|_| VaultError::Corrupt)?);
                let context = SealContext {
                    workspace_id: row.workspace_id.as_str(),
                    row_id: &row.id,
                    owner_id: Some(&row.owner_id),
                };
                let sealed = cipher::seal(&self.read(), context, &plaintext)?;
                // A row changed meanwhile was written by a writer using the active key.
                if db
                    .reseal_secret(row, &sealed.key_id, &sealed.nonce, &sealed.ciphertext)
                    .await?
                {
                    resealed += 1;
                }
            }
        }
        Ok(RotationReport {
            active_key: active,
            resealed,
            unreadable,
        })
    }
}

/// The associated data a stored row was sealed with: its owner is bound from version 2.
fn record_context(record: &SecretRecord) -> SealContext<'_> {
    SealContext {
        workspace_id: record.workspace_id.as_str(),
        row_id: &record.id,
        owner_id: (record.aad_version >= 2).then_some(record.owner_id.as_str()),
    }
}
