//! The rollup story: reads that use the per-minute rollups answer as the raw queries do, on
//! random data (reboots, gaps, missing values, late, out-of-order and repeated samples), at every
//! moment (before, between and after refreshes of any size), for bucket sizes that are and are
//! not whole minutes, on SQLite and PostgreSQL; and the rollups are really read.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::testing::{self, telemetry_row};
use super::{Backend, Store, StoreSettings, on_pool, open};
use crate::telemetry::{Agg, TelemetryBucket, TelemetryRow, TelemetryStore, UsageTotals};

/// The start of the story's clock: 2026-11-26T10:00:00Z.
fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Far enough ahead that every marked minute has ended.
fn later() -> DateTime<Utc> {
    epoch() + TimeDelta::days(365)
}

/// One generated sample, relative to the one before it.
#[derive(Debug, Clone)]
struct Step {
    gap_ms: i64,
    reboot: bool,
    /// Increases of rx, tx, wifi, usb, kiosk since the sample before; `None`: not reported.
    increases: [Option<i64>; 5],
    uptime_reported: bool,
    solar_w: f64,
    battery_pct: f64,
    load_w: Option<f64>,
    cpu_temp_c: Option<f64>,
    sessions_wifi: Option<i32>,
    wifi_clients: Option<i32>,
}

fn step() -> impl Strategy<Value = Step> {
    let gap = prop_oneof![
        3 => Just(0_i64),
        10 => 1_i64..20_000,
        4 => 55_000_i64..65_000,
        2 => 100_000_i64..1_500_000,
    ];
    let increase = prop_oneof![9 => (0_i64..5_000).prop_map(Some), 1 => Just(None)];
    (
        gap,
        prop::bool::weighted(0.1),
        [
            increase.clone(),
            increase.clone(),
            increase.clone(),
            increase.clone(),
            increase,
        ],
        prop::bool::weighted(0.9),
        0.0_f64..800.0,
        0.0_f64..100.0,
        prop::option::weighted(0.6, -5.0_f64..60.0),
        prop::option::weighted(0.8, 20.0_f64..90.0),
        prop::option::weighted(0.8, 0_i32..40),
        prop::option::weighted(0.5, 0_i32..60),
    )
        .prop_map(
            |(
                gap_ms,
                reboot,
                increases,
                uptime_reported,
                solar_w,
                battery_pct,
                load_w,
                cpu_temp_c,
                sessions_wifi,
                wifi_clients,
            )| Step {
                gap_ms,
                reboot,
                increases,
                uptime_reported,
                solar_w,
                battery_pct,
                load_w,
                cpu_temp_c,
                sessions_wifi,
                wifi_clients,
            },
        )
}

