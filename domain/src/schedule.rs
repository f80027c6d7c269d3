//! Schedule preview: from a spec's scheduled actions (cron in their own time zones, daylight
//! saving included), each group's effective min / max / desired over the next hours.
//!
//! An action sets the fields it names and leaves the others; desired is kept inside [min, max]
//! as Auto Scaling does. The state at the start comes from the spec's values with the actions
//! of the week before applied. Two actions of one group at the same minute are flagged: Auto
//! Scaling does not say which runs last.

use chrono::{DateTime, Datelike, Duration, Offset, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::cron::Cron;
use crate::spec::{AutoscalingGroup, EnvironmentSpec};

/// A group's capacity at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub min: u32,
    pub max: u32,
    pub desired: Option<u32>,
}

impl Capacity {
    /// `2–8 (2)` for tables.
    pub fn text(&self) -> String {
        match self.desired {
            Some(d) => format!("{}–{} ({d})", self.min, self.max),
            None => format!("{}–{}", self.min, self.max),
        }
    }
}

/// A scheduled action firing and what the group's capacity becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    #[serde(with = "crate::time::stored")]
    pub at: chrono::DateTime<chrono::Utc>,
    /// The time where the action's time zone says it: `2026-11-26 18:50 Asia/Seoul`.
    pub local: String,
    pub action: String,
    pub capacity: Capacity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPreview {
    pub group: String,
    /// At the start of the preview.
    pub start: Capacity,
    pub steps: Vec<Step>,
    /// Actions of this group firing at the same minute: (when, their names).
    pub same_minute: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    #[serde(with = "crate::time::stored")]
    pub from: chrono::DateTime<chrono::Utc>,
    pub hours: u32,
    pub groups: Vec<GroupPreview>,
}

struct Firing {
    at: DateTime<Utc>,
    local: String,
    action: usize,
}

/// The minutes in `[from, to)` at which `cron` fires in time zone `tz`. A wall-clock time that
/// happens twice (clocks going back) fires once; one that does not happen (clocks going
/// forward) does not fire.
fn firings(
    cron: &Cron,
    tz: chrono_tz::Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, String)> {
    let mut out: Vec<(DateTime<Utc>, String)> = Vec::new();
    let mut t = from
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(from);
    if t < from {
        t += Duration::minutes(1);
    }
    let mut seen = std::collections::HashSet::new();
    let offset = |at: DateTime<Utc>| at.with_timezone(&tz).offset().fix().local_minus_utc();
    // Minute by minute, but a whole UTC hour whose two ends have the same whole-minute offset
    // (zones change offset at most once an hour) is read as one: only the minutes whose local
    // minute the expression names get the full look. A week's preview makes a few hundred
    // zone conversions instead of ten thousand, and steps from one named minute to the next.
    let mut uniform_until = t;
    let mut shift = 0;
    while t < to {
        if t >= uniform_until {
            let hour_end = (t + Duration::hours(1))
                .with_minute(0)
                .unwrap_or(to)
                .min(to);
            let last = hour_end - Duration::minutes(1);
            let off = offset(t);
            if off % 60 == 0 && off == offset(last) {
                uniform_until = hour_end;
                shift = off / 60;
            }
        }
        if t < uniform_until {
            let local_minute = (i64::from(t.minute()) + i64::from(shift)).rem_euclid(60);
            if !cron.names_minute(local_minute as u32) {
                // On to the block's next minute the expression names (or the block's end).
                // (`to` may fall inside a minute: at least one minute on.)
                let left = (uniform_until - t).num_minutes().max(1);
                let skip = (1..left)
                    .find(|k| cron.names_minute(((local_minute + k) % 60) as u32))
                    .unwrap_or(left);
                t += Duration::minutes(skip);
                continue;
            }
        }
        let l = t.with_timezone(&tz);
        let fires = cron.matches(
            l.minute(),
            l.hour(),
            l.day(),
            l.month(),
            l.weekday().num_days_from_sunday(),
        );
        if fires {
            let local = l.format("%Y-%m-%d %H:%M").to_string();
            if seen.insert(local.clone()) {
                out.push((t, local));
            }
        }
        t += Duration::minutes(1);
    }
    out
}

fn apply(c: &mut Capacity, min: Option<u32>, max: Option<u32>, desired: Option<u32>) {
    if let Some(v) = min {
        c.min = v;
    }
    if let Some(v) = max {
        c.max = v;
    }
    if let Some(v) = desired {
        c.desired = Some(v);
    }
    c.desired = c.desired.map(|d| d.clamp(c.min, c.max.max(c.min)));
}

