//! `/api/v1/marketplace`: the registry. Publishers register a namespace and their minisign
//! keys (rotation, revocation); publishing verifies the bundle's signature against the
//! namespace's keys; versions are semver and immutable, and can be yanked. Browsing is
//! public: search by text and category, featured, sort by rating, installs or newest, with
//! each connector's permissions and versions; bundles download by digest. Reviews (one per
//! user per item, install required, publisher replies) are keyed by item type so workflow
//! templates can reuse them.
//!
//! Installing from a marketplace (`POST /api/v1/connectors/from-marketplace`) never trusts the
//! marketplace: the host re-verifies the bundle against its own trust policy and pins the
//! digest it was shown.

use super::AppState;
use super::connectors::{InstallationView, install_bundle};
use super::extract::{ApiBytes, ApiJson, ApiQuery, Principal};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::store::{AuditEntry, PackageRecord, PackageVersionRecord, PublisherRecord, ReviewRecord, new_id, now_ms};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexum_marketplace::bundle::Bundle;
use nexum_marketplace::permissions::Permissions;
use nexum_marketplace::signing::{self, PublicKey, TrustPolicy};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

fn valid_namespace(ns: &str) -> bool {
    (2..=40).contains(&ns.len())
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
}

async fn owned_publisher(state: &AppState, principal: &Principal, namespace: &str) -> ApiResult<PublisherRecord> {
    principal.require(Scope::MarketplacePublish)?;
    match state.db.publisher(namespace).await? {
        Some(p) if p.workspace_id == principal.workspace_id => Ok(p),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_namespace",
            "Forbidden",
            format!("namespace `{namespace}` belongs to another publisher"),
        )),
        None => Err(ApiError::not_found("publisher")),
    }
}

/// Request to register a namespace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPublisher {
    /// Namespace (`a-z`, `0-9`, `-`; 2–40 characters).
    pub namespace: String,
    /// The first signing key: a minisign public key (file text or base64 line).
    pub public_key: String,
}

/// A publisher and its keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublisherView {
    /// Namespace.
    pub namespace: String,
    /// Keys, with their status.
    pub keys: Vec<PublisherKeyView>,
}

/// A publisher key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublisherKeyView {
    /// minisign key id.
    pub key_id: String,
    /// Base64 public key.
    pub public_key: String,
    /// Unix ms of revocation.
    pub revoked_at: Option<i64>,
}

async fn publisher_view(state: &AppState, p: &PublisherRecord) -> ApiResult<PublisherView> {
    let keys = state
        .db
        .publisher_keys(&p.id)
        .await?
        .into_iter()
        .map(|(key_id, public_key, revoked_at)| PublisherKeyView {
            key_id,
            public_key,
            revoked_at,
        })
        .collect();
    Ok(PublisherView {
        namespace: p.namespace.clone(),
        keys,
    })
}

fn parse_key(text: &str) -> ApiResult<PublicKey> {
    PublicKey::parse(text).map_err(|e| ApiError::unprocessable("invalid_public_key", e.to_string()))
}

/// Register a namespace with its first key (`marketplace:publish`).
#[utoipa::path(post, path = "/api/v1/marketplace/publishers", tag = "marketplace", request_body = RegisterPublisher, responses((status = 201, body = PublisherView)))]
pub async fn register_publisher(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<RegisterPublisher>,
) -> ApiResult<(StatusCode, Json<PublisherView>)> {
    principal.require(Scope::MarketplacePublish)?;
    if !valid_namespace(&body.namespace) {
        return Err(ApiError::unprocessable(
            "invalid_namespace",
            "namespaces are 2–40 characters of a-z, 0-9 and -",
        ));
    }
    let key = parse_key(&body.public_key)?;
    let publisher = state
        .db
        .create_publisher(&body.namespace, &principal.workspace_id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict => {
                ApiError::conflict(format!("namespace `{}` is taken", body.namespace))
            }
            other => other.into(),
        })?;
    state
        .db
        .add_publisher_key(&publisher.id, &key.key_id, &key.base64)
        .await?;
    Ok((StatusCode::CREATED, Json(publisher_view(&state, &publisher).await?)))
}

