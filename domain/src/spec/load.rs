//! From YAML files to an [`EnvironmentSpec`], collecting every error with its position rather
//! than stopping at the first.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::str::FromStr;

use super::model::*;
use super::yaml::{self, Node, Pos, Value};
use super::{SourceFile, SpecError};
use crate::cron::Cron;

/// The top-level keys of spec format v1.
pub const TOP_LEVEL: [&str; 6] = [
    "environment",
    "autoscaling_groups",
    "databases",
    "security_groups",
    "slos",
    "monitoring",
];

/// Collects errors for one file.
struct Cx<'a> {
    file: &'a str,
    errors: &'a mut Vec<SpecError>,
}

impl Cx<'_> {
    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(SpecError {
            file: self.file.to_owned(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        });
    }

    fn loc(&self, pos: Pos) -> Loc {
        Loc {
            file: self.file.to_owned(),
            line: pos.line,
            col: pos.col,
        }
    }
}

/// A mapping's entries, checked against the keys allowed there.
struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, Pos)>,
    pos: Pos,
    path: String,
}

impl<'n> Fields<'n> {
    fn new(cx: &mut Cx, node: &'n Node, path: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        let Value::Map(map) = &node.value else {
            cx.err(
                node.pos,
                format!("`{path}`: expected a mapping, found {}", node.kind()),
            );
            return None;
        };
        let mut entries: Vec<(&'n str, &'n Node, Pos)> = Vec::new();
        for (k, v) in map {
            let Value::Scalar { text: key, .. } = &k.value else {
                cx.err(
                    k.pos,
                    format!("`{path}`: keys must be plain names, found {}", k.kind()),
                );
                continue;
            };
            if !allowed.contains(&key.as_str()) {
                cx.err(
                    k.pos,
                    format!(
                        "`{path}`: unknown key `{key}`; expected one of {}",
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            if let Some((_, _, first)) = entries.iter().find(|(name, _, _)| *name == key.as_str()) {
                cx.err(
                    k.pos,
                    format!(
                        "`{path}.{key}` is given twice (first at line {})",
                        first.line
                    ),
                );
                continue;
            }
            entries.push((key.as_str(), v, k.pos));
        }
        Some(Fields {
            entries,
            pos: node.pos,
            path: path.to_owned(),
        })
    }

    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, v, _)| *v)
            .filter(|v| !v.is_null())
    }

    fn required(&self, cx: &mut Cx, key: &str) -> Option<&'n Node> {
        let v = self.get(key);
        if v.is_none() {
            cx.err(self.pos, format!("`{}`: missing `{key}`", self.path));
        }
        v
    }

    fn sub(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }
}

fn scalar<'n>(cx: &mut Cx, node: &'n Node, path: &str, expected: &str) -> Option<(&'n str, bool)> {
    match &node.value {
        Value::Scalar { text, quoted } if !node.is_null() => Some((text.as_str(), *quoted)),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected {expected}, found {}", node.kind()),
            );
            None
        }
    }
}

fn text(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let (s, _) = scalar(cx, node, path, "text")?;
    if s.trim().is_empty() {
        cx.err(node.pos, format!("`{path}`: must not be empty"));
        return None;
    }
    Some(s.to_owned())
}

fn uint(cx: &mut Cx, node: &Node, path: &str, lo: u32, hi: u32) -> Option<u32> {
    let (s, quoted) = scalar(cx, node, path, "a whole number")?;
    match s.parse::<u32>() {
        Ok(v) if !quoted && (lo..=hi).contains(&v) => Some(v),
        Ok(v) if !quoted => {
            cx.err(node.pos, format!("`{path}`: {v} is outside {lo}–{hi}"));
            None
        }
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected a whole number, found `{s}`"),
            );
            None
        }
    }
}

fn number(cx: &mut Cx, node: &Node, path: &str) -> Option<f64> {
    let (s, quoted) = scalar(cx, node, path, "a number")?;
    match s.parse::<f64>() {
        Ok(v) if !quoted && v.is_finite() => Some(v),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected a number, found `{s}`"),
            );
            None
        }
    }
}

