//! The AWS side of the demo's story: the scaling activities Auto Scaling would have recorded
//! for prod over the days the generated traffic covers (see [`crate::prom::instances_at`]).
//! Each day the 18:50 pre-scale and the 22:00 wind-down fire as scheduled actions (their
//! activities name the action, as Auto Scaling's do), and the CPU policy scales out at 19:00
//! and 20:00 and back in at 23:00. The emulator records none: `demo-aws` serves these in front
//! of it.

use crate::aws::ScalingActivity;
use crate::prom::{instances_at, seoul_hour, DAY, SEOUL_OFFSET};

/// prod's groups, by tier, as the example names them.
pub const GROUPS: [(&str, &str); 2] =
    [("web", "petclinic-prod-web"), ("was", "petclinic-prod-was")];

/// The scheduled action that fires at a Seoul time, by its name's tail (`web-prescale`).
fn action_at(t: i64) -> Option<&'static str> {
    let minute = (t + SEOUL_OFFSET).rem_euclid(3600) / 60;
    match (seoul_hour(t), minute) {
        (18, 50) => Some("prescale"),
        (22, 0) => Some("wind-down"),
        _ => None,
    }
}

/// prod's scaling activities from `days` days before `end` to `end`, oldest first: one per
/// change of a tier's capacity in [`instances_at`], caused by the scheduled action firing then
/// or else by the CPU alarm.
pub fn prod_activities(end: i64, days: i64) -> Vec<ScalingActivity> {
    let mut out = Vec::new();
    // Capacity changes only on whole ten minutes.
    let mut t = end - days * DAY;
    t += (600 - t.rem_euclid(600)) % 600;
    while t <= end {
        let (before, after) = (instances_at(t - 600), instances_at(t));
        for (i, (tier, group)) in GROUPS.into_iter().enumerate() {
            let (from, to) = if i == 0 {
                (before.0, after.0)
            } else {
                (before.1, after.1)
            };
            if from == to {
                continue;
            }
            let id = format!("demo-{group}-{t}");
            let at = t as u64;
            out.push(match action_at(t) {
                Some(action) => ScalingActivity::scheduled(
                    &id,
                    group,
                    &format!("{tier}-{action}"),
                    at,
                    from,
                    to,
                ),
                None if to > from => ScalingActivity::alarmed(
                    &id,
                    group,
                    (&format!("{group}-cpu-high"), &format!("{group}-scale-out")),
                    at,
                    from,
                    to,
                ),
                None => ScalingActivity::alarmed(
                    &id,
                    group,
                    (&format!("{group}-cpu-low"), &format!("{group}-scale-in")),
                    at,
                    from,
                    to,
                ),
            });
        }
        t += 600;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_activities_match_the_examples_schedule() {
        // One Seoul day, 2026-12-06.
        let day_start = 1_796_482_800;
        let acts = prod_activities(day_start + DAY - 1, 1);
        let web: Vec<(&str, String)> = acts
            .iter()
            .filter(|a| a.group == "petclinic-prod-web")
            .map(|a| (&a.started_at[11..16], a.cause.clone()))
            .collect();
        // UTC times (Seoul − 9 h): 18:50, 19:00, 20:00, 22:00, 23:00 Seoul.
        let times: Vec<&str> = web.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, ["09:50", "10:00", "11:00", "13:00", "14:00"]);
        assert!(
            web[0]
                .1
                .contains("the scheduled action web-prescale executed"),
            "{}",
            web[0].1
        );
        assert!(
            web[1]
                .1
                .contains("monitor alarm petclinic-prod-web-cpu-high"),
            "{}",
            web[1].1
        );
        assert!(
            web[3]
                .1
                .contains("the scheduled action web-wind-down executed"),
            "{}",
            web[3].1
        );
        // Every action an activity names is one of the example's.
        let schedule = std::fs::read_to_string(
            crate::workspace().join("examples/petclinic/environments/prod/autoscaling.yaml"),
        )
        .unwrap();
        for a in &acts {
            if let Some(rest) = a.cause.split("the scheduled action ").nth(1) {
                let name = rest.split(' ').next().unwrap();
                assert!(schedule.contains(&format!("name: {name},")), "{name}");
            }
        }
        assert_eq!(acts.len(), 10, "five changes a day for each tier");
    }
}
