//! `/api/v1/benches/{id}/telemetry`: a bench's telemetry in time buckets, aggregated by the
//! database (see `store::series`).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use protocol::api::{Bucket, SessionCounts, Stats, TelemetryPoint, TelemetryQuery, TelemetrySeries};

use super::AppState;
use super::auth::{Authorized, ReadFleet};
use super::benches::registered;
use super::openapi::describe;
use super::problem::{ApiError, PathParams, QueryParams};
use crate::telemetry::{Agg, TelemetryBucket};

/// Most buckets one response may span.
pub const MAX_POINTS: i64 = 10_000;

/// Longest period a query may cover.
pub const MAX_RANGE_DAYS: i64 = 400;

/// Time-bucketed telemetry of one bench.
#[utoipa::path(
    get,
    path = "/api/v1/benches/{id}/telemetry",
    tag = "telemetry",
    params(("id" = String, Path, description = "Bench id"), TelemetryQuery),
    security(("bearer" = [])),
    description = describe::<ReadFleet>(
        "Per bucket: average, minimum and maximum of solar power, battery, load and temperatures; \
         the most active sessions and Wi-Fi clients; sessions started; bandwidth in bytes per second. \
         Counters restart when a bench reboots; increases are computed across resets like \
         Prometheus `rate()`. `(to - from) / bucket` may be at most 10 000, else 400 with \
         `field: bucket`."
    ),
    responses((status = 200, description = "The series, oldest bucket first", body = TelemetrySeries))
)]
pub(super) async fn series(
    _: Authorized<ReadFleet>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<TelemetryQuery>,
) -> Result<Json<TelemetrySeries>, ApiError> {
    let info = registered(&s, &id)?;
    check_range(q.from, q.to)?;
    check_points(q.from, q.to, q.bucket)?;
    let width = TimeDelta::seconds(i64::try_from(q.bucket.seconds()).unwrap_or(i64::MAX));
    let buckets = s.store.telemetry_buckets(info.id.as_str(), q.from, q.to, width).await?;
    Ok(Json(TelemetrySeries {
        bench_id: id,
        from: q.from,
        to: q.to,
        bucket: q.bucket,
        points: buckets.into_iter().map(point).collect(),
    }))
}

