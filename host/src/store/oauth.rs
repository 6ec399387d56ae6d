//! OAuth2 persistence: provider apps, authorization flows (single-use state), and the
//! per-connection refresh lock under which tokens are re-read and rotated.

use super::connections::{columns as connection_columns, set_status_in};
use super::{Backend, ConnectionRecord, ConnectionStatus, Db, SecretRecord, StoreError, StoreResult, new_id, now_ms};
use crate::ids::{ConnectionId, InstallationId, WorkspaceId};

/// Owner of an app every workspace may use.
pub const OPERATOR_OWNER: &str = "operator";

/// A registered OAuth client for one connector (its secret is sealed in `secrets`, owned by
/// the app id).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthAppRecord {
    /// `oap_…`
    pub id: String,
    /// A workspace id, or [`OPERATOR_OWNER`].
    pub owner: String,
    /// The connector it is for (e.g. `slack`).
    pub connector_id: String,
    /// The public client id.
    pub client_id: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Operator apps: the token endpoint origin the client secret may be sent to.
    pub token_origin: Option<String>,
    /// Operator apps: the publisher key id that must have signed the connector.
    pub signer: Option<String>,
}

/// What an operator app is bound to (workspace apps are bound to nothing: the workspace
/// chose to use them with its own connectors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppBinding {
    /// Origin (`https://slack.com`) of the token endpoint.
    pub token_origin: String,
    /// Trusted publisher key id that signs the connector.
    pub signer: String,
}

macro_rules! app_columns {
    () => {
        "id, owner, connector_id, client_id, created_at, updated_at, token_origin, signer"
    };
}

/// An authorization-code flow in progress or finished.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthFlowRecord {
    /// `oaf_…`, shown to the API client to poll.
    pub id: String,
    /// SHA-256 (hex) of the state parameter.
    pub state_hash: String,
    /// Workspace that started it.
    pub workspace_id: WorkspaceId,
    /// API key id that started it.
    pub actor: String,
    /// The installation to connect.
    pub installation_id: InstallationId,
    /// The connection to reconnect, or the one created on success.
    pub connection_id: Option<ConnectionId>,
    /// Name of the connection to create.
    pub name: String,
    /// OAuth2 auth scheme id.
    pub auth_scheme: String,
    /// JSON object of variable values.
    pub variables: String,
    /// Requested scopes, space-separated.
    pub scopes: String,
    /// Where to send the browser afterwards.
    pub return_url: Option<String>,
    /// Keyring key that sealed the PKCE verifier.
    pub verifier_key_id: String,
    /// Nonce of the sealed verifier.
    pub verifier_nonce: Vec<u8>,
    /// Sealed verifier.
    pub verifier_ciphertext: Vec<u8>,
    /// `pending`, `exchanging`, `connected` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms after which the state is refused.
    pub expires_at: i64,
    /// Unix ms.
    pub completed_at: Option<i64>,
    /// The provider's authorization URL without `state` (added when the browser opens
    /// Nexum's link).
    pub authorize_url: Option<String>,
    /// SHA-256 (hex) of the cookie given to the browser that opened the link.
    pub browser_hash: Option<String>,
}

macro_rules! flow_columns {
    () => {
        "id, state_hash, workspace_id, actor, installation_id, connection_id, name, auth_scheme, variables, scopes, return_url, verifier_key_id, verifier_nonce, verifier_ciphertext, status, error, created_at, expires_at, completed_at, authorize_url, browser_hash"
    };
}

/// What presenting a state at the callback found.
#[derive(Debug)]
pub enum FlowClaim {
    /// The flow, now claimed by this callback (no other callback can claim it).
    Claimed(OAuthFlowRecord),
    /// No flow has this state.
    Unknown,
    /// The state is older than its lifetime.
    Expired(OAuthFlowRecord),
    /// The state was already used.
    Used(OAuthFlowRecord),
}

