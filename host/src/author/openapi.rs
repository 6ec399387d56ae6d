//! `nexum connector new <name> --from-openapi <file> [--operations a,b]`: scaffold a connector
//! crate from an OpenAPI 3.0 or 3.1 document (JSON, or YAML when the file ends in `.yaml` or
//! `.yml`).
//!
//! Each selected operation becomes one action:
//!
//! - its **input** is an object holding the operation's path, query and header parameters under
//!   their own names (path parameters always required) and the JSON request body, when there is
//!   one, under `body`. The body is never flattened: a body field can then never collide with a
//!   parameter, and the body keeps its own schema, `required` list and `additionalProperties`
//!   exactly as the document wrote them. The input object itself is `additionalProperties = false`.
//! - its **output** is the schema of the first 2xx response with a JSON body (`{}` when none).
//!
//! Schemas are rewritten into the JSON Schema the host validates with: local `$ref`s expanded
//! (a cycle or a nesting deeper than [`MAX_REF_DEPTH`] becomes `{}` with a description), 3.0's
//! `nullable` and boolean `exclusiveMinimum`/`exclusiveMaximum` translated, OpenAPI-only keywords
//! dropped, `readOnly` properties left out of requests and `writeOnly` ones out of responses.
//!
//! `servers[0].url` (its `{variables}` filled with their defaults) gives the `api_base` variable
//! (its origin) and the base path in front of every operation path. `components.securitySchemes`
//! give the `[[auth]]` schemes; what cannot be expressed is skipped with a note. The generated
//! `src/lib.rs` is one table of operations and a shared `call` helper; its unit tests run on the
//! host target. Nothing is written unless the generated manifest passes [`Manifest::parse`].

use super::{AuthorError, cargo_toml, check_name, file_err, vendor_sdk, write};
use nexum_manifest::{MANIFEST_FILE, Manifest};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How deep `$ref`s may nest before the rest is left unexpanded.
const MAX_REF_DEPTH: usize = 32;
/// How many `$ref` expansions one document may need in all (a guard against documents that
/// expand exponentially).
const MAX_REF_EXPANSIONS: usize = 10_000;
/// The operation keys of a path item, in the order OpenAPI lists them.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/// Names the generated `src/lib.rs` uses itself; a handler with one of these names (or a Rust
/// keyword) gets an `_action` suffix.
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "call", "build_path", "scalar", "encode", "describe", "var", "credential", "any_credential",
    "idempotency_key", "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else",
    "enum", "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
    "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
    "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// What [`scaffold_with_report`] made.
#[derive(Debug)]
pub struct Scaffolded {
    /// The crate directory.
    pub dir: PathBuf,
    /// Each action with the operation it came from (its `operationId`, else `METHOD /path`).
    pub actions: Vec<(String, String)>,
    /// What was skipped or needs review: unsupported operations, parameters and auth schemes.
    pub notes: Vec<String>,
}

/// Scaffold a connector crate named `name` inside `parent` from the OpenAPI document `spec`,
/// with one action per operation (only those whose `operationId` or action name is in
/// `operations`, when given); returns its directory.
pub fn scaffold_from_openapi(
    parent: &Path,
    name: &str,
    spec: &Path,
    operations: Option<&[String]>,
) -> Result<PathBuf, AuthorError> {
    scaffold_with_report(parent, name, spec, operations).map(|s| s.dir)
}

/// [`scaffold_from_openapi`], also returning the actions made and the notes to show the author.
pub fn scaffold_with_report(
    parent: &Path,
    name: &str,
    spec: &Path,
    operations: Option<&[String]>,
) -> Result<Scaffolded, AuthorError> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(file_err(&dir, "already exists; choose another name or directory"));
    }
    let text = std::fs::read_to_string(spec).map_err(|e| file_err(spec, e))?;
    let yaml = spec
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let doc = parse_document(&text, yaml).map_err(|e| file_err(spec, e))?;
    let plan = Plan::from_document(&doc, operations).map_err(|e| file_err(spec, e))?;
    let source = spec
        .file_name()
        .map(|f| one_line(&f.to_string_lossy(), 100))
        .unwrap_or_else(|| "openapi".into());
    let manifest = render_manifest(&plan, name, &source);
    Manifest::parse(&manifest).map_err(|e| {
        file_err(
            &dir.join(MANIFEST_FILE),
            format!(
                "the generated manifest does not validate ({e}); adjust that schema in the document, or report this"
            ),
        )
    })?;
    write(&dir.join("Cargo.toml"), &cargo_toml(name))?;
    write(&dir.join(MANIFEST_FILE), &manifest)?;
    write(&dir.join("src/lib.rs"), &render_lib(&plan, &source))?;
    write(&dir.join("README.md"), &render_readme(&plan, name, &source))?;
    write(&dir.join(".gitignore"), "/target\n")?;
    vendor_sdk(&dir)?;
    Ok(Scaffolded {
        dir,
        actions: plan
            .operations
            .iter()
            .map(|op| (op.action.clone(), op.source.clone()))
            .collect(),
        notes: plan.notes,
    })
}

/// Parse an OpenAPI document: JSON, or YAML when `yaml`.
fn parse_document(text: &str, yaml: bool) -> Result<Value, String> {
    if yaml {
        serde_norway::from_str::<Value>(text).map_err(|e| format!("not valid YAML: {e}"))
    } else {
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
    }
}

/// Everything the generator takes from the document.
#[derive(Debug)]
struct Plan {
    /// `info.title`.
    title: String,
    /// `openapi` (the format version).
    openapi: String,
    /// One line about the API, for the manifest.
    description: String,
    /// The origin of `servers[0]`: the default of `api_base`.
    origin: String,
    /// The path of `servers[0]` without a trailing `/` (`/v1`, or empty).
    base_path: String,
    /// The auth schemes the manifest declares.
    schemes: Vec<Scheme>,
    /// The selected operations, in document order.
    operations: Vec<Operation>,
    /// What was skipped or needs review.
    notes: Vec<String>,
}

/// One `[[auth]]` scheme made from a security scheme of the document.
#[derive(Debug)]
struct Scheme {
    /// Its name under `components.securitySchemes`.
    spec_name: String,
    /// Its manifest id (snake_case).
    id: String,
    /// What the admin is asked for.
    label: String,
    /// Its kind and where the host injects it.
    kind: SchemeKind,
    /// OAuth scopes the selected operations need.
    scopes: BTreeSet<String>,
}

/// The manifest's auth kinds the generator can produce.
#[derive(Debug, PartialEq)]
enum SchemeKind {
    /// `type = "bearer"`.
    Bearer,
    /// `type = "basic"`.
    Basic,
    /// `type = "api_key"` in a header or the query.
    ApiKey {
        /// `header` or `query`.
        location: &'static str,
        /// The header or parameter name.
        name: String,
    },
    /// `type = "oauth2"`.
    OAuth2 {
        /// The consent page (absent for the client-credentials flow).
        authorization_url: Option<String>,
        /// The token endpoint, as a manifest URL template.
        token_url: String,
        /// The token endpoint's origin when it is not the API's (it must be bound too).
        token_host: Option<String>,
    },
}

/// One operation, ready to render.
#[derive(Debug)]
struct Operation {
    /// Where it came from: its `operationId`, else `METHOD /path`.
    source: String,
    /// The action name.
    action: String,
    /// The upper-case HTTP method.
    method: &'static str,
    /// The path template, relative to the server's base path.
    path: String,
    /// One line about it.
    summary: String,
    /// Query parameters and whether an array repeats the parameter (`explode`).
    query: Vec<(String, bool)>,
    /// Header parameters.
    headers: Vec<String>,
    /// Whether it takes a JSON body (the input's `body`).
    body: bool,
    /// The header carrying the call's idempotency key, when the operation declares one.
    idempotency_header: Option<String>,
    /// Manifest auth scheme ids it accepts, in order of preference.
    auth: Vec<String>,
    /// Whether it fails without one of them (`false` when the document allows anonymous calls).
    auth_required: bool,
    /// OAuth scopes it needs, by scheme id.
    scopes: BTreeMap<String, BTreeSet<String>>,
    /// The action's input schema.
    input: Value,
    /// The action's output schema.
    output: Value,
    /// Whether the input has no required field (so test-connection can call it with `{}`).
    no_required_input: bool,
    /// What was skipped in it.
    notes: Vec<String>,
}

/// An operation found in the document, generated or with the reason it cannot be.
struct Candidate {
    /// Its `operationId`, else `METHOD /path`.
    key: String,
    /// Its action name.
    action: String,
    /// The operation, or why it cannot be generated.
    result: Result<Operation, String>,
}

