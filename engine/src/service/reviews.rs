//! Reviews: approvals pinned to the plan they approved, rejections with a reason, comments;
//! and what each caller may do with a change now.

use chrono::Utc;
use domain::approval::{self, Approvals, ChangeActions, Context, Review, Verdict};
use domain::change::{ChangeStatus, PlanView};
use domain::spec::EnvironmentSettings;
use domain::Role;
use serde_json::json;

use crate::auth::{Caller, RequestMeta};
use crate::error::{ServiceError, ServiceResult};
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, ChangeRow};
use crate::store::now_text;
use crate::store::reviews::{self, NewReview};
use crate::Engine;

/// The longest comment or reason kept.
const MAX_COMMENT: usize = 2000;

/// The hash of a change's stored plan and whether the plan has errors; `None` without a plan.
pub(crate) fn stored_plan(row: &ChangeRow) -> Option<(String, bool)> {
    let view: PlanView = serde_json::from_str(row.plan.as_deref()?).ok()?;
    match view {
        PlanView::Planned { plan, .. } => Some((plan.hash, !plan.errors.is_empty())),
        PlanView::Unavailable { .. } => None,
    }
}

fn status_of(row: &ChangeRow) -> ServiceResult<ChangeStatus> {
    row.status
        .parse()
        .map_err(|e: String| ServiceError::Internal(anyhow::anyhow!("change {}: {e}", row.id)))
}

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

/// A review to write, with the audit event that records it.
struct Recorded<'a> {
    verdict: Verdict,
    plan_hash: Option<&'a str>,
    comment: Option<&'a str>,
    action: &'a str,
    detail: serde_json::Value,
}

/// Writes a review of `row` by `p` and its audit event in the caller's transaction.
async fn record(
    tx: &mut sqlx::SqliteConnection,
    caller: &Caller,
    meta: &RequestMeta,
    row: &ChangeRow,
    r: Recorded<'_>,
    now: &str,
) -> ServiceResult<()> {
    let Some(p) = caller.principal() else {
        return Err(ServiceError::Denied("only people review changes".into()));
    };
    reviews::insert(
        tx,
        NewReview {
            change_id: row.id,
            user_id: p.user_id,
            user_name: p.name.as_str(),
            verdict: r.verdict.as_str(),
            plan_hash: r.plan_hash,
            comment: r.comment,
        },
        now,
    )
    .await?;
    let target = row.id.to_string();
    append(
        tx,
        NewEvent {
            actor: caller.actor(),
            action: r.action,
            environment: Some(&row.environment),
            target: Some(&target),
            detail: r.detail,
            meta,
        },
    )
    .await?;
    Ok(())
}

/// What the approval rules look at, for `p` and the change `row`.
fn context<'a>(
    p: &'a crate::auth::Principal,
    row: &ChangeRow,
    author_email: &'a str,
    plan: Option<&'a (String, bool)>,
    approvals: &'a Approvals,
    settings: &'a EnvironmentSettings,
) -> Context<'a> {
    Context {
        role: p.role,
        user: p.name.as_str(),
        email: p.email.as_deref(),
        status: status_of(row).unwrap_or(ChangeStatus::Invalid),
        author_email,
        plan: plan.map(|(h, e)| (h.as_str(), *e)),
        approvals,
        windows: &settings.change_windows,
        now: Utc::now(),
    }
}

/// The change `id`, read inside the caller's (write) transaction.
async fn row_in(tx: &mut sqlx::SqliteConnection, id: i64) -> ServiceResult<ChangeRow> {
    changes::get(tx, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("there is no change {id}")))
}

impl Engine {
    /// The environment settings of the spec a change applies; `None` when it cannot be read.
    pub(crate) async fn change_settings(
        &self,
        row: &ChangeRow,
    ) -> ServiceResult<Option<EnvironmentSettings>> {
        match self.specs_at(&row.environment, &row.commit_sha, None).await {
            Ok((spec, _)) => Ok(Some(spec.environment)),
            Err(ServiceError::Internal(e)) => Err(ServiceError::Internal(e)),
            Err(_) => Ok(None),
        }
    }

