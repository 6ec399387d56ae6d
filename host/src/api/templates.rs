//! `/api/v1/templates`: the workflow-template marketplace's HTTP surface. Publishing signed
//! template bundles (public or private), browsing with filters (text, category, difficulty,
//! connector, featured; sorted by rating, uses or newest), a template's page (the
//! connectors it needs and whether each is installed here, its variables, versions, rating,
//! uses), using it (dry run or for real), upgrading a workflow made from one, yank, feature,
//! reviews. A template's id is `namespace/name`. The rules live in [`crate::templates`];
//! this file parses, authorizes and shapes the answers.

use super::AppState;
use super::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery, Principal};
use super::marketplace::{Reply, ReviewList, ReviewView, SetFeatured, WriteReview, offset_page};
use super::workflows::{TemplateOrigin, WorkflowView, public_base, view};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::marketplace::reviews::{self, NewReview};
use crate::store::{BrowsedTemplate, ReviewRecord, TemplateQuery, TemplateVersionRecord};
use crate::templates::definition::{Category, Difficulty, Template};
use crate::templates::instantiate::UseRequest;
use crate::templates::registry::{self, TemplateListing};
use crate::templates::using::{self, Change, UpgradeRequest, UseOutcome};
use crate::templates::{UseError, UseProblem};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexum_marketplace::signing::SigningError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

impl From<UseError> for ApiError {
    fn from(e: UseError) -> Self {
        let detail = e.to_string();
        match e {
            UseError::Marketplace(m) => m.into(),
            UseError::Untrusted(s) => {
                let code = match s {
                    SigningError::Unsigned => "unsigned_template",
                    SigningError::UntrustedKey { .. } => "untrusted_template",
                    SigningError::BadSignature | SigningError::Malformed { .. } => "bad_signature",
                };
                ApiError::unprocessable(code, detail)
            }
            UseError::ForeignSigner { .. } => ApiError::unprocessable("untrusted_template", detail),
            UseError::Tampered => ApiError::unprocessable("template_tampered", detail),
            UseError::Refused(problems) => {
                let first = problems
                    .first()
                    .map(|p| format!("{}: {p}", p.path()))
                    .unwrap_or_default();
                ApiError::unprocessable("template_use_refused", first).with_extra(serde_json::json!(problems))
            }
            UseError::NotFromTemplate => ApiError::unprocessable("not_from_template", detail),
            UseError::Workflow(w) => w.into(),
            UseError::Store(s) => s.into(),
        }
    }
}

/// `{namespace}/{name}` of a template.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TemplatePath {
    /// Publisher namespace.
    pub namespace: String,
    /// The template's id within it.
    pub name: String,
}

/// `{namespace}/{name}/versions/{version}` of a template.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TemplateVersionPath {
    /// Publisher namespace.
    pub namespace: String,
    /// The template's id within it.
    pub name: String,
    /// Semver.
    pub version: String,
}

/// `?namespace=&private=` for publishing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublishTemplateParams {
    /// The publisher namespace to publish under.
    pub namespace: String,
    /// Visible only to this workspace (`true`) or to every workspace (`false`), for the
    /// whole template from this publish on. Left out: a new template is public and an
    /// existing one keeps its visibility.
    pub private: Option<bool>,
}

/// Browse parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BrowseTemplatesParams {
    /// Text to find in the id, name, summary, tags and connectors (case-insensitive).
    pub q: Option<String>,
    /// Exact category.
    #[param(value_type = Option<Category>, inline)]
    pub category: Option<String>,
    /// Exact difficulty.
    #[param(value_type = Option<Difficulty>, inline)]
    pub difficulty: Option<String>,
    /// Only templates a slot of which needs this connector (`nexum/slack`).
    pub connector: Option<String>,
    /// Only featured templates.
    pub featured: Option<bool>,
    /// `rating`, `uses` or `newest` (default).
    #[param(value_type = Option<TemplateSort>, inline)]
    pub sort: Option<String>,
    /// Page size 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// Offset cursor from the previous page (digits; empty for the first page).
    #[param(pattern = r"^[0-9]*$")]
    pub cursor: Option<String>,
}

