//! Ideas over HTTP: the inbox (staff see every idea, an organisation only those offered to it or
//! confirmed by it), one idea with its history, organisations' and moderators' actions, the
//! moderation queue, the idea report, and the public status page of a tracking code. Thin: the
//! work is [`crate::routing::Routing`]'s.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use protocol::api::NoParams;
use protocol::idea::{IdeaDetail, IdeaPage, PublicIdea};
use protocol::{IdeaState, Role};
use serde::Deserialize;

use super::AppState;
use super::auth::{ActOnIdeas, Authorized, Caller, ModerateIdeas, ReadIdeas, ReadRouting};
use super::openapi::describe;
use super::problem::{ApiError, JsonBody, OptionalJsonBody, PathParams, QueryParams};
use crate::routing::{Actor, IdeaAction, IdeaFilter, IdeaRecord, IdeaReport, Notes, Reader};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;
/// Longest note accepted, in characters.
const MAX_NOTE: usize = 2000;

/// `GET /api/v1/ideas` filters.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IdeasQuery {
    /// States, comma-separated: `offered`, `confirmed,in_action`…
    pub state: Option<String>,
    /// Municipality name as in the fleet registry.
    pub municipality: Option<String>,
    pub category: Option<String>,
    /// Ideas an organisation confirmed or is offered (staff only; a `cso` token always sees
    /// just its own organisation's).
    pub org: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Ideas per page, 1-500 (default 50).
    pub limit: Option<u32>,
}

/// Notes with an action; all optional, but declines and rejections need a `reason`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// Shown on the public status page (contact details in it are redacted there).
    pub public_note: Option<String>,
    /// For staff and the organisation.
    pub internal_note: Option<String>,
    /// Why (required to decline or reject).
    pub reason: Option<String>,
}

/// `POST /api/v1/ideas/{id}/assign`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The organisation to offer the idea to (must be active).
    pub org: String,
    pub internal_note: Option<String>,
}

/// `GET /api/v1/reports/ideas` period.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IdeaReportQuery {
    /// Start (inclusive), RFC 3339.
    pub from: DateTime<Utc>,
    /// End (exclusive), RFC 3339.
    pub to: DateTime<Utc>,
}

/// Who reads, as routing sees it.
fn reader(caller: &Caller) -> Result<Reader, ApiError> {
    match caller.role {
        Role::Admin | Role::Operator => Ok(Reader::Moderator),
        Role::Cso => caller
            .org
            .clone()
            .map(Reader::Organisation)
            .ok_or_else(|| ApiError::forbidden("this cso token names no organisation (`org` claim)")),
        _ => Ok(Reader::Viewer),
    }
}

fn actor(caller: &Caller) -> Actor {
    Actor {
        subject: caller.subject.clone(),
        org: caller.org.clone(),
    }
}

/// Tracking codes of the originals of duplicates among `ideas`.
async fn original_codes(s: &AppState, ideas: &[IdeaRecord]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut codes = BTreeMap::new();
    for id in ideas.iter().filter_map(|i| i.duplicate_of.as_ref()) {
        if !codes.contains_key(id)
            && let Ok(original) = s.routing.idea(id).await
        {
            codes.insert(id.clone(), original.tracking_code);
        }
    }
    Ok(codes)
}

fn parse_states(s: &str) -> Result<Vec<IdeaState>, ApiError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            IdeaState::parse(p).ok_or_else(|| {
                let all: Vec<_> = IdeaState::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::validation("state", format!("unknown state {p:?}; use {}", all.join(", ")))
            })
        })
        .collect()
}

/// Opaque to clients: `<received_at in unix ms>.<idea id>`.
fn format_cursor(idea: &IdeaRecord) -> String {
    format!("{}.{}", idea.received_at.timestamp_millis(), idea.id)
}

fn parse_cursor(s: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    s.split_once('.')
        .and_then(|(ms, id)| Some((DateTime::from_timestamp_millis(ms.parse().ok()?)?, id.to_owned())))
        .ok_or_else(|| ApiError::validation("cursor", "not a cursor from a previous page"))
}

