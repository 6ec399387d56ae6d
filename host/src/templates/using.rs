//! Using a template in a workspace, and moving a workflow made from one to a newer version.
//!
//! Both re-read the version's signed bundle from the registry and verify it against this
//! host's own trust policy (trusted publisher keys, the starter templates' pinned digests,
//! the unsigned dev flag) and the digest the listing shows, as an install does for a
//! connector: a template that was tampered with, is unsigned or is signed by a key the host
//! does not trust is refused before anything is planned. Then [`plan`] checks the request
//! against the workspace; a dry run stops there and reports. The real call saves the plan's
//! workflow with its link to the template version in one write (the workflow's own checks
//! run again inside it), so nothing is half-created.

use super::definition::{Template, bind};
use super::instantiate::{ConnectionView, InstalledConnector, Plan, UseRequest, WorkspaceView, plan};
use super::registry::{self, TemplateListing};
use super::{UseError, UseProblem};
use crate::ids::{ConnectionId, WorkspaceId};
use crate::marketplace::{MarketplaceError, catalogue};
use crate::state::AppState;
use crate::store::{TemplateLink, TemplateVersionRecord};
use crate::workflows::manage::{self, Saved, WorkflowInput};
use nexum_marketplace::signing::{PublicKey, Signer, verify_with};
use nexum_marketplace::template::TemplateBundle;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a use did.
pub enum UseOutcome {
    /// A dry run: what would happen (problems, or the workflow it would create).
    Planned {
        /// The plan.
        plan: Plan,
        /// `namespace/name`.
        template: String,
        /// The version planned with.
        version: String,
    },
    /// The workflow created, disabled unless asked otherwise.
    Created {
        /// The saved workflow.
        saved: Box<Saved>,
        /// `namespace/name`.
        template: String,
        /// The version used.
        version: String,
    },
}

/// A template version verified against the host's trust policy and parsed.
struct Verified {
    listing: TemplateListing,
    version: TemplateVersionRecord,
    template: Template,
}

/// Load `namespace/name` at `wanted` (default: the latest non-yanked version), as visible
/// to `workspace_id`, and verify its bundle. A yanked version cannot be newly used.
async fn verified(
    state: &AppState,
    workspace_id: &WorkspaceId,
    namespace: &str,
    name: &str,
    wanted: Option<&str>,
) -> Result<Verified, UseError> {
    let record = registry::find_visible(state, workspace_id, namespace, name).await?;
    let listing = registry::listing(state, record).await?;
    let version = match wanted {
        Some(v) => {
            let found = registry::version(&listing, v)?;
            if found.yanked_at.is_some() {
                return Err(MarketplaceError::invalid(
                    "version_yanked",
                    format!("{}@{v} was yanked and cannot be newly used", listing.reference()),
                )
                .into());
            }
            found.clone()
        }
        None => registry::latest(&listing.versions)
            .cloned()
            .ok_or_else(|| MarketplaceError::invalid("no_versions", "every version was yanked"))?,
    };
    let bytes = state
        .db
        .template_bundle(&listing.record.id, &version.version)
        .await?
        .ok_or(MarketplaceError::NotFound("version"))?;
    let bundle = TemplateBundle::parse(&bytes).map_err(|_| UseError::Tampered)?;
    if bundle.digest != version.digest {
        return Err(UseError::Tampered);
    }
    let signer = state.trust.verify(&bundle).map_err(UseError::Untrusted)?;
    check_namespace_signer(state, &listing, &bundle, &signer).await?;
    let template = registry::parse_document(state, &bundle.template)?;
    if template.id != listing.record.name || template.version.to_string() != version.version {
        return Err(UseError::Tampered);
    }
    Ok(Verified {
        listing,
        version,
        template,
    })
}

