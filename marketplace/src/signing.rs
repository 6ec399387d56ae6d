//! Publisher keys and signatures: minisign (Ed25519 over the bundle's `SHA256SUMS`), so a
//! signature can be checked with stock tooling, plus the trust policy a host applies.

use crate::bundle::Bundle;
use crate::template::TemplateBundle;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::io::Cursor;

/// Why signing or verification failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    /// The bundle carries no signature and unsigned bundles are not allowed.
    #[error("the bundle is not signed (unsigned bundles need the operator's dev flag)")]
    Unsigned,
    /// A key or signature is not in minisign format.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// `public key`, `secret key` or `signature`.
        what: &'static str,
        /// Parser message.
        reason: String,
    },
    /// No trusted key has the signature's key id.
    #[error("the bundle is signed by key {key_id}, which this policy does not trust")]
    UntrustedKey {
        /// minisign key id (hex).
        key_id: String,
    },
    /// The signature does not match (tampered sums, or wrong key).
    #[error("the bundle's signature does not verify")]
    BadSignature,
}

/// A new publisher key pair, as minisign text files.
pub struct KeyPairText {
    /// Public key file (share it).
    pub public: String,
    /// Secret key file (keep it; written unencrypted with mode 0600).
    pub secret: String,
    /// Key id (hex).
    pub key_id: String,
}

const SECRET_KEY_HEADER: &str = "untrusted comment: nexum publisher secret key (unencrypted; keep it secret)";

/// Generate a publisher key pair.
pub fn generate_keypair() -> Result<KeyPairText, SigningError> {
    let kp = minisign::KeyPair::generate_unencrypted_keypair().map_err(|e| malformed("secret key", e))?;
    let public = kp.pk.to_box().map_err(|e| malformed("public key", e))?.into_string();
    let secret = format!("{SECRET_KEY_HEADER}\n{}\n", STANDARD.encode(kp.sk.to_bytes()));
    Ok(KeyPairText {
        public,
        secret,
        key_id: key_id_hex(kp.pk.keynum()),
    })
}

fn malformed(what: &'static str, e: impl std::fmt::Display) -> SigningError {
    SigningError::Malformed {
        what,
        reason: e.to_string(),
    }
}

fn key_id_hex(keynum: &[u8]) -> String {
    keynum.iter().rev().map(|b| format!("{b:02X}")).collect()
}

/// A publisher public key parsed from minisign text (the `.pub` file or its base64 line).
#[derive(Clone)]
pub struct PublicKey {
    key: minisign::PublicKey,
    /// Key id (hex, as minisign prints it).
    pub key_id: String,
    /// The base64 key line.
    pub base64: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id)
    }
}

impl PublicKey {
    /// Parse a `.pub` file's text or the bare base64 line.
    pub fn parse(text: &str) -> Result<Self, SigningError> {
        let line = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or("");
        let key = minisign::PublicKey::from_base64(line).map_err(|e| malformed("public key", e))?;
        Ok(Self {
            key_id: key_id_hex(key.keynum()),
            base64: line.to_string(),
            key,
        })
    }
}

/// A signed marketplace artifact: a connector [`Bundle`] or a [`TemplateBundle`]. Both sign
/// their checksum list, so one key, one signature format and one trust policy serve both.
pub trait Signed {
    /// The checksum list the signature covers.
    fn sums(&self) -> &str;
    /// Hex sha256 of the checksum list.
    fn digest(&self) -> &str;
    /// The `.minisig` text, if signed.
    fn signature(&self) -> Option<&str>;
    /// The signature's trusted comment (`nexum bundle slack@0.1.0 sha256:…`), so a
    /// signature says what it is of.
    fn trusted_comment(&self) -> String;
}

impl Signed for Bundle {
    fn sums(&self) -> &str {
        &self.sums
    }
    fn digest(&self) -> &str {
        &self.digest
    }
    fn signature(&self) -> Option<&str> {
        self.signature.as_deref()
    }
    fn trusted_comment(&self) -> String {
        format!(
            "nexum bundle {}@{} sha256:{}",
            self.manifest.id, self.manifest.version, self.digest
        )
    }
}

impl Signed for TemplateBundle {
    fn sums(&self) -> &str {
        &self.sums
    }
    fn digest(&self) -> &str {
        &self.digest
    }
    fn signature(&self) -> Option<&str> {
        self.signature.as_deref()
    }
    fn trusted_comment(&self) -> String {
        format!("nexum template {}@{} sha256:{}", self.id, self.version, self.digest)
    }
}

