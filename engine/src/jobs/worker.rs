//! The one worker: takes due jobs under a lease, runs each with its handler, records how the
//! try ended under the kind's retry policy, and fails for good — audited, people told — what
//! will not succeed. A job whose worker died is taken again when its lease runs out (at once
//! when that worker was a process of this host that no longer runs); its handler finishes it
//! or fails it honestly.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use domain::job::{JobKind, Outcome, Retry};
use futures::FutureExt;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::Job;
use crate::auth::{Actor, RequestMeta};
use crate::error::ServiceError;
use crate::store::audit::{append, NewEvent};
use crate::store::jobs::{self, Claimant, Ending, JobRow};
use crate::Engine;

/// Jobs run at once; more wait in the table.
const MAX_RUNNING: usize = 16;
/// How long a worker's claim on a job holds without renewal.
const LEASE: Duration = Duration::from_secs(60);
/// How often the worker renews its leases.
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// How often runs whose process stopped are looked for (their lock no longer beats).
const RECOVER_EVERY: Duration = Duration::from_secs(30);
/// The longest the worker sleeps with nothing due (a job queued by another process is seen
/// within this).
const IDLE: Duration = Duration::from_secs(2);

/// Wakes the worker: call after the transaction that queued a job commits.
#[derive(Debug, Clone, Default)]
pub struct Waker(Arc<Notify>);

impl Waker {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// A service's failure as a job's outcome: what may pass later is tried again, the rest needs
/// a person.
pub(crate) fn outcome_of(e: &ServiceError) -> Outcome {
    match e {
        ServiceError::Internal(_) => {
            tracing::error!(error = e.logged(), "a job's try failed");
            Outcome::Retry(e.to_string())
        }
        ServiceError::Unavailable(_) | ServiceError::Busy(_) => Outcome::Retry(e.to_string()),
        _ => Outcome::Final(e.to_string()),
    }
}

/// The retry policy of `kind` under the panel's settings (notifications have their own).
pub(crate) fn retry_of(settings: &crate::EngineSettings, kind: JobKind) -> Retry {
    match kind {
        JobKind::Notify => {
            let n = &settings.notify;
            Retry::new(n.max_attempts.max(1), n.first_retry, n.first_retry * 64)
        }
        k => k.retry(),
    }
}

/// The worker of one process.
pub struct Worker {
    engine: Engine,
}

impl Worker {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    fn claimant(&self) -> Claimant<'_> {
        let h = &self.engine.holder;
        Claimant {
            id: &h.id,
            host: &h.host,
            pid: i64::from(h.pid),
        }
    }

