//! Scaling history as the Scaling page and `GET /api/v1/environments/{env}/scaling` show it.

use serde::{Deserialize, Serialize};

use crate::spec::EnvironmentSpec;

/// A group's capacity from one moment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unix seconds.
    pub at_unix: i64,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub in_service: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupHistory {
    pub group: String,
    /// Oldest first; the first may be from before the range (the state at its start).
    pub snapshots: Vec<Snapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub id: String,
    pub group: String,
    pub status: String,
    pub description: String,
    pub cause: String,
    #[serde(with = "crate::time::stored")]
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::time::stored::option", default)]
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One of tierdeck's applies in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyMark {
    pub change_id: i64,
    pub run_id: i64,
    /// Unix seconds.
    pub at_unix: i64,
    pub status: String,
}

/// A rollout's moment on a group's chart: a stage's refresh started, a checkpoint reached, the
/// rollout's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutMark {
    pub group: String,
    pub change_id: i64,
    /// Unix seconds.
    pub at_unix: i64,
    /// `refresh started (stage 1 of 3, to 25 %)`, `checkpoint 25 % reached`, `rollout succeeded`.
    pub what: String,
}

/// How a scheduled action's firing is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// Computed: the schedule of the commit applied then says it fires then. Never drawn
    /// before that commit was applied (the action did not exist in AWS before).
    Expected,
    /// Auto Scaling reported it: a scaling activity whose cause names the action.
    Observed,
}

/// A scheduled action that fired in the range, expected or observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledMark {
    pub group: String,
    pub action: String,
    /// Unix seconds.
    pub at_unix: i64,
    pub local: String,
    pub seen: Seen,
    /// Expected: the applied commit whose schedule says so. Observed: the activity's id.
    pub source: String,
}

/// A commit applied to an environment and what its spec says, from when its apply finished
/// to when the next one did (or now).
pub struct AppliedPeriod<'a> {
    pub from: i64,
    pub to: i64,
    pub commit: &'a str,
    pub spec: &'a EnvironmentSpec,
}

