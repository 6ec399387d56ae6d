//! Workflow templates in the registry: a template per `namespace/name` (public or private to
//! its publisher's workspace), its immutable signed versions with their use and execution
//! counts, which workspaces used it, and which workflows were made from it.

use super::{Db, StoreResult};
use crate::ids::WorkspaceId;

/// A template listed under a publisher namespace, with its latest installable version's
/// metadata (so browsing filters and sorts in SQL).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRecord {
    /// `tpl_…`
    pub id: String,
    /// Publisher.
    pub publisher_id: String,
    /// The publisher's workspace: the only one that sees a private template.
    pub workspace_id: WorkspaceId,
    /// Namespace.
    pub namespace: String,
    /// Name (the template's `id`).
    pub name: String,
    /// 1 when only the publisher's workspace sees it.
    pub private: i64,
    /// 1 when featured by the operator.
    pub featured: i64,
    /// The highest non-yanked version (none when every version is yanked).
    pub latest_version: Option<String>,
    /// Display name of the latest version.
    pub display_name: String,
    /// Summary of the latest version.
    pub summary: String,
    /// Category of the latest version (`SALES`, …).
    pub category: String,
    /// Difficulty of the latest version (`BEGINNER`, …).
    pub difficulty: String,
    /// The connectors the latest version's slots need, space-separated and space-padded
    /// (` nexum/slack nexum/http `).
    pub connectors: String,
    /// Lower-cased text search matches in.
    pub search_text: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// One immutable published version of a template (without its bundle bytes).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateVersionRecord {
    /// Template.
    pub template_id: String,
    /// Semver.
    pub version: String,
    /// Bundle digest.
    pub digest: String,
    /// `template.json` as published (empty from [`Db::template_versions`]).
    pub document: String,
    /// Signing key id (`builtin` for the starter templates).
    pub signer: String,
    /// Unix ms when yanked.
    pub yanked_at: Option<i64>,
    /// Workflows created from this version.
    pub uses: i64,
    /// Executions of workflows on this version.
    pub executions: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// A template as browsing finds it, with its aggregates.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BrowsedTemplate {
    /// The template.
    #[sqlx(flatten)]
    pub template: TemplateRecord,
    /// Number of reviews.
    pub review_count: i64,
    /// Sum of their stars.
    pub star_sum: i64,
    /// Uses across versions.
    pub uses: i64,
}

/// What to browse for; empty strings match everything.
#[derive(Debug, Clone, Default)]
pub struct TemplateQuery<'a> {
    /// The workspace browsing (sees its own private templates).
    pub viewer: Option<&'a WorkspaceId>,
    /// Lower-cased text to find.
    pub text: &'a str,
    /// Exact category.
    pub category: &'a str,
    /// Exact difficulty.
    pub difficulty: &'a str,
    /// A connector (`nexum/slack`) a slot needs.
    pub connector: &'a str,
    /// Only featured templates.
    pub featured_only: bool,
    /// `newest`, `rating` or `uses`.
    pub sort: &'a str,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// How a saved workflow is linked to the template version it was made from.
#[derive(Debug, Clone)]
pub struct TemplateLink {
    /// `tpl_…`
    pub template_id: String,
    /// The version used.
    pub version: String,
    /// The slot → connection map, as JSON.
    pub connections: String,
    /// Count this as a use of the version (a first use, not an upgrade).
    pub count_use: bool,
}

/// A workflow's link to its template, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateLinkRecord {
    /// `tpl_…`
    pub template_id: String,
    /// The version the workflow is on.
    pub version: String,
    /// The slot → connection map, as JSON.
    pub connections: String,
}

macro_rules! template_columns {
    () => {
        "id, publisher_id, workspace_id, namespace, name, private, featured, latest_version, display_name, summary, category, difficulty, connectors, search_text, created_at, updated_at"
    };
}
macro_rules! template_version_columns {
    () => {
        "template_id, version, digest, document, signer, yanked_at, uses, executions, created_at"
    };
}

/// A LIKE pattern matching `needle` anywhere (with `\` as the escape).
fn contains_pattern(needle: &str) -> String {
    format!(
        "%{}%",
        needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    )
}

