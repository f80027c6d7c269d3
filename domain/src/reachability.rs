//! Reachability: from a spec's security groups, network ACLs and the subnets' tiers, who can
//! reach each tier on which ports — the internet, other tiers, CIDR blocks — and what a change
//! opens and closes, one sentence each.
//!
//! A path to tier T from a source passes when one of T's security groups admits the source
//! on the port, the source's subnet ACL lets it out (its egress, by destination address) and
//! T's subnet ACL lets it in (its ingress, by source address). ACLs are stateless: the answers
//! must come back on the caller's ephemeral ports (1024–65535) through T's egress and the
//! source's ingress, or the path is open but loses its return traffic. Traffic within one
//! subnet meets no ACL. What the spec does not say is taken as open: a subnet no listed ACL
//! guards has AWS's default ACL (everything allowed), a tier without subnets or a group
//! without a tier may sit anywhere, security groups let everything out, and routes are not
//! modelled (a private subnet open in both layers counts as reachable: it is one route or one
//! public address away).
//!
//! The chain is fixed by the service's design: the internet → `external-alb` → `web` →
//! `internal-alb` → `was` → `db`. A path to a tier of the chain from anywhere but the tier
//! before it skips a tier (the was tier from the internet, the db tier from the web tier).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::net::{self, AddrRange, Compiled, Family, PortSet};
use crate::observed::ObservedAclEntry;
use crate::spec::{EnvironmentSpec, Loc, NetworkAcl, Protocol, Source};

/// The chain's tiers in order, after the internet.
pub const CHAIN: [&str; 5] = ["external-alb", "web", "internal-alb", "was", "db"];
/// The database's tier, reachable only from [`APPLICATION_TIER`].
pub const DATABASE_TIER: &str = "db";
pub const APPLICATION_TIER: &str = "was";

/// Where traffic comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Origin {
    /// Addresses outside every subnet the spec lists, from `0.0.0.0/0` or `::/0`.
    Internet,
    Tier(String),
    /// The members of a security group that has no tier (or that the spec does not list).
    Group(String),
    /// Addresses of a block outside every subnet the spec lists.
    Cidr(String),
    /// Subnets of a tier no security group sits in.
    Subnets(String),
}

/// `the external ALB`, `the web tier`.
pub fn tier_text(tier: &str) -> String {
    match tier {
        "external-alb" => "the external ALB".to_owned(),
        "internal-alb" => "the internal ALB".to_owned(),
        t => format!("the {t} tier"),
    }
}

impl Origin {
    pub fn text(&self) -> String {
        match self {
            Origin::Internet => "the internet".to_owned(),
            Origin::Tier(t) => tier_text(t),
            Origin::Group(g) => format!("security group {g}"),
            Origin::Cidr(c) => c.clone(),
            Origin::Subnets(t) => format!("the {t} subnets"),
        }
    }

    /// Where it stands in the chain: 0 for the internet, 1… for the chain's tiers.
    pub fn chain_index(&self) -> Option<usize> {
        match self {
            Origin::Internet => Some(0),
            Origin::Tier(t) => chain_index(t),
            _ => None,
        }
    }
}

/// Where a tier stands in the chain (1 for `external-alb` … 5 for `db`).
pub fn chain_index(tier: &str) -> Option<usize> {
    CHAIN.iter().position(|t| *t == tier).map(|i| i + 1)
}

/// The traffic of a path, by protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Traffic {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    /// Every other IP protocol.
    Other,
}

impl Traffic {
    fn has_ports(self) -> bool {
        matches!(self, Traffic::Tcp | Traffic::Udp)
    }

    fn name(self) -> &'static str {
        match self {
            Traffic::Tcp => "tcp",
            Traffic::Udp => "udp",
            Traffic::Icmp => "icmp",
            Traffic::Icmpv6 => "icmpv6",
            Traffic::Other => "other protocols",
        }
    }
}

