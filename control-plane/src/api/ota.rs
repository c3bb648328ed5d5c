//! OTA configuration over HTTP: configuration layers (with a dry run), every bench's
//! desired/reported configuration, rollouts and their steering, and the audit log. Thin: the
//! work is [`crate::ota::Ota`]'s.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol::api::NoParams;
use protocol::audit::{AuditEntry, AuditPage};
use protocol::ota::{
    BenchConfigStatus, BenchOta, Layer, LayerChange, Rollout, RolloutPreview, RolloutRequest, RolloutSummary, SetLayer,
};
use serde::Deserialize;

use super::AppState;
use super::auth::{Authorized, ChangeOta, ReadAudit, ReadOta};
use super::benches::registered;
use super::openapi::describe;
use super::problem::{ApiError, JsonBody, PathParams, QueryParams};

/// Versions shown with one bench.
const RECENT_VERSIONS: u32 = 20;
const DEFAULT_AUDIT_PAGE: u32 = 50;
const MAX_AUDIT_PAGE: u32 = 500;

/// `POST /api/v1/rollouts` options.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CreateRolloutQuery {
    /// Only preview: the affected benches with their changes, and the steps.
    pub dry_run: Option<bool>,
}

/// Why an operator steers a rollout, for the audit log.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SteerQuery {
    /// Free text, recorded with the action.
    pub reason: Option<String>,
}

/// `GET /api/v1/ota/audit` paging.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries older than this id (`next_before` of the previous page).
    pub before: Option<i64>,
    /// Entries per page, 1-500 (default 50).
    pub limit: Option<u32>,
}

impl AuditQuery {
    /// The page size asked for, checked.
    pub(super) fn limit(&self) -> Result<u32, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_AUDIT_PAGE);
        if (1..=MAX_AUDIT_PAGE).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::validation(
                "limit",
                format!("limit must be 1-{MAX_AUDIT_PAGE}"),
            ))
        }
    }
}

