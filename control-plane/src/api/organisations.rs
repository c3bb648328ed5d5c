//! The network's organisations over HTTP: applying to join (no token, rate-limited), the
//! register, operators' decisions, member tokens and the routing audit log.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::DateTime;
use protocol::api::NoParams;
use protocol::audit::{AuditEntry, AuditPage};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{AdministerNetwork, Authorized, DecideOrganisations, ReadOrganisations};
use super::ideas::{ClientAddr, admit};
use super::openapi::describe;
use super::ota::AuditQuery;
use super::problem::{ApiError, JsonBody, PathParams, QueryParams};
use crate::routing::{Application, OrgState, Organisation};

/// How long an organisation member's token stays valid.
const MEMBER_TOKEN_TTL: Duration = Duration::from_secs(90 * 86_400);

/// What an applicant is told.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApplicationReceipt {
    /// The organisation's id, to quote when asking about the application.
    pub id: String,
    pub state: OrgState,
    pub message: String,
}

/// `GET /api/v1/organisations` filter.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrganisationsQuery {
    /// Only organisations in this state.
    pub state: Option<OrgState>,
}

/// An operator's decision.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// Why; recorded with the decision (and shown with the organisation).
    pub note: Option<String>,
}

/// `POST /api/v1/organisations/{id}/token`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberTokenRequest {
    /// Who the token is for (a person's name or e-mail address); it is its `sub`.
    pub subject: String,
}

/// A member token.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberToken {
    pub org: String,
    pub subject: String,
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Apply to join the network.
#[utoipa::path(
    post,
    path = "/api/v1/organisations/applications",
    tag = "organisations",
    params(NoParams),
    request_body = Application,
    description = "No token needed. A civil-society organisation applies to join the \
                   Participatory Democracy Network; it receives ideas once an operator approves \
                   it. Validated (a problem names every bad field) and rate-limited per client \
                   address (429 with `Retry-After`).",
    responses(
        (status = 201, description = "The application was recorded", body = ApplicationReceipt),
        (status = 429, description = "Too many requests from this address", body = protocol::api::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn apply(
    client: ClientAddr,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
    JsonBody(application): JsonBody<Application>,
) -> Result<(StatusCode, Json<ApplicationReceipt>), ApiError> {
    admit(&s, &client)?;
    let org = s.routing.apply(application).await?;
    Ok((
        StatusCode::CREATED,
        Json(ApplicationReceipt {
            message: format!(
                "Thank you: the application of {} is recorded as {:?} and waits for an operator's decision.",
                org.name, org.id
            ),
            id: org.id,
            state: org.state,
        }),
    ))
}

/// The network's organisations.
#[utoipa::path(
    get,
    path = "/api/v1/organisations",
    tag = "organisations",
    params(OrganisationsQuery),
    security(("bearer" = [])),
    description = describe::<ReadOrganisations>("Every organisation (applied, active, suspended, rejected), by id."),
    responses((status = 200, description = "The organisations", body = Vec<Organisation>))
)]
pub(super) async fn list(
    _: Authorized<ReadOrganisations>,
    State(s): State<AppState>,
    QueryParams(q): QueryParams<OrganisationsQuery>,
) -> Json<Vec<Organisation>> {
    Json(
        s.routing
            .organisations()
            .await
            .into_values()
            .filter(|o| q.state.is_none_or(|st| o.state == st))
            .collect(),
    )
}

/// One organisation.
#[utoipa::path(
    get,
    path = "/api/v1/organisations/{id}",
    tag = "organisations",
    params(("id" = String, Path, description = "Organisation id"), NoParams),
    security(("bearer" = [])),
    description = describe::<ReadOrganisations>("One organisation."),
    responses((status = 200, description = "The organisation", body = Organisation))
)]
pub(super) async fn detail(
    _: Authorized<ReadOrganisations>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Result<Json<Organisation>, ApiError> {
    s.routing
        .organisations()
        .await
        .remove(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("there is no organisation {id:?}")))
}

