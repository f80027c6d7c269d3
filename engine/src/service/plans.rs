//! Planning environments against live AWS.

use std::collections::{BTreeMap, BTreeSet};

use domain::change::{groups_setting_desired, ChangeId, ChangeStatus, PlanView};
use domain::commit::short_sha;
use domain::job::{JobKind, Outcome};
use domain::lifecycle::Event;
use domain::plan::{plan, Plan};
use domain::spec::EnvName;
use domain::spec::{semantic_diff, EnvironmentSpec};
use domain::Role;
use serde_json::json;

use crate::auth::{Caller, RequestMeta};
use crate::aws::clients::AwsClients;
use crate::aws::observe::observe;
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::jobs::worker::outcome_of;
use crate::jobs::worker::Waker;
use crate::jobs::{self, Job};
use crate::service::judge::Judge;
use crate::service::spec_reads::Specs;
use crate::settings::EngineSettings;
use crate::store::changes::{self, Audit, Change};
use crate::store::Store;
use crate::store::{repo as repo_store, reviews};

/// A plan and how long reading the live state took.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub read_ms: u64,
    /// Requests the reading sent to AWS.
    pub aws_calls: u64,
    pub region: String,
    /// Security group ids by name, from the same observation (rules name groups by id).
    pub group_ids: BTreeMap<String, String>,
}

/// Plans against live AWS.
#[derive(Clone, Copy)]
pub struct Plans<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) specs: Specs<'a>,
    pub(crate) judge: Judge<'a>,
    pub(crate) aws: &'a AwsClients,
    pub(crate) jobs_waker: &'a Waker,
    pub(crate) clock: &'a dyn Clock,
    /// How often people have asked to plan changes again.
    pub(crate) plan_again: &'a crate::auth::limits::PlanAgainLimits,
}

