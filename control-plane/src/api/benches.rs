//! `/api/v1/benches`: every bench with its live state and newest sample, one bench with its
//! recent status changes, and the full status history a page at a time.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use chrono::DateTime;
use protocol::api::{
    Bench, BenchDetail, BenchToken, BenchesQuery, HealthNow, NetworkNow, NoParams, PowerNow, SessionsNow, StatusChange,
    StatusEventsPage, StatusEventsQuery,
};
use protocol::{BenchInfo, BenchState};

use super::AppState;
use super::auth::{Authorized, MintBenchTokens, ReadFleet};
use super::openapi::describe;
use super::problem::{ApiError, PathParams, QueryParams};
use crate::presence::BenchPresence;
use crate::presence::{StatusCursor, StatusEvent};
use crate::telemetry::TelemetryRow;

/// Status changes shown with one bench.
const RECENT_STATUS: u32 = 20;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// Every bench with its live state and newest sample, ordered by id.
#[utoipa::path(
    get,
    path = "/api/v1/benches",
    tag = "benches",
    params(BenchesQuery),
    security(("bearer" = [])),
    description = describe::<ReadFleet>("Every registered bench with its presence state and newest telemetry, ordered by id."),
    responses((status = 200, description = "The benches", body = Vec<Bench>))
)]
pub(super) async fn list(
    _: Authorized<ReadFleet>,
    State(s): State<AppState>,
    QueryParams(q): QueryParams<BenchesQuery>,
) -> Result<Json<Vec<Bench>>, ApiError> {
    let presence = s.presence.snapshot();
    let running = s.ota.running_versions().await;
    let mut latest: HashMap<String, TelemetryRow> = s
        .store
        .latest_telemetry()
        .await?
        .into_iter()
        .map(|r| (r.bench_id.clone(), r))
        .collect();
    let municipality = q.municipality.as_deref().map(str::to_lowercase);
    let benches = s
        .fleet
        .iter()
        .filter(|b| {
            municipality
                .as_ref()
                .is_none_or(|m| &b.municipality.to_lowercase() == m)
        })
        .map(|b| {
            let id = b.id.as_str();
            bench_view(b, presence.get(id), running.get(id).copied(), latest.remove(id))
        })
        .filter(|b| q.state.is_none_or(|state| b.state == state))
        .collect();
    Ok(Json(benches))
}

/// One bench and its most recent status changes.
#[utoipa::path(
    get,
    path = "/api/v1/benches/{id}",
    tag = "benches",
    params(("id" = String, Path, description = "Bench id, e.g. `mostar-01`"), NoParams),
    security(("bearer" = [])),
    description = describe::<ReadFleet>(
        "One bench with its newest telemetry and its 20 most recent status changes (newest first); \
         `status_next_cursor` continues at `/api/v1/benches/{id}/status-events`."
    ),
    responses((status = 200, description = "The bench", body = BenchDetail))
)]
pub(super) async fn detail(
    _: Authorized<ReadFleet>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Result<Json<BenchDetail>, ApiError> {
    let info = registered(&s, &id)?;
    let latest = s.store.latest_telemetry().await?.into_iter().find(|r| r.bench_id == id);
    let (recent_status, status_next_cursor) = page(&s, &id, None, RECENT_STATUS).await?;
    let running = s.ota.running_versions().await.remove(&id);
    Ok(Json(BenchDetail {
        bench: bench_view(info, s.presence.get(&id).as_ref(), running, latest),
        recent_status,
        status_next_cursor,
    }))
}

/// A bench's status changes, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/benches/{id}/status-events",
    tag = "benches",
    params(("id" = String, Path, description = "Bench id"), StatusEventsQuery),
    security(("bearer" = [])),
    description = describe::<ReadFleet>(
        "The bench's presence changes, newest first. Follow `next_cursor` until it is absent."
    ),
    responses((status = 200, description = "A page of status changes", body = StatusEventsPage))
)]
pub(super) async fn status_events(
    _: Authorized<ReadFleet>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<StatusEventsQuery>,
) -> Result<Json<StatusEventsPage>, ApiError> {
    registered(&s, &id)?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation("limit", format!("limit must be 1-{MAX_PAGE}")));
    }
    let before = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let (items, next_cursor) = page(&s, &id, before, limit).await?;
    Ok(Json(StatusEventsPage { items, next_cursor }))
}

/// The registry entry of `id`, or 404.
/// How long a token from the API stays valid.
const BENCH_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

