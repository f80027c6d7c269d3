//! The network ACL planner: the subnets the spec names checked against AWS, and each ACL's
//! ingress and egress entry sets brought to the spec's with entry creates, replaces (in place,
//! where a rule number stays) and deletes.
//!
//! The order keeps two bounds at every step, per direction: nothing passes that neither the
//! old nor the new set lets through (a set never wider than both), and what both let through
//! keeps passing (no outage of traffic the change does not touch). Each candidate step is
//! tried, lowest rule number first, against every class of packets the entries tell apart.
//! When no step keeps both, one that keeps the first is taken and labelled; a replace that
//! would widen and narrow at once is split into two replaces of the same rule (narrow first,
//! then widen). Sets too varied to evaluate (past [`MAX_CELLS`] packet classes) fall back to
//! narrowing steps first and widening steps last, which keeps the first bound by construction.

use std::collections::{BTreeMap, HashSet};

use super::{op, Action, Phases, PlanError};
use crate::net::{AddrRange, Family, Matches, EPHEMERAL};
use crate::observed::{ObservedAclEntry, ObservedNetworkAcl, ObservedState, ObservedSubnet};
use crate::spec::{AclAction, AclProtocol, EnvironmentSpec, NetworkAcl};

/// The most packet classes a direction's entries may tell apart for the exact ordering.
pub const MAX_CELLS: usize = 50_000;

/// Ports that only return traffic uses (Linux's ephemeral range, inside every client's):
/// a step that drops traffic there drops answers, whatever service port it also touches.
const RETURN_ONLY: (u16, u16) = (32768, 60999);

/// One found resource, or why there is none.
fn one<'a, T>(found: Option<&'a Vec<T>>, kind: &str, name: &str) -> Result<&'a T, PlanError> {
    match found.map(Vec::as_slice) {
        Some([one]) => Ok(one),
        Some([_, _, ..]) => Err(PlanError {
            resource: format!("{kind} {name}"),
            message: format!(
                "{} resources carry this Name tag; name it by its id instead",
                found.map_or(0, Vec::len)
            ),
        }),
        _ => Err(PlanError {
            resource: format!("{kind} {name}"),
            message: "does not exist in AWS; tierdeck manages settings of existing resources and creates none".to_owned(),
        }),
    }
}

/// Plans every subnet and network ACL of `spec`: subnets are checked (they exist, with the
/// spec's block), ACLs are checked (they guard the spec's subnets) and their entries planned.
pub(super) fn plan_network(
    spec: &EnvironmentSpec,
    observed: &ObservedState,
    p: &mut Phases,
    errors: &mut Vec<PlanError>,
) {
    let mut found: Vec<(&crate::spec::Subnet, &ObservedSubnet)> = Vec::new();
    for s in &spec.subnets {
        let name = s.resource.text();
        match one(observed.subnets.get(name), "subnet", name) {
            Ok(o) if AddrRange::parse(&o.cidr) != AddrRange::parse(&s.cidr) => {
                errors.push(PlanError {
                    resource: format!("subnet {name}"),
                    message: format!(
                    "its block is {} in AWS, but the spec says {}; a subnet's block cannot change",
                    o.cidr, s.cidr
                ),
                })
            }
            Ok(o) => found.push((s, o)),
            Err(e) => errors.push(e),
        }
    }
    for acl in &spec.network_acls {
        let name = acl.resource.text();
        let o = match one(observed.network_acls.get(name), "network ACL", name) {
            Ok(o) => o,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let resource = format!("network ACL {name}");
        for (s, so) in found.iter().filter(|(s, _)| acl.subnets.contains(&s.tier)) {
            if !o.subnet_ids.contains(&so.id) {
                errors.push(PlanError {
                    resource: resource.clone(),
                    message: format!(
                        "subnet {} ({}) of tier {} is not associated with it in AWS; tierdeck changes entries, not associations: associate it where the VPC is managed",
                        s.resource, so.id, s.tier
                    ),
                });
            }
        }
        plan_acl(acl, o, p, errors);
    }
}

fn plan_acl(acl: &NetworkAcl, o: &ObservedNetworkAcl, p: &mut Phases, errors: &mut Vec<PlanError>) {
    let resource = format!("network ACL {}", acl.resource);
    for (egress, wanted, have) in [
        (false, &acl.ingress, &o.ingress),
        (true, &acl.egress, &o.egress),
    ] {
        let new: Vec<ObservedAclEntry> = wanted.iter().map(ObservedAclEntry::from).collect();
        match order(have, &new, egress) {
            Ok(steps) => {
                for s in steps {
                    let dir = if egress { "egress" } else { "ingress" };
                    let (change, action) = match (s.before, s.after) {
                        (None, Some(after)) => (
                            format!("add {dir} rule {}", after.numbered_text(egress)),
                            Action::CreateNaclEntry {
                                acl: acl.resource.to_string(),
                                acl_id: o.id.clone(),
                                egress,
                                entry: after,
                            },
                        ),
                        (Some(before), Some(after)) => (
                            format!(
                                "{dir} rule {}: {} → {}",
                                after.rule,
                                before.text(egress),
                                after.text(egress)
                            ),
                            Action::ReplaceNaclEntry {
                                acl: acl.resource.to_string(),
                                acl_id: o.id.clone(),
                                egress,
                                before,
                                after,
                            },
                        ),
                        (Some(before), None) => (
                            format!("delete {dir} rule {}", before.numbered_text(egress)),
                            Action::DeleteNaclEntry {
                                acl: acl.resource.to_string(),
                                acl_id: o.id.clone(),
                                egress,
                                entry: before,
                            },
                        ),
                        (None, None) => continue,
                    };
                    p.network_acls
                        .push(op(action, resource.clone(), change, s.risk));
                }
            }
            Err(message) => errors.push(PlanError {
                resource: resource.clone(),
                message,
            }),
        }
    }
}

/// One planned step of a direction: the entry at a rule number before and after it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub before: Option<ObservedAclEntry>,
    pub after: Option<ObservedAclEntry>,
    pub risk: Option<String>,
}