/// A publisher's public keys (public).
#[utoipa::path(get, path = "/api/v1/marketplace/publishers/{namespace}", tag = "marketplace", responses((status = 200, body = PublisherView)))]
pub async fn get_publisher(
    State(state): State<Arc<AppState>>,
    Path(namespace): Path<String>,
) -> ApiResult<Json<PublisherView>> {
    let p = state
        .db
        .publisher(&namespace)
        .await?
        .ok_or_else(|| ApiError::not_found("publisher"))?;
    Ok(Json(publisher_view(&state, &p).await?))
}

/// Request to add a key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    /// minisign public key.
    pub public_key: String,
}

/// Add a signing key (rotation) (`marketplace:publish`, owner).
#[utoipa::path(post, path = "/api/v1/marketplace/publishers/{namespace}/keys", tag = "marketplace", request_body = AddKey, responses((status = 201, body = PublisherView)))]
pub async fn add_key(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<AddKey>,
) -> ApiResult<(StatusCode, Json<PublisherView>)> {
    let p = owned_publisher(&state, &principal, &namespace).await?;
    let key = parse_key(&body.public_key)?;
    state.db.add_publisher_key(&p.id, &key.key_id, &key.base64).await?;
    Ok((StatusCode::CREATED, Json(publisher_view(&state, &p).await?)))
}

/// Revoke a signing key: new publishes signed with it are refused (`marketplace:publish`, owner).
#[utoipa::path(delete, path = "/api/v1/marketplace/publishers/{namespace}/keys/{key_id}", tag = "marketplace", responses((status = 204)))]
pub async fn revoke_key(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((namespace, key_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let p = owned_publisher(&state, &principal, &namespace).await?;
    if state.db.revoke_publisher_key(&p.id, &key_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("key"))
    }
}

/// `?namespace=` for publishing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PublishParams {
    /// The publisher namespace to publish under.
    pub namespace: String,
}

/// Publish a signed bundle (body: the `.nxb` bytes) (`marketplace:publish`, owner). The
/// signature must verify against one of the namespace's unrevoked keys; a version, once
/// published, never changes.
#[utoipa::path(post, path = "/api/v1/marketplace/packages", tag = "marketplace", params(PublishParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = PackageView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn publish(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(params): ApiQuery<PublishParams>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<PackageView>)> {
    let publisher = owned_publisher(&state, &principal, &params.namespace).await?;
    let bundle = Bundle::parse(&body).map_err(|e| ApiError::unprocessable("invalid_bundle", e.to_string()))?;
    let keys: Vec<PublicKey> = state
        .db
        .publisher_keys(&publisher.id)
        .await?
        .into_iter()
        .filter(|(_, _, revoked)| revoked.is_none())
        .filter_map(|(_, k, _)| PublicKey::parse(&k).ok())
        .collect();
    let signer = TrustPolicy {
        keys,
        allow_unsigned: false,
    }
    .verify(&bundle)
    .map_err(|e| {
        let code = match e {
            signing::SigningError::Unsigned => "unsigned_bundle",
            signing::SigningError::UntrustedKey { .. } => "unknown_or_revoked_key",
            _ => "bad_signature",
        };
        ApiError::unprocessable(code, format!("{e} (namespace `{}`)", publisher.namespace))
    })?;
    let m = &bundle.manifest;
    let version = m.version.to_string();
    if let Some(pkg) = state.db.package(&publisher.namespace, &m.id).await?
        && let Some(existing) = state
            .db
            .package_versions(&pkg.id)
            .await?
            .into_iter()
            .find(|v| v.version == version)
    {
        if existing.digest == bundle.digest {
            return Ok((StatusCode::OK, Json(package_view(&state, &pkg).await?)));
        }
        return Err(ApiError::conflict(format!(
            "{}/{}@{version} is already published with different contents; versions are immutable, publish a new version",
            publisher.namespace, m.id
        )));
    }
    let record = PackageVersionRecord {
        package_id: String::new(),
        version,
        digest: bundle.digest.clone(),
        manifest: bundle.manifest_text.clone(),
        permissions: serde_json::to_string(&Permissions::of(m)).map_err(|e| ApiError::internal(&e))?,
        signer: match signer {
            signing::Signer::Key(k) => k,
            signing::Signer::Unsigned => "unsigned".into(),
        },
        yanked_at: None,
        installs: 0,
        executions: 0,
        created_at: now_ms(),
        signature: bundle.signature.clone().unwrap_or_default(),
    };
    let bytes = bundle
        .to_bytes()
        .map_err(|e| ApiError::unprocessable("invalid_bundle", e.to_string()))?;
    let pkg = state
        .db
        .publish_version(&publisher, &m.id, &m.name, &m.description, &m.category, &record, &bytes)
        .await?;
    state
        .db
        .append_audit(&[AuditEntry::new(
            &principal.workspace_id,
            &principal.key_id,
            "marketplace.publish",
            &pkg.id,
            format!(
                "{}/{}@{} sha256:{}",
                publisher.namespace, m.id, m.version, bundle.digest
            ),
        )])
        .await?;
    Ok((StatusCode::CREATED, Json(package_view(&state, &pkg).await?)))
}

