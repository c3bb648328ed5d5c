//! Who is calling and what they may do: `Authorization: Bearer <JWT>` (as minted by
//! `control-plane token`), checked against a per-route [`Permission`].
//!
//! A handler states its permission in its signature, `Authorized<ReadFleet>`, so a route cannot
//! forget to check. Missing or invalid tokens are 401 with a `WWW-Authenticate: Bearer`
//! challenge; a valid token whose role lacks the permission is 403; `bench` tokens are for MQTT
//! and never accepted here. Tokens are never logged.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use protocol::Role;
use protocol::token::Secret;

use super::problem::ApiError;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: a person or service name.
    pub subject: String,
    pub role: Role,
    /// The organisation of a `cso` token.
    pub org: Option<String>,
}

/// Something a route lets some roles do.
pub trait Permission: Send + Sync + 'static {
    /// The roles that have it.
    const ROLES: &'static [Role];
    /// What it allows, for 403 messages ("read the fleet").
    const ACTION: &'static str;
}

/// Fleet state and telemetry history (admin, operator, viewer).
#[derive(Debug)]
pub struct MintBenchTokens;

impl Permission for MintBenchTokens {
    const ROLES: &'static [Role] = &[Role::Admin];
    const ACTION: &'static str = "issue bench tokens";
}

/// Read the fleet's state and telemetry.
pub struct ReadFleet;

impl Permission for ReadFleet {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator, Role::Viewer];
    const ACTION: &'static str = "read fleet state and telemetry";
}

/// Availability reports (admin, operator, viewer).
#[derive(Debug)]
pub struct ReadReports;

impl Permission for ReadReports {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator, Role::Viewer];
    const ACTION: &'static str = "read reports";
}

/// The live event stream (admin, operator, viewer).
#[derive(Debug)]
pub struct WatchEvents;

impl Permission for WatchEvents {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator, Role::Viewer];
    const ACTION: &'static str = "watch live fleet events";
}

/// OTA configuration: layers, bench configuration states, rollouts (admin, operator, viewer).
#[derive(Debug)]
pub struct ReadOta;

impl Permission for ReadOta {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator, Role::Viewer];
    const ACTION: &'static str = "read OTA configuration and rollouts";
}

/// Changing configuration layers and creating and steering rollouts (admin, operator).
#[derive(Debug)]
pub struct ChangeOta;

impl Permission for ChangeOta {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator];
    const ACTION: &'static str = "change configuration or steer rollouts";
}

/// The OTA audit log (admin).
#[derive(Debug)]
pub struct ReadAudit;

impl Permission for ReadAudit {
    const ROLES: &'static [Role] = &[Role::Admin];
    const ACTION: &'static str = "read the audit log";
}

/// Read ideas: staff see every idea, a `cso` token only its organisation's (admin, operator,
/// viewer, cso).
#[derive(Debug)]
pub struct ReadIdeas;

impl Permission for ReadIdeas {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator, Role::Viewer, Role::Cso];
    const ACTION: &'static str = "read ideas";
}

/// Confirm, decline, report progress on and complete ideas offered to the caller's
/// organisation (cso).
#[derive(Debug)]
pub struct ActOnIdeas;

impl Permission for ActOnIdeas {
    const ROLES: &'static [Role] = &[Role::Cso];
    const ACTION: &'static str = "act on ideas for an organisation";
}

/// Moderation and the coordinators' queue: approve, reject, assign (admin, operator).
#[derive(Debug)]
pub struct ModerateIdeas;

impl Permission for ModerateIdeas {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator];
    const ACTION: &'static str = "moderate ideas";
}

/// Routing rules and their versions, and idea reports (admin, operator, viewer).
#[derive(Debug)]
pub struct ReadRouting;

impl Permission for ReadRouting {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator, Role::Viewer];
    const ACTION: &'static str = "read routing rules and idea reports";
}

/// Replace the routing rules and try rule sets (admin, operator).
#[derive(Debug)]
pub struct ChangeRouting;

impl Permission for ChangeRouting {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator];
    const ACTION: &'static str = "change or test routing rules";
}

/// The network's organisations (admin, operator, viewer, cso).
#[derive(Debug)]
pub struct ReadOrganisations;

impl Permission for ReadOrganisations {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator, Role::Viewer, Role::Cso];
    const ACTION: &'static str = "read the network's organisations";
}

/// Approve, reject, suspend and reactivate organisations (admin, operator).
#[derive(Debug)]
pub struct DecideOrganisations;

