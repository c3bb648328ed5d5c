//! The JWT signing secret: read from the environment or a file, created on first start.

use std::io::Write;
use std::path::Path;

use protocol::token::Secret;
use rand::RngCore;

/// Environment variable that provides the secret itself (takes precedence over the file).
pub const SECRET_ENV: &str = "BENCHFLEET_JWT_SECRET";

/// Shortest secret accepted, in bytes (HS256 wants at least 256 bits).
const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the JWT secret {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot create the JWT secret {path}: {source}")]
    Create { path: String, source: std::io::Error },
    #[error("the JWT secret from {0} is shorter than 32 bytes")]
    TooShort(String),
}

/// Loads the secret from `BENCHFLEET_JWT_SECRET`, else from `path`, creating `path` (mode 0600,
/// 256 random bits as hex) when it does not exist. The file's content is used trimmed, as text.
pub fn load_or_create(path: &Path) -> Result<Secret, SecretError> {
    if let Ok(value) = std::env::var(SECRET_ENV) {
        return from_text(value.trim(), SECRET_ENV);
    }
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => from_text(text.trim(), &shown),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create(path).map_err(|source| SecretError::Create {
                path: shown.clone(),
                source,
            })?;
            tracing::info!(secret.path = %shown, "created a new JWT signing secret");
            let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
                path: shown.clone(),
                source,
            })?;
            from_text(text.trim(), &shown)
        }
        Err(source) => Err(SecretError::Read { path: shown, source }),
    }
}

fn from_text(text: &str, origin: &str) -> Result<Secret, SecretError> {
    if text.len() < MIN_SECRET_LEN {
        return Err(SecretError::TooShort(origin.to_owned()));
    }
    Ok(Secret::new(text.as_bytes().to_vec()))
}

fn create(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{hex}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Claims, Role};

    #[test]
    fn creates_once_with_private_mode_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/jwt.secret");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        let token = a.sign(&Claims::new(Role::Viewer, "pm", std::time::Duration::from_secs(60)));
        assert_eq!(b.verify(&token).unwrap().sub, "pm");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim().len(), 64);
    }

    #[test]
    fn refuses_short_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.secret");
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(load_or_create(&path), Err(SecretError::TooShort(_))));
    }
}