/// What happens after a batch arrives: maybe a refresh of up to `limit` minutes, of the minutes
/// ended by `now_ms` after the story's start (or all of them).
#[derive(Debug, Clone)]
struct Refresh {
    limit: u32,
    now_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct Plan {
    /// Where the first sample lies after the story's start (not on a minute boundary, mostly).
    start_ms: i64,
    steps: Vec<Step>,
    /// The order samples arrive in (indices into `steps`), cut into batches of these sizes.
    arrival: Vec<usize>,
    batch_sizes: Vec<usize>,
    /// Samples sent again after everything arrived (store-and-forward after a lost ack).
    resent: Vec<usize>,
    refreshes: Vec<Option<Refresh>>,
    /// Query windows relative to the first sample: (from, length) in ms.
    windows: Vec<(i64, i64)>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (0_i64..180_000, prop::collection::vec(step(), 1..60)).prop_flat_map(|(start_ms, steps)| {
        let n = steps.len();
        let refresh = prop::option::weighted(
            0.7,
            (1_u32..6, prop::option::of(0_i64..3_600_000)).prop_map(|(limit, now_ms)| Refresh { limit, now_ms }),
        );
        (
            Just(start_ms),
            Just(steps),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            prop::collection::vec(1_usize..12, 1..8),
            prop::collection::vec(0..n, 0..6),
            prop::collection::vec(refresh, 8),
            prop::collection::vec((-120_000_i64..1_800_000, 1_i64..3_600_000), 3),
        )
            .prop_map(
                |(start_ms, steps, arrival, batch_sizes, resent, refreshes, windows)| Plan {
                    start_ms,
                    steps,
                    arrival,
                    batch_sizes,
                    resent,
                    refreshes,
                    windows,
                },
            )
    })
}

/// The samples of `plan` for `bench`, in time order.
fn samples(bench: &str, plan: &Plan) -> Vec<TelemetryRow> {
    let mut ts = epoch() + TimeDelta::milliseconds(plan.start_ms);
    let mut uptime = 1000_i64;
    let mut counters = [0_i64; 5];
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            ts += TimeDelta::milliseconds(s.gap_ms);
            if s.reboot {
                uptime = 0;
                counters = [0; 5];
            }
            uptime += s.gap_ms / 1000;
            let mut reported = [None; 5];
            for (k, inc) in s.increases.iter().enumerate() {
                if let Some(inc) = inc {
                    counters[k] += inc;
                    reported[k] = Some(counters[k]);
                }
            }
            TelemetryRow {
                solar_w: s.solar_w,
                battery_pct: s.battery_pct,
                load_w: s.load_w,
                cpu_temp_c: s.cpu_temp_c,
                sessions_wifi: s.sessions_wifi,
                wifi_clients: s.wifi_clients,
                rx_bytes: reported[0],
                tx_bytes: reported[1],
                wifi_started: reported[2],
                usb_started: reported[3],
                kiosk_started: reported[4],
                uptime_s: s.uptime_reported.then_some(uptime),
                ..telemetry_row(bench, i as i64, ts)
            }
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn close_opt(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => close(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn close_agg(a: Option<Agg>, b: Option<Agg>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => close(a.avg, b.avg) && a.min == b.min && a.max == b.max,
        (None, None) => true,
        _ => false,
    }
}

/// Equal but for the rounding of floating-point sums (averages, energy).
fn same_buckets(a: &[TelemetryBucket], b: &[TelemetryBucket]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            a.start == b.start
                && a.samples == b.samples
                && close_agg(Some(a.solar_w), Some(b.solar_w))
                && close_agg(Some(a.battery_pct), Some(b.battery_pct))
                && close_agg(a.load_w, b.load_w)
                && close_agg(a.cpu_temp_c, b.cpu_temp_c)
                && close_agg(a.enclosure_temp_c, b.enclosure_temp_c)
                && (
                    a.sessions_wifi_max,
                    a.sessions_usb_max,
                    a.sessions_kiosk_max,
                    a.wifi_clients_max,
                ) == (
                    b.sessions_wifi_max,
                    b.sessions_usb_max,
                    b.sessions_kiosk_max,
                    b.wifi_clients_max,
                )
                && close_opt(a.rx_increase, b.rx_increase)
                && close_opt(a.tx_increase, b.tx_increase)
                && (a.rx_span_ms, a.tx_span_ms) == (b.rx_span_ms, b.tx_span_ms)
                && (a.wifi_started, a.usb_started, a.kiosk_started) == (b.wifi_started, b.usb_started, b.kiosk_started)
        })
}

fn same_usage(a: &[UsageTotals], b: &[UsageTotals]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            a.bench_id == b.bench_id
                && a.samples == b.samples
                && close(a.solar_wh, b.solar_wh)
                && close(a.rx_bytes, b.rx_bytes)
                && close(a.tx_bytes, b.tx_bytes)
                && a.sessions_started == b.sessions_started
        })
}

const WIDTHS_S: [i64; 7] = [15, 60, 120, 300, 420, 3600, 86_400];

