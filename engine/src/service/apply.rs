//! Applying a change: plan again and compare the hash, take the environment's lock, then run the
//! operations one at a time, each step written before and after its AWS call.
//!
//! The lock lives in the database so it survives restarts. Its holder is a process (host, pid
//! and a random id per start) that beats every few seconds; a lock whose process died on this
//! host, or that stopped beating, is free, and its run is marked `interrupted`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::approval;
use domain::change::{
    groups_setting_desired, ApplyRun, ApplyStep, ChangeId, ChangeKind, ChangeStatus, RunStatus,
    StepStatus,
};
use domain::lifecycle::{self, Event, Refusal};
use domain::plan::Operation;
use domain::spec::semantic_diff;
use domain::Role;
use rand::Rng;
use serde_json::json;

use crate::auth::{Actor, Caller, RequestMeta};
use crate::aws::execute::{already_done, execute};
use crate::error::{ServiceError, ServiceResult};
use crate::service::gates::context;
use crate::service::plans::short;
use crate::store::applies::{self, LockRow, RunRow};
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit, Change};
use crate::store::{now_text, repo as repo_store};
use crate::Engine;

/// How often a running apply marks its lock as alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A lock not marked for this long is free, whoever holds it.
const STALE_AFTER_SECS: i64 = 30;

/// This process, as a lock holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub id: String,
}

impl Holder {
    /// This process. Its `host` is the host name and the pid namespace: two containers that
    /// share the host's name (host networking), both pid 1, are different hosts, so neither
    /// takes the other's live lock for its own dead one.
    pub fn this_process() -> Self {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let host = match std::fs::read_link("/proc/self/ns/pid") {
            Ok(ns) => format!("{name} {}", ns.display()),
            Err(_) => name,
        };
        let mut id = [0u8; 8];
        rand::thread_rng().fill(&mut id);
        Holder {
            host,
            pid: std::process::id(),
            id: hex::encode(id),
        }
    }

    /// Whether the process holding `lock` still runs.
    fn sees_alive(&self, lock: &LockRow, now: DateTime<Utc>) -> bool {
        if lock.holder_id == self.id {
            return true;
        }
        let fresh = DateTime::parse_from_rfc3339(&lock.heartbeat_at)
            .map(|t| (now - t.with_timezone(&Utc)).num_seconds() < STALE_AFTER_SECS)
            .unwrap_or(false);
        if lock.holder_host == self.host {
            // Same pid, other id: this process was restarted (a container's pid 1).
            let pid_runs = i64::from(self.pid) != lock.holder_pid
                && std::path::Path::new(&format!("/proc/{}", lock.holder_pid)).exists();
            pid_runs && fresh
        } else {
            fresh
        }
    }
}

/// How the steps of a run ended.
enum Ended {
    Done,
    /// A step failed, and why.
    Failed(String),
    /// The run no longer holds its lock, and why.
    LostLock(String),
}

/// What the runner needs, fixed when the apply starts.
struct Job {
    run_id: i64,
    change_id: ChangeId,
    kind: ChangeKind,
    environment: String,
    commit: String,
    region: String,
    operations: Vec<Operation>,
    group_ids: BTreeMap<String, String>,
    actor: Actor,
    meta: RequestMeta,
}

fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << attempt.min(5)).min(5_000);
    Duration::from_millis(rand::thread_rng().gen_range(base / 2..=base))
}

