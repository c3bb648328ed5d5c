//! Bench identity at CONNECT: client id = user name = bench id, password = a bench JWT.
//!
//! Pure functions over the fleet registry and the signing secret, so every refusal reason is
//! unit-tested without a socket.

use std::fmt;
use std::sync::Arc;

use protocol::token::Secret;
use protocol::{BenchId, Fleet, Role};

/// Decides which benches may connect.
#[derive(Debug, Clone)]
pub struct Authenticator {
    fleet: Arc<Fleet>,
    secret: Secret,
}

/// Why a connection was refused before it reached the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The first packet could not be parsed as an MQTT 3.1.1 CONNECT.
    Malformed,
    /// A CONNECT for another protocol level (MQTT 5, MQTT 3.1).
    UnsupportedProtocol,
    /// The first packet was not a CONNECT.
    NotConnect,
    /// The client id is empty.
    EmptyClientId,
    /// The client id is not a valid bench id (this also keeps `/ + # $` and control characters
    /// away from the router).
    InvalidClientId,
    /// No user name and password.
    MissingCredentials,
    /// The user name differs from the client id.
    UsernameMismatch,
    /// The bench is not in the fleet registry.
    UnknownBench,
    /// The token has expired.
    ExpiredToken,
    /// The token is forged, malformed, not yet valid or for another issuer or audience.
    InvalidToken,
    /// The token is valid but not a `bench` token.
    WrongRole,
    /// The token's subject is another bench.
    SubjectMismatch,
    /// The Last Will is not aimed at the bench's own `status` topic.
    ForbiddenWill,
    /// Keep-alive 0 would let a dead connection live forever.
    ZeroKeepAlive,
    /// `max_connections` authenticated connections are already open.
    ServerFull,
}

impl DenyReason {
    pub const ALL: [DenyReason; 15] = [
        Self::Malformed,
        Self::UnsupportedProtocol,
        Self::NotConnect,
        Self::EmptyClientId,
        Self::InvalidClientId,
        Self::MissingCredentials,
        Self::UsernameMismatch,
        Self::UnknownBench,
        Self::ExpiredToken,
        Self::InvalidToken,
        Self::WrongRole,
        Self::SubjectMismatch,
        Self::ForbiddenWill,
        Self::ZeroKeepAlive,
        Self::ServerFull,
    ];

