//! The environment layer. A key at the top is `BENCHFLEET_<KEY>`, a key in a section
//! `BENCHFLEET_<SECTION>__<KEY>` (`BENCHFLEET_INGEST__BATCH_SIZE`); the names of [`ALIASES`] are
//! honoured below those.
//!
//! Only names of known keys are read, so other `BENCHFLEET_*` variables (the console's
//! `BENCHFLEET_TOKEN`, the tests' `BENCHFLEET_TEST_DATABASE_URL`, Grafana's `BENCHFLEET_PG_HOST`)
//! do not trouble `deny_unknown_fields`. A name in a known section that names no key there is a
//! typo and refused. Values are parsed by the key's type; an empty value counts as unset.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Metadata, Profile, Provider};
use serde_json::Value;

use super::SettingsError;
use super::schema::{Key, Keys, Kind};

pub(crate) const PREFIX: &str = "BENCHFLEET_";

/// Variable names from before the `BENCHFLEET_<SECTION>__<KEY>` scheme, and the key each sets.
/// The scheme's own name wins when both are set.
pub const ALIASES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("BENCHFLEET_FLEET", "fleet_file"),
    ("BENCHFLEET_API_LISTEN", "api.listen"),
    ("BENCHFLEET_MQTT_LISTEN", "mqtt.listen"),
    ("BENCHFLEET_METRICS_TOKEN", "api.metrics_token"),
];

/// This process's environment (variables that are not UTF-8 are skipped).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The settings found in the environment, as a figment provider whose errors name the variable.
pub(crate) struct Environment {
    tree: serde_json::Map<String, Value>,
    /// Dotted key → the variable it was read from.
    names: Arc<HashMap<String, String>>,
}

impl Environment {
    pub fn new(keys: &Keys, vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        let by_var: HashMap<String, &Key> = keys.keys.iter().map(|k| (k.var(), k)).collect();
        let aliases: HashMap<&str, &str> = ALIASES.iter().copied().collect();
        // Dotted key → (from the scheme, variable, value); the scheme beats an alias.
        let mut found: BTreeMap<String, (bool, String, String)> = BTreeMap::new();
        for (var, value) in vars {
            let (key, scheme) = if let Some(key) = by_var.get(&var) {
                (key.dotted(), true)
            } else if let Some(key) = aliases.get(var.as_str()) {
                ((*key).to_owned(), false)
            } else {
                refuse_typo(keys, &var)?;
                continue;
            };
            if value.is_empty() || found.get(&key).is_some_and(|(s, _, _)| *s && !scheme) {
                continue;
            }
            found.insert(key, (scheme, var, value));
        }
        let mut tree = serde_json::Map::new();
        let mut names = HashMap::new();
        for (dotted, (_, var, raw)) in found {
            let Some(key) = keys.get(&dotted) else { continue };
            let value = parse(&key.kind, &raw).map_err(|reason| SettingsError::Env {
                var: var.clone(),
                reason,
            })?;
            match &key.section {
                Some(section) => {
                    let table = tree
                        .entry(section.clone())
                        .or_insert_with(|| Value::Object(serde_json::Map::new()));
                    if let Value::Object(table) = table {
                        table.insert(key.name.clone(), value);
                    }
                }
                None => {
                    tree.insert(key.name.clone(), value);
                }
            }
            names.insert(dotted, var);
        }
        Ok(Self {
            tree,
            names: Arc::new(names),
        })
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        let names = self.names.clone();
        Metadata::named("environment variable").interpolater(move |_: &Profile, keys: &[&str]| {
            // The key, or an item of a list (`api.trusted_proxies.1`).
            (1..=keys.len())
                .rev()
                .find_map(|n| {
                    let var = names.get(&keys[..n].join("."))?;
                    Some(match keys[n..] {
                        [] => var.clone(),
                        [item] => match item.parse::<usize>() {
                            Ok(i) => format!("{var} (item {})", i + 1),
                            Err(_) => format!("{var} ({item})"),
                        },
                        ref rest => format!("{var} ({})", rest.join(".")),
                    })
                })
                .unwrap_or_else(|| keys.join("."))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::defaults(&self.tree).data()
    }
}

/// `BENCHFLEET_<SECTION>__<NAME>` where the section exists but has no such key.
fn refuse_typo(keys: &Keys, var: &str) -> Result<(), SettingsError> {
    let Some((section, _)) = var.strip_prefix(PREFIX).and_then(|rest| rest.split_once("__")) else {
        return Ok(());
    };
    let section = section.to_lowercase();
    if keys.section_doc(&section).is_none() {
        return Ok(());
    }
    let known: Vec<_> = keys
        .keys
        .iter()
        .filter(|k| k.section.as_deref() == Some(section.as_str()))
        .map(Key::var)
        .collect();
    Err(SettingsError::Env {
        var: var.to_owned(),
        reason: format!("[{section}] has no such setting (it has {})", known.join(", ")),
    })
}

/// Reads `raw` as a value of `kind`. Lists are `a,b` or a TOML array (`["a", "b"]`).
fn parse(kind: &Kind, raw: &str) -> Result<Value, String> {
    let text = raw.trim();
    match kind {
        Kind::Text => Ok(Value::String(raw.to_owned())),
        Kind::Integer => text
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| text.parse::<i64>().map(Value::from))
            .map_err(|_| format!("{raw:?} is not a whole number")),
        Kind::Number => text
            .parse::<f64>()
            .map_err(|_| format!("{raw:?} is not a number"))
            .map(Value::from),
        Kind::Boolean => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("{raw:?} is neither true nor false")),
        },
        Kind::List(item) if text.starts_with('[') => {
            let table: toml::Table =
                toml::from_str(&format!("v = {text}")).map_err(|_| format!("{raw:?} is not a TOML array"))?;
            let list = serde_json::to_value(&table["v"]).map_err(|e| e.to_string())?;
            match list {
                Value::Array(items) if items.iter().all(|v| fits(item, v)) => Ok(Value::Array(items)),
                _ => Err(format!("{raw:?} is not an array of {}", describe(item))),
            }
        }
        Kind::List(item) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| parse(item, s))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
    }
}

fn fits(kind: &Kind, value: &Value) -> bool {
    match kind {
        Kind::Text => value.is_string(),
        Kind::Integer => value.is_i64() || value.is_u64(),
        Kind::Number => value.is_number(),
        Kind::Boolean => value.is_boolean(),
        Kind::List(item) => value.as_array().is_some_and(|a| a.iter().all(|v| fits(item, v))),
    }
}

fn describe(kind: &Kind) -> &'static str {
    match kind {
        Kind::Text => "strings",
        Kind::Integer => "whole numbers",
        Kind::Number => "numbers",
        Kind::Boolean => "booleans",
        Kind::List(_) => "lists",
    }
}
