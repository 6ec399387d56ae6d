//! Installing a connector: verify a bundle against this host's trust policy, check that it
//! does not silently replace another publisher's connector, make the admin accept its
//! permissions (and any widening over the installed version), compile it, then pin it.
//! Installing from a marketplace fetches the bundle (from this registry or a remote one)
//! and pins exactly the digest the listing showed.

use super::{
    InstallError, InstallResult, MarketplaceError, MarketplaceResult, PermissionReview, packages, remote,
    valid_namespace,
};
use crate::ids::WorkspaceId;
use crate::state::AppState;
use crate::store::{AuditEntry, InstallationRecord, NewInstallation};
use nexum_marketplace::bundle::Bundle;
use nexum_marketplace::permissions::Permissions;

/// What to install and what the admin agreed to.
pub struct InstallRequest<'a> {
    /// The parsed bundle.
    pub bundle: &'a Bundle,
    /// The permissions the admin accepts; must equal the connector's.
    pub accept: Option<Permissions>,
    /// `upload` or `marketplace:<namespace>/<name>`.
    pub source: &'a str,
    /// Allow replacing an installed connector of the same id from another publisher or source.
    pub replace_publisher: bool,
}

/// Verify, compile and pin a bundle in `workspace_id`, as `actor` (an API key id). The host
/// checks the signature itself, against its own trust policy, whatever the bundle's source
/// claims. Installing a connector id already installed is an upgrade (or downgrade).
pub async fn install_bundle(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    request: InstallRequest<'_>,
) -> InstallResult<InstallationRecord> {
    let InstallRequest {
        bundle,
        accept,
        source,
        replace_publisher,
    } = request;
    let signer = state.trust.verify(bundle).map_err(InstallError::Signature)?;
    let manifest = &bundle.manifest;
    let permissions = Permissions::of(manifest);
    let existing = state.db.installation_by_connector(workspace_id, &manifest.id).await?;
    let signer_text = signer.recorded();
    // Another publisher's connector with the same id must not silently take over the
    // installation (and with it the connections and their secrets).
    if let Some(e) = &existing
        && (e.signer != signer_text || e.source != source)
        && !replace_publisher
    {
        return Err(InstallError::PublisherChanged {
            connector_id: manifest.id.clone(),
            installed: format!("{} signed by {}", e.source, e.signer),
            incoming: format!("{source} signed by {signer_text}"),
        });
    }
    if accept.as_ref() != Some(&permissions) {
        let previous: Option<Permissions> = existing
            .as_ref()
            .and_then(|e| serde_json::from_str(&e.permissions).ok());
        let diff = previous.as_ref().map(|p| permissions.diff_from(p));
        let widens = diff.as_ref().is_some_and(|d| d.widens());
        let review = Box::new(PermissionReview { permissions, diff });
        return Err(if widens {
            InstallError::PermissionsWidened(review)
        } else {
            InstallError::PermissionsNotAccepted(review)
        });
    }
    // Compile and check imports before storing anything: a bad component changes nothing.
    let runtime = state.runtime.clone();
    let (checked, bytes) = (manifest.clone(), bundle.component.clone());
    let loaded = tokio::task::spawn_blocking(move || runtime.load(checked, &bytes))
        .await
        .map_err(InstallError::Join)?
        .map_err(InstallError::InvalidComponent)?;
    state.db.put_component(&loaded.digest, &bundle.component).await?;
    let permissions_json = serde_json::to_string(&permissions).map_err(InstallError::Json)?;
    let version = manifest.version.to_string();
    let record = state
        .db
        .upsert_installation(
            workspace_id,
            &NewInstallation {
                connector_id: &manifest.id,
                version: &version,
                digest: &loaded.digest,
                manifest: &bundle.manifest_text,
                signer: &signer_text,
                permissions: &permissions_json,
                source,
            },
        )
        .await?;
    state.connections.evict_all();
    let action = if existing.is_some() {
        "connector.upgrade"
    } else {
        "connector.install"
    };
    state
        .db
        .append_audit(&[AuditEntry::new(
            workspace_id,
            actor,
            action,
            record.id.as_str(),
            format!(
                "{}@{} bundle sha256:{} signer:{signer_text} source:{source}",
                manifest.id, version, bundle.digest
            ),
        )])
        .await?;
    Ok(record)
}

/// A request to install a package from a marketplace.
pub struct MarketplaceInstall {
    /// `namespace/name`.
    pub package: String,
    /// Version (default: the latest non-yanked one).
    pub version: Option<String>,
    /// Base URL of a remote marketplace (default: this server's own registry).
    pub marketplace: Option<String>,
    /// The permissions the admin accepts.
    pub accept_permissions: Option<Permissions>,
    /// Allow replacing an installed connector of the same id from another publisher or source.
    pub replace_publisher: bool,
}

/// Split `namespace/name`, refusing anything that is not a valid package reference.
pub fn parse_package_ref(package: &str) -> MarketplaceResult<(&str, &str)> {
    package
        .split_once('/')
        .filter(|(ns, n)| {
            valid_namespace(ns)
                && !n.is_empty()
                && n.len() <= 64
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .ok_or_else(|| MarketplaceError::invalid("invalid_package", "package is `namespace/name`"))
}

/// Install a package from this server's registry or a remote marketplace into
/// `workspace_id`, as `actor`. The host downloads the bundle by digest, re-verifies its
/// signature against its own trust policy ([`install_bundle`]) and pins it; installs from
/// this registry are counted.
pub async fn install_from_marketplace(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    request: MarketplaceInstall,
) -> MarketplaceResult<InstallationRecord> {
    let (namespace, name) = parse_package_ref(&request.package)?;
    let (digest, version, bytes, local_package) = match &request.marketplace {
        None => {
            let listing = packages::package_listing(state, namespace, name).await?;
            let v = packages::pick_version(&listing, request.version.as_deref())?;
            let bytes = packages::version_bundle(state, v).await?;
            (
                v.digest.clone(),
                v.version.clone(),
                bytes,
                Some(listing.package.id.clone()),
            )
        }
        Some(url) => {
            let fetched = remote::fetch(state, url, namespace, name, request.version.as_deref()).await?;
            (fetched.digest, fetched.version, fetched.bytes, None)
        }
    };
    let bundle = Bundle::parse(&bytes).map_err(|e| MarketplaceError::invalid("invalid_bundle", e.to_string()))?;
    // Pin what we were shown: a marketplace cannot swap the bytes behind a digest.
    if bundle.digest != digest || bundle.manifest.version.to_string() != version || bundle.manifest.id != name {
        return Err(MarketplaceError::invalid(
            "digest_mismatch",
            "the downloaded bundle is not the one the marketplace listed",
        ));
    }
    let source = format!("marketplace:{namespace}/{name}");
    let record = install_bundle(
        state,
        workspace_id,
        actor,
        InstallRequest {
            bundle: &bundle,
            accept: request.accept_permissions,
            source: &source,
            replace_publisher: request.replace_publisher,
        },
    )
    .await?;
    if let Some(package_id) = local_package {
        state
            .db
            .record_marketplace_install(workspace_id, &package_id, &version)
            .await?;
    }
    Ok(record)
}