/// How template browsing sorts.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the `sort` parameter
pub enum TemplateSort {
    /// Best rated first.
    Rating,
    /// Most used first.
    Uses,
    /// Newest first (the default).
    Newest,
}

/// A template as browsing lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateSummary {
    /// `namespace/name`: the template's id in this API.
    pub template: String,
    /// Publisher namespace.
    pub namespace: String,
    /// Its id within the namespace.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// One line.
    pub summary: String,
    /// `SALES`, `SUPPORT`, …
    pub category: String,
    /// `BEGINNER` … `EXPERT`.
    pub difficulty: String,
    /// The connectors its slots need (`nexum/slack`).
    pub connectors: Vec<String>,
    /// Featured by the operator.
    pub featured: bool,
    /// Visible only to its publisher's workspace.
    pub private: bool,
    /// Latest non-yanked version.
    pub latest_version: Option<String>,
    /// Average stars (none without reviews).
    pub rating: Option<f64>,
    /// Number of reviews.
    pub reviews: i64,
    /// Workflows created from it, across versions.
    pub uses: i64,
    /// Unix ms of first publish.
    pub created_at: i64,
}

fn connectors_of(padded: &str) -> Vec<String> {
    padded.split_whitespace().map(str::to_string).collect()
}

impl From<BrowsedTemplate> for TemplateSummary {
    fn from(b: BrowsedTemplate) -> Self {
        let t = b.template;
        Self {
            template: format!("{}/{}", t.namespace, t.name),
            connectors: connectors_of(&t.connectors),
            namespace: t.namespace,
            name: t.name,
            display_name: t.display_name,
            summary: t.summary,
            category: t.category,
            difficulty: t.difficulty,
            featured: t.featured != 0,
            private: t.private != 0,
            latest_version: t.latest_version,
            rating: (b.review_count > 0).then(|| b.star_sum as f64 / b.review_count as f64),
            reviews: b.review_count,
            uses: b.uses,
            created_at: t.created_at,
        }
    }
}

/// A page of templates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    /// Templates.
    pub data: Vec<TemplateSummary>,
    /// How many match in all.
    pub total: i64,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// A connection slot of a template, with what this workspace has for it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlotView {
    /// The slot's name (the key to give in `connections`).
    pub slot: String,
    /// The connector it needs (`nexum/slack`): also the marketplace package to install.
    pub connector: String,
    /// The connector versions it works with (`^0.1`).
    pub version: String,
    /// The actions its steps call.
    pub actions: Vec<String>,
    /// What it is for.
    pub description: String,
    /// The version of that connector installed from that publisher in this workspace.
    pub installed: Option<String>,
    /// Whether the installed version is within `version`.
    pub satisfied: bool,
}

/// One version of a template.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateVersionView {
    /// Semver.
    pub version: String,
    /// Bundle digest.
    pub digest: String,
    /// Signing key id (`builtin` for starter templates).
    pub signer: String,
    /// Yanked: cannot be newly used.
    pub yanked: bool,
    /// Workflows created from it.
    pub uses: i64,
    /// Executions of workflows on it.
    pub executions: i64,
    /// Unix ms.
    pub published_at: i64,
}

impl From<&TemplateVersionRecord> for TemplateVersionView {
    fn from(v: &TemplateVersionRecord) -> Self {
        Self {
            version: v.version.clone(),
            digest: v.digest.clone(),
            signer: v.signer.clone(),
            yanked: v.yanked_at.is_some(),
            uses: v.uses,
            executions: v.executions,
            published_at: v.created_at,
        }
    }
}

