//! Dashboards: loading, the queries they run, the variables they refer to, and the checks that
//! need query results (column names). The structural check is in `schema`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::provisioning::{Datasource, POSTGRES, PROMETHEUS, files};

/// One dashboard file.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub file: String,
    pub json: Value,
}

impl Dashboard {
    pub fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or_default()
    }

    /// Every panel, the children of rows included.
    pub fn panels(&self) -> Vec<&Value> {
        let mut out = Vec::new();
        for p in self.json["panels"].as_array().into_iter().flatten() {
            out.push(p);
            out.extend(p["panels"].as_array().into_iter().flatten());
        }
        out
    }

    pub fn variables(&self) -> Vec<&Value> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .collect()
    }

    pub fn variable(&self, name: &str) -> Option<&Value> {
        self.variables().into_iter().find(|v| v["name"] == name)
    }
}

/// Reads every `dashboards/*.json`; a file that does not parse is a failure right away.
pub fn load(dir: &Path) -> Vec<Dashboard> {
    files(&dir.join("dashboards"), &["json"])
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Dashboard { file, json }
        })
        .collect()
}

/// The query language of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Sql,
    PromQl,
}

/// One query a dashboard runs: a panel target or a query variable.
#[derive(Debug, Clone)]
pub struct Query {
    pub file: String,
    /// None for a variable's query.
    pub panel_id: Option<i64>,
    pub panel_type: String,
    pub title: String,
    pub ref_id: String,
    pub lang: Lang,
    pub text: String,
    /// SQL: `table` or `time_series`.
    pub format: String,
    /// The panel's relative time override (`timeFrom`, e.g. `1y`).
    pub time_from: Option<String>,
}

impl Query {
    /// Where the query is, for messages.
    pub fn label(&self) -> String {
        match self.panel_id {
            Some(id) => format!("{} panel {id} {:?} ({})", self.file, self.title, self.ref_id),
            None => format!("{} variable ${}", self.file, self.title),
        }
    }
}

/// Every panel target and query variable of `dashboards`, by the language of its data source.
pub fn queries(dashboards: &[Dashboard], datasources: &[Datasource]) -> Vec<Query> {
    let lang = |ds: &Value| {
        let uid = ds["uid"].as_str()?;
        let d = datasources.iter().find(|d| d.uid == uid)?;
        match d.kind.as_str() {
            PROMETHEUS => Some(Lang::PromQl),
            POSTGRES => Some(Lang::Sql),
            _ => None,
        }
    };
    let mut out = Vec::new();
    for d in dashboards {
        for p in d.panels() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let ds = if t["datasource"].is_object() {
                    &t["datasource"]
                } else {
                    &p["datasource"]
                };
                let Some(lang) = lang(ds) else { continue };
                let text = match lang {
                    Lang::Sql => &t["rawSql"],
                    Lang::PromQl => &t["expr"],
                };
                out.push(Query {
                    file: d.file.clone(),
                    panel_id: p["id"].as_i64(),
                    panel_type: p["type"].as_str().unwrap_or_default().to_owned(),
                    title: p["title"].as_str().unwrap_or_default().to_owned(),
                    ref_id: t["refId"].as_str().unwrap_or_default().to_owned(),
                    lang,
                    text: text.as_str().unwrap_or_default().to_owned(),
                    format: t["format"].as_str().unwrap_or_default().to_owned(),
                    time_from: p["timeFrom"].as_str().map(str::to_owned),
                });
            }
        }
        for v in d.variables().into_iter().filter(|v| v["type"] == "query") {
            let Some(lang) = lang(&v["datasource"]) else { continue };
            out.push(Query {
                file: d.file.clone(),
                panel_id: None,
                panel_type: "variable".into(),
                title: v["name"].as_str().unwrap_or_default().to_owned(),
                ref_id: String::new(),
                lang,
                text: variable_query(v).to_owned(),
                format: "table".into(),
                time_from: None,
            });
        }
    }
    out
}

/// A query variable's query: a string, or `{ "query": ... }` in newer exports.
pub fn variable_query(v: &Value) -> &str {
    v["query"]
        .as_str()
        .or_else(|| v["query"]["query"].as_str())
        .unwrap_or_default()
}

/// Every string inside `v`.
pub fn strings_in<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|v| strings_in(v, out)),
        Value::Object(o) => o.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

