//! Connections: an installed connector plus one account's credentials and settings.

use super::{Db, Page, StoreResult, now_ms};
use crate::ids::{ConnectionId, InstallationId, WorkspaceId};
use serde::Serialize;

/// Health of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// The last check or call succeeded.
    Connected,
    /// Deleted or deliberately disconnected.
    Disconnected,
    /// The last check, call or token refresh failed because of the credentials or the account.
    Error,
    /// OAuth2 refresh failed too many times in a row; automatic refresh stopped until the
    /// account is reconnected or a refresh is forced.
    RefreshExhausted,
    /// The OAuth2 access token expired and there is no way to refresh it: reconnect.
    Expired,
}

impl ConnectionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Error => "error",
            Self::RefreshExhausted => "refresh_exhausted",
            Self::Expired => "expired",
        }
    }
}

impl std::str::FromStr for ConnectionStatus {
    type Err = super::StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "connected" => Self::Connected,
            "disconnected" => Self::Disconnected,
            "error" => Self::Error,
            "refresh_exhausted" => Self::RefreshExhausted,
            "expired" => Self::Expired,
            _ => return Err(super::StoreError::Corrupt("connections.status")),
        })
    }
}

super::text_column!(ConnectionStatus);

/// A stored connection (its secret lives in `secrets`, owned by the connection id).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionRecord {
    /// `conn_…`
    pub id: ConnectionId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The installation it runs.
    pub installation_id: InstallationId,
    /// Display name.
    pub name: String,
    /// Auth scheme id the credential satisfies, if any.
    pub auth_scheme: Option<String>,
    /// JSON object of variable values.
    pub variables: String,
    /// Health, as the status rules in `connections::status` last decided it.
    pub status: ConnectionStatus,
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
    /// When the OAuth2 access token expires (unix ms), if it does.
    pub token_expires_at: Option<i64>,
    /// Consecutive failed OAuth2 refreshes.
    pub refresh_failures: i64,
}

/// How long the refresh sweep leaves a connection in `error` alone.
pub const ERROR_RETRY_BACKOFF_MS: i64 = 5 * 60_000;

macro_rules! columns {
    () => {
        "id, workspace_id, installation_id, name, auth_scheme, variables, status, last_error, last_health_check, last_used_at, created_at, updated_at, token_expires_at, refresh_failures"
    };
}
pub(crate) use columns;

impl Db {
    /// Create a connection row (its secret is written separately, in the same request).
    pub async fn insert_connection(
        &self,
        workspace_id: &WorkspaceId,
        installation_id: &InstallationId,
        name: &str,
        auth_scheme: Option<&str>,
        variables: &str,
    ) -> StoreResult<ConnectionRecord> {
        let record = ConnectionRecord::new(workspace_id, installation_id, name, auth_scheme, variables);
        let mut tx = self.begin_write().await?;
        insert_connection_row(&mut tx, &record).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(record)
    }

    /// Create a connection and its sealed secret in one transaction: either both exist or
    /// neither does.
    pub async fn insert_connection_with_secret(
        &self,
        record: &ConnectionRecord,
        secret: &super::SecretRecord,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_connection_row(&mut tx, record).await?;
        super::secrets::put_secret_in(&mut tx, secret).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }

