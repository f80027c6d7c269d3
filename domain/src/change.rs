//! Changes: what a commit would do to one environment, as the pages and the API show it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::spec::{FieldEdit, SpecError};

/// Where a change stands (ARCHITECTURE.md, "Changes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    Invalid,
    Blocked,
    Pending,
    Approved,
    Rejected,
    Superseded,
    Applying,
    Applied,
    Failed,
    Interrupted,
}

impl ChangeStatus {
    pub const ALL: [ChangeStatus; 10] = [
        ChangeStatus::Invalid,
        ChangeStatus::Blocked,
        ChangeStatus::Pending,
        ChangeStatus::Approved,
        ChangeStatus::Rejected,
        ChangeStatus::Superseded,
        ChangeStatus::Applying,
        ChangeStatus::Applied,
        ChangeStatus::Failed,
        ChangeStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Invalid => "invalid",
            ChangeStatus::Blocked => "blocked",
            ChangeStatus::Pending => "pending",
            ChangeStatus::Approved => "approved",
            ChangeStatus::Rejected => "rejected",
            ChangeStatus::Superseded => "superseded",
            ChangeStatus::Applying => "applying",
            ChangeStatus::Applied => "applied",
            ChangeStatus::Failed => "failed",
            ChangeStatus::Interrupted => "interrupted",
        }
    }

    /// Whether a newer commit of the same environment replaces this change.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ChangeStatus::Invalid
                | ChangeStatus::Blocked
                | ChangeStatus::Pending
                | ChangeStatus::Approved
        )
    }
}

impl fmt::Display for ChangeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChangeStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangeStatus::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
}

/// One file's unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    pub path: String,
    pub status: FileStatus,
    pub additions: u32,
    pub deletions: u32,
    /// The unified diff text (may be cut short: see `truncated`).
    pub diff: String,
    /// The diff was longer than the panel keeps; the rest is in git.
    pub truncated: bool,
    pub binary: bool,
}

/// A commit as a change names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub sha: String,
    pub author_name: String,
    pub author_email: String,
    /// RFC 3339, UTC.
    pub committed_at: String,
    pub message: String,
}

impl CommitInfo {
    pub fn short_sha(&self) -> &str {
        &self.sha[..self.sha.len().min(10)]
    }

    /// The message's first line.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

/// A change in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSummary {
    pub id: i64,
    pub environment: String,
    pub status: ChangeStatus,
    pub commit: CommitInfo,
    pub edits: usize,
    pub errors: usize,
    pub created_at: String,
}

/// A change with everything the change page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeDetail {
    pub summary: ChangeSummary,
    /// The environment's last applied commit when the change was recorded (`None`: never applied).
    pub base_commit: Option<String>,
    pub files: Vec<FileDiff>,
    pub semantic_diff: Vec<FieldEdit>,
    pub spec_errors: Vec<SpecError>,
    pub superseded_by: Option<i64>,
    /// The latest plan against live AWS, for changes that can still be applied.
    pub plan: Option<PlanView>,
    pub planned_at: Option<String>,
}

/// A plan as the change page shows it: planned, or why there is none right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PlanView {
    Planned {
        plan: crate::plan::Plan,
        read_ms: u64,
    },
    Unavailable {
        reason: String,
    },
}

/// Groups whose desired capacity a change sets: edited, or the group is new to the spec (the
/// first apply sets it).
pub fn groups_setting_desired(edits: &[FieldEdit]) -> std::collections::BTreeSet<String> {
    edits
        .iter()
        .filter_map(|e| {
            let rest = e.path.strip_prefix("autoscaling_groups[")?;
            let (group, tail) = rest.split_once(']')?;
            (tail == ".desired" || (tail.is_empty() && e.kind == crate::spec::EditKind::Added))
                .then(|| group.to_owned())
        })
        .collect()
}

/// The spec repository's state, for the overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoStatus {
    pub url: String,
    pub branch: String,
    pub head: Option<CommitInfo>,
    pub last_fetch_at: Option<String>,
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub consecutive_failures: i64,
}

/// An environment in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentSummary {
    pub name: String,
    pub last_applied_commit: Option<String>,
    pub open_changes: i64,
    pub latest_change: Option<ChangeSummary>,
}

/// One environment as its page shows it: the desired spec at the tracked branch's head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentDetail {
    pub name: String,
    pub last_applied_commit: Option<String>,
    pub head_commit: Option<String>,
    /// `None` when the spec at the head has errors (listed in `errors`).
    pub spec: Option<crate::spec::EnvironmentSpec>,
    pub errors: Vec<SpecError>,
    pub recent_changes: Vec<ChangeSummary>,
}
