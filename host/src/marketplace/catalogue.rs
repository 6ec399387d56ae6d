//! The built-in catalogue: the first-party connectors (`plugins/`) compiled into this
//! binary by `build.rs`, listed in the registry under the reserved namespace `nexum` on
//! every start, and installable without the unsigned-connector flag.
//!
//! Trust: the host pins the digest of each embedded bundle (computed from the embedded
//! bytes at start-up) in its [`TrustPolicy`](nexum_marketplace::signing::TrustPolicy). An
//! install re-reads the bundle from the registry and verifies it like any other, so a
//! registry row tampered with after seeding (or a `nexum/…` version some other binary
//! seeded) is refused: only bytes this very binary carries are trusted, and they are as
//! trustworthy as the binary. No signing key is needed, so none can leak.

use super::publish::record_version;
use super::{MarketplaceError, MarketplaceResult};
use crate::ids::WorkspaceId;
use crate::state::AppState;
use nexum_marketplace::bundle::{self, Bundle, COMPONENT_FILE};
use nexum_marketplace::signing::Signer;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// The namespace the catalogue is listed under; no workspace can register it.
pub const NAMESPACE: &str = "nexum";

/// The owner recorded for [`NAMESPACE`]: an id no workspace has, so no workspace can
/// publish, yank or feature in it.
const OWNER: &str = "ws_builtin";

/// One connector as `build.rs` embedded it.
struct BuiltIn {
    /// Its directory under `plugins/`.
    dir: &'static str,
    manifest: &'static str,
    component: &'static [u8],
    readme: Option<&'static str>,
    icon_svg: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));

/// The embedded connectors as bundles (packed once, unsigned), in catalogue order.
pub fn bundles() -> &'static [Bundle] {
    static BUNDLES: OnceLock<Vec<Bundle>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        BUILT_IN
            .iter()
            .filter_map(|b| match pack(b) {
                Ok(bundle) => Some(bundle),
                Err(e) => {
                    // build.rs packs nothing; a manifest that does not parse is a bug in
                    // plugins/, caught by the catalogue tests. Keep the rest available.
                    tracing::error!(connector = b.dir, error = %e, "a built-in connector does not form a bundle; left out");
                    None
                }
            })
            .collect()
    })
}

/// The digests the host pins: exactly the embedded bundles.
pub fn digests() -> BTreeSet<String> {
    bundles().iter().map(|b| b.digest.clone()).collect()
}

fn pack(b: &BuiltIn) -> Result<Bundle, bundle::BundleError> {
    let mut files = BTreeMap::new();
    files.insert(
        nexum_manifest::MANIFEST_FILE.to_string(),
        b.manifest.as_bytes().to_vec(),
    );
    files.insert(COMPONENT_FILE.to_string(), b.component.to_vec());
    if let Some(readme) = b.readme {
        files.insert("README.md".to_string(), readme.as_bytes().to_vec());
    }
    if let Some(icon) = b.icon_svg {
        files.insert("icon.svg".to_string(), icon.to_vec());
    }
    Bundle::parse(&bundle::pack(&files, None)?)
}

/// What seeding the built-in catalogue (or the starter templates) did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seeded {
    /// `id@version` newly listed.
    pub added: Vec<String>,
    /// `id@version` listed before with the same bytes.
    pub unchanged: Vec<String>,
    /// `id@version` listed before with other bytes: rebuilt without a version bump. The
    /// listed one is not this binary's, so installing it is refused until the connector's
    /// version is raised.
    pub conflicting: Vec<String>,
}

/// The first-party publisher ([`NAMESPACE`], owned by no workspace), created on first use.
/// Refuses when a workspace registered the namespace before it was reserved.
pub async fn publisher(state: &AppState) -> MarketplaceResult<crate::store::PublisherRecord> {
    let owner: WorkspaceId = OWNER
        .parse()
        .map_err(|e: crate::ids::InvalidId| MarketplaceError::invalid("invalid_owner", e.to_string()))?;
    let publisher = match state.db.publisher(NAMESPACE).await? {
        Some(p) => p,
        None => match state.db.create_publisher(NAMESPACE, &owner).await {
            Ok(p) => p,
            // Another node seeding at the same moment.
            Err(crate::store::StoreError::Conflict) => state
                .db
                .publisher(NAMESPACE)
                .await?
                .ok_or(MarketplaceError::NotFound("publisher"))?,
            Err(e) => return Err(e.into()),
        },
    };
    if publisher.workspace_id != owner {
        return Err(MarketplaceError::NamespaceTaken(NAMESPACE.to_string()));
    }
    Ok(publisher)
}

/// List every embedded connector in the registry under [`NAMESPACE`] (idempotent; run at
/// every start). Refuses, changing nothing, when a workspace registered the namespace
/// before it was reserved.
pub async fn seed(state: &AppState) -> MarketplaceResult<Seeded> {
    let publisher = publisher(state).await?;
    let mut seeded = Seeded::default();
    for bundle in bundles() {
        let name = format!("{}@{}", bundle.manifest.id, bundle.manifest.version);
        match record_version(state, &publisher, bundle, &Signer::Pinned(bundle.digest.clone())).await {
            Ok((_, true)) => seeded.added.push(name),
            Ok((_, false)) => seeded.unchanged.push(name),
            Err(MarketplaceError::VersionExists { .. }) => seeded.conflicting.push(name),
            Err(e) => return Err(e),
        }
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_connector_forms_a_bundle_with_a_valid_manifest() {
        assert_eq!(bundles().len(), BUILT_IN.len(), "a built-in connector failed to pack");
        for b in bundles() {
            assert!(b.signature.is_none());
            assert!(!b.component.is_empty(), "{}", b.manifest.id);
        }
        assert_eq!(digests().len(), BUILT_IN.len(), "two connectors share a digest");
    }
}
