//! `/connectors`: connectors installed in the workspace, pinned by digest, with the manifest
//! an admin reviews: actions and schemas, auth schemes, and permissions (hosts). Installing,
//! rolling back and uninstalling are [`crate::marketplace`]'s; this file reads the upload and
//! shapes the answers.

use super::AppState;
use super::extract::{ApiJson, ApiMultipart, ApiPath, ApiQuery, Pagination, Principal, path_id};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::ids::InstallationId;
use crate::marketplace::{self, InstallRequest};
use crate::store::InstallationRecord;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexum_manifest::{HostPattern, Manifest};
use nexum_marketplace::bundle::Bundle;
use nexum_marketplace::permissions::Permissions;
use serde::{Deserialize, Serialize};
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
    pub permissions: PermissionSummary,
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
    /// Key id that signed the installed bundle, or `unsigned`.
    pub signer: String,
    /// `upload` or `marketplace:<namespace>/<name>`.
    pub source: String,
    /// The permissions the admin accepted.
    #[schema(value_type = Object)]
    pub accepted_permissions: Value,
    /// Unix ms.
    pub created_at: i64,
}

/// A connector's permissions, for review.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PermissionSummary {
    /// Outbound host patterns (templates like `{{ api_base }}` are resolved per connection).
    pub allowed_hosts: Vec<String>,
    /// True when a pattern admits any host (private addresses are still refused).
    pub any_host: bool,
    /// For each auth scheme, the only hosts its secret is sent to.
    pub credential_hosts: BTreeMap<String, Vec<String>>,
}

impl InstallationView {
    /// Build the view of an installation from its stored manifest.
    pub fn build(record: &InstallationRecord) -> ApiResult<Self> {
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
            id: record.id.to_string(),
            connector_id: record.connector_id.clone(),
            version: record.version.clone(),
            digest: record.digest.clone(),
            name: m.name.clone(),
            description: m.description.clone(),
            category: m.category.clone(),
            permissions: PermissionSummary {
                allowed_hosts,
                any_host,
                credential_hosts,
            },
            auth,
            variables: serde_json::to_value(&m.variables).unwrap_or_default(),
            actions: serde_json::to_value(&m.actions).unwrap_or_default(),
            limits: serde_json::to_value(&m.limits).unwrap_or_default(),
            signer: record.signer.clone(),
            source: record.source.clone(),
            accepted_permissions: serde_json::from_str(&record.permissions).unwrap_or_default(),
            created_at: record.created_at,
        })
    }
}

/// `{id}` of an installed connector.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InstallationPath {
    /// `plg_…`
    pub id: String,
}

/// A page of installed connectors.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstallationList {
    /// Connectors.
    pub data: Vec<InstallationView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Install a connector (`connections:write`) from a multipart upload:
