//! How a simulated bench logs in: MQTT username = client id = bench id, password = a bench JWT.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use protocol::BenchId;
use protocol::token::{Claims, Role, Secret};

/// How long the tokens the simulator signs are valid. A fresh one is signed for every
/// connection, so expiry never bites a long run.
pub const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// A function that returns a bench's token.
pub type TokenMinter = Arc<dyn Fn(&BenchId) -> String + Send + Sync>;

/// Where bench passwords come from.
#[derive(Clone)]
pub enum Credentials {
    /// No username or password (a plain Mosquitto).
    Anonymous,
    /// Sign bench tokens with the control plane's HS256 secret.
    Secret(Secret),
    /// Ask a function, e.g. the control plane minting tokens in-process.
    Mint(TokenMinter),
}

impl Credentials {
    /// Reads the control plane's secret file: its text, whitespace trimmed, as bytes.
    pub fn from_secret_file(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the secret file is empty",
            ));
        }
        Ok(Self::Secret(Secret::new(secret.as_bytes().to_vec())))
    }

    /// The password for `bench`, or `None` to connect without credentials.
    pub fn password(&self, bench: &BenchId) -> Option<String> {
        match self {
            Self::Anonymous => None,
            Self::Secret(secret) => Some(secret.sign(&Claims::new(Role::Bench, bench.as_str(), TOKEN_TTL))),
            Self::Mint(mint) => Some(mint(bench)),
        }
    }
}

/// A well-formed bench token signed with a key no server has (the `wrong_token` fault).
pub fn wrong_token(bench: &BenchId) -> String {
    Secret::new(b"not-the-control-plane-secret-at-all".to_vec()).sign(&Claims::new(
        Role::Bench,
        bench.as_str(),
        TOKEN_TTL,
    ))
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Secret(s) => f.debug_tuple("Secret").field(s).finish(),
            Self::Mint(_) => f.write_str("Mint(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_is_trimmed_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "  0123456789abcdef0123456789abcdef\n").unwrap();
        let creds = Credentials::from_secret_file(&path).unwrap();
        let id = BenchId::parse("mostar-01").unwrap();
        let token = creds.password(&id).unwrap();
        let claims = Secret::new(b"0123456789abcdef0123456789abcdef".to_vec())
            .verify(&token)
            .unwrap();
        assert_eq!((claims.sub.as_str(), claims.role), ("mostar-01", Role::Bench));
        assert!(
            Secret::new(b"0123456789abcdef0123456789abcdef".to_vec())
                .verify(&wrong_token(&id))
                .is_err()
        );
        assert!(!format!("{creds:?}").contains("0123"));

        std::fs::write(&path, " \n").unwrap();
        assert!(Credentials::from_secret_file(&path).is_err());
        assert_eq!(Credentials::Anonymous.password(&id), None);
    }
}