/// The ideas a caller may see, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/ideas",
    tag = "ideas",
    params(IdeasQuery),
    security(("bearer" = [])),
    description = describe::<ReadIdeas>(
        "Ideas, newest first, with keyset paging. A `cso` token sees only ideas offered to its \
         organisation or confirmed by it (its inbox: `?state=offered`), with phone numbers and \
         e-mail addresses in the text redacted unless the citizen consented, and contact details \
         only for ideas it confirmed. Viewers see redacted text; operators the text as sent."
    ),
    responses((status = 200, description = "A page of ideas", body = IdeaPage))
)]
pub(super) async fn list(
    auth: Authorized<ReadIdeas>,
    State(s): State<AppState>,
    QueryParams(q): QueryParams<IdeasQuery>,
) -> Result<Json<IdeaPage>, ApiError> {
    let reader = reader(auth.caller())?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation("limit", format!("must be 1-{MAX_PAGE}")));
    }
    let org = match (&reader, q.org) {
        (Reader::Organisation(mine), Some(other)) if *mine != other => {
            return Err(ApiError::forbidden(
                "a cso token sees only its own organisation's ideas",
            ));
        }
        (Reader::Organisation(mine), _) => Some(mine.clone()),
        (_, org) => org,
    };
    let filter = IdeaFilter {
        states: q.state.as_deref().map(parse_states).transpose()?.unwrap_or_default(),
        org,
        municipality: q.municipality,
        category: q.category,
        before: q.cursor.as_deref().map(parse_cursor).transpose()?,
        limit: limit + 1,
    };
    let mut ideas = s.routing.ideas(&filter).await?;
    let more = ideas.len() > limit as usize;
    ideas.truncate(limit as usize);
    let codes = original_codes(&s, &ideas).await?;
    Ok(Json(IdeaPage {
        next_cursor: if more { ideas.last().map(format_cursor) } else { None },
        items: ideas.iter().map(|i| reader.view(i, &codes)).collect(),
    }))
}

/// One idea with its history.
#[utoipa::path(
    get,
    path = "/api/v1/ideas/{id}",
    tag = "ideas",
    params(("id" = String, Path, description = "Idea id (the bench's UUID)"), NoParams),
    security(("bearer" = [])),
    description = describe::<ReadIdeas>(
        "One idea and every step of its lifecycle (who, when, from, to, notes). An organisation \
         sees the steps that concern it or no organisation, and only its own internal notes; an \
         idea that is not its own is a 404."
    ),
    responses((status = 200, description = "The idea", body = IdeaDetail))
)]
pub(super) async fn detail(
    auth: Authorized<ReadIdeas>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Result<Json<IdeaDetail>, ApiError> {
    let reader = reader(auth.caller())?;
    let idea = s.routing.idea(&id).await?;
    if !reader.may_see(&idea) {
        return Err(ApiError::not_found(format!(
            "there is no idea {id:?} for your organisation"
        )));
    }
    let history = s.routing.history(&id).await?;
    let codes = original_codes(&s, std::slice::from_ref(&idea)).await?;
    Ok(Json(IdeaDetail {
        idea: reader.view(&idea, &codes),
        history: reader.history(&history),
    }))
}

fn notes(body: ActionBody) -> Result<Notes, ApiError> {
    for (field, v) in [
        ("public_note", &body.public_note),
        ("internal_note", &body.internal_note),
        ("reason", &body.reason),
    ] {
        if v.as_ref().is_some_and(|v| v.chars().count() > MAX_NOTE) {
            return Err(ApiError::validation(field, format!("at most {MAX_NOTE} characters")));
        }
    }
    Ok(Notes {
        public: body.public_note.filter(|n| !n.trim().is_empty()),
        internal: body.internal_note.filter(|n| !n.trim().is_empty()),
        reason: body.reason.filter(|n| !n.trim().is_empty()),
    })
}

async fn act(
    s: &AppState,
    caller: &Caller,
    id: &str,
    action: IdeaAction,
    body: ActionBody,
) -> Result<Json<IdeaDetail>, ApiError> {
    let reader = reader(caller)?;
    let notes = notes(body)?;
    let idea = s.routing.act(id, action, &actor(caller), &notes).await?;
    let history = s.routing.history(id).await?;
    let codes = original_codes(s, std::slice::from_ref(&idea)).await?;
    Ok(Json(IdeaDetail {
        idea: reader.view(&idea, &codes),
        history: reader.history(&history),
    }))
}

/// A route acting on one idea: the permission says who, the tag where it is documented.
macro_rules! idea_action {
    ($name:ident, $path:literal, $permission:ty, $tag:literal, $action:expr, $text:literal) => {
        #[utoipa::path(
            post,
            path = $path,
            tag = $tag,
            params(("id" = String, Path, description = "Idea id"), NoParams),
            request_body(content = ActionBody, description = "Optional notes; `reason` to decline or reject"),
            security(("bearer" = [])),
            description = describe::<$permission>($text),
            responses(
                (status = 200, description = "The idea after the action", body = IdeaDetail),
                (status = 409, description = "The idea is not in a state that allows it", body = protocol::api::Problem, content_type = "application/problem+json"),
            )
        )]
        pub(super) async fn $name(
            auth: Authorized<$permission>,
            State(s): State<AppState>,
            PathParams(id): PathParams<String>,
            QueryParams(NoParams {}): QueryParams<NoParams>,
            OptionalJsonBody(body): OptionalJsonBody<ActionBody>,
        ) -> Result<Json<IdeaDetail>, ApiError> {
            act(&s, auth.caller(), &id, $action, body).await
        }
    };
}

