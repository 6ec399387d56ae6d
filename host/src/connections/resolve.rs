//! From a connection id to something the runtime can call: the pinned, compiled connector
//! and the connection's opened credentials and egress rules. Results are cached for the
//! configured TTL (and evicted on local changes) so an action call usually touches no
//! database row and decrypts nothing.

use super::{ConnectionError, ConnectionRefresher, ConnectionResult};
use crate::ids::{ConnectionId, WorkspaceId};
use crate::runtime::{Connection, LoadedConnector};
use crate::state::AppState;
use crate::store::{ConnectionRecord, InstallationRecord};
use crate::vault::Credential;
use nexum_manifest::Manifest;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A connection ready to execute.
pub struct Resolved {
    /// The stored connection (as of resolution).
    pub record: ConnectionRecord,
    /// Its installation.
    pub installation: InstallationRecord,
    /// The compiled connector.
    pub connector: Arc<LoadedConnector>,
    /// Opened credentials, variables and egress rules.
    pub connection: Arc<Connection>,
}

/// Resolved connections by id, plus compiled connectors by (digest, manifest).
#[derive(Default)]
pub struct ConnectionCache {
    connections: Mutex<HashMap<ConnectionId, (Instant, Arc<Resolved>)>>,
    connectors: Mutex<HashMap<(String, String), Arc<LoadedConnector>>>,
}

impl ConnectionCache {
    /// Forget a connection (after an update or delete on this node).
    pub fn evict(&self, connection_id: &ConnectionId) {
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(connection_id);
    }

    /// Forget every connection (after an install/upgrade or key rotation).
    pub fn evict_all(&self) {
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Resolve `connection_id` in `workspace_id` ([`ConnectionError::NotFound`] when it is not
/// there). Takes the shared state by `Arc` so an OAuth2 connection's 401 renewal hook can
/// reach it later without a back-pointer.
pub async fn resolve(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    connection_id: &ConnectionId,
) -> ConnectionResult<Arc<Resolved>> {
    let ttl = Duration::from_millis(state.config.cache_ttl_ms);
    if let Some((at, resolved)) = state
        .connections
        .connections
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(connection_id)
        && at.elapsed() < ttl
        && &resolved.record.workspace_id == workspace_id
    {
        return Ok(resolved.clone());
    }
    // Variables and secret from one snapshot: a change to both on another node is seen
    // entirely or not at all, so the secret never goes to hosts it was not entered for.
    let (record, secret) = state
        .db
        .connection_with_secret(workspace_id, connection_id)
        .await?
        .ok_or(ConnectionError::NotFound("connection"))?;
    let installation = state
        .db
        .installation(workspace_id, &record.installation_id)
        .await?
        .ok_or(ConnectionError::NotFound("connector installation"))?;
    let connector = load_connector(state, &installation).await?;
    let credentials = open_credentials(state, &record, secret, &connector.manifest)?;
    let variables: BTreeMap<String, String> =
        serde_json::from_str(&record.variables).map_err(|_| ConnectionError::Corrupt("connection variables"))?;
    let uses_oauth = credentials
        .iter()
        .any(|c| matches!(c.scheme.kind, nexum_manifest::AuthKind::OAuth2(_)));
    let granted = state.db.granted_ranges(workspace_id).await?;
    let mut connection = Connection::new(record.id.to_string(), &connector.manifest, &variables, credentials)
        .map_err(|e| ConnectionError::invalid("invalid_connection", e.to_string()))?
        .with_granted_ranges(granted);
    if uses_oauth {
        connection = connection.with_refresher(Arc::new(ConnectionRefresher::new(
            Arc::downgrade(state),
            workspace_id,
            connection_id,
        )));
    }
    let resolved = Arc::new(Resolved {
        record,
        installation,
        connector,
        connection: Arc::new(connection),
    });
    let mut map = state.connections.connections.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() > 50_000 {
        map.clear();
    }
    map.insert(connection_id.clone(), (Instant::now(), resolved.clone()));
    Ok(resolved)
}

/// The compiled connector of an installation (compiled once per digest and manifest).
pub async fn load_connector(
    state: &AppState,
    installation: &InstallationRecord,
) -> ConnectionResult<Arc<LoadedConnector>> {
    let manifest_hash = crate::runtime::digest(installation.manifest.as_bytes());
    let key = (installation.digest.clone(), manifest_hash);
    if let Some(c) = state
        .connections
        .connectors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(c.clone());
    }
    let manifest = Manifest::parse(&installation.manifest).map_err(|e| ConnectionError::Load(Box::new(e)))?;
    let bytes = state
        .db
        .component(&installation.digest)
        .await?
        .ok_or(ConnectionError::Corrupt("connector component"))?;
    let runtime = state.runtime.clone();
    let loaded = tokio::task::spawn_blocking(move || runtime.load(manifest, &bytes))
        .await
        .map_err(|e| ConnectionError::Load(Box::new(e)))?
        .map_err(|e| ConnectionError::Load(Box::new(e)))?;
    state
        .connections
        .connectors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, loaded.clone());
    Ok(loaded)
}

/// The one place a connection's stored secret is decrypted: into credential handles the
/// broker injects from and the guest can only hold.
fn open_credentials(
    state: &AppState,
    record: &ConnectionRecord,
    secret: Option<crate::store::SecretRecord>,
    manifest: &Manifest,
) -> ConnectionResult<Vec<Credential>> {
    let Some(scheme_id) = &record.auth_scheme else {
        return Ok(Vec::new());
    };
    let scheme = manifest.auth_scheme(scheme_id).ok_or_else(|| {
        ConnectionError::invalid(
            "invalid_connection",
            format!("the connector no longer has auth scheme `{scheme_id}`"),
        )
    })?;
    let Some(secret) = secret else {
        return Err(ConnectionError::invalid(
            "missing_credentials",
            "this connection has no stored credentials; update it",
        ));
    };
    let fields = state.vault.open_fields(&secret).map_err(|e| {
        tracing::error!(connection = %record.id, error = %e, "stored credentials could not be opened");
        ConnectionError::CredentialsUnreadable(e)
    })?;
    let label = record.name.clone();
    Credential::from_fields(scheme, &fields.0, label)
        .map(|c| vec![c])
        .map_err(|e| ConnectionError::invalid("invalid_credentials", e.to_string()))
}