/// A connector in the marketplace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PackageView {
    /// `namespace/name`.
    pub package: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Featured by the operator.
    pub featured: bool,
    /// Latest non-yanked version.
    pub latest_version: Option<String>,
    /// Permissions of the latest version.
    #[schema(value_type = Object)]
    pub permissions: Value,
    /// Average stars (none without reviews).
    pub rating: Option<f64>,
    /// Number of reviews.
    pub reviews: usize,
    /// Installs across versions.
    pub installs: i64,
    /// Action executions across versions (on this server's hosts).
    pub executions: i64,
    /// Every version, oldest first.
    pub versions: Vec<VersionView>,
    /// Unix ms of first publish.
    pub created_at: i64,
}

/// One version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    /// Semver.
    pub version: String,
    /// Bundle digest (download at `/api/v1/marketplace/bundles/{digest}`).
    pub digest: String,
    /// Signing key id.
    pub signer: String,
    /// Yanked: cannot be newly installed.
    pub yanked: bool,
    /// Installs of this version.
    pub installs: i64,
    /// Executions on this version.
    pub executions: i64,
    /// Unix ms.
    pub published_at: i64,
}

async fn package_view(state: &AppState, p: &PackageRecord) -> ApiResult<PackageView> {
    let versions = state.db.package_versions(&p.id).await?;
    let reviews = state.db.reviews("connector", &p.id).await?;
    let latest = versions.iter().filter(|v| v.yanked_at.is_none()).max_by(|a, b| {
        semver::Version::parse(&a.version)
            .ok()
            .cmp(&semver::Version::parse(&b.version).ok())
    });
    Ok(PackageView {
        package: format!("{}/{}", p.namespace, p.name),
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        display_name: p.display_name.clone(),
        description: p.description.clone(),
        category: p.category.clone(),
        featured: p.featured != 0,
        latest_version: latest.map(|v| v.version.clone()),
        permissions: latest
            .and_then(|v| serde_json::from_str(&v.permissions).ok())
            .unwrap_or(Value::Null),
        rating: (!reviews.is_empty())
            .then(|| reviews.iter().map(|r| r.stars as f64).sum::<f64>() / reviews.len() as f64),
        reviews: reviews.len(),
        installs: versions.iter().map(|v| v.installs).sum(),
        executions: versions.iter().map(|v| v.executions).sum(),
        versions: versions
            .iter()
            .map(|v| VersionView {
                version: v.version.clone(),
                digest: v.digest.clone(),
                signer: v.signer.clone(),
                yanked: v.yanked_at.is_some(),
                installs: v.installs,
                executions: v.executions,
                published_at: v.created_at,
            })
            .collect(),
        created_at: p.created_at,
    })
}

/// Browse parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct BrowseParams {
    /// Text to find in name, display name or description.
    pub q: Option<String>,
    /// Exact category.
    pub category: Option<String>,
    /// Only featured connectors.
    pub featured: Option<bool>,
    /// `rating`, `installs` or `newest` (default).
    pub sort: Option<String>,
    /// Page size 1–100 (default 20).
    pub limit: Option<usize>,
    /// Offset cursor from the previous page.
    pub cursor: Option<String>,
}

