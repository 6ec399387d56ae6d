//! Posted forms: urlencoded fields read in order (a name may repeat, as checkboxes do), and
//! the input of an action built from its JSON Schema and the fields a generated form posted.

use serde_json::{Map, Value};

/// The fields of an `application/x-www-form-urlencoded` body.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parse a body (malformed escapes are taken literally, as browsers never send them).
    pub fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first value of `name` exactly as posted (passwords, keys: not trimmed).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every non-blank value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// Remove and return the first value of `name`.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(at).1)
    }

    /// The fields whose name starts with `prefix`, with the prefix removed, non-blank only.
    pub fn prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter_map(|(n, v)| Some((n.strip_prefix(prefix)?.to_string(), v.clone())))
            .filter(|(_, v)| !v.trim().is_empty())
            .collect()
    }
}

/// One input of a form generated from a JSON Schema's top-level property.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SchemaField {
    /// The property name (also the form field's name, after `in.`).
    pub name: String,
    /// `text`, `textarea`, `number`, `integer`, `checkbox`, `select` or `json`.
    pub kind: &'static str,
    /// Whether the schema requires it.
    pub required: bool,
    /// The schema's description.
    pub description: Option<String>,
    /// The choices of an enum.
    pub choices: Vec<String>,
    /// The value to show (the last posted one, else the schema's default).
    pub value: String,
}

/// The fields of a form for `schema` (an object schema), pre-filled from `posted`.
pub fn schema_fields(schema: &Value, posted: &Fields) -> Vec<SchemaField> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let kind = kind_of(property);
            let default = property.get("default").map(|d| match d {
                Value::String(s) => s.clone(),
                other if kind == "json" => other.to_string(),
                other => other.to_string(),
            });
            SchemaField {
                name: name.clone(),
                kind,
                required: required.contains(&name.as_str()),
                description: property.get("description").and_then(Value::as_str).map(str::to_string),
                choices: property
                    .get("enum")
                    .and_then(Value::as_array)
                    .map(|e| {
                        e.iter()
                            .map(|c| c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
                value: posted
                    .raw(&format!("in.{name}"))
                    .map(str::to_string)
                    .or(default)
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// How a property is entered.
fn kind_of(property: &Value) -> &'static str {
    if property
        .get("enum")
        .and_then(Value::as_array)
        .is_some_and(|e| e.iter().all(Value::is_string))
    {
        return "select";
    }
    let types: Vec<&str> = match property.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => vec![],
    };
    match types.as_slice() {
        ["string"] => {
            let long = property
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_none_or(|max| max > 200);
            if long { "textarea" } else { "text" }
        }
        ["integer"] => "integer",
        ["number"] => "number",
        ["boolean"] => "checkbox",
        _ => "json",
    }
}

/// The JSON input a generated form posted: blank fields are left out, numbers and booleans
/// are typed, arrays and objects are parsed as JSON. A non-blank `raw_json` field replaces
/// the form entirely. Errors name the field.
pub fn input_from_form(schema: &Value, form: &Fields) -> Result<Value, String> {
    if let Some(raw) = form.get("raw_json") {
        return serde_json::from_str(raw).map_err(|e| format!("the raw JSON input does not parse: {e}"));
    }
    let mut input = Map::new();
    for field in schema_fields(schema, &Fields::default()) {
        let key = format!("in.{}", field.name);
        let value = match field.kind {
            "checkbox" => match form.raw(&key) {
                Some(_) => Value::Bool(true),
                None if field.required => Value::Bool(false),
                None => continue,
            },
            _ => {
                let Some(text) = form.raw(&key).filter(|t| !t.trim().is_empty()) else {
                    continue;
                };
                match field.kind {
                    "integer" => text
                        .trim()
                        .parse::<i64>()
                        .map(Value::from)
                        .map_err(|_| format!("`{}` must be a whole number", field.name))?,
                    "number" => text
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .ok_or_else(|| format!("`{}` must be a number", field.name))?,
                    "json" => serde_json::from_str(text).map_err(|e| format!("`{}` must be JSON: {e}", field.name))?,
                    _ => Value::String(text.to_string()),
                }
            }
        };
        input.insert(field.name, value);
    }
    Ok(Value::Object(input))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["channel", "text"],
            "properties": {
                "channel": { "type": "string", "maxLength": 80 },
                "text": { "type": "string" },
                "count": { "type": "integer" },
                "unfurl": { "type": "boolean" },
                "mode": { "type": "string", "enum": ["a", "b"] },
                "blocks": { "type": "array" }
            }
        })
    }

    #[test]
    fn a_generated_form_posts_typed_input() {
        let form = Fields::parse(
            b"in.channel=%23general&in.text=hi+there&in.count=3&in.unfurl=on&in.mode=b&in.blocks=%5B1%5D",
        );
        assert_eq!(
            input_from_form(&schema(), &form).unwrap(),
            json!({ "channel": "#general", "text": "hi there", "count": 3, "unfurl": true, "mode": "b", "blocks": [1] })
        );
        let kinds: Vec<_> = schema_fields(&schema(), &form)
            .iter()
            .map(|f| (f.name.clone(), f.kind))
            .collect();
        assert!(kinds.contains(&("channel".into(), "text")));
        assert!(kinds.contains(&("text".into(), "textarea")));
        assert!(kinds.contains(&("mode".into(), "select")));
    }

    #[test]
    fn blank_fields_are_left_out_and_bad_numbers_named() {
        let form = Fields::parse(b"in.channel=c&in.text=&in.count=");
        assert_eq!(input_from_form(&schema(), &form).unwrap(), json!({ "channel": "c" }));
        let form = Fields::parse(b"in.count=three");
        assert_eq!(
            input_from_form(&schema(), &form).unwrap_err(),
            "`count` must be a whole number"
        );
        let form = Fields::parse(b"raw_json=%7B%22x%22%3A1%7D&in.channel=ignored");
        assert_eq!(input_from_form(&schema(), &form).unwrap(), json!({ "x": 1 }));
    }
}
