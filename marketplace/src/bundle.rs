//! The connector bundle (`.nxb`): one tar file holding the manifest, the component, a README
//! and an optional icon, content-addressed and optionally minisign-signed.
//!
//! ```text
//! SHA256SUMS           "<sha256>  <name>\n" for every other file, sorted by name
//! SHA256SUMS.minisig   minisign signature of SHA256SUMS (absent when unsigned)
//! connector.toml       the manifest
//! component.wasm       the component
//! README.md            optional
//! icon.svg|icon.png    optional
//! ```
//!
//! The bundle's **digest** is the sha256 of `SHA256SUMS`, which names the hash of every file,
//! so it covers them all. A signature over `SHA256SUMS` is checkable with stock tools:
//! `tar xf b.nxb && minisign -Vm SHA256SUMS -p publisher.pub && sha256sum -c SHA256SUMS`.
//!
//! Parsing is defensive: a size cap on the whole bundle and on each file, only known names,
//! no directories or links, no path traversal, no duplicates, and the sums must list exactly
//! the files present.

use nexum_manifest::{MANIFEST_FILE, Manifest, ManifestError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

/// Largest bundle accepted.
pub const MAX_BUNDLE_BYTES: usize = 32 << 20;
/// Name of the component inside a bundle.
pub const COMPONENT_FILE: &str = "component.wasm";
/// Name of the checksum list.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// Name of the signature of the checksum list.
pub const SIGNATURE_FILE: &str = "SHA256SUMS.minisig";
const CONTENT_FILES: &[&str] = &[MANIFEST_FILE, COMPONENT_FILE, "README.md", "icon.svg", "icon.png"];

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    /// Over the size cap.
    #[error("the bundle is larger than {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    /// Not a readable tar archive.
    #[error("not a bundle (unreadable tar): {0}")]
    Malformed(String),
    /// An entry is not an allowed plain file name.
    #[error("the bundle contains `{0}`, which is not an allowed file (no directories, links or paths)")]
    ForbiddenEntry(String),
    /// The same file appears twice.
    #[error("the bundle contains `{0}` more than once")]
    Duplicate(String),
    /// A required file is missing.
    #[error("the bundle has no `{0}`")]
    Missing(&'static str),
    /// A file's content does not match `SHA256SUMS`, or the list and the files differ.
    #[error("`{0}` does not match SHA256SUMS (the bundle was modified)")]
    DigestMismatch(String),
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// A parsed bundle whose files all match its checksum list.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Hex sha256 of `SHA256SUMS`.
    pub digest: String,
    /// The checksum list.
    pub sums: String,
    /// The signature, if signed.
    pub signature: Option<String>,
    /// The manifest text.
    pub manifest_text: String,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The component bytes.
    pub component: Vec<u8>,
    /// README, if any.
    pub readme: Option<String>,
    /// Every content file (not the sums or signature), by name.
    pub files: BTreeMap<String, Vec<u8>>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The checksum list for a set of files.
pub fn sums_for(files: &BTreeMap<String, Vec<u8>>) -> String {
    files
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", sha256_hex(bytes)))
        .collect()
}

/// Pack content files (and an optional signature of their sums) into a bundle.
pub fn pack(files: &BTreeMap<String, Vec<u8>>, signature: Option<&str>) -> Result<Vec<u8>, BundleError> {
    pack_archive(
        files,
        signature,
        &|name| CONTENT_FILES.contains(&name),
        MAX_BUNDLE_BYTES,
    )
}

/// Pack `files` (each allowed by `allowed`) after their checksum list and an optional
/// signature: the archive format every signed marketplace artifact shares.
pub fn pack_archive(
    files: &BTreeMap<String, Vec<u8>>,
    signature: Option<&str>,
    allowed: &dyn Fn(&str) -> bool,
    max_bytes: usize,
) -> Result<Vec<u8>, BundleError> {
    for name in files.keys() {
        if !allowed(name) {
            return Err(BundleError::ForbiddenEntry(name.clone()));
        }
    }
    let sums = sums_for(files);
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |name: &str, bytes: &[u8]| -> Result<(), BundleError> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, bytes)
            .map_err(|e| BundleError::Malformed(e.to_string()))
    };
    append(SUMS_FILE, sums.as_bytes())?;
    if let Some(sig) = signature {
        append(SIGNATURE_FILE, sig.as_bytes())?;
    }
    for (name, bytes) in files {
        append(name, bytes)?;
    }
    let bytes = builder
        .into_inner()
        .map_err(|e| BundleError::Malformed(e.to_string()))?;
    if bytes.len() > max_bytes {
        return Err(BundleError::TooLarge);
    }
    Ok(bytes)
}

