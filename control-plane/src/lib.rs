//! benchfleet control plane.