/// The host trusting a signer is not enough: the template must also be signed by its own
/// namespace, or a key the operator trusts for one publisher could vouch for a registry row
/// claiming another publisher's namespace. A key-signed bundle must verify with a key the
/// namespace registered (a key since revoked still stands for the versions it signed, as
/// for connectors: revoking stops new publishing; distrust is the host's trust policy); a
/// pinned (built-in) digest stands only for the first-party namespace; unsigned passes only
/// under the dev flag the host policy already checked.
async fn check_namespace_signer(
    state: &AppState,
    listing: &TemplateListing,
    bundle: &TemplateBundle,
    signer: &Signer,
) -> Result<(), UseError> {
    let foreign = |signer: String| UseError::ForeignSigner {
        template: listing.reference(),
        namespace: listing.record.namespace.clone(),
        signer,
    };
    match signer {
        Signer::Unsigned => Ok(()),
        Signer::Pinned(_) if listing.record.namespace == catalogue::NAMESPACE => Ok(()),
        Signer::Pinned(_) => Err(foreign("the built-in catalogue".into())),
        Signer::Key(key_id) => {
            let Some(publisher) = state.db.publisher(&listing.record.namespace).await? else {
                return Err(foreign(format!("key {key_id}")));
            };
            let keys = state.db.publisher_keys(&publisher.id).await?;
            let registered = keys
                .iter()
                .filter_map(|(_, text, _)| PublicKey::parse(text).ok())
                .any(|key| &key.key_id == key_id && verify_with(bundle, &key).is_ok());
            if registered {
                Ok(())
            } else {
                Err(foreign(format!("key {key_id}")))
            }
        }
    }
}

/// What [`plan`] needs of the workspace, and no more: the installations of the connectors
/// the template's slots need, and the connections the request names for its slots (a
/// request naming slots the template lacks is refused by the plan without lookups).
async fn workspace_view(
    state: &AppState,
    workspace_id: &WorkspaceId,
    template: &Template,
    request: &UseRequest,
) -> Result<WorkspaceView, UseError> {
    let mut view = WorkspaceView::default();
    for slot in template.slots.values() {
        if let Some(i) = state
            .db
            .installation_by_connector(workspace_id, slot.connector_id())
            .await?
            && !view.installed.iter().any(|seen| seen.connector_id == i.connector_id)
        {
            view.installed.push(InstalledConnector {
                connector_id: i.connector_id,
                version: i.version,
                source: i.source,
            });
        }
    }
    let named = request
        .connections
        .iter()
        .filter(|(slot, _)| template.slots.contains_key(*slot))
        .filter_map(|(_, id)| id.parse::<ConnectionId>().ok());
    for id in named {
        let Some(connection) = state.db.connection(workspace_id, &id).await? else {
            continue;
        };
        if let Some(installation) = state.db.installation(workspace_id, &connection.installation_id).await? {
            view.connections.push(ConnectionView {
                id: connection.id.to_string(),
                connector_id: installation.connector_id.clone(),
                version: installation.version.clone(),
            });
            // The connection's own connector, so a mismatch names where it is from.
            if !view
                .installed
                .iter()
                .any(|seen| seen.connector_id == installation.connector_id)
            {
                view.installed.push(InstalledConnector {
                    connector_id: installation.connector_id,
                    version: installation.version,
                    source: installation.source,
                });
            }
        }
    }
    Ok(view)
}

/// The workflow a ready plan creates, as `POST /workflows` takes it.
fn creation_input(plan: &Plan, request: &UseRequest) -> Result<WorkflowInput, UseError> {
    let value = plan
        .creation_input(request)
        .ok_or_else(|| UseError::Refused(plan.problems.clone()))?;
    serde_json::from_value(value).map_err(|e| {
        UseError::Refused(vec![UseProblem::InvalidWorkflow {
            path: "workflow".into(),
            message: e.to_string(),
        }])
    })
}

/// Use `namespace/name` (at `version`, default the latest) in `workspace_id`: a dry run
/// reports the plan; otherwise the workflow is created with its link to the template
/// version, and the use is counted.
pub async fn use_template(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    namespace: &str,
    name: &str,
    version: Option<&str>,
    request: UseRequest,
    dry_run: bool,
) -> Result<UseOutcome, UseError> {
    let Verified {
        listing,
        version,
        template,
    } = verified(state, workspace_id, namespace, name, version).await?;
    let workspace = workspace_view(state, workspace_id, &template, &request).await?;
    let planned = plan(&template, &request, &workspace);
    let reference = listing.reference();
    if dry_run {
        return Ok(UseOutcome::Planned {
            plan: planned,
            template: reference,
            version: version.version,
        });
    }
    if !planned.is_ready() {
        return Err(UseError::Refused(planned.problems));
    }
    let input = creation_input(&planned, &request)?;
    let link = TemplateLink {
        template_id: listing.record.id.clone(),
        version: version.version.clone(),
        connections: serde_json::to_string(&request.connections).unwrap_or_else(|_| "{}".into()),
        count_use: true,
    };
    let saved = manage::create_linked(state, workspace_id, input, Some(&link)).await?;
    Ok(UseOutcome::Created {
        saved: Box::new(saved),
        template: reference,
        version: version.version,
    })
}