/// A template's page: everything a user checks before using it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    /// `namespace/name`.
    pub template: String,
    /// Publisher namespace (the author).
    pub namespace: String,
    /// Its id within the namespace.
    pub name: String,
    /// Featured by the operator.
    pub featured: bool,
    /// Visible only to its publisher's workspace.
    pub private: bool,
    /// Latest non-yanked version (the one described here; none when all are yanked).
    pub latest_version: Option<String>,
    /// The latest version's template: metadata, variables, slots and workflow.
    #[schema(value_type = Option<Object>)]
    pub latest: Option<Value>,
    /// The latest version's slots, with what this workspace has installed for each.
    pub slots: Vec<SlotView>,
    /// Whether every slot's connector is installed here in a fitting version.
    pub ready: bool,
    /// Average stars (none without reviews).
    pub rating: Option<f64>,
    /// Number of reviews.
    pub reviews: usize,
    /// Workflows created from it, across versions.
    pub uses: i64,
    /// Executions of those workflows, across versions.
    pub executions: i64,
    /// Every version, oldest first.
    pub versions: Vec<TemplateVersionView>,
    /// Unix ms of first publish.
    pub created_at: i64,
}

/// A template's page for `principal`'s workspace.
async fn template_view(state: &AppState, principal: &Principal, listing: TemplateListing) -> ApiResult<TemplateView> {
    let installed = state
        .db
        .list_installations(&principal.workspace_id, "", 10_000)
        .await?
        .items;
    let slots: Vec<SlotView> = listing
        .latest
        .iter()
        .flat_map(|t: &Template| t.slots.iter())
        .map(|(name, slot)| {
            let have = installed
                .iter()
                .find(|i| i.connector_id == slot.connector_id() && i.source == slot.source())
                .map(|i| i.version.clone());
            let satisfied = have
                .as_deref()
                .and_then(|v| semver::Version::parse(v).ok())
                .is_some_and(|v| slot.version.matches(&v));
            SlotView {
                slot: name.clone(),
                connector: slot.connector.clone(),
                version: slot.version.to_string(),
                actions: slot.actions.clone(),
                description: slot.description.clone(),
                installed: have,
                satisfied,
            }
        })
        .collect();
    Ok(TemplateView {
        template: listing.reference(),
        namespace: listing.record.namespace.clone(),
        name: listing.record.name.clone(),
        featured: listing.record.featured != 0,
        private: listing.record.private != 0,
        latest_version: listing.record.latest_version.clone(),
        latest: listing.latest.as_ref().and_then(|t| serde_json::to_value(t).ok()),
        ready: listing.latest.is_some() && slots.iter().all(|s| s.satisfied),
        slots,
        rating: listing.rating,
        reviews: listing.reviews,
        uses: listing.uses(),
        executions: listing.executions(),
        versions: listing.versions.iter().map(TemplateVersionView::from).collect(),
        created_at: listing.record.created_at,
    })
}

/// A `.nxt` template bundle's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct TemplateBundleBytes(#[allow(dead_code)] Vec<u8>);

/// Publish a signed template bundle (body: the `.nxt` bytes) (`marketplace:publish`,
/// owner). The signature must verify against one of the namespace's unrevoked keys and the
/// template must parse; a version, once published, never changes.
#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", operation_id = "publish_template", params(PublishTemplateParams),
    request_body(content = TemplateBundleBytes, content_type = "application/octet-stream", description = "The signed `.nxt` bundle"),
    responses((status = 201, description = "Published", body = TemplateView),
        (status = 200, description = "This version was already published with the same bytes", body = TemplateView),
        (status = 403, description = "The namespace belongs to another workspace", body = crate::error::Problem),
        (status = 404, description = "No such publisher", body = crate::error::Problem),
        (status = 409, description = "This version exists with other bytes", body = crate::error::Problem),
        (status = 422, description = "Not a valid template bundle (`invalid_bundle`), an invalid template (`invalid_template`, with `errors[]` naming each field), or not signed by one of the namespace's unrevoked keys", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn publish(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(params): ApiQuery<PublishTemplateParams>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    principal.require(Scope::MarketplacePublish)?;
    let published = registry::publish(
        &state,
        &principal.workspace_id,
        &principal.key_id,
        &params.namespace,
        &body,
        params.private,
    )
    .await?;
    let status = if published.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(template_view(&state, &principal, published.listing).await?),
    ))
}

