//! The `slos` and `monitoring` sections (both in slo.yaml).

use std::collections::BTreeMap;

use super::fields::{item_path, number, text, uint, Cx, Fields, OneOf};
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
    let total = f.read_required(cx, "total", query);
    let indicator = match f.one_of(
        cx,
        "errors",
        "good",
        "give errors (bad events) or good (good events), with total",
    ) {
        Some(OneOf::First(e)) => query(cx, e, &f.sub("errors"))
            .zip(total)
            .map(|(errors, total)| Indicator::Errors { errors, total }),
        Some(OneOf::Second(g)) => query(cx, g, &f.sub("good"))
            .zip(total)
            .map(|(good, total)| Indicator::Good { good, total }),
        None => None,
    };
    Some(Slo {
        name: name?,
        objective: objective?,
        window_days: window_days?,
        indicator: indicator?,
        loc: cx.loc(node.pos),
    })
}

pub(super) fn monitoring(cx: &mut Cx, node: &Node) -> Option<Monitoring> {
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
