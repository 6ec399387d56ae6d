//! Workflow templates: a workflow with placeholders, published like a connector bundle and
//! used to create a workflow in a workspace.
//!
//! A template (`template.json`) holds metadata (id, name, summary, Markdown description,
//! category, difficulty, tags, setup time, icon, semver version, changelog entry), typed
//! **variables** (`string`, `number`, `boolean`, `enum`, `json`) and **connection slots**,
//! and a workflow in which every connector step names a slot (`"slot": "alerts"`) instead of
//! a connection. A slot says which connector it needs (`nexum/slack`: the publisher
//! namespace and the connector id), which semver range of it, and which actions it uses.
//! The author (the publisher namespace) is not in the file: publishing sets it.
//!
//! Using a template maps each slot to a connection of the workspace and gives the variables
//! values; the variables become the workflow's `vars`. A dry run reports everything that
//! would stop it (connectors to install, connections that do not fit a slot, bad or missing
//! variables) and the workflow it would create, without creating anything.
//!
//! - [`definition`]: the document, parsed strictly (unknown fields refused), every problem
//!   naming its field (`variables.channel.default`, `workflow.steps[1].slot`); the workflow
//!   is checked with [`crate::workflows::definition`] (slots bound to a placeholder
//!   connection), so a template that parses makes a workflow that saves;
//! - [`instantiate`]: [`instantiate::plan`], pure: a template, a use request and a view of
//!   the workspace (installed connectors, connections) in; the problems and the workflow
//!   that would be created out.
//!
//! This module sits beside [`crate::workflows`] and below `api`; it reads no database and
//! creates nothing: the caller fills [`instantiate::WorkspaceView`] from the store and, when
//! the plan has no problems, saves its workflow through `workflows::manage::create` (which
//! runs its own full check again, in one write, so nothing is half-created).

pub mod author;
pub mod definition;
pub mod instantiate;
pub mod registry;
pub mod starter;
pub mod using;

use serde::ser::SerializeMap;

/// A problem with a template, naming the field (the same shape as a workflow's problems).
pub use crate::workflows::definition::Problem;

