//! benchfleet control plane.

pub mod broker;
