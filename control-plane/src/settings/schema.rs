//! Every settings key with its doc comment and type, read from the JSON Schema that `schemars`
//! derives from the types, so the environment layer and the annotated file cannot drift from
//! them.

use serde_json::Value;

use super::Settings;

/// The shape of a value, as far as parsing an environment variable needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    List(Box<Kind>),
}

/// One settings key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// The table it is in; `None` at the top.
    pub section: Option<String>,
    pub name: String,
    /// Its doc comment.
    pub doc: String,
    pub kind: Kind,
    /// `#[schemars(example = …)]`, shown for keys without a default.
    pub example: Option<Value>,
}

impl Key {
    /// `api.listen`, `data_dir`.
    pub fn dotted(&self) -> String {
        match &self.section {
            Some(section) => format!("{section}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// `BENCHFLEET_API__LISTEN`, `BENCHFLEET_DATA_DIR`.
    pub fn var(&self) -> String {
        format!(
            "{}{}",
            super::env::PREFIX,
            self.dotted().replace('.', "__").to_uppercase()
        )
    }
}

/// The keys of [`Settings`], and the doc comment of each section.
pub(crate) struct Keys {
    pub keys: Vec<Key>,
    /// `(section, doc)`.
    pub sections: Vec<(String, String)>,
}

impl Keys {
    pub fn get(&self, dotted: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.dotted() == dotted)
    }

    pub fn section_doc(&self, section: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(s, _)| s == section)
            .map(|(_, d)| d.as_str())
    }
}

/// Reads the keys from the schema of [`Settings`].
pub(crate) fn keys() -> Keys {
    let schema = schemars::schema_for!(Settings);
    let root = schema.as_value();
    let mut out = Keys {
        keys: Vec::new(),
        sections: Vec::new(),
    };
    for (name, property) in properties(root) {
        let target = resolve(root, property);
        if target.get("properties").is_some() {
            out.sections
                .push((name.clone(), doc(property).or_else(|| doc(target)).unwrap_or_default()));
            for (key, p) in properties(target) {
                out.keys.push(leaf(root, Some(name), key, p));
            }
        } else {
            out.keys.push(leaf(root, None, name, property));
        }
    }
    out
}

fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

fn leaf(root: &Value, section: Option<&String>, name: &str, property: &Value) -> Key {
    Key {
        section: section.cloned(),
        name: name.to_owned(),
        doc: doc(property).unwrap_or_default(),
        kind: kind(root, property),
        example: property
            .get("examples")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
            .cloned(),
    }
}

fn doc(schema: &Value) -> Option<String> {
    schema.get("description").and_then(Value::as_str).map(str::to_owned)
}

/// Follows a `$ref` into `$defs`.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| root.get("$defs")?.get(name))
        .unwrap_or(schema)
}

fn kind(root: &Value, schema: &Value) -> Kind {
    let schema = resolve(root, schema);
    // `Option<T>` is `"type": [T, "null"]`, or `anyOf` when `T` is a definition.
    if let Some(variants) = schema.get("anyOf").and_then(Value::as_array) {
        let inner = variants
            .iter()
            .find(|v| v.get("type").and_then(Value::as_str) != Some("null"));
        return inner.map_or(Kind::Text, |v| kind(root, v));
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ => "string",
    };
    match ty {
        "integer" => Kind::Integer,
        "number" => Kind::Number,
        "boolean" => Kind::Boolean,
        "array" => Kind::List(Box::new(
            schema.get("items").map_or(Kind::Text, |items| kind(root, items)),
        )),
        _ => Kind::Text,
    }
}
