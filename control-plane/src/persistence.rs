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

/// The longest wait between two attempts at a failed store write.
pub const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// How writers that must not lose what they hold (telemetry batches, status events) pace their
/// retries while the store is unreachable: 100 ms doubling to [`RETRY_MAX`], for as long as it
/// takes. `build()` starts a fresh sequence; take the next wait with `Iterator::next`.
pub fn retry() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::new()
        .with_min_delay(std::time::Duration::from_millis(100))
        .with_max_delay(RETRY_MAX)
        .without_max_times()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use backon::BackoffBuilder;

    #[test]
    fn retries_double_to_the_cap_and_never_end() {
        let waits: Vec<_> = super::retry().build().take(12).collect();
        assert_eq!(waits.len(), 12, "retries never run out");
        // backon multiplies in f32: a few nanoseconds either way.
        let about = |d: Duration, ms: u64| d.abs_diff(Duration::from_millis(ms)) < Duration::from_micros(1);
        assert!(
            about(waits[0], 100) && about(waits[1], 200) && about(waits[2], 400),
            "{waits:?}"
        );
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap_or(&Duration::ZERO), super::RETRY_MAX);
    }
}
