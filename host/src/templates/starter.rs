//! The starter templates: `templates/<id>/` compiled into this binary by `build.rs`, listed
//! under the first-party namespace (`nexum`, shared with the connector catalogue) at every
//! start, public, and trusted by pinned digest exactly like the catalogue: using one
//! re-reads its bundle from the registry and verifies it against the host's trust policy,
//! which pins the digests of these very bytes. No signing key is needed, so none can leak.

use super::registry::record_version;
use crate::marketplace::catalogue::{self, Seeded};
use crate::marketplace::{MarketplaceError, MarketplaceResult};
use crate::state::AppState;
use nexum_marketplace::signing::Signer;
use nexum_marketplace::template::{TEMPLATE_FILE, TemplateBundle, pack_template};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// One starter template as `build.rs` embedded it.
struct StarterFiles {
    /// Its directory under `templates/`.
    dir: &'static str,
    template: &'static [u8],
    readme: Option<&'static str>,
    icon: Option<(&'static str, &'static [u8])>,
}

include!(concat!(env!("OUT_DIR"), "/starter_templates.rs"));

/// The embedded starter templates as bundles (packed once, unsigned), by directory.
pub fn bundles() -> &'static [TemplateBundle] {
    static BUNDLES: OnceLock<Vec<TemplateBundle>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        STARTERS
            .iter()
            .filter_map(|s| match pack(s) {
                Ok(bundle) => Some(bundle),
                Err(e) => {
                    // A template that does not pack is a bug in templates/, caught by the
                    // starter tests. Keep the rest available.
                    tracing::error!(template = s.dir, error = %e, "a starter template does not form a bundle; left out");
                    None
                }
            })
            .collect()
    })
}

/// The digests the host pins: exactly the embedded starter templates.
pub fn digests() -> BTreeSet<String> {
    bundles().iter().map(|b| b.digest.clone()).collect()
}

fn pack(s: &StarterFiles) -> Result<TemplateBundle, nexum_marketplace::bundle::BundleError> {
    let mut files = BTreeMap::new();
    files.insert(TEMPLATE_FILE.to_string(), s.template.to_vec());
    if let Some(readme) = s.readme {
        files.insert("README.md".to_string(), readme.as_bytes().to_vec());
    }
    if let Some((name, bytes)) = s.icon {
        files.insert(name.to_string(), bytes.to_vec());
    }
    TemplateBundle::parse(&pack_template(&files, None)?)
}

/// List every starter template under the first-party namespace (idempotent; run at every
/// start, after [`catalogue::seed`] created the namespace).
pub async fn seed(state: &AppState) -> MarketplaceResult<Seeded> {
    let publisher = catalogue::publisher(state).await?;
    let mut seeded = Seeded::default();
    for bundle in bundles() {
        let name = format!("{}@{}", bundle.id, bundle.version);
        let template = super::registry::parse_document(state, &bundle.template)?;
        match record_version(
            state,
            &publisher,
            bundle,
            &template,
            &Signer::Pinned(bundle.digest.clone()),
            Some(false),
        )
        .await
        {
            Ok((_, true)) => seeded.added.push(name),
            Ok((_, false)) => seeded.unchanged.push(name),
            Err(MarketplaceError::VersionExists { .. }) => seeded.conflicting.push(name),
            Err(e) => return Err(e),
        }
    }
    Ok(seeded)
}
