//! The OpenAPI 3.1 document, generated from the handlers' annotations and the `protocol::api`
//! types, served at [`SPEC_PATH`] with a Swagger UI at `/docs` (assets embedded at build time,
//! so it works offline).
//!
//! [`finish`] adds what every route has in common instead of repeating it on each handler: the
//! bearer security scheme and the problem-details responses (400 for any bad parameter, 401 and
//! 403 on protected routes, 404 on routes with a path parameter, 500, and 503 on timeout).

use protocol::api::{BenchStateEvent, LaggedEvent, Problem, TelemetryEvent};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Response};

use super::auth::Permission;

/// Where the document is served.
pub const SPEC_PATH: &str = "/api/v1/openapi.json";

/// The name of the bearer security scheme.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "benchfleet control plane",
        description = "Fleet status, telemetry history, uptime reports and live events for the \
                       LINK 4 Cooperation smart benches.\n\n\
                       Authenticate with `Authorization: Bearer <JWT>`; mint a token with \
                       `control-plane token --role viewer --subject <name>`. Errors are RFC 9457 \
                       problem details (`application/problem+json`) whose `type` is \
                       `urn:benchfleet:problem:<kind>` and, for validation errors, whose `field` \
                       names the parameter at fault. Unknown query parameters are refused.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(
        Problem,
        BenchStateEvent,
        TelemetryEvent,
        LaggedEvent,
        protocol::api::ReportFormat,
        crate::routing::IdeaChange
    )),
    tags(
        (name = "benches", description = "The fleet, bench by bench"),
        (name = "telemetry", description = "Time-bucketed telemetry history"),
        (name = "fleet", description = "The fleet at a glance"),
        (name = "reports", description = "Availability reports for project managers"),
        (name = "events", description = "Live changes as Server-Sent Events"),
        (name = "ota", description = "Configuration layers, per-bench desired/reported configuration, staged rollouts, audit log"),
        (name = "organisations", description = "The Participatory Democracy Network's member organisations: applications, decisions, member tokens"),
        (name = "routing", description = "Versioned idea-routing rules, and trying ideas against them"),
        (name = "ideas", description = "Citizens' ideas: organisations' inboxes and actions"),
        (name = "moderation", description = "Held ideas and the coordinators' queue (operators)"),
        (name = "public", description = "What anyone may see without a token"),
        (name = "operations", description = "Liveness, readiness and Prometheus metrics (no token)"),
    )
)]
pub struct ApiDoc;

/// A handler's description followed by the roles that may call it.
pub fn describe<P: Permission>(text: &str) -> String {
    let roles: Vec<_> = P::ROLES.iter().map(|r| format!("`{r}`")).collect();
    format!("{text}\n\nRoles: {}.", roles.join(", "))
}

/// Adds the bearer scheme and the common error responses.
pub fn finish(mut spec: Document) -> Document {
    spec.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    for (path, item) in &mut spec.paths.paths {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let protected = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let responses = &mut op.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem_response(description));
            };
            if path.starts_with("/api/v1/") {
                add("400", "A parameter is invalid or unknown (`field` names it)");
                add(
                    "500",
                    "The server failed; the problem's `request_id` finds the log lines",
                );
                add("503", "The request took longer than the server allows");
            }
            if protected {
                add(
                    "401",
                    "No valid bearer token (missing, malformed, expired, forged); see `WWW-Authenticate`",
                );
                add("403", "The token's role may not use this route");
            }
            if path.contains('{') {
                add("404", "No such bench, rollout, organisation or idea");
            }
        }
    }
    spec
}

fn problem_response(description: &str) -> RefOr<Response> {
    let mut response = Response::new(description);
    response.content.insert(
        protocol::api::PROBLEM_CONTENT_TYPE.to_owned(),
        RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))),
    );
    RefOr::T(response)
}
