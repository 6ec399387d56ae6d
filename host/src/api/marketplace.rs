//! `/api/v1/marketplace`: the registry's HTTP surface. Publishers register a namespace and
//! their minisign keys (rotation, revocation) and publish signed bundles; browsing is public
//! (search by text and category, featured, sort by rating, installs or newest, with each
//! connector's permissions and versions); bundles download by digest or version; reviews
//! (install required, one per person, publisher replies). The rules live in
//! [`crate::marketplace`]; this file parses, authorizes and shapes the answers.
//!
//! Installing from a marketplace (`POST /api/v1/connectors/from-marketplace`) never trusts the
//! marketplace: the host re-verifies the bundle against its own trust policy and pins the
//! digest it was shown.

use super::AppState;
use super::connectors::InstallationView;
use super::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery, Principal};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::marketplace::reviews::NewReview;
use crate::marketplace::{
    self as registry, BrowseFilter, Listing, MarketplaceInstall, Publisher, PublisherKey, Sort, packages, reviews,
};
use crate::store::{PackageVersionRecord, ReviewRecord};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexum_marketplace::permissions::Permissions;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Request to register a namespace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPublisher {
    /// Namespace (`a-z`, `0-9`, `-`; 2–40 characters, not starting with `-`).
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{1,39}$")]
    pub namespace: String,
    /// The first signing key: a minisign public key (the `.pub` file's text or its base64
    /// line).
    #[schema(pattern = r"^(untrusted comment:[^\r\n]*\r?\n)?[A-Za-z0-9+/]{56}[ \t\r\n]*$")]
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

impl From<Publisher> for PublisherView {
    fn from(p: Publisher) -> Self {
        Self {
            namespace: p.namespace,
            keys: p.keys.into_iter().map(PublisherKeyView::from).collect(),
        }
    }
}

impl From<PublisherKey> for PublisherKeyView {
    fn from(k: PublisherKey) -> Self {
        Self {
            key_id: k.key_id,
            public_key: k.public_key,
            revoked_at: k.revoked_at,
        }
    }
}

/// Register a namespace with its first key (`marketplace:publish`).
#[utoipa::path(post, path = "/api/v1/marketplace/publishers", tag = "marketplace", operation_id = "register_publisher", request_body = RegisterPublisher,
    responses((status = 201, body = PublisherView),
        (status = 409, description = "The namespace is taken", body = crate::error::Problem),
        (status = 422, description = "Invalid namespace or public key, or the body does not match the schema", body = crate::error::Problem)))]
pub async fn register_publisher(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<RegisterPublisher>,
) -> ApiResult<(StatusCode, Json<PublisherView>)> {
    principal.require(Scope::MarketplacePublish)?;
    let publisher =
        registry::publish::register(&state, &principal.workspace_id, &body.namespace, &body.public_key).await?;
    Ok((StatusCode::CREATED, Json(publisher.into())))
}

/// A publisher's public keys (public).
#[utoipa::path(get, path = "/api/v1/marketplace/publishers/{namespace}", tag = "marketplace", operation_id = "get_publisher",
    params(("namespace" = String, Path, description = "Publisher namespace")), security(()),
    responses((status = 200, body = PublisherView), (status = 404, description = "No such publisher", body = crate::error::Problem)))]
pub async fn get_publisher(
    State(state): State<Arc<AppState>>,
    ApiPath(namespace): ApiPath<String>,
) -> ApiResult<Json<PublisherView>> {
    Ok(Json(registry::publish::publisher(&state, &namespace).await?.into()))
}

/// Request to add a key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    /// minisign public key (the `.pub` file's text or its base64 line).
    #[schema(pattern = r"^(untrusted comment:[^\r\n]*\r?\n)?[A-Za-z0-9+/]{56}[ \t\r\n]*$")]
    pub public_key: String,
}

/// Add a signing key (rotation) (`marketplace:publish`, owner).
#[utoipa::path(post, path = "/api/v1/marketplace/publishers/{namespace}/keys", tag = "marketplace", operation_id = "add_publisher_key",
    params(("namespace" = String, Path, description = "Publisher namespace")), request_body = AddKey,
    responses((status = 201, body = PublisherView),
        (status = 403, description = "The namespace belongs to another workspace", body = crate::error::Problem),
        (status = 404, description = "No such publisher", body = crate::error::Problem),
        (status = 409, description = "The namespace already has this key", body = crate::error::Problem),
        (status = 422, description = "Invalid public key, or the body does not match the schema", body = crate::error::Problem)))]