/// Browse and search templates (`connections:read`): public ones and this workspace's
/// private ones, filtered, sorted and paged by the database.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", operation_id = "browse_templates", params(BrowseTemplatesParams),
    responses((status = 200, body = TemplateList),
        (status = 422, description = "`limit` outside 1–100, an unknown `sort`, `category` or `difficulty`, or a `cursor` this API did not return", body = crate::error::Problem)))]
pub async fn browse(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(params): ApiQuery<BrowseTemplatesParams>,
) -> ApiResult<Json<TemplateList>> {
    principal.require(Scope::ConnectionsRead)?;
    let (limit, offset) = offset_page(params.limit, params.cursor.as_deref())?;
    // Both at most usize::MAX / 2 (a page past the end is empty), so they fit SQL's BIGINT.
    let (limit, offset) = (
        i64::try_from(limit).unwrap_or(i64::MAX),
        i64::try_from(offset).unwrap_or(i64::MAX / 2),
    );
    let sort = params.sort.as_deref().unwrap_or("newest");
    if !["rating", "uses", "newest"].contains(&sort) {
        return Err(ApiError::unprocessable(
            "invalid_sort",
            format!("sort `{sort}` is not rating, uses or newest"),
        ));
    }
    let known = |value: &Option<String>, parse: fn(Value) -> bool, what: &str| -> ApiResult<()> {
        match value {
            Some(v) if !parse(Value::String(v.clone())) => Err(ApiError::unprocessable(
                &format!("invalid_{what}"),
                format!("`{v}` is not a template {what}"),
            )),
            _ => Ok(()),
        }
    };
    known(
        &params.category,
        |v| serde_json::from_value::<Category>(v).is_ok(),
        "category",
    )?;
    known(
        &params.difficulty,
        |v| serde_json::from_value::<Difficulty>(v).is_ok(),
        "difficulty",
    )?;
    let text = params.q.as_deref().unwrap_or("").to_lowercase();
    let query = TemplateQuery {
        viewer: Some(&principal.workspace_id),
        text: &text,
        category: params.category.as_deref().unwrap_or(""),
        difficulty: params.difficulty.as_deref().unwrap_or(""),
        connector: params.connector.as_deref().unwrap_or(""),
        featured_only: params.featured == Some(true),
        sort,
        limit,
        offset,
    };
    let (rows, total) = registry::browse(&state, &query).await?;
    let next_cursor = (offset.saturating_add(limit) < total).then(|| (offset + limit).to_string());
    Ok(Json(TemplateList {
        data: rows.into_iter().map(TemplateSummary::from).collect(),
        total,
        next_cursor,
    }))
}

/// A template's page (`connections:read`): what it needs, whether this workspace has it,
/// its variables, versions, rating and uses.
#[utoipa::path(get, path = "/api/v1/templates/{namespace}/{name}", tag = "templates", operation_id = "get_template", params(TemplatePath),
    responses((status = 200, body = TemplateView), (status = 404, description = "No such template (or it is private to another workspace)", body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(path): ApiPath<TemplatePath>,
) -> ApiResult<Json<TemplateView>> {
    principal.require(Scope::ConnectionsRead)?;
    let record = registry::find_visible(&state, &principal.workspace_id, &path.namespace, &path.name).await?;
    let listing = registry::listing(&state, record).await?;
    Ok(Json(template_view(&state, &principal, listing).await?))
}

/// One version with its template document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateVersionDocument {
    /// The version.
    #[serde(flatten)]
    pub version: TemplateVersionView,
    /// Its `template.json`.
    #[schema(value_type = Object)]
    pub template: Value,
}

/// One version of a template, with its document (`connections:read`).
#[utoipa::path(get, path = "/api/v1/templates/{namespace}/{name}/versions/{version}", tag = "templates", operation_id = "get_template_version", params(TemplateVersionPath),
    responses((status = 200, body = TemplateVersionDocument), (status = 404, description = "No such template or version", body = crate::error::Problem)))]