/// How a step moves the set of what passes, whatever the other entries are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// It only ever takes away.
    Narrows,
    /// It only ever adds.
    Widens,
    /// Either.
    Mixed,
}

fn class(before: Option<&ObservedAclEntry>, after: Option<&ObservedAclEntry>) -> Class {
    let allow = |e: &ObservedAclEntry| e.action == AclAction::Allow;
    let m = |e: &ObservedAclEntry| crate::net::matches_of(e);
    match (before, after) {
        (None, Some(a)) if allow(a) => Class::Widens,
        (None, Some(_)) => Class::Narrows,
        (Some(b), None) if allow(b) => Class::Narrows,
        (Some(_), None) => Class::Widens,
        (Some(b), Some(a)) => match (allow(b), allow(a), m(b), m(a)) {
            (true, false, ..) => Class::Narrows,
            (false, true, ..) => Class::Widens,
            (true, true, Some(x), Some(y)) if x.contains(&y) => Class::Narrows,
            (true, true, Some(x), Some(y)) if y.contains(&x) => Class::Widens,
            (false, false, Some(x), Some(y)) if y.contains(&x) => Class::Narrows,
            (false, false, Some(x), Some(y)) if x.contains(&y) => Class::Widens,
            _ => Class::Mixed,
        },
        (None, None) => Class::Widens,
    }
}

/// An entry that matches exactly `m`, when one can say it.
fn entry_of(rule: u16, m: &Matches, action: AclAction) -> Option<ObservedAclEntry> {
    let protocol = match m.proto {
        (0, 255) => AclProtocol::All,
        (6, 6) => AclProtocol::Tcp,
        (17, 17) => AclProtocol::Udp,
        (1, 1) => AclProtocol::Icmp,
        (58, 58) => AclProtocol::Icmpv6,
        (a, b) if a == b => AclProtocol::Number(a),
        _ => return None,
    };
    let full = m.port == (0, u16::MAX);
    let (ports, icmp) = match protocol {
        p if p.has_ports() => (Some(m.port), None),
        AclProtocol::Icmp | AclProtocol::Icmpv6 if !full => {
            let (t, c0, c1) = (m.port.0 / 256, m.port.0 % 256, m.port.1 % 256);
            if m.port.1 / 256 != t {
                return None;
            }
            match (c0, c1) {
                (0, 255) => (None, Some((t as i16, -1))),
                (a, b) if a == b => (None, Some((t as i16, a as i16))),
                _ => return None,
            }
        }
        _ if full => (None, None),
        _ => return None,
    };
    let cidr = match m.addr.cidrs().as_slice() {
        [one] => one.clone(),
        _ => return None,
    };
    Some(ObservedAclEntry {
        rule,
        protocol,
        ports,
        icmp,
        cidr,
        action,
    })
}