macro_rules! decision {
    ($name:ident, $path:literal, $decision:literal, $text:literal) => {
        #[utoipa::path(
            post,
            path = $path,
            tag = "organisations",
            params(("id" = String, Path, description = "Organisation id"), DecisionQuery),
            security(("bearer" = [])),
            description = describe::<DecideOrganisations>($text),
            responses(
                (status = 200, description = "The organisation after the decision", body = Organisation),
                (status = 409, description = "Not possible in the organisation's state", body = protocol::api::Problem, content_type = "application/problem+json"),
            )
        )]
        pub(super) async fn $name(
            auth: Authorized<DecideOrganisations>,
            State(s): State<AppState>,
            PathParams(id): PathParams<String>,
            QueryParams(q): QueryParams<DecisionQuery>,
        ) -> Result<Json<Organisation>, ApiError> {
            if q.note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
                return Err(ApiError::validation("note", "at most 2000 characters"));
            }
            Ok(Json(
                s.routing
                    .decide_organisation(&auth.caller().subject, &id, $decision, q.note)
                    .await?,
            ))
        }
    };
}

decision!(
    approve,
    "/api/v1/organisations/{id}/approve",
    "approve",
    "Approves an application (`applied` → `active`): the organisation can be named in rules and receives ideas."
);
decision!(
    reject,
    "/api/v1/organisations/{id}/reject",
    "reject",
    "Turns down an application (`applied` → `rejected`)."
);
decision!(
    suspend,
    "/api/v1/organisations/{id}/suspend",
    "suspend",
    "Suspends an organisation (`active` → `suspended`): routing skips it, ideas offered to it are offered elsewhere at once, ideas it confirmed stay its own."
);
decision!(
    reactivate,
    "/api/v1/organisations/{id}/reactivate",
    "reactivate",
    "Reactivates a suspended organisation (`suspended` → `active`)."
);

/// A token for a member of an organisation.
#[utoipa::path(
    post,
    path = "/api/v1/organisations/{id}/token",
    tag = "organisations",
    params(("id" = String, Path, description = "Organisation id"), NoParams),
    request_body = MemberTokenRequest,
    security(("bearer" = [])),
    description = describe::<AdministerNetwork>(
        "Signs a 90-day `cso` token for a member of an active organisation (what `control-plane \
         token --role cso --org ID` prints)."
    ),
    responses((status = 200, description = "The token", body = MemberToken))
)]
pub(super) async fn token(
    auth: Authorized<AdministerNetwork>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
    JsonBody(req): JsonBody<MemberTokenRequest>,
) -> Result<Json<MemberToken>, ApiError> {
    let subject = req.subject.trim();
    if subject.is_empty() || subject.chars().count() > 200 {
        return Err(ApiError::validation("subject", "must have 1-200 characters"));
    }
    let org = s
        .routing
        .organisations()
        .await
        .remove(&id)
        .ok_or_else(|| ApiError::not_found(format!("there is no organisation {id:?}")))?;
    if org.state != OrgState::Active {
        return Err(ApiError::conflict(format!(
            "organisation {id} is {}; only active organisations get tokens",
            org.state.as_str()
        )));
    }
    let claims = protocol::Claims::new(protocol::Role::Cso, subject, MEMBER_TOKEN_TTL).with_org(&org.id);
    let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or_default();
    tracing::info!(org.id = %org.id, by = %auth.caller().subject, "organisation member token issued");
    Ok(Json(MemberToken {
        org: org.id,
        subject: subject.to_owned(),
        token: s.secret.sign(&claims),
        expires_at,
    }))
}

/// The routing audit log.
#[utoipa::path(
    get,
    path = "/api/v1/routing/audit",
    tag = "organisations",
    params(AuditQuery),
    security(("bearer" = [])),
    description = describe::<AdministerNetwork>(
        "Applications and operators' decisions on organisations, newest first. (Changes to ideas \
         are in each idea's history; rule changes in the rule set versions.)"
    ),
    responses((status = 200, description = "A page of the audit log", body = AuditPage))
)]
pub(super) async fn audit(
    _: Authorized<AdministerNetwork>,
    State(s): State<AppState>,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = q.limit()?;
    let mut items: Vec<AuditEntry> = s
        .routing
        .audit(q.before, limit + 1)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok(Json(AuditPage {
        next_before: if more { items.last().map(|e| e.id) } else { None },
        items,
    }))
}
