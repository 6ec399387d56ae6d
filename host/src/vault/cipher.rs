//! AES-256-GCM sealing of secret payloads. Every write gets a fresh random 96-bit nonce, and
//! the associated data binds the ciphertext to its workspace, its row and (version 2) the
//! row that owns it, so a ciphertext copied into another row, workspace or owner fails to
//! open.

use super::keyring::Keyring;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use zeroize::Zeroizing;

/// A sealed secret as stored: which key sealed it, the nonce and the ciphertext (with tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the keyring key that sealed it.
    pub key_id: String,
    /// 12-byte random nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the 16-byte GCM tag.
    pub ciphertext: Vec<u8>,
}

/// Where a sealed value lives; becomes the AEAD associated data.
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    /// Owning workspace.
    pub workspace_id: &'a str,
    /// The row that holds the ciphertext (e.g. the secret's id).
    pub row_id: &'a str,
    /// The row the secret belongs to (a connection or app id); `None` only for values
    /// sealed before owners were bound (associated data version 1) and for values stored
    /// in their owner's own row (an OAuth flow's verifier).
    pub owner_id: Option<&'a str>,
}

impl SealContext<'_> {
    fn aad(&self) -> Vec<u8> {
        match self.owner_id {
            Some(owner) => format!("nexum/v2|{}|{}|{}", self.workspace_id, owner, self.row_id).into_bytes(),
            None => format!("nexum/v1|{}|{}", self.workspace_id, self.row_id).into_bytes(),
        }
    }
}

/// Why sealing or opening failed. Never carries plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    /// The ciphertext names a key this keyring does not have.
    #[error("secret was sealed with key `{0}`, which is not in the keyring")]
    UnknownKey(String),
    /// Authentication failed: wrong key, wrong row, or tampered data.
    #[error("secret failed authentication (tampered, moved to another row, or wrong key)")]
    Authentication,
    /// The system random source failed.
    #[error("no randomness available for a nonce")]
    Randomness,
}

/// Seal `plaintext` with the keyring's active key.
pub fn seal(keyring: &Keyring, context: SealContext<'_>, plaintext: &[u8]) -> Result<Sealed, CipherError> {
    let (key_id, key) = keyring.active();
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|_| CipherError::Randomness)?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let ciphertext = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &context.aad(),
            },
        )
        .map_err(|_| CipherError::Authentication)?;
    Ok(Sealed {
        key_id: key_id.to_string(),
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

/// Open a sealed value; the plaintext is zeroized when dropped.
pub fn open(keyring: &Keyring, context: SealContext<'_>, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    let key = keyring
        .get(&sealed.key_id)
        .ok_or_else(|| CipherError::UnknownKey(sealed.key_id.clone()))?;
    let nonce: [u8; 12] = sealed
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| CipherError::Authentication)?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &context.aad(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CipherError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(ws: &'a str, row: &'a str) -> SealContext<'a> {
        SealContext {
            workspace_id: ws,
            row_id: row,
            owner_id: None,
        }
    }

    #[test]
    fn a_ciphertext_given_to_another_owner_fails() {
        let keyring = Keyring::generate();
        let owned = |owner| SealContext {
            workspace_id: "ws_1",
            row_id: "sec_1",
            owner_id: Some(owner),
        };
        let sealed = seal(&keyring, owned("conn_a"), b"token").expect("seal");
        assert_eq!(&*open(&keyring, owned("conn_a"), &sealed).expect("open"), b"token");
        assert_eq!(
            open(&keyring, owned("conn_b"), &sealed),
            Err(CipherError::Authentication)
        );
        // Nor does claiming the older, ownerless format help.
        assert_eq!(
            open(&keyring, ctx("ws_1", "sec_1"), &sealed),
            Err(CipherError::Authentication)
        );
    }

    #[test]
    fn round_trips_with_a_fresh_nonce_each_time() {
        let keyring = Keyring::generate();
        let a = seal(&keyring, ctx("ws_1", "sec_1"), b"xoxb-secret").expect("seal");
        let b = seal(&keyring, ctx("ws_1", "sec_1"), b"xoxb-secret").expect("seal");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert!(!a.ciphertext.windows(11).any(|w| w == b"xoxb-secret"));
        assert_eq!(
            &*open(&keyring, ctx("ws_1", "sec_1"), &a).expect("open"),
            b"xoxb-secret"
        );
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_or_workspace_fails() {
        let keyring = Keyring::generate();
        let sealed = seal(&keyring, ctx("ws_1", "sec_1"), b"token").expect("seal");
        assert_eq!(
            open(&keyring, ctx("ws_1", "sec_2"), &sealed),
            Err(CipherError::Authentication)
        );
        assert_eq!(
            open(&keyring, ctx("ws_2", "sec_1"), &sealed),
            Err(CipherError::Authentication)
        );
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(
            open(&keyring, ctx("ws_1", "sec_1"), &flipped),
            Err(CipherError::Authentication)
        );
    }
}
