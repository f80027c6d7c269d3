//! The spec repository's format v1: every `*.yaml` of `environments/<name>/` is read; each
//! top-level key may appear in one file only; unknown keys are errors; every error names its
//! file, line and column. This module is pure: callers hand it the files' text.

pub mod diff;
pub mod folder;
mod load;
pub mod model;
mod values;
pub(crate) mod yaml;

pub use diff::{semantic_diff, EditKind, FieldEdit};
pub use load::{load_environment, TOP_LEVEL};
pub use model::*;

use serde::{Deserialize, Serialize};

/// One file of an environment: its path from the repository's root, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// A problem in the spec, at `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpecError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// The largest spec file read (bytes).
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// The most `*.yaml` files an environment's folder may hold.
pub const MAX_FILES: usize = 64;
/// The most bytes of spec an environment may hold, all files together.
pub const MAX_ENVIRONMENT_BYTES: usize = 1024 * 1024;

/// Why the `index`-th (0-based) spec file of a folder, `size` bytes with `before` bytes of the
/// folder's files before it, is not read; `None` when it is within the limits. Readers ask
/// before they load a file's content, so a hostile file is never held in memory whole.
pub fn size_refusal(index: usize, size: usize, before: usize) -> Option<String> {
    if index >= MAX_FILES {
        Some(format!(
            "not read: an environment holds at most {MAX_FILES} spec files"
        ))
    } else if size > MAX_FILE_BYTES {
        Some(format!(
            "not read: {size} bytes, and a spec file holds at most {MAX_FILE_BYTES}"
        ))
    } else if before.saturating_add(size) > MAX_ENVIRONMENT_BYTES {
        Some(format!(
            "not read: the environment's spec files hold at most {MAX_ENVIRONMENT_BYTES} bytes together"
        ))
    } else {
        None
    }
}

/// Orders errors by file and position, keeping the order they were found in at one position.
pub fn sort_errors(errors: &mut [SpecError]) {
    errors.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
}

/// Whether a folder name can be an environment's name.
pub fn valid_environment_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests;

/// The example repository's prod environment, for tests across the crate.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{load_environment, EnvironmentSpec, SourceFile};

    pub const PROD: [(&str, &str); 6] = [
        (
            "environment.yaml",
            include_str!("../../../examples/petclinic/environments/prod/environment.yaml"),
        ),
        (
            "autoscaling.yaml",
            include_str!("../../../examples/petclinic/environments/prod/autoscaling.yaml"),
        ),
        (
            "database.yaml",
            include_str!("../../../examples/petclinic/environments/prod/database.yaml"),
        ),
        (
            "security.yaml",
            include_str!("../../../examples/petclinic/environments/prod/security.yaml"),
        ),
        (
            "slo.yaml",
            include_str!("../../../examples/petclinic/environments/prod/slo.yaml"),
        ),
        (
            "network.yaml",
            include_str!("../../../examples/petclinic/environments/prod/network.yaml"),
        ),
    ];

    /// Prod's change windows: weekdays 10:00–17:00 in Seoul.
    pub fn business_hours() -> Vec<super::ChangeWindow> {
        use super::{ChangeWindow, TimeOfDay, Weekday};
        vec![ChangeWindow {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: TimeOfDay(600),
            end: TimeOfDay(1020),
            timezone: "Asia/Seoul".parse().unwrap(),
        }]
    }

    /// The prod spec with `edit(file name, text)` applied to each file first.
    pub fn prod_with(edit: impl Fn(&str, &str) -> String) -> EnvironmentSpec {
        let files: Vec<SourceFile> = PROD
            .iter()
            .map(|(n, t)| SourceFile {
                path: format!("environments/prod/{n}"),
                text: edit(n, t),
            })
            .collect();
        load_environment("prod", &files).expect("the example is valid")
    }

    pub fn prod() -> EnvironmentSpec {
        prod_with(|_, t| t.to_owned())
    }
}
