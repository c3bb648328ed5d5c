//! The files under `grafana/`: provisioning YAML (read as JSON values), dashboards, and the checks
//! on the provisioning itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// The repository's `grafana/` directory.
pub fn grafana_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../grafana")
}

/// A YAML document as a JSON value, so one set of helpers reads both formats.
pub fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: expected one YAML document", path.display());
    to_json(&docs[0]).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("not a finite number: {r}"))?,
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                if m.insert(key.clone(), to_json(v)?).is_some() {
                    return Err(format!("duplicate key {key}"));
                }
            }
            Value::Object(m)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err(format!("unsupported YAML node {y:?}")),
    })
}

/// A provisioned data source: what panels may refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct Datasource {
    pub uid: String,
    pub kind: String,
    /// `jsonData`, e.g. `timeInterval` and `timescaledb`.
    pub json_data: Value,
}

/// The data source types the dashboards are written for.
pub const PROMETHEUS: &str = "prometheus";
pub const POSTGRES: &str = "grafana-postgresql-datasource";

/// Reads and checks `provisioning/datasources/*.yaml`; returns the data sources and the problems.
pub fn datasources(dir: &Path) -> (Vec<Datasource>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for path in files(&dir.join("provisioning/datasources"), &["yaml", "yml"]) {
        let doc = read_yaml(&path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut p = |m: String| problems.push(format!("{name}: {m}"));
        if doc["apiVersion"] != 1 {
            p("apiVersion must be 1".into());
        }
        let Some(list) = doc["datasources"].as_array() else {
            p("no datasources list".into());
            continue;
        };
        for ds in list {
            let uid = ds["uid"].as_str().unwrap_or_default().to_owned();
            let kind = ds["type"].as_str().unwrap_or_default().to_owned();
            if uid.is_empty() || ds["name"].as_str().is_none_or(str::is_empty) {
                p(format!("a data source without uid or name: {ds}"));
            }
            if ![PROMETHEUS, POSTGRES].contains(&kind.as_str()) {
                p(format!("data source {uid}: unexpected type {kind:?}"));
            }
            if out.iter().any(|d: &Datasource| d.uid == uid) {
                p(format!("data source uid {uid} appears twice"));
            }
            // Hosts, users and secrets come from the environment, never from this file.
            for key in ["url", "user"] {
                if let Some(v) = ds[key].as_str()
                    && !is_env_ref(v)
                {
                    p(format!(
                        "data source {uid}: {key} must be an environment variable, not {v:?}"
                    ));
                }
            }
            for (key, v) in ds["secureJsonData"].as_object().into_iter().flatten() {
                if !v.as_str().is_some_and(is_env_ref) {
                    p(format!(
                        "data source {uid}: secureJsonData.{key} must be an environment variable"
                    ));
                }
            }
            if kind == POSTGRES {
                if ds["jsonData"]["timescaledb"] != false {
                    // The SQL is written and tested for the plain-SQL form of $__timeGroup.
                    p(format!("data source {uid}: jsonData.timescaledb must be false"));
                }
                if !ds["secureJsonData"]["password"].is_string() {
                    p(format!("data source {uid}: no password from the environment"));
                }
            }
            out.push(Datasource {
                uid,
                kind,
                json_data: ds["jsonData"].clone(),
            });
        }
    }
    if out.is_empty() {
        problems.push("no data source is provisioned".into());
    }
    (out, problems)
}

/// Checks `provisioning/dashboards/*.yaml`.
pub fn dashboard_providers(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let paths = files(&dir.join("provisioning/dashboards"), &["yaml", "yml"]);
    if paths.is_empty() {
        problems.push("no dashboard provider is provisioned".into());
    }
    for path in paths {
        let doc = read_yaml(&path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if doc["apiVersion"] != 1 {
            problems.push(format!("{name}: apiVersion must be 1"));
        }
        for prov in doc["providers"].as_array().into_iter().flatten() {
            if prov["type"] != "file" || !prov["options"]["path"].as_str().is_some_and(|p| p.starts_with('/')) {
                problems.push(format!(
                    "{name}: provider must be type file with an absolute options.path: {prov}"
                ));
            }
            if prov["allowUiUpdates"] != false {
                problems.push(format!(
                    "{name}: allowUiUpdates must be false (the files are the source)"
                ));
            }
        }
    }
    problems
}

/// `${VAR}` or `$VAR`, the forms Grafana expands in provisioning files.
fn is_env_ref(v: &str) -> bool {
    let name = v
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| v.strip_prefix('$'));
    name.is_some_and(|n| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// Every environment variable the provisioning files use (in values, not comments).
pub fn env_vars(dir: &Path) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) => {
                let mut rest = s.as_str();
                while let Some(i) = rest.find("${") {
                    let after = &rest[i + 2..];
                    let end = after.find('}').unwrap_or(after.len());
                    out.insert(after[..end].to_owned());
                    rest = &after[end..];
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            Value::Object(o) => o.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut vars = BTreeSet::new();
    for sub in ["provisioning/datasources", "provisioning/dashboards"] {
        for path in files(&dir.join(sub), &["yaml", "yml"]) {
            walk(&read_yaml(&path), &mut vars);
        }
    }
    vars
}

/// The files directly in `dir` with one of `exts`, sorted.
pub fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_refs_are_recognised() {
        assert!(is_env_ref("${BENCHFLEET_PG_HOST}"));
        assert!(is_env_ref("$BENCHFLEET_PG_HOST"));
        assert!(!is_env_ref("db.example:5432"));
        assert!(!is_env_ref("${lower}"));
        assert!(!is_env_ref("prefix-${X}"));
    }

    #[test]
    fn yaml_becomes_json() {
        let docs = YamlLoader::load_from_str("a: 1\nb: [x, 2.5, true, ~]\n").unwrap();
        assert_eq!(
            to_json(&docs[0]).unwrap(),
            serde_json::json!({"a": 1, "b": ["x", 2.5, true, null]})
        );
    }
}
