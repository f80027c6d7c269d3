//! The durable queue of work that outlives a request (`domain::job`): what each kind of job
//! carries, how it is queued in the caller's transaction, and the one worker that takes and
//! runs them ([`worker`]).
//!
//! A job is queued in the same transaction as the state change that asks for it (an approval
//! that completes a change of an auto-apply environment queues its auto-apply; the start of an
//! apply queues the run of its steps), so a process that dies after that commit leaves the work
//! recorded, and the next worker finishes it or fails it honestly.

pub mod worker;

use crate::store::Conn;
use chrono::{DateTime, Utc};
use domain::change::ChangeId;
use domain::job::JobKind;
use serde::{Deserialize, Serialize};

use crate::store::jobs::{self, JobRow, NewJob};

/// A job and what its handler needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Plan {
        change: ChangeId,
        environment: String,
    },
    AutoApply {
        change: ChangeId,
        environment: String,
        /// The emergency's reason, for an automatic revert (past the windows and the budget).
        reason: Option<String>,
    },
    Apply(Box<crate::service::apply::RunJob>),
    AfterApply {
        environment: String,
    },
    Watch {
        change: ChangeId,
        environment: String,
        /// When the first evaluation is due.
        at: DateTime<Utc>,
    },
    Notify {
        notification: i64,
        environment: Option<String>,
        change: Option<ChangeId>,
    },
}

#[derive(Serialize, Deserialize)]
struct AutoApplyPayload {
    reason: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct NotifyPayload {
    notification: i64,
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Plan { .. } => JobKind::Plan,
            Job::AutoApply { .. } => JobKind::AutoApply,
            Job::Apply(_) => JobKind::Apply,
            Job::AfterApply { .. } => JobKind::AfterApply,
            Job::Watch { .. } => JobKind::Watch,
            Job::Notify { .. } => JobKind::Notify,
        }
    }

    fn change(&self) -> Option<ChangeId> {
        match self {
            Job::Plan { change, .. }
            | Job::AutoApply { change, .. }
            | Job::Watch { change, .. } => Some(*change),
            Job::Apply(run) => Some(run.change_id),
            Job::Notify { change, .. } => *change,
            Job::AfterApply { .. } => None,
        }
    }

    fn environment(&self) -> Option<&str> {
        match self {
            Job::Plan { environment, .. }
            | Job::AutoApply { environment, .. }
            | Job::Watch { environment, .. }
            | Job::AfterApply { environment } => Some(environment),
            Job::Apply(run) => Some(&run.environment),
            Job::Notify { environment, .. } => environment.as_deref(),
        }
    }

    /// The same work asked twice before it runs is done once: a change's plan, its
    /// auto-apply, an environment's checks after an apply.
    fn dedup_key(&self) -> Option<String> {
        match self {
            Job::Plan { change, .. } => Some(format!("plan:{change}")),
            Job::AutoApply { change, .. } => Some(format!("auto_apply:{change}")),
            Job::AfterApply { environment } => Some(format!("after_apply:{environment}")),
            Job::Watch { change, .. } => Some(format!("watch:{change}")),
            Job::Apply(_) | Job::Notify { .. } => None,
        }
    }

    fn payload(&self) -> String {
        let json = match self {
            Job::AutoApply { reason, .. } => serde_json::to_value(AutoApplyPayload {
                reason: reason.clone(),
            }),
            Job::Apply(run) => serde_json::to_value(run),
            Job::Notify { notification, .. } => serde_json::to_value(NotifyPayload {
                notification: *notification,
            }),
            Job::Plan { .. } | Job::AfterApply { .. } | Job::Watch { .. } => {
                Ok(serde_json::json!({}))
            }
        };
        json.map(|v| v.to_string())
            .unwrap_or_else(|_| "{}".to_owned())
    }

    /// The job a row holds.
    pub fn from_row(row: &JobRow) -> Result<Job, String> {
        let change = row.change_id.map(ChangeId);
        let need_change = || change.ok_or_else(|| format!("job {} names no change", row.id));
        let environment = || {
            row.environment
                .clone()
                .ok_or_else(|| format!("job {} names no environment", row.id))
        };
        let bad = |e: serde_json::Error| format!("job {}'s payload: {e}", row.id);
        Ok(match row.kind()? {
            JobKind::Plan => Job::Plan {
                change: need_change()?,
                environment: environment()?,
            },
            JobKind::AutoApply => {
                let p: AutoApplyPayload = serde_json::from_str(&row.payload).map_err(bad)?;
                Job::AutoApply {
                    change: need_change()?,
                    environment: environment()?,
                    reason: p.reason,
                }
            }
            JobKind::Apply => {
                Job::Apply(Box::new(serde_json::from_str(&row.payload).map_err(bad)?))
            }
            JobKind::AfterApply => Job::AfterApply {
                environment: environment()?,
            },
            JobKind::Watch => Job::Watch {
                change: need_change()?,
                environment: environment()?,
                at: crate::store::parse_time(&row.run_after)?,
            },
            JobKind::Notify => {
                let p: NotifyPayload = serde_json::from_str(&row.payload).map_err(bad)?;
                Job::Notify {
                    notification: p.notification,
                    environment: row.environment.clone(),
                    change,
                }
            }
        })
    }
}

