//! Judging a change, in one place: the rules that decide it — from the environment's last
//! applied commit and the panel's floor, never from the change alone — with the guardrails, the
//! cost policy's verdict and its extra approval, the rule of an automatic revert, and whether
//! it applies itself. Recording, planning, approving, applying, the change page and the API
//! all read [`Judge::judge_specs`]'s result; the approvals that count for a plan and the facts
//! the domain's gates ([`domain::approval`]) look at are here too, so the change page's "what
//! you may do, and why not" and the requests themselves go through the same functions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::approval::{self, Approvals, Context, Review, Verdict};
use domain::change::{groups_setting_desired, ChangeId, ChangeKind};
use domain::cost::ChangeCostReport;
use domain::guardrails::Violation;
use domain::policy::{self, Policy};
use domain::reachability::ReachChange;
use domain::spec::{semantic_diff, EnvironmentSpec};
use domain::Role;

use crate::auth::Caller;
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::service::cost::Costs;
use crate::service::spec_reads::{Base, Specs};
use crate::settings::EngineSettings;
use crate::store::changes::Change;
use crate::store::Store;
use crate::store::{reviews, time_column, time_column_opt, watches};

/// What judges a change, decided once.
#[derive(Debug, Clone)]
pub(crate) struct Judged {
    /// The change's spec, shared with the kept reads.
    pub spec: Arc<EnvironmentSpec>,
    /// The applied spec it is judged against.
    pub base: Base,
    /// The rules: the applied policy and the floor, the cost policy's verdict (its extra
    /// approval, its block) and the rule of an automatic revert.
    pub policy: Policy,
    /// The guardrails the spec breaks under those rules (any: the change is `blocked`).
    pub violations: Vec<Violation>,
    /// What the change does to the monthly cost (`None`: it could not be computed).
    pub cost: Option<ChangeCostReport>,
    /// The paths between tiers it opens and closes against the applied spec (`None`: it
    /// touches no security group, subnet or network ACL).
    pub reachability: Option<Vec<ReachChange>>,
}

impl Judged {
    /// The groups whose desired capacity the change sets (else the autoscaler's is kept).
    pub fn sets_desired(&self) -> BTreeSet<String> {
        groups_setting_desired(&semantic_diff(self.base.spec(), &self.spec))
    }

    /// It applies itself as soon as it is planned: auto-apply, and no approval to wait for.
    pub fn applies_once_planned(&self) -> bool {
        self.policy.auto_apply && self.policy.required_approvals == 0
    }

    /// It applies itself as soon as its approvals are complete.
    pub fn applies_once_approved(&self) -> bool {
        self.policy.auto_apply
    }
}

/// How long recording a change waits for its cost (for its notification): bounded, so an AWS
/// that does not answer delays no fetch by more than a few seconds.
pub(crate) const RECORDING_COST_WAIT: Duration = Duration::from_secs(5);

/// The one judgement of a change.
#[derive(Clone, Copy)]
pub struct Judge<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) specs: Specs<'a>,
    pub(crate) cost: Costs<'a>,
    pub(crate) clock: &'a dyn Clock,
}

