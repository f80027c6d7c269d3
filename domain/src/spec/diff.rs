//! The semantic diff: field-level edits between two versions of an environment's spec, named
//! the way people point at them (`autoscaling_groups[petclinic-prod-was].max: 8 → 10`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EditKind {
    Added,
    Removed,
    Changed,
}

/// One edit: a path, and the value before and after (as shown to people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldEdit {
    pub path: String,
    pub kind: EditKind,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl fmt::Display for FieldEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let none = || "—".to_owned();
        match self.kind {
            EditKind::Added => write!(
                f,
                "{} added: {}",
                self.path,
                self.after.clone().unwrap_or_else(none)
            ),
            EditKind::Removed => write!(
                f,
                "{} removed: {}",
                self.path,
                self.before.clone().unwrap_or_else(none)
            ),
            EditKind::Changed => write!(
                f,
                "{}: {} → {}",
                self.path,
                self.before.clone().unwrap_or_else(none),
                self.after.clone().unwrap_or_else(none)
            ),
        }
    }
}

struct Out(Vec<FieldEdit>);

impl Out {
    fn field<T: ToString + PartialEq>(
        &mut self,
        path: String,
        before: Option<T>,
        after: Option<T>,
    ) {
        if before == after {
            return;
        }
        let (b, a) = (before.map(|v| v.to_string()), after.map(|v| v.to_string()));
        let kind = match (&b, &a) {
            (None, Some(_)) => EditKind::Added,
            (Some(_), None) => EditKind::Removed,
            _ => EditKind::Changed,
        };
        self.0.push(FieldEdit {
            path,
            kind,
            before: b,
            after: a,
        });
    }

    fn whole(&mut self, path: String, kind: EditKind, summary: String) {
        let (before, after) = match kind {
            EditKind::Removed => (Some(summary), None),
            _ => (None, Some(summary)),
        };
        self.0.push(FieldEdit {
            path,
            kind,
            before,
            after,
        });
    }
}

/// Pairs items of two lists by key, in the order of `after` then the removed ones.
fn pair<'a, T, K: Ord + Clone>(
    before: &'a [T],
    after: &'a [T],
    key: impl Fn(&T) -> K,
) -> Vec<(K, Option<&'a T>, Option<&'a T>)> {
    let b: BTreeMap<K, &T> = before.iter().map(|x| (key(x), x)).collect();
    let mut out: Vec<(K, Option<&T>, Option<&T>)> = after
        .iter()
        .map(|x| (key(x), b.get(&key(x)).copied(), Some(x)))
        .collect();
    let a: BTreeMap<K, &T> = after.iter().map(|x| (key(x), x)).collect();
    out.extend(
        before
            .iter()
            .filter(|x| !a.contains_key(&key(x)))
            .map(|x| (key(x), Some(x), None)),
    );
    out
}

pub fn cpu_summary(c: &CpuScaling) -> String {
    match c {
        CpuScaling::TargetTracking { target_percent } => format!("target tracking at {target_percent} % CPU"),
        CpuScaling::Step { scale_out_above, scale_in_below, adjustment, cooldown_seconds } => format!(
            "step: out above {scale_out_above} %, in below {scale_in_below} %, ±{adjustment}, cooldown {cooldown_seconds} s"
        ),
    }
}

pub fn action_summary(a: &ScheduledAction) -> String {
    let mut parts = vec![format!("cron \"{}\" {}", a.cron, a.timezone)];
    for (k, v) in [
        ("min", a.capacity.min()),
        ("max", a.capacity.max()),
        ("desired", a.capacity.desired()),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k} {v}"));
        }
    }
    parts.join(", ")
}

fn window_summary(w: &ChangeWindow) -> String {
    let days: Vec<&str> = w.days.iter().map(|d| d.as_str()).collect();
    format!("{} {}–{} {}", days.join(","), w.start, w.end, w.timezone)
}