impl Plan {
    /// Read the document; keep the operations in `wanted` (by `operationId` or action name).
    fn from_document(doc: &Value, wanted: Option<&[String]>) -> Result<Self, String> {
        let openapi = doc["openapi"].as_str().unwrap_or_default().to_string();
        if !(openapi.starts_with("3.0") || openapi.starts_with("3.1")) {
            return Err(if doc.get("swagger").is_some() {
                "a Swagger 2.0 document; convert it to OpenAPI 3 first (for example with swagger2openapi)".into()
            } else {
                format!("`openapi` is `{openapi}`, not 3.0.x or 3.1.x")
            });
        }
        let server = server_url(doc)?;
        let title = one_line(doc["info"]["title"].as_str().unwrap_or_default(), 100);
        let mut resolver = Resolver::new(doc);
        let mut notes = Vec::new();
        let mut schemes = security_schemes(doc, &mut resolver, &server, &title, &mut notes)?;
        let candidates = candidates(doc, &mut resolver, &schemes)?;
        let mut operations = select(candidates, wanted, &mut notes)?;
        let mut actions = BTreeMap::new();
        for op in &operations {
            if let Some(other) = actions.insert(op.action.clone(), op.source.clone()) {
                return Err(format!(
                    "operations `{other}` and `{}` both become the action `{}`; leave one out with --operations",
                    op.source, op.action
                ));
            }
        }
        for op in &mut operations {
            notes.append(&mut op.notes);
            for (id, scopes) in &op.scopes {
                if let Some(scheme) = schemes.iter_mut().find(|s| s.id == *id) {
                    scheme.scopes.extend(scopes.iter().cloned());
                }
            }
        }
        let info = &doc["info"];
        let about = [&info["summary"], &info["description"]]
            .into_iter()
            .filter_map(Value::as_str)
            .map(|s| one_line(s, 300))
            .find(|s| !s.is_empty());
        let description = about.unwrap_or_else(|| {
            format!(
                "{} API, generated from its OpenAPI document.",
                if title.is_empty() { "An" } else { title.as_str() }
            )
        });
        Ok(Self {
            title,
            openapi,
            description,
            origin: server.origin().ascii_serialization(),
            base_path: server.path().trim_end_matches('/').to_string(),
            schemes,
            operations,
            notes,
        })
    }
}

/// `servers[0].url` with its `{variables}` filled in from their defaults.
fn server_url(doc: &Value) -> Result<url::Url, String> {
    let server = &doc["servers"][0];
    let Some(template) = server["url"].as_str() else {
        return Err("the document has no `servers[0].url`; add the API's address there".into());
    };
    let mut text = template.to_string();
    if let Some(variables) = server["variables"].as_object() {
        for (name, variable) in variables {
            let value = variable["default"]
                .as_str()
                .ok_or_else(|| format!("server variable `{name}` has no default"))?;
            text = text.replace(&format!("{{{name}}}"), value);
        }
    }
    if text.contains('{') {
        return Err(format!(
            "`servers[0].url` `{template}` uses a variable that `servers[0].variables` does not declare"
        ));
    }
    let url = url::Url::parse(&text).map_err(|e| {
        format!("`servers[0].url` `{text}` is not an absolute URL ({e}); write the API's full address, e.g. https://api.example.com/v1")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`servers[0].url` `{text}` is not an http(s) URL with a host"));
    }
    Ok(url)
}

/// The auth schemes of `components.securitySchemes` the manifest can express; each other one
/// is skipped with a note.
fn security_schemes(
    doc: &Value,
    resolver: &mut Resolver<'_>,
    server: &url::Url,
    title: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Scheme>, String> {
    let mut schemes: Vec<Scheme> = Vec::new();
    let Some(declared) = doc["components"]["securitySchemes"].as_object() else {
        return Ok(schemes);
    };
    for (spec_name, raw) in declared {
        let raw = resolver.resolve(raw)?;
        let kind = match scheme_kind(&raw, server) {
            Ok(kind) => kind,
            Err(why) => {
                notes.push(format!(
                    "auth scheme `{}` skipped: {why}; add it to connector.toml by hand if the API needs it",
                    one_line(spec_name, 80)
                ));
                continue;
            }
        };
        let mut base = snake_case(spec_name);
        if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
            base = format!("auth_{base}");
        }
        let mut id = base.clone();
        let mut n = 2;
        while schemes.iter().any(|s| s.id == id) {
            id = format!("{base}_{n}");
            n += 1;
        }
        let what = if title.is_empty() { "API" } else { title };
        let label = match raw["description"].as_str().map(|d| one_line(d, 80)) {
            Some(given) if !given.is_empty() => given,
            _ => match &kind {
                SchemeKind::Bearer => format!("{what} bearer token"),
                SchemeKind::Basic => format!("{what} username and password"),
                SchemeKind::ApiKey { location, name } => format!("{what} API key ({name} {location})"),
                SchemeKind::OAuth2 { .. } => format!("Sign in with {what}"),
            },
        };
        schemes.push(Scheme {
            spec_name: spec_name.clone(),
            id,
            label,
            kind,
            scopes: BTreeSet::new(),
        });
    }
    Ok(schemes)
}

/// What one security scheme becomes, or why it cannot be expressed.
fn scheme_kind(raw: &Value, server: &url::Url) -> Result<SchemeKind, String> {
    match raw["type"].as_str().unwrap_or_default() {
        "http" => match raw["scheme"].as_str().unwrap_or_default().to_ascii_lowercase().as_str() {
            "bearer" => Ok(SchemeKind::Bearer),
            "basic" => Ok(SchemeKind::Basic),
            other => Err(format!("HTTP `{other}` authentication is not supported")),
        },
        "apiKey" => {
            let location = match raw["in"].as_str() {
                Some("header") => "header",
                Some("query") => "query",
                other => {
                    return Err(format!(
                        "an API key in `{}` is not supported (only header and query)",
                        other.unwrap_or("?")
                    ));
                }
            };
            let name = raw["name"].as_str().unwrap_or_default();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "the API key name `{}` is not a plain header or parameter name",
                    one_line(name, 80)
                ));
            }
            Ok(SchemeKind::ApiKey {
                location,
                name: name.to_string(),
            })
        }
        "oauth2" => oauth2(&raw["flows"], server),
        other => Err(format!("type `{other}` is not supported")),
    }
}

/// An OAuth2 scheme from its authorization-code flow (or, failing that, its client-credentials
/// flow). Relative URLs are resolved against the server URL; a token endpoint on the API's own
/// origin follows `api_base`, another one is bound by its literal origin.
fn oauth2(flows: &Value, server: &url::Url) -> Result<SchemeKind, String> {
    let (flow, consent) = if flows["authorizationCode"].is_object() {
        (&flows["authorizationCode"], true)
    } else if flows["clientCredentials"].is_object() {
        (&flows["clientCredentials"], false)
    } else {
        return Err("only the authorizationCode and clientCredentials OAuth2 flows are supported".into());
    };
    let join = |field: &str| -> Result<url::Url, String> {
        let text = flow[field]
            .as_str()
            .ok_or_else(|| format!("its OAuth2 flow has no `{field}`"))?;
        let url = server
            .join(text)
            .map_err(|e| format!("`{field}` `{text}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{field}` `{text}` is not an http(s) URL"));
        }
        Ok(url)
    };
    let token = join("tokenUrl")?;
    let authorization_url = if consent {
        Some(join("authorizationUrl")?.to_string())
    } else {
        None
    };
    let token_origin = token.origin().ascii_serialization();
    let (token_url, token_host) = if token_origin == server.origin().ascii_serialization() {
        (
            format!("{{{{ api_base }}}}{}", &token[url::Position::BeforePath..]),
            None,
        )
    } else {
        (token.to_string(), Some(token_origin))
    };
    Ok(SchemeKind::OAuth2 {
        authorization_url,
        token_url,
        token_host,
    })
}

/// Every operation of the document, in path order, each generated or with its reason.
fn candidates(doc: &Value, resolver: &mut Resolver<'_>, schemes: &[Scheme]) -> Result<Vec<Candidate>, String> {
    let paths = doc["paths"].as_object().ok_or("the document has no `paths`")?;
    let mut out = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for method in METHODS {
            let Some(op) = item.get(method).and_then(Value::as_object) else {
                continue;
            };
            let operation_id = op.get("operationId").and_then(Value::as_str);
            let fallback = format!("{method} {path}");
            let action = snake_case(operation_id.unwrap_or(&fallback));
            let key = operation_id
                .map(str::to_string)
                .unwrap_or_else(|| format!("{} {path}", method.to_ascii_uppercase()));
            let source = Source {
                key: &key,
                action: &action,
                path,
                method,
                item,
                op,
                root_security: doc.get("security"),
            };
            let result = operation(&source, resolver, schemes);
            out.push(Candidate { key, action, result });
        }
    }
    Ok(out)
}