/// A page of marketplace connectors.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PackageList {
    /// Connectors.
    pub data: Vec<PackageView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Browse and search (public).
#[utoipa::path(get, path = "/api/v1/marketplace/packages", tag = "marketplace", params(BrowseParams), responses((status = 200, body = PackageList)))]
pub async fn browse(
    State(state): State<Arc<AppState>>,
    ApiQuery(params): ApiQuery<BrowseParams>,
) -> ApiResult<Json<PackageList>> {
    let limit = match params.limit {
        None => 20,
        Some(n @ 1..=100) => n,
        Some(n) => {
            return Err(ApiError::unprocessable(
                "invalid_limit",
                format!("limit must be 1–100, got {n}"),
            ));
        }
    };
    let offset: usize = match params.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::unprocessable("invalid_cursor", "cursor is not one this API returned"))?,
    };
    let q = params.q.as_deref().map(str::to_lowercase);
    let mut views = Vec::new();
    for p in state.db.all_packages().await? {
        if params.category.as_deref().is_some_and(|c| c != p.category)
            || (params.featured == Some(true) && p.featured == 0)
        {
            continue;
        }
        if let Some(q) = &q {
            let hay = format!("{} {} {} {}", p.namespace, p.name, p.display_name, p.description).to_lowercase();
            if !hay.contains(q.as_str()) {
                continue;
            }
        }
        let view = package_view(&state, &p).await?;
        if view.latest_version.is_some() {
            views.push(view);
        }
    }
    match params.sort.as_deref() {
        None | Some("newest") => views.sort_by_key(|v| std::cmp::Reverse(v.created_at)),
        Some("rating") => views.sort_by(|a, b| {
            b.rating
                .unwrap_or(0.0)
                .total_cmp(&a.rating.unwrap_or(0.0))
                .then(b.reviews.cmp(&a.reviews))
        }),
        Some("installs") => views.sort_by_key(|v| std::cmp::Reverse(v.installs)),
        Some(other) => {
            return Err(ApiError::unprocessable(
                "invalid_sort",
                format!("sort `{other}` is not rating, installs or newest"),
            ));
        }
    }
    let total = views.len();
    let data: Vec<PackageView> = views.into_iter().skip(offset).take(limit).collect();
    let next_cursor = (offset + limit < total).then(|| (offset + limit).to_string());
    Ok(Json(PackageList { data, next_cursor }))
}

