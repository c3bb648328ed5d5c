//! benchfleet control plane.

pub mod store;
