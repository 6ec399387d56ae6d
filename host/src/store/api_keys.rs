//! API keys: only a SHA-256 hash and a display prefix are stored.

use super::{Backend, Db, Page, StoreError, StoreResult, now_ms};
use crate::ids::WorkspaceId;

/// A stored API key (never the key itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRecord {
    /// `key_…`
    pub id: String,
    /// Workspace the key acts in.
    pub workspace_id: WorkspaceId,
    /// Member the key belongs to, if any.
    pub member_id: Option<String>,
    /// Display name.
    pub name: String,
    /// First characters of the key, for recognition (`nx_live_AbCd`).
    pub prefix: String,
    /// SHA-256 of the full key.
    pub hash: Vec<u8>,
    /// Space-separated scopes.
    pub scopes: String,
    /// Requests per minute allowed for this key.
    pub rate_limit_per_minute: i64,
    /// Unix ms after which the key is refused.
    pub expires_at: Option<i64>,
    /// Unix ms at which the key was revoked.
    pub revoked_at: Option<i64>,
    /// Unix ms of the last authenticated request (updated in batches).
    pub last_used_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Requests allowed per UTC hour (none = unlimited).
    pub quota_per_hour: Option<i64>,
    /// Requests allowed per UTC day (none = unlimited).
    pub quota_per_day: Option<i64>,
    /// The role of the member the key belongs to (read at authentication only; `None` for
    /// keys of no member, or when not read).
    #[sqlx(default)]
    pub member_role: Option<String>,
}

/// What is needed to store a new key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// `key_…`
    pub id: String,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Member, if any.
    pub member_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// SHA-256 of the key.
    pub hash: Vec<u8>,
    /// Space-separated scopes.
    pub scopes: String,
    /// Requests per minute.
    pub rate_limit_per_minute: i64,
    /// Expiry (unix ms).
    pub expires_at: Option<i64>,
    /// The key that minted it (revoking that key revokes this one too).
    pub parent_id: Option<String>,
    /// Requests per UTC hour (none = unlimited).
    pub quota_per_hour: Option<i64>,
    /// Requests per UTC day (none = unlimited).
    pub quota_per_day: Option<i64>,
}

macro_rules! columns {
    () => {
        "id, workspace_id, member_id, name, prefix, hash, scopes, rate_limit_per_minute, expires_at, revoked_at, last_used_at, created_at, quota_per_hour, quota_per_day"
    };
}

/// A live (unrevoked, unexpired) parent key: workspace `$1`, id `$2`, now `$3`.
macro_rules! live_parent {
    () => {
        "SELECT id FROM api_keys WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)"
    };
}

impl Db {
    /// Store a new key.
    ///
    /// A key with a parent is inserted only while the parent is live (not revoked, not
    /// expired), checked in the same transaction with the parent row share-locked on
    /// PostgreSQL, so a revocation running at the same time either sees the new key or makes
    /// this insert fail with [`StoreError::Changed`]: no child outlives its parent.
    pub async fn insert_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKeyRecord> {
        let created_at = now_ms();
        let mut tx = self.begin_write().await?;
        if let Some(parent) = &key.parent_id {
            let check = match self.backend() {
                Backend::Postgres => concat!(live_parent!(), " FOR SHARE"),
                Backend::Sqlite => live_parent!(),
            };
            let live: Option<(String,)> = sqlx::query_as(check)
                .bind(&key.workspace_id)
                .bind(parent)
                .bind(created_at)
                .fetch_optional(&mut *tx)
                .await?;
            if live.is_none() {
                tx.rollback().await?;
                return Err(StoreError::Changed);
            }
        }
        sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, member_id, name, prefix, hash, scopes, rate_limit_per_minute, expires_at, created_at, parent_id, quota_per_hour, quota_per_day) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&key.id)
        .bind(&key.workspace_id)
        .bind(&key.member_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(&key.scopes)
        .bind(key.rate_limit_per_minute)
        .bind(key.expires_at)
        .bind(created_at)
        .bind(&key.parent_id)
        .bind(key.quota_per_hour)
        .bind(key.quota_per_day)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ApiKeyRecord {
            id: key.id.clone(),
            workspace_id: key.workspace_id.clone(),
            member_id: key.member_id.clone(),
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            hash: key.hash.clone(),
            scopes: key.scopes.clone(),
            rate_limit_per_minute: key.rate_limit_per_minute,
            expires_at: key.expires_at,
            revoked_at: None,
            last_used_at: None,
            created_at,
            quota_per_hour: key.quota_per_hour,
            quota_per_day: key.quota_per_day,
            member_role: None,
        })
    }

    /// The key with this hash, with its member's role (authentication; not workspace-scoped
    /// by design: the key determines the workspace).
    pub async fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ApiKeyRecord>> {
        Ok(
            sqlx::query_as(
                "SELECT k.id, k.workspace_id, k.member_id, k.name, k.prefix, k.hash, k.scopes, k.rate_limit_per_minute, \
                 k.expires_at, k.revoked_at, k.last_used_at, k.created_at, k.quota_per_hour, k.quota_per_day, m.role AS member_role \
                 FROM api_keys k LEFT JOIN members m ON m.id = k.member_id AND m.workspace_id = k.workspace_id WHERE k.hash = $1",
            )
                .bind(hash)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// One key of a workspace.
    pub async fn api_key(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Keys of a workspace, a page at a time.
    pub async fn list_api_keys(
        &self,
        workspace_id: &WorkspaceId,
        after: &str,
        limit: usize,
    ) -> StoreResult<Page<ApiKeyRecord>> {
        let rows = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(workspace_id)
        .bind(after)
        .bind(limit as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(rows, limit, |k: &ApiKeyRecord| k.id.clone()))
    }

    /// Revoke a key and every key minted from it, at any depth, in this workspace. Returns
    /// the ids revoked now (empty when the key is unknown or was revoked already).
    ///
    /// The tree is revoked again until a pass finds nothing new: a child committed by a
    /// concurrent mint (which waited on its parent's row lock) is caught by the next pass,
    /// and any mint after that sees its parent revoked.
    pub async fn revoke_api_key(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Vec<String>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let mut all = Vec::new();
        for _ in 0..64 {
            let revoked: Vec<(String,)> = sqlx::query_as(
                "WITH RECURSIVE tree(id) AS (SELECT id FROM api_keys WHERE workspace_id = $2 AND id = $3 \
                 UNION SELECT k.id FROM api_keys k JOIN tree t ON k.parent_id = t.id WHERE k.workspace_id = $2) \
                 UPDATE api_keys SET revoked_at = $1 WHERE workspace_id = $2 AND revoked_at IS NULL AND id IN (SELECT id FROM tree) RETURNING id",
            )
            .bind(now)
            .bind(workspace_id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            if revoked.is_empty() {
                break;
            }
            all.extend(revoked.into_iter().map(|(k,)| k));
        }
        tx.commit().await?;
        Ok(all)
    }

    /// Record last use of keys (batched by the flusher).
    pub async fn touch_api_keys(&self, uses: &[(String, i64)]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for (id, at) in uses {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(*at)
            .bind(id)
            .bind(*at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