/// - `bundle`: a `.nxb` bundle, verified against this host's trust policy; or
///   `manifest` + `component`: raw files, accepted only with the operator's unsigned dev flag;
/// - `accept_permissions`: the permissions JSON the admin accepts (as shown by
///   `nexum connector inspect` or a refused request); it must equal the connector's.
///
/// Installing a connector id that is already installed is an upgrade (or downgrade); when it
/// widens permissions the refusal (409 `permissions_widened`) shows the diff.
#[utoipa::path(post, path = "/api/v1/connectors", tag = "connectors", operation_id = "install_connector",
    request_body(content = InstallUpload, content_type = "multipart/form-data", description = "`bundle` (or `manifest` + `component`) and `accept_permissions`"),
    responses((status = 201, body = InstallationView),
        (status = 404, description = "The installation to upgrade is gone", body = crate::error::Problem),
        (status = 409, description = "Widens the permissions of the installed version (`permissions_widened`, with the diff), comes from another publisher (`publisher_changed`), or conflicts with another install", body = crate::error::Problem),
        (status = 422, description = "Not a valid bundle or component, unsigned or untrusted signature, permissions not accepted (`permissions_not_accepted`, with the permissions to accept), or an unexpected field", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn install(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiMultipart(mut form): ApiMultipart,
) -> ApiResult<(StatusCode, Json<InstallationView>)> {
    principal.require(Scope::ConnectionsWrite)?;
    let (mut manifest_text, mut component, mut bundle, mut accept) = (None, None, None, None);
    let mut replace_publisher = false;
    while let Some(field) = form.next_field().await.map_err(|e| multipart_error(&e))? {
        match field.name() {
            Some("manifest") => manifest_text = Some(field.text().await.map_err(|e| multipart_error(&e))?),
            Some("component") => component = Some(field.bytes().await.map_err(|e| multipart_error(&e))?.to_vec()),
            Some("bundle") => bundle = Some(field.bytes().await.map_err(|e| multipart_error(&e))?.to_vec()),
            Some("accept_permissions") => accept = Some(field.text().await.map_err(|e| multipart_error(&e))?),
            Some("replace_publisher") => {
                replace_publisher = field.text().await.map_err(|e| multipart_error(&e))?.trim() == "true"
            }
            other => {
                return Err(ApiError::unprocessable(
                    "invalid_upload",
                    format!(
                        "unexpected field {other:?}; send `bundle` (or `manifest` + `component`) and `accept_permissions`"
                    ),
                ));
            }
        }
    }
    let bundle_bytes = match (bundle, manifest_text, component) {
        (Some(b), None, None) => b,
        (None, Some(m), Some(c)) => {
            let files = BTreeMap::from([
                (nexum_manifest::MANIFEST_FILE.to_string(), m.into_bytes()),
                (nexum_marketplace::bundle::COMPONENT_FILE.to_string(), c),
            ]);
            nexum_marketplace::bundle::pack(&files, None)
                .map_err(|e| ApiError::unprocessable("invalid_bundle", e.to_string()))?
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_upload",
                "send either `bundle`, or both `manifest` and `component`",
            ));
        }
    };
    let bundle = Bundle::parse(&bundle_bytes).map_err(|e| ApiError::unprocessable("invalid_bundle", e.to_string()))?;
    let accept = parse_acceptance(accept.as_deref())?;
    let record = marketplace::install_bundle(
        &state,
        &principal.workspace_id,
        &principal.key_id,
        InstallRequest {
            bundle: &bundle,
            accept,
            source: "upload",
            replace_publisher,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(InstallationView::build(&record)?)))
}

fn parse_acceptance(text: Option<&str>) -> ApiResult<Option<Permissions>> {
    text.map(|t| {
        serde_json::from_str(t).map_err(|e| {
            ApiError::unprocessable(
                "invalid_permissions",
                format!("accept_permissions is not a permissions object: {e}"),
            )
        })
    })
    .transpose()
}

/// The parts of an install upload; any other part is refused (422 `invalid_upload`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the document's shape of the multipart form `install` reads
pub struct InstallUpload {
    /// A `.nxb` bundle, verified against this host's trust policy.
    #[schema(value_type = Option<String>, format = Binary)]
    bundle: Option<Vec<u8>>,
    /// The `connector.toml` manifest (with `component`; only with the operator's unsigned
    /// dev flag).
    manifest: Option<String>,
    /// The connector's WebAssembly component (with `manifest`).
    #[schema(value_type = Option<String>, format = Binary)]
    component: Option<Vec<u8>>,
    /// The permissions JSON the admin accepts (see [`PermissionsDoc`]); it must equal the
    /// connector's.
    accept_permissions: Option<String>,
    /// `true` to replace an installed connector of the same id from another publisher or
    /// source.
    replace_publisher: Option<String>,
}

