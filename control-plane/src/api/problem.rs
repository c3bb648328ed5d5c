//! Errors as RFC 9457 problem details (`application/problem+json`), and the extractors that turn
//! bad input into them: [`QueryParams`] and [`JsonBody`] refuse unknown fields and name the field at fault,
//! [`PathParams`] reports a malformed path segment the same way.
//!
//! Server-side failures are logged with their cause; the client only learns that it happened
//! and the request id to quote.

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::api::{PROBLEM_CONTENT_TYPE, Problem};
use serde::de::DeserializeOwned;

use crate::persistence::StoreError;

tokio::task_local! {
    /// The id of the request being handled, so every problem can quote it.
    pub(super) static REQUEST_ID: String;
}

/// The `type` URI of a problem kind.
pub fn problem_type(slug: &str) -> String {
    format!("urn:benchfleet:problem:{slug}")
}

/// An HTTP error, rendered as problem details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The last segment of the `type` URI: `validation`, `unauthorized`, `not-found`…
    pub slug: &'static str,
    pub detail: String,
    pub field: Option<String>,
    /// `WWW-Authenticate` for 401s.
    pub challenge: Option<String>,
    /// Every bad field, when there is more than one to name.
    pub errors: Vec<protocol::config::FieldError>,
    /// `Retry-After` seconds for 429s (small: errors travel in `Result`s everywhere).
    pub retry_after: Option<std::num::NonZeroU32>,
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            slug,
            detail: detail.into(),
            field: None,
            challenge: None,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 400: a parameter or body field is wrong; `field` names it.
    pub fn validation(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "validation", detail)
        }
    }

    /// 400 naming every bad field of a document (`field` is the first).
    pub fn invalid(errors: Vec<protocol::config::FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| {
                if e.field.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.field, e.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            field: errors.first().map(|e| e.field.clone()),
            errors,
            ..Self::new(StatusCode::BAD_REQUEST, "validation", detail)
        }
    }

    /// 409: the request collides with the current state (e.g. an active rollout).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 400 without a single field to blame.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 401 with a `WWW-Authenticate: Bearer` challenge; `error` is RFC 6750's `invalid_token`
    /// when a token was presented.
    pub fn unauthorized(detail: impl Into<String>, error: Option<&str>) -> Self {
        let challenge = match error {
            Some(e) => format!(r#"Bearer realm="benchfleet", error="{e}""#),
            None => r#"Bearer realm="benchfleet""#.to_owned(),
        };
        Self {
            challenge: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        }
    }

    /// 403: authenticated, but the role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "this route does not support that method",
        )
    }

    /// 406: none of the accepted media types can be produced.
    pub fn not_acceptable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "not-acceptable", detail)
    }

    /// 413.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", detail)
    }

    /// 415.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", detail)
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(detail: impl Into<String>, retry_after: std::time::Duration) -> Self {
        Self {
            retry_after: std::num::NonZeroU32::new(u32::try_from(retry_after.as_secs()).unwrap_or(u32::MAX).max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", detail)
        }
    }

    /// 503: the request took longer than the server allows.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long and was abandoned; narrow it or retry later",
        )
    }

    /// 500: logs `cause`; the caller sees only that something failed.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; the request id finds it in the logs",
        )
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    /// The body, as the client sees it.
    pub fn to_problem(&self) -> Problem {
        Problem {
            kind: problem_type(self.slug),
            title: self.title().to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            field: self.field.clone(),
            errors: self.errors.clone(),
            request_id: REQUEST_ID.try_with(Clone::clone).ok(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("not found"),
            other => Self::internal(other),
        }
    }
}

impl From<crate::ota::OtaError> for ApiError {
    fn from(e: crate::ota::OtaError) -> Self {
        use crate::ota::OtaError;
        match e {
            OtaError::Invalid(errors) => Self::invalid(errors),
            OtaError::UnknownBench(b) => Self::validation("bench", format!("there is no bench {b:?} in the fleet")),
            OtaError::UnknownMunicipality(m) => Self::validation(
                "municipality",
                format!("no bench of the fleet is in municipality {m:?}"),
            ),
            OtaError::UnknownRollout(id) => Self::not_found(format!("there is no rollout {id:?}")),
            OtaError::Conflict(detail) => Self::conflict(detail),
            OtaError::NoChange => Self::validation("change", "the change alters no bench's configuration"),
            OtaError::Store(e) => Self::from(e),
        }
    }
}