impl Db {
    /// The template `namespace/name`.
    pub async fn template(&self, namespace: &str, name: &str) -> StoreResult<Option<TemplateRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            template_columns!(),
            " FROM templates WHERE namespace = $1 AND name = $2"
        );
        Ok(sqlx::query_as(SQL)
            .bind(namespace)
            .bind(name)
            .fetch_optional(self.pool())
            .await?)
    }

    /// The template with id `id`.
    pub async fn template_by_id(&self, id: &str) -> StoreResult<Option<TemplateRecord>> {
        const SQL: &str = concat!("SELECT ", template_columns!(), " FROM templates WHERE id = $1");
        Ok(sqlx::query_as(SQL).bind(id).fetch_optional(self.pool()).await?)
    }

    /// Insert a new template row ([`StoreError::Conflict`](super::StoreError::Conflict) when
    /// `namespace/name` exists).
    pub async fn insert_template(&self, t: &TemplateRecord) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO templates (",
            template_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&t.id)
        .bind(&t.publisher_id)
        .bind(&t.workspace_id)
        .bind(&t.namespace)
        .bind(&t.name)
        .bind(t.private)
        .bind(t.featured)
        .bind(&t.latest_version)
        .bind(&t.display_name)
        .bind(&t.summary)
        .bind(&t.category)
        .bind(&t.difficulty)
        .bind(&t.connectors)
        .bind(&t.search_text)
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Write a template's listing fields (latest version, its metadata, visibility).
    pub async fn update_template_listing(&self, t: &TemplateRecord) -> StoreResult<()> {
        sqlx::query(
            "UPDATE templates SET private = $1, latest_version = $2, display_name = $3, summary = $4, category = $5, difficulty = $6, connectors = $7, search_text = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(t.private)
        .bind(&t.latest_version)
        .bind(&t.display_name)
        .bind(&t.summary)
        .bind(&t.category)
        .bind(&t.difficulty)
        .bind(&t.connectors)
        .bind(&t.search_text)
        .bind(t.updated_at)
        .bind(&t.id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Feature or unfeature a template.
    pub async fn set_template_featured(&self, id: &str, featured: bool) -> StoreResult<()> {
        sqlx::query("UPDATE templates SET featured = $1 WHERE id = $2")
            .bind(i64::from(featured))
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Insert a version with its bundle ([`StoreError::Conflict`](super::StoreError::Conflict)
    /// when the version exists).
    pub async fn insert_template_version(&self, v: &TemplateVersionRecord, bundle: &[u8]) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO template_versions (",
            template_version_columns!(),
            ", bundle) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&v.template_id)
        .bind(&v.version)
        .bind(&v.digest)
        .bind(&v.document)
        .bind(&v.signer)
        .bind(v.yanked_at)
        .bind(v.uses)
        .bind(v.executions)
        .bind(v.created_at)
        .bind(bundle)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every version of a template, oldest first, with `document` left empty (read one with
    /// [`Db::template_document`]).
    pub async fn template_versions(&self, template_id: &str) -> StoreResult<Vec<TemplateVersionRecord>> {
        // Without the documents (up to 512 KiB each): a listing parses only the latest.
        const SQL: &str = "SELECT template_id, version, digest, '' AS document, signer, yanked_at, uses, executions, created_at \
             FROM template_versions WHERE template_id = $1 ORDER BY created_at, version";
        Ok(sqlx::query_as(SQL).bind(template_id).fetch_all(self.pool()).await?)
    }

    /// One version's `template.json`, as published.
    pub async fn template_document(&self, template_id: &str, version: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT document FROM template_versions WHERE template_id = $1 AND version = $2")
                .bind(template_id)
                .bind(version)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(document,)| document))
    }

    /// The signed bundle of one version, as published.
    pub async fn template_bundle(&self, template_id: &str, version: &str) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT bundle FROM template_versions WHERE template_id = $1 AND version = $2")
                .bind(template_id)
                .bind(version)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(b,)| b))
    }

    /// Yank a version (idempotent); false when there is no such version.
    pub async fn yank_template_version(&self, template_id: &str, version: &str, at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE template_versions SET yanked_at = COALESCE(yanked_at, $1) WHERE template_id = $2 AND version = $3",
        )
        .bind(at)
        .bind(template_id)
        .bind(version)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One page of the templates matching `q` that have an installable version and that
    /// the viewer may see, and how many match in all. Filtering, sorting and paging
    /// happen here, in SQL.
    pub async fn browse_templates(&self, q: &TemplateQuery<'_>) -> StoreResult<(Vec<BrowsedTemplate>, i64)> {
        macro_rules! matching {
            () => {
                " FROM templates t WHERE t.latest_version IS NOT NULL \
                 AND (t.private = 0 OR t.workspace_id = $1) \
                 AND ($2 = '' OR t.category = $2) \
                 AND ($3 = '' OR t.difficulty = $3) \
                 AND ($4 = '' OR t.connectors LIKE $4 ESCAPE '\\') \
                 AND ($5 = 0 OR t.featured <> 0) \
                 AND ($6 = '%%' OR t.search_text LIKE $6 ESCAPE '\\')"
            };
        }
        let viewer = q.viewer.map(ToString::to_string).unwrap_or_default();
        let connector = if q.connector.is_empty() {
            String::new()
        } else {
            contains_pattern(&format!(" {} ", q.connector.to_lowercase()))
        };
        let text = contains_pattern(q.text);
        let featured = i64::from(q.featured_only);
        macro_rules! page {
            ($order:literal) => {
                concat!(
                    "SELECT * FROM (SELECT t.id, t.publisher_id, t.workspace_id, t.namespace, t.name, t.private, t.featured, t.latest_version, t.display_name, t.summary, t.category, t.difficulty, t.connectors, t.search_text, t.created_at, t.updated_at, \
                     CAST((SELECT COUNT(*) FROM reviews r WHERE r.item_type = 'template' AND r.item_id = t.id) AS BIGINT) AS review_count, \
                     CAST((SELECT COALESCE(SUM(r.stars), 0) FROM reviews r WHERE r.item_type = 'template' AND r.item_id = t.id) AS BIGINT) AS star_sum, \
                     CAST((SELECT COALESCE(SUM(v.uses), 0) FROM template_versions v WHERE v.template_id = t.id) AS BIGINT) AS uses",
                    matching!(),
                    ") b ",
                    $order,
                    " LIMIT $7 OFFSET $8"
                )
            };
        }
        // Only these three statements can run: the sort picks one, nothing is spliced in.
        let sql: &'static str = match q.sort {
            "rating" => page!(
                "ORDER BY (CASE WHEN review_count = 0 THEN 0 ELSE star_sum * 1.0 / review_count END) DESC, review_count DESC, created_at DESC, id"
            ),
            "uses" => page!("ORDER BY uses DESC, created_at DESC, id"),
            _ => page!("ORDER BY created_at DESC, id"),
        };
        let rows: Vec<BrowsedTemplate> = sqlx::query_as(sql)
            .bind(&viewer)
            .bind(q.category)
            .bind(q.difficulty)
            .bind(&connector)
            .bind(featured)
            .bind(&text)
            .bind(q.limit)
            .bind(q.offset)
            .fetch_all(self.pool())
            .await?;
        let (total,): (i64,) = sqlx::query_as(concat!("SELECT CAST(COUNT(*) AS BIGINT)", matching!()))
            .bind(&viewer)
            .bind(q.category)
            .bind(q.difficulty)
            .bind(&connector)
            .bind(featured)
            .bind(&text)
            .fetch_one(self.pool())
            .await?;
        Ok((rows, total))
    }

    /// The version of `template_id` the workspace last used, if it ever used it.
    pub async fn template_use(&self, workspace_id: &WorkspaceId, template_id: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT version FROM template_uses WHERE workspace_id = $1 AND template_id = $2")
                .bind(workspace_id)
                .bind(template_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(v,)| v))
    }

    /// `(namespace/name, version)` of the template a workflow of the workspace follows.
    pub async fn template_origin(
        &self,
        workspace_id: &WorkspaceId,
        workflow_id: &str,
    ) -> StoreResult<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT t.namespace || '/' || t.name, l.version FROM template_workflows l JOIN templates t ON t.id = l.template_id WHERE l.workspace_id = $1 AND l.workflow_id = $2",
        )
        .bind(workspace_id)
        .bind(workflow_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The template a workflow of the workspace was made from, if any.
    pub async fn template_link(
        &self,
        workspace_id: &WorkspaceId,
        workflow_id: &str,
    ) -> StoreResult<Option<TemplateLinkRecord>> {
        Ok(sqlx::query_as(
            "SELECT template_id, version, connections FROM template_workflows WHERE workspace_id = $1 AND workflow_id = $2",
        )
        .bind(workspace_id)
        .bind(workflow_id)
        .fetch_optional(self.pool())
        .await?)
    }
}