/// Some traffic of a path: a protocol and, for tcp and udp, its ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub traffic: Traffic,
    /// The ports (tcp and udp); for the others, the whole protocol (`0-65535`).
    pub ports: PortSet,
}

/// `tcp/80, 443`, `icmp`, `all traffic`.
pub fn flows_text(flows: &[Flow]) -> String {
    let full = |t: Traffic| flows.iter().any(|f| f.traffic == t && f.ports.is_full());
    let all = [
        Traffic::Tcp,
        Traffic::Udp,
        Traffic::Icmp,
        Traffic::Icmpv6,
        Traffic::Other,
    ];
    if all.iter().all(|t| full(*t)) {
        return "all traffic".to_owned();
    }
    let parts: Vec<String> = flows
        .iter()
        .filter(|f| !f.ports.is_empty())
        .map(|f| {
            if f.traffic.has_ports() {
                if f.ports.is_full() {
                    format!("every {} port", f.traffic.name())
                } else {
                    format!("{}/{}", f.traffic.name(), f.ports.text())
                }
            } else {
                f.traffic.name().to_owned()
            }
        })
        .collect();
    match parts.as_slice() {
        [] => "nothing".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// How a path stands to the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// From the tier (or the internet) right before it in the chain.
    Chain,
    /// Between the chain's places, but not from the one right before: it skips a tier (or
    /// runs backwards).
    Skip,
    /// From outside the chain: a block, another tier or group, or within one tier.
    Other,
}

/// Who reaches a tier, and on what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Path {
    pub to: String,
    pub from: Origin,
    pub kind: PathKind,
    /// What passes the security groups and the network ACLs.
    pub open: Vec<Flow>,
    /// Of `open`, the return ports (1024–65535) a network ACL drops, with the ACLs.
    pub answers_dropped: PortSet,
    pub answers_dropped_by: Vec<String>,
    /// What a security group admits from this source by name (its group, its block, the
    /// internet) but a network ACL drops on the way.
    pub blocked: Vec<Flow>,
    pub blocked_by: Vec<String>,
    /// The security group rule that admits it (the first, when several do).
    pub loc: Loc,
}

impl Path {
    pub fn is_open(&self) -> bool {
        !self.open.is_empty()
    }
}

/// Every path to every tier the security groups name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    /// The tiers, the chain's first in its order.
    pub tiers: Vec<String>,
    /// Open or blocked paths, by tier (the chain's order) and source.
    pub paths: Vec<Path>,
    /// Whether network ACLs were part of it (the spec lists some).
    pub with_acls: bool,
}

impl Reachability {
    /// The open paths to `tier`.
    pub fn to(&self, tier: &str) -> impl Iterator<Item = &Path> {
        let tier = tier.to_owned();
        self.paths
            .iter()
            .filter(move |p| p.to == tier && p.is_open())
    }
}

/// A subnet, or addresses the spec places nowhere, with the ACL that guards it.
struct Region<'a> {
    ranges: Vec<AddrRange>,
    acl: Option<&'a Acl>,
    /// The subnet's index, to see traffic that stays in one subnet.
    subnet: Option<usize>,
}

struct Acl {
    name: String,
    ingress: Compiled,
    egress: Compiled,
    blocks: Vec<AddrRange>,
}

impl Acl {
    fn new(a: &NetworkAcl) -> Acl {
        let entries = |l: &[crate::spec::AclEntry]| -> Vec<ObservedAclEntry> {
            l.iter().map(ObservedAclEntry::from).collect()
        };
        let (ingress, egress) = (
            Compiled::new(&entries(&a.ingress)),
            Compiled::new(&entries(&a.egress)),
        );
        let mut blocks = ingress.blocks();
        blocks.extend(egress.blocks());
        Acl {
            name: a.resource.to_string(),
            ingress,
            egress,
            blocks,
        }
    }
}

fn everywhere() -> Vec<AddrRange> {
    vec![AddrRange::all(Family::V4), AddrRange::all(Family::V6)]
}