/// Queues `job` in the caller's transaction, due at once (a watch: at its time), asked for by
/// `by` (an actor's name). Returns its id, or `None` when the same work waits already. The
/// caller wakes the worker once its transaction commits ([`worker::Waker::wake`]).
pub(crate) async fn enqueue(
    conn: &mut Conn,
    job: &Job,
    max_attempts: u32,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    let run_after = match job {
        Job::Watch { at, .. } => *at,
        _ => now,
    };
    jobs::insert(
        conn,
        &NewJob {
            kind: job.kind(),
            change_id: job.change().map(|c| c.0),
            environment: job.environment(),
            payload: job.payload(),
            dedup_key: job.dedup_key(),
            max_attempts,
            run_after,
            requested_by: by,
        },
        now,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(job: &Job) -> JobRow {
        JobRow {
            id: 7,
            kind: job.kind().as_str().to_owned(),
            state: "running".into(),
            change_id: job.change().map(|c| c.0),
            environment: job.environment().map(str::to_owned),
            payload: job.payload(),
            attempts: 1,
            failures: 0,
            max_attempts: 3,
            last_error: None,
            run_after: "2026-12-07T10:00:00.000Z".into(),
            holder_id: None,
            holder_host: None,
            holder_pid: None,
            lease_until: None,
            requested_by: "system".into(),
            created_at: "2026-12-07T10:00:00.000Z".into(),
            finished_at: None,
        }
    }

    #[test]
    fn a_job_reads_back_from_its_row_as_it_was_queued() {
        let at = crate::store::parse_time("2026-12-07T10:00:00.000Z").unwrap();
        let jobs = [
            Job::Plan {
                change: ChangeId(3),
                environment: "prod".into(),
            },
            Job::AutoApply {
                change: ChangeId(3),
                environment: "prod".into(),
                reason: Some("auto-revert: the watch saw a page alert".into()),
            },
            Job::AfterApply {
                environment: "staging".into(),
            },
            Job::Watch {
                change: ChangeId(4),
                environment: "prod".into(),
                at,
            },
            Job::Notify {
                notification: 12,
                environment: None,
                change: None,
            },
        ];
        for job in jobs {
            assert_eq!(Job::from_row(&row(&job)), Ok(job));
        }
    }

    #[test]
    fn a_row_that_lacks_what_its_kind_needs_is_an_error_not_a_panic() {
        let mut r = row(&Job::Plan {
            change: ChangeId(3),
            environment: "prod".into(),
        });
        r.change_id = None;
        assert_eq!(Job::from_row(&r), Err("job 7 names no change".into()));
        r.kind = "later".into();
        assert!(Job::from_row(&r).is_err());
        let mut n = row(&Job::Notify {
            notification: 1,
            environment: None,
            change: None,
        });
        n.payload = "{".into();
        assert!(Job::from_row(&n)
            .unwrap_err()
            .starts_with("job 7's payload"));
    }
}