pub async fn add_key(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(namespace): ApiPath<String>,
    ApiJson(body): ApiJson<AddKey>,
) -> ApiResult<(StatusCode, Json<PublisherView>)> {
    principal.require(Scope::MarketplacePublish)?;
    let publisher = registry::publish::add_key(&state, &principal.workspace_id, &namespace, &body.public_key).await?;
    Ok((StatusCode::CREATED, Json(publisher.into())))
}

/// Revoke a signing key: new publishes signed with it are refused (`marketplace:publish`, owner).
#[utoipa::path(delete, path = "/api/v1/marketplace/publishers/{namespace}/keys/{key_id}", tag = "marketplace", operation_id = "revoke_publisher_key",
    params(("namespace" = String, Path, description = "Publisher namespace"), ("key_id" = String, Path, description = "minisign key id (16 hex digits)")),
    responses((status = 204, description = "Revoked (or it already was)"),
        (status = 403, description = "The namespace belongs to another workspace", body = crate::error::Problem),
        (status = 404, description = "No such publisher or key", body = crate::error::Problem)))]
pub async fn revoke_key(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath((namespace, key_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::MarketplacePublish)?;
    match registry::publish::revoke_key(&state, &principal.workspace_id, &namespace, &key_id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        // Revoking is idempotent, as for API keys: a key revoked before stays revoked.
        Err(registry::MarketplaceError::NotFound("key"))
            if registry::publish::publisher(&state, &namespace)
                .await?
                .keys
                .iter()
                .any(|k| k.key_id == key_id && k.revoked_at.is_some()) =>
        {
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e) => Err(e.into()),
    }
}

/// `?namespace=` for publishing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublishParams {
    /// The publisher namespace to publish under.
    pub namespace: String,
}

/// Publish a signed bundle (body: the `.nxb` bytes) (`marketplace:publish`, owner). The
/// signature must verify against one of the namespace's unrevoked keys; a version, once
/// published, never changes.
#[utoipa::path(post, path = "/api/v1/marketplace/packages", tag = "marketplace", operation_id = "publish_package", params(PublishParams),
    request_body(content = BundleBytes, content_type = "application/octet-stream", description = "The signed `.nxb` bundle"),
    responses((status = 201, description = "Published", body = PackageView),
        (status = 200, description = "This version was already published with the same bytes", body = PackageView),
        (status = 403, description = "The namespace belongs to another workspace", body = crate::error::Problem),
        (status = 404, description = "No such publisher", body = crate::error::Problem),
        (status = 409, description = "This version exists with other bytes", body = crate::error::Problem),
        (status = 422, description = "Not a valid bundle, or not signed by one of the namespace's unrevoked keys", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn publish(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(params): ApiQuery<PublishParams>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<PackageView>)> {
    principal.require(Scope::MarketplacePublish)?;
    let published = registry::publish::publish(
        &state,
        &principal.workspace_id,
        &principal.key_id,
        &params.namespace,
        &body,
    )
    .await?;
    let status = if published.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(PackageView::from(&published.listing))))
}

/// A `.nxb` bundle's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BundleBytes(#[allow(dead_code)] Vec<u8>);

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
    /// Permissions of the latest version (`null` when every version is yanked).
    #[schema(value_type = Option<super::connectors::PermissionsDoc>)]
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

impl From<&Listing> for PackageView {
    fn from(l: &Listing) -> Self {
        let latest = l.latest();
        Self {
            package: l.reference(),
            namespace: l.package.namespace.clone(),
            name: l.package.name.clone(),
            display_name: l.package.display_name.clone(),
            description: l.package.description.clone(),
            category: l.package.category.clone(),
            featured: l.package.featured != 0,
            latest_version: latest.map(|v| v.version.clone()),
            permissions: latest
                .and_then(|v| serde_json::from_str(&v.permissions).ok())
                .unwrap_or(Value::Null),
            rating: l.rating,
            reviews: l.reviews,
            installs: l.installs(),
            executions: l.executions(),
            versions: l.versions.iter().map(VersionView::from).collect(),
            created_at: l.package.created_at,
        }
    }
}