#[utoipa::path(
    post,
    path = "/api/v1/benches/{id}/token",
    tag = "benches",
    params(("id" = String, Path, description = "Bench id"), NoParams),
    security(("bearer" = [])),
    description = describe::<MintBenchTokens>(
        "Signs a 30-day MQTT password for the bench (what `control-plane token --role bench` prints); \
         for provisioning and for `bench-sim run --api`."
    ),
    responses((status = 200, description = "The token", body = BenchToken))
)]
pub(super) async fn token(
    caller: Authorized<MintBenchTokens>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Result<Json<BenchToken>, ApiError> {
    let info = registered(&s, &id)?;
    let claims = protocol::Claims::new(protocol::Role::Bench, info.id.as_str(), BENCH_TOKEN_TTL);
    let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or_default();
    tracing::info!(bench.id = %info.id, by = %caller.caller().subject, "bench token issued");
    Ok(Json(BenchToken {
        bench: info.id.to_string(),
        token: s.secret.sign(&claims),
        expires_at,
    }))
}

pub(super) fn registered<'a>(s: &'a AppState, id: &str) -> Result<&'a BenchInfo, ApiError> {
    s.fleet
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("there is no bench {id:?} in the fleet")))
}

/// One page of changes and the cursor of the next, if there is one.
async fn page(
    s: &AppState,
    id: &str,
    before: Option<StatusCursor>,
    limit: u32,
) -> Result<(Vec<StatusChange>, Option<String>), ApiError> {
    // One more than asked tells whether another page exists.
    let mut rows = s.store.status_events_page(id, before, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|(c, _)| format_cursor(*c))
    } else {
        None
    };
    Ok((rows.into_iter().map(|(_, e)| status_change(e)).collect(), next))
}

/// Opaque to clients: `<at in unix ms>.<row id>`.
fn format_cursor(c: StatusCursor) -> String {
    format!("{}.{}", c.at.timestamp_millis(), c.id)
}

fn parse_cursor(s: &str) -> Result<StatusCursor, ApiError> {
    s.split_once('.')
        .and_then(|(ms, id)| {
            Some(StatusCursor {
                at: DateTime::from_timestamp_millis(ms.parse().ok()?)?,
                id: id.parse().ok()?,
            })
        })
        .ok_or_else(|| ApiError::validation("cursor", "not a cursor this server issued; pass `next_cursor` as is"))
}

pub(super) fn status_change(e: StatusEvent) -> StatusChange {
    StatusChange {
        at: e.at,
        state: e.state,
        cause: e.cause,
        fw: e.fw,
        config_version: e.config_version.and_then(|v| u64::try_from(v).ok()),
        until: e.until,
    }
}

/// A bench as the API shows it: registry entry, presence, the configuration version it runs as
/// OTA knows it (acknowledgements and status alike), newest sample.
pub(super) fn bench_view(
    info: &BenchInfo,
    presence: Option<&BenchPresence>,
    running: Option<u64>,
    latest: Option<TelemetryRow>,
) -> Bench {
    let u64_of = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    let u32_of = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
    let mut bench = Bench {
        id: info.id.to_string(),
        name: info.name.clone(),
        municipality: info.municipality.clone(),
        location: info.location,
        state: presence.map_or(BenchState::NeverSeen, |p| p.state),
        since: presence.and_then(|p| p.since),
        // Presence knows arrivals since this process started; the store knows older ones.
        last_seen: presence
            .and_then(|p| p.last_seen)
            .max(latest.as_ref().map(|r| r.received_at)),
        until: presence
            .filter(|p| p.state == BenchState::Sleeping)
            .and_then(|p| p.until),
        fw: presence.and_then(|p| p.fw.clone()),
        // OTA hears of status reports too; presence only until OTA has taken its report in.
        config_version: running.or_else(|| presence.and_then(|p| p.config_version)),
        sample_ts: None,
        power: None,
        network: None,
        sessions: None,
        health: None,
    };
    if let Some(r) = latest {
        bench.sample_ts = Some(r.ts);
        bench.power = Some(PowerNow {
            solar_w: r.solar_w,
            battery_pct: r.battery_pct,
            battery_v: r.battery_v,
            load_w: r.load_w,
        });
        bench.network = Some(NetworkNow {
            rx_bytes: u64_of(r.rx_bytes),
            tx_bytes: u64_of(r.tx_bytes),
            wifi_clients: u32_of(r.wifi_clients),
            rssi_dbm: r.rssi_dbm,
        });
        bench.sessions = Some(SessionsNow {
            wifi: u32_of(r.sessions_wifi),
            usb: u32_of(r.sessions_usb),
            kiosk: u32_of(r.sessions_kiosk),
            wifi_started: u64_of(r.wifi_started),
            usb_started: u64_of(r.usb_started),
            kiosk_started: u64_of(r.kiosk_started),
        });
        bench.health = Some(HealthNow {
            cpu_temp_c: r.cpu_temp_c,
            enclosure_temp_c: r.enclosure_temp_c,
            uptime_s: u64_of(r.uptime_s),
            disk_free_mb: u64_of(r.disk_free_mb),
            faults: r.faults,
        });
    }
    bench
}

#[cfg(test)]
mod tests;
