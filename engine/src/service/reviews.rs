//! Reviews: approvals pinned to the plan they approved, rejections with a reason, comments;
//! and what each caller may do with a change now.

use domain::approval::{self, Approvals, ChangeActions, Verdict};
use domain::change::{ChangeId, ChangeStatus};
use domain::job::JobKind;
use domain::lifecycle::Event;
use domain::policy::Policy;
use domain::Role;
use serde_json::json;

use crate::auth::{Caller, RequestMeta};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::jobs::worker::Waker;
use crate::jobs::{self, Job};
use crate::service::judge::context;
use crate::service::judge::Judge;
use crate::service::notify::Notifications;
use crate::service::spec_reads::Specs;
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit, Change};
use crate::store::reviews::{self, NewReview};
use crate::store::Store;

/// The longest comment or reason kept.
const MAX_COMMENT: usize = 2000;

fn comment_text(
    field: &'static str,
    text: Option<&str>,
    required: bool,
) -> ServiceResult<Option<String>> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    match text {
        None if required => Err(ServiceError::invalid(field, "give a reason")),
        Some(t) if t.chars().count() > MAX_COMMENT => Err(ServiceError::invalid(
            field,
            format!("at most {MAX_COMMENT} characters"),
        )),
        t => Ok(t.map(str::to_owned)),
    }
}

/// The change `id`, read inside the caller's (write) transaction.
async fn change_in(tx: &mut crate::store::Conn, id: ChangeId) -> ServiceResult<Change> {
    changes::get(tx, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("there is no change {id}")))
}

/// Approvals, rejections and comments.
#[derive(Clone, Copy)]
pub struct Reviews<'a> {
    pub(crate) store: &'a Store,
    pub(crate) specs: Specs<'a>,
    pub(crate) judge: Judge<'a>,
    pub(crate) notifications: Notifications<'a>,
    pub(crate) jobs_waker: &'a Waker,
    pub(crate) clock: &'a dyn Clock,
}

