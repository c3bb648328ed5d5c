//! The real `tui-console` binary inside tmux (a real terminal of fixed size) against the real
//! control plane with the 12 simulated benches: every bench appears, an injected disconnect
//! shows as offline, a wrong token and an unreachable API are explained on screen, `q` leaves a
//! restored terminal, and an operator rejects a citizen's idea from the ideas view.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bench_sim::{Broker, Credentials, Fault, FleetOptions, SimFleet};
use protocol::Fleet;
use tests::{ControlPlane, bench_options, binary, eventually};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);
const EXITED: &str = "[tui-console exited with status";

/// A tmux server of its own (`-L`), holding one session that runs the console; killed on drop.
struct Console {
    socket: String,
    log_file: std::path::PathBuf,
}

impl Console {
    /// Runs `tui-console <args>` in a `width`×`height` tmux pane. The pane stays after the
    /// console exits, showing its exit status.
    fn start(dir: &Path, args: &[&str], width: u16, height: u16) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "benchfleet-e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let log_file = dir.join(format!("{socket}.log"));
        let mut command = vec![binary("tui-console").display().to_string()];
        command.extend(args.iter().map(|a| (*a).to_owned()));
        command.push("--log-file".into());
        command.push(log_file.display().to_string());
        let quoted: Vec<String> = command
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        let script = format!("{}; echo \"{EXITED} $?]\"; sleep 3600", quoted.join(" "));
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-s", "console"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["sh", "-c", &script])
            .env_remove("BENCHFLEET_TOKEN")
            .env_remove("BENCHFLEET_API")
            .status()
            .expect("running tmux");
        assert!(status.success(), "tmux new-session failed");
        Self { socket, log_file }
    }

    /// The pane's text now.
    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "console"])
            .output()
            .expect("running tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "console", keys])
            .status()
            .expect("running tmux send-keys");
        assert!(status.success());
    }

    /// Polls the screen until `check` accepts it; on timeout fails showing the last screen.
    async fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}; the screen:\n{screen}\nthe console's log:\n{}",
                std::fs::read_to_string(&self.log_file).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

/// tmux is needed; without it the tests say so and pass, except on CI where they fail.
fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "tmux is not installed (needed on CI)");
        eprintln!("skipping: tmux is not installed");
    }
    ok
}