impl From<&PackageVersionRecord> for VersionView {
    fn from(v: &PackageVersionRecord) -> Self {
        Self {
            version: v.version.clone(),
            digest: v.digest.clone(),
            signer: v.signer.clone(),
            yanked: v.yanked_at.is_some(),
            installs: v.installs,
            executions: v.executions,
            published_at: v.created_at,
        }
    }
}

/// Browse parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BrowseParams {
    /// Text to find in name, display name or description.
    pub q: Option<String>,
    /// Exact category.
    pub category: Option<String>,
    /// Only featured connectors.
    pub featured: Option<bool>,
    /// `rating`, `installs` or `newest` (default).
    #[param(value_type = Option<BrowseSort>, inline)]
    pub sort: Option<String>,
    /// Page size 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// Offset cursor from the previous page (digits; empty for the first page).
    #[param(pattern = r"^[0-9]*$")]
    pub cursor: Option<String>,
}

/// How browsing sorts.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the `sort` parameter `Sort::parse` reads
pub enum BrowseSort {
    /// Best rated first.
    Rating,
    /// Most installed first.
    Installs,
    /// Newest first (the default).
    Newest,
}

/// A page of marketplace connectors.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PackageList {
    /// Connectors.
    pub data: Vec<PackageView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// The page size (`limit`, 1–100, default 20) and offset (`cursor`: digits this API
/// returned) of an offset-paged listing; digits past any page are an empty page.
pub(super) fn offset_page(limit: Option<usize>, cursor: Option<&str>) -> ApiResult<(usize, usize)> {
    let limit = match limit {
        None => 20,
        Some(n @ 1..=100) => n,
        Some(n) => {
            return Err(ApiError::unprocessable(
                "invalid_limit",
                format!("limit must be 1–100, got {n}"),
            ));
        }
    };
    let offset = match cursor {
        None | Some("") => 0,
        // Digits past any page (too many to count) are simply beyond the end: an empty page.
        Some(c) if c.bytes().all(|b| b.is_ascii_digit()) => c.parse().unwrap_or(usize::MAX / 2),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_cursor",
                "cursor is not one this API returned",
            ));
        }
    };
    Ok((limit, offset))
}

/// Browse and search (public).
#[utoipa::path(get, path = "/api/v1/marketplace/packages", tag = "marketplace", operation_id = "browse_packages", params(BrowseParams), security(()),
    responses((status = 200, body = PackageList),
        (status = 422, description = "`limit` outside 1–100, an unknown `sort`, or a `cursor` this API did not return", body = crate::error::Problem)))]
pub async fn browse(
    State(state): State<Arc<AppState>>,
    ApiQuery(params): ApiQuery<BrowseParams>,
) -> ApiResult<Json<PackageList>> {
    let (limit, offset) = offset_page(params.limit, params.cursor.as_deref())?;
    let sort = match params.sort.as_deref() {
        None => Sort::default(),
        Some(text) => Sort::parse(text).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_sort",
                format!("sort `{text}` is not rating, installs or newest"),
            )
        })?,
    };
    let filter = BrowseFilter {
        q: params.q,
        category: params.category,
        featured_only: params.featured == Some(true),
        sort,
    };
    let listings = packages::browse(&state, &filter).await?;
    let total = listings.len();
    let data = listings
        .iter()
        .skip(offset)
        .take(limit)
        .map(PackageView::from)
        .collect();
    let next_cursor = (offset.saturating_add(limit) < total).then(|| (offset + limit).to_string());
    Ok(Json(PackageList { data, next_cursor }))
}

/// One connector with its versions and permissions (public).
#[utoipa::path(get, path = "/api/v1/marketplace/packages/{namespace}/{name}", tag = "marketplace", operation_id = "get_package",
    params(("namespace" = String, Path, description = "Publisher namespace"), ("name" = String, Path, description = "Package name (the connector id)")), security(()),
    responses((status = 200, body = PackageView), (status = 404, description = "No such package", body = crate::error::Problem)))]