/// What passes from `src` to `dst` for protocol number `proto` on `ports`.
#[derive(Default)]
struct Between {
    open: PortSet,
    dropped: PortSet,
    dropped_by: BTreeSet<String>,
    blocked_by: BTreeSet<String>,
}

fn between(src: &Region, dst: &Region, proto: u8, ports: &PortSet, answers: bool) -> Between {
    let mut out = Between::default();
    if src.subnet.is_some() && src.subnet == dst.subnet {
        out.open = ports.clone();
        return out;
    }
    let no_blocks = Vec::new();
    let src_cells = net::cut(&src.ranges, dst.acl.map_or(&no_blocks, |a| &a.blocks));
    let dst_cells = net::cut(&dst.ranges, src.acl.map_or(&no_blocks, |a| &a.blocks));
    let eph = PortSet::ephemeral();
    for s in &src_cells {
        for d in dst_cells.iter().filter(|d| d.family == s.family) {
            let out_ok = src
                .acl
                .map_or(ports.clone(), |a| a.egress.allowed(proto, ports, d));
            let in_ok = dst
                .acl
                .map_or(ports.clone(), |a| a.ingress.allowed(proto, ports, s));
            if out_ok != *ports {
                out.blocked_by.extend(src.acl.map(|a| a.name.clone()));
            }
            if in_ok != *ports {
                out.blocked_by.extend(dst.acl.map(|a| a.name.clone()));
            }
            let passed = out_ok.intersect(&in_ok);
            if passed.is_empty() {
                continue;
            }
            out.open = out.open.union(&passed);
            if answers {
                let back = dst
                    .acl
                    .map_or(eph.clone(), |a| a.egress.allowed(proto, &eph, s));
                let home = src
                    .acl
                    .map_or(eph.clone(), |a| a.ingress.allowed(proto, &eph, d));
                if back != eph {
                    out.dropped_by.extend(dst.acl.map(|a| a.name.clone()));
                }
                if home != eph {
                    out.dropped_by.extend(src.acl.map(|a| a.name.clone()));
                }
                out.dropped = out.dropped.union(&eph.minus(&back.intersect(&home)));
            }
        }
    }
    out
}

/// The traffic of a security group rule: (traffic, protocol number, ports).
fn traffic_of(
    protocol: Protocol,
    ports: Option<(u16, u16)>,
    other: u8,
) -> Vec<(Traffic, u8, PortSet)> {
    let all = |a: u16, b: u16| PortSet::range(a, b);
    match protocol {
        Protocol::Tcp => vec![(
            Traffic::Tcp,
            6,
            ports.map_or(PortSet::full(), |(a, b)| all(a, b)),
        )],
        Protocol::Udp => vec![(
            Traffic::Udp,
            17,
            ports.map_or(PortSet::full(), |(a, b)| all(a, b)),
        )],
        Protocol::Icmp => vec![(Traffic::Icmp, 1, PortSet::full())],
        Protocol::All => vec![
            (Traffic::Tcp, 6, PortSet::full()),
            (Traffic::Udp, 17, PortSet::full()),
            (Traffic::Icmp, 1, PortSet::full()),
            (Traffic::Icmpv6, 58, PortSet::full()),
            (Traffic::Other, other, PortSet::full()),
        ],
    }
}

#[derive(Default)]
struct Acc {
    open: BTreeMap<Traffic, PortSet>,
    /// What rules naming this source admit (not a wider block that happens to hold it).
    admitted: BTreeMap<Traffic, PortSet>,
    dropped: PortSet,
    dropped_by: BTreeSet<String>,
    blocked_by: BTreeSet<String>,
    loc: Option<Loc>,
}

fn flows(map: &BTreeMap<Traffic, PortSet>) -> Vec<Flow> {
    map.iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(t, p)| Flow {
            traffic: *t,
            ports: p.clone(),
        })
        .collect()
}

fn kind(from: &Origin, to: &str) -> PathKind {
    match (from.chain_index(), chain_index(to)) {
        (Some(a), Some(b)) if a + 1 == b => PathKind::Chain,
        (Some(a), Some(b)) if a != b => PathKind::Skip,
        _ => PathKind::Other,
    }
}

