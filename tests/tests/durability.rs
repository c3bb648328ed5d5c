//! No sample a bench sent is lost: the real control-plane binary crashed (`kill -9`) and
//! restarted, its store made unreachable while the buffer is too small for the load, or stopped
//! with SIGTERM, while the simulated LINK 4 fleet keeps sending. At the end every sample each
//! bench took is in the database exactly once, and ack-aware benches hold nothing unconfirmed.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use bench_sim::{Broker, Credentials, FleetOptions, SimFleet};
use control_plane::store;
use protocol::Fleet;
use sqlx::Connection;
use tests::{ControlPlane, Partition, eventually};
use tokio_util::sync::CancellationToken;

/// Samples each of the 12 benches takes, one every [`INTERVAL`]: 240 msg/s for 10 s.
const SAMPLES: u64 = 200;
const INTERVAL: Duration = Duration::from_millis(50);
/// Until every sample is delivered and confirmed.
const WAIT: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// `kill -9` a second and a half in, restart a second later.
    Crash,
    /// The store fails for a while (PostgreSQL: the network to it is cut; SQLite: another
    /// process holds the write lock longer than the busy timeout) and the buffer holds only
    /// 100 rows, so rows are refused too.
    OutageWithSmallBuffer,
    /// SIGTERM with rows in the buffer, benches not using storage acks; restart after.
    Sigterm,
}

async fn samples_survive(postgres: bool, fault: Fault) {
    let pg = if postgres {
        match store::testing::pg_database().await {
            Some(db) => Some(db),
            None => return,
        }
    } else {
        None
    };
    // PostgreSQL is reached through a hop that the outage cuts.
    let partition = match &pg {
        Some(db) => Some(Partition::new(pg_addr(db.url())).await),
        None => None,
    };
    let url = pg.as_ref().zip(partition.as_ref()).map(|(db, p)| via(db.url(), p));

    let config = tempfile::NamedTempFile::new().unwrap();
    let ingest = match fault {
        Fault::Crash => "",
        Fault::OutageWithSmallBuffer => "[ingest]\nbuffer_rows = 100\nbatch_size = 50\n",
        // Rows wait in the buffer for up to 2 s: SIGTERM surely finds some there.
        Fault::Sigterm => "[ingest]\nbatch_size = 50000\nflush_interval_ms = 2000\n",
    };
    std::fs::write(config.path(), ingest).unwrap();
    let config_path = config.path().to_str().unwrap().to_owned();
    let mut cp = ControlPlane::start_with(url.as_deref(), &["--config", &config_path]);

    let credentials = Credentials::from_secret_file(&cp.data_dir().join("jwt.secret")).unwrap();
    let mut opts = FleetOptions::new(Broker::new("127.0.0.1", cp.mqtt.port()), Fleet::link4(), credentials);
    opts.telemetry_interval = Some(INTERVAL);
    opts.max_samples = Some(SAMPLES);
    opts.storage_acks = fault != Fault::Sigterm;
    opts.storage_ack_timeout = Duration::from_secs(2);
    opts.backoff_min = Duration::from_millis(100);
    opts.backoff_max = Duration::from_secs(1);
    let shutdown = CancellationToken::new();
    let sim = SimFleet::spawn(opts, shutdown.clone()).unwrap();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    match fault {
        Fault::Crash => {
            cp.kill();
            tokio::time::sleep(Duration::from_secs(1)).await;
            cp.restart();
        }
        Fault::Sigterm => {
            assert!(cp.terminate().success(), "a clean exit on SIGTERM");
            assert!(
                !cp.log().contains("shutting down with telemetry rows"),
                "SIGTERM wrote the whole buffer"
            );
            cp.restart();
        }
        Fault::OutageWithSmallBuffer => {
            match &partition {
                Some(p) => {
                    p.cut();
                    tokio::time::sleep(Duration::from_secs(4)).await;
                    p.restore();
                }
                None => hold_sqlite_write_lock(&cp.database_url, Duration::from_secs(12)).await,
            }
            assert!(
                cp.log().contains("telemetry write failed; buffering and retrying"),
                "the store really failed"
            );
        }
    }

    let ids: Vec<String> = sim.bench_ids().map(|id| id.to_string()).collect();
    eventually("every sample delivered and confirmed", WAIT, || async {
        ids.iter()
            .all(|id| sim.snapshot(id).is_some_and(|s| s.seq == SAMPLES && s.queued == 0))
            .then_some(())
    })
    .await;
    for id in &ids {
        let s = sim.snapshot(id).unwrap();
        assert_eq!(s.dropped, 0, "{id}: the bench's own queue overflowed");
        if fault != Fault::Sigterm {
            assert_eq!(s.stored_acked, SAMPLES, "{id}: every sample confirmed once");
            assert_eq!(s.unconfirmed, 0, "{id}");
        }
    }
    if fault == Fault::OutageWithSmallBuffer {
        let refused = cp.metric("benchfleet_ingest_rows_dropped_total").await.unwrap_or(0.0);
        assert!(
            refused > 0.0,
            "the small buffer refused rows (and benches sent them again)"
        );
    }

    let pg_url = pg.as_ref().map(|db| db.url());
    if fault == Fault::Sigterm {
        // Without storage acks a bench cannot tell when its samples are stored: the last ones
        // wait up to the 2 s flush interval.
        eventually("the last samples written", WAIT, || async {
            let stored = stored_per_bench(&cp.database_url, pg_url).await;
            let total: usize = stored.values().map(Vec::len).sum();
            (total >= ids.len() * SAMPLES as usize).then_some(())
        })
        .await;
    }
    let stored = stored_per_bench(&cp.database_url, pg_url).await;
    for id in &ids {
        let seqs = &stored[id.as_str()];
        let missing: Vec<i64> = (1..=SAMPLES as i64).filter(|s| !seqs.contains(s)).collect();
        assert!(
            missing.is_empty() && seqs.len() == SAMPLES as usize,
            "{id}: {} rows stored, missing seq {missing:?}",
            seqs.len()
        );
    }
    sim.shutdown().await;
    assert!(cp.stop().success());
}

