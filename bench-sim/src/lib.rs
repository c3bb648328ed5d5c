//! Simulated benchfleet benches and an open-loop MQTT load generator.
//!
//! The physics (`sun`, `weather`, `battery`, `usage`, `bench`) is deterministic from a seed; the
//! behaviour on the wire (`session`) follows what real bench firmware does: Last Will, retained
//! status, store-and-forward, backoff, configuration and ideas. `fleet` runs many benches in one
//! process (the control plane's `--demo` calls [`run_fleet`]); `load` and `report` measure a
//! broker.

// Tests may unwrap: a panic there is a failed test with a line number.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod battery;
pub mod bench;
pub mod broker;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod faults;
pub mod fleet;
pub mod ideas;
pub mod load;
pub mod report;
pub mod session;
pub mod sun;
pub mod usage;
pub mod weather;

pub use broker::Broker;
pub use credentials::Credentials;
pub use faults::{Fault, Scenario};
pub use fleet::{FleetOptions, SimError, SimFleet, run_fleet};
pub use ideas::IdeaPace;
pub use load::{LoadOptions, Rate, run_load};
pub use report::{LoadReport, StorageReport};
pub use session::{BenchSnapshot, LinkState};
