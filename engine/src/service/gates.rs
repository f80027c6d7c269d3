//! Judging a change: the rules that decide it (from the environment's last applied commit and
//! the panel's floor, never from the change alone), the approvals that count for its plan, and
//! the facts the domain's gates ([`domain::approval`]) look at. The change page's "what you may
//! do, and why not" and the requests themselves go through the same functions.

use chrono::Utc;
use domain::approval::{self, Approvals, Context, Review, Verdict};
use domain::change::{ChangeId, ChangeKind};
use domain::cost::ChangeCostReport;
use domain::policy::{self, Policy};
use domain::spec::EnvironmentSpec;
use domain::Role;

use crate::auth::Caller;
use crate::error::{ServiceError, ServiceResult};
use crate::service::plans::Base;
use crate::store::changes::Change;
use crate::store::{reviews, watches};

/// A change's spec, the applied spec it is judged against, and the rules that result.
pub(crate) struct Judged {
    pub spec: EnvironmentSpec,
    pub base: Base,
    /// The rules, the cost policy's verdict included.
    pub policy: Policy,
    /// What the change does to the monthly cost (`None`: it could not be computed).
    pub cost: Option<ChangeCostReport>,
}

crate::service::handle!(
    /// The rules a change is judged by.
    Gates
);

impl Gates<'_> {
    /// The rules that judge `change`; `None` when its spec cannot be read (it is invalid).
    pub(crate) async fn judge(&self, change: &Change) -> ServiceResult<Option<Judged>> {
        let specs = self
            .plans()
            .specs_at(
                &change.environment,
                &change.commit.sha,
                change.base_commit.clone(),
            )
            .await;
        match specs {
            Ok((spec, base)) => {
                let mut policy = policy::judge(base.applied(), &spec, &self.settings.policy);
                if change.kind == ChangeKind::Revert {
                    let mut conn = self.store.pool().acquire().await?;
                    if watches::recorded_revert(&mut conn, change.id).await? {
                        policy::automatic_revert(&mut policy);
                    }
                }
                let cost = match self
                    .cost()
                    .change_cost(&spec, base.spec(), &policy.cost)
                    .await
                {
                    Ok(c) => {
                        domain::cost::apply_verdict(&mut policy, &c.verdict);
                        Some(c)
                    }
                    Err(ServiceError::Internal(e)) => return Err(ServiceError::Internal(e)),
                    Err(e) => {
                        // A limit that cannot be checked never lets a change through.
                        let limited = policy.cost.max_monthly.is_some()
                            || policy.cost.extra_approval_above.is_some();
                        if limited {
                            policy.cost_blocked =
                                Some(format!("its cost cannot be computed now: {e}"));
                        }
                        None
                    }
                };
                Ok(Some(Judged {
                    spec,
                    base,
                    policy,
                    cost,
                }))
            }
            Err(ServiceError::Internal(e)) => Err(ServiceError::Internal(e)),
            Err(_) => Ok(None),
        }
    }

    /// The reviews of a change and the approvals that count for `plan_hash` now, under `policy`.
    pub(crate) async fn approvals_of(
        &self,
        conn: &mut sqlx::SqliteConnection,
        change_id: ChangeId,
        policy: &Policy,
        plan_hash: Option<&str>,
    ) -> ServiceResult<Approvals> {
        let now = Utc::now();
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
                created_at: r.created_at,
                voided_at: r.voided_at,
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
        now: Utc::now(),
    }
}
