//! Work that outlives a request: planning a change, applying it by itself, running an apply,
//! what follows an apply, the watch of the SLOs after it, and delivering notifications. Each is
//! a row of the jobs table written in the same transaction as the state change that asks for it
//! and taken by one worker; this module holds the kinds, their states, and the retry policy of
//! each kind (how many attempts, how long between them, what is final).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Plan a change against live AWS and store the plan with it; when its rules let it apply
    /// by itself with nothing to wait for, ask for an auto-apply in the same transaction.
    Plan,
    /// Apply a change as tierdeck itself: an approved change of an environment with
    /// `auto_apply`, or a revert the watch recorded (then with the emergency's reason).
    AutoApply,
    /// Run the steps of a started apply, one AWS call at a time, and record how it ended.
    Apply,
    /// After an apply: check drift and read the scaling history at once.
    AfterApply,
    /// Evaluate the SLO burn-rate alerts of a watch after an apply, again until it ends.
    Watch,
    /// Deliver one notification to its receiver.
    Notify,
}

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        JobKind::Plan,
        JobKind::AutoApply,
        JobKind::Apply,
        JobKind::AfterApply,
        JobKind::Watch,
        JobKind::Notify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Plan => "plan",
            JobKind::AutoApply => "auto_apply",
            JobKind::Apply => "apply",
            JobKind::AfterApply => "after_apply",
            JobKind::Watch => "watch",
            JobKind::Notify => "notify",
        }
    }

    /// In words, for the pages: "plan the change".
    pub fn text(self) -> &'static str {
        match self {
            JobKind::Plan => "plan the change against AWS",
            JobKind::AutoApply => "apply the change by itself",
            JobKind::Apply => "run the apply's steps",
            JobKind::AfterApply => "check drift and scaling after the apply",
            JobKind::Watch => "watch the SLOs after the apply",
            JobKind::Notify => "deliver a notification",
        }
    }

    /// How often a job of this kind is tried before it fails for good, and the pauses between.
    pub fn retry(self) -> Retry {
        let secs = Duration::from_secs;
        match self {
            // AWS may be down for a while; the change page shows why meanwhile.
            JobKind::Plan => Retry::new(6, secs(10), secs(300)),
            // A lock held by another apply, AWS unavailable: worth waiting for; a refusal that
            // needs a person is final at once.
            JobKind::AutoApply => Retry::new(10, secs(15), secs(300)),
            // Steps are never run twice by the queue: an apply whose process died is
            // interrupted, and a person decides (a later plan shows what is left) — unless it
            // stopped in a rollout, which a later try re-attaches to (a few restarts in a row).
            JobKind::Apply => Retry::new(5, secs(1), secs(1)),
            JobKind::AfterApply => Retry::new(3, secs(30), secs(120)),
            JobKind::Watch => Retry::new(5, secs(30), secs(120)),
            // Overridden by `[notifications]` (max_attempts, first_retry).
            JobKind::Notify => Retry::new(6, secs(2), secs(128)),
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown job kind `{s}`"))
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for its time (`run_after`) and a worker.
    Queued,
    /// Taken by a worker, whose lease on it runs until `lease_until`.
    Running,
    /// Its last attempt failed; it runs again at `run_after`.
    Retrying,
    Done,
    /// Failed for good: audited, and people were told.
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Retrying,
        JobState::Done,
        JobState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    /// Not over yet.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            JobState::Queued | JobState::Running | JobState::Retrying
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown job state `{s}`"))
    }
}

/// A kind's retry policy: at most `attempts` failed tries, the pause doubling from `first` up
/// to `longest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub first: Duration,
    pub longest: Duration,
}

impl Retry {
    pub const fn new(attempts: u32, first: Duration, longest: Duration) -> Self {
        Self {
            attempts,
            first,
            longest,
        }
    }

