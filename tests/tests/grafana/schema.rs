//! Grafana's dashboard model (schemaVersion 39, Grafana 11), checked strictly: closed key sets
//! (a typo is an error, not an ignored field), known panel types, units, reducers and colour
//! modes, unique panel ids and titles, a 24-column grid without overlaps, data sources that exist
//! in provisioning, template variables that are defined and used, and links to dashboards that
//! exist. What needs query results (column names) is in `dashboard::check_columns`.
//!
//! The vocabularies are whitespace-separated lists, as Grafana spells them.

use std::collections::BTreeSet;

use serde_json::Value;

use super::dashboard::{Dashboard, parse_duration, parse_relative_time, strings_in, variable_query, variable_refs};
use super::provisioning::{Datasource, POSTGRES, PROMETHEUS};

/// Whether the whitespace-separated `list` holds `item`.
fn known(list: &str, item: &str) -> bool {
    list.split_whitespace().any(|x| x == item)
}

const DASHBOARD_KEYS: &str = concat!(
    "annotations description editable fiscalYearStartMonth gnetId graphTooltip id links liveNow ",
    "panels refresh revision schemaVersion tags templating time timepicker timezone title uid version ",
    "weekStart"
);
const PANEL_KEYS: &str = concat!(
    "cacheTimeout collapsed datasource description fieldConfig gridPos hideTimeOverride id interval ",
    "libraryPanel links maxDataPoints maxPerRow options panels pluginVersion queryCachingTTL repeat ",
    "repeatDirection targets timeFrom timeShift title transformations transparent type"
);
const PROMETHEUS_TARGET_KEYS: &str = concat!(
    "datasource editorMode exemplar expr format hide instant interval intervalFactor legendFormat ",
    "range refId"
);
const SQL_TARGET_KEYS: &str = "datasource editorMode format hide rawQuery rawSql refId";
const VARIABLE_KEYS: &str = concat!(
    "allValue current datasource definition description hide includeAll label multi name options ",
    "query refresh regex skipUrlSync sort type"
);
const FIELD_CONFIG_KEYS: &str = concat!(
    "color custom decimals description displayName displayNameFromDS filterable links mappings max ",
    "min noValue thresholds unit"
);
/// Grafana 11's built-in panel plugins.
const PANEL_TYPES: &str = concat!(
    "alertlist annolist barchart bargauge candlestick canvas dashlist datagrid flamegraph gauge ",
    "geomap heatmap histogram logs news nodeGraph piechart row stat state-timeline status-history ",
    "table text timeseries traces trend xychart"
);
/// Panels that show no query results.
const PANELS_WITHOUT_QUERIES: &str = "alertlist annolist dashlist news row text";
/// Unit ids from Grafana's value formats (the categories this project can use).
const UNITS: &str = concat!(
    "none short string percent percentunit humidity dB dBm locale bits bytes kbytes mbytes gbytes ",
    "decbits decbytes deckbytes decmbytes decgbytes pps bps Bps KBs Kbits MBs Mbits dateTimeAsIso ",
    "dateTimeAsIsoNoDateIfToday dateTimeFromNow watt kwatt mwatt watth kwatth amph mamph amp mamp ",
    "volt mvolt celsius hertz ns µs ms s m h d dtdurationms dtdurations dthms dtdhms clockms clocks ",
    "cps ops reqps rps wps cpm opm rpm wpm"
);
const REDUCERS: &str = concat!(
    "allIsNull allIsZero allValues changeCount count delta diff diffperc distinctCount first ",
    "firstNotNull last lastNotNull logmin max mean median min range step sum uniqueValues variance ",
    "stdDev"
);
const COLOR_MODES: &str = concat!(
    "fixed shades thresholds palette-classic palette-classic-by-name continuous-GrYlRd ",
    "continuous-RdYlGr continuous-BlYlRd continuous-YlRd continuous-BlPu continuous-YlBl ",
    "continuous-blues continuous-reds continuous-greens continuous-purples continuous-viridis"
);
const MATCHERS: &str = "byName byRegexp byType byFrameRefID byValue";
const CELL_TYPES: &str = "auto color-text color-background gauge json-view image data-links sparkline";
/// Names after `$` that Grafana itself defines: global variables and the SQL macros.
pub const BUILT_INS: &str = concat!(
    "__all __dashboard __data __field __from __interval __interval_ms __org __range __range_ms ",
    "__range_s __rate_interval __rate_interval_ms __series __timezone __to __url_time_range __user ",
    "__value __time __timeEpoch __timeFilter __timeFrom __timeTo __timeGroup __timeGroupAlias ",
    "__unixEpochFilter __unixEpochFrom __unixEpochTo __unixEpochGroup __unixEpochGroupAlias"
);