    /// One connection by id alone (background jobs; never on a tenant request path).
    pub async fn connection_any_workspace(&self, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>> {
        Ok(
            sqlx::query_as(concat!("SELECT ", columns!(), " FROM connections WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// OAuth2 connections whose token expires before `before` and that may still be
    /// refreshed automatically (for the refresh sweep). Connections whose last refresh
    /// failed wait [`ERROR_RETRY_BACKOFF_MS`] before the sweep tries again, so a provider
    /// outage cannot pin the sweep to the same rows.
    ///
    /// Workspaces take turns: each workspace's most urgent connection comes first, then each
    /// one's second, and so on, so no workspace fills the batch. An expiry in the past (an
    /// imported token may claim any) counts as now, so claiming one does not jump the queue.
    pub async fn connections_expiring(&self, before: i64, limit: usize) -> StoreResult<Vec<ConnectionRecord>> {
        let now = now_ms();
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM (SELECT ",
            columns!(),
            ", ROW_NUMBER() OVER (PARTITION BY workspace_id ORDER BY CASE WHEN token_expires_at < $4 THEN $4 ELSE token_expires_at END, id) AS turn",
            " FROM connections WHERE token_expires_at IS NOT NULL AND token_expires_at < $1 AND status NOT IN ('disconnected', 'refresh_exhausted', 'expired') AND NOT (status = 'error' AND updated_at > $2)) due",
            " ORDER BY turn, CASE WHEN token_expires_at < $4 THEN $4 ELSE token_expires_at END, id LIMIT $3"
        ))
        .bind(before)
        .bind(now.saturating_sub(ERROR_RETRY_BACKOFF_MS))
        .bind(limit as i64)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        Ok(decode_skipping_corrupt(&rows))
    }
}

impl ConnectionRecord {
    /// A new, connected connection.
    pub fn new(
        workspace_id: &WorkspaceId,
        installation_id: &InstallationId,
        name: &str,
        auth_scheme: Option<&str>,
        variables: &str,
    ) -> Self {
        let now = now_ms();
        Self {
            id: ConnectionId::generate(),
            workspace_id: workspace_id.clone(),
            installation_id: installation_id.clone(),
            name: name.into(),
            auth_scheme: auth_scheme.map(str::to_string),
            variables: variables.into(),
            status: ConnectionStatus::Connected,
            last_error: None,
            last_health_check: None,
            last_used_at: None,
            created_at: now,
            updated_at: now,
            token_expires_at: None,
            refresh_failures: 0,
        }
    }
}

async fn insert_connection_row(conn: &mut sqlx::AnyConnection, record: &ConnectionRecord) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO connections (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(&record.id)
    .bind(&record.workspace_id)
    .bind(&record.installation_id)
    .bind(&record.name)
    .bind(&record.auth_scheme)
    .bind(&record.variables)
    .bind(record.status)
    .bind(&record.last_error)
    .bind(record.last_health_check)
    .bind(record.last_used_at)
    .bind(record.created_at)
    .bind(record.updated_at)
    .bind(record.token_expires_at)
    .bind(record.refresh_failures)
    .execute(&mut *conn)
    .await?;
    // In the same transaction as the row: the event exists exactly when the connection does.
    super::events::insert_event(
        conn,
        &record.workspace_id,
        "connection.created",
        &serde_json::json!({
            "connection_id": record.id,
            "installation_id": record.installation_id,
            "name": record.name,
            "status": record.status,
        }),
    )
    .await?;
    Ok(())
}

impl Db {
    /// One connection of a workspace.
    pub async fn connection(
        &self,
        workspace_id: &WorkspaceId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionRecord>> {
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
        workspace_id: &WorkspaceId,
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
        Ok(Page::from_rows(rows, limit, |r: &ConnectionRecord| r.id.to_string()))
    }

    /// Every connection not disconnected, across workspaces (for the health checker).
    pub async fn connections_to_check(&self, checked_before: i64, limit: usize) -> StoreResult<Vec<ConnectionRecord>> {
        let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM connections WHERE status <> 'disconnected' AND (last_health_check IS NULL OR last_health_check < $1) ORDER BY id LIMIT $2"))
        .bind(checked_before)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        Ok(decode_skipping_corrupt(&rows))
    }

    /// Change name and variables, and the secret with them, in one transaction, only if the
    /// variables are still `settings.expected_variables` (compare-and-set: a change decided
    /// against variables that another writer has since replaced is refused, so no secret is
    /// ever paired with hosts it was not entered for). Returns whether it was written.
    pub async fn update_connection_settings(
        &self,
        workspace_id: &WorkspaceId,
        id: &ConnectionId,
        settings: &ConnectionSettings<'_>,
        secret: Option<&super::SecretRecord>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if !update_settings_in(&mut tx, workspace_id, id, settings).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(secret) = secret {
            super::secrets::put_secret_in(&mut tx, secret).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A connection and its sealed secret as of one moment: read in one transaction
    /// (repeatable read on PostgreSQL), so variables and secret always belong together even
    /// while another node changes both.
    pub async fn connection_with_secret(
        &self,
        workspace_id: &WorkspaceId,
        id: &ConnectionId,
    ) -> StoreResult<Option<(ConnectionRecord, Option<super::SecretRecord>)>> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == super::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let record: Option<ConnectionRecord> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM connections WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(record) = record else {
            tx.rollback().await?;
            return Ok(None);
        };
        let secret = super::secrets::secret_in(&mut tx, workspace_id, id.as_str()).await?;
        tx.commit().await?;
        Ok(Some((record, secret)))
    }

    /// Record a health check or call outcome. `decide` gets the stored status (read in the
    /// same transaction) and returns the next one, or `None` to leave status and last error
    /// as they are. A change of status is written to the event outbox
    /// (`connection.status_changed`) in the same transaction. Returns the status stored
    /// afterwards (`None` when the connection is gone).
    pub async fn set_connection_status(
        &self,
        workspace_id: &WorkspaceId,
        id: &ConnectionId,
        decide: impl FnOnce(ConnectionStatus) -> Option<ConnectionStatus> + Send,
        last_error: Option<&str>,
        health_checked: bool,
    ) -> StoreResult<Option<ConnectionStatus>> {
        let mut tx = self.begin_write().await?;
        let stored = set_status_in(&mut tx, workspace_id, id, decide, last_error, health_checked).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(stored)
    }

    /// Record last use of connections (batched by the flusher).
    pub async fn touch_connections(&self, uses: &[(String, i64)]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
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
    pub async fn delete_connection(&self, workspace_id: &WorkspaceId, id: &ConnectionId) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        // The connection row first: the same lock order as a token refresh (row, then secret).
        let done = sqlx::query("DELETE FROM connections WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
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
        sqlx::query("DELETE FROM connection_usage_hourly WHERE workspace_id = $1 AND connection_id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected() == 1;
        if deleted {
            super::events::insert_event(
                &mut tx,
                workspace_id,
                "connection.deleted",
                &serde_json::json!({ "connection_id": id }),
            )
            .await?;
        }
        tx.commit().await?;
        self.events_committed();
        Ok(deleted)
    }
}

/// Set a connection's status inside a transaction, emitting `connection.status_changed` when
/// it changes. `decide` maps the stored status to the next (`None`: leave status and error
/// alone, only note the health check). Returns the status stored afterwards, `None` when the
/// connection does not exist.
pub(crate) async fn set_status_in(
    conn: &mut sqlx::AnyConnection,
    workspace_id: &WorkspaceId,
    id: &ConnectionId,
    decide: impl FnOnce(ConnectionStatus) -> Option<ConnectionStatus>,
    last_error: Option<&str>,
    health_checked: bool,
) -> StoreResult<Option<ConnectionStatus>> {
    let now = now_ms();
    let previous: Option<(ConnectionStatus,)> =
        sqlx::query_as("SELECT status FROM connections WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((previous,)) = previous else {
        return Ok(None);
    };
    let Some(status) = decide(previous) else {
        if health_checked {
            sqlx::query("UPDATE connections SET last_health_check = $1 WHERE workspace_id = $2 AND id = $3")
                .bind(now)
                .bind(workspace_id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        return Ok(Some(previous));
    };
    let health_check = if health_checked { Some(now) } else { None };
    sqlx::query(
        "UPDATE connections SET status = $1, last_error = $2, last_health_check = COALESCE($3, last_health_check), updated_at = $4 WHERE workspace_id = $5 AND id = $6",
    )
    .bind(status)
    .bind(last_error)
    .bind(health_check)
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if previous != status {
        super::events::insert_event(
            conn,
            workspace_id,
            "connection.status_changed",
            &serde_json::json!({
                "connection_id": id,
                "from": previous,
                "to": status,
                "reason": last_error,
            }),
        )
        .await?;
    }
    Ok(Some(status))
}

/// Decode the rows of a query that spans every workspace (the background jobs' queries),
/// skipping a row that does not decode (a bad id or status) with a warning, so one tenant's
/// corrupt row cannot stop health checks or token refreshes for every other tenant.
fn decode_skipping_corrupt(rows: &[sqlx::any::AnyRow]) -> Vec<ConnectionRecord> {
    use sqlx::FromRow;
    rows.iter()
        .filter_map(|row| match ConnectionRecord::from_row(row) {
            Ok(record) => Some(record),
            Err(e) => {
                let id: Option<String> = sqlx::Row::try_get(row, "id").ok();
                tracing::warn!(connection = id.as_deref().unwrap_or("?"), error = %e, "skipping a connection row that does not decode");
                None
            }
        })
        .collect()
}

/// A connection's new name and variables, and the variables the change was decided against.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings<'a> {
    /// New display name.
    pub name: &'a str,
    /// New variables (JSON object).
    pub variables: &'a str,
    /// The stored variables (JSON) the caller read and checked the change against.
    pub expected_variables: &'a str,
}

/// Write name and variables inside a transaction, if the variables are still the expected
/// ones. Returns whether the row was updated.
pub(crate) async fn update_settings_in(
    conn: &mut sqlx::AnyConnection,
    workspace_id: &WorkspaceId,
    id: &ConnectionId,
    settings: &ConnectionSettings<'_>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE connections SET name = $1, variables = $2, updated_at = $3 WHERE workspace_id = $4 AND id = $5 AND variables = $6",
    )
    .bind(settings.name)
    .bind(settings.variables)
    .bind(now_ms())
    .bind(workspace_id)
    .bind(id)
    .bind(settings.expected_variables)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
