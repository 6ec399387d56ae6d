//! A workspace's webhook endpoints, remembered for a moment: whether any enabled endpoint
//! receives an event type (high-volume events, `action.executed` and `action.failed`, are
//! written to the outbox only when someone receives them, so a workspace without endpoints
//! pays nothing per call), and each delivery's endpoint without a read per delivery. An
//! endpoint change on this node is seen at once; one made on another node within
//! [`REMEMBER_FOR`].

use crate::ids::WorkspaceId;
use crate::store::{Db, EndpointRecord, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a workspace's endpoints are remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(2);

/// Workspaces remembered at most at once.
const MAX_WORKSPACES: usize = 10_000;

/// A workspace's endpoints and when they were read.
type Remembered = (Instant, Arc<Vec<EndpointRecord>>);

/// The remembered endpoints of recently active workspaces.
#[derive(Default)]
pub struct Subscriptions {
    remembered: Mutex<HashMap<WorkspaceId, Remembered>>,
}

impl Subscriptions {
    /// Whether an enabled endpoint of `workspace_id` receives events of `kind`.
    pub async fn wants(&self, db: &Db, workspace_id: &WorkspaceId, kind: &str) -> StoreResult<bool> {
        let opt_in = super::endpoints::OPT_IN_EVENT_TYPES;
        let endpoints = self.endpoints(db, workspace_id).await?;
        Ok(endpoints
            .iter()
            .any(|e| e.disabled_at.is_none() && e.subscribes_to(kind, opt_in)))
    }

    /// Endpoint `id` of `workspace_id` as remembered (at most [`REMEMBER_FOR`] old), or read
    /// now when it is not remembered (it may have been created on another node).
    pub async fn endpoint(&self, db: &Db, workspace_id: &WorkspaceId, id: &str) -> StoreResult<Option<EndpointRecord>> {
        if let Some(found) = self.endpoints(db, workspace_id).await?.iter().find(|e| e.id == id) {
            return Ok(Some(found.clone()));
        }
        db.webhook_endpoint(workspace_id, id).await
    }

    /// A workspace's endpoints, remembered for [`REMEMBER_FOR`].
    async fn endpoints(&self, db: &Db, workspace_id: &WorkspaceId) -> StoreResult<Arc<Vec<EndpointRecord>>> {
        {
            let remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, endpoints)) = remembered.get(workspace_id)
                && at.elapsed() < REMEMBER_FOR
            {
                return Ok(endpoints.clone());
            }
        }
        let endpoints = Arc::new(db.list_webhook_endpoints(workspace_id).await?);
        let mut remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        if remembered.len() >= MAX_WORKSPACES {
            remembered.clear();
        }
        remembered.insert(workspace_id.clone(), (Instant::now(), endpoints.clone()));
        Ok(endpoints)
    }

    /// Forget `workspace_id`'s endpoints (they changed).
    pub fn forget(&self, workspace_id: &WorkspaceId) {
        self.remembered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(workspace_id);
    }
}