/// `from` before `to`, at most [`MAX_RANGE_DAYS`] apart.
pub(super) fn check_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ApiError> {
    if to <= from {
        return Err(ApiError::validation("to", "`to` must be later than `from`"));
    }
    if to - from > TimeDelta::days(MAX_RANGE_DAYS) {
        return Err(ApiError::validation(
            "to",
            format!("the period may be at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok(())
}

fn check_points(from: DateTime<Utc>, to: DateTime<Utc>, bucket: Bucket) -> Result<(), ApiError> {
    let range_ms = (to - from).num_milliseconds();
    let bucket_ms = i64::try_from(bucket.seconds()).unwrap_or(i64::MAX / 1000) * 1000;
    let points = (range_ms + bucket_ms - 1) / bucket_ms;
    if points > MAX_POINTS {
        // The smallest whole-minute bucket (or second, under a minute) that fits.
        let min_s = (range_ms + MAX_POINTS * 1000 - 1) / (MAX_POINTS * 1000);
        let min_s = if min_s > 60 { (min_s + 59) / 60 * 60 } else { min_s };
        let suggestion = u64::try_from(min_s)
            .ok()
            .and_then(Bucket::from_seconds)
            .map_or_else(String::new, |b| format!(" (at least {b})"));
        return Err(ApiError::validation(
            "bucket",
            format!(
                "{bucket} buckets over this period make {points} points, more than {MAX_POINTS}; \
                 widen the bucket{suggestion} or shorten the period"
            ),
        ));
    }
    Ok(())
}

fn stats(a: Agg) -> Stats {
    Stats {
        avg: a.avg,
        min: a.min,
        max: a.max,
    }
}

/// Bytes per second from a summed increase and the time it took.
fn rate(increase: Option<f64>, span_ms: Option<i64>) -> Option<f64> {
    match (increase, span_ms) {
        (Some(bytes), Some(ms)) if ms > 0 => Some(bytes * 1000.0 / ms as f64),
        _ => None,
    }
}

fn point(b: TelemetryBucket) -> TelemetryPoint {
    let count = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    TelemetryPoint {
        start: b.start,
        samples: count(Some(b.samples)).unwrap_or(0),
        solar_w: stats(b.solar_w),
        battery_pct: stats(b.battery_pct),
        load_w: b.load_w.map(stats),
        cpu_temp_c: b.cpu_temp_c.map(stats),
        enclosure_temp_c: b.enclosure_temp_c.map(stats),
        sessions_max: SessionCounts {
            wifi: count(b.sessions_wifi_max),
            usb: count(b.sessions_usb_max),
            kiosk: count(b.sessions_kiosk_max),
        },
        wifi_clients_max: count(b.wifi_clients_max),
        sessions_started: SessionCounts {
            wifi: count(b.wifi_started),
            usb: count(b.usb_started),
            kiosk: count(b.kiosk_started),
        },
        rx_bytes_per_s: rate(b.rx_increase, b.rx_span_ms),
        tx_bytes_per_s: rate(b.tx_increase, b.tx_span_ms),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use protocol::Role;
    use protocol::api::Problem;
    use serde_json::json;

    use super::*;
    use crate::api::testing::{Harness, on_both_backends};
    use crate::store::testing::telemetry_row;
    use crate::telemetry::TelemetryRow;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn point_limits() {
        let from = t("2026-11-01T00:00:00Z");
        let b = |s: &str| s.parse::<Bucket>().unwrap();
        // 10 000 one-minute buckets fit exactly; one more second does not.
        let to = from + TimeDelta::minutes(10_000);
        assert!(check_points(from, to, b("1m")).is_ok());
        let e = check_points(from, to + TimeDelta::seconds(1), b("1m")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("bucket"));
        assert_eq!(
            e.detail,
            "1m buckets over this period make 10001 points, more than 10000; \
             widen the bucket (at least 2m) or shorten the period"
        );
        // A year of 5-minute buckets is too many; the suggestion fits.
        let e = check_points(from, from + TimeDelta::days(365), b("5m")).unwrap_err();
        assert!(e.detail.contains("(at least 53m)"), "{}", e.detail);
        assert!(check_points(from, from + TimeDelta::days(365), b("53m")).is_ok());
        assert!(check_points(from, from + TimeDelta::days(365), b("52m")).is_err());
    }

    #[test]
    fn ranges() {
        let from = t("2026-11-01T00:00:00Z");
        assert_eq!(check_range(from, from).unwrap_err().field.as_deref(), Some("to"));
        assert!(check_range(from, from + TimeDelta::days(400)).is_ok());
        let e = check_range(from, from + TimeDelta::days(400) + TimeDelta::milliseconds(1)).unwrap_err();
        assert_eq!(e.detail, "the period may be at most 400 days");
    }

    #[test]
    fn rates() {
        assert_eq!(rate(Some(4500.0), Some(45_000)), Some(100.0));
        assert_eq!(rate(Some(1.0), Some(0)), None);
        assert_eq!(rate(None, Some(10)), None);
    }

    /// One sample a minute from 10:00; the bench reboots between 10:02 and 10:03.
    fn minutes_with_reboot() -> Vec<TelemetryRow> {
        let plan = [
            // (uptime_s, rx, tx, wifi_started, solar_w)
            (600, 0, 0, 10, 10.0),
            (660, 60_000, 6_000, 12, 20.0),
            (720, 120_000, 12_000, 15, 30.0),
            (30, 30_000, 3_000, 1, 40.0),
            (90, 90_000, 9_000, 4, 50.0),
        ];
        plan.iter()
            .enumerate()
            .map(|(i, &(uptime, rx, tx, ws, solar))| TelemetryRow {
                solar_w: solar,
                uptime_s: Some(uptime),
                rx_bytes: Some(rx),
                tx_bytes: Some(tx),
                wifi_started: Some(ws),
                sessions_wifi: Some(i as i32),
                cpu_temp_c: Some(40.0 + i as f64),
                ..telemetry_row(
                    "mostar-01",
                    i as i64,
                    t("2026-11-26T10:00:00Z") + TimeDelta::minutes(i as i64),
                )
            })
            .collect()
    }

    async fn bandwidth_across_a_reboot(h: &Harness) {
        h.store().insert_telemetry(&minutes_with_reboot()).await.unwrap();
        let uri = "/api/v1/benches/mostar-01/telemetry?from=2026-11-26T10:00:00Z&to=2026-11-26T11:00:00Z&bucket=5m";
        let (status, body) = h.get_json(uri, Role::Viewer).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // +60 000 twice, 30 000 counted from zero after the reboot, +60 000: 210 000 B in 240 s.
        assert_eq!(
            body,
            json!({
                "bench_id": "mostar-01",
                "from": "2026-11-26T10:00:00Z",
                "to": "2026-11-26T11:00:00Z",
                "bucket": "5m",
                "points": [{
                    "start": "2026-11-26T10:00:00Z",
                    "samples": 5,
                    "solar_w": {"avg": 30.0, "min": 10.0, "max": 50.0},
                    "battery_pct": {"avg": 50.0, "min": 50.0, "max": 50.0},
                    "load_w": null,
                    "cpu_temp_c": {"avg": 42.0, "min": 40.0, "max": 44.0},
                    "enclosure_temp_c": null,
                    "sessions_max": {"wifi": 4, "usb": null, "kiosk": null},
                    "wifi_clients_max": null,
                    "sessions_started": {"wifi": 2 + 3 + 1 + 3, "usb": null, "kiosk": null},
                    "rx_bytes_per_s": 875.0,
                    "tx_bytes_per_s": 87.5,
                }]
            }),
            "{}",
            h.backend()
        );

        // Minute buckets: one sample each; the reboot minute reports 30 000 B / 60 s.
        let uri = "/api/v1/benches/mostar-01/telemetry?from=2026-11-26T10:00:00Z&to=2026-11-26T10:10:00Z&bucket=1m";
        let (status, body) = h.get_json(uri, Role::Operator).await;
        assert_eq!(status, StatusCode::OK);
        let rates: Vec<_> = body["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rx_bytes_per_s"].clone())
            .collect();
        assert_eq!(
            rates,
            [json!(null), json!(1000.0), json!(1000.0), json!(500.0), json!(1000.0)]
        );
        let started: Vec<_> = body["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sessions_started"]["wifi"].clone())
            .collect();
        assert_eq!(started, [json!(null), json!(2), json!(3), json!(1), json!(3)]);

        // An offset in the query (`+` percent-encoded, or sent raw and read back as a space).
        for from in ["2026-11-26T11:00:00%2B01:00", "2026-11-26T11:00:00+01:00"] {
            let uri = format!("/api/v1/benches/mostar-01/telemetry?from={from}&to=2026-11-26T10:02:00Z&bucket=1h");
            let (status, body) = h.get_json(&uri, Role::Admin).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {body}");
            assert_eq!(body["from"], "2026-11-26T10:00:00Z");
            assert_eq!(body["points"][0]["samples"], 2);
        }
        // Nothing in range: no points.
        let uri = "/api/v1/benches/zepce-01/telemetry?from=2026-11-26T10:00:00Z&to=2026-11-26T11:00:00Z&bucket=1m";
        let (_, body) = h.get_json(uri, Role::Viewer).await;
        assert_eq!(body["points"], json!([]));
    }

    on_both_backends!(bandwidth_across_a_reboot);

    async fn bad_telemetry_queries(h: &Harness) {
        let base = "/api/v1/benches/mostar-01/telemetry";
        for (query, field, needle) in [
            (
                "from=2026-11-01T00:00:00Z&to=2026-11-09T00:00:00Z&bucket=1m",
                "bucket",
                "widen the bucket",
            ),
            (
                "from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z&bucket=1h",
                "to",
                "later than `from`",
            ),
            (
                "from=2025-01-01T00:00:00Z&to=2026-11-01T00:00:00Z&bucket=1d",
                "to",
                "at most 400 days",
            ),
            ("from=yesterday&to=2026-11-01T00:00:00Z&bucket=1h", "from", "RFC 3339"),
            ("from=2026-11-01&to=2026-11-02T00:00:00Z&bucket=1h", "from", "RFC 3339"),
            (
                "from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&bucket=1w",
                "bucket",
                "invalid bucket",
            ),
            (
                "from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z",
                "bucket",
                "missing field `bucket`",
            ),
            (
                "from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&bucket=1h&avg=1",
                "avg",
                "unknown query parameter",
            ),
        ] {
            let (status, _, body) = h.get(&format!("{base}?{query}"), Some(Role::Viewer)).await;
            let p: Problem = serde_json::from_slice(&body).unwrap();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(p.field.as_deref(), Some(field), "{query}: {}", p.detail);
            assert!(p.detail.contains(needle), "{query}: {}", p.detail);
        }
        let (status, _, _) = h
            .get(
                "/api/v1/benches/atlantis-01/telemetry?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&bucket=1h",
                Some(Role::Viewer),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    on_both_backends!(bad_telemetry_queries);
}
