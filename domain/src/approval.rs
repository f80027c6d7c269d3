//! Four-eyes approvals and the gates before an apply, as pure rules: who may approve, reject
//! or apply a change now, and why not, in a sentence the page shows next to the missing button.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::change::ChangeStatus;
use crate::spec::{ChangeWindow, Weekday};
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
    pub created_at: String,
    pub voided_at: Option<String>,
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
    let at = DateTime::parse_from_rfc3339(&r.created_at)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "its time cannot be read".to_owned())?;
    if now - at > lifetime {
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

    fn from(r: Result<(), String>) -> Self {
        match r {
            Ok(()) => Permission::Allowed,
            Err(why) => Permission::Denied(why),
        }
    }
}

/// What the caller may do with a change now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeActions {
    pub approve: Permission,
    pub reject: Permission,
    pub apply: Permission,
    /// Applying now needs `emergency` with a reason (outside every change window).
    pub apply_needs_emergency: bool,
}

/// Everything the rules look at.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub role: Role,
    pub user: &'a str,
    pub email: Option<&'a str>,
    pub status: ChangeStatus,
    pub author_email: &'a str,
    /// The change's current plan: its hash and whether it has errors (`None`: no plan).
    pub plan: Option<(&'a str, bool)>,
    pub approvals: &'a Approvals,
    pub windows: &'a [ChangeWindow],
    pub now: DateTime<Utc>,
}

fn reviewable(cx: &Context<'_>) -> Result<(), String> {
    match cx.status {
        ChangeStatus::Pending | ChangeStatus::Approved => {}
        ChangeStatus::Blocked => {
            return Err("it breaks a guardrail; a new commit must fix that first".into())
        }
        ChangeStatus::Invalid => return Err("its spec has errors".into()),
        other => return Err(format!("it is {other}")),
    }
    match cx.plan {
        None => Err("it has no plan against live AWS yet".into()),
        Some((_, true)) => Err("its plan has errors".into()),
        Some(_) => Ok(()),
    }
}

pub fn may_approve(cx: &Context<'_>) -> Result<(), String> {
    if cx.role < Role::Approver {
        return Err(format!(
            "approving needs the approver role (you are {})",
            cx.role
        ));
    }
    reviewable(cx).map_err(|why| format!("It cannot be approved: {why}."))?;
    if cx.approvals.required == 0 {
        return Err("This environment needs no approvals.".into());
    }
    let own = cx
        .email
        .is_some_and(|e| !e.is_empty() && e.eq_ignore_ascii_case(cx.author_email));
    if own && !cx.approvals.allow_self_approval {
        return Err("You wrote this change; this environment does not let authors approve their own changes.".into());
    }
    if cx
        .approvals
        .reviews
        .iter()
        .any(|r| r.verdict == Verdict::Approve && r.user == cx.user && r.void_reason.is_none())
    {
        return Err("You approved this change already.".into());
    }
    Ok(())
}

pub fn may_reject(cx: &Context<'_>) -> Result<(), String> {
    if cx.role < Role::Approver {
        return Err(format!(
            "rejecting needs the approver role (you are {})",
            cx.role
        ));
    }
    match cx.status {
        ChangeStatus::Pending | ChangeStatus::Approved | ChangeStatus::Blocked => Ok(()),
        other => Err(format!("It cannot be rejected: it is {other}.")),
    }
}

/// Whether `now` falls in one of `windows` (each in its own time zone; a window whose end is
/// before its start runs past midnight). No windows: any time.
pub fn in_change_window(windows: &[ChangeWindow], now: DateTime<Utc>) -> bool {
    if windows.is_empty() {
        return true;
    }
    windows.iter().any(|w| {
        let Ok(tz) = chrono_tz::Tz::from_str(&w.timezone) else {
            return false;
        };
        let local = now.with_timezone(&tz);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let today = Weekday::ALL[local.weekday().num_days_from_monday() as usize];
        let yesterday = Weekday::ALL[(local.weekday().num_days_from_monday() as usize + 6) % 7];
        let (start, end) = (w.start.0, w.end.0);
        if start <= end {
            w.days.contains(&today) && (start..end).contains(&minute)
        } else {
            (w.days.contains(&today) && minute >= start)
                || (w.days.contains(&yesterday) && minute < end)
        }
    })
}