/// Everything wrong with `dashboards` that can be seen without running their queries.
pub fn validate(dashboards: &[Dashboard], datasources: &[Datasource]) -> Vec<String> {
    let mut problems = Vec::new();
    let uids: BTreeSet<&str> = dashboards.iter().map(Dashboard::uid).collect();
    if uids.len() != dashboards.len() {
        problems.push("two dashboards share a uid".into());
    }
    let titles: BTreeSet<&str> = dashboards.iter().filter_map(|d| d["title"].as_str()).collect();
    if titles.len() != dashboards.len() {
        problems.push("two dashboards share a title".into());
    }
    let all_tags: BTreeSet<&str> = dashboards
        .iter()
        .flat_map(|d| d["tags"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    for d in dashboards {
        let mut c = Checker {
            file: &d.file,
            datasources,
            dashboard_uids: &uids,
            problems: Vec::new(),
        };
        c.dashboard(d, &all_tags);
        problems.extend(c.problems);
    }
    problems
}

impl std::ops::Index<&str> for Dashboard {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        &self.json[key]
    }
}

struct Checker<'a> {
    file: &'a str,
    datasources: &'a [Datasource],
    dashboard_uids: &'a BTreeSet<&'a str>,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn problem(&mut self, at: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{} {at}: {msg}", self.file));
    }

    fn keys(&mut self, at: &str, v: &Value, allowed: &str) {
        let Some(obj) = v.as_object() else {
            self.problem(at, "is not an object");
            return;
        };
        for k in obj.keys() {
            if !known(allowed, k) {
                self.problem(at, format!("unknown key {k:?}"));
            }
        }
    }

    fn dashboard(&mut self, d: &Dashboard, all_tags: &BTreeSet<&str>) {
        let j = &d.json;
        self.keys("dashboard", j, DASHBOARD_KEYS);
        let uid = d.uid();
        if uid.is_empty() || uid.len() > 40 || !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            self.problem("uid", format!("{uid:?} is not a valid uid (1-40 of [A-Za-z0-9_-])"));
        }
        if !j["id"].is_null() {
            self.problem("id", "must be null in a provisioned dashboard");
        }
        for key in ["title", "description"] {
            if j[key].as_str().is_none_or(str::is_empty) {
                self.problem(key, "missing");
            }
        }
        if j["schemaVersion"] != 39 {
            self.problem("schemaVersion", "must be 39 (Grafana 11)");
        }
        if j["editable"] != false {
            self.problem(
                "editable",
                "must be false: provisioned dashboards change in the JSON files",
            );
        }
        for key in ["from", "to"] {
            if j["time"][key].as_str().and_then(parse_relative_time).is_none() {
                self.problem("time", format!("{key} is not now or now-<duration>"));
            }
        }
        if !j["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "benchfleet"))
        {
            self.problem(
                "tags",
                "must include benchfleet (the dashboards link to each other by tag)",
            );
        }
        self.dashboard_links(j, all_tags);
        let variables = self.variables(d);
        let panels = d.panels();
        let mut ids = BTreeSet::new();
        let mut titles = BTreeSet::new();
        for p in &panels {
            if !titles.insert(p["title"].as_str().unwrap_or_default()) {
                self.problem("panels", format!("two panels are titled {}", p["title"]));
            }
            let id = p["id"].as_i64().unwrap_or(0);
            if id < 1 || !ids.insert(id) {
                self.problem("panels", format!("panel id {} is missing or not unique", p["id"]));
            }
            self.panel(p);
        }
        // Rows that are collapsed hold their panels outside the grid until opened.
        let top: Vec<&Value> = j["panels"].as_array().into_iter().flatten().collect();
        self.grid(&top);
        self.variable_references(d, &variables);
    }

    fn dashboard_links(&mut self, j: &Value, all_tags: &BTreeSet<&str>) {
        for l in j["links"].as_array().into_iter().flatten() {
            match l["type"].as_str() {
                Some("dashboards") => {
                    for t in l["tags"].as_array().into_iter().flatten() {
                        if !t.as_str().is_some_and(|t| all_tags.contains(t)) {
                            self.problem("links", format!("no dashboard has tag {t}"));
                        }
                    }
                }
                Some("link") => self.url("links", l["url"].as_str().unwrap_or_default()),
                other => self.problem("links", format!("unknown link type {other:?}")),
            }
        }
    }

    /// A link inside Grafana must name a dashboard that exists.
    fn url(&mut self, at: &str, url: &str) {
        if let Some(rest) = url.strip_prefix("/d/") {
            let uid = rest.split(['/', '?']).next().unwrap_or_default();
            if !self.dashboard_uids.contains(uid) {
                self.problem(at, format!("link to dashboard {uid:?}, which does not exist"));
            }
        } else if !url.starts_with("https://") {
            self.problem(at, format!("link {url:?} is neither /d/<uid>/... nor https://"));
        }
    }

    fn datasource(&mut self, at: &str, ds: &Value) -> Option<String> {
        self.keys(&format!("{at} datasource"), ds, "type uid");
        let uid = ds["uid"].as_str().unwrap_or_default();
        let Some(d) = self.datasources.iter().find(|d| d.uid == uid) else {
            self.problem(at, format!("data source uid {uid:?} is not provisioned"));
            return None;
        };
        if ds["type"] != d.kind.as_str() {
            self.problem(at, format!("data source {uid} has type {}, not {}", d.kind, ds["type"]));
        }
        Some(d.kind.clone())
    }

    fn variables(&mut self, d: &Dashboard) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for v in d.variables() {
            let name = v["name"].as_str().unwrap_or_default().to_owned();
            let at = format!("variable {name:?}");
            self.keys(&at, v, VARIABLE_KEYS);
            if name.is_empty() || name.starts_with("__") || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                self.problem(&at, "invalid name");
            }
            if !names.insert(name.clone()) {
                self.problem(&at, "defined twice");
            }
            match v["type"].as_str() {
                Some("query") => {
                    self.datasource(&at, &v["datasource"]);
                    if variable_query(v).trim().is_empty() {
                        self.problem(&at, "empty query");
                    }
                    if ![1, 2].contains(&v["refresh"].as_i64().unwrap_or(0)) {
                        self.problem(&at, "refresh must be 1 (on load) or 2 (on time change)");
                    }
                }
                Some("custom" | "constant" | "interval" | "textbox") => {}
                other => self.problem(&at, format!("unsupported type {other:?}")),
            }
            for key in ["multi", "includeAll"] {
                if !v[key].is_boolean() {
                    self.problem(&at, format!("{key} must be a boolean"));
                }
            }
            if !v["current"].is_object() {
                self.problem(&at, "no current value");
            }
        }
        names
    }

    /// Every `$name` is defined or built in, and every defined variable is used.
    fn variable_references(&mut self, d: &Dashboard, defined: &BTreeSet<String>) {
        let mut used = BTreeSet::new();
        let mut strings = Vec::new();
        strings_in(&d.json["panels"], &mut strings);
        strings_in(&d.json["links"], &mut strings);
        strings_in(&d.json["title"], &mut strings);
        for v in d.variables() {
            // A variable's own current value ($__all) is not a reference.
            strings_in(&v["query"], &mut strings);
            strings_in(&v["definition"], &mut strings);
        }
        for s in strings {
            for name in variable_refs(s) {
                if defined.contains(&name) {
                    used.insert(name);
                } else if !known(BUILT_INS, &name) {
                    self.problem("variables", format!("${name} is not defined (in {s:?})"));
                }
            }
        }
        for name in defined.difference(&used) {
            self.problem("variables", format!("${name} is defined but never used"));
        }
    }

    fn grid(&mut self, panels: &[&Value]) {
        let mut placed: Vec<(i64, [i64; 4])> = Vec::new();
        for p in panels {
            let id = p["id"].as_i64().unwrap_or(0);
            let g = &p["gridPos"];
            self.keys(&format!("panel {id} gridPos"), g, "h w x y");
            let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| g[k].as_i64().unwrap_or(-1));
            if h < 1 || w < 1 || x < 0 || y < 0 || x + w > 24 {
                self.problem(
                    &format!("panel {id}"),
                    format!("gridPos {g} is outside the 24-column grid"),
                );
                continue;
            }
            for &(other, [oh, ow, ox, oy]) in &placed {
                if x < ox + ow && ox < x + w && y < oy + oh && oy < y + h {
                    self.problem(&format!("panel {id}"), format!("overlaps panel {other}"));
                }
            }
            placed.push((id, [h, w, x, y]));
        }
    }

    fn panel(&mut self, p: &Value) {
        let id = p["id"].as_i64().unwrap_or(0);
        let at = format!("panel {id}");
        self.keys(&at, p, PANEL_KEYS);
        let kind = p["type"].as_str().unwrap_or_default();
        if !known(PANEL_TYPES, kind) {
            self.problem(&at, format!("unknown panel type {kind:?}"));
        }
        if p["title"].as_str().is_none_or(str::is_empty) {
            self.problem(&at, "no title");
        }
        if kind != "row" && p["description"].as_str().is_none_or(str::is_empty) {
            self.problem(&at, "no description: say what the panel shows and how to read it");
        }
        if let Some(t) = p.get("timeFrom")
            && t.as_str().is_none_or(|t| parse_duration(t).is_none())
        {
            self.problem(&at, format!("timeFrom {t} is not a duration"));
        }
        if known(PANELS_WITHOUT_QUERIES, kind) {
            if p["targets"].as_array().is_some_and(|t| !t.is_empty()) {
                self.problem(&at, "has targets but shows none");
            }
            return;
        }
        let kind_of_ds = self.datasource(&at, &p["datasource"]);
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            self.problem(&at, "no targets");
        }
        let mut refs = BTreeSet::new();
        for t in &targets {
            let r = t["refId"].as_str().unwrap_or_default();
            let tat = format!("{at} target {r}");
            if r.is_empty() || !refs.insert(r.to_owned()) {
                self.problem(&tat, "refId missing or not unique");
            }
            if t["datasource"] != p["datasource"] {
                self.problem(&tat, "data source differs from the panel's (mixed panels are not used)");
            }
            match kind_of_ds.as_deref() {
                Some(PROMETHEUS) => {
                    self.keys(&tat, t, PROMETHEUS_TARGET_KEYS);
                    if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                        self.problem(&tat, "empty expr");
                    }
                    if !t["legendFormat"].is_string() {
                        self.problem(&tat, "no legendFormat");
                    }
                    if t["range"] != true && t["instant"] != true {
                        self.problem(&tat, "neither range nor instant");
                    }
                }
                Some(POSTGRES) => {
                    self.keys(&tat, t, SQL_TARGET_KEYS);
                    if t["rawSql"].as_str().is_none_or(|e| e.trim().is_empty()) {
                        self.problem(&tat, "empty rawSql");
                    }
                    if t["rawQuery"] != true || t["editorMode"] != "code" {
                        self.problem(&tat, "must be a raw query in code mode (rawQuery, editorMode code)");
                    }
                    if !["table", "time_series"].contains(&t["format"].as_str().unwrap_or_default()) {
                        self.problem(&tat, "format must be table or time_series");
                    }
                }
                _ => {}
            }
        }
        self.field_config(&at, &p["fieldConfig"], &refs);
        self.options(&at, kind, &p["options"]);
        for l in p["links"].as_array().into_iter().flatten() {
            self.url(&at, l["url"].as_str().unwrap_or_default());
        }
    }

    fn field_config(&mut self, at: &str, fc: &Value, refs: &BTreeSet<String>) {
        self.keys(&format!("{at} fieldConfig"), fc, "defaults overrides");
        let defaults = &fc["defaults"];
        self.keys(&format!("{at} fieldConfig.defaults"), defaults, FIELD_CONFIG_KEYS);
        if let Some(obj) = defaults.as_object() {
            for (k, v) in obj {
                self.property(&format!("{at} fieldConfig.defaults"), k, v);
            }
        }
        let Some(overrides) = fc["overrides"].as_array() else {
            self.problem(at, "fieldConfig.overrides must be a list");
            return;
        };
        for o in overrides {
            let oat = format!("{at} override {}", o["matcher"]);
            self.keys(&oat, o, "matcher properties");
            self.keys(&oat, &o["matcher"], "id options");
            let matcher = o["matcher"]["id"].as_str().unwrap_or_default();
            if !known(MATCHERS, matcher) {
                self.problem(&oat, format!("unknown matcher {matcher:?}"));
            }
            if matcher == "byFrameRefID" && !o["matcher"]["options"].as_str().is_some_and(|r| refs.contains(r)) {
                self.problem(&oat, "names a refId the panel does not have");
            }
            for prop in o["properties"].as_array().into_iter().flatten() {
                self.keys(&oat, prop, "id value");
                let id = prop["id"].as_str().unwrap_or_default();
                let base = id.strip_prefix("custom.").map_or(id, |_| "custom");
                if !known(FIELD_CONFIG_KEYS, base) {
                    self.problem(&oat, format!("unknown property {id:?}"));
                }
                self.property(&oat, id, &prop["value"]);
            }
        }
    }

    /// One field-config value, in the defaults or in an override.
    fn property(&mut self, at: &str, id: &str, v: &Value) {
        match id {
            "unit" => {
                if !v.as_str().is_some_and(|u| known(UNITS, u)) {
                    self.problem(at, format!("unknown unit {v}"));
                }
            }
            "min" | "max" => {
                if !v.is_number() {
                    self.problem(at, format!("{id} must be a number"));
                }
            }
            "decimals" => {
                if v.as_u64().is_none_or(|d| d > 10) {
                    self.problem(at, "decimals must be 0-10");
                }
            }
            "displayName" | "noValue" => {
                if !v.is_string() {
                    self.problem(at, format!("{id} must be a string"));
                }
            }
            "thresholds" => self.thresholds(at, v),
            "mappings" => self.mappings(at, v),
            "color" => self.color(at, v),
            "links" => {
                for l in v.as_array().into_iter().flatten() {
                    self.keys(&format!("{at} link"), l, "title url targetBlank");
                    self.url(at, l["url"].as_str().unwrap_or_default());
                }
            }
            "custom" => {
                if let Some(obj) = v.as_object() {
                    for (k, v) in obj {
                        self.custom(at, k, v);
                    }
                }
            }
            _ => {
                if let Some(k) = id.strip_prefix("custom.") {
                    self.custom(at, k, v);
                }
            }
        }
    }

    /// The enumerations of the `custom` field config of timeseries, tables and state timelines.
    fn custom(&mut self, at: &str, key: &str, v: &Value) {
        let allowed: &[&str] = match key {
            "drawStyle" => &["line", "bars", "points"],
            "showPoints" => &["auto", "never", "always"],
            "axisPlacement" => &["auto", "left", "right", "hidden"],
            "align" => &["auto", "left", "center", "right"],
            "stacking" => {
                if !["none", "normal", "percent"].contains(&v["mode"].as_str().unwrap_or_default()) {
                    self.problem(at, format!("stacking mode {}", v["mode"]));
                }
                return;
            }
            "thresholdsStyle" => {
                let modes = ["off", "line", "dashed", "area", "line+area", "dashed+area"];
                if !modes.contains(&v["mode"].as_str().unwrap_or_default()) {
                    self.problem(at, format!("thresholdsStyle mode {}", v["mode"]));
                }
                return;
            }
            "cellOptions" => {
                if !known(CELL_TYPES, v["type"].as_str().unwrap_or_default()) {
                    self.problem(at, format!("cell type {}", v["type"]));
                }
                return;
            }
            _ => return,
        };
        if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
            self.problem(at, format!("custom.{key} {v} is not one of {allowed:?}"));
        }
    }

    fn thresholds(&mut self, at: &str, v: &Value) {
        if !["absolute", "percentage"].contains(&v["mode"].as_str().unwrap_or_default()) {
            self.problem(at, "thresholds mode must be absolute or percentage");
        }
        let steps = v["steps"].as_array().cloned().unwrap_or_default();
        if steps.first().is_none_or(|s| !s["value"].is_null()) {
            self.problem(at, "the first threshold step must have value null (the base)");
        }
        let mut last = f64::NEG_INFINITY;
        for s in steps.iter().skip(1) {
            match s["value"].as_f64() {
                Some(x) if x > last => last = x,
                _ => self.problem(at, format!("threshold steps must ascend: {}", s["value"])),
            }
        }
        for s in &steps {
            if s["color"].as_str().is_none_or(str::is_empty) {
                self.problem(at, "a threshold step without colour");
            }
        }
    }

    fn mappings(&mut self, at: &str, v: &Value) {
        let Some(list) = v.as_array() else {
            self.problem(at, "mappings must be a list");
            return;
        };
        for m in list {
            match m["type"].as_str() {
                Some("value") => {
                    for (k, o) in m["options"].as_object().into_iter().flatten() {
                        self.keys(&format!("{at} mapping {k}"), o, "text color index icon");
                    }
                }
                Some("range" | "regex" | "special") => {
                    if !m["options"]["result"].is_object() {
                        self.problem(at, "mapping without result");
                    }
                }
                other => self.problem(at, format!("unknown mapping type {other:?}")),
            }
        }
    }

    fn color(&mut self, at: &str, v: &Value) {
        let mode = v["mode"].as_str().unwrap_or_default();
        if !known(COLOR_MODES, mode) {
            self.problem(at, format!("unknown colour mode {mode:?}"));
        }
        if ["fixed", "shades"].contains(&mode) && v["fixedColor"].as_str().is_none_or(str::is_empty) {
            self.problem(at, "a fixed colour needs fixedColor");
        }
    }

    fn options(&mut self, at: &str, kind: &str, o: &Value) {
        match kind {
            "stat" | "bargauge" | "gauge" => {
                let r = &o["reduceOptions"];
                self.keys(&format!("{at} reduceOptions"), r, "values calcs fields limit");
                for c in r["calcs"].as_array().into_iter().flatten() {
                    if !c.as_str().is_some_and(|c| known(REDUCERS, c)) {
                        self.problem(at, format!("unknown reducer {c}"));
                    }
                }
                if r["values"] == false && r["calcs"].as_array().is_none_or(Vec::is_empty) {
                    self.problem(at, "reduceOptions: one value per series needs a reducer in calcs");
                }
            }
            "timeseries" | "state-timeline" | "barchart" => {
                if kind == "barchart" {
                    for (key, allowed) in [
                        ("orientation", &["auto", "horizontal", "vertical"][..]),
                        ("stacking", &["none", "normal", "percent"]),
                        ("showValue", &["auto", "always", "never"]),
                    ] {
                        if !allowed.contains(&o[key].as_str().unwrap_or_default()) {
                            self.problem(at, format!("barchart {key} {} is not one of {allowed:?}", o[key]));
                        }
                    }
                }
                if !["list", "table", "hidden"].contains(&o["legend"]["displayMode"].as_str().unwrap_or_default()) {
                    self.problem(at, "legend.displayMode must be list, table or hidden");
                }
                if !["single", "multi", "none"].contains(&o["tooltip"]["mode"].as_str().unwrap_or_default()) {
                    self.problem(at, "tooltip.mode must be single, multi or none");
                }
            }
            "geomap" => {
                let layers = o["layers"].as_array().cloned().unwrap_or_default();
                if layers.is_empty() {
                    self.problem(at, "a geomap without data layers");
                }
                for l in &layers {
                    if !["markers", "heatmap", "route", "photos", "network"]
                        .contains(&l["type"].as_str().unwrap_or_default())
                    {
                        self.problem(at, format!("unknown geomap layer type {}", l["type"]));
                    }
                    let loc = &l["location"];
                    match loc["mode"].as_str() {
                        Some("coords") => {
                            if !loc["latitude"].is_string() || !loc["longitude"].is_string() {
                                self.problem(at, "coords location needs latitude and longitude fields");
                            }
                        }
                        Some("auto" | "geohash" | "lookup") => {}
                        other => self.problem(at, format!("unknown location mode {other:?}")),
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn datasources() -> Vec<Datasource> {
        vec![Datasource {
            uid: "prom".into(),
            kind: PROMETHEUS.into(),
            json_data: json!({}),
        }]
    }

    fn stat(id: i64, x: i64, y: i64, expr: &str) -> Value {
        json!({
            "id": id, "type": "stat", "title": format!("t{id}{x}{y}"), "description": "d",
            "gridPos": {"h": 4, "w": 12, "x": x, "y": y},
            "datasource": {"type": "prometheus", "uid": "prom"},
            "targets": [{"refId": "A", "datasource": {"type": "prometheus", "uid": "prom"},
                         "expr": expr, "legendFormat": "x", "range": true, "instant": false}],
            "fieldConfig": {"defaults": {"unit": "percent"}, "overrides": []},
            "options": {"reduceOptions": {"values": false, "calcs": ["lastNotNull"], "fields": ""}},
        })
    }

    fn dashboard(panels: Vec<Value>, variables: Vec<Value>) -> Dashboard {
        Dashboard {
            file: "t.json".into(),
            json: json!({
                "id": null, "uid": "t", "title": "T", "description": "d", "tags": ["benchfleet"],
                "editable": false, "schemaVersion": 39, "time": {"from": "now-6h", "to": "now"},
                "templating": {"list": variables}, "panels": panels, "links": [],
            }),
        }
    }

    #[test]
    fn a_good_dashboard_passes() {
        let d = dashboard(vec![stat(1, 0, 0, "up"), stat(2, 12, 0, "up")], vec![]);
        assert_eq!(validate(&[d], &datasources()), Vec::<String>::new());
    }

    #[test]
    fn layout_and_id_mistakes_are_found() {
        let d = dashboard(
            vec![stat(1, 0, 0, "up"), stat(1, 6, 2, "up"), stat(3, 20, 8, "up")],
            vec![],
        );
        let problems = validate(&[d], &datasources()).join("\n");
        assert!(problems.contains("panel id 1 is missing or not unique"), "{problems}");
        assert!(problems.contains("overlaps panel 1"), "{problems}");
        assert!(problems.contains("outside the 24-column grid"), "{problems}");
    }

    #[test]
    fn unknown_things_are_found() {
        let mut p = stat(1, 0, 0, "x{bench=\"$bench\"}");
        p["datasource"]["uid"] = json!("nope");
        p["type"] = json!("graph");
        p["fieldConfig"]["defaults"]["unit"] = json!("watts");
        p["titel"] = json!("typo");
        let var = json!({"name": "unused", "type": "custom", "query": "a,b", "multi": false,
                         "includeAll": false, "current": {}});
        let problems = validate(&[dashboard(vec![p], vec![var])], &datasources()).join("\n");
        for expected in [
            "data source uid \"nope\" is not provisioned",
            "unknown panel type \"graph\"",
            "unknown unit \"watts\"",
            "unknown key \"titel\"",
            "$bench is not defined",
            "$unused is defined but never used",
        ] {
            assert!(problems.contains(expected), "{expected:?} not in:\n{problems}");
        }
    }

    #[test]
    fn barchart_options_are_checked() {
        let mut p = stat(1, 0, 0, "up");
        p["type"] = json!("barchart");
        p["options"] = json!({"orientation": "horizontal", "stacking": "stacked", "showValue": "never",
                              "legend": {"displayMode": "list"}, "tooltip": {"mode": "multi"}});
        let problems = validate(&[dashboard(vec![p], vec![])], &datasources()).join("\n");
        assert!(problems.contains("barchart stacking \"stacked\""), "{problems}");
        assert!(!problems.contains("orientation"), "{problems}");
    }

    #[test]
    fn links_must_reach_existing_dashboards() {
        let mut p = stat(1, 0, 0, "up");
        p["fieldConfig"]["defaults"]["links"] = json!([{"title": "x", "url": "/d/missing/x?var-a=1"}]);
        let problems = validate(&[dashboard(vec![p], vec![])], &datasources()).join("\n");
        assert!(problems.contains("link to dashboard \"missing\""), "{problems}");
    }
}
