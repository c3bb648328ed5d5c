//! The bench view's state: which bench, which time window, and what the API returned for it.

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::{ApiError, BenchDetail, Bucket, TelemetrySeries};

/// The time window of the bench view's charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Window {
    #[default]
    Hour,
    Day,
    Week,
}

impl Window {
    pub const ALL: [Window; 3] = [Self::Hour, Self::Day, Self::Week];

    pub fn label(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    pub fn span(self) -> TimeDelta {
        match self {
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::hours(24),
            Self::Week => TimeDelta::days(7),
        }
    }

    /// Bucket width: about 50-60 points per window, one per chart column at 80 columns.
    pub fn bucket(self) -> Bucket {
        let seconds = match self {
            Self::Hour => 60,
            Self::Day => 30 * 60,
            Self::Week => 3 * 3600,
        };
        Bucket::from_seconds(seconds).unwrap_or(Bucket::from_seconds(60).expect("60 s is a valid bucket"))
    }

    /// Buckets in the window.
    pub fn slots(self) -> usize {
        usize::try_from(self.span().num_seconds().unsigned_abs() / self.bucket().seconds()).unwrap_or(0)
    }

    /// `[from, to)` ending at the bucket boundary after `now`, so the buckets line up with the
    /// server's epoch-aligned ones and the newest (partial) bucket is included.
    pub fn range(self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let b = i64::try_from(self.bucket().seconds()).unwrap_or(60);
        let end = (now.timestamp().div_euclid(b) + 1) * b;
        let to = DateTime::from_timestamp(end, 0).unwrap_or(now);
        (to - self.span(), to)
    }

    pub fn next(self) -> Self {
        match self {
            Self::Hour => Self::Day,
            Self::Day => Self::Week,
            Self::Week => Self::Hour,
        }
    }
}

/// The bench view's data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BenchPane {
    pub id: String,
    pub window: Window,
    pub detail: Option<BenchDetail>,
    pub detail_error: Option<ApiError>,
    /// The series for `window`; `None` while loading.
    pub series: Option<TelemetrySeries>,
    pub series_error: Option<ApiError>,
}

impl BenchPane {
    pub fn new(id: impl Into<String>, window: Window) -> Self {
        Self {
            id: id.into(),
            window,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_line_up_with_buckets() {
        let now: DateTime<Utc> = "2026-11-26T10:17:42Z".parse().unwrap();
        let (from, to) = Window::Hour.range(now);
        assert_eq!(to, "2026-11-26T10:18:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(from, "2026-11-26T09:18:00Z".parse::<DateTime<Utc>>().unwrap());
        let (from, to) = Window::Week.range(now);
        assert_eq!(to, "2026-11-26T12:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(to - from, TimeDelta::days(7));
        assert_eq!(
            Window::ALL.map(Window::slots),
            [60, 48, 56],
            "points per chart at 1 m, 30 m, 3 h buckets"
        );
        assert_eq!(Window::Day.bucket().to_string(), "30m");
    }
}