impl Reviews<'_> {
    /// Approvals, what the caller may do and the change windows in words, for the change page,
    /// under the rules that judge the change (`None`: its spec cannot be read). The error
    /// budget is not read for a page: the apply checks it.
    pub(crate) async fn review_view(
        &self,
        caller: &Caller,
        conn: &mut crate::store::Conn,
        change: &Change,
        policy: Option<&Policy>,
    ) -> ServiceResult<(Option<Approvals>, Option<ChangeActions>, String)> {
        let Some(policy) = policy else {
            return Ok((None, None, String::new()));
        };
        let hash = change.current_plan().map(|(h, _)| h);
        let approvals = self
            .judge
            .approvals_of(conn, change.id, policy, hash)
            .await?;
        let actions = caller.principal().map(|_| {
            approval::actions(&context(
                caller,
                change,
                &approvals,
                policy,
                None,
                self.clock.now(),
            ))
        });
        Ok((Some(approvals), actions, policy.windows.text()))
    }

    /// Approves the change's current plan.
    pub async fn approve(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: ChangeId,
        comment: Option<&str>,
    ) -> ServiceResult<()> {
        caller.require(Role::Approver)?;
        let Some(p) = caller.principal() else {
            return Err(ServiceError::Denied("only people approve changes".into()));
        };
        let comment = comment_text("comment", comment, false)?;
        let change = self.specs.change(id).await?;
        let judged = self.judge.judge(&change).await?.ok_or_else(|| {
            ServiceError::Conflict(format!(
                "change {id} cannot be approved: its spec has errors"
            ))
        })?;
        let policy = &judged.policy;
        let now = self.clock.now_text();
        let mut tx = self.store.begin_write().await?;
        // Read again under the write lock: two approvals at once count once each, and the
        // approval pins the plan stored now.
        let change = change_in(&mut tx, id).await?;
        let hash = change.current_plan().map(|(h, _)| h.to_owned());
        let approvals = self
            .judge
            .approvals_of(&mut tx, id, policy, hash.as_deref())
            .await?;
        approval::may_approve(&context(
            caller,
            &change,
            &approvals,
            policy,
            None,
            self.clock.now(),
        ))?;
        let counted = approvals.counted + 1;
        let required = policy.required_approvals;
        let complete = counted >= usize::from(required);
        reviews::insert(
            &mut tx,
            NewReview {
                change_id: id,
                user_id: p.user_id,
                user_name: p.name.as_str(),
                verdict: Verdict::Approve,
                plan_hash: hash.as_deref(),
                comment: comment.as_deref(),
            },
            &now,
        )
        .await?;
        changes::transition(
            &mut tx,
            &change,
            Event::Approve { complete },
            None,
            Audit {
                actor: caller.actor(),
                meta,
                detail: json!({
                    "plan_hash": hash,
                    "comment": comment,
                    "approvals": counted,
                    "required": required,
                    "policy_change": policy.is_policy_change(),
                }),
            },
            &now,
        )
        .await?;
        let subject = first_line(&change.commit.message);
        let text = if complete {
            format!(
                "change #{id} ({}, {subject}) is approved ({counted} of {required}); last approval by {}.{}",
                change.environment,
                p.name,
                self.notifications.change_link(id)
            )
        } else {
            format!(
                "{} approved change #{id} ({}, {subject}): {counted} of {required} approvals.{}",
                p.name,
                change.environment,
                self.notifications.change_link(id)
            )
        };
        self.notifications
            .queue_notification(
                &mut tx,
                "approved",
                Some(&change.environment),
                Some(&change),
                &text,
            )
            .await?;
        // The approval that completes a change of an auto-apply environment asks for its apply
        // in the same transaction: a process that dies as it answers still applies it.
        if complete && judged.applies_once_approved() {
            let job = Job::AutoApply {
                change: id,
                environment: change.environment.clone(),
                reason: None,
            };
            let tries = JobKind::AutoApply.retry().attempts;
            jobs::enqueue(&mut tx, &job, tries, p.name.as_str(), self.clock.now()).await?;
        }
        tx.commit().await?;
        self.jobs_waker.wake();
        Ok(())
    }

    /// Rejects the change with a reason; it is over.
    pub async fn reject(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: ChangeId,
        reason: Option<&str>,
    ) -> ServiceResult<()> {
        caller.require(Role::Approver)?;
        let Some(p) = caller.principal() else {
            return Err(ServiceError::Denied("only people reject changes".into()));
        };
        let reason = comment_text("reason", reason, true)?;
        let now = self.clock.now_text();
        let mut tx = self.store.begin_write().await?;
        let change = change_in(&mut tx, id).await?;
        reviews::insert(
            &mut tx,
            NewReview {
                change_id: id,
                user_id: p.user_id,
                user_name: p.name.as_str(),
                verdict: Verdict::Reject,
                plan_hash: change.plan_hash.as_deref(),
                comment: reason.as_deref(),
            },
            &now,
        )
        .await?;
        changes::transition(
            &mut tx,
            &change,
            Event::Reject,
            None,
            Audit {
                actor: caller.actor(),
                meta,
                detail: json!({ "reason": reason }),
            },
            &now,
        )
        .await?;
        let text = format!(
            "{} rejected change #{id} ({}, {}): {}{}",
            p.name,
            change.environment,
            first_line(&change.commit.message),
            reason.as_deref().unwrap_or_default(),
            self.notifications.change_link(id)
        );
        self.notifications
            .queue_notification(
                &mut tx,
                "rejected",
                Some(&change.environment),
                Some(&change),
                &text,
            )
            .await?;
        tx.commit().await?;
        self.jobs_waker.wake();
        Ok(())
    }

    /// Adds a comment to a change.
    pub async fn comment(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: ChangeId,
        text: Option<&str>,
    ) -> ServiceResult<()> {
        caller.require(Role::Viewer)?;
        let Some(p) = caller.principal() else {
            return Err(ServiceError::Denied("only people review changes".into()));
        };
        let text = comment_text("comment", text, true)?;
        let now = self.clock.now_text();
        let mut tx = self.store.begin_write().await?;
        let change = change_in(&mut tx, id).await?;
        reviews::insert(
            &mut tx,
            NewReview {
                change_id: id,
                user_id: p.user_id,
                user_name: p.name.as_str(),
                verdict: Verdict::Comment,
                plan_hash: None,
                comment: text.as_deref(),
            },
            &now,
        )
        .await?;
        let target = id.to_string();
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action: "change.commented",
                environment: Some(&change.environment),
                target: Some(&target),
                detail: json!({ "comment": text }),
                meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes the caller could approve now, newest first: "waiting for you".
    pub async fn waiting_for(
        &self,
        caller: &Caller,
    ) -> ServiceResult<Vec<domain::change::ChangeSummary>> {
        caller.require(Role::Viewer)?;
        let Some(p) = caller.principal() else {
            return Ok(Vec::new());
        };
        if p.role < Role::Approver {
            return Ok(Vec::new());
        }
        let ids = {
            let mut conn = self.store.pool().acquire().await?;
            changes::ids_in(&mut conn, ChangeStatus::Pending, 50).await?
        };
        let mut out = Vec::new();
        for id in ids {
            let change = self.specs.change(id).await?;
            let policy = self.judge.judge(&change).await?.map(|j| j.policy);
            let mut conn = self.store.pool().acquire().await?;
            let (_, actions, _) = self
                .review_view(caller, &mut conn, &change, policy.as_ref())
                .await?;
            if actions.is_some_and(|a| a.approve.allowed()) {
                out.push(change.summary());
            }
        }
        Ok(out)
    }
}

pub(crate) fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    format!("\"{line}\"")
}
