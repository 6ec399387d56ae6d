//! Building (and signing) bundles of the first-party connectors for tests.

use nexum_marketplace::bundle::{Bundle, pack};
use nexum_marketplace::signing::{KeyPairText, generate_keypair, sign};
use std::collections::BTreeMap;

/// A fresh publisher key pair.
pub fn keys() -> KeyPairText {
    generate_keypair().expect("key pair")
}

/// A bundle of `plugins/<connector>` with an optional manifest override, signed with `key`.
pub fn bundle(connector: &str, manifest: Option<&str>, key: Option<&KeyPairText>) -> Vec<u8> {
    let (wasm, original) = crate::plugins::connector(connector);
    let files = BTreeMap::from([
        (
            "connector.toml".to_string(),
            manifest.unwrap_or(&original).as_bytes().to_vec(),
        ),
        ("component.wasm".to_string(), wasm),
        ("README.md".to_string(), format!("# {connector}\n").into_bytes()),
    ]);
    let unsigned = pack(&files, None).expect("pack");
    match key {
        None => unsigned,
        Some(k) => {
            let parsed = Bundle::parse(&unsigned).expect("parse");
            parsed
                .with_signature(&sign(&parsed, &k.secret, None).expect("sign"))
                .expect("repack")
        }
    }
}

/// The manifest of `plugins/<connector>` with its version replaced.
pub fn manifest_with_version(connector: &str, version: &str) -> String {
    let (_, manifest) = crate::plugins::connector(connector);
    manifest.replacen("version = \"0.1.0\"", &format!("version = \"{version}\""), 1)
}
