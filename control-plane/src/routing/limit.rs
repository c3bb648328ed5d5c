//! Rate limits by key: ideas per bench (kiosks share one bench, so the bench is the unit, not an
//! IP address) and public requests per client address. `governor`'s GCRA by the routing clock,
//! over a state store that can also give a token back.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::Clock;

/// Keys remembered at most; beyond it, keys idle long enough to have a full burst are forgotten.
const MAX_KEYS: usize = 10_000;

/// Longest the arithmetic allows for one token to come back. With `per_hour = 0` (nothing comes
/// back after the burst) this stands in for "never": years, kept small enough that
/// `burst` of them cannot overflow governor's nanosecond counters.
const NEVER_NANOS: u64 = u64::MAX / 4;

/// A limit per key: `burst` at once, then `per_hour`.
pub struct KeyedLimit {
    limiter: RateLimiter<String, Tats, RoutingClock, NoOpMiddleware<Duration>>,
    tats: Tats,
    clock: RoutingClock,
    /// One token's worth of time.
    interval: Nanos,
}

impl std::fmt::Debug for KeyedLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimit")
            .field("keys", &self.limiter.len())
            .field("interval", &self.interval)
            .finish()
    }
}

impl KeyedLimit {
    pub fn new(burst: u32, per_hour: u32, clock: Arc<dyn Clock>) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let never = NEVER_NANOS / u64::from(burst.get());
        let interval = match per_hour {
            0 => never,
            n => (3_600_000_000_000 / u64::from(n)).min(never),
        };
        let quota = Quota::with_period(Duration::from_nanos(interval))
            .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
            .allow_burst(burst);
        let tats = Tats::default();
        let clock = RoutingClock {
            origin: clock.now(),
            clock,
        };
        Self {
            limiter: RateLimiter::new(quota, tats.clone(), clock.clone()),
            tats,
            clock,
            interval: Nanos::new(interval),
        }
    }

    /// Takes a token for `key`, or says how long (whole seconds, rounded up) until one is there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let key = key.to_owned();
        if self.limiter.len() >= MAX_KEYS && !self.tats.contains(&key) {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.clock));
            Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }

    /// Gives back a token taken for work that then failed (never beyond the burst: an arrival
    /// time in the past counts as a full burst).
    pub fn refund(&self, key: &str) {
        self.tats.update(key, |tat| tat.saturating_sub(self.interval));
    }
}

/// The routing clock as governor reads it: time since the limit was made.
#[derive(Clone)]
struct RoutingClock {
    clock: Arc<dyn Clock>,
    origin: DateTime<Utc>,
}

impl governor::clock::Clock for RoutingClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        (self.clock.now() - self.origin).to_std().unwrap_or_default()
    }
}

/// Theoretical arrival times by key (governor's state), shared so a token can be given back.
#[derive(Clone, Default)]
struct Tats(Arc<Mutex<HashMap<String, Nanos>>>);

impl Tats {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Nanos>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn contains(&self, key: &str) -> bool {
        self.map().contains_key(key)
    }

    fn update(&self, key: &str, f: impl FnOnce(Nanos) -> Nanos) {
        if let Some(tat) = self.map().get_mut(key) {
            *tat = f(*tat);
        }
    }
}

impl StateStore for Tats {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self.map();
        let (outcome, tat) = f(map.get(key).copied())?;
        map.insert(key.clone(), tat);
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<String> for Tats {
    fn retain_recent(&self, drop_below: Nanos) {
        self.map().retain(|_, tat| *tat > drop_below);
    }

    fn len(&self) -> usize {
        self.map().len()
    }

    fn is_empty(&self) -> bool {
        self.map().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::super::ManualClock;
    use super::*;

    fn at(t0: &str) -> Arc<ManualClock> {
        Arc::new(ManualClock::new(t0.parse().unwrap()))
    }

    #[test]
    fn a_burst_then_the_refill_rate() {
        let clock = at("2026-11-26T10:00:00Z");
        let b = KeyedLimit::new(3, 60, clock.clone());
        for _ in 0..3 {
            assert_eq!(b.take("mostar-01"), Ok(()));
        }
        assert_eq!(b.take("mostar-01"), Err(Duration::from_secs(60)));
        // Another key has its own bucket.
        assert_eq!(b.take("zepce-01"), Ok(()));
        // One token per minute comes back, never more than the burst.
        clock.advance(TimeDelta::seconds(60));
        assert_eq!(b.take("mostar-01"), Ok(()));
        assert!(b.take("mostar-01").is_err());
        b.refund("mostar-01");
        assert_eq!(b.take("mostar-01"), Ok(()));
        clock.advance(TimeDelta::hours(5));
        for _ in 0..3 {
            assert_eq!(b.take("mostar-01"), Ok(()));
        }
        assert!(b.take("mostar-01").is_err());
        // A refund never raises the burst.
        clock.advance(TimeDelta::hours(5));
        b.refund("mostar-01");
        b.refund("mostar-01");
        for _ in 0..3 {
            assert_eq!(b.take("mostar-01"), Ok(()));
        }
        assert!(b.take("mostar-01").is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let clock = at("2026-11-26T10:00:00Z");
        let b = KeyedLimit::new(1, 600, clock.clone());
        assert_eq!(b.take("10.0.0.1"), Ok(()));
        clock.advance(TimeDelta::milliseconds(1500));
        assert_eq!(b.take("10.0.0.1"), Err(Duration::from_secs(5)), "4.5 s left");
    }

    #[test]
    fn no_refill_after_the_burst() {
        let clock = at("2026-11-26T10:00:00Z");
        let b = KeyedLimit::new(2, 0, clock.clone());
        assert!(b.take("a").is_ok() && b.take("a").is_ok());
        clock.advance(TimeDelta::days(365));
        let wait = b.take("a").unwrap_err();
        assert!(wait > Duration::from_secs(365 * 86_400), "{wait:?}");
    }

    #[test]
    fn idle_keys_are_forgotten_when_full() {
        let clock = at("2026-11-26T10:00:00Z");
        let b = KeyedLimit::new(1, 3600, clock.clone());
        for i in 0..MAX_KEYS {
            assert!(b.take(&format!("ip-{i}")).is_ok());
        }
        assert_eq!(b.tats.len(), MAX_KEYS);
        clock.advance(TimeDelta::seconds(2));
        assert!(b.take("late").is_ok());
        assert_eq!(b.tats.len(), 1);
    }
}
