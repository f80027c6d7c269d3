//! The `security_groups` section (security.yaml): groups and their ingress rules.

use std::net::IpAddr;
use std::str::FromStr;

use super::fields::{boolean, item_path, list, scalar, text, Cx, Fields, OneOf};
use super::network::tier_name;
use crate::spec::model::*;
use crate::spec::yaml::Node;

/// A CIDR block whose host bits are zero.
pub(super) fn cidr(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
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

/// A port or an inclusive range of ports from `lowest` to 65535; `example` shows a range.
pub(super) fn port_range(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    lowest: u16,
    example: &str,
) -> Option<(u16, u16)> {
    let expected = format!("a port (443) or a range ({example})");
    let (s, _) = scalar(cx, node, path, &expected)?;
    let parse = |p: &str| p.trim().parse::<u16>().ok().filter(|p| *p >= lowest);
    let range = match s.split_once('-') {
        Some((a, b)) => parse(a).zip(parse(b)),
        None => parse(s).map(|p| (p, p)),
    };
    match range {
        Some((a, b)) if a <= b => Some((a, b)),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: `{s}` is not a port {lowest}–65535 or a range like {example}"),
            );
            None
        }
    }
}

fn ports(cx: &mut Cx, node: &Node, path: &str) -> Option<(u16, u16)> {
    port_range(cx, node, path, 1, "8000-8080")
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
    let source = match f.one_of(
        cx,
        "cidr",
        "from_group",
        "give cidr or from_group: where the traffic comes from",
    ) {
        Some(OneOf::First(c)) => cidr(cx, c, &f.sub("cidr")).map(Source::Cidr),
        Some(OneOf::Second(g)) => text(cx, g, &f.sub("from_group")).map(Source::FromGroup),
        None => None,
    };
    let description = f.read(cx, "description", text);
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

pub(super) fn security_group(cx: &mut Cx, node: &Node, index: usize) -> Option<SecurityGroup> {
    let path = item_path("security_groups", node, "name", index);
    let f = Fields::new(
        cx,
        node,
        &path,
        &["name", "edge", "tier", "subnets", "ingress"],
    )?;
    let name = f.read_required(cx, "name", text);
    let edge = f.read(cx, "edge", boolean).unwrap_or(false);
    let tier = f.read(cx, "tier", tier_name);
    let subnets = f.read(cx, "subnets", tier_name);
    let mut ingress: Vec<IngressRule> = Vec::new();
    if let Some(items) = f.read(cx, "ingress", list) {
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
        tier,
        subnets,
        ingress,
        loc: cx.loc(node.pos),
    })
}