impl Judge<'_> {
    /// The rules that judge recorded `change`, its specs read from the kept reads; `None`
    /// when its spec cannot be read (it is invalid). A revert the watch after an apply
    /// recorded is judged as an automatic revert.
    pub(crate) async fn judge(&self, change: &Change) -> ServiceResult<Option<Judged>> {
        let specs = self
            .specs
            .specs_at(
                &change.environment,
                &change.commit.sha,
                change.base_commit.clone(),
            )
            .await;
        let (spec, base) = match specs {
            Ok(s) => s,
            Err(ServiceError::Internal(e)) => return Err(ServiceError::Internal(e)),
            Err(_) => return Ok(None),
        };
        let automatic = match change.kind {
            ChangeKind::Revert => {
                let mut conn = self.store.pool().acquire().await?;
                watches::recorded_revert(&mut conn, change.id).await?
            }
            _ => false,
        };
        let revert = change.kind == ChangeKind::Revert;
        self.judge_specs(spec, base, automatic, revert, None)
            .await
            .map(Some)
    }

    /// The one function that judges a change: `spec` against `base`, by the rules of what is
    /// applied and the panel's floor; `automatic`: a revert the watch recorded; `revert`: any
    /// revert (back to what ran before), which a cost that cannot be computed never holds back.
    /// The cost is waited for at most `cost_wait` (`None`: as long as it takes); a cost that
    /// cannot be computed holds back only what may raise it, and only as far as an emergency.
    pub(crate) async fn judge_specs(
        &self,
        spec: Arc<EnvironmentSpec>,
        base: Base,
        automatic: bool,
        revert: bool,
        cost_wait: Option<Duration>,
    ) -> ServiceResult<Judged> {
        let mut policy = policy::judge(base.applied(), &spec, &self.settings.policy);
        if automatic {
            policy::automatic_revert(&mut policy);
        }
        let costs = self.cost;
        let costing = costs.change_cost(&spec, base.spec(), &policy.cost);
        let costed = match cost_wait {
            None => costing.await,
            Some(wait) => match tokio::time::timeout(wait, costing).await {
                Ok(c) => c,
                Err(_) => Err(ServiceError::Unavailable(format!(
                    "the cost took longer than {} s to compute",
                    wait.as_secs()
                ))),
            },
        };
        let cost = match costed {
            Ok(c) => {
                domain::cost::apply_verdict(&mut policy, &c.verdict, revert);
                Some(c)
            }
            Err(ServiceError::Internal(e)) => return Err(ServiceError::Internal(e)),
            Err(e) => {
                // A limit that cannot be checked lets no rise through unseen: without figures,
                // only an emergency (or a revert) goes.
                let limited =
                    policy.cost.max_monthly.is_some() || policy.cost.extra_approval_above.is_some();
                if limited && !revert {
                    let why = format!("its cost cannot be computed now ({e}), so the environment's cost limits cannot be checked: it may be applied only as an emergency, with a reason");
                    policy.notes.push(format!("The cost policy: {why}."));
                    policy.cost_unchecked = Some(why);
                }
                None
            }
        };
        let violations = domain::guardrails::check(&spec, &policy);
        let reachability = domain::reachability::change_diff(base.spec(), &spec);
        Ok(Judged {
            spec,
            base,
            policy,
            violations,
            cost,
            reachability,
        })
    }

    /// The reviews of a change and the approvals that count for `plan_hash` now, under `policy`.
    pub(crate) async fn approvals_of(
        &self,
        conn: &mut crate::store::Conn,
        change_id: ChangeId,
        policy: &Policy,
        plan_hash: Option<&str>,
    ) -> ServiceResult<Approvals> {
        let now = self.clock.now();
        let lifetime = chrono::Duration::from_std(self.settings.approval_lifetime)
            .unwrap_or_else(|_| chrono::Duration::hours(24));
        let mut counted = 0;
        let mut out = Vec::new();
        for r in reviews::of_change(conn, change_id).await? {
            let mut review = Review {
                id: r.id,
                user: r.user_name,
                verdict: r.verdict.parse().map_err(|e: String| {
                    ServiceError::Internal(anyhow::anyhow!("review {}: {e}", r.id))
                })?,
                plan_hash: r.plan_hash,
                comment: r.comment,
                created_at: time_column("created_at", &r.created_at)?,
                voided_at: time_column_opt("voided_at", r.voided_at.as_deref())?,
                void_reason: r.void_reason,
                not_counted: None,
            };
            if review.verdict == Verdict::Approve {
                match approval::approval_counts(&review, plan_hash, now, lifetime) {
                    Ok(()) => counted += 1,
                    Err(why) => review.not_counted = Some(why),
                }
            }
            out.push(review);
        }
        Ok(Approvals {
            required: policy.required_approvals,
            counted,
            allow_self_approval: policy.allow_self_approval,
            reviews: out,
        })
    }
}

/// The facts the gates look at, for `caller` and `change` under `policy`. tierdeck itself
/// (auto-apply) has every role and no e-mail: it never approves.
pub(crate) fn context<'a>(
    caller: &'a Caller,
    change: &'a Change,
    approvals: &'a Approvals,
    policy: &'a Policy,
    budget_spent: Option<&'a str>,
    now: chrono::DateTime<Utc>,
) -> Context<'a> {
    let (role, user, email) = match caller {
        Caller::User(p) => (p.role, p.name.as_str(), p.email.as_deref()),
        Caller::System => (Role::Admin, "system", None),
    };
    Context {
        role,
        user,
        email,
        environment: &change.environment,
        status: change.status,
        authors: &change.authors,
        plan: change.current_plan(),
        approvals,
        windows: &policy.windows,
        budget_spent,
        cost_blocked: policy.cost_blocked.as_deref(),
        cost_unchecked: policy.cost_unchecked.as_deref(),
        now,
    }
}