/// The windows in words: `mon, tue 10:00–17:00 Asia/Seoul`.
pub fn windows_text(windows: &[ChangeWindow]) -> String {
    windows
        .iter()
        .map(|w| {
            let days: Vec<&str> = w.days.iter().map(|d| d.as_str()).collect();
            format!("{} {}–{} {}", days.join(", "), w.start, w.end, w.timezone)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether the caller may apply now. `Ok(true)`: only as an emergency (outside the windows).
pub fn may_apply(cx: &Context<'_>) -> Result<bool, String> {
    if cx.role < Role::Operator {
        return Err(format!(
            "applying needs the operator role (you are {})",
            cx.role
        ));
    }
    match cx.status {
        ChangeStatus::Pending
        | ChangeStatus::Approved
        | ChangeStatus::Failed
        | ChangeStatus::Interrupted => {}
        ChangeStatus::Applying => return Err("It is being applied now.".into()),
        ChangeStatus::Blocked => {
            return Err("It breaks a guardrail; a new commit must fix that first.".into())
        }
        ChangeStatus::Invalid => return Err("Its spec has errors.".into()),
        other => return Err(format!("It is {other}.")),
    }
    match cx.plan {
        None => return Err("It has no plan against live AWS yet.".into()),
        Some((_, true)) => return Err("Its plan has errors.".into()),
        Some(_) => {}
    }
    if !cx.approvals.complete() {
        return Err(format!(
            "It needs {} approval{} of its current plan; it has {}.",
            cx.approvals.required,
            if cx.approvals.required == 1 { "" } else { "s" },
            cx.approvals.counted
        ));
    }
    Ok(!in_change_window(cx.windows, cx.now))
}

/// What `cx`'s caller may do now.
pub fn actions(cx: &Context<'_>) -> ChangeActions {
    let apply = may_apply(cx);
    ChangeActions {
        approve: Permission::from(may_approve(cx)),
        reject: Permission::from(may_reject(cx)),
        apply_needs_emergency: matches!(apply, Ok(true)),
        apply: Permission::from(apply.map(|_| ())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::TimeOfDay;

    fn review(user: &str, hash: &str, at: DateTime<Utc>) -> Review {
        Review {
            id: 1,
            user: user.into(),
            verdict: Verdict::Approve,
            plan_hash: Some(hash.into()),
            comment: None,
            created_at: at.to_rfc3339(),
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

    fn cx<'a>(
        role: Role,
        email: &'a str,
        a: &'a Approvals,
        windows: &'a [ChangeWindow],
    ) -> Context<'a> {
        Context {
            role,
            user: "mina",
            email: Some(email),
            status: ChangeStatus::Pending,
            author_email: "sejin.park@petclinic.example",
            plan: Some(("h1", false)),
            approvals: a,
            windows,
            // A Wednesday, 11:00 in Seoul.
            now: "2026-11-25T02:00:00Z".parse().unwrap(),
        }
    }

    fn business_hours() -> Vec<ChangeWindow> {
        vec![ChangeWindow {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: TimeOfDay(600),
            end: TimeOfDay(1020),
            timezone: "Asia/Seoul".into(),
        }]
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
        assert_eq!(
            may_approve(&cx(Role::Approver, "mina@example.com", &none, &w)),
            Ok(())
        );
        assert!(
            may_approve(&cx(Role::Viewer, "mina@example.com", &none, &w))
                .unwrap_err()
                .contains("approver role")
        );
        assert!(
            may_approve(&cx(Role::Admin, "Sejin.Park@petclinic.example", &none, &w))
                .unwrap_err()
                .contains("You wrote this change")
        );
        let mut own = none.clone();
        own.allow_self_approval = true;
        assert_eq!(
            may_approve(&cx(Role::Admin, "sejin.park@petclinic.example", &own, &w)),
            Ok(())
        );
        let twice = approvals(2, vec![review("mina", "h1", Utc::now())], 1);
        assert_eq!(
            may_approve(&cx(Role::Approver, "mina@example.com", &twice, &w)),
            Err("You approved this change already.".into())
        );
        let mut blocked = cx(Role::Approver, "mina@example.com", &none, &w);
        blocked.status = ChangeStatus::Blocked;
        assert!(may_approve(&blocked).unwrap_err().contains("guardrail"));
        assert_eq!(may_reject(&blocked), Ok(()));
    }

    #[test]
    fn an_apply_needs_the_approvals_and_outside_the_windows_an_emergency() {
        let w = business_hours();
        let missing = approvals(2, vec![], 1);
        assert_eq!(
            may_apply(&cx(Role::Operator, "o@example.com", &missing, &w)),
            Err("It needs 2 approvals of its current plan; it has 1.".into())
        );
        let done = approvals(2, vec![], 2);
        assert!(may_apply(&cx(Role::Approver, "o@example.com", &done, &w)).is_err());
        assert_eq!(
            may_apply(&cx(Role::Operator, "o@example.com", &done, &w)),
            Ok(false)
        );
        let mut night = cx(Role::Operator, "o@example.com", &done, &w);
        night.now = "2026-11-25T12:00:00Z".parse().unwrap(); // 21:00 in Seoul
        assert_eq!(may_apply(&night), Ok(true));
        let a = actions(&night);
        assert!(a.apply.allowed() && a.apply_needs_emergency);
    }

    #[test]
    fn windows_follow_their_time_zone_and_may_run_past_midnight() {
        let w = business_hours();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert!(in_change_window(&w, at("2026-11-25T01:00:00Z"))); // Wed 10:00 Seoul
        assert!(!in_change_window(&w, at("2026-11-25T08:00:00Z"))); // Wed 17:00 Seoul
        assert!(!in_change_window(&w, at("2026-11-28T02:00:00Z"))); // Sat 11:00 Seoul
        assert!(in_change_window(&[], at("2026-11-28T02:00:00Z")));
        let night = vec![ChangeWindow {
            days: vec![Weekday::Fri],
            start: TimeOfDay(22 * 60),
            end: TimeOfDay(2 * 60),
            timezone: "UTC".into(),
        }];
        assert!(in_change_window(&night, at("2026-11-27T23:00:00Z"))); // Fri 23:00
        assert!(in_change_window(&night, at("2026-11-28T01:00:00Z"))); // Sat 01:00
        assert!(!in_change_window(&night, at("2026-11-29T01:00:00Z"))); // Sun 01:00
        assert_eq!(
            windows_text(&w),
            "mon, tue, wed, thu, fri 10:00–17:00 Asia/Seoul"
        );
    }
}