/// A connector's permissions, as an admin accepts them (`accept_permissions`): the shape
/// `nexum connector inspect` prints and a refused install returns in `errors.permissions`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = Permissions)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents nexum_marketplace::permissions::Permissions
pub struct PermissionsDoc {
    /// Outbound host patterns (as written; templates resolve per connection).
    allowed_hosts: Vec<String>,
    /// SMTP servers the connector may send mail through (as written).
    #[serde(default)]
    mail_servers: Vec<String>,
    /// Auth schemes: id → `type` plus the hosts the secret may go to.
    auth: BTreeMap<String, AuthGrantDoc>,
    /// Requested memory cap (MiB).
    #[schema(format = "uint32", maximum = 4294967295u32)]
    memory_mb: u32,
    /// Requested deadline (ms).
    #[schema(format = "uint64", maximum = 18446744073709551615u64)]
    timeout_ms: u64,
    /// Requested outbound rate.
    #[schema(format = "uint32", maximum = 4294967295u32)]
    requests_per_second: u32,
    /// Defaults of the variables used in host templates.
    #[serde(default)]
    host_defaults: BTreeMap<String, String>,
}

/// One auth scheme's grant.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthGrant)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents nexum_marketplace::permissions::AuthGrant
pub struct AuthGrantDoc {
    /// `api_key`, `bearer`, `basic`, `oauth2` or `secret`.
    #[serde(rename = "type")]
    kind: String,
    /// Hosts the secret may be sent to.
    hosts: Vec<String>,
    /// OAuth scopes requested (oauth2 only).
    #[serde(default)]
    scopes: Vec<String>,
    /// Whether the connector may compute HMACs with the secret.
    #[serde(default)]
    hmac: bool,
}

/// Request to pin an earlier version again.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The version to return to (one this installation had before).
    pub version: String,
    /// Needed when that version's permissions are wider than the current ones.
    #[schema(value_type = Option<PermissionsDoc>)]
    pub accept_permissions: Option<Permissions>,
}

/// Roll an installation back to a version it had before (`connections:write`).
#[utoipa::path(post, path = "/api/v1/connectors/{id}/rollback", tag = "connectors", operation_id = "rollback_connector",
    params(InstallationPath), request_body = Rollback,
    responses((status = 200, body = InstallationView),
        (status = 404, description = "No such installed connector", body = crate::error::Problem),
        (status = 409, description = "That version's permissions are wider than the current ones (`permissions_widened`, with the diff)", body = crate::error::Problem),
        (status = 422, description = "A version this installation never had, a signer no longer trusted, or the body does not match the schema", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn rollback(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(InstallationPath { id }): ApiPath<InstallationPath>,
    ApiJson(body): ApiJson<Rollback>,
) -> ApiResult<Json<InstallationView>> {
    principal.require(Scope::ConnectionsWrite)?;
    let id: InstallationId = path_id(&id)?;
    let record = marketplace::rollback(
        &state,
        &principal.workspace_id,
        &principal.key_id,
        &id,
        &body.version,
        body.accept_permissions,
    )
    .await?;
    Ok(Json(InstallationView::build(&record)?))
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
#[utoipa::path(get, path = "/api/v1/connectors", tag = "connectors", operation_id = "list_connectors", params(Pagination),
    responses((status = 200, body = InstallationList), (status = 422, description = "`limit` outside 1–100", body = crate::error::Problem)))]
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
#[utoipa::path(get, path = "/api/v1/connectors/{id}", tag = "connectors", operation_id = "get_connector", params(InstallationPath),
    responses((status = 200, body = InstallationView), (status = 404, description = "No such installed connector", body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(InstallationPath { id }): ApiPath<InstallationPath>,
) -> ApiResult<Json<InstallationView>> {
    principal.require(Scope::ConnectionsRead)?;
    let id: InstallationId = path_id(&id)?;
    let record = state
        .db
        .installation(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("connector"))?;
    Ok(Json(InstallationView::build(&record)?))
}

/// Uninstall (`connections:write`); refused while connections use it.
#[utoipa::path(delete, path = "/api/v1/connectors/{id}", tag = "connectors", operation_id = "uninstall_connector", params(InstallationPath),
    responses((status = 204, description = "Uninstalled"),
        (status = 404, description = "No such installed connector", body = crate::error::Problem),
        (status = 409, description = "Connections still use it", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn uninstall(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(InstallationPath { id }): ApiPath<InstallationPath>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::ConnectionsWrite)?;
    let id: InstallationId = path_id(&id)?;
    marketplace::uninstall(&state, &principal.workspace_id, &principal.key_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