    /// Runs jobs for ever.
    pub async fn run(self) {
        if let Err(e) = self.free_dead_holders().await {
            tracing::warn!(error = %e, "looking for jobs of stopped processes failed");
        }
        let mut running: JoinSet<()> = JoinSet::new();
        let mut renew = tokio::time::interval(RENEW_EVERY);
        let mut recover = tokio::time::interval(RECOVER_EVERY);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recover.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.take(&mut running).await {
                // There may be more due than there was room for.
                continue;
            }
            let pause = self.pause().await;
            tokio::select! {
                () = self.engine.jobs_waker.0.notified() => {}
                () = tokio::time::sleep(pause) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = renew.tick(), if !running.is_empty() => self.renew().await,
                _ = recover.tick() => {
                    if let Err(e) = self.engine.applies().recover_applies().await {
                        tracing::warn!(error = %e, "recovering stopped applies failed");
                    }
                }
            }
        }
    }

    /// Takes what is due, as many as there is room for; whether it filled the room (more may
    /// be due).
    async fn take(&self, running: &mut JoinSet<()>) -> bool {
        let room = MAX_RUNNING.saturating_sub(running.len());
        if room == 0 {
            return false;
        }
        let now = self.engine.clock.now();
        let lease = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let claimed = async {
            {
                let mut conn = self.engine.store.pool().acquire().await?;
                if !jobs::any_due(&mut conn, now).await? {
                    return Ok(Vec::new());
                }
            }
            let mut tx = self.engine.store.begin_write().await?;
            let rows = jobs::claim(&mut tx, self.claimant(), now, lease, room as u32).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(rows)
        }
        .await;
        let rows = match claimed {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "taking jobs failed");
                return false;
            }
        };
        let full = rows.len() == room;
        for row in rows {
            let engine = self.engine.clone();
            running.spawn(async move { run_one(engine, row).await });
        }
        full
    }

    /// How long to sleep: until the next job is due, at most [`IDLE`].
    async fn pause(&self) -> Duration {
        let next = async {
            let mut conn = self.engine.store.pool().acquire().await?;
            jobs::next_due(&mut conn).await
        }
        .await;
        match next {
            Ok(Some(at)) => (at - self.engine.clock.now())
                .to_std()
                .unwrap_or(Duration::from_millis(10))
                .clamp(Duration::from_millis(10), IDLE),
            _ => IDLE,
        }
    }

    async fn renew(&self) {
        let until = self.engine.clock.now() + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let renewed = async {
            let mut conn = self.engine.store.pool().acquire().await?;
            jobs::renew(&mut conn, &self.engine.holder.id, until).await
        }
        .await;
        if let Err(e) = renewed {
            tracing::warn!(error = %e, "renewing the leases of running jobs failed");
        }
    }

    /// At start: jobs left running by a process of this host that no longer runs (this one,
    /// before a restart) are free to take at once, not when their lease runs out.
    async fn free_dead_holders(&self) -> Result<(), sqlx::Error> {
        let now = self.engine.clock.now();
        let mut tx = self.engine.store.begin_write().await?;
        for row in jobs::running_elsewhere(&mut tx, &self.engine.holder.id).await? {
            let gone = match (&row.holder_host, row.holder_pid) {
                (Some(host), Some(pid)) => self.engine.holder.process_gone(host, pid),
                _ => true,
            };
            if gone {
                tracing::warn!(job = row.id, kind = %row.kind, "a job's process stopped; it is taken again");
                jobs::expire_lease(&mut tx, row.id, now).await?;
            }
        }
        tx.commit().await
    }
}

/// Runs one taken job and records how the try ended.
async fn run_one(engine: Engine, row: JobRow) {
    let outcome = match Job::from_row(&row) {
        // A row tierdeck cannot read will not become readable: fail it for good.
        Err(e) => Outcome::Final(e),
        Ok(job) => {
            let attempt = row.attempts.max(1) as u32;
            let handled = AssertUnwindSafe(handle(&engine, row.id, attempt, job))
                .catch_unwind()
                .await;
            handled.unwrap_or_else(|_| Outcome::Retry("the job's handler panicked".to_owned()))
        }
    };
    if let Err(e) = record(&engine, &row, outcome).await {
        // The lease runs out and another try follows: handlers are written to be taken again.
        tracing::error!(job = row.id, kind = %row.kind, error = %e, "recording a job's end failed");
    }
}

async fn handle(engine: &Engine, id: i64, attempt: u32, job: Job) -> Outcome {
    match job {
        Job::Plan { change, .. } => engine.plans().plan_job(change).await,
        Job::AutoApply { change, reason, .. } => {
            engine
                .applies()
                .auto_apply_job(id, change, reason.as_deref())
                .await
        }
        Job::Apply(run) => engine.applies().run_job(*run, attempt).await,
        Job::AfterApply { environment } => engine.applies().after_apply_job(&environment).await,
        Job::Watch { change, .. } => engine.watches().watch_job(change).await,
        Job::Notify { notification, .. } => {
            engine
                .notifications()
                .deliver_job(notification, attempt)
                .await
        }
    }
}

