//! Fair sharing between tenants: each workspace may hold at most a fixed number of a shared
//! resource's slots at once (connector calls, token refreshes), so one workspace hammering
//! a slow upstream cannot take what every other workspace needs.

use crate::ids::WorkspaceId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-workspace slots of one shared resource.
pub struct FairShare {
    per_workspace: usize,
    semaphores: Mutex<HashMap<WorkspaceId, Arc<Semaphore>>>,
}

/// A slot held by one workspace; released on drop.
pub struct WorkspaceSlot {
    _permit: OwnedSemaphorePermit,
}

/// Every slot of the workspace is taken.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("this workspace already has {limit} of them running; retry when one finishes")]
pub struct WorkspaceBusy {
    /// The per-workspace limit.
    pub limit: usize,
}

impl FairShare {
    /// At most `per_workspace` slots per workspace (at least one).
    pub fn new(per_workspace: usize) -> Self {
        Self {
            per_workspace: per_workspace.max(1),
            semaphores: Mutex::new(HashMap::new()),
        }
    }

    /// The per-workspace limit.
    pub fn limit(&self) -> usize {
        self.per_workspace
    }

    fn semaphore(&self, workspace_id: &WorkspaceId) -> Arc<Semaphore> {
        let mut map = self.semaphores.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            // Forget idle workspaces (their semaphores are full and unshared).
            map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.per_workspace);
        }
        map.entry(workspace_id.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_workspace)))
            .clone()
    }

    /// Take a slot now, or say the workspace is busy.
    pub fn try_acquire(&self, workspace_id: &WorkspaceId) -> Result<WorkspaceSlot, WorkspaceBusy> {
        self.semaphore(workspace_id)
            .try_acquire_owned()
            .map(|permit| WorkspaceSlot { _permit: permit })
            .map_err(|_| WorkspaceBusy {
                limit: self.per_workspace,
            })
    }

    /// Wait up to `patience` for a slot (only this workspace's own work is ahead in the
    /// queue), then say the workspace is busy: a burst is smoothed, a flood is turned away.
    pub async fn acquire_within(
        &self,
        workspace_id: &WorkspaceId,
        patience: std::time::Duration,
    ) -> Result<WorkspaceSlot, WorkspaceBusy> {
        let busy = WorkspaceBusy {
            limit: self.per_workspace,
        };
        match tokio::time::timeout(patience, self.acquire(workspace_id)).await {
            Ok(Some(slot)) => Ok(slot),
            _ => Err(busy),
        }
    }

    /// Wait for a slot (only this workspace's own work is ahead in the queue).
    pub async fn acquire(&self, workspace_id: &WorkspaceId) -> Option<WorkspaceSlot> {
        self.semaphore(workspace_id)
            .acquire_owned()
            .await
            .ok()
            .map(|permit| WorkspaceSlot { _permit: permit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_workspace_does_not_take_anothers_slots() {
        let share = FairShare::new(2);
        let (a, b) = (WorkspaceId::generate(), WorkspaceId::generate());
        let first = share.try_acquire(&a).expect("first");
        let _second = share.try_acquire(&a).expect("second");
        assert_eq!(share.try_acquire(&a).err().map(|e| e.limit), Some(2));
        assert!(share.try_acquire(&b).is_ok(), "another workspace still gets one");
        drop(first);
        assert!(share.try_acquire(&a).is_ok(), "a released slot is reusable");
    }
}