/// The candidates to generate: all that can be when `wanted` is `None` (the others noted), else
/// exactly the wanted ones (an unknown or unsupported one is an error).
fn select(
    candidates: Vec<Candidate>,
    wanted: Option<&[String]>,
    notes: &mut Vec<String>,
) -> Result<Vec<Operation>, String> {
    let mut selected = Vec::new();
    match wanted {
        None => {
            for candidate in candidates {
                match candidate.result {
                    Ok(op) => selected.push(op),
                    Err(why) => notes.push(format!("operation `{}` skipped: {why}", candidate.key)),
                }
            }
        }
        Some(wanted) => {
            let wanted: Vec<&str> = wanted.iter().map(|w| w.trim()).filter(|w| !w.is_empty()).collect();
            for w in &wanted {
                if !candidates.iter().any(|c| c.key == *w || c.action == *w) {
                    let available: Vec<&str> = candidates.iter().map(|c| c.key.as_str()).collect();
                    return Err(format!(
                        "no operation `{w}` in the document; it has: {}",
                        available.join(", ")
                    ));
                }
            }
            for candidate in candidates {
                if wanted.iter().any(|w| candidate.key == *w || candidate.action == *w) {
                    let op = candidate
                        .result
                        .map_err(|why| format!("operation `{}` cannot be generated: {why}", candidate.key))?;
                    selected.push(op);
                }
            }
        }
    }
    if selected.is_empty() {
        return Err(
            "no operations to generate: the document has none this generator supports (or --operations named none)"
                .into(),
        );
    }
    Ok(selected)
}

/// One operation of the document and where it sits.
struct Source<'a> {
    /// Its `operationId`, else `METHOD /path`.
    key: &'a str,
    /// Its action name.
    action: &'a str,
    /// The path template.
    path: &'a str,
    /// The lower-case method key.
    method: &'a str,
    /// The path item (for its shared parameters).
    item: &'a Map<String, Value>,
    /// The operation object.
    op: &'a Map<String, Value>,
    /// The document's default `security`.
    root_security: Option<&'a Value>,
}

/// One operation as an action, or why it cannot be one.
fn operation(src: &Source<'_>, resolver: &mut Resolver<'_>, schemes: &[Scheme]) -> Result<Operation, String> {
    let method = match src.method {
        "get" => "GET",
        "put" => "PUT",
        "post" => "POST",
        "delete" => "DELETE",
        "patch" => "PATCH",
        other => return Err(format!("the method {} is not supported", other.to_ascii_uppercase())),
    };
    let mut notes = Vec::new();
    // The path item's parameters, overridden by the operation's own of the same name and place.
    let mut params: Vec<Value> = Vec::new();
    for list in [src.item.get("parameters"), src.op.get("parameters")]
        .into_iter()
        .flatten()
    {
        for raw in list.as_array().into_iter().flatten() {
            let param = resolver.resolve(raw)?;
            params.retain(|p| !(p["name"] == param["name"] && p["in"] == param["in"]));
            params.push(param);
        }
    }
    // Parameters an API key scheme fills: the credential carries them, never the input.
    let key_params: Vec<(&str, String)> = schemes
        .iter()
        .filter_map(|s| match &s.kind {
            SchemeKind::ApiKey { location, name } => Some((*location, name.to_ascii_lowercase())),
            _ => None,
        })
        .collect();
    let filled_by_key = |location: &str, lower: &str| key_params.iter().any(|(l, n)| *l == location && n == lower);
    let placeholders = path_placeholders(src.path)?;
    let mut properties = Map::new();
    let mut required = Vec::new();
    let (mut query, mut headers, mut idempotency_header) = (Vec::new(), Vec::new(), None);
    for param in &params {
        let name = param["name"].as_str().ok_or("one of its parameters has no `name`")?;
        let location = param["in"].as_str().unwrap_or_default();
        let lower = name.to_ascii_lowercase();
        match location {
            "path" if !placeholders.iter().any(|p| p == name) => continue,
            "path" => {}
            "query" if filled_by_key("query", &lower) => continue,
            "query" => query.push((name.to_string(), param["explode"].as_bool().unwrap_or(true))),
            // OpenAPI says these three header parameters are ignored; a key header is the credential's.
            "header" if matches!(lower.as_str(), "accept" | "content-type" | "authorization") => continue,
            "header" if filled_by_key("header", &lower) => continue,
            "header" if lower == "idempotency-key" => {
                idempotency_header = Some(name.to_string());
                continue;
            }
            "header" => headers.push(name.to_string()),
            "cookie" if param["required"] == true => {
                return Err(format!("it needs the cookie `{name}`, which a connector cannot send"));
            }
            "cookie" => {
                notes.push(format!("{}: cookie parameter `{name}` left out", src.key));
                continue;
            }
            other => {
                return Err(format!(
                    "its parameter `{name}` is in `{other}`, not path, query, header or cookie"
                ));
            }
        }
        let is_required = location == "path" || param["required"] == true;
        insert_property(&mut properties, &mut required, name, param_schema(param), is_required)?;
    }
    for name in &placeholders {
        if !properties.contains_key(name.as_str()) {
            insert_property(&mut properties, &mut required, name, json!({ "type": "string" }), true)?;
        }
    }
    let mut body = false;
    if let Some(raw) = src.op.get("requestBody") {
        let request_body = resolver.resolve(raw)?;
        let Some(schema) = json_schema_of(&request_body["content"]) else {
            let types: Vec<&str> = request_body["content"]
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(if types.is_empty() {
                "its request body declares no content".to_string()
            } else {
                format!(
                    "its request body is `{}`; only JSON bodies are generated",
                    types.join("`, `")
                )
            });
        };
        let mut schema = to_json_schema(&schema, Direction::Request);
        if let (Value::Object(map), Some(d)) = (&mut schema, request_body["description"].as_str())
            && !map.contains_key("description")
        {
            map.insert("description".into(), json!(d));
        }
        insert_property(
            &mut properties,
            &mut required,
            "body",
            schema,
            request_body["required"] == true,
        )?;
        body = true;
    }
    let output = output_schema(resolver, src.op.get("responses"))?;
    let sec = security(src.op.get("security").or(src.root_security), schemes);
    if !sec.skipped.is_empty() {
        notes.push(format!(
            "{}: its auth scheme(s) `{}` were skipped{}",
            src.key,
            sec.skipped.join("`, `"),
            if sec.auth.is_empty() {
                "; it is sent without a credential"
            } else {
                ""
            }
        ));
    }
    let no_required_input = required.is_empty();
    let mut input = Map::new();
    input.insert("type".into(), json!("object"));
    input.insert("additionalProperties".into(), json!(false));
    if !required.is_empty() {
        input.insert("required".into(), json!(required));
    }
    input.insert("properties".into(), Value::Object(properties));
    let summary = [src.op.get("summary"), src.op.get("description")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| one_line(s, 200))
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{method} {}", src.path));
    Ok(Operation {
        source: src.key.to_string(),
        action: src.action.to_string(),
        method,
        path: src.path.to_string(),
        summary,
        query,
        headers,
        body,
        idempotency_header,
        auth: sec.auth,
        auth_required: sec.required,
        scopes: sec.scopes,
        input: Value::Object(input),
        output,
        no_required_input,
        notes,
    })
}

/// Add an input property, refusing a second one of the same name.
fn insert_property(
    properties: &mut Map<String, Value>,
    required: &mut Vec<String>,
    name: &str,
    schema: Value,
    is_required: bool,
) -> Result<(), String> {
    if properties.contains_key(name) {
        return Err(format!(
            "two of its inputs are called `{name}` (parameters in different places, or a parameter named `body`); one action input cannot hold both"
        ));
    }
    properties.insert(name.to_string(), schema);
    if is_required {
        required.push(name.to_string());
    }
    Ok(())
}

/// A parameter's schema (from `schema`, else its JSON `content`), with its description.
fn param_schema(param: &Value) -> Value {
    let raw = if param["schema"].is_null() {
        json_schema_of(&param["content"]).unwrap_or_else(|| json!({}))
    } else {
        param["schema"].clone()
    };
    let mut schema = to_json_schema(&raw, Direction::Request);
    if let (Value::Object(map), Some(d)) = (&mut schema, param["description"].as_str())
        && !map.contains_key("description")
    {
        map.insert("description".into(), json!(d));
    }
    schema
}

/// The `{name}`s of a path template, refusing a malformed one.
fn path_placeholders(path: &str) -> Result<Vec<String>, String> {
    let malformed = || format!("its path `{path}` is not a valid template");
    if !path.starts_with('/') {
        return Err(malformed());
    }
    let mut names = Vec::new();
    let mut rest = path;
    while let Some((before, after)) = rest.split_once('{') {
        let (name, tail) = after.split_once('}').ok_or_else(malformed)?;
        if before.contains('}') || name.is_empty() || name.contains('{') {
            return Err(malformed());
        }
        names.push(name.to_string());
        rest = tail;
    }
    if rest.contains('}') {
        return Err(malformed());
    }
    Ok(names)
}

