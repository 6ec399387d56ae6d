//! The template author's loop, behind `nexum template new | validate | sign | publish`:
//! scaffold a directory with a `template.json` that validates out of the box, check it with
//! the same parser the registry uses (every problem names its field), pack and sign it into
//! a `.nxt` bundle, and publish it.

use super::TemplateError;
use super::definition::Template;
use crate::author::{AuthorError, file_err, upload, write};
use crate::workflows::template::Renderer;
use nexum_marketplace::signing;
use nexum_marketplace::template::{ICON_FILES, TEMPLATE_FILE, TemplateBundle, pack_template};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Whether `name` can be a template id: 1–64 of `a-z`, `0-9`, `-`, starting with a letter.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Scaffold `<parent>/<name>/` with a `template.json` (a manual workflow that calls the HTTP
/// connector) and a README; returns the directory.
pub fn scaffold(parent: &Path, name: &str) -> Result<PathBuf, AuthorError> {
    if !valid_name(name) {
        return Err(AuthorError::BadName(name.to_string()));
    }
    let dir = parent.join(name);
    if dir.join(TEMPLATE_FILE).exists() {
        return Err(file_err(
            &dir,
            "already holds a template.json; refusing to overwrite it",
        ));
    }
    let template = serde_json::json!({
        "id": name,
        "name": name.replace('-', " "),
        "summary": "Fetch a URL and keep what matters.",
        "description": "# What it does\n\nCalls an HTTP endpoint and returns its status.\n\n# Setting it up\n\n1. Install `nexum/http` and connect it to your API.\n2. Use this template and pick that connection.",
        "category": "AUTOMATION",
        "difficulty": "BEGINNER",
        "tags": ["http"],
        "setup_minutes": 5,
        "version": "0.1.0",
        "changelog": "First release.",
        "variables": {
            "path": { "description": "The path to call", "type": "string", "default": "/", "pattern": "^/" }
        },
        "slots": {
            "api": { "connector": "nexum/http", "version": "^0.1", "actions": ["request"],
                     "description": "The API to call" }
        },
        "workflow": {
            "steps": [
                { "name": "call", "type": "connector", "slot": "api", "action": "request",
                  "input": { "method": "GET", "url": "{{ vars.path }}" } }
            ],
            "output": { "status": "{{ steps.call.output.status }}" }
        }
    });
    let text = serde_json::to_string_pretty(&template).map_err(|e| file_err(&dir, e))?;
    write(&dir.join(TEMPLATE_FILE), &format!("{text}\n"))?;
    write(
        &dir.join("README.md"),
        &format!(
            "# {name}\n\nA Nexum workflow template.\n\n```sh\nnexum template validate {name}\nnexum template sign {name} --key publisher.key\nnexum template publish {name}/target/{name}-0.1.0.nxt --namespace <yours> --api-key <key>\n```\n"
        ),
    )?;
    Ok(dir)
}

/// `template.json` of `dir` parsed and checked as the registry will, and the files that go
/// into its bundle (`template.json`, `README.md`, the icon it names).
pub fn validate(dir: &Path) -> Result<(Template, BTreeMap<String, Vec<u8>>), AuthorError> {
    let path = dir.join(TEMPLATE_FILE);
    let bytes = std::fs::read(&path).map_err(|e| file_err(&path, e))?;
    let template = Template::parse(&bytes, &Renderer::new()).map_err(|e| match e {
        TemplateError::Invalid(problems) => AuthorError::Template(
            std::iter::once(format!("{} is invalid:", path.display()))
                .chain(problems.iter().map(|p| format!("  {}: {}", p.path, p.message)))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => AuthorError::Template(format!("{}: {other}", path.display())),
    })?;
    let mut files = BTreeMap::new();
    files.insert(TEMPLATE_FILE.to_string(), bytes);
    if let Ok(readme) = std::fs::read(dir.join("README.md")) {
        files.insert("README.md".to_string(), readme);
    }
    if let Some(icon) = &template.icon {
        if !ICON_FILES.contains(&icon.as_str()) {
            return Err(AuthorError::Template(format!(
                "icon: a template bundle's icon is one of {}",
                ICON_FILES.join(", ")
            )));
        }
        let icon_path = dir.join(icon);
        files.insert(
            icon.clone(),
            std::fs::read(&icon_path).map_err(|e| file_err(&icon_path, e))?,
        );
    }
    Ok((template, files))
}

/// Validate `dir`, pack it and sign it with the secret key file `key`, writing
/// `out` (default `<dir>/target/<id>-<version>.nxt`); returns the path and the bundle.
pub fn sign(
    dir: &Path,
    key: &Path,
    password: Option<&str>,
    out: Option<&Path>,
) -> Result<(PathBuf, TemplateBundle), AuthorError> {
    let (template, files) = validate(dir)?;
    let unsigned = TemplateBundle::parse(&pack_template(&files, None)?)?;
    let secret = std::fs::read_to_string(key).map_err(|e| file_err(key, e))?;
    let signature = signing::sign(&unsigned, &secret, password)?;
    let bytes = unsigned.with_signature(&signature)?;
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| {
        dir.join("target")
            .join(format!("{}-{}.nxt", template.id, template.version))
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| file_err(parent, e))?;
    }
    std::fs::write(&out, &bytes).map_err(|e| file_err(&out, e))?;
    Ok((out, TemplateBundle::parse(&bytes)?))
}

/// Publish a signed `.nxt` to a marketplace; `private` sets the template's visibility
/// (`None`: a new template is public, an existing one keeps its visibility).
pub async fn publish(
    bundle: &Path,
    marketplace: &str,
    namespace: &str,
    api_key: &str,
    private: Option<bool>,
) -> Result<serde_json::Value, AuthorError> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("namespace", namespace);
    if let Some(private) = private {
        query.append_pair("private", if private { "true" } else { "false" });
    }
    let url = format!(
        "{}/api/v1/templates?{}",
        marketplace.trim_end_matches('/'),
        query.finish()
    );
    upload(bundle, &url, api_key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaffold_validates_signs_and_verifies() {
        let dir = tempfile::tempdir().expect("tmp");
        let made = scaffold(dir.path(), "my-flow").expect("scaffold");
        let (template, files) = validate(&made).expect("a scaffold validates");
        assert_eq!(template.id, "my-flow");
        assert!(files.contains_key("README.md"));
        let keys = signing::generate_keypair().expect("keys");
        let key_path = dir.path().join("publisher.key");
        std::fs::write(&key_path, &keys.secret).expect("key");
        let (path, bundle) = sign(&made, &key_path, None, None).expect("sign");
        assert!(path.ends_with("target/my-flow-0.1.0.nxt"), "{}", path.display());
        let policy = signing::TrustPolicy {
            keys: vec![signing::PublicKey::parse(&keys.public).expect("pub")],
            ..Default::default()
        };
        assert_eq!(policy.verify(&bundle), Ok(signing::Signer::Key(keys.key_id.clone())));
        assert!(scaffold(dir.path(), "my-flow").is_err(), "never overwrites");
        assert!(matches!(scaffold(dir.path(), "Bad_Name"), Err(AuthorError::BadName(_))));
    }

    #[test]
    fn validation_names_every_bad_field() {
        let dir = tempfile::tempdir().expect("tmp");
        let made = scaffold(dir.path(), "broken").expect("scaffold");
        let path = made.join(TEMPLATE_FILE);
        let mut value: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        value["category"] = serde_json::json!("GARDENING");
        std::fs::write(&path, value.to_string()).expect("write");
        let Err(AuthorError::Template(text)) = validate(&made) else {
            panic!("refused");
        };
        assert!(text.contains("GARDENING") || text.contains("category"), "{text}");
        value["category"] = serde_json::json!("SALES");
        value["setup_minutes"] = serde_json::json!(0);
        value["workflow"]["steps"][0]["slot"] = serde_json::json!("nowhere");
        std::fs::write(&path, value.to_string()).expect("write");
        let Err(AuthorError::Template(text)) = validate(&made) else {
            panic!("refused");
        };
        assert!(text.contains("setup_minutes"), "{text}");
        assert!(text.contains("workflow.steps[0].slot"), "{text}");
    }
}