    /// After `failures` failed tries in a row (1 for the first): `Some(pause)` before the next,
    /// or `None` when the job has failed for good.
    pub fn after(&self, failures: u32) -> Option<Duration> {
        if failures >= self.attempts {
            return None;
        }
        let doublings = failures.saturating_sub(1).min(20);
        Some(
            self.first
                .saturating_mul(1u32 << doublings)
                .min(self.longest),
        )
    }
}

/// How one run of a job ended, as its handler says.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; nothing more to do.
    Done,
    /// Done for now; run again after this long (a watch's next evaluation).
    Again(Duration),
    /// It failed, but another try may work (AWS unavailable, a lock held by another apply).
    Retry(String),
    /// It failed in a way that needs a person; trying again would not help.
    Final(String),
}

/// A job as the change page and the Admin page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub id: i64,
    pub kind: JobKind,
    pub state: JobState,
    /// The change it is about, if any.
    pub change_id: Option<i64>,
    pub environment: Option<String>,
    /// Tries taken so far, and the tries the kind allows.
    pub attempts: u32,
    pub max_attempts: u32,
    /// Why its last try failed.
    pub last_error: Option<String>,
    /// When it runs (next).
    pub run_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Who asked for it.
    pub requested_by: String,
}

impl JobView {
    /// One line for the pages: "plan the change against AWS: retrying (2 of 6 tries); last
    /// error: …".
    pub fn line(&self) -> String {
        let state = match self.state {
            JobState::Retrying => format!(
                "retrying ({} of {} tries)",
                self.attempts, self.max_attempts
            ),
            JobState::Failed => format!("failed after {} tries", self.attempts),
            s => s.as_str().to_owned(),
        };
        match &self.last_error {
            Some(e) if self.state != JobState::Done => {
                format!("{}: {state}; last error: {e}", self.kind.text())
            }
            _ => format!("{}: {state}", self.kind.text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_states_read_back_as_written() {
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>(), Ok(k));
        }
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>(), Ok(s));
        }
        assert!("later".parse::<JobKind>().is_err());
        assert!("paused".parse::<JobState>().is_err());
    }

    #[test]
    fn pauses_double_up_to_the_longest_and_the_last_failure_is_final() {
        let r = Retry::new(5, Duration::from_secs(10), Duration::from_secs(35));
        let pauses: Vec<Option<u64>> = (1..=5).map(|f| r.after(f).map(|d| d.as_secs())).collect();
        assert_eq!(pauses, [Some(10), Some(20), Some(35), Some(35), None]);
        // An absurd count neither overflows nor retries.
        assert_eq!(r.after(u32::MAX), None);
        let long = Retry::new(u32::MAX, Duration::from_secs(1), Duration::from_secs(600));
        assert_eq!(long.after(64), Some(Duration::from_secs(600)));
    }

    #[test]
    fn an_apply_is_never_run_twice_by_the_queue() {
        // One try, and more for the worker that finds its process gone: it interrupts the run,
        // or re-attaches to a rollout AWS still runs (a few restarts in a row).
        assert_eq!(JobKind::Apply.retry().attempts, 5);
        assert!(JobKind::Plan.retry().attempts > 1);
    }

    #[test]
    fn a_job_line_names_its_state_and_last_error() {
        let mut v = JobView {
            id: 1,
            kind: JobKind::AutoApply,
            state: JobState::Retrying,
            change_id: Some(4),
            environment: Some("prod".into()),
            attempts: 2,
            max_attempts: 10,
            last_error: Some("prod is being applied by change 3".into()),
            run_after: DateTime::UNIX_EPOCH,
            created_at: DateTime::UNIX_EPOCH,
            finished_at: None,
            requested_by: "sejin".into(),
        };
        assert_eq!(
            v.line(),
            "apply the change by itself: retrying (2 of 10 tries); last error: prod is being applied by change 3"
        );
        v.state = JobState::Done;
        assert_eq!(v.line(), "apply the change by itself: done");
    }
}