/// The replace that does the narrowing half of a replace that both widens and narrows: after
/// it, the rest widens. `None` when no one entry can (a deny moving to the other family).
fn halfway(before: &ObservedAclEntry, after: &ObservedAclEntry) -> Option<ObservedAclEntry> {
    let (x, y) = (
        crate::net::matches_of(before)?,
        crate::net::matches_of(after)?,
    );
    if before.action == AclAction::Allow {
        // Allow only what both allow; where that is nothing, deny what the old one allowed.
        x.intersect(&y)
            .and_then(|m| entry_of(before.rule, &m, AclAction::Allow))
            .or_else(|| {
                Some(ObservedAclEntry {
                    action: AclAction::Deny,
                    ..before.clone()
                })
            })
    } else {
        // Deny all the old and the new deny: one block holding both.
        let addr = x.addr.hull(&y.addr)?;
        let proto = (x.proto.0.min(y.proto.0), x.proto.1.max(y.proto.1));
        let proto = if proto.0 == proto.1 { proto } else { (0, 255) };
        let single = proto.0 == proto.1;
        let port = if single && x.proto == y.proto {
            (x.port.0.min(y.port.0), x.port.1.max(y.port.1))
        } else {
            (0, u16::MAX)
        };
        let port = if single && !matches!(proto.0, 6 | 17) && port != (0, u16::MAX) {
            (0, u16::MAX)
        } else {
            port
        };
        entry_of(before.rule, &Matches { proto, port, addr }, AclAction::Deny)
    }
}

/// The packet classes a direction's entries tell apart: for each class, which entry values
/// (by index into `boxes`) match it. Marker boxes (tcp and udp on [`RETURN_ONLY`] ports, per
/// family) tell where return traffic lies.
struct Grid {
    boxes: Vec<(Matches, bool)>,
    cells: Vec<u128>,
    /// Bits of the ephemeral markers.
    ephemeral: u128,
}

