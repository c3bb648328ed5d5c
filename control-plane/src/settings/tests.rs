use std::net::SocketAddr;
use std::time::Duration;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn from_env(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    Settings::load(None, vars(pairs), Overrides::default())
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn default_file_is_the_defaults() {
    let parsed: Settings = toml::from_str(&default_toml()).unwrap();
    assert_eq!(parsed, Settings::default());
    parsed.validate().unwrap();
}

#[test]
fn default_file_loads_as_the_defaults() {
    let f = file(&default_toml());
    let loaded = Settings::load(Some(f.path()), vars(&[]), Overrides::default()).unwrap();
    assert_eq!(loaded, Settings::default());
}

#[test]
fn default_file_documents_every_key() {
    let text = default_toml();
    let keys = schema::keys();
    assert_eq!(keys.sections.len(), 7, "{:?}", keys.sections);
    for (section, doc) in &keys.sections {
        assert!(!doc.is_empty(), "section [{section}] has no doc comment");
        assert!(text.contains(&format!("\n[{section}]\n")), "[{section}] missing");
    }
    for key in &keys.keys {
        assert!(!key.doc.is_empty(), "{} has no doc comment", key.dotted());
        assert!(text.contains(&format!("# env: {}", key.var())), "{} missing", key.var());
    }
    // Keys without a default are shown commented out, with an example.
    assert!(text.contains("\n# database_url = \"postgres://"), "{text}");
    assert!(
        text.contains("\n# metrics_token = \"a-long-random-string\"\n"),
        "{text}"
    );
    assert!(text.contains("# env: BENCHFLEET_API__LISTEN (or BENCHFLEET_API_LISTEN)\nlisten = \"127.0.0.1:8080\"\n"));
    assert!(
        text.contains("\nmax_connections = 20000\n"),
        "the control plane's broker defaults"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 100), "lines wrap at 100");
    assert!(!text.contains("[`"), "no rustdoc links in the file");
    // Declaration order, not alphabetical.
    let at = |s: &str| text.find(s).unwrap();
    assert!(at("\ndata_dir =") < at("\n# database_url ="));
    assert!(at("\n[api]") < at("\n[mqtt]") && at("\n[ota]") < at("\n[ideas]"));
}