    /// A short label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedProtocol => "unsupported_protocol",
            Self::NotConnect => "not_connect",
            Self::EmptyClientId => "empty_client_id",
            Self::InvalidClientId => "invalid_client_id",
            Self::MissingCredentials => "missing_credentials",
            Self::UsernameMismatch => "username_mismatch",
            Self::UnknownBench => "unknown_bench",
            Self::ExpiredToken => "expired_token",
            Self::InvalidToken => "invalid_token",
            Self::WrongRole => "wrong_role",
            Self::SubjectMismatch => "subject_mismatch",
            Self::ForbiddenWill => "forbidden_will",
            Self::ZeroKeepAlive => "zero_keep_alive",
            Self::ServerFull => "server_full",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Authenticator {
    pub fn new(fleet: Arc<Fleet>, secret: Secret) -> Self {
        Self { fleet, secret }
    }

    /// The registry this authenticator admits benches from.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Checks the identity a CONNECT claims; `None` credentials mean the packet carried none.
    pub fn authenticate(
        &self,
        client_id: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<BenchId, DenyReason> {
        if client_id.is_empty() {
            return Err(DenyReason::EmptyClientId);
        }
        let bench = BenchId::parse(client_id).map_err(|_| DenyReason::InvalidClientId)?;
        let (Some(username), Some(password)) = (username, password) else {
            return Err(DenyReason::MissingCredentials);
        };
        if username != client_id {
            return Err(DenyReason::UsernameMismatch);
        }
        if !self.fleet.contains(client_id) {
            return Err(DenyReason::UnknownBench);
        }
        let claims = self.secret.verify(password).map_err(|e| {
            if e.is_expired() {
                DenyReason::ExpiredToken
            } else {
                DenyReason::InvalidToken
            }
        })?;
        if claims.role != Role::Bench {
            return Err(DenyReason::WrongRole);
        }
        if claims.sub != client_id {
            return Err(DenyReason::SubjectMismatch);
        }
        Ok(bench)
    }
}

/// Makes an untrusted client id safe to log: at most 64 characters, control characters and
/// quotes escaped.
pub fn sanitize(raw: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = raw.chars().take(MAX).flat_map(char::escape_debug).collect();
    if raw.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use protocol::Claims;

    use super::*;

    fn secret() -> Secret {
        Secret::new(b"identity test secret, 32 bytes!!".to_vec())
    }

    fn auth() -> Authenticator {
        Authenticator::new(Arc::new(Fleet::link4()), secret())
    }

    fn token(role: Role, sub: &str) -> String {
        secret().sign(&Claims::new(role, sub, Duration::from_secs(600)))
    }

    fn check(client_id: &str, user: Option<&str>, token: &str) -> Result<BenchId, DenyReason> {
        auth().authenticate(client_id, user, Some(token))
    }

    #[test]
    fn a_registered_bench_with_its_own_token_is_admitted() {
        let t = token(Role::Bench, "mostar-01");
        assert_eq!(
            check("mostar-01", Some("mostar-01"), &t),
            Ok(BenchId::parse("mostar-01").unwrap())
        );
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let good = token(Role::Bench, "mostar-01");
        assert_eq!(check("", Some(""), &good), Err(DenyReason::EmptyClientId));
        for bad in ["a/b", "a+b", "a#", "$sys", "a\u{0}b", "a\nb", "Mostar-01"] {
            assert_eq!(
                check(bad, Some(bad), &good),
                Err(DenyReason::InvalidClientId),
                "{bad:?}"
            );
        }
        assert_eq!(
            auth().authenticate("mostar-01", None, None),
            Err(DenyReason::MissingCredentials)
        );
        assert_eq!(
            check("mostar-01", Some("zepce-01"), &good),
            Err(DenyReason::UsernameMismatch)
        );
        let stranger = token(Role::Bench, "nowhere-01");
        assert_eq!(
            check("nowhere-01", Some("nowhere-01"), &stranger),
            Err(DenyReason::UnknownBench)
        );
        assert_eq!(
            check("mostar-01", Some("mostar-01"), "not-a-jwt"),
            Err(DenyReason::InvalidToken)
        );
        let forged = Secret::new(b"some other secret of 32 bytes!!!".to_vec()).sign(&Claims::new(
            Role::Bench,
            "mostar-01",
            Duration::from_secs(600),
        ));
        assert_eq!(
            check("mostar-01", Some("mostar-01"), &forged),
            Err(DenyReason::InvalidToken)
        );
        let mut old = Claims::new(Role::Bench, "mostar-01", Duration::from_secs(600));
        old.exp = Utc::now().timestamp() - 5;
        assert_eq!(
            check("mostar-01", Some("mostar-01"), &secret().sign(&old)),
            Err(DenyReason::ExpiredToken)
        );
        let admin = token(Role::Admin, "mostar-01");
        assert_eq!(
            check("mostar-01", Some("mostar-01"), &admin),
            Err(DenyReason::WrongRole)
        );
        let other = token(Role::Bench, "zepce-01");
        assert_eq!(
            check("mostar-01", Some("mostar-01"), &other),
            Err(DenyReason::SubjectMismatch)
        );
    }

    #[test]
    fn labels_are_unique() {
        let mut labels: Vec<_> = DenyReason::ALL.iter().map(|r| r.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DenyReason::ALL.len());
    }

    #[test]
    fn sanitize_escapes_and_truncates() {
        assert_eq!(sanitize("mostar-01"), "mostar-01");
        assert_eq!(sanitize("a\u{0}b\n\"c"), "a\\0b\\n\\\"c");
        let long = "x".repeat(100);
        let s = sanitize(&long);
        assert_eq!(s.chars().count(), 65);
        assert!(s.ends_with('…'));
    }
}
