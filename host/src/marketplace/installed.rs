//! Changing what a workspace has pinned: rolling an installation back (or forward) to a
//! version it had before, and uninstalling it.

use super::{InstallError, InstallResult, PermissionReview};
use crate::ids::{InstallationId, WorkspaceId};
use crate::state::AppState;
use crate::store::{AuditEntry, InstallationRecord, NewInstallation};
use nexum_marketplace::permissions::Permissions;

/// Pin installation `id` of `workspace_id` to `version`, one it had before, as `actor`. The
/// old version must still pass today's trust policy, and whatever it asks for beyond the
/// current version needs `accept` equal to its permissions.
pub async fn rollback(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    id: &InstallationId,
    version: &str,
    accept: Option<Permissions>,
) -> InstallResult<InstallationRecord> {
    let current = state
        .db
        .installation(workspace_id, id)
        .await?
        .ok_or(InstallError::NotFound("connector"))?;
    let history = state.db.installation_history(workspace_id, id).await?;
    let target = history
        .into_iter()
        .find(|h| h.version == version)
        .ok_or_else(|| InstallError::UnknownVersion(version.to_string()))?;
    // The old version must still pass today's trust policy…
    if !state.trust.trusts(&target.signer) {
        return Err(InstallError::SignerNoLongerTrusted {
            version: target.version,
            signer: target.signer,
        });
    }
    // …and anything it asks for beyond the current version needs acceptance again.
    let target_permissions: Permissions = serde_json::from_str(&target.permissions).map_err(InstallError::Json)?;
    if let Ok(current_permissions) = serde_json::from_str::<Permissions>(&current.permissions) {
        let diff = target_permissions.diff_from(&current_permissions);
        if diff.widens() && accept.as_ref() != Some(&target_permissions) {
            return Err(InstallError::RollbackWidensPermissions(Box::new(PermissionReview {
                permissions: target_permissions,
                diff: Some(diff),
            })));
        }
    }
    let record = state
        .db
        .upsert_installation(
            workspace_id,
            &NewInstallation {
                connector_id: &current.connector_id,
                version: &target.version,
                digest: &target.digest,
                manifest: &target.manifest,
                signer: &target.signer,
                permissions: &target.permissions,
                source: &target.source,
            },
        )
        .await?;
    state.connections.evict_all();
    state
        .db
        .append_audit(&[AuditEntry::new(
            workspace_id,
            actor,
            "connector.rollback",
            id.as_str(),
            format!("{} → {}", current.version, target.version),
        )])
        .await?;
    Ok(record)
}

/// Uninstall installation `id` of `workspace_id`, as `actor`; refused while connections use it.
pub async fn uninstall(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    id: &InstallationId,
) -> InstallResult<()> {
    if state.db.installation(workspace_id, id).await?.is_none() {
        return Err(InstallError::NotFound("connector"));
    }
    if !state.db.delete_installation(workspace_id, id).await? {
        return Err(InstallError::InUse);
    }
    state
        .db
        .append_audit(&[AuditEntry::new(
            workspace_id,
            actor,
            "connector.uninstall",
            id.as_str(),
            "",
        )])
        .await?;
    Ok(())
}