/// Sign an artifact's checksum list with a secret key file's text (from [`generate_keypair`],
/// or made by the `minisign` tool together with its password); returns the `.minisig` text.
pub fn sign(bundle: &impl Signed, secret_key_text: &str, password: Option<&str>) -> Result<String, SigningError> {
    let sk = if secret_key_text.starts_with(SECRET_KEY_HEADER) {
        let line = secret_key_text.lines().nth(1).unwrap_or_default().trim();
        let bytes = STANDARD.decode(line).map_err(|e| malformed("secret key", e))?;
        minisign::SecretKey::from_bytes(&bytes).map_err(|e| malformed("secret key", e))?
    } else {
        // A key made by the `minisign` tool (encrypted with a password).
        let sk_box = minisign::SecretKeyBox::from_string(secret_key_text).map_err(|e| malformed("secret key", e))?;
        sk_box
            .into_secret_key(Some(password.unwrap_or_default().to_string()))
            .map_err(|e| malformed("secret key", e))?
    };
    let trusted = bundle.trusted_comment();
    let sig = minisign::sign(
        None,
        &sk,
        Cursor::new(bundle.sums().as_bytes()),
        Some(&trusted),
        Some("nexum marketplace signature"),
    )
    .map_err(|e| malformed("secret key", e))?;
    Ok(sig.into_string())
}

/// The key id a signature claims.
pub fn signature_key_id(signature: &str) -> Result<String, SigningError> {
    let sig = minisign::SignatureBox::from_string(signature).map_err(|e| malformed("signature", e))?;
    Ok(key_id_hex(sig.keynum()))
}

/// Verify an artifact's signature with one key.
pub fn verify_with(bundle: &impl Signed, key: &PublicKey) -> Result<(), SigningError> {
    let signature = bundle.signature().ok_or(SigningError::Unsigned)?;
    let sig = minisign::SignatureBox::from_string(signature).map_err(|e| malformed("signature", e))?;
    minisign::verify(
        &key.key,
        &sig,
        Cursor::new(bundle.sums().as_bytes()),
        true,
        false,
        false,
    )
    .map_err(|_| SigningError::BadSignature)
}

/// Which publisher keys a host (or registry) accepts.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Trusted keys.
    pub keys: Vec<PublicKey>,
    /// Accept unsigned bundles (development only).
    pub allow_unsigned: bool,
    /// Bundle digests trusted without a signature: the catalogue built into the host binary,
    /// which is as trustworthy as the binary itself.
    pub pinned: std::collections::BTreeSet<String>,
}

/// The recorded signer of the connector catalogue built into the host binary.
pub const BUILTIN_SIGNER: &str = "builtin";

/// What verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// Signed by this trusted key id.
    Key(String),
    /// Unsigned, accepted under the dev flag.
    Unsigned,
    /// Its digest is one the host binary pins (the built-in catalogue).
    Pinned(String),
}

impl Signer {
    /// How an installation records this signer: the key id, `unsigned`, or `builtin` (a
    /// stable identity across releases, like a key id across a publisher's versions; the
    /// digest is what was verified). [`TrustPolicy::trusts`] reads it back.
    pub fn recorded(&self) -> String {
        match self {
            Signer::Key(id) => id.clone(),
            Signer::Unsigned => "unsigned".into(),
            Signer::Pinned(_) => BUILTIN_SIGNER.into(),
        }
    }
}

impl TrustPolicy {
    /// Whether a recorded signer (`unsigned` or a key id) is acceptable under this policy.
    pub fn trusts(&self, signer: &str) -> bool {
        if signer == "unsigned" {
            self.allow_unsigned
        } else if signer == BUILTIN_SIGNER {
            // Installed once because this or an earlier binary pinned its digest; trusted as
            // long as the host carries a catalogue, as a key-signed version is as long as
            // its key is.
            !self.pinned.is_empty()
        } else {
            self.keys.iter().any(|k| k.key_id == signer)
        }
    }
    /// Check the bundle against the pinned digests, then its signature against the trusted
    /// keys.
    pub fn verify(&self, bundle: &impl Signed) -> Result<Signer, SigningError> {
        if self.pinned.contains(bundle.digest()) {
            return Ok(Signer::Pinned(bundle.digest().to_string()));
        }
        let Some(signature) = bundle.signature() else {
            return if self.allow_unsigned {
                Ok(Signer::Unsigned)
            } else {
                Err(SigningError::Unsigned)
            };
        };
        let key_id = signature_key_id(signature)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.key_id == key_id)
            .ok_or(SigningError::UntrustedKey { key_id: key_id.clone() })?;
        verify_with(bundle, key)?;
        Ok(Signer::Key(key_id))
    }
}
