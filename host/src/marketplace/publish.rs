//! Publishing: a workspace registers a namespace with its first minisign key, rotates and
//! revokes keys, and publishes signed bundles into it. A bundle must verify against one of
//! the namespace's unrevoked keys; a version, once published, never changes (re-publishing
//! the same bytes is a no-op), can be yanked, and the operator can feature a package.

use super::packages::{self, Listing};
use super::{MarketplaceError, MarketplaceResult, valid_namespace};
use crate::ids::WorkspaceId;
use crate::state::AppState;
use crate::store::{AuditEntry, PackageVersionRecord, PublisherRecord, StoreError, now_ms};
use nexum_marketplace::bundle::Bundle;
use nexum_marketplace::permissions::Permissions;
use nexum_marketplace::signing::{PublicKey, Signed, Signer, TrustPolicy};

/// A publisher namespace with its signing keys, as the registry shows it.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// Namespace.
    pub namespace: String,
    /// Every key the namespace registered, oldest first, revoked ones included.
    pub keys: Vec<PublisherKey>,
}

/// One of a publisher's signing keys.
#[derive(Debug, Clone)]
pub struct PublisherKey {
    /// minisign key id.
    pub key_id: String,
    /// Base64 public key.
    pub public_key: String,
    /// Unix ms of revocation; a revoked key no longer publishes.
    pub revoked_at: Option<i64>,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The package's listing after the publish.
    pub listing: Listing,
    /// False when this exact version was already published with the same bytes.
    pub created: bool,
}

/// Parse a minisign public key (file text or base64 line).
fn parse_key(text: &str) -> MarketplaceResult<PublicKey> {
    PublicKey::parse(text).map_err(|e| MarketplaceError::invalid("invalid_public_key", e.to_string()))
}

/// A publisher record with its keys.
async fn with_keys(state: &AppState, record: &PublisherRecord) -> MarketplaceResult<Publisher> {
    let keys = state
        .db
        .publisher_keys(&record.id)
        .await?
        .into_iter()
        .map(|(key_id, public_key, revoked_at)| PublisherKey {
            key_id,
            public_key,
            revoked_at,
        })
        .collect();
    Ok(Publisher {
        namespace: record.namespace.clone(),
        keys,
    })
}

/// The publisher of `namespace`, if `workspace_id` owns it.
pub async fn owned_publisher(
    state: &AppState,
    workspace_id: &WorkspaceId,
    namespace: &str,
) -> MarketplaceResult<PublisherRecord> {
    match state.db.publisher(namespace).await? {
        Some(p) if p.workspace_id == *workspace_id => Ok(p),
        Some(_) => Err(MarketplaceError::NotYourNamespace(namespace.to_string())),
        None => Err(MarketplaceError::NotFound("publisher")),
    }
}

/// Register `namespace` for `workspace_id` with its first signing key.
pub async fn register(
    state: &AppState,
    workspace_id: &WorkspaceId,
    namespace: &str,
    public_key: &str,
) -> MarketplaceResult<Publisher> {
    if !valid_namespace(namespace) {
        return Err(MarketplaceError::invalid(
            "invalid_namespace",
            "namespaces are 2–40 characters of a-z, 0-9 and -",
        ));
    }
    if namespace == super::catalogue::NAMESPACE {
        return Err(MarketplaceError::NamespaceTaken(namespace.to_string()));
    }
    let key = parse_key(public_key)?;
    let publisher = state
        .db
        .create_publisher(namespace, workspace_id)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => MarketplaceError::NamespaceTaken(namespace.to_string()),
            other => other.into(),
        })?;
    state
        .db
        .add_publisher_key(&publisher.id, &key.key_id, &key.base64)
        .await?;
    with_keys(state, &publisher).await
}

/// The publisher of `namespace` with its keys (public).
pub async fn publisher(state: &AppState, namespace: &str) -> MarketplaceResult<Publisher> {
    let record = state
        .db
        .publisher(namespace)
        .await?
        .ok_or(MarketplaceError::NotFound("publisher"))?;
    with_keys(state, &record).await
}

/// Add a signing key to a namespace `workspace_id` owns (key rotation).
pub async fn add_key(
    state: &AppState,
    workspace_id: &WorkspaceId,
    namespace: &str,
    public_key: &str,
) -> MarketplaceResult<Publisher> {
    let publisher = owned_publisher(state, workspace_id, namespace).await?;
    let key = parse_key(public_key)?;
    state
        .db
        .add_publisher_key(&publisher.id, &key.key_id, &key.base64)
        .await?;
    with_keys(state, &publisher).await
}

/// Revoke a key of a namespace `workspace_id` owns: new publishes signed with it are refused.
pub async fn revoke_key(
    state: &AppState,
    workspace_id: &WorkspaceId,
    namespace: &str,
    key_id: &str,
) -> MarketplaceResult<()> {
    let publisher = owned_publisher(state, workspace_id, namespace).await?;
    if state.db.revoke_publisher_key(&publisher.id, key_id).await? {
        Ok(())
    } else {
        Err(MarketplaceError::NotFound("key"))
    }
}

