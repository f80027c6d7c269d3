//! tierdeck's pure core.
//!
//! Plain data and the rules over it: roles, validated names, the audit hash chain, the spec
//! format and its validation, cron expressions, the change lifecycle, the planner, policy and
//! approvals, SLO and cost arithmetic. The vocabulary (`commit`, `lifecycle`, `spec`) sits below
//! the rules (`policy`, `approval`, `plan`), and the read models the pages show (`change`)
//! above them; no module imports one that imports it back. Nothing here
//! does I/O or knows about a web framework, a database or AWS, so it builds for the browser too
//! (Cargo enforces that: see this crate's dependencies).

pub mod approval;
pub mod audit;
pub mod axis;
pub mod change;
pub mod cloudwatch;
pub mod cluster;
pub mod commit;
pub mod cost;
pub mod cron;
#[cfg(test)]
mod fuzz;
pub mod guardrails;
pub mod import;
pub mod job;
pub mod lifecycle;
pub mod monitoring;
pub mod net;
pub mod notify;
pub mod observed;
pub mod plan;
pub mod policy;
pub mod reachability;
pub mod redact;
pub mod role;
pub mod rollout;
pub mod scaling;
pub mod schedule;
pub mod settle;
pub mod slo;
pub mod spec;
pub mod time;
pub mod user;

pub use role::Role;
pub use user::{Email, Password, UserName};