/// One connector with its versions and permissions (public).
#[utoipa::path(get, path = "/api/v1/marketplace/packages/{namespace}/{name}", tag = "marketplace", responses((status = 200, body = PackageView)))]
pub async fn get_package(
    State(state): State<Arc<AppState>>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<PackageView>> {
    let p = state
        .db
        .package(&namespace, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    Ok(Json(package_view(&state, &p).await?))
}

/// Download a bundle by digest (public).
#[utoipa::path(get, path = "/api/v1/marketplace/bundles/{digest}", tag = "marketplace", responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>)))]
pub async fn download(State(state): State<Arc<AppState>>, Path(digest): Path<String>) -> Response {
    match state.db.bundle(&digest).await {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Ok(None) => ApiError::not_found("bundle").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The bundle of one published version, carrying that version's own signature.
async fn version_bundle(state: &AppState, version: &PackageVersionRecord) -> ApiResult<Vec<u8>> {
    let stored = state
        .db
        .bundle(&version.digest)
        .await?
        .ok_or_else(|| ApiError::not_found("bundle"))?;
    let parsed = Bundle::parse(&stored).map_err(|e| ApiError::internal(&e))?;
    parsed
        .with_signature(&version.signature)
        .map_err(|e| ApiError::internal(&e))
}

/// Download one version's bundle, signed by its publisher (public).
#[utoipa::path(get, path = "/api/v1/marketplace/packages/{namespace}/{name}/versions/{version}/bundle", tag = "marketplace", responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>)))]
pub async fn download_version(
    State(state): State<Arc<AppState>>,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> Response {
    let found = async {
        let p = state
            .db
            .package(&namespace, &name)
            .await?
            .ok_or_else(|| ApiError::not_found("package"))?;
        let v = state
            .db
            .package_versions(&p.id)
            .await?
            .into_iter()
            .find(|v| v.version == version)
            .ok_or_else(|| ApiError::not_found("version"))?;
        version_bundle(&state, &v).await
    }
    .await;
    match found {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Yank a version (`marketplace:publish`, owner).
#[utoipa::path(post, path = "/api/v1/marketplace/packages/{namespace}/{name}/versions/{version}/yank", tag = "marketplace", responses((status = 204)))]
pub async fn yank(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    owned_publisher(&state, &principal, &namespace).await?;
    let p = state
        .db
        .package(&namespace, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    if state.db.yank_version(&p.id, &version).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("version"))
    }
}

/// Feature or unfeature a connector (operator keys: `workspaces:create`).
#[utoipa::path(post, path = "/api/v1/marketplace/packages/{namespace}/{name}/featured", tag = "marketplace", request_body = Object, responses((status = 204)))]
pub async fn set_featured(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::WorkspacesCreate)?;
    let p = state
        .db
        .package(&namespace, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    state
        .db
        .set_featured(&p.id, body["featured"].as_bool().unwrap_or(true))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Request to install from a marketplace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallFromMarketplace {
    /// `namespace/name`.
    pub package: String,
    /// Version (default: the latest non-yanked one).
    pub version: Option<String>,
    /// Base URL of a remote marketplace (default: this server's own registry).
    pub marketplace: Option<String>,
    /// The permissions the admin accepts.
    #[schema(value_type = Object)]
    pub accept_permissions: Option<Permissions>,
    /// Allow replacing an installed connector of the same id from another publisher or source.
    #[serde(default)]
    pub replace_publisher: bool,
}

/// Install a connector from a marketplace (`connections:write`). The host downloads the
/// bundle by digest, re-verifies its signature against its own trust policy, and pins it.
#[utoipa::path(post, path = "/api/v1/connectors/from-marketplace", tag = "connectors", request_body = InstallFromMarketplace,
    responses((status = 201, body = InstallationView), (status = 422, body = crate::error::Problem)))]
pub async fn install_from_marketplace(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<InstallFromMarketplace>,
) -> ApiResult<(StatusCode, Json<InstallationView>)> {
    principal.require(Scope::ConnectionsWrite)?;
    let (namespace, name) = body
        .package
        .split_once('/')
        .filter(|(ns, n)| {
            valid_namespace(ns)
                && !n.is_empty()
                && n.len() <= 64
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .ok_or_else(|| ApiError::unprocessable("invalid_package", "package is `namespace/name`"))?;
    let (digest, version, bytes, local_package): (String, String, Vec<u8>, Option<String>) = match &body.marketplace {
        None => {
            let p = state
                .db
                .package(namespace, name)
                .await?
                .ok_or_else(|| ApiError::not_found("package"))?;
            let view = package_view(&state, &p).await?;
            let v = pick_version(&view, body.version.as_deref())?;
            let record = state
                .db
                .package_versions(&p.id)
                .await?
                .into_iter()
                .find(|r| r.version == v.version)
                .ok_or_else(|| ApiError::not_found("version"))?;
            let bytes = version_bundle(&state, &record).await?;
            (v.digest.clone(), v.version.clone(), bytes, Some(p.id))
        }
        Some(url) => {
            let base = url.trim_end_matches('/');
            // The marketplace URL comes from a workspace admin: fetch it under the same address
            // policy as connector traffic (no private or metadata addresses unless the
            // operator allows them), without redirects, and with a size cap.
            let outbound = state.outbound.clone();
            let parsed_base = outbound.check_url(base).map_err(|e| match e {
                crate::broker::UrlRefused::Invalid(_) => {
                    ApiError::unprocessable("invalid_marketplace", "marketplace must be an http(s) URL")
                }
                blocked => ApiError::unprocessable("marketplace_address_blocked", blocked.to_string()),
            })?;
            let base = parsed_base.as_str().trim_end_matches('/').to_string();
            let fetch = |path: String| {
                let outbound = outbound.clone();
                async move {
                    let response = outbound
                        .client()
                        .get(path)
                        .timeout(std::time::Duration::from_secs(30))
                        .send()
                        .await
                        .map_err(|e| {
                            ApiError::new(
                                StatusCode::BAD_GATEWAY,
                                "marketplace_unreachable",
                                "Bad gateway",
                                format!("the marketplace did not answer: {}", e.without_url()),
                            )
                        })?;
                    if !response.status().is_success() {
                        return Err(ApiError::new(
                            StatusCode::BAD_GATEWAY,
                            "marketplace_error",
                            "Bad gateway",
                            format!("the marketplace answered {}", response.status()),
                        ));
                    }
                    read_capped(response).await
                }
            };
            let listing = fetch(format!("{base}/api/v1/marketplace/packages/{namespace}/{name}")).await?;
            let parsed: RemoteListing = serde_json::from_slice(&listing).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "marketplace_invalid",
                    "Bad gateway",
                    "the marketplace's answer is not a package listing",
                )
            })?;
            let v = pick_remote(&parsed, body.version.as_deref())?;
            let bytes = fetch(format!(
                "{base}/api/v1/marketplace/packages/{namespace}/{name}/versions/{}/bundle",
                v.version
            ))
            .await?;
            (v.digest.clone(), v.version.clone(), bytes.to_vec(), None)
        }
    };
    let bundle = Bundle::parse(&bytes).map_err(|e| ApiError::unprocessable("invalid_bundle", e.to_string()))?;
    // Pin what we were shown: a marketplace cannot swap the bytes behind a digest.
    if bundle.digest != digest || bundle.manifest.version.to_string() != version || bundle.manifest.id != name {
        return Err(ApiError::unprocessable(
            "digest_mismatch",
            "the downloaded bundle is not the one the marketplace listed",
        ));
    }
    let record = install_bundle(
        &state,
        &principal,
        &bundle,
        body.accept_permissions,
        &format!("marketplace:{namespace}/{name}"),
        body.replace_publisher,
    )
    .await?;
    if let Some(package_id) = local_package {
        state
            .db
            .record_marketplace_install(&principal.workspace_id, &package_id, &version)
            .await?;
    }
    Ok((StatusCode::CREATED, Json(InstallationView::build(&record)?)))
}

/// Read a marketplace response body, refusing more than a bundle's maximum size.
async fn read_capped(mut response: reqwest::Response) -> ApiResult<Vec<u8>> {
    let limit = nexum_marketplace::bundle::MAX_BUNDLE_BYTES;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "marketplace_unreachable",
            "Bad gateway",
            e.without_url().to_string(),
        )
    })? {
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "marketplace_invalid",
                "Bad gateway",
                "the marketplace sent more than a bundle may hold",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn pick_version<'a>(view: &'a PackageView, wanted: Option<&str>) -> ApiResult<&'a VersionView> {
    match wanted {
        Some(v) => {
            let found = view
                .versions
                .iter()
                .find(|x| x.version == v)
                .ok_or_else(|| ApiError::not_found("version"))?;
            if found.yanked {
                return Err(ApiError::unprocessable(
                    "version_yanked",
                    format!("{}@{v} was yanked and cannot be newly installed", view.package),
                ));
            }
            Ok(found)
        }
        None => {
            let latest = view
                .latest_version
                .as_deref()
                .ok_or_else(|| ApiError::unprocessable("no_versions", "every version was yanked"))?;
            view.versions
                .iter()
                .find(|x| x.version == latest)
                .ok_or_else(|| ApiError::not_found("version"))
        }
    }
}

#[derive(Deserialize)]
struct RemoteListing {
    latest_version: Option<String>,
    versions: Vec<RemoteVersion>,
}

#[derive(Deserialize)]
struct RemoteVersion {
    version: String,
    digest: String,
    yanked: bool,
}

fn pick_remote<'a>(listing: &'a RemoteListing, wanted: Option<&str>) -> ApiResult<&'a RemoteVersion> {
    let v = wanted
        .or(listing.latest_version.as_deref())
        .ok_or_else(|| ApiError::unprocessable("no_versions", "no installable version"))?;
    let found = listing
        .versions
        .iter()
        .find(|x| x.version == v)
        .ok_or_else(|| ApiError::not_found("version"))?;
    if found.yanked {
        return Err(ApiError::unprocessable(
            "version_yanked",
            format!("version {v} was yanked and cannot be newly installed"),
        ));
    }
    Ok(found)
}