/// The fleet table's row for `bench` (alert lines start with a time, rows with the state).
fn row<'a>(screen: &'a str, bench: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        let l = l.trim_start();
        l.split_whitespace().nth(2) == Some(bench) && !l.starts_with(|c: char| c.is_ascii_digit())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_every_bench_and_a_disconnect() {
    if !tmux_available() {
        return;
    }
    let cp = ControlPlane::start(&[]);
    let credentials = Credentials::from_secret_file(&cp.data_dir().join("jwt.secret")).unwrap();
    let mut opts = FleetOptions::new(Broker::new("127.0.0.1", cp.mqtt.port()), Fleet::link4(), credentials);
    opts.telemetry_interval = Some(Duration::from_millis(500));
    // Refused 20 times with 1-3 s between tries: offline for 20 s or more.
    opts.backoff_min = Duration::from_secs(1);
    opts.backoff_max = Duration::from_secs(3);
    let sim = SimFleet::spawn(opts, CancellationToken::new()).unwrap();

    let token_file = cp.data_dir().join("console.token");
    std::fs::write(&token_file, cp.token("operator", "e2e-console", &[])).unwrap();
    let console = Console::start(
        cp.data_dir(),
        &[
            "--api",
            &cp.api,
            "--token-file",
            token_file.to_str().unwrap(),
            "--refresh",
            "1s",
        ],
        120,
        40,
    );

    let ids: Vec<String> = Fleet::link4().iter().map(|b| b.id.to_string()).collect();
    let screen = console
        .wait_for("all 12 benches online on screen", |s| {
            ids.iter().all(|id| row(s, id).is_some_and(|r| r.contains("● online")))
        })
        .await;
    assert!(screen.contains("12 benches  ● 12 online"), "{screen}");
    assert!(screen.contains("operator"), "{screen}");
    // Readiness is polled on its own schedule; on a busy machine it may answer after the live
    // stream has brought every bench online.
    console
        .wait_for("the control plane reported ready", |s| {
            s.contains("control plane ✓ ready")
        })
        .await;
    console
        .wait_for("the live event stream", |s| s.contains("● live"))
        .await;

    sim.inject("maglaj-01", Fault::WrongToken { attempts: 20 }).unwrap();
    let screen = console
        .wait_for("maglaj-01 offline on screen", |s| {
            row(s, "maglaj-01").is_some_and(|r| r.contains("✕ offline"))
        })
        .await;
    assert!(screen.contains("✕ 1 offline"), "{screen}");
    assert!(
        screen.lines().any(|l| l.contains("✕ maglaj-01 went offline")),
        "no alert for maglaj-01:\n{screen}"
    );
    // Offline benches sort first.
    let first = screen
        .lines()
        .find(|l| l.trim_start().starts_with(['●', '✕', '◐', '☾', '·']))
        .unwrap_or_default();
    assert!(first.contains("maglaj-01"), "{screen}");
    for id in ids.iter().filter(|id| *id != "maglaj-01") {
        assert!(
            row(&screen, id).is_some_and(|r| r.contains("● online")),
            "{id}:\n{screen}"
        );
    }

    // Search narrows the table to maglaj-01; Enter keeps the search, Enter again opens it.
    for key in ["/", "maglaj", "Enter", "Enter"] {
        console.keys(key);
    }
    console
        .wait_for("the bench view of maglaj-01", |s| {
            s.contains("maglaj-01 · Maglaj smart bench · Maglaj") && s.contains("Status changes")
        })
        .await;

    // `q` quits and the terminal is restored: the console's screen is gone.
    console.keys("q");
    let screen = console.wait_for("the console to exit", |s| s.contains(EXITED)).await;
    assert!(screen.contains(&format!("{EXITED} 0]")), "{screen}");
    assert!(
        !screen.contains("benchfleet"),
        "the alternate screen was not left:\n{screen}"
    );

    sim.shutdown().await;
    assert!(cp.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_explains_a_wrong_token_and_an_unreachable_api() {
    if !tmux_available() {
        return;
    }
    let cp = ControlPlane::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let wrong = Console::start(
        dir.path(),
        &["--api", &cp.api, "--token", "not.a.token", "--refresh", "1s"],
        80,
        24,
    );
    let screen = wrong
        .wait_for("the token refused banner, retried", |s| {
            s.contains("token refused") && s.contains("attempts")
        })
        .await;
    assert!(screen.contains("(401"), "{screen}");
    assert!(!screen.contains(EXITED), "the console must keep running:\n{screen}");

    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = Console::start(
        dir.path(),
        &["--api", &format!("http://127.0.0.1:{port}"), "--refresh", "1s"],
        80,
        24,
    );
    let screen = unreachable
        .wait_for("the unreachable banner", |s| s.contains("control plane unreachable"))
        .await;
    assert!(screen.contains("control plane ✕ unreachable"), "{screen}");
    assert!(screen.contains("polling every 1s"), "{screen}");
    assert!(!screen.contains("panicked"), "{screen}");
    drop(cp);
}

/// A kiosk's idea that no rule routes lands in the coordinators' queue; the operator sees it
/// first in the ideas view and rejects it with a typed reason, and the control plane agrees.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_rejects_an_idea_from_the_console() {
    if !tmux_available() {
        return;
    }
    let cp = ControlPlane::start(&[]);
    // The kiosk at ravno-01 sends an idea (QoS 1) over real MQTT.
    let bench = cp.token("bench", "ravno-01", &[]);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(bench_options(&cp, "ravno-01", &bench), 10);
    let idea = serde_json::json!({
        "v": 1, "idea_id": "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d", "ts": chrono::Utc::now().to_rfc3339(),
        "text": "Kupujte jeftine satove na mom sajtu", "category": "other", "lang": "hr"
    });
    client
        .publish(
            "benches/ravno-01/ideas",
            rumqttc::QoS::AtLeastOnce,
            false,
            idea.to_string(),
        )
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) = eventloop.poll().await.unwrap() {
                break;
            }
        }
    })
    .await
    .expect("PUBACK for the idea");

    let operator = cp.token("operator", "e2e-moderator", &[]);
    let api = cp.api.clone();
    let state = |token: String| {
        let url = format!("{api}/api/v1/ideas/6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d");
        async move {
            let idea: serde_json::Value = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            idea["state"].as_str().map(str::to_owned)
        }
    };
    let first = eventually("the idea stored", WAIT, || state(operator.clone())).await;
    assert_eq!(first, "unroutable");

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("operator.token");
    std::fs::write(&token_file, &operator).unwrap();
    let console = Console::start(
        dir.path(),
        &[
            "--api",
            &cp.api,
            "--token-file",
            token_file.to_str().unwrap(),
            "--refresh",
            "1s",
        ],
        120,
        40,
    );
    console.keys("3");
    let code = format!("RAV-{}-0001", chrono::Utc::now().format("%Y"));
    let screen = console
        .wait_for("the idea in the moderation queue", |s| {
            s.contains(&code) && s.contains("unroutable")
        })
        .await;
    assert!(
        screen.contains("Kupujte jeftine satove"),
        "the operator sees the text:\n{screen}"
    );

    console.keys("x");
    console.keys("spam, advertising");
    console.keys("Enter");
    console
        .wait_for("the rejection confirmed on screen", |s| s.contains("rejected"))
        .await;
    let last = eventually("the idea rejected", WAIT, || {
        let token = operator.clone();
        let state = state(token);
        async move { state.await.filter(|s| s == "rejected") }
    })
    .await;
    assert_eq!(last, "rejected");
    let history: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/ideas/6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d", cp.api))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let step = history["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(step["actor"], "e2e-moderator");
    assert_eq!(step["internal_note"], "spam, advertising");
    console.keys("q");
    drop(cp);
}