idea_action!(
    confirm,
    "/api/v1/ideas/{id}/confirm",
    ActOnIdeas,
    "ideas",
    IdeaAction::Confirm,
    "Your organisation takes on an idea offered to it (`offered` → `confirmed`); the action \
     deadline starts and the citizen's contact details become visible to you."
);
idea_action!(
    decline,
    "/api/v1/ideas/{id}/decline",
    ActOnIdeas,
    "ideas",
    IdeaAction::Decline,
    "Your organisation turns down an idea offered to it; `reason` is required. The idea is routed \
     again without your organisation, or escalates to the coordinators."
);
idea_action!(
    progress,
    "/api/v1/ideas/{id}/progress",
    ActOnIdeas,
    "ideas",
    IdeaAction::Progress,
    "Reports progress on an idea your organisation confirmed (`in_action`); a `public_note` is \
     shown on the citizen's status page."
);
idea_action!(
    complete,
    "/api/v1/ideas/{id}/complete",
    ActOnIdeas,
    "ideas",
    IdeaAction::Complete,
    "Reports the action for an idea your organisation confirmed as done (`completed`)."
);

idea_action!(
    approve,
    "/api/v1/ideas/{id}/approve",
    ModerateIdeas,
    "moderation",
    IdeaAction::Approve,
    "Releases a held idea to routing. Audited in the idea's history."
);
idea_action!(
    reject,
    "/api/v1/ideas/{id}/reject",
    ModerateIdeas,
    "moderation",
    IdeaAction::Reject,
    "Rejects an idea that no organisation has confirmed; `reason` is required (a `public_note` \
     tells the citizen why). Audited in the idea's history."
);

