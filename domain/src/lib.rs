//! tierdeck's pure core.
//!
//! Plain data and the rules over it: roles, validated names, the audit hash chain. Nothing here
//! does I/O or knows about a web framework, a database or AWS, so it builds for the browser too
//! (Cargo enforces that: see this crate's dependencies).

pub mod audit;
pub mod role;
pub mod user;

pub use role::Role;
pub use user::{Email, Password, UserName};
