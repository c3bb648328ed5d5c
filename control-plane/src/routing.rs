//! Idea routing: the network's organisations, the routing rules, and every idea's lifecycle from
//! a bench's kiosk to a completed action.
//!
//! - [`rules`]: the rule set and how an idea is matched against it.
//! - [`records`]: what is stored, and the one atomic write every change goes through.

pub mod records;
pub mod rules;

pub use records::{
    IdeaCount, IdeaEvent, IdeaFilter, IdeaRecord, OrgState, Organisation, RoutingAudit, RoutingWrite, RuleSetRecord,
};
pub use rules::{Match, Rule, RuleSet, Sla, Strategy};
