//! How often people may ask for work that costs AWS calls: "Plan again" reads every resource of
//! a change's spec from AWS and may void its approvals, so one change is planned again at most
//! once per [`PER_CHANGE`], and one person asks at most [`PER_USER`] times per [`USER_WINDOW`]
//! whatever the changes. tierdeck's own re-plans (drift, reverts) are not counted. The counts
//! live in this process: with several replicas each keeps its own.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One change is planned again by people at most once in this time.
pub const PER_CHANGE: Duration = Duration::from_secs(10);
/// One person plans again at most this many times in [`USER_WINDOW`].
pub const PER_USER: usize = 6;
pub const USER_WINDOW: Duration = Duration::from_secs(60);
/// Changes and people remembered at once; past it, those whose window is over are forgotten.
const MAX_KEPT: usize = 10_000;

#[derive(Debug, Default)]
pub struct PlanAgainLimits {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// Per change: when it was last planned again by someone.
    changes: HashMap<i64, Instant>,
    /// Per person: when they planned again within the window, oldest first.
    users: HashMap<String, VecDeque<Instant>>,
}

impl PlanAgainLimits {
    /// Counts `user` planning `change` again at `now`, or says how long until they may.
    pub fn admit(&self, user: &str, change: i64, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let Seen { changes, users } = &mut *seen;
        if changes.len() >= MAX_KEPT {
            changes.retain(|_, at| now.saturating_duration_since(*at) < PER_CHANGE);
        }
        if users.len() >= MAX_KEPT {
            users.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < USER_WINDOW)
            });
        }
        let change_wait = changes
            .get(&change)
            .map(|at| PER_CHANGE.saturating_sub(now.saturating_duration_since(*at)))
            .filter(|d| !d.is_zero());
        let times = users.entry(user.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= USER_WINDOW)
        {
            times.pop_front();
        }
        let user_wait = (times.len() >= PER_USER)
            .then(|| times.front().copied())
            .flatten()
            .map(|oldest| USER_WINDOW.saturating_sub(now.saturating_duration_since(oldest)));
        if let Some(wait) = change_wait.into_iter().chain(user_wait).max() {
            if times.is_empty() {
                users.remove(user);
            }
            return Err(wait);
        }
        times.push_back(now);
        changes.insert(change, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_planned_again_once_per_period_whoever_asks() {
        let limits = PlanAgainLimits::default();
        let t = Instant::now();
        assert_eq!(limits.admit("ann", 7, t), Ok(()));
        let wait = limits
            .admit("bob", 7, t + Duration::from_secs(3))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(7));
        assert_eq!(limits.admit("bob", 8, t + Duration::from_secs(3)), Ok(()));
        assert_eq!(limits.admit("bob", 7, t + PER_CHANGE), Ok(()));
    }

    #[test]
    fn one_person_plans_again_a_few_times_a_minute_whatever_the_changes() {
        let limits = PlanAgainLimits::default();
        let t = Instant::now();
        for i in 0..PER_USER {
            let at = t + Duration::from_secs(i as u64);
            assert_eq!(limits.admit("ann", i as i64, at), Ok(()), "{i}");
        }
        let at = t + Duration::from_secs(10);
        let wait = limits.admit("ann", 100, at).unwrap_err();
        assert_eq!(
            wait,
            Duration::from_secs(50),
            "until the oldest leaves the window"
        );
        // A refused ask is not counted, and others are not held back.
        assert_eq!(limits.admit("bob", 100, at), Ok(()));
        assert_eq!(limits.admit("ann", 101, t + USER_WINDOW), Ok(()));
    }

    #[test]
    fn what_is_kept_stays_bounded() {
        let limits = PlanAgainLimits::default();
        let t = Instant::now();
        for i in 0..(3 * MAX_KEPT) {
            let at = t + USER_WINDOW * (i as u32);
            limits.admit(&format!("u{i}"), i as i64, at).unwrap();
        }
        let seen = limits.seen.lock().unwrap();
        assert!(seen.changes.len() <= MAX_KEPT && seen.users.len() <= MAX_KEPT);
    }
}
