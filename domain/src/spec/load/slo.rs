//! The `slos` and `monitoring` sections (both in slo.yaml).

use std::collections::BTreeMap;

use std::collections::HashMap;

use super::fields::{item_path, list, number, text, uint, unique, Cx, Fields, OneOf};
use crate::spec::model::*;
use crate::spec::yaml::{Node, Value};

fn query(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let q = text(cx, node, path)?;
    if !q.contains("{{window}}") {
        cx.err(node.pos, format!("`{path}`: the query needs {{{{window}}}} where the range goes, e.g. rate(x[{{{{window}}}}])"));
        return None;
    }
    Some(q)
}

pub(super) fn slo(cx: &mut Cx, node: &Node, index: usize) -> Option<Slo> {
    let allowed = [
        "name",
        "objective",
        "window_days",
        "errors",
        "good",
        "total",
        "load_balancer",
        "latency_under_ms",
    ];
    let path = item_path("slos", node, "name", index);
    let f = Fields::new(cx, node, &path, &allowed)?;
    let name = f.read_required(cx, "name", text);
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
    let indicator = match f.get("load_balancer") {
        Some(lb) => load_balancer_indicator(cx, &f, lb),
        None => {
            if let Some(n) = f.get("latency_under_ms") {
                cx.err(
                    n.pos,
                    format!(
                        "`{}`: only an SLO counted from a load balancer (`load_balancer`) takes it; a PromQL SLO says its threshold in its `good` query",
                        f.sub("latency_under_ms")
                    ),
                );
            }
            let total = f.read_required(cx, "total", query);
            match f.one_of(
                cx,
                "errors",
                "good",
                "give errors (bad events) or good (good events), with total; or load_balancer (counted by CloudWatch)",
            ) {
                Some(OneOf::First(e)) => query(cx, e, &f.sub("errors"))
                    .zip(total)
                    .map(|(errors, total)| Indicator::Errors { errors, total }),
                Some(OneOf::Second(g)) => query(cx, g, &f.sub("good"))
                    .zip(total)
                    .map(|(good, total)| Indicator::Good { good, total }),
                None => None,
            }
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

/// An SLO counted by CloudWatch from a load balancer: no PromQL may stand beside it.
fn load_balancer_indicator(cx: &mut Cx, f: &Fields, lb: &Node) -> Option<Indicator> {
    let mut mixed = false;
    for key in ["errors", "good", "total"] {
        if let Some(n) = f.get(key) {
            cx.err(
                n.pos,
                format!(
                    "`{}`: an SLO counted from a load balancer takes no PromQL; give either `load_balancer` or the queries",
                    f.sub(key)
                ),
            );
            mixed = true;
        }
    }
    let name = text(cx, lb, &f.sub("load_balancer"))?;
    if mixed {
        return None;
    }
    let latency_under_ms = match f.get("latency_under_ms") {
        Some(n) => Some(uint(cx, n, &f.sub("latency_under_ms"), 1, 60_000)?),
        None => None,
    };
    Some(Indicator::LoadBalancer {
        load_balancer: name,
        latency_under_ms,
    })
}

/// One of `monitoring.load_balancers`: `{ name, target_groups, tier }`.
fn load_balancer(cx: &mut Cx, node: &Node, index: usize) -> Option<LoadBalancer> {
    let path = item_path("monitoring.load_balancers", node, "name", index);
    let f = Fields::new(cx, node, &path, &["name", "target_groups", "tier"])?;
    let name = f.read_required(cx, "name", |cx, n, p| {
        let t = text(cx, n, p)?;
        if !valid_elb_ref(&t) {
            cx.err(n.pos, format!("`{p}`: `{t}` is not a load balancer's name (1–32 letters, digits and hyphens, not starting or ending with a hyphen) or ARN (arn:aws:elasticloadbalancing:…:loadbalancer/app/…)"));
            return None;
        }
        Some(t)
    });
    let mut target_groups = Vec::new();
    let mut seen = HashMap::new();
    if let Some(items) = f.read(cx, "target_groups", list) {
        for (i, n) in items.iter().enumerate() {
            let p = format!("{}[{i}]", f.sub("target_groups"));
            if let Some(t) = text(cx, n, &p) {
                if !valid_elb_ref(&t) {
                    cx.err(n.pos, format!("`{p}`: `{t}` is not a target group's name (1–32 letters, digits and hyphens) or ARN"));
                    continue;
                }
                unique(cx, &mut seen, &t, n.pos, "target group");
                target_groups.push(t);
            }
        }
    }
    let tier = f.read(cx, "tier", text);
    Some(LoadBalancer {
        name: name?,
        target_groups,
        tier,
        loc: cx.loc(node.pos),
    })
}

/// A load balancer's or target group's name (what ELBv2 allows) or an ARN.
fn valid_elb_ref(t: &str) -> bool {
    if LoadBalancer::is_arn(t) {
        return t.starts_with("arn:aws") && t.contains(":elasticloadbalancing:") && t.len() <= 2048;
    }
    !t.is_empty()
        && t.len() <= 32
        && !t.starts_with('-')
        && !t.ends_with('-')
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

pub(super) fn monitoring(cx: &mut Cx, node: &Node) -> Option<Monitoring> {
    let f = Fields::new(
        cx,
        node,
        "monitoring",
        &["tiers", "load_balancers", "scrape_port"],
    )?;
    let mut load_balancers: Vec<LoadBalancer> = Vec::new();
    if let Some(items) = f.read(cx, "load_balancers", list) {
        let mut seen = HashMap::new();
        for (i, n) in items.iter().enumerate() {
            if let Some(lb) = load_balancer(cx, n, i) {
                unique(cx, &mut seen, &lb.name, n.pos, "load balancer");
                load_balancers.push(lb);
            }
        }
    }
    let scrape_port = f
        .uint(cx, "scrape_port", 1, 65_535)
        .map(|p| u16::try_from(p).expect("checked to 65535"));
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
    Some(Monitoring {
        tiers,
        load_balancers,
        scrape_port,
    })
}

/// The SLOs' load balancers and the load balancers' tiers, which may be written in other files
/// than the sections they name; the tiers only against `groups` loaded whole (`None`: some
/// failed to load).
pub(super) fn cross_check(
    slos: &[Slo],
    monitoring: &Monitoring,
    groups: Option<&[AutoscalingGroup]>,
) -> Vec<crate::spec::SpecError> {
    let mut out = Vec::new();
    let names: Vec<&str> = monitoring
        .load_balancers
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    for s in slos {
        if let Indicator::LoadBalancer { load_balancer, .. } = &s.indicator {
            if !names.contains(&load_balancer.as_str()) {
                out.push(at(&s.loc, format!(
                    "`slos[{}].load_balancer`: `{load_balancer}` is not one of monitoring.load_balancers ({})",
                    s.name,
                    if names.is_empty() { "none is listed".to_owned() } else { names.join(", ") }
                )));
            }
        }
    }
    let groups = groups.unwrap_or_default();
    for lb in &monitoring.load_balancers {
        if let Some(tier) = &lb.tier {
            if !groups.is_empty() && !groups.iter().any(|g| &g.tier == tier) {
                out.push(at(&lb.loc, format!(
                    "`monitoring.load_balancers[{}].tier`: no autoscaling group has the tier `{tier}`",
                    lb.name
                )));
            }
        }
    }
    out
}

fn at(loc: &Loc, message: String) -> crate::spec::SpecError {
    crate::spec::SpecError {
        file: loc.file.clone(),
        line: loc.line,
        col: loc.col,
        message,
    }
}