pub async fn get_version(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(path): ApiPath<TemplateVersionPath>,
) -> ApiResult<Json<TemplateVersionDocument>> {
    principal.require(Scope::ConnectionsRead)?;
    let record = registry::find_visible(&state, &principal.workspace_id, &path.namespace, &path.name).await?;
    let listing = registry::listing(&state, record).await?;
    let version = registry::version(&listing, &path.version)?;
    let document = registry::document(&state, &listing.record.id, &version.version).await?;
    Ok(Json(TemplateVersionDocument {
        version: TemplateVersionView::from(version),
        template: serde_json::from_str(&document).unwrap_or(Value::Null),
    }))
}

/// Download one version's signed bundle (`connections:read`).
#[utoipa::path(get, path = "/api/v1/templates/{namespace}/{name}/versions/{version}/bundle", tag = "templates", operation_id = "download_template_version", params(TemplateVersionPath),
    responses((status = 200, description = "The bundle", content_type = "application/octet-stream", body = TemplateBundleBytes),
        (status = 404, description = "No such template or version", body = crate::error::Problem)))]
pub async fn download(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(path): ApiPath<TemplateVersionPath>,
) -> ApiResult<Response> {
    principal.require(Scope::ConnectionsRead)?;
    let bytes = registry::version_bundle(
        &state,
        &principal.workspace_id,
        &path.namespace,
        &path.name,
        &path.version,
    )
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Yank a version (`marketplace:publish`, owner): workflows made from it keep running; it
/// cannot be newly used.
#[utoipa::path(post, path = "/api/v1/templates/{namespace}/{name}/versions/{version}/yank", tag = "templates", operation_id = "yank_template_version", params(TemplateVersionPath),
    responses((status = 204, description = "Yanked"),
        (status = 403, description = "The namespace belongs to another workspace", body = crate::error::Problem),
        (status = 404, description = "No such publisher, template or version", body = crate::error::Problem)))]
pub async fn yank(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(path): ApiPath<TemplateVersionPath>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::MarketplacePublish)?;
    registry::yank(
        &state,
        &principal.workspace_id,
        &path.namespace,
        &path.name,
        &path.version,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Feature or unfeature a template (operator keys: `workspaces:create`).
#[utoipa::path(post, path = "/api/v1/templates/{namespace}/{name}/featured", tag = "templates", operation_id = "set_template_featured", params(TemplatePath),
    request_body = SetFeatured,
    responses((status = 204, description = "Done"), (status = 404, description = "No such template", body = crate::error::Problem)))]
pub async fn set_featured(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(path): ApiPath<TemplatePath>,
    ApiJson(body): ApiJson<SetFeatured>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::WorkspacesCreate)?;
    registry::set_featured(&state, &path.namespace, &path.name, body.featured.unwrap_or(true)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?dry_run=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunParams {
    /// Report what would happen without creating or changing anything.
    pub dry_run: Option<bool>,
}

/// What a client sends to use a template.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents `UseRequest`, which the handler parses
pub struct UseTemplateBody {
    /// A connection (`conn_…`) of this workspace for each slot.
    connections: Option<BTreeMap<String, String>>,
    /// Values for the template's variables (the others take their defaults).
    #[schema(value_type = Option<Object>)]
    variables: Option<BTreeMap<String, Value>>,
    /// The workflow's name (default: the template's name; 1–200 characters).
    name: Option<String>,
    /// Whether its trigger starts it (default false).
    enabled: Option<bool>,
    /// Write-only: the signing secrets (1–5) when the template's trigger is a webhook.
    trigger_secrets: Option<Vec<String>>,
}

/// A use problem, naming the field of the request.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // documents `UseProblem`'s serialization
pub struct UseProblemView {
    /// `missing_connector`, `wrong_connector`, `version_out_of_range`, `unknown_connection`,
    /// `missing_slot`, `unknown_slot`, `bad_variable`, `missing_variable`,
    /// `unknown_variable`, `bad_name`, `bad_trigger_secrets`, `invalid_workflow`.
    code: String,
    /// `connections.<slot>`, `variables.<name>`, `name`, `trigger_secrets`.
    path: String,
    /// What is wrong and what to do.
    message: String,
    /// The slot, for slot problems.
    slot: Option<String>,
    /// `missing_connector`: the marketplace package to install.
    package: Option<String>,
}

/// What a dry run would do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsePlanView {
    /// `namespace/name`.
    pub template: String,
    /// The version planned with.
    pub version: String,
    /// Whether the real call would create the workflow.
    pub ready: bool,
    /// Everything that stops it.
    #[schema(value_type = Vec<UseProblemView>)]
    pub problems: Vec<UseProblem>,
    /// The workflow that would be created, as `POST /workflows` takes it (signing secrets
    /// left out).
    #[schema(value_type = Option<Object>)]
    pub workflow: Option<Value>,
}

