//! The marketplace, host side: the registry of signed connectors and how a workspace
//! installs from it. Everything "marketplace" lives here; the HTTP shapes and routes are in
//! `api/marketplace.rs` (registry endpoints, `POST /connectors/from-marketplace`) and
//! `api/connectors.rs` (upload install, rollback, uninstall), and the rows are in
//! `store/marketplace.rs` (publishers, keys, packages, versions, bundles, installs,
//! reviews) and `store/installations.rs` (what a workspace has pinned).
//!
//! - [`publish`]: publishers register a namespace and their minisign keys (rotation,
//!   revocation); publishing verifies a bundle against the namespace's unrevoked keys;
//!   versions are semver and immutable, can be yanked, and packages can be featured;
//! - [`packages`]: reading the registry: a package's listing (versions, rating, usage),
//!   browse and search, bundles by digest or by version, choosing a version to install;
//! - [`remote`]: fetching a listing and a bundle from another marketplace, under the
//!   broker's address policy and a size cap;
//! - [`install`]: verifying, compiling and pinning a bundle in a workspace (upload or
//!   marketplace), with the trust-policy, publisher-change and permission-review checks;
//! - [`installed`]: changing what a workspace has pinned: rollback, uninstall;
//! - [`reviews`]: ratings and reviews (install required, one per person, publisher replies);
//! - [`catalogue`]: the first-party connectors built into the binary, listed under `nexum`
//!   at every start and trusted by pinned digest.
//!
//! The host never trusts a marketplace: whatever a bundle's source, [`install`] re-verifies
//! its signature against this host's own trust policy and pins the digest it was shown.
//!
//! Errors: [`InstallError`] for pinning, [`MarketplaceError`] for the registry (it wraps an
//! [`InstallError`] when installing from a marketplace). `api/errors.rs` maps both to HTTP.

pub mod catalogue;
pub mod install;
pub mod installed;
pub mod packages;
pub mod publish;
pub mod remote;
pub mod reviews;

pub use install::{InstallRequest, MarketplaceInstall, install_bundle, install_from_marketplace};
pub use installed::{rollback, uninstall};
pub use packages::{BrowseFilter, Listing, Sort};
pub use publish::{Published, Publisher, PublisherKey};

use crate::runtime::LoadError;
use crate::store::StoreError;
use nexum_marketplace::bundle::BundleError;
use nexum_marketplace::permissions::{PermissionDiff, Permissions};
use nexum_marketplace::signing::SigningError;

/// What a refused install asks the admin to review: the connector's permissions and, for an
/// upgrade or rollback, what they add over the installed version.
#[derive(Debug, Clone)]
pub struct PermissionReview {
    /// The permissions to accept (send them back as `accept_permissions`).
    pub permissions: Permissions,
    /// What they add over the installed version; `None` for a first install.
    pub diff: Option<PermissionDiff>,
}

