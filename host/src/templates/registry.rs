//! The template registry: publishing signed template bundles under a publisher namespace
//! (the same namespaces and keys as connectors), immutable versions, yank, public or private
//! (private: only the publishing workspace sees it), featured by the operator, and browsing
//! with filters, sorting and paging in SQL.
//!
//! A template's listing row carries its latest installable version's metadata (name,
//! summary, category, difficulty, the connectors its slots need, lower-cased search text),
//! rewritten whenever a version is published or yanked, so a browse is one query.

use super::definition::Template;
use crate::ids::WorkspaceId;
use crate::marketplace::publish::{owned_publisher, verify_for_namespace};
use crate::marketplace::reviews;
use crate::marketplace::{MarketplaceError, MarketplaceResult};
use crate::state::AppState;
use crate::store::{
    AuditEntry, BrowsedTemplate, PublisherRecord, StoreError, TemplateQuery, TemplateRecord, TemplateVersionRecord,
    new_id, now_ms,
};
use nexum_marketplace::signing::Signer;
use nexum_marketplace::template::TemplateBundle;

/// Most versions one template keeps (each holds a bundle of up to 2 MiB).
pub const MAX_VERSIONS: usize = 200;

/// A template with everything its page shows.
#[derive(Debug, Clone)]
pub struct TemplateListing {
    /// The listing row.
    pub record: TemplateRecord,
    /// Every version, oldest first.
    pub versions: Vec<TemplateVersionRecord>,
    /// The latest installable version, parsed (none when every version is yanked).
    pub latest: Option<Template>,
    /// Average stars (none without reviews).
    pub rating: Option<f64>,
    /// Number of reviews.
    pub reviews: usize,
}

impl TemplateListing {
    /// `namespace/name`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.record.namespace, self.record.name)
    }

    /// Uses across versions.
    pub fn uses(&self) -> i64 {
        self.versions.iter().map(|v| v.uses).sum()
    }

    /// Executions across versions.
    pub fn executions(&self) -> i64 {
        self.versions.iter().map(|v| v.executions).sum()
    }
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct PublishedTemplate {
    /// The listing after the publish.
    pub listing: TemplateListing,
    /// False when this exact version was already published with the same bytes.
    pub created: bool,
}

/// Parse a stored or published `template.json`.
pub fn parse_document(state: &AppState, bytes: &[u8]) -> MarketplaceResult<Template> {
    Template::parse(bytes, &state.workflows.renderer).map_err(|e| match e {
        super::TemplateError::Invalid(problems) => MarketplaceError::InvalidTemplate(problems),
        too_large @ super::TemplateError::TooLarge => {
            MarketplaceError::invalid("invalid_template", too_large.to_string())
        }
    })
}

/// A template bundle checked for publishing: integrity, a parsing template, and an icon
/// that the template names and the bundle carries.
fn checked(state: &AppState, bytes: &[u8]) -> MarketplaceResult<(TemplateBundle, Template)> {
    let bundle =
        TemplateBundle::parse(bytes).map_err(|e| MarketplaceError::invalid("invalid_bundle", e.to_string()))?;
    let template = parse_document(state, &bundle.template)?;
    let carried = bundle.icon().map(|(name, _)| name.to_string());
    if template.icon != carried {
        return Err(MarketplaceError::invalid(
            "invalid_bundle",
            match (&template.icon, carried) {
                (Some(named), _) => format!("template.json names the icon `{named}`, which the bundle does not carry"),
                (None, Some(carried)) => format!("the bundle carries `{carried}`, which template.json does not name"),
                (None, None) => String::new(),
            },
        ));
    }
    Ok((bundle, template))
}

/// Publish the template bundle `bytes` into `namespace` (owned by `workspace_id`), as
/// `actor`. Its signature must verify against one of the namespace's unrevoked keys; an
/// existing version is accepted again only with the same digest. `private`, when given,
/// sets the whole template's visibility from now on; otherwise a new template is public and
/// an existing one keeps its visibility.
pub async fn publish(
    state: &AppState,
    workspace_id: &WorkspaceId,
    actor: &str,
    namespace: &str,
    bytes: &[u8],
    private: Option<bool>,
) -> MarketplaceResult<PublishedTemplate> {
    let publisher = owned_publisher(state, workspace_id, namespace).await?;
    let (bundle, template) = checked(state, bytes)?;
    let signer = verify_for_namespace(state, &publisher, &bundle).await?;
    let (record, created) = record_version(state, &publisher, &bundle, &template, &signer, private).await?;
    // Audited on a repeat too: a publish whose audit write was lost (a crash between the
    // two) is retried with the same bytes, and that retry records it.
    state
        .db
        .append_audit(&[AuditEntry::new(
            workspace_id,
            actor,
            "template.publish",
            &record.id,
            format!(
                "{}/{}@{} sha256:{}{}",
                publisher.namespace,
                template.id,
                template.version,
                bundle.digest,
                if created { "" } else { " (already published)" }
            ),
        )])
        .await?;
    Ok(PublishedTemplate {
        listing: listing(state, record).await?,
        created,
    })
}

