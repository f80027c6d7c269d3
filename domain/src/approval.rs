//! Four-eyes approvals and the gates before an apply, as pure rules: who may approve, reject
//! or apply a change now, and why not, in a sentence the page shows next to the missing button.
//! The same functions decide the page's buttons and the request itself.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::commit::Person;
use crate::lifecycle::{transition, ChangeStatus, Event, Refusal};
use crate::policy::Windows;
use crate::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
    Comment,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
            Verdict::Comment => "comment",
        }
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "approve" => Ok(Verdict::Approve),
            "reject" => Ok(Verdict::Reject),
            "comment" => Ok(Verdict::Comment),
            _ => Err(format!("unknown verdict `{s}`")),
        }
    }
}

/// An approval, rejection or comment on a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: i64,
    pub user: String,
    pub verdict: Verdict,
    /// For approvals: the plan approved.
    pub plan_hash: Option<String>,
    pub comment: Option<String>,
    #[serde(with = "crate::time::stored")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::time::stored::option", default)]
    pub voided_at: Option<chrono::DateTime<chrono::Utc>>,
    pub void_reason: Option<String>,
    /// For approvals: why it does not count now (`None`: it counts).
    #[serde(default)]
    pub not_counted: Option<String>,
}

/// Whether an approval counts for the plan `plan_hash` at `now`; `Err` says why not.
pub fn approval_counts(
    r: &Review,
    plan_hash: Option<&str>,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<(), String> {
    if r.verdict != Verdict::Approve {
        return Err("not an approval".into());
    }
    if let Some(why) = &r.void_reason {
        return Err(format!("voided: {why}"));
    }
    if r.plan_hash.as_deref() != plan_hash {
        return Err("it approved an earlier plan".into());
    }
    if now - r.created_at > lifetime {
        return Err(format!(
            "expired: approvals last {} hours",
            lifetime.num_hours()
        ));
    }
    Ok(())
}

/// The review state of a change as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvals {
    /// Approvals the environment requires (0: none).
    pub required: u8,
    /// Approvals that count for the current plan.
    pub counted: usize,
    pub allow_self_approval: bool,
    pub reviews: Vec<Review>,
}

impl Approvals {
    pub fn complete(&self) -> bool {
        self.counted >= usize::from(self.required)
    }
}

/// Allowed, or refused with a sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Permission {
    Allowed,
    Denied(String),
}

impl Permission {
    pub fn allowed(&self) -> bool {
        matches!(self, Permission::Allowed)
    }

    pub fn from(r: Result<(), Refusal>) -> Self {
        match r {
            Ok(()) => Permission::Allowed,
            Err(why) => Permission::Denied(why.message),
        }
    }
}

/// What the caller may do with a change now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeActions {
    pub approve: Permission,
    pub reject: Permission,
    pub apply: Permission,
    /// Applying now needs `emergency` with a reason (outside every change window, or the error
    /// budget is spent).
    pub apply_needs_emergency: bool,
}

/// Everything the gates look at: plain facts about the caller, the change and its rules (the
/// rules as [`crate::policy::judge`] decided them, never the change's own).
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub role: Role,
    pub user: &'a str,
    pub email: Option<&'a str>,
    pub environment: &'a str,
    pub status: ChangeStatus,
    /// Everyone who wrote or committed a commit of the change.
    pub authors: &'a [Person],
    /// The change's current plan: its hash and whether it has errors (`None`: no plan).
    pub plan: Option<(&'a str, bool)>,
    pub approvals: &'a Approvals,
    pub windows: &'a Windows,
    /// Why the error budget allows only emergency applies now (`None`: it does not, or it is
    /// not known).
    pub budget_spent: Option<&'a str>,
    /// Why the cost policy blocks the change (`None`: it does not).
    pub cost_blocked: Option<&'a str>,
    /// Why the cost policy lets it be applied only as an emergency (`None`: no such hold).
    pub cost_unchecked: Option<&'a str>,
    pub now: DateTime<Utc>,
}

fn within_cost(cx: &Context<'_>, verb: &str) -> Result<(), Refusal> {
    match cx.cost_blocked {
        Some(why) => Err(Refusal::conflict(format!(
            "It cannot be {verb}: the cost policy blocks it. {why}"
        ))),
        None => Ok(()),
    }
}

fn with_plan(cx: &Context<'_>, verb: &str) -> Result<(), Refusal> {
    match cx.plan {
        None => Err(Refusal::conflict(format!(
            "It cannot be {verb}: it has no plan against live AWS yet."
        ))),
        Some((_, true)) => Err(Refusal::conflict(format!(
            "It cannot be {verb}: its plan has errors."
        ))),
        Some(_) => Ok(()),
    }
}

