//! `/connectors`: connectors installed in the workspace, pinned by digest, with the manifest
//! an admin reviews: actions and schemas, auth schemes, and permissions (hosts).

use super::AppState;
use super::extract::{ApiQuery, Pagination, Principal};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::store::{AuditEntry, InstallationRecord};
use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use nexum_marketplace::manifest::{HostPattern, Manifest};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An installed connector.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstallationView {
    /// `plg_…`
    pub id: String,
    /// Connector id from the manifest.
    pub connector_id: String,
    /// Pinned version.
    pub version: String,
    /// sha256 of the pinned component.
    pub digest: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// What the connector may do: outbound hosts and where each secret may go.
    pub permissions: Permissions,
    /// Auth schemes (type, injection point, bound hosts, fields to supply).
    #[schema(value_type = Vec<Object>)]
    pub auth: Vec<Value>,
    /// Connection variables.
    #[schema(value_type = Object)]
    pub variables: Value,
    /// Actions with their input and output JSON Schemas.
    #[schema(value_type = Object)]
    pub actions: Value,
    /// Requested limits.
    #[schema(value_type = Object)]
    pub limits: Value,
    /// Unix ms.
    pub created_at: i64,
}

/// A connector's permissions, for review.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Permissions {
    /// Outbound host patterns (templates like `{{ api_base }}` are resolved per connection).
    pub allowed_hosts: Vec<String>,
    /// True when a pattern admits any host (private addresses are still refused).
    pub any_host: bool,
    /// For each auth scheme, the only hosts its secret is sent to.
    pub credential_hosts: BTreeMap<String, Vec<String>>,
}

impl InstallationView {
    fn build(record: &InstallationRecord) -> ApiResult<Self> {
        let m = Manifest::parse(&record.manifest).map_err(|e| ApiError::internal(&e))?;
        let allowed_hosts: Vec<String> = m.allowed_hosts.iter().map(|h| h.as_str().to_string()).collect();
        let any_host = allowed_hosts
            .iter()
            .any(|h| HostPattern::parse(h).is_ok_and(|p| p.is_any_host()));
        let credential_hosts = m
            .auth
            .iter()
            .map(|a| (a.id.clone(), a.hosts.iter().map(|h| h.as_str().to_string()).collect()))
            .collect();
        let auth = m
            .auth
            .iter()
            .map(|a| {
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["fields"] = serde_json::json!(a.secret_fields());
                v
            })
            .collect();
        Ok(Self {
            id: record.id.clone(),
            connector_id: record.connector_id.clone(),
            version: record.version.clone(),
            digest: record.digest.clone(),
            name: m.name.clone(),
            description: m.description.clone(),
            category: m.category.clone(),
            permissions: Permissions {
                allowed_hosts,
                any_host,
                credential_hosts,
            },
            auth,
            variables: serde_json::to_value(&m.variables).unwrap_or_default(),
            actions: serde_json::to_value(&m.actions).unwrap_or_default(),
            limits: serde_json::to_value(&m.limits).unwrap_or_default(),
            created_at: record.created_at,
        })
    }
}

/// A page of installed connectors.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstallationList {
    /// Connectors.
    pub data: Vec<InstallationView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Install a connector from an upload (`connections:write`): multipart fields `manifest`
/// (connector.toml) and `component` (the .wasm). Installing a connector id that is already
/// installed replaces the pinned version.
#[utoipa::path(post, path = "/api/v1/connectors", tag = "connectors",
    request_body(content_type = "multipart/form-data", description = "`manifest` (connector.toml text) and `component` (wasm bytes)"),
    responses((status = 201, body = InstallationView), (status = 422, body = crate::error::Problem)))]
