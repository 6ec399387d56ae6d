//! Using a template: [`plan`] checks a use request against a template and a view of the
//! workspace and says what would stop it ([`UseProblem`]s) or which workflow it would
//! create. It is pure (no database, nothing created), so the same call serves a dry run and,
//! once it has no problems, the real thing: the caller saves [`Plan::creation_input`] with
//! `workflows::manage::create`, which checks the workflow again and writes it at once.
//!
//! **Connectors match by publisher.** A slot needs `nexum/slack`: a connection fits only if
//! its connector is installed from that publisher's marketplace package (installation
//! source `marketplace:nexum/slack`) in a version within the slot's range. A connector with
//! the same id from another publisher (`marketplace:acme/slack`) or uploaded (`upload`) is
//! the wrong connector, so a template never runs a look-alike with the connections and data
//! it is given. (The source names the package, not the marketplace it came from; the host
//! verified the bundle's signature against its own trust policy when it was installed.)
//!
//! **Variables** become the workflow's `vars`: the value given, or the default; an optional
//! variable without either is left out (steps read it with `vars.x | default(…)`). Each value
//! is checked against its variable ([`Variable::check`](super::definition::Variable::check)).
//!
//! **Webhook triggers.** A template holds no secrets, so the signing secrets of a webhook
//! trigger come with the use request (`trigger_secrets`); the plan's workflow does not show
//! them (a dry run echoes no secrets), [`Plan::creation_input`] adds them.

use super::UseProblem;
use super::definition::{Template, bind};
use crate::workflows::definition::{Definition, MAX_TRIGGER_SECRETS, parse_strict};
use crate::workflows::signatures::Scheme;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Longest workflow name, in characters (what `POST /workflows` accepts).
pub const MAX_WORKFLOW_NAME_CHARS: usize = 200;
/// Longest signing secret, in bytes (what `POST /workflows` accepts).
pub const MAX_TRIGGER_SECRET_LEN: usize = 4096;

/// What a client sends to use a template.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseRequest {
    /// A connection (`conn_…`) of the workspace for each slot.
    #[serde(default, deserialize_with = "null_as_default")]
    pub connections: BTreeMap<String, String>,
    /// Values for the template's variables (the others take their defaults).
    #[serde(default, deserialize_with = "null_as_default")]
    pub variables: BTreeMap<String, Value>,
    /// The workflow's name (default: the template's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Whether its trigger starts it (default false: review it, then enable it).
    #[serde(default, deserialize_with = "null_as_default")]
    pub enabled: bool,
    /// Write-only: the signing secrets (1–5) when the template's trigger is a webhook.
    #[serde(default, deserialize_with = "null_as_default")]
    pub trigger_secrets: Vec<String>,
    /// Set by the host for an upgrade: the workflow's webhook trigger keeps the signing
    /// secrets it has, so none need be given.
    #[serde(skip)]
    pub keep_trigger_secrets: bool,
}

/// `null` read as the field's default (as if it were left out).
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Shown without the trigger secrets.
impl fmt::Debug for UseRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UseRequest")
            .field("connections", &self.connections)
            .field("variables", &self.variables)
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("trigger_secrets", &format!("[{} redacted]", self.trigger_secrets.len()))
            .finish()
    }
}

/// A connector installed in the workspace, as the caller reads it from the store
/// (`InstallationRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledConnector {
    /// The manifest's connector id (`slack`).
    pub connector_id: String,
    /// The installed version (`0.1.4`).
    pub version: String,
    /// Where it came from: `marketplace:<namespace>/<name>` or `upload`.
    pub source: String,
}

impl InstalledConnector {
    /// What it is, as a problem shows it: `nexum/slack` from a marketplace, otherwise
    /// `<source>:<connector id>` (`upload:slack`).
    pub fn origin(&self) -> String {
        match self.source.strip_prefix("marketplace:") {
            Some(package) => package.to_string(),
            None => format!("{}:{}", self.source, self.connector_id),
        }
    }
}

/// A connection of the workspace, as the caller reads it from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionView {
    /// `conn_…`
    pub id: String,
    /// Its connector's id (`slack`).
    pub connector_id: String,
    /// The installed version of its connector.
    pub version: String,
}