pub async fn get_package(
    State(state): State<Arc<AppState>>,
    ApiPath((namespace, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<PackageView>> {
    let listing = packages::package_listing(&state, &namespace, &name).await?;
    Ok(Json(PackageView::from(&listing)))
}

/// Bundle bytes as a download, or the problem.
fn bundle_response(found: registry::MarketplaceResult<Vec<u8>>) -> Response {
    match found {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Download a bundle by digest (public).
#[utoipa::path(get, path = "/api/v1/marketplace/bundles/{digest}", tag = "marketplace", operation_id = "download_bundle",
    params(("digest" = String, Path, description = "The bundle's sha256 (hex)")), security(()),
    responses((status = 200, description = "The bundle", content_type = "application/octet-stream", body = BundleBytes),
        (status = 404, description = "No such bundle", body = crate::error::Problem)))]
pub async fn download(State(state): State<Arc<AppState>>, ApiPath(digest): ApiPath<String>) -> Response {
    bundle_response(packages::bundle(&state, &digest).await)
}

/// Download one version's bundle, signed by its publisher (public).
#[utoipa::path(get, path = "/api/v1/marketplace/packages/{namespace}/{name}/versions/{version}/bundle", tag = "marketplace",
    operation_id = "download_package_version", params(("namespace" = String, Path, description = "Publisher namespace"), ("name" = String, Path, description = "Package name (the connector id)"), ("version" = String, Path, description = "Semver")), security(()),
    responses((status = 200, description = "The bundle", content_type = "application/octet-stream", body = BundleBytes),
        (status = 404, description = "No such package or version", body = crate::error::Problem)))]
pub async fn download_version(
    State(state): State<Arc<AppState>>,
    ApiPath((namespace, name, version)): ApiPath<(String, String, String)>,
) -> Response {
    bundle_response(packages::package_version_bundle(&state, &namespace, &name, &version).await)
}

/// Yank a version (`marketplace:publish`, owner).
#[utoipa::path(post, path = "/api/v1/marketplace/packages/{namespace}/{name}/versions/{version}/yank", tag = "marketplace",
    operation_id = "yank_package_version", params(("namespace" = String, Path, description = "Publisher namespace"), ("name" = String, Path, description = "Package name (the connector id)"), ("version" = String, Path, description = "Semver")),
    responses((status = 204, description = "Yanked"),
        (status = 403, description = "The namespace belongs to another workspace", body = crate::error::Problem),
        (status = 404, description = "No such publisher, package or version", body = crate::error::Problem)))]
pub async fn yank(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath((namespace, name, version)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::MarketplacePublish)?;
    registry::publish::yank(&state, &principal.workspace_id, &namespace, &name, &version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Request to feature or unfeature a connector.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetFeatured {
    /// Featured or not (default `true`).
    pub featured: Option<bool>,
}

/// Feature or unfeature a connector (operator keys: `workspaces:create`).
#[utoipa::path(post, path = "/api/v1/marketplace/packages/{namespace}/{name}/featured", tag = "marketplace",
    operation_id = "set_package_featured", params(("namespace" = String, Path, description = "Publisher namespace"), ("name" = String, Path, description = "Package name (the connector id)")), request_body = SetFeatured,
    responses((status = 204, description = "Done"), (status = 404, description = "No such package", body = crate::error::Problem)))]
