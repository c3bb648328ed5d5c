//! `/api/v1/fleet/summary`: the fleet at a glance.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use protocol::BenchState;
use protocol::api::{BenchBattery, BenchFaults, FleetSummary, FleetSummaryQuery, StateCounts};

use super::AppState;
use super::auth::{Authorized, ReadFleet};
use super::openapi::describe;
use super::problem::{ApiError, QueryParams};

/// Battery percentage below which a bench is listed as low, unless the caller says otherwise.
pub const DEFAULT_LOW_BATTERY_PCT: f64 = 20.0;

/// Counts by state, today's energy, sessions and traffic, faults and low batteries.
#[utoipa::path(
    get,
    path = "/api/v1/fleet/summary",
    tag = "fleet",
    params(FleetSummaryQuery),
    security(("bearer" = [])),
    description = describe::<ReadFleet>(
        "Benches per state, and for the current UTC day the fleet's solar energy, sessions started \
         and bytes moved (bench reboots handled); benches whose newest sample reports faults or a \
         battery below the threshold."
    ),
    responses((status = 200, description = "The summary", body = FleetSummary))
)]
pub(super) async fn summary(
    _: Authorized<ReadFleet>,
    State(s): State<AppState>,
    QueryParams(q): QueryParams<FleetSummaryQuery>,
) -> Result<Json<FleetSummary>, ApiError> {
    let threshold = q.low_battery_pct.unwrap_or(DEFAULT_LOW_BATTERY_PCT);
    if !(0.0..=100.0).contains(&threshold) {
        return Err(ApiError::validation(
            "low_battery_pct",
            "low_battery_pct must be a percentage, 0-100",
        ));
    }
    Ok(Json(compute(&s, Utc::now(), threshold).await?))
}

