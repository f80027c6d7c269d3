//! Changes: what a commit would do to one environment, as the pages and the API show it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::commit::{short_sha, CommitInfo, Person};
pub use crate::lifecycle::ChangeStatus;
use crate::spec::{FieldEdit, SpecError};

/// A list of changes filtered by environment and status.
pub type ListFilters = (Option<crate::spec::EnvName>, Option<ChangeStatus>);

/// The filters of a list of changes, read from a request's text: blank is no filter; an
/// environment that cannot exist and an unknown status are errors naming the parameter.
pub fn list_filters(
    env: Option<&str>,
    status: Option<&str>,
) -> Result<ListFilters, (&'static str, String)> {
    fn blank(s: Option<&str>) -> Option<&str> {
        s.map(str::trim).filter(|s| !s.is_empty())
    }
    let env = blank(env)
        .map(|e| e.parse().map_err(|why| ("env", why)))
        .transpose()?;
    let status = blank(status)
        .map(|s| {
            s.parse::<ChangeStatus>().map_err(|_| {
                (
                    "status",
                    format!(
                        "`{s}` is not a status; use one of {}",
                        ChangeStatus::ALL.map(ChangeStatus::as_str).join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    Ok((env, status))
}

/// A change's id: the row id of the `changes` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChangeId(pub i64);

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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

/// Where a change came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A commit on the tracked branch.
    #[default]
    Commit,
    /// Made by `reconcile`: the last applied commit again, to undo drift.
    Reconcile,
    /// Made by a revert (the watch, or an operator's "Revert"): the commit applied before
    /// another change, applied again.
    Revert,
}

/// A change in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSummary {
    pub id: i64,
    pub environment: String,
    #[serde(default)]
    pub kind: ChangeKind,
    pub status: ChangeStatus,
    pub commit: CommitInfo,
    /// How many field edits its semantic diff holds.
    pub edit_count: usize,
    /// How many spec errors it has (a change's detail lists them in `spec_errors`).
    pub spec_error_count: usize,
    /// The rules it edits (approvals, auto-apply, windows, guardrails, the budget's SLO):
    /// empty unless it is a policy change.
    #[serde(default)]
    pub policy_edits: Vec<String>,
    /// For a revert: the change whose apply it undoes.
    #[serde(default)]
    pub reverts: Option<i64>,
    #[serde(with = "crate::time::stored")]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl ChangeSummary {
    pub fn is_policy_change(&self) -> bool {
        !self.policy_edits.is_empty()
    }
}

/// A change with everything the change page shows: in JSON, the fields of its
/// [`ChangeSummary`] (as the list shows it) and the detail's beside them, at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeDetail {
    #[serde(flatten)]
    pub summary: ChangeSummary,
    /// The environment's last applied commit when the change was recorded (`None`: never applied).
    pub base_commit: Option<String>,
    pub files: Vec<FileDiff>,
    pub semantic_diff: Vec<FieldEdit>,
    pub spec_errors: Vec<SpecError>,
    /// Guardrails the spec breaks; any makes the change `blocked`.
    #[serde(default)]
    pub guardrails: Vec<crate::guardrails::Violation>,
    pub superseded_by: Option<i64>,
    /// Everyone who authored or committed a commit since the last applied commit that touched
    /// the environment: none of them may approve it (unless the environment allows it).
    #[serde(default)]
    pub authors: Vec<Person>,
    /// The rules that judge it and where they come from; `None` when its spec cannot be read.
    #[serde(default)]
    pub policy: Option<crate::policy::Policy>,
    /// Reviews and the approvals that count; `None` when the spec cannot be read.
    #[serde(default)]
    pub approvals: Option<crate::approval::Approvals>,
    /// What the caller may do now, with the reason for each refusal.
    #[serde(default)]
    pub actions: Option<crate::approval::ChangeActions>,
    /// The environment's change windows in words (empty: any time).
    #[serde(default)]
    pub change_windows: String,
    /// The latest plan against live AWS, for changes that can still be applied.
    pub plan: Option<PlanView>,
    #[serde(with = "crate::time::stored::option", default)]
    pub planned_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The latest apply of this change, with its steps.
    pub apply: Option<ApplyRun>,
    /// For a change that edits schedules: the next 24 hours under the last applied spec and
    /// under this one.
    #[serde(default)]
    pub schedule: Option<SchedulePair>,
    /// How many times it was applied (a failed or interrupted change can be applied again).
    pub runs: u32,
    /// What it does to the monthly cost and the cost policy's verdict (`None`: its spec
    /// cannot be read, or the cost could not be computed).
    #[serde(default)]
    pub cost: Option<crate::cost::ChangeCostReport>,
    /// The watch of the SLOs after its apply (`None`: not applied, or the environment does not
    /// watch).
    #[serde(default)]
    pub watch: Option<WatchView>,
    /// Whether the caller may revert it now, and why not (`None`: it is not applied).
    #[serde(default)]
    pub revert: Option<crate::approval::Permission>,
    /// The work tierdeck does for it in the background (planning, applying, watching,
    /// notifying), oldest first: queued, running, retrying with the last error, done or failed.
    #[serde(default)]
    pub jobs: Vec<crate::job::JobView>,
    /// For a change that touches security groups, subnets or network ACLs: the paths between
    /// tiers it opens and closes against the last applied spec, one sentence each (`None`: it
    /// does not touch them, or its spec cannot be read).
    #[serde(default)]
    pub reachability: Option<Vec<crate::reachability::ReachChange>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulePair {
    /// `None` when the environment was never applied.
    pub before: Option<crate::schedule::Preview>,
    pub after: crate::schedule::Preview,
}

/// Where a change's apply stands: what the change page asks for every second while steps run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyState {
    pub status: ChangeStatus,
    pub apply: Option<ApplyRun>,
    pub runs: u32,
    /// The watch after its apply, once there is one.
    #[serde(default)]
    pub watch: Option<WatchView>,
}

/// How one apply of a change went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Applying,
    Applied,
    Failed,
    Interrupted,
}

/// Where one operation of an apply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// The AWS call is under way.
    Running,
    Done,
    Failed,
    /// The process stopped during the call: AWS may or may not have carried it out.
    Interrupted,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(<$t>::$v),)*
                    _ => Err(format!("unknown {} `{s}`", stringify!($t))),
                }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(ChangeKind {
    Commit => "commit",
    Reconcile => "reconcile",
    Revert => "revert",
});
text_enum!(RunStatus {
    Applying => "applying",
    Applied => "applied",
    Failed => "failed",
    Interrupted => "interrupted",
});
text_enum!(StepStatus {
    Pending => "pending",
    Running => "running",
    Done => "done",
    Failed => "failed",
    Interrupted => "interrupted",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyStep {
    /// 1-based, in plan order.
    pub position: u32,
    pub operation: crate::plan::Operation,
    pub status: StepStatus,
    /// AWS calls made for it (retries included).
    pub attempts: u32,
    /// The request id of the last call AWS answered.
    pub request_id: Option<String>,
    pub error: Option<String>,
    #[serde(with = "crate::time::stored::option", default)]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(with = "crate::time::stored::option", default)]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// For a step that starts work AWS carries out later: what it waited for, and how that
    /// went.
    #[serde(default)]
    pub settling: Option<Settling>,
    /// For a rollout: its stages, refresh and bake as they stand.
    #[serde(default)]
    pub rollout: Option<crate::rollout::RolloutState>,
    /// The rollout in words as of when this view was made (its bake's time left).
    #[serde(default)]
    pub rollout_summary: Option<String>,
}

/// How a step's asynchronous work stands after its call: a database back to `available`,
/// capacity in service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settling {
    /// What it waits for, in words: `petclinic-prod-db available with nothing pending`.
    pub waiting_for: String,
    pub state: SettleState,
    /// What AWS still showed at the last poll: `modifying: instance_class → db.t3.large`.
    pub last_seen: String,
    /// Polls made (each one describe call).
    pub polls: u32,
    #[serde(with = "crate::time::stored")]
    pub since: chrono::DateTime<chrono::Utc>,
    pub timeout_secs: u64,
    /// How long it took, once it ended.
    #[serde(default)]
    pub elapsed_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettleState {
    Settling,
    Settled,
    TimedOut,
}

/// The watch of an environment's SLOs after an apply (`environment.watch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchView {
    pub state: WatchState,
    pub minutes: u32,
    pub auto_revert: bool,
    #[serde(with = "crate::time::stored")]
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::time::stored")]
    pub until: chrono::DateTime<chrono::Utc>,
    /// Evaluations made (one a minute).
    pub evaluations: u32,
    /// Whole minutes watched when this view was made.
    pub watched_minutes: u32,
    #[serde(with = "crate::time::stored::option", default)]
    pub last_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The highest burn rate (× the error budget) over the page alert windows at the last
    /// evaluation.
    pub burn: Option<f64>,
    /// When a page alert was already firing as the apply started, the 5-minute burn rate then:
    /// the change is degraded only if the budget burns a fifth faster than that.
    #[serde(default)]
    pub burn_before: Option<f64>,
    /// The page alert that fired (`availability: 14.4× over 1h and 5m`), or why the watch
    /// stopped.
    pub reason: Option<String>,
    /// The revert change the watch recorded.
    pub revert_change: Option<i64>,
}

impl WatchView {
    /// Whole minutes watched by `now` (at most the watch's length; for an ended watch, up to
    /// its last evaluation).
    pub fn minutes_at(&self, now: chrono::DateTime<chrono::Utc>) -> u32 {
        let start = self.started_at;
        let end = match self.state {
            WatchState::Watching => now,
            _ => self.last_at.unwrap_or(now),
        };
        let secs = (end - start).num_seconds().max(0);
        u32::try_from(secs / 60)
            .unwrap_or(u32::MAX)
            .min(self.minutes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchState {
    Watching,
    /// The whole watch passed without a page-level alert.
    Clean,
    /// A page-level alert fired: the change is `degraded`.
    Degraded,
    /// Ended early: a newer apply of the environment, or the SLOs could not be read.
    Stopped,
}

text_enum!(WatchState {
    Watching => "watching",
    Clean => "clean",
    Degraded => "degraded",
    Stopped => "stopped",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyRun {
    pub id: i64,
    pub started_by: String,
    /// Why it ran outside the change windows, when it did.
    #[serde(default)]
    pub emergency: Option<String>,
    pub plan_hash: String,
    pub status: RunStatus,
    pub error: Option<String>,
    #[serde(with = "crate::time::stored")]
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::time::stored::option", default)]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub steps: Vec<ApplyStep>,
}

impl ApplyRun {
    pub fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }
}

/// The latest drift check of an environment: its last applied spec against live AWS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Drift {
    /// Never applied by tierdeck, or not checked yet.
    #[default]
    Unchecked,
    InSync {
        #[serde(with = "crate::time::stored")]
        checked_at: chrono::DateTime<chrono::Utc>,
        /// What the check saw that is no drift: a database still modifying, with what it is
        /// moving to.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
    },
    Drifted {
        #[serde(with = "crate::time::stored")]
        checked_at: chrono::DateTime<chrono::Utc>,
        #[serde(with = "crate::time::stored")]
        since: chrono::DateTime<chrono::Utc>,
        plan: crate::plan::Plan,
    },
    /// The last check could not read AWS or the spec.
    Unknown {
        #[serde(with = "crate::time::stored")]
        checked_at: chrono::DateTime<chrono::Utc>,
        error: String,
    },
}

impl Drift {
    pub fn is_drifted(&self) -> bool {
        matches!(self, Drift::Drifted { .. })
    }

    /// One word for lists: `in sync`, `drifted`, `unknown`, `not checked`.
    pub fn label(&self) -> &'static str {
        match self {
            Drift::Unchecked => "not checked",
            Drift::InSync { .. } => "in sync",
            Drift::Drifted { .. } => "drifted",
            Drift::Unknown { .. } => "unknown",
        }
    }
}

/// A plan as the change page shows it: planned, or why there is none right now. In JSON (and
/// as stored in `changes.plan`) a planned one is the plan's fields beside `state`, `read_ms`
/// and `aws_calls`: `{"state": "planned", "operations": […], "errors": […], "hash": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PlanView {
    Planned {
        #[serde(flatten)]
        plan: crate::plan::Plan,
        /// How long reading the live state took.
        read_ms: u64,
        /// Requests the reading sent to AWS, each retry counted (0 in plans stored before
        /// they were counted).
        #[serde(default)]
        aws_calls: u64,
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
    #[serde(with = "crate::time::stored::option", default)]
    pub last_fetch_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(with = "crate::time::stored::option", default)]
    pub last_success_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
    #[serde(with = "crate::time::stored::option", default)]
    pub last_error_at: Option<chrono::DateTime<chrono::Utc>>,
    pub consecutive_failures: i64,
}

/// An environment in the list (and, with more beside it, in its detail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentSummary {
    pub name: String,
    pub last_applied_commit: Option<String>,
    pub drift: Drift,
    /// The change being applied now, if any.
    pub applying: Option<i64>,
    pub open_changes: i64,
    pub latest_change: Option<ChangeSummary>,
}

/// One environment as its page shows it: the desired spec at the tracked branch's head. In
/// JSON, the fields of its [`EnvironmentSummary`] (as the list shows it) and the detail's
/// beside them, at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentDetail {
    #[serde(flatten)]
    pub summary: EnvironmentSummary,
    pub head_commit: Option<String>,
    /// `None` when the spec at the head has errors (listed in `spec_errors`).
    pub spec: Option<crate::spec::EnvironmentSpec>,
    pub spec_errors: Vec<SpecError>,
    pub recent_changes: Vec<ChangeSummary>,
    /// The spec's schedules over the coming hours (`None` when the spec has errors).
    #[serde(default)]
    pub schedule: Option<crate::schedule::Preview>,
    /// After a revert: the commit applied now and the branch's commit that is not.
    #[serde(default)]
    pub reverted: Option<Reverted>,
    /// Who reaches each tier under the spec at the head (`None` when the spec has errors).
    #[serde(default)]
    pub reachability: Option<crate::reachability::Reachability>,
}

