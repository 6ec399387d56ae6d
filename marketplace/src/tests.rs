//! Tampering with bundles is refused, each case with a clear error.

use crate::bundle::{Bundle, BundleError, MAX_BUNDLE_BYTES, pack};
use crate::permissions::Permissions;
use crate::signing::{PublicKey, Signer, SigningError, TrustPolicy, generate_keypair, sign};
use std::collections::BTreeMap;

const MANIFEST: &str = r#"
id = "demo"
name = "Demo"
version = "1.0.0"
allowed_hosts = ["https://api.demo.test"]
[[auth]]
id = "key"
type = "bearer"
hosts = ["https://api.demo.test"]
[actions.ping]
description = "Ping"
"#;

fn files(manifest: &str, component: &[u8]) -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        ("connector.toml".to_string(), manifest.as_bytes().to_vec()),
        ("component.wasm".to_string(), component.to_vec()),
        ("README.md".to_string(), b"# Demo".to_vec()),
    ])
}

fn signed_bundle() -> (Vec<u8>, PublicKey) {
    let keys = generate_keypair().expect("keys");
    let unsigned = Bundle::parse(&pack(&files(MANIFEST, b"\0asm-component"), None).expect("pack")).expect("parse");
    let signature = sign(&unsigned, &keys.secret, None).expect("sign");
    (
        unsigned.with_signature(&signature).expect("repack"),
        PublicKey::parse(&keys.public).expect("pub"),
    )
}

fn policy(keys: &[&PublicKey]) -> TrustPolicy {
    TrustPolicy {
        keys: keys.iter().map(|k| (*k).clone()).collect(),
        allow_unsigned: false,
        pinned: Default::default(),
    }
}

/// Rewrite one file inside a bundle's tar without touching SHA256SUMS or the signature.
fn tamper(bytes: &[u8], name: &str, edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = tar::Builder::new(Vec::new());
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).expect("read");
        if path == name {
            edit(&mut content);
        }
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        out.append_data(&mut header, &path, content.as_slice()).expect("append");
    }
    out.into_inner().expect("tar")
}

#[test]
fn a_signed_bundle_verifies_and_its_digest_covers_every_file() {
    let (bytes, key) = signed_bundle();
    let bundle = Bundle::parse(&bytes).expect("parse");
    assert_eq!(policy(&[&key]).verify(&bundle), Ok(Signer::Key(key.key_id.clone())));
    assert_eq!(bundle.digest.len(), 64);
    assert!(
        bundle.sums.contains("component.wasm")
            && bundle.sums.contains("connector.toml")
            && bundle.sums.contains("README.md")
    );
}

#[test]
fn a_flipped_byte_in_the_component_is_refused() {
    let (bytes, _) = signed_bundle();
    let bad = tamper(&bytes, "component.wasm", |c| c[0] ^= 1);
    assert_eq!(
        Bundle::parse(&bad).expect_err("tampered").to_string(),
        "`component.wasm` does not match SHA256SUMS (the bundle was modified)"
    );
}

#[test]
fn an_edited_manifest_is_refused_even_with_updated_sums() {
    let (bytes, key) = signed_bundle();
    let bad = tamper(&bytes, "connector.toml", |m| m.extend_from_slice(b"\n# widened"));
    assert!(matches!(Bundle::parse(&bad), Err(BundleError::DigestMismatch(name)) if name == "connector.toml"));
    // Rewriting SHA256SUMS to match makes the bundle consistent, but the signature fails.
    let edited = MANIFEST.replace(
        "https://api.demo.test\"]\n[[auth]]",
        "https://api.demo.test\", \"https://evil.test\"]\n[[auth]]",
    );
    let original = Bundle::parse(&bytes).expect("parse");
    let forged = pack(&files(&edited, b"\0asm-component"), original.signature.as_deref()).expect("pack");
    let forged = Bundle::parse(&forged).expect("consistent");
    assert_eq!(policy(&[&key]).verify(&forged), Err(SigningError::BadSignature));
}

#[test]
fn a_signature_by_another_key_or_an_unknown_publisher_is_refused() {
    let (bytes, _) = signed_bundle();
    let bundle = Bundle::parse(&bytes).expect("parse");
    let stranger = PublicKey::parse(&generate_keypair().expect("keys").public).expect("pub");
    assert!(matches!(
        policy(&[&stranger]).verify(&bundle),
        Err(SigningError::UntrustedKey { .. })
    ));
    assert!(matches!(
        policy(&[]).verify(&bundle),
        Err(SigningError::UntrustedKey { .. })
    ));
    let unsigned = Bundle::parse(&pack(&files(MANIFEST, b"x"), None).expect("pack")).expect("parse");
    assert_eq!(policy(&[&stranger]).verify(&unsigned), Err(SigningError::Unsigned));
    let dev = TrustPolicy {
        keys: vec![],
        allow_unsigned: true,
        pinned: Default::default(),
    };
    assert_eq!(dev.verify(&unsigned), Ok(Signer::Unsigned));
}