impl Engine {
    /// Records why an apply was refused and returns the refusal.
    async fn refuse(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        change: &Change,
        why: Refusal,
    ) -> ServiceError {
        let recorded = async {
            let mut tx = self.store.begin_write().await?;
            let target = change.id.to_string();
            append(
                &mut tx,
                NewEvent {
                    actor: caller.actor(),
                    action: "change.apply_refused",
                    environment: Some(&change.environment),
                    target: Some(&target),
                    detail: json!({ "reason": why.message }),
                    meta,
                },
            )
            .await?;
            tx.commit().await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        match recorded {
            Ok(()) => why.into(),
            Err(e) => e,
        }
    }

    /// Starts applying a change; the steps run in the background. Returns the run's id.
    ///
    /// The gates, each refusal audited: the change can be applied (not blocked, invalid,
    /// applied…); its plan, made again now, is the one on its page (else the approvals are
    /// void and it is pending again); the gates of [`approval::may_apply`] under the rules
    /// that judge it (approvals complete; inside a change window and the error budget left,
    /// or `emergency` gives a reason); the environment has not moved on; its lock is free.
    pub async fn apply_change(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: ChangeId,
        emergency: Option<&str>,
    ) -> ServiceResult<i64> {
        caller.require(Role::Operator)?;
        let emergency = emergency.map(str::trim).filter(|r| !r.is_empty());
        let change = self.change(id).await?;
        if let Err(why) = lifecycle::transition(change.status, Event::StartApply) {
            return Err(self.refuse(caller, meta, &change, why).await);
        }
        let Some(judged) = self.judge(&change).await? else {
            let why = Refusal::conflict(format!(
                "change {id} has spec errors; fix them in a new commit"
            ));
            return Err(self.refuse(caller, meta, &change, why).await);
        };
        let policy = &judged.policy;

        // Plan again: the live state may have moved since the plan people reviewed.
        let sets_desired = groups_setting_desired(&semantic_diff(judged.base.spec(), &judged.spec));
        let planned = self.plan_spec(&judged.spec, &sets_desired).await?;
        if planned.plan.hash.as_str() != change.plan_hash.as_deref().unwrap_or_default() {
            let why = match &change.plan_hash {
                Some(old) => format!(
                    "the live state changed since the plan was made (plan {} is now {})",
                    short(old),
                    short(&planned.plan.hash)
                ),
                None => "this change had no plan yet".to_owned(),
            };
            let (_, voided) = self
                .record_plan(
                    caller,
                    meta,
                    &change,
                    &planned,
                    "the live state changed since the plan was made",
                )
                .await?;
            let tail = if voided > 0 {
                format!("; {voided} approval(s) of the old plan are void and the change is pending again")
            } else {
                String::new()
            };
            let why =
                Refusal::conflict(format!("{why}{tail}: review the new plan and apply again"));
            return Err(self.refuse(caller, meta, &change, why).await);
        }
        if !planned.plan.errors.is_empty() {
            let why = format!(
                "the plan has errors: {}",
                planned
                    .plan
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            return Err(self
                .refuse(caller, meta, &change, Refusal::conflict(why))
                .await);
        }
        let approvals = {
            let mut conn = self.store.pool().acquire().await?;
            self.approvals_of(&mut conn, id, policy, Some(&planned.plan.hash))
                .await?
        };
        // The error-budget policy: with the availability budget spent, only emergencies.
        let budget_spent = self.budget_refusal(&judged.spec, &policy.budget_slos).await;
        let gate = approval::may_apply(&context(
            caller,
            &change,
            &approvals,
            policy,
            budget_spent.as_deref(),
        ));
        // The reason is kept when it got the apply past a gate: the windows or the budget.
        let emergency = match gate {
            Err(why) => return Err(self.refuse(caller, meta, &change, why).await),
            Ok(None) => None,
            Ok(Some(why)) => match emergency {
                Some(reason) => Some(reason),
                None => {
                    return Err(self
                        .refuse(caller, meta, &change, Refusal::conflict(why))
                        .await)
                }
            },
        };
        let approvers: Vec<String> = approvals
            .reviews
            .iter()
            .filter(|r| r.verdict == approval::Verdict::Approve && r.not_counted.is_none())
            .map(|r| r.user.clone())
            .collect();

        let actor = caller.actor();
        let now = now_text();
        let mut tx = self.store.begin_write().await?;
        let change = changes::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no change {id}")))?;
        if let Err(why) = lifecycle::transition(change.status, Event::StartApply) {
            drop(tx);
            return Err(self.refuse(caller, meta, &change, why).await);
        }
        let env = repo_store::environment(&mut tx, &change.environment)
            .await?
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("environment row missing")))?;
        if env.last_applied_commit != change.base_commit {
            drop(tx);
            let why = Refusal::conflict(format!(
                "{} moved on since change {id} was recorded (last applied {}): apply its newer change instead",
                change.environment,
                env.last_applied_commit.as_deref().map(short).unwrap_or("nothing")
            ));
            return Err(self.refuse(caller, meta, &change, why).await);
        }
        if let Some(lock) = applies::lock(&mut tx, &change.environment).await? {
            if self.holder.sees_alive(&lock, Utc::now()) {
                drop(tx);
                let why = Refusal::conflict(format!(
                    "{} is being applied by change {} since {}",
                    change.environment, lock.change_id, lock.acquired_at
                ));
                return Err(self.refuse(caller, meta, &change, why).await);
            }
            if let Some(run) = applies::unfinished_runs(&mut tx)
                .await?
                .into_iter()
                .find(|r| r.id == lock.run_id)
            {
                self.interrupt(&mut tx, &run, meta).await?;
            }
            applies::release(&mut tx, &change.environment, lock.run_id).await?;
        }
        // Interrupting the lock's run may have moved this very change.
        let change = changes::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no change {id}")))?;
        let run_id = applies::insert_run(
            &mut tx,
            id.0,
            &change.environment,
            &actor.name,
            &planned.plan.hash,
            emergency,
            &now,
        )
        .await?;
        for (i, op) in planned.plan.operations.iter().enumerate() {
            let json = serde_json::to_string(op).map_err(|e| ServiceError::Internal(e.into()))?;
            applies::insert_step(&mut tx, run_id, i as u32 + 1, &json).await?;
        }
        applies::take_lock(
            &mut tx,
            &LockRow {
                environment: change.environment.clone(),
                change_id: id.0,
                run_id,
                holder_host: self.holder.host.clone(),
                holder_pid: i64::from(self.holder.pid),
                holder_id: self.holder.id.clone(),
                acquired_at: now.clone(),
                heartbeat_at: now.clone(),
            },
        )
        .await?;
        changes::transition(
            &mut tx,
            &change,
            Event::StartApply,
            None,
            Audit {
                actor: actor.clone(),
                meta,
                detail: json!({
                    "run": run_id,
                    "commit": change.commit.sha,
                    "plan_hash": planned.plan.hash,
                    "operations": planned.plan.operations.len(),
                    "approvers": approvers,
                    "required": policy.required_approvals,
                    "policy_change": policy.is_policy_change(),
                    "emergency": emergency,
                }),
            },
            &now,
        )
        .await?;
        if let Some(reason) = emergency {
            let target = id.to_string();
            append(
                &mut tx,
                NewEvent {
                    actor: actor.clone(),
                    action: "change.emergency_apply",
                    environment: Some(&change.environment),
                    target: Some(&target),
                    detail: json!({ "run": run_id, "reason": reason }),
                    meta,
                },
            )
            .await?;
            let text = format!(
                "{}{} applies change #{id} ({}, {}) as an EMERGENCY outside the change windows: {reason}{}",
                super::reviews::policy_label(&change),
                actor.name,
                change.environment,
                super::reviews::first_line(&change.commit.message),
                self.change_link(id)
            );
            self.queue_notification(
                &mut tx,
                "emergency_apply",
                Some(&change.environment),
                Some(&change),
                &text,
            )
            .await?;
        }
        tx.commit().await?;
        self.wake_notifier();

        let job = Job {
            run_id,
            change_id: id,
            kind: change.kind,
            environment: change.environment,
            commit: change.commit.sha,
            region: planned.region,
            operations: planned.plan.operations,
            group_ids: planned.group_ids,
            actor,
            meta: meta.clone(),
        };
        let engine = self.clone();
        tokio::spawn(async move { engine.run(job).await });
        Ok(run_id)
    }