/// What [`plan`] needs to know of the workspace.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceView {
    /// Its installed connectors (one per connector id).
    pub installed: Vec<InstalledConnector>,
    /// Its connections.
    pub connections: Vec<ConnectionView>,
}

/// What using a template would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Everything that stops it; empty when it can go ahead.
    pub problems: Vec<UseProblem>,
    /// The workflow that would be created, as `POST /workflows` takes it (without webhook
    /// signing secrets); only when there are no problems.
    pub workflow: Option<Value>,
}

impl Plan {
    /// Whether there are no problems (and so a workflow).
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty() && self.workflow.is_some()
    }

    /// The workflow to save, with the request's signing secrets on a webhook trigger.
    pub fn creation_input(&self, request: &UseRequest) -> Option<Value> {
        let mut workflow = self.workflow.clone()?;
        if !request.trigger_secrets.is_empty()
            && let Some(trigger) = workflow.get_mut("trigger").and_then(Value::as_object_mut)
            && trigger.get("type").and_then(Value::as_str) == Some("webhook")
        {
            trigger.insert(
                "secrets".into(),
                Value::Array(request.trigger_secrets.iter().cloned().map(Value::String).collect()),
            );
        }
        Some(workflow)
    }
}

/// Check `request` against `template` and `workspace`: every problem, or the workflow that
/// would be created (slots replaced by `"connection"`, `vars` from the variables with
/// defaults applied, named after the request or the template, described by the template's
/// summary). Problems come in this order: slots (by name), slots the template does not
/// have, variables (by name), variables it does not have, the name, the trigger secrets.
pub fn plan(template: &Template, request: &UseRequest, workspace: &WorkspaceView) -> Plan {
    let mut problems = Vec::new();
    check_slots(template, request, workspace, &mut problems);
    let vars = check_variables(template, request, &mut problems);
    let name = match &request.name {
        Some(name) => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > MAX_WORKFLOW_NAME_CHARS {
                problems.push(UseProblem::BadName {
                    reason: format!("a workflow name is 1–{MAX_WORKFLOW_NAME_CHARS} characters"),
                });
            }
            name.to_string()
        }
        None => template.name.clone(),
    };
    check_trigger_secrets(template, request, &mut problems);
    if !problems.is_empty() {
        return Plan {
            problems,
            workflow: None,
        };
    }
    let mut workflow = bind(&template.workflow, &|slot: &str| request.connections.get(slot).cloned());
    let Some(object) = workflow.as_object_mut() else {
        return invalid("workflow", "the workflow is a JSON object");
    };
    object.insert("vars".into(), Value::Object(vars));
    // The template was checked as a workflow when it was parsed; this only makes sure a plan
    // never hands out a workflow that would not parse.
    if let Err(p) = parse_strict::<Definition>(workflow.clone(), "workflow") {
        return invalid(&p.path, p.message);
    }
    if let Some(object) = workflow.as_object_mut() {
        object.insert("name".into(), Value::String(name));
        object.insert("description".into(), Value::String(template.summary.clone()));
        object.insert("enabled".into(), Value::Bool(request.enabled));
    }
    Plan {
        problems,
        workflow: Some(workflow),
    }
}

fn invalid(path: &str, message: impl Into<String>) -> Plan {
    Plan {
        problems: vec![UseProblem::InvalidWorkflow {
            path: path.to_string(),
            message: message.into(),
        }],
        workflow: None,
    }
}

