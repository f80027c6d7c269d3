//! The `subnets` and `network_acls` sections (network.yaml): the VPC's subnets by tier, and
//! the network ACLs that guard them with their full ordered entry sets.

use std::collections::HashMap;

use super::fields::{boolean, item_path, list, scalar, text, uint, Cx, Fields, OneOf};
use super::security::{cidr, port_range};
use crate::net::AddrRange;
use crate::observed::MAX_ACL_RULE;
use crate::spec::model::*;
use crate::spec::yaml::{Node, Value};
use crate::spec::SpecError;

/// The most entries AWS lets one direction of a network ACL hold (20 by default, raised to
/// 40 at most on request).
pub const MAX_ACL_ENTRIES: usize = 40;

/// A tier's name: lower-case letters, digits, `-` and `_`, at most 64 characters.
pub(in crate::spec) fn tier_name(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let t = text(cx, node, path)?;
    let ok = t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        cx.err(
            node.pos,
            format!("`{path}`: `{t}` is not a tier name (lower-case letters, digits, `-` and `_`, like `web`)"),
        );
        return None;
    }
    Some(t)
}

/// `list[name]`, or `list[id]` for an item named by its id.
fn ref_path(list: &str, node: &Node, index: usize) -> String {
    let has_name = matches!(&node.value, Value::Map(entries) if entries.iter().any(|(k, _)| matches!(&k.value, Value::Scalar { text, .. } if text == "name")));
    item_path(list, node, if has_name { "name" } else { "id" }, index)
}

/// `name` (a `Name` tag) or `id` (`prefix…` followed by hex digits), one of them.
fn aws_ref(cx: &mut Cx, f: &Fields, prefix: &str) -> Option<AwsRef> {
    match f.one_of(
        cx,
        "name",
        "id",
        &format!("give name (its Name tag) or id ({prefix}…)"),
    )? {
        OneOf::First(n) => text(cx, n, &f.sub("name")).map(AwsRef::Name),
        OneOf::Second(n) => {
            let id = text(cx, n, &f.sub("id"))?;
            let ok = id
                .strip_prefix(prefix)
                .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                cx.err(
                    n.pos,
                    format!(
                        "`{}`: `{id}` is not an id like {prefix}0123abcd",
                        f.sub("id")
                    ),
                );
                return None;
            }
            Some(AwsRef::Id(id))
        }
    }
}

pub(super) fn subnet(cx: &mut Cx, node: &Node, index: usize) -> Option<Subnet> {
    let path = ref_path("subnets", node, index);
    let f = Fields::new(cx, node, &path, &["name", "id", "tier", "cidr", "public"])?;
    let resource = aws_ref(cx, &f, "subnet-");
    let tier = f.read_required(cx, "tier", tier_name);
    let block = f.read_required(cx, "cidr", cidr).and_then(|c| {
        if c.contains(':') {
            cx.err(
                f.get("cidr").map_or(f.pos, |n| n.pos),
                format!("`{}`: a subnet's block here is its IPv4 one", f.sub("cidr")),
            );
            return None;
        }
        Some(c)
    });
    let public = f.read(cx, "public", boolean).unwrap_or(false);
    Some(Subnet {
        resource: resource?,
        tier: tier?,
        cidr: block?,
        public,
        loc: cx.loc(node.pos),
    })
}

fn protocol(cx: &mut Cx, node: &Node, path: &str) -> Option<AclProtocol> {
    let (s, _) = scalar(cx, node, path, "a protocol")?;
    match s.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Some(AclProtocol::Tcp),
        "udp" | "17" => Some(AclProtocol::Udp),
        "icmp" | "1" => Some(AclProtocol::Icmp),
        "icmpv6" | "58" => Some(AclProtocol::Icmpv6),
        "all" | "-1" => Some(AclProtocol::All),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: `{s}` is not tcp, udp, icmp, icmpv6 or all"),
            );
            None
        }
    }
}