/// Publish the bundle `bytes` into `namespace` (owned by `workspace_id`), as `actor`. Its
/// signature must verify against one of the namespace's unrevoked keys; an existing version
/// is accepted again only with the same digest.
pub async fn publish(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    namespace: &str,
    bytes: &[u8],
) -> MarketplaceResult<Published> {
    let publisher = owned_publisher(state, workspace_id, namespace).await?;
    let bundle = Bundle::parse(bytes).map_err(|e| MarketplaceError::invalid("invalid_bundle", e.to_string()))?;
    let signer = verify_for_namespace(state, &publisher, &bundle).await?;
    let (package, created) = record_version(state, &publisher, &bundle, &signer).await?;
    if !created {
        return Ok(Published {
            listing: packages::listing(state, package).await?,
            created: false,
        });
    }
    let m = &bundle.manifest;
    state
        .db
        .append_audit(&[AuditEntry::new(
            workspace_id,
            actor,
            "marketplace.publish",
            &package.id,
            format!(
                "{}/{}@{} sha256:{}",
                publisher.namespace, m.id, m.version, bundle.digest
            ),
        )])
        .await?;
    Ok(Published {
        listing: packages::listing(state, package).await?,
        created: true,
    })
}

/// Verify a connector or template bundle against the namespace's unrevoked keys (unsigned
/// refused): what publishing into a namespace requires.
pub async fn verify_for_namespace(
    state: &AppState,
    publisher: &PublisherRecord,
    bundle: &impl Signed,
) -> MarketplaceResult<Signer> {
    let keys: Vec<PublicKey> = state
        .db
        .publisher_keys(&publisher.id)
        .await?
        .into_iter()
        .filter(|(_, _, revoked)| revoked.is_none())
        .filter_map(|(_, k, _)| PublicKey::parse(&k).ok())
        .collect();
    TrustPolicy {
        keys,
        allow_unsigned: false,
        pinned: Default::default(),
    }
    .verify(bundle)
    .map_err(|source| MarketplaceError::PublishSignature {
        namespace: publisher.namespace.clone(),
        source,
    })
}

/// Store `bundle` as a new version of its package under `publisher`, recording `signer`.
/// Returns the package and whether the version is new: an existing version is accepted
/// again only with the same digest (`false`); with other bytes it is refused.
pub(super) async fn record_version(
    state: &AppState,
    publisher: &PublisherRecord,
    bundle: &Bundle,
    signer: &Signer,
) -> MarketplaceResult<(crate::store::PackageRecord, bool)> {
    let m = &bundle.manifest;
    let version = m.version.to_string();
    if let Some(package) = state.db.package(&publisher.namespace, &m.id).await?
        && let Some(existing) = state
            .db
            .package_versions(&package.id)
            .await?
            .into_iter()
            .find(|v| v.version == version)
    {
        if existing.digest == bundle.digest {
            return Ok((package, false));
        }
        return Err(MarketplaceError::VersionExists {
            package: format!("{}/{}", publisher.namespace, m.id),
            version,
        });
    }
    let record = PackageVersionRecord {
        package_id: String::new(),
        version,
        digest: bundle.digest.clone(),
        manifest: bundle.manifest_text.clone(),
        permissions: serde_json::to_string(&Permissions::of(m)).map_err(MarketplaceError::Json)?,
        signer: signer.recorded(),
        yanked_at: None,
        installs: 0,
        executions: 0,
        created_at: now_ms(),
        signature: bundle.signature.clone().unwrap_or_default(),
    };
    let stored = bundle
        .to_bytes()
        .map_err(|e| MarketplaceError::invalid("invalid_bundle", e.to_string()))?;
    let package = state
        .db
        .publish_version(publisher, &m.id, &m.name, &m.description, &m.category, &record, &stored)
        .await?;
    Ok((package, true))
}

/// Yank `namespace/name@version` (namespace owned by `workspace_id`): it stays downloadable
/// for those who pinned it but cannot be newly installed.
pub async fn yank(
    state: &AppState,
    workspace_id: &WorkspaceId,
    namespace: &str,
    name: &str,
    version: &str,
) -> MarketplaceResult<()> {
    owned_publisher(state, workspace_id, namespace).await?;
    let package = packages::find_package(state, namespace, name).await?;
    if state.db.yank_version(&package.id, version).await? {
        Ok(())
    } else {
        Err(MarketplaceError::NotFound("version"))
    }
}

/// Feature (or unfeature) `namespace/name`; an operator decision.
pub async fn set_featured(state: &AppState, namespace: &str, name: &str, featured: bool) -> MarketplaceResult<()> {
    let package = packages::find_package(state, namespace, name).await?;
    state.db.set_featured(&package.id, featured).await?;
    Ok(())
}