/// Why using a template (or upgrading a workflow made from one) failed.
#[derive(Debug, thiserror::Error)]
pub enum UseError {
    /// No such template (or not visible), version yanked, or another registry refusal.
    #[error(transparent)]
    Marketplace(#[from] crate::marketplace::MarketplaceError),
    /// The version's bundle does not satisfy this host's trust policy (unsigned, or signed
    /// by a key the host does not trust, or a bad signature).
    #[error(transparent)]
    Untrusted(nexum_marketplace::signing::SigningError),
    /// The host trusts the bundle's signer, but not for this namespace: a key the namespace
    /// never registered, or a pinned (built-in) digest outside the first-party namespace.
    #[error("`{template}` is signed by {signer}, which is not a key the namespace `{namespace}` registered")]
    ForeignSigner {
        /// `namespace/name`.
        template: String,
        /// Its namespace.
        namespace: String,
        /// The signer as recorded (`key <id>`, `the built-in catalogue`).
        signer: String,
    },
    /// The stored bundle is not the one the listing shows (modified in the registry).
    #[error("the template's stored bundle does not match its listed digest; it was modified after publishing")]
    Tampered,
    /// The request does not fit the template or the workspace; each problem names its field.
    #[error("the template cannot be used as asked: {}", .0.iter().map(|p| format!("{}: {p}", p.path())).collect::<Vec<_>>().join("; "))]
    Refused(Vec<UseProblem>),
    /// The workflow was not made from a template.
    #[error("this workflow was not made from a template")]
    NotFromTemplate,
    /// Saving the workflow failed (its own checks, a concurrent edit, …).
    #[error(transparent)]
    Workflow(#[from] crate::workflows::manage::WorkflowError),
    /// Database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Why a template document was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// `template.json` is larger than [`definition::MAX_TEMPLATE_BYTES`].
    #[error("template.json is over {} bytes", definition::MAX_TEMPLATE_BYTES)]
    TooLarge,
    /// The document has problems; each names its field.
    #[error("the template is invalid: {}", .0.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
}

/// Why a template cannot be used as asked, naming the field of the use request
/// (`connections.alerts`, `variables.channel`). Each kind has a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UseProblem {
    /// The slot's connector is not installed in the workspace from its publisher: install
    /// the marketplace package `package`.
    #[error(
        "the connector `{package}` ({required}) is not installed from its publisher: install the marketplace package `{package}`"
    )]
    MissingConnector {
        /// The slot.
        slot: String,
        /// The marketplace package to install (`nexum/slack`).
        package: String,
        /// The version range the slot requires (`^0.1`).
        required: String,
    },
    /// The connection's connector is not the slot's (another connector, or the same
    /// connector id from another publisher or an upload).
    #[error("the connection `{connection}` is of `{found}`; the slot needs `{expected}`")]
    WrongConnector {
        /// The slot.
        slot: String,
        /// The connection given for it.
        connection: String,
        /// What the slot needs (`nexum/slack`).
        expected: String,
        /// What the connection is of: `namespace/id` when installed from a marketplace,
        /// `<source>:<id>` otherwise (`upload:slack`), `<id> (not installed)` without an
        /// installation.
        found: String,
    },
    /// The connection's connector version is outside the slot's range.
    #[error("the connection `{connection}` runs version {found}; the slot needs {required}")]
    VersionOutOfRange {
        /// The slot.
        slot: String,
        /// The connection given for it.
        connection: String,
        /// The slot's range (`^0.1`).
        required: String,
        /// The installed version.
        found: String,
    },
    /// No such connection in the workspace.
    #[error("no connection `{connection}` in this workspace")]
    UnknownConnection {
        /// The slot.
        slot: String,
        /// The connection given for it.
        connection: String,
    },
    /// The slot was given no connection.
    #[error("give a connection for the slot `{slot}`")]
    MissingSlot {
        /// The slot.
        slot: String,
    },
    /// The template has no such slot.
    #[error("the template has no slot `{slot}`")]
    UnknownSlot {
        /// The name given.
        slot: String,
    },
    /// The value does not satisfy the variable's type or validation.
    #[error("{reason}")]
    BadVariable {
        /// The variable.
        name: String,
        /// Why (without the value).
        reason: String,
    },
    /// A required variable was given no value.
    #[error("the variable `{name}` is required")]
    MissingVariable {
        /// The variable.
        name: String,
    },
    /// The template has no such variable.
    #[error("the template has no variable `{name}`")]
    UnknownVariable {
        /// The name given.
        name: String,
    },
    /// The workflow's name is not 1–200 characters.
    #[error("{reason}")]
    BadName {
        /// Why.
        reason: String,
    },
    /// The signing secrets for a webhook trigger are missing, malformed, or given to a
    /// template whose trigger is not a webhook.
    #[error("{reason}")]
    BadTriggerSecrets {
        /// Why (never the secrets).
        reason: String,
    },
    /// The workflow the template makes does not parse (a template that passed
    /// [`definition::Template::parse`] does not get here; kept so a plan never hands out
    /// a workflow that would be refused).
    #[error("{message}")]
    InvalidWorkflow {
        /// The field, `workflow.…`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

impl UseProblem {
    /// A stable, machine-readable code: `missing_connector`, `wrong_connector`,
    /// `version_out_of_range`, `unknown_connection`, `missing_slot`, `unknown_slot`,
    /// `bad_variable`, `missing_variable`, `unknown_variable`, `bad_name`,
    /// `bad_trigger_secrets`, `invalid_workflow`.
    pub fn code(&self) -> &'static str {
        match self {
            UseProblem::MissingConnector { .. } => "missing_connector",
            UseProblem::WrongConnector { .. } => "wrong_connector",
            UseProblem::VersionOutOfRange { .. } => "version_out_of_range",
            UseProblem::UnknownConnection { .. } => "unknown_connection",
            UseProblem::MissingSlot { .. } => "missing_slot",
            UseProblem::UnknownSlot { .. } => "unknown_slot",
            UseProblem::BadVariable { .. } => "bad_variable",
            UseProblem::MissingVariable { .. } => "missing_variable",
            UseProblem::UnknownVariable { .. } => "unknown_variable",
            UseProblem::BadName { .. } => "bad_name",
            UseProblem::BadTriggerSecrets { .. } => "bad_trigger_secrets",
            UseProblem::InvalidWorkflow { .. } => "invalid_workflow",
        }
    }

    /// The field of the use request it is about: `connections.<slot>`,
    /// `variables.<name>`, `name`, `trigger_secrets` or `workflow.…`.
    pub fn path(&self) -> String {
        match self {
            UseProblem::MissingConnector { slot, .. }
            | UseProblem::WrongConnector { slot, .. }
            | UseProblem::VersionOutOfRange { slot, .. }
            | UseProblem::UnknownConnection { slot, .. }
            | UseProblem::MissingSlot { slot }
            | UseProblem::UnknownSlot { slot } => format!("connections.{slot}"),
            UseProblem::BadVariable { name, .. }
            | UseProblem::MissingVariable { name }
            | UseProblem::UnknownVariable { name } => format!("variables.{name}"),
            UseProblem::BadName { .. } => "name".into(),
            UseProblem::BadTriggerSecrets { .. } => "trigger_secrets".into(),
            UseProblem::InvalidWorkflow { path, .. } => path.clone(),
        }
    }
}

/// Shown as `{"code", "path", "message", …the kind's fields}`.
impl serde::Serialize for UseProblem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("code", self.code())?;
        map.serialize_entry("path", &self.path())?;
        map.serialize_entry("message", &self.to_string())?;
        let fields: Vec<(&str, &String)> = match self {
            UseProblem::MissingConnector {
                slot,
                package,
                required,
            } => vec![("slot", slot), ("package", package), ("required", required)],
            UseProblem::WrongConnector {
                slot,
                connection,
                expected,
                found,
            } => vec![
                ("slot", slot),
                ("connection", connection),
                ("expected", expected),
                ("found", found),
            ],
            UseProblem::VersionOutOfRange {
                slot,
                connection,
                required,
                found,
            } => vec![
                ("slot", slot),
                ("connection", connection),
                ("required", required),
                ("found", found),
            ],
            UseProblem::UnknownConnection { slot, connection } => vec![("slot", slot), ("connection", connection)],
            UseProblem::MissingSlot { slot } | UseProblem::UnknownSlot { slot } => vec![("slot", slot)],
            UseProblem::BadVariable { name, .. }
            | UseProblem::MissingVariable { name }
            | UseProblem::UnknownVariable { name } => vec![("name", name)],
            UseProblem::BadName { .. } | UseProblem::BadTriggerSecrets { .. } | UseProblem::InvalidWorkflow { .. } => {
                Vec::new()
            }
        };
        for (key, value) in fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
