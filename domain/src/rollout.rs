//! A rollout as it runs: the stages of its instance refresh, the bake at each checkpoint, and
//! what an operator may ask of it. Plain data and the rules over it; the engine's rollout step
//! makes the AWS calls and records this state before and after each one, so a restarted
//! process re-attaches to the refresh AWS still runs (by its id) rather than start another.
//!
//! AWS holds a refresh at a checkpoint only for a fixed delay. So each stage is a refresh of
//! its own that stops at the stage's checkpoint (held for AWS's longest delay); once the bake
//! is judged good tierdeck cancels it and starts the next stage with `SkipMatching`, which
//! leaves the instances already new alone. A rollback is `RollbackInstanceRefresh` of the
//! running stage (AWS undoes what that refresh replaced), then — when earlier stages left new
//! instances — a refresh back to the previous version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::{duration_text, RolloutPlan};

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The stage's refresh is to be started (after the new version is made, for an image).
    Starting,
    /// AWS replaces instances up to the stage's checkpoint (or to the end).
    Replacing,
    /// At a checkpoint: the SLOs are read until the bake is over.
    Baking,
    /// The good stage's refresh is being cancelled so the next can start.
    Continuing,
    /// `RollbackInstanceRefresh` runs.
    RollingBack,
    /// A refresh back to the previous version replaces what earlier stages made new.
    Returning,
    /// `CancelInstanceRefresh` runs (asked for, or a rollback AWS cannot make).
    Cancelling,
    Succeeded,
    RolledBack,
    Cancelled,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Replacing => "replacing",
            Phase::Baking => "baking",
            Phase::Continuing => "continuing",
            Phase::RollingBack => "rolling back",
            Phase::Returning => "returning to the previous version",
            Phase::Cancelling => "cancelling",
            Phase::Succeeded => "succeeded",
            Phase::RolledBack => "rolled back",
            Phase::Cancelled => "cancelled",
            Phase::Failed => "failed",
        }
    }

    pub fn is_over(self) -> bool {
        matches!(
            self,
            Phase::Succeeded | Phase::RolledBack | Phase::Cancelled | Phase::Failed
        )
    }
}

/// What an operator asks of a running rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// End the bake now: the stage is good.
    Continue,
    Cancel,
    Rollback,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Continue => "continue",
            Command::Cancel => "cancel",
            Command::Rollback => "rollback",
        }
    }
}

impl std::str::FromStr for Command {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "continue" => Ok(Command::Continue),
            "cancel" => Ok(Command::Cancel),
            "rollback" => Ok(Command::Rollback),
            other => Err(format!(
                "`{other}` is not a rollout action: continue, cancel or rollback"
            )),
        }
    }
}

/// A rollout's state, as its step records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    pub group: String,
    pub template: String,
    /// The version rolled out, once known (made, for an image).
    pub version: Option<String>,
    /// The version the group ran before, where a rollback goes.
    pub previous: String,
    pub checkpoints: Vec<u32>,
    /// Index of the stage in `checkpoints`.
    pub stage: usize,
    pub phase: Phase,
    /// The refresh AWS runs for this stage (or the rollback's, or the return's).
    pub refresh_id: Option<String>,
    /// As `DescribeInstanceRefreshes` last said.
    pub status: String,
    pub percentage: u32,
    pub instances_to_update: u32,
    pub reason: Option<String>,
    pub bake_secs: u32,
    #[serde(with = "crate::time::stored::option", default)]
    pub bake_until: Option<DateTime<Utc>>,
    /// The page alert that rolled it back, and the burn rate then.
    pub alert: Option<String>,
    pub burn: Option<f64>,
    /// The last burn rate read during a bake.
    pub last_burn: Option<f64>,
    /// Who asked for the last operator action.
    pub by: Option<String>,
    /// Why a rollback became a cancel, or what else people should know.
    pub note: Option<String>,
    /// AWS calls made, polls included.
    pub calls: u32,
    #[serde(with = "crate::time::stored")]
    pub since: DateTime<Utc>,
}

impl RolloutState {
    pub fn new(plan: &RolloutPlan, now: DateTime<Utc>) -> Self {
        let version = match &plan.target {
            crate::plan::RolloutTarget::Version { version } => Some(version.clone()),
            crate::plan::RolloutTarget::NewVersion { .. } => None,
        };
        RolloutState {
            group: plan.group.clone(),
            template: plan.template.clone(),
            version,
            previous: plan.previous.clone(),
            checkpoints: plan.preferences.checkpoints.clone(),
            stage: 0,
            phase: Phase::Starting,
            refresh_id: None,
            status: String::new(),
            percentage: 0,
            instances_to_update: plan.to_replace,
            reason: None,
            bake_secs: plan.preferences.bake_seconds,
            bake_until: None,
            alert: None,
            burn: None,
            last_burn: None,
            by: None,
            note: None,
            calls: 0,
            since: now,
        }
    }

    /// The checkpoint the current stage stops at; `None`: the last stage, which runs to 100.
    pub fn checkpoint(&self) -> Option<u32> {
        self.checkpoints
            .get(self.stage)
            .copied()
            .filter(|c| *c < 100)
    }

    /// Whether AWS can roll the refresh back: only to a numbered previous version.
    pub fn rollback_refusal(&self) -> Option<String> {
        self.previous.parse::<u32>().is_err().then(|| {
            format!(
                "AWS cannot roll back to {}: a rollback needs the group on a numbered launch template version",
                self.previous
            )
        })
    }