    /// The reviews of a change and the approvals that count for `plan_hash` now.
    pub(crate) async fn approvals_of(
        &self,
        conn: &mut sqlx::SqliteConnection,
        change_id: i64,
        settings: &EnvironmentSettings,
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
            required: settings.approvals.required,
            counted,
            allow_self_approval: settings.approvals.allow_self_approval,
            reviews: out,
        })
    }

    /// Approvals, what the caller may do and the change windows, for the change page, from the
    /// settings of the change's spec (`None` when it cannot be read).
    pub(crate) async fn review_view(
        &self,
        caller: &Caller,
        conn: &mut sqlx::SqliteConnection,
        row: &ChangeRow,
        settings: Option<&EnvironmentSettings>,
    ) -> ServiceResult<(Option<Approvals>, Option<ChangeActions>, String)> {
        let Some(settings) = settings else {
            return Ok((None, None, String::new()));
        };
        let plan = stored_plan(row);
        let hash = plan.as_ref().map(|(h, _)| h.as_str());
        let approvals = self.approvals_of(conn, row.id, settings, hash).await?;
        let actions = caller.principal().map(|p| {
            approval::actions(&context(
                p,
                row,
                &row.author_email,
                plan.as_ref(),
                &approvals,
                settings,
            ))
        });
        Ok((
            Some(approvals),
            actions,
            approval::windows_text(&settings.change_windows),
        ))
    }

    /// Approves the change's current plan.
    pub async fn approve(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: i64,
        comment: Option<&str>,
    ) -> ServiceResult<()> {
        caller.require(Role::Approver)?;
        let Some(p) = caller.principal() else {
            return Err(ServiceError::Denied("only people approve changes".into()));
        };
        let comment = comment_text("comment", comment, false)?;
        let row = self.change_row(id).await?;
        let settings = self.change_settings(&row).await?.ok_or_else(|| {
            ServiceError::Conflict(format!(
                "change {id} cannot be approved: its spec has errors"
            ))
        })?;
        let now = now_text();
        let mut tx = self.store.begin_write().await?;
        // Read again under the write lock: two approvals at once count once each, and the
        // approval pins the plan stored now.
        let row = row_in(&mut tx, id).await?;
        let plan = stored_plan(&row);
        let hash = plan.as_ref().map(|(h, _)| h.as_str());
        let approvals = self.approvals_of(&mut tx, id, &settings, hash).await?;
        let cx = context(
            p,
            &row,
            &row.author_email,
            plan.as_ref(),
            &approvals,
            &settings,
        );
        if let Err(why) = approval::may_approve(&cx) {
            return Err(if why.starts_with("You wrote") {
                ServiceError::Denied(why)
            } else {
                ServiceError::Conflict(why)
            });
        }
        let counted = approvals.counted + 1;
        let complete = counted >= usize::from(settings.approvals.required);
        if complete {
            changes::set_status(&mut tx, id, ChangeStatus::Approved.as_str(), &now).await?;
        }
        record(
            &mut tx,
            caller,
            meta,
            &row,
            Recorded {
                verdict: Verdict::Approve,
                plan_hash: hash,
                comment: comment.as_deref(),
                action: "change.approved",
                detail: json!({
                    "plan_hash": hash,
                    "comment": comment,
                    "approvals": counted,
                    "required": settings.approvals.required,
                }),
            },
            &now,
        )
        .await?;
        let text = if complete {
            format!(
                "change #{id} ({}, {}) is approved ({counted} of {}); last approval by {}.{}",
                row.environment,
                first_line(&row.message),
                settings.approvals.required,
                p.name,
                self.change_link(id)
            )
        } else {
            format!(
                "{} approved change #{id} ({}, {}): {counted} of {} approvals.{}",
                p.name,
                row.environment,
                first_line(&row.message),
                settings.approvals.required,
                self.change_link(id)
            )
        };
        self.queue_notification(&mut tx, "approved", Some(&row.environment), Some(id), &text)
            .await?;
        tx.commit().await?;
        self.wake_notifier();
        if complete && settings.auto_apply {
            self.spawn_auto_apply(id);
        }
        Ok(())
    }

    /// Rejects the change with a reason; it is over.
    pub async fn reject(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: i64,
        reason: Option<&str>,
    ) -> ServiceResult<()> {
        caller.require(Role::Approver)?;
        let Some(p) = caller.principal() else {
            return Err(ServiceError::Denied("only people reject changes".into()));
        };
        let reason = comment_text("reason", reason, true)?;
        let now = now_text();
        let mut tx = self.store.begin_write().await?;
        let row = row_in(&mut tx, id).await?;
        let status = status_of(&row)?;
        if !matches!(
            status,
            ChangeStatus::Pending | ChangeStatus::Approved | ChangeStatus::Blocked
        ) {
            return Err(ServiceError::Conflict(format!(
                "change {id} cannot be rejected: it is {status}"
            )));
        }
        changes::set_status(&mut tx, id, ChangeStatus::Rejected.as_str(), &now).await?;
        record(
            &mut tx,
            caller,
            meta,
            &row,
            Recorded {
                verdict: Verdict::Reject,
                plan_hash: row.plan_hash.as_deref(),
                comment: reason.as_deref(),
                action: "change.rejected",
                detail: json!({ "reason": reason }),
            },
            &now,
        )
        .await?;
        let text = format!(
            "{} rejected change #{id} ({}, {}): {}{}",
            p.name,
            row.environment,
            first_line(&row.message),
            reason.as_deref().unwrap_or_default(),
            self.change_link(id)
        );
        self.queue_notification(&mut tx, "rejected", Some(&row.environment), Some(id), &text)
            .await?;
        tx.commit().await?;
        self.wake_notifier();
        Ok(())
    }

    /// Adds a comment to a change.
    pub async fn comment(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: i64,
        text: Option<&str>,
    ) -> ServiceResult<()> {
        caller.require(Role::Viewer)?;
        let text = comment_text("comment", text, true)?;
        let now = now_text();
        let mut tx = self.store.begin_write().await?;
        let row = row_in(&mut tx, id).await?;
        record(
            &mut tx,
            caller,
            meta,
            &row,
            Recorded {
                verdict: Verdict::Comment,
                plan_hash: None,
                comment: text.as_deref(),
                action: "change.commented",
                detail: json!({ "comment": text }),
            },
            &now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn change_row(&self, id: i64) -> ServiceResult<ChangeRow> {
        let mut conn = self.store.pool().acquire().await?;
        changes::get(&mut conn, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no change {id}")))
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
        let rows = {
            let mut conn = self.store.pool().acquire().await?;
            changes::list(&mut conn, None, Some(ChangeStatus::Pending.as_str()), 50).await?
        };
        let mut out = Vec::new();
        for row in rows {
            let settings = self.change_settings(&row).await?;
            let mut conn = self.store.pool().acquire().await?;
            let (_, actions, _) = self
                .review_view(caller, &mut conn, &row, settings.as_ref())
                .await?;
            if actions.is_some_and(|a| a.approve.allowed()) {
                out.push(super::changes::summary(&row)?);
            }
        }
        Ok(out)
    }
}

pub(crate) fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    format!("\"{line}\"")
}
