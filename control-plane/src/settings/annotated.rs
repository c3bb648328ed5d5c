//! The annotated default file (`control-plane config default`): the values of
//! [`Settings::default`] in declaration order, each under its doc comment and variable names.

use std::fmt::Write;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::Settings;
use super::env::ALIASES;
use super::schema::{self, Key, Keys};

/// Comment lines are wrapped to this many characters.
const WIDTH: usize = 100;

const HEADER: &str = "\
benchfleet control plane configuration (`control-plane config default`).

Precedence: built-in defaults < this file (--config FILE or BENCHFLEET_CONFIG) < environment < \
command-line flags (`control-plane --help`).

Every key can be set from the environment: BENCHFLEET_<KEY> at the top, BENCHFLEET_<SECTION>__<KEY> \
in a section (BENCHFLEET_INGEST__BATCH_SIZE=500). Lists are `a,b` or a TOML array (`[\"a\", \"b\"]`); \
an empty value counts as unset.";

/// The annotated default configuration.
pub fn default_toml() -> String {
    let keys = schema::keys();
    let mut out = String::new();
    comment(&mut out, HEADER);
    for (name, node) in ordered_defaults().0 {
        match node {
            Node::Table(table) => {
                let _ = writeln!(out, "\n[{name}]");
                comment(&mut out, keys.section_doc(&name).unwrap_or_default());
                for (key, node) in table.0 {
                    entry(&mut out, &keys, &format!("{name}.{key}"), &key, node);
                }
            }
            Node::Value(_) => entry(&mut out, &keys, &name, &name, node),
        }
    }
    out
}

fn entry(out: &mut String, keys: &Keys, dotted: &str, name: &str, node: Node) {
    out.push('\n');
    let key = keys.get(dotted);
    if let Some(key) = key {
        comment(out, &key.doc);
        comment(out, &variables(key));
    }
    let value = match node {
        Node::Value(v) => v,
        Node::Table(_) => Value::Null,
    };
    match value {
        // Unset by default: show an example, commented out.
        Value::Null => {
            let example = key.and_then(|k| k.example.clone()).unwrap_or(Value::Null);
            let _ = writeln!(out, "# {name} = {}", literal(&example));
        }
        value => {
            let _ = writeln!(out, "{name} = {}", literal(&value));
        }
    }
}

/// `env: BENCHFLEET_API__LISTEN (or BENCHFLEET_API_LISTEN)`.
fn variables(key: &Key) -> String {
    let dotted = key.dotted();
    let aliases: Vec<_> = ALIASES.iter().filter(|(_, k)| *k == dotted).map(|(v, _)| *v).collect();
    if aliases.is_empty() {
        format!("env: {}", key.var())
    } else {
        format!("env: {} (or {})", key.var(), aliases.join(", "))
    }
}

fn literal(value: &Value) -> String {
    toml::Value::try_from(value).map_or_else(|_| "…".to_owned(), |v| v.to_string())
}

/// Appends `text` as `#` lines, each paragraph reflowed to [`WIDTH`].
fn comment(out: &mut String, text: &str) {
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            out.push_str("#\n");
        }
        let mut line = String::from("#");
        for word in paragraph.split_whitespace() {
            if line.len() > 1 && line.len() + 1 + word.len() > WIDTH {
                out.push_str(&line);
                out.push('\n');
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        if line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
        }
    }
}

/// [`Settings::default`] with its keys in declaration order, unset options as `null` (serde
/// writes struct fields in order; a JSON object read into `serde_json::Value` would be sorted).
fn ordered_defaults() -> Table {
    let json = serde_json::to_string(&Settings::default()).unwrap_or_default();
    serde_json::from_str(&json).unwrap_or(Table(Vec::new()))
}

struct Table(Vec<(String, Node)>);

#[derive(Deserialize)]
#[serde(untagged)]
enum Node {
    Table(Table),
    Value(Value),
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Table;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Table, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Table(entries))
            }
        }
        d.deserialize_map(Entries)
    }
}
