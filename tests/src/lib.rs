//! Harness for the end-to-end tests: builds the real binaries once, starts them on port 0 with a
//! temporary data directory, and stops them (printing their log on failure) when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Path of a workspace binary, built (once per test process) with the profile of this test.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // This test runs from <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_path_buf();
        let target = profile_dir.parent().expect("target dir").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            // The whole workspace, so that features resolve as they did for `cargo test
            // --workspace` (this crate turns on control-plane's `testing`, which only adds test
            // helpers) and this build finds every binary already built.
            "--workspace",
            "--bins",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
        profile_dir
    });
    dir.join(name)
}

/// Polls `check` until it returns `Some`, failing with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `control-plane serve`.
pub struct ControlPlane {
    child: Child,
    pub api: String,
    pub mqtt: SocketAddr,
    pub database_url: String,
    data_dir: TempDir,
    args: Args,
}

/// How a [`ControlPlane`] was started, to start it again.
struct Args {
    database_url: Option<String>,
    /// `BENCHFLEET_LOG` for the process.
    log: &'static str,
    extra: Vec<String>,
    api_listen: String,
    mqtt_listen: String,
}

/// Spawns `control-plane serve` and waits for the addresses it prints.
fn spawn(data_dir: &Path, args: &Args) -> (Child, String, SocketAddr) {
    // Appended to, so a restarted process's log follows the first one's.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("control-plane.log"))
        .expect("log file");
    let mut cmd = Command::new(binary("control-plane"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--api-listen", &args.api_listen, "--mqtt-listen", &args.mqtt_listen])
        .args(&args.extra)
        .env("BENCHFLEET_LOG", args.log)
        .env_remove("DATABASE_URL")
        .env_remove("BENCHFLEET_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(log);
    if let Some(url) = &args.database_url {
        cmd.arg("--database-url").arg(url);
    }
    let mut child = cmd.spawn().expect("spawning control-plane");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining after the addresses are read: closing the pipe early makes the
        // child's next println! fail, and the control plane dies of a broken pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut api, mut mqtt) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.is_none() || mqtt.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(v) = line.strip_prefix("api: ") {
                    api = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("mqtt: mqtt://") {
                    mqtt = Some(v.trim().parse().expect("mqtt address"));
                }
            }
            Err(_) => {
                let log = std::fs::read_to_string(data_dir.join("control-plane.log")).unwrap_or_default();
                let _ = child.kill();
                panic!("control-plane did not report its addresses within 60 s; its log:\n{log}");
            }
        }
    }
    (child, api.unwrap_or_default(), mqtt.expect("mqtt"))
}

impl ControlPlane {
    /// Starts on SQLite in a temporary data directory.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with(None, extra)
    }

    /// Starts with `database_url` (None: SQLite in the data directory) and extra flags.
    pub fn start_with(database_url: Option<&str>, extra: &[&str]) -> Self {
        Self::start_logging(database_url, extra, "info,control_plane=debug")
    }

    /// Like [`start_with`](Self::start_with), logging at `log` (`BENCHFLEET_LOG`). Benchmarks
    /// use the default `info`: debug logging slows the broker's link enough under load that the
    /// router skips messages.
    pub fn start_logging(database_url: Option<&str>, extra: &[&str], log: &'static str) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let args = Args {
            database_url: database_url.map(str::to_owned),
            log,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            api_listen: "127.0.0.1:0".into(),
            mqtt_listen: "127.0.0.1:0".into(),
        };
        let (child, api, mqtt) = spawn(data_dir.path(), &args);
        let database_url = database_url
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.path().join("benchfleet.db").display()));
        Self {
            child,
            api,
            mqtt,
            database_url,
            data_dir,
            args,
        }
    }

    /// `kill -9`: no flush, no goodbye, exactly a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the control plane again after [`ControlPlane::kill`] or an exit, on the same
    /// data directory, database and ports.
    pub fn restart(&mut self) {
        assert!(
            self.child.try_wait().ok().flatten().is_some(),
            "restart needs the old process gone"
        );
        self.args.api_listen = self.api.trim_start_matches("http://").to_owned();
        self.args.mqtt_listen = self.mqtt.to_string();
        let (child, api, mqtt) = spawn(self.data_dir.path(), &self.args);
        self.child = child;
        self.api = api;
        self.mqtt = mqtt;
    }

    /// Mints a token with `control-plane token`, signed with this instance's secret (and, for a
    /// `cso` token, checked against this instance's store).
    pub fn token(&self, role: &str, subject: &str, extra: &[&str]) -> String {
        let out = self.try_token(role, subject, extra);
        assert!(
            out.status.success(),
            "token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `control-plane token` for this instance and returns what it did.
    pub fn try_token(&self, role: &str, subject: &str, extra: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(binary("control-plane"));
        cmd.arg("token")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(["--role", role, "--subject", subject])
            .args(extra)
            .env_remove("DATABASE_URL")
            .env_remove("BENCHFLEET_DATABASE_URL");
        if let Some(url) = &self.args.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.output().expect("running control-plane token")
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The process id, e.g. to read its CPU time from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("control-plane.log")).unwrap_or_default()
    }

    /// `GET` a path of the API and return the body.
    pub async fn get(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.api))
            .await
            .expect("GET")
            .text()
            .await
            .expect("body")
    }

    /// The value of one Prometheus sample line, e.g. `benchfleet_ingest_rows_stored_total`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.get("/metrics").await;
        text.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    /// Sends SIGTERM and waits for the exit (killing it after 30 s); [`ControlPlane::restart`]
    /// starts it again.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- control-plane log ----\n{}", self.log());
        }
    }
}

