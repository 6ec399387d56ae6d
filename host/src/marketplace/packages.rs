//! Reading the registry: a package's listing (its versions, rating and usage), browse and
//! search, bundles by digest or by version, and choosing which version to install.

use super::{MarketplaceError, MarketplaceResult, reviews};
use crate::state::AppState;
use crate::store::{PackageRecord, PackageVersionRecord};
use nexum_marketplace::bundle::Bundle;

/// A package with everything its listing shows.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The package.
    pub package: PackageRecord,
    /// Every version, oldest first.
    pub versions: Vec<PackageVersionRecord>,
    /// Average stars (none without reviews).
    pub rating: Option<f64>,
    /// Number of reviews.
    pub reviews: usize,
}

impl Listing {
    /// `namespace/name`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.package.namespace, self.package.name)
    }

    /// The highest non-yanked version by semver.
    pub fn latest(&self) -> Option<&PackageVersionRecord> {
        self.versions.iter().filter(|v| v.yanked_at.is_none()).max_by(|a, b| {
            semver::Version::parse(&a.version)
                .ok()
                .cmp(&semver::Version::parse(&b.version).ok())
        })
    }

    /// Installs across versions.
    pub fn installs(&self) -> i64 {
        self.versions.iter().map(|v| v.installs).sum()
    }

    /// Action executions across versions.
    pub fn executions(&self) -> i64 {
        self.versions.iter().map(|v| v.executions).sum()
    }
}

/// The listing of a package record.
pub async fn listing(state: &AppState, package: PackageRecord) -> MarketplaceResult<Listing> {
    let versions = state.db.package_versions(&package.id).await?;
    let reviews = state.db.reviews(reviews::CONNECTOR, &package.id).await?;
    Ok(Listing {
        package,
        versions,
        rating: reviews::average(&reviews),
        reviews: reviews.len(),
    })
}

/// A package by namespace and name.
pub async fn find_package(state: &AppState, namespace: &str, name: &str) -> MarketplaceResult<PackageRecord> {
    state
        .db
        .package(namespace, name)
        .await?
        .ok_or(MarketplaceError::NotFound("package"))
}

/// The listing of `namespace/name`.
pub async fn package_listing(state: &AppState, namespace: &str, name: &str) -> MarketplaceResult<Listing> {
    let package = find_package(state, namespace, name).await?;
    listing(state, package).await
}

/// How browse results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Most recently first published first.
    #[default]
    Newest,
    /// Highest average rating first (more reviews break ties).
    Rating,
    /// Most installs first.
    Installs,
}

impl Sort {
    /// Parse `newest`, `rating` or `installs`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "newest" => Some(Self::Newest),
            "rating" => Some(Self::Rating),
            "installs" => Some(Self::Installs),
            _ => None,
        }
    }
}

/// What to browse for.
#[derive(Debug, Clone, Default)]
pub struct BrowseFilter {
    /// Text to find in namespace, name, display name or description (case-insensitive).
    pub q: Option<String>,
    /// Exact category.
    pub category: Option<String>,
    /// Only featured packages.
    pub featured_only: bool,
    /// Order.
    pub sort: Sort,
}

/// Every package matching `filter` that has an installable version, in `filter.sort` order.
/// The filtering happens in the database, in a fixed number of queries.
pub async fn browse(state: &AppState, filter: &BrowseFilter) -> MarketplaceResult<Vec<Listing>> {
    // SQLite folds only ASCII case, so a non-ASCII search text is matched here instead.
    let q = filter.q.as_deref().unwrap_or("");
    let (sql_q, rust_q) = if q.is_ascii() {
        (q, None)
    } else {
        ("", Some(q.to_lowercase()))
    };
    let mut rows = state
        .db
        .browse_packages(
            filter.category.as_deref().unwrap_or(""),
            filter.featured_only,
            sql_q,
            reviews::CONNECTOR,
        )
        .await?;
    if let Some(q) = rust_q {
        rows.packages.retain(|p| {
            format!("{} {} {} {}", p.namespace, p.name, p.display_name, p.description)
                .to_lowercase()
                .contains(&q)
        });
    }
    let mut versions: std::collections::HashMap<String, Vec<PackageVersionRecord>> = Default::default();
    for v in rows.versions {
        versions.entry(v.package_id.clone()).or_default().push(v);
    }
    let ratings: std::collections::HashMap<String, (i64, i64)> = rows
        .reviews
        .into_iter()
        .map(|(id, count, stars)| (id, (count, stars)))
        .collect();
    let mut listings: Vec<Listing> = rows
        .packages
        .into_iter()
        .map(|package| {
            let (count, stars) = ratings.get(&package.id).copied().unwrap_or((0, 0));
            Listing {
                versions: versions.remove(&package.id).unwrap_or_default(),
                rating: (count > 0).then(|| stars as f64 / count as f64),
                reviews: usize::try_from(count).unwrap_or(0),
                package,
            }
        })
        .filter(|l| l.latest().is_some())
        .collect();
    match filter.sort {
        Sort::Newest => listings.sort_by_key(|l| std::cmp::Reverse(l.package.created_at)),
        Sort::Rating => listings.sort_by(|a, b| {
            b.rating
                .unwrap_or(0.0)
                .total_cmp(&a.rating.unwrap_or(0.0))
                .then(b.reviews.cmp(&a.reviews))
        }),
        Sort::Installs => listings.sort_by_key(|l| std::cmp::Reverse(l.installs())),
    }
    Ok(listings)
}

/// Choose the version to install: `wanted`, or the latest non-yanked one. A yanked version
/// cannot be newly installed.
pub fn pick_version<'a>(listing: &'a Listing, wanted: Option<&str>) -> MarketplaceResult<&'a PackageVersionRecord> {
    match wanted {
        Some(v) => {
            let found = listing
                .versions
                .iter()
                .find(|x| x.version == v)
                .ok_or(MarketplaceError::NotFound("version"))?;
            if found.yanked_at.is_some() {
                return Err(MarketplaceError::invalid(
                    "version_yanked",
                    format!("{}@{v} was yanked and cannot be newly installed", listing.reference()),
                ));
            }
            Ok(found)
        }
        None => listing
            .latest()
            .ok_or_else(|| MarketplaceError::invalid("no_versions", "every version was yanked")),
    }
}

/// Bundle bytes by digest, as stored.
pub async fn bundle(state: &AppState, digest: &str) -> MarketplaceResult<Vec<u8>> {
    state
        .db
        .bundle(digest)
        .await?
        .ok_or(MarketplaceError::NotFound("bundle"))
}

/// The bundle of one published version, carrying that version's own signature.
pub async fn version_bundle(state: &AppState, version: &PackageVersionRecord) -> MarketplaceResult<Vec<u8>> {
    let stored = bundle(state, &version.digest).await?;
    let parsed = Bundle::parse(&stored).map_err(MarketplaceError::CorruptBundle)?;
    parsed
        .with_signature(&version.signature)
        .map_err(MarketplaceError::CorruptBundle)
}

/// The signed bundle of `namespace/name@version`.
pub async fn package_version_bundle(
    state: &AppState,
    namespace: &str,
    name: &str,
    version: &str,
) -> MarketplaceResult<Vec<u8>> {
    let package = find_package(state, namespace, name).await?;
    let found = state
        .db
        .package_versions(&package.id)
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or(MarketplaceError::NotFound("version"))?;
    version_bundle(state, &found).await
}