/// Each slot: its connector installed from its publisher, a connection given, in the
/// workspace, of that connector, in the slot's version range.
fn check_slots(template: &Template, request: &UseRequest, workspace: &WorkspaceView, problems: &mut Vec<UseProblem>) {
    for (name, slot) in &template.slots {
        let from_publisher = |installed: &InstalledConnector| {
            installed.connector_id == slot.connector_id() && installed.source == slot.source()
        };
        if !workspace.installed.iter().any(&from_publisher) {
            problems.push(UseProblem::MissingConnector {
                slot: name.clone(),
                package: slot.connector.clone(),
                required: slot.version.to_string(),
            });
        }
        let Some(connection_id) = request.connections.get(name) else {
            problems.push(UseProblem::MissingSlot { slot: name.clone() });
            continue;
        };
        let Some(connection) = workspace.connections.iter().find(|c| &c.id == connection_id) else {
            problems.push(UseProblem::UnknownConnection {
                slot: name.clone(),
                connection: connection_id.clone(),
            });
            continue;
        };
        let installation = workspace
            .installed
            .iter()
            .find(|i| i.connector_id == connection.connector_id);
        match installation {
            Some(installation) if from_publisher(installation) => {}
            other => {
                problems.push(UseProblem::WrongConnector {
                    slot: name.clone(),
                    connection: connection_id.clone(),
                    expected: slot.connector.clone(),
                    found: other.map_or_else(
                        || format!("{} (not installed)", connection.connector_id),
                        InstalledConnector::origin,
                    ),
                });
                continue;
            }
        }
        let in_range = semver::Version::parse(&connection.version).is_ok_and(|v| slot.version.matches(&v));
        if !in_range {
            problems.push(UseProblem::VersionOutOfRange {
                slot: name.clone(),
                connection: connection_id.clone(),
                required: slot.version.to_string(),
                found: connection.version.clone(),
            });
        }
    }
    for slot in request.connections.keys() {
        if !template.slots.contains_key(slot) {
            problems.push(UseProblem::UnknownSlot { slot: slot.clone() });
        }
    }
}

/// The workflow's `vars`: each variable's value or default, checked.
fn check_variables(
    template: &Template,
    request: &UseRequest,
    problems: &mut Vec<UseProblem>,
) -> serde_json::Map<String, Value> {
    let mut vars = serde_json::Map::new();
    for (name, variable) in &template.variables {
        match request.variables.get(name).or(variable.default.as_ref()) {
            Some(value) => match variable.check(value) {
                Ok(()) => {
                    vars.insert(name.clone(), value.clone());
                }
                Err(reason) => problems.push(UseProblem::BadVariable {
                    name: name.clone(),
                    reason,
                }),
            },
            None if variable.is_required() => problems.push(UseProblem::MissingVariable { name: name.clone() }),
            None => {}
        }
    }
    for name in request.variables.keys() {
        if !template.variables.contains_key(name) {
            problems.push(UseProblem::UnknownVariable { name: name.clone() });
        }
    }
    vars
}