/// A signed archive read and checked: every content file matches the checksum list, which
/// lists exactly the files present. Integrity only; authenticity is
/// [`crate::signing::TrustPolicy::verify`]'s.
#[derive(Debug, Clone)]
pub struct Archive {
    /// Hex sha256 of `SHA256SUMS`.
    pub digest: String,
    /// The checksum list.
    pub sums: String,
    /// The signature, if signed.
    pub signature: Option<String>,
    /// Every content file (not the sums or signature), by name.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Archive {
    /// Read an archive of at most `max_bytes` whose content files are all `allowed`.
    pub fn read(bytes: &[u8], allowed: &dyn Fn(&str) -> bool, max_bytes: usize) -> Result<Self, BundleError> {
        if bytes.len() > max_bytes {
            return Err(BundleError::TooLarge);
        }
        let mut archive = tar::Archive::new(bytes);
        let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut total = 0usize;
        for entry in archive.entries().map_err(|e| BundleError::Malformed(e.to_string()))? {
            let mut entry = entry.map_err(|e| BundleError::Malformed(e.to_string()))?;
            let name = entry.path_bytes();
            let name = String::from_utf8_lossy(&name).into_owned();
            let permitted = name == SUMS_FILE || name == SIGNATURE_FILE || allowed(&name);
            if !permitted || entry.header().entry_type() != tar::EntryType::Regular {
                return Err(BundleError::ForbiddenEntry(name));
            }
            let size = entry
                .header()
                .size()
                .map_err(|e| BundleError::Malformed(e.to_string()))? as usize;
            total = total.saturating_add(size);
            if size > max_bytes || total > max_bytes {
                return Err(BundleError::TooLarge);
            }
            let mut content = Vec::with_capacity(size);
            (&mut entry)
                .take(max_bytes as u64 + 1)
                .read_to_end(&mut content)
                .map_err(|e| BundleError::Malformed(e.to_string()))?;
            if entries.insert(name.clone(), content).is_some() {
                return Err(BundleError::Duplicate(name));
            }
        }
        let sums = entries.remove(SUMS_FILE).ok_or(BundleError::Missing(SUMS_FILE))?;
        let sums = String::from_utf8(sums).map_err(|_| BundleError::DigestMismatch(SUMS_FILE.into()))?;
        let signature = match entries.remove(SIGNATURE_FILE) {
            Some(s) => Some(String::from_utf8(s).map_err(|_| BundleError::Malformed("signature is not text".into()))?),
            None => None,
        };
        // The sums must list exactly the files present, each with the right hash.
        if sums != sums_for(&entries) {
            let listed: BTreeMap<&str, &str> = sums
                .lines()
                .filter_map(|l| l.split_once("  ").map(|(h, n)| (n, h)))
                .collect();
            let culprit = entries
                .iter()
                .find(|(n, b)| listed.get(n.as_str()) != Some(&sha256_hex(b).as_str()))
                .map(|(n, _)| n.clone())
                .or_else(|| {
                    listed
                        .keys()
                        .find(|n| !entries.contains_key(**n))
                        .map(|n| n.to_string())
                })
                .unwrap_or_else(|| SUMS_FILE.to_string());
            return Err(BundleError::DigestMismatch(culprit));
        }
        Ok(Self {
            digest: sha256_hex(sums.as_bytes()),
            sums,
            signature,
            files: entries,
        })
    }
}

impl Bundle {
    /// Parse and check a bundle. This proves integrity (every file matches the sums), not
    /// authenticity: call [`crate::signing::TrustPolicy::verify`] for that.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let Archive {
            digest,
            sums,
            signature,
            files: entries,
        } = Archive::read(bytes, &|name| CONTENT_FILES.contains(&name), MAX_BUNDLE_BYTES)?;
        let manifest_text = String::from_utf8(
            entries
                .get(MANIFEST_FILE)
                .cloned()
                .ok_or(BundleError::Missing(MANIFEST_FILE))?,
        )
        .map_err(|_| BundleError::Malformed("connector.toml is not UTF-8".into()))?;
        let manifest = Manifest::parse(&manifest_text)?;
        let component = entries
            .get(COMPONENT_FILE)
            .cloned()
            .ok_or(BundleError::Missing(COMPONENT_FILE))?;
        let readme = entries
            .get("README.md")
            .map(|r| String::from_utf8_lossy(r).into_owned());
        Ok(Self {
            digest,
            sums,
            signature,
            manifest_text,
            manifest,
            component,
            readme,
            files: entries,
        })
    }

    /// Re-pack with a signature (none when `signature` is empty: an unsigned or built-in
    /// version records no signature).
    pub fn with_signature(&self, signature: &str) -> Result<Vec<u8>, BundleError> {
        pack(&self.files, Some(signature).filter(|s| !s.is_empty()))
    }

    /// Re-pack as it is.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        pack(&self.files, self.signature.as_deref())
    }
}
