//! The change lifecycle as one state machine: every status a change can have, every event that
//! moves it, and why an event is refused in a status. The store performs a transition with its
//! audit event; the gates in [`crate::approval`] ask this table whether a status allows what
//! they check.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a change stands (ARCHITECTURE.md, "Changes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    Invalid,
    Blocked,
    Pending,
    Approved,
    Rejected,
    Superseded,
    Applying,
    Applied,
    Failed,
    Interrupted,
    /// Applied, and the watch after the apply saw a page-level SLO alert.
    Degraded,
}

impl ChangeStatus {
    pub const ALL: [ChangeStatus; 11] = [
        ChangeStatus::Invalid,
        ChangeStatus::Blocked,
        ChangeStatus::Pending,
        ChangeStatus::Approved,
        ChangeStatus::Rejected,
        ChangeStatus::Superseded,
        ChangeStatus::Applying,
        ChangeStatus::Applied,
        ChangeStatus::Failed,
        ChangeStatus::Interrupted,
        ChangeStatus::Degraded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Invalid => "invalid",
            ChangeStatus::Blocked => "blocked",
            ChangeStatus::Pending => "pending",
            ChangeStatus::Approved => "approved",
            ChangeStatus::Rejected => "rejected",
            ChangeStatus::Superseded => "superseded",
            ChangeStatus::Applying => "applying",
            ChangeStatus::Applied => "applied",
            ChangeStatus::Failed => "failed",
            ChangeStatus::Interrupted => "interrupted",
            ChangeStatus::Degraded => "degraded",
        }
    }

    /// Whether a newer commit of the same environment replaces this change: it is not over
    /// and not being applied. A failed or interrupted change is open: what is left of it can
    /// be approved and applied again.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ChangeStatus::Invalid
                | ChangeStatus::Blocked
                | ChangeStatus::Pending
                | ChangeStatus::Approved
                | ChangeStatus::Failed
                | ChangeStatus::Interrupted
        )
    }

    /// The open statuses, as stored.
    pub fn open() -> impl Iterator<Item = ChangeStatus> {
        ChangeStatus::ALL.into_iter().filter(|s| s.is_open())
    }
}

impl fmt::Display for ChangeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChangeStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangeStatus::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

/// What kind of "no" a refusal is: it decides the HTTP status at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Not for this person: a role too low, an author approving their own change (403).
    Forbidden,
    /// Not in this state: the change, its plan or its environment does not allow it now (409).
    Conflict,
    /// Not now: another apply holds the environment, or the live state moved and the new plan
    /// was recorded; the same request may pass in a moment (409, and a job tries again).
    Busy,
    /// The request itself is incomplete: an emergency without a reason (422). `field` names
    /// the parameter.
    Invalid { field: &'static str },
}

/// A refusal with the sentence the page and the API show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

impl Refusal {
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::Forbidden,
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::Conflict,
            message: message.into(),
        }
    }

    pub fn busy(message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::Busy,
            message: message.into(),
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::Invalid { field },
            message: message.into(),
        }
    }
}

/// Something that happens to a recorded change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An approval of the current plan; `complete`: with it the approvals that count reach the
    /// number required.
    Approve {
        complete: bool,
    },
    Reject,
    /// A new plan whose hash differs from the one reviewed: approvals of the old one are void.
    Replan,
    /// A newer commit of the environment replaces it, or the folder is back to its applied state.
    Supersede,
    StartApply,
    /// Every step of the apply is done.
    Applied,
    /// A step of the apply failed.
    Fail,
    /// The process stopped during the apply.
    Interrupt,
    /// The watch after the apply saw a page-level SLO alert.
    Degrade,
    /// What is applied moved under an open change (a revert was applied): it is judged again
    /// against it, with new diffs, and needs a new plan and new approvals. Its facts decide
    /// where it lands, as for a new change ([`initial`]).
    Rebase {
        has_spec_errors: bool,
        breaks_guardrails: bool,
    },
}

impl Event {
    pub const ALL: [Event; 11] = [
        Event::Approve { complete: false },
        Event::Approve { complete: true },
        Event::Reject,
        Event::Replan,
        Event::Supersede,
        Event::StartApply,
        Event::Applied,
        Event::Fail,
        Event::Interrupt,
        Event::Degrade,
        Event::Rebase {
            has_spec_errors: false,
            breaks_guardrails: false,
        },
    ];

