//! A workflow's definition as clients write it: a trigger, ordered steps and variables. It is
//! parsed strictly (unknown fields are refused) and every problem names its field, e.g.
//! `steps[2].input.text`. Checks that need the workspace (connections, actions, input schemas)
//! are in [`super::validate`].

use super::cron::{CronSchedule, Missed};
use super::signatures::Scheme;
use super::template::{Renderer, TemplateProblem};
use crate::ids::ConnectionId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// Most steps in one workflow.
pub const MAX_STEPS: usize = 50;
/// Most signing secrets a webhook trigger holds at once (rotation).
pub const MAX_TRIGGER_SECRETS: usize = 5;
/// Longest a `delay` step waits.
pub const MAX_DELAY_SECS: u64 = 30 * 24 * 3600;
/// Most attempts a step's retry policy may ask for.
pub const MAX_STEP_ATTEMPTS: u32 = 10;
/// Longest a step's timeout may be.
pub const MAX_STEP_TIMEOUT_SECS: u64 = 600;

/// What starts a workflow's executions (besides `POST /workflows/{id}/execute`, which always
/// can).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Only the API starts it.
    #[default]
    Manual,
    /// A cron schedule in a time zone.
    Schedule {
        /// A 5-field cron expression (`0 9 * * MON-FRI`) or `@hourly`, `@daily`…
        cron: String,
        /// An IANA time zone (default `UTC`).
        #[serde(default = "utc")]
        timezone: String,
        /// What to do with ticks missed while no node ran: `skip` (default) or `run_once`.
        #[serde(default)]
        missed: Missed,
    },
    /// A signed incoming webhook at `POST /hooks/{trigger_id}`.
    Webhook {
        /// The provider's signature scheme; taken from the connection's connector manifest
        /// (`[webhooks] scheme`) when `connection` is given and this is not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        scheme: Option<Scheme>,
        /// The connection whose provider sends the webhooks (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        connection: Option<ConnectionId>,
        /// Write-only: the signing secrets (1–5 active at once, for rotation; for SendGrid
        /// the verification public key). Sealed in the vault, never returned. Omitted on an
        /// update: the sealed ones stay.
        #[serde(default, skip_serializing)]
        secrets: Option<Vec<String>>,
    },
}

fn utc() -> String {
    "UTC".into()
}

impl Trigger {
    /// `manual`, `schedule` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule { .. } => "schedule",
            Trigger::Webhook { .. } => "webhook",
        }
    }
}

/// What happens when a step fails after its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum OnError {
    /// `fail` (default): the execution fails; `continue`: the step is marked failed and the
    /// next one runs (later steps see `steps.<name>.status == "failed"` and its `error`).
    Policy(ErrorPolicy),
    /// `{"fallback": "<step>"}`: go on at that later step.
    Fallback {
        /// The step to run next.
        fallback: String,
    },
}

impl Default for OnError {
    fn default() -> Self {
        OnError::Policy(ErrorPolicy::Fail)
    }
}

/// `fail` or `continue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// The execution fails.
    Fail,
    /// The next step runs.
    Continue,
}

/// How a failing step is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry; at most 10).
    pub attempts: u32,
    /// Wait before the second attempt, doubled for each later one (default 1000).
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
}

