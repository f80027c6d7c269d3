//! The scaling planner: an autoscaling group's CPU scaling policies and the alarms calling them.

use super::{op, policy_name, Action, Phases};
use crate::observed::{Comparison, ObservedAlarm, ObservedGroup, PolicySettings};
use crate::spec::{AutoscalingGroup, CpuScaling};

pub(super) struct DesiredScaling {
    pub(super) policies: Vec<(String, PolicySettings)>,
    pub(super) alarms: Vec<(String, String, Comparison, f64)>,
}

pub(super) fn desired_scaling(g: &AutoscalingGroup) -> DesiredScaling {
    match &g.cpu_scaling {
        None => DesiredScaling {
            policies: Vec::new(),
            alarms: Vec::new(),
        },
        Some(CpuScaling::TargetTracking { target_percent }) => DesiredScaling {
            policies: vec![(
                policy_name(&g.name, "target"),
                PolicySettings::TargetTracking {
                    target_percent: *target_percent,
                },
            )],
            alarms: Vec::new(),
        },
        Some(CpuScaling::Step {
            scale_out_above,
            scale_in_below,
            adjustment,
            cooldown_seconds,
        }) => {
            let (out, inn) = (policy_name(&g.name, "out"), policy_name(&g.name, "in"));
            let adj = *adjustment as i32;
            DesiredScaling {
                policies: vec![
                    (
                        out.clone(),
                        PolicySettings::Step {
                            adjustment: adj,
                            cooldown_seconds: *cooldown_seconds,
                        },
                    ),
                    (
                        inn.clone(),
                        PolicySettings::Step {
                            adjustment: -adj,
                            cooldown_seconds: *cooldown_seconds,
                        },
                    ),
                ],
                alarms: vec![
                    (
                        policy_name(&g.name, "high"),
                        out,
                        Comparison::GreaterThanOrEqual,
                        *scale_out_above,
                    ),
                    (
                        policy_name(&g.name, "low"),
                        inn,
                        Comparison::LessThanOrEqual,
                        *scale_in_below,
                    ),
                ],
            }
        }
    }
}

fn policy_text(p: &PolicySettings) -> String {
    match p {
        PolicySettings::TargetTracking { target_percent } => {
            format!("target {target_percent} % CPU")
        }
        PolicySettings::Step {
            adjustment,
            cooldown_seconds,
        } => format!("{adjustment:+} instance(s), cooldown {cooldown_seconds} s"),
    }
}

/// Plans the scaling policies and alarms of `g` against `o`: policies are put before the alarms
/// that call them, alarms deleted before their policies.
pub(super) fn plan_scaling(g: &AutoscalingGroup, o: &ObservedGroup, p: &mut Phases) {
    let resource = format!("autoscaling group {}", g.name);
    let want = desired_scaling(g);
    for (name, settings) in &want.policies {
        let before = o
            .policies
            .iter()
            .find(|x| &x.name == name)
            .map(|x| x.settings);
        if before != Some(*settings) {
            p.put_policies.push(op(
                Action::PutPolicy {
                    group: g.name.to_string(),
                    policy: name.clone(),
                    before,
                    after: *settings,
                },
                resource.clone(),
                match before {
                    Some(b) => format!(
                        "policy {name}: {} → {}",
                        policy_text(&b),
                        policy_text(settings)
                    ),
                    None => format!("create policy {name}: {}", policy_text(settings)),
                },
                None,
            ));
        }
    }
    for (alarm, policy, comparison, threshold) in &want.alarms {
        let before: Option<&ObservedAlarm> = o.alarms.iter().find(|a| &a.name == alarm);
        let same = before.is_some_and(|b| {
            b.threshold == *threshold && b.comparison == *comparison && &b.policy == policy
        });
        if !same {
            p.put_alarms.push(op(
                Action::PutAlarm {
                    group: g.name.to_string(),
                    alarm: alarm.clone(),
                    policy: policy.clone(),
                    comparison: *comparison,
                    threshold: *threshold,
                    before: before.map(|b| b.threshold),
                },
                resource.clone(),
                match before {
                    Some(b) => format!(
                        "alarm {alarm}: CPU {} {} % → {} {threshold} %",
                        b.comparison.symbol(),
                        b.threshold,
                        comparison.symbol()
                    ),
                    None => format!(
                        "create alarm {alarm}: CPU {} {threshold} % calls {policy}",
                        comparison.symbol()
                    ),
                },
                None,
            ));
        }
    }
    for a in o
        .alarms
        .iter()
        .filter(|a| !want.alarms.iter().any(|(n, ..)| n == &a.name))
    {
        p.delete_alarms.push(op(
            Action::DeleteAlarm {
                group: g.name.to_string(),
                alarm: a.name.clone(),
            },
            resource.clone(),
            format!(
                "delete alarm {} (CPU {} {} %)",
                a.name,
                a.comparison.symbol(),
                a.threshold
            ),
            None,
        ));
    }
    for pol in o
        .policies
        .iter()
        .filter(|x| !want.policies.iter().any(|(n, _)| n == &x.name))
    {
        p.delete_policies.push(op(
            Action::DeletePolicy {
                group: g.name.to_string(),
                policy: pol.name.clone(),
            },
            resource.clone(),
            format!(
                "delete policy {} ({})",
                pol.name,
                policy_text(&pol.settings)
            ),
            want.policies
                .is_empty()
                .then(|| "the group no longer scales on CPU".to_owned()),
        ));
    }
}