/// The preview of one group from `from` for `hours`.
pub fn group_preview(g: &AutoscalingGroup, from: DateTime<Utc>, hours: u32) -> GroupPreview {
    let look_back = from - Duration::days(7);
    let to = from + Duration::hours(i64::from(hours));
    let mut all: Vec<Firing> = Vec::new();
    for (i, a) in g.schedule.iter().enumerate() {
        for (at, local) in firings(&a.cron, a.timezone.tz(), look_back, to) {
            all.push(Firing {
                at,
                local: format!("{local} {}", a.timezone),
                action: i,
            });
        }
    }
    // Same instant: the order of the spec, so the preview is stable.
    all.sort_by_key(|f| (f.at, f.action));
    let mut state = Capacity {
        min: g.capacity.min(),
        max: g.capacity.max(),
        desired: g.capacity.desired(),
    };
    let mut start = None;
    let mut steps = Vec::new();
    let mut same_minute: Vec<(String, Vec<String>)> = Vec::new();
    for (k, f) in all.iter().enumerate() {
        if f.at >= from && start.is_none() {
            start = Some(state);
        }
        let a = &g.schedule[f.action];
        apply(
            &mut state,
            a.capacity.min(),
            a.capacity.max(),
            a.capacity.desired(),
        );
        if f.at >= from {
            let at = f.at;
            if k > 0 && all[k - 1].at == f.at && all[k - 1].at >= from {
                let when = at.to_rfc3339();
                match same_minute.last_mut() {
                    Some((w, names)) if *w == when => names.push(a.name.clone()),
                    _ => same_minute.push((
                        when,
                        vec![g.schedule[all[k - 1].action].name.clone(), a.name.clone()],
                    )),
                }
            }
            steps.push(Step {
                at,
                local: f.local.clone(),
                action: a.name.clone(),
                capacity: state,
            });
        }
    }
    GroupPreview {
        group: g.name.to_string(),
        start: start.unwrap_or(state),
        steps,
        same_minute,
    }
}

/// Every group of `spec` from `from` for `hours`.
pub fn preview(spec: &EnvironmentSpec, from: DateTime<Utc>, hours: u32) -> Preview {
    Preview {
        from,
        hours,
        groups: spec
            .autoscaling_groups
            .iter()
            .map(|g| group_preview(g, from, hours))
            .collect(),
    }
}

/// The preview as a table of times (local, as the actions name them) and each group's
/// capacity after what fires then: the shape of the team's own scaling table.
pub fn table(p: &Preview) -> Vec<(String, Vec<Option<Capacity>>)> {
    let mut times: Vec<(DateTime<Utc>, String)> = p
        .groups
        .iter()
        .flat_map(|g| g.steps.iter().map(|s| (s.at, s.local.clone())))
        .collect();
    times.sort();
    times.dedup_by(|a, b| a.0 == b.0);
    times
        .into_iter()
        .map(|(at, local)| {
            let row = p
                .groups
                .iter()
                .map(|g| {
                    g.steps
                        .iter()
                        .rev()
                        .find(|s| s.at == at)
                        .map(|s| s.capacity)
                })
                .collect();
            (local, row)
        })
        .collect()
}