/// Every configuration layer.
#[utoipa::path(
    get,
    path = "/api/v1/ota/layers",
    tag = "ota",
    params(NoParams),
    security(("bearer" = [])),
    description = describe::<ReadOta>("Every configuration layer (fleet default, municipalities, benches), least specific first."),
    responses((status = 200, description = "The layers", body = Vec<Layer>))
)]
pub(super) async fn layers(
    _: Authorized<ReadOta>,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Json<Vec<Layer>> {
    Json(s.ota.layers().await.into_iter().map(Into::into).collect())
}

/// Replace (or preview replacing) one layer.
#[utoipa::path(
    put,
    path = "/api/v1/ota/layers",
    tag = "ota",
    params(NoParams),
    request_body = SetLayer,
    security(("bearer" = [])),
    description = describe::<ChangeOta>(
        "Replaces one layer and sends every bench whose effective configuration changes a new \
         version at once (use a rollout to go step by step). With `dry_run` nothing changes: \
         the response lists, per bench, the fields that would. An invalid layer is a 400 problem \
         whose `errors` name every bad field; a layer an active rollout controls is a 409."
    ),
    responses(
        (status = 200, description = "Per bench, what changed (or would)", body = LayerChange),
        (status = 409, description = "An active rollout controls the layer or an affected bench", body = protocol::api::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn set_layer(
    auth: Authorized<ChangeOta>,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
    JsonBody(req): JsonBody<SetLayer>,
) -> Result<Json<LayerChange>, ApiError> {
    let benches = if req.dry_run {
        s.ota.dry_run(&req.layer, &req.content).await?
    } else {
        s.ota
            .set_layer(&auth.caller().subject, &req.layer, &req.content)
            .await?
    };
    Ok(Json(LayerChange {
        dry_run: req.dry_run,
        benches,
    }))
}

/// Every bench's configuration state.
#[utoipa::path(
    get,
    path = "/api/v1/ota/benches",
    tag = "ota",
    params(NoParams),
    security(("bearer" = [])),
    description = describe::<ReadOta>(
        "Per bench: desired and reported configuration version, delivery state \
         (`pending`, `delivered`, `applied`, `rejected`, `timed_out`) with timestamps, the \
         bench's rejection reason, and drift (`drift_seconds`, `drifting` after 10 minutes)."
    ),
    responses((status = 200, description = "Every bench, by id", body = Vec<BenchConfigStatus>))
)]
pub(super) async fn benches(
    _: Authorized<ReadOta>,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Json<Vec<BenchConfigStatus>> {
    Json(s.ota.statuses().await.into_iter().map(Into::into).collect())
}

/// One bench's configuration.
#[utoipa::path(
    get,
    path = "/api/v1/ota/benches/{id}",
    tag = "ota",
    params(("id" = String, Path, description = "Bench id, e.g. `mostar-01`"), NoParams),
    security(("bearer" = [])),
    description = describe::<ReadOta>(
        "One bench's configuration state, its effective configuration with the layers it comes \
         from, and its 20 newest issued versions."
    ),
    responses((status = 200, description = "The bench's configuration", body = BenchOta))
)]
pub(super) async fn bench(
    _: Authorized<ReadOta>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Result<Json<BenchOta>, ApiError> {
    registered(&s, &id)?;
    Ok(Json(BenchOta {
        status: s.ota.status(&id).await?.into(),
        effective: s.ota.effective(&id).await?,
        versions: s
            .ota
            .versions(&id, RECENT_VERSIONS)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

/// Every rollout in brief.
#[utoipa::path(
    get,
    path = "/api/v1/rollouts",
    tag = "ota",
    params(NoParams),
    security(("bearer" = [])),
    description = describe::<ReadOta>("Every rollout in brief (state, step, benches per progress state), newest first."),
    responses((status = 200, description = "The rollouts", body = Vec<RolloutSummary>))
)]
pub(super) async fn rollouts(
    _: Authorized<ReadOta>,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Json<Vec<RolloutSummary>> {
    Json(s.ota.rollouts().await.into_iter().map(Into::into).collect())
}

/// Start (or preview) a rollout.
#[utoipa::path(
    post,
    path = "/api/v1/rollouts",
    tag = "ota",
    params(CreateRolloutQuery),
    request_body = RolloutRequest,
    security(("bearer" = [])),
    description = describe::<ChangeOta>(
        "Starts a staged rollout of `change` (a merge patch) to the `target` layers: canary \
         benches first, then batches of `batch_size`, each step gated on acknowledgements and \
         health for `soak_s`, aborting and rolling back by itself when more than \
         `max_failure_ratio` of a step fails. One rollout runs at a time (409 otherwise). With \
         `dry_run=true` nothing starts: the response is the preview."
    ),
    responses(
        (status = 201, description = "The rollout, started", body = Rollout),
        (status = 200, description = "With `dry_run=true`: the affected benches and the steps", body = RolloutPreview),
        (status = 409, description = "Another rollout is active", body = protocol::api::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn create_rollout(
    auth: Authorized<ChangeOta>,
    State(s): State<AppState>,
    QueryParams(q): QueryParams<CreateRolloutQuery>,
    JsonBody(req): JsonBody<RolloutRequest>,
) -> Result<Response, ApiError> {
    if q.dry_run.unwrap_or(false) {
        let preview = s.ota.preview_rollout(&req).await?;
        return Ok(Json(preview).into_response());
    }
    let rollout: Rollout = s.ota.create_rollout(&auth.caller().subject, req).await?.into();
    Ok((StatusCode::CREATED, Json(rollout)).into_response())
}

/// One rollout with per-bench progress.
#[utoipa::path(
    get,
    path = "/api/v1/rollouts/{id}",
    tag = "ota",
    params(("id" = String, Path, description = "Rollout id"), NoParams),
    security(("bearer" = [])),
    description = describe::<ReadOta>(
        "One rollout: its request, state, current step, abort or rollback reason, and per bench \
         its step, progress (`waiting`, `pending`, `soaking`, `healthy`, `skipped`, `rejected`, \
         `timed_out`, `unhealthy`, `rolled_back`), versions and configurations before and after."
    ),
    responses((status = 200, description = "The rollout", body = Rollout))
)]
pub(super) async fn rollout(
    _: Authorized<ReadOta>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Result<Json<Rollout>, ApiError> {
    Ok(Json(s.ota.rollout(&id).await?.into()))
}

/// Pause a running rollout.
#[utoipa::path(
    post,
    path = "/api/v1/rollouts/{id}/pause",
    tag = "ota",
    params(("id" = String, Path, description = "Rollout id"), SteerQuery),
    security(("bearer" = [])),
    description = describe::<ChangeOta>("Stops a running rollout from advancing; acknowledgements keep being recorded."),
    responses(
        (status = 200, description = "The paused rollout", body = Rollout),
        (status = 409, description = "The rollout is not running", body = protocol::api::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn pause(
    auth: Authorized<ChangeOta>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<SteerQuery>,
) -> Result<Json<Rollout>, ApiError> {
    Ok(Json(
        s.ota
            .pause_rollout(&auth.caller().subject, &id, q.reason.as_deref())
            .await?
            .into(),
    ))
}

/// Resume a paused rollout.
#[utoipa::path(
    post,
    path = "/api/v1/rollouts/{id}/resume",
    tag = "ota",
    params(("id" = String, Path, description = "Rollout id"), SteerQuery),
    security(("bearer" = [])),
    description = describe::<ChangeOta>("Lets a paused rollout continue; the time it was paused does not count against its step."),
    responses(
        (status = 200, description = "The running rollout", body = Rollout),
        (status = 409, description = "The rollout is not paused", body = protocol::api::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn resume(
    auth: Authorized<ChangeOta>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<SteerQuery>,
) -> Result<Json<Rollout>, ApiError> {
    Ok(Json(
        s.ota
            .resume_rollout(&auth.caller().subject, &id, q.reason.as_deref())
            .await?
            .into(),
    ))
}

/// Abort an active rollout.
#[utoipa::path(
    post,
    path = "/api/v1/rollouts/{id}/abort",
    tag = "ota",
    params(("id" = String, Path, description = "Rollout id"), SteerQuery),
    security(("bearer" = [])),
    description = describe::<ChangeOta>(
        "Aborts a running or paused rollout: every bench it reached is sent its previous \
         configuration as a new version; the layers stay as they were."
    ),
    responses(
        (status = 200, description = "The aborted rollout", body = Rollout),
        (status = 409, description = "The rollout is not active", body = protocol::api::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn abort(
    auth: Authorized<ChangeOta>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<SteerQuery>,
) -> Result<Json<Rollout>, ApiError> {
    let r = s
        .ota
        .abort_rollout(&auth.caller().subject, &id, q.reason.as_deref())
        .await?;
    Ok(Json(r.into()))
}

/// Roll back a completed rollout.
#[utoipa::path(
    post,
    path = "/api/v1/rollouts/{id}/rollback",
    tag = "ota",
    params(("id" = String, Path, description = "Rollout id"), SteerQuery),
    security(("bearer" = [])),
    description = describe::<ChangeOta>(
        "Undoes a completed rollout: its layers return to what they were before it, and every \
         bench whose configuration changes gets a new version at once. 409 when the rollout did \
         not complete, another is active, or its layers changed since."
    ),
    responses(
        (status = 200, description = "The rolled-back rollout", body = Rollout),
        (status = 409, description = "It cannot be rolled back", body = protocol::api::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn rollback(
    auth: Authorized<ChangeOta>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<SteerQuery>,
) -> Result<Json<Rollout>, ApiError> {
    let r = s
        .ota
        .rollback_rollout(&auth.caller().subject, &id, q.reason.as_deref())
        .await?;
    Ok(Json(r.into()))
}

/// The audit log.
#[utoipa::path(
    get,
    path = "/api/v1/ota/audit",
    tag = "ota",
    params(AuditQuery),
    security(("bearer" = [])),
    description = describe::<ReadAudit>(
        "Every configuration change, newest first: who (`actor`, a token subject or `system`), \
         when, what (`action`, `subject`) and the diff (`detail`). Follow `next_before`."
    ),
    responses((status = 200, description = "A page of the audit log", body = AuditPage))
)]
pub(super) async fn audit(
    _: Authorized<ReadAudit>,
    State(s): State<AppState>,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = q.limit()?;
    // One more than asked tells whether another page exists.
    let mut items: Vec<AuditEntry> = s
        .ota
        .audit(q.before, limit + 1)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_before = if more { items.last().map(|e| e.id) } else { None };
    Ok(Json(AuditPage { items, next_before }))
}

#[cfg(test)]
mod tests;
