//! A workflow template as its publisher writes it (`template.json`), parsed strictly: unknown
//! fields are refused and every problem names its field (`variables.channel.default`,
//! `slots.alerts.version`, `workflow.steps[1].action`).
//!
//! ```json
//! {
//!   "id": "stripe-payment-to-slack", "name": "Stripe payments to Slack",
//!   "summary": "Post every Stripe payment to a Slack channel.",
//!   "description": "# Markdown…", "category": "SALES", "difficulty": "BEGINNER",
//!   "tags": ["stripe", "slack"], "setup_minutes": 5, "version": "1.0.0",
//!   "changelog": "First release.", "icon": "icon.svg",
//!   "variables": {
//!     "channel": { "description": "Where to post", "type": "string", "pattern": "^C[A-Z0-9]+$" }
//!   },
//!   "slots": {
//!     "alerts": { "connector": "nexum/slack", "version": "^0.1", "actions": ["send_message"],
//!                 "description": "The Slack workspace to post in" }
//!   },
//!   "workflow": {
//!     "trigger": { "type": "webhook", "scheme": "stripe" },
//!     "steps": [ { "name": "post", "type": "connector", "slot": "alerts", "action": "send_message",
//!                  "input": { "channel": "{{ vars.channel }}", "text": "{{ trigger.json.id }}" } } ]
//!   }
//! }
//! ```
//!
//! The `workflow` is a workflow as `POST /workflows` takes it ([`crate::workflows::definition`])
//! with these differences:
//!
//! - a connector step names a `slot` instead of a `connection` (and so may a webhook
//!   trigger, for a scheme taken from the connector's manifest);
//! - it has no `vars`: the template's variables become the workflow's `vars` when it is used
//!   (a fixed value is a variable with a default), so there is one place values come from;
//! - it has no `name`, `description` or `enabled`: the workflow is named by the use request
//!   (or after the template), described by the template's summary, and enabled as asked;
//! - a webhook trigger carries no `secrets`: a template holds no secrets, the signing
//!   secrets are given when it is used.
//!
//! The workflow is checked in full with [`Definition::check`] (slots bound to a placeholder
//! connection), so a template that parses makes a workflow that saves, as far as can be known
//! without the workspace. The author (publisher namespace) is not in the file: publishing sets
//! it (an `author` field is refused).
//!
//! Variables: `string` (optional `pattern`, a JSON Schema pattern: not anchored, write
//! `^…$`), `number` (optional `minimum`/`maximum`), `boolean`, `enum` (`enum`: the allowed
//! strings) and `json` (any JSON without a secret-looking key, see [`looks_secret`]). Each
//! value is at most [`MAX_VARIABLE_BYTES`] of JSON. A variable with a `default` is optional;
//! one without is required unless `"required": false` (then it is left out of `vars` when not
//! given: steps read it with `vars.x | default(…)`). `"required": true` next to a default is
//! refused as a contradiction, and a `null` default is no default.

use super::{Problem, TemplateError};
use crate::workflows::definition::{Definition, parse_strict};
use crate::workflows::template::Renderer;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Largest `template.json`, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 512 * 1024;
/// Longest template id.
pub const MAX_ID_LEN: usize = 64;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 200;
/// Largest Markdown description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 20 * 1024;
/// Largest changelog entry, in bytes.
pub const MAX_CHANGELOG_BYTES: usize = 2 * 1024;
/// Most tags.
pub const MAX_TAGS: usize = 10;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 32;
/// Fewest and most minutes of estimated setup time.
pub const SETUP_MINUTES: std::ops::RangeInclusive<u32> = 1..=240;
/// Most variables.
pub const MAX_VARIABLES: usize = 50;
/// Most connection slots.
pub const MAX_SLOTS: usize = 20;
/// Longest description of a variable or slot, in characters.
pub const MAX_ITEM_DESCRIPTION_CHARS: usize = 500;
/// Most values of an `enum` variable.
pub const MAX_ENUM_VALUES: usize = 100;
/// Longest value of an `enum` variable, in characters.
pub const MAX_ENUM_VALUE_CHARS: usize = 200;
/// Longest `pattern`, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Largest variable value (its JSON), in bytes: what a workflow's `vars` entry may hold.
pub const MAX_VARIABLE_BYTES: usize = 64 * 1024;
/// Longest icon file name.
pub const MAX_ICON_LEN: usize = 128;
/// The file types an icon may be.
pub const ICON_EXTENSIONS: [&str; 5] = ["svg", "png", "jpg", "jpeg", "webp"];
/// Words that make an object key of a `json` value look like a secret (matched anywhere in
/// the key, ignoring case, with `-` read as `_`).
pub const SECRET_WORDS: [&str; 6] = ["password", "secret", "token", "api_key", "apikey", "authorization"];

/// The connection a slot is bound to while the template's workflow is checked.
const PLACEHOLDER_CONNECTION: &str = "conn_00000000000000000000000000";

/// What a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// `SALES`
    Sales,
    /// `SUPPORT`
    Support,
    /// `MARKETING`
    Marketing,
    /// `DATA_PROCESSING`
    DataProcessing,
    /// `AUTOMATION`
    Automation,
    /// `ANALYTICS`
    Analytics,
    /// `CONTENT`
    Content,
    /// `COMMUNICATION`
    Communication,
}

