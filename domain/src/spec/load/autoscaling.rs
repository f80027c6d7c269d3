//! The `autoscaling_groups` section (autoscaling.yaml): groups, their CPU scaling and their
//! scheduled actions.

use std::collections::HashMap;

use super::fields::{
    boolean, item_path, list, number, parsed, text, timezone, uint, unique, Cx, Fields,
};
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
        "launch_template",
        "image_id",
        "rollout",
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
    let launch = match (f.get("launch_template"), f.get("image_id")) {
        (Some(_), Some(n)) => {
            cx.err(
                n.pos,
                format!("`{path}`: give either launch_template or image_id, not both"),
            );
            None
        }
        (Some(n), None) => launch_template(cx, n, &f.sub("launch_template")).map(Some),
        (None, Some(n)) => {
            image_id(cx, n, &f.sub("image_id")).map(|image_id| Some(Launch::Image { image_id }))
        }
        (None, None) => Some(None),
    };
    let rollout = match f.get("rollout") {
        Some(n) => {
            let r = rollout(cx, n, &f.sub("rollout"));
            if let (Some(r), Some(Some(Launch::Template { version, .. }))) = (&r, &launch) {
                if r.auto_rollback && version.number().is_none() {
                    cx.err(
                        n.pos,
                        format!(
                            "`{path}.launch_template.version`: {} cannot be rolled back by AWS; name a numbered version, or set rollout.auto_rollback: false",
                            version.aws()
                        ),
                    );
                }
            }
            r
        }
        None => Some(Rollout::default()),
    };
    if f.get("rollout").is_some() && matches!(launch, Some(None)) {
        cx.err(
            f.pos,
            format!("`{path}.rollout`: a rollout needs launch_template or image_id to roll out"),
        );
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
        launch: launch?,
        rollout: rollout?,
        loc: cx.loc(node.pos),
    })
}

/// `launch_template: { name, version }`: a version is a number, or `$Latest` / `$Default`.
fn launch_template(cx: &mut Cx, node: &Node, path: &str) -> Option<Launch> {
    let f = Fields::new(cx, node, path, &["name", "version"])?;
    let name = f.read_required(cx, "name", text);
    let version = f.read_required(cx, "version", |cx, n, p| {
        let (s, _) = super::fields::scalar(cx, n, p, "a version number")?;
        match s {
            "$Latest" => Some(TemplateVersion::Latest),
            "$Default" => Some(TemplateVersion::Default),
            s => match s.parse::<u32>() {
                Ok(v) if v >= 1 => Some(TemplateVersion::Number(v)),
                _ => {
                    cx.err(
                        n.pos,
                        format!("`{p}`: expected a version number (1 or more), $Latest or $Default, found `{s}`"),
                    );
                    None
                }
            },
        }
    });
    Some(Launch::Template {
        name: name?,
        version: version?,
    })
}

/// An AMI id: `ami-` and 8 or 17 hexadecimal digits.
fn image_id(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let s = text(cx, node, path)?;
    let ok = s
        .strip_prefix("ami-")
        .is_some_and(|h| matches!(h.len(), 8 | 17) && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        cx.err(
            node.pos,
            format!("`{path}`: `{s}` is not an image id (like `ami-0abcdef1234567890`)"),
        );
        return None;
    }
    Some(s)
}

/// `rollout`: the refresh's preferences, each checked where it is written.
fn rollout(cx: &mut Cx, node: &Node, path: &str) -> Option<Rollout> {
    let f = Fields::new(
        cx,
        node,
        path,
        &[
            "min_healthy_percent",
            "max_healthy_percent",
            "warmup_seconds",
            "checkpoints",
            "bake_minutes",
            "bake_seconds",
            "skip_matching",
            "auto_rollback",
            "alarms",
        ],
    )?;
    let d = Rollout::default();
    let mut ok = true;
    let min = f
        .get("min_healthy_percent")
        .map_or(Some(d.min_healthy_percent), |n| {
            uint(cx, n, &f.sub("min_healthy_percent"), 0, 100)
        });
    let max = f
        .get("max_healthy_percent")
        .map_or(Some(d.max_healthy_percent), |n| {
            uint(cx, n, &f.sub("max_healthy_percent"), 100, 200)
        });
    if let (Some(lo), Some(hi), Some(n)) = (min, max, f.get("max_healthy_percent")) {
        if hi - lo > 100 {
            cx.err(
                n.pos,
                format!(
                    "`{}`: {hi} is more than 100 above min_healthy_percent ({lo}), which AWS refuses",
                    f.sub("max_healthy_percent")
                ),
            );
            ok = false;
        }
    }
    let warmup = f.uint(cx, "warmup_seconds", 0, 86_400);
    let checkpoints = match f.get("checkpoints") {
        None => Some(d.checkpoints.clone()),
        Some(n) => checkpoints(cx, n, &f.sub("checkpoints")),
    };
    let bake = match (f.get("bake_minutes"), f.get("bake_seconds")) {
        (Some(_), Some(n)) => {
            cx.err(
                n.pos,
                format!("`{path}`: give either bake_minutes or bake_seconds, not both"),
            );
            None
        }
        (Some(n), None) => uint(cx, n, &f.sub("bake_minutes"), 0, 1440).map(|m| m * 60),
        (None, Some(n)) => uint(cx, n, &f.sub("bake_seconds"), 0, 86_400),
        (None, None) => Some(d.bake_seconds),
    };
    let skip_matching = f
        .read(cx, "skip_matching", boolean)
        .unwrap_or(d.skip_matching);
    let auto_rollback = f
        .read(cx, "auto_rollback", boolean)
        .unwrap_or(d.auto_rollback);
    let mut alarms = Vec::new();
    if let Some(items) = f.read(cx, "alarms", list) {
        if items.len() > 10 {
            cx.err(
                f.pos,
                format!(
                    "`{path}.alarms`: AWS takes at most 10 alarms, found {}",
                    items.len()
                ),
            );
            ok = false;
        }
        for (i, item) in items.iter().enumerate() {
            alarms.extend(text(cx, item, &format!("{path}.alarms[{i}]")));
        }
    }
    if !ok {
        return None;
    }
    Some(Rollout {
        min_healthy_percent: min?,
        max_healthy_percent: max?,
        warmup_seconds: warmup,
        checkpoints: checkpoints?,
        bake_seconds: bake?,
        skip_matching,
        auto_rollback,
        alarms,
        loc: Some(cx.loc(node.pos)),
    })
}

/// `checkpoints`: percentages 1–100, strictly ascending, ending at 100.
fn checkpoints(cx: &mut Cx, node: &Node, path: &str) -> Option<Vec<u32>> {
    let items = list(cx, node, path)?;
    if items.is_empty() {
        cx.err(node.pos, format!("`{path}`: give at least [100]"));
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let Some(v) = uint(cx, item, &format!("{path}[{i}]"), 1, 100) else {
            ok = false;
            continue;
        };
        if let Some(prev) = out.last().filter(|p| **p >= v) {
            cx.err(
                item.pos,
                format!("`{path}[{i}]`: {v} does not follow {prev}: checkpoints go up"),
            );
            ok = false;
        }
        out.push(v);
    }
    if ok && out.last() != Some(&100) {
        let last = items.last().map_or(node.pos, |n| n.pos);
        cx.err(
            last,
            format!("`{path}`: the last checkpoint must be 100 (every instance replaced)"),
        );
        ok = false;
    }
    ok.then_some(out)
}
