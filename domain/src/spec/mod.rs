//! The spec repository's format v1: every `*.yaml` of `environments/<name>/` is read; each
//! top-level key may appear in one file only; unknown keys are errors; every error names its
//! file, line and column. This module is pure: callers hand it the files' text.

pub mod diff;
mod load;
pub mod model;
mod yaml;

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

    pub const PROD: [(&str, &str); 5] = [
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
    ];

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
