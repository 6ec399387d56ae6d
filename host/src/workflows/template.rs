//! Templated workflow step inputs: [minijinja] templates inside JSON values.
//!
//! A step's input is a JSON value whose strings may hold templates, rendered over the
//! execution's context:
//!
//! ```text
//! { trigger, steps: { <step name>: { output, status } }, vars, execution: { id, workflow_id } }
//! ```
//!
//! - A string that is one expression and nothing else (`"{{ steps.list.output }}"`, spaces
//!   around it allowed) becomes the expression's value and keeps its JSON type.
//! - Any other string holding `{{` or `{%` renders to a string.
//! - Other strings, numbers, bools, nulls and every object key are left as they are.
//!
//! Undefined values are errors (strict mode), HTML auto-escaping is off, every render or
//! evaluation has a fuel budget and a recursion limit, a template source is at most
//! [`MAX_TEMPLATE_LEN`] bytes and a rendered string at most [`MAX_RENDERED_LEN`] bytes.
//! [`Renderer::check`] and [`Renderer::check_expression`] validate templates when a workflow is
//! saved: they compile, and every variable starts with an allowed root and names only steps
//! that run before.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

/// Longest template source (or condition expression) accepted, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 16 * 1024;

/// Longest string a template may render to, in bytes.
pub const MAX_RENDERED_LEN: usize = 1024 * 1024;

/// Most bytes all the values one render produces may add up to.
pub const MAX_TOTAL_RENDERED: usize = 4 * 1024 * 1024;

/// Instructions one render or evaluation may execute before it fails as out of fuel.
pub const FUEL: u64 = 200_000;

/// The variables a template may start from.
pub const ROOTS: [&str; 4] = ["trigger", "steps", "vars", "execution"];

/// The fields of an entry of `steps`.
pub const STEP_FIELDS: [&str; 3] = ["output", "status", "error"];

/// Nesting depth of macro calls, loops and the like in one render.
const RECURSION_LIMIT: usize = 64;

/// Longest engine error detail kept in a message, in characters.
const MAX_DETAIL_CHARS: usize = 200;

/// How deep an expression's result is searched for undefined values.
const MAX_UNDEFINED_DEPTH: usize = 64;

/// Compiles and renders templated JSON values.
///
/// Built once and shared: rendering takes `&self`. Templates are compiled on each call.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
}

/// A failure to render a template or evaluate a condition, with the field it happened in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TemplateError {
    /// The field path, e.g. `steps[2].input.text`.
    pub path: String,
    /// What went wrong, short, without the values involved.
    pub message: String,
}

impl TemplateError {
    fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn engine(path: &str, err: &minijinja::Error, source: &str) -> Self {
        Self::new(path, describe(err, source))
    }
}

/// A problem found at save time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TemplateProblem {
    /// The field path, e.g. `steps[2].input.text` or `steps[2].condition`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// What a string of a step's input is.