/// The schema of a `content` map's JSON entry (`application/json` first, then any `+json`
/// type): `{}` when that entry has no schema, `None` when there is no JSON entry.
fn json_schema_of(content: &Value) -> Option<Value> {
    let map = content.as_object()?;
    let essence = |media: &str| media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let (_, entry) = map
        .iter()
        .find(|(m, _)| essence(m.as_str()) == "application/json")
        .or_else(|| map.iter().find(|(m, _)| essence(m.as_str()).ends_with("+json")))?;
    Some(if entry["schema"].is_null() {
        json!({})
    } else {
        entry["schema"].clone()
    })
}

/// The schema of the first 2xx response with a JSON body; `{}` when there is none.
fn output_schema(resolver: &mut Resolver<'_>, responses: Option<&Value>) -> Result<Value, String> {
    let Some(responses) = responses.and_then(Value::as_object) else {
        return Ok(json!({}));
    };
    let mut codes: Vec<&String> = responses.keys().filter(|c| c.starts_with('2')).collect();
    codes.sort();
    for code in codes {
        let Some(raw) = responses.get(code.as_str()) else {
            continue;
        };
        let response = resolver.resolve(raw)?;
        if let Some(schema) = json_schema_of(&response["content"]) {
            return Ok(to_json_schema(&schema, Direction::Response));
        }
    }
    Ok(json!({}))
}

/// The auth an operation accepts.
#[derive(Debug, Default)]
struct Security {
    /// Manifest scheme ids, in order of preference.
    auth: Vec<String>,
    /// Whether a call without one of them must fail.
    required: bool,
    /// OAuth scopes needed, by scheme id.
    scopes: BTreeMap<String, BTreeSet<String>>,
    /// Document schemes it names that were skipped.
    skipped: Vec<String>,
}

/// The auth of an operation from its security requirements (`None`: the document states none,
/// so every declared scheme is accepted and one is required).
fn security(requirements: Option<&Value>, schemes: &[Scheme]) -> Security {
    let Some(requirements) = requirements.and_then(Value::as_array) else {
        return Security {
            auth: schemes.iter().map(|s| s.id.clone()).collect(),
            required: !schemes.is_empty(),
            ..Security::default()
        };
    };
    let mut out = Security {
        required: true,
        ..Security::default()
    };
    for requirement in requirements {
        let Some(names) = requirement.as_object() else { continue };
        if names.is_empty() {
            out.required = false;
        }
        for (name, scopes) in names {
            match schemes.iter().find(|s| s.spec_name == *name) {
                Some(scheme) => {
                    if !out.auth.contains(&scheme.id) {
                        out.auth.push(scheme.id.clone());
                    }
                    out.scopes.entry(scheme.id.clone()).or_default().extend(
                        scopes
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_string),
                    );
                }
                None => {
                    let name = one_line(name, 80);
                    if !out.skipped.contains(&name) {
                        out.skipped.push(name);
                    }
                }
            }
        }
    }
    if out.auth.is_empty() {
        out.required = false;
    }
    out
}

/// Expands local `$ref`s (`#/components/...`) in parts of a document.
struct Resolver<'a> {
    /// The whole document.
    root: &'a Value,
    /// The references being expanded, outermost first: meeting one of them again is a cycle.
    stack: Vec<String>,
    /// Expansions left.
    budget: usize,
}

impl<'a> Resolver<'a> {
    /// A resolver over `root`.
    fn new(root: &'a Value) -> Self {
        Self {
            root,
            stack: Vec::new(),
            budget: MAX_REF_EXPANSIONS,
        }
    }

    /// `value` with every `$ref` in it expanded. A cycle, or nesting deeper than
    /// [`MAX_REF_DEPTH`], becomes `{}` with a description; an external reference is an error.
    fn resolve(&mut self, value: &Value) -> Result<Value, String> {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    return self.follow(reference, map);
                }
                let mut out = Map::new();
                for (key, item) in map {
                    out.insert(key.clone(), self.resolve(item)?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => items
                .iter()
                .map(|item| self.resolve(item))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }

    /// The expansion of `reference`, with the keywords written next to it (3.1 allows a
    /// `description` or `summary` there) laid over it.
    fn follow(&mut self, reference: &str, siblings: &Map<String, Value>) -> Result<Value, String> {
        let mut target = if self.stack.iter().any(|r| r == reference) {
            json!({ "description": format!("recursive reference to {reference} (not expanded)") })
        } else if self.stack.len() >= MAX_REF_DEPTH {
            json!({ "description": format!("{reference} is nested too deeply to expand") })
        } else {
            let Some(pointer) = reference.strip_prefix('#') else {
                return Err(format!(
                    "the external reference `{reference}` is not supported; bundle the document into one file first"
                ));
            };
            let root = self.root;
            let found = root
                .pointer(pointer)
                .ok_or_else(|| format!("`$ref: {reference}` points at nothing"))?;
            self.budget = self
                .budget
                .checked_sub(1)
                .ok_or_else(|| format!("the document needs more than {MAX_REF_EXPANSIONS} reference expansions"))?;
            self.stack.push(reference.to_string());
            let resolved = self.resolve(found);
            self.stack.pop();
            resolved?
        };
        if let Value::Object(map) = &mut target {
            for (key, value) in siblings {
                if key != "$ref" {
                    let value = self.resolve(value)?;
                    map.insert(key.clone(), value);
                }
            }
        }
        Ok(target)
    }
}

/// Which side of a call a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Sent to the API: `readOnly` properties are left out.
    Request,
    /// Answered by the API: `writeOnly` properties are left out.
    Response,
}

/// An (expanded) OpenAPI schema as JSON Schema 2020-12, which the host validates with: 3.0's
/// `nullable` and boolean `exclusiveMinimum`/`exclusiveMaximum` rewritten, OpenAPI-only keywords
/// (`discriminator`, `xml`, `example`, `externalDocs`, `x-…`) dropped, and properties that do not
/// travel in `direction` removed (from `properties` and `required`).
fn to_json_schema(schema: &Value, direction: Direction) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let convert = |s: &Value| to_json_schema(s, direction);
    let hidden = if direction == Direction::Request {
        "readOnly"
    } else {
        "writeOnly"
    };
    let mut out = Map::new();
    let mut dropped = Vec::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "nullable" | "discriminator" | "xml" | "example" | "externalDocs" => continue,
            k if k.starts_with("x-") => continue,
            "exclusiveMinimum" | "exclusiveMaximum" if value.is_boolean() => continue,
            "properties" => {
                let mut properties = Map::new();
                for (name, property) in value.as_object().into_iter().flatten() {
                    if property[hidden] == true {
                        dropped.push(name.clone());
                    } else {
                        properties.insert(name.clone(), convert(property));
                    }
                }
                Value::Object(properties)
            }
            "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => match value {
                Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), convert(v))).collect()),
                other => other.clone(),
            },
            "items"
            | "additionalProperties"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "unevaluatedItems"
            | "unevaluatedProperties" => convert(value),
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => match value {
                Value::Array(items) => Value::Array(items.iter().map(&convert).collect()),
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if let Some(Value::Array(required)) = out.get_mut("required") {
        required.retain(|r| !dropped.iter().any(|d| r == d.as_str()));
        if required.is_empty() {
            out.remove("required");
        }
    }
    // 3.0: `exclusiveMaximum: true` qualifies `maximum`; in 2020-12 it is the bound itself.
    for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        if map.get(flag) == Some(&Value::Bool(true))
            && let Some(limit) = out.remove(bound)
        {
            out.insert(flag.into(), limit);
        }
    }
    // 3.0: `nullable: true` admits null. With an `enum` or `const` (TOML cannot write a null
    // into them) or without a `type`, the schema becomes "this, or null".
    if map.get("nullable") == Some(&Value::Bool(true)) {
        let simple = !out.contains_key("enum") && !out.contains_key("const");
        match out.get_mut("type") {
            Some(Value::String(t)) if simple => {
                let t = std::mem::take(t);
                out.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(types)) if simple => {
                if !types.iter().any(|t| t == "null") {
                    types.push(json!("null"));
                }
            }
            _ => return json!({ "anyOf": [Value::Object(out), { "type": "null" }] }),
        }
    }
    Value::Object(out)
}

