//! The `autoscaling_groups` section (autoscaling.yaml): groups, their CPU scaling and their
//! scheduled actions.

use std::collections::HashMap;

use super::fields::{item_path, list, number, parsed, text, timezone, uint, unique, Cx, Fields};
use crate::spec::model::*;
use crate::spec::yaml::{Node, Pos};

fn cpu_scaling(cx: &mut Cx, node: &Node, path: &str) -> Option<CpuScaling> {
    let f = Fields::new(
        cx,
        node,
        path,
        &[
            "target_percent",
            "scale_out_above",
            "scale_in_below",
            "adjustment",
            "cooldown_seconds",
        ],
    )?;
    let target = f.get("target_percent");
    let out = f.get("scale_out_above");
    let inn = f.get("scale_in_below");
    match (target, out, inn) {
        (Some(t), None, None) => {
            for k in ["adjustment", "cooldown_seconds"] {
                if let Some(n) = f.get(k) {
                    cx.err(
                        n.pos,
                        format!(
                            "`{}` applies to step scaling, not to target_percent",
                            f.sub(k)
                        ),
                    );
                }
            }
            let v = number(cx, t, &f.sub("target_percent"))?;
            if !(1.0..=100.0).contains(&v) {
                cx.err(
                    t.pos,
                    format!("`{}`: {v} is outside 1–100", f.sub("target_percent")),
                );
                return None;
            }
            Some(CpuScaling::TargetTracking { target_percent: v })
        }
        (None, Some(o), Some(i)) => {
            let o_v = number(cx, o, &f.sub("scale_out_above"));
            let i_v = number(cx, i, &f.sub("scale_in_below"));
            for (v, n, k) in [(o_v, o, "scale_out_above"), (i_v, i, "scale_in_below")] {
                if let Some(v) = v {
                    if !(0.0..=100.0).contains(&v) {
                        cx.err(n.pos, format!("`{}`: {v} is outside 0–100", f.sub(k)));
                    }
                }
            }
            let (o_v, i_v) = (o_v?, i_v?);
            if i_v >= o_v {
                cx.err(
                    i.pos,
                    format!("`{}`: {i_v} must be below scale_out_above ({o_v}), or the group would flap", f.sub("scale_in_below")),
                );
                return None;
            }
            let adjustment = f
                .get("adjustment")
                .map_or(Some(1), |n| uint(cx, n, &f.sub("adjustment"), 1, 100))?;
            let cooldown_seconds = f.get("cooldown_seconds").map_or(Some(300), |n| {
                uint(cx, n, &f.sub("cooldown_seconds"), 0, 86_400)
            })?;
            Some(CpuScaling::Step {
                scale_out_above: o_v,
                scale_in_below: i_v,
                adjustment,
                cooldown_seconds,
            })
        }
        (Some(_), _, _) => {
            cx.err(f.pos, format!("`{path}`: give either target_percent or scale_out_above and scale_in_below, not both"));
            None
        }
        (None, None, None) => {
            cx.err(
                f.pos,
                format!("`{path}`: give target_percent, or scale_out_above and scale_in_below"),
            );
            None
        }
        (None, _, _) => {
            cx.err(
                f.pos,
                format!("`{path}`: step scaling needs both scale_out_above and scale_in_below"),
            );
            None
        }
    }
}

/// min ≤ desired ≤ max, for whichever of them are given.
fn capacity_order(
    cx: &mut Cx,
    path: &str,
    pos: Pos,
    min: Option<u32>,
    desired: Option<u32>,
    max: Option<u32>,
) -> bool {
    // The values come from `uint` within 0–MAX_CAPACITY, so only their order can be wrong.
    let problems = capacity_problems(min, desired, max);
    for p in &problems {
        cx.err(pos, format!("`{path}`: {p}"));
    }
    problems.is_empty()
}