/// A webhook trigger needs 1–5 signing secrets; any other trigger takes none.
fn check_trigger_secrets(template: &Template, request: &UseRequest, problems: &mut Vec<UseProblem>) {
    let secrets = &request.trigger_secrets;
    if !template.has_webhook_trigger() {
        if !secrets.is_empty() {
            problems.push(UseProblem::BadTriggerSecrets {
                reason: "the template's trigger is not a webhook: it takes no signing secrets".into(),
            });
        }
        return;
    }
    if secrets.is_empty() && request.keep_trigger_secrets {
        return;
    }
    if secrets.is_empty() || secrets.len() > MAX_TRIGGER_SECRETS {
        problems.push(UseProblem::BadTriggerSecrets {
            reason: format!("the template's webhook trigger needs its signing secrets: give 1–{MAX_TRIGGER_SECRETS}"),
        });
    }
    let scheme: Option<Scheme> = template
        .workflow
        .pointer("/trigger/scheme")
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    for (i, secret) in secrets.iter().enumerate() {
        if secret.trim().is_empty() || secret.len() > MAX_TRIGGER_SECRET_LEN {
            problems.push(UseProblem::BadTriggerSecrets {
                reason: format!("trigger_secrets[{i}] is 1–{MAX_TRIGGER_SECRET_LEN} characters"),
            });
        } else if let Some(Err(reason)) = scheme.map(|scheme| scheme.check_secret(secret)) {
            problems.push(UseProblem::BadTriggerSecrets {
                reason: format!("trigger_secrets[{i}] is {reason}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::definition::tests::sample;
    use crate::workflows::template::Renderer;
    use serde_json::json;

    fn template(value: Value) -> Template {
        Template::from_value(value, &Renderer::new()).expect("a valid template")
    }

    fn installed(connector_id: &str, version: &str, source: &str) -> InstalledConnector {
        InstalledConnector {
            connector_id: connector_id.into(),
            version: version.into(),
            source: source.into(),
        }
    }

    fn connection(id: &str, connector_id: &str, version: &str) -> ConnectionView {
        ConnectionView {
            id: id.into(),
            connector_id: connector_id.into(),
            version: version.into(),
        }
    }

    fn workspace() -> WorkspaceView {
        WorkspaceView {
            installed: vec![installed("slack", "0.1.4", "marketplace:nexum/slack")],
            connections: vec![connection("conn_01hslack", "slack", "0.1.4")],
        }
    }

    fn request(variables: Value) -> UseRequest {
        UseRequest {
            connections: BTreeMap::from([("alerts".to_string(), "conn_01hslack".to_string())]),
            variables: serde_json::from_value(variables).expect("an object"),
            name: None,
            enabled: true,
            trigger_secrets: vec!["whsec_abc".into()],
            keep_trigger_secrets: false,
        }
    }

    #[test]
    fn a_successful_plan_makes_exactly_this_workflow() {
        let request = request(json!({ "channel": "C123" }));
        let plan = plan(&template(sample()), &request, &workspace());
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        assert!(plan.is_ready());
        let expected = json!({
            "name": "Stripe payments to Slack",
            "description": "Post every Stripe payment to a Slack channel.",
            "enabled": true,
            "trigger": { "type": "webhook", "scheme": "stripe" },
            "vars": {
                "channel": "C123",
                "threshold": 10,
                "mention": false,
                "tone": "plain",
                "extra": { "source": "template" }
            },
            "steps": [
                { "name": "check", "type": "condition", "condition": "trigger.json.amount >= vars.threshold", "else": "done" },
                { "name": "post", "type": "connector", "connection": "conn_01hslack", "action": "send_message",
                  "input": { "channel": "{{ vars.channel }}", "text": "paid {{ trigger.json.amount }}" } },
                { "name": "done", "type": "transform", "output": { "ok": true } }
            ]
        });
        assert_eq!(plan.workflow, Some(expected.clone()));

        // The secrets are only in what is saved, never in the plan.
        assert!(!serde_json::to_string(&plan).expect("json").contains("whsec_abc"));
        let mut with_secrets = expected;
        with_secrets["trigger"]["secrets"] = json!(["whsec_abc"]);
        assert_eq!(plan.creation_input(&request), Some(with_secrets.clone()));
        assert!(!format!("{request:?}").contains("whsec_abc"));

        // It is what POST /workflows takes, and it passes the workflow checks.
        let input: crate::workflows::manage::WorkflowInput =
            serde_json::from_value(with_secrets.clone()).expect("a workflow input");
        assert_eq!(input.name.as_deref(), Some("Stripe payments to Slack"));
        let mut definition = with_secrets;
        for field in ["name", "description", "enabled"] {
            definition.as_object_mut().expect("object").remove(field);
        }
        let definition: Definition = parse_strict(definition, "").expect("a definition");
        let problems = definition.check(&Renderer::new());
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn given_values_name_and_enabled_win() {
        let mut request = request(
            json!({ "channel": "C9", "threshold": 25.5, "tone": "cheerful", "footer": "bye",
                                          "mention": true, "extra": [1, { "a": "b" }] }),
        );
        request.name = Some("  Big payments  ".into());
        request.enabled = false;
        let plan = plan(&template(sample()), &request, &workspace());
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        let workflow = plan.workflow.expect("a workflow");
        assert_eq!(workflow["name"], json!("Big payments"));
        assert_eq!(workflow["enabled"], json!(false));
        assert_eq!(
            workflow["vars"],
            json!({ "channel": "C9", "threshold": 25.5, "tone": "cheerful", "footer": "bye",
                    "mention": true, "extra": [1, { "a": "b" }] })
        );
    }

    /// A template with one slot per way a slot can go wrong.
    fn many_slots() -> Template {
        let mut value = sample();
        value["slots"] = json!({
            "alerts": { "connector": "nexum/slack", "version": "^0.1", "actions": ["send_message"], "description": "d" },
            "notes": { "connector": "nexum/notion", "version": "^1", "actions": ["create_page"], "description": "d" },
            "old": { "connector": "nexum/github", "version": "^2", "actions": ["create_issue"], "description": "d" },
            "fake": { "connector": "nexum/jira", "version": "^1", "actions": ["create_issue"], "description": "d" },
            "ghost": { "connector": "nexum/http", "version": "^1", "actions": ["request"], "description": "d" }
        });
        value["workflow"]["steps"] = json!([
            { "name": "a", "type": "connector", "slot": "alerts", "action": "send_message" },
            { "name": "b", "type": "connector", "slot": "notes", "action": "create_page" },
            { "name": "c", "type": "connector", "slot": "old", "action": "create_issue" },
            { "name": "d", "type": "connector", "slot": "fake", "action": "create_issue" },
            { "name": "e", "type": "connector", "slot": "ghost", "action": "request" }
        ]);
        template(value)
    }

    #[test]
    fn every_problem_is_reported_and_nothing_is_planned() {
        let workspace = WorkspaceView {
            installed: vec![
                installed("slack", "0.1.4", "marketplace:nexum/slack"),
                installed("gmail", "1.0.0", "marketplace:nexum/gmail"),
                installed("github", "1.4.0", "marketplace:nexum/github"),
                installed("jira", "1.0.0", "upload"),
                installed("http", "1.1.0", "marketplace:nexum/http"),
            ],
            connections: vec![
                connection("conn_gmail", "gmail", "1.0.0"),
                connection("conn_github", "github", "1.4.0"),
                connection("conn_jira", "jira", "1.0.0"),
            ],
        };
        let request = UseRequest {
            connections: BTreeMap::from([
                ("alerts".to_string(), "conn_gmail".to_string()),
                ("old".to_string(), "conn_github".to_string()),
                ("fake".to_string(), "conn_jira".to_string()),
                ("ghost".to_string(), "conn_nowhere".to_string()),
                ("spare".to_string(), "conn_gmail".to_string()),
            ]),
            variables: BTreeMap::from([("threshold".to_string(), json!(5000)), ("nope".to_string(), json!(1))]),
            name: Some("   ".into()),
            enabled: true,
            trigger_secrets: vec![],
            keep_trigger_secrets: false,
        };
        let plan = plan(&many_slots(), &request, &workspace);
        assert_eq!(plan.workflow, None);
        assert!(!plan.is_ready());
        let s = |v: &str| v.to_string();
        assert_eq!(
            plan.problems,
            vec![
                UseProblem::WrongConnector {
                    slot: s("alerts"),
                    connection: s("conn_gmail"),
                    expected: s("nexum/slack"),
                    found: s("nexum/gmail"),
                },
                UseProblem::MissingConnector {
                    slot: s("fake"),
                    package: s("nexum/jira"),
                    required: s("^1"),
                },
                UseProblem::WrongConnector {
                    slot: s("fake"),
                    connection: s("conn_jira"),
                    expected: s("nexum/jira"),
                    found: s("upload:jira"),
                },
                UseProblem::UnknownConnection {
                    slot: s("ghost"),
                    connection: s("conn_nowhere"),
                },
                UseProblem::MissingConnector {
                    slot: s("notes"),
                    package: s("nexum/notion"),
                    required: s("^1"),
                },
                UseProblem::MissingSlot { slot: s("notes") },
                UseProblem::VersionOutOfRange {
                    slot: s("old"),
                    connection: s("conn_github"),
                    required: s("^2"),
                    found: s("1.4.0"),
                },
                UseProblem::UnknownSlot { slot: s("spare") },
                UseProblem::MissingVariable { name: s("channel") },
                UseProblem::BadVariable {
                    name: s("threshold"),
                    reason: s("at most 1000"),
                },
                UseProblem::UnknownVariable { name: s("nope") },
                UseProblem::BadName {
                    reason: s("a workflow name is 1–200 characters"),
                },
                UseProblem::BadTriggerSecrets {
                    reason: s("the template's webhook trigger needs its signing secrets: give 1–5"),
                },
            ]
        );
        let shown: Vec<(&str, String)> = plan.problems.iter().map(|p| (p.code(), p.path())).collect();
        assert_eq!(
            shown,
            vec![
                ("wrong_connector", s("connections.alerts")),
                ("missing_connector", s("connections.fake")),
                ("wrong_connector", s("connections.fake")),
                ("unknown_connection", s("connections.ghost")),
                ("missing_connector", s("connections.notes")),
                ("missing_slot", s("connections.notes")),
                ("version_out_of_range", s("connections.old")),
                ("unknown_slot", s("connections.spare")),
                ("missing_variable", s("variables.channel")),
                ("bad_variable", s("variables.threshold")),
                ("unknown_variable", s("variables.nope")),
                ("bad_name", s("name")),
                ("bad_trigger_secrets", s("trigger_secrets")),
            ]
        );
    }

    #[test]
    fn a_look_alike_connector_is_the_wrong_publisher() {
        let workspace = WorkspaceView {
            installed: vec![installed("slack", "0.1.4", "marketplace:acme/slack")],
            connections: vec![connection("conn_01hslack", "slack", "0.1.4")],
        };
        let plan = plan(&template(sample()), &request(json!({ "channel": "C1" })), &workspace);
        assert_eq!(
            plan.problems,
            vec![
                UseProblem::MissingConnector {
                    slot: "alerts".into(),
                    package: "nexum/slack".into(),
                    required: "^0.1".into(),
                },
                UseProblem::WrongConnector {
                    slot: "alerts".into(),
                    connection: "conn_01hslack".into(),
                    expected: "nexum/slack".into(),
                    found: "acme/slack".into(),
                },
            ]
        );
    }

    #[test]
    fn variable_values_are_checked_like_defaults() {
        let plan = plan(
            &template(sample()),
            &request(json!({ "channel": "X1", "mention": "yes", "tone": "angry", "extra": { "db_password": "x" } })),
            &workspace(),
        );
        let reasons: Vec<(String, String)> = plan
            .problems
            .iter()
            .map(|p| match p {
                UseProblem::BadVariable { name, reason } => (name.clone(), reason.clone()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            reasons.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["channel", "extra", "mention", "tone"]
        );
        assert!(reasons[0].1.contains("pattern"), "{reasons:?}");
        assert!(
            reasons[1].1.contains("`db_password` looks like a secret"),
            "{reasons:?}"
        );
        assert_eq!(reasons[2].1, "expected true or false");
        assert_eq!(reasons[3].1, "expected one of: plain, cheerful");
    }

    #[test]
    fn trigger_secrets_only_for_a_webhook_trigger() {
        let mut value = sample();
        value["workflow"]["trigger"] = json!({ "type": "manual" });
        let plan = plan(&template(value), &request(json!({ "channel": "C1" })), &workspace());
        assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
        assert_eq!(plan.problems[0].code(), "bad_trigger_secrets");

        let mut request = request(json!({ "channel": "C1" }));
        request.trigger_secrets = vec![" ".into()];
        let plan = super::plan(&template(sample()), &request, &workspace());
        assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
        assert_eq!(plan.problems[0].path(), "trigger_secrets");
    }

    #[test]
    fn a_webhook_trigger_slot_becomes_its_connection() {
        let mut value = sample();
        value["workflow"]["trigger"] = json!({ "type": "webhook", "slot": "alerts" });
        let plan = plan(&template(value), &request(json!({ "channel": "C1" })), &workspace());
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        let workflow = plan.workflow.expect("a workflow");
        assert_eq!(
            workflow["trigger"],
            json!({ "type": "webhook", "connection": "conn_01hslack" })
        );
    }

    #[test]
    fn problems_are_shown_with_code_path_and_message() {
        let problem = UseProblem::VersionOutOfRange {
            slot: "old".into(),
            connection: "conn_github".into(),
            required: "^2".into(),
            found: "1.4.0".into(),
        };
        assert_eq!(
            serde_json::to_value(&problem).expect("json"),
            json!({
                "code": "version_out_of_range",
                "path": "connections.old",
                "message": "the connection `conn_github` runs version 1.4.0; the slot needs ^2",
                "slot": "old",
                "connection": "conn_github",
                "required": "^2",
                "found": "1.4.0"
            })
        );
        let problem = UseProblem::BadVariable {
            name: "channel".into(),
            reason: "expected a string".into(),
        };
        assert_eq!(
            serde_json::to_value(&problem).expect("json"),
            json!({ "code": "bad_variable", "path": "variables.channel", "message": "expected a string", "name": "channel" })
        );
    }

    #[test]
    fn a_use_request_parses_strictly() {
        let request: UseRequest =
            serde_json::from_value(json!({ "connections": { "alerts": "conn_1" } })).expect("parses");
        assert!(!request.enabled, "disabled unless asked");
        assert!(request.variables.is_empty() && request.trigger_secrets.is_empty());
        assert!(serde_json::from_value::<UseRequest>(json!({ "connection": {} })).is_err());
    }
}