impl Db {
    /// Register or replace the app of `owner` for `connector_id`; the client secret is
    /// written by the caller under the returned id.
    pub async fn put_oauth_app(
        &self,
        owner: &str,
        connector_id: &str,
        client_id: &str,
        binding: Option<&AppBinding>,
    ) -> StoreResult<OAuthAppRecord> {
        let now = now_ms();
        let token_origin = binding.map(|b| b.token_origin.clone());
        let signer = binding.map(|b| b.signer.clone());
        if let Some(existing) = self.oauth_app(owner, connector_id).await? {
            sqlx::query(
                "UPDATE oauth_apps SET client_id = $1, updated_at = $2, token_origin = $3, signer = $4 WHERE id = $5",
            )
            .bind(client_id)
            .bind(now)
            .bind(&token_origin)
            .bind(&signer)
            .bind(&existing.id)
            .execute(self.writer())
            .await?;
            return Ok(OAuthAppRecord {
                client_id: client_id.into(),
                updated_at: now,
                token_origin,
                signer,
                ..existing
            });
        }
        let record = OAuthAppRecord {
            id: new_id("oap"),
            owner: owner.into(),
            connector_id: connector_id.into(),
            client_id: client_id.into(),
            created_at: now,
            updated_at: now,
            token_origin,
            signer,
        };
        sqlx::query(concat!(
            "INSERT INTO oauth_apps (",
            app_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&record.id)
        .bind(&record.owner)
        .bind(&record.connector_id)
        .bind(&record.client_id)
        .bind(record.created_at)
        .bind(record.updated_at)
        .bind(&record.token_origin)
        .bind(&record.signer)
        .execute(self.writer())
        .await?;
        Ok(record)
    }

    /// The app of `owner` for `connector_id`.
    pub async fn oauth_app(&self, owner: &str, connector_id: &str) -> StoreResult<Option<OAuthAppRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            app_columns!(),
            " FROM oauth_apps WHERE owner = $1 AND connector_id = $2"
        ))
        .bind(owner)
        .bind(connector_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Apps a workspace can use: its own and the operator's.
    pub async fn oauth_apps_for(&self, workspace_id: &WorkspaceId) -> StoreResult<Vec<OAuthAppRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            app_columns!(),
            " FROM oauth_apps WHERE owner = $1 OR owner = $2 ORDER BY connector_id, owner"
        ))
        .bind(workspace_id)
        .bind(OPERATOR_OWNER)
        .fetch_all(self.pool())
        .await?)
    }

    /// Delete an app and its sealed secret.
    pub async fn delete_oauth_app(&self, owner: &str, connector_id: &str) -> StoreResult<bool> {
        let Some(app) = self.oauth_app(owner, connector_id).await? else {
            return Ok(false);
        };
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM secrets WHERE owner_id = $1")
            .bind(&app.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM oauth_apps WHERE id = $1")
            .bind(&app.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Store a new flow.
    pub async fn insert_oauth_flow(&self, flow: &OAuthFlowRecord) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO oauth_flows (",
            flow_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        ))
        .bind(&flow.id)
        .bind(&flow.state_hash)
        .bind(&flow.workspace_id)
        .bind(&flow.actor)
        .bind(&flow.installation_id)
        .bind(&flow.connection_id)
        .bind(&flow.name)
        .bind(&flow.auth_scheme)
        .bind(&flow.variables)
        .bind(&flow.scopes)
        .bind(&flow.return_url)
        .bind(&flow.verifier_key_id)
        .bind(&flow.verifier_nonce)
        .bind(&flow.verifier_ciphertext)
        .bind(&flow.status)
        .bind(&flow.error)
        .bind(flow.created_at)
        .bind(flow.expires_at)
        .bind(flow.completed_at)
        .bind(&flow.authorize_url)
        .bind(&flow.browser_hash)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Bind a pending flow to the browser that opened its link (once): returns the flow
    /// when this call bound it.
    pub async fn bind_oauth_flow(&self, state_hash: &str, browser_hash: &str) -> StoreResult<Option<OAuthFlowRecord>> {
        let bound = sqlx::query(
            "UPDATE oauth_flows SET browser_hash = $1 WHERE state_hash = $2 AND status = 'pending' AND browser_hash IS NULL AND expires_at > $3",
        )
        .bind(browser_hash)
        .bind(state_hash)
        .bind(now_ms())
        .execute(self.writer())
        .await?
        .rows_affected()
            == 1;
        if !bound {
            return Ok(None);
        }
        self.oauth_flow_by_state(state_hash).await
    }

    /// A flow by the hash of its state.
    pub async fn oauth_flow_by_state(&self, state_hash: &str) -> StoreResult<Option<OAuthFlowRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            flow_columns!(),
            " FROM oauth_flows WHERE state_hash = $1"
        ))
        .bind(state_hash)
        .fetch_optional(self.pool())
        .await?)
    }

    /// One flow of a workspace.
    pub async fn oauth_flow(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<OAuthFlowRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            flow_columns!(),
            " FROM oauth_flows WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Claim the flow with this state hash: atomically moves a pending, unexpired flow to
    /// `exchanging`, so a state works exactly once even if two callbacks race.
    pub async fn claim_oauth_flow(&self, state_hash: &str) -> StoreResult<FlowClaim> {
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE oauth_flows SET status = 'exchanging' WHERE state_hash = $1 AND status = 'pending' AND expires_at > $2",
        )
        .bind(state_hash)
        .bind(now)
        .execute(self.writer())
        .await?
        .rows_affected()
            == 1;
        let row: Option<OAuthFlowRecord> = sqlx::query_as(concat!(
            "SELECT ",
            flow_columns!(),
            " FROM oauth_flows WHERE state_hash = $1"
        ))
        .bind(state_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            None => FlowClaim::Unknown,
            Some(flow) if claimed => FlowClaim::Claimed(flow),
            Some(flow) if flow.status == "pending" => FlowClaim::Expired(flow),
            Some(flow) => FlowClaim::Used(flow),
        })
    }

    /// Record a flow's outcome.
    pub async fn finish_oauth_flow(
        &self,
        id: &str,
        status: &str,
        connection_id: Option<&str>,
        error: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE oauth_flows SET status = $1, connection_id = COALESCE($2, connection_id), error = $3, completed_at = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(connection_id)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Forget flows that ended or expired before `before`.
    pub async fn expire_oauth_flows(&self, before: i64) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM oauth_flows WHERE expires_at < $1")
            .bind(before)
            .execute(self.writer())
            .await?
            .rows_affected())
    }

    /// Take the refresh lock of a connection. On PostgreSQL this is a row lock
    /// (`SELECT … FOR UPDATE`) held until [`RefreshLock::commit`], so nodes sharing the
    /// database refresh one at a time; SQLite is single-node, so the caller's in-process
    /// lock is enough and this just reads through the pool.
    pub async fn lock_for_refresh(&self, workspace_id: &WorkspaceId, id: &ConnectionId) -> StoreResult<RefreshLock> {
        let tx = match self.backend() {
            Backend::Postgres => {
                let mut tx = self.pool().begin().await?;
                sqlx::query("SELECT id FROM connections WHERE workspace_id = $1 AND id = $2 FOR UPDATE")
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                Some(tx)
            }
            Backend::Sqlite => None,
        };
        Ok(RefreshLock {
            db: self.clone(),
            tx,
            workspace_id: workspace_id.clone(),
            id: id.clone(),
        })
    }
}