/// Every read both ways, for every window of the plan and the whole day.
async fn compare(store: &Backend, bench: &str, plan: &Plan, when: &str) -> Result<(), TestCaseError> {
    let first = epoch() + TimeDelta::milliseconds(plan.start_ms);
    let mut windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = plan
        .windows
        .iter()
        .map(|&(from, len)| {
            let from = first + TimeDelta::milliseconds(from);
            (from, from + TimeDelta::milliseconds(len))
        })
        .collect();
    windows.push((epoch() - TimeDelta::hours(1), epoch() + TimeDelta::days(1)));
    windows.push((epoch(), epoch() + TimeDelta::minutes(17)));
    for (from, to) in windows {
        for width in WIDTHS_S {
            let width = TimeDelta::seconds(width);
            let read = store.telemetry_buckets(bench, from, to, width).await.unwrap();
            let raw = store.telemetry_buckets_raw(bench, from, to, width).await.unwrap();
            prop_assert!(
                same_buckets(&read, &raw),
                "{when}: buckets of {width} over [{from}, {to}) differ:\nread {read:#?}\nraw {raw:#?}"
            );
        }
        // This bench's totals only, so that a failure is this case's (and shrinks as such).
        let mine = |totals: Vec<UsageTotals>| totals.into_iter().filter(|u| u.bench_id == bench).collect::<Vec<_>>();
        let read = mine(store.usage_totals(from, to).await.unwrap());
        let raw = mine(store.usage_totals_raw(from, to).await.unwrap());
        prop_assert!(
            same_usage(&read, &raw),
            "{when}: usage over [{from}, {to}) differs:\nread {read:#?}\nraw {raw:#?}"
        );
    }
    Ok(())
}

async fn run_plan(store: &Backend, bench: &str, plan: &Plan) -> Result<(), TestCaseError> {
    let rows = samples(bench, plan);
    let mut arrival = plan.arrival.iter().copied();
    let mut batches: Vec<Vec<TelemetryRow>> = Vec::new();
    for &size in plan.batch_sizes.iter().cycle() {
        let batch: Vec<_> = arrival.by_ref().take(size).map(|i| rows[i].clone()).collect();
        if batch.is_empty() {
            break;
        }
        batches.push(batch);
    }
    batches.push(plan.resent.iter().map(|&i| rows[i].clone()).collect());
    compare(store, bench, plan, "before any sample").await?;
    for (k, batch) in batches.iter().enumerate() {
        store.insert_telemetry(batch).await.unwrap();
        compare(store, bench, plan, &format!("after batch {k}")).await?;
        if let Some(Some(r)) = plan.refreshes.get(k) {
            let now = r.now_ms.map_or_else(later, |ms| epoch() + TimeDelta::milliseconds(ms));
            store.refresh_rollups(now, r.limit).await.unwrap();
            compare(store, bench, plan, &format!("after batch {k} and a refresh of {r:?}")).await?;
        }
    }
    while store.refresh_rollups(later(), 1000).await.unwrap() > 0 {}
    compare(store, bench, plan, "after every refresh").await?;
    Ok(())
}

static BENCHES: AtomicU64 = AtomicU64::new(0);