    /// The audit action that records it.
    pub fn action(self) -> &'static str {
        match self {
            Event::Approve { .. } => "change.approved",
            Event::Reject => "change.rejected",
            Event::Replan => "change.approvals_voided",
            Event::Supersede => "change.superseded",
            Event::StartApply => "change.apply_started",
            Event::Applied => "change.applied",
            Event::Fail => "change.apply_failed",
            Event::Interrupt => "change.interrupted",
            Event::Degrade => "change.degraded",
            Event::Rebase { .. } => "change.rejudged",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Event::Approve { .. } => "approve",
            Event::Reject => "reject",
            Event::Replan => "plan again",
            Event::Supersede => "supersede",
            Event::StartApply => "apply",
            Event::Applied => "finish",
            Event::Fail => "fail",
            Event::Interrupt => "interrupt",
            Event::Degrade => "degrade",
            Event::Rebase { .. } => "be judged again",
        })
    }
}

/// The status a change is recorded with.
pub fn initial(has_spec_errors: bool, breaks_guardrails: bool) -> ChangeStatus {
    if has_spec_errors {
        ChangeStatus::Invalid
    } else if breaks_guardrails {
        ChangeStatus::Blocked
    } else {
        ChangeStatus::Pending
    }
}

/// Why a change in `status` is not open to review or apply, as a clause (`its spec has
/// errors`).
fn why_closed(status: ChangeStatus) -> String {
    match status {
        ChangeStatus::Invalid => "its spec has errors; a new commit must fix them".into(),
        ChangeStatus::Blocked => {
            "it is blocked by guardrails; a new commit must keep their limits".into()
        }
        ChangeStatus::Applying => "it is being applied now".into(),
        other => format!("it is {other}"),
    }
}

