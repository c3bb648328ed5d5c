//! What every domain's store trait shares: the coarse [`StoreError`] and its [`Result`].
//!
//! The domains (`telemetry`, `presence`, `ota`, `routing`) each define the store trait they
//! need next to their records, and `store` implements them on SQLite and PostgreSQL. This module
//! is the one piece both sides name, so it depends on neither.

/// Store errors, coarse on purpose: callers only decide between "retry later" and "give up".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
