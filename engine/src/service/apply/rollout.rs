//! The rollout step: new instances through an instance refresh, one stage per checkpoint,
//! each held while the environment's SLO burn-rate alerts are read (the watch's own reading),
//! rolled back on a page alert. Its state ([`RolloutState`]) is written to the step before and
//! after every AWS call, so a process that restarts re-attaches to the refresh AWS still runs
//! by its id instead of starting another. Calls that change something are audited one by one
//! (`aws.call`); the polls are counted on the step and in its stage events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use domain::observed::ObservedRefresh;
use domain::plan::{Operation, RolloutPlan, RolloutTarget};
use domain::rollout::{Command, Phase, RolloutState};
use domain::slo::WatchReading;
use serde_json::json;

use super::runner::{Ended, RunJob};
use super::Applies;
use crate::aws::autoscaling::{AutoScalingApi, RefreshRequest};
use crate::aws::clients::Live;
use crate::aws::ec2::Ec2Api;
use crate::aws::AwsError;
use crate::error::ServiceResult;
use crate::store::applies;
use crate::store::audit::{append, NewEvent};

/// How a rollout step ended when it did not succeed.
pub(super) enum RolloutEnd {
    /// Rolled back on a page alert: the change is degraded.
    Degraded {
        why: String,
    },
    Failed(String),
    Lost(Ended),
}

/// The longest pause between two reads of an operator's request.
const COMMAND_EVERY: Duration = Duration::from_millis(500);

