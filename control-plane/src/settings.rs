//! Configuration: one serde tree composed of the sections each domain owns, layered built-in
//! defaults < TOML file < environment < command-line flags (figment).
//!
//! - [`schema`]: every key, its doc comment and its type, read from the JSON Schema of the types.
//! - [`env`]: the environment layer (`BENCHFLEET_<KEY>`, `BENCHFLEET_<SECTION>__<KEY>`).
//! - [`annotated`]: the annotated default file, generated from the same doc comments.
//!
//! The domains do not know this module: it depends on them, never the reverse.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::ApiConfig;
use crate::broker::BrokerSettings;
use crate::ingest::IngestSettings;
use crate::ota::OtaSettings;
use crate::presence::PresenceSettings;
use crate::routing::RoutingSettings;
use crate::store::StoreSettings;

mod annotated;
mod env;
mod schema;

pub use annotated::default_toml;
pub use env::{ALIASES, process_env};

/// Everything the control plane can be told.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Directory for the embedded SQLite database and the JWT secret.
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:5432/DB` (PostgreSQL or
    /// TimescaleDB). Unset: SQLite at `<data_dir>/benchfleet.db`.
    #[schemars(example = &"postgres://benchfleet:secret@127.0.0.1:5432/benchfleet")]
    pub database_url: Option<String>,
    /// File holding the JWT signing secret. Unset: `<data_dir>/jwt.secret`, created (mode 0600)
    /// on first start. `BENCHFLEET_JWT_SECRET` provides the secret itself instead.
    #[schemars(example = &"/etc/benchfleet/jwt.secret")]
    pub jwt_secret_file: Option<PathBuf>,
    /// TOML fleet file replacing the 12 built-in LINK 4 benches: a list of `[[bench]]` tables
    /// with `id`, `name`, `municipality`, `location = { lat, lon }` and `telemetry_interval_s`.
    #[schemars(example = &"/etc/benchfleet/fleet.toml")]
    pub fleet_file: Option<PathBuf>,
    /// Register `load-000001` … `load-<N>` beside the fleet, for `bench-sim load`.
    pub load_test_benches: u32,
    /// The HTTP API.
    pub api: ApiConfig,
    /// The embedded MQTT broker.
    pub mqtt: BrokerSettings,
    /// Telemetry ingest: decoded samples are written to the store in batches.
    pub ingest: IngestSettings,
    /// Bench presence: online, offline, stale, sleeping.
    pub presence: PresenceSettings,
    /// The database (PostgreSQL and TimescaleDB only; SQLite needs nothing).
    pub store: StoreSettings,
    /// OTA configuration delivery.
    pub ota: OtaSettings,
    /// Citizens' ideas: intake limits and moderation.
    pub ideas: RoutingSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            jwt_secret_file: None,
            fleet_file: None,
            load_test_benches: 0,
            api: ApiConfig::default(),
            // Sized for a real fleet; the broker's own defaults suit tests.
            mqtt: BrokerSettings {
                max_connections: 20_000,
                queue_capacity: 100_000,
                ..BrokerSettings::default()
            },
            ingest: IngestSettings::default(),
            presence: PresenceSettings::default(),
            store: StoreSettings::default(),
            ota: OtaSettings::default(),
            ideas: RoutingSettings::default(),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(crate::store::redact_url),
            )
            .field("jwt_secret_file", &self.jwt_secret_file)
            .field("fleet_file", &self.fleet_file)
            .field("load_test_benches", &self.load_test_benches)
            .field("api", &self.api)
            .field("mqtt", &self.mqtt)
            .field("ingest", &self.ingest)
            .field("presence", &self.presence)
            .field("store", &self.store)
            .field("ota", &self.ota)
            .field("ideas", &self.ideas)
            .finish()
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A variable of the environment layer that cannot be used.
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    /// The file, or a value of any layer that does not fit its setting: figment's message, which
    /// names the key and the file, variable or flag, with secret values left out.
    #[error("{0}")]
    Load(String),
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// Values given on the command line, by dotted key (`api.listen`): the top layer.
#[derive(Default)]
pub struct Overrides(Figment);

impl Overrides {
    pub fn set(self, key: &str, value: impl Serialize) -> Self {
        Self(self.0.merge(Serialized::default(key, value)))
    }
}

impl Settings {
    /// Layers the built-in defaults, the TOML `file`, the settings found in `env` (see
    /// [`process_env`]) and the `flags`, in that order, and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: Overrides,
    ) -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        let settings: Settings = figment
            .merge(env::Environment::new(&schema::keys(), env)?)
            .merge(flags.0)
            .extract()
            .map_err(|e| SettingsError::Load(describe(e)))?;
        settings.validate()?;
        Ok(settings)
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

    /// These settings with the database password and the metrics token replaced, for showing.
    pub fn redacted(&self) -> Settings {
        let mut shown = self.clone();
        shown.database_url = shown.database_url.as_deref().map(crate::store::redact_url);
        shown.api.metrics_token = shown.api.metrics_token.map(|_| "[redacted]".to_owned());
        shown
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
        if let Err(e) = self.mqtt.validate() {
            return Err(SettingsError::Invalid(format!("mqtt: {e}")));
        }
        if self.presence.stale_after_intervals == 0 {
            return bad("presence.stale_after_intervals must be at least 1");
        }
        if self.presence.takeover_grace_ms > PresenceSettings::MAX_TAKEOVER_GRACE_MS {
            return bad("presence.takeover_grace_ms must be at most 60000");
        }
        if self.api.body_limit_bytes < 1024 || self.api.request_timeout.is_zero() {
            return bad("api.body_limit_bytes must be at least 1024 and api.request_timeout_s at least 1");
        }
        if self.store.max_connections == 0 {
            return bad("store.max_connections must be at least 1");
        }
        if self.ota.ack_timeout.is_zero() {
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

/// Keys whose values are never shown.
const SECRET_KEYS: &[&str] = &["database_url", "api.metrics_token"];

/// Every error figment collected, one a line; the values of [`SECRET_KEYS`] and any password in a
/// URL (a TOML syntax error quotes its line) left out.
fn describe(error: figment::Error) -> String {
    use figment::error::Kind;
    let lines: Vec<String> = error
        .into_iter()
        .map(|mut e| {
            if SECRET_KEYS.contains(&e.path.join(".").as_str()) {
                e.kind = match e.kind {
                    Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
                        Kind::Message(format!("invalid value (not shown, it is secret), expected {expected}"))
                    }
                    kind => kind,
                };
            }
            e.to_string()
        })
        .collect();
    redact_passwords(&lines.join("\n"))
}

/// `scheme://user:password@` → `scheme://user:***@` anywhere in `text`.
fn redact_passwords(text: &str) -> String {
    static URL_PASSWORD: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r#"(://[^\s:/@"']*):[^\s@"']*@"#).expect("a valid pattern"));
    URL_PASSWORD.replace_all(text, "$1:***@").into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
