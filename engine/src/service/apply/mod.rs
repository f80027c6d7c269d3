//! Applying a change: plan again and compare the hash, check the gates, take the environment's
//! lock, then run the operations one at a time, each step written before and after its AWS
//! call. This file holds the gates and the start; `runner` the steps and the end of a run, `recovery` runs cut short, `view` the page's
//! read of a run.
//!
//! The lock lives in the database so it survives restarts. Its holder is a process (host, pid
//! and a random id per start) that beats every few seconds; a lock whose process died on this
//! host, or that stopped beating, is free, and its run is marked `interrupted`.

mod recovery;
mod runner;
mod settle;
mod view;

use runner::Job;

use chrono::Utc;
use domain::approval;
use domain::change::{groups_setting_desired, ChangeId};
use domain::lifecycle::{self, Event, Refusal};
use domain::spec::semantic_diff;
use domain::Role;
use serde_json::json;

use crate::auth::{Caller, RequestMeta};
use crate::error::{ServiceError, ServiceResult};
use crate::service::gates::context;
use crate::store::applies::{self, LockRow};
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit, Change};
use crate::store::{now_text, repo as repo_store};
use domain::commit::short_sha;

crate::service::handle!(
    /// Applying changes.
    Applies
);

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
        let change = self.plans().change(id).await?;
        if let Err(why) = lifecycle::transition(change.status, Event::StartApply) {
            return Err(self.refuse(caller, meta, &change, why).await);
        }
        let Some(judged) = self.gates().judge(&change).await? else {
            let why = Refusal::conflict(format!(
                "change {id} has spec errors; fix them in a new commit"
            ));
            return Err(self.refuse(caller, meta, &change, why).await);
        };
        let policy = &judged.policy;

        // Plan again: the live state may have moved since the plan people reviewed.
        let sets_desired = groups_setting_desired(&semantic_diff(judged.base.spec(), &judged.spec));
        let planned = self.plans().plan_spec(&judged.spec, &sets_desired).await?;
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
                .plans()
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
            self.gates()
                .approvals_of(&mut conn, id, policy, Some(&planned.plan.hash))
                .await?
        };
        // The error-budget policy: with the availability budget spent, only emergencies.
        let budget_spent = self
            .slo()
            .budget_refusal(&judged.spec, &policy.budget_slos)
            .await;
        // The watch after the apply compares with a page alert already firing now.
        let burn_before = match policy.watch.minutes {
            0 => None,
            _ => {
                self.watches()
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
                env.last_applied_commit.as_deref().map(short_sha).unwrap_or("nothing")
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
                "{} applies change #{id} ({}, {}) as an EMERGENCY outside the change windows: {reason}{}",
                actor.name,
                change.environment,
                crate::service::reviews::first_line(&change.commit.message),
                self.notifications().change_link(id)
            );
            self.notifications()
                .queue_notification(
                    &mut tx,
                    "emergency_apply",
                    Some(&change.environment),
                    Some(&change),
                    &text,
                )
                .await?;
        }
        tx.commit().await?;
        self.notifications().wake_notifier();

        let job = Job {
            run_id,
            change_id: id,
            kind: change.kind,
            environment: change.environment,
            commit: change.commit.sha,
            base_commit: change.base_commit,
            wait_for_capacity: policy.wait_for_capacity,
            watch: policy.watch,
            burn_before,
            region: planned.region,
            operations: planned.plan.operations,
            group_ids: planned.group_ids,
            actor,
            meta: meta.clone(),
        };
        let engine = self.0.clone();
        tokio::spawn(async move { engine.applies().run(job).await });
        Ok(run_id)
    }

    /// Applies a change as `system` when its environment has `auto_apply` and the gates pass;
    /// a refusal is audited like any other and leaves the change as it is.
    pub(crate) fn spawn_auto_apply(&self, id: ChangeId) {
        let engine = self.0.clone();
        tokio::spawn(async move {
            let meta = RequestMeta::default();
            match engine
                .applies()
                .apply_change(&Caller::System, &meta, id, None)
                .await
            {
                Ok(run) => tracing::info!(change = %id, run, "auto-apply started"),
                Err(e) => tracing::warn!(change = %id, error = %e, "auto-apply did not start"),
            }
        });
    }
}