fn default_backoff_ms() -> u64 {
    1000
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 1,
            backoff_ms: default_backoff_ms(),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `next` (2, 3, …), capped at one hour.
    pub fn backoff(&self, next: u32) -> u64 {
        let doublings = next.saturating_sub(2).min(20);
        self.backoff_ms.saturating_mul(1 << doublings).min(3_600_000)
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepKind {
    /// Run a connector action on a connection.
    Connector {
        /// `conn_…` of the workspace.
        #[schema(value_type = String)]
        connection: ConnectionId,
        /// The action's name in the connector's manifest.
        action: String,
        /// The action input; strings may be templates over `trigger`, `steps`, `vars`.
        #[serde(default = "empty_object")]
        #[schema(value_type = Object)]
        input: Value,
    },
    /// Branch: evaluate `condition` and go on at `then` or `else` (the next step when unset).
    Condition {
        /// An expression, e.g. `steps.list.output.channels | length > 0`.
        condition: String,
        /// The step to go on at when true.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        then: Option<String>,
        /// The step to go on at when false.
        #[serde(default, rename = "else", skip_serializing_if = "Option::is_none")]
        otherwise: Option<String>,
    },
    /// Wait, without holding a worker.
    Delay {
        /// Seconds to wait (at most 30 days).
        seconds: u64,
    },
    /// Reshape data: `output` rendered over the context becomes the step's output.
    Transform {
        /// Any JSON; strings may be templates.
        #[schema(value_type = Object)]
        output: Value,
    },
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    /// Unique in the workflow: 1–64 of `a-z`, `0-9`, `_`, starting with a letter.
    pub name: String,
    /// Run the step only when this expression is true (otherwise it is `skipped`).
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Retries when the step fails with a retryable error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// A deadline for the step (seconds, at most 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// What happens when it fails for good.
    #[serde(default)]
    pub on_error: OnError,
    /// What it does.
    #[serde(flatten)]
    pub kind: StepKind,
}

/// The versioned part of a workflow: what a saved version holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// What starts it.
    #[serde(default)]
    pub trigger: Trigger,
    /// Named values steps read as `vars.<name>`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub vars: BTreeMap<String, Value>,
    /// The steps, run in order (a condition or fallback may skip ahead, never back).
    pub steps: Vec<Step>,
    /// The execution's output (templated); the last run step's output when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
}

/// A problem with a definition, naming the field.
pub type Problem = TemplateProblem;

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// Parse a JSON value as `T`, naming the field of the first error (`steps[2].retry.attempts`).
pub fn parse_strict<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix.is_empty(), inner == ".") {
            (true, _) => inner,
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}.{inner}"),
        };
        problem(path, crate::quoted::without_input_values(&e.into_inner().to_string()))
    })
}