    /// Whether `command` may be asked now; the reason it may not, as AWS or tierdeck would
    /// refuse it.
    pub fn may(&self, command: Command) -> Result<(), String> {
        let p = self.phase;
        if p.is_over() {
            return Err(format!("the rollout has ended ({})", p.as_str()));
        }
        match command {
            Command::Continue => match p {
                Phase::Baking => Ok(()),
                _ => Err(format!(
                    "there is no bake to end: the rollout is {}",
                    p.as_str()
                )),
            },
            Command::Cancel => match p {
                Phase::Replacing | Phase::Baking | Phase::Starting => Ok(()),
                _ => Err(format!(
                    "no instance refresh can be cancelled now (ActiveInstanceRefreshNotFound): the rollout is {}",
                    p.as_str()
                )),
            },
            Command::Rollback => match p {
                Phase::Replacing | Phase::Baking => match self.rollback_refusal() {
                    Some(why) => Err(why),
                    None => Ok(()),
                },
                _ => Err(format!(
                    "no instance refresh can be rolled back now (ActiveInstanceRefreshNotFound): the rollout is {}",
                    p.as_str()
                )),
            },
        }
    }

    /// Stage `n of m`, in words: `stage 2 of 3 (to 50 %)`.
    pub fn stage_text(&self) -> String {
        let to = self.checkpoints.get(self.stage).copied().unwrap_or(100);
        format!(
            "stage {} of {} (to {to} %)",
            self.stage + 1,
            self.checkpoints.len()
        )
    }

    /// The line the change page shows.
    pub fn summary(&self, now: DateTime<Utc>) -> String {
        let mut s = format!(
            "{} — {}: {} % replaced, {} instance{} left",
            self.phase.as_str(),
            self.stage_text(),
            self.percentage,
            self.instances_to_update,
            if self.instances_to_update == 1 {
                ""
            } else {
                "s"
            }
        );
        if let Some(id) = &self.refresh_id {
            s.push_str(&format!("; refresh {id}"));
            if !self.status.is_empty() {
                s.push_str(&format!(" {}", self.status));
            }
        }
        if let (Phase::Baking, Some(until)) = (self.phase, self.bake_until) {
            let left = (until - now).num_seconds().max(0) as u32;
            s.push_str(&format!("; bake {} left", duration_text(left)));
            if let Some(b) = self.last_burn {
                s.push_str(&format!(", burn {b:.1}×"));
            }
        }
        if let Some(r) = &self.reason {
            s.push_str(&format!("; AWS says: {r}"));
        }
        if let Some(a) = &self.alert {
            s.push_str(&format!("; rolled back on {a}"));
            if let Some(b) = self.burn {
                s.push_str(&format!(" (burn {b:.1}×)"));
            }
        }
        if let Some(n) = &self.note {
            s.push_str(&format!("; {n}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RolloutTarget;
    use crate::spec::Rollout;

    fn state(previous: &str) -> RolloutState {
        let plan = RolloutPlan {
            group: "web".into(),
            template: "web-lt".into(),
            target: RolloutTarget::Version {
                version: "7".into(),
            },
            previous: previous.into(),
            image_id: None,
            to_replace: 4,
            instances: 4,
            preferences: Rollout {
                checkpoints: vec![25, 50, 100],
                bake_seconds: 600,
                ..Default::default()
            },
        };
        RolloutState::new(&plan, DateTime::UNIX_EPOCH)
    }

    #[test]
    fn each_stage_stops_at_its_checkpoint_and_the_last_runs_to_the_end() {
        let mut s = state("6");
        assert_eq!(s.checkpoint(), Some(25));
        s.stage = 1;
        assert_eq!(s.checkpoint(), Some(50));
        assert_eq!(s.stage_text(), "stage 2 of 3 (to 50 %)");
        s.stage = 2;
        assert_eq!(s.checkpoint(), None);
    }

    #[test]
    fn operator_actions_are_refused_with_the_reason_where_aws_or_the_stage_would_refuse() {
        let mut s = state("6");
        assert!(s
            .may(Command::Continue)
            .unwrap_err()
            .contains("no bake to end"));
        s.phase = Phase::Baking;
        assert_eq!(s.may(Command::Continue), Ok(()));
        assert_eq!(s.may(Command::Rollback), Ok(()));
        assert_eq!(s.may(Command::Cancel), Ok(()));
        s.phase = Phase::RollingBack;
        assert!(s
            .may(Command::Cancel)
            .unwrap_err()
            .contains("ActiveInstanceRefreshNotFound"));
        s.phase = Phase::Succeeded;
        assert_eq!(
            s.may(Command::Rollback).unwrap_err(),
            "the rollout has ended (succeeded)"
        );
        // A group on $Latest cannot be rolled back by AWS.
        let mut latest = state("$Latest");
        latest.phase = Phase::Replacing;
        assert!(latest
            .may(Command::Rollback)
            .unwrap_err()
            .contains("AWS cannot roll back to $Latest"));
        assert_eq!(latest.may(Command::Cancel), Ok(()));
    }

    #[test]
    fn the_summary_says_stage_percentage_instances_left_and_bake_time_left() {
        let mut s = state("6");
        s.stage = 1;
        s.phase = Phase::Baking;
        s.percentage = 50;
        s.instances_to_update = 2;
        s.refresh_id = Some("r-1".into());
        s.status = "InProgress".into();
        s.bake_until = Some(DateTime::UNIX_EPOCH + chrono::Duration::seconds(300));
        s.last_burn = Some(0.4);
        assert_eq!(
            s.summary(DateTime::UNIX_EPOCH),
            "baking — stage 2 of 3 (to 50 %): 50 % replaced, 2 instances left; refresh r-1 InProgress; bake 5 minutes left, burn 0.4×"
        );
    }
}