fn boolean(cx: &mut Cx, node: &Node, path: &str) -> Option<bool> {
    let (s, quoted) = scalar(cx, node, path, "true or false")?;
    match (s, quoted) {
        ("true" | "True" | "TRUE", false) => Some(true),
        ("false" | "False" | "FALSE", false) => Some(false),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected true or false, found `{s}`"),
            );
            None
        }
    }
}

fn list<'n>(cx: &mut Cx, node: &'n Node, path: &str) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected a list, found {}", node.kind()),
            );
            None
        }
    }
}

fn timezone(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let tz = text(cx, node, path)?;
    if chrono_tz::Tz::from_str(&tz).is_err() {
        cx.err(
            node.pos,
            format!("`{path}`: `{tz}` is not an IANA time zone (like Asia/Seoul or UTC)"),
        );
        return None;
    }
    Some(tz)
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

/// Reports a second item with the same name.
fn unique(cx: &mut Cx, seen: &mut HashMap<String, Pos>, name: &str, pos: Pos, what: &str) {
    if let Some(first) = seen.get(name) {
        cx.err(
            pos,
            format!("duplicate {what} `{name}` (first at line {})", first.line),
        );
    } else {
        seen.insert(name.to_owned(), pos);
    }
}

/// `list[name]` for an item of a named list (its index when it has no usable name yet), so
/// every message about the item names it.
fn item_path(list: &str, node: &Node, key: &str, index: usize) -> String {
    let name = match &node.value {
        Value::Map(entries) => entries
            .iter()
            .find_map(|(k, v)| match (&k.value, &v.value) {
                (Value::Scalar { text: k, .. }, Value::Scalar { text: v, .. })
                    if k == key && !v.is_empty() =>
                {
                    Some(v.clone())
                }
                _ => None,
            }),
        _ => None,
    };
    format!("{list}[{}]", name.unwrap_or_else(|| index.to_string()))
}

fn environment(cx: &mut Cx, node: &Node, folder: &str) -> Option<EnvironmentSettings> {
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
    let region = f
        .get("region")
        .and_then(|n| text(cx, n, "environment.region"));
    let mut approvals = Approvals::default();
    if let Some(n) = f.get("approvals") {
        if let Some(a) = Fields::new(
            cx,
            n,
            "environment.approvals",
            &["required", "allow_self_approval"],
        ) {
            if let Some(r) = a
                .get("required")
                .and_then(|n| uint(cx, n, "environment.approvals.required", 0, 5))
            {
                approvals.required = r as u8;
            }
            if let Some(b) = a
                .get("allow_self_approval")
                .and_then(|n| boolean(cx, n, "environment.approvals.allow_self_approval"))
            {
                approvals.allow_self_approval = b;
            }
        }
    }
    let auto_apply = f
        .get("auto_apply")
        .and_then(|n| boolean(cx, n, "environment.auto_apply"))
        .unwrap_or(false);
    let mut change_windows = Vec::new();
    if let Some(items) = f
        .get("change_windows")
        .and_then(|n| list(cx, n, "environment.change_windows"))
    {
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
            &["min_instances", "max_instances", "require_multi_az"],
        ) {
            if let Some(v) = g
                .get("min_instances")
                .and_then(|n| uint(cx, n, "environment.guardrails.min_instances", 0, 10_000))
            {
                guardrails.min_instances = v;
            }
            if let Some(v) = g
                .get("max_instances")
                .and_then(|n| uint(cx, n, "environment.guardrails.max_instances", 1, 10_000))
            {
                guardrails.max_instances = v;
            }
            if let Some(v) = g
                .get("require_multi_az")
                .and_then(|n| boolean(cx, n, "environment.guardrails.require_multi_az"))
            {
                guardrails.require_multi_az = v;
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
    let wait_for_capacity = f
        .get("wait_for_capacity")
        .and_then(|n| boolean(cx, n, "environment.wait_for_capacity"))
        .unwrap_or(false);
    Some(EnvironmentSettings {
        name: name?,
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
    if let Some(m) = f
        .get("minutes")
        .and_then(|n| uint(cx, n, "environment.watch.minutes", 0, 1440))
    {
        out.minutes = m;
    }
    if let Some(b) = f
        .get("auto_revert")
        .and_then(|n| boolean(cx, n, "environment.watch.auto_revert"))
    {
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
    if let Some(items) = f
        .required(cx, "days")
        .and_then(|n| list(cx, n, &f.sub("days")))
    {
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
    let start = f
        .required(cx, "start")
        .and_then(|n| time_of_day(cx, n, &f.sub("start")));
    let end = f
        .required(cx, "end")
        .and_then(|n| time_of_day(cx, n, &f.sub("end")));
    let timezone = f
        .required(cx, "timezone")
        .and_then(|n| timezone(cx, n, &f.sub("timezone")));
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
    let mut ok = true;
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            cx.err(pos, format!("`{path}`: min {a} is above max {b}"));
            ok = false;
        }
    }
    if let (Some(a), Some(d)) = (min, desired) {
        if d < a {
            cx.err(pos, format!("`{path}`: desired {d} is below min {a}"));
            ok = false;
        }
    }
    if let (Some(d), Some(b)) = (desired, max) {
        if d > b {
            cx.err(pos, format!("`{path}`: desired {d} is above max {b}"));
            ok = false;
        }
    }
    ok
}

fn scheduled_action(cx: &mut Cx, node: &Node, path: &str) -> Option<ScheduledAction> {
    let f = Fields::new(
        cx,
        node,
        path,
        &["name", "cron", "timezone", "min", "max", "desired"],
    )?;
    let name = f
        .required(cx, "name")
        .and_then(|n| text(cx, n, &f.sub("name")));
    let cron = f.required(cx, "cron").and_then(|n| {
        let s = text(cx, n, &f.sub("cron"))?;
        match Cron::parse(&s) {
            Ok(c) => Some(c.as_str().to_owned()),
            Err(e) => {
                cx.err(n.pos, format!("`{}`: {e}", f.sub("cron")));
                None
            }
        }
    });
    let tz = f.get("timezone").map_or(Some("UTC".to_owned()), |n| {
        timezone(cx, n, &f.sub("timezone"))
    });
    let min = f
        .get("min")
        .and_then(|n| uint(cx, n, &f.sub("min"), 0, 10_000));
    let max = f
        .get("max")
        .and_then(|n| uint(cx, n, &f.sub("max"), 0, 10_000));
    let desired = f
        .get("desired")
        .and_then(|n| uint(cx, n, &f.sub("desired"), 0, 10_000));
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
    Some(ScheduledAction {
        name: name?,
        cron: cron?,
        timezone: tz?,
        min,
        max,
        desired,
        loc: cx.loc(node.pos),
    })
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

fn autoscaling_group(cx: &mut Cx, node: &Node, index: usize) -> Option<AutoscalingGroup> {
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
    let name = f
        .required(cx, "name")
        .and_then(|n| text(cx, n, &f.sub("name")));
    let tier = f
        .required(cx, "tier")
        .and_then(|n| text(cx, n, &f.sub("tier")));
    let min = f
        .required(cx, "min")
        .and_then(|n| uint(cx, n, &f.sub("min"), 0, 10_000));
    let max = f
        .required(cx, "max")
        .and_then(|n| uint(cx, n, &f.sub("max"), 0, 10_000));
    let desired = f
        .get("desired")
        .and_then(|n| uint(cx, n, &f.sub("desired"), 0, 10_000));
    let ordered = capacity_order(cx, &path, f.pos, min, desired, max);
    let instance_type = f
        .get("instance_type")
        .and_then(|n| instance_type(cx, n, &f.sub("instance_type")));
    let cpu = f
        .get("cpu_scaling")
        .map(|n| cpu_scaling(cx, n, &f.sub("cpu_scaling")));
    let mut schedule = Vec::new();
    let mut seen = HashMap::new();
    if let Some(items) = f
        .get("schedule")
        .and_then(|n| list(cx, n, &f.sub("schedule")))
    {
        for (i, item) in items.iter().enumerate() {
            let p = item_path(&format!("{path}.schedule"), item, "name", i);
            if let Some(a) = scheduled_action(cx, item, &p) {
                unique(cx, &mut seen, &a.name, item.pos, "scheduled action");
                schedule.push(a);
            }
        }
    }
    if !ordered {
        return None;
    }
    Some(AutoscalingGroup {
        name: name?,
        tier: tier?,
        min: min?,
        max: max?,
        desired,
        instance_type,
        cpu_scaling: match cpu {
            None => None,
            Some(c) => Some(c?),
        },
        schedule,
        loc: cx.loc(node.pos),
    })
}

fn database(cx: &mut Cx, node: &Node, index: usize) -> Option<Database> {
    let allowed = [
        "identifier",
        "instance_class",
        "multi_az",
        "allocated_storage_gb",
        "backup_retention_days",
        "deletion_protection",
    ];
    let path = item_path("databases", node, "identifier", index);
    let f = Fields::new(cx, node, &path, &allowed)?;
    let identifier = f
        .required(cx, "identifier")
        .and_then(|n| text(cx, n, &f.sub("identifier")));
    let instance_class = f.get("instance_class").and_then(|n| {
        let c = text(cx, n, &f.sub("instance_class"))?;
        if !c.starts_with("db.") || c.split('.').count() != 3 {
            cx.err(
                n.pos,
                format!(
                    "`{}`: `{c}` is not an instance class like db.t3.medium",
                    f.sub("instance_class")
                ),
            );
            return None;
        }
        Some(c)
    });
    let multi_az = f
        .get("multi_az")
        .and_then(|n| boolean(cx, n, &f.sub("multi_az")));
    let storage = f
        .get("allocated_storage_gb")
        .and_then(|n| uint(cx, n, &f.sub("allocated_storage_gb"), 20, 65_536));
    let backup = f
        .get("backup_retention_days")
        .and_then(|n| uint(cx, n, &f.sub("backup_retention_days"), 0, 35));
    let protection = f
        .get("deletion_protection")
        .and_then(|n| boolean(cx, n, &f.sub("deletion_protection")));
    Some(Database {
        identifier: identifier?,
        instance_class,
        multi_az,
        allocated_storage_gb: storage,
        backup_retention_days: backup,
        deletion_protection: protection,
        loc: cx.loc(node.pos),
    })
}

/// A CIDR block whose host bits are zero.
fn cidr(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let s = text(cx, node, path)?;
    let bad = |cx: &mut Cx, why: String| {
        cx.err(node.pos, format!("`{path}`: `{s}` {why}"));
        None
    };
    let Some((addr, len)) = s.split_once('/') else {
        return bad(cx, "is not a CIDR block like 10.0.0.0/16".into());
    };
    let Ok(ip) = IpAddr::from_str(addr) else {
        return bad(
            cx,
            "is not a CIDR block: the address part is not an IP address".into(),
        );
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let Some(len) = len.parse::<u32>().ok().filter(|l| *l <= max) else {
        return bad(
            cx,
            format!("is not a CIDR block: the prefix length must be 0–{max}"),
        );
    };
    let host_bits_set = match ip {
        IpAddr::V4(v4) => len < 32 && u32::from(v4) & (u32::MAX >> len) != 0,
        IpAddr::V6(v6) => len < 128 && u128::from(v6) & (u128::MAX >> len) != 0,
    };
    if host_bits_set {
        return bad(
            cx,
            "has host bits set; use the network address of the block".into(),
        );
    }
    Some(s)
}

fn ports(cx: &mut Cx, node: &Node, path: &str) -> Option<(u16, u16)> {
    let (s, _) = scalar(cx, node, path, "a port (443) or a range (8000-8080)")?;
    let parse = |p: &str| p.trim().parse::<u16>().ok().filter(|p| *p >= 1);
    let range = match s.split_once('-') {
        Some((a, b)) => parse(a).zip(parse(b)),
        None => parse(s).map(|p| (p, p)),
    };
    match range {
        Some((a, b)) if a <= b => Some((a, b)),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: `{s}` is not a port 1–65535 or a range like 8000-8080"),
            );
            None
        }
    }
}

fn ingress_rule(cx: &mut Cx, node: &Node, path: &str) -> Option<IngressRule> {
    let f = Fields::new(
        cx,
        node,
        path,
        &["protocol", "port", "cidr", "from_group", "description"],
    )?;
    let protocol = f.required(cx, "protocol").and_then(|n| {
        let s = text(cx, n, &f.sub("protocol"))?;
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "icmp" => Some(Protocol::Icmp),
            "all" | "-1" => Some(Protocol::All),
            _ => {
                cx.err(
                    n.pos,
                    format!(
                        "`{}`: `{s}` is not tcp, udp, icmp or all",
                        f.sub("protocol")
                    ),
                );
                None
            }
        }
    });
    let port_range = match (protocol, f.get("port")) {
        (Some(Protocol::Tcp | Protocol::Udp), None) => {
            cx.err(f.pos, format!("`{path}`: a tcp or udp rule needs a port"));
            None
        }
        (Some(Protocol::Icmp | Protocol::All), Some(n)) => {
            cx.err(
                n.pos,
                format!(
                    "`{}`: an icmp or all-protocol rule takes no port",
                    f.sub("port")
                ),
            );
            None
        }
        (_, Some(n)) => ports(cx, n, &f.sub("port")),
        (_, None) => None,
    };
    let source = match (f.get("cidr"), f.get("from_group")) {
        (Some(c), None) => cidr(cx, c, &f.sub("cidr")).map(Source::Cidr),
        (None, Some(g)) => text(cx, g, &f.sub("from_group")).map(Source::FromGroup),
        (Some(_), Some(_)) => {
            cx.err(
                f.pos,
                format!("`{path}`: give either cidr or from_group, not both"),
            );
            None
        }
        (None, None) => {
            cx.err(
                f.pos,
                format!("`{path}`: give cidr or from_group: where the traffic comes from"),
            );
            None
        }
    };
    let description = f
        .get("description")
        .and_then(|n| text(cx, n, &f.sub("description")));
    let protocol = protocol?;
    if matches!(protocol, Protocol::Tcp | Protocol::Udp) && port_range.is_none() {
        return None;
    }
    Some(IngressRule {
        protocol,
        ports: port_range,
        source: source?,
        description,
        loc: cx.loc(node.pos),
    })
}

fn security_group(cx: &mut Cx, node: &Node, index: usize) -> Option<SecurityGroup> {
    let path = item_path("security_groups", node, "name", index);
    let f = Fields::new(cx, node, &path, &["name", "edge", "ingress"])?;
    let name = f
        .required(cx, "name")
        .and_then(|n| text(cx, n, &f.sub("name")));
    let edge = f
        .get("edge")
        .and_then(|n| boolean(cx, n, &f.sub("edge")))
        .unwrap_or(false);
    let mut ingress: Vec<IngressRule> = Vec::new();
    if let Some(items) = f
        .get("ingress")
        .and_then(|n| list(cx, n, &f.sub("ingress")))
    {
        for (i, item) in items.iter().enumerate() {
            if let Some(rule) = ingress_rule(cx, item, &format!("{path}.ingress[{i}]")) {
                if let Some(first) = ingress.iter().find(|r| {
                    r.protocol == rule.protocol && r.ports == rule.ports && r.source == rule.source
                }) {
                    cx.err(
                        item.pos,
                        format!(
                            "`{path}.ingress[{i}]`: the same rule as at line {}",
                            first.loc.line
                        ),
                    );
                } else {
                    ingress.push(rule);
                }
            }
        }
    }
    Some(SecurityGroup {
        name: name?,
        edge,
        ingress,
        loc: cx.loc(node.pos),
    })
}

fn query(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let q = text(cx, node, path)?;
    if !q.contains("{{window}}") {
        cx.err(node.pos, format!("`{path}`: the query needs {{{{window}}}} where the range goes, e.g. rate(x[{{{{window}}}}])"));
        return None;
    }
    Some(q)
}

fn slo(cx: &mut Cx, node: &Node, index: usize) -> Option<Slo> {
    let allowed = [
        "name",
        "objective",
        "window_days",
        "errors",
        "good",
        "total",
    ];
    let path = item_path("slos", node, "name", index);
    let f = Fields::new(cx, node, &path, &allowed)?;
    let name = f
        .required(cx, "name")
        .and_then(|n| text(cx, n, &f.sub("name")));
    let objective = f.required(cx, "objective").and_then(|n| {
        let v = number(cx, n, &f.sub("objective"))?;
        if v <= 0.0 || v >= 100.0 {
            cx.err(
                n.pos,
                format!(
                    "`{}`: {v} must be a percentage strictly between 0 and 100",
                    f.sub("objective")
                ),
            );
            return None;
        }
        Some(v)
    });
    let window_days = f
        .get("window_days")
        .map_or(Some(30), |n| uint(cx, n, &f.sub("window_days"), 1, 90));
    let total = f
        .required(cx, "total")
        .and_then(|n| query(cx, n, &f.sub("total")));
    let indicator = match (f.get("errors"), f.get("good")) {
        (Some(e), None) => query(cx, e, &f.sub("errors"))
            .zip(total)
            .map(|(errors, total)| Indicator::Errors { errors, total }),
        (None, Some(g)) => query(cx, g, &f.sub("good"))
            .zip(total)
            .map(|(good, total)| Indicator::Good { good, total }),
        (Some(_), Some(_)) => {
            cx.err(
                f.pos,
                format!("`{path}`: give either errors or good, not both"),
            );
            None
        }
        (None, None) => {
            cx.err(
                f.pos,
                format!("`{path}`: give errors (bad events) or good (good events), with total"),
            );
            None
        }
    };
    Some(Slo {
        name: name?,
        objective: objective?,
        window_days: window_days?,
        indicator: indicator?,
        loc: cx.loc(node.pos),
    })
}

fn monitoring(cx: &mut Cx, node: &Node) -> Option<Monitoring> {
    let f = Fields::new(cx, node, "monitoring", &["tiers"])?;
    let mut tiers = BTreeMap::new();
    if let Some(t) = f.get("tiers") {
        let Value::Map(entries) = &t.value else {
            cx.err(
                t.pos,
                format!(
                    "`monitoring.tiers`: expected a mapping of tier to selector, found {}",
                    t.kind()
                ),
            );
            return None;
        };
        for (k, v) in entries {
            let Some(tier) = text(cx, k, "monitoring.tiers") else {
                continue;
            };
            let path = format!("monitoring.tiers.{tier}");
            if let Some(sel) = text(cx, v, &path) {
                if !(sel.trim_start().starts_with('{') && sel.trim_end().ends_with('}')) {
                    cx.err(v.pos, format!("`{path}`: expected a label selector like {{job=\"node\",tier=\"{tier}\"}}"));
                } else if tiers.insert(tier.clone(), sel).is_some() {
                    cx.err(k.pos, format!("`{path}` is given twice"));
                }
            }
        }
    }
    Some(Monitoring { tiers })
}

fn named_list<T>(
    cx: &mut Cx,
    node: &Node,
    key: &str,
    what: &str,
    parse: impl Fn(&mut Cx, &Node, usize) -> Option<T>,
    name_of: impl Fn(&T) -> &str,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    if let Some(items) = list(cx, node, key) {
        for (i, item) in items.iter().enumerate() {
            if let Some(v) = parse(cx, item, i) {
                let name = name_of(&v).to_owned();
                let before = cx.errors.len();
                unique(cx, &mut seen, &name, item.pos, what);
                if cx.errors.len() == before {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// Loads one environment from its files (paths relative to the spec repository's root).
pub fn load_environment(
    folder: &str,
    files: &[SourceFile],
) -> Result<EnvironmentSpec, Vec<SpecError>> {
    let mut errors = Vec::new();
    // Which file set each top-level key, and where.
    let mut owners: HashMap<&str, (String, Pos)> = HashMap::new();
    let mut env = None;
    let mut spec = EnvironmentSpec {
        environment: EnvironmentSettings {
            name: folder.to_owned(),
            region: None,
            approvals: Approvals::default(),
            auto_apply: false,
            change_windows: Vec::new(),
            guardrails: Guardrails::default(),
            cost: CostPolicy::default(),
            watch: Watch::default(),
            wait_for_capacity: false,
            loc: Loc::default(),
        },
        autoscaling_groups: Vec::new(),
        databases: Vec::new(),
        security_groups: Vec::new(),
        slos: Vec::new(),
        monitoring: Monitoring::default(),
    };
    let mut sorted: Vec<&SourceFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut bytes = 0;
    for (index, file) in sorted.into_iter().enumerate() {
        let mut cx = Cx {
            file: &file.path,
            errors: &mut errors,
        };
        if let Some(why) = super::size_refusal(index, file.text.len(), bytes) {
            cx.err(Pos { line: 1, col: 1 }, why);
            continue;
        }
        bytes += file.text.len();
        let doc = match yaml::parse(&file.text) {
            Ok(d) => d,
            Err(e) => {
                cx.err(e.pos, e.message);
                continue;
            }
        };
        let Value::Map(entries) = &doc.value else {
            if !doc.is_null() {
                cx.err(
                    doc.pos,
                    format!(
                        "a spec file is a mapping of top-level keys ({}), found {}",
                        TOP_LEVEL.join(", "),
                        doc.kind()
                    ),
                );
            }
            continue;
        };
        for (k, v) in entries {
            let Value::Scalar { text: key, .. } = &k.value else {
                cx.err(k.pos, "top-level keys must be plain names");
                continue;
            };
            let Some(key) = TOP_LEVEL.iter().find(|t| **t == key.as_str()) else {
                cx.err(
                    k.pos,
                    format!(
                        "unknown top-level key `{key}`; expected one of {}",
                        TOP_LEVEL.join(", ")
                    ),
                );
                continue;
            };
            if let Some((other, pos)) = owners.get(key) {
                cx.err(k.pos, format!("`{key}` is already set in {other}:{}; each top-level key belongs in one file", pos.line));
                continue;
            }
            owners.insert(key, (file.path.clone(), k.pos));
            match *key {
                "environment" => env = environment(&mut cx, v, folder),
                "autoscaling_groups" => {
                    spec.autoscaling_groups = named_list(
                        &mut cx,
                        v,
                        key,
                        "autoscaling group",
                        autoscaling_group,
                        |g| &g.name,
                    )
                }
                "databases" => {
                    spec.databases =
                        named_list(&mut cx, v, key, "database", database, |d| &d.identifier)
                }
                "security_groups" => {
                    spec.security_groups =
                        named_list(&mut cx, v, key, "security group", security_group, |s| {
                            &s.name
                        })
                }
                "slos" => spec.slos = named_list(&mut cx, v, key, "SLO", slo, |s| &s.name),
                "monitoring" => {
                    if let Some(m) = monitoring(&mut cx, v) {
                        spec.monitoring = m;
                    }
                }
                _ => unreachable!("every top-level key is handled"),
            }
        }
    }
    match env {
        Some(e) => spec.environment = e,
        None if !owners.contains_key("environment") => errors.push(SpecError {
            file: format!("environments/{folder}/"),
            line: 1,
            col: 1,
            message: "no file of this environment sets the top-level key `environment`".into(),
        }),
        None => {}
    }
    if errors.is_empty() {
        Ok(spec)
    } else {
        super::sort_errors(&mut errors);
        Err(errors)
    }
}
