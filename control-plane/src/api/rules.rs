//! Routing rules over HTTP: the set in force, its versions, replacing it, and trying an idea
//! against it.

use axum::Json;
use axum::extract::State;
use protocol::api::NoParams;
use serde::Deserialize;

use super::AppState;
use super::auth::{Authorized, ChangeRouting, ReadRouting};
use super::openapi::describe;
use super::problem::{ApiError, JsonBody, QueryParams};
use crate::routing::{Decision, IdeaFacts, RuleSet, RuleSetRecord};

/// `GET /api/v1/routing/rules/versions` paging.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VersionsQuery {
    /// Versions to return, newest first, 1-500 (default 50).
    pub limit: Option<u32>,
}

/// `POST /api/v1/routing/rules/test`: a sample idea or a past one, through a given rule set or
/// the one in force.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTest {
    /// A sample idea.
    pub idea: Option<IdeaFacts>,
    /// Or a stored idea, by id: routed as it would be now, without the organisations that
    /// declined it or let it expire.
    pub idea_id: Option<String>,
    /// The rule set to try; the one in force when absent.
    pub rules: Option<RuleSet>,
}

/// The rule set in force.
#[utoipa::path(
    get,
    path = "/api/v1/routing/rules",
    tag = "routing",
    params(NoParams),
    security(("bearer" = [])),
    description = describe::<ReadRouting>(
        "The routing rules in force with their version, author and time (version 0, empty, until \
         someone sets rules: every idea then goes to its municipality's default organisation or \
         the coordinators' queue)."
    ),
    responses((status = 200, description = "The rule set", body = RuleSetRecord))
)]
pub(super) async fn get(
    _: Authorized<ReadRouting>,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Json<RuleSetRecord> {
    Json(s.routing.rules().await)
}

/// Replace the rule set.
#[utoipa::path(
    put,
    path = "/api/v1/routing/rules",
    tag = "routing",
    params(NoParams),
    request_body = RuleSet,
    security(("bearer" = [])),
    description = describe::<ChangeRouting>(
        "Replaces the whole rule set atomically as a new version (every version is kept, with who \
         set it). Validated: unknown organisations, municipalities or benches, empty targets, \
         duplicate names or priorities and zero deadlines are a 400 problem whose `errors` name \
         every bad field. Applies to ideas routed from now on."
    ),
    responses((status = 200, description = "The new version", body = RuleSetRecord))
)]
pub(super) async fn put(
    auth: Authorized<ChangeRouting>,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
    JsonBody(rules): JsonBody<RuleSet>,
) -> Result<Json<RuleSetRecord>, ApiError> {
    Ok(Json(s.routing.set_rules(&auth.caller().subject, rules).await?))
}

/// Earlier versions of the rule set.
#[utoipa::path(
    get,
    path = "/api/v1/routing/rules/versions",
    tag = "routing",
    params(VersionsQuery),
    security(("bearer" = [])),
    description = describe::<ReadRouting>("Every version of the rule set, newest first."),
    responses((status = 200, description = "The versions", body = Vec<RuleSetRecord>))
)]
pub(super) async fn versions(
    _: Authorized<ReadRouting>,
    State(s): State<AppState>,
    QueryParams(q): QueryParams<VersionsQuery>,
) -> Result<Json<Vec<RuleSetRecord>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("limit", "must be 1-500"));
    }
    Ok(Json(s.routing.rule_versions(limit).await?))
}

/// Try an idea against a rule set.
#[utoipa::path(
    post,
    path = "/api/v1/routing/rules/test",
    tag = "routing",
    params(NoParams),
    request_body = RuleTest,
    security(("bearer" = [])),
    description = describe::<ChangeRouting>(
        "Runs a sample idea (`idea`) or a stored one (`idea_id`) through a rule set (`rules`, or \
         the one in force) without changing anything, and explains the outcome: for every rule in \
         priority order whether it matched and, if not, which conditions failed; which rule \
         chose which organisations; or why the idea would be unroutable."
    ),
    responses((status = 200, description = "The decision and its explanation", body = Decision))
)]
pub(super) async fn test(
    _: Authorized<ChangeRouting>,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
    JsonBody(req): JsonBody<RuleTest>,
) -> Result<Json<Decision>, ApiError> {
    let (facts, excluded) = match (req.idea, req.idea_id) {
        (Some(facts), None) => (facts, Vec::new()),
        (None, Some(id)) => {
            let idea = s.routing.idea(&id).await?;
            let facts = IdeaFacts {
                bench_id: idea.bench_id.clone(),
                municipality: idea.municipality.clone(),
                category: idea.category.clone(),
                lang: idea.lang.clone(),
                text: idea.text.clone(),
            };
            (facts, idea.excluded)
        }
        _ => return Err(ApiError::validation("idea", "give exactly one of `idea` and `idea_id`")),
    };
    Ok(Json(s.routing.test_rules(&facts, &excluded, req.rules.as_ref()).await?))
}