/// A port (`443`) or a range (`1024-65535`), 0–65535 as network ACLs take them.
fn acl_ports(cx: &mut Cx, node: &Node, path: &str) -> Option<(u16, u16)> {
    port_range(cx, node, path, 0, "1024-65535")
}

fn entry(cx: &mut Cx, node: &Node, path: &str) -> Option<AclEntry> {
    let f = Fields::new(
        cx,
        node,
        path,
        &["rule", "protocol", "port", "cidr", "action"],
    )?;
    let rule = f
        .get("rule")
        .map(|n| uint(cx, n, &f.sub("rule"), 1, u32::from(MAX_ACL_RULE)));
    if rule.is_none() {
        cx.err(
            f.pos,
            format!("`{path}`: missing `rule` (its number, 1–{MAX_ACL_RULE}: the lowest that matches decides)"),
        );
    }
    let proto = f.read_required(cx, "protocol", protocol);
    let ports = match (proto, f.get("port")) {
        (Some(p), None) if p.has_ports() => {
            cx.err(
                f.pos,
                format!("`{path}`: a tcp or udp entry needs a port (or a range like 1024-65535)"),
            );
            None
        }
        (Some(p), Some(n)) if !p.has_ports() => {
            cx.err(
                n.pos,
                format!("`{}`: an {} entry takes no port", f.sub("port"), p.text()),
            );
            None
        }
        (_, Some(n)) => acl_ports(cx, n, &f.sub("port")),
        (_, None) => None,
    };
    let block = f.read_required(cx, "cidr", cidr);
    if let (Some(p), Some(b), Some(n)) = (proto, &block, f.get("cidr")) {
        let v6 = b.contains(':');
        let clash = match p {
            AclProtocol::Icmp if v6 => Some("icmp is IPv4's; use icmpv6 for an IPv6 block"),
            AclProtocol::Icmpv6 if !v6 => Some("icmpv6 is IPv6's; use icmp for an IPv4 block"),
            _ => None,
        };
        if let Some(why) = clash {
            cx.err(n.pos, format!("`{}`: {why}", f.sub("cidr")));
        }
    }
    let action = f.read_required(cx, "action", |cx, n, p| {
        let (s, _) = scalar(cx, n, p, "allow or deny")?;
        match s {
            "allow" => Some(AclAction::Allow),
            "deny" => Some(AclAction::Deny),
            _ => {
                cx.err(n.pos, format!("`{p}`: `{s}` is not allow or deny"));
                None
            }
        }
    });
    let protocol = proto?;
    if protocol.has_ports() && ports.is_none() {
        return None;
    }
    Some(AclEntry {
        rule: rule.flatten()? as u16,
        protocol,
        ports,
        cidr: block?,
        action: action?,
        loc: cx.loc(node.pos),
    })
}

fn entries(cx: &mut Cx, f: &Fields, key: &str) -> Vec<AclEntry> {
    let mut out: Vec<AclEntry> = Vec::new();
    let Some(node) = f.get(key) else {
        return out;
    };
    let Some(items) = list(cx, node, &f.sub(key)) else {
        return out;
    };
    if items.len() > MAX_ACL_ENTRIES {
        cx.err(
            node.pos,
            format!(
                "`{}`: {} entries; AWS lets one direction of a network ACL hold at most {MAX_ACL_ENTRIES} (20 unless raised)",
                f.sub(key),
                items.len()
            ),
        );
    }
    let mut seen: HashMap<u16, u32> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", f.sub(key));
        if let Some(e) = entry(cx, item, &path) {
            if let Some(line) = seen.get(&e.rule) {
                cx.err(
                    item.pos,
                    format!(
                        "`{path}`: rule {} is already used at line {line}; each entry needs its own number",
                        e.rule
                    ),
                );
                continue;
            }
            seen.insert(e.rule, e.loc.line);
            out.push(e);
        }
    }
    out.sort_by_key(|e| e.rule);
    out
}

