//! The marketplace registry: publishers and their keys, packages, immutable versions with
//! their bundles, install records and reviews.

use super::{Db, StoreResult, new_id, now_ms};
use crate::ids::WorkspaceId;
use serde::Serialize;

/// A publisher namespace owned by a workspace.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PublisherRecord {
    /// `pub_…`
    pub id: String,
    /// Namespace, e.g. `acme`.
    pub namespace: String,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Unix ms.
    pub created_at: i64,
}

/// A package (connector) in a namespace.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PackageRecord {
    /// `pkg_…`
    pub id: String,
    /// Publisher.
    pub publisher_id: String,
    /// Namespace.
    pub namespace: String,
    /// Name (the manifest's id).
    pub name: String,
    /// Display name of the latest version.
    pub display_name: String,
    /// Description of the latest version.
    pub description: String,
    /// Category.
    pub category: String,
    /// 1 when featured.
    pub featured: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// One immutable published version.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PackageVersionRecord {
    /// Package.
    pub package_id: String,
    /// Semver.
    pub version: String,
    /// Bundle digest.
    pub digest: String,
    /// Manifest TOML.
    pub manifest: String,
    /// Permissions JSON.
    pub permissions: String,
    /// Signing key id.
    pub signer: String,
    /// Unix ms when yanked.
    pub yanked_at: Option<i64>,
    /// Installs of this version.
    pub installs: i64,
    /// Action executions on this version.
    pub executions: i64,
    /// Unix ms.
    pub created_at: i64,
    /// This version's minisign signature of the bundle's SHA256SUMS.
    pub signature: String,
}

/// A review of a marketplace item.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReviewRecord {
    /// `rev_…`
    pub id: String,
    /// `connector` (later also `template`).
    pub item_type: String,
    /// The item's id (a package id).
    pub item_id: String,
    /// Reviewer's workspace.
    pub workspace_id: WorkspaceId,
    /// Reviewer (member or key id).
    pub author: String,
    /// 1–5.
    pub stars: i64,
    /// Text.
    pub body: String,
    /// Version the reviewer's workspace had installed: the "verified install" mark.
    pub version: String,
    /// Publisher's reply.
    pub reply: Option<String>,
    /// Unix ms.
    pub replied_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// What one browse reads: the matching packages, their versions, and per package the
/// number of reviews and the sum of their stars.
#[derive(Debug, Default)]
pub struct BrowseRows {
    /// Matching packages.
    pub packages: Vec<PackageRecord>,
    /// Their versions, oldest first.
    pub versions: Vec<PackageVersionRecord>,
    /// `(package id, reviews, total stars)`.
    pub reviews: Vec<(String, i64, i64)>,
}

macro_rules! pkg_columns {
    () => {
        "id, publisher_id, namespace, name, display_name, description, category, featured, created_at"
    };
}
macro_rules! ver_columns {
    () => {
        "package_id, version, digest, manifest, permissions, signer, yanked_at, installs, executions, created_at, signature"
    };
}
macro_rules! rev_columns {
    () => {
        "id, item_type, item_id, workspace_id, author, stars, body, version, reply, replied_at, created_at, updated_at"
    };
}