/// A held refresh lock: reads see the latest committed token, writes land atomically with
/// the release.
pub struct RefreshLock {
    db: Db,
    tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
    workspace_id: WorkspaceId,
    id: ConnectionId,
}

/// The outcome of a refresh to store under the lock.
pub struct TokenUpdate<'a> {
    /// New sealed token set (`None` keeps the stored one).
    pub secret: Option<&'a SecretRecord>,
    /// New access-token expiry.
    pub token_expires_at: Option<i64>,
    /// Consecutive failures after this attempt.
    pub refresh_failures: i64,
    /// New status and reason.
    pub status: ConnectionStatus,
    /// Reason for a failure status.
    pub last_error: Option<&'a str>,
    /// Also record `connection.refresh_failed` with this payload.
    pub failed_event: Option<serde_json::Value>,
    /// Also change name and variables (an admin's PATCH with new tokens), in the same
    /// transaction; refused with [`StoreError::Changed`] if the variables moved meanwhile.
    pub settings: Option<super::connections::ConnectionSettings<'a>>,
    /// Store the tokens only if the connection's variables are still these (JSON): a
    /// reconnect's tokens were granted for the hosts of the variables its flow started with.
    pub expected_variables: Option<&'a str>,
}

impl RefreshLock {
    async fn conn(&mut self) -> StoreResult<LockConn<'_>> {
        Ok(match &mut self.tx {
            Some(tx) => LockConn::Tx(tx),
            None => LockConn::Pooled(self.db.pool().acquire().await?),
        })
    }

    /// The connection as committed now.
    pub async fn connection(&mut self) -> StoreResult<Option<ConnectionRecord>> {
        let (ws, id) = (self.workspace_id.clone(), self.id.clone());
        let mut conn = self.conn().await?;
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            connection_columns!(),
            " FROM connections WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(ws)
        .bind(id)
        .fetch_optional(conn.get())
        .await?)
    }

    /// The connection's sealed token set as committed now.
    pub async fn secret(&mut self) -> StoreResult<Option<SecretRecord>> {
        let (ws, id) = (self.workspace_id.clone(), self.id.clone());
        let mut conn = self.conn().await?;
        super::secrets::secret_in(conn.get(), &ws, id.as_str()).await
    }

    /// Write the outcome (token set, expiry, failures, status and events) and release.
    pub async fn finish(mut self, update: TokenUpdate<'_>) -> StoreResult<()> {
        let (ws, id) = (self.workspace_id.clone(), self.id.clone());
        let mut tx = match self.tx.take() {
            Some(tx) => tx,
            None => self.db.begin_write().await?,
        };
        // The connection row first (as a delete does), and only if it still exists: a
        // connection deleted meanwhile must not get its tokens back.
        let exists = sqlx::query(
            "UPDATE connections SET token_expires_at = $1, refresh_failures = $2 WHERE workspace_id = $3 AND id = $4",
        )
        .bind(update.token_expires_at)
        .bind(update.refresh_failures)
        .bind(&ws)
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !exists {
            tx.rollback().await?;
            return Ok(());
        }
        if let Some(expected) = update.expected_variables {
            let current: Option<(String,)> =
                sqlx::query_as("SELECT variables FROM connections WHERE workspace_id = $1 AND id = $2")
                    .bind(&ws)
                    .bind(&id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if current.map(|(v,)| v).as_deref() != Some(expected) {
                tx.rollback().await?;
                return Err(StoreError::Changed);
            }
        }
        if let Some(settings) = &update.settings
            && !super::connections::update_settings_in(&mut tx, &ws, &id, settings).await?
        {
            tx.rollback().await?;
            return Err(StoreError::Changed);
        }
        if let Some(secret) = update.secret {
            super::secrets::put_secret_in(&mut tx, secret).await?;
        }
        set_status_in(&mut tx, &ws, &id, |_| Some(update.status), update.last_error, false).await?;
        if let Some(payload) = &update.failed_event {
            super::events::insert_event(&mut tx, &ws, "connection.refresh_failed", payload).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Release without writing.
    pub async fn release(mut self) -> StoreResult<()> {
        if let Some(tx) = self.tx.take() {
            tx.rollback().await?;
        }
        Ok(())
    }
}

enum LockConn<'a> {
    Tx(&'a mut sqlx::Transaction<'static, sqlx::Any>),
    Pooled(sqlx::pool::PoolConnection<sqlx::Any>),
}

impl LockConn<'_> {
    fn get(&mut self) -> &mut sqlx::AnyConnection {
        match self {
            LockConn::Tx(tx) => tx,
            LockConn::Pooled(c) => c,
        }
    }
}