/// The action's name and the action; the action is `None` (its errors reported) when a value
/// it needs has an error but its name can still be checked for duplicates.
fn scheduled_action(
    cx: &mut Cx,
    node: &Node,
    path: &str,
) -> Option<(String, Option<ScheduledAction>)> {
    let f = Fields::new(
        cx,
        node,
        path,
        &["name", "cron", "timezone", "min", "max", "desired"],
    )?;
    let name = f.read_required(cx, "name", text);
    let cron = f.read_required(cx, "cron", parsed);
    let tz = f
        .get("timezone")
        .map_or(Some(TimeZone::UTC), |n| timezone(cx, n, &f.sub("timezone")));
    let min = f.uint(cx, "min", 0, MAX_CAPACITY);
    let max = f.uint(cx, "max", 0, MAX_CAPACITY);
    let desired = f.uint(cx, "desired", 0, MAX_CAPACITY);
    if f.get("min").is_none() && f.get("max").is_none() && f.get("desired").is_none() {
        cx.err(
            f.pos,
            format!("`{path}`: a scheduled action sets at least one of min, max, desired"),
        );
    }
    let ordered = capacity_order(cx, path, f.pos, min, desired, max);
    if !ordered {
        return None;
    }
    let (name, cron, timezone) = (name?, cron?, tz?);
    // `None` only when none of the three could be read, an error already reported.
    let capacity = CapacityChange::new(min, max, desired).ok();
    let action = capacity.map(|capacity| ScheduledAction {
        name: name.clone(),
        cron,
        timezone,
        capacity,
        loc: cx.loc(node.pos),
    });
    Some((name, action))
}

/// An EC2 instance type as AWS names them: `family.size`, lower-case letters, digits and `-`.
fn instance_type(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let t = text(cx, node, path)?;
    let ok = t.len() <= 32
        && matches!(t.split_once('.'), Some((family, size))
            if !family.is_empty() && !size.is_empty()
                && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'));
    if !ok {
        cx.err(
            node.pos,
            format!("`{path}`: `{t}` is not an EC2 instance type (like `t3.medium`)"),
        );
        return None;
    }
    Some(t)
}

pub(super) fn autoscaling_group(
    cx: &mut Cx,
    node: &Node,
    index: usize,
) -> Option<AutoscalingGroup> {
    let path = item_path("autoscaling_groups", node, "name", index);
    let allowed = [
        "name",
        "tier",
        "min",
        "max",
        "desired",
        "instance_type",
        "cpu_scaling",
        "schedule",
    ];
    let f = Fields::new(cx, node, &path, &allowed)?;
    let name = f.read_required(cx, "name", parsed);
    let tier = f.read_required(cx, "tier", text);
    let min = f.required_uint(cx, "min", 0, MAX_CAPACITY);
    let max = f.required_uint(cx, "max", 0, MAX_CAPACITY);
    let desired = f.uint(cx, "desired", 0, MAX_CAPACITY);
    let ordered = capacity_order(cx, &path, f.pos, min, desired, max);
    let instance_type = f.read(cx, "instance_type", instance_type);
    let cpu = f
        .get("cpu_scaling")
        .map(|n| cpu_scaling(cx, n, &f.sub("cpu_scaling")));
    let mut schedule = Vec::new();
    let mut seen = HashMap::new();
    if let Some(items) = f.read(cx, "schedule", list) {
        for (i, item) in items.iter().enumerate() {
            let p = item_path(&format!("{path}.schedule"), item, "name", i);
            if let Some((name, a)) = scheduled_action(cx, item, &p) {
                unique(cx, &mut seen, &name, item.pos, "scheduled action");
                schedule.extend(a);
            }
        }
    }
    if !ordered {
        return None;
    }
    // Checked in order above, each within 0–MAX_CAPACITY.
    let capacity = Capacity::new(min?, max?, desired).ok()?;
    Some(AutoscalingGroup {
        name: name?,
        tier: tier?,
        capacity,
        instance_type,
        cpu_scaling: match cpu {
            None => None,
            Some(c) => Some(c?),
        },
        schedule,
        loc: cx.loc(node.pos),
    })
}