/// The summary as of `now`.
pub(super) async fn compute(s: &AppState, now: DateTime<Utc>, threshold: f64) -> Result<FleetSummary, ApiError> {
    let day_start = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |midnight| midnight.and_utc());
    let presence = s.presence.snapshot();
    let mut by_state = StateCounts::default();
    for b in s.fleet.iter() {
        by_state.add(presence.get(b.id.as_str()).map_or(BenchState::NeverSeen, |p| p.state));
    }
    // Samples stamped ahead of the server clock still belong to today.
    let usage = s.store.usage_totals(day_start, day_start + TimeDelta::days(1)).await?;
    let (mut energy, mut sessions, mut bytes) = (0.0, 0_i64, 0.0);
    for u in usage.iter().filter(|u| s.fleet.contains(&u.bench_id)) {
        energy += u.solar_wh;
        sessions += u.sessions_started;
        bytes += u.rx_bytes + u.tx_bytes;
    }
    let latest = s.store.latest_telemetry().await?;
    let registered = latest.iter().filter(|r| s.fleet.contains(&r.bench_id));
    let faulty_benches = registered
        .clone()
        .filter(|r| !r.faults.is_empty())
        .map(|r| BenchFaults {
            bench_id: r.bench_id.clone(),
            faults: r.faults.clone(),
        })
        .collect();
    let mut low_battery_benches: Vec<_> = registered
        .filter(|r| r.battery_pct < threshold)
        .map(|r| BenchBattery {
            bench_id: r.bench_id.clone(),
            battery_pct: r.battery_pct,
        })
        .collect();
    low_battery_benches.sort_by(|a, b| a.battery_pct.total_cmp(&b.battery_pct));
    Ok(FleetSummary {
        at: now,
        day_start,
        benches: u32::try_from(s.fleet.len()).unwrap_or(u32::MAX),
        by_state,
        solar_energy_today_wh: energy,
        sessions_today: u64::try_from(sessions).unwrap_or(0),
        // Whole bytes: increases are integers, summed as floats only to avoid overflow.
        bytes_today: bytes as u64,
        faulty_benches,
        low_battery_threshold_pct: threshold,
        low_battery_benches,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use chrono::Timelike;
    use protocol::Role;
    use protocol::api::{BenchBattery, BenchFaults, FleetSummary};

    use super::*;
    use crate::api::testing::{Harness, on_both_backends};
    use crate::presence::Input;
    use crate::store::testing::telemetry_row;
    use crate::telemetry::TelemetryRow;

    /// Today's data, relative to `day`: zepce-01 harvests 60 W for 2 minutes (2 Wh), starts 5
    /// sessions across a reboot and moves 3 500 bytes; mostar-01's only sample today has faults.
    /// Yesterday's samples do not count.
    async fn seed(h: &Harness, day: DateTime<Utc>) {
        let at = |minutes: i64| day + TimeDelta::minutes(minutes);
        let z = |seq, minutes, uptime, rx, usb_started, battery| TelemetryRow {
            solar_w: 60.0,
            battery_pct: battery,
            uptime_s: Some(uptime),
            rx_bytes: Some(rx),
            tx_bytes: Some(0),
            usb_started: Some(usb_started),
            ..telemetry_row("zepce-01", seq, at(minutes))
        };
        h.store()
            .insert_telemetry(&[
                z(1, -60, 100, 900_000, 50, 90.0),
                z(2, 10, 4000, 1_000, 7, 30.0),
                z(3, 11, 4060, 3_000, 10, 25.0),
                z(1, 12, 20, 1_500, 2, 12.5),
                TelemetryRow {
                    faults: vec!["battery_failure".into()],
                    battery_pct: 15.0,
                    ..telemetry_row("mostar-01", 1, at(5))
                },
                telemetry_row("ravno-01", 1, at(-30)),
            ])
            .await
            .unwrap();
    }

    async fn summary_of_today(h: &Harness) {
        h.state.presence.apply("zepce-01", Input::Connected { conn: 1 });
        h.state.presence.apply("mostar-01", Input::Connected { conn: 2 });
        h.state.presence.apply("mostar-01", Input::Disconnected { conn: 2 });
        let mut seeded = None;
        // The UTC day may turn between seeding and asking: then seed the new day and ask again.
        for _ in 0..2 {
            let now = Utc::now();
            let day = now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
            if seeded != Some(day) {
                seed(h, day).await;
                seeded = Some(day);
            }
            let (status, body) = h.get_json("/api/v1/fleet/summary", Role::Viewer).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let s: FleetSummary = serde_json::from_value(body).unwrap();
            if s.day_start != day {
                continue;
            }
            assert_eq!(s.at.date_naive(), day.date_naive());
            assert_eq!(s.day_start.hour(), 0);
            assert_eq!(s.benches, 12);
            assert_eq!(
                (s.by_state.online, s.by_state.offline, s.by_state.never_seen),
                (1, 1, 10)
            );
            assert!(
                (s.solar_energy_today_wh - 2.0).abs() < 1e-9,
                "{}",
                s.solar_energy_today_wh
            );
            // usb_started 7 → 10 (+3), then the reboot: 2 counted from zero.
            assert_eq!(s.sessions_today, 5);
            // rx 1 000 → 3 000 (+2 000), then the reboot: 1 500 from zero.
            assert_eq!(s.bytes_today, 3_500);
            assert_eq!(
                s.faulty_benches,
                [BenchFaults {
                    bench_id: "mostar-01".into(),
                    faults: vec!["battery_failure".into()]
                }]
            );
            assert_eq!(s.low_battery_threshold_pct, 20.0);
            assert_eq!(
                s.low_battery_benches,
                [
                    BenchBattery {
                        bench_id: "zepce-01".into(),
                        battery_pct: 12.5
                    },
                    BenchBattery {
                        bench_id: "mostar-01".into(),
                        battery_pct: 15.0
                    },
                ]
            );
            let (_, body) = h
                .get_json("/api/v1/fleet/summary?low_battery_pct=13", Role::Viewer)
                .await;
            assert_eq!(body["low_battery_benches"].as_array().unwrap().len(), 1);
            for bad in [
                "low_battery_pct=101",
                "low_battery_pct=NaN",
                "low_battery_pct=low",
                "battery=5",
            ] {
                let (status, body) = h.get_json(&format!("/api/v1/fleet/summary?{bad}"), Role::Viewer).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
                assert!(body["field"].is_string(), "{bad}: {body}");
            }
            return;
        }
        panic!("the UTC day kept changing under the test");
    }

    on_both_backends!(summary_of_today);
}