/// Offer an idea to an organisation of the coordinator's choice.
#[utoipa::path(
    post,
    path = "/api/v1/ideas/{id}/assign",
    tag = "moderation",
    params(("id" = String, Path, description = "Idea id"), NoParams),
    request_body = AssignBody,
    security(("bearer" = [])),
    description = describe::<ModerateIdeas>(
        "Offers an unroutable, escalated or offered idea to one active organisation, with a new \
         confirmation deadline. Audited in the idea's history."
    ),
    responses(
        (status = 200, description = "The idea after the assignment", body = IdeaDetail),
        (status = 409, description = "The idea or the organisation is not in a state that allows it", body = protocol::api::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn assign(
    auth: Authorized<ModerateIdeas>,
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Json<IdeaDetail>, ApiError> {
    let notes = ActionBody {
        internal_note: body.internal_note,
        ..ActionBody::default()
    };
    act(&s, auth.caller(), &id, IdeaAction::Assign(body.org), notes).await
}

/// Ideas waiting for operators.
#[utoipa::path(
    get,
    path = "/api/v1/moderation/queue",
    tag = "moderation",
    params(NoParams),
    security(("bearer" = [])),
    description = describe::<ModerateIdeas>(
        "Ideas waiting for operators, newest first: `held` for moderation (blocklisted words), \
         `unroutable` (no rule and no default organisation) and `escalated` (no organisation \
         confirmed in time) — the coordinators' queue. At most 500."
    ),
    responses((status = 200, description = "The queue", body = IdeaPage))
)]
pub(super) async fn queue(
    auth: Authorized<ModerateIdeas>,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Result<Json<IdeaPage>, ApiError> {
    let reader = reader(auth.caller())?;
    let filter = IdeaFilter {
        states: vec![IdeaState::Held, IdeaState::Unroutable, IdeaState::Escalated],
        limit: MAX_PAGE,
        ..IdeaFilter::default()
    };
    let ideas = s.routing.ideas(&filter).await?;
    let codes = original_codes(&s, &ideas).await?;
    Ok(Json(IdeaPage {
        items: ideas.iter().map(|i| reader.view(i, &codes)).collect(),
        next_cursor: None,
    }))
}

/// Ideas by municipality, category and state; time to confirm per organisation.
#[utoipa::path(
    get,
    path = "/api/v1/reports/ideas",
    tag = "reports",
    params(IdeaReportQuery),
    security(("bearer" = [])),
    description = describe::<ReadRouting>(
        "For ideas received in `[from, to)`: counts by state, by municipality and state, by \
         category and state, and per organisation the ideas it confirmed and the median time \
         from arrival to confirmation."
    ),
    responses((status = 200, description = "The report", body = IdeaReport))
)]
pub(super) async fn report(
    _: Authorized<ReadRouting>,
    State(s): State<AppState>,
    QueryParams(q): QueryParams<IdeaReportQuery>,
) -> Result<Json<IdeaReport>, ApiError> {
    if q.to <= q.from {
        return Err(ApiError::validation("to", "must be after `from`"));
    }
    Ok(Json(s.routing.report(q.from, q.to).await?))
}

/// The address a public request came from, to rate-limit it: the peer, or for a request from a
/// trusted proxy the last address in its `X-Forwarded-For` (the one that proxy appended; earlier
/// entries are the client's to forge).
pub(super) struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Without connection info (in-process tests) every caller shares one bucket.
        let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) else {
            return Ok(Self("unknown".to_owned()));
        };
        let forwarded = state
            .config
            .trusted_proxies
            .contains(&peer)
            .then(|| {
                parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
                    .next_back()
            })
            .flatten();
        Ok(Self(forwarded.unwrap_or(peer).to_string()))
    }
}

/// Refuses a public request over the per-address rate limit.
pub(super) fn admit(s: &AppState, client: &ClientAddr) -> Result<(), ApiError> {
    s.routing.admit_public(&client.0).map_err(|wait| {
        tracing::info!(client.addr = %client.0, "public request over the rate limit");
        ApiError::too_many_requests("too many requests from this address; try again later", wait)
    })
}

/// An idea's public status, by its tracking code.
#[utoipa::path(
    get,
    path = "/api/v1/public/ideas/{tracking_code}",
    tag = "public",
    params(("tracking_code" = String, Path, description = "The code the kiosk showed, e.g. `MOS-2026-0042`"), NoParams),
    description = "No token needed. What a citizen holding a tracking code may see: the public \
                   state (`received`, `confirmed`, `in_action`, `completed`, `rejected`, \
                   `duplicate`), the organisation taking care of it once one confirmed it, and \
                   public notes. Rate-limited per client address (429 with `Retry-After`).",
    responses(
        (status = 200, description = "The idea's public status", body = PublicIdea),
        (status = 429, description = "Too many requests from this address", body = protocol::api::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn public(
    client: ClientAddr,
    State(s): State<AppState>,
    PathParams(code): PathParams<String>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Result<Json<PublicIdea>, ApiError> {
    admit(&s, &client)?;
    let code = code.trim().to_ascii_uppercase();
    Ok(Json(s.routing.public(&code).await.map_err(|e| match e {
        crate::routing::RoutingError::UnknownIdea(_) => {
            ApiError::not_found(format!("there is no idea with tracking code {code:?}"))
        }
        other => ApiError::from(other),
    })?))
}

#[cfg(test)]
mod tests;