fn valid_step_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Definition {
    /// The index of the step called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// Every check that needs nothing but the definition: names, jumps (forward only),
    /// limits, the trigger's cron and scheme, and that every template compiles and refers
    /// only to `trigger`, `vars`, `execution` and steps that run before it.
    pub fn check(&self, renderer: &Renderer) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.steps.is_empty() {
            problems.push(problem("steps", "a workflow needs at least one step"));
        }
        if self.steps.len() > MAX_STEPS {
            problems.push(problem("steps", format!("at most {MAX_STEPS} steps")));
        }
        match &self.trigger {
            Trigger::Manual => {}
            Trigger::Schedule { cron, timezone, .. } => {
                if let Err(e) = CronSchedule::parse(cron, timezone) {
                    problems.push(problem("trigger.cron", e.to_string()));
                }
            }
            Trigger::Webhook {
                scheme,
                connection,
                secrets,
            } => {
                if scheme.is_none() && connection.is_none() {
                    problems.push(problem(
                        "trigger.scheme",
                        "name the signature scheme, or a connection whose connector declares one",
                    ));
                }
                if let Some(secrets) = secrets {
                    if secrets.is_empty() || secrets.len() > MAX_TRIGGER_SECRETS {
                        problems.push(problem(
                            "trigger.secrets",
                            format!("give 1–{MAX_TRIGGER_SECRETS} secrets"),
                        ));
                    }
                    for (i, s) in secrets.iter().enumerate() {
                        if s.trim().is_empty() || s.len() > 4096 {
                            problems.push(problem(format!("trigger.secrets[{i}]"), "1–4096 characters"));
                        } else if let Some(Err(reason)) = scheme.map(|scheme| scheme.check_secret(s)) {
                            problems.push(problem(format!("trigger.secrets[{i}]"), reason));
                        }
                    }
                }
            }
        }
        for (name, value) in &self.vars {
            if !valid_step_name(name) {
                problems.push(problem(
                    format!("vars.{name}"),
                    "a variable name is 1–64 of a-z, 0-9 and _, starting with a letter",
                ));
            }
            if value.to_string().len() > 64 * 1024 {
                problems.push(problem(format!("vars.{name}"), "at most 64 KiB"));
            }
        }
        let mut seen = HashSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            if !valid_step_name(&step.name) {
                problems.push(problem(
                    format!("{at}.name"),
                    "a step name is 1–64 of a-z, 0-9 and _, starting with a letter",
                ));
            }
            if !seen.insert(step.name.as_str()) {
                problems.push(problem(format!("{at}.name"), "another step has this name"));
            }
            let before: Vec<&str> = self.steps[..i].iter().map(|s| s.name.as_str()).collect();
            if let Some(when) = &step.when {
                problems.extend(renderer.check_expression(when, &format!("{at}.if"), &before));
            }
            if let Some(retry) = &step.retry
                && !(1..=MAX_STEP_ATTEMPTS).contains(&retry.attempts)
            {
                problems.push(problem(
                    format!("{at}.retry.attempts"),
                    format!("1–{MAX_STEP_ATTEMPTS}"),
                ));
            }
            if let Some(t) = step.timeout_secs
                && !(1..=MAX_STEP_TIMEOUT_SECS).contains(&t)
            {
                problems.push(problem(
                    format!("{at}.timeout_secs"),
                    format!("1–{MAX_STEP_TIMEOUT_SECS}"),
                ));
            }
            let jump = |target: &Option<String>, field: &str| -> Option<Problem> {
                let target = target.as_ref()?;
                match self.position(target) {
                    Some(j) if j > i => None,
                    Some(_) => Some(problem(
                        format!("{at}.{field}"),
                        format!("`{target}` does not come after this step (steps only go forward)"),
                    )),
                    None => Some(problem(format!("{at}.{field}"), format!("no step is named `{target}`"))),
                }
            };
            if let OnError::Fallback { fallback } = &step.on_error {
                problems.extend(jump(&Some(fallback.clone()), "on_error.fallback"));
            }
            match &step.kind {
                StepKind::Connector { action, input, .. } => {
                    if action.is_empty() {
                        problems.push(problem(format!("{at}.action"), "name the action"));
                    }
                    if !input.is_object() {
                        problems.push(problem(format!("{at}.input"), "the input is a JSON object"));
                    }
                    problems.extend(renderer.check(input, &format!("{at}.input"), &before));
                }
                StepKind::Condition {
                    condition,
                    then,
                    otherwise,
                } => {
                    problems.extend(renderer.check_expression(condition, &format!("{at}.condition"), &before));
                    problems.extend(jump(then, "then"));
                    problems.extend(jump(otherwise, "else"));
                }
                StepKind::Delay { seconds } => {
                    if *seconds == 0 || *seconds > MAX_DELAY_SECS {
                        problems.push(problem(format!("{at}.seconds"), format!("1–{MAX_DELAY_SECS}")));
                    }
                }
                StepKind::Transform { output } => {
                    problems.extend(renderer.check(output, &format!("{at}.output"), &before));
                }
            }
        }
        if let Some(output) = &self.output {
            let all: Vec<&str> = self.steps.iter().map(|s| s.name.as_str()).collect();
            problems.extend(renderer.check(output, "output", &all));
        }
        problems
    }

    /// The definition without write-only material (webhook secrets), as it is stored and
    /// returned.
    pub fn without_secrets(&self) -> Definition {
        let mut copy = self.clone();
        if let Trigger::Webhook { secrets, .. } = &mut copy.trigger {
            *secrets = None;
        }
        copy
    }

    /// The connections its steps use.
    pub fn connections(&self) -> impl Iterator<Item = (usize, &ConnectionId, &str, &Value)> {
        self.steps.iter().enumerate().filter_map(|(i, s)| match &s.kind {
            StepKind::Connector {
                connection,
                action,
                input,
            } => Some((i, connection, action.as_str(), input)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Definition, Problem> {
        parse_strict(value, "")
    }

    #[test]
    fn strict_parsing_names_the_field() {
        let err = parse(json!({ "steps": [ { "name": "a", "type": "delay", "seconds": 1, "colour": 1 } ] }))
            .expect_err("unknown field");
        assert!(err.path.starts_with("steps[0]"), "{err:?}");
        let err = parse(json!({ "steps": [ { "name": "a", "type": "teleport" } ] })).expect_err("unknown type");
        assert!(err.path.starts_with("steps[0]"), "{err:?}");
        let err = parse(json!({ "steps": [], "trigger": { "type": "schedule" } })).expect_err("no cron");
        assert!(err.path.starts_with("trigger"), "{err:?}");
    }

    #[test]
    fn checks_names_jumps_and_templates() {
        let renderer = Renderer::new();
        let definition = parse(json!({
            "steps": [
                { "name": "first", "type": "condition", "condition": "vars.go", "then": "third", "else": "nowhere" },
                { "name": "first", "type": "transform", "output": { "x": "{{ steps.later.output }}" } },
                { "name": "third", "type": "delay", "seconds": 0, "on_error": { "fallback": "first" } },
                { "name": "later", "type": "transform", "output": {} }
            ]
        }))
        .expect("parses");
        let problems = definition.check(&renderer);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"steps[0].else"), "{problems:?}");
        assert!(paths.contains(&"steps[1].name"), "{problems:?}");
        assert!(paths.iter().any(|p| p.starts_with("steps[1].output")), "{problems:?}");
        assert!(paths.contains(&"steps[2].seconds"), "{problems:?}");
        assert!(paths.contains(&"steps[2].on_error.fallback"), "{problems:?}");
        assert!(!paths.contains(&"steps[0].then"), "{problems:?}");
    }

    #[test]
    fn secrets_are_write_only() {
        let definition = parse(json!({
            "trigger": { "type": "webhook", "scheme": "github", "secrets": ["s3cr3t"] },
            "steps": [ { "name": "a", "type": "transform", "output": {} } ]
        }))
        .expect("parses");
        assert!(Definition::check(&definition, &Renderer::new()).is_empty());
        let shown = serde_json::to_string(&definition).expect("json");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(matches!(
            definition.without_secrets().trigger,
            Trigger::Webhook { secrets: None, .. }
        ));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            attempts: 5,
            backoff_ms: 100,
        };
        assert_eq!(policy.backoff(2), 100);
        assert_eq!(policy.backoff(3), 200);
        assert_eq!(policy.backoff(4), 400);
        assert_eq!(
            RetryPolicy {
                attempts: 10,
                backoff_ms: u64::MAX
            }
            .backoff(9),
            3_600_000
        );
    }

    #[test]
    fn standard_webhooks_secrets_must_be_whsec() {
        let with = |secret: &str| {
            parse(
                json!({ "trigger": { "type": "webhook", "scheme": "standard_webhooks", "secrets": [secret] },
                "steps": [ { "name": "t", "type": "transform", "output": {} } ] }),
            )
            .expect("parses")
            .check(&Renderer::new())
        };
        let problems = with("plain-text-secret");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "trigger.secrets[0]");
        assert!(!problems[0].message.contains("plain-text-secret"), "never echoed");
        assert!(with("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_empty());
        // Other schemes take any text.
        let github = parse(
            json!({ "trigger": { "type": "webhook", "scheme": "github", "secrets": ["plain"] },
            "steps": [ { "name": "t", "type": "transform", "output": {} } ] }),
        )
        .expect("parses");
        assert!(github.check(&Renderer::new()).is_empty());
    }
}