pub(super) fn network_acl(cx: &mut Cx, node: &Node, index: usize) -> Option<NetworkAcl> {
    let path = ref_path("network_acls", node, index);
    let f = Fields::new(
        cx,
        node,
        &path,
        &["name", "id", "subnets", "ingress", "egress"],
    )?;
    let resource = aws_ref(cx, &f, "acl-");
    let mut subnets: Vec<String> = Vec::new();
    match f.get("subnets") {
        None => cx.err(
            f.pos,
            format!("`{path}`: missing `subnets` (the tiers whose subnets it guards, like [web])"),
        ),
        Some(n) => {
            if let Some(items) = list(cx, n, &f.sub("subnets")) {
                if items.is_empty() {
                    cx.err(
                        n.pos,
                        format!("`{}`: name at least one subnet tier", f.sub("subnets")),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{}[{i}]", f.sub("subnets"));
                    if let Some(t) = tier_name(cx, item, &p) {
                        if subnets.contains(&t) {
                            cx.err(item.pos, format!("`{p}`: `{t}` is listed twice"));
                        } else {
                            subnets.push(t);
                        }
                    }
                }
            }
        }
    }
    let ingress = entries(cx, &f, "ingress");
    let egress = entries(cx, &f, "egress");
    Some(NetworkAcl {
        resource: resource?,
        subnets,
        ingress,
        egress,
        loc: cx.loc(node.pos),
    })
}

fn error(loc: &Loc, message: String) -> SpecError {
    SpecError {
        file: loc.file.clone(),
        line: loc.line,
        col: loc.col,
        message,
    }
}

/// What the sections say of each other: blocks of subnets do not overlap, each subnet tier a
/// network ACL or a security group names has subnets, and no subnet tier has two ACLs.
pub(super) fn cross_check(
    subnets: &[Subnet],
    acls: &[NetworkAcl],
    groups: &[SecurityGroup],
) -> Vec<SpecError> {
    let mut out = Vec::new();
    for (i, s) in subnets.iter().enumerate() {
        let Some(a) = AddrRange::parse(&s.cidr) else {
            continue;
        };
        if let Some(o) = subnets[..i]
            .iter()
            .find(|o| AddrRange::parse(&o.cidr).is_some_and(|b| b.overlaps(&a)))
        {
            out.push(error(
                &s.loc,
                format!(
                    "`subnets[{}]`: {} overlaps {} of subnet {} (line {}); a VPC's subnets never overlap",
                    s.resource, s.cidr, o.cidr, o.resource, o.loc.line
                ),
            ));
        }
    }
    let known = |t: &str| subnets.iter().any(|s| s.tier == t);
    let mut guarded: HashMap<&str, &NetworkAcl> = HashMap::new();
    for acl in acls {
        for t in &acl.subnets {
            if !known(t) {
                out.push(error(
                    &acl.loc,
                    format!(
                        "`network_acls[{}].subnets`: no subnet has tier `{t}`; list the subnets it guards under `subnets`",
                        acl.resource
                    ),
                ));
            } else if let Some(first) = guarded.get(t.as_str()) {
                out.push(error(
                    &acl.loc,
                    format!(
                        "`network_acls[{}].subnets`: the `{t}` subnets are already guarded by {} (line {}); a subnet has one network ACL",
                        acl.resource, first.resource, first.loc.line
                    ),
                ));
            } else {
                guarded.insert(t, acl);
            }
        }
    }
    for g in groups {
        if let Some(t) = &g.subnets {
            if !known(t) {
                out.push(error(
                    &g.loc,
                    format!(
                        "`security_groups[{}].subnets`: no subnet has tier `{t}`; list it under `subnets`",
                        g.name
                    ),
                ));
            }
            if g.tier.is_none() {
                out.push(error(
                    &g.loc,
                    format!(
                        "`security_groups[{}].subnets` places the group's tier, so it needs `tier` too",
                        g.name
                    ),
                ));
            }
        }
    }
    out
}
