//! Rates such as `1/s`, `1000/s`, `10/min`, `1/10s`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Events per unit of time, e.g. `1/s`, `1000/s`, `10/min`, `1/10s`, or a bare number per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    per_second: f64,
}

impl Rate {
    pub fn per_second(per_second: f64) -> Self {
        Self { per_second }
    }

    pub fn as_per_second(self) -> f64 {
        self.per_second
    }

    /// Time between two events.
    pub fn period(self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("invalid rate {s:?}: {why} (expected e.g. 1/s, 1000/s, 10/min, 1/10s)");
        let (count, per) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
        let count: f64 = count.trim().parse().map_err(|_| bad("the count is not a number"))?;
        let per = per.trim();
        let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
            per.to_owned()
        } else {
            format!("1{per}")
        };
        let per = humantime::parse_duration(&per).map_err(|_| bad("unknown time unit"))?;
        let per_second = count / per.as_secs_f64();
        if !per_second.is_finite() || per_second <= 0.0 {
            return Err(bad("must be above zero"));
        }
        Ok(Self { per_second })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        let r = |s: &str| s.parse::<Rate>().map(Rate::as_per_second);
        assert_eq!(r("1/s"), Ok(1.0));
        assert_eq!(r("1000/s"), Ok(1000.0));
        assert_eq!(r("30/min"), Ok(0.5));
        assert_eq!(r("1/10s"), Ok(0.1));
        assert_eq!(r("2.5"), Ok(2.5));
        assert_eq!(r("3600/h"), Ok(1.0));
        assert!(r("0/s").unwrap_err().contains("above zero"));
        assert!(r("fast/s").unwrap_err().contains("not a number"));
        assert!(r("1/fortnight").unwrap_err().contains("unknown time unit"));
        assert_eq!("1/500ms".parse::<Rate>().unwrap().period(), Duration::from_millis(500));
    }
}
