//! The schedule planner: the scheduled actions of an autoscaling group.

use super::{op, Action, Phases};
use crate::observed::{ObservedGroup, ObservedScheduledAction};
use crate::spec::{AutoscalingGroup, ScheduledAction};

fn action_text(a: &ObservedScheduledAction) -> String {
    let mut parts = vec![format!("\"{}\" {}", a.recurrence, a.timezone)];
    for (k, v) in [("min", a.min), ("max", a.max), ("desired", a.desired)] {
        if let Some(v) = v {
            parts.push(format!("{k} {v}"));
        }
    }
    parts.join(", ")
}

pub(super) fn scheduled(a: &ScheduledAction) -> ObservedScheduledAction {
    ObservedScheduledAction {
        name: a.name.clone(),
        recurrence: a.cron.to_string(),
        timezone: a.timezone.to_string(),
        min: a.capacity.min(),
        max: a.capacity.max(),
        desired: a.capacity.desired(),
    }
}

/// Plans the scheduled actions of `g` against `o`: actions are written before stale ones are
/// deleted.
pub(super) fn plan_schedule(g: &AutoscalingGroup, o: &ObservedGroup, p: &mut Phases) {
    let resource = format!("autoscaling group {}", g.name);
    for a in &g.schedule {
        let after = scheduled(a);
        let before = o
            .scheduled_actions
            .iter()
            .find(|x| x.name == a.name)
            .cloned();
        if before.as_ref() != Some(&after) {
            p.put_schedules.push(op(
                Action::PutScheduledAction {
                    group: g.name.to_string(),
                    after: after.clone(),
                    before: before.clone(),
                },
                resource.clone(),
                match &before {
                    Some(b) => format!(
                        "scheduled action {}: {} → {}",
                        a.name,
                        action_text(b),
                        action_text(&after)
                    ),
                    None => format!(
                        "create scheduled action {}: {}",
                        a.name,
                        action_text(&after)
                    ),
                },
                None,
            ));
        }
    }
    for b in o
        .scheduled_actions
        .iter()
        .filter(|x| !g.schedule.iter().any(|a| a.name == x.name))
    {
        p.delete_schedules.push(op(
            Action::DeleteScheduledAction {
                group: g.name.to_string(),
                before: b.clone(),
            },
            resource.clone(),
            format!("delete scheduled action {} ({})", b.name, action_text(b)),
            Some(format!(
                "the group no longer changes capacity at \"{}\" {}",
                b.recurrence, b.timezone
            )),
        ));
    }
}