pub async fn install(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    mut form: Multipart,
) -> ApiResult<(StatusCode, Json<InstallationView>)> {
    principal.require(Scope::ConnectionsWrite)?;
    let (mut manifest_text, mut component) = (None, None);
    while let Some(field) = form.next_field().await.map_err(|e| multipart_error(&e))? {
        match field.name() {
            Some("manifest") => manifest_text = Some(field.text().await.map_err(|e| multipart_error(&e))?),
            Some("component") => component = Some(field.bytes().await.map_err(|e| multipart_error(&e))?),
            other => {
                return Err(ApiError::unprocessable(
                    "invalid_upload",
                    format!("unexpected field {other:?}; send `manifest` and `component`"),
                ));
            }
        }
    }
    let manifest_text =
        manifest_text.ok_or_else(|| ApiError::unprocessable("invalid_upload", "the `manifest` field is missing"))?;
    let component =
        component.ok_or_else(|| ApiError::unprocessable("invalid_upload", "the `component` field is missing"))?;
    let manifest =
        Manifest::parse(&manifest_text).map_err(|e| ApiError::unprocessable("invalid_manifest", e.to_string()))?;
    // Compile and check imports before storing anything: a bad component changes nothing.
    let runtime = state.runtime.clone();
    let bytes = component.to_vec();
    let checked = manifest.clone();
    let loaded = tokio::task::spawn_blocking(move || runtime.load(checked, &bytes))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::unprocessable("invalid_component", e.to_string()))?;
    state.db.put_component(&loaded.digest, &component).await?;
    let record = state
        .db
        .upsert_installation(
            &principal.workspace_id,
            &manifest.id,
            &manifest.version.to_string(),
            &loaded.digest,
            &manifest_text,
        )
        .await?;
    state.connections.evict_all();
    state
        .db
        .append_audit(&[AuditEntry::new(
            &principal.workspace_id,
            &principal.key_id,
            "connector.install",
            &record.id,
            format!("{}@{} sha256:{}", manifest.id, manifest.version, loaded.digest),
        )])
        .await?;
    Ok((StatusCode::CREATED, Json(InstallationView::build(&record)?)))
}

fn multipart_error(e: &axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            status,
            "payload_too_large",
            "Payload too large",
            "the upload is larger than the server accepts",
        );
    }
    ApiError::bad_request(format!("malformed multipart upload: {}", e.body_text()))
}

/// List installed connectors (`connections:read`).
#[utoipa::path(get, path = "/api/v1/connectors", tag = "connectors", params(Pagination), responses((status = 200, body = InstallationList)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<InstallationList>> {
    principal.require(Scope::ConnectionsRead)?;
    let p = state
        .db
        .list_installations(&principal.workspace_id, page.after(), page.limit()?)
        .await?;
    let data = p
        .items
        .iter()
        .map(InstallationView::build)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(InstallationList {
        data,
        next_cursor: p.next_cursor,
    }))
}

/// One installed connector (`connections:read`).
#[utoipa::path(get, path = "/api/v1/connectors/{id}", tag = "connectors", responses((status = 200, body = InstallationView), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<InstallationView>> {
    principal.require(Scope::ConnectionsRead)?;
    let record = state
        .db
        .installation(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("connector"))?;
    Ok(Json(InstallationView::build(&record)?))
}

/// Uninstall (`connections:write`); refused while connections use it.
#[utoipa::path(delete, path = "/api/v1/connectors/{id}", tag = "connectors", responses((status = 204), (status = 409, body = crate::error::Problem)))]
pub async fn uninstall(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::ConnectionsWrite)?;
    if state.db.installation(&principal.workspace_id, &id).await?.is_none() {
        return Err(ApiError::not_found("connector"));
    }
    if !state.db.delete_installation(&principal.workspace_id, &id).await? {
        return Err(ApiError::conflict(
            "connections still use this connector; delete them first",
        ));
    }
    state
        .db
        .append_audit(&[AuditEntry::new(
            &principal.workspace_id,
            &principal.key_id,
            "connector.uninstall",
            &id,
            "",
        )])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
