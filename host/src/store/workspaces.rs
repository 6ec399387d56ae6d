//! Workspaces and their members.

use super::{Db, StoreResult, now_ms};
use crate::ids::{MemberId, WorkspaceId};
use serde::{Deserialize, Serialize};

/// A workspace: the tenant boundary.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WorkspaceRecord {
    /// `ws_…`
    pub id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A member's role, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Full control, including deleting the workspace.
    Owner,
    /// Manage connectors, connections, keys and members.
    Admin,
    /// Use connections and run actions.
    Member,
    /// Read only.
    Viewer,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "member" => Role::Member,
            "viewer" => Role::Viewer,
            _ => return None,
        })
    }
}

/// A workspace member.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MemberRecord {
    /// `mem_…`
    pub id: MemberId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Email address (unique per workspace).
    pub email: String,
    /// Display name.
    pub name: String,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
    /// Unix ms.
    pub created_at: i64,
}

impl Db {
    /// Create a workspace.
    pub async fn create_workspace(&self, name: &str) -> StoreResult<WorkspaceRecord> {
        let ws = WorkspaceRecord {
            id: WorkspaceId::generate(),
            name: name.to_string(),
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&ws.id)
            .bind(&ws.name)
            .bind(ws.created_at)
            .execute(self.writer())
            .await?;
        Ok(ws)
    }

    /// A workspace by id.
    pub async fn workspace(&self, id: &WorkspaceId) -> StoreResult<Option<WorkspaceRecord>> {
        Ok(
            sqlx::query_as("SELECT id, name, created_at FROM workspaces WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Number of workspaces (bootstrap runs when it is zero).
    pub async fn count_workspaces(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM workspaces")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// Add a member.
    pub async fn add_member(
        &self,
        workspace_id: &WorkspaceId,
        email: &str,
        name: &str,
        role: Role,
    ) -> StoreResult<MemberRecord> {
        let m = MemberRecord {
            id: MemberId::generate(),
            workspace_id: workspace_id.clone(),
            email: email.to_string(),
            name: name.to_string(),
            role: role.as_str().to_string(),
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO members (id, workspace_id, email, name, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&m.id)
        .bind(&m.workspace_id)
        .bind(&m.email)
        .bind(&m.name)
        .bind(&m.role)
        .bind(m.created_at)
        .execute(self.writer())
        .await?;
        Ok(m)
    }

    /// Members of a workspace, a page at a time.
    pub async fn list_members(
        &self,
        workspace_id: &WorkspaceId,
        after: &str,
        limit: usize,
    ) -> StoreResult<super::Page<MemberRecord>> {
        let rows: Vec<MemberRecord> = sqlx::query_as(
            "SELECT id, workspace_id, email, name, role, created_at FROM members WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(workspace_id)
        .bind(after)
        .bind(limit as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(super::Page::from_rows(rows, limit, |m| m.id.to_string()))
    }

    /// One member.
    pub async fn member(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<MemberRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, workspace_id, email, name, role, created_at FROM members WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Change a member's role.
    pub async fn set_member_role(&self, workspace_id: &WorkspaceId, id: &str, role: Role) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE members SET role = $1 WHERE workspace_id = $2 AND id = $3")
            .bind(role.as_str())
            .bind(workspace_id)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Remove a member and revoke their keys; returns the revoked key ids, or `None` when
    /// the member is not in this workspace.
    pub async fn remove_member(&self, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<Vec<String>>> {
        // The member's keys are revoked in the same transaction: left alone, the foreign key
        // would turn them into workspace keys that outlive the person who held them.
        let mut tx = self.begin_write().await?;
        let keys: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM api_keys WHERE workspace_id = $1 AND member_id = $2 AND revoked_at IS NULL")
                .bind(workspace_id)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE workspace_id = $2 AND member_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM members WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(keys.into_iter().map(|(k,)| k).collect()))
    }
}

impl Db {
    /// Non-public ranges the operator granted `workspace_id` (unparsable entries, which the
    /// API never writes, are skipped).
    pub async fn granted_ranges(&self, workspace_id: &WorkspaceId) -> StoreResult<Vec<ipnet::IpNet>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT ranges FROM workspace_ranges WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|(r,)| r.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_default())
    }

    /// Replace the ranges granted to `workspace_id` (empty removes the grant).
    pub async fn set_granted_ranges(&self, workspace_id: &WorkspaceId, ranges: &[ipnet::IpNet]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM workspace_ranges WHERE workspace_id = $1")
            .bind(workspace_id)
            .execute(&mut *tx)
            .await?;
        if !ranges.is_empty() {
            let text = ranges.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
            sqlx::query("INSERT INTO workspace_ranges (workspace_id, ranges, updated_at) VALUES ($1, $2, $3)")
                .bind(workspace_id)
                .bind(text)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
