//! Configuration: one serde tree, layered defaults < TOML file < environment < flags.
//!
//! The environment and flag layers are applied by the binary (clap reads `BENCHFLEET_*`); this
//! module owns the tree, its defaults and the annotated default file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything the control plane can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Directory for the embedded SQLite database and the JWT secret.
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`. Default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// File holding the JWT signing secret. Default: `<data_dir>/jwt.secret`, created on first start.
    pub jwt_secret_file: Option<PathBuf>,
    /// TOML fleet file replacing the 12 built-in LINK 4 benches.
    pub fleet_file: Option<PathBuf>,
    /// Register `load-000001`…`load-<N>` beside the fleet, for `bench-sim load`.
    pub load_test_benches: u32,
    pub api: ApiSettings,
    pub mqtt: MqttSettings,
    pub ingest: IngestSettings,
    pub presence: PresenceSettings,
    pub store: StoreSettings,
    pub ota: OtaSettings,
    pub ideas: IdeaSettings,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Largest request body accepted, bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take until its response head, seconds.
    pub request_timeout_s: u64,
    /// When set, `/metrics` needs `Authorization: Bearer <this>`; otherwise it is open.
    /// Prefer `BENCHFLEET_METRICS_TOKEN` to keeping it in the file.
    pub metrics_token: Option<String>,
    /// Reverse proxies in front of the API: for requests from these addresses the client is the
    /// last address in `X-Forwarded-For` (public routes are rate-limited per client address).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    /// Address of the embedded MQTT broker. Loopback by default; `0.0.0.0:1883` serves the network.
    pub listen: SocketAddr,
    /// Most simultaneous MQTT connections.
    pub max_connections: usize,
    /// Bench messages queued between the broker and ingest; beyond it messages are dropped and counted.
    pub queue_capacity: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Rows per store write.
    pub batch_size: usize,
    /// Longest a row waits before its batch is written, milliseconds.
    pub flush_interval_ms: u64,
    /// Rows held while the store is unreachable; beyond it new rows are dropped and counted.
    pub buffer_rows: usize,
    /// Memory those rows may take, bytes; whichever bound is reached first applies.
    pub buffer_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceSettings {
    /// A connected bench silent for this many telemetry intervals is `stale`.
    pub stale_after_intervals: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// TimescaleDB only: raw telemetry older than this many days is dropped.
    pub retention_days: u32,
    /// TimescaleDB only: telemetry chunks older than this many days are compressed.
    pub compress_after_days: u32,
    /// Most database connections.
    pub max_connections: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            jwt_secret_file: None,
            fleet_file: None,
            load_test_benches: 0,
            api: ApiSettings::default(),
            mqtt: MqttSettings::default(),
            ingest: IngestSettings::default(),
            presence: PresenceSettings::default(),
            store: StoreSettings::default(),
            ota: OtaSettings::default(),
            ideas: IdeaSettings::default(),
        }
    }
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("listen", &self.listen)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout_s", &self.request_timeout_s)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "[redacted]"))
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 64 * 1024,
            request_timeout_s: 30,
            metrics_token: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for MqttSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            max_connections: 20_000,
            queue_capacity: 100_000,
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            batch_size: 5000,
            flush_interval_ms: 200,
            buffer_rows: 1_000_000,
            buffer_bytes: 512 * 1024 * 1024,
        }
    }
}

impl Default for PresenceSettings {
    fn default() -> Self {
        Self {
            stale_after_intervals: 3,
        }
    }
}

/// OTA configuration delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtaSettings {
    /// A delivered configuration not acknowledged within this many seconds is `timed_out`.
    pub ack_timeout_s: u64,
    /// Desired and reported configuration differing for longer than this many seconds is drift.
    pub drift_threshold_s: u64,
}

impl Default for OtaSettings {
    fn default() -> Self {
        Self {
            ack_timeout_s: 120,
            drift_threshold_s: 600,
        }
    }
}

/// Citizens' ideas: intake limits and moderation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdeaSettings {
    /// Fewest characters an idea's text may have.
    pub text_min_chars: usize,
    /// Most characters an idea's text may have (at most 4000, the wire limit).
    pub text_max_chars: usize,
    /// Ideas one bench may send in a burst...
    pub bench_burst: u32,
    /// ...and per hour after it.
    pub bench_per_hour: u32,
    /// Words or phrases that hold an idea for moderation (any script, any case, word starts).
    pub blocklist: Vec<String>,
    /// Unauthenticated requests (applications to join, status lookups) per client address: a
    /// burst...
    pub public_burst: u32,
    /// ...and per hour after it.
    pub public_per_hour: u32,
}

impl Default for IdeaSettings {
    fn default() -> Self {
        let d = crate::routing::RoutingSettings::default();
        Self {
            text_min_chars: d.text_min_chars,
            text_max_chars: d.text_max_chars,
            bench_burst: d.bench_burst,
            bench_per_hour: d.bench_per_hour,
            blocklist: d.blocklist,
            public_burst: d.public_burst,
            public_per_hour: d.public_per_hour,
        }
    }
}

impl IdeaSettings {
    pub fn routing(&self) -> crate::routing::RoutingSettings {
        crate::routing::RoutingSettings {
            text_min_chars: self.text_min_chars,
            text_max_chars: self.text_max_chars,
            bench_burst: self.bench_burst,
            bench_per_hour: self.bench_per_hour,
            blocklist: self.blocklist.clone(),
            public_burst: self.public_burst,
            public_per_hour: self.public_per_hour,
            ..crate::routing::RoutingSettings::default()
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            retention_days: 400,
            compress_after_days: 7,
            max_connections: 8,
        }
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Settings {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| SettingsError::Parse {
            path: path.into(),
            source,
        })
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("benchfleet.db").display()))
    }

    /// The secret file in force.
    pub fn jwt_secret_file(&self) -> PathBuf {
        self.jwt_secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("jwt.secret"))
    }

    /// Checks values no type can express.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |m: &str| Err(SettingsError::Invalid(m.to_owned()));
        if self.ingest.batch_size == 0 || self.ingest.batch_size > 50_000 {
            return bad("ingest.batch_size must be 1-50000");
        }
        if self.ingest.flush_interval_ms == 0 {
            return bad("ingest.flush_interval_ms must be at least 1");
        }
        if self.ingest.buffer_rows < self.ingest.batch_size {
            return bad("ingest.buffer_rows must be at least ingest.batch_size");
        }
        if self.ingest.buffer_bytes < 1024 * 1024 {
            return bad("ingest.buffer_bytes must be at least 1048576 (1 MiB)");
        }
        if self.mqtt.queue_capacity == 0 || self.mqtt.max_connections == 0 {
            return bad("mqtt.queue_capacity and mqtt.max_connections must be positive");
        }
        if self.presence.stale_after_intervals == 0 {
            return bad("presence.stale_after_intervals must be at least 1");
        }
        if self.api.body_limit_bytes < 1024 || self.api.request_timeout_s == 0 {
            return bad("api.body_limit_bytes must be at least 1024 and api.request_timeout_s at least 1");
        }
        if self.store.max_connections == 0 {
            return bad("store.max_connections must be at least 1");
        }
        if self.ota.ack_timeout_s == 0 {
            return bad("ota.ack_timeout_s must be at least 1");
        }
        if self.ideas.text_min_chars == 0
            || self.ideas.text_min_chars > self.ideas.text_max_chars
            || self.ideas.text_max_chars > protocol::idea::MAX_TEXT_CHARS
        {
            return bad("ideas: need 1 <= text_min_chars <= text_max_chars <= 4000");
        }
        if self.ideas.bench_burst == 0 || self.ideas.public_burst == 0 {
            return bad("ideas.bench_burst and ideas.public_burst must be at least 1");
        }
        Ok(())
    }
}

/// The annotated default configuration, printed by `control-plane config default`.
pub const DEFAULT_TOML: &str = r#"# benchfleet control plane configuration.
# Precedence: built-in defaults < this file (--config) < BENCHFLEET_* environment < command-line flags.

# Directory for the embedded SQLite database and the JWT secret. (BENCHFLEET_DATA_DIR, --data-dir)
data_dir = "./data"

# Database URL. Unset: SQLite at <data_dir>/benchfleet.db.
# PostgreSQL/TimescaleDB: "postgres://USER:PASSWORD@HOST:5432/DB". (DATABASE_URL, BENCHFLEET_DATABASE_URL, --database-url)
# database_url = "postgres://benchfleet:secret@127.0.0.1:5432/benchfleet"

# File holding the JWT signing secret. Unset: <data_dir>/jwt.secret, created (mode 0600) on first
# start. BENCHFLEET_JWT_SECRET provides the secret itself instead. (--jwt-secret-file)
# jwt_secret_file = "/etc/benchfleet/jwt.secret"

# TOML fleet file replacing the 12 built-in LINK 4 benches: a list of [[bench]] tables with
# id, name, municipality, location = { lat, lon } and telemetry_interval_s. (--fleet)
# fleet_file = "/etc/benchfleet/fleet.toml"

# Register load-000001 ... load-<N> beside the fleet, for `bench-sim load`. (--load-test-benches)
load_test_benches = 0

[api]
# Address of the HTTP API. (BENCHFLEET_API_LISTEN, --api-listen)
listen = "127.0.0.1:8080"
# Largest request body accepted, bytes.
body_limit_bytes = 65536
# Longest a request may take until its response head, seconds (event streams are not cut).
request_timeout_s = 30
# When set, /metrics needs `Authorization: Bearer <token>` (a static scrape token for Prometheus).
# Prefer the environment: BENCHFLEET_METRICS_TOKEN.
# metrics_token = "a-long-random-string"
# Reverse proxies in front of the API (e.g. the TLS terminator). For requests from these
# addresses the client is the last address in X-Forwarded-For; otherwise every client behind the
# proxy would share one rate limit on the public routes (applications, idea status).
trusted_proxies = []

[mqtt]
# Address of the embedded MQTT broker. Loopback by default, as Mosquitto 2 does;
# "0.0.0.0:1883" serves benches on the network. (BENCHFLEET_MQTT_LISTEN, --mqtt-listen)
listen = "127.0.0.1:1883"
# Most simultaneous MQTT connections.
max_connections = 20000
# Bench messages queued between the broker and ingest; beyond it messages are dropped and counted
# (benchfleet_mqtt_messages_dropped_total{reason="queue_full"}).
queue_capacity = 100000

[ingest]
# Most rows per store write. Under load, batches grow to this size; larger batches write faster
# and need fewer storage acknowledgements.
batch_size = 5000
# Longest a row waits before its batch is written, milliseconds.
flush_interval_ms = 200
# Rows held in memory while the store is unreachable (retried with backoff); beyond it new rows
# are dropped, counted (benchfleet_ingest_rows_dropped_total) and logged. An ack-aware bench
# sends them again.
buffer_rows = 1000000
# Memory those rows may take, bytes (about 450 bytes a row); whichever bound is reached first
# applies.
buffer_bytes = 536870912

[presence]
# A connected bench silent for this many telemetry intervals is reported `stale`.
stale_after_intervals = 3

[store]
# TimescaleDB only: raw telemetry older than this many days is dropped by a retention policy.
retention_days = 400
# TimescaleDB only: telemetry chunks older than this many days are compressed.
compress_after_days = 7
# Most database connections in the pool.
max_connections = 8

[ota]
# A configuration the bench has been handed (it connected since it was issued) but has not
# acknowledged within this many seconds is reported `timed_out` (a late acknowledgement still counts).
ack_timeout_s = 120
# Desired and reported configuration versions differing for longer than this many seconds is
# reported as drift by the API (benchfleet_bench_config_drift_seconds always shows the duration).
drift_threshold_s = 600

[ideas]
# Bounds on the length of an idea's text, in characters; outside them the kiosk is told `invalid`.
text_min_chars = 10
text_max_chars = 2000
# Ideas one bench may send in a burst, and per hour after it (kiosks share their bench, so the
# limit is per bench); beyond it the kiosk is told `rate_limited` and sends again later.
bench_burst = 10
bench_per_hour = 30
# Words or phrases that hold an idea for moderation instead of routing it; matched at word
# starts in any case and script ("uvred" matches "Uvreda" and "увреда").
blocklist = []
# Unauthenticated requests (applications to join, public status lookups) per client address:
# a burst, and per hour after it; beyond it the answer is 429 with Retry-After.
public_burst = 20
public_per_hour = 600
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_is_the_defaults() {
        let parsed: Settings = toml::from_str(DEFAULT_TOML).unwrap();
        assert_eq!(parsed, Settings::default());
        parsed.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Settings>("[api]\nlisten = \"127.0.0.1:1\"\nlistne = 1\n").unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn derived_paths() {
        let s = Settings {
            data_dir: "/var/lib/bf".into(),
            ..Settings::default()
        };
        assert_eq!(s.database_url(), "sqlite:///var/lib/bf/benchfleet.db");
        assert_eq!(s.jwt_secret_file(), PathBuf::from("/var/lib/bf/jwt.secret"));
    }

    #[test]
    fn debug_hides_the_metrics_token() {
        let mut s = Settings::default();
        s.api.metrics_token = Some("scrape-secret-123".into());
        assert!(!format!("{s:?}").contains("scrape-secret-123"));
    }

    #[test]
    fn validation() {
        let mut s = Settings::default();
        s.ingest.batch_size = 0;
        assert!(s.validate().is_err());
    }
}