/// Midnight UTC of a date, for tests and fixed previews.
pub fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("a valid UTC time")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fixtures::prod;
    use crate::spec::{CapacityChange, Loc, ScheduledAction};
    use std::str::FromStr;

    fn action(
        name: &str,
        cron: &str,
        tz: &str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> ScheduledAction {
        ScheduledAction {
            name: name.into(),
            cron: cron.parse().unwrap(),
            timezone: tz.parse().unwrap(),
            capacity: CapacityChange::new(min, max, desired).unwrap(),
            loc: Loc::default(),
        }
    }

    #[test]
    fn prod_over_a_day_reads_like_the_teams_table() {
        // From 00:00 Seoul (15:00 UTC the day before).
        let p = preview(&prod(), utc(2026, 11, 25, 15, 0), 24);
        let rows: Vec<(String, Vec<String>)> = table(&p)
            .into_iter()
            .map(|(t, caps)| {
                (
                    t,
                    caps.into_iter()
                        .map(|c| c.map(|c| c.text()).unwrap_or_default())
                        .collect(),
                )
            })
            .collect();
        let expect = |t: &str, web: &str, was: &str| {
            (
                format!("2026-11-26 {t} Asia/Seoul"),
                vec![web.to_owned(), was.to_owned()],
            )
        };
        assert_eq!(
            rows,
            vec![
                expect("00:00", "2–8 (2)", "2–8 (2)"),
                expect("09:00", "2–8 (2)", "2–8 (2)"),
                expect("18:50", "3–4 (4)", "3–5 (5)"),
                expect("19:00", "4–6 (4)", "5–7 (5)"),
                expect("22:00", "2–3 (3)", "2–3 (3)"),
            ]
        );
        assert!(p.groups.iter().all(|g| g.same_minute.is_empty()));
        // At the start the wind-down of the evening before holds.
        assert_eq!(p.groups[0].start.text(), "2–3 (3)");
    }

    /// `firings` as it was written first: every minute converted to the zone.
    fn firings_minute_by_minute(
        cron: &Cron,
        tz: chrono_tz::Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, String)> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut t = from;
        while t < to {
            let l = t.with_timezone(&tz);
            let wd = l.weekday().num_days_from_sunday();
            if cron.matches(l.minute(), l.hour(), l.day(), l.month(), wd) {
                let local = l.format("%Y-%m-%d %H:%M").to_string();
                if seen.insert(local.clone()) {
                    out.push((t, local));
                }
            }
            t += Duration::minutes(1);
        }
        out
    }

    #[test]
    fn a_range_that_ends_inside_a_minute_ends() {
        let cron = Cron::parse("*/20 * * * *").unwrap();
        let tz = chrono_tz::Tz::from_str("Asia/Seoul").unwrap();
        let from = utc(2026, 3, 7, 13, 7);
        let to = from + Duration::hours(3) + Duration::seconds(30);
        let fast = firings(&cron, tz, from, to);
        assert_eq!(fast, firings_minute_by_minute(&cron, tz, from, to));
        assert_eq!(fast.len(), 9);
    }

    #[test]
    fn hour_at_a_time_firings_equal_minute_by_minute_in_odd_zones_and_transitions() {
        let zones = [
            "America/New_York",
            "Asia/Kolkata",
            "Asia/Kathmandu",
            "Australia/Lord_Howe", // moves by 30 minutes
            "Europe/London",
            "Asia/Seoul",
        ];
        let crons = [
            "30 1 * * *",
            "*/15 2 * * *",
            "0,45 * * * 0",
            "59 23 31 * *",
            "* 3 * * *",
        ];
        // Around the northern (March, November) and southern (April, October) changes.
        let starts = [
            utc(2026, 3, 7, 13, 7),
            utc(2026, 10, 31, 22, 0),
            utc(2026, 4, 3, 0, 31),
            utc(2026, 10, 2, 12, 0),
        ];
        for z in zones {
            let tz = chrono_tz::Tz::from_str(z).unwrap();
            for c in crons {
                let cron = Cron::parse(c).unwrap();
                for from in starts {
                    let to = from + Duration::days(3);
                    assert_eq!(
                        firings(&cron, tz, from, to),
                        firings_minute_by_minute(&cron, tz, from, to),
                        "{z} `{c}` from {from}"
                    );
                }
            }
        }
    }

    #[test]
    fn new_york_on_its_transition_days_fires_once_at_the_wall_clock_time() {
        let mut g = prod().autoscaling_groups[0].clone();
        g.schedule = vec![
            action(
                "early",
                "30 1 * * *",
                "America/New_York",
                Some(3),
                None,
                None,
            ),
            action("gap", "30 2 * * *", "America/New_York", Some(4), None, None),
            action("nine", "0 9 * * *", "America/New_York", Some(5), None, None),
        ];
        // 2026-11-01: clocks go back at 02:00 EDT to 01:00 EST, so 01:30 happens twice.
        let back = group_preview(&g, utc(2026, 11, 1, 4, 0), 24);
        let names: Vec<(&str, String)> = back
            .steps
            .iter()
            .map(|s| (s.action.as_str(), s.at.to_rfc3339()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("early", "2026-11-01T05:30:00+00:00".to_owned()),
                ("gap", "2026-11-01T07:30:00+00:00".to_owned()),
                ("nine", "2026-11-01T14:00:00+00:00".to_owned()),
            ],
            "once each; 09:00 EST is 14:00 UTC"
        );
        // 2026-03-08: clocks jump from 02:00 to 03:00 EST → EDT; 02:30 does not happen.
        let forward = group_preview(&g, utc(2026, 3, 8, 5, 0), 24);
        let names: Vec<(&str, String)> = forward
            .steps
            .iter()
            .map(|s| (s.action.as_str(), s.at.to_rfc3339()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("early", "2026-03-08T06:30:00+00:00".to_owned()),
                ("nine", "2026-03-08T13:00:00+00:00".to_owned()),
            ],
            "09:00 EDT is 13:00 UTC"
        );
    }

    #[test]
    fn actions_of_one_group_at_the_same_minute_are_flagged() {
        let mut g = prod().autoscaling_groups[0].clone();
        g.schedule = vec![
            action("a", "0 19 * * *", "Asia/Seoul", Some(4), None, None),
            action("b", "0 10 * * *", "UTC", Some(2), None, None),
        ];
        let p = group_preview(&g, utc(2026, 11, 25, 0, 0), 24);
        assert_eq!(
            p.same_minute,
            vec![(
                "2026-11-25T10:00:00+00:00".to_owned(),
                vec!["a".to_owned(), "b".to_owned()]
            )]
        );
        // Desired stays inside the range an action narrows.
        let mut c = Capacity {
            min: 2,
            max: 8,
            desired: Some(6),
        };
        apply(&mut c, None, Some(4), None);
        assert_eq!(c.desired, Some(4));
    }
}
