//! Applying a change: plan again and compare the hash, check the gates, take the environment's
//! lock, then run the operations one at a time, each step written before and after its AWS
//! call. This file holds the gates and the start; `runner` the steps and the end of a run, `recovery` runs cut short, `view` the page's
//! read of a run.
//!
//! The lock lives in the database so it survives restarts. Its holder is a process (host, pid
//! and a random id per start) that beats every few seconds; a lock whose process died on this
//! host, or that stopped beating, is free, and its run is marked `interrupted`.

mod recovery;
mod rollout;
mod runner;
mod settle;
#[cfg(test)]
mod tests;
mod view;

pub use runner::RunJob;

use domain::approval;
use domain::change::{ChangeId, ChangeStatus};
use domain::job::{JobKind, Outcome};
use domain::lifecycle::{self, Event, Refusal};
use domain::Role;
use serde_json::json;

use crate::auth::{Caller, RequestMeta};
use crate::aws::clients::AwsClients;
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::jobs::worker::outcome_of;
use crate::jobs::worker::Waker;
use crate::jobs::{self, Job};
use crate::service::drift::Drifts;
use crate::service::judge::context;
use crate::service::judge::Judge;
use crate::service::notify::Notifications;
use crate::service::plans::Plans;
use crate::service::scaling::Scaling;
use crate::service::slo::Slos;
use crate::service::spec_reads::Specs;
use crate::service::watch::Watches;
use crate::settings::EngineSettings;
use crate::store::applies::{self, LockRow};
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit, Change};
use crate::store::repo as repo_store;
use crate::store::Store;
use crate::Holder;
use domain::commit::short_sha;

/// Applying changes.
#[derive(Clone, Copy)]
pub struct Applies<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) holder: &'a Holder,
    pub(crate) aws: &'a AwsClients,
    pub(crate) specs: Specs<'a>,
    pub(crate) plans: Plans<'a>,
    pub(crate) judge: Judge<'a>,
    pub(crate) slo: Slos<'a>,
    pub(crate) watches: Watches<'a>,
    pub(crate) reverts: crate::service::revert::Reverts<'a>,
    pub(crate) notifications: Notifications<'a>,
    pub(crate) scaling: Scaling<'a>,
    pub(crate) drift: Drifts<'a>,
    pub(crate) jobs_waker: &'a Waker,
    pub(crate) clock: &'a dyn Clock,
}