/// How much a template asks of the person setting it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Difficulty {
    /// `BEGINNER`
    Beginner,
    /// `INTERMEDIATE`
    Intermediate,
    /// `ADVANCED`
    Advanced,
    /// `EXPERT`
    Expert,
}

/// The type of a variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariableType {
    /// A string (optionally matching `pattern`).
    String,
    /// A number (optionally within `minimum`–`maximum`).
    Number,
    /// `true` or `false`.
    Boolean,
    /// One of the strings listed in `enum`.
    Enum,
    /// Any JSON without a secret-looking key ([`looks_secret`]).
    Json,
}

/// A typed value the template asks for; it becomes `vars.<name>` of the workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// What it is for (1–500 characters).
    pub description: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: VariableType,
    /// The value used when none is given (satisfies the type and validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Whether a value must be given; unset: required when there is no default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// `enum` only: the allowed values.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
    /// `string` only: a JSON Schema pattern the value matches (not anchored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// `number` only: the smallest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// `number` only: the largest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
}

impl Variable {
    /// Whether a use request must give a value: `required` when set, otherwise whether there
    /// is no default.
    pub fn is_required(&self) -> bool {
        self.required.unwrap_or(self.default.is_none())
    }

    /// Whether `value` satisfies the variable's type and validation; the reason (without
    /// the value) when it does not.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let size = serde_json::to_string(value).map_or(usize::MAX, |s| s.len());
        if size > MAX_VARIABLE_BYTES {
            return Err(format!("at most {} KiB of JSON", MAX_VARIABLE_BYTES / 1024));
        }
        match self.kind {
            VariableType::String => {
                if !value.is_string() {
                    return Err("expected a string".into());
                }
                if let Some(pattern) = &self.pattern {
                    let validator = pattern_validator(pattern)
                        .map_err(|_| "the variable's pattern is not a valid regular expression".to_string())?;
                    if !validator.is_valid(value) {
                        return Err(format!("does not match the pattern `{pattern}`"));
                    }
                }
            }
            VariableType::Number => {
                let Some(number) = value.as_f64() else {
                    return Err("expected a number".into());
                };
                if let Some(minimum) = self.minimum
                    && number < minimum
                {
                    return Err(format!("at least {minimum}"));
                }
                if let Some(maximum) = self.maximum
                    && number > maximum
                {
                    return Err(format!("at most {maximum}"));
                }
            }
            VariableType::Boolean => {
                if !value.is_boolean() {
                    return Err("expected true or false".into());
                }
            }
            VariableType::Enum => {
                let choices = self.choices.as_deref().unwrap_or_default();
                let Some(text) = value.as_str() else {
                    return Err(format!("expected one of: {}", choices.join(", ")));
                };
                if !choices.iter().any(|c| c == text) {
                    return Err(format!("expected one of: {}", choices.join(", ")));
                }
            }
            VariableType::Json => {
                if let Some(key) = secret_key(value, "") {
                    return Err(format!(
                        "`{key}` looks like a secret: template values hold no secrets (credentials belong in a connection)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A connection the template needs: which connector, which versions of it, which actions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slot {
    /// `<publisher namespace>/<connector id>`, e.g. `nexum/slack`: also the marketplace
    /// package to install.
    pub connector: String,
    /// The connector versions it works with (`^0.1`).
    pub version: semver::VersionReq,
    /// The actions its steps call (each listed once).
    pub actions: Vec<String>,
    /// What it is for (1–500 characters).
    pub description: String,
}

impl Slot {
    /// The publisher namespace (`nexum`).
    pub fn publisher(&self) -> &str {
        self.connector.split_once('/').map_or("", |(namespace, _)| namespace)
    }

    /// The connector id (`slack`).
    pub fn connector_id(&self) -> &str {
        self.connector.split_once('/').map_or("", |(_, id)| id)
    }

    /// The installation `source` a connector from this slot's publisher has
    /// (`marketplace:nexum/slack`).
    pub fn source(&self) -> String {
        format!("marketplace:{}", self.connector)
    }
}

/// A parsed, checked template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    /// 1–64 of `a-z`, `0-9` and `-` (`stripe-payment-to-slack`).
    pub id: String,
    /// Display name (1–100 characters).
    pub name: String,
    /// One line (1–200 characters).
    pub summary: String,
    /// Markdown (at most 20 KiB).
    pub description: String,
    /// What it is for.
    pub category: Category,
    /// How hard it is to set up.
    pub difficulty: Difficulty,
    /// At most 10, each 1–32 of `a-z`, `0-9` and `-`.
    pub tags: Vec<String>,
    /// Estimated setup time in minutes (1–240).
    pub setup_minutes: u32,
    /// Its semver version.
    pub version: semver::Version,
    /// What changed in this version (at most 2 KiB).
    pub changelog: String,
    /// The icon's file name in the bundle (`icon.svg`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// The values it asks for, by name.
    pub variables: BTreeMap<String, Variable>,
    /// The connections it needs, by name.
    pub slots: BTreeMap<String, Slot>,
    /// The workflow as written (connector steps name slots), kept raw.
    pub workflow: Value,
}

/// The document as written, before its values are checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    id: String,
    name: String,
    summary: String,
    description: String,
    category: Category,
    difficulty: Difficulty,
    #[serde(default)]
    tags: Vec<String>,
    setup_minutes: u32,
    version: String,
    changelog: String,
    #[serde(default)]
    icon: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
    #[serde(default)]
    slots: BTreeMap<String, SlotDocument>,
    workflow: Value,
}

/// A slot as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotDocument {
    connector: String,
    version: String,
    #[serde(default)]
    actions: Vec<String>,
    description: String,
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// A variable or slot name: 1–64 of `a-z`, `0-9`, `_`, starting with a letter (what a
/// workflow's `vars` accepts).
pub fn valid_identifier(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// 1–`max` of `a-z`, `0-9` and `-`, not starting or ending with `-`.
fn valid_slug(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// A connector id as manifests have it: 1–64 of `a-z`, `0-9`, `-` and `_`.
fn valid_connector_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A file name in the bundle (no directories, no leading dot) with an image extension.
fn valid_icon(name: &str) -> bool {
    (1..=MAX_ICON_LEN).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && name
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && ICON_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Text that is not blank and at most `max` characters.
fn check_chars(problems: &mut Vec<Problem>, path: &str, value: &str, max: usize) {
    if value.trim().is_empty() || value.chars().count() > max {
        problems.push(problem(path, format!("1–{max} characters")));
    }
}

/// Text that is not blank and at most `max` bytes.
fn check_bytes(problems: &mut Vec<Problem>, path: &str, value: &str, max: usize) {
    if value.trim().is_empty() || value.len() > max {
        problems.push(problem(path, format!("not empty, at most {max} bytes")));
    }
}

/// Whether an object key looks like it holds a secret: it contains one of [`SECRET_WORDS`],
/// ignoring case, with `-` read as `_` (`Api-Key`, `client_secret`, `refreshToken`).
pub fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    SECRET_WORDS.iter().any(|word| key.contains(word))
}

/// The path of the first secret-looking key in `value`, at any depth.
fn secret_key(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Object(fields) => fields.iter().find_map(|(key, field)| {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if looks_secret(key) {
                Some(here)
            } else {
                secret_key(field, &here)
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| secret_key(item, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// A validator for a string `pattern`, with the linear-time `regex` engine (a template's
/// pattern runs against values its users type).
fn pattern_validator(pattern: &str) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&serde_json::json!({ "type": "string", "pattern": pattern }))
        .map_err(|e| e.to_string())
}

fn check_variable(name: &str, variable: &Variable, problems: &mut Vec<Problem>) {
    let at = format!("variables.{name}");
    let before = problems.len();
    if !valid_identifier(name) {
        problems.push(problem(
            &at,
            "a variable name is 1–64 of a-z, 0-9 and _, starting with a letter",
        ));
    }
    check_chars(
        problems,
        &format!("{at}.description"),
        &variable.description,
        MAX_ITEM_DESCRIPTION_CHARS,
    );
    let kind = variable.kind;
    if kind != VariableType::String && variable.pattern.is_some() {
        problems.push(problem(format!("{at}.pattern"), "only a string variable has a pattern"));
    }
    if kind != VariableType::Enum && variable.choices.is_some() {
        problems.push(problem(format!("{at}.enum"), "only an enum variable lists values"));
    }
    if kind != VariableType::Number {
        if variable.minimum.is_some() {
            problems.push(problem(format!("{at}.minimum"), "only a number variable has a minimum"));
        }
        if variable.maximum.is_some() {
            problems.push(problem(format!("{at}.maximum"), "only a number variable has a maximum"));
        }
    }
    match kind {
        VariableType::String => {
            if let Some(pattern) = &variable.pattern {
                if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
                    problems.push(problem(format!("{at}.pattern"), format!("1–{MAX_PATTERN_LEN} bytes")));
                } else if let Err(e) = pattern_validator(pattern) {
                    problems.push(problem(
                        format!("{at}.pattern"),
                        format!("not a valid regular expression: {e}"),
                    ));
                }
            }
        }
        VariableType::Number => {
            if let (Some(minimum), Some(maximum)) = (variable.minimum, variable.maximum)
                && minimum > maximum
            {
                problems.push(problem(format!("{at}.maximum"), "below the minimum"));
            }
        }
        VariableType::Enum => match variable.choices.as_deref() {
            None | Some([]) => problems.push(problem(
                format!("{at}.enum"),
                format!("an enum variable lists its values (1–{MAX_ENUM_VALUES})"),
            )),
            Some(choices) => {
                if choices.len() > MAX_ENUM_VALUES {
                    problems.push(problem(
                        format!("{at}.enum"),
                        format!("at most {MAX_ENUM_VALUES} values"),
                    ));
                }
                let mut seen = BTreeSet::new();
                for (i, choice) in choices.iter().enumerate() {
                    if choice.is_empty() || choice.chars().count() > MAX_ENUM_VALUE_CHARS {
                        problems.push(problem(
                            format!("{at}.enum[{i}]"),
                            format!("1–{MAX_ENUM_VALUE_CHARS} characters"),
                        ));
                    }
                    if !seen.insert(choice.as_str()) {
                        problems.push(problem(format!("{at}.enum[{i}]"), "listed twice"));
                    }
                }
            }
        },
        VariableType::Boolean | VariableType::Json => {}
    }
    if variable.required == Some(true) && variable.default.is_some() {
        problems.push(problem(
            format!("{at}.required"),
            "a variable with a default is not required: drop one of them",
        ));
    }
    // The default is checked against a variable that is itself sound.
    if problems.len() == before
        && let Some(default) = &variable.default
        && let Err(reason) = variable.check(default)
    {
        problems.push(problem(format!("{at}.default"), reason));
    }
}

/// The parsed slot, or its problems.
fn check_slot(name: &str, slot: &SlotDocument, problems: &mut Vec<Problem>) -> Option<Slot> {
    let at = format!("slots.{name}");
    let before = problems.len();
    if !valid_identifier(name) {
        problems.push(problem(
            &at,
            "a slot name is 1–64 of a-z, 0-9 and _, starting with a letter",
        ));
    }
    let connector_ok = slot
        .connector
        .split_once('/')
        .is_some_and(|(namespace, id)| crate::marketplace::valid_namespace(namespace) && valid_connector_id(id));
    if !connector_ok {
        problems.push(problem(
            format!("{at}.connector"),
            "`<publisher namespace>/<connector id>`, e.g. `nexum/slack`",
        ));
    }
    let version = match semver::VersionReq::parse(&slot.version) {
        Ok(version) => Some(version),
        Err(e) => {
            problems.push(problem(
                format!("{at}.version"),
                format!("not a semver version range: {e}"),
            ));
            None
        }
    };
    let mut seen = BTreeSet::new();
    for (i, action) in slot.actions.iter().enumerate() {
        if action.is_empty() || action.len() > 64 {
            problems.push(problem(
                format!("{at}.actions[{i}]"),
                "an action name is 1–64 characters",
            ));
        }
        if !seen.insert(action.as_str()) {
            problems.push(problem(format!("{at}.actions[{i}]"), "listed twice"));
        }
    }
    check_chars(
        problems,
        &format!("{at}.description"),
        &slot.description,
        MAX_ITEM_DESCRIPTION_CHARS,
    );
    if problems.len() > before {
        return None;
    }
    Some(Slot {
        connector: slot.connector.clone(),
        version: version?,
        actions: slot.actions.clone(),
        description: slot.description.clone(),
    })
}

/// The template's workflow with each `"slot": "<name>"` (connector steps and a webhook
/// trigger) replaced by `"connection": <connection_for(name)>`; a slot without a connection
/// is left as it is.
pub(crate) fn bind(workflow: &Value, connection_for: &dyn Fn(&str) -> Option<String>) -> Value {
    let mut bound = workflow.clone();
    let replace = |object: &mut serde_json::Map<String, Value>| {
        let Some(slot) = object.get("slot").and_then(Value::as_str) else {
            return;
        };
        let Some(connection) = connection_for(slot) else {
            return;
        };
        object.remove("slot");
        object.insert("connection".into(), Value::String(connection));
    };
    if let Some(object) = bound.as_object_mut() {
        if let Some(trigger) = object.get_mut("trigger").and_then(Value::as_object_mut)
            && trigger.get("type").and_then(Value::as_str) == Some("webhook")
        {
            replace(trigger);
        }
        if let Some(steps) = object.get_mut("steps").and_then(Value::as_array_mut) {
            for step in steps.iter_mut().filter_map(Value::as_object_mut) {
                if step.get("type").and_then(Value::as_str) == Some("connector") {
                    replace(step);
                }
            }
        }
    }
    bound
}

/// The fields a template's workflow may not have, and why.
const NOT_IN_A_TEMPLATE: [(&str, &str); 4] = [
    (
        "vars",
        "a template declares `variables` instead: their values become the workflow's vars",
    ),
    ("name", "the workflow is named when the template is used"),
    ("description", "the workflow is described by the template's summary"),
    (
        "enabled",
        "whether the workflow is enabled is chosen when the template is used",
    ),
];

/// Check the template's workflow: slots bound and used, actions listed, then the workflow
/// itself with [`Definition::check`].
fn check_workflow(
    workflow: &Value,
    slots: &BTreeMap<String, SlotDocument>,
    renderer: &Renderer,
    problems: &mut Vec<Problem>,
) {
    let Some(object) = workflow.as_object() else {
        problems.push(problem("workflow", "the workflow is a JSON object"));
        return;
    };
    for (field, message) in NOT_IN_A_TEMPLATE {
        if object.contains_key(field) {
            problems.push(problem(format!("workflow.{field}"), message));
        }
    }
    let mut used = BTreeSet::new();
    let mut bindable = true;
    let mut names_connection = false;
    let mut slot_named = |value: Option<&Value>, path: String, problems: &mut Vec<Problem>| -> Option<String> {
        let outcome = match value {
            None => Err("a connector step names a slot (`\"slot\": \"<name>\"`)".to_string()),
            Some(Value::String(name)) if slots.contains_key(name) => Ok(name.clone()),
            Some(Value::String(name)) => Err(format!("no slot is named `{name}`")),
            Some(_) => Err("a slot is named by a string".to_string()),
        };
        match outcome {
            Ok(name) => {
                used.insert(name.clone());
                Some(name)
            }
            Err(message) => {
                bindable = false;
                problems.push(problem(path, message));
                None
            }
        }
    };
    if let Some(trigger) = object.get("trigger").and_then(Value::as_object)
        && trigger.get("type").and_then(Value::as_str) == Some("webhook")
    {
        if trigger.contains_key("secrets") {
            problems.push(problem(
                "workflow.trigger.secrets",
                "a template holds no secrets: the signing secrets are given when it is used",
            ));
        }
        if trigger.contains_key("connection") {
            problems.push(problem(
                "workflow.trigger.connection",
                "a template names a slot (`\"slot\": \"<name>\"`), not a connection",
            ));
        }
        if trigger.contains_key("slot") {
            slot_named(trigger.get("slot"), "workflow.trigger.slot".into(), problems);
        }
    }
    if let Some(steps) = object.get("steps").and_then(Value::as_array) {
        for (i, step) in steps.iter().enumerate() {
            // Anything that is not a connector step is left to the strict parse below.
            let Some(step) = step.as_object() else {
                continue;
            };
            if step.get("type").and_then(Value::as_str) != Some("connector") {
                continue;
            }
            let at = format!("workflow.steps[{i}]");
            if step.contains_key("connection") {
                names_connection = true;
                problems.push(problem(
                    format!("{at}.connection"),
                    "a template names a slot (`\"slot\": \"<name>\"`), not a connection",
                ));
            }
            let Some(name) = slot_named(step.get("slot"), format!("{at}.slot"), problems) else {
                continue;
            };
            if let (Some(slot), Some(action)) = (slots.get(&name), step.get("action").and_then(Value::as_str))
                && !slot.actions.iter().any(|a| a == action)
            {
                problems.push(problem(
                    format!("{at}.action"),
                    format!(
                        "the slot `{name}` does not list the action `{action}` (it lists: {})",
                        slot.actions.join(", ")
                    ),
                ));
            }
        }
    }
    for name in slots.keys() {
        if !used.contains(name) {
            problems.push(problem(format!("slots.{name}"), "no step or trigger uses this slot"));
        }
    }
    if !bindable || names_connection {
        // Unbound steps would only add "missing field `connection`" to what is said above.
        return;
    }
    let mut bound = bind(workflow, &|_: &str| Some(PLACEHOLDER_CONNECTION.to_string()));
    if let Some(object) = bound.as_object_mut() {
        for (field, _) in NOT_IN_A_TEMPLATE {
            object.remove(field);
        }
    }
    match parse_strict::<Definition>(bound, "workflow") {
        Err(p) => problems.push(p),
        Ok(definition) => problems.extend(definition.check(renderer).into_iter().map(|p| Problem {
            path: if p.path.is_empty() {
                "workflow".into()
            } else {
                format!("workflow.{}", p.path)
            },
            message: p.message,
        })),
    }
}

impl Template {
    /// Parse `template.json` (at most [`MAX_TEMPLATE_BYTES`]) and check it in full; the
    /// workflow's templates are compiled with `renderer`.
    pub fn parse(bytes: &[u8], renderer: &Renderer) -> Result<Template, TemplateError> {
        if bytes.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::TooLarge);
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| TemplateError::Invalid(vec![problem("", format!("template.json is not JSON: {e}"))]))?;
        Self::from_value(value, renderer)
    }

    /// Check a template document already read as JSON.
    pub fn from_value(value: Value, renderer: &Renderer) -> Result<Template, TemplateError> {
        if value.get("author").is_some() {
            return Err(TemplateError::Invalid(vec![problem(
                "author",
                "the author is the publisher's namespace, set when the template is published",
            )]));
        }
        let document: Document = parse_strict(value, "").map_err(|p| TemplateError::Invalid(vec![p]))?;
        let mut problems = Vec::new();
        if !valid_slug(&document.id, MAX_ID_LEN) {
            problems.push(problem(
                "id",
                format!("1–{MAX_ID_LEN} of a-z, 0-9 and -, not starting or ending with -"),
            ));
        }
        check_chars(&mut problems, "name", &document.name, MAX_NAME_CHARS);
        check_chars(&mut problems, "summary", &document.summary, MAX_SUMMARY_CHARS);
        check_bytes(
            &mut problems,
            "description",
            &document.description,
            MAX_DESCRIPTION_BYTES,
        );
        check_bytes(&mut problems, "changelog", &document.changelog, MAX_CHANGELOG_BYTES);
        if document.tags.len() > MAX_TAGS {
            problems.push(problem("tags", format!("at most {MAX_TAGS} tags")));
        }
        let mut seen = BTreeSet::new();
        for (i, tag) in document.tags.iter().enumerate() {
            if !valid_slug(tag, MAX_TAG_LEN) {
                problems.push(problem(
                    format!("tags[{i}]"),
                    format!("1–{MAX_TAG_LEN} of a-z, 0-9 and -"),
                ));
            }
            if !seen.insert(tag.as_str()) {
                problems.push(problem(format!("tags[{i}]"), "listed twice"));
            }
        }
        if !SETUP_MINUTES.contains(&document.setup_minutes) {
            problems.push(problem(
                "setup_minutes",
                format!("{}–{} minutes", SETUP_MINUTES.start(), SETUP_MINUTES.end()),
            ));
        }
        let version = match semver::Version::parse(&document.version) {
            Ok(version) => Some(version),
            Err(e) => {
                problems.push(problem("version", format!("not a semver version: {e}")));
                None
            }
        };
        if let Some(icon) = &document.icon
            && !valid_icon(icon)
        {
            problems.push(problem(
                "icon",
                format!(
                    "a file name in the bundle (no directories), ending in .{}",
                    ICON_EXTENSIONS.join(", .")
                ),
            ));
        }
        if document.variables.len() > MAX_VARIABLES {
            problems.push(problem("variables", format!("at most {MAX_VARIABLES} variables")));
        }
        for (name, variable) in &document.variables {
            check_variable(name, variable, &mut problems);
        }
        if document.slots.len() > MAX_SLOTS {
            problems.push(problem("slots", format!("at most {MAX_SLOTS} slots")));
        }
        let mut slots = BTreeMap::new();
        for (name, slot) in &document.slots {
            if let Some(slot) = check_slot(name, slot, &mut problems) {
                slots.insert(name.clone(), slot);
            }
        }
        check_workflow(&document.workflow, &document.slots, renderer, &mut problems);
        let (true, Some(version)) = (problems.is_empty(), version) else {
            return Err(TemplateError::Invalid(problems));
        };
        Ok(Template {
            id: document.id,
            name: document.name.trim().to_string(),
            summary: document.summary.trim().to_string(),
            description: document.description,
            category: document.category,
            difficulty: document.difficulty,
            tags: document.tags,
            setup_minutes: document.setup_minutes,
            version,
            changelog: document.changelog,
            icon: document.icon,
            variables: document.variables,
            slots,
            workflow: document.workflow,
        })
    }

    /// Whether the workflow is started by a signed incoming webhook (its signing secrets are
    /// then given when the template is used).
    pub fn has_webhook_trigger(&self) -> bool {
        self.workflow
            .get("trigger")
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str)
            == Some("webhook")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// A full, valid template (used by the instantiate tests too).
    pub(in crate::templates) fn sample() -> Value {
        json!({
            "id": "stripe-payment-to-slack",
            "name": "Stripe payments to Slack",
            "summary": "Post every Stripe payment to a Slack channel.",
            "description": "# Stripe to Slack\n\nPosts each payment.",
            "category": "SALES",
            "difficulty": "BEGINNER",
            "tags": ["stripe", "slack"],
            "setup_minutes": 5,
            "version": "1.2.0",
            "changelog": "Adds the amount.",
            "icon": "icon.svg",
            "variables": {
                "channel": { "description": "Where to post", "type": "string", "pattern": "^C[A-Z0-9]+$" },
                "threshold": { "description": "Smallest amount", "type": "number", "default": 10, "minimum": 0, "maximum": 1000 },
                "mention": { "description": "Mention the channel", "type": "boolean", "default": false },
                "tone": { "description": "How to say it", "type": "enum", "enum": ["plain", "cheerful"], "default": "plain" },
                "extra": { "description": "Extra fields", "type": "json", "default": { "source": "template" } },
                "footer": { "description": "A footer", "type": "string", "required": false }
            },
            "slots": {
                "alerts": { "connector": "nexum/slack", "version": "^0.1", "actions": ["send_message", "list_channels"],
                            "description": "The Slack workspace to post in" }
            },
            "workflow": {
                "trigger": { "type": "webhook", "scheme": "stripe" },
                "steps": [
                    { "name": "check", "type": "condition", "condition": "trigger.json.amount >= vars.threshold", "else": "done" },
                    { "name": "post", "type": "connector", "slot": "alerts", "action": "send_message",
                      "input": { "channel": "{{ vars.channel }}", "text": "paid {{ trigger.json.amount }}" } },
                    { "name": "done", "type": "transform", "output": { "ok": true } }
                ]
            }
        })
    }

    fn parse(value: Value) -> Result<Template, Vec<Problem>> {
        match Template::from_value(value, &Renderer::new()) {
            Ok(t) => Ok(t),
            Err(TemplateError::Invalid(problems)) => Err(problems),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    fn paths(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    /// `value` with `new` at `pointer` (set or added).
    fn with(mut value: Value, pointer: &str, new: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        match value.pointer_mut(parent).expect("the parent exists") {
            Value::Object(fields) => {
                fields.insert(key.to_string(), new);
            }
            Value::Array(items) => items[key.parse::<usize>().expect("an index")] = new,
            _ => panic!("{parent} is not an object or array"),
        }
        value
    }

    fn variable(kind: Value) -> Variable {
        serde_json::from_value(kind).expect("a variable")
    }

    #[test]
    fn a_full_template_parses() {
        let template = parse(sample()).expect("valid");
        assert_eq!(template.id, "stripe-payment-to-slack");
        assert_eq!(template.category, Category::Sales);
        assert_eq!(template.difficulty, Difficulty::Beginner);
        assert_eq!(template.version, semver::Version::new(1, 2, 0));
        assert_eq!(template.tags, vec!["stripe", "slack"]);
        assert_eq!(template.icon.as_deref(), Some("icon.svg"));
        let slot = &template.slots["alerts"];
        assert_eq!((slot.publisher(), slot.connector_id()), ("nexum", "slack"));
        assert_eq!(slot.source(), "marketplace:nexum/slack");
        assert!(slot.version.matches(&semver::Version::new(0, 1, 7)));
        assert!(template.variables["channel"].is_required());
        assert!(!template.variables["threshold"].is_required());
        assert!(!template.variables["footer"].is_required());
        assert_eq!(template.workflow, sample()["workflow"]);
        assert!(template.has_webhook_trigger());
        // From bytes too, and a round trip through its JSON.
        let bytes = serde_json::to_vec(&sample()).expect("json");
        assert_eq!(Template::parse(&bytes, &Renderer::new()).expect("valid"), template);
        let shown = serde_json::to_value(&template).expect("json");
        assert_eq!(parse(shown).expect("round trip"), template);
    }

    #[test]
    fn unknown_fields_and_bad_enums_are_named() {
        let mut value = sample();
        value["colour"] = json!("red");
        let problems = parse(value).expect_err("unknown field");
        assert!(problems[0].message.contains("colour"), "{problems:?}");

        let problems = parse(with(sample(), "/variables/channel/colour", json!(1))).expect_err("unknown");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].path.starts_with("variables.channel"), "{problems:?}");
        assert!(problems[0].message.contains("colour"), "{problems:?}");

        let problems = parse(with(sample(), "/category", json!("GAMES"))).expect_err("bad category");
        assert_eq!(paths(&problems), ["category"], "{problems:?}");
        let problems = parse(with(sample(), "/difficulty", json!("EASY"))).expect_err("bad difficulty");
        assert_eq!(paths(&problems), ["difficulty"], "{problems:?}");
        let problems = parse(with(sample(), "/variables/channel/type", json!("date"))).expect_err("bad type");
        assert_eq!(paths(&problems), ["variables.channel.type"], "{problems:?}");

        let mut value = sample();
        value["author"] = json!("nexum");
        assert_eq!(paths(&parse(value).expect_err("author")), ["author"]);
    }

    #[test]
    fn metadata_is_checked() {
        let mut value = sample();
        value["id"] = json!("Stripe_To_Slack");
        value["summary"] = json!("x".repeat(201));
        value["description"] = json!("x".repeat(MAX_DESCRIPTION_BYTES + 1));
        value["changelog"] = json!("");
        value["tags"] = json!(["ok", "Not OK", "ok"]);
        value["setup_minutes"] = json!(241);
        value["version"] = json!("1.2");
        value["icon"] = json!("../icon.svg");
        let problems = parse(value).expect_err("invalid");
        let found = paths(&problems);
        for path in [
            "id",
            "summary",
            "description",
            "changelog",
            "tags[1]",
            "tags[2]",
            "setup_minutes",
            "version",
            "icon",
        ] {
            assert!(found.contains(&path), "{path}: {problems:?}");
        }
        let problems = parse(with(sample(), "/setup_minutes", json!(0))).expect_err("zero");
        assert_eq!(paths(&problems), ["setup_minutes"]);
    }

    #[test]
    fn slots_must_be_bound_used_and_list_their_actions() {
        // A slot nobody uses.
        let mut value = sample();
        value["slots"]["spare"] =
            json!({ "connector": "nexum/http", "version": "^1", "actions": [], "description": "unused" });
        assert_eq!(paths(&parse(value).expect_err("unused")), ["slots.spare"]);

        // An action the slot does not list.
        let problems = parse(with(sample(), "/workflow/steps/1/action", json!("delete_channel"))).expect_err("action");
        assert_eq!(paths(&problems), ["workflow.steps[1].action"], "{problems:?}");
        assert!(
            problems[0].message.contains("send_message, list_channels"),
            "{problems:?}"
        );

        // A slot the template does not have (and so `alerts` is unused).
        let problems = parse(with(sample(), "/workflow/steps/1/slot", json!("pager"))).expect_err("unknown slot");
        assert_eq!(
            paths(&problems),
            ["workflow.steps[1].slot", "slots.alerts"],
            "{problems:?}"
        );

        // A connection instead of a slot.
        let mut value = sample();
        let step = value["workflow"]["steps"][1].as_object_mut().expect("step");
        step.remove("slot");
        step.insert("connection".into(), json!("conn_01h00000000000000000000000"));
        let problems = parse(value).expect_err("connection");
        let found = paths(&problems);
        assert!(found.contains(&"workflow.steps[1].connection"), "{problems:?}");
        assert!(found.contains(&"workflow.steps[1].slot"), "{problems:?}");

        // Bad slot fields.
        let mut value = sample();
        value["slots"]["alerts"]["connector"] = json!("slack");
        value["slots"]["alerts"]["version"] = json!("not a range");
        let problems = parse(value).expect_err("bad slot");
        assert_eq!(
            paths(&problems),
            ["slots.alerts.connector", "slots.alerts.version"],
            "{problems:?}"
        );

        // A webhook trigger may take its scheme from a slot; it may not carry secrets.
        let mut value = sample();
        value["workflow"]["trigger"] = json!({ "type": "webhook", "slot": "alerts" });
        parse(value).expect("a trigger slot");
        let mut value = sample();
        value["workflow"]["trigger"]["secrets"] = json!(["whsec_x"]);
        assert_eq!(paths(&parse(value).expect_err("secrets")), ["workflow.trigger.secrets"]);
    }

    #[test]
    fn the_workflow_is_checked_as_a_workflow() {
        let mut value = sample();
        value["workflow"]["vars"] = json!({ "channel": "C1" });
        assert_eq!(paths(&parse(value).expect_err("vars")), ["workflow.vars"]);

        let mut value = sample();
        value["workflow"]["name"] = json!("mine");
        assert_eq!(paths(&parse(value).expect_err("name")), ["workflow.name"]);

        let problems = parse(with(sample(), "/workflow/steps/0/else", json!("nowhere"))).expect_err("jump");
        assert_eq!(paths(&problems), ["workflow.steps[0].else"], "{problems:?}");

        let problems = parse(with(sample(), "/workflow/steps/2/colour", json!(1))).expect_err("unknown");
        assert!(problems[0].path.starts_with("workflow.steps[2]"), "{problems:?}");

        let problems =
            parse(with(sample(), "/workflow/steps/1/input/text", json!("{{ secrets.x }}"))).expect_err("root");
        assert!(
            problems[0].path.starts_with("workflow.steps[1].input.text"),
            "{problems:?}"
        );
    }

    #[test]
    fn variables_are_typed_and_validated() {
        let string = variable(json!({ "description": "d", "type": "string", "pattern": "^C[0-9]+$" }));
        assert!(string.check(&json!("C12")).is_ok());
        assert!(string.check(&json!("D12")).expect_err("pattern").contains("pattern"));
        assert_eq!(string.check(&json!(12)), Err("expected a string".into()));

        let number = variable(json!({ "description": "d", "type": "number", "minimum": 1, "maximum": 5 }));
        assert!(number.check(&json!(1)).is_ok());
        assert!(number.check(&json!(4.5)).is_ok());
        assert_eq!(number.check(&json!(0)), Err("at least 1".into()));
        assert_eq!(number.check(&json!(6)), Err("at most 5".into()));
        assert_eq!(number.check(&json!("3")), Err("expected a number".into()));

        let boolean = variable(json!({ "description": "d", "type": "boolean" }));
        assert!(boolean.check(&json!(true)).is_ok());
        assert!(boolean.check(&json!("true")).is_err());

        let choice = variable(json!({ "description": "d", "type": "enum", "enum": ["a", "b"] }));
        assert!(choice.check(&json!("b")).is_ok());
        assert_eq!(choice.check(&json!("c")), Err("expected one of: a, b".into()));

        let any = variable(json!({ "description": "d", "type": "json" }));
        assert!(any.check(&json!({ "a": [1, { "b": null }] })).is_ok());
        assert!(any.check(&json!(null)).is_ok());
        assert!(any.check(&json!("x".repeat(MAX_VARIABLE_BYTES))).is_err());

        assert!(string.is_required());
        let optional = variable(json!({ "description": "d", "type": "string", "required": false }));
        assert!(!optional.is_required());
    }

    #[test]
    fn bad_variable_declarations_are_named() {
        let mut value = sample();
        let variables = value["variables"].as_object_mut().expect("object");
        variables.insert("Bad-Name".into(), json!({ "description": "d", "type": "boolean" }));
        variables.insert(
            "pat".into(),
            json!({ "description": "d", "type": "number", "pattern": "x" }),
        );
        variables.insert("choice".into(), json!({ "description": "d", "type": "enum" }));
        variables.insert(
            "dup".into(),
            json!({ "description": "d", "type": "enum", "enum": ["a", "a"] }),
        );
        variables.insert(
            "range".into(),
            json!({ "description": "d", "type": "number", "minimum": 5, "maximum": 1 }),
        );
        variables.insert(
            "regex".into(),
            json!({ "description": "d", "type": "string", "pattern": "(" }),
        );
        variables.insert(
            "both".into(),
            json!({ "description": "d", "type": "string", "default": "x", "required": true }),
        );
        variables.insert(
            "low".into(),
            json!({ "description": "d", "type": "number", "minimum": 1, "default": 0 }),
        );
        variables.insert(
            "wrong".into(),
            json!({ "description": "d", "type": "boolean", "default": "yes" }),
        );
        variables.insert(
            "notlisted".into(),
            json!({ "description": "d", "type": "enum", "enum": ["a"], "default": "b" }),
        );
        variables.insert(
            "nomatch".into(),
            json!({ "description": "d", "type": "string", "pattern": "^a", "default": "b" }),
        );
        variables.insert("blank".into(), json!({ "description": " ", "type": "json" }));
        let problems = parse(value).expect_err("invalid");
        let found = paths(&problems);
        for path in [
            "variables.Bad-Name",
            "variables.pat.pattern",
            "variables.choice.enum",
            "variables.dup.enum[1]",
            "variables.range.maximum",
            "variables.regex.pattern",
            "variables.both.required",
            "variables.low.default",
            "variables.wrong.default",
            "variables.notlisted.default",
            "variables.nomatch.default",
            "variables.blank.description",
        ] {
            assert!(found.contains(&path), "{path}: {problems:?}");
        }
    }

    #[test]
    fn secret_looking_json_is_refused() {
        for key in [
            "password",
            "clientSecret",
            "Refresh_Token",
            "api_key",
            "X-Api-Key",
            "APIKEY",
            "Authorization",
        ] {
            assert!(looks_secret(key), "{key}");
        }
        for key in ["channel", "amount", "pass", "key"] {
            assert!(!looks_secret(key), "{key}");
        }
        let problems = parse(with(
            sample(),
            "/variables/extra/default",
            json!({ "headers": [{ "name": "x" }, { "Authorization": "Bearer abc" }] }),
        ))
        .expect_err("secret");
        assert_eq!(paths(&problems), ["variables.extra.default"], "{problems:?}");
        assert!(problems[0].message.contains("headers[1].Authorization"), "{problems:?}");
        assert!(!problems[0].message.contains("Bearer"), "{problems:?}");
    }

    #[test]
    fn size_and_syntax_are_checked_first() {
        let big = vec![b' '; MAX_TEMPLATE_BYTES + 1];
        assert_eq!(Template::parse(&big, &Renderer::new()), Err(TemplateError::TooLarge));
        let Err(TemplateError::Invalid(problems)) = Template::parse(b"{", &Renderer::new()) else {
            panic!("not JSON");
        };
        assert!(problems[0].message.contains("not JSON"), "{problems:?}");
    }
}
