//! Simulated benches.