/// MQTT options for a bench: client id = username = bench id, password = token.
/// Waits (at most 20 s) for the CONNACK: `Ok` when it accepts, `Err` saying what happened
/// otherwise.
pub async fn wait_connack(eventloop: &mut rumqttc::EventLoop) -> Result<(), String> {
    use rumqttc::{ConnectReturnCode, Event, Packet};
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => return Ok(()),
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Err(format!("refused: {:?}", ack.code)),
                Ok(_) => {}
                Err(e) => return Err(format!("connection error: {e}")),
            }
        }
    })
    .await;
    outcome.unwrap_or_else(|_| Err("no answer".into()))
}

/// Connects `bench` as a bench does (a retained `offline` Last Will on its status topic) and
/// waits for a successful CONNACK. The event loop then runs in the task until its first error,
/// so a client that lost its connection stays gone instead of taking the bench back.
pub async fn connect_bench(
    cp: &ControlPlane,
    bench: &str,
    token: &str,
) -> (rumqttc::AsyncClient, tokio::task::JoinHandle<()>) {
    let mut opts = bench_options(cp, bench, token);
    opts.set_last_will(rumqttc::LastWill::new(
        format!("benches/{bench}/status"),
        r#"{"v":1,"state":"offline"}"#,
        rumqttc::QoS::AtLeastOnce,
        true,
    ));
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 100);
    if let Err(e) = wait_connack(&mut eventloop).await {
        panic!("{bench} was not accepted: {e}");
    }
    let task = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    (client, task)
}

pub fn bench_options(cp: &ControlPlane, bench: &str, token: &str) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(bench, cp.mqtt.ip().to_string(), cp.mqtt.port());
    o.set_credentials(bench, token);
    o.set_keep_alive(Duration::from_secs(5));
    // Room for the oversized-payload cases: the server, not the client, must refuse them.
    o.set_max_packet_size(1024 * 1024, 1024 * 1024);
    o
}

/// A valid telemetry payload.
pub fn telemetry(seq: u64, battery_pct: f64) -> String {
    format!(
        r#"{{"v":1,"ts":"{}","seq":{seq},"power":{{"solar_w":42.5,"battery_pct":{battery_pct},"load_w":7.5}},"network":{{"rx_bytes":{},"tx_bytes":100}},"health":{{"uptime_s":{seq},"faults":[]}}}}"#,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        seq * 1000
    )
}

/// Telemetry of `bench` from the last hour (and the next, for clock skew), oldest first.
pub async fn recent_telemetry(
    store: &dyn control_plane::telemetry::TelemetryStore,
    bench: &str,
) -> Vec<control_plane::telemetry::TelemetryRow> {
    let now = chrono::Utc::now();
    let hour = chrono::Duration::hours(1);
    store
        .telemetry(bench, now - hour, now + hour)
        .await
        .expect("telemetry query")
}

/// Presence changes of `bench` from the last hour, oldest first.
pub async fn recent_status_events(
    store: &dyn control_plane::presence::PresenceStore,
    bench: &str,
) -> Vec<control_plane::presence::StatusEvent> {
    let now = chrono::Utc::now();
    let hour = chrono::Duration::hours(1);
    store
        .status_events(bench, now - hour, now + hour, 1000)
        .await
        .expect("status events query")
}

/// A TCP hop in front of a server (PostgreSQL, say) that can be cut like a network partition:
/// live connections are closed and new ones refused until it is restored.
pub struct Partition {
    pub addr: SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Partition {
    /// Forwards `127.0.0.1:<port>` to `upstream`. Needs a Tokio runtime.
    pub async fn new(upstream: SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, l) = (cut.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                if let Ok(mut links) = l.lock() {
                    links.retain(|h: &tokio::task::AbortHandle| !h.is_finished());
                    links.push(link.abort_handle());
                }
            }
        });
        Self {
            addr,
            cut,
            links,
            accept,
        }
    }

    /// Closes every connection through the hop and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut links) = self.links.lock() {
            for link in links.drain(..) {
                link.abort();
            }
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