/// `text` as a snake_case identifier: `listPets` → `list_pets`, `getHTTPStatus` →
/// `get_http_status`, `get /pets/{petId}` → `get_pets_pet_id`; starts with a letter, at most
/// 56 characters.
fn snake_case(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && !out.is_empty() && !out.ends_with('_') {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    let mut out: String = out.trim_matches('_').chars().take(56).collect();
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        "operation".into()
    } else if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("op_{out}")
    } else {
        out
    }
}

/// The first non-empty line of `text`, trimmed, without control characters, at most `max`
/// characters (cut with `…`).
fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let clean: String = line.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() <= max {
        clean
    } else {
        let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// A TOML basic string.
fn toml_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        key.to_string()
    } else {
        toml_str(key)
    }
}

/// A JSON value as an inline TOML value. TOML has no null: nulls inside arrays and tables are
/// left out (a bare null becomes `{}`).
fn toml_inline(value: &Value) -> String {
    match value {
        Value::Null => "{}".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => format!("{f:?}"),
            (None, None) => n.to_string(),
        },
        Value::String(s) => toml_str(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().filter(|v| !v.is_null()).map(toml_inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_inline(v)))
                .collect();
            if fields.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", fields.join(", "))
            }
        }
    }
}

/// A schema as the TOML table `[header]`: one line per keyword, and one `properties.<name>`
/// line per property, the way the hand-written manifests lay schemas out.
fn toml_schema_table(header: &str, schema: &Value) -> String {
    let mut out = format!("[{header}]\n");
    let map = match schema {
        Value::Object(map) => map.clone(),
        Value::Bool(false) => Map::from_iter([("not".to_string(), json!({}))]),
        _ => Map::new(),
    };
    for (key, value) in &map {
        match value {
            Value::Null => {}
            Value::Object(properties) if key == "properties" && !properties.is_empty() => {
                for (name, property) in properties.iter().filter(|(_, p)| !p.is_null()) {
                    out.push_str(&format!("properties.{} = {}\n", toml_key(name), toml_inline(property)));
                }
            }
            _ => out.push_str(&format!("{} = {}\n", toml_key(key), toml_inline(value))),
        }
    }
    out
}

/// The generated `connector.toml`.
fn render_manifest(plan: &Plan, name: &str, source: &str) -> String {
    let id = name.replace('-', "_");
    let display: &str = if plan.title.is_empty() { name } else { &plan.title };
    let mut out = format!(
        "# Generated by `nexum connector new --from-openapi` from {source} (OpenAPI {}).\n\
         # Review the descriptions, auth labels and limits before publishing.\n\
         id = {}\nname = {}\nversion = \"0.1.0\"\ndescription = {}\ncategory = \"other\"\n\
         # The only origin this connector may call: the document's servers[0]. `api_base` is a\n\
         # per-connection variable, so the same connector works against self-hosted APIs and mocks.\n\
         allowed_hosts = [\"{{{{ api_base }}}}\"]\n\n\
         [variables.api_base]\ndescription = \"API origin (servers[0] of the OpenAPI document); change it for a self-hosted API or a mock\"\n\
         default = {}\n",
        one_line(&plan.openapi, 20),
        toml_str(&id),
        toml_str(display),
        toml_str(&plan.description),
        toml_str(&plan.origin),
    );
    for scheme in &plan.schemes {
        out.push_str(&format!(
            "\n# From securitySchemes.{}.\n[[auth]]\nid = {}\n",
            one_line(&scheme.spec_name, 80),
            toml_str(&scheme.id)
        ));
        let mut hosts = vec!["{{ api_base }}".to_string()];
        match &scheme.kind {
            SchemeKind::Bearer => out.push_str("type = \"bearer\"\n"),
            SchemeKind::Basic => out.push_str("type = \"basic\"\n"),
            SchemeKind::ApiKey { location, name } => out.push_str(&format!(
                "type = \"api_key\"\nin = {}\nname = {}\n",
                toml_str(location),
                toml_str(name)
            )),
            SchemeKind::OAuth2 {
                authorization_url,
                token_url,
                token_host,
            } => {
                out.push_str("type = \"oauth2\"\n");
                if let Some(url) = authorization_url {
                    out.push_str(&format!("authorization_url = {}\n", toml_str(url)));
                }
                out.push_str(&format!("token_url = {}\n", toml_str(token_url)));
                let scopes: Vec<Value> = scheme.scopes.iter().map(|s| json!(s)).collect();
                out.push_str(&format!("scopes = {}\n", toml_inline(&Value::Array(scopes))));
                // The host calls the token endpoint itself, but only on a host the scheme is bound to.
                hosts.extend(token_host.iter().cloned());
            }
        }
        let hosts: Vec<Value> = hosts.into_iter().map(Value::String).collect();
        out.push_str(&format!(
            "label = {}\nhosts = {}\n",
            toml_str(&scheme.label),
            toml_inline(&Value::Array(hosts))
        ));
    }
    for note in plan.notes.iter().filter(|n| n.starts_with("auth scheme")) {
        out.push_str(&format!("\n# {}\n", one_line(note, 300)));
    }
    out.push_str("\n[limits]\nmemory_mb = 32\ntimeout_ms = 10000\nrequests_per_second = 10\n");
    for op in &plan.operations {
        out.push_str(&format!(
            "\n# {} {} ({})\n[actions.{}]\ndescription = {}\n",
            op.method,
            one_line(&op.path, 200),
            one_line(&op.source, 100),
            op.action,
            toml_str(&op.summary)
        ));
        out.push_str(&toml_schema_table(&format!("actions.{}.input", op.action), &op.input));
        out.push_str(&toml_schema_table(&format!("actions.{}.output", op.action), &op.output));
    }
    out
}

/// A list of strings as a Rust slice expression.
fn rust_slice(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("&[{}]", items.join(", "))
}

/// The Rust name of an action's handler: the action name, unless the generated code or the
/// language already uses it.
fn handler_name(action: &str) -> String {
    if RESERVED.contains(&action) {
        format!("{action}_action")
    } else {
        action.to_string()
    }
}

/// The generated `src/lib.rs`.
fn render_lib(plan: &Plan, source: &str) -> String {
    let title: &str = if plan.title.is_empty() { "API" } else { &plan.title };
    let (origin, base_path) = (&plan.origin, &plan.base_path);
    let openapi = one_line(&plan.openapi, 20);
    let mut out = format!(
        "//! {title} connector, generated by `nexum connector new --from-openapi` from `{source}`\n\
         //! (OpenAPI {openapi}). Each action is one operation of the API: `call` fills the path, the\n\
         //! query and the headers from the action's input, sends its `body` as JSON, and lets the host\n\
         //! attach the credential (the connector never sees it).\n\
         #![deny(unsafe_code)]\n\n\
         use nexum_connector_sdk::prelude::*;\n\n\
         /// The API origin when the connection sets no `api_base` (`servers[0]` of the document).\n\
         const DEFAULT_BASE: &str = {origin:?};\n\
         /// The server URL's path, in front of every operation path.\n\
         const BASE_PATH: &str = {base_path:?};\n\n"
    );
    out.push_str(GENERATED_OP_STRUCT);
    for op in &plan.operations {
        let query: Vec<String> = op
            .query
            .iter()
            .map(|(name, explode)| format!("({name:?}, {explode})"))
            .collect();
        out.push_str(&format!(
            "\n/// `{} {}` (operation `{}`).\nconst OP_{}: Op = Op {{\n    method: {:?},\n    path: {:?},\n    query: &[{}],\n    headers: {},\n    body: {},\n    idempotency_header: {},\n    auth: {},\n    auth_required: {},\n}};\n",
            op.method,
            one_line(&op.path, 200),
            one_line(&op.source, 100),
            op.action.to_ascii_uppercase(),
            op.method,
            op.path,
            query.join(", "),
            rust_slice(&op.headers),
            op.body,
            match &op.idempotency_header {
                Some(h) => format!("Some({h:?})"),
                None => "None".into(),
            },
            rust_slice(&op.auth),
            op.auth_required,
        ));
    }
    out.push_str(&format!(
        "\n/// The {title} connector.\nstruct Api;\nconnector!(Api);\n\nimpl Connector for Api {{\n    fn actions() -> Actions {{\n        Actions::new()"
    ));
    for op in &plan.operations {
        out.push_str(&format!(
            "\n            .action({:?}, {})",
            op.action,
            handler_name(&op.action)
        ));
    }
    out.push_str("\n    }\n");
    if let Some(check) = plan
        .operations
        .iter()
        .find(|op| op.method == "GET" && op.no_required_input)
    {
        let checked = format!("{} {}", check.method, one_line(&check.path, 200));
        out.push_str(&format!(
            "\n    /// Calls `{checked}` with no input: it succeeds when the credential works.\n    fn test_connection() -> Result<Value, Error> {{\n        call(&OP_{}, &json!({{}}))?;\n        Ok(json!({{ \"ok\": true, \"checked\": {checked:?} }}))\n    }}\n",
            check.action.to_ascii_uppercase(),
        ));
    }
    out.push_str("}\n");
    for op in &plan.operations {
        out.push_str(&format!(
            "\n/// {} (`{} {}`)\nfn {}(input: Value) -> Result<Value, Error> {{\n    call(&OP_{}, &input)\n}}\n",
            op.summary,
            op.method,
            one_line(&op.path, 200),
            handler_name(&op.action),
            op.action.to_ascii_uppercase()
        ));
    }
    out.push_str(GENERATED_HELPERS);
    let ops: Vec<String> = plan
        .operations
        .iter()
        .map(|op| format!("&OP_{}", op.action.to_ascii_uppercase()))
        .collect();
    out.push_str(&GENERATED_TESTS.replace("__OPS__", &ops.join(", ")));
    out
}