impl Db {
    /// Register a namespace for a workspace.
    pub async fn create_publisher(&self, namespace: &str, workspace_id: &WorkspaceId) -> StoreResult<PublisherRecord> {
        let p = PublisherRecord {
            id: new_id("pub"),
            namespace: namespace.into(),
            workspace_id: workspace_id.clone(),
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO publishers (id, namespace, workspace_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&p.id)
            .bind(&p.namespace)
            .bind(&p.workspace_id)
            .bind(p.created_at)
            .execute(self.writer())
            .await?;
        Ok(p)
    }

    /// A publisher by namespace.
    pub async fn publisher(&self, namespace: &str) -> StoreResult<Option<PublisherRecord>> {
        Ok(
            sqlx::query_as("SELECT id, namespace, workspace_id, created_at FROM publishers WHERE namespace = $1")
                .bind(namespace)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Add a public key to a publisher.
    pub async fn add_publisher_key(&self, publisher_id: &str, key_id: &str, public_key: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO publisher_keys (key_id, publisher_id, public_key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(key_id)
        .bind(publisher_id)
        .bind(public_key)
        .bind(now_ms())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Revoke a publisher key; false if it is not theirs or already revoked.
    pub async fn revoke_publisher_key(&self, publisher_id: &str, key_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE publisher_keys SET revoked_at = $1 WHERE publisher_id = $2 AND key_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(publisher_id)
        .bind(key_id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A publisher's keys: (key id, public key, revoked_at).
    pub async fn publisher_keys(&self, publisher_id: &str) -> StoreResult<Vec<(String, String, Option<i64>)>> {
        Ok(sqlx::query_as(
            "SELECT key_id, public_key, revoked_at FROM publisher_keys WHERE publisher_id = $1 ORDER BY created_at",
        )
        .bind(publisher_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// A package by namespace and name.
    pub async fn package(&self, namespace: &str, name: &str) -> StoreResult<Option<PackageRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            pkg_columns!(),
            " FROM packages WHERE namespace = $1 AND name = $2"
        ))
        .bind(namespace)
        .bind(name)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Every package (browse filters and sorts in memory; the registry is small).
    /// Packages matching a browse filter, with all their versions and their review counts
    /// and star totals, in three queries whatever the catalogue's size. `category` and
    /// `needle` are ignored when empty; `needle` is matched case-insensitively as a
    /// substring of namespace, name, display name and description.
    pub async fn browse_packages(
        &self,
        category: &str,
        featured_only: bool,
        needle: &str,
        review_item_type: &str,
    ) -> StoreResult<BrowseRows> {
        let pattern = format!(
            "%{}%",
            needle
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        macro_rules! matching {
            () => {
                "SELECT id FROM packages WHERE ($1 = '' OR category = $1) AND ($2 = 0 OR featured <> 0) AND ($3 = '%%' OR LOWER(namespace || ' ' || name || ' ' || display_name || ' ' || description) LIKE $3 ESCAPE '\\')"
            };
        }
        let featured = i64::from(featured_only);
        let packages: Vec<PackageRecord> = sqlx::query_as(concat!(
            "SELECT ",
            pkg_columns!(),
            " FROM packages WHERE id IN (",
            matching!(),
            ") ORDER BY id"
        ))
        .bind(category)
        .bind(featured)
        .bind(&pattern)
        .fetch_all(self.pool())
        .await?;
        let versions: Vec<PackageVersionRecord> = sqlx::query_as(concat!(
            "SELECT ",
            ver_columns!(),
            " FROM package_versions WHERE package_id IN (",
            matching!(),
            ") ORDER BY created_at"
        ))
        .bind(category)
        .bind(featured)
        .bind(&pattern)
        .fetch_all(self.pool())
        .await?;
        let reviews: Vec<(String, i64, i64)> = sqlx::query_as(concat!(
            "SELECT item_id, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(stars), 0) AS BIGINT) FROM reviews WHERE item_type = $4 AND item_id IN (",
            matching!(),
            ") GROUP BY item_id"
        ))
        .bind(category)
        .bind(featured)
        .bind(&pattern)
        .bind(review_item_type)
        .fetch_all(self.pool())
        .await?;
        Ok(BrowseRows {
            packages,
            versions,
            reviews,
        })
    }

    /// Mark a package featured or not.
    pub async fn set_featured(&self, package_id: &str, featured: bool) -> StoreResult<()> {
        sqlx::query("UPDATE packages SET featured = $1 WHERE id = $2")
            .bind(i64::from(featured))
            .bind(package_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Store a new version (and create the package on first publish), atomically.
    #[allow(clippy::too_many_arguments)]
    pub async fn publish_version(
        &self,
        publisher: &PublisherRecord,
        name: &str,
        display_name: &str,
        description: &str,
        category: &str,
        version: &PackageVersionRecord,
        bundle: &[u8],
    ) -> StoreResult<PackageRecord> {
        let mut tx = self.begin_write().await?;
        let existing: Option<PackageRecord> = sqlx::query_as(concat!(
            "SELECT ",
            pkg_columns!(),
            " FROM packages WHERE namespace = $1 AND name = $2"
        ))
        .bind(&publisher.namespace)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let package = match existing {
            Some(p) => {
                sqlx::query("UPDATE packages SET display_name = $1, description = $2, category = $3 WHERE id = $4")
                    .bind(display_name)
                    .bind(description)
                    .bind(category)
                    .bind(&p.id)
                    .execute(&mut *tx)
                    .await?;
                p
            }
            None => {
                let p = PackageRecord {
                    id: new_id("pkg"),
                    publisher_id: publisher.id.clone(),
                    namespace: publisher.namespace.clone(),
                    name: name.into(),
                    display_name: display_name.into(),
                    description: description.into(),
                    category: category.into(),
                    featured: 0,
                    created_at: now_ms(),
                };
                sqlx::query(concat!(
                    "INSERT INTO packages (",
                    pkg_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(&p.id)
                .bind(&p.publisher_id)
                .bind(&p.namespace)
                .bind(&p.name)
                .bind(&p.display_name)
                .bind(&p.description)
                .bind(&p.category)
                .bind(p.featured)
                .bind(p.created_at)
                .execute(&mut *tx)
                .await?;
                p
            }
        };
        let have: Option<(String,)> = sqlx::query_as("SELECT digest FROM bundles WHERE digest = $1")
            .bind(&version.digest)
            .fetch_optional(&mut *tx)
            .await?;
        if have.is_none() {
            sqlx::query("INSERT INTO bundles (digest, bytes, created_at) VALUES ($1, $2, $3)")
                .bind(&version.digest)
                .bind(bundle)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(concat!(
            "INSERT INTO package_versions (",
            ver_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&package.id)
        .bind(&version.version)
        .bind(&version.digest)
        .bind(&version.manifest)
        .bind(&version.permissions)
        .bind(&version.signer)
        .bind(version.yanked_at)
        .bind(0_i64)
        .bind(0_i64)
        .bind(version.created_at)
        .bind(&version.signature)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(package)
    }

    /// Versions of a package, oldest first.
    pub async fn package_versions(&self, package_id: &str) -> StoreResult<Vec<PackageVersionRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            ver_columns!(),
            " FROM package_versions WHERE package_id = $1 ORDER BY created_at"
        ))
        .bind(package_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Yank a version.
    pub async fn yank_version(&self, package_id: &str, version: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE package_versions SET yanked_at = $1 WHERE package_id = $2 AND version = $3 AND yanked_at IS NULL",
        )
        .bind(now_ms())
        .bind(package_id)
        .bind(version)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Bundle bytes by digest.
    pub async fn bundle(&self, digest: &str) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT bytes FROM bundles WHERE digest = $1")
            .bind(digest)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|(b,)| b))
    }

    /// Record that a workspace installed a version (counts it once per workspace and version).
    pub async fn record_marketplace_install(
        &self,
        workspace_id: &WorkspaceId,
        package_id: &str,
        version: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let previous: Option<(String,)> =
            sqlx::query_as("SELECT version FROM marketplace_installs WHERE workspace_id = $1 AND package_id = $2")
                .bind(workspace_id)
                .bind(package_id)
                .fetch_optional(&mut *tx)
                .await?;
        match &previous {
            Some((v,)) if v == version => {}
            Some(_) => {
                sqlx::query("UPDATE marketplace_installs SET version = $1, created_at = $2 WHERE workspace_id = $3 AND package_id = $4")
                    .bind(version)
                    .bind(now_ms())
                    .bind(workspace_id)
                    .bind(package_id)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query("INSERT INTO marketplace_installs (workspace_id, package_id, version, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(workspace_id)
                    .bind(package_id)
                    .bind(version)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if previous.as_ref().map(|(v,)| v.as_str()) != Some(version) {
            sqlx::query("UPDATE package_versions SET installs = installs + 1 WHERE package_id = $1 AND version = $2")
                .bind(package_id)
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The version a workspace installed from the marketplace, if any.
    pub async fn marketplace_install(
        &self,
        workspace_id: &WorkspaceId,
        package_id: &str,
    ) -> StoreResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT version FROM marketplace_installs WHERE workspace_id = $1 AND package_id = $2")
                .bind(workspace_id)
                .bind(package_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(v,)| v))
    }

    /// Add executions to package versions (batched).
    pub async fn add_executions(&self, counts: &[(String, String, i64)]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for (package_id, version, n) in counts {
            sqlx::query(
                "UPDATE package_versions SET executions = executions + $1 WHERE package_id = $2 AND version = $3",
            )
            .bind(*n)
            .bind(package_id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Create or replace an author's review of an item.
    pub async fn upsert_review(&self, review: &ReviewRecord) -> StoreResult<ReviewRecord> {
        let existing: Option<ReviewRecord> = sqlx::query_as(concat!(
            "SELECT ",
            rev_columns!(),
            " FROM reviews WHERE item_type = $1 AND item_id = $2 AND author = $3"
        ))
        .bind(&review.item_type)
        .bind(&review.item_id)
        .bind(&review.author)
        .fetch_optional(self.pool())
        .await?;
        if let Some(prev) = existing {
            sqlx::query("UPDATE reviews SET stars = $1, body = $2, version = $3, updated_at = $4 WHERE id = $5")
                .bind(review.stars)
                .bind(&review.body)
                .bind(&review.version)
                .bind(now_ms())
                .bind(&prev.id)
                .execute(self.writer())
                .await?;
            return Ok(ReviewRecord {
                stars: review.stars,
                body: review.body.clone(),
                version: review.version.clone(),
                updated_at: now_ms(),
                ..prev
            });
        }
        sqlx::query(concat!(
            "INSERT INTO reviews (",
            rev_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&review.id)
        .bind(&review.item_type)
        .bind(&review.item_id)
        .bind(&review.workspace_id)
        .bind(&review.author)
        .bind(review.stars)
        .bind(&review.body)
        .bind(&review.version)
        .bind(&review.reply)
        .bind(review.replied_at)
        .bind(review.created_at)
        .bind(review.updated_at)
        .execute(self.writer())
        .await?;
        Ok(review.clone())
    }

    /// Reviews of an item, newest first.
    pub async fn reviews(&self, item_type: &str, item_id: &str) -> StoreResult<Vec<ReviewRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            rev_columns!(),
            " FROM reviews WHERE item_type = $1 AND item_id = $2 ORDER BY id DESC"
        ))
        .bind(item_type)
        .bind(item_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Set the publisher's reply on a review of `item_id`.
    pub async fn reply_to_review(&self, item_id: &str, review_id: &str, reply: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE reviews SET reply = $1, replied_at = $2 WHERE item_id = $3 AND id = $4")
            .bind(reply)
            .bind(now_ms())
            .bind(item_id)
            .bind(review_id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