/// The workflow a use created.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsedTemplate {
    /// `namespace/name`.
    pub template: String,
    /// The version used.
    pub version: String,
    /// The workflow (disabled unless `enabled` was sent).
    pub workflow: WorkflowView,
}

async fn use_at(
    state: &Arc<AppState>,
    principal: &Principal,
    headers: &HeaderMap,
    path: (&str, &str, Option<&str>),
    dry_run: bool,
    request: UseRequest,
) -> ApiResult<Response> {
    principal.require_or_admin(Scope::WorkflowsWrite)?;
    let (namespace, name, version) = path;
    let outcome = using::use_template(
        state,
        &principal.workspace_id,
        namespace,
        name,
        version,
        request,
        dry_run,
    )
    .await?;
    Ok(match outcome {
        UseOutcome::Planned {
            plan,
            template,
            version,
        } => Json(UsePlanView {
            template,
            version,
            ready: plan.is_ready(),
            problems: plan.problems,
            workflow: plan.workflow,
        })
        .into_response(),
        UseOutcome::Created {
            saved,
            template,
            version,
        } => {
            let mut workflow = view(*saved, &public_base(state, headers));
            workflow.template = Some(TemplateOrigin {
                template: template.clone(),
                version: version.clone(),
            });
            (
                StatusCode::CREATED,
                Json(UsedTemplate {
                    template,
                    version,
                    workflow,
                }),
            )
                .into_response()
        }
    })
}

/// Use the latest version of a template (`workflows:write` or `admin`): map each slot to a
/// connection and give the variables. `?dry_run=true` reports every problem (connectors to
/// install, connections that do not fit, bad or missing variables) and the workflow it would
/// create, without creating anything. The real call creates the workflow (disabled unless
/// `enabled: true`), linked to the template version, and counts the use.
#[utoipa::path(post, path = "/api/v1/templates/{namespace}/{name}/use", tag = "templates", operation_id = "use_template", params(TemplatePath, DryRunParams),
    request_body = UseTemplateBody,
    responses((status = 201, description = "The workflow was created", body = UsedTemplate),
        (status = 200, description = "Dry run: what would happen", body = UsePlanView),
        (status = 404, description = "No such template (or private to another workspace)", body = crate::error::Problem),
        (status = 422, description = "Refused: `template_use_refused` (with `errors[]`, each naming the slot or variable), `invalid_workflow`, `version_yanked`, `no_versions`, `unsigned_template`, `untrusted_template`, `bad_signature` or `template_tampered`", body = crate::error::Problem)))]
pub async fn use_latest(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    ApiPath(path): ApiPath<TemplatePath>,
    ApiQuery(params): ApiQuery<DryRunParams>,
    ApiJson(body): ApiJson<UseRequest>,
) -> ApiResult<Response> {
    let dry_run = params.dry_run.unwrap_or(false);
    use_at(
        &state,
        &principal,
        &headers,
        (&path.namespace, &path.name, None),
        dry_run,
        body,
    )
    .await
}