pub fn may_approve(cx: &Context<'_>) -> Result<(), Refusal> {
    if cx.role < Role::Approver {
        return Err(Refusal::forbidden(format!(
            "Approving needs the approver role (you are {}).",
            cx.role
        )));
    }
    transition(cx.status, Event::Approve { complete: false })?;
    with_plan(cx, "approved")?;
    within_cost(cx, "approved")?;
    if cx.approvals.required == 0 {
        return Err(Refusal::conflict("This environment needs no approvals."));
    }
    if !cx.approvals.allow_self_approval {
        let Some(email) = cx.email.filter(|e| !e.trim().is_empty()) else {
            return Err(Refusal::forbidden(
                "Your account has no e-mail address, so tierdeck cannot tell whether you wrote this change: an admin can set one on the Admin page or with `tierdeck user set-email`.",
            ));
        };
        if cx
            .authors
            .iter()
            .any(|a| a.email.eq_ignore_ascii_case(email.trim()))
        {
            return Err(Refusal::forbidden(
                "You wrote this change (a commit of it is yours); this environment does not let authors approve their own changes.",
            ));
        }
    }
    let counted_already = cx
        .approvals
        .reviews
        .iter()
        .any(|r| r.verdict == Verdict::Approve && r.user == cx.user && r.not_counted.is_none());
    if counted_already {
        return Err(Refusal::conflict("You approved this change already."));
    }
    Ok(())
}

pub fn may_reject(cx: &Context<'_>) -> Result<(), Refusal> {
    if cx.role < Role::Approver {
        return Err(Refusal::forbidden(format!(
            "Rejecting needs the approver role (you are {}).",
            cx.role
        )));
    }
    transition(cx.status, Event::Reject).map(|_| ())
}

/// Whether the caller may apply now. `Ok(Some(why))`: only as an emergency, with a reason.
pub fn may_apply(cx: &Context<'_>) -> Result<Option<String>, Refusal> {
    if cx.role < Role::Operator {
        return Err(Refusal::forbidden(format!(
            "Applying needs the operator role (you are {}).",
            cx.role
        )));
    }
    transition(cx.status, Event::StartApply)?;
    with_plan(cx, "applied")?;
    within_cost(cx, "applied")?;
    if !cx.approvals.complete() {
        return Err(Refusal::conflict(format!(
            "It needs {} approval{} of its current plan; it has {}.",
            cx.approvals.required,
            if cx.approvals.required == 1 { "" } else { "s" },
            cx.approvals.counted
        )));
    }
    let mut emergency = Vec::new();
    if let Some(why) = cx.budget_spent {
        emergency.push(why.to_owned());
    }
    if let Some(why) = cx.cost_unchecked {
        emergency.push(why.to_owned());
    }
    if !cx.windows.contain(cx.now) {
        emergency.push(format!(
            "it is outside the change windows of {} ({}): an operator may apply it as an emergency, with a reason",
            cx.environment,
            cx.windows.text()
        ));
    }
    Ok((!emergency.is_empty()).then(|| emergency.join("; ")))
}

/// The facts a revert looks at: who asks, the change, and what its environment runs now.
#[derive(Debug, Clone)]
pub struct RevertFacts<'a> {
    pub role: Role,
    pub id: i64,
    pub environment: &'a str,
    pub status: ChangeStatus,
    pub commit: &'a str,
    /// The commit applied before it (`None`: it was the first apply).
    pub base_commit: Option<&'a str>,
    pub last_applied: Option<&'a str>,
}

/// Whether a revert of the change may be recorded: by an operator, of an applied (or
/// degraded) change that is what its environment runs now, to the different commit applied
/// before it.
pub fn may_revert(f: &RevertFacts<'_>) -> Result<(), Refusal> {
    let short = crate::commit::short_sha;
    if f.role < Role::Operator {
        return Err(Refusal::forbidden(format!(
            "Reverting needs the operator role (you are {}).",
            f.role
        )));
    }
    if !matches!(f.status, ChangeStatus::Applied | ChangeStatus::Degraded) {
        return Err(Refusal::conflict(format!(
            "Change {} is {}: only an applied change can be reverted.",
            f.id, f.status
        )));
    }
    if f.last_applied != Some(f.commit) {
        return Err(Refusal::conflict(format!(
            "{} runs {} now, applied after change {}: revert the latest applied change instead.",
            f.environment,
            f.last_applied.map(short).unwrap_or("nothing"),
            f.id
        )));
    }
    match f.base_commit {
        None => Err(Refusal::conflict(format!(
            "Change {} was the first apply of {}: there is no earlier applied commit to go back to.",
            f.id, f.environment
        ))),
        Some(b) if b == f.commit => Err(Refusal::conflict(format!(
            "Change {} applied {} again: there is no earlier commit to go back to.",
            f.id,
            short(b)
        ))),
        Some(_) => Ok(()),
    }
}

