//! Services: each checks the caller's role itself, does its work in one transaction with the
//! audit event that records it, and returns plain data.

pub mod apply;
pub mod audit;
pub mod changes;
pub mod drift;
pub mod identity;
pub mod login;
pub mod notify;
pub mod plans;
pub mod reviews;
pub mod scaling;
pub mod slo;
pub mod tokens;
pub mod users;
