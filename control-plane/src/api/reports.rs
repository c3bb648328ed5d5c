//! `/api/v1/reports/uptime`: availability per bench and for the fleet, as JSON or as CSV that
//! opens cleanly in a spreadsheet.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use protocol::api::{BenchUptime, ReportFormat, UptimeFigures, UptimeQuery, UptimeReport};

use super::AppState;
use super::auth::{Authorized, ReadReports};
use super::openapi::describe;
use super::problem::{ApiError, QueryParams};
use super::telemetry::check_range;
use crate::presence::StatusEvent;

pub mod uptime;

use uptime::Tally;

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "bench_id,name,municipality,availability_pct,online_minutes,offline_minutes,\
                              sleeping_minutes,never_seen_minutes,outages,longest_outage_minutes,mttr_minutes";

/// Availability per bench over a period.
#[utoipa::path(
    get,
    path = "/api/v1/reports/uptime",
    tag = "reports",
    params(UptimeQuery),
    security(("bearer" = [])),
    description = describe::<ReadReports>(
        "Per bench: availability in percent (planned sleep excluded from the denominator), minutes \
         online, offline (including stale), sleeping and before first contact, outages of 5 minutes \
         or more, the longest one and the mean time to recover; and a fleet total. `Accept: text/csv` \
         or `format=csv` returns CSV (UTF-8 with a byte-order mark, the total as the last row)."
    ),
    responses((status = 200, description = "The report",
               content((UptimeReport = "application/json"), (String = "text/csv"))))
)]
pub(super) async fn uptime(
    _: Authorized<ReadReports>,
    State(s): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<UptimeQuery>,
) -> Result<Response, ApiError> {
    check_range(q.from, q.to)?;
    let now = Utc::now();
    if q.from >= now {
        return Err(ApiError::validation(
            "from",
            "`from` is in the future: nothing to report yet",
        ));
    }
    let report = compute(&s, q.from, q.to.min(now), q.municipality.clone()).await?;
    let csv = match q.format {
        Some(format) => format == ReportFormat::Csv,
        None => wants_csv(&headers),
    };
    Ok(if csv {
        let name = format!(
            "attachment; filename=\"uptime-{}-{}.csv\"",
            report.from.format("%Y%m%dT%H%M%SZ"),
            report.to.format("%Y%m%dT%H%M%SZ")
        );
        let mut response = to_csv(&report).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&name) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        response
    } else {
        Json(report).into_response()
    })
}

/// Whether the `Accept` header asks for CSV rather than JSON.
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|m| m.split(';').next())
        .map(str::trim)
        .find(|m| m.eq_ignore_ascii_case("text/csv") || m.eq_ignore_ascii_case("application/json"))
        .is_some_and(|m| m.eq_ignore_ascii_case("text/csv"))
}

/// The report over `from..to` (`to` already capped at now).
pub(super) async fn compute(
    s: &AppState,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    municipality: Option<String>,
) -> Result<UptimeReport, ApiError> {
    let history = s.store.status_history(from, to).await?;
    let wanted = municipality.as_deref().map(str::to_lowercase);
    let mut total = Tally::default();
    let mut benches = Vec::new();
    for b in s.fleet.iter() {
        if wanted.as_ref().is_some_and(|m| &b.municipality.to_lowercase() != m) {
            continue;
        }
        let events: Vec<StatusEvent> = history
            .iter()
            .filter(|e| e.bench_id == b.id.as_str())
            .cloned()
            .collect();
        let tally = Tally::of_bench(&events, from, to);
        total.add(&tally);
        benches.push(BenchUptime {
            bench_id: b.id.to_string(),
            name: b.name.clone(),
            municipality: b.municipality.clone(),
            figures: tally.figures(),
        });
    }
    Ok(UptimeReport {
        from,
        to,
        municipality,
        benches,
        total: total.figures(),
    })
}

/// RFC 4180 CSV with a UTF-8 byte-order mark (without it, spreadsheets guess a legacy code page
/// and mangle `Žepče`), CRLF line ends, and the fleet total as the last row.
pub fn to_csv(report: &UptimeReport) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for b in &report.benches {
        row(&mut out, [&b.bench_id, &b.name, &b.municipality], &b.figures);
    }
    let scope = report.municipality.as_deref().unwrap_or("");
    row(&mut out, ["TOTAL", "Fleet", scope], &report.total);
    out
}

fn row(out: &mut String, labels: [&str; 3], f: &UptimeFigures) {
    for label in labels {
        out.push_str(&quote(label));
        out.push(',');
    }
    let number = |v: f64| format!("{v:.2}");
    let fields = [
        f.availability_pct.map_or_else(String::new, |v| format!("{v:.3}")),
        number(f.online_minutes),
        number(f.offline_minutes),
        number(f.sleeping_minutes),
        number(f.never_seen_minutes),
        f.outages.to_string(),
        number(f.longest_outage_minutes),
        f.mttr_minutes.map_or_else(String::new, number),
    ];
    let _ = write!(out, "{}\r\n", fields.join(","));
}