/// The variable names `s` refers to, in Grafana's three syntaxes: `$name`, `${name}` (also
/// `${name:format}` and `${name.path}`) and `[[name]]`.
pub fn variable_refs(s: &str) -> Vec<String> {
    let word = |s: &str| {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if let Some(inner) = rest.strip_prefix("${") {
            let name = word(inner);
            i += 2 + name.len();
            out.push(name);
        } else if let Some(inner) = rest.strip_prefix('$') {
            let name = word(inner);
            i += 1 + name.len();
            if !name.is_empty() {
                out.push(name);
            }
        } else if let Some(inner) = rest.strip_prefix("[[") {
            let name = word(inner);
            i += 2 + name.len();
            out.push(name);
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// A Grafana duration: a number and one of s, m, h, d, w, M (30 days), y (365 days).
pub fn parse_duration(s: &str) -> Option<chrono::Duration> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = s[..unit_at].parse().ok()?;
    let secs = match &s[unit_at..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return None,
    };
    Some(chrono::Duration::seconds(n * secs))
}

/// `now` or `now-<duration>`, as the offset back from now.
pub fn parse_relative_time(s: &str) -> Option<chrono::Duration> {
    match s {
        "now" => Some(chrono::Duration::zero()),
        _ => parse_duration(s.strip_prefix("now-")?),
    }
}

/// The panels of one dashboard, by id, for the checks that need query results.
pub fn panels_by_id(d: &Dashboard) -> BTreeMap<i64, &Value> {
    d.panels()
        .into_iter()
        .filter_map(|p| Some((p["id"].as_i64()?, p)))
        .collect()
}

/// What `panel` refers to by column name that its SQL results (the union of `columns` over its
/// targets) do not have: field overrides, geomap fields, reduced fields, data links, table sorting.
pub fn check_columns(panel: &Value, columns: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut needed: Vec<(String, String)> = Vec::new();
    let mut need = |what: &str, name: &str| needed.push((what.to_owned(), name.to_owned()));
    let overrides = panel["fieldConfig"]["overrides"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut display_names: BTreeSet<String> = columns.clone();
    for o in &overrides {
        if o["matcher"]["id"] == "byName" {
            need("a field override", o["matcher"]["options"].as_str().unwrap_or_default());
        }
        for p in o["properties"].as_array().into_iter().flatten() {
            if p["id"] == "displayName"
                && let Some(n) = p["value"].as_str()
            {
                display_names.insert(n.to_owned());
            }
        }
    }
    let options = &panel["options"];
    for layer in options["layers"].as_array().into_iter().flatten() {
        for key in ["latitude", "longitude"] {
            if let Some(f) = layer["location"][key].as_str() {
                need("the geomap location", f);
            }
        }
        let style = &layer["config"]["style"];
        for dim in ["color", "size", "text"] {
            if let Some(f) = style[dim]["field"].as_str().filter(|f| !f.is_empty()) {
                need(&format!("the geomap {dim}"), f);
            }
        }
    }
    if let Some(re) = options["reduceOptions"]["fields"].as_str().filter(|f| !f.is_empty()) {
        match re.strip_prefix("/^").and_then(|r| r.strip_suffix("$/")) {
            Some(name) => need("reduceOptions.fields", name),
            None => problems.push(format!("reduceOptions.fields {re:?}: use /^column$/")),
        }
    }
    let mut strings = Vec::new();
    strings_in(&panel["fieldConfig"], &mut strings);
    for s in strings {
        let mut rest = s;
        while let Some(i) = rest.find("${__data.fields.") {
            let after = &rest[i + "${__data.fields.".len()..];
            let end = after.find('}').unwrap_or(after.len());
            need("a data link", &after[..end]);
            rest = &after[end..];
        }
    }
    for s in options["sortBy"].as_array().into_iter().flatten() {
        let name = s["displayName"].as_str().unwrap_or_default();
        if !display_names.contains(name) {
            problems.push(format!(
                "sortBy names {name:?}, which is neither a column nor a display name"
            ));
        }
    }
    for (what, name) in needed {
        if !columns.contains(&name) {
            problems.push(format!("{what} names column {name:?}, which the query does not return"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_references_in_all_syntaxes() {
        assert_eq!(
            variable_refs("a $bench ${municipality:csv} [[old]] ${__data.fields.x} $__timeFilter(ts) 5$"),
            ["bench", "municipality", "old", "__data", "__timeFilter"]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1y"), Some(chrono::Duration::days(365)));
        assert_eq!(parse_relative_time("now-24h"), Some(chrono::Duration::hours(24)));
        assert_eq!(parse_relative_time("now/d"), None);
        assert_eq!(parse_duration("5 m"), None);
    }
}