impl Applies<'_> {
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

    /// Starts applying a change; its steps run as a job of the worker. Returns the run's id.
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
        self.start_apply(caller, meta, id, emergency, None).await
    }

    /// [`Applies::apply_change`]; `completes`: the auto-apply job that asked, marked done in the
    /// transaction that starts the apply (so a crash never starts it twice nor loses it).
    async fn start_apply(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: ChangeId,
        emergency: Option<&str>,
        completes: Option<i64>,
    ) -> ServiceResult<i64> {
        caller.require(Role::Operator)?;
        let emergency = emergency.map(str::trim).filter(|r| !r.is_empty());
        let change = self.specs.change(id).await?;
        if let Err(why) = lifecycle::transition(change.status, Event::StartApply) {
            return Err(self.refuse(caller, meta, &change, why).await);
        }
        let Some(judged) = self.judge.judge(&change).await? else {
            let why = Refusal::conflict(format!(
                "change {id} has spec errors; fix them in a new commit"
            ));
            return Err(self.refuse(caller, meta, &change, why).await);
        };
        let policy = &judged.policy;

        // Plan again: the live state may have moved since the plan people reviewed.
        let planned = self
            .plans
            .plan_spec(&judged.spec, &judged.sets_desired())
            .await?;
        if planned.plan.hash.as_str() != change.plan_hash.as_deref().unwrap_or_default() {
            let why = match &change.plan_hash {
                Some(old) => format!(
                    "the live state changed since the plan was made (plan {} is now {})",
                    short_sha(old),
                    short_sha(&planned.plan.hash)
                ),
                None => "this change had no plan yet".to_owned(),
            };
            let (_, voided) = self
                .plans
                .record_plan(
                    caller,
                    meta,
                    &change,
                    &planned,
                    "the live state changed since the plan was made",
                    false,
                )
                .await?;
            let tail = if voided > 0 {
                format!("; {voided} approval(s) of the old plan are void and the change is pending again")
            } else {
                String::new()
            };
            // The new plan is recorded: the same request may pass now (when no approval was
            // voided), which an auto-apply's next try finds out.
            let why = Refusal::busy(format!("{why}{tail}: review the new plan and apply again"));
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
            self.judge
                .approvals_of(&mut conn, id, policy, Some(&planned.plan.hash))
                .await?
        };
        // The error-budget policy: with the availability budget spent, only emergencies.
        let budget_spent = self
            .slo
            .budget_refusal(&judged.spec, &policy.budget_slos)
            .await;
        // The watch after the apply compares with a page alert already firing now.
        let burn_before = match policy.watch.minutes {
            0 => None,
            _ => {
                self.watches
                    .burn_before(&judged.spec, judged.base.spec())
                    .await
            }
        };
        let gate = approval::may_apply(&context(
            caller,
            &change,
            &approvals,
            policy,
            budget_spent.as_deref(),
            self.clock.now(),
        ));
        // The reason is kept when it got the apply past a gate (the windows or the budget),
        // with the gate it got past.
        let emergency = match gate {
            Err(why) => return Err(self.refuse(caller, meta, &change, why).await),
            Ok(None) => None,
            Ok(Some(why)) => match emergency {
                Some(reason) => Some((reason, why)),
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
        let now = self.clock.now_text();
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
            let newer = changes::open_of_kind(&mut tx, &change.environment, None)
                .await?
                .into_iter()
                .any(|c| c.id > id);
            drop(tx);
            let applied = env
                .last_applied_commit
                .as_deref()
                .map(short_sha)
                .unwrap_or("nothing");
            let why = if newer {
                Refusal::conflict(format!(
                    "{} moved on since change {id} was recorded (last applied {applied}): apply its newer change instead",
                    change.environment,
                ))
            } else {
                Refusal::busy(format!(
                    "{} moved on since change {id} was recorded (last applied {applied}): it is being judged again against what is applied now; review its new diff and plan, then apply",
                    change.environment,
                ))
            };
            return Err(self.refuse(caller, meta, &change, why).await);
        }
        if let Some(lock) = applies::lock(&mut tx, &change.environment).await? {
            if self.holder.sees_alive(&lock, self.clock.now()) {
                drop(tx);
                let why = Refusal::busy(format!(
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
            emergency.as_ref().map(|(reason, _)| *reason),
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
                    "emergency": emergency.as_ref().map(|(reason, _)| reason),
                    "role": self.aws.apply_role(&change.environment),
                }),
            },
            &now,
        )
        .await?;
        if let Some((reason, gate)) = &emergency {
            let target = id.to_string();
            append(
                &mut tx,
                NewEvent {
                    actor: actor.clone(),
                    action: "change.emergency_apply",
                    environment: Some(&change.environment),
                    target: Some(&target),
                    detail: json!({ "run": run_id, "reason": reason, "past": gate }),
                    meta,
                },
            )
            .await?;
            let text = format!(
                "{} applies change #{id} ({}, {}) as an EMERGENCY ({gate}): {reason}{}",
                actor.name,
                change.environment,
                crate::service::reviews::first_line(&change.commit.message),
                self.notifications.change_link(id)
            );
            self.notifications
                .queue_notification(
                    &mut tx,
                    "emergency_apply",
                    Some(&change.environment),
                    Some(&change),
                    &text,
                )
                .await?;
        }
        let run = RunJob {
            run_id,
            change_id: id,
            kind: change.kind,
            environment: change.environment.clone(),
            commit: change.commit.sha.clone(),
            base_commit: change.base_commit.clone(),
            wait_for_capacity: policy.wait_for_capacity,
            watch: policy.watch,
            burn_before,
            watch_without_prometheus: !judged.spec.slos.is_empty()
                && judged.spec.slos.iter().all(|s| !s.indicator.is_promql()),
            region: planned.region,
            operations: planned.plan.operations,
            group_ids: planned.group_ids,
            actor: actor.clone(),
            meta: meta.clone(),
        };
        let at = self.clock.now();
        let tries = JobKind::Apply.retry().attempts;
        jobs::enqueue(&mut tx, &Job::Apply(Box::new(run)), tries, &actor.name, at).await?;
        if let Some(job) = completes {
            crate::store::jobs::complete(&mut tx, job, at).await?;
        }
        tx.commit().await?;
        self.jobs_waker.wake();
        Ok(run_id)
    }

    /// An auto-apply job: applies the change as `system` (with `reason`, an emergency: an
    /// automatic revert). A refusal that may pass later (a lock held by another apply, a plan
    /// just made again) is tried again; one that needs a person fails the job for good, which
    /// tells people. A change that is no longer waiting (applied, superseded…) ends it.
    pub(crate) async fn auto_apply_job(
        &self,
        job: i64,
        id: ChangeId,
        reason: Option<&str>,
    ) -> Outcome {
        let meta = RequestMeta::default();
        let change = match self.specs.change(id).await {
            Ok(c) => c,
            Err(e) => return outcome_of(&e),
        };
        if !matches!(
            change.status,
            ChangeStatus::Pending | ChangeStatus::Approved
        ) {
            tracing::info!(change = %id, status = %change.status, "auto-apply: the change no longer waits");
            return Outcome::Done;
        }
        // A revert recorded by the watch is planned by its own job first; an auto-apply taken
        // before that plan is stored plans here, so the apply compares with a plan.
        if change.current_plan().is_none() {
            if let Err(e) = self.plans.refresh_plan(&Caller::System, id).await {
                return outcome_of(&e);
            }
        }
        match self
            .start_apply(&Caller::System, &meta, id, reason, Some(job))
            .await
        {
            Ok(run) => {
                tracing::info!(change = %id, run, "auto-apply started");
                Outcome::Done
            }
            Err(e) => outcome_of(&e),
        }
    }
}
