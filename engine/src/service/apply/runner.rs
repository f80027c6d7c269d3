//! Running a started apply: one step at a time while the run holds its lock, each AWS call
//! recorded and audited, and the end of the run written once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::change::{ChangeId, ChangeKind, RunStatus, StepStatus};
use domain::job::{JobKind, Outcome};
use domain::lifecycle::Event;
use domain::plan::Operation;
use domain::settle::Target;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::rollout::RolloutEnd;
use super::Applies;
use crate::auth::{Actor, RequestMeta};
use crate::aws::execute::{already_done, execute};
use crate::error::{ServiceError, ServiceResult};
use crate::jobs::worker::outcome_of;
use crate::jobs::{self, Job};
use crate::store::applies;
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit};
use crate::store::repo as repo_store;

use crate::holder::{HEARTBEAT, STALE_AFTER_SECS};

/// How the steps of a run ended.
pub(super) enum Ended {
    Done,
    /// A step failed, and why.
    Failed(String),
    /// The run no longer holds its lock, and why.
    LostLock(String),
    /// A rollout was rolled back on a page-level SLO alert, and what it saw: the change is
    /// degraded.
    Degraded(String),
}

/// What the runner needs, fixed when the apply starts: the payload of its job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJob {
    pub(super) run_id: i64,
    pub(crate) change_id: ChangeId,
    pub(super) kind: ChangeKind,
    pub(crate) environment: String,
    pub(super) commit: String,
    /// The environment's last applied commit when the change was recorded.
    pub(super) base_commit: Option<String>,
    /// Steps that raise capacity wait for it to be in service.
    pub(super) wait_for_capacity: bool,
    /// The watch after the apply, from the rules that judged it.
    pub(super) watch: domain::spec::Watch,
    /// The burn rate of a page alert already firing as the apply started.
    pub(super) burn_before: Option<f64>,
    /// Every SLO watched is counted by CloudWatch: the watch needs no Prometheus.
    #[serde(default)]
    pub(super) watch_without_prometheus: bool,
    pub(super) region: String,
    pub(super) operations: Vec<Operation>,
    pub(super) group_ids: BTreeMap<String, String>,
    pub(super) actor: Actor,
    pub(super) meta: RequestMeta,
}

/// The longest wait before retry `attempt` (milliseconds): doubling from 400 ms, at most 5 s.
fn backoff_ceiling_ms(attempt: u32) -> u64 {
    200u64.saturating_mul(1 << attempt.min(5)).min(5_000)
}

/// The wait before retry `attempt`: between half its ceiling and the ceiling (jitter).
fn backoff(attempt: u32) -> Duration {
    let base = backoff_ceiling_ms(attempt);
    Duration::from_millis(rand::thread_rng().gen_range(base / 2..=base))
}