pub async fn set_featured(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath((namespace, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetFeatured>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::WorkspacesCreate)?;
    let featured = body.featured.unwrap_or(true);
    registry::publish::set_featured(&state, &namespace, &name, featured).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Request to install from a marketplace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallFromMarketplace {
    /// `namespace/name`.
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{1,39}/[A-Za-z0-9_-]{1,64}$")]
    pub package: String,
    /// Version (default: the latest non-yanked one).
    pub version: Option<String>,
    /// Base URL of a remote marketplace (default: this server's own registry).
    pub marketplace: Option<String>,
    /// The permissions the admin accepts.
    #[schema(value_type = Option<super::connectors::PermissionsDoc>)]
    pub accept_permissions: Option<Permissions>,
    /// Allow replacing an installed connector of the same id from another publisher or source.
    #[serde(default)]
    pub replace_publisher: bool,
}

/// Install a connector from a marketplace (`connections:write`). The host downloads the
/// bundle by digest, re-verifies its signature against its own trust policy, and pins it.
#[utoipa::path(post, path = "/api/v1/connectors/from-marketplace", tag = "connectors", operation_id = "install_from_marketplace",
    request_body = InstallFromMarketplace,
    responses((status = 201, body = InstallationView),
        (status = 404, description = "No such package or version", body = crate::error::Problem),
        (status = 409, description = "Widens the installed version's permissions, or comes from another publisher", body = crate::error::Problem),
        (status = 422, description = "A yanked version, a marketplace URL that is invalid or not allowed, a bundle that is not what the marketplace listed, an untrusted signature, permissions not accepted, or the body does not match the schema", body = crate::error::Problem),
        (status = 502, description = "The remote marketplace did not answer, or answered with an error or something that is not a listing", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn install_from_marketplace(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<InstallFromMarketplace>,
) -> ApiResult<(StatusCode, Json<InstallationView>)> {
    principal.require(Scope::ConnectionsWrite)?;
    let request = MarketplaceInstall {
        package: body.package,
        version: body.version,
        marketplace: body.marketplace,
        accept_permissions: body.accept_permissions,
        replace_publisher: body.replace_publisher,
    };
    let record =
        registry::install_from_marketplace(&state, &principal.workspace_id, &principal.key_id, request).await?;
    Ok((StatusCode::CREATED, Json(InstallationView::build(&record)?)))
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
#[utoipa::path(get, path = "/api/v1/marketplace/packages/{namespace}/{name}/reviews", tag = "marketplace", operation_id = "list_reviews",
    params(("namespace" = String, Path, description = "Publisher namespace"), ("name" = String, Path, description = "Package name (the connector id)")), security(()),
    responses((status = 200, body = ReviewList), (status = 404, description = "No such package", body = crate::error::Problem)))]
pub async fn list_reviews(
    State(state): State<Arc<AppState>>,
    ApiPath((namespace, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<ReviewList>> {
    let data = reviews::list(&state, &namespace, &name).await?;
    Ok(Json(ReviewList {
        average: reviews::average(&data),
        count: data.len(),
        data: data.into_iter().map(ReviewView::from).collect(),
    }))
}

/// A rating.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteReview {
    /// 1–5.
    #[schema(minimum = 1, maximum = 5)]
    pub stars: i64,
    /// Optional text, at most 5000 characters (counted as UTF-8 bytes).
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub body: String,
}

/// Rate a connector your workspace installed from this marketplace; again to edit
/// (`connections:write`: a viewer's keys cannot). One review per user per item.
#[utoipa::path(post, path = "/api/v1/marketplace/packages/{namespace}/{name}/reviews", tag = "marketplace", operation_id = "write_review",
    params(("namespace" = String, Path, description = "Publisher namespace"), ("name" = String, Path, description = "Package name (the connector id)")), request_body = WriteReview,
    responses((status = 200, body = ReviewRecord),
        (status = 403, description = "The key lacks `connections:write`, or this workspace has not installed the connector from this marketplace (`install_required`)", body = crate::error::Problem),
        (status = 404, description = "No such package", body = crate::error::Problem)))]
pub async fn write_review(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath((namespace, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<WriteReview>,
) -> ApiResult<Json<ReviewRecord>> {
    principal.require(Scope::ConnectionsWrite)?;
    let review = NewReview {
        stars: body.stars,
        body: body.body,
    };
    let written = reviews::write(
        &state,
        &principal.workspace_id,
        principal.member_id.as_deref(),
        &namespace,
        &name,
        review,
    )
    .await?;
    Ok(Json(written))
}

/// A publisher's reply.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The reply text.
    pub reply: String,
}

/// Reply to a review of your connector (`marketplace:publish`, owner).
#[utoipa::path(post, path = "/api/v1/marketplace/packages/{namespace}/{name}/reviews/{id}/reply", tag = "marketplace",
    operation_id = "reply_to_review", params(("namespace" = String, Path, description = "Publisher namespace"), ("name" = String, Path, description = "Package name (the connector id)"), ("id" = String, Path, description = "`rev_…`")), request_body = Reply,
    responses((status = 204, description = "Replied"),
        (status = 403, description = "The namespace belongs to another workspace", body = crate::error::Problem),
        (status = 404, description = "No such publisher, package or review", body = crate::error::Problem)))]
pub async fn reply(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath((namespace, name, id)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<Reply>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::MarketplacePublish)?;
    reviews::reply(&state, &principal.workspace_id, &namespace, &name, &id, &body.reply).await?;
    Ok(StatusCode::NO_CONTENT)
}