#[test]
fn unknown_keys_are_refused() {
    let err = toml::from_str::<Settings>("[api]\nlisten = \"127.0.0.1:1\"\nlistne = 1\n").unwrap_err();
    assert!(err.to_string().contains("listne"), "{err}");
    let f = file("[api]\nlistne = 1\n");
    let err = Settings::load(Some(f.path()), vars(&[]), Overrides::default()).unwrap_err();
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
fn debug_and_redacted_hide_the_database_password() {
    let mut s = Settings {
        database_url: Some("postgres://bf:db-secret-456@db/bf".into()),
        ..Settings::default()
    };
    s.api.metrics_token = Some("scrape-secret-123".into());
    assert!(!format!("{s:?}").contains("db-secret-456"));
    let shown = toml::to_string(&s.redacted()).unwrap();
    assert!(
        !shown.contains("db-secret-456") && !shown.contains("scrape-secret-123"),
        "{shown}"
    );
    assert!(shown.contains("postgres://bf:***@db/bf"), "{shown}");
}

#[test]
fn validation() {
    let mut s = Settings::default();
    s.ingest.batch_size = 0;
    assert!(s.validate().is_err());
    let mut s = Settings::default();
    s.presence.takeover_grace_ms = 60_000;
    assert!(s.validate().is_ok());
    s.presence.takeover_grace_ms = 60_001;
    assert!(s.validate().is_err(), "a minute-long drop is an outage, not a takeover");
}

#[test]
fn a_file_section_keeps_the_other_defaults_of_its_section() {
    let f = file("[mqtt]\nlisten = \"0.0.0.0:1883\"\n[ota]\nack_timeout_s = 30\n");
    let s = Settings::load(Some(f.path()), vars(&[]), Overrides::default()).unwrap();
    assert_eq!(s.mqtt.listen, "0.0.0.0:1883".parse::<SocketAddr>().unwrap());
    assert_eq!(
        s.mqtt.max_connections, 20_000,
        "the control plane's default, not the broker's"
    );
    assert_eq!(s.ota.ack_timeout, Duration::from_secs(30));
    assert_eq!(s.ota.drift_threshold, Duration::from_secs(600));
    assert_eq!(s.ota.tick, Duration::from_secs(1));
}

#[test]
fn every_section_can_be_set_from_the_environment() {
    let s = from_env(&[
        ("BENCHFLEET_DATA_DIR", "/srv/bf"),
        ("BENCHFLEET_LOAD_TEST_BENCHES", "25"),
        ("BENCHFLEET_API__LISTEN", "127.0.0.1:9000"),
        ("BENCHFLEET_API__TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2"),
        ("BENCHFLEET_MQTT__WORKER_THREADS", "4"),
        ("BENCHFLEET_INGEST__BATCH_SIZE", "250"),
        ("BENCHFLEET_PRESENCE__STALE_AFTER_INTERVALS", "5"),
        ("BENCHFLEET_STORE__RETENTION_DAYS", "30"),
        ("BENCHFLEET_OTA__DRIFT_THRESHOLD_S", "90"),
        ("BENCHFLEET_IDEAS__BLOCKLIST", r#"["uvred", "spam, eggs"]"#),
        ("BENCHFLEET_JWT_SECRET_FILE", "/run/secrets/jwt"),
    ])
    .unwrap();
    assert_eq!(s.data_dir, PathBuf::from("/srv/bf"));
    assert_eq!(s.load_test_benches, 25);
    assert_eq!(s.api.listen, "127.0.0.1:9000".parse::<SocketAddr>().unwrap());
    assert_eq!(
        s.api.trusted_proxies,
        [
            "10.0.0.1".parse::<std::net::IpAddr>().unwrap(),
            "10.0.0.2".parse().unwrap()
        ]
    );
    assert_eq!(s.mqtt.worker_threads, 4);
    assert_eq!(s.ingest.batch_size, 250);
    assert_eq!(s.presence.stale_after_intervals, 5);
    assert_eq!(s.store.retention_days, 30);
    assert_eq!(s.ota.drift_threshold, Duration::from_secs(90));
    assert_eq!(s.ideas.blocklist, ["uvred", "spam, eggs"]);
    assert_eq!(s.jwt_secret_file, Some(PathBuf::from("/run/secrets/jwt")));
}

#[test]
fn the_older_names_still_work_below_the_scheme() {
    let s = from_env(&[
        ("DATABASE_URL", "postgres://a@db/a"),
        ("BENCHFLEET_FLEET", "/etc/fleet.toml"),
        ("BENCHFLEET_API_LISTEN", "127.0.0.1:9001"),
        ("BENCHFLEET_MQTT_LISTEN", "0.0.0.0:1884"),
        ("BENCHFLEET_METRICS_TOKEN", "12345"),
    ])
    .unwrap();
    assert_eq!(s.database_url.as_deref(), Some("postgres://a@db/a"));
    assert_eq!(s.fleet_file, Some(PathBuf::from("/etc/fleet.toml")));
    assert_eq!(s.api.listen.port(), 9001);
    assert_eq!(s.mqtt.listen.port(), 1884);
    assert_eq!(s.api.metrics_token.as_deref(), Some("12345"), "digits stay a string");

    // Whatever order the environment lists them in.
    for pairs in [
        [
            ("BENCHFLEET_DATABASE_URL", "postgres://b@db/b"),
            ("DATABASE_URL", "postgres://a@db/a"),
        ],
        [
            ("DATABASE_URL", "postgres://a@db/a"),
            ("BENCHFLEET_DATABASE_URL", "postgres://b@db/b"),
        ],
    ] {
        let s = from_env(&pairs).unwrap();
        assert_eq!(s.database_url.as_deref(), Some("postgres://b@db/b"));
    }
    let s = from_env(&[
        ("BENCHFLEET_API__LISTEN", "127.0.0.1:9002"),
        ("BENCHFLEET_API_LISTEN", "127.0.0.1:9001"),
    ])
    .unwrap();
    assert_eq!(s.api.listen.port(), 9002);
}

#[test]
fn file_then_environment_then_flags() {
    let f = file("[ingest]\nbatch_size = 100\nflush_interval_ms = 50\nbuffer_rows = 5000\n");
    let env = vars(&[
        ("BENCHFLEET_INGEST__BATCH_SIZE", "200"),
        ("BENCHFLEET_INGEST__FLUSH_INTERVAL_MS", "60"),
    ]);
    let flags = Overrides::default().set("ingest.batch_size", 300);
    let s = Settings::load(Some(f.path()), env, flags).unwrap();
    assert_eq!(s.ingest.buffer_rows, 5000, "file over defaults");
    assert_eq!(s.ingest.flush_interval_ms, 60, "environment over file");
    assert_eq!(s.ingest.batch_size, 300, "flags over environment");
}

#[test]
fn a_bad_value_names_its_variable() {
    let err = from_env(&[("BENCHFLEET_INGEST__BATCH_SIZE", "lots")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BENCHFLEET_INGEST__BATCH_SIZE") && err.contains("lots"),
        "{err}"
    );
    // Parsed by the setting's own type: the message still names the variable.
    let err = from_env(&[("BENCHFLEET_API_LISTEN", "localhost")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("BENCHFLEET_API_LISTEN"), "{err}");
    let err = from_env(&[("BENCHFLEET_API__TRUSTED_PROXIES", "10.0.0.1,proxy")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("BENCHFLEET_API__TRUSTED_PROXIES (item 2)"), "{err}");
    let err = from_env(&[("BENCHFLEET_OTA__ACK_TIMEOUT_S", "0")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("ota.ack_timeout_s"), "validated like the file: {err}");
}

#[test]
fn a_typo_in_a_section_is_refused() {
    let err = from_env(&[("BENCHFLEET_INGEST__BATCH_SIZ", "1")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BENCHFLEET_INGEST__BATCH_SIZ") && err.contains("BENCHFLEET_INGEST__BATCH_SIZE"),
        "{err}"
    );
}

#[test]
fn unrelated_variables_are_ignored() {
    let s = from_env(&[
        ("BENCHFLEET_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1/postgres"),
        ("BENCHFLEET_TOKEN", "x"),
        ("BENCHFLEET_API", "http://127.0.0.1:8080"),
        ("BENCHFLEET_PG_HOST", "db:5432"),
        ("BENCHFLEET_LOG", "debug"),
        ("BENCHFLEET_CONFIG", "/nowhere.toml"),
        ("BENCHFLEET_JWT_SECRET", "s"),
        ("BENCHFLEET_NOPE__X", "1"),
        ("BENCHFLEET_INGEST__BATCH_SIZE", ""),
        ("PATH", "/usr/bin"),
    ])
    .unwrap();
    assert_eq!(s, Settings::default());
}

#[test]
fn errors_do_not_show_secrets() {
    let f = file("[api]\nmetrics_token = 918273645\n");
    let err = Settings::load(Some(f.path()), vars(&[]), Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("metrics_token") && !err.contains("918273645"), "{err}");
    let f = file("database_url = \"postgres://bf:hunter2@db/bf\nload_test_benches = 1\n");
    let err = Settings::load(Some(f.path()), vars(&[]), Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
    let err = from_env(&[
        ("BENCHFLEET_DATABASE_URL", "postgres://bf:hunter2@db/bf"),
        ("BENCHFLEET_INGEST__BATCH_SIZE", "x"),
    ])
    .unwrap_err()
    .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn the_section_docs_come_from_the_domain_types() {
    let keys = schema::keys();
    let doc = |k: &str| keys.get(k).unwrap().doc.clone();
    assert!(doc("ingest.batch_size").starts_with("Most rows per store write"));
    assert!(doc("ota.ack_timeout_s").contains("seconds"));
    assert_eq!(keys.get("ota.ack_timeout_s").unwrap().kind, schema::Kind::Integer);
    assert!(
        keys.get("ota.tick").is_none() && keys.get("ota.ack_timeout").is_none(),
        "internal fields stay out"
    );
    assert!(keys.get("api.events_keep_alive").is_none());
}
