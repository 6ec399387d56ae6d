//! Sealed secrets (see `vault`): only ciphertext, nonce and key id are stored.

use super::{Db, StoreResult, now_ms};

/// A sealed secret row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecretRecord {
    /// `sec_…`; part of the AEAD associated data.
    pub id: String,
    /// The scope: a workspace id, or `operator` for operator-wide OAuth apps; part of the
    /// AEAD associated data.
    pub workspace_id: String,
    /// The row that owns the secret (a connection id).
    pub owner_id: String,
    /// Keyring key that sealed it.
    pub key_id: String,
    /// 12-byte nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
    /// Unix ms.
    pub updated_at: i64,
    /// Which associated data sealed it: 2 binds the owner too, 1 is the older format.
    pub aad_version: i64,
}

/// The associated-data version every new seal uses.
pub const AAD_VERSION: i64 = 2;

macro_rules! columns {
    () => {
        "id, workspace_id, owner_id, key_id, nonce, ciphertext, updated_at, aad_version"
    };
}

impl Db {
    /// Insert or replace the secret owned by `owner_id`.
    pub async fn put_secret(&self, record: &SecretRecord) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        put_secret_in(&mut tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Delete the secret owned by `owner_id`.
    pub async fn delete_secret(&self, workspace_id: &(impl AsRef<str> + ?Sized), owner_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM secrets WHERE workspace_id = $1 AND owner_id = $2")
            .bind(workspace_id.as_ref())
            .bind(owner_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The secret owned by `owner_id` in a workspace.
    pub async fn secret_of(
        &self,
        workspace_id: &(impl AsRef<str> + ?Sized),
        owner_id: &str,
    ) -> StoreResult<Option<SecretRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM secrets WHERE workspace_id = $1 AND owner_id = $2"
        ))
        .bind(workspace_id.as_ref())
        .bind(owner_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Secrets not sealed with `key_id` and the current associated-data version, a batch at
    /// a time (key rotation, and the upgrade of older rows at start).
    /// Rows come in id order after `after` (a cursor, so rows that cannot be re-sealed are
    /// passed over rather than returned again).
    pub async fn secrets_not_sealed_with(
        &self,
        key_id: &str,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<SecretRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM secrets WHERE (key_id <> $1 OR aad_version <> $3) AND id > $4 ORDER BY id LIMIT $2"
        ))
        .bind(key_id)
        .bind(limit as i64)
        .bind(AAD_VERSION)
        .bind(after)
        .fetch_all(self.pool())
        .await?)
    }

    /// Secrets sealed with an older associated-data version.
    pub async fn count_secrets_needing_upgrade(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM secrets WHERE aad_version <> $1")
            .bind(AAD_VERSION)
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// Replace a secret's ciphertext only if it still has the ciphertext we re-encrypted
    /// (a concurrent update wins; rotation retries the row later). The new ciphertext is
    /// sealed with the current associated-data version.
    pub async fn reseal_secret(
        &self,
        old: &SecretRecord,
        key_id: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE secrets SET key_id = $1, nonce = $2, ciphertext = $3, updated_at = $4, aad_version = $8 WHERE id = $5 AND key_id = $6 AND nonce = $7",
        )
        .bind(key_id)
        .bind(nonce)
        .bind(ciphertext)
        .bind(now_ms())
        .bind(&old.id)
        .bind(&old.key_id)
        .bind(&old.nonce)
        .bind(AAD_VERSION)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Test/diagnostic hook: overwrite a secret row's sealed fields verbatim.
    pub async fn overwrite_secret_raw(
        &self,
        id: &str,
        key_id: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> StoreResult<()> {
        sqlx::query("UPDATE secrets SET key_id = $1, nonce = $2, ciphertext = $3 WHERE id = $4")
            .bind(key_id)
            .bind(nonce)
            .bind(ciphertext)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}

/// Insert or replace a secret inside a transaction.
pub(crate) async fn put_secret_in(conn: &mut sqlx::AnyConnection, record: &SecretRecord) -> StoreResult<()> {
    sqlx::query("DELETE FROM secrets WHERE workspace_id = $1 AND owner_id = $2")
        .bind(&record.workspace_id)
        .bind(&record.owner_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(concat!(
        "INSERT INTO secrets (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&record.id)
    .bind(&record.workspace_id)
    .bind(&record.owner_id)
    .bind(&record.key_id)
    .bind(&record.nonce)
    .bind(&record.ciphertext)
    .bind(now_ms())
    .bind(record.aad_version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The secret owned by `owner_id`, read inside a transaction.
pub(crate) async fn secret_in(
    conn: &mut sqlx::AnyConnection,
    workspace_id: &(impl AsRef<str> + ?Sized),
    owner_id: &str,
) -> StoreResult<Option<SecretRecord>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM secrets WHERE workspace_id = $1 AND owner_id = $2"
    ))
    .bind(workspace_id.as_ref())
    .bind(owner_id)
    .fetch_optional(&mut *conn)
    .await?)
}