impl Plans<'_> {
    /// Plans `spec` against what AWS runs now.
    pub async fn plan_spec(
        &self,
        spec: &EnvironmentSpec,
        sets_desired: &BTreeSet<String>,
    ) -> ServiceResult<Planned> {
        let region = self.aws.region_of(spec);
        let clients = self
            .aws
            .read(
                spec.environment.name.as_str(),
                &region,
                self.settings.aws.max_attempts,
            )
            .await;
        let observed = observe(&clients, spec).await?;
        Ok(Planned {
            plan: plan(spec, &observed.state, sets_desired),
            read_ms: observed.elapsed.as_millis() as u64,
            aws_calls: observed.calls,
            region,
            group_ids: observed
                .state
                .security_groups
                .values()
                .map(|g| (g.name.clone(), g.id.clone()))
                .collect(),
        })
    }

    /// The plan of an environment at the tracked branch's head (for `tierdeck plan`).
    pub async fn plan_head(
        &self,
        caller: &Caller,
        env: &EnvName,
    ) -> ServiceResult<(String, Planned)> {
        let env = env.as_str();
        caller.require(Role::Viewer)?;
        let (head, applied) = {
            let mut conn = self.store.pool().acquire().await?;
            let head = repo_store::state(&mut conn)
                .await?
                .and_then(|s| s.head_commit)
                .ok_or_else(|| {
                    ServiceError::Unavailable("the spec repository was never fetched".into())
                })?;
            let env_row = repo_store::environment(&mut conn, env)
                .await?
                .ok_or_else(|| {
                    ServiceError::NotFound(format!(
                        "there is no environment `{env}` in the spec repository"
                    ))
                })?;
            (head, env_row.last_applied_commit)
        };
        let (spec, base) = self.specs.specs_at(env, &head, applied).await?;
        let sets_desired = groups_setting_desired(&semantic_diff(base.spec(), &spec));
        Ok((head, self.plan_spec(&spec, &sets_desired).await?))
    }

    /// Queues a plan job for every open change that was never planned and has none waiting.
    pub async fn queue_unplanned(&self) -> ServiceResult<usize> {
        let ids = {
            let mut conn = self.store.pool().acquire().await?;
            changes::unplanned(&mut conn).await?
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin_write().await?;
        let mut queued = 0;
        for id in ids {
            let change = changes::get(&mut tx, id).await?;
            if let Some(change) = change.filter(|c| c.status != ChangeStatus::Invalid) {
                queued += usize::from(self.queue_plan(&mut tx, &change, "system").await?);
            }
        }
        tx.commit().await?;
        self.jobs_waker.wake();
        Ok(queued)
    }

    /// Queues the job that plans `change`, in the caller's transaction; whether a new one was
    /// queued (one may be waiting already). The caller wakes the worker after its commit.
    pub(crate) async fn queue_plan(
        &self,
        tx: &mut crate::store::Conn,
        change: &Change,
        by: &str,
    ) -> Result<bool, sqlx::Error> {
        let job = Job::Plan {
            change: change.id,
            environment: change.environment.clone(),
        };
        let tries = JobKind::Plan.retry().attempts;
        Ok(jobs::enqueue(tx, &job, tries, by, self.clock.now())
            .await?
            .is_some())
    }

    /// "Plan again", as a person asks for it: [`Self::refresh_plan`] within the limits of
    /// [`crate::auth::limits`] (a 429 with the wait when past them).
    pub async fn plan_again(
        &self,
        caller: &Caller,
        id: ChangeId,
    ) -> ServiceResult<Option<PlanView>> {
        caller.require(Role::Viewer)?;
        if let Caller::User(p) = caller {
            self.plan_again
                .admit(p.name.as_str(), id.0, std::time::Instant::now())
                .map_err(|wait| ServiceError::TooOften {
                    what: format!(
                        "change {id} was planned again moments ago, or you plan again often (at most once per {} s per change and {} times a minute per person)",
                        crate::auth::limits::PER_CHANGE.as_secs(),
                        crate::auth::limits::PER_USER
                    ),
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })?;
        }
        self.refresh_plan(caller, id).await
    }

    /// Plans a change that can still be applied against live AWS now, and stores the plan with
    /// the change (see [`Plans::record_plan`]); `None` for changes that cannot be applied. A
    /// plan that cannot be made is stored as unavailable, with the reason.
    pub async fn refresh_plan(
        &self,
        caller: &Caller,
        id: ChangeId,
    ) -> ServiceResult<Option<PlanView>> {
        caller.require(Role::Viewer)?;
        Ok(self.plan_change(caller, id).await?.map(|(view, _)| view))
    }

    /// A plan job: plans the change and stores the plan; a plan that could not be made is
    /// tried again while AWS may come back.
    pub(crate) async fn plan_job(&self, id: ChangeId) -> Outcome {
        match self.plan_change(&Caller::System, id).await {
            Ok(None | Some((_, None))) => Outcome::Done,
            Ok(Some((_, Some(why)))) | Err(why) => outcome_of(&why),
        }
    }

    /// Plans change `id` and stores the plan. When the rules that judge it let it apply by
    /// itself with nothing to wait for (auto-apply and no approval required), its auto-apply is
    /// queued in the transaction that stores the plan. Returns the view stored and, when the
    /// plan could not be made, why.
    async fn plan_change(
        &self,
        caller: &Caller,
        id: ChangeId,
    ) -> ServiceResult<Option<(PlanView, Option<ServiceError>)>> {
        let change = self.specs.change(id).await?;
        // Those whose plan matters: they can be applied, or approved once a commit fixes them.
        if !change.status.is_open() || change.status == ChangeStatus::Invalid {
            return Ok(None);
        }
        let planned = async {
            let judged =
                self.judge.judge(&change).await?.ok_or_else(|| {
                    ServiceError::Conflict(format!("change {id} has spec errors"))
                })?;
            let p = self.plan_spec(&judged.spec, &judged.sets_desired()).await?;
            Ok::<_, ServiceError>((p, judged.applies_once_planned()))
        }
        .await;
        let meta = RequestMeta::default();
        match planned {
            Ok((p, applies_itself)) => {
                let (view, _) = self
                    .record_plan(
                        caller,
                        &meta,
                        &change,
                        &p,
                        "it was planned again",
                        applies_itself,
                    )
                    .await?;
                Ok(Some((view, None)))
            }
            Err(ServiceError::Internal(e)) => Err(ServiceError::Internal(e)),
            Err(e) => {
                let view = PlanView::Unavailable {
                    reason: e.to_string(),
                };
                let mut conn = self.store.pool().acquire().await?;
                changes::set_plan(&mut conn, id, &view, &self.clock.now_text()).await?;
                Ok(Some((view, Some(e))))
            }
        }
    }

    /// Stores a new plan with its change. A plan whose hash differs from the one reviewed voids
    /// the approvals of the old one, and the change is pending again (audited, with `why`):
    /// the one place a plan replaces another. `auto_apply`: the change applies itself once
    /// planned (its rules need no approval), so a pending change whose plan has no errors gets
    /// its auto-apply queued in the same transaction. Returns the view stored and how many
    /// approvals were voided.
    pub(crate) async fn record_plan(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        change: &Change,
        p: &Planned,
        why: &str,
        auto_apply: bool,
    ) -> ServiceResult<(PlanView, u64)> {
        let view = PlanView::Planned {
            plan: p.plan.clone(),
            read_ms: p.read_ms,
            aws_calls: p.aws_calls,
        };
        let now = self.clock.now_text();
        let mut tx = self.store.begin_write().await?;
        let Some(current) = changes::get(&mut tx, change.id).await? else {
            return Err(ServiceError::NotFound(format!(
                "there is no change {}",
                change.id
            )));
        };
        changes::set_plan(&mut tx, change.id, &view, &now).await?;
        let moved = current
            .plan_hash
            .as_deref()
            .is_some_and(|old| old != p.plan.hash);
        let mut voided = 0;
        if moved {
            let old = current.plan_hash.as_deref().unwrap_or_default();
            let reason = format!(
                "{why}: plan {} is now {}",
                short_sha(old),
                short_sha(&p.plan.hash)
            );
            voided = reviews::void_approvals(&mut tx, change.id, &reason, &now).await?;
            // A plan moving is a lifecycle event when there was something to void or the change
            // leaves approved, failed or interrupted for pending.
            let moves_status = domain::lifecycle::transition(current.status, Event::Replan)
                .is_ok_and(|to| to != current.status);
            if voided > 0 || moves_status {
                changes::transition(
                    &mut tx,
                    &current,
                    Event::Replan,
                    None,
                    Audit {
                        actor: caller.actor(),
                        meta,
                        detail: json!({
                            "voided": voided,
                            "reason": reason,
                            "old_plan_hash": old,
                            "plan_hash": p.plan.hash,
                        }),
                    },
                    &now,
                )
                .await?;
            }
        }
        let queued = if auto_apply && p.plan.errors.is_empty() {
            let after = changes::get(&mut tx, change.id).await?;
            match after.filter(|c| c.status == ChangeStatus::Pending) {
                Some(c) => {
                    let job = Job::AutoApply {
                        change: c.id,
                        environment: c.environment.clone(),
                        reason: None,
                    };
                    let max = JobKind::AutoApply.retry().attempts;
                    jobs::enqueue(&mut tx, &job, max, &caller.actor().name, self.clock.now())
                        .await?
                        .is_some()
                }
                None => false,
            }
        } else {
            false
        };
        tx.commit().await?;
        if queued {
            self.jobs_waker.wake();
        }
        Ok((view, voided))
    }
}
