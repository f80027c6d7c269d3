//! The spec's files, written from what an import found: one file per top-level key, keys in
//! the reference's order, a comment on each item saying where it came from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{num, recognise_scaling, Found, FoundGroup, Unexpressed};
use crate::observed::{ObservedAclEntry, ObservedRule};
use crate::policy::Floor;
use crate::spec::{AclProtocol, CpuScaling, Guardrails, Source};

/// What the files are written for.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub env: &'a str,
    pub region: &'a str,
    /// The command that imported, as typed (without `--out` and `--force`), for the comments.
    pub command: &'a str,
    pub floor: &'a Floor,
}

/// The files, by name, and what the spec could not say.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub files: Vec<(String, String)>,
    pub unexpressed: Vec<Unexpressed>,
}

/// Tiers a group's name may end in, as the team names them.
const NAMED_TIERS: [&str; 8] = ["web", "was", "app", "api", "db", "worker", "batch", "front"];

/// A scalar as YAML reads it back as the same string: plain when it can be, else quoted.
pub(super) fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !text.starts_with(['-', '.'])
        && text.parse::<f64>().is_err()
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).expect("a string serialises")
    }
}

/// A tag named `tier`, whatever its case.
fn tier_tag(tags: &BTreeMap<String, String>) -> Option<&str> {
    tags.iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("tier") && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// A group's tier and where it came from.
fn group_tier(g: &FoundGroup) -> (String, String) {
    if let Some(t) = tier_tag(&g.tags) {
        return (t.to_owned(), "its `tier` tag".to_owned());
    }
    let parts: Vec<&str> = g.name.split(['-', '_']).collect();
    match parts.iter().rev().find(|p| NAMED_TIERS.contains(p)) {
        Some(t) => ((*t).to_owned(), "its name".to_owned()),
        None => (
            parts.last().copied().unwrap_or("app").to_owned(),
            "the last word of its name (it has no `tier` tag)".to_owned(),
        ),
    }
}

/// The tier of a load balancer's security group, from its name: `…-ext-alb-…` is the
/// external load balancer's, `…-int-alb-…` the internal one's.
fn balancer_tier(name: &str) -> Option<&'static str> {
    let words: Vec<String> = name
        .split(['-', '_', '.'])
        .map(str::to_ascii_lowercase)
        .collect();
    let has = |w: &[&str]| words.iter().any(|x| w.contains(&x.as_str()));
    if !has(&["alb", "elb", "lb", "nlb"]) {
        return None;
    }
    if has(&["ext", "external", "public", "edge"]) {
        Some("external-alb")
    } else if has(&["int", "internal", "private"]) {
        Some("internal-alb")
    } else {
        None
    }
}

fn ports(p: Option<(u16, u16)>) -> String {
    match p {
        Some((a, b)) if a == b => format!(", port: {a}"),
        Some((a, b)) => format!(", port: \"{a}-{b}\""),
        None => String::new(),
    }
}

fn rule_line(r: &ObservedRule) -> String {
    let source = match &r.source {
        Source::Cidr(c) => format!("cidr: {}", scalar(c)),
        Source::FromGroup(g) => format!("from_group: {}", scalar(g)),
    };
    let description = r
        .description
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| format!(", description: {}", scalar(d)))
        .unwrap_or_default();
    format!(
        "      - {{ protocol: {}{}, {source}{description} }}\n",
        r.protocol.as_str(),
        ports(r.ports)
    )
}

fn acl_line(e: &ObservedAclEntry) -> String {
    format!(
        "      - {{ rule: {}, protocol: {}{}, cidr: {}, action: {} }}\n",
        e.rule,
        e.protocol.text(),
        if e.protocol.has_ports() {
            ports(e.ports)
        } else {
            String::new()
        },
        scalar(&e.cidr),
        e.action.as_str()
    )
}

/// Whether the spec can write this entry: the four protocols it names, no ICMP type or code.
fn acl_expressible(e: &ObservedAclEntry) -> Result<(), String> {
    if let AclProtocol::Number(n) = e.protocol {
        return Err(format!(
            "protocol {n}: the spec writes tcp, udp, icmp, icmpv6 or all"
        ));
    }
    match e.icmp {
        Some((t, c)) if t >= 0 || c >= 0 => Err(format!(
            "ICMP type {t} code {c}: the spec's ICMP entries match every type and code"
        )),
        _ => Ok(()),
    }
}

