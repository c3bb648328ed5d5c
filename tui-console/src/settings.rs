//! Command line and environment: where the API is, which token to present, how often to poll,
//! where to log. Flags win over environment variables.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// The ops staff's terminal console for a benchfleet control plane.
#[derive(Debug, Parser)]
#[command(name = "tui-console", version, about)]
pub struct Args {
    /// The control plane's HTTP API origin.
    #[arg(long, env = "BENCHFLEET_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Bearer token (JWT) from `control-plane token`. Command lines are visible to other local
    /// users: prefer --token-file or BENCHFLEET_TOKEN.
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the token (surrounding whitespace is ignored).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// How often to poll the API (the live event stream comes on top).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub refresh: Duration,
    /// Log file (default: $XDG_STATE_HOME/benchfleet/tui-console.log). The console never logs to
    /// the terminal. Verbosity: BENCHFLEET_LOG, e.g. `debug`.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
}

/// Resolved settings.
#[derive(Clone)]
pub struct Settings {
    pub api: String,
    pub token: Option<String>,
    pub refresh: Duration,
    pub log_file: PathBuf,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("api", &self.api)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("refresh", &self.refresh)
            .field("log_file", &self.log_file)
            .finish()
    }
}

impl Args {
    /// Reads the token (flag, file, then `BENCHFLEET_TOKEN`) and fills in defaults.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let token = match (self.token, &self.token_file) {
            (Some(t), _) => Some(t),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path).with_context(|| format!("reading the token file {}", path.display()))?,
            ),
            (None, None) => std::env::var("BENCHFLEET_TOKEN").ok(),
        }
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
        anyhow::ensure!(
            self.api.starts_with("http://") || self.api.starts_with("https://"),
            "--api must be an http:// or https:// URL, got {:?}",
            self.api
        );
        anyhow::ensure!(
            self.refresh >= Duration::from_millis(200),
            "--refresh must be at least 200ms"
        );
        Ok(Settings {
            api: self.api,
            token,
            refresh: self.refresh,
            log_file: self.log_file.unwrap_or_else(default_log_file),
        })
    }
}

fn default_log_file() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")));
    match state {
        Some(dir) => dir.join("benchfleet").join("tui-console.log"),
        None => std::env::temp_dir().join("benchfleet-tui-console.log"),
    }
}

/// Sends tracing output to `path` (appending), filtered by `BENCHFLEET_LOG` (default `info`).
pub fn init_logging(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("BENCHFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("tui-console").chain(extra.iter().copied())).unwrap()
    }

    #[test]
    fn token_from_flag_or_file() {
        let s = args(&["--token", " abc \n"]).resolve().unwrap();
        assert_eq!(s.token.as_deref(), Some("abc"));
        assert!(!format!("{s:?}").contains("abc"), "Debug shows the token");

        let dir = std::env::temp_dir().join(format!("tui-console-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "xyz\n").unwrap();
        let s = args(&["--token-file", file.to_str().unwrap(), "--refresh", "2s"])
            .resolve()
            .unwrap();
        assert_eq!(s.token.as_deref(), Some("xyz"));
        assert_eq!(s.refresh, Duration::from_secs(2));
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(Args::try_parse_from(["tui-console", "--token", "a", "--token-file", "b"]).is_err());
        let missing = args(&["--token-file", "/nonexistent/token"]).resolve().unwrap_err();
        assert!(format!("{missing:#}").contains("/nonexistent/token"));
        assert!(args(&["--api", "127.0.0.1:8080"]).resolve().is_err());
    }
}