/// An emergency as a request asks for it: `asked`, with a reason, or not at all. A reason
/// without `asked` is no emergency.
pub fn emergency_request(asked: bool, reason: Option<&str>) -> Result<Option<&str>, Refusal> {
    match (asked, reason.map(str::trim)) {
        (false, _) => Ok(None),
        (true, Some(r)) if !r.is_empty() => Ok(Some(r)),
        (true, _) => Err(Refusal::invalid(
            "reason",
            "an emergency apply needs a reason",
        )),
    }
}

/// What `cx`'s caller may do now.
pub fn actions(cx: &Context<'_>) -> ChangeActions {
    let apply = may_apply(cx);
    ChangeActions {
        approve: Permission::from(may_approve(cx)),
        reject: Permission::from(may_reject(cx)),
        apply_needs_emergency: matches!(apply, Ok(Some(_))),
        apply: Permission::from(apply.map(|_| ())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::RefusalKind;

    fn review(user: &str, hash: &str, at: DateTime<Utc>) -> Review {
        Review {
            id: 1,
            user: user.into(),
            verdict: Verdict::Approve,
            plan_hash: Some(hash.into()),
            comment: None,
            created_at: at,
            voided_at: None,
            void_reason: None,
            not_counted: None,
        }
    }

    fn approvals(required: u8, reviews: Vec<Review>, counted: usize) -> Approvals {
        Approvals {
            required,
            counted,
            allow_self_approval: false,
            reviews,
        }
    }

    fn authors() -> Vec<Person> {
        vec![
            Person {
                name: "Park Sejin".into(),
                email: "sejin.park@petclinic.example".into(),
            },
            Person {
                name: "Seung Lo".into(),
                email: "seung.lo@petclinic.example".into(),
            },
        ]
    }

    fn cx<'a>(
        role: Role,
        email: &'a str,
        a: &'a Approvals,
        windows: &'a Windows,
        authors: &'a [Person],
    ) -> Context<'a> {
        Context {
            role,
            user: "mina",
            email: Some(email),
            environment: "prod",
            status: ChangeStatus::Pending,
            authors,
            plan: Some(("h1", false)),
            approvals: a,
            windows,
            budget_spent: None,
            cost_blocked: None,
            cost_unchecked: None,
            // A Wednesday, 11:00 in Seoul.
            now: "2026-11-25T02:00:00Z".parse().unwrap(),
        }
    }

    fn business_hours() -> Windows {
        Windows(vec![crate::spec::fixtures::business_hours()])
    }

    #[test]
    fn approvals_count_for_the_plan_they_approved_until_they_expire() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let day = Duration::hours(24);
        let r = review("mina", "h1", now - Duration::hours(1));
        assert_eq!(approval_counts(&r, Some("h1"), now, day), Ok(()));
        assert_eq!(
            approval_counts(&r, Some("h2"), now, day),
            Err("it approved an earlier plan".into())
        );
        let old = review("mina", "h1", now - Duration::hours(25));
        assert!(approval_counts(&old, Some("h1"), now, day)
            .unwrap_err()
            .starts_with("expired"));
        let mut voided = r.clone();
        voided.void_reason = Some("the live state changed".into());
        assert!(approval_counts(&voided, Some("h1"), now, day)
            .unwrap_err()
            .starts_with("voided"));
    }

    #[test]
    fn authors_viewers_and_second_approvals_are_refused_with_a_reason() {
        let none = approvals(2, vec![], 0);
        let w = business_hours();
        let by = authors();
        assert_eq!(
            may_approve(&cx(Role::Approver, "mina@example.com", &none, &w, &by)),
            Ok(())
        );
        let viewer = may_approve(&cx(Role::Viewer, "mina@example.com", &none, &w, &by));
        assert!(viewer
            .as_ref()
            .unwrap_err()
            .message
            .contains("approver role"));
        assert_eq!(viewer.unwrap_err().kind, RefusalKind::Forbidden);
        // Any author of the range, whatever the case of the address.
        for email in ["Sejin.Park@petclinic.example", "seung.lo@petclinic.example"] {
            let own = may_approve(&cx(Role::Admin, email, &none, &w, &by)).unwrap_err();
            assert!(own.message.contains("You wrote this change"), "{own:?}");
            assert_eq!(own.kind, RefusalKind::Forbidden);
        }
        let mut no_email = cx(Role::Approver, "", &none, &w, &by);
        let refused = may_approve(&no_email).unwrap_err();
        assert!(refused.message.contains("no e-mail address"), "{refused:?}");
        assert_eq!(refused.kind, RefusalKind::Forbidden);
        no_email.email = None;
        assert!(may_approve(&no_email).is_err());
        let mut own = none.clone();
        own.allow_self_approval = true;
        assert_eq!(
            may_approve(&cx(
                Role::Admin,
                "sejin.park@petclinic.example",
                &own,
                &w,
                &by
            )),
            Ok(())
        );
        let twice = approvals(2, vec![review("mina", "h1", Utc::now())], 1);
        assert_eq!(
            may_approve(&cx(Role::Approver, "mina@example.com", &twice, &w, &by)),
            Err(Refusal::conflict("You approved this change already."))
        );
        // An approval that no longer counts (expired, voided) may be given again.
        let mut stale = twice.clone();
        stale.reviews[0].not_counted = Some("expired: approvals last 24 hours".into());
        assert_eq!(
            may_approve(&cx(Role::Approver, "mina@example.com", &stale, &w, &by)),
            Ok(())
        );
        let mut blocked = cx(Role::Approver, "mina@example.com", &none, &w, &by);
        blocked.status = ChangeStatus::Blocked;
        let refused = may_approve(&blocked).unwrap_err();
        assert!(refused.message.contains("guardrail"));
        assert_eq!(refused.kind, RefusalKind::Conflict);
        assert_eq!(may_reject(&blocked), Ok(()));
        // What is left of a failed apply is approved like a new plan.
        blocked.status = ChangeStatus::Failed;
        assert_eq!(may_approve(&blocked), Ok(()));
        blocked.plan = None;
        assert!(may_approve(&blocked)
            .unwrap_err()
            .message
            .contains("no plan against live AWS"));
    }

    #[test]
    fn an_apply_needs_the_approvals_and_outside_the_windows_an_emergency() {
        let w = business_hours();
        let by = authors();
        let missing = approvals(2, vec![], 1);
        assert_eq!(
            may_apply(&cx(Role::Operator, "o@example.com", &missing, &w, &by)),
            Err(Refusal::conflict(
                "It needs 2 approvals of its current plan; it has 1."
            ))
        );
        let done = approvals(2, vec![], 2);
        assert_eq!(
            may_apply(&cx(Role::Approver, "o@example.com", &done, &w, &by))
                .unwrap_err()
                .kind,
            RefusalKind::Forbidden
        );
        assert_eq!(
            may_apply(&cx(Role::Operator, "o@example.com", &done, &w, &by)),
            Ok(None)
        );
        let mut night = cx(Role::Operator, "o@example.com", &done, &w, &by);
        night.now = "2026-11-25T12:00:00Z".parse().unwrap(); // 21:00 in Seoul
        let why = may_apply(&night).unwrap().unwrap();
        assert!(why.contains("outside the change windows of prod"), "{why}");
        let a = actions(&night);
        assert!(a.apply.allowed() && a.apply_needs_emergency);
        // A spent error budget makes it an emergency inside the windows too.
        let mut spent = cx(Role::Operator, "o@example.com", &done, &w, &by);
        spent.budget_spent = Some("the availability error budget of prod is spent");
        assert_eq!(
            may_apply(&spent),
            Ok(Some(
                "the availability error budget of prod is spent".into()
            ))
        );
        // So does a cost that cannot be checked for a change that may raise it; approving is
        // not held back (an emergency needs its approvals first).
        let mut unpriced = cx(Role::Operator, "o@example.com", &done, &w, &by);
        unpriced.cost_unchecked = Some("environment.cost.max_monthly ($900.00) cannot be checked");
        assert_eq!(
            may_apply(&unpriced),
            Ok(Some(
                "environment.cost.max_monthly ($900.00) cannot be checked".into()
            ))
        );
        assert_eq!(emergency_request(false, Some("why")), Ok(None));
        assert_eq!(emergency_request(true, Some(" why ")), Ok(Some("why")));
        assert_eq!(
            emergency_request(true, Some("  ")).unwrap_err().kind,
            RefusalKind::Invalid { field: "reason" }
        );
        spent.status = ChangeStatus::Applying;
        assert_eq!(
            may_apply(&spent).unwrap_err().message,
            "It cannot be applied: it is being applied now."
        );
    }
}
