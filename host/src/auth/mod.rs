//! API keys and what they may do.
//!
//! A key is `nx_live_` followed by 43 base62 characters (256 random bits). Only its SHA-256
//! and a display prefix are stored; a presented key is hashed and looked up by hash, and the
//! stored hash is compared in constant time.

mod cache;
mod scopes;
pub mod usage;

pub use cache::KeyCache;
pub use scopes::{ALL_SCOPES, Scope, role_allows};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "nx_live_";

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated key: the full secret (shown once) and what is stored.
pub struct GeneratedKey {
    /// The full key, to show the user exactly once.
    pub secret: zeroize::Zeroizing<String>,
    /// SHA-256 of the key.
    pub hash: Vec<u8>,
    /// Display prefix (`nx_live_` + 4 characters).
    pub prefix: String,
}

/// Generate a new key with 256 bits of randomness.
pub fn generate_key() -> GeneratedKey {
    let mut secret = String::from(KEY_PREFIX);
    // 43 base62 characters carry just over 256 bits; rejection sampling keeps them uniform.
    let mut produced = 0;
    while produced < 43 {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).expect("the OS random source is available");
        for b in buf {
            if b < 248 && produced < 43 {
                secret.push(BASE62[(b % 62) as usize] as char);
                produced += 1;
            }
        }
    }
    let prefix = secret[..KEY_PREFIX.len() + 4].to_string();
    GeneratedKey {
        hash: hash_key(&secret),
        prefix,
        secret: zeroize::Zeroizing::new(secret),
    }
}

/// SHA-256 of a presented key.
pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Whether a presented key has the right shape (cheap rejection before any lookup).
pub fn looks_like_key(key: &str) -> bool {
    key.len() == KEY_PREFIX.len() + 43
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Constant-time comparison of two hashes.
pub fn hashes_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_well_formed_unique_and_hashed() {
        let a = generate_key();
        let b = generate_key();
        assert!(looks_like_key(&a.secret), "{}", a.prefix);
        assert_ne!(*a.secret, *b.secret);
        assert!(a.secret.starts_with(&a.prefix));
        assert!(hashes_match(&a.hash, &hash_key(&a.secret)));
        assert!(!hashes_match(&a.hash, &b.hash));
        assert!(!looks_like_key("nx_live_short"));
    }
}
