//! The `environment` section (environment.yaml): name, region, approvals, change windows,
//! guardrails, cost and watch.

use super::fields::{boolean, list, number, text, timezone, Cx, Fields};
use crate::spec::model::*;
use crate::spec::yaml::Node;

pub(super) fn environment(cx: &mut Cx, node: &Node, folder: &str) -> Option<EnvironmentSettings> {
    let f = Fields::new(
        cx,
        node,
        "environment",
        &[
            "name",
            "region",
            "approvals",
            "auto_apply",
            "change_windows",
            "guardrails",
            "cost",
            "watch",
            "wait_for_capacity",
        ],
    )?;
    let name_node = f.required(cx, "name");
    let name = name_node.and_then(|n| text(cx, n, "environment.name"));
    if let (Some(name), Some(n)) = (&name, name_node) {
        if name != folder {
            cx.err(
                n.pos,
                format!("`environment.name` is `{name}` but the folder is environments/{folder}/; they must be equal"),
            );
        }
    }
    let region = f.read(cx, "region", text);
    let mut approvals = Approvals::default();
    if let Some(n) = f.get("approvals") {
        if let Some(a) = Fields::new(
            cx,
            n,
            "environment.approvals",
            &["required", "allow_self_approval"],
        ) {
            if let Some(r) = a.uint(cx, "required", 0, 5) {
                approvals.required = r as u8;
            }
            if let Some(b) = a.read(cx, "allow_self_approval", boolean) {
                approvals.allow_self_approval = b;
            }
        }
    }
    let auto_apply = f.read(cx, "auto_apply", boolean).unwrap_or(false);
    let mut change_windows = Vec::new();
    if let Some(items) = f.read(cx, "change_windows", list) {
        for (i, item) in items.iter().enumerate() {
            let path = format!("environment.change_windows[{i}]");
            if let Some(w) = change_window(cx, item, &path) {
                change_windows.push(w);
            }
        }
    }
    let mut guardrails = Guardrails::default();
    if let Some(n) = f.get("guardrails") {
        if let Some(g) = Fields::new(
            cx,
            n,
            "environment.guardrails",
            &[
                "min_instances",
                "max_instances",
                "require_multi_az",
                "min_healthy_percent",
            ],
        ) {
            if let Some(v) = g.uint(cx, "min_instances", 0, 10_000) {
                guardrails.min_instances = v;
            }
            if let Some(v) = g.uint(cx, "max_instances", 1, 10_000) {
                guardrails.max_instances = v;
            }
            if let Some(v) = g.read(cx, "require_multi_az", boolean) {
                guardrails.require_multi_az = v;
            }
            if let Some(v) = g.uint(cx, "min_healthy_percent", 0, 100) {
                guardrails.min_healthy_percent = v;
            }
            if guardrails.min_instances > guardrails.max_instances {
                cx.err(
                    g.pos,
                    format!(
                        "`environment.guardrails`: min_instances {} is above max_instances {}",
                        guardrails.min_instances, guardrails.max_instances
                    ),
                );
            }
        }
    }
    let cost = f
        .get("cost")
        .map(|n| cost_policy(cx, n))
        .unwrap_or_default();
    let watch = f.get("watch").map(|n| watch(cx, n)).unwrap_or_default();
    let wait_for_capacity = f.read(cx, "wait_for_capacity", boolean).unwrap_or(false);
    // A name equal to a folder that is no environment's name: the loader reports the folder.
    let name = name?.parse().ok()?;
    Some(EnvironmentSettings {
        name,
        region,
        approvals,
        auto_apply,
        change_windows,
        guardrails,
        cost,
        watch,
        wait_for_capacity,
        loc: cx.loc(node.pos),
    })
}

fn watch(cx: &mut Cx, node: &Node) -> Watch {
    let mut out = Watch::default();
    let Some(f) = Fields::new(cx, node, "environment.watch", &["minutes", "auto_revert"]) else {
        return out;
    };
    if let Some(m) = f.uint(cx, "minutes", 0, 1440) {
        out.minutes = m;
    }
    if let Some(b) = f.read(cx, "auto_revert", boolean) {
        out.auto_revert = b;
    }
    out
}

/// `environment.cost`: amounts of money per month, never negative.
fn cost_policy(cx: &mut Cx, node: &Node) -> CostPolicy {
    let mut out = CostPolicy::default();
    let Some(f) = Fields::new(
        cx,
        node,
        "environment.cost",
        &["max_monthly", "extra_approval_above"],
    ) else {
        return out;
    };
    let amount = |cx: &mut Cx, key: &str| {
        let path = format!("environment.cost.{key}");
        let v = f
            .get(key)
            .and_then(|n| number(cx, n, &path).map(|v| (v, n)))?;
        if v.0 < 0.0 {
            cx.err(v.1.pos, format!("`{path}`: {} is below 0", v.0));
            return None;
        }
        Some(v.0)
    };
    out.max_monthly = amount(cx, "max_monthly");
    out.extra_approval_above = amount(cx, "extra_approval_above");
    out
}

fn change_window(cx: &mut Cx, node: &Node, path: &str) -> Option<ChangeWindow> {
    let f = Fields::new(cx, node, path, &["days", "start", "end", "timezone"])?;
    let mut days = Vec::new();
    if let Some(items) = f.read_required(cx, "days", list) {
        for d in items {
            if let Some(s) = text(cx, d, &f.sub("days")) {
                match Weekday::ALL
                    .iter()
                    .find(|w| w.as_str() == s.to_ascii_lowercase())
                {
                    Some(w) => days.push(*w),
                    None => cx.err(
                        d.pos,
                        format!(
                            "`{}`: `{s}` is not a day; use mon, tue, wed, thu, fri, sat, sun",
                            f.sub("days")
                        ),
                    ),
                }
            }
        }
    }
    let start = f.read_required(cx, "start", time_of_day);
    let end = f.read_required(cx, "end", time_of_day);
    let timezone = f.read_required(cx, "timezone", timezone);
    if let (Some(s), Some(e)) = (start, end) {
        if s == e {
            cx.err(
                f.pos,
                format!("`{path}`: start and end are both {s}; the window would be empty"),
            );
        }
    }
    Some(ChangeWindow {
        days,
        start: start?,
        end: end?,
        timezone: timezone?,
    })
}

fn time_of_day(cx: &mut Cx, node: &Node, path: &str) -> Option<TimeOfDay> {
    let s = text(cx, node, path)?;
    let parsed = s.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
        (h < 24 && m < 60 && s.len() == 5).then_some(TimeOfDay(h * 60 + m))
    });
    if parsed.is_none() {
        cx.err(
            node.pos,
            format!("`{path}`: expected a time as HH:MM (24-hour), found `{s}`"),
        );
    }
    parsed
}