/// Reachability of `spec`.
pub fn reachability(spec: &EnvironmentSpec) -> Reachability {
    let acls: Vec<(Acl, &NetworkAcl)> =
        spec.network_acls.iter().map(|a| (Acl::new(a), a)).collect();
    let acl_of = |tier: &str| {
        acls.iter()
            .find(|(_, a)| a.subnets.iter().any(|t| t == tier))
            .map(|(acl, _)| acl)
    };
    // Each subnet's region: its IPv4 block (IPv6 sources meet any IPv6 address of it: the
    // spec does not say its IPv6 block).
    let subnet_regions: Vec<(&str, AddrRange, Region)> = spec
        .subnets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let r = AddrRange::parse(&s.cidr)?;
            Some((
                s.tier.as_str(),
                r,
                Region {
                    ranges: vec![r],
                    acl: acl_of(&s.tier),
                    subnet: Some(i),
                },
            ))
        })
        .collect();
    let known: Vec<AddrRange> = subnet_regions.iter().map(|(_, r, _)| *r).collect();
    let placement = |g: &crate::spec::SecurityGroup| g.subnets.clone().or(g.tier.clone());
    let regions_of_tier = |tier: &str| -> Vec<&Region> {
        let places: BTreeSet<String> = spec
            .security_groups
            .iter()
            .filter(|g| g.tier.as_deref() == Some(tier))
            .filter_map(placement)
            .collect();
        subnet_regions
            .iter()
            .filter(|(t, _, _)| places.contains(*t))
            .map(|(_, _, r)| r)
            .collect()
    };
    let unknown = Region {
        ranges: everywhere(),
        acl: None,
        subnet: None,
    };
    // Subnets of tier X stand for tier X, else for the tiers that sit in them.
    let attribution = |subnet_tier: &str| -> Vec<Origin> {
        if spec
            .security_groups
            .iter()
            .any(|g| g.tier.as_deref() == Some(subnet_tier))
        {
            return vec![Origin::Tier(subnet_tier.to_owned())];
        }
        let placed: BTreeSet<String> = spec
            .security_groups
            .iter()
            .filter(|g| placement(g).as_deref() == Some(subnet_tier))
            .filter_map(|g| g.tier.clone())
            .collect();
        if placed.is_empty() {
            vec![Origin::Subnets(subnet_tier.to_owned())]
        } else {
            placed.into_iter().map(Origin::Tier).collect()
        }
    };
    // A protocol number no entry names, standing for "every other protocol".
    let named: BTreeSet<u8> = spec
        .network_acls
        .iter()
        .flat_map(|a| a.ingress.iter().chain(&a.egress))
        .map(|e| net::proto_range(e.protocol))
        .filter(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    let other = (0..=255u8)
        .find(|p| ![1, 6, 17, 58].contains(p) && !named.contains(p))
        .unwrap_or(0);

    let mut acc: BTreeMap<(String, Origin), Acc> = BTreeMap::new();
    let mut tiers: BTreeSet<String> = BTreeSet::new();
    for g in &spec.security_groups {
        let Some(to) = &g.tier else { continue };
        tiers.insert(to.clone());
        let dst_regions = regions_of_tier(to);
        let dst_regions: Vec<&Region> = if dst_regions.is_empty() {
            vec![&unknown]
        } else {
            dst_regions
        };
        let dst_v6: Vec<Region> = dst_regions
            .iter()
            .map(|r| Region {
                ranges: if r.subnet.is_some() {
                    vec![AddrRange::all(Family::V6)]
                } else {
                    r.ranges.clone()
                },
                acl: r.acl,
                subnet: r.subnet,
            })
            .collect();
        for rule in &g.ingress {
            let v6 = matches!(&rule.source, Source::Cidr(c) if c.contains(':'));
            let dst_regions: Vec<&Region> = if v6 {
                dst_v6.iter().collect()
            } else {
                dst_regions.clone()
            };
            // (origin, the regions it comes from, whether the rule names that origin)
            let mut sources: Vec<(Origin, Vec<Region>, bool)> = Vec::new();
            match &rule.source {
                Source::FromGroup(name) => {
                    match spec
                        .security_groups
                        .iter()
                        .find(|s| &s.name == name)
                        .and_then(|s| s.tier.clone())
                    {
                        Some(t) => {
                            let rs: Vec<Region> = regions_of_tier(&t)
                                .into_iter()
                                .map(|r| Region {
                                    ranges: r.ranges.clone(),
                                    acl: r.acl,
                                    subnet: r.subnet,
                                })
                                .collect();
                            let rs = if rs.is_empty() {
                                vec![Region {
                                    ranges: everywhere(),
                                    acl: None,
                                    subnet: None,
                                }]
                            } else {
                                rs
                            };
                            sources.push((Origin::Tier(t), rs, true));
                        }
                        None => sources.push((
                            Origin::Group(name.clone()),
                            vec![Region {
                                ranges: everywhere(),
                                acl: None,
                                subnet: None,
                            }],
                            true,
                        )),
                    }
                }
                Source::Cidr(c) => {
                    let Some(block) = AddrRange::parse(c) else {
                        continue;
                    };
                    let outside = net::subtract(&[block], &known);
                    if !outside.is_empty() {
                        let origin = if block.is_everything() {
                            Origin::Internet
                        } else {
                            Origin::Cidr(c.clone())
                        };
                        sources.push((
                            origin,
                            vec![Region {
                                ranges: outside.clone(),
                                acl: None,
                                subnet: None,
                            }],
                            true,
                        ));
                    }
                    if !block.is_everything() {
                        let mut parts: Vec<(Origin, Region)> = Vec::new();
                        for (t, r, region) in &subnet_regions {
                            if let Some(part) = block.intersect(r) {
                                for origin in attribution(t) {
                                    parts.push((
                                        origin,
                                        Region {
                                            ranges: vec![part],
                                            acl: region.acl,
                                            subnet: region.subnet,
                                        },
                                    ));
                                }
                            }
                        }
                        // The rule names a tier when its block holds that tier's subnets and
                        // nothing else.
                        let only: BTreeSet<&Origin> = parts.iter().map(|(o, _)| o).collect();
                        let names_it = outside.is_empty() && only.len() == 1;
                        for (origin, region) in parts {
                            sources.push((origin, vec![region], names_it));
                        }
                    }
                }
            }
            for (origin, src_regions, names_it) in sources {
                let a = acc.entry((to.clone(), origin)).or_default();
                a.loc.get_or_insert_with(|| rule.loc.clone());
                for (traffic, proto, ports) in traffic_of(rule.protocol, rule.ports, other) {
                    if names_it {
                        let admitted = a.admitted.entry(traffic).or_default();
                        *admitted = admitted.union(&ports);
                    }
                    for s in &src_regions {
                        for d in &dst_regions {
                            let b = between(s, d, proto, &ports, traffic.has_ports());
                            let open = a.open.entry(traffic).or_default();
                            *open = open.union(&b.open);
                            a.dropped = a.dropped.union(&b.dropped);
                            a.dropped_by.extend(b.dropped_by);
                            a.blocked_by.extend(b.blocked_by);
                        }
                    }
                }
            }
        }
    }
    let mut paths: Vec<Path> = acc
        .into_iter()
        .map(|((to, from), a)| {
            let blocked: BTreeMap<Traffic, PortSet> = a
                .admitted
                .iter()
                .map(|(t, p)| (*t, p.minus(a.open.get(t).unwrap_or(&PortSet::empty()))))
                .collect();
            let blocked = flows(&blocked);
            let open = flows(&a.open);
            Path {
                kind: kind(&from, &to),
                answers_dropped: if open.is_empty() {
                    PortSet::empty()
                } else {
                    a.dropped.clone()
                },
                answers_dropped_by: if open.is_empty() || a.dropped.is_empty() {
                    Vec::new()
                } else {
                    a.dropped_by.into_iter().collect()
                },
                blocked_by: if blocked.is_empty() {
                    Vec::new()
                } else {
                    a.blocked_by.into_iter().collect()
                },
                blocked,
                open,
                loc: a.loc.unwrap_or_default(),
                to,
                from,
            }
        })
        .collect();
    let order = |t: &str| (chain_index(t).unwrap_or(usize::MAX), t.to_owned());
    paths.sort_by(|a, b| {
        order(&a.to)
            .cmp(&order(&b.to))
            .then(
                a.from
                    .chain_index()
                    .unwrap_or(usize::MAX)
                    .cmp(&b.from.chain_index().unwrap_or(usize::MAX)),
            )
            .then(a.from.cmp(&b.from))
    });
    let mut tiers: Vec<String> = tiers.into_iter().collect();
    tiers.sort_by_key(|t| order(t));
    Reachability {
        tiers,
        paths,
        with_acls: !spec.network_acls.is_empty(),
    }
}