impl From<crate::routing::RoutingError> for ApiError {
    fn from(e: crate::routing::RoutingError) -> Self {
        use crate::routing::{LifecycleError, RoutingError};
        match e {
            RoutingError::Invalid(errors) => Self::invalid(errors),
            RoutingError::UnknownIdea(id) => Self::not_found(format!("there is no idea {id:?}")),
            RoutingError::UnknownOrganisation(id) => Self::not_found(format!("there is no organisation {id:?}")),
            RoutingError::Lifecycle(LifecycleError::NotYours(id)) => {
                Self::not_found(format!("there is no idea {id:?} for your organisation"))
            }
            RoutingError::Lifecycle(LifecycleError::ReasonRequired(what)) => {
                Self::validation("reason", format!("{what} needs a reason"))
            }
            RoutingError::Lifecycle(e @ LifecycleError::WrongState { .. }) => Self::conflict(e.to_string()),
            RoutingError::Conflict(detail) => Self::conflict(detail),
            RoutingError::Store(e) => Self::from(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.get()));
        }
        response
    }
}

/// A query string parsed into `T` (which should `deny_unknown_fields`); errors name the parameter.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(QueryParams)
    }
}

/// Parses a raw query string into `T`, as [`QueryParams`] does.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let message = e.inner().to_string();
        let field = field_of(&e.path().to_string(), &message);
        let detail = match &field {
            Some(f) if message.starts_with("unknown field") => {
                format!("unknown query parameter `{f}`: {message}")
            }
            Some(f) if !message.contains(f.as_str()) => format!("query parameter `{f}`: {message}"),
            _ => message,
        };
        match field {
            Some(f) => ApiError::validation(f, detail),
            None => ApiError::bad_request(detail),
        }
    })
}

/// The field an error is about: its path, or for errors raised at the top level (unknown,
/// missing and duplicate fields) the first name serde quotes in backticks.
fn field_of(path: &str, message: &str) -> Option<String> {
    if path != "." && !path.is_empty() {
        return Some(path.to_owned());
    }
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// Like [`JsonBody`], but a request without a body gets `T::default()`.
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers();
        let has_body = headers.contains_key(header::CONTENT_TYPE)
            || headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        if !has_body {
            return Ok(Self(T::default()));
        }
        JsonBody::<T>::from_request(req, state).await.map(|JsonBody(v)| Self(v))
    }
}

/// A JSON body parsed into `T` (which should `deny_unknown_fields`); errors name the field.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case("application/json") || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::unsupported_media_type("send the body as application/json"));
        }
        let bytes = bytes::Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::payload_too_large("the request body is larger than the server accepts")
            }
            other => ApiError::bad_request(other.body_text()),
        })?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let message = e.inner().to_string();
            match field_of(&e.path().to_string(), &message) {
                Some(f) if e.inner().is_data() => ApiError::validation(f, format!("body: {message}")),
                _ => ApiError::bad_request(format!("the body is not valid JSON: {message}")),
            }
        })?;
        deserializer
            .end()
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
        Ok(JsonBody(value))
    }
}

/// Path parameters, with rejections as problems.
#[derive(Debug, Clone)]
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParams(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::bad_request(e.body_text())),
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Q {
        from: String,
        limit: Option<u32>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        assert_eq!(
            parse_query::<Q>("from=a&limit=3").unwrap(),
            Q {
                from: "a".into(),
                limit: Some(3)
            }
        );
        let e = parse_query::<Q>("from=a&lmit=3").unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (StatusCode::BAD_REQUEST, Some("lmit")));
        assert!(e.detail.starts_with("unknown query parameter `lmit`"), "{}", e.detail);
        let e = parse_query::<Q>("limit=3").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("from"));
        assert!(e.detail.contains("missing field `from`"), "{}", e.detail);
        let e = parse_query::<Q>("from=a&limit=lots").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("limit"));
        assert!(
            e.detail.starts_with("query parameter `limit`: invalid digit"),
            "{}",
            e.detail
        );
        let e = parse_query::<Q>("from=a&from=b").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("from"));
    }

    #[test]
    fn problems_render_as_rfc_9457() {
        let e = ApiError::validation("bucket", "too many points");
        let p = e.to_problem();
        assert_eq!(p.kind, "urn:benchfleet:problem:validation");
        assert_eq!((p.title.as_str(), p.status), ("Bad Request", 400));
        assert_eq!(p.field.as_deref(), Some("bucket"));
        assert_eq!(p.request_id, None);
        let response = ApiError::unauthorized("no token", None).into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="benchfleet""#
        );
    }
}