enum Source<'a> {
    /// Neither `{{` nor `{%`: used as is.
    Plain,
    /// Exactly one `{{ expr }}`: the expression (without braces) is evaluated.
    Expression(&'a str),
    /// Anything else holding `{{` or `{%`: rendered to a string.
    Template,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    /// A renderer with strict undefined values, no auto-escaping, minijinja's built-in filters
    /// (`default`, `lower`, `upper`, `length`, `join`, `tojson`, ...), tests and functions,
    /// a fuel budget of [`FUEL`] per render and a low recursion limit.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_keep_trailing_newline(true);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        // What could turn a small template into a huge value (`indent(10**12)`, `replace`
        // with a long string, `format` widths, `pprint`/`tojson` indentation) or carry state
        // across loop iterations (`namespace`) is not offered; `tojson` comes back without
        // indentation. `debug` would dump the whole context.
        for filter in [
            "indent", "replace", "format", "pprint", "tojson", "batch", "slice", "join",
        ] {
            env.remove_filter(filter);
        }
        // `join` again, stopping at the rendered-string cap (the built-in one has no limit,
        // and nested joins multiply).
        env.add_filter(
            "join",
            |items: Value, separator: Option<String>| -> Result<String, minijinja::Error> {
                let separator = separator.unwrap_or_default();
                let mut out = String::new();
                for (i, item) in items.try_iter()?.enumerate() {
                    if i > 0 {
                        out.push_str(&separator);
                    }
                    match item.as_str() {
                        Some(text) => out.push_str(text),
                        None => out.push_str(&item.to_string()),
                    }
                    if out.len() > MAX_RENDERED_LEN {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("join: the result is longer than {MAX_RENDERED_LEN} bytes"),
                        ));
                    }
                }
                Ok(out)
            },
        );
        for global in ["namespace", "debug"] {
            env.remove_global(global);
        }
        env.add_filter("tojson", |value: Value| -> Result<String, minijinja::Error> {
            serde_json::to_string(&value)
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
        });
        Self { env }
    }

    /// Render every string of `value` (recursively through arrays/objects, object KEYS are
    /// NOT templated) over `context`.
    ///
    /// A string that is exactly one expression `{{ expr }}` (surrounding whitespace allowed,
    /// nothing else) evaluates to the expression's value converted to JSON (numbers, bools,
    /// objects, arrays keep their type; undefined is an error). Any other string containing
    /// `{{` or `{%` is rendered as a template to a string. Strings without either are
    /// returned as is.
    ///
    /// `path` is the field path used in errors, e.g. `steps[2].input`; nested fields extend
    /// it: `steps[2].input.text`, `steps[2].input.items[0]`.
    pub fn render(
        &self,
        value: &serde_json::Value,
        context: &serde_json::Value,
        path: &str,
    ) -> Result<serde_json::Value, TemplateError> {
        let context = Value::from_serialize(context);
        let budget = std::cell::Cell::new(MAX_TOTAL_RENDERED);
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.render_value(value, &context, path, &budget)
        }));
        rendered.unwrap_or_else(|_| Err(TemplateError::new(path, "the template could not be rendered")))
    }

    /// Evaluate a condition expression (e.g. `steps.list.output.channels | length > 0`, no
    /// braces; one `{{ ... }}` around it is tolerated) to a bool using minijinja truthiness.
    /// An expression whose value is undefined is an error, not `false`.
    pub fn condition(&self, expr: &str, context: &serde_json::Value, path: &str) -> Result<bool, TemplateError> {
        let expr = condition_source(expr);
        check_source(expr, true, path)?;
        let context = Value::from_serialize(context);
        let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.eval(expr, &context, path)))
            .unwrap_or_else(|_| Err(TemplateError::new(path, "the condition could not be evaluated")))?;
        Ok(value.is_true())
    }

    /// Check at save time: every template string in `value` compiles, and every variable it
    /// references starts with an allowed root ([`ROOTS`]) and, for `steps.<name>`, `<name>`
    /// is in `known_steps` (the steps that run before). Returns all problems, each with its
    /// field path; empty when all is well.
    pub fn check(&self, value: &serde_json::Value, path: &str, known_steps: &[&str]) -> Vec<TemplateProblem> {
        let mut problems = Vec::new();
        self.check_value(value, path, known_steps, &mut problems);
        problems
    }

    /// Check a condition expression at save time, as [`check`](Self::check) does a template.
    pub fn check_expression(&self, expr: &str, path: &str, known_steps: &[&str]) -> Vec<TemplateProblem> {
        let mut problems = Vec::new();
        let expr = condition_source(expr);
        if let Err(err) = check_source(expr, true, path) {
            problems.push(problem(path, err.message));
            return problems;
        }
        match self.env.compile_expression(expr) {
            Ok(compiled) => {
                let names = compiled.undeclared_variables(true);
                self.check_names(names, expr, path, known_steps, &mut problems);
            }
            Err(err) => problems.push(problem(path, describe(&err, expr))),
        }
        problems
    }

    fn render_value(
        &self,
        value: &serde_json::Value,
        context: &Value,
        path: &str,
        budget: &std::cell::Cell<usize>,
    ) -> Result<serde_json::Value, TemplateError> {
        match value {
            serde_json::Value::String(text) => {
                let rendered = self.render_string(text, context, path)?;
                let size = match &rendered {
                    serde_json::Value::String(s) => s.len(),
                    other => serde_json::to_string(other).map_or(usize::MAX, |s| s.len()),
                };
                match budget.get().checked_sub(size) {
                    Some(left) => budget.set(left),
                    None => {
                        return Err(TemplateError::new(
                            path,
                            format!("the rendered values are larger than {MAX_TOTAL_RENDERED} bytes in all"),
                        ));
                    }
                }
                Ok(rendered)
            }
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.render_value(item, context, &index_path(path, i), budget))
                .collect::<Result<Vec<_>, _>>()
                .map(serde_json::Value::Array),
            serde_json::Value::Object(fields) => {
                let mut out = serde_json::Map::with_capacity(fields.len());
                for (key, field) in fields {
                    let rendered = self.render_value(field, context, &field_path(path, key), budget)?;
                    out.insert(key.clone(), rendered);
                }
                Ok(serde_json::Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn render_string(&self, text: &str, context: &Value, path: &str) -> Result<serde_json::Value, TemplateError> {
        match classify(text) {
            Source::Plain => Ok(serde_json::Value::String(text.to_owned())),
            Source::Expression(expr) => {
                check_len(text, path)?;
                let value = self.eval(expr, context, path)?;
                to_json(&value, path)
            }
            Source::Template => {
                check_len(text, path)?;
                self.render_template(text, context, path).map(serde_json::Value::String)
            }
        }
    }

    /// Compile and evaluate one expression; an undefined result is an error.
    fn eval(&self, expr: &str, context: &Value, path: &str) -> Result<Value, TemplateError> {
        let compiled = self
            .env
            .compile_expression(expr)
            .map_err(|err| TemplateError::engine(path, &err, expr))?;
        let value = compiled
            .eval(context)
            .map_err(|err| TemplateError::engine(path, &err, expr))?;
        if value.is_undefined() {
            return Err(TemplateError::new(
                path,
                "undefined value: the expression refers to something that does not exist",
            ));
        }
        Ok(value)
    }

    fn render_template(&self, source: &str, context: &Value, path: &str) -> Result<String, TemplateError> {
        let template = self
            .env
            .template_from_str(source)
            .map_err(|err| TemplateError::engine(path, &err, source))?;
        let mut out = CappedWriter::default();
        let result = template.render_captured_to(context, &mut out).map(|_| ());
        if let Err(err) = result {
            if out.overflowed {
                return Err(TemplateError::new(
                    path,
                    format!("rendered text is longer than {MAX_RENDERED_LEN} bytes"),
                ));
            }
            return Err(TemplateError::engine(path, &err, source));
        }
        String::from_utf8(out.buf).map_err(|_| TemplateError::new(path, "rendered text is not valid UTF-8"))
    }

    fn check_value(
        &self,
        value: &serde_json::Value,
        path: &str,
        known_steps: &[&str],
        problems: &mut Vec<TemplateProblem>,
    ) {
        match value {
            serde_json::Value::String(text) => self.check_string(text, path, known_steps, problems),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_value(item, &index_path(path, i), known_steps, problems);
                }
            }
            serde_json::Value::Object(fields) => {
                for (key, field) in fields {
                    self.check_value(field, &field_path(path, key), known_steps, problems);
                }
            }
            _ => {}
        }
    }

    fn check_string(&self, text: &str, path: &str, known_steps: &[&str], problems: &mut Vec<TemplateProblem>) {
        let source = classify(text);
        if matches!(source, Source::Plain) {
            return;
        }
        if let Err(err) = check_len(text, path) {
            problems.push(problem(path, err.message));
            return;
        }
        let names = match source {
            Source::Plain => return,
            Source::Expression(expr) => match self.env.compile_expression(expr) {
                Ok(compiled) => compiled.undeclared_variables(true),
                Err(err) => {
                    problems.push(problem(path, describe(&err, expr)));
                    return;
                }
            },
            Source::Template => match self.env.template_from_str(text) {
                Ok(template) => template.undeclared_variables(true),
                Err(err) => {
                    problems.push(problem(path, describe(&err, text)));
                    return;
                }
            },
        };
        self.check_names(names, text, path, known_steps, problems);
    }

    /// Turn the undeclared (dotted, nested) variable names of a template into problems.
    fn check_names(
        &self,
        names: HashSet<String>,
        source: &str,
        path: &str,
        known_steps: &[&str],
        problems: &mut Vec<TemplateProblem>,
    ) {
        let mut messages = BTreeSet::new();
        for name in &names {
            if let Some(message) = self.name_problem(name, known_steps) {
                messages.insert(message);
            }
        }
        // `steps["a-step"]` is not an attribute chain, so the engine reports only `steps`.
        for step in bracket_step_refs(source) {
            if !known_steps.contains(&step) {
                messages.insert(unknown_step(step));
            }
        }
        problems.extend(messages.into_iter().map(|message| problem(path, message)));
    }

    fn name_problem(&self, name: &str, known_steps: &[&str]) -> Option<String> {
        let mut parts = name.split('.');
        let root = parts.next().unwrap_or_default();
        if !ROOTS.contains(&root) {
            // `range`, `dict`, `namespace` and the other global functions.
            if self.env.globals().any(|(global, _)| global == root) {
                return None;
            }
            return Some(format!(
                "unknown variable `{}`: a reference starts with trigger, steps, vars or execution",
                shorten(root)
            ));
        }
        if root == "steps"
            && let Some(step) = parts.next()
        {
            if !known_steps.contains(&step) {
                return Some(unknown_step(step));
            }
            if let Some(field) = parts.next()
                && !STEP_FIELDS.contains(&field)
            {
                return Some(format!(
                    "unknown field `{}` of step `{}`: a step has output and status",
                    shorten(field),
                    shorten(step)
                ));
            }
        }
        None
    }
}