    /// Applies a change as `system` when its environment has `auto_apply` and the gates pass;
    /// a refusal is audited like any other and leaves the change as it is.
    pub(crate) fn spawn_auto_apply(&self, id: ChangeId) {
        let engine = self.clone();
        tokio::spawn(async move {
            let meta = RequestMeta::default();
            match engine.apply_change(&Caller::System, &meta, id, None).await {
                Ok(run) => tracing::info!(change = %id, run, "auto-apply started"),
                Err(e) => tracing::warn!(change = %id, error = %e, "auto-apply did not start"),
            }
        });
    }

    /// Runs the steps of a started apply and records how it ended.
    async fn run(self, job: Job) {
        let started = Instant::now();
        // Set when the lock is no longer this run's: the runner stops before its next call.
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let engine = self.clone();
            let (env, run_id, lost) = (job.environment.clone(), job.run_id, lost.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(HEARTBEAT);
                loop {
                    tick.tick().await;
                    let beat = async {
                        let mut conn = engine.store.pool().acquire().await?;
                        applies::heartbeat(&mut conn, &env, run_id, &now_text()).await
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
        if let Err(e) = finished {
            tracing::error!(change = %job.change_id, error = %e, "recording the end of an apply failed");
        }
        // The live state changed: check drift now rather than at the next tick.
        // And the scaling history gets the new capacity without waiting for its poller.
        if let Err(e) = self.poll_scaling().await {
            tracing::warn!(error = %e, "scaling history poll after apply failed");
        }
        if let Err(e) = self.check_drift(&job.environment).await {
            tracing::warn!(environment = %job.environment, error = %e, "drift check after apply failed");
        }
    }

    /// Runs the steps one by one, each AWS call only while the run holds the lock.
    async fn run_steps(&self, job: &Job, lost: &AtomicBool) -> ServiceResult<Ended> {
        // The applier retries itself so that every attempt is recorded and audited.
        let clients = self.aws_clients(&job.region, 1).await;
        let max_attempts = self.settings.aws.max_attempts.max(1);
        let target = job.change_id.to_string();
        let lost_at = |position: u32| {
            Ended::LostLock(format!(
                "another process took the lock of {} (this one had not marked it for {STALE_AFTER_SECS} s): stopped before step {position}",
                job.environment
            ))
        };
        for (i, op) in job.operations.iter().enumerate() {
            let position = i as u32 + 1;
            {
                let mut conn = self.store.pool().acquire().await?;
                if lost.load(Ordering::SeqCst)
                    || !applies::step_started(&mut conn, job.run_id, position, &now_text()).await?
                {
                    return Ok(lost_at(position));
                }
            }
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
                let mut tx = self.store.begin_write().await?;
                let recorded = applies::step_attempted(
                    &mut tx,
                    job.run_id,
                    position,
                    applies::Attempt {
                        status: status.as_str(),
                        attempts: attempt,
                        request_id: request_id.as_deref(),
                        error: error.as_deref(),
                    },
                    &now_text(),
                )
                .await?;
                append(
                    &mut tx,
                    NewEvent {
                        actor: job.actor.clone(),
                        action: "aws.call",
                        environment: Some(&job.environment),
                        target: Some(&target),
                        detail: json!({
                            "run": job.run_id,
                            "step": position,
                            "call": op.aws_call,
                            "resource": op.resource,
                            "change": op.change,
                            "attempt": attempt,
                            "outcome": if error.is_none() { "ok" } else { "error" },
                            "request_id": request_id,
                            "error": error,
                        }),
                        meta: &job.meta,
                    },
                )
                .await?;
                // The call is audited even when the step is no longer this run's to write.
                tx.commit().await?;
                if !recorded {
                    return Ok(lost_at(position + 1));
                }
                match error {
                    None => break,
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
    async fn finish(
        &self,
        job: &Job,
        outcome: ServiceResult<Ended>,
        elapsed: Duration,
    ) -> ServiceResult<()> {
        let error = match outcome {
            Ok(Ended::Done) => None,
            Ok(Ended::Failed(e)) => Some(e),
            Ok(Ended::LostLock(why)) => return self.lost_lock(job, &why).await,
            Err(e) => {
                tracing::error!(change = %job.change_id, error = ?e, "the apply stopped on an internal error");
                Some(format!("tierdeck could not record a step: {e}"))
            }
        };
        let now = now_text();
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
        if error.is_none() {
            repo_store::set_last_applied(&mut tx, &job.environment, &job.commit).await?;
            if job.kind == ChangeKind::Commit {
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
            })),
            &now,
        )
        .await?;
        let label = super::reviews::policy_label(&change);
        let text = match &error {
            None => format!(
                "{label}change #{} applied to {} by {}: {} operation(s) in {:.1} s.{}",
                job.change_id,
                job.environment,
                job.actor.name,
                job.operations.len(),
                elapsed.as_secs_f64(),
                self.change_link(job.change_id)
            ),
            Some(e) => format!(
                "{label}applying change #{} to {} FAILED: {e}{}",
                job.change_id,
                job.environment,
                self.change_link(job.change_id)
            ),
        };
        let notice = if error.is_none() { "applied" } else { "failed" };
        self.queue_notification(
            &mut tx,
            notice,
            Some(&job.environment),
            Some(&change),
            &text,
        )
        .await?;
        tx.commit().await?;
        self.wake_notifier();
        tracing::info!(change = %job.change_id, run = job.run_id, status = %run_status, elapsed_ms = elapsed.as_millis() as u64, "apply finished");
        Ok(())
    }

    /// Records that a run stopped because it no longer held its lock: the process that took
    /// the lock marked the run and its change interrupted; this one writes nothing else.
    async fn lost_lock(&self, job: &Job, why: &str) -> ServiceResult<()> {
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

    /// Marks a run whose process died `interrupted`, with its change; in the caller's
    /// transaction.
    async fn interrupt(
        &self,
        tx: &mut sqlx::SqliteConnection,
        run: &RunRow,
        meta: &RequestMeta,
    ) -> ServiceResult<()> {
        let now = now_text();
        let cut = applies::interrupt_steps(tx, run.id, &now).await?;
        applies::finish_run(
            tx,
            run.id,
            RunStatus::Interrupted.as_str(),
            Some("tierdeck stopped during the apply; plan again to see what is left"),
            &now,
        )
        .await?;
        let detail = json!({
            "run": run.id,
            "started_by": run.started_by,
            "steps_cut_short": cut,
        });
        let change = changes::get(tx, ChangeId(run.change_id)).await?;
        match change {
            Some(c) if c.status == ChangeStatus::Applying => {
                let audit = Audit {
                    actor: Actor::system(),
                    meta,
                    detail,
                };
                changes::transition(tx, &c, Event::Interrupt, None, audit, &now).await?;
            }
            // The change was moved already: the run is recorded as cut short all the same.
            _ => {
                let target = run.change_id.to_string();
                append(
                    tx,
                    NewEvent {
                        actor: Actor::system(),
                        action: Event::Interrupt.action(),
                        environment: Some(&run.environment),
                        target: Some(&target),
                        detail,
                        meta,
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// At start: applies whose process died become `interrupted` and their locks are freed.
    /// Returns the changes marked.
    pub async fn recover_applies(&self) -> ServiceResult<Vec<i64>> {
        let meta = RequestMeta::default();
        let mut tx = self.store.begin_write().await?;
        let mut marked = Vec::new();
        let now = Utc::now();
        for run in applies::unfinished_runs(&mut tx).await? {
            let lock = applies::lock(&mut tx, &run.environment).await?;
            let held = lock
                .as_ref()
                .is_some_and(|l| l.run_id == run.id && self.holder.sees_alive(l, now));
            if held {
                continue;
            }
            self.interrupt(&mut tx, &run, &meta).await?;
            applies::release(&mut tx, &run.environment, run.id).await?;
            marked.push(run.change_id);
        }
        tx.commit().await?;
        if !marked.is_empty() {
            tracing::warn!(changes = ?marked, "applies cut short by a stop are marked interrupted");
        }
        Ok(marked)
    }

    /// The latest apply of a change with its steps, and how many there were.
    pub(crate) async fn latest_apply(
        &self,
        conn: &mut sqlx::SqliteConnection,
        change_id: ChangeId,
    ) -> ServiceResult<(Option<ApplyRun>, u32)> {
        let count = applies::run_count(conn, change_id.0).await? as u32;
        let Some(run) = applies::latest_run(conn, change_id.0).await? else {
            return Ok((None, count));
        };
        let internal = |e: String| ServiceError::Internal(anyhow::anyhow!("run {}: {e}", run.id));
        let mut steps = Vec::new();
        for s in applies::steps(conn, run.id).await? {
            steps.push(ApplyStep {
                position: s.position as u32,
                operation: serde_json::from_str(&s.operation)
                    .map_err(|e| internal(e.to_string()))?,
                status: s.status.parse().map_err(internal)?,
                attempts: s.attempts as u32,
                request_id: s.request_id,
                error: s.error,
                started_at: s.started_at,
                finished_at: s.finished_at,
            });
        }
        Ok((
            Some(ApplyRun {
                id: run.id,
                started_by: run.started_by,
                emergency: run.emergency_reason,
                plan_hash: run.plan_hash,
                status: run.status.parse().map_err(internal)?,
                error: run.error,
                started_at: run.started_at,
                finished_at: run.finished_at,
                steps,
            }),
            count,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(host: &str, pid: i64, id: &str, heartbeat: DateTime<Utc>) -> LockRow {
        LockRow {
            environment: "prod".into(),
            change_id: 1,
            run_id: 1,
            holder_host: host.into(),
            holder_pid: pid,
            holder_id: id.into(),
            acquired_at: heartbeat.to_rfc3339(),
            heartbeat_at: heartbeat.to_rfc3339(),
        }
    }

    #[test]
    fn a_lock_is_held_while_its_process_runs_and_beats() {
        let me = Holder::this_process();
        let now = Utc::now();
        let old = now - chrono::Duration::seconds(STALE_AFTER_SECS + 1);
        // Our own lock.
        assert!(me.sees_alive(&lock(&me.host, i64::from(me.pid), &me.id, old), now));
        // Our pid under another id: an earlier run of this process (restarted container).
        assert!(!me.sees_alive(&lock(&me.host, i64::from(me.pid), "other", now), now));
        // A pid that does not run on this host.
        assert!(!me.sees_alive(&lock(&me.host, i64::from(u32::MAX >> 1), "other", now), now));
        // Another host: alive while it beats.
        assert!(me.sees_alive(&lock("elsewhere", 1, "other", now), now));
        assert!(!me.sees_alive(&lock("elsewhere", 1, "other", old), now));
    }

    #[test]
    fn a_process_of_another_pid_namespace_with_the_same_host_name_and_pid_is_another_host() {
        let me = Holder::this_process();
        assert!(me.host.contains("pid:["), "{}", me.host);
        let now = Utc::now();
        // The same host name and pid 1 in another container: alive while it beats.
        let name = me.host.split(' ').next().unwrap();
        let other = format!("{name} pid:[1]");
        assert!(me.sees_alive(&lock(&other, i64::from(me.pid), "other", now), now));
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..10 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(5), "{d:?}");
            assert!(d >= Duration::from_millis(100), "{d:?}");
        }
    }
}