/// What a change does to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReachChangeKind {
    /// Traffic passes that did not.
    Opened,
    /// Traffic that passed no longer does.
    Closed,
    /// A network ACL now drops answers of traffic that passes.
    AnswersDropped,
    /// Answers dropped before pass again.
    AnswersRestored,
}

/// One path a change opens or closes, with its sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachChange {
    pub kind: ReachChangeKind,
    pub to: String,
    pub from: Origin,
    /// The traffic concerned (for answers: the traffic whose answers they are).
    pub flows: Vec<Flow>,
    /// For answers: the return ports.
    #[serde(default, skip_serializing_if = "PortSet::is_empty")]
    pub answer_ports: PortSet,
    /// For answers dropped: the ACLs that drop them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
    /// Whether it skips a tier of the chain (or reaches the database from anywhere but the
    /// application tier).
    pub off_chain: bool,
    pub sentence: String,
}

fn capitalised(s: String) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

fn by_text(by: &[String]) -> String {
    match by {
        [] => "a network ACL".to_owned(),
        [one] => format!("network ACL {one}"),
        more => format!("network ACLs {}", more.join(" and ")),
    }
}

fn per_traffic(flows: &[Flow]) -> BTreeMap<Traffic, PortSet> {
    flows.iter().map(|f| (f.traffic, f.ports.clone())).collect()
}

