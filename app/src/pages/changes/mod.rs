//! Changes: the list with filters, and one change with its commit, diffs and errors.

mod apply;
mod detail;
mod list;
mod review;

pub use detail::{Change, JobList};
pub use list::Changes;