/// Use one version of a template (`workflows:write` or `admin`); as
/// `POST /templates/{namespace}/{name}/use`.
#[utoipa::path(post, path = "/api/v1/templates/{namespace}/{name}/versions/{version}/use", tag = "templates", operation_id = "use_template_version", params(TemplateVersionPath, DryRunParams),
    request_body = UseTemplateBody,
    responses((status = 201, description = "The workflow was created", body = UsedTemplate),
        (status = 200, description = "Dry run: what would happen", body = UsePlanView),
        (status = 404, description = "No such template or version", body = crate::error::Problem),
        (status = 422, description = "Refused: `template_use_refused` (with `errors[]`), `invalid_workflow`, `version_yanked`, `unsigned_template`, `untrusted_template`, `bad_signature` or `template_tampered`", body = crate::error::Problem)))]
pub async fn use_version(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    ApiPath(path): ApiPath<TemplateVersionPath>,
    ApiQuery(params): ApiQuery<DryRunParams>,
    ApiJson(body): ApiJson<UseRequest>,
) -> ApiResult<Response> {
    let dry_run = params.dry_run.unwrap_or(false);
    let at = (path.namespace.as_str(), path.name.as_str(), Some(path.version.as_str()));
    use_at(&state, &principal, &headers, at, dry_run, body).await
}

/// Request to move a workflow to another version of its template.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeBody {
    /// The version to move to (default: the latest non-yanked one).
    pub version: Option<String>,
    /// Values for variables the new version adds or that should change.
    #[serde(default, deserialize_with = "crate::templates::instantiate::null_as_default")]
    #[schema(value_type = Option<Object>)]
    pub variables: BTreeMap<String, Value>,
    /// Connections (`conn_…`) for slots the new version adds, or to replace; the other
    /// slots keep theirs.
    #[serde(default, deserialize_with = "crate::templates::instantiate::null_as_default")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub connections: BTreeMap<String, String>,
    /// Write-only: new webhook signing secrets (1–5). Needed only when the new version's
    /// webhook has another scheme or connection; otherwise the workflow keeps its secrets.
    #[serde(default, deserialize_with = "crate::templates::instantiate::null_as_default")]
    #[schema(value_type = Option<Vec<String>>, write_only)]
    pub trigger_secrets: Vec<String>,
}

/// Shown without the trigger secrets.
impl std::fmt::Debug for UpgradeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeBody")
            .field("version", &self.version)
            .field("variables", &self.variables)
            .field("connections", &self.connections)
            .field("trigger_secrets", &format!("[{} redacted]", self.trigger_secrets.len()))
            .finish()
    }
}

/// What an upgrade did or would do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpgradeView {
    /// `namespace/name`.
    pub template: String,
    /// The version the workflow was on.
    pub from: String,
    /// The version it moves to.
    pub to: String,
    /// Every field of the definition that changes.
    pub changes: Vec<Change>,
    /// What stops it (a dry run reports them; the real call answers 422 instead).
    #[schema(value_type = Vec<UseProblemView>)]
    pub problems: Vec<UseProblem>,
    /// The workflow after the upgrade (not for a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowView>,
}

/// `{id}` of a workflow.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UpgradePath {
    /// `wf_…`
    pub id: String,
}

/// Move a workflow made from a template to another version of it (`workflows:write` or
/// `admin`), keeping its slot → connection mapping (for the slots the new version still
/// has; `connections` adds or replaces), variable values, name, enabled state and, unless
/// the webhook's scheme or connection changes, its signing secrets. The trigger becomes
/// the new version's. Moving is not counted as a new use. `?dry_run=true` shows the
/// definition diff without changing anything; the real call saves a new workflow version.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/template-upgrade", tag = "templates", operation_id = "upgrade_workflow_template", params(UpgradePath, DryRunParams),
    request_body = UpgradeBody,
    responses((status = 200, body = UpgradeView),
        (status = 404, description = "No such workflow, or its template is gone or private", body = crate::error::Problem),
        (status = 409, description = "The workflow changed meanwhile", body = crate::error::Problem),
        (status = 422, description = "`not_from_template`, `template_use_refused` (with `errors[]`), `invalid_workflow`, `version_yanked` or a trust failure", body = crate::error::Problem)))]
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    ApiPath(path): ApiPath<UpgradePath>,
    ApiQuery(params): ApiQuery<DryRunParams>,
    ApiJson(body): ApiJson<UpgradeBody>,
) -> ApiResult<Json<UpgradeView>> {
    principal.require_or_admin(Scope::WorkflowsWrite)?;
    let done = using::upgrade(
        &state,
        &principal.workspace_id,
        &path.id,
        UpgradeRequest {
            to: body.version,
            variables: body.variables,
            connections: body.connections,
            trigger_secrets: body.trigger_secrets,
        },
        params.dry_run.unwrap_or(false),
    )
    .await?;
    let workflow = done.saved.map(|s| {
        let mut shown = view(*s, &public_base(&state, &headers));
        shown.template = Some(TemplateOrigin {
            template: done.template.clone(),
            version: done.to.clone(),
        });
        shown
    });
    Ok(Json(UpgradeView {
        template: done.template,
        from: done.from,
        to: done.to,
        changes: done.changes,
        problems: done.problems,
        workflow,
    }))
}

