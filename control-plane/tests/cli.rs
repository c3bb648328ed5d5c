//! The real `control-plane` binary's configuration commands: `config default` prints a file that
//! loads as the defaults, `config check` shows the settings in force after defaults < file <
//! environment < flags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with exactly `env` as its environment.
fn control_plane(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_control-plane"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("running control-plane")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "control-plane failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap_or_else(|e| panic!("not TOML ({e}):\n{text}"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn the_default_file_is_what_check_reports_with_nothing_set() {
    let default = stdout(&control_plane(&["config", "default"], &[]));
    assert!(default.contains("\n[ingest]\n"), "{default}");
    assert!(
        default.contains("# env: BENCHFLEET_INGEST__BATCH_SIZE\nbatch_size = 5000\n"),
        "{default}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "default.toml", &default);
    let from_file = table(&stdout(&control_plane(&["config", "check", "--config", &file], &[])));
    let bare = table(&stdout(&control_plane(&["config", "check"], &[])));
    assert_eq!(from_file, bare);
    // Unset options are commented out in the default file and absent from `check`.
    assert_eq!(from_file, table(&default));
    assert_eq!(bare["ingest"]["batch_size"].as_integer(), Some(5000));
    assert_eq!(bare["ota"]["ack_timeout_s"].as_integer(), Some(120));
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bf.toml",
        "load_test_benches = 3\n\
         [api]\nlisten = \"127.0.0.1:7001\"\n\
         [mqtt]\nlisten = \"127.0.0.1:7101\"\n\
         [ingest]\nbatch_size = 100\nflush_interval_ms = 50\nbuffer_rows = 5000\n\
         [ota]\nack_timeout_s = 30\n",
    );
    let out = control_plane(
        &["config", "check", "--api-listen", "127.0.0.1:7003"],
        &[
            ("BENCHFLEET_CONFIG", &file),
            ("BENCHFLEET_API_LISTEN", "127.0.0.1:7002"),
            ("BENCHFLEET_MQTT__LISTEN", "127.0.0.1:7102"),
            ("BENCHFLEET_INGEST__FLUSH_INTERVAL_MS", "60"),
            ("BENCHFLEET_OTA__DRIFT_THRESHOLD_S", "90"),
            ("BENCHFLEET_IDEAS__BLOCKLIST", "spam,uvred"),
            // Not settings: other programs' variables are left alone.
            ("BENCHFLEET_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1/postgres"),
            ("BENCHFLEET_TOKEN", "console-token"),
            ("BENCHFLEET_LOG", "debug"),
        ],
    );
    let s = table(&stdout(&out));
    assert_eq!(
        s["api"]["listen"].as_str(),
        Some("127.0.0.1:7003"),
        "flag over environment"
    );
    assert_eq!(
        s["mqtt"]["listen"].as_str(),
        Some("127.0.0.1:7102"),
        "environment over file"
    );
    assert_eq!(
        s["ingest"]["flush_interval_ms"].as_integer(),
        Some(60),
        "environment over file"
    );
    assert_eq!(s["ingest"]["batch_size"].as_integer(), Some(100), "file over defaults");
    assert_eq!(
        s["ingest"]["buffer_rows"].as_integer(),
        Some(5000),
        "file over defaults"
    );
    assert_eq!(s["load_test_benches"].as_integer(), Some(3), "file over defaults");
    assert_eq!(s["ota"]["ack_timeout_s"].as_integer(), Some(30), "file, in seconds");
    assert_eq!(
        s["ota"]["drift_threshold_s"].as_integer(),
        Some(90),
        "environment, in seconds"
    );
    assert_eq!(s["ideas"]["blocklist"].as_array().unwrap().len(), 2);
    assert_eq!(s["store"]["max_connections"].as_integer(), Some(8), "defaults");
}

#[test]
fn the_older_variable_names_still_work() {
    let out = control_plane(
        &["config", "check"],
        &[
            ("BENCHFLEET_DATA_DIR", "/srv/bf"),
            ("DATABASE_URL", "sqlite:///srv/bf/other.db"),
            ("BENCHFLEET_FLEET", "/etc/bf/fleet.toml"),
            ("BENCHFLEET_LOAD_TEST_BENCHES", "7"),
            ("BENCHFLEET_MQTT_LISTEN", "0.0.0.0:1883"),
            ("BENCHFLEET_JWT_SECRET_FILE", "/run/secrets/jwt"),
        ],
    );
    let s = table(&stdout(&out));
    assert_eq!(s["data_dir"].as_str(), Some("/srv/bf"));
    assert_eq!(s["database_url"].as_str(), Some("sqlite:///srv/bf/other.db"));
    assert_eq!(s["fleet_file"].as_str(), Some("/etc/bf/fleet.toml"));
    assert_eq!(s["load_test_benches"].as_integer(), Some(7));
    assert_eq!(s["mqtt"]["listen"].as_str(), Some("0.0.0.0:1883"));
    assert_eq!(s["jwt_secret_file"].as_str(), Some("/run/secrets/jwt"));
}

#[test]
fn secrets_are_not_shown() {
    let out = control_plane(
        &["config", "check", "--metrics-token", "flag-secret-1"],
        &[("BENCHFLEET_DATABASE_URL", "postgres://bf:env-secret-2@db:5432/bf")],
    );
    let text = stdout(&out);
    assert!(
        !text.contains("flag-secret-1") && !text.contains("env-secret-2"),
        "{text}"
    );
    let s = table(&text);
    assert_eq!(s["database_url"].as_str(), Some("postgres://bf:***@db:5432/bf"));
    assert_eq!(s["api"]["metrics_token"].as_str(), Some("[redacted]"));
}

#[test]
fn a_bad_value_fails_naming_where_it_came_from() {
    let out = control_plane(&["config", "check"], &[("BENCHFLEET_INGEST__BATCH_SIZE", "lots")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BENCHFLEET_INGEST__BATCH_SIZE") && err.contains("whole number"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bad.toml", "[ingest]\nbatch_size = 0\n");
    let out = control_plane(&["config", "check", "--config", &file], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ingest.batch_size must be 1-50000"), "{err}");

    let file = write(dir.path(), "typo.toml", "[ingest]\nbatch_sise = 10\n");
    let out = control_plane(&["config", "check", "--config", &file], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("batch_sise") && err.contains("typo.toml"), "{err}");

    let out = control_plane(&["config", "check"], &[("BENCHFLEET_INGEST__BATCH_SIZ", "1")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("variable BENCHFLEET_INGEST__BATCH_SIZ:"), "{err}");
}