/// The status `event` moves a change in `status` to, or why it cannot happen now.
pub fn transition(status: ChangeStatus, event: Event) -> Result<ChangeStatus, Refusal> {
    use ChangeStatus as S;
    let refused = |verb: &str| {
        Err(Refusal::conflict(format!(
            "It cannot be {verb}: {}.",
            why_closed(status)
        )))
    };
    match (event, status) {
        (Event::Approve { complete }, S::Pending | S::Approved) => {
            Ok(if complete { S::Approved } else { S::Pending })
        }
        // What is left of a failed or interrupted apply is reviewed like a new plan.
        (Event::Approve { complete: true }, S::Failed | S::Interrupted) => Ok(S::Approved),
        (Event::Approve { complete: false }, S::Failed | S::Interrupted) => Ok(status),
        (Event::Approve { .. }, _) => refused("approved"),

        (Event::Reject, S::Pending | S::Approved | S::Blocked | S::Failed | S::Interrupted) => {
            Ok(S::Rejected)
        }
        (Event::Reject, _) => refused("rejected"),

        (Event::Replan, S::Pending | S::Approved | S::Failed | S::Interrupted) => Ok(S::Pending),
        (Event::Replan, S::Blocked) => Ok(S::Blocked),
        (Event::Replan, _) => refused("planned again"),

        (Event::Supersede, s) if s.is_open() => Ok(S::Superseded),
        (Event::Supersede, _) => refused("superseded"),

        (Event::StartApply, S::Pending | S::Approved | S::Failed | S::Interrupted) => {
            Ok(S::Applying)
        }
        (Event::StartApply, _) => refused("applied"),

        (Event::Applied, S::Applying) => Ok(S::Applied),
        (Event::Fail, S::Applying) => Ok(S::Failed),
        (Event::Interrupt, S::Applying) => Ok(S::Interrupted),
        (Event::Applied | Event::Fail | Event::Interrupt, _) => Err(Refusal::conflict(format!(
            "It cannot {event}: it is {status}, not being applied."
        ))),

        // A rollout's bake that sees a page alert degrades the change while it applies.
        (Event::Degrade, S::Applied | S::Applying) => Ok(S::Degraded),
        (Event::Degrade, _) => Err(Refusal::conflict(format!(
            "It cannot degrade: it is {status}, not applied."
        ))),

        (
            Event::Rebase {
                has_spec_errors,
                breaks_guardrails,
            },
            s,
        ) if s.is_open() => Ok(initial(has_spec_errors, breaks_guardrails)),
        (Event::Rebase { .. }, _) => refused("judged again"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChangeStatus as S;

    /// Every (status, event) pair and what the machine answers: the status it moves to, or the
    /// kind of refusal.
    #[test]
    fn every_status_and_event_is_decided() {
        use Event as E;
        let ok = Ok::<S, RefusalKind>;
        let no = Err::<S, RefusalKind>(RefusalKind::Conflict);
        let approve = E::Approve { complete: false };
        let complete = E::Approve { complete: true };
        #[rustfmt::skip]
        let table: [(S, [Result<S, RefusalKind>; 11]); 11] = [
            //                approve        complete         reject           replan           supersede          start            applied          fail            interrupt           degrade          rebase
            (S::Invalid,     [no,            no,              no,              no,              ok(S::Superseded), no,              no,              no,              no,                 no,              ok(S::Pending)]),
            (S::Blocked,     [no,            no,              ok(S::Rejected), ok(S::Blocked),  ok(S::Superseded), no,              no,              no,              no,                 no,              ok(S::Pending)]),
            (S::Pending,     [ok(S::Pending), ok(S::Approved), ok(S::Rejected), ok(S::Pending),  ok(S::Superseded), ok(S::Applying), no,              no,              no,                 no,              ok(S::Pending)]),
            (S::Approved,    [ok(S::Pending), ok(S::Approved), ok(S::Rejected), ok(S::Pending),  ok(S::Superseded), ok(S::Applying), no,              no,              no,                 no,              ok(S::Pending)]),
            (S::Rejected,    [no,            no,              no,              no,              no,                no,              no,              no,              no,                 no,              no]),
            (S::Superseded,  [no,            no,              no,              no,              no,                no,              no,              no,              no,                 no,              no]),
            (S::Applying,    [no,            no,              no,              no,              no,                no,              ok(S::Applied),  ok(S::Failed),   ok(S::Interrupted), ok(S::Degraded), no]),
            (S::Applied,     [no,            no,              no,              no,              no,                no,              no,              no,              no,                 ok(S::Degraded), no]),
            (S::Failed,      [ok(S::Failed), ok(S::Approved), ok(S::Rejected), ok(S::Pending),  ok(S::Superseded), ok(S::Applying), no,              no,              no,                 no,              ok(S::Pending)]),
            (S::Interrupted, [ok(S::Interrupted), ok(S::Approved), ok(S::Rejected), ok(S::Pending), ok(S::Superseded), ok(S::Applying), no,        no,              no,                 no,              ok(S::Pending)]),
            (S::Degraded,    [no,            no,              no,              no,              no,                no,              no,              no,              no,                 no,              no]),
        ];
        assert_eq!(E::ALL[0], approve);
        assert_eq!(E::ALL[1], complete);
        // Every status is in the table once.
        assert_eq!(table.map(|(s, _)| s), S::ALL);
        for (status, row) in table {
            for (event, expected) in E::ALL.into_iter().zip(row) {
                let got = transition(status, event).map_err(|r| {
                    assert!(
                        r.message.ends_with('.') && r.message.starts_with("It cannot"),
                        "{status} + {event}: {}",
                        r.message
                    );
                    r.kind
                });
                assert_eq!(got, expected, "{status} + {event}");
            }
        }
    }

    #[test]
    fn a_change_judged_again_lands_where_its_new_facts_put_it() {
        let rebase = |e, g| Event::Rebase {
            has_spec_errors: e,
            breaks_guardrails: g,
        };
        assert_eq!(transition(S::Approved, rebase(false, true)), Ok(S::Blocked));
        assert_eq!(transition(S::Blocked, rebase(false, false)), Ok(S::Pending));
        assert_eq!(transition(S::Pending, rebase(true, false)), Ok(S::Invalid));
        assert_eq!(
            transition(S::Applying, rebase(false, false))
                .unwrap_err()
                .message,
            "It cannot be judged again: it is being applied now."
        );
    }

    #[test]
    fn refusals_say_why_in_words() {
        assert_eq!(
            transition(S::Blocked, Event::StartApply).unwrap_err().message,
            "It cannot be applied: it is blocked by guardrails; a new commit must keep their limits."
        );
        assert_eq!(
            transition(S::Rejected, Event::Approve { complete: true })
                .unwrap_err()
                .message,
            "It cannot be approved: it is rejected."
        );
        assert_eq!(
            transition(S::Applied, Event::Fail).unwrap_err().message,
            "It cannot fail: it is applied, not being applied."
        );
    }

    #[test]
    fn a_change_starts_invalid_blocked_or_pending() {
        assert_eq!(initial(true, true), S::Invalid);
        assert_eq!(initial(false, true), S::Blocked);
        assert_eq!(initial(false, false), S::Pending);
    }
}