/// Writes how a try ended; a job that failed for good is audited and, unless its own failure
/// already told people (an apply's end, a notification), announced.
async fn record(engine: &Engine, row: &JobRow, outcome: Outcome) -> Result<(), ServiceError> {
    let now = engine.clock.now();
    let kind = row.kind().ok();
    let retry = kind.map_or(Retry::new(1, Duration::ZERO, Duration::ZERO), |k| {
        retry_of(&engine.settings, k)
    });
    let failures = row.failures.max(0) as u32 + 1;
    let (ending, error) = match &outcome {
        Outcome::Done => (Ending::Done, None),
        Outcome::Again(d) => (
            Ending::Again(now + chrono::Duration::from_std(*d).unwrap_or_default()),
            None,
        ),
        Outcome::Retry(e) => match retry.after(failures) {
            Some(pause) => (
                Ending::Retry {
                    error: e,
                    at: now + chrono::Duration::from_std(pause).unwrap_or_default(),
                },
                None,
            ),
            None => (Ending::Failed { error: e }, Some(e)),
        },
        Outcome::Final(e) => (Ending::Failed { error: e }, Some(e)),
    };
    if let Ending::Retry { error, .. } = ending {
        tracing::warn!(job = row.id, kind = %row.kind, change = ?row.change_id, failures, error, "a job failed; it is tried again");
    }
    let mut tx = engine.store.begin_write().await?;
    let written = jobs::end(&mut tx, row.id, &engine.holder.id, ending, now).await?;
    if !written {
        // Its handler ended it in its own transaction, or another worker took it over.
        return Ok(());
    }
    if let Some(error) = error {
        tracing::error!(job = row.id, kind = %row.kind, change = ?row.change_id, error, "a job failed for good");
        let target = row.id.to_string();
        append(
            &mut tx,
            NewEvent {
                actor: Actor::system(),
                action: "job.failed",
                environment: row.environment.as_deref(),
                target: Some(&target),
                detail: json!({
                    "kind": row.kind,
                    "change": row.change_id,
                    "attempts": row.attempts,
                    "error": error,
                    "requested_by": row.requested_by,
                }),
                meta: &RequestMeta::default(),
            },
        )
        .await?;
        let told = matches!(kind, Some(JobKind::Notify | JobKind::Apply) | None);
        if !told {
            let change = match row.change_id {
                Some(id) => {
                    crate::store::changes::get(&mut tx, domain::change::ChangeId(id)).await?
                }
                None => None,
            };
            let what = kind.map_or("a job", JobKind::text);
            let about = match &change {
                Some(c) => format!(" for change #{} ({})", c.id, c.environment),
                None => row
                    .environment
                    .as_deref()
                    .map(|e| format!(" for {e}"))
                    .unwrap_or_default(),
            };
            let link = change
                .as_ref()
                .map(|c| engine.notifications().change_link(c.id))
                .unwrap_or_default();
            let text = format!(
                "tierdeck could not {what}{about} after {} tries: {error}. It waits for a person.{link}",
                row.attempts
            );
            engine
                .notifications()
                .queue_notification(
                    &mut tx,
                    "job_failed",
                    row.environment.as_deref(),
                    change.as_ref(),
                    &text,
                )
                .await?;
        }
    }
    tx.commit().await?;
    engine.jobs_waker.wake();
    Ok(())
}

#[cfg(test)]
impl Worker {
    /// Runs every job due now, one at a time, until none is due (a test's worker); returns how
    /// many ran.
    pub(crate) async fn drain(&self) -> usize {
        let mut ran = 0;
        loop {
            let now = self.engine.clock.now();
            let lease = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
            let mut tx = self
                .engine
                .store
                .begin_write()
                .await
                .expect("a write transaction");
            let row = jobs::claim(&mut tx, self.claimant(), now, lease, 1)
                .await
                .expect("taking a job")
                .pop();
            tx.commit().await.expect("commit");
            let Some(row) = row else {
                return ran;
            };
            run_one(self.engine.clone(), row).await;
            ran += 1;
            assert!(ran < 500, "jobs keep coming: a loop between them?");
        }
    }
}