#[test]
fn paths_duplicates_and_oversize_are_refused() {
    let (bytes, _) = signed_bundle();
    // A `../` entry: tar::Builder refuses to write one, so build the header by hand.
    let mut evil = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_old();
    let name = b"../etc/cron.d/x";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_size(1);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    evil.append(&header, &b"x"[..]).expect("append");
    let evil = evil.into_inner().expect("tar");
    assert_eq!(
        Bundle::parse(&evil).expect_err("traversal"),
        BundleError::ForbiddenEntry("../etc/cron.d/x".into())
    );

    let dup = {
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut out = tar::Builder::new(Vec::new());
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).expect("read");
            let times = if path == "component.wasm" { 2 } else { 1 };
            for _ in 0..times {
                let mut h = tar::Header::new_ustar();
                h.set_size(content.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                out.append_data(&mut h, &path, content.as_slice()).expect("append");
            }
        }
        out.into_inner().expect("tar")
    };
    assert_eq!(
        Bundle::parse(&dup).expect_err("dup"),
        BundleError::Duplicate("component.wasm".into())
    );
    assert_eq!(
        Bundle::parse(&vec![0u8; MAX_BUNDLE_BYTES + 1]).expect_err("big"),
        BundleError::TooLarge
    );
    assert!(pack(&files(MANIFEST, &vec![0u8; MAX_BUNDLE_BYTES]), None).is_err());
}

#[test]
fn upgrades_that_widen_permissions_are_detected() {
    let old = Permissions::of(&nexum_manifest::Manifest::parse(MANIFEST).expect("m"));
    let same = Permissions::of(&nexum_manifest::Manifest::parse(&MANIFEST.replace("1.0.0", "1.0.1")).expect("m"));
    assert!(!same.diff_from(&old).widens());
    let wider = MANIFEST
        .replace(
            "allowed_hosts = [\"https://api.demo.test\"]",
            "allowed_hosts = [\"https://api.demo.test\", \"https://files.demo.test\"]",
        )
        .replace("[actions.ping]", "[limits]\nmemory_mb = 64\n\n[actions.ping]");
    let diff = Permissions::of(&nexum_manifest::Manifest::parse(&wider).expect("m")).diff_from(&old);
    assert!(diff.widens());
    assert_eq!(diff.added_hosts, vec!["https://files.demo.test".to_string()]);
    assert_eq!(diff.raised_limits, vec!["memory_mb: 32 → 64".to_string()]);
    // Narrowing is not widening.
    assert!(
        !old.diff_from(&Permissions::of(&nexum_manifest::Manifest::parse(&wider).expect("m")))
            .widens()
    );
}

#[test]
fn a_changed_host_default_is_a_widening() {
    let with_var = |default: &str| {
        MANIFEST
            .replace(
                "allowed_hosts = [\"https://api.demo.test\"]",
                "allowed_hosts = [\"{{ base }}\"]",
            )
            .replace(
                "[[auth]]",
                &format!("[variables.base]\ndefault = \"{default}\"\n\n[[auth]]"),
            )
    };
    let old = Permissions::of(&nexum_manifest::Manifest::parse(&with_var("https://api.demo.test")).expect("m"));
    let new = Permissions::of(&nexum_manifest::Manifest::parse(&with_var("https://evil.test")).expect("m"));
    assert_eq!(old.host_defaults["base"], "https://api.demo.test");
    let diff = new.diff_from(&old);
    assert!(diff.widens());
    assert_eq!(
        diff.changed_host_defaults,
        vec!["base: https://api.demo.test → https://evil.test".to_string()]
    );
}

#[test]
fn letting_a_secret_key_hmacs_is_a_widening() {
    let old = Permissions::of(&nexum_manifest::Manifest::parse(MANIFEST).expect("m"));
    let with_hmac = MANIFEST.replace(
        "\nhosts = [\"https://api.demo.test\"]",
        "\nhosts = [\"https://api.demo.test\"]\nhmac = true",
    );
    let new = Permissions::of(&nexum_manifest::Manifest::parse(&with_hmac).expect("m"));
    assert!(new.auth.values().any(|g| g.hmac), "hmac is shown in the permissions");
    let diff = new.diff_from(&old);
    assert!(diff.widens());
    assert_eq!(diff.added_hmac.len(), 1);
}
