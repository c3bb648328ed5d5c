//! The bench registry: which benches exist, where they stand and how often they report.
//!
//! The 12 LINK 4 Cooperation benches are built in; a TOML fleet file replaces them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topic::BenchId;

/// A registered bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BenchInfo {
    /// Bench id, also its MQTT client id and topic level.
    #[schemars(with = "String")]
    pub id: BenchId,
    /// Display name.
    pub name: String,
    /// Municipality, with diacritics (e.g. `Žepče`).
    pub municipality: String,
    /// WGS84 position.
    pub location: Location,
    /// How often the bench is expected to send telemetry, seconds.
    #[serde(default = "default_interval")]
    pub telemetry_interval_s: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

fn default_interval() -> u32 {
    DEFAULT_TELEMETRY_INTERVAL_S
}

/// The telemetry interval a bench starts with until its configuration says otherwise.
pub const DEFAULT_TELEMETRY_INTERVAL_S: u32 = 60;

/// The LINK 4 Cooperation fleet: id, municipality, lat, lon (town centres, about 1 km).
const LINK4: [(&str, &str, f64, f64); 12] = [
    ("berkovici-01", "Berkovići", 43.0960, 18.1700),
    ("jablanica-01", "Jablanica", 43.6600, 17.7590),
    ("kostajnica-01", "Kostajnica", 45.2200, 16.5420),
    ("maglaj-01", "Maglaj", 44.5460, 18.1000),
    ("mostar-01", "Mostar", 43.3430, 17.8080),
    ("nevesinje-01", "Nevesinje", 43.2590, 18.1140),
    ("novi-grad-01", "Novi Grad", 45.0480, 16.3780),
    ("prijedor-01", "Prijedor", 44.9800, 16.7140),
    ("ravno-01", "Ravno", 42.8890, 17.9690),
    ("trebinje-01", "Trebinje", 42.7120, 18.3440),
    ("zavidovici-01", "Zavidovići", 44.4460, 18.1500),
    ("zepce-01", "Žepče", 44.4270, 18.0390),
];

/// Why a fleet file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("fleet file is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("bench id {0} appears more than once")]
    Duplicate(BenchId),
    #[error("bench {0}: {1}")]
    Invalid(BenchId, String),
    #[error("the fleet file lists no benches")]
    Empty,
}

/// The registry, ordered by bench id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    benches: BTreeMap<BenchId, BenchInfo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    bench: Vec<BenchInfo>,
}

impl Fleet {
    /// The 12 LINK 4 Cooperation benches.
    pub fn link4() -> Self {
        let benches = LINK4.iter().map(|&(id, municipality, lat, lon)| BenchInfo {
            id: BenchId::parse(id).expect("built-in ids are valid"),
            name: format!("{municipality} smart bench"),
            municipality: municipality.to_owned(),
            location: Location { lat, lon },
            telemetry_interval_s: DEFAULT_TELEMETRY_INTERVAL_S,
        });
        Self::from_benches(benches).expect("built-in fleet is valid")
    }

    /// Parses a TOML fleet file: a list of `[[bench]]` tables with the fields of [`BenchInfo`].
    pub fn from_toml(text: &str) -> Result<Self, FleetError> {
        let file: FleetFile = toml::from_str(text)?;
        if file.bench.is_empty() {
            return Err(FleetError::Empty);
        }
        Self::from_benches(file.bench)
    }

    /// Builds a registry, refusing duplicates and impossible values.
    pub fn from_benches(benches: impl IntoIterator<Item = BenchInfo>) -> Result<Self, FleetError> {
        let mut fleet = Self::default();
        for b in benches {
            fleet.insert(b)?;
        }
        Ok(fleet)
    }

    fn insert(&mut self, b: BenchInfo) -> Result<(), FleetError> {
        let Location { lat, lon } = b.location;
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(FleetError::Invalid(
                b.id,
                format!("location {lat},{lon} is not a WGS84 position"),
            ));
        }
        if !(1..=86_400).contains(&b.telemetry_interval_s) {
            return Err(FleetError::Invalid(b.id, "telemetry_interval_s must be 1-86400".into()));
        }
        if self.benches.contains_key(&b.id) {
            return Err(FleetError::Duplicate(b.id));
        }
        self.benches.insert(b.id.clone(), b);
        Ok(())
    }

    /// Adds `load-000001` ... `load-<n>` for load tests, spread around Mostar.
    pub fn with_load_test_benches(mut self, n: u32) -> Self {
        for i in 1..=n {
            let id = BenchId::parse(&load_test_id(i)).expect("load ids are valid");
            let b = BenchInfo {
                name: format!("Load test bench {i}"),
                municipality: "Load test".into(),
                location: Location {
                    lat: 43.343 + f64::from(i % 100) * 1e-3,
                    lon: 17.808,
                },
                telemetry_interval_s: DEFAULT_TELEMETRY_INTERVAL_S,
                id: id.clone(),
            };
            self.benches.insert(id, b);
        }
        self
    }

    pub fn get(&self, id: &str) -> Option<&BenchInfo> {
        // BenchId orders like its string, so a borrowed lookup needs a parse.
        BenchId::parse(id).ok().and_then(|id| self.benches.get(&id))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = &BenchInfo> {
        self.benches.values()
    }

    pub fn len(&self) -> usize {
        self.benches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.benches.is_empty()
    }
}

/// The id of the `i`-th load-test bench (1-based): `load-000001`.
pub fn load_test_id(i: u32) -> String {
    format!("load-{i:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link4_has_twelve_benches_with_diacritics() {
        let f = Fleet::link4();
        assert_eq!(f.len(), 12);
        assert_eq!(f.get("zepce-01").unwrap().municipality, "Žepče");
        assert_eq!(f.get("berkovici-01").unwrap().municipality, "Berkovići");
        assert!(f.get("nowhere-01").is_none());
        assert!(f.get("Bad/Id").is_none());
    }

    #[test]
    fn fleet_file() {
        let f = Fleet::from_toml(
            r#"
            [[bench]]
            id = "test-01"
            name = "Test"
            municipality = "Čapljina"
            location = { lat = 43.1, lon = 17.7 }
            telemetry_interval_s = 30
            "#,
        )
        .unwrap();
        assert_eq!(f.get("test-01").unwrap().telemetry_interval_s, 30);
        let dup = "[[bench]]\nid='a'\nname='A'\nmunicipality='M'\nlocation={lat=1,lon=1}\n".repeat(2);
        assert!(matches!(Fleet::from_toml(&dup), Err(FleetError::Duplicate(_))));
        assert!(matches!(Fleet::from_toml("bench = []"), Err(FleetError::Empty)));
        assert!(Fleet::from_toml("[[bench]]\nid='A B'\nname='A'\nmunicipality='M'\nlocation={lat=1,lon=1}").is_err());
    }

    #[test]
    fn load_test_benches() {
        let f = Fleet::link4().with_load_test_benches(3);
        assert_eq!(f.len(), 15);
        assert!(f.contains("load-000003"));
        assert!(!f.contains("load-000004"));
    }
}