fn is_world(cidr: &str) -> bool {
    cidr == "0.0.0.0/0" || cidr == "::/0"
}

/// Writes the spec's files for `found`.
pub fn write(found: &Found, cx: &Context<'_>) -> Imported {
    let mut unexpressed = Vec::new();
    let mut files = Vec::new();
    let header = format!("# Imported from the live account by `{}`.\n", cx.command);

    files.push(("environment.yaml".to_owned(), environment(cx, &header)));

    // Tiers of what uses each security group and subnet.
    let mut sg_users: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    let mut subnet_tiers: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();

    if !found.groups.is_empty() {
        let mut out = header.clone();
        out.push_str(
            "# Capacity, instance type, CPU scaling and scheduled actions as Auto Scaling runs them.\nautoscaling_groups:\n",
        );
        for (i, g) in found.groups.iter().enumerate() {
            let (tier, tier_from) = group_tier(g);
            for sg in &g.security_groups {
                sg_users
                    .entry(sg)
                    .or_default()
                    .push((format!("autoscaling group {}", g.name), tier.clone()));
            }
            for sub in &g.subnet_ids {
                subnet_tiers
                    .entry(sub)
                    .or_default()
                    .push((format!("autoscaling group {}", g.name), tier.clone()));
            }
            let scaling = recognise_scaling(g, &found.alarms, found.alarms_read);
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "  # Auto Scaling group {}: tier from {tier_from}{}.",
                g.name,
                g.launched_from
                    .as_deref()
                    .map(|l| format!("; instances from {l}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(out, "  - name: {}", scalar(&g.name));
            let _ = writeln!(out, "    tier: {}", scalar(&tier));
            let _ = writeln!(out, "    min: {}", g.min);
            let _ = writeln!(out, "    max: {}", g.max);
            let _ = writeln!(out, "    desired: {}", g.desired);
            if let Some(t) = &g.instance_type {
                let _ = writeln!(out, "    instance_type: {}", scalar(t));
            }
            match (&scaling.cpu, &scaling.from) {
                (
                    Some(CpuScaling::Step {
                        scale_out_above,
                        scale_in_below,
                        adjustment,
                        cooldown_seconds,
                    }),
                    from,
                ) => {
                    let _ = writeln!(
                        out,
                        "    cpu_scaling:   # from {}",
                        from.as_deref().unwrap_or("its policies")
                    );
                    let _ = writeln!(out, "      scale_out_above: {}", num(*scale_out_above));
                    let _ = writeln!(out, "      scale_in_below: {}", num(*scale_in_below));
                    let _ = writeln!(out, "      adjustment: {adjustment}");
                    let _ = writeln!(out, "      cooldown_seconds: {cooldown_seconds}");
                }
                (Some(CpuScaling::TargetTracking { target_percent }), from) => {
                    let _ = writeln!(
                        out,
                        "    cpu_scaling:   # from {}",
                        from.as_deref().unwrap_or("its policy")
                    );
                    let _ = writeln!(out, "      target_percent: {}", num(*target_percent));
                }
                (None, _) => {}
            }
            for u in &scaling.unexpressed {
                let _ = writeln!(out, "    # not expressed: {u}");
            }
            unexpressed.extend(scaling.unexpressed);
            let mut schedule = Vec::new();
            for a in &g.scheduled_actions {
                let resource = format!("scheduled action {} of {}", a.name, g.name);
                let why = if a.recurrence.is_empty() {
                    Some(
                        "it runs once, at a time: the spec's scheduled actions recur (cron)"
                            .to_owned(),
                    )
                } else if let Err(e) = crate::cron::Cron::parse(&a.recurrence) {
                    Some(format!(
                        "its recurrence `{}` is not one the spec reads: {e}",
                        a.recurrence
                    ))
                } else if a.timezone.parse::<crate::spec::TimeZone>().is_err() {
                    Some(format!(
                        "its time zone `{}` is not an IANA zone",
                        a.timezone
                    ))
                } else if !a
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    Some("its name has characters the spec's names do not take".to_owned())
                } else {
                    None
                };
                match why {
                    Some(reason) => {
                        let reason = format!(
                            "{reason}; the plan deletes it while the spec does not list it"
                        );
                        let _ = writeln!(out, "    # not expressed: {resource}: {reason}");
                        unexpressed.push(Unexpressed { resource, reason });
                    }
                    None => schedule.push(a),
                }
            }
            if !schedule.is_empty() {
                out.push_str("    schedule:   # its scheduled actions, with their time zones\n");
                for a in schedule {
                    let mut line = format!(
                        "      - {{ name: {}, cron: \"{}\", timezone: {}",
                        scalar(&a.name),
                        a.recurrence,
                        scalar(&a.timezone)
                    );
                    for (k, v) in [("min", a.min), ("max", a.max), ("desired", a.desired)] {
                        if let Some(v) = v {
                            let _ = write!(line, ", {k}: {v}");
                        }
                    }
                    line.push_str(" }\n");
                    out.push_str(&line);
                }
            }
        }
        files.push(("autoscaling.yaml".to_owned(), out));
    }

    if !found.databases.is_empty() {
        let mut out = header.clone();
        out.push_str("# Settings as RDS runs them (a pending modification's values when one waits).\ndatabases:\n");
        for (i, d) in found.databases.iter().enumerate() {
            let db = &d.database;
            let tier = tier_tag(&d.tags).unwrap_or("db").to_owned();
            for sg in &d.security_groups {
                sg_users
                    .entry(sg)
                    .or_default()
                    .push((format!("database {}", db.identifier), tier.clone()));
            }
            for sub in &d.subnet_ids {
                subnet_tiers
                    .entry(sub)
                    .or_default()
                    .push((format!("database {}", db.identifier), tier.clone()));
            }
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "  # RDS instance {} ({}, {} storage){}.",
                db.identifier,
                if db.engine.is_empty() {
                    "engine unknown"
                } else {
                    &db.engine
                },
                if db.storage_type.is_empty() {
                    "unknown"
                } else {
                    &db.storage_type
                },
                if db.pending_modifications.is_empty() {
                    String::new()
                } else {
                    format!("; pending: {}", db.pending_modifications.join(", "))
                }
            );
            let _ = writeln!(out, "  - identifier: {}", scalar(&db.identifier));
            let class = db
                .pending
                .instance_class
                .as_ref()
                .unwrap_or(&db.instance_class);
            let _ = writeln!(out, "    instance_class: {}", scalar(class));
            let _ = writeln!(
                out,
                "    multi_az: {}",
                db.pending.multi_az.unwrap_or(db.multi_az)
            );
            let _ = writeln!(
                out,
                "    allocated_storage_gb: {}",
                db.pending
                    .allocated_storage_gb
                    .unwrap_or(db.allocated_storage_gb)
            );
            let _ = writeln!(
                out,
                "    backup_retention_days: {}",
                db.pending
                    .backup_retention_days
                    .unwrap_or(db.backup_retention_days)
            );
            let _ = writeln!(out, "    deletion_protection: {}", db.deletion_protection);
        }
        files.push(("database.yaml".to_owned(), out));
    }

    if !found.security_groups.is_empty() {
        let mut out = header.clone();
        let mut written = 0;
        out.push_str("# The security groups the groups and databases above use, and those their rules name as\n# sources; rules from a group name it (from_group).\nsecurity_groups:\n");
        // The spec names a group by its name, which is unique per VPC only.
        let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for g in &found.security_groups {
            by_name.entry(&g.name).or_default().push(&g.id);
        }
        for (name, ids) in by_name.iter().filter(|(_, ids)| ids.len() > 1) {
            let resource = format!("security group {name}");
            let reason = format!(
                "{} groups carry this name ({}), in different VPCs: the spec names a group by its name, so none of them is written",
                ids.len(),
                ids.join(", ")
            );
            unexpressed.push(Unexpressed { resource, reason });
        }
        let mut sgs: Vec<_> = found
            .security_groups
            .iter()
            .filter(|g| {
                by_name
                    .get(g.name.as_str())
                    .is_some_and(|ids| ids.len() == 1)
            })
            .collect();
        // Users first, in the order they were found; sources after them.
        sgs.sort_by_key(|g| (!sg_users.contains_key(g.name.as_str()), g.name.clone()));
        for (i, g) in sgs.into_iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            written += 1;
            let users = sg_users.get(g.name.as_str());
            let open = g
                .ingress
                .iter()
                .any(|r| matches!(&r.source, Source::Cidr(c) if is_world(c)));
            let tiers: BTreeSet<&str> = users
                .map(|u| u.iter().map(|(_, t)| t.as_str()).collect())
                .unwrap_or_default();
            let (tier, tier_said) = match tiers.iter().collect::<Vec<_>>().as_slice() {
                [one] => (Some((**one).to_owned()), ""),
                [] => match balancer_tier(&g.name) {
                    Some(t) => (Some(t.to_owned()), "   # from its name"),
                    None => (None, ""),
                },
                _ => (None, ""),
            };
            let said = match users {
                Some(u) => format!(
                    "used by {}",
                    u.iter()
                        .map(|(w, _)| w.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => {
                    let naming: Vec<&str> = found
                        .security_groups
                        .iter()
                        .filter(|o| {
                            o.ingress
                                .iter()
                                .any(|r| r.source == Source::FromGroup(g.name.clone()))
                        })
                        .map(|o| o.name.as_str())
                        .collect();
                    format!(
                        "named as a source by {}; used by nothing selected",
                        naming.join(", ")
                    )
                }
            };
            let _ = writeln!(out, "  # Security group {} ({said}).", g.id);
            let _ = writeln!(out, "  - name: {}", scalar(&g.name));
            if open && users.is_none() {
                out.push_str("    edge: true   # open to the internet and used by no selected group or database: a load balancer's, taken as internet-facing\n");
            }
            match &tier {
                Some(t) => {
                    let _ = writeln!(out, "    tier: {}{tier_said}", scalar(t));
                }
                None if tiers.len() > 1 => {
                    let _ = writeln!(
                        out,
                        "    # tier: not written: used by the tiers {}",
                        tiers.iter().copied().collect::<Vec<_>>().join(", ")
                    );
                }
                None => out.push_str(
                    "    # tier: not known (used by nothing selected): set it to place the group in the chain\n",
                ),
            }
            if g.ingress.is_empty() {
                out.push_str("    ingress: []\n");
            } else {
                out.push_str("    ingress:\n");
                for r in &g.ingress {
                    out.push_str(&rule_line(r));
                }
            }
        }
        if written > 0 {
            files.push(("security.yaml".to_owned(), out));
        }
    }

    if let Some(net) = network(found, &subnet_tiers, &header, &mut unexpressed) {
        files.push(("network.yaml".to_owned(), net));
    }

    Imported { files, unexpressed }
}

fn environment(cx: &Context<'_>, header: &str) -> String {
    let g = Guardrails::default();
    let mut out = header.to_owned();
    out.push_str("# AWS holds none of these rules: they are written at the panel's floor, the least tierdeck\n# allows. Raise them before the first apply (docs/roles.md).\n");
    out.push_str("environment:\n");
    let _ = writeln!(out, "  name: {}", scalar(cx.env));
    let _ = writeln!(out, "  region: {}", scalar(cx.region));
    out.push_str("  approvals:\n");
    let _ = writeln!(
        out,
        "    required: {}   # the panel's floor (policy.min_approvals)",
        cx.floor.min_approvals
    );
    out.push_str("    allow_self_approval: false\n");
    out.push_str("  auto_apply: false   # an environment's first apply is always an operator's\n");
    out.push_str("  change_windows: []   # none: applies at any time\n");
    out.push_str("  guardrails:   # tierdeck's defaults (the panel has no floor for them)\n");
    let _ = writeln!(out, "    min_instances: {}", g.min_instances);
    let _ = writeln!(out, "    max_instances: {}", g.max_instances);
    let _ = writeln!(out, "    require_multi_az: {}", g.require_multi_az);
    out
}

/// `network.yaml`: the subnets found, with the tier of what uses them, and the network ACLs
/// guarding them.
fn network(
    found: &Found,
    subnet_tiers: &BTreeMap<&str, Vec<(String, String)>>,
    header: &str,
    unexpressed: &mut Vec<Unexpressed>,
) -> Option<String> {
    if found.subnets.is_empty() {
        return None;
    }
    let mut out = header.to_owned();
    out.push_str("# The subnets the groups and databases above sit in, with the tier of what uses them, and\n# the network ACLs that guard them. Routes are not read: every subnet is written private;\n# mark those routed to an internet gateway `public: true`.\nsubnets:\n");
    // A Name tag two subnets carry cannot name one: those are written by id.
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for sub in &found.subnets {
        if let Some(n) = &sub.name {
            *names.entry(n).or_default() += 1;
        }
    }
    let mut tier_of: BTreeMap<&str, String> = BTreeMap::new();
    let mut subnets: Vec<_> = found.subnets.iter().collect();
    subnets.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    for sub in subnets {
        let users = subnet_tiers.get(sub.id.as_str());
        let tiers: BTreeSet<&str> = users
            .map(|u| u.iter().map(|(_, t)| t.as_str()).collect())
            .unwrap_or_default();
        let Some(tier) = tiers.iter().next().copied() else {
            continue;
        };
        if tiers.len() > 1 {
            unexpressed.push(Unexpressed {
                resource: format!("subnet {}", sub.id),
                reason: format!(
                    "holds the tiers {}: the spec gives a subnet one tier, and it is written as {tier}",
                    tiers.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        tier_of.insert(&sub.id, tier.to_owned());
        let key = match &sub.name {
            Some(n) if names.get(n.as_str()) == Some(&1) => format!("name: {}", scalar(n)),
            _ => format!("id: {}", scalar(&sub.id)),
        };
        let used = users
            .map(|u| {
                let mut w: Vec<&str> = u.iter().map(|(w, _)| w.as_str()).collect();
                w.dedup();
                w.join(", ")
            })
            .unwrap_or_default();
        let id = if key.starts_with("id:") {
            String::new()
        } else {
            format!("{}, ", sub.id)
        };
        let _ = writeln!(
            out,
            "  - {{ {key}, tier: {}, cidr: {} }}   # {id}used by {used}",
            scalar(tier),
            scalar(&sub.cidr),
        );
    }
    if found.network_acls.is_empty() {
        return Some(out);
    }
    // Each subnet tier has one ACL: the first that guards any of its subnets.
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    let mut acls = Vec::new();
    let mut sorted: Vec<_> = found.network_acls.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    for acl in sorted {
        let mut tiers: BTreeSet<String> = BTreeSet::new();
        for id in &acl.subnet_ids {
            if let Some(t) = tier_of.get(id.as_str()) {
                match claimed.get(t) {
                    Some(other) if other != &acl.id => unexpressed.push(Unexpressed {
                        resource: format!("network ACL {}", acl.id),
                        reason: format!(
                            "guards subnet {id} of tier {t}, whose other subnets network ACL {other} guards: the spec gives a subnet tier one ACL (the plan reports the subnet's association)"
                        ),
                    }),
                    _ => {
                        claimed.insert(t.clone(), acl.id.clone());
                        tiers.insert(t.clone());
                    }
                }
            }
        }
        if !tiers.is_empty() {
            acls.push((acl, tiers));
        }
    }
    out.push_str("\nnetwork_acls:\n");
    for (i, (acl, tiers)) in acls.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let key = match &acl.name {
            Some(n)
                if found
                    .network_acls
                    .iter()
                    .filter(|a| a.name.as_ref() == Some(n))
                    .count()
                    == 1 =>
            {
                format!("name: {}", scalar(n))
            }
            _ => format!("id: {}", scalar(&acl.id)),
        };
        let _ = writeln!(out, "  # Network ACL {} of {}.", acl.id, acl.vpc_id);
        let _ = writeln!(out, "  - {key}");
        let _ = writeln!(
            out,
            "    subnets: [{}]",
            tiers
                .iter()
                .map(|t| scalar(t))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (dir, entries) in [("ingress", &acl.ingress), ("egress", &acl.egress)] {
            let mut lines = String::new();
            for e in entries {
                match acl_expressible(e) {
                    Ok(()) => lines.push_str(&acl_line(e)),
                    Err(why) => {
                        let resource = format!("network ACL {} {dir} entry {}", acl.id, e.rule);
                        let reason =
                            format!("{why}; the plan deletes it while the spec does not list it");
                        let _ = writeln!(lines, "      # not expressed: {resource}: {reason}");
                        unexpressed.push(Unexpressed { resource, reason });
                    }
                }
            }
            if lines.is_empty() {
                let _ = writeln!(out, "    {dir}: []");
            } else {
                let _ = writeln!(out, "    {dir}:");
                out.push_str(&lines);
            }
        }
    }
    Some(out)
}
