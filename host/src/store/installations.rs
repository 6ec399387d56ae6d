//! Installed connectors: a workspace's pinned connector versions. Component bytes are stored
//! once per digest so every node sharing the database can load them.

use super::{Db, Page, StoreResult, new_id, now_ms};
use crate::ids::{InstallationId, WorkspaceId};

/// A connector installed in a workspace, pinned by digest.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstallationRecord {
    /// `plg_…`
    pub id: InstallationId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The manifest's connector id.
    pub connector_id: String,
    /// The manifest's version.
    pub version: String,
    /// sha256 of the component.
    pub digest: String,
    /// The manifest TOML as installed.
    pub manifest: String,
    /// Unix ms.
    pub created_at: i64,
    /// Key id that signed the bundle, or `unsigned`.
    pub signer: String,
    /// The permissions the admin accepted (JSON).
    pub permissions: String,
    /// `upload` or `marketplace:<namespace>/<name>`.
    pub source: String,
}

/// What a new install or upgrade pins.
#[derive(Debug, Clone)]
pub struct NewInstallation<'a> {
    /// Connector id.
    pub connector_id: &'a str,
    /// Version.
    pub version: &'a str,
    /// Component digest.
    pub digest: &'a str,
    /// Manifest TOML.
    pub manifest: &'a str,
    /// Signer key id or `unsigned`.
    pub signer: &'a str,
    /// Accepted permissions (JSON).
    pub permissions: &'a str,
    /// Where it came from.
    pub source: &'a str,
}

macro_rules! columns {
    () => {
        "id, workspace_id, connector_id, version, digest, manifest, created_at, signer, permissions, source"
    };
}

impl Db {
    /// Store component bytes under their digest (idempotent).
    pub async fn put_component(&self, digest: &str, bytes: &[u8]) -> StoreResult<()> {
        let exists: Option<(String,)> = sqlx::query_as("SELECT digest FROM components WHERE digest = $1")
            .bind(digest)
            .fetch_optional(self.pool())
            .await?;
        if exists.is_none() {
            let result = sqlx::query("INSERT INTO components (digest, bytes, created_at) VALUES ($1, $2, $3)")
                .bind(digest)
                .bind(bytes)
                .bind(now_ms())
                .execute(self.writer())
                .await;
            match result {
                Ok(_) | Err(sqlx::Error::Database(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Component bytes by digest.
    pub async fn component(&self, digest: &str) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT bytes FROM components WHERE digest = $1")
            .bind(digest)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|(b,)| b))
    }

    /// Install, or re-pin an existing installation to another version, keeping history.
    pub async fn upsert_installation(
        &self,
        workspace_id: &WorkspaceId,
        new: &NewInstallation<'_>,
    ) -> StoreResult<InstallationRecord> {
        let existing = self.installation_by_connector(workspace_id, new.connector_id).await?;
        let record = InstallationRecord {
            id: existing
                .as_ref()
                .map(|e| e.id.clone())
                .unwrap_or_else(InstallationId::generate),
            workspace_id: workspace_id.clone(),
            connector_id: new.connector_id.into(),
            version: new.version.into(),
            digest: new.digest.into(),
            manifest: new.manifest.into(),
            created_at: existing.as_ref().map(|e| e.created_at).unwrap_or_else(now_ms),
            signer: new.signer.into(),
            permissions: new.permissions.into(),
            source: new.source.into(),
        };
        let mut tx = self.begin_write().await?;
        if existing.is_some() {
            sqlx::query(
                "UPDATE installations SET version = $1, digest = $2, manifest = $3, signer = $4, permissions = $5, source = $6 WHERE workspace_id = $7 AND id = $8",
            )
            .bind(&record.version)
            .bind(&record.digest)
            .bind(&record.manifest)
            .bind(&record.signer)
            .bind(&record.permissions)
            .bind(&record.source)
            .bind(workspace_id)
            .bind(&record.id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(concat!(
                "INSERT INTO installations (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(&record.id)
            .bind(&record.workspace_id)
            .bind(&record.connector_id)
            .bind(&record.version)
            .bind(&record.digest)
            .bind(&record.manifest)
            .bind(record.created_at)
            .bind(&record.signer)
            .bind(&record.permissions)
            .bind(&record.source)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO installation_history (id, installation_id, workspace_id, version, digest, manifest, signer, permissions, source, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new_id("ihs"))
        .bind(&record.id)
        .bind(workspace_id)
        .bind(&record.version)
        .bind(&record.digest)
        .bind(&record.manifest)
        .bind(&record.signer)
        .bind(&record.permissions)
        .bind(&record.source)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let (kind, data) = match &existing {
            Some(before) => (
                "connector.upgraded",
                serde_json::json!({ "installation_id": record.id, "connector": record.connector_id, "from_version": before.version, "version": record.version }),
            ),
            None => (
                "connector.installed",
                serde_json::json!({ "installation_id": record.id, "connector": record.connector_id, "version": record.version }),
            ),
        };
        super::events::insert_event(&mut tx, workspace_id, kind, &data).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(record)
    }

    /// Earlier pins of an installation, newest first (for rollback).
    pub async fn installation_history(
        &self,
        workspace_id: &WorkspaceId,
        installation_id: &InstallationId,
    ) -> StoreResult<Vec<InstallationRecord>> {
        Ok(sqlx::query_as(
            "SELECT installation_id AS id, workspace_id, '' AS connector_id, version, digest, manifest, created_at, signer, permissions, source FROM installation_history WHERE workspace_id = $1 AND installation_id = $2 ORDER BY id DESC",
        )
        .bind(workspace_id)
        .bind(installation_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// One installation of a workspace.
    pub async fn installation(
        &self,
        workspace_id: &WorkspaceId,
        id: &InstallationId,
    ) -> StoreResult<Option<InstallationRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM installations WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// A workspace's installation of connector `connector_id`.
    pub async fn installation_by_connector(
        &self,
        workspace_id: &WorkspaceId,
        connector_id: &str,
    ) -> StoreResult<Option<InstallationRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM installations WHERE workspace_id = $1 AND connector_id = $2"
        ))
        .bind(workspace_id)
        .bind(connector_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Installations of a workspace, a page at a time.
    pub async fn list_installations(
        &self,
        workspace_id: &WorkspaceId,
        after: &str,
        limit: usize,
    ) -> StoreResult<Page<InstallationRecord>> {
        let rows = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM installations WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(workspace_id)
        .bind(after)
        .bind(limit as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(rows, limit, |r: &InstallationRecord| r.id.to_string()))
    }

    /// Uninstall; refused (false) while connections use it. `connector.uninstalled` is
    /// written in the same transaction.
    pub async fn delete_installation(&self, workspace_id: &WorkspaceId, id: &InstallationId) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let gone: Option<(String, String)> = sqlx::query_as(
            "DELETE FROM installations WHERE workspace_id = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM connections WHERE installation_id = $3) RETURNING connector_id, version",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((connector, version)) = gone else {
            tx.rollback().await?;
            return Ok(false);
        };
        let data = serde_json::json!({ "installation_id": id, "connector": connector, "version": version });
        super::events::insert_event(&mut tx, workspace_id, "connector.uninstalled", &data).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(true)
    }
}
