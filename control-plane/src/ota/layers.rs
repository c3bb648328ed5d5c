//! Configuration layers and the effective configuration of a bench.
//!
//! A layer is a partial configuration (a JSON object) at one [`Scope`]: the fleet default, a
//! municipality or one bench. A bench's effective configuration is the built-in
//! [`BenchConfig::default`] merged with the fleet layer, its municipality's layer and its own
//! layer, in that order (RFC 7396 merge: objects merge key by key, anything else, arrays
//! included, replaces). Most specific wins.

use std::collections::BTreeMap;

use protocol::BenchInfo;
use protocol::config::{BenchConfig, FieldError};
pub use protocol::ota::{FieldChange, Scope};
use serde_json::{Map, Value};

/// The set of layers. Empty layers are not kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layers(BTreeMap<Scope, Map<String, Value>>);

impl Layers {
    pub fn get(&self, scope: &Scope) -> Option<&Map<String, Value>> {
        self.0.get(scope)
    }

    /// Replaces a layer; an empty one is removed.
    pub fn set(&mut self, scope: Scope, content: Map<String, Value>) {
        if content.is_empty() {
            self.0.remove(&scope);
        } else {
            self.0.insert(scope, content);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Scope, &Map<String, Value>)> {
        self.0.iter()
    }

    /// The merged JSON of `bench`'s layers over the built-in configuration.
    pub fn merged(&self, bench: &BenchInfo) -> Value {
        let mut doc = builtin();
        for scope in [
            Scope::Fleet,
            Scope::Municipality(bench.municipality.clone()),
            Scope::Bench(bench.id.clone()),
        ] {
            if let Some(layer) = self.0.get(&scope) {
                merge_patch(&mut doc, &Value::Object(layer.clone()));
            }
        }
        doc
    }

    /// The configuration `bench` should run, or every reason it cannot be built.
    pub fn effective(&self, bench: &BenchInfo) -> Result<BenchConfig, Vec<FieldError>> {
        decode(self.merged(bench))
    }
}

/// The built-in configuration as JSON.
pub fn builtin() -> Value {
    serde_json::to_value(BenchConfig::default()).unwrap_or_default()
}

/// RFC 7396 JSON merge patch: objects merge recursively, `null` removes a key, anything else
/// replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Checks a layer on its own (over the built-in configuration): it must be an object, every
/// field must exist and have the right type, and the result must pass
/// [`BenchConfig::validate`]. Every bad field is reported, not only the first.
pub fn validate_layer(content: &Value) -> Result<Map<String, Value>, Vec<FieldError>> {
    let Value::Object(map) = content else {
        return Err(vec![FieldError::new("", "a configuration layer must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let mut leaves = Vec::new();
    collect_leaves(&mut Vec::new(), content, &mut leaves);
    // One field at a time, so each type error is attributed to its own field; the fields that
    // pass are then checked together for ranges and consistency.
    let mut typed = builtin();
    for (path, value) in &leaves {
        let field = path.join(".");
        if value.is_null() {
            errors.push(FieldError::new(
                field,
                "null is not a value; leave the field out to inherit it",
            ));
            continue;
        }
        let mut doc = builtin();
        merge_patch(&mut doc, &nest(path, value.clone()));
        match serde_json::from_value::<BenchConfig>(doc) {
            Err(e) => errors.push(FieldError::new(field, e.to_string())),
            Ok(config) => {
                let back = serde_json::to_value(config).unwrap_or_default();
                if lookup(&back, path).is_none() {
                    errors.push(FieldError::new(field, "unknown field"));
                } else {
                    merge_patch(&mut typed, &nest(path, value.clone()));
                }
            }
        }
    }
    if let Err(e) = decode(typed) {
        errors.extend(e);
    }
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    if errors.is_empty() {
        Ok(map.clone())
    } else {
        Err(errors)
    }
}

/// Decodes and validates a merged document.
fn decode(doc: Value) -> Result<BenchConfig, Vec<FieldError>> {
    let config: BenchConfig = serde_json::from_value(doc).map_err(|e| vec![FieldError::new("", e.to_string())])?;
    let errors = config.validate();
    if errors.is_empty() { Ok(config) } else { Err(errors) }
}

fn collect_leaves(path: &mut Vec<String>, value: &Value, out: &mut Vec<(Vec<String>, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key.clone());
                collect_leaves(path, child, out);
                path.pop();
            }
        }
        // An empty object changes nothing; the top-level one has no path.
        Value::Object(_) => {}
        _ => out.push((path.clone(), value.clone())),
    }
}

fn nest(path: &[String], value: Value) -> Value {
    path.iter().rev().fold(value, |inner, key| {
        Value::Object(Map::from_iter([(key.clone(), inner)]))
    })
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// The fields that differ between `from` and `to`, in path order. Objects are compared key by
/// key; arrays and scalars as a whole.
pub fn diff(from: &Value, to: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_into(&mut Vec::new(), Some(from), Some(to), &mut out);
    out
}

fn diff_into(path: &mut Vec<String>, from: Option<&Value>, to: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (from, to) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                path.push(key.clone());
                diff_into(path, a.get(key), b.get(key), out);
                path.pop();
            }
        }
        (a, b) if a != b => out.push(FieldChange {
            field: path.join("."),
            from: a.cloned(),
            to: b.cloned(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use protocol::Fleet;
    use serde_json::json;

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn most_specific_layer_wins() {
        let fleet = Fleet::link4();
        let mostar = fleet.get("mostar-01").unwrap();
        let zepce = fleet.get("zepce-01").unwrap();
        let mut layers = Layers::default();
        layers.set(
            Scope::Fleet,
            object(json!({"telemetry_interval_s": 120, "wifi": {"ssid": "LINK4"}})),
        );
        layers.set(
            Scope::Municipality("Mostar".into()),
            object(json!({"wifi": {"ssid": "Mostar Free", "session_limit_min": 30}})),
        );
        layers.set(
            Scope::Bench(mostar.id.clone()),
            object(json!({"wifi": {"session_limit_min": 45}, "kiosk": {"languages": ["hr"]}})),
        );
        let m = layers.effective(mostar).unwrap();
        assert_eq!(m.telemetry_interval_s, Some(120));
        assert_eq!(m.wifi.ssid, "Mostar Free");
        assert_eq!(m.wifi.session_limit_min, 45);
        assert_eq!(m.kiosk.languages, [protocol::config::Language::Croatian]);
        assert_eq!(m.usb, BenchConfig::default().usb);
        let z = layers.effective(zepce).unwrap();
        assert_eq!((z.wifi.ssid.as_str(), z.wifi.session_limit_min), ("LINK4", 60));
        assert_eq!(z.kiosk.languages.len(), 5);

        layers.set(Scope::Fleet, Map::new());
        assert_eq!(layers.get(&Scope::Fleet), None);
        assert_eq!(layers.effective(zepce).unwrap(), BenchConfig::default());
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        merge_patch(&mut doc, &json!({"a": {"b": null, "c": [3]}, "e": {"f": 1}}));
        assert_eq!(doc, json!({"a": {"c": [3]}, "d": 1, "e": {"f": 1}}));
    }

    #[test]
    fn every_bad_field_of_a_layer_is_named() {
        let errors = validate_layer(&json!({
            "telemetry_interval_s": "fast",
            "wifi": {"ssid": "ok", "ssd": "typo", "enabled": "yes"},
            "kiosk": {"languages": ["bs", "de"]},
            "colour": {"shade": 1},
            "usb": {"max_session_min": null}
        }))
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "colour.shade",
                "kiosk.languages",
                "telemetry_interval_s",
                "usb.max_session_min",
                "wifi.enabled",
                "wifi.ssd"
            ]
        );
        assert_eq!(errors[0].message, "unknown field");
        assert!(
            errors[1].message.contains("unknown variant `de`"),
            "{}",
            errors[1].message
        );
        assert!(
            errors[2].message.contains("invalid type: string \"fast\""),
            "{}",
            errors[2].message
        );
        assert!(errors[3].message.contains("leave the field out"));
    }

    #[test]
    fn ranges_and_consistency_are_checked_after_types() {
        let errors = validate_layer(&json!({"telemetry_interval_s": 4, "power": {"low_battery_pct": 4}})).unwrap_err();
        assert_eq!(fields(&errors), ["power.sleep_below_pct", "telemetry_interval_s"]);
        assert_eq!(fields(&validate_layer(&json!([1])).unwrap_err()), [""]);
        let ok = validate_layer(&json!({"wifi": {"enabled": false}, "kiosk": {}})).unwrap();
        assert_eq!(Value::Object(ok), json!({"wifi": {"enabled": false}, "kiosk": {}}));
    }

    #[test]
    fn diff_lists_changed_leaves() {
        let a = json!({"wifi": {"ssid": "A", "enabled": true}, "kiosk": {"languages": ["bs", "hr"]}});
        let b =
            json!({"wifi": {"ssid": "B", "enabled": true}, "kiosk": {"languages": ["bs"]}, "telemetry_interval_s": 30});
        let d = diff(&a, &b);
        assert_eq!(
            d,
            [
                FieldChange {
                    field: "kiosk.languages".into(),
                    from: Some(json!(["bs", "hr"])),
                    to: Some(json!(["bs"]))
                },
                FieldChange {
                    field: "telemetry_interval_s".into(),
                    from: None,
                    to: Some(json!(30))
                },
                FieldChange {
                    field: "wifi.ssid".into(),
                    from: Some(json!("A")),
                    to: Some(json!("B"))
                },
            ]
        );
        assert_eq!(diff(&a, &a), []);
    }
}
