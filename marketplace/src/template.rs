//! The workflow-template bundle (`.nxt`): the connector bundle's archive format, holding a
//! template instead of a component, content-addressed and optionally minisign-signed the
//! same way (a signature covers `SHA256SUMS`, with the trusted comment
//! `nexum template <id>@<version> sha256:<digest>`).
//!
//! ```text
//! SHA256SUMS           "<sha256>  <name>\n" for every other file, sorted by name
//! SHA256SUMS.minisig   minisign signature of SHA256SUMS (absent when unsigned)
//! template.json        the template (checked in full by the host)
//! README.md            optional
//! icon.svg|png|jpg|jpeg|webp   optional
//! ```
//!
//! This crate reads only what signing needs from `template.json` (its `id` and `version`);
//! the host parses the whole template strictly.

use crate::bundle::{Archive, BundleError, pack_archive};
use std::collections::BTreeMap;

/// Largest template bundle accepted.
pub const MAX_TEMPLATE_BUNDLE_BYTES: usize = 2 << 20;
/// Name of the template inside a template bundle.
pub const TEMPLATE_FILE: &str = "template.json";
/// The icon file names a template bundle may carry.
pub const ICON_FILES: [&str; 5] = ["icon.svg", "icon.png", "icon.jpg", "icon.jpeg", "icon.webp"];

/// Whether `name` may be a content file of a template bundle.
fn allowed(name: &str) -> bool {
    name == TEMPLATE_FILE || name == "README.md" || ICON_FILES.contains(&name)
}

/// A parsed template bundle whose files all match its checksum list.
#[derive(Debug, Clone)]
pub struct TemplateBundle {
    /// Hex sha256 of `SHA256SUMS`.
    pub digest: String,
    /// The checksum list.
    pub sums: String,
    /// The signature, if signed.
    pub signature: Option<String>,
    /// The template's `id` (as written; the host checks it).
    pub id: String,
    /// The template's `version` (as written; the host checks it).
    pub version: String,
    /// `template.json`.
    pub template: Vec<u8>,
    /// Every content file, by name.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Pack content files (`template.json`, optional `README.md` and icon) and an optional
/// signature into a template bundle.
pub fn pack_template(files: &BTreeMap<String, Vec<u8>>, signature: Option<&str>) -> Result<Vec<u8>, BundleError> {
    pack_archive(files, signature, &allowed, MAX_TEMPLATE_BUNDLE_BYTES)
}

impl TemplateBundle {
    /// Parse and check a template bundle (integrity, not authenticity: call
    /// [`crate::signing::TrustPolicy::verify`] for that).
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let archive = Archive::read(bytes, &allowed, MAX_TEMPLATE_BUNDLE_BYTES)?;
        let template = archive
            .files
            .get(TEMPLATE_FILE)
            .cloned()
            .ok_or(BundleError::Missing(TEMPLATE_FILE))?;
        let head: serde_json::Value = serde_json::from_slice(&template)
            .map_err(|e| BundleError::Malformed(format!("template.json is not JSON: {e}")))?;
        let field = |name: &str| {
            head.get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| BundleError::Malformed(format!("template.json has no string `{name}`")))
        };
        Ok(Self {
            id: field("id")?,
            version: field("version")?,
            digest: archive.digest,
            sums: archive.sums,
            signature: archive.signature,
            template,
            files: archive.files,
        })
    }

    /// The icon's file name and bytes, if the bundle has one.
    pub fn icon(&self) -> Option<(&str, &[u8])> {
        self.files
            .iter()
            .find(|(name, _)| ICON_FILES.contains(&name.as_str()))
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
    }

    /// `README.md`, if any.
    pub fn readme(&self) -> Option<String> {
        self.files
            .get("README.md")
            .map(|r| String::from_utf8_lossy(r).into_owned())
    }

    /// Re-pack with a signature (none when `signature` is empty).
    pub fn with_signature(&self, signature: &str) -> Result<Vec<u8>, BundleError> {
        pack_template(&self.files, Some(signature).filter(|s| !s.is_empty()))
    }

    /// Re-pack as it is.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        pack_template(&self.files, self.signature.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{SigningError, TrustPolicy, generate_keypair, sign};

    fn files() -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        files.insert(TEMPLATE_FILE.to_string(), br#"{"id":"t","version":"1.0.0"}"#.to_vec());
        files.insert("README.md".to_string(), b"# T".to_vec());
        files
    }

    #[test]
    fn a_signed_template_verifies_and_a_tampered_one_does_not() {
        let keys = generate_keypair().expect("keys");
        let unsigned = TemplateBundle::parse(&pack_template(&files(), None).expect("pack")).expect("parse");
        assert_eq!((unsigned.id.as_str(), unsigned.version.as_str()), ("t", "1.0.0"));
        let signature = sign(&unsigned, &keys.secret, None).expect("sign");
        let signed = TemplateBundle::parse(&unsigned.with_signature(&signature).expect("pack")).expect("parse");
        let policy = TrustPolicy {
            keys: vec![crate::signing::PublicKey::parse(&keys.public).expect("key")],
            ..Default::default()
        };
        assert!(policy.verify(&signed).is_ok());
        assert_eq!(policy.verify(&unsigned), Err(SigningError::Unsigned));
        assert!(TrustPolicy::default().verify(&signed).is_err(), "an untrusted key");

        // Another template.json under the same sums: the digest check fails first.
        let mut tampered = files();
        tampered.insert(TEMPLATE_FILE.to_string(), br#"{"id":"t","version":"9.0.0"}"#.to_vec());
        let mut bytes = pack_template(&tampered, Some(&signature)).expect("pack");
        assert!(TemplateBundle::parse(&bytes).is_ok(), "consistent sums, so it parses");
        assert_eq!(
            policy.verify(&TemplateBundle::parse(&bytes).expect("parse")),
            Err(SigningError::BadSignature),
            "but the signature is of other sums"
        );
        // A flipped byte in the template without new sums: integrity fails.
        let at = bytes.windows(7).position(|w| w == b"\"9.0.0\"").expect("in the tar");
        bytes[at + 1] = b'8';
        assert!(matches!(
            TemplateBundle::parse(&bytes),
            Err(BundleError::DigestMismatch(_))
        ));
    }

    #[test]
    fn only_template_files_are_allowed() {
        let mut extra = files();
        extra.insert("component.wasm".to_string(), b"\0asm".to_vec());
        assert!(matches!(
            pack_template(&extra, None),
            Err(BundleError::ForbiddenEntry(name)) if name == "component.wasm"
        ));
        let mut missing = files();
        missing.remove(TEMPLATE_FILE);
        let bytes = pack_template(&missing, None).expect("pack");
        assert_eq!(
            TemplateBundle::parse(&bytes).map(|_| ()),
            Err(BundleError::Missing(TEMPLATE_FILE))
        );
    }
}