/// The generated `Op` type.
const GENERATED_OP_STRUCT: &str = r#"/// One operation of the API and where each input field goes.
struct Op {
    /// HTTP method.
    method: &'static str,
    /// Path template after [`BASE_PATH`]; each `{name}` is filled from the input field `name`.
    path: &'static str,
    /// Input fields sent as query parameters, and whether an array repeats the parameter
    /// (`explode`) rather than joining its items with commas.
    query: &'static [(&'static str, bool)],
    /// Input fields sent as headers of the same name.
    headers: &'static [&'static str],
    /// Whether the input's `body` field is sent as the JSON body.
    body: bool,
    /// The header that carries the call's idempotency key, when the operation takes one.
    idempotency_header: Option<&'static str>,
    /// Auth schemes the operation accepts, in order of preference.
    auth: &'static [&'static str],
    /// Whether the call fails without one of them.
    auth_required: bool,
}
"#;

/// The generated helpers shared by every action.
const GENERATED_HELPERS: &str = r#"
/// Send `op` with the fields of `input`: the answer's JSON body (`null` when it is empty), or the
/// error its status maps to, with the provider's own message when the body has one.
fn call(op: &Op, input: &Value) -> Result<Value, Error> {
    let base = var("api_base").unwrap_or_else(|| DEFAULT_BASE.to_string());
    let url = format!(
        "{}{BASE_PATH}{}",
        base.trim_end_matches('/'),
        build_path(op.path, input)?
    );
    let credential = match any_credential(op.auth) {
        Ok(credential) => Some(credential),
        Err(e) if op.auth_required => return Err(e),
        Err(_) => None,
    };
    let mut request = match op.method {
        "POST" => Request::post(url),
        "PUT" => Request::put(url),
        "PATCH" => Request::patch(url),
        "DELETE" => Request::delete(url),
        _ => Request::get(url),
    };
    for (name, explode) in op.query {
        match &input[*name] {
            Value::Null => {}
            Value::Array(items) if *explode => {
                for item in items {
                    request = request.query(*name, scalar(name, item)?);
                }
            }
            Value::Array(items) => {
                let items = items
                    .iter()
                    .map(|item| scalar(name, item))
                    .collect::<Result<Vec<_>, _>>()?;
                request = request.query(*name, items.join(","));
            }
            value => request = request.query(*name, scalar(name, value)?),
        }
    }
    for name in op.headers {
        let value = &input[*name];
        if !value.is_null() {
            request = request.header(*name, scalar(name, value)?);
        }
    }
    if let (Some(header), Some(key)) = (op.idempotency_header, idempotency_key()) {
        request = request.header(header, key);
    }
    if op.body && !input["body"].is_null() {
        request = request.json(&input["body"])?;
    }
    if let Some(credential) = &credential {
        request = request.auth(credential);
    }
    request.send_value(|response| Error::from_response(response, describe))
}

/// `template` with each `{name}` replaced by the input field `name`, percent-encoded so that it
/// stays one path segment: `a/../b` becomes `a%2F..%2Fb`; empty, `.` and `..` are refused.
fn build_path(template: &str, input: &Value) -> Result<String, Error> {
    let mut path = String::new();
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('{') {
        let Some((name, tail)) = after.split_once('}') else {
            break;
        };
        let value = match &input[name] {
            Value::Null => return Err(Error::invalid_input(format!("`{name}` is required"))),
            value => scalar(name, value)?,
        };
        if value.is_empty() || value == "." || value == ".." {
            return Err(Error::invalid_input(format!(
                "`{name}` cannot be `{value}`: it names one path segment"
            )));
        }
        path.push_str(before);
        path.push_str(&encode(&value));
        rest = tail;
    }
    path.push_str(rest);
    Ok(path)
}

/// A string, number or boolean input as text; other values have no standard place in a URL.
fn scalar(field: &str, value: &Value) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Error::invalid_input(format!(
            "`{field}` must be a string, a number or a boolean here"
        ))),
    }
}