impl Applies<'_> {
    /// An apply job: runs the steps of a started apply and records how it ended. Steps are
    /// never run twice: a second try finds the first one's process gone (or unable to record
    /// the end), marks the run `interrupted` with its change, and fails for good; a later plan
    /// shows what is left.
    pub(crate) async fn run_job(&self, job: RunJob, attempt: u32) -> Outcome {
        let run = async {
            let mut conn = self.store.pool().acquire().await?;
            applies::run(&mut conn, job.run_id).await
        }
        .await;
        let run = match run {
            Ok(Some(run)) => run,
            Ok(None) => return Outcome::Final(format!("there is no apply run {}", job.run_id)),
            Err(e) => return Outcome::Retry(format!("reading apply run {}: {e}", job.run_id)),
        };
        let cut_short =
            "tierdeck stopped during the apply; the run is interrupted: plan again to see what is left";
        if run.status == RunStatus::Interrupted.as_str() {
            return Outcome::Final(cut_short.to_owned());
        }
        if run.status != RunStatus::Applying.as_str() {
            return Outcome::Done;
        }
        if attempt > 1 {
            // A rollout AWS still runs is followed again by its recorded refresh id; any other
            // step cut short is never run twice.
            match self.resume_rollout(&run).await {
                Ok(true) => {}
                Ok(false) => {
                    return match self.interrupt_run(&run).await {
                        Ok(()) => Outcome::Final(cut_short.to_owned()),
                        Err(e) => outcome_of(&e),
                    }
                }
                Err(e) => return outcome_of(&e),
            }
        }
        match self.run(job).await {
            Ok(()) => Outcome::Done,
            // The next try finds the run unfinished and interrupts it, honestly.
            Err(e) => Outcome::Retry(format!("recording the end of the apply failed: {e}")),
        }
    }

    /// What follows an apply (an after-apply job): a drift check now rather than at the next
    /// tick, the scaling history's new capacity without waiting for its poller, and the open
    /// changes judged again when a revert moved what they compare with.
    pub(crate) async fn after_apply_job(&self, env: &str) -> Outcome {
        let scaling = self.scaling.poll_scaling().await;
        let drift = self.drift.check_drift(env).await;
        // A revert applied moves what open changes of the environment compare with.
        let settled = self.reverts.settle_open_changes(env).await;
        match (scaling, drift, settled) {
            (Ok(_), Ok(_), Ok(_)) => Outcome::Done,
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => outcome_of(&e),
        }
    }

    /// Runs the steps of a started apply and records how it ended; an error: the end could not
    /// be recorded.
    async fn run(&self, job: RunJob) -> ServiceResult<()> {
        let _running = self.holder.running(job.run_id);
        let started = Instant::now();
        // Set when the lock is no longer this run's: the runner stops before its next call.
        let lost = Arc::new(AtomicBool::new(false));
        // The heartbeat lives as long as the run: its task is this run's, aborted at its end.
        let heartbeat = {
            let store = self.store.clone();
            let (env, run_id, lost) = (job.environment.clone(), job.run_id, lost.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(HEARTBEAT);
                loop {
                    tick.tick().await;
                    let beat = async {
                        let mut conn = store.pool().acquire().await?;
                        applies::heartbeat(&mut conn, &env, run_id, &crate::store::now_text()).await
                    }
                    .await;
                    match beat {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(environment = %env, run = run_id, "the apply lock is no longer this run's");
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        // Another beat follows; a lock not marked for 30 s is free to others,
                        // which the step writes then notice.
                        Err(e) => {
                            tracing::warn!(environment = %env, run = run_id, error = %e, "the apply lock's heartbeat failed")
                        }
                    }
                }
            })
        };
        let outcome = self.run_steps(&job, &lost).await;
        heartbeat.abort();
        let finished = self.finish(&job, outcome, started.elapsed()).await;
        if let Err(e) = &finished {
            tracing::error!(change = %job.change_id, error = e.logged(), "recording the end of an apply failed");
        }
        finished
    }

    /// The end of a run that no longer holds its lock, before `position`.
    pub(super) fn lost_at(job: &RunJob, position: u32) -> Ended {
        Ended::LostLock(format!(
            "another process took the lock of {} (this one had not marked it for {STALE_AFTER_SECS} s): stopped before step {position}",
            job.environment
        ))
    }

    /// Runs the steps one by one, each AWS call only while the run holds the lock.
    async fn run_steps(&self, job: &RunJob, lost: &AtomicBool) -> ServiceResult<Ended> {
        // The applier retries itself so that every attempt is recorded and audited.
        // The apply role, when the environment names one, assumed for this run alone.
        let clients = self
            .aws
            .apply(&job.environment, &job.region, &job.actor.name)
            .await;
        let max_attempts = self.settings.aws.max_attempts.max(1);
        let lost_at = |position: u32| Self::lost_at(job, position);
        // A run resumed after a restart (a rollout re-attached) goes on where it stopped.
        let recorded: Vec<(i64, String)> = {
            let mut conn = self.store.pool().acquire().await?;
            applies::steps(&mut conn, job.run_id)
                .await?
                .into_iter()
                .map(|s| (s.position, s.status))
                .collect()
        };
        let status_of = |position: u32| {
            recorded
                .iter()
                .find(|(p, _)| *p == i64::from(position))
                .map(|(_, s)| s.as_str())
        };
        for (i, op) in job.operations.iter().enumerate() {
            let position = i as u32 + 1;
            if status_of(position) == Some(StepStatus::Done.as_str()) {
                continue;
            }
            let resumed = status_of(position) == Some(StepStatus::Running.as_str());
            if !resumed {
                let mut conn = self.store.pool().acquire().await?;
                if lost.load(Ordering::SeqCst)
                    || !applies::step_started(
                        &mut conn,
                        job.run_id,
                        position,
                        &self.clock.now_text(),
                    )
                    .await?
                {
                    return Ok(lost_at(position));
                }
            }
            if let domain::plan::Action::Rollout { plan, .. } = &op.action {
                let ended = self
                    .rollout(job, position, op, plan, &clients, lost)
                    .await?;
                let (status, error, end) = match ended {
                    None => (StepStatus::Done, None, None),
                    Some(RolloutEnd::Lost(e)) => return Ok(e),
                    Some(RolloutEnd::Failed(e)) => {
                        let end = Ended::Failed(format!("step {position} ({}): {e}", op.aws_call));
                        (StepStatus::Failed, Some(e), Some(end))
                    }
                    Some(RolloutEnd::Degraded { why }) => (
                        StepStatus::Failed,
                        Some(why.clone()),
                        Some(Ended::Degraded(why)),
                    ),
                };
                let mut tx = self.store.begin_write().await?;
                let calls = applies::steps(&mut tx, job.run_id)
                    .await?
                    .into_iter()
                    .find(|s| s.position == i64::from(position))
                    .map_or(0, |s| s.attempts as u32);
                let recorded = applies::step_attempted(
                    &mut tx,
                    job.run_id,
                    position,
                    applies::Attempt {
                        status: status.as_str(),
                        attempts: calls,
                        request_id: None,
                        error: error.as_deref(),
                    },
                    &self.clock.now_text(),
                )
                .await?;
                tx.commit().await?;
                if !recorded {
                    return Ok(lost_at(position + 1));
                }
                match end {
                    Some(end) => return Ok(end),
                    None => continue,
                }
            }
            let settles = Target::of(&op.action, job.wait_for_capacity);
            let mut attempt = 0;
            loop {
                if attempt > 0 && lost.load(Ordering::SeqCst) {
                    return Ok(lost_at(position));
                }
                attempt += 1;
                let result = match execute(&clients, &op.action, &job.group_ids).await {
                    Err(e) if attempt > 1 && already_done(&op.action, &e) => Ok(e.request_id),
                    other => other,
                };
                let (status, request_id, error, retry) = match &result {
                    // A step that settles stays running until AWS says its work is done.
                    Ok(request_id) if settles.is_some() => {
                        (StepStatus::Running, request_id.clone(), None, false)
                    }
                    Ok(request_id) => (StepStatus::Done, request_id.clone(), None, false),
                    Err(e) => {
                        let retry = e.is_retryable() && attempt < max_attempts;
                        let status = if retry {
                            StepStatus::Running
                        } else {
                            StepStatus::Failed
                        };
                        (status, e.request_id.clone(), Some(e.to_string()), retry)
                    }
                };
                let attempted = applies::Attempt {
                    status: status.as_str(),
                    attempts: attempt,
                    request_id: request_id.as_deref(),
                    error: error.as_deref(),
                };
                let call = json!({
                    "call": op.aws_call,
                    "resource": op.resource,
                    "change": op.change,
                    "attempt": attempt,
                });
                let recorded = self.record_call(job, position, attempted, call).await?;
                if !recorded {
                    return Ok(lost_at(position + 1));
                }
                match error {
                    None => {
                        if let Some(target) = &settles {
                            let call = applies::Attempt {
                                status: StepStatus::Done.as_str(),
                                attempts: attempt,
                                request_id: request_id.as_deref(),
                                error: None,
                            };
                            let settled = self
                                .settle(job, position, op, call, target, &clients, lost)
                                .await?;
                            if let Some(ended) = settled {
                                return Ok(ended);
                            }
                        }
                        break;
                    }
                    Some(_) if retry => tokio::time::sleep(backoff(attempt)).await,
                    Some(e) => {
                        return Ok(Ended::Failed(format!(
                            "step {position} ({}): {e}",
                            op.aws_call
                        )))
                    }
                }
            }
        }
        Ok(Ended::Done)
    }

    /// Records how an apply ended. A failed change keeps its plan: the next apply or "Plan
    /// again" plans what is left, which voids the approvals of the old plan.
    /// Records one AWS call of step `position`: the step's attempt, written only while the run
    /// holds the lock (`false` when it no longer does), and its `aws.call` audit event, written
    /// either way. `call` names the call; the run, step, outcome, request id, error and role
    /// are added here.
    pub(super) async fn record_call(
        &self,
        job: &RunJob,
        position: u32,
        attempt: applies::Attempt<'_>,
        mut call: serde_json::Value,
    ) -> ServiceResult<bool> {
        let common = json!({
            "run": job.run_id,
            "step": position,
            "outcome": if attempt.error.is_none() { "ok" } else { "error" },
            "request_id": attempt.request_id,
            "error": attempt.error,
            "role": self.aws.apply_role(&job.environment),
        });
        if let (Some(call), serde_json::Value::Object(common)) = (call.as_object_mut(), common) {
            call.extend(common);
        }
        let target = job.change_id.to_string();
        let mut tx = self.store.begin_write().await?;
        let recorded = applies::step_attempted(
            &mut tx,
            job.run_id,
            position,
            attempt,
            &self.clock.now_text(),
        )
        .await?;
        append(
            &mut tx,
            NewEvent {
                actor: job.actor.clone(),
                action: "aws.call",
                environment: Some(&job.environment),
                target: Some(&target),
                detail: call,
                meta: &job.meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn finish(
        &self,
        job: &RunJob,
        outcome: ServiceResult<Ended>,
        elapsed: Duration,
    ) -> ServiceResult<()> {
        let mut degraded = false;
        let error = match outcome {
            Ok(Ended::Done) => None,
            Ok(Ended::Failed(e)) => Some(e),
            Ok(Ended::Degraded(e)) => {
                degraded = true;
                Some(e)
            }
            Ok(Ended::LostLock(why)) => return self.lost_lock(job, &why).await,
            Err(e) => {
                tracing::error!(change = %job.change_id, error = ?e, "the apply stopped on an internal error");
                Some(format!("tierdeck could not record a step: {e}"))
            }
        };
        let now = self.clock.now_text();
        let mut tx = self.store.begin_write().await?;
        // Fenced: the run's end is written only while it holds the lock.
        if !applies::holds(&mut tx, &job.environment, job.run_id).await? {
            drop(tx);
            let why = format!(
                "another process took the lock of {} before this run could record its end",
                job.environment
            );
            return self.lost_lock(job, &why).await;
        }
        let (run_status, event) = match error {
            None => (RunStatus::Applied, Event::Applied),
            Some(_) if degraded => (RunStatus::Failed, Event::Degrade),
            Some(_) => (RunStatus::Failed, Event::Fail),
        };
        applies::finish_run(
            &mut tx,
            job.run_id,
            run_status.as_str(),
            error.as_deref(),
            &now,
        )
        .await?;
        applies::release(&mut tx, &job.environment, job.run_id).await?;
        let audit = |detail| Audit {
            actor: job.actor.clone(),
            meta: &job.meta,
            detail,
        };
        let mut superseded = Vec::new();
        let mut watch = None;
        if error.is_none() {
            // A revert leaves the commit it went back from unapplied, which the environment
            // says until another commit is applied; a reconcile keeps that as it is.
            let reverted_from = match job.kind {
                ChangeKind::Commit => None,
                ChangeKind::Revert => job.base_commit.clone(),
                ChangeKind::Reconcile => repo_store::environment(&mut tx, &job.environment)
                    .await?
                    .and_then(|e| e.reverted_from),
            };
            repo_store::set_last_applied(
                &mut tx,
                &job.environment,
                &job.commit,
                reverted_from.as_deref(),
            )
            .await?;
            watch = self
                .watches
                .start_watch(
                    &mut tx,
                    job.change_id,
                    &job.environment,
                    job.watch,
                    crate::service::watch::AtStart {
                        burn_before: job.burn_before,
                        without_prometheus: job.watch_without_prometheus,
                    },
                    &now,
                )
                .await?;
            if matches!(job.kind, ChangeKind::Commit | ChangeKind::Revert) {
                // A reconcile made before this apply aims at the old spec.
                for old in
                    changes::open_of_kind(&mut tx, &job.environment, Some(ChangeKind::Reconcile))
                        .await?
                {
                    let detail =
                        json!({ "by": job.change_id, "reason": "a newer commit was applied" });
                    changes::transition(
                        &mut tx,
                        &old,
                        Event::Supersede,
                        Some(job.change_id),
                        audit(detail),
                        &now,
                    )
                    .await?;
                    superseded.push(old.id);
                }
            }
        }
        // The live state changed: drift and the scaling history are read again at once.
        let after = Job::AfterApply {
            environment: job.environment.clone(),
        };
        let tries = JobKind::AfterApply.retry().attempts;
        jobs::enqueue(&mut tx, &after, tries, "system", self.clock.now()).await?;
        let change = changes::get(&mut tx, job.change_id).await?.ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("change {} is gone", job.change_id))
        })?;
        changes::transition(
            &mut tx,
            &change,
            event,
            None,
            audit(json!({
                "run": job.run_id,
                "commit": job.commit,
                "operations": job.operations.len(),
                "elapsed_ms": elapsed.as_millis() as u64,
                "error": error,
                "superseded": superseded,
                "watch_minutes": watch,
            })),
            &now,
        )
        .await?;
        let watching = watch
            .map(|m| format!(" Its SLOs are watched for {m} minute(s)."))
            .unwrap_or_default();
        let text = match &error {
            None => format!(
                "change #{} applied to {} by {}: {} operation(s) in {:.1} s.{watching}{}",
                job.change_id,
                job.environment,
                job.actor.name,
                job.operations.len(),
                elapsed.as_secs_f64(),
                self.notifications.change_link(job.change_id)
            ),
            Some(e) if degraded => format!(
                "change #{} ({}) is DEGRADED: its rollout was {e}. The instances are back on the version they ran, and the commit applied before stays the environment's.{}",
                job.change_id,
                job.environment,
                self.notifications.change_link(job.change_id)
            ),
            Some(e) => format!(
                "applying change #{} to {} FAILED: {e}{}",
                job.change_id,
                job.environment,
                self.notifications.change_link(job.change_id)
            ),
        };
        let notice = match (&error, degraded) {
            (None, _) => "applied",
            (Some(_), true) => "degraded",
            (Some(_), false) => "failed",
        };
        self.notifications
            .queue_notification(
                &mut tx,
                notice,
                Some(&job.environment),
                Some(&change),
                &text,
            )
            .await?;
        tx.commit().await?;
        self.jobs_waker.wake();
        tracing::info!(change = %job.change_id, run = job.run_id, status = %run_status, elapsed_ms = elapsed.as_millis() as u64, "apply finished");
        Ok(())
    }

    /// Records that a run stopped because it no longer held its lock: the process that took
    /// the lock marked the run and its change interrupted; this one writes nothing else.
    async fn lost_lock(&self, job: &RunJob, why: &str) -> ServiceResult<()> {
        tracing::error!(change = %job.change_id, run = job.run_id, reason = why, "the apply stopped: its lock was taken");
        let mut tx = self.store.begin_write().await?;
        let target = job.change_id.to_string();
        append(
            &mut tx,
            NewEvent {
                actor: job.actor.clone(),
                action: "change.apply_lost_lock",
                environment: Some(&job.environment),
                target: Some(&target),
                detail: json!({ "run": job.run_id, "reason": why }),
                meta: &job.meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let ceilings: Vec<u64> = (1..10).map(backoff_ceiling_ms).collect();
        // Doubling until the cap, then at the cap.
        assert_eq!(
            ceilings,
            [400, 800, 1_600, 3_200, 5_000, 5_000, 5_000, 5_000, 5_000]
        );
        for attempt in 1..10 {
            let ceiling = Duration::from_millis(backoff_ceiling_ms(attempt));
            for _ in 0..50 {
                let d = backoff(attempt);
                assert!(d <= ceiling && d >= ceiling / 2, "{attempt}: {d:?}");
            }
        }
        // The waits themselves grow: the shortest third wait is longer than any first one.
        let longest_first = (0..50).map(|_| backoff(1)).max().unwrap();
        let shortest_third = (0..50).map(|_| backoff(3)).min().unwrap();
        assert!(
            shortest_third > longest_first,
            "{shortest_third:?} after {longest_first:?}"
        );
    }
}
