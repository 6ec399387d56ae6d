//! Connections: an installed connector plus one account's credentials and settings.

use super::{Db, Page, StoreResult, new_id, now_ms};
use serde::Serialize;

/// Health of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// The last check or call succeeded.
    Connected,
    /// Deleted or deliberately disconnected.
    Disconnected,
    /// The last check or call failed because of the credentials or the account.
    Error,
}

impl ConnectionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Error => "error",
        }
    }
}

/// A stored connection (its secret lives in `secrets`, owned by the connection id).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionRecord {
    /// `conn_…`
    pub id: String,
    /// Workspace.
    pub workspace_id: String,
    /// The installation it runs.
    pub installation_id: String,
    /// Display name.
    pub name: String,
    /// Auth scheme id the credential satisfies, if any.
    pub auth_scheme: Option<String>,
    /// JSON object of variable values.
    pub variables: String,
    /// `connected`, `disconnected` or `error`.
    pub status: String,
    /// Last failure, scrubbed.
    pub last_error: Option<String>,
    /// Unix ms of the last health check.
    pub last_health_check: Option<i64>,
    /// Unix ms of the last action call.
    pub last_used_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

macro_rules! columns {
    () => {
        "id, workspace_id, installation_id, name, auth_scheme, variables, status, last_error, last_health_check, last_used_at, created_at, updated_at"
    };
}

impl Db {
    /// Create a connection row (its secret is written separately, in the same request).
    pub async fn insert_connection(
        &self,
        workspace_id: &str,
        installation_id: &str,
        name: &str,
        auth_scheme: Option<&str>,
        variables: &str,
    ) -> StoreResult<ConnectionRecord> {
        let now = now_ms();
        let record = ConnectionRecord {
            id: new_id("conn"),
            workspace_id: workspace_id.into(),
            installation_id: installation_id.into(),
            name: name.into(),
            auth_scheme: auth_scheme.map(str::to_string),
            variables: variables.into(),
            status: ConnectionStatus::Connected.as_str().into(),
            last_error: None,
            last_health_check: None,
            last_used_at: None,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(concat!(
            "INSERT INTO connections (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.installation_id)
        .bind(&record.name)
        .bind(&record.auth_scheme)
        .bind(&record.variables)
        .bind(&record.status)
        .bind(&record.last_error)
        .bind(record.last_health_check)
        .bind(record.last_used_at)
        .bind(record.created_at)
        .bind(record.updated_at)
        .execute(self.pool())
        .await?;
        Ok(record)
    }

    /// One connection of a workspace.
    pub async fn connection(&self, workspace_id: &str, id: &str) -> StoreResult<Option<ConnectionRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM connections WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Connections of a workspace, a page at a time.
    pub async fn list_connections(
        &self,
        workspace_id: &str,
        after: &str,
        limit: usize,
    ) -> StoreResult<Page<ConnectionRecord>> {
        let rows = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM connections WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(workspace_id)
        .bind(after)
        .bind(limit as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(rows, limit, |r: &ConnectionRecord| r.id.clone()))
    }

    /// Every connection not disconnected, across workspaces (for the health checker).
    pub async fn connections_to_check(&self, checked_before: i64, limit: usize) -> StoreResult<Vec<ConnectionRecord>> {
        Ok(sqlx::query_as(concat!("SELECT ", columns!(), " FROM connections WHERE status <> 'disconnected' AND (last_health_check IS NULL OR last_health_check < $1) ORDER BY id LIMIT $2"))
        .bind(checked_before)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?)
    }

    /// Change name and variables.
    pub async fn update_connection_settings(
        &self,
        workspace_id: &str,
        id: &str,
        name: &str,
        variables: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE connections SET name = $1, variables = $2, updated_at = $3 WHERE workspace_id = $4 AND id = $5",
        )
        .bind(name)
        .bind(variables)
        .bind(now_ms())
        .bind(workspace_id)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Record a health check or call outcome.
    pub async fn set_connection_status(
        &self,
        workspace_id: &str,
        id: &str,
        status: ConnectionStatus,
        last_error: Option<&str>,
        health_checked: bool,
    ) -> StoreResult<()> {
        let now = now_ms();
        let health_check = if health_checked { Some(now) } else { None };
        sqlx::query(
            "UPDATE connections SET status = $1, last_error = $2, last_health_check = COALESCE($3, last_health_check), updated_at = $4 WHERE workspace_id = $5 AND id = $6",
        )
        .bind(status.as_str())
        .bind(last_error)
        .bind(health_check)
        .bind(now)
        .bind(workspace_id)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Record last use of connections (batched by the flusher).
    pub async fn touch_connections(&self, uses: &[(String, i64)]) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        for (id, at) in uses {
            sqlx::query("UPDATE connections SET last_used_at = $1 WHERE id = $2")
                .bind(*at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Delete a connection and wipe its secret, atomically.
    pub async fn delete_connection(&self, workspace_id: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM secrets WHERE workspace_id = $1 AND owner_id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM connection_usage WHERE workspace_id = $1 AND connection_id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM connections WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
