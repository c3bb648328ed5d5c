//! The benchfleet wire contract, shared by the control plane, the simulator and the console so
//! they cannot drift: MQTT topics, payload types and their validation, the built-in fleet
//! registry and the JWTs benches and people present.
//!
//! Everything here is plain data plus pure functions; no I/O.

pub mod api;
pub mod audit;
pub mod config;
pub mod fleet;
pub mod idea;
pub mod ota;
pub mod schema;
pub mod status;
pub mod telemetry;
pub mod text;
pub mod token;
pub mod topic;

pub use config::{BenchConfig, ConfigAck, ConfigDocument};
pub use fleet::{BenchInfo, Fleet};
pub use idea::{IdeaAck, IdeaState, IdeaSubmission};
pub use status::{BenchState, Status};
pub use telemetry::{RejectReason, Rejection, Telemetry, TelemetryAck};
pub use token::{Claims, Role};
pub use topic::{BenchId, Topic, TopicKind};

/// Largest payload accepted on any bench topic, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// The only payload version this build understands.
pub const PAYLOAD_VERSION: u32 = 1;