/// Reviews of a connector, with the average (public).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewList {
    /// Average stars.
    pub average: Option<f64>,
    /// Count.
    pub count: usize,
    /// Reviews, newest first.
    pub data: Vec<ReviewView>,
}

/// A review as the public sees it: no workspace or key ids.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    /// `rev_…`
    pub id: String,
    /// 1–5.
    pub stars: i64,
    /// Text.
    pub body: String,
    /// "Verified install of version X".
    pub verified_install_of: String,
    /// Publisher's reply.
    pub reply: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

impl From<ReviewRecord> for ReviewView {
    fn from(r: ReviewRecord) -> Self {
        Self {
            id: r.id,
            stars: r.stars,
            body: r.body,
            verified_install_of: r.version,
            reply: r.reply,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// List reviews (public).
#[utoipa::path(get, path = "/api/v1/marketplace/packages/{namespace}/{name}/reviews", tag = "marketplace", responses((status = 200, body = ReviewList)))]
pub async fn list_reviews(
    State(state): State<Arc<AppState>>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<ReviewList>> {
    let p = state
        .db
        .package(&namespace, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    let data = state.db.reviews("connector", &p.id).await?;
    let average = (!data.is_empty()).then(|| data.iter().map(|r| r.stars as f64).sum::<f64>() / data.len() as f64);
    Ok(Json(ReviewList {
        average,
        count: data.len(),
        data: data.into_iter().map(ReviewView::from).collect(),
    }))
}

/// A rating.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteReview {
    /// 1–5.
    pub stars: i64,
    /// Optional text.
    #[serde(default)]
    pub body: String,
}

/// Rate a connector your workspace installed from this marketplace; again to edit
/// (`connections:read`). One review per user per item.
#[utoipa::path(post, path = "/api/v1/marketplace/packages/{namespace}/{name}/reviews", tag = "marketplace", request_body = WriteReview, responses((status = 200, body = ReviewRecord), (status = 403, body = crate::error::Problem)))]
pub async fn write_review(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<WriteReview>,
) -> ApiResult<Json<ReviewRecord>> {
    principal.require(Scope::ConnectionsRead)?;
    if !(1..=5).contains(&body.stars) || body.body.len() > 5000 {
        return Err(ApiError::unprocessable(
            "invalid_review",
            "stars must be 1–5 and the text at most 5000 characters",
        ));
    }
    let p = state
        .db
        .package(&namespace, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    let version = state
        .db
        .marketplace_install(&principal.workspace_id, &p.id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "install_required",
                "Forbidden",
                "only workspaces that installed this connector may review it",
            )
        })?;
    // A person reviews once; keys without a member count as their workspace, so minting
    // keys cannot multiply a workspace's voice.
    let author = principal
        .member_id
        .clone()
        .unwrap_or_else(|| principal.workspace_id.to_string());
    let now = now_ms();
    let review = ReviewRecord {
        id: new_id("rev"),
        item_type: "connector".into(),
        item_id: p.id.clone(),
        workspace_id: principal.workspace_id.clone(),
        author,
        stars: body.stars,
        body: body.body,
        version,
        reply: None,
        replied_at: None,
        created_at: now,
        updated_at: now,
    };
    Ok(Json(state.db.upsert_review(&review).await?))
}

/// A publisher's reply.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The reply text.
    pub reply: String,
}

/// Reply to a review of your connector (`marketplace:publish`, owner).
#[utoipa::path(post, path = "/api/v1/marketplace/packages/{namespace}/{name}/reviews/{id}/reply", tag = "marketplace", request_body = Reply, responses((status = 204)))]
pub async fn reply(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((namespace, name, id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Reply>,
) -> ApiResult<StatusCode> {
    owned_publisher(&state, &principal, &namespace).await?;
    let p = state
        .db
        .package(&namespace, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    if state.db.reply_to_review(&p.id, &id, &body.reply).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("review"))
    }
}
