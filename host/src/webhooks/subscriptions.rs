//! Whether any enabled endpoint of a workspace receives an event type, remembered for a
//! moment. High-volume events (`action.executed`, `action.failed`) are written to the
//! outbox only when someone receives them, so a workspace without endpoints pays nothing
//! per call. An endpoint change on this node is seen at once; one made on another node
//! within [`REMEMBER_FOR`].

use crate::ids::WorkspaceId;
use crate::store::{Db, EndpointRecord, StoreResult};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a workspace's endpoints are remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(2);

/// Workspaces remembered at most at once.
const MAX_WORKSPACES: usize = 10_000;

/// The remembered subscriptions of recently active workspaces.
#[derive(Default)]
pub struct Subscriptions {
    remembered: Mutex<HashMap<WorkspaceId, (Instant, Vec<EndpointRecord>)>>,
}

impl Subscriptions {
    /// Whether an enabled endpoint of `workspace_id` receives events of `kind`.
    pub async fn wants(&self, db: &Db, workspace_id: &WorkspaceId, kind: &str) -> StoreResult<bool> {
        let opt_in = super::endpoints::OPT_IN_EVENT_TYPES;
        {
            let remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, endpoints)) = remembered.get(workspace_id)
                && at.elapsed() < REMEMBER_FOR
            {
                return Ok(endpoints.iter().any(|e| e.subscribes_to(kind, opt_in)));
            }
        }
        let endpoints: Vec<EndpointRecord> = db
            .list_webhook_endpoints(workspace_id)
            .await?
            .into_iter()
            .filter(|e| e.disabled_at.is_none())
            .collect();
        let wanted = endpoints.iter().any(|e| e.subscribes_to(kind, opt_in));
        let mut remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        if remembered.len() >= MAX_WORKSPACES {
            remembered.clear();
        }
        remembered.insert(workspace_id.clone(), (Instant::now(), endpoints));
        Ok(wanted)
    }

    /// Forget `workspace_id`'s endpoints (they changed).
    pub fn forget(&self, workspace_id: &WorkspaceId) {
        self.remembered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(workspace_id);
    }
}