fn dimension(points: impl Iterator<Item = (u128, u128, usize)>, max: u128) -> Vec<u128> {
    let spans: Vec<(u128, u128, usize)> = points.collect();
    let mut cuts: Vec<u128> = vec![0];
    for (lo, hi, _) in &spans {
        cuts.push(*lo);
        if *hi < max {
            cuts.push(hi + 1);
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut sigs: Vec<u128> = cuts
        .iter()
        .map(|&c| {
            spans
                .iter()
                .filter(|(lo, hi, _)| *lo <= c && c <= *hi)
                .fold(0u128, |acc, (_, _, i)| acc | (1u128 << i))
        })
        .filter(|s| *s != 0)
        .collect();
    sigs.sort_unstable();
    sigs.dedup();
    sigs
}

impl Grid {
    fn new(entries: &[&ObservedAclEntry]) -> Option<Grid> {
        let mut boxes: Vec<(Matches, bool)> = Vec::new();
        for e in entries {
            let m = crate::net::matches_of(e)?;
            let allow = e.action == AclAction::Allow;
            if !boxes.contains(&(m, allow)) {
                boxes.push((m, allow));
            }
        }
        let mut markers = 0u128;
        for family in [Family::V4, Family::V6] {
            for proto in [6u8, 17] {
                markers |= 1u128 << boxes.len();
                boxes.push((
                    Matches {
                        proto: (proto, proto),
                        port: RETURN_ONLY,
                        addr: AddrRange::all(family),
                    },
                    false,
                ));
            }
        }
        if boxes.len() > 128 {
            return None;
        }
        let mut cells: HashSet<u128> = HashSet::new();
        for family in [Family::V4, Family::V6] {
            let own: Vec<(usize, &Matches)> = boxes
                .iter()
                .enumerate()
                .filter(|(_, (m, _))| m.addr.family == family)
                .map(|(i, (m, _))| (i, m))
                .collect();
            let protos = dimension(
                own.iter()
                    .map(|(i, m)| (u128::from(m.proto.0), u128::from(m.proto.1), *i)),
                255,
            );
            let ports = dimension(
                own.iter()
                    .map(|(i, m)| (u128::from(m.port.0), u128::from(m.port.1), *i)),
                u128::from(u16::MAX),
            );
            let addrs = dimension(
                own.iter().map(|(i, m)| (m.addr.lo, m.addr.hi, *i)),
                AddrRange::all(family).hi,
            );
            if protos.len() * ports.len() * addrs.len() > 4_000_000 {
                return None;
            }
            for p in &protos {
                for t in &ports {
                    let pt = p & t;
                    if pt == 0 {
                        continue;
                    }
                    for a in &addrs {
                        // Only classes some real entry matches can differ between states.
                        let c = pt & a;
                        if c & !markers != 0 {
                            cells.insert(c);
                        }
                    }
                }
            }
            if cells.len() > MAX_CELLS {
                return None;
            }
        }
        let mut cells: Vec<u128> = cells.into_iter().collect();
        cells.sort_unstable();
        Some(Grid {
            boxes,
            cells,
            ephemeral: markers,
        })
    }

    fn index(&self, e: &ObservedAclEntry) -> usize {
        let m = crate::net::matches_of(e);
        let allow = e.action == AclAction::Allow;
        self.boxes
            .iter()
            .position(|(b, a)| Some(*b) == m && *a == allow)
            .expect("every entry of the plan has a box")
    }

    /// What passes under `state` (entry box indices, lowest rule first), per class.
    fn verdicts(&self, state: &[usize]) -> Vec<bool> {
        self.cells
            .iter()
            .map(|c| {
                state
                    .iter()
                    .find(|i| c & (1u128 << **i) != 0)
                    .is_some_and(|i| self.boxes[*i].1)
            })
            .collect()
    }
}

/// The entry box indices of `state`, lowest rule first.
fn indices(grid: &Grid, state: &BTreeMap<u16, ObservedAclEntry>) -> Vec<usize> {
    state.values().map(|e| grid.index(e)).collect()
}

type Entries = BTreeMap<u16, ObservedAclEntry>;

/// `state` with rule `n` moved to `to` (`None`: deleted).
fn moved(state: &Entries, n: u16, to: &Option<ObservedAclEntry>) -> Entries {
    let mut next = state.clone();
    match to {
        Some(e) => next.insert(n, e.clone()),
        None => next.remove(&n),
    };
    next
}

/// The exact evaluation of one direction: its packet classes, and per class whether the old
/// or the new set lets it through (the upper bound) and whether both do (the lower one).
struct Exact {
    grid: Grid,
    upper: Vec<bool>,
    lower: Vec<bool>,
}

impl Exact {
    fn within_upper(&self, v: &[bool]) -> bool {
        v.iter().zip(&self.upper).all(|(v, u)| !*v || *u)
    }

    fn within_lower(&self, v: &[bool]) -> bool {
        v.iter().zip(&self.lower).all(|(v, l)| *v || !*l)
    }
}

/// Orders the steps from `old` to `new` (one direction of one ACL; `egress` says which);
/// an error when no order keeps the set from being wider than both.
pub(crate) fn order(
    old: &[ObservedAclEntry],
    new: &[ObservedAclEntry],
    egress: bool,
) -> Result<Vec<Step>, String> {
    order_with(old, new, egress, true)
}

/// [`order`], evaluating packet classes only when `evaluate` (else as for sets too varied).
fn order_with(
    old: &[ObservedAclEntry],
    new: &[ObservedAclEntry],
    egress: bool,
    evaluate: bool,
) -> Result<Vec<Step>, String> {
    let start: Entries = old.iter().map(|e| (e.rule, e.clone())).collect();
    let target: Entries = new.iter().map(|e| (e.rule, e.clone())).collect();
    // What each rule number moves to (`None`: deleted), lowest number first.
    let mut pending: Vec<(u16, Option<ObservedAclEntry>)> = start
        .keys()
        .chain(target.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|n| start.get(n) != target.get(n))
        .map(|n| (*n, target.get(n).cloned()))
        .collect();
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let halves: Vec<ObservedAclEntry> = pending
        .iter()
        .filter_map(|(n, to)| halfway(start.get(n)?, to.as_ref()?))
        .collect();
    let every: Vec<&ObservedAclEntry> = start
        .values()
        .chain(target.values())
        .chain(&halves)
        .collect();
    let exact = evaluate.then(|| Grid::new(&every)).flatten().map(|grid| {
        let a = grid.verdicts(&indices(&grid, &start));
        let b = grid.verdicts(&indices(&grid, &target));
        Exact {
            upper: a.iter().zip(&b).map(|(x, y)| *x || *y).collect(),
            lower: a.iter().zip(&b).map(|(x, y)| *x && *y).collect(),
            grid,
        }
    });
    let mut state = start;
    let mut steps = Vec::new();
    while !pending.is_empty() {
        let chosen = match &exact {
            Some(x) => {
                // The first step that keeps both bounds, else the first that keeps the upper.
                let mut upper_only = None;
                let mut both = None;
                for (i, (n, to)) in pending.iter().enumerate() {
                    let next = x.grid.verdicts(&indices(&x.grid, &moved(&state, *n, to)));
                    if !x.within_upper(&next) {
                        continue;
                    }
                    if x.within_lower(&next) {
                        both = Some(i);
                        break;
                    }
                    upper_only.get_or_insert(i);
                }
                both.or(upper_only)
            }
            None => {
                // Too varied to evaluate: narrowing steps first, then the narrowing halves of
                // mixed replaces, then the widening rest.
                let classes: Vec<Class> = pending
                    .iter()
                    .map(|(n, to)| class(state.get(n), to.as_ref()))
                    .collect();
                classes
                    .iter()
                    .position(|c| *c == Class::Narrows)
                    .or_else(|| (!classes.contains(&Class::Mixed)).then_some(0))
            }
        };
        let (n, to) = match chosen {
            Some(i) => pending.remove(i),
            None => {
                // Split the first replace that both widens and narrows: its narrowing half now,
                // the widening rest stays pending.
                let split = pending.iter().find_map(|(n, to)| {
                    let before = state.get(n)?;
                    let after = to.as_ref()?;
                    if class(Some(before), Some(after)) != Class::Mixed {
                        return None;
                    }
                    halfway(before, after).map(|h| (*n, Some(h)))
                });
                match split {
                    Some(half) => half,
                    None => {
                        return Err(format!(
                            "{} rule {} cannot move from one address family to the other in place without letting through what neither the old nor the new entries allow; give the new entry another rule number",
                            if egress { "egress" } else { "ingress" },
                            pending[0].0
                        ))
                    }
                }
            }
        };
        let before = state.get(&n).cloned();
        let next = moved(&state, n, &to);
        let risk = risk_of(
            exact.as_ref(),
            &state,
            &next,
            before.as_ref(),
            to.as_ref(),
            egress,
        );
        state = next;
        steps.push(Step {
            before,
            after: to,
            risk,
        });
    }
    Ok(steps)
}

/// The risk of the step from `state` to `next` (rule `before` → `after`), in plain words.
fn risk_of(
    exact: Option<&Exact>,
    state: &Entries,
    next: &Entries,
    before: Option<&ObservedAclEntry>,
    after: Option<&ObservedAclEntry>,
    egress: bool,
) -> Option<String> {
    let (transient, dropped, dropped_ephemeral, opened) = match exact {
        Some(x) => {
            let a = x.grid.verdicts(&indices(&x.grid, state));
            let b = x.grid.verdicts(&indices(&x.grid, next));
            let mut dropped = false;
            let mut ephemeral = false;
            let mut opened = false;
            let mut transient = false;
            for (((was, is), c), both) in a.iter().zip(&b).zip(&x.grid.cells).zip(&x.lower) {
                if *was && !*is {
                    dropped = true;
                    ephemeral |= c & x.grid.ephemeral != 0;
                    transient |= *both;
                }
                opened |= !*was && *is;
            }
            (transient, dropped, ephemeral, opened)
        }
        None => {
            let c = class(before, after);
            let deny_ephemeral = after.is_some_and(|e| {
                e.action == AclAction::Deny
                    && crate::net::matches_of(e).is_some_and(|m| {
                        (m.proto.0..=m.proto.1).any(|p| p == 6 || p == 17)
                            && m.port.0 <= RETURN_ONLY.1
                            && m.port.1 >= RETURN_ONLY.0
                    })
            });
            (
                false,
                c != Class::Widens,
                deny_ephemeral,
                c != Class::Narrows,
            )
        }
    };
    let what = |e: &ObservedAclEntry| {
        let t = e.text(egress);
        t.split_once(' ')
            .map_or(t.clone(), |(_, rest)| rest.to_owned())
    };
    if transient {
        return Some(
            "for a moment drops traffic both the old and the new entries let through, until a later step of this ACL restores it"
                .to_owned(),
        );
    }
    if dropped && dropped_ephemeral {
        let cidr = after.or(before).map_or("", |e| e.cidr.as_str());
        let whose = if egress {
            format!("the answers this subnet sends to {cidr}")
        } else {
            format!("the answers {cidr} sends back to this subnet")
        };
        return Some(format!(
            "drops return traffic on ephemeral ports ({}–{}): network ACLs are stateless, so {whose} on those ports are lost",
            EPHEMERAL.0, EPHEMERAL.1
        ));
    }
    if dropped {
        return Some(match (before, after) {
            (Some(b), Some(a)) if b.action == AclAction::Allow && a.action == AclAction::Allow => {
                format!("narrows an allow: part of {} no longer passes", what(b))
            }
            (Some(b), None) if b.action == AclAction::Allow => {
                format!("removes an allow: {} now meets the later entries", what(b))
            }
            _ => "denies traffic that passed before".to_owned(),
        });
    }
    let world = after.is_some_and(|e| {
        !egress
            && e.action == AclAction::Allow
            && AddrRange::parse(&e.cidr).is_some_and(|r| r.is_everything())
            && crate::net::matches_of(e).is_some_and(|m| m.port != EPHEMERAL)
    });
    (opened && world).then(|| "opens this to the whole internet".to_owned())
}

#[cfg(test)]
mod tests;