/// List a template's reviews (`connections:read`).
#[utoipa::path(get, path = "/api/v1/templates/{namespace}/{name}/reviews", tag = "templates", operation_id = "list_template_reviews", params(TemplatePath),
    responses((status = 200, body = ReviewList), (status = 404, description = "No such template", body = crate::error::Problem)))]
pub async fn list_reviews(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(path): ApiPath<TemplatePath>,
) -> ApiResult<Json<ReviewList>> {
    principal.require(Scope::ConnectionsRead)?;
    let data = registry::reviews_of(&state, &principal.workspace_id, &path.namespace, &path.name).await?;
    Ok(Json(ReviewList {
        average: reviews::average(&data),
        count: data.len(),
        data: data.into_iter().map(ReviewView::from).collect(),
    }))
}

/// Rate a template your workspace made a workflow from; again to edit
/// (`connections:write`). One review per user per template, marked with the version used.
#[utoipa::path(post, path = "/api/v1/templates/{namespace}/{name}/reviews", tag = "templates", operation_id = "write_template_review", params(TemplatePath),
    request_body = WriteReview,
    responses((status = 200, body = ReviewRecord),
        (status = 403, description = "The key lacks `connections:write`, or this workspace never used the template (`use_required`)", body = crate::error::Problem),
        (status = 404, description = "No such template", body = crate::error::Problem),
        (status = 422, description = "Stars outside 1–5 or text over 5000 characters", body = crate::error::Problem)))]
pub async fn write_review(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(path): ApiPath<TemplatePath>,
    ApiJson(body): ApiJson<WriteReview>,
) -> ApiResult<Json<ReviewRecord>> {
    principal.require(Scope::ConnectionsWrite)?;
    let written = registry::review(
        &state,
        &principal.workspace_id,
        principal.member_id.as_deref(),
        &path.namespace,
        &path.name,
        NewReview {
            stars: body.stars,
            body: body.body,
        },
    )
    .await?;
    Ok(Json(written))
}

/// `{namespace}/{name}/reviews/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TemplateReviewPath {
    /// Publisher namespace.
    pub namespace: String,
    /// The template's id within it.
    pub name: String,
    /// `rev_…`
    pub id: String,
}

/// Reply to a review of your template (`marketplace:publish`, owner).
#[utoipa::path(post, path = "/api/v1/templates/{namespace}/{name}/reviews/{id}/reply", tag = "templates", operation_id = "reply_to_template_review", params(TemplateReviewPath),
    request_body = Reply,
    responses((status = 204, description = "Replied"),
        (status = 403, description = "The namespace belongs to another workspace", body = crate::error::Problem),
        (status = 404, description = "No such publisher, template or review", body = crate::error::Problem)))]
pub async fn reply(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(path): ApiPath<TemplateReviewPath>,
    ApiJson(body): ApiJson<Reply>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::MarketplacePublish)?;
    registry::reply(
        &state,
        &principal.workspace_id,
        &path.namespace,
        &path.name,
        &path.id,
        &body.reply,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