impl Applies<'_> {
    /// Runs, or resumes after a restart, the rollout of step `position`. `Ok(None)`: it
    /// succeeded and the run goes on.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn rollout(
        &self,
        job: &RunJob,
        position: u32,
        op: &Operation,
        plan: &RolloutPlan,
        clients: &Live,
        lost: &AtomicBool,
    ) -> ServiceResult<Option<RolloutEnd>> {
        let recorded = {
            let mut conn = self.store.pool().acquire().await?;
            applies::rollout_state(&mut conn, job.run_id, position).await?
        };
        let mut st = match recorded
            .as_deref()
            .map(serde_json::from_str::<RolloutState>)
        {
            Some(Ok(st)) => {
                self.rollout_event(
                    job,
                    position,
                    "rollout.reattached",
                    json!({ "group": st.group, "refresh": st.refresh_id, "phase": st.phase, "stage": st.stage }),
                )
                .await?;
                tracing::info!(change = %job.change_id, step = position, refresh = ?st.refresh_id, "re-attaching to a rollout");
                st
            }
            _ => RolloutState::new(plan, self.clock.now()),
        };
        let lost_end = || RolloutEnd::Lost(Self::lost_at(job, position + 1));
        if !self.save_rollout(job, position, &st).await? {
            return Ok(Some(lost_end()));
        }
        let change = self.specs.change(job.change_id).await?;
        let mut polls_in_phase = 0u32;
        let mut last_reading: Option<Instant> = None;
        loop {
            if lost.load(Ordering::SeqCst) {
                return Ok(Some(lost_end()));
            }
            let phase_before = st.phase;
            if let Some((command, by)) = self.take_command(job, position).await? {
                self.operator(job, position, op, clients, &mut st, &command, &by)
                    .await?;
            }
            match st.phase {
                Phase::Starting => {
                    self.start_stage(job, position, op, plan, clients, &mut st)
                        .await?
                }
                Phase::Replacing => {
                    if let Some(r) = self.poll(clients, &mut st).await {
                        match r.status.as_str() {
                            "Successful" if st.checkpoint().is_none() => {
                                st.phase = Phase::Succeeded
                            }
                            "Pending" | "InProgress" | "Successful"
                                if st.checkpoint().is_some_and(|c| r.percentage >= c) =>
                            {
                                st.phase = Phase::Baking;
                                self.stage_event(job, position, &st, "rollout.checkpoint")
                                    .await?;
                                st.bake_until = Some(
                                    self.clock.now()
                                        + chrono::Duration::seconds(i64::from(st.bake_secs)),
                                );
                                last_reading = None;
                            }
                            "Pending" | "InProgress" => {}
                            other => {
                                st.phase = Phase::Failed;
                                st.note = Some(format!(
                                    "refresh {} ended {other} without tierdeck asking: {}",
                                    r.id,
                                    r.reason.clone().unwrap_or_default()
                                ));
                            }
                        }
                    }
                }
                Phase::Baking => {
                    self.poll(clients, &mut st).await;
                    let due = last_reading
                        .is_none_or(|t| t.elapsed() >= self.settings.apply.watch_interval);
                    let over = st.bake_until.is_none_or(|u| self.clock.now() >= u);
                    let mut alert = None;
                    if due || over {
                        last_reading = Some(Instant::now());
                        match self.watches.reading(&change).await {
                            Ok(r) => {
                                st.last_burn = r.burn;
                                if domain::slo::alert_is_new(&r, job.burn_before) {
                                    alert = Some(r);
                                }
                            }
                            Err(e) => st.note = Some(format!("the SLOs could not be read: {e}")),
                        }
                    }
                    if let Some(WatchReading {
                        alert: Some(a),
                        burn,
                        ..
                    }) = alert
                    {
                        st.alert = Some(a);
                        st.burn = burn;
                        self.undo(job, position, op, clients, &mut st).await?;
                    } else if over {
                        self.stage_event(job, position, &st, "rollout.stage_good")
                            .await?;
                        self.cancel_call(job, position, op, clients, &mut st)
                            .await?;
                        st.phase = Phase::Continuing;
                    }
                }
                Phase::Continuing => {
                    if let Some(r) = self.poll(clients, &mut st).await {
                        match r.status.as_str() {
                            "Cancelled" => {
                                st.stage += 1;
                                st.phase = Phase::Starting;
                                st.bake_until = None;
                            }
                            // It reached the end while being cancelled: nothing is left.
                            "Successful" => st.phase = Phase::Succeeded,
                            "Cancelling" => {}
                            other => {
                                st.phase = Phase::Failed;
                                st.note = Some(format!("refresh {} ended {other} while tierdeck cancelled it to start the next stage", r.id));
                            }
                        }
                    }
                }
                Phase::RollingBack => {
                    if let Some(r) = self.poll(clients, &mut st).await {
                        match r.status.as_str() {
                            "RollbackSuccessful" => {
                                self.return_earlier(job, position, op, clients, &mut st)
                                    .await?
                            }
                            "RollbackInProgress" => {}
                            other => {
                                st.phase = Phase::Failed;
                                st.note = Some(format!(
                                    "the rollback of refresh {} ended {other}: {}",
                                    r.id,
                                    r.reason.clone().unwrap_or_default()
                                ));
                            }
                        }
                    }
                }
                Phase::Returning => {
                    if let Some(r) = self.poll(clients, &mut st).await {
                        match r.status.as_str() {
                            "Successful" => st.phase = Phase::RolledBack,
                            "Pending" | "InProgress" => {}
                            other => {
                                st.phase = Phase::Failed;
                                st.note = Some(format!(
                                    "the refresh back to version {} ended {other}: {}",
                                    st.previous,
                                    r.reason.clone().unwrap_or_default()
                                ));
                            }
                        }
                    }
                }
                Phase::Cancelling => {
                    if let Some(r) = self.poll(clients, &mut st).await {
                        match r.status.as_str() {
                            "Cancelled" => st.phase = Phase::Cancelled,
                            "Successful" => st.phase = Phase::Succeeded,
                            "Cancelling" => {}
                            other => {
                                st.phase = Phase::Failed;
                                st.note = Some(format!(
                                    "refresh {} ended {other} while being cancelled",
                                    r.id
                                ));
                            }
                        }
                    }
                }
                Phase::Succeeded | Phase::RolledBack | Phase::Cancelled | Phase::Failed => {}
            }
            if st.phase != phase_before {
                polls_in_phase = 0;
            }
            if !self.save_rollout(job, position, &st).await? {
                return Ok(Some(lost_end()));
            }
            if st.phase.is_over() {
                self.stage_event(job, position, &st, "rollout.ended")
                    .await?;
                return Ok(match st.phase {
                    Phase::Succeeded => None,
                    Phase::RolledBack if st.alert.is_some() => Some(RolloutEnd::Degraded {
                        why: format!(
                            "rolled back: {} burned {} the error budget during the bake of {}",
                            st.alert.clone().unwrap_or_default(),
                            st.burn
                                .map(|b| format!("{b:.1}×"))
                                .unwrap_or_else(|| "—".into()),
                            st.stage_text()
                        ),
                    }),
                    Phase::Cancelled if st.alert.is_some() => Some(RolloutEnd::Degraded {
                        why: format!(
                            "cancelled (no rollback): {} during the bake of {}; {}",
                            st.alert.clone().unwrap_or_default(),
                            st.stage_text(),
                            st.note.clone().unwrap_or_default()
                        ),
                    }),
                    _ => Some(RolloutEnd::Failed(format!(
                        "the rollout of {} {}{}{}",
                        st.group,
                        st.phase.as_str(),
                        st.by
                            .as_ref()
                            .map(|b| format!(" (asked by {b})"))
                            .unwrap_or_default(),
                        st.note
                            .as_ref()
                            .map(|n| format!(": {n}"))
                            .unwrap_or_default()
                    ))),
                });
            }
            // Polls slow down while nothing moves, up to the settle poll's longest pause;
            // an operator's request is read meanwhile.
            polls_in_phase += 1;
            let pause =
                domain::settle::poll_delay(polls_in_phase, self.settings.apply.settle_poll_max);
            let until = Instant::now() + pause;
            while Instant::now() < until && !lost.load(Ordering::SeqCst) {
                tokio::time::sleep(COMMAND_EVERY.min(until - Instant::now())).await;
                if self.has_command(job, position).await? {
                    break;
                }
            }
        }
    }

    /// Makes the new version when the plan asks for one, then starts the stage's refresh. A
    /// refresh already running when the start is refused is the one this step started before a
    /// restart cut its record short (the plan saw none, and the environment's lock is held):
    /// it is adopted by its id.
    async fn start_stage(
        &self,
        job: &RunJob,
        position: u32,
        op: &Operation,
        plan: &RolloutPlan,
        clients: &Live,
        st: &mut RolloutState,
    ) -> ServiceResult<()> {
        if st.version.is_none() {
            let RolloutTarget::NewVersion { from, image_id, .. } = &plan.target else {
                return Ok(());
            };
            let made = clients
                .ec2
                .create_template_version(&st.template, from, image_id)
                .await;
            let made = self
                .aws_call(
                    job,
                    position,
                    op,
                    st,
                    "ec2:CreateLaunchTemplateVersion",
                    made,
                )
                .await?;
            match made {
                Some(n) => st.version = Some(n.to_string()),
                _ => {
                    st.phase = Phase::Failed;
                    return Ok(());
                }
            }
            if !self.save_rollout(job, position, st).await? {
                return Ok(());
            }
        }
        let version = st.version.clone().unwrap_or_default();
        let mut preferences = plan.preferences.clone();
        // After the first stage the instances already new are left alone.
        preferences.skip_matching |= st.stage > 0;
        let request = RefreshRequest {
            group: &st.group,
            template: &st.template,
            version: &version,
            preferences: &preferences,
            checkpoint: st.checkpoint(),
        };
        let started = clients.autoscaling.start_refresh(&request).await;
        let refused_busy = matches!(&started, Err(e) if e.code.as_deref() == Some("InstanceRefreshInProgress") || e.message.contains("InstanceRefreshInProgress"));
        let id = self
            .aws_call(
                job,
                position,
                op,
                st,
                "autoscaling:StartInstanceRefresh",
                started,
            )
            .await?;
        match id {
            Some(id) => {
                st.refresh_id = Some(id);
                st.phase = Phase::Replacing;
                self.stage_event(job, position, st, "rollout.stage_started")
                    .await?;
            }
            _ if refused_busy => match clients.autoscaling.refresh(&st.group, None).await {
                Ok(Some(r)) if r.active() => {
                    st.note = Some(format!("adopted refresh {} that AWS already ran", r.id));
                    st.refresh_id = Some(r.id);
                    st.phase = Phase::Replacing;
                }
                _ => st.phase = Phase::Failed,
            },
            _ => st.phase = Phase::Failed,
        }
        Ok(())
    }

    /// After a rollback of the running stage: a refresh back to the previous version for the
    /// instances earlier stages made new, when there are any.
    async fn return_earlier(
        &self,
        job: &RunJob,
        position: u32,
        op: &Operation,
        clients: &Live,
        st: &mut RolloutState,
    ) -> ServiceResult<()> {
        let version = st.version.clone().unwrap_or_default();
        let groups = clients
            .autoscaling
            .describe_groups(std::slice::from_ref(&st.group))
            .await;
        st.calls += 1;
        let left = match groups {
            Ok(g) => g
                .first()
                .and_then(|g| g.launch.as_ref())
                .map(|(_, instances)| instances.iter().filter(|(_, v)| *v == version).count())
                .unwrap_or(0),
            Err(e) => {
                st.note = Some(format!("reading the group after the rollback failed: {e}"));
                return Ok(());
            }
        };
        if left == 0 {
            st.phase = Phase::RolledBack;
            return Ok(());
        }
        let preferences = domain::spec::Rollout {
            checkpoints: vec![100],
            skip_matching: true,
            auto_rollback: false,
            alarms: Vec::new(),
            ..Default::default()
        };
        let request = RefreshRequest {
            group: &st.group,
            template: &st.template,
            version: &st.previous,
            preferences: &preferences,
            checkpoint: None,
        };
        let started = clients.autoscaling.start_refresh(&request).await;
        match self
            .aws_call(
                job,
                position,
                op,
                st,
                "autoscaling:StartInstanceRefresh",
                started,
            )
            .await?
        {
            Some(id) => {
                st.note = Some(format!(
                    "{left} instance(s) of earlier stages go back to version {} by refresh {id}",
                    st.previous
                ));
                st.refresh_id = Some(id);
                st.phase = Phase::Returning;
            }
            _ => st.phase = Phase::Failed,
        }
        Ok(())
    }

    /// Rolls the running stage back (or cancels it, saying why, where AWS cannot roll back).
    async fn undo(
        &self,
        job: &RunJob,
        position: u32,
        op: &Operation,
        clients: &Live,
        st: &mut RolloutState,
    ) -> ServiceResult<()> {
        if let Some(why) = st.rollback_refusal() {
            st.note = Some(format!("{why}; the refresh is cancelled instead and the instances replaced so far keep the new version"));
            self.cancel_call(job, position, op, clients, st).await?;
            st.phase = Phase::Cancelling;
        } else {
            self.rollback_call(job, position, op, clients, st).await?;
            st.phase = Phase::RollingBack;
        }
        Ok(())
    }

    /// An operator's request, acted on when it may be (else its refusal noted).
    #[allow(clippy::too_many_arguments)]
    async fn operator(
        &self,
        job: &RunJob,
        position: u32,
        op: &Operation,
        clients: &Live,
        st: &mut RolloutState,
        command: &str,
        by: &str,
    ) -> ServiceResult<()> {
        let command = match command.parse::<Command>() {
            Ok(c) => c,
            Err(e) => {
                st.note = Some(e);
                return Ok(());
            }
        };
        if let Err(why) = st.may(command) {
            st.note = Some(format!(
                "{} asked by {by} was refused: {why}",
                command.as_str()
            ));
            return Ok(());
        }
        st.by = Some(by.to_owned());
        self.rollout_event(
            job,
            position,
            "rollout.operator",
            json!({ "group": st.group, "command": command.as_str(), "by": by, "phase": st.phase, "stage": st.stage }),
        )
        .await?;
        match command {
            Command::Continue => st.bake_until = Some(self.clock.now()),
            Command::Cancel if st.phase == Phase::Starting => st.phase = Phase::Cancelled,
            Command::Cancel => {
                self.cancel_call(job, position, op, clients, st).await?;
                st.phase = Phase::Cancelling;
            }
            Command::Rollback => {
                self.rollback_call(job, position, op, clients, st).await?;
                st.phase = Phase::RollingBack;
            }
        }
        Ok(())
    }

    /// `CancelInstanceRefresh` of the group's refresh, recorded and audited.
    async fn cancel_call(
        &self,
        job: &RunJob,
        position: u32,
        op: &Operation,
        clients: &Live,
        st: &mut RolloutState,
    ) -> ServiceResult<()> {
        let r = clients.autoscaling.cancel_refresh(&st.group).await;
        let call = "autoscaling:CancelInstanceRefresh";
        self.aws_call(job, position, op, st, call, r.map(|r| ((), r)))
            .await
            .map(drop)
    }

    /// `RollbackInstanceRefresh` of the group's refresh, recorded and audited.
    async fn rollback_call(
        &self,
        job: &RunJob,
        position: u32,
        op: &Operation,
        clients: &Live,
        st: &mut RolloutState,
    ) -> ServiceResult<()> {
        let r = clients.autoscaling.rollback_refresh(&st.group).await;
        let call = "autoscaling:RollbackInstanceRefresh";
        self.aws_call(job, position, op, st, call, r.map(|r| ((), r)))
            .await
            .map(drop)
    }

    /// One `DescribeInstanceRefreshes` of the stage's refresh, into `st`; `None` when the poll
    /// failed (noted; the next one asks again).
    async fn poll(&self, clients: &Live, st: &mut RolloutState) -> Option<ObservedRefresh> {
        let id = st.refresh_id.clone()?;
        st.calls += 1;
        match clients.autoscaling.refresh(&st.group, Some(&id)).await {
            Ok(Some(r)) => {
                st.status = r.status.clone();
                st.percentage = r.percentage;
                st.instances_to_update = r.instances_to_update;
                st.reason = r.reason.clone();
                Some(r)
            }
            Ok(None) => {
                st.note = Some(format!("AWS lists no refresh {id} of {}", st.group));
                None
            }
            Err(e) => {
                st.note = Some(format!("the poll failed: {e}"));
                None
            }
        }
    }

    /// Records and audits one AWS call that changes something; its value, or `None` when it
    /// failed (the error noted in `st`).
    #[allow(clippy::too_many_arguments)]
    async fn aws_call<T>(
        &self,
        job: &RunJob,
        position: u32,
        op: &Operation,
        st: &mut RolloutState,
        call: &str,
        result: Result<(T, Option<String>), AwsError>,
    ) -> ServiceResult<Option<T>> {
        st.calls += 1;
        let (value, request_id, error) = match result {
            Ok((v, r)) => (Some(v), r, None),
            Err(e) => (None, e.request_id.clone(), Some(e.to_string())),
        };
        if let Some(e) = &error {
            st.note = Some(format!("{call}: {e}"));
        }
        let attempted = applies::Attempt {
            status: "running",
            attempts: st.calls,
            request_id: request_id.as_deref(),
            error: error.as_deref(),
        };
        let detail = json!({
            "call": call,
            "resource": op.resource,
            "refresh": st.refresh_id,
            "stage": st.stage + 1,
        });
        // A run that lost its lock is stopped by its next save of the rollout's state.
        self.record_call(job, position, attempted, detail).await?;
        Ok(value)
    }

    async fn save_rollout(
        &self,
        job: &RunJob,
        position: u32,
        st: &RolloutState,
    ) -> ServiceResult<bool> {
        let text = serde_json::to_string(st).expect("plain data serialises");
        let mut conn = self.store.pool().acquire().await?;
        Ok(applies::step_rollout(&mut conn, job.run_id, position, &text).await?)
    }

    async fn take_command(
        &self,
        job: &RunJob,
        position: u32,
    ) -> ServiceResult<Option<(String, String)>> {
        let mut tx = self.store.begin_write().await?;
        let taken = applies::take_command(&mut tx, job.run_id, position).await?;
        tx.commit().await?;
        Ok(taken)
    }

    async fn has_command(&self, job: &RunJob, position: u32) -> ServiceResult<bool> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(applies::pending_command(&mut conn, job.run_id, position).await?)
    }

    /// A stage's start, its good bake or the rollout's end, audited with where it stands.
    async fn stage_event(
        &self,
        job: &RunJob,
        position: u32,
        st: &RolloutState,
        action: &str,
    ) -> ServiceResult<()> {
        self.rollout_event(
            job,
            position,
            action,
            json!({
                "group": st.group,
                "stage": st.stage + 1,
                "stages": st.checkpoints.len(),
                "checkpoint": st.checkpoints.get(st.stage),
                "refresh": st.refresh_id,
                "phase": st.phase,
                "percentage": st.percentage,
                "version": st.version,
                "previous": st.previous,
                "calls": st.calls,
                "burn": st.burn.or(st.last_burn),
                "alert": st.alert,
                "note": st.note,
            }),
        )
        .await
    }

    async fn rollout_event(
        &self,
        job: &RunJob,
        position: u32,
        action: &str,
        mut detail: serde_json::Value,
    ) -> ServiceResult<()> {
        detail["run"] = json!(job.run_id);
        detail["step"] = json!(position);
        let target = job.change_id.to_string();
        let mut tx = self.store.begin_write().await?;
        append(
            &mut tx,
            NewEvent {
                actor: job.actor.clone(),
                action,
                environment: Some(&job.environment),
                target: Some(&target),
                detail,
                meta: &job.meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Applies<'_> {
    /// An operator's **Continue now**, **Cancel** or **Roll back** of the rollout the change's
    /// apply runs now: refused with the reason where AWS (or the stage) would refuse it, else
    /// left for the rollout step, which acts at its next poll (within a second). Both are
    /// audited. Returns what happens, in words.
    pub async fn rollout_command(
        &self,
        caller: &crate::auth::Caller,
        meta: &crate::auth::RequestMeta,
        change: domain::change::ChangeId,
        command: Command,
    ) -> ServiceResult<String> {
        use crate::error::ServiceError;
        caller.require(domain::Role::Operator)?;
        let actor = caller.actor();
        let target = change.to_string();
        let c = self.specs.change(change).await?;
        let mut tx = self.store.begin_write().await?;
        let found = match applies::latest_run(&mut tx, change.0).await? {
            Some(run) if run.status == domain::change::RunStatus::Applying.as_str() => {
                let mut found = None;
                for s in applies::steps(&mut tx, run.id).await? {
                    if s.status != domain::change::StepStatus::Running.as_str() {
                        continue;
                    }
                    if let Some(Ok(st)) = s
                        .rollout
                        .as_deref()
                        .map(serde_json::from_str::<RolloutState>)
                    {
                        found = Some((run.id, s.position as u32, st));
                    }
                }
                found
            }
            _ => None,
        };
        let verdict = match &found {
            None => Err(format!("change {change} runs no rollout now")),
            Some((_, _, st)) => st.may(command).map(|()| st),
        };
        let detail = json!({
            "command": command.as_str(),
            "group": found.as_ref().map(|(_, _, st)| st.group.clone()),
            "refresh": found.as_ref().and_then(|(_, _, st)| st.refresh_id.clone()),
            "reason": verdict.as_ref().err(),
        });
        let action = if verdict.is_ok() {
            "rollout.command"
        } else {
            "rollout.command_refused"
        };
        append(
            &mut tx,
            NewEvent {
                actor,
                action,
                environment: Some(&c.environment),
                target: Some(&target),
                detail,
                meta,
            },
        )
        .await?;
        let message = match (&found, verdict) {
            (Some((run, position, st)), Ok(_)) => {
                if !applies::request_command(
                    &mut tx,
                    *run,
                    *position,
                    command.as_str(),
                    &caller.actor().name,
                )
                .await?
                {
                    drop(tx);
                    return Err(ServiceError::Conflict("the rollout has just ended".into()));
                }
                Ok(match command {
                    Command::Continue => format!(
                        "the bake of {} ends now; the next stage starts",
                        st.stage_text()
                    ),
                    Command::Cancel => format!(
                        "the instance refresh of {} is being cancelled; the instances replaced so far keep the new version",
                        st.group
                    ),
                    Command::Rollback => format!(
                        "the instance refresh of {} is being rolled back to version {}",
                        st.group, st.previous
                    ),
                })
            }
            (_, Err(why)) => Err(why),
            (None, Ok(_)) => Err(format!("change {change} runs no rollout now")),
        };
        tx.commit().await?;
        match message {
            Ok(m) => Ok(m),
            Err(why) => Err(ServiceError::Conflict(format!(
                "{} refused: {why}",
                command.as_str()
            ))),
        }
    }
}