/// Every stored `seq` (repeats included) of each bench, read straight from the database.
async fn stored_per_bench(sqlite_url: &str, pg_url: Option<&str>) -> BTreeMap<String, Vec<i64>> {
    const SQL: &str = "SELECT bench_id, seq FROM telemetry ORDER BY bench_id, seq";
    let rows: Vec<(String, i64)> = match pg_url {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(SQL).fetch_all(&mut c).await.unwrap()
        }
        None => {
            let mut c = sqlx::SqliteConnection::connect(sqlite_url).await.unwrap();
            sqlx::query_as(SQL).fetch_all(&mut c).await.unwrap()
        }
    };
    let mut per_bench: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (id, seq) in rows {
        per_bench.entry(id).or_default().push(seq);
    }
    per_bench
}

/// Another process holding SQLite's write lock: the control plane's writes wait out their busy
/// timeout and fail.
async fn hold_sqlite_write_lock(url: &str, hold: Duration) {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut c).await.unwrap();
    tokio::time::sleep(hold).await;
    sqlx::query("COMMIT").execute(&mut c).await.unwrap();
}

/// `host:port` of a `postgres://user:password@host:port/db` URL.
fn pg_addr(url: &str) -> std::net::SocketAddr {
    let rest = url.split_once('@').unwrap().1;
    let hostport = rest.split('/').next().unwrap();
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    let hostport = hostport.replace("localhost", "127.0.0.1");
    hostport.parse().unwrap()
}

/// The same URL through `partition`.
fn via(url: &str, partition: &Partition) -> String {
    let (head, rest) = url.split_once('@').unwrap();
    let db = rest.split_once('/').map_or("", |(_, db)| db);
    format!("{head}@{}/{db}", partition.addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loses_nothing_on_sqlite() {
    samples_survive(false, Fault::Crash).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loses_nothing_on_postgres() {
    samples_survive(true, Fault::Crash).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_outage_with_a_small_buffer_loses_nothing_on_sqlite() {
    samples_survive(false, Fault::OutageWithSmallBuffer).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_outage_with_a_small_buffer_loses_nothing_on_postgres() {
    samples_survive(true, Fault::OutageWithSmallBuffer).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_loses_nothing_from_benches_without_acks_on_sqlite() {
    samples_survive(false, Fault::Sigterm).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_loses_nothing_from_benches_without_acks_on_postgres() {
    samples_survive(true, Fault::Sigterm).await;
}