/// One difference between two definitions: the field (`steps[1].input.text`) and its
/// value before and after (`null` when absent).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Change {
    /// The field.
    pub path: String,
    /// Its value before.
    #[schema(value_type = Object)]
    pub before: Value,
    /// Its value after.
    #[schema(value_type = Object)]
    pub after: Value,
}

/// Every leaf that differs between `before` and `after`, in document order.
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk("", before, after, &mut changes);
    changes
}

fn walk(path: &str, before: &Value, after: &Value, changes: &mut Vec<Change>) {
    let child = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                walk(
                    &child(key),
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    changes,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                walk(
                    &format!("{path}[{i}]"),
                    a.get(i).unwrap_or(&Value::Null),
                    b.get(i).unwrap_or(&Value::Null),
                    changes,
                );
            }
        }
        (a, b) if a != b => changes.push(Change {
            path: path.to_string(),
            before: a.clone(),
            after: b.clone(),
        }),
        _ => {}
    }
}

/// What an upgrade did or would do.
pub struct Upgrade {
    /// `namespace/name`.
    pub template: String,
    /// The version the workflow was on.
    pub from: String,
    /// The version it moves to.
    pub to: String,
    /// What changes in its definition.
    pub changes: Vec<Change>,
    /// Problems that stop it (a dry run reports them; the real call refuses).
    pub problems: Vec<UseProblem>,
    /// The workflow after the upgrade (the real call only).
    pub saved: Option<Box<Saved>>,
}

/// What an upgrade asks for, beyond the workflow.
#[derive(Default)]
pub struct UpgradeRequest {
    /// The version to move to (default: the latest non-yanked one).
    pub to: Option<String>,
    /// Values for variables the new version adds or that should change.
    pub variables: BTreeMap<String, Value>,
    /// Connections for slots the new version adds, or to replace (the rest keep theirs).
    pub connections: BTreeMap<String, String>,
    /// New webhook signing secrets; needed when the webhook's scheme or connection changes.
    pub trigger_secrets: Vec<String>,
}

/// Shown without the trigger secrets.
impl std::fmt::Debug for UpgradeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeRequest")
            .field("to", &self.to)
            .field("variables", &self.variables)
            .field("connections", &self.connections)
            .field("trigger_secrets", &format!("[{} redacted]", self.trigger_secrets.len()))
            .finish()
    }
}

/// The webhook fields whose change makes the old signing secrets meaningless: the scheme
/// and the connection (which can supply the scheme). `None` when the trigger is no webhook.
fn webhook_identity(trigger: &Value) -> Option<(Value, Value)> {
    (trigger.get("type").and_then(Value::as_str) == Some("webhook")).then(|| {
        (
            trigger.get("scheme").cloned().unwrap_or(Value::Null),
            trigger.get("connection").cloned().unwrap_or(Value::Null),
        )
    })
}

