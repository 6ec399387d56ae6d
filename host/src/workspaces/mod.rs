//! Workspaces (tenants): creating one with its owner and the owner's first API key, the
//! first start's bootstrap workspace, and fair sharing of the host between them.

pub mod fair_share;

use crate::auth::{ALL_SCOPES, Scope, generate_key};
use crate::state::AppState;
use crate::store::{ApiKeyRecord, AuditEntry, NewApiKey, Role, StoreResult, WorkspaceRecord, new_id};

/// A new workspace, its owner's first key record and that key's secret (show it once).
pub struct ProvisionedWorkspace {
    /// The workspace.
    pub workspace: WorkspaceRecord,
    /// The owner's key as stored (hash only).
    pub key: ApiKeyRecord,
    /// The full key.
    pub secret: zeroize::Zeroizing<String>,
}

/// Limits the owner key inherits from the key that creates the workspace, so an expiring
/// or rate-capped key cannot mint a permanent, faster one through a new workspace.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreatorLimits {
    /// The creator's expiry (unix ms), if any.
    pub expires_at: Option<i64>,
    /// The creator's requests per minute, if capped.
    pub rate_limit_per_minute: Option<i64>,
    /// The creator's hourly quota, if any.
    pub quota_per_hour: Option<i64>,
    /// The creator's daily quota, if any.
    pub quota_per_day: Option<i64>,
}

/// Create a workspace, its owner member and an owner API key with `scopes`, never
/// outliving or outpacing `creator`.
pub async fn create_with_owner(
    state: &AppState,
    name: &str,
    owner_email: &str,
    scopes: &[Scope],
    creator: CreatorLimits,
) -> StoreResult<ProvisionedWorkspace> {
    let workspace = state.db.create_workspace(name).await?;
    let owner = state
        .db
        .add_member(&workspace.id, owner_email, "Owner", Role::Owner)
        .await?;
    let generated = generate_key();
    let key = state
        .db
        .insert_api_key(&NewApiKey {
            id: new_id("key"),
            workspace_id: workspace.id.clone(),
            member_id: Some(owner.id.to_string()),
            name: "owner".into(),
            prefix: generated.prefix.clone(),
            hash: generated.hash.clone(),
            scopes: Scope::join(scopes),
            rate_limit_per_minute: creator
                .rate_limit_per_minute
                .unwrap_or(i64::MAX)
                .min(i64::from(state.config.default_key_rate_limit_per_minute)),
            expires_at: creator.expires_at,
            parent_id: None,
            quota_per_hour: creator.quota_per_hour,
            quota_per_day: creator.quota_per_day,
        })
        .await?;
    Ok(ProvisionedWorkspace {
        workspace,
        key,
        secret: generated.secret,
    })
}

/// Scopes of a bootstrap (operator) key: all of them.
pub fn operator_scopes() -> Vec<Scope> {
    ALL_SCOPES.to_vec()
}

/// On first start (no workspace yet): workspace `default` and its operator key (all
/// scopes). Returns the key's secret to print once, or `None` when a workspace exists.
pub async fn bootstrap(state: &AppState) -> StoreResult<Option<zeroize::Zeroizing<String>>> {
    if state.db.count_workspaces().await? > 0 {
        return Ok(None);
    }
    let made = create_with_owner(
        state,
        "default",
        "admin@localhost",
        &operator_scopes(),
        CreatorLimits::default(),
    )
    .await?;
    state
        .db
        .append_audit(&[AuditEntry::new(
            &made.workspace.id,
            "system",
            "workspace.bootstrap",
            made.workspace.id.as_str(),
            "",
        )])
        .await?;
    Ok(Some(made.secret))
}