/// Store a checked bundle as a version of its template under `publisher`, recording
/// `signer`, and refresh the listing. Returns the template and whether the version is new
/// (an existing version with the same digest is `false`; with another, refused).
pub(super) async fn record_version(
    state: &AppState,
    publisher: &PublisherRecord,
    bundle: &TemplateBundle,
    template: &Template,
    signer: &Signer,
    private: Option<bool>,
) -> MarketplaceResult<(TemplateRecord, bool)> {
    let version = template.version.to_string();
    let now = now_ms();
    let record = match state.db.template(&publisher.namespace, &template.id).await? {
        Some(existing) => existing,
        None => {
            let fresh = TemplateRecord {
                id: new_id("tpl"),
                publisher_id: publisher.id.clone(),
                workspace_id: publisher.workspace_id.clone(),
                namespace: publisher.namespace.clone(),
                name: template.id.clone(),
                private: i64::from(private.unwrap_or(false)),
                featured: 0,
                latest_version: None,
                display_name: String::new(),
                summary: String::new(),
                category: String::new(),
                difficulty: String::new(),
                connectors: String::new(),
                search_text: String::new(),
                created_at: now,
                updated_at: now,
            };
            match state.db.insert_template(&fresh).await {
                Ok(()) => fresh,
                // Published at the same moment by another request: use that row.
                Err(StoreError::Conflict) => state
                    .db
                    .template(&publisher.namespace, &template.id)
                    .await?
                    .ok_or(MarketplaceError::NotFound("template"))?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let versions = state.db.template_versions(&record.id).await?;
    if versions.len() >= MAX_VERSIONS && !versions.iter().any(|v| v.version == version) {
        return Err(MarketplaceError::invalid(
            "too_many_versions",
            format!(
                "{}/{} has {MAX_VERSIONS} versions, the most a template keeps; publish it under a new name",
                publisher.namespace, template.id
            ),
        ));
    }
    let row = TemplateVersionRecord {
        template_id: record.id.clone(),
        version: version.clone(),
        digest: bundle.digest.clone(),
        document: String::from_utf8_lossy(&bundle.template).into_owned(),
        signer: signer.recorded(),
        yanked_at: None,
        uses: 0,
        executions: 0,
        created_at: now,
    };
    let stored = bundle
        .to_bytes()
        .map_err(|e| MarketplaceError::invalid("invalid_bundle", e.to_string()))?;
    let created = match state.db.insert_template_version(&row, &stored).await {
        Ok(()) => true,
        Err(StoreError::Conflict) => {
            let same = state
                .db
                .template_versions(&record.id)
                .await?
                .iter()
                .any(|v| v.version == version && v.digest == bundle.digest);
            if !same {
                return Err(MarketplaceError::VersionExists {
                    package: format!("{}/{}", publisher.namespace, template.id),
                    version,
                });
            }
            false
        }
        Err(e) => return Err(e.into()),
    };
    let record = refresh_listing(state, record, private).await?;
    Ok((record, created))
}

/// Rewrite a template's listing fields from its latest non-yanked version (and set its
/// visibility when given).
async fn refresh_listing(
    state: &AppState,
    mut record: TemplateRecord,
    private: Option<bool>,
) -> MarketplaceResult<TemplateRecord> {
    let versions = state.db.template_versions(&record.id).await?;
    if let Some(private) = private {
        record.private = i64::from(private);
    }
    record.latest_version = None;
    if let Some(latest) = latest(&versions) {
        let template = parse_document(state, document(state, &record.id, &latest.version).await?.as_bytes())?;
        let connectors: Vec<&str> = template.slots.values().map(|s| s.connector.as_str()).collect();
        record.latest_version = Some(latest.version.clone());
        record.display_name = template.name.clone();
        record.summary = template.summary.clone();
        record.category = enum_text(&template.category);
        record.difficulty = enum_text(&template.difficulty);
        record.connectors = format!(" {} ", connectors.join(" "));
        record.search_text = format!(
            "{}/{} {} {} {} {}",
            record.namespace,
            record.name,
            template.name,
            template.summary,
            template.tags.join(" "),
            connectors.join(" ")
        )
        .to_lowercase();
    }
    record.updated_at = now_ms();
    state.db.update_template_listing(&record).await?;
    Ok(record)
}

/// A category or difficulty as its JSON text (`DATA_PROCESSING`).
pub fn enum_text(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The highest non-yanked version by semver.
pub fn latest(versions: &[TemplateVersionRecord]) -> Option<&TemplateVersionRecord> {
    versions.iter().filter(|v| v.yanked_at.is_none()).max_by(|a, b| {
        semver::Version::parse(&a.version)
            .ok()
            .cmp(&semver::Version::parse(&b.version).ok())
    })
}

/// The template `namespace/name` if `viewer` may see it (a private template is not found
/// by any other workspace).
pub async fn find_visible(
    state: &AppState,
    viewer: &WorkspaceId,
    namespace: &str,
    name: &str,
) -> MarketplaceResult<TemplateRecord> {
    match state.db.template(namespace, name).await? {
        Some(t) if t.private == 0 || t.workspace_id == *viewer => Ok(t),
        _ => Err(MarketplaceError::NotFound("template")),
    }
}

/// The listing of a template row.
pub async fn listing(state: &AppState, record: TemplateRecord) -> MarketplaceResult<TemplateListing> {
    let versions = state.db.template_versions(&record.id).await?;
    let latest = match latest(&versions) {
        Some(v) => Some(parse_document(
            state,
            document(state, &record.id, &v.version).await?.as_bytes(),
        )?),
        None => None,
    };
    let reviews = state.db.reviews(reviews::TEMPLATE, &record.id).await?;
    Ok(TemplateListing {
        record,
        versions,
        latest,
        rating: reviews::average(&reviews),
        reviews: reviews.len(),
    })
}

/// One version's `template.json`.
pub async fn document(state: &AppState, template_id: &str, version: &str) -> MarketplaceResult<String> {
    state
        .db
        .template_document(template_id, version)
        .await?
        .ok_or(MarketplaceError::NotFound("version"))
}

/// One version of a listing, by semver text.
pub fn version<'a>(listing: &'a TemplateListing, version: &str) -> MarketplaceResult<&'a TemplateVersionRecord> {
    listing
        .versions
        .iter()
        .find(|v| v.version == version)
        .ok_or(MarketplaceError::NotFound("version"))
}

/// One page of the templates `query` matches, and how many match in all.
pub async fn browse(state: &AppState, query: &TemplateQuery<'_>) -> MarketplaceResult<(Vec<BrowsedTemplate>, i64)> {
    Ok(state.db.browse_templates(query).await?)
}

/// The signed bundle of `namespace/name@version`, as published (visible templates only).
pub async fn version_bundle(
    state: &AppState,
    viewer: &WorkspaceId,
    namespace: &str,
    name: &str,
    version: &str,
) -> MarketplaceResult<Vec<u8>> {
    let record = find_visible(state, viewer, namespace, name).await?;
    state
        .db
        .template_bundle(&record.id, version)
        .await?
        .ok_or(MarketplaceError::NotFound("version"))
}

/// Yank `namespace/name@version` (namespace owned by `workspace_id`): workflows made from it
/// keep running, but it cannot be newly used.
pub async fn yank(
    state: &AppState,
    workspace_id: &WorkspaceId,
    namespace: &str,
    name: &str,
    version: &str,
) -> MarketplaceResult<()> {
    owned_publisher(state, workspace_id, namespace).await?;
    let record = state
        .db
        .template(namespace, name)
        .await?
        .ok_or(MarketplaceError::NotFound("template"))?;
    if !state.db.yank_template_version(&record.id, version, now_ms()).await? {
        return Err(MarketplaceError::NotFound("version"));
    }
    refresh_listing(state, record, None).await?;
    Ok(())
}

/// Feature (or unfeature) `namespace/name`; an operator decision.
pub async fn set_featured(state: &AppState, namespace: &str, name: &str, featured: bool) -> MarketplaceResult<()> {
    let record = state
        .db
        .template(namespace, name)
        .await?
        .ok_or(MarketplaceError::NotFound("template"))?;
    Ok(state.db.set_template_featured(&record.id, featured).await?)
}

/// Reviews of a visible template, newest first.
pub async fn reviews_of(
    state: &AppState,
    viewer: &WorkspaceId,
    namespace: &str,
    name: &str,
) -> MarketplaceResult<Vec<crate::store::ReviewRecord>> {
    let record = find_visible(state, viewer, namespace, name).await?;
    Ok(state.db.reviews(reviews::TEMPLATE, &record.id).await?)
}

/// Write (or edit) the review of a template by a reviewer of `workspace_id`: only a
/// workspace that made a workflow from it may, marked "verified use of version X".
pub async fn review(
    state: &AppState,
    workspace_id: &WorkspaceId,
    member_id: Option<&str>,
    namespace: &str,
    name: &str,
    review: reviews::NewReview,
) -> MarketplaceResult<crate::store::ReviewRecord> {
    let record = find_visible(state, workspace_id, namespace, name).await?;
    let version = state
        .db
        .template_use(workspace_id, &record.id)
        .await?
        .ok_or(MarketplaceError::UseRequired)?;
    reviews::write_for(
        state,
        workspace_id,
        member_id,
        reviews::TEMPLATE,
        &record.id,
        version,
        review,
    )
    .await
}

/// The publisher's reply to review `review_id` of `namespace/name` (namespace owned by
/// `workspace_id`).
pub async fn reply(
    state: &AppState,
    workspace_id: &WorkspaceId,
    namespace: &str,
    name: &str,
    review_id: &str,
    text: &str,
) -> MarketplaceResult<()> {
    owned_publisher(state, workspace_id, namespace).await?;
    let record = find_visible(state, workspace_id, namespace, name).await?;
    reviews::reply_for(state, &record.id, review_id, text).await
}
