//! JSON Web Tokens for benches (MQTT password) and people (HTTP bearer token).
//!
//! HS256 with one shared secret held by the control plane; the algorithm, issuer and audience are
//! pinned on verification, and `exp` and `nbf` are checked.

use std::fmt;
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `iss` and `aud` of every benchfleet token.
pub const ISSUER: &str = "benchfleet";
pub const AUDIENCE: &str = "benchfleet";

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Ops staff: fleet, telemetry, OTA, routing rules, idea moderation.
    Operator,
    /// Project managers: read-only fleet, telemetry and reports.
    Viewer,
    /// A member organisation; the token carries its `org`.
    Cso,
    /// A bench: MQTT only.
    Bench,
}

impl Role {
    pub const ALL: [Role; 5] = [Self::Admin, Self::Operator, Self::Viewer, Self::Cso, Self::Bench];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
            Self::Cso => "cso",
            Self::Bench => "bench",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims of a benchfleet token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The bench id for `bench`, a person or service name otherwise.
    pub sub: String,
    pub role: Role,
    /// The organisation of a `cso` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

impl Claims {
    /// Claims valid from now for `ttl`.
    pub fn new(role: Role, sub: impl Into<String>, ttl: Duration) -> Self {
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        Self {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: sub.into(),
            role,
            org: None,
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl),
        }
    }

    pub fn with_org(mut self, org: impl Into<String>) -> Self {
        self.org = Some(org.into());
        self
    }
}

/// Why a token was refused. Deliberately vague: the reason goes to logs, not to the caller.
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

impl TokenError {
    /// True when the only problem is that the token has expired.
    pub fn is_expired(&self) -> bool {
        matches!(self.0.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature)
    }
}

/// The signing secret. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// Signs `claims` with HS256.
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(&self.0),
        )
        .expect("HS256 signing of plain claims cannot fail")
    }

    /// Verifies signature (HS256 only), issuer, audience, `exp` and `nbf` (no leeway).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = 0;
        Ok(jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&self.0), &v)?.claims)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn sign_and_verify() {
        let c = Claims::new(Role::Cso, "ana", Duration::from_secs(60)).with_org("lda-mostar");
        let back = secret().verify(&secret().sign(&c)).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn refuses_forged_expired_and_premature() {
        let c = Claims::new(Role::Bench, "mostar-01", Duration::from_secs(60));
        let forged = Secret::new(b"another secret of thirty-two b..".to_vec()).sign(&c);
        assert!(secret().verify(&forged).is_err());

        let mut old = c.clone();
        old.exp = Utc::now().timestamp() - 10;
        let err = secret().verify(&secret().sign(&old)).unwrap_err();
        assert!(err.is_expired());

        let mut later = c.clone();
        later.nbf = Utc::now().timestamp() + 3600;
        assert!(secret().verify(&secret().sign(&later)).is_err());

        let mut foreign = c;
        foreign.aud = "someone-else".into();
        assert!(secret().verify(&secret().sign(&foreign)).is_err());
    }

    #[test]
    fn refuses_other_algorithms() {
        let c = Claims::new(Role::Admin, "root", Duration::from_secs(60));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &c,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert!(secret().verify(&hs512).is_err());
        assert!(secret().verify("not.a.token").is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", secret()).contains("0123"));
    }
}