/// Collects rendered output, failing once it would pass [`MAX_RENDERED_LEN`].
#[derive(Default)]
struct CappedWriter {
    buf: Vec<u8>,
    overflowed: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > MAX_RENDERED_LEN {
            self.overflowed = true;
            return Err(io::Error::other("rendered text too long"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn classify(text: &str) -> Source<'_> {
    if !text.contains("{{") && !text.contains("{%") {
        return Source::Plain;
    }
    match single_expression(text) {
        Some(expr) => Source::Expression(expr),
        None => Source::Template,
    }
}

/// The expression of a string that is exactly `{{ expr }}` (whitespace around allowed,
/// `{{-` / `-}}` markers dropped), or `None`.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if ["{{", "}}", "{%", "%}", "{#", "#}"]
        .iter()
        .any(|marker| inner.contains(*marker))
    {
        return None;
    }
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    Some(inner)
}

/// A condition is an expression without braces; a single `{{ ... }}` around it is dropped.
fn condition_source(expr: &str) -> &str {
    single_expression(expr).unwrap_or(expr)
}

fn check_len(source: &str, path: &str) -> Result<(), TemplateError> {
    check_source(source, false, path)
}

/// The size cap and [`check_constructs`]; `bare` for an expression (a condition) that is
/// code from its first byte.
fn check_source(source: &str, bare: bool, path: &str) -> Result<(), TemplateError> {
    if source.len() > MAX_TEMPLATE_LEN {
        return Err(TemplateError::new(
            path,
            format!("template is longer than {MAX_TEMPLATE_LEN} bytes"),
        ));
    }
    check_constructs(source, bare).map_err(|message| TemplateError::new(path, message))
}

/// Block tags a template may use: branches and loops (no `set`, `macro`, `call`, `filter`,
/// `include`…, so nothing accumulates across iterations).
const ALLOWED_BLOCKS: [&str; 6] = ["if", "elif", "else", "endif", "for", "endfor"];

/// Most `~` concatenations in one template.
const MAX_CONCATENATIONS: usize = 16;

/// Refuse what could make a small template allocate without bound: the `*` operator (string
/// and list repetition; there is no multiplication), more than [`MAX_CONCATENATIONS`] `~`
/// and `+` together, and block tags other than [`ALLOWED_BLOCKS`]. Comments are skipped. Only code is scanned (inside `{{ }}` and
/// `{% %}`, or all of a bare expression), never text or string literals.
fn check_constructs(source: &str, bare: bool) -> Result<(), String> {
    let bytes = source.as_bytes();
    let (mut i, mut in_code, mut quote, mut concatenations, mut depth) = (0, bare, None::<u8>, 0, 0usize);
    let mut block_start = None;
    while i < bytes.len() {
        let b = bytes[i];
        if !in_code {
            // A comment is skipped whole (minijinja ignores it; nothing in it is code).
            if b == b'{' && bytes.get(i + 1) == Some(&b'#') {
                match source[i + 2..].find("#}") {
                    Some(end) => {
                        i += 2 + end + 2;
                        continue;
                    }
                    None => return Err("an unclosed `{#` comment".into()),
                }
            }
            if b == b'{' && matches!(bytes.get(i + 1), Some(b'{') | Some(b'%')) {
                in_code = true;
                depth = 0;
                if bytes[i + 1] == b'%' {
                    block_start = Some(i + 2);
                }
                i += 2;
                continue;
            }
            i += 1;
            continue;
        }
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match b {
            b'\'' | b'"' => quote = Some(b),
            b'{' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b'*' => return Err("the `*` operator is not available in templates".into()),
            b'~' | b'+' => {
                concatenations += 1;
                if concatenations > MAX_CONCATENATIONS {
                    return Err(format!(
                        "at most {MAX_CONCATENATIONS} `~` and `+` operators per template"
                    ));
                }
            }
            b'}' | b'%' if !bare && depth == 0 && bytes.get(i + 1) == Some(&b'}') => {
                if let Some(start) = block_start.take() {
                    let tag = source[start..i].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
                    let keyword = tag.split_whitespace().next().unwrap_or_default();
                    if !ALLOWED_BLOCKS.contains(&keyword) {
                        return Err(format!(
                            "the `{{% {keyword} %}}` tag is not available (use {})",
                            ALLOWED_BLOCKS.join(", ")
                        ));
                    }
                }
                in_code = false;
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// An expression's value as JSON: undefined anywhere inside it is an error, and so is a
/// string longer than [`MAX_RENDERED_LEN`].
fn to_json(value: &Value, path: &str) -> Result<serde_json::Value, TemplateError> {
    if contains_undefined(value, 0) {
        return Err(TemplateError::new(
            path,
            "undefined value inside the expression's result",
        ));
    }
    if value.as_str().is_some_and(|s| s.len() > MAX_RENDERED_LEN) {
        return Err(TemplateError::new(
            path,
            format!("rendered text is longer than {MAX_RENDERED_LEN} bytes"),
        ));
    }
    serde_json::to_value(value).map_err(|err| {
        TemplateError::new(
            path,
            format!("cannot convert the result to JSON: {}", shorten(&err.to_string())),
        )
    })
}

fn contains_undefined(value: &Value, depth: usize) -> bool {
    if value.is_undefined() {
        return true;
    }
    if depth >= MAX_UNDEFINED_DEPTH {
        return false;
    }
    match value.kind() {
        ValueKind::Seq => value
            .try_iter()
            .is_ok_and(|mut items| items.any(|item| contains_undefined(&item, depth + 1))),
        ValueKind::Map => value.try_iter().is_ok_and(|mut keys| {
            keys.any(|key| {
                value
                    .get_item(&key)
                    .is_ok_and(|item| contains_undefined(&item, depth + 1))
            })
        }),
        _ => false,
    }
}

/// Step names referenced as `steps["name"]` or `steps['name']` in a template's source.
fn bracket_step_refs(source: &str) -> Vec<&str> {
    const ROOT: &str = "steps";
    let bytes = source.as_bytes();
    let mut refs = Vec::new();
    let mut from = 0;
    while let Some(found) = source[from..].find(ROOT) {
        let start = from + found;
        from = start + ROOT.len();
        if start > 0 {
            let before = bytes[start - 1];
            if before.is_ascii_alphanumeric() || before == b'_' || before == b'.' {
                continue;
            }
        }
        let Some(rest) = source[from..].trim_start().strip_prefix('[') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let rest = &rest[quote.len_utf8()..];
        let Some(end) = rest.find(quote) else {
            continue;
        };
        let name = &rest[..end];
        let after = rest[end + quote.len_utf8()..].trim_start();
        if after.starts_with(']') && !name.contains('\\') {
            refs.push(name);
        }
    }
    refs
}

fn unknown_step(step: &str) -> String {
    format!(
        "unknown step `{}`: only steps that run before this one can be referenced",
        shorten(step)
    )
}

fn problem(path: &str, message: impl Into<String>) -> TemplateProblem {
    TemplateProblem {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// minijinja's error kind and detail (cut short), with the line for multi-line sources.
fn describe(err: &minijinja::Error, source: &str) -> String {
    let mut message = err.kind().to_string();
    if let Some(detail) = err.detail() {
        message.push_str(": ");
        message.push_str(&shorten(detail));
    }
    if source.contains('\n')
        && let Some(line) = err.line()
    {
        let _ = write!(message, " (line {line})");
    }
    message
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn field_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PATH: &str = "steps[2].input";

    fn context() -> serde_json::Value {
        json!({
            "trigger": {"body": {"n": 3, "name": "ada", "obj": {"a": 1, "b": [1, 2]}, "flag": true}},
            "steps": {
                "prev": {
                    "output": {"y": "why", "channels": ["general", "random"], "empty": []},
                    "status": "succeeded"
                }
            },
            "vars": {"x": "ex"},
            "execution": {"id": "exe_1", "workflow_id": "wf_1"}
        })
    }

    fn render(value: serde_json::Value) -> Result<serde_json::Value, TemplateError> {
        Renderer::new().render(&value, &context(), PATH)
    }

    fn check(value: serde_json::Value) -> Vec<TemplateProblem> {
        Renderer::new().check(&value, PATH, &["prev"])
    }

    #[test]
    fn whole_expression_keeps_types() {
        assert_eq!(render(json!("{{ trigger.body.n }}")).expect("number"), json!(3));
        assert_eq!(render(json!("{{ trigger.body.n + 1 }}")).expect("sum"), json!(4));
        assert_eq!(
            render(json!("  {{ trigger.body.obj }} ")).expect("object"),
            json!({"a": 1, "b": [1, 2]})
        );
        assert_eq!(render(json!("{{trigger.body.flag}}")).expect("bool"), json!(true));
        assert_eq!(
            render(json!("{{- steps.prev.output.channels -}}")).expect("array"),
            json!(["general", "random"])
        );
        assert_eq!(
            render(json!("{{ steps.prev.output.channels | length }}")).expect("filter"),
            json!(2)
        );
    }

    #[test]
    fn mixed_string_renders_text() {
        assert_eq!(
            render(json!("Hello {{ trigger.body.name | upper }}, n={{ trigger.body.n }}!")).expect("text"),
            json!("Hello ADA, n=3!")
        );
        assert_eq!(
            render(json!("{{ vars.x }} and {{ execution.id }}")).expect("two expressions"),
            json!("ex and exe_1")
        );
        assert_eq!(
            render(json!("{% for c in steps.prev.output.channels %}#{{ c }} {% endfor %}")).expect("loop"),
            json!("#general #random ")
        );
        assert_eq!(
            render(json!("Channels: {{ steps.prev.output.channels | join(', ') }}\n")).expect("newline"),
            json!("Channels: general, random\n")
        );
        // Whitespace around a lone expression is dropped: it is a whole expression.
        assert_eq!(
            render(json!("{{ steps.prev.output.channels | join(', ') }}\n")).expect("lone"),
            json!("general, random")
        );
        assert_eq!(
            render(json!("{{ steps.prev.output.missing | default('none') }}")).expect("default"),
            json!("none")
        );
    }

    #[test]
    fn strings_without_braces_untouched() {
        let value = json!({"a": "plain { text } 100%", "b": 1, "c": null, "{{ key }}": [true, "x"]});
        assert_eq!(render(value.clone()).expect("plain"), value);
    }

    #[test]
    fn object_keys_are_not_templated() {
        let value = json!({"{{ vars.x }}": "{{ vars.x }}"});
        assert_eq!(render(value).expect("keys"), json!({"{{ vars.x }}": "ex"}));
    }

    #[test]
    fn unknown_step_at_render_names_the_path() {
        let err = render(json!({"text": "{{ steps.nope.output }}"})).expect_err("unknown step");
        assert_eq!(err.path, "steps[2].input.text");
        assert!(!err.message.is_empty());

        let err = render(json!({"text": "Hi {{ steps.nope.output.y }}"})).expect_err("mixed");
        assert_eq!(err.path, "steps[2].input.text");
        assert!(err.to_string().starts_with("steps[2].input.text: "));
    }

    #[test]
    fn constructs_that_could_allocate_without_bound_are_refused() {
        for (source, why) in [
            ("{{ 'a' * 100000000 }}", "`*`"),
            ("x {{ {'a': {'b': 1}} ~ 'x' * 9 }}", "`*`"),
            ("{% set x = 'a' %}{{ x }}", "`{% set %}`"),
            ("{% macro m() %}{% endmacro %}", "`{% macro %}`"),
            ("{{ 'a' | indent(10000000000) }}", "unknown filter"),
            ("{{ 'a' | replace('a', 'bb') }}", "unknown filter"),
            ("{{ namespace(x=1) }}", "namespace"),
        ] {
            let rendered = render(json!({ "x": source }));
            assert!(rendered.is_err(), "{source} ({why}) rendered: {rendered:?}");
            if why.starts_with('`') {
                assert!(
                    !check(json!({ "x": source })).is_empty(),
                    "{source} passed the save check"
                );
            }
        }
        let many = format!("{{{{ {} }}}}", vec!["'a'"; 20].join(" ~ "));
        assert!(render(json!({ "x": many })).is_err());
        let many = format!("{{{{ {} }}}}", vec!["'a'"; 20].join(" + "));
        assert!(render(json!({ "x": many })).is_err());
        // A comment cannot hide code from the check, and a condition is code throughout.
        let hidden = "{# {{ \" #}{{ 'a' * 99 }}{# \" }} #}";
        assert!(render(json!({ "x": hidden })).is_err(), "{hidden}");
        assert!(!check(json!({ "x": hidden })).is_empty());
        let renderer = Renderer::new();
        assert!(renderer.condition("'a' * 99 == '{{'", &context(), "c").is_err());
        assert!(!renderer.check_expression("'a' * 99 == '{{'", "c", &[]).is_empty());
        // Nested joins stop at the cap instead of building gigabytes.
        let nested = "{{ range(100000) | join(range(100000) | join('xxxxxxxxxx')) | length }}";
        assert!(render(json!({ "x": nested })).is_err());
        assert_eq!(
            render(json!({ "x": "{{ [1, 'b'] | join('-') }}" })),
            Ok(json!({ "x": "1-b" }))
        );
        // Text and string literals may hold them; loops and branches work.
        assert_eq!(
            render(json!({ "x": "*{{ '*~' }}* {% for i in range(2) %}{% if i %}b{% else %}a{% endif %}{% endfor %}" })),
            Ok(json!({ "x": "**~* ab" }))
        );
        assert_eq!(
            render(json!({ "x": "{{ [1, 2] | tojson }}" })),
            Ok(json!({ "x": "[1,2]" }))
        );
        assert_eq!(Renderer::new().condition("vars.x == 'ex'", &context(), "c"), Ok(true));
        assert!(Renderer::new().condition("vars.x * 2", &context(), "c").is_err());
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let err = render(json!({"text": "{{ steps.prev.output.missing }}"})).expect_err("whole");
        assert_eq!(err.path, "steps[2].input.text");
        assert!(err.message.contains("undefined"), "{}", err.message);

        let err = render(json!({"text": "x {{ steps.prev.output.missing }} y"})).expect_err("mixed");
        assert_eq!(err.path, "steps[2].input.text");
        assert!(err.message.contains("undefined"), "{}", err.message);

        let err = render(json!("{{ [vars.x, vars.missing] }}")).expect_err("inside a list");
        assert!(err.message.contains("undefined"), "{}", err.message);
    }

    #[test]
    fn nested_paths_in_errors() {
        let value = json!({"items": ["ok", {"deep": "{{ foo }}"}]});
        let err = render(value).expect_err("nested");
        assert_eq!(err.path, "steps[2].input.items[1].deep");

        let err = render(json!(["a", "{{ vars.nope }}"])).expect_err("array");
        assert_eq!(err.path, "steps[2].input[1]");
    }

    #[test]
    fn size_limits() {
        let long = format!("{{{{ vars.x }}}}{}", "a".repeat(MAX_TEMPLATE_LEN));
        let err = render(json!(long)).expect_err("long template");
        assert!(err.message.contains("longer than"), "{}", err.message);

        let long_text = format!("a{{% for i in range(6000) %}}{}{{% endfor %}}", "x".repeat(200));
        let err = render(json!(long_text)).expect_err("long output");
        assert!(err.message.contains("longer than"), "{}", err.message);

        let err = render(json!("{{ range(60000) | join('xxxxxxxxxxxxxxxxxxxx') }}")).expect_err("long value");
        assert!(err.message.contains("longer than"), "{}", err.message);

        // Each value under the cap, but together over the budget of one render.
        let megabyte = "{{ range(40000) | join('xxxxxxxxxxxxxxxxxxxx') }}";
        let err = render(json!([megabyte, megabyte, megabyte, megabyte, megabyte])).expect_err("budget");
        assert!(err.message.contains("in all"), "{}", err.message);
    }

    #[test]
    fn runaway_template_runs_out_of_fuel() {
        let err = render(json!(
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
        ))
        .expect_err("fuel");
        assert!(err.message.contains("fuel"), "{}", err.message);
    }

    #[test]
    fn condition_true_and_false() {
        let renderer = Renderer::new();
        let ctx = context();
        let cond = |expr: &str| renderer.condition(expr, &ctx, "steps[3].condition");
        assert!(cond("steps.prev.output.channels | length > 0").expect("true"));
        assert!(!cond("steps.prev.output.empty | length > 0").expect("false"));
        assert!(cond("steps.prev.status == 'succeeded'").expect("status"));
        assert!(!cond("steps.prev.output.empty").expect("empty list is falsy"));
        assert!(cond("{{ trigger.body.flag }}").expect("braces tolerated"));
        assert!(!cond("steps.prev.output.missing is defined").expect("is defined"));
        let err = cond("steps.prev.output.missing").expect_err("undefined");
        assert_eq!(err.path, "steps[3].condition");
        let err = cond("steps.prev.output.(").expect_err("syntax");
        assert_eq!(err.path, "steps[3].condition");
    }

    #[test]
    fn check_accepts_known_references() {
        let value = json!({
            "a": "{{ vars.x }}",
            "b": "Body: {{ trigger.body | tojson }}",
            "c": "{{ steps.prev.output.y }}",
            "d": "{% for c in steps.prev.output.channels %}{{ c }}{{ loop.index }}{% endfor %}",
            "e": "{{ execution.workflow_id }} {{ range(3) | list | length }}",
            "f": "{{ steps['prev'].status }}",
            "g": "no template here"
        });
        assert_eq!(check(value), vec![]);
    }

    #[test]
    fn check_flags_unknown_root() {
        let problems = check(json!({"text": "{{ foo.bar }}"}));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "steps[2].input.text");
        assert!(problems[0].message.contains("`foo`"), "{}", problems[0].message);
    }

    #[test]
    fn check_flags_later_or_unknown_step() {
        let problems = check(json!({"items": ["{{ steps.later.output }}", "x {{ steps[\"other\"].output }}"]}));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].path, "steps[2].input.items[0]");
        assert!(problems[0].message.contains("`later`"), "{}", problems[0].message);
        assert_eq!(problems[1].path, "steps[2].input.items[1]");
        assert!(problems[1].message.contains("`other`"), "{}", problems[1].message);

        let problems = check(json!("{{ steps.prev.outptu }}"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("`outptu`"), "{}", problems[0].message);
    }

    #[test]
    fn check_flags_syntax_errors() {
        let problems = check(json!({"a": "{{ vars.x + }}", "b": "{% if vars.x %}open"}));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].path, "steps[2].input.a");
        assert!(problems[0].message.contains("syntax error"), "{}", problems[0].message);
        assert_eq!(problems[1].path, "steps[2].input.b");
        assert!(problems[1].message.contains("syntax error"), "{}", problems[1].message);
    }

    #[test]
    fn check_expression_validates_conditions() {
        let renderer = Renderer::new();
        let path = "steps[3].condition";
        assert_eq!(
            renderer.check_expression("steps.prev.output.channels | length > 0", path, &["prev"]),
            vec![]
        );
        let problems = renderer.check_expression("steps.next.output and foo", path, &["prev"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().all(|p| p.path == path));
        let problems = renderer.check_expression("steps.prev.output ==", path, &["prev"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("syntax error"), "{}", problems[0].message);
    }

    #[test]
    fn bracket_refs_are_found() {
        assert_eq!(
            bracket_step_refs("{{ steps['a-b'].output }} {{ steps [ \"c\" ] }} {{ mysteps['d'] }}"),
            vec!["a-b", "c"]
        );
    }
}