/// An environment a revert took back: `to` is applied, `from` (the branch's) is not, until a
/// newer commit is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reverted {
    pub to: String,
    pub from: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> ChangeSummary {
        ChangeSummary {
            id: 7,
            environment: "prod".into(),
            kind: ChangeKind::Commit,
            status: ChangeStatus::Pending,
            commit: CommitInfo {
                sha: "abc".into(),
                author: Person {
                    name: "Ana".into(),
                    email: "ana@example.com".into(),
                },
                committed_at: crate::time::stored::parse("2026-12-03T09:00:00Z").unwrap(),
                message: "raise max".into(),
            },
            edit_count: 1,
            spec_error_count: 0,
            policy_edits: Vec::new(),
            reverts: None,
            created_at: crate::time::stored::parse("2026-12-03T09:00:01.000Z").unwrap(),
        }
    }

    #[test]
    fn a_plan_is_one_object_beside_its_state_and_round_trips() {
        let view = PlanView::Planned {
            plan: crate::plan::Plan {
                operations: Vec::new(),
                errors: vec![crate::plan::PlanError {
                    resource: "database db".into(),
                    message: "does not exist".into(),
                }],
                hash: "h".into(),
                notes: vec!["db is modifying".into()],
            },
            read_ms: 12,
            aws_calls: 6,
        };
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "state": "planned",
                "operations": [],
                "errors": [{"resource": "database db", "message": "does not exist"}],
                "hash": "h",
                "notes": ["db is modifying"],
                "read_ms": 12,
                "aws_calls": 6,
            })
        );
        assert_eq!(serde_json::from_value::<PlanView>(json).unwrap(), view);
        // Plans stored before `aws_calls` and `notes` existed.
        let old = serde_json::json!({"state": "planned", "operations": [], "errors": [], "hash": "h", "read_ms": 3});
        assert!(matches!(
            serde_json::from_value::<PlanView>(old).unwrap(),
            PlanView::Planned { aws_calls: 0, ref plan, .. } if plan.notes.is_empty()
        ));
    }

    #[test]
    fn list_filters_are_read_from_text_and_name_the_bad_parameter() {
        assert_eq!(list_filters(None, Some(" ")), Ok((None, None)));
        let (env, status) = list_filters(Some("prod"), Some("pending")).unwrap();
        assert_eq!(env.unwrap().as_str(), "prod");
        assert_eq!(status, Some(ChangeStatus::Pending));
        assert_eq!(list_filters(Some("Prod!"), None).unwrap_err().0, "env");
        let (field, why) = list_filters(None, Some("done")).unwrap_err();
        assert_eq!(field, "status");
        assert!(
            why.starts_with("`done` is not a status; use one of invalid, blocked"),
            "{why}"
        );
    }

    #[test]
    fn a_change_detail_is_the_list_item_with_more_beside_it() {
        let detail = ChangeDetail {
            summary: summary(),
            base_commit: None,
            files: Vec::new(),
            semantic_diff: Vec::new(),
            spec_errors: Vec::new(),
            guardrails: Vec::new(),
            superseded_by: None,
            authors: Vec::new(),
            policy: None,
            approvals: None,
            actions: None,
            change_windows: String::new(),
            plan: Some(PlanView::Unavailable {
                reason: "AWS is unreachable".into(),
            }),
            planned_at: None,
            apply: None,
            schedule: None,
            runs: 0,
            cost: None,
            watch: None,
            revert: None,
            jobs: Vec::new(),
            reachability: None,
        };
        let json = serde_json::to_value(&detail).unwrap();
        let item = serde_json::to_value(summary()).unwrap();
        for (k, v) in item.as_object().unwrap() {
            assert_eq!(&json[k], v, "{k}");
        }
        assert_eq!(json["commit"]["author"]["email"], "ana@example.com");
        assert!(json.get("summary").is_none());
        assert_eq!(json["plan"]["state"], "unavailable");
        assert_eq!(
            serde_json::from_value::<ChangeDetail>(json).unwrap(),
            detail
        );
    }
}