/// The paths that open and close from `before` to `after`, one sentence each.
pub fn diff(before: &Reachability, after: &Reachability) -> Vec<ReachChange> {
    let index = |r: &Reachability| -> BTreeMap<(String, Origin), Path> {
        r.paths
            .iter()
            .map(|p| ((p.to.clone(), p.from.clone()), p.clone()))
            .collect()
    };
    let (b, a) = (index(before), index(after));
    let keys: BTreeSet<&(String, Origin)> = b.keys().chain(a.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let (to, from) = key;
        let (pb, pa) = (b.get(key), a.get(key));
        let ob = pb.map(|p| per_traffic(&p.open)).unwrap_or_default();
        let oa = pa.map(|p| per_traffic(&p.open)).unwrap_or_default();
        let change = |x: &BTreeMap<Traffic, PortSet>, y: &BTreeMap<Traffic, PortSet>| {
            let mut m = BTreeMap::new();
            for (t, p) in x {
                let d = p.minus(y.get(t).unwrap_or(&PortSet::empty()));
                if !d.is_empty() {
                    m.insert(*t, d);
                }
            }
            flows(&m)
        };
        let off_chain = kind(from, to) == PathKind::Skip
            || (to == DATABASE_TIER && *from != Origin::Tier(APPLICATION_TIER.to_owned()));
        // One change of this path: its flows, its return ports and the ACLs that drop them.
        let mut add = |kind, flows: Vec<Flow>, answer_ports: PortSet, by: Vec<String>| {
            let on = flows_text(&flows);
            let (from_text, to_text) = (from.text(), tier_text(to));
            let sentence = match kind {
                ReachChangeKind::Opened => format!("{to_text} is now reachable from {from_text} on {on}."),
                ReachChangeKind::Closed => {
                    format!("{to_text} is no longer reachable from {from_text} on {on}.")
                }
                ReachChangeKind::AnswersDropped => format!(
                    "{} now drops the return traffic of calls from {from_text} to {to_text} on {on} (return ports {}).",
                    by_text(&by),
                    answer_ports.text()
                ),
                ReachChangeKind::AnswersRestored => format!(
                    "the return traffic of calls from {from_text} to {to_text} on {on} passes again (return ports {}).",
                    answer_ports.text()
                ),
            };
            out.push(ReachChange {
                kind,
                sentence: capitalised(sentence),
                to: to.clone(),
                from: from.clone(),
                flows,
                answer_ports,
                by,
                off_chain,
            });
        };
        let opened = change(&oa, &ob);
        if !opened.is_empty() {
            add(
                ReachChangeKind::Opened,
                opened,
                PortSet::empty(),
                Vec::new(),
            );
        }
        let closed = change(&ob, &oa);
        if !closed.is_empty() {
            add(
                ReachChangeKind::Closed,
                closed,
                PortSet::empty(),
                Vec::new(),
            );
        }
        let answered = |p: Option<&Path>| p.map(|p| p.answers_dropped.clone()).unwrap_or_default();
        let (db, da) = (answered(pb), answered(pa));
        let calls: Vec<Flow> = pa
            .map(|p| {
                p.open
                    .iter()
                    .filter(|f| f.traffic.has_ports())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if !calls.is_empty() {
            let newly = da.minus(&db);
            if !newly.is_empty() {
                let by = pa.map(|p| p.answers_dropped_by.clone()).unwrap_or_default();
                add(ReachChangeKind::AnswersDropped, calls.clone(), newly, by);
            }
            let restored = db.minus(&da);
            if !restored.is_empty() {
                add(
                    ReachChangeKind::AnswersRestored,
                    calls,
                    restored,
                    Vec::new(),
                );
            }
        }
    }
    let place = |c: &ReachChange| {
        (
            c.kind,
            !c.off_chain,
            chain_index(&c.to).unwrap_or(usize::MAX),
            c.from.chain_index().unwrap_or(usize::MAX),
        )
    };
    out.sort_by(|x, y| place(x).cmp(&place(y)).then(x.from.cmp(&y.from)));
    out
}

/// Whether two specs say the same of the network: security groups (rules, tiers, places),
/// subnets and network ACLs, wherever they are written.
fn same_network(a: &EnvironmentSpec, b: &EnvironmentSpec) -> bool {
    fn strip(spec: &EnvironmentSpec) -> EnvironmentSpec {
        let mut s = spec.clone();
        let none = Loc::default();
        for g in &mut s.security_groups {
            g.loc = none.clone();
            for r in &mut g.ingress {
                r.loc = none.clone();
                r.description = None;
            }
        }
        for n in &mut s.subnets {
            n.loc = none.clone();
        }
        for acl in &mut s.network_acls {
            acl.loc = none.clone();
            for e in acl.ingress.iter_mut().chain(acl.egress.iter_mut()) {
                e.loc = none.clone();
            }
        }
        s
    }
    let (a, b) = (strip(a), strip(b));
    a.security_groups == b.security_groups
        && a.subnets == b.subnets
        && a.network_acls == b.network_acls
}

/// The reachability diff of a change: `None` when it does not touch the network (security
/// groups, subnets, network ACLs); against nothing when the environment was never applied.
pub fn change_diff(
    applied: Option<&EnvironmentSpec>,
    proposed: &EnvironmentSpec,
) -> Option<Vec<ReachChange>> {
    if applied.is_some_and(|a| same_network(a, proposed)) {
        return None;
    }
    let before = applied.map(reachability).unwrap_or_default();
    Some(diff(&before, &reachability(proposed)))
}

#[cfg(test)]
mod tests;