fn indicator_summary(i: &Indicator) -> Vec<(&'static str, String)> {
    match i {
        Indicator::Errors { errors, total } => {
            vec![("errors", errors.clone()), ("total", total.clone())]
        }
        Indicator::Good { good, total } => vec![("good", good.clone()), ("total", total.clone())],
        Indicator::LoadBalancer {
            load_balancer,
            latency_under_ms,
        } => {
            let mut v = vec![("load_balancer", load_balancer.clone())];
            if let Some(ms) = latency_under_ms {
                v.push(("latency_under_ms", ms.to_string()));
            }
            v
        }
    }
}

fn load_balancer_summary(l: &LoadBalancer) -> String {
    let mut s = l.name.clone();
    if let Some(t) = &l.tier {
        s.push_str(&format!(" (tier {t})"));
    }
    if !l.target_groups.is_empty() {
        s.push_str(&format!(": {}", l.target_groups.join(", ")));
    }
    s
}

/// Edits from `before` (`None`: never applied) to `after`.
pub fn semantic_diff(before: Option<&EnvironmentSpec>, after: &EnvironmentSpec) -> Vec<FieldEdit> {
    let empty = EnvironmentSpec {
        environment: after.environment.clone(),
        autoscaling_groups: Vec::new(),
        databases: Vec::new(),
        security_groups: Vec::new(),
        slos: Vec::new(),
        monitoring: Monitoring::default(),
        subnets: Vec::new(),
        network_acls: Vec::new(),
    };
    let before_spec = before.unwrap_or(&empty);
    let mut out = Out(Vec::new());

    if let Some(b) = before {
        let (e0, e1) = (&b.environment, &after.environment);
        out.field(
            "environment.region".into(),
            e0.region.clone(),
            e1.region.clone(),
        );
        out.field(
            "environment.approvals.required".into(),
            Some(e0.approvals.required),
            Some(e1.approvals.required),
        );
        out.field(
            "environment.approvals.allow_self_approval".into(),
            Some(e0.approvals.allow_self_approval),
            Some(e1.approvals.allow_self_approval),
        );
        out.field(
            "environment.auto_apply".into(),
            Some(e0.auto_apply),
            Some(e1.auto_apply),
        );
        let w0: Vec<String> = e0.change_windows.iter().map(window_summary).collect();
        let w1: Vec<String> = e1.change_windows.iter().map(window_summary).collect();
        if w0 != w1 {
            let show = |w: &[String]| {
                if w.is_empty() {
                    "any time".to_owned()
                } else {
                    w.join("; ")
                }
            };
            out.field(
                "environment.change_windows".into(),
                Some(show(&w0)),
                Some(show(&w1)),
            );
        }
        let (g0, g1) = (&e0.guardrails, &e1.guardrails);
        out.field(
            "environment.guardrails.min_instances".into(),
            Some(g0.min_instances),
            Some(g1.min_instances),
        );
        out.field(
            "environment.guardrails.max_instances".into(),
            Some(g0.max_instances),
            Some(g1.max_instances),
        );
        out.field(
            "environment.guardrails.require_multi_az".into(),
            Some(g0.require_multi_az),
            Some(g1.require_multi_az),
        );
        let (c0, c1) = (&e0.cost, &e1.cost);
        out.field(
            "environment.cost.max_monthly".into(),
            c0.max_monthly,
            c1.max_monthly,
        );
        out.field(
            "environment.cost.extra_approval_above".into(),
            c0.extra_approval_above,
            c1.extra_approval_above,
        );
        out.field(
            "environment.watch.minutes".into(),
            Some(e0.watch.minutes),
            Some(e1.watch.minutes),
        );
        out.field(
            "environment.watch.auto_revert".into(),
            Some(e0.watch.auto_revert),
            Some(e1.watch.auto_revert),
        );
        out.field(
            "environment.wait_for_capacity".into(),
            Some(e0.wait_for_capacity),
            Some(e1.wait_for_capacity),
        );
    }

    for (name, b, a) in pair(
        &before_spec.autoscaling_groups,
        &after.autoscaling_groups,
        |g| g.name.clone(),
    ) {
        let p = format!("autoscaling_groups[{name}]");
        match (b, a) {
            (None, Some(a)) => out.whole(
                p,
                EditKind::Added,
                format!(
                    "tier {}, min {}, max {}{}",
                    a.tier,
                    a.capacity.min(),
                    a.capacity.max(),
                    a.capacity
                        .desired()
                        .map(|d| format!(", desired {d}"))
                        .unwrap_or_default()
                ),
            ),
            (Some(b), None) => out.whole(
                p,
                EditKind::Removed,
                format!(
                    "tier {}, min {}, max {}",
                    b.tier,
                    b.capacity.min(),
                    b.capacity.max()
                ),
            ),
            (Some(b), Some(a)) => {
                out.field(format!("{p}.tier"), Some(&b.tier), Some(&a.tier));
                out.field(
                    format!("{p}.min"),
                    Some(b.capacity.min()),
                    Some(a.capacity.min()),
                );
                out.field(
                    format!("{p}.max"),
                    Some(b.capacity.max()),
                    Some(a.capacity.max()),
                );
                out.field(
                    format!("{p}.desired"),
                    b.capacity.desired(),
                    a.capacity.desired(),
                );
                out.field(
                    format!("{p}.instance_type"),
                    b.instance_type.as_ref(),
                    a.instance_type.as_ref(),
                );
                out.field(
                    format!("{p}.cpu_scaling"),
                    b.cpu_scaling.as_ref().map(cpu_summary),
                    a.cpu_scaling.as_ref().map(cpu_summary),
                );
                out.field(
                    format!("{p}.launch"),
                    b.launch.as_ref().map(launch_summary),
                    a.launch.as_ref().map(launch_summary),
                );
                out.field(
                    format!("{p}.rollout"),
                    Some(rollout_summary(&b.rollout)),
                    Some(rollout_summary(&a.rollout)),
                );
                for (an, sb, sa) in pair(&b.schedule, &a.schedule, |s| s.name.clone()) {
                    let sp = format!("{p}.schedule[{an}]");
                    match (sb, sa) {
                        (None, Some(sa)) => out.whole(sp, EditKind::Added, action_summary(sa)),
                        (Some(sb), None) => out.whole(sp, EditKind::Removed, action_summary(sb)),
                        (Some(sb), Some(sa)) => {
                            out.field(format!("{sp}.cron"), Some(&sb.cron), Some(&sa.cron));
                            out.field(
                                format!("{sp}.timezone"),
                                Some(&sb.timezone),
                                Some(&sa.timezone),
                            );
                            out.field(format!("{sp}.min"), sb.capacity.min(), sa.capacity.min());
                            out.field(format!("{sp}.max"), sb.capacity.max(), sa.capacity.max());
                            out.field(
                                format!("{sp}.desired"),
                                sb.capacity.desired(),
                                sa.capacity.desired(),
                            );
                        }
                        (None, None) => {}
                    }
                }
            }
            (None, None) => {}
        }
    }
    // New groups' schedules are part of the group's "added" line only when there is no base;
    // list them too, so a first change shows every action.
    if before.is_none() {
        for g in &after.autoscaling_groups {
            for s in &g.schedule {
                out.whole(
                    format!("autoscaling_groups[{}].schedule[{}]", g.name, s.name),
                    EditKind::Added,
                    action_summary(s),
                );
            }
        }
    }

    for (id, b, a) in pair(&before_spec.databases, &after.databases, |d| {
        d.identifier.clone()
    }) {
        let p = format!("databases[{id}]");
        match (b, a) {
            (None, Some(a)) => out.whole(p, EditKind::Added, db_summary(a)),
            (Some(b), None) => out.whole(p, EditKind::Removed, db_summary(b)),
            (Some(b), Some(a)) => {
                out.field(
                    format!("{p}.instance_class"),
                    b.instance_class.clone(),
                    a.instance_class.clone(),
                );
                out.field(format!("{p}.multi_az"), b.multi_az, a.multi_az);
                out.field(
                    format!("{p}.allocated_storage_gb"),
                    b.allocated_storage_gb,
                    a.allocated_storage_gb,
                );
                out.field(
                    format!("{p}.backup_retention_days"),
                    b.backup_retention_days,
                    a.backup_retention_days,
                );
                out.field(
                    format!("{p}.deletion_protection"),
                    b.deletion_protection,
                    a.deletion_protection,
                );
            }
            (None, None) => {}
        }
    }

    for (name, b, a) in pair(&before_spec.security_groups, &after.security_groups, |s| {
        s.name.clone()
    }) {
        let p = format!("security_groups[{name}]");
        let no_rules: Vec<IngressRule> = Vec::new();
        match (b, a) {
            (None, Some(_)) => out.whole(
                p.clone(),
                EditKind::Added,
                format!("{} ingress rules", a.map_or(0, |s| s.ingress.len())),
            ),
            (Some(b), None) => out.whole(
                p.clone(),
                EditKind::Removed,
                format!("{} ingress rules", b.ingress.len()),
            ),
            (Some(b), Some(a)) => {
                out.field(format!("{p}.edge"), Some(b.edge), Some(a.edge));
                out.field(format!("{p}.tier"), b.tier.as_ref(), a.tier.as_ref());
                out.field(
                    format!("{p}.subnets"),
                    b.subnets.as_ref(),
                    a.subnets.as_ref(),
                );
            }
            (None, None) => {}
        }
        let rb = b.map_or(&no_rules, |s| &s.ingress);
        let ra = a.map_or(&no_rules, |s| &s.ingress);
        for (rule, x, y) in pair(rb, ra, |r| r.summary()) {
            let rp = format!("{p}.ingress[{rule}]");
            match (x, y) {
                (None, Some(r)) => out.whole(
                    rp,
                    EditKind::Added,
                    r.description.clone().unwrap_or_else(|| "rule".into()),
                ),
                (Some(r), None) => out.whole(
                    rp,
                    EditKind::Removed,
                    r.description.clone().unwrap_or_else(|| "rule".into()),
                ),
                (Some(x), Some(y)) => out.field(
                    format!("{rp}.description"),
                    x.description.clone(),
                    y.description.clone(),
                ),
                (None, None) => {}
            }
        }
    }

    for (name, b, a) in pair(&before_spec.subnets, &after.subnets, |s| s.resource.clone()) {
        let p = format!("subnets[{name}]");
        let summary = |s: &Subnet| {
            format!(
                "tier {}, {}{}",
                s.tier,
                s.cidr,
                if s.public { ", public" } else { "" }
            )
        };
        match (b, a) {
            (None, Some(a)) => out.whole(p, EditKind::Added, summary(a)),
            (Some(b), None) => out.whole(p, EditKind::Removed, summary(b)),
            (Some(b), Some(a)) => {
                out.field(format!("{p}.tier"), Some(&b.tier), Some(&a.tier));
                out.field(format!("{p}.cidr"), Some(&b.cidr), Some(&a.cidr));
                out.field(format!("{p}.public"), Some(b.public), Some(a.public));
            }
            (None, None) => {}
        }
    }

    for (name, b, a) in pair(&before_spec.network_acls, &after.network_acls, |n| {
        n.resource.clone()
    }) {
        let p = format!("network_acls[{name}]");
        let summary = |n: &NetworkAcl| {
            format!(
                "guards the {} subnets; {} ingress and {} egress entries",
                n.subnets.join(", "),
                n.ingress.len(),
                n.egress.len()
            )
        };
        match (b, a) {
            (None, Some(a)) => out.whole(p.clone(), EditKind::Added, summary(a)),
            (Some(b), None) => out.whole(p.clone(), EditKind::Removed, summary(b)),
            (Some(b), Some(a)) => out.field(
                format!("{p}.subnets"),
                Some(b.subnets.join(", ")),
                Some(a.subnets.join(", ")),
            ),
            (None, None) => {}
        }
        let none: Vec<AclEntry> = Vec::new();
        for (dir, egress) in [("ingress", false), ("egress", true)] {
            fn list<'a>(
                n: Option<&'a NetworkAcl>,
                egress: bool,
                none: &'a [AclEntry],
            ) -> &'a [AclEntry] {
                match n {
                    Some(n) if egress => &n.egress,
                    Some(n) => &n.ingress,
                    None => none,
                }
            }
            for (rule, x, y) in pair(list(b, egress, &none), list(a, egress, &none), |e| e.rule) {
                let text = |e: &AclEntry| crate::observed::ObservedAclEntry::from(e).text(egress);
                let rp = format!("{p}.{dir}[{rule}]");
                match (x, y) {
                    (None, Some(e)) => out.whole(rp, EditKind::Added, text(e)),
                    (Some(e), None) => out.whole(rp, EditKind::Removed, text(e)),
                    (Some(x), Some(y)) => out.field(rp, Some(text(x)), Some(text(y))),
                    (None, None) => {}
                }
            }
        }
    }

    for (name, b, a) in pair(&before_spec.slos, &after.slos, |s| s.name.clone()) {
        let p = format!("slos[{name}]");
        match (b, a) {
            (None, Some(a)) => out.whole(
                p,
                EditKind::Added,
                format!("{} % over {} days", a.objective, a.window_days),
            ),
            (Some(b), None) => out.whole(
                p,
                EditKind::Removed,
                format!("{} % over {} days", b.objective, b.window_days),
            ),
            (Some(b), Some(a)) => {
                out.field(
                    format!("{p}.objective"),
                    Some(b.objective),
                    Some(a.objective),
                );
                out.field(
                    format!("{p}.window_days"),
                    Some(b.window_days),
                    Some(a.window_days),
                );
                let (ib, ia) = (
                    indicator_summary(&b.indicator),
                    indicator_summary(&a.indicator),
                );
                for k in [
                    "errors",
                    "good",
                    "total",
                    "load_balancer",
                    "latency_under_ms",
                ] {
                    let find = |v: &[(&str, String)]| {
                        v.iter().find(|(n, _)| *n == k).map(|(_, q)| q.to_string())
                    };
                    out.field(format!("{p}.{k}"), find(&ib), find(&ia));
                }
            }
            (None, None) => {}
        }
    }

    let (mb, ma) = (&before_spec.monitoring.tiers, &after.monitoring.tiers);
    for tier in mb.keys().chain(ma.keys().filter(|k| !mb.contains_key(*k))) {
        out.field(
            format!("monitoring.tiers.{tier}"),
            mb.get(tier),
            ma.get(tier),
        );
    }
    let (lb, la) = (
        &before_spec.monitoring.load_balancers,
        &after.monitoring.load_balancers,
    );
    for name in lb
        .iter()
        .chain(la.iter().filter(|a| !lb.iter().any(|b| b.name == a.name)))
        .map(|l| &l.name)
    {
        let find = |v: &[LoadBalancer]| {
            v.iter()
                .find(|l| &l.name == name)
                .map(load_balancer_summary)
        };
        out.field(
            format!("monitoring.load_balancers[{name}]"),
            find(lb),
            find(la),
        );
    }
    out.field(
        "monitoring.scrape_port".to_owned(),
        before_spec.monitoring.scrape_port,
        after.monitoring.scrape_port,
    );
    out.0
}

fn db_summary(d: &Database) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &d.instance_class {
        parts.push(c.clone());
    }
    if let Some(m) = d.multi_az {
        parts.push(if m {
            "Multi-AZ".into()
        } else {
            "single-AZ".into()
        });
    }
    if let Some(s) = d.allocated_storage_gb {
        parts.push(format!("{s} GB"));
    }
    if parts.is_empty() {
        "no managed settings".into()
    } else {
        parts.join(", ")
    }
}

/// `launch_template web-lt version 7` or `image ami-…`.
fn launch_summary(l: &crate::spec::Launch) -> String {
    match l {
        crate::spec::Launch::Template { name, version } => {
            format!("launch_template {name} version {}", version.aws())
        }
        crate::spec::Launch::Image { image_id } => format!("image {image_id}"),
    }
}

/// A rollout's preferences in one line.
fn rollout_summary(r: &crate::spec::Rollout) -> String {
    format!(
        "checkpoints {:?}, bake {} s, min healthy {} %, max healthy {} %",
        r.checkpoints, r.bake_seconds, r.min_healthy_percent, r.max_healthy_percent
    )
}
