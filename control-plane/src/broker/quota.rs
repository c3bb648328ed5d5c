//! The per-bench message quota: a bench may send `bench_messages_per_s` messages a second on
//! average, with bursts of up to `bench_message_burst` (a store-and-forward queue emptying after
//! an outage), whatever the topic. Beyond it messages are dropped before any consumer sees them,
//! counted (`benchfleet_mqtt_messages_dropped_total{reason="rate_limited"}`) and logged at WARN at
//! most once a minute per bench. The broker has acknowledged them already (PUBACK), but the store
//! has not: an ack-aware bench sends them again after its storage-ack timeout.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use protocol::BenchId;

/// One GCRA state per bench.
type Limiter<C> = RateLimiter<BenchId, HashMapStateStore<BenchId>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Message budgets by bench (GCRA, `governor`); `None` inside when the quota is off.
pub struct BenchQuota<C: Clock = DefaultClock> {
    limiter: Option<Limiter<C>>,
}

impl BenchQuota {
    /// `per_s` messages a second after a burst of `burst`; `per_s = 0` turns the quota off.
    pub fn new(per_s: u32, burst: u32) -> Self {
        Self::with_clock(per_s, burst, DefaultClock::default())
    }
}

impl<C: Clock> BenchQuota<C> {
    pub fn with_clock(per_s: u32, burst: u32, clock: C) -> Self {
        let limiter = NonZeroU32::new(per_s).map(|per_s| {
            let burst = NonZeroU32::new(burst).unwrap_or(per_s).max(per_s);
            let quota = Quota::per_second(per_s).allow_burst(burst);
            RateLimiter::new(quota, HashMapStateStore::default(), clock)
        });
        Self { limiter }
    }

    /// Takes one message from `bench`'s budget; false when it has none left.
    pub fn allows(&self, bench: &BenchId) -> bool {
        self.limiter.as_ref().is_none_or(|l| l.check_key(bench).is_ok())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn bench(id: &str) -> BenchId {
        BenchId::parse(id).unwrap()
    }

    #[test]
    fn a_burst_then_the_rate_per_bench() {
        let clock = FakeRelativeClock::default();
        let quota = BenchQuota::with_clock(10, 50, clock.clone());
        let (a, b) = (bench("mostar-01"), bench("zepce-01"));
        let allowed = (0..200).filter(|_| quota.allows(&a)).count();
        assert_eq!(allowed, 50, "the burst, then nothing until time passes");
        // Another bench has its own budget.
        assert!(quota.allows(&b));
        clock.advance(Duration::from_secs(1));
        let allowed = (0..200).filter(|_| quota.allows(&a)).count();
        assert_eq!(allowed, 10, "one second's worth");
    }

    #[test]
    fn zero_turns_it_off_and_a_small_burst_is_at_least_one_seconds_rate() {
        let off = BenchQuota::with_clock(0, 0, FakeRelativeClock::default());
        assert!((0..10_000).all(|_| off.allows(&bench("mostar-01"))));
        let q = BenchQuota::with_clock(20, 1, FakeRelativeClock::default());
        assert_eq!((0..100).filter(|_| q.allows(&bench("mostar-01"))).count(), 20);
    }
}