/// Quotes a field when it holds a separator, quote or line break; a leading `=`, `+`, `-` or `@`
/// is prefixed with `'` so a spreadsheet shows it instead of evaluating it.
fn quote(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use chrono::TimeDelta;
    use protocol::{BenchState, Role};

    use super::*;
    use crate::api::testing::{Harness, on_both_backends, token};

    #[test]
    fn csv_quoting() {
        assert_eq!(quote("Žepče"), "Žepče");
        assert_eq!(quote("Novi Grad, RS"), "\"Novi Grad, RS\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("=cmd()"), "'=cmd()");
    }

    #[test]
    fn accept_header_picks_the_first_known_type() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(wants_csv(&h("text/csv")));
        assert!(wants_csv(&h("text/csv;q=0.9, */*")));
        assert!(!wants_csv(&h("application/json, text/csv")));
        assert!(!wants_csv(&h("*/*")));
        assert!(!wants_csv(&HeaderMap::new()));
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn event(bench: &str, time: &str, state: BenchState) -> StatusEvent {
        StatusEvent {
            bench_id: bench.into(),
            at: at(time),
            state,
            cause: "test".into(),
            fw: None,
            config_version: None,
            until: None,
        }
    }

    /// Availability as the report computes it, from milliseconds.
    fn pct(online_minutes: i64, observed_minutes: i64) -> f64 {
        (online_minutes * 60_000) as f64 * 100.0 / (observed_minutes * 60_000) as f64
    }

    const DAY: &str = "from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z";

    /// On 2026-06-01, mostar-01 is down 06:00-06:30 and asleep 12:00-18:00 (planned); zepce-01
    /// goes down at 20:00 for the rest of the day; the other ten benches are never seen.
    async fn seed(h: &Harness) {
        use BenchState::{Offline, Online, Sleeping, Stale};
        for e in [
            event("mostar-01", "2026-05-31T23:00:00Z", Online),
            event("mostar-01", "2026-06-01T06:00:00Z", Offline),
            event("mostar-01", "2026-06-01T06:10:00Z", Stale),
            event("mostar-01", "2026-06-01T06:30:00Z", Online),
            event("mostar-01", "2026-06-01T12:00:00Z", Sleeping),
            event("mostar-01", "2026-06-01T18:00:00Z", Online),
            event("zepce-01", "2026-05-20T08:00:00Z", Online),
            event("zepce-01", "2026-06-01T20:00:00Z", Offline),
            event("zepce-01", "2026-06-02T07:00:00Z", Online),
        ] {
            h.store().insert_status_event(&e).await.unwrap();
        }
    }

    async fn uptime_of_a_known_day(h: &Harness) {
        seed(h).await;
        let (status, body) = h.get_json(&format!("/api/v1/reports/uptime?{DAY}"), Role::Viewer).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let report: UptimeReport = serde_json::from_value(body).unwrap();
        assert_eq!(
            (report.from, report.to),
            (at("2026-06-01T00:00:00Z"), at("2026-06-02T00:00:00Z"))
        );
        assert_eq!(report.benches.len(), 12);
        let row = |id: &str| report.benches.iter().find(|b| b.bench_id == id).unwrap().figures;
        assert_eq!(
            row("mostar-01"),
            UptimeFigures {
                availability_pct: Some(pct(1050, 1080)),
                online_minutes: 1050.0,
                offline_minutes: 30.0,
                sleeping_minutes: 360.0,
                never_seen_minutes: 0.0,
                outages: 1,
                longest_outage_minutes: 30.0,
                mttr_minutes: Some(30.0),
            }
        );
        assert_eq!(
            row("zepce-01"),
            UptimeFigures {
                availability_pct: Some(pct(1200, 1440)),
                online_minutes: 1200.0,
                offline_minutes: 240.0,
                sleeping_minutes: 0.0,
                never_seen_minutes: 0.0,
                outages: 1,
                longest_outage_minutes: 240.0,
                mttr_minutes: None,
            }
        );
        assert_eq!(row("ravno-01").availability_pct, None);
        assert_eq!(row("ravno-01").never_seen_minutes, 1440.0);
        assert_eq!(report.total.online_minutes, 2250.0);
        assert_eq!(report.total.offline_minutes, 270.0);
        assert_eq!(report.total.availability_pct, Some(pct(2250, 2520)));
        assert_eq!((report.total.outages, report.total.longest_outage_minutes), (2, 240.0));
        assert_eq!(report.total.mttr_minutes, Some(30.0));
        assert_eq!(report.total.never_seen_minutes, 10.0 * 1440.0);

        // One municipality, by its name with diacritics (percent-encoded).
        let uri = format!("/api/v1/reports/uptime?{DAY}&municipality=%C5%BDep%C4%8De");
        let (status, body) = h.get_json(&uri, Role::Admin).await;
        assert_eq!(status, StatusCode::OK);
        let report: UptimeReport = serde_json::from_value(body).unwrap();
        assert_eq!(report.benches.len(), 1);
        assert_eq!(report.municipality.as_deref(), Some("Žepče"));
        assert_eq!(report.total, report.benches[0].figures);
    }

    on_both_backends!(uptime_of_a_known_day);

    async fn uptime_as_csv(h: &Harness) {
        seed(h).await;
        let expected = "\u{feff}bench_id,name,municipality,availability_pct,online_minutes,offline_minutes,\
                        sleeping_minutes,never_seen_minutes,outages,longest_outage_minutes,mttr_minutes\r\n\
                        zepce-01,Žepče smart bench,Žepče,83.333,1200.00,240.00,0.00,0.00,1,240.00,\r\n\
                        TOTAL,Fleet,Žepče,83.333,1200.00,240.00,0.00,0.00,1,240.00,\r\n";
        // By parameter, and by Accept header.
        let by_param = Request::get(format!(
            "/api/v1/reports/uptime?{DAY}&municipality=%C5%BDep%C4%8De&format=csv"
        ))
        .header(header::AUTHORIZATION, format!("Bearer {}", token(Role::Viewer)))
        .body(Body::empty())
        .unwrap();
        let by_accept = Request::get(format!("/api/v1/reports/uptime?{DAY}&municipality=%C5%BDep%C4%8De"))
            .header(header::AUTHORIZATION, format!("Bearer {}", token(Role::Viewer)))
            .header(header::ACCEPT, "text/csv")
            .body(Body::empty())
            .unwrap();
        for req in [by_param, by_accept] {
            let (status, headers, body) = h.send(req).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
            assert_eq!(
                headers[header::CONTENT_DISPOSITION],
                "attachment; filename=\"uptime-20260601T000000Z-20260602T000000Z.csv\""
            );
            assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
        }
        // The whole fleet: a header, 12 benches, a total; mostar-01's row in full.
        let (_, _, body) = h
            .get(&format!("/api/v1/reports/uptime?{DAY}&format=csv"), Some(Role::Viewer))
            .await;
        let text = String::from_utf8(body.to_vec()).unwrap();
        let lines: Vec<_> = text.split("\r\n").collect();
        assert_eq!(lines.len(), 15, "{text}");
        assert_eq!(lines[14], "");
        assert!(lines[1].starts_with("berkovici-01,Berkovići smart bench,Berkovići,,0.00,0.00,0.00,1440.00,0,0.00,"));
        assert!(lines.contains(&"mostar-01,Mostar smart bench,Mostar,97.222,1050.00,30.00,360.00,0.00,1,30.00,30.00"));
        assert_eq!(
            lines[13],
            "TOTAL,Fleet,,89.286,2250.00,270.00,360.00,14400.00,2,240.00,30.00"
        );
        // JSON still wins when asked for.
        let (status, body) = h
            .get_json(&format!("/api/v1/reports/uptime?{DAY}&format=json"), Role::Viewer)
            .await;
        assert_eq!(
            (status, body["benches"].as_array().unwrap().len()),
            (StatusCode::OK, 12)
        );
    }

    on_both_backends!(uptime_as_csv);

    async fn bad_report_queries(h: &Harness) {
        let later = |days| (Utc::now() + TimeDelta::days(days)).format("%Y-%m-%dT%H:%M:%SZ");
        let cases = [
            (format!("{DAY}&format=xlsx"), "format"),
            ("from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z".to_owned(), "to"),
            ("from=2024-06-01T00:00:00Z&to=2026-06-01T00:00:00Z".to_owned(), "to"),
            (format!("from={}&to={}", later(1), later(2)), "from"),
            ("to=2026-06-01T00:00:00Z".to_owned(), "from"),
            (format!("{DAY}&bench=mostar-01"), "bench"),
        ];
        for (query, field) in cases {
            let (status, body) = h
                .get_json(&format!("/api/v1/reports/uptime?{query}"), Role::Viewer)
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert_eq!(body["field"], field, "{query}: {body}");
        }
        let from = (Utc::now() - TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
        let (status, body) = h
            .get_json(
                &format!("/api/v1/reports/uptime?from={from}&to=2099-01-01T00:00:00Z"),
                Role::Viewer,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "more than 400 days: {body}");
        // A period reaching into the future is reported up to now.
        let to = (Utc::now() + TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
        let (status, body) = h
            .get_json(&format!("/api/v1/reports/uptime?from={from}&to={to}"), Role::Viewer)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let report: UptimeReport = serde_json::from_value(body).unwrap();
        assert!(report.to <= Utc::now());
        assert!(
            (report.total.never_seen_minutes - 12.0 * 60.0).abs() < 12.0,
            "about an hour each"
        );
    }

    on_both_backends!(bad_report_queries);
}