fn equal_to_raw(store: &Backend, runtime: &tokio::runtime::Runtime, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        // Each case is a whole story; a failure shrinks for a minute at most.
        max_shrink_time: 60_000,
        ..Config::default()
    });
    let result = runner.run(&plan(), |plan| {
        // A bench of its own per case, so that cases (and shrinking) never see each other's data.
        let bench = format!("p{:05}", BENCHES.fetch_add(1, Ordering::Relaxed));
        runtime.block_on(run_plan(store, &bench, &plan))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

async fn marks(store: &Backend, bench: &str) -> i64 {
    on_pool!(store, |pool| sqlx::query_scalar(
        "SELECT count(*) FROM telemetry_dirty_minutes WHERE bench_id = $1"
    )
    .bind(bench)
    .fetch_one(pool)
    .await
    .unwrap())
}

/// The rollups are really read: marks come and go as samples arrive and minutes are refreshed,
/// repeats mark nothing, and once raw samples are gone the rollups still answer.
async fn rollups_are_read(store: &Backend) {
    let bench = "story-01";
    let rows: Vec<_> = (0..30)
        .map(|i| TelemetryRow {
            solar_w: f64::from(i),
            rx_bytes: Some(1000 * i64::from(i)),
            ..telemetry_row(bench, i64::from(i), epoch() + TimeDelta::seconds(10 * i64::from(i)))
        })
        .collect();
    assert_eq!(store.insert_telemetry(&rows).await.unwrap(), 30);
    assert_eq!(marks(store, bench).await, 5, "five minutes got samples");
    // Only minutes that have ended are refreshed.
    store
        .refresh_rollups(epoch() + TimeDelta::seconds(150), 100)
        .await
        .unwrap();
    assert_eq!(
        marks(store, bench).await,
        3,
        "10:00 and 10:01 ended by 10:02:30, 10:02 not"
    );
    while store.refresh_rollups(later(), 2).await.unwrap() > 0 {}
    assert_eq!(marks(store, bench).await, 0);
    assert_eq!(store.insert_telemetry(&rows[3..9]).await.unwrap(), 0);
    assert_eq!(marks(store, bench).await, 0, "a repeated sample marks nothing");

    let (from, to) = (epoch(), epoch() + TimeDelta::minutes(5));
    let before = store
        .telemetry_buckets(bench, from, to, TimeDelta::minutes(1))
        .await
        .unwrap();
    let usage_before = store.usage_totals(from, to).await.unwrap();
    assert_eq!(before.len(), 5);
    assert_eq!(before[1].rx_increase, Some(6000.0));
    on_pool!(store, |pool| {
        sqlx::query("DELETE FROM telemetry WHERE bench_id = $1")
            .bind(bench)
            .execute(pool)
            .await
            .unwrap();
    });
    assert_eq!(
        store
            .telemetry_buckets_raw(bench, from, to, TimeDelta::minutes(1))
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        store
            .telemetry_buckets(bench, from, to, TimeDelta::minutes(1))
            .await
            .unwrap(),
        before,
        "whole minutes come from the rollups"
    );
    assert_eq!(store.usage_totals(from, to).await.unwrap(), usage_before);
    // A late sample in 10:02: from that minute on the bench is read from raw samples until the
    // maintainer has been there (which is why raw samples must outlive late arrivals).
    store
        .insert_telemetry(&[telemetry_row(bench, 99, epoch() + TimeDelta::seconds(125))])
        .await
        .unwrap();
    let got = store
        .telemetry_buckets(bench, from, to, TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|b| b.samples).collect::<Vec<_>>(), [6, 6, 1]);

    // Rollups without their raw samples would differ from raw reads: gone before the next story.
    for table in ["telemetry", "telemetry_minute", "telemetry_dirty_minutes"] {
        on_pool!(store, |pool| {
            sqlx::query(&format!("DELETE FROM {table} WHERE bench_id = $1"))
                .bind(bench)
                .execute(pool)
                .await
                .unwrap();
        });
    }
}

fn story(store: &Backend, runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        store.migrate().await.unwrap();
        rollups_are_read(store).await;
    });
    equal_to_raw(store, runtime, 40);
}

#[test]
fn rollups_on_sqlite() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = testing::sqlite_database();
    let store = runtime.block_on(open(db.url(), &StoreSettings::default())).unwrap();
    story(&store, &runtime);
}

#[test]
fn rollups_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = runtime.block_on(testing::pg_database()) else {
        return;
    };
    let store = runtime.block_on(open(db.url(), &StoreSettings::default())).unwrap();
    story(&store, &runtime);
    runtime.block_on(async {
        if let Backend::Postgres(pg) = &store {
            pg.pool.close().await;
        }
    });
}