/// Why installing, rolling back or uninstalling a connector failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The installation is not in this workspace.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The bundle's signature does not satisfy this host's trust policy.
    #[error(transparent)]
    Signature(SigningError),
    /// Another publisher's (or another source's) connector with the same id would take over.
    #[error(
        "`{connector_id}` is installed from {installed}; this one comes from {incoming}. Resend with `replace_publisher: true` to switch"
    )]
    PublisherChanged {
        /// The manifest's connector id.
        connector_id: String,
        /// `<source> signed by <signer>` of the installed version.
        installed: String,
        /// `<source> signed by <signer>` of the new bundle.
        incoming: String,
    },
    /// An upgrade asks for more than the installed version and was not accepted.
    #[error(
        "this version asks for more than the installed one; review `errors.diff` and resend with `accept_permissions` set to `errors.permissions`"
    )]
    PermissionsWidened(Box<PermissionReview>),
    /// A rollback target asks for more than the current version and was not accepted.
    #[error("the earlier version asks for more than the current one; accept `errors.permissions` to roll back")]
    RollbackWidensPermissions(Box<PermissionReview>),
    /// The admin did not send the connector's exact permissions.
    #[error(
        "send `accept_permissions` equal to the connector's permissions (see `errors.permissions`) to confirm you reviewed them"
    )]
    PermissionsNotAccepted(Box<PermissionReview>),
    /// The component does not compile or imports what the host does not provide.
    #[error(transparent)]
    InvalidComponent(LoadError),
    /// A rollback names a version the installation never had.
    #[error("this installation never had version {0}")]
    UnknownVersion(String),
    /// A rollback target was signed by a key this host no longer trusts.
    #[error("version {version} was signed by {signer}, which this host no longer trusts")]
    SignerNoLongerTrusted {
        /// The rollback target.
        version: String,
        /// Its signer key id.
        signer: String,
    },
    /// Connections still use the installation.
    #[error("connections still use this connector; delete them first")]
    InUse,
    /// Permissions JSON could not be written or read back; a server fault.
    #[error("permissions JSON could not be encoded or decoded")]
    Json(#[source] serde_json::Error),
    /// The compile task did not finish; a server fault.
    #[error("the compile task failed")]
    Join(#[source] tokio::task::JoinError),
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Result alias for [`install`] and [`installed`].
pub type InstallResult<T> = Result<T, InstallError>;

/// Why a registry operation (publishing, browsing, reviews, installing from a marketplace)
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum MarketplaceError {
    /// A publisher, package, version, bundle, key or review does not exist.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The request cannot be served as asked; `code` is stable (`invalid_namespace`,
    /// `invalid_public_key`, `invalid_bundle`, `invalid_package`, `digest_mismatch`,
    /// `version_yanked`, `no_versions`, `invalid_review`, `invalid_marketplace`,
    /// `marketplace_address_blocked`).
    #[error("{message}")]
    Invalid {
        /// Stable problem code.
        code: &'static str,
        /// What to do about it.
        message: String,
    },
    /// The namespace belongs to another workspace.
    #[error("namespace `{0}` belongs to another publisher")]
    NotYourNamespace(String),
    /// The namespace is registered already.
    #[error("namespace `{0}` is taken")]
    NamespaceTaken(String),
    /// The version exists with other contents; versions are immutable.
    #[error(
        "{package}@{version} is already published with different contents; versions are immutable, publish a new version"
    )]
    VersionExists {
        /// `namespace/name`.
        package: String,
        /// The semver.
        version: String,
    },
    /// A published bundle's signature does not verify against the namespace's keys.
    #[error("{source} (namespace `{namespace}`)")]
    PublishSignature {
        /// The namespace published under.
        namespace: String,
        /// Why verification failed.
        source: SigningError,
    },
    /// Only workspaces that installed a connector may review it.
    #[error("only workspaces that installed this connector may review it")]
    InstallRequired,
    /// Only workspaces that used a template may review it.
    #[error("only workspaces that made a workflow from this template may review it")]
    UseRequired,
    /// A published template does not parse; each problem names its field.
    #[error("the template is invalid: {}", .0.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; "))]
    InvalidTemplate(Vec<crate::workflows::definition::Problem>),
    /// A remote marketplace failed or answered nonsense; `code` is `marketplace_unreachable`,
    /// `marketplace_error` or `marketplace_invalid`.
    #[error("{message}")]
    Upstream {
        /// Stable problem code.
        code: &'static str,
        /// What happened (no URL).
        message: String,
    },
    /// Installing the fetched bundle failed.
    #[error(transparent)]
    Install(#[from] InstallError),
    /// A stored bundle could not be read back; a server fault.
    #[error("a stored bundle is unreadable")]
    CorruptBundle(#[source] BundleError),
    /// Permissions JSON could not be encoded; a server fault.
    #[error("permissions JSON could not be encoded")]
    Json(#[source] serde_json::Error),
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MarketplaceError {
    /// A 422-class error with a stable code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }
}

/// Result alias for the registry.
pub type MarketplaceResult<T> = Result<T, MarketplaceError>;

/// Whether `ns` is a valid publisher namespace: 2–40 characters of `a-z`, `0-9` and `-`,
/// not starting with `-`.
pub fn valid_namespace(ns: &str) -> bool {
    (2..=40).contains(&ns.len())
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
}