impl Permission for DecideOrganisations {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator];
    const ACTION: &'static str = "decide on organisations";
}

/// Tokens for an organisation's members, and the routing audit log (admin).
#[derive(Debug)]
pub struct AdministerNetwork;

impl Permission for AdministerNetwork {
    const ROLES: &'static [Role] = &[Role::Admin];
    const ACTION: &'static str = "issue organisation tokens or read the routing audit log";
}

/// A caller holding permission `P`. Put it first among a handler's arguments, so that an
/// unauthenticated request is refused before its parameters are looked at.
#[derive(Debug)]
pub struct Authorized<P>(pub Caller, PhantomData<P>);

impl<P> Authorized<P> {
    pub fn caller(&self) -> &Caller {
        &self.0
    }
}

impl<P, S> FromRequestParts<S> for Authorized<P>
where
    P: Permission,
    Secret: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = authenticate(parts, &Secret::from_ref(state))?;
        let span = tracing::Span::current();
        span.record("user.sub", caller.subject.as_str());
        span.record("user.role", caller.role.as_str());
        authorize::<P>(&caller)?;
        Ok(Self(caller, PhantomData))
    }
}

/// Checks the bearer token: signature (HS256 only), issuer, audience, `exp`, `nbf`.
pub fn authenticate(parts: &Parts, secret: &Secret) -> Result<Caller, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "this route needs `Authorization: Bearer <token>`; mint one with `control-plane token`",
            None,
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "the Authorization header must be `Bearer <token>`",
                Some("invalid_request"),
            )
        })?;
    match secret.verify(token) {
        Ok(claims) => Ok(Caller {
            subject: claims.sub,
            role: claims.role,
            org: claims.org,
        }),
        Err(e) => {
            tracing::info!(reason = %e, "bearer token refused");
            let detail = if e.is_expired() {
                "the token has expired; mint a new one"
            } else {
                "the token is not valid for this server"
            };
            Err(ApiError::unauthorized(detail, Some("invalid_token")))
        }
    }
}

/// Whether `caller` holds `P`.
pub fn authorize<P: Permission>(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::Bench {
        return Err(ApiError::forbidden(
            "bench tokens are for MQTT only, never for the HTTP API",
        ));
    }
    if P::ROLES.contains(&caller.role) {
        Ok(())
    } else {
        let allowed: Vec<_> = P::ROLES.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "role {} may not {}; this needs one of: {}",
            caller.role,
            P::ACTION,
            allowed.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{Request, StatusCode};
    use protocol::Claims;

    use super::*;

    fn secret() -> Secret {
        Secret::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    fn parts(authorization: Option<&str>) -> Parts {
        let mut req = Request::builder();
        if let Some(v) = authorization {
            req = req.header(header::AUTHORIZATION, v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        let token = secret().sign(&Claims::new(Role::Viewer, "pm", Duration::from_secs(60)));
        for header in [format!("Bearer {token}"), format!("bearer  {token}")] {
            let c = authenticate(&parts(Some(&header)), &secret()).unwrap();
            assert_eq!((c.subject.as_str(), c.role), ("pm", Role::Viewer));
        }
        for header in [
            None,
            Some("Basic dTpw".to_owned()),
            Some("Bearer ".into()),
            Some(token.clone()),
        ] {
            let e = authenticate(&parts(header.as_deref()), &secret()).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{header:?}");
            assert!(e.challenge.unwrap().starts_with("Bearer realm="));
        }
        let mut old = Claims::new(Role::Admin, "root", Duration::from_secs(60));
        old.exp = chrono::Utc::now().timestamp() - 5;
        let e = authenticate(&parts(Some(&format!("Bearer {}", secret().sign(&old)))), &secret()).unwrap_err();
        assert_eq!(e.detail, "the token has expired; mint a new one");
        assert_eq!(
            e.challenge.as_deref(),
            Some(r#"Bearer realm="benchfleet", error="invalid_token""#)
        );
    }

    #[test]
    fn roles_and_permissions() {
        let caller = |role| Caller {
            subject: "x".into(),
            role,
            org: None,
        };
        assert!(authorize::<ReadFleet>(&caller(Role::Viewer)).is_ok());
        let e = authorize::<ReadFleet>(&caller(Role::Cso)).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert_eq!(
            e.detail,
            "role cso may not read fleet state and telemetry; this needs one of: admin, operator, viewer"
        );
        let e = authorize::<ReadFleet>(&caller(Role::Bench)).unwrap_err();
        assert!(e.detail.contains("MQTT only"));
    }
}
