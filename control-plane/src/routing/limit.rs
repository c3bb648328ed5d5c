//! Token buckets by key: ideas per bench (kiosks share one bench, so the bench is the unit,
//! not an IP address) and public requests per client address.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Keys remembered at most; beyond it, full buckets (keys idle long enough) are forgotten.
const MAX_KEYS: usize = 10_000;

/// A token bucket per key: `burst` tokens at most, refilled at `per_hour`.
#[derive(Debug)]
pub struct TokenBuckets {
    burst: f64,
    per_second: f64,
    buckets: HashMap<String, (f64, DateTime<Utc>)>,
}

impl TokenBuckets {
    pub fn new(burst: u32, per_hour: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_hour) / 3600.0,
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `key` at `now`, or says how long until one is available.
    pub fn take(&mut self, key: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        if self.buckets.len() >= MAX_KEYS && !self.buckets.contains_key(key) {
            self.forget_full(now);
        }
        let (burst, rate) = (self.burst, self.per_second);
        let entry = self.buckets.entry(key.to_owned()).or_insert((burst, now));
        let elapsed = (now - entry.1).to_std().unwrap_or_default().as_secs_f64();
        entry.0 = (entry.0 + elapsed * rate).min(burst);
        entry.1 = now;
        if entry.0 >= 1.0 {
            entry.0 -= 1.0;
            Ok(())
        } else if rate > 0.0 {
            Err(Duration::from_secs_f64(((1.0 - entry.0) / rate).ceil()))
        } else {
            Err(Duration::MAX)
        }
    }

    /// Gives back a token taken for work that then failed.
    pub fn refund(&mut self, key: &str) {
        if let Some(entry) = self.buckets.get_mut(key) {
            entry.0 = (entry.0 + 1.0).min(self.burst);
        }
    }

    fn forget_full(&mut self, now: DateTime<Utc>) {
        let (burst, rate) = (self.burst, self.per_second);
        self.buckets.retain(|_, (tokens, at)| {
            let elapsed = (now - *at).to_std().unwrap_or_default().as_secs_f64();
            *tokens + elapsed * rate < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate() {
        let t0: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        let mut b = TokenBuckets::new(3, 60);
        for _ in 0..3 {
            assert_eq!(b.take("mostar-01", t0), Ok(()));
        }
        assert_eq!(b.take("mostar-01", t0), Err(Duration::from_secs(60)));
        // Another key has its own bucket.
        assert_eq!(b.take("zepce-01", t0), Ok(()));
        // One token per minute comes back, never more than the burst.
        let t1 = t0 + TimeDelta::seconds(60);
        assert_eq!(b.take("mostar-01", t1), Ok(()));
        assert!(b.take("mostar-01", t1).is_err());
        b.refund("mostar-01");
        assert_eq!(b.take("mostar-01", t1), Ok(()));
        let later = t0 + TimeDelta::hours(5);
        for _ in 0..3 {
            assert_eq!(b.take("mostar-01", later), Ok(()));
        }
        assert!(b.take("mostar-01", later).is_err());
    }

    #[test]
    fn idle_keys_are_forgotten_when_full() {
        let t0: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        let mut b = TokenBuckets::new(1, 3600);
        for i in 0..MAX_KEYS {
            assert!(b.take(&format!("ip-{i}"), t0).is_ok());
        }
        assert_eq!(b.buckets.len(), MAX_KEYS);
        assert!(b.take("late", t0 + TimeDelta::seconds(2)).is_ok());
        assert_eq!(b.buckets.len(), 1);
    }
}