/// Link a workflow being saved to its template version, in the save's transaction: the link
/// row, the workspace's use (the right to review), and the version's use count.
pub(super) async fn write_link(
    tx: &mut sqlx::AnyConnection,
    workspace_id: &WorkspaceId,
    workflow_id: &str,
    link: &TemplateLink,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM template_workflows WHERE workflow_id = $1")
        .bind(workflow_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO template_workflows (workflow_id, workspace_id, template_id, version, connections, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(workflow_id)
    .bind(workspace_id)
    .bind(&link.template_id)
    .bind(&link.version)
    .bind(&link.connections)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO template_uses (workspace_id, template_id, version, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (workspace_id, template_id) DO UPDATE SET version = excluded.version",
    )
    .bind(workspace_id)
    .bind(&link.template_id)
    .bind(&link.version)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if link.count_use {
        sqlx::query("UPDATE template_versions SET uses = uses + 1 WHERE template_id = $1 AND version = $2")
            .bind(&link.template_id)
            .bind(&link.version)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Count an execution of a workflow against the template version it is on (nothing for a
/// workflow not made from a template).
pub(super) async fn count_execution(tx: &mut sqlx::AnyConnection, workflow_id: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE template_versions SET executions = executions + 1 WHERE EXISTS (SELECT 1 FROM template_workflows l WHERE l.workflow_id = $1 AND l.template_id = template_versions.template_id AND l.version = template_versions.version)",
    )
    .bind(workflow_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