/// Percent-encode everything outside RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The provider's own explanation in an error body, in the shapes APIs commonly use.
fn describe(body: &Value) -> Option<String> {
    [
        &body["message"],
        &body["error"]["message"],
        &body["error_description"],
        &body["detail"],
        &body["title"],
        &body["error"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
    .map(str::to_string)
}

"#;

/// The generated unit tests (`__OPS__` becomes the list of operations).
const GENERATED_TESTS: &str = r#"
#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of this connector.
    const OPS: &[&Op] = &[__OPS__];

    #[test]
    fn path_parameters_stay_in_their_segment() {
        let input = json!({ "id": "a/../b c", "n": 7 });
        assert_eq!(
            build_path("/items/{id}/parts/{n}", &input).expect("path"),
            "/items/a%2F..%2Fb%20c/parts/7"
        );
        for bad in [
            json!({ "id": ".." }),
            json!({ "id": "" }),
            json!({}),
            json!({ "id": { "x": 1 } }),
        ] {
            let refused = build_path("/items/{id}", &bad).expect_err("refused");
            assert_eq!(refused.code, "invalid_input");
        }
    }

    #[test]
    fn every_operation_path_fills_from_its_input() {
        for op in OPS {
            let mut input = serde_json::Map::new();
            for name in op
                .path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}'))
                .map(|(n, _)| n)
            {
                input.insert(name.to_string(), json!("x"));
            }
            let path = build_path(op.path, &Value::Object(input)).expect("path");
            assert!(
                path.starts_with('/') && !path.contains('{'),
                "{} {path}",
                op.method
            );
        }
    }

    #[test]
    fn provider_messages_are_found() {
        assert_eq!(
            describe(&json!({ "message": "no pet" })).as_deref(),
            Some("no pet")
        );
        assert_eq!(
            describe(&json!({ "error": { "message": "bad" } })).as_deref(),
            Some("bad")
        );
        assert_eq!(
            describe(&json!({ "error": "invalid_grant" })).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(describe(&json!([1])), None);
    }
}
"#;

/// The generated `README.md`.
fn render_readme(plan: &Plan, name: &str, source: &str) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let title: &str = if plan.title.is_empty() { name } else { &plan.title };
    let mut out = format!(
        "# {title}\n\nA Nexum connector generated by `nexum connector new --from-openapi` from `{source}` \
         (OpenAPI {}). It calls `{}{}` (the `api_base` variable changes the origin). Review the \
         descriptions, auth labels and limits in `connector.toml` before publishing.\n\n\
         ## Actions\n\n\
         Each action takes the operation's path, query and header parameters as input fields of the \
         same name, and its JSON request body under `body`. Its output is the response's JSON body \
         (`null` when the response has none).\n\n\
         | Action | Operation | Request | Summary |\n|---|---|---|---|\n",
        one_line(&plan.openapi, 20),
        plan.origin,
        plan.base_path,
    );
    for op in &plan.operations {
        out.push_str(&format!(
            "| `{}` | `{}` | `{} {}{}` | {} |\n",
            op.action,
            cell(&one_line(&op.source, 100)),
            op.method,
            plan.base_path,
            cell(&one_line(&op.path, 200)),
            cell(&op.summary)
        ));
    }
    out.push_str("\n## Auth\n\n");
    if plan.schemes.is_empty() {
        out.push_str("The document declares no auth scheme this generator supports; calls carry no credential.\n");
    } else {
        out.push_str("| Scheme | Type | From | Label |\n|---|---|---|---|\n");
        for scheme in &plan.schemes {
            let kind = match &scheme.kind {
                SchemeKind::Bearer => "bearer".to_string(),
                SchemeKind::Basic => "basic".to_string(),
                SchemeKind::ApiKey { location, name } => format!("api_key ({name} in {location})"),
                SchemeKind::OAuth2 { .. } => "oauth2".to_string(),
            };
            out.push_str(&format!(
                "| `{}` | {} | `{}` | {} |\n",
                scheme.id,
                cell(&kind),
                cell(&one_line(&scheme.spec_name, 80)),
                cell(&scheme.label)
            ));
        }
        out.push_str("\nThe host injects the secret into each request; the connector only holds an opaque handle.\n");
    }
    out.push_str(
        "\n## Errors\n\nA non-2xx answer becomes a stable code: 400/422 `bad_request`, 401 `unauthorized`, \
         403 `forbidden`, 404 `not_found`, 409 `conflict`, 429 `rate_limited` and 5xx `upstream_error` \
         (both retryable), with the provider's `message`, `error`, `detail` or `title` as the message. \
         Inputs that cannot go in a URL (an object as a query parameter, `..` as a path segment) are \
         `invalid_input`.\n",
    );
    if !plan.notes.is_empty() {
        out.push_str("\n## Left out\n\n");
        for note in &plan.notes {
            out.push_str(&format!("- {}\n", one_line(note, 300)));
        }
    }
    // An action that needs no input makes the example runnable as it is.
    let example = plan
        .operations
        .iter()
        .find(|op| op.no_required_input)
        .or(plan.operations.first())
        .map(|op| op.action.as_str())
        .unwrap_or("<action>");
    let credential = plan
        .schemes
        .first()
        .map(|s| format!(" --credential {}=...", s.id))
        .unwrap_or_default();
    out.push_str(&format!(
        "\n## Try it\n\n```sh\ncargo test                     # unit tests\n\
         nexum connector run . {example} --input '{{}}'{credential} --var api_base=http://127.0.0.1:9000 --allow-range 127.0.0.0/8\n\
         nexum connector build          # → target/{}-0.1.0.nxb\n```\n",
        name.replace('-', "_")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETSTORE: &str = include_str!("../../../tests/fixtures/openapi/petstore.json");

    fn petstore() -> Value {
        serde_json::from_str(PETSTORE).expect("fixture")
    }

    fn plan(doc: &Value, wanted: Option<&[&str]>) -> Result<Plan, String> {
        let wanted: Option<Vec<String>> = wanted.map(|w| w.iter().map(|s| s.to_string()).collect());
        Plan::from_document(doc, wanted.as_deref())
    }

    /// A minimal document around `paths` and `components`.
    fn doc(paths: Value, components: Value) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": { "title": "T", "version": "1" },
            "servers": [{ "url": "https://api.example.com" }],
            "paths": paths,
            "components": components,
        })
    }

    #[test]
    fn snake_cases_operation_ids() {
        assert_eq!(snake_case("listPets"), "list_pets");
        assert_eq!(snake_case("getHTTPStatus"), "get_http_status");
        assert_eq!(snake_case("get /pets/{petId}"), "get_pets_pet_id");
        assert_eq!(snake_case("pets.list-all"), "pets_list_all");
        assert_eq!(snake_case("v2Users"), "v2_users");
        assert_eq!(snake_case("2fa"), "op_2fa");
        assert_eq!(snake_case("¿?"), "operation");
        assert_eq!(handler_name("call"), "call_action");
        assert_eq!(handler_name("type"), "type_action");
        assert_eq!(handler_name("list_pets"), "list_pets");
    }

    #[test]
    fn petstore_becomes_three_actions_with_their_schemas() {
        let plan = plan(&petstore(), Some(&["listPets", "createPet", "getPet"])).expect("plan");
        let actions: Vec<&str> = plan.operations.iter().map(|o| o.action.as_str()).collect();
        assert_eq!(actions, ["list_pets", "create_pet", "get_pet"]);
        assert_eq!(plan.origin, "https://petstore.example.com");
        assert_eq!(plan.base_path, "/v1");

        let list = &plan.operations[0];
        assert_eq!(list.query, [("limit".to_string(), true), ("cursor".to_string(), true)]);
        assert!(list.headers.is_empty(), "X-API-Key is the credential's, never an input");
        assert_eq!(list.auth, ["bearer_auth", "api_key_auth"]);
        assert!(list.auth_required);
        assert_eq!(
            list.input["properties"]["limit"],
            json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20, "description": "How many pets to return." })
        );
        assert_eq!(list.input["additionalProperties"], false);
        assert!(list.input.get("required").is_none());
        assert_eq!(
            list.output["properties"]["next_cursor"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(
            list.output["properties"]["data"]["items"]["required"],
            json!(["id", "name", "species"])
        );

        let create = &plan.operations[1];
        assert_eq!(create.method, "POST");
        assert!(create.body);
        assert_eq!(create.idempotency_header.as_deref(), Some("Idempotency-Key"));
        assert_eq!(create.input["required"], json!(["body"]));
        let body = &create.input["properties"]["body"];
        assert_eq!(body["required"], json!(["name", "species"]), "readOnly id is not sent");
        assert!(body["properties"].get("id").is_none());
        assert_eq!(body["properties"]["species"]["enum"], json!(["cat", "dog", "bird"]));
        assert_eq!(body["description"], "The pet to create.");
        assert_eq!(create.output["properties"]["id"]["type"], "string");

        let get = &plan.operations[2];
        assert_eq!(get.path, "/pets/{petId}");
        assert_eq!(get.input["required"], json!(["petId"]));
        assert_eq!(
            get.input["properties"]["petId"],
            json!({ "type": "string", "description": "The pet's id." })
        );
    }

    #[test]
    fn the_generated_manifest_parses() {
        let plan = plan(&petstore(), None).expect("plan");
        assert_eq!(plan.operations.len(), 4);
        let text = render_manifest(&plan, "petstore", "petstore.json");
        let manifest = Manifest::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(manifest.id, "petstore");
        assert_eq!(manifest.name, "Petstore");
        assert_eq!(
            manifest.actions.keys().map(String::as_str).collect::<Vec<_>>(),
            ["create_pet", "delete_pet", "get_pet", "list_pets"]
        );
        assert_eq!(manifest.actions["list_pets"].input, plan.operations[0].input);
        assert_eq!(manifest.actions["delete_pet"].output, json!({}));
        let key = manifest.auth_scheme("api_key_auth").expect("api key scheme");
        assert_eq!(key.injected_header().as_deref(), Some("x-api-key"));
        assert_eq!(key.label, "Petstore API key");
        assert!(manifest.auth_scheme("bearer_auth").is_some());
        let lib = render_lib(&plan, "petstore.json");
        assert!(lib.contains("const BASE_PATH: &str = \"/v1\";"), "{lib}");
        assert!(lib.contains(".action(\"delete_pet\", delete_pet)"), "{lib}");
        assert!(
            lib.contains("call(&OP_LIST_PETS, &json!({}))?;"),
            "test-connection lists pets"
        );
        assert!(lib.contains("const OPS: &[&Op] = &[&OP_LIST_PETS, &OP_CREATE_PET, &OP_GET_PET, &OP_DELETE_PET];"));
        let readme = render_readme(&plan, "petstore", "petstore.json");
        assert!(
            readme.contains("| `get_pet` | `getPet` | `GET /v1/pets/{petId}` |"),
            "{readme}"
        );
    }

    #[test]
    fn unknown_or_no_operations_are_refused() {
        let err = plan(&petstore(), Some(&["listPets", "adoptPet"])).expect_err("unknown");
        assert!(
            err.contains("no operation `adoptPet`") && err.contains("listPets, createPet"),
            "{err}"
        );
        let err = plan(&petstore(), Some(&[" "])).expect_err("none");
        assert!(err.contains("no operations to generate"), "{err}");
        let err = plan(&doc(json!({}), json!({})), None).expect_err("empty");
        assert!(err.contains("no operations to generate"), "{err}");
        let only_head = doc(
            json!({ "/x": { "head": { "operationId": "peek", "responses": {} } } }),
            json!({}),
        );
        let err = plan(&only_head, Some(&["peek"])).expect_err("head");
        assert!(err.contains("HEAD is not supported"), "{err}");
        let swagger = json!({ "swagger": "2.0", "paths": {} });
        assert!(plan(&swagger, None).expect_err("swagger").contains("Swagger 2.0"));
    }

    #[test]
    fn cyclic_and_deep_references_end() {
        let components = json!({ "schemas": {
            "Node": { "type": "object", "properties": { "next": { "$ref": "#/components/schemas/Node" }, "value": { "type": "string" } } }
        } });
        let d = doc(json!({}), components);
        let mut resolver = Resolver::new(&d);
        let node = resolver
            .resolve(&json!({ "$ref": "#/components/schemas/Node" }))
            .expect("resolves");
        assert_eq!(node["properties"]["value"]["type"], "string");
        let next = &node["properties"]["next"];
        assert!(
            next["description"].as_str().is_some_and(|d| d.contains("recursive")),
            "{next}"
        );
        assert!(next.get("properties").is_none());

        // A chain deeper than the limit stops expanding instead of recursing on.
        let mut schemas = Map::new();
        for i in 0..(MAX_REF_DEPTH + 5) {
            schemas.insert(
                format!("S{i}"),
                json!({ "items": { "$ref": format!("#/components/schemas/S{}", i + 1) } }),
            );
        }
        schemas.insert(format!("S{}", MAX_REF_DEPTH + 5), json!({ "type": "string" }));
        let d = doc(json!({}), json!({ "schemas": schemas }));
        let mut resolver = Resolver::new(&d);
        let deep = resolver
            .resolve(&json!({ "$ref": "#/components/schemas/S0" }))
            .expect("resolves");
        assert!(deep.to_string().contains("nested too deeply"));

        let mut resolver = Resolver::new(&d);
        let err = resolver
            .resolve(&json!({ "$ref": "other.yaml#/Pet" }))
            .expect_err("external");
        assert!(err.contains("external reference"), "{err}");
        let err = resolver
            .resolve(&json!({ "$ref": "#/components/schemas/Nope" }))
            .expect_err("dangling");
        assert!(err.contains("points at nothing"), "{err}");
    }

    #[test]
    fn openapi_3_0_keywords_become_json_schema() {
        let schema = json!({
            "type": "object",
            "required": ["id", "secret", "n"],
            "x-internal": true,
            "example": { "id": "1" },
            "properties": {
                "id": { "type": "string", "readOnly": true },
                "secret": { "type": "string", "writeOnly": true },
                "n": { "type": "integer", "maximum": 10, "exclusiveMaximum": true, "nullable": true },
                "kind": { "type": "string", "enum": ["a", "b"], "nullable": true },
                "example": { "type": "string" }
            }
        });
        let request = to_json_schema(&schema, Direction::Request);
        assert_eq!(request["required"], json!(["secret", "n"]));
        assert!(request["properties"].get("id").is_none());
        assert_eq!(
            request["properties"]["n"],
            json!({ "type": ["integer", "null"], "exclusiveMaximum": 10 })
        );
        assert_eq!(
            request["properties"]["kind"],
            json!({ "anyOf": [{ "type": "string", "enum": ["a", "b"] }, { "type": "null" }] })
        );
        assert_eq!(
            request["properties"]["example"],
            json!({ "type": "string" }),
            "a property named example stays"
        );
        assert!(request.get("x-internal").is_none() && request.get("example").is_none());
        let response = to_json_schema(&schema, Direction::Response);
        assert_eq!(response["required"], json!(["id", "n"]));
        assert!(response["properties"].get("secret").is_none());
        jsonschema::validator_for(&request).expect("valid JSON Schema");
    }

    #[test]
    fn servers_variables_and_auth_schemes() {
        let mut d = doc(
            json!({ "/me": { "get": { "operationId": "me", "security": [{ "oauth": ["read"] }, {}], "responses": {} } } }),
            json!({ "securitySchemes": {
                "oauth": { "type": "oauth2", "flows": { "authorizationCode": {
                    "authorizationUrl": "https://login.example.com/authorize",
                    "tokenUrl": "/oauth/token",
                    "scopes": { "read": "Read", "write": "Write" }
                } } },
                "basic": { "type": "http", "scheme": "basic" },
                "digest": { "type": "http", "scheme": "digest" },
                "cookie": { "type": "apiKey", "in": "cookie", "name": "sid" },
                "oidc": { "type": "openIdConnect", "openIdConnectUrl": "https://login.example.com/.well-known/openid-configuration" },
                "queryKey": { "type": "apiKey", "in": "query", "name": "api_key" }
            } }),
        );
        d["servers"] = json!([{ "url": "https://{region}.api.example.com:8443/{version}/", "variables": {
            "region": { "default": "eu", "enum": ["eu", "us"] }, "version": { "default": "v2" }
        } }]);
        let plan = plan(&d, None).expect("plan");
        assert_eq!(plan.origin, "https://eu.api.example.com:8443");
        assert_eq!(plan.base_path, "/v2");
        let ids: Vec<&str> = plan.schemes.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        let oauth = plan.schemes.iter().find(|s| s.id == "oauth").expect("oauth");
        assert_eq!(
            oauth.kind,
            SchemeKind::OAuth2 {
                authorization_url: Some("https://login.example.com/authorize".into()),
                token_url: "{{ api_base }}/oauth/token".into(),
                token_host: None,
            }
        );
        assert_eq!(
            oauth.scopes.iter().collect::<Vec<_>>(),
            ["read"],
            "only the scopes operations need"
        );
        let me = &plan.operations[0];
        assert_eq!(me.auth, ["oauth"]);
        assert!(!me.auth_required, "`{{}}` allows anonymous calls");
        let skipped = plan.notes.iter().filter(|n| n.starts_with("auth scheme")).count();
        assert_eq!(skipped, 3, "{:?}", plan.notes);
        let text = render_manifest(&plan, "example", "example.yaml");
        let manifest = Manifest::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            manifest.variables["api_base"].default.as_deref(),
            Some("https://eu.api.example.com:8443")
        );
        assert!(text.contains("# auth scheme `oidc` skipped"), "{text}");
        assert!(manifest.auth_scheme("query_key").is_some());

        d["servers"] = json!([{ "url": "/v1" }]);
        let err = Plan::from_document(&d, None).expect_err("relative");
        assert!(err.contains("not an absolute URL"), "{err}");
    }

    #[test]
    fn parameters_bodies_and_collisions() {
        let d = doc(
            json!({
                "/things/{id}": {
                    "parameters": [{ "name": "id", "in": "path", "schema": { "type": "integer" } }],
                    "put": {
                        "parameters": [
                            { "name": "tags", "in": "query", "explode": false, "schema": { "type": "array", "items": { "type": "string" } } },
                            { "name": "X-Trace", "in": "header", "required": true, "schema": { "type": "string" } },
                            { "name": "session", "in": "cookie", "schema": { "type": "string" } }
                        ],
                        "requestBody": { "content": { "application/merge-patch+json": { "schema": { "type": "object" } } } },
                        "responses": { "200": { "content": { "application/json": { "schema": { "type": "object" } } } } }
                    },
                    "post": {
                        "requestBody": { "content": { "multipart/form-data": { "schema": { "type": "object" } } } },
                        "responses": {}
                    },
                    "patch": {
                        "parameters": [{ "name": "id", "in": "query", "schema": { "type": "string" } }],
                        "responses": {}
                    }
                }
            }),
            json!({}),
        );
        let plan = plan(&d, None).expect("plan");
        let put = plan.operations.iter().find(|o| o.method == "PUT").expect("put");
        assert_eq!(put.action, "put_things_id");
        assert_eq!(put.query, [("tags".to_string(), false)]);
        assert_eq!(put.headers, ["X-Trace"]);
        assert_eq!(put.input["required"], json!(["id", "X-Trace"]));
        assert_eq!(put.input["properties"]["body"], json!({ "type": "object" }));
        assert!(put.input["properties"].get("session").is_none());
        assert!(!put.auth_required, "no schemes, no credential");
        let notes = plan.notes.join("\n");
        assert!(notes.contains("cookie parameter `session`"), "{notes}");
        assert!(notes.contains("multipart/form-data"), "{notes}");
        assert!(notes.contains("two of its inputs are called `id`"), "{notes}");
    }

    #[test]
    fn yaml_documents_parse_with_numeric_response_codes() {
        let yaml = "openapi: 3.0.0\ninfo: { title: Y, version: '1' }\nservers: [{ url: 'https://y.example.com' }]\npaths:\n  /ping:\n    get:\n      operationId: ping\n      responses:\n        200:\n          description: ok\n          content:\n            application/json:\n              schema: { type: object, properties: { ok: { type: boolean } } }\n";
        let doc = parse_document(yaml, true).expect("yaml");
        let plan = plan(&doc, None).expect("plan");
        assert_eq!(plan.operations[0].output["properties"]["ok"]["type"], "boolean");
        assert!(parse_document("{", false).expect_err("json").contains("not valid JSON"));
    }

    #[test]
    fn toml_values_render_and_escape() {
        assert_eq!(toml_str("a \"b\"\n\\"), r#""a \"b\"\n\\""#);
        assert_eq!(toml_key("petId"), "petId");
        assert_eq!(toml_key("$schema"), "\"$schema\"");
        assert_eq!(
            toml_inline(&json!({ "a": [1, 2.5, null, "x"], "b": null, "c": {} })),
            "{ a = [1, 2.5, \"x\"], c = {} }"
        );
        let table = toml_schema_table(
            "t",
            &json!({ "type": "object", "properties": { "x-y": { "type": "string" } } }),
        );
        let parsed: toml::Table = toml::from_str(&table).expect("toml");
        assert_eq!(parsed["t"]["properties"]["x-y"]["type"].as_str(), Some("string"));
    }
}