/// The firings each applied schedule expects in its own period (and in `since..until`): a
/// scheduled action is expected only while the commit that put it in AWS is the one applied.
pub fn expected_firings(
    periods: &[AppliedPeriod<'_>],
    since: i64,
    until: i64,
) -> Vec<ScheduledMark> {
    let mut out = Vec::new();
    for p in periods {
        let (from, to) = (p.from.max(since), p.to.min(until));
        if from >= to {
            continue;
        }
        let Some(start) = chrono::DateTime::from_timestamp(from, 0) else {
            continue;
        };
        let hours = u32::try_from((to - from + 3_599) / 3_600).unwrap_or(u32::MAX);
        for g in &p.spec.autoscaling_groups {
            let preview = crate::schedule::group_preview(g, start, hours);
            out.extend(preview.steps.into_iter().filter_map(|s| {
                let at = s.at.timestamp();
                (at < to).then(|| ScheduledMark {
                    group: g.name.to_string(),
                    action: s.action,
                    at_unix: at,
                    local: s.local,
                    seen: Seen::Expected,
                    source: p.commit.to_owned(),
                })
            }));
        }
    }
    out
}

/// The scheduled action a scaling activity's cause names, as Auto Scaling writes it (`At
/// 2026-12-07T09:50:00Z the scheduled action web-prescale executed. Setting desired capacity
/// from 2 to 4.`): one of `known` named after "scheduled action", or the name in "the
/// scheduled action NAME executed".
pub fn action_in_cause<'a>(cause: &'a str, known: &[&'a str]) -> Option<&'a str> {
    const MARK: &str = "scheduled action ";
    let mut rest = cause;
    while let Some(i) = rest.find(MARK) {
        rest = &rest[i + MARK.len()..];
        let word = rest
            .split(|c: char| c.is_whitespace() || c == ',')
            .next()
            .unwrap_or_default();
        if let Some(k) = known.iter().find(|k| **k == word) {
            return Some(k);
        }
        let after = &rest[word.len()..];
        if !word.is_empty() && after.trim_start().starts_with("executed") {
            return Some(word);
        }
    }
    None
}

/// How far apart an expected firing and the activity that shows it may be: Auto Scaling runs
/// an action within a minute or so of its time.
pub const FIRING_SLACK_SECS: i64 = 600;

/// The range's firings: observed ones from `activities` (their cause names an action of
/// `known`, by group), and expected ones that no observed one of the same group and action
/// shows within [`FIRING_SLACK_SECS`]; by time. Times of observed firings read in `zone`.
pub fn firings(
    expected: Vec<ScheduledMark>,
    activities: &[Activity],
    known: &[(&str, Vec<&str>)],
    zone: crate::spec::TimeZone,
) -> Vec<ScheduledMark> {
    let observed: Vec<ScheduledMark> = activities
        .iter()
        .filter_map(|a| {
            let names = known
                .iter()
                .find(|(g, _)| *g == a.group)
                .map(|(_, n)| n.as_slice())
                .unwrap_or_default();
            let action = action_in_cause(&a.cause, names)?;
            let at = a.started_at.timestamp();
            Some(ScheduledMark {
                group: a.group.clone(),
                action: action.to_owned(),
                at_unix: at,
                local: format!(
                    "{} {zone}",
                    crate::time::format(at, zone, crate::time::Style::Minute)
                ),
                seen: Seen::Observed,
                source: a.id.clone(),
            })
        })
        .collect();
    let shown = |e: &ScheduledMark| {
        observed.iter().any(|o| {
            o.group == e.group
                && o.action == e.action
                && (o.at_unix - e.at_unix).abs() <= FIRING_SLACK_SECS
        })
    };
    let mut out: Vec<ScheduledMark> = expected.into_iter().filter(|e| !shown(e)).collect();
    out.extend(observed);
    out.sort_by(|a, b| (a.at_unix, &a.group, &a.action).cmp(&(b.at_unix, &b.group, &b.action)));
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingHistory {
    pub environment: String,
    /// Unix seconds.
    pub since_unix: i64,
    pub until_unix: i64,
    /// The zone the environment's times are shown in (see `time::environment_zone`).
    #[serde(default = "crate::time::utc_name")]
    pub time_zone: String,
    pub groups: Vec<GroupHistory>,
    pub activities: Vec<Activity>,
    pub applies: Vec<ApplyMark>,
    pub scheduled: Vec<ScheduledMark>,
    /// The rollouts' refresh starts, checkpoints and ends.
    #[serde(default)]
    pub rollouts: Vec<RolloutMark>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fixtures::prod;
    use crate::time::at_local;

    fn seoul() -> crate::spec::TimeZone {
        "Asia/Seoul".parse().unwrap()
    }

    fn activity(group: &str, cause: &str, started: &str) -> Activity {
        Activity {
            id: format!("act-{started}"),
            group: group.into(),
            status: "Successful".into(),
            description: "Launching a new EC2 instance".into(),
            cause: cause.into(),
            started_at: crate::time::stored::parse(started).unwrap(),
            ended_at: None,
        }
    }

    #[test]
    fn a_cause_names_its_scheduled_action() {
        let known = ["web-prescale", "web-peak"];
        let cases = [
            ("At 2026-12-07T09:50:00Z the scheduled action web-prescale executed. Setting desired capacity from 2 to 4.", Some("web-prescale")),
            ("At 2026-12-07T10:00:00Z the scheduled action web-peak executed.", Some("web-peak")),
            ("At 2026-12-07T10:00:00Z the scheduled action was-peak executed.", Some("was-peak")),
            ("At 2026-12-07T09:50:00Z a scheduled action update of AutoScalingGroup constraints to min: 3, max: 8, desired: 4 changing the desired capacity from 2 to 4.", None),
            ("At 2026-12-07T09:50:00Z a monitor alarm cpu-high in state ALARM triggered policy scale-out changing the desired capacity from 2 to 3.", None),
            ("At 2026-12-07T09:50:00Z a user request update of AutoScalingGroup constraints to min: 2.", None),
        ];
        for (cause, want) in cases {
            assert_eq!(action_in_cause(cause, &known), want, "{cause}");
        }
    }

    #[test]
    fn expected_firings_start_when_their_commit_was_applied() {
        let spec = prod();
        let seoul = seoul();
        // Applied at 19:30 Seoul on 12-06; the range is the 24 hours to 19:30 on 12-07.
        let applied = at_local(seoul, 2026, 12, 6, 19, 30).unwrap();
        let since = applied - 12 * 3_600;
        let until = applied + 24 * 3_600;
        let periods = [AppliedPeriod {
            from: applied,
            to: until,
            commit: "abc",
            spec: &spec,
        }];
        let marks = expected_firings(&periods, since, until);
        assert!(!marks.is_empty());
        assert!(
            marks
                .iter()
                .all(|m| m.at_unix >= applied && m.at_unix < until),
            "never before the apply"
        );
        assert!(marks
            .iter()
            .all(|m| m.seen == Seen::Expected && m.source == "abc"));
        // The evening's 22:00 wind-down and the next day's 18:50 and 19:00 are expected; the
        // 18:50 and 19:00 before the apply are not.
        let web: Vec<String> = marks
            .iter()
            .filter(|m| m.group == "petclinic-prod-web")
            .map(|m| crate::time::format(m.at_unix, seoul, crate::time::Style::Short))
            .collect();
        assert_eq!(
            web.first().map(String::as_str),
            Some("12-06 22:00"),
            "{web:?}"
        );
        assert!(web.contains(&"12-07 18:50".to_owned()), "{web:?}");
        assert!(!web.contains(&"12-06 18:50".to_owned()), "{web:?}");
        // Nothing applied: nothing expected.
        assert!(expected_firings(&[], since, until).is_empty());
    }

    #[test]
    fn an_observed_firing_replaces_the_expected_one_it_shows() {
        let seoul = seoul();
        let at = at_local(seoul, 2026, 12, 7, 18, 50).unwrap();
        let expected = |group: &str, action: &str, at: i64| ScheduledMark {
            group: group.into(),
            action: action.into(),
            at_unix: at,
            local: String::new(),
            seen: Seen::Expected,
            source: "abc".into(),
        };
        let marks = firings(
            vec![
                expected("web", "web-prescale", at),
                expected("was", "was-prescale", at),
                expected("web", "web-peak", at + 600),
            ],
            &[
                activity("web", "At 2026-12-07T09:50:00Z the scheduled action web-prescale executed.", "2026-12-07T09:50:21Z"),
                activity("web", "At 2026-12-07T09:40:00Z a user request update of AutoScalingGroup constraints.", "2026-12-07T09:40:00Z"),
            ],
            &[("web", vec!["web-prescale", "web-peak"]), ("was", vec!["was-prescale"])],
            seoul,
        );
        let seen: Vec<(&str, &str, Seen)> = marks
            .iter()
            .map(|m| (m.group.as_str(), m.action.as_str(), m.seen))
            .collect();
        assert_eq!(
            seen,
            [
                ("was", "was-prescale", Seen::Expected),
                ("web", "web-prescale", Seen::Observed),
                ("web", "web-peak", Seen::Expected),
            ]
        );
        assert_eq!(marks[1].local, "2026-12-07 18:50 Asia/Seoul");
        assert_eq!(marks[1].source, "act-2026-12-07T09:50:21Z");
    }
}