/// Move workflow `workflow_id` (made from a template) to another version of it, keeping its
/// slot → connection mapping for the slots the new version still has (`connections` adds or
/// replaces), the values of the variables it still has (`variables` adds or overrides), its
/// name, its enabled state and, when the webhook's scheme and connection stay, its signing
/// secrets. The trigger becomes the new version's (manual when it has none). A dry run
/// reports the definition diff without saving. Moving does not count as a new use.
pub async fn upgrade(
    state: &Arc<AppState>,
    workspace_id: &WorkspaceId,
    workflow_id: &str,
    asked: UpgradeRequest,
    dry_run: bool,
) -> Result<Upgrade, UseError> {
    let current = manage::load(state, workspace_id, workflow_id).await?;
    let link = state
        .db
        .template_link(workspace_id, workflow_id)
        .await?
        .ok_or(UseError::NotFromTemplate)?;
    let record = state
        .db
        .template_by_id(&link.template_id)
        .await?
        .ok_or(MarketplaceError::NotFound("template"))?;
    let Verified {
        listing,
        version,
        template,
    } = verified(
        state,
        workspace_id,
        &record.namespace,
        &record.name,
        asked.to.as_deref(),
    )
    .await?;
    let mut variables: BTreeMap<String, Value> = current
        .definition
        .vars
        .iter()
        .filter(|(name, _)| template.variables.contains_key(*name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    variables.extend(asked.variables);
    let mut connections: BTreeMap<String, String> = serde_json::from_str::<BTreeMap<String, String>>(&link.connections)
        .unwrap_or_default()
        .into_iter()
        .filter(|(slot, _)| template.slots.contains_key(slot))
        .collect();
    connections.extend(asked.connections);
    let old_trigger = serde_json::to_value(&current.definition.trigger).unwrap_or(Value::Null);
    let new_secrets = !asked.trigger_secrets.is_empty();
    let request = UseRequest {
        connections,
        variables,
        name: Some(current.workflow.name.clone()),
        enabled: current.workflow.enabled != 0,
        trigger_secrets: asked.trigger_secrets,
        keep_trigger_secrets: webhook_identity(&old_trigger).is_some(),
    };
    let workspace = workspace_view(state, workspace_id, &template, &request).await?;
    let mut planned = plan(&template, &request, &workspace);
    // Judged on the new version's trigger with the request's connections bound, whether or
    // not the rest of the plan is ready: a dry run reports every problem at once.
    let new_trigger = bind(
        template.workflow.get("trigger").unwrap_or(&Value::Null),
        &|slot: &str| request.connections.get(slot).cloned(),
    );
    if let Some(identity) = webhook_identity(&new_trigger)
        && webhook_identity(&old_trigger).is_some_and(|old| old != identity)
        && !new_secrets
    {
        planned.problems.push(UseProblem::BadTriggerSecrets {
            reason: "the new version's webhook has another scheme or connection: give its signing secrets".into(),
        });
    }
    let definition_of = |value: &Value| {
        let mut value = value.clone();
        if let Some(object) = value.as_object_mut() {
            for field in ["name", "description", "enabled"] {
                object.remove(field);
            }
        }
        serde_json::from_value::<crate::workflows::definition::Definition>(value)
            .ok()
            .and_then(|d| serde_json::to_value(d.without_secrets()).ok())
            .unwrap_or(Value::Null)
    };
    let before = serde_json::to_value(&current.definition).unwrap_or(Value::Null);
    let changes = planned
        .workflow
        .as_ref()
        .map(|after| diff(&before, &definition_of(after)))
        .unwrap_or_default();
    let mut upgrade = Upgrade {
        template: listing.reference(),
        from: link.version.clone(),
        to: version.version.clone(),
        changes,
        problems: planned.problems.clone(),
        saved: None,
    };
    if dry_run {
        return Ok(upgrade);
    }
    if !planned.is_ready() {
        return Err(UseError::Refused(planned.problems));
    }
    let mut input = creation_input(&planned, &request)?;
    // Name, description and enabled stay as the workflow has them.
    input.name = None;
    input.description = None;
    input.enabled = None;
    // The trigger and output are the new version's: without one, none (a manual trigger).
    input
        .trigger
        .get_or_insert_with(|| serde_json::json!({ "type": "manual" }));
    input.output.get_or_insert(Value::Null);
    let link = TemplateLink {
        template_id: listing.record.id.clone(),
        version: version.version.clone(),
        connections: serde_json::to_string(&request.connections).unwrap_or_else(|_| "{}".into()),
        count_use: false,
    };
    let saved = manage::update_linked(
        state,
        workspace_id,
        workflow_id,
        input,
        Some(current.workflow.version),
        Some(&link),
    )
    .await?;
    upgrade.saved = Some(Box::new(saved));
    Ok(upgrade)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_diff_names_every_changed_leaf() {
        let before = json!({ "vars": { "a": 1, "b": 2 }, "steps": [ { "name": "x", "input": { "t": "hi" } } ] });
        let after = json!({ "vars": { "a": 1, "c": 3 }, "steps": [ { "name": "x", "input": { "t": "hello" } }, { "name": "y" } ] });
        let changes = diff(&before, &after);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, vec!["steps[0].input.t", "steps[1]", "vars.b", "vars.c"]);
        assert_eq!(changes[0].before, json!("hi"));
        assert_eq!(changes[0].after, json!("hello"));
        assert_eq!(changes[1].before, Value::Null);
        assert!(diff(&before, &before).is_empty());
    }
}
