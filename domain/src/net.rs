//! Packets as network ACLs see them: address blocks as ranges, port sets, and an ordered entry
//! list compiled into boxes (protocol × port × address) whose lowest-numbered match decides.
//! The planner's ordering and reachability both evaluate entry lists through this module.

use std::net::IpAddr;

use crate::observed::ObservedAclEntry;
use crate::spec::{AclAction, AclProtocol};

/// The address family of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

/// An inclusive range of addresses of one family (IPv4 addresses in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrRange {
    pub family: Family,
    pub lo: u128,
    pub hi: u128,
}

impl AddrRange {
    /// Every address of the family.
    pub fn all(family: Family) -> AddrRange {
        AddrRange {
            family,
            lo: 0,
            hi: max_addr(family),
        }
    }

    /// `10.0.0.0/16`, `::/0`; `None` when it is not a block (host bits are ignored).
    pub fn parse(cidr: &str) -> Option<AddrRange> {
        let (addr, len) = cidr.trim().split_once('/')?;
        let ip: IpAddr = addr.parse().ok()?;
        let len: u32 = len.parse().ok()?;
        let (family, value, bits) = match ip {
            IpAddr::V4(v4) => (Family::V4, u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (Family::V6, u128::from(v6), 128),
        };
        if len > bits {
            return None;
        }
        let host = if len == bits {
            0
        } else {
            max_addr(family) >> len
        };
        let lo = value & !host & max_addr(family);
        Some(AddrRange {
            family,
            lo,
            hi: lo | host,
        })
    }

    pub fn contains(&self, other: &AddrRange) -> bool {
        self.family == other.family && self.lo <= other.lo && other.hi <= self.hi
    }

    pub fn overlaps(&self, other: &AddrRange) -> bool {
        self.family == other.family && self.lo <= other.hi && other.lo <= self.hi
    }

    pub fn intersect(&self, other: &AddrRange) -> Option<AddrRange> {
        self.overlaps(other).then(|| AddrRange {
            family: self.family,
            lo: self.lo.max(other.lo),
            hi: self.hi.min(other.hi),
        })
    }

    /// Whether this is every address of its family (`0.0.0.0/0`, `::/0`).
    pub fn is_everything(&self) -> bool {
        self.lo == 0 && self.hi == max_addr(self.family)
    }

    /// The smallest block holding both (same family).
    pub fn hull(&self, other: &AddrRange) -> Option<AddrRange> {
        if self.family != other.family {
            return None;
        }
        let (lo, hi) = (self.lo.min(other.lo), self.hi.max(other.hi));
        let bits = if self.family == Family::V4 { 32 } else { 128 };
        let mut len = bits;
        loop {
            let host = if len == bits {
                0
            } else {
                max_addr(self.family) >> len
            };
            let start = lo & !host & max_addr(self.family);
            if start | host >= hi {
                return Some(AddrRange {
                    family: self.family,
                    lo: start,
                    hi: start | host,
                });
            }
            len -= 1;
        }
    }

    /// The range as CIDR blocks (the fewest that cover it exactly).
    pub fn cidrs(&self) -> Vec<String> {
        let bits: u32 = if self.family == Family::V4 { 32 } else { 128 };
        let mut out = Vec::new();
        let mut lo = self.lo;
        loop {
            // The largest aligned block starting at `lo` that stays within the range.
            let mut k = if lo == 0 {
                bits
            } else {
                lo.trailing_zeros().min(bits)
            };
            let last = loop {
                let last = if k == 128 {
                    u128::MAX
                } else {
                    lo + ((1u128 << k) - 1)
                };
                if last <= self.hi {
                    break last;
                }
                k -= 1;
            };
            out.push(format!("{}/{}", format_addr(self.family, lo), bits - k));
            if last >= self.hi {
                return out;
            }
            lo = last + 1;
        }
    }
}

fn max_addr(family: Family) -> u128 {
    match family {
        Family::V4 => u128::from(u32::MAX),
        Family::V6 => u128::MAX,
    }
}

fn format_addr(family: Family, v: u128) -> String {
    match family {
        Family::V4 => std::net::Ipv4Addr::from(v as u32).to_string(),
        Family::V6 => std::net::Ipv6Addr::from(v).to_string(),
    }
}

/// `ranges` cut into pieces that each lie wholly inside or wholly outside every block of
/// `by` (of the same family): a network ACL treats every address of a piece alike.
pub fn cut(ranges: &[AddrRange], by: &[AddrRange]) -> Vec<AddrRange> {
    let mut out = Vec::new();
    for r in ranges {
        let mut points: Vec<u128> = by
            .iter()
            .filter(|b| b.family == r.family)
            .flat_map(|b| [Some(b.lo), b.hi.checked_add(1)])
            .flatten()
            .filter(|p| *p > r.lo && *p <= r.hi)
            .collect();
        points.sort_unstable();
        points.dedup();
        let mut lo = r.lo;
        for p in points {
            out.push(AddrRange {
                family: r.family,
                lo,
                hi: p - 1,
            });
            lo = p;
        }
        out.push(AddrRange {
            family: r.family,
            lo,
            hi: r.hi,
        });
    }
    out
}

/// `ranges` without the addresses of `minus`.
pub fn subtract(ranges: &[AddrRange], minus: &[AddrRange]) -> Vec<AddrRange> {
    cut(ranges, minus)
        .into_iter()
        .filter(|piece| !minus.iter().any(|m| m.contains(piece)))
        .collect()
}

/// A set of 16-bit values (ports, or ICMP type × 256 + code) as sorted, disjoint, inclusive
/// intervals.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct PortSet(pub Vec<(u16, u16)>);

/// The ports an answer comes back to: AWS's advice for network ACLs covers every client
/// (Linux 32768–60999, Windows 49152–65535, load balancers and NAT gateways 1024–65535).
pub const EPHEMERAL: (u16, u16) = (1024, 65535);

impl PortSet {
    pub fn empty() -> PortSet {
        PortSet(Vec::new())
    }

    pub fn full() -> PortSet {
        PortSet(vec![(0, u16::MAX)])
    }

    pub fn range(a: u16, b: u16) -> PortSet {
        if a <= b {
            PortSet(vec![(a, b)])
        } else {
            PortSet::empty()
        }
    }

    pub fn ephemeral() -> PortSet {
        PortSet::range(EPHEMERAL.0, EPHEMERAL.1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.0 == [(0, u16::MAX)]
    }

    fn normalised(mut v: Vec<(u16, u16)>) -> PortSet {
        v.sort_unstable();
        let mut out: Vec<(u16, u16)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some((_, hi)) if u32::from(a) <= u32::from(*hi) + 1 => *hi = (*hi).max(b),
                _ => out.push((a, b)),
            }
        }
        PortSet(out)
    }

    pub fn union(&self, other: &PortSet) -> PortSet {
        PortSet::normalised(self.0.iter().chain(&other.0).copied().collect())
    }

    pub fn intersect(&self, other: &PortSet) -> PortSet {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            for &(c, d) in &other.0 {
                let (lo, hi) = (a.max(c), b.min(d));
                if lo <= hi {
                    out.push((lo, hi));
                }
            }
        }
        PortSet::normalised(out)
    }

    pub fn minus(&self, other: &PortSet) -> PortSet {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let mut lo = u32::from(a);
            let hi = u32::from(b);
            for &(c, d) in &other.0 {
                let (c, d) = (u32::from(c), u32::from(d));
                if d < lo || c > hi {
                    continue;
                }
                if c > lo {
                    out.push((lo as u16, (c - 1) as u16));
                }
                lo = lo.max(d + 1);
            }
            if lo <= hi {
                out.push((lo as u16, hi as u16));
            }
        }
        PortSet::normalised(out)
    }

    pub fn contains_set(&self, other: &PortSet) -> bool {
        other.minus(self).is_empty()
    }

    /// `80`, `80, 443`, `1024-65535`.
    pub fn text(&self) -> String {
        self.0
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one entry matches: protocol numbers × port (or ICMP type/code) values × addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Matches {
    pub proto: (u8, u8),
    pub port: (u16, u16),
    pub addr: AddrRange,
}

impl Matches {
    pub fn contains(&self, other: &Matches) -> bool {
        self.proto.0 <= other.proto.0
            && other.proto.1 <= self.proto.1
            && self.port.0 <= other.port.0
            && other.port.1 <= self.port.1
            && self.addr.contains(&other.addr)
    }

    pub fn intersect(&self, other: &Matches) -> Option<Matches> {
        let proto = (
            self.proto.0.max(other.proto.0),
            self.proto.1.min(other.proto.1),
        );
        let port = (self.port.0.max(other.port.0), self.port.1.min(other.port.1));
        (proto.0 <= proto.1 && port.0 <= port.1).then_some(())?;
        Some(Matches {
            proto,
            port,
            addr: self.addr.intersect(&other.addr)?,
        })
    }

    pub fn has(&self, proto: u8, port: u16, family: Family, addr: u128) -> bool {
        (self.proto.0..=self.proto.1).contains(&proto)
            && (self.port.0..=self.port.1).contains(&port)
            && self.addr.family == family
            && (self.addr.lo..=self.addr.hi).contains(&addr)
    }
}

/// The protocol numbers an entry's protocol covers.
pub fn proto_range(p: AclProtocol) -> (u8, u8) {
    match p {
        AclProtocol::Tcp => (6, 6),
        AclProtocol::Udp => (17, 17),
        AclProtocol::Icmp => (1, 1),
        AclProtocol::Icmpv6 => (58, 58),
        AclProtocol::All => (0, 255),
        AclProtocol::Number(n) => (n, n),
    }
}

/// What `e` matches; `None` when its block cannot be read (AWS never holds one).
pub fn matches_of(e: &ObservedAclEntry) -> Option<Matches> {
    let port = match (e.protocol, e.ports, e.icmp) {
        (p, Some(r), _) if p.has_ports() => r,
        (AclProtocol::Icmp | AclProtocol::Icmpv6, _, Some((t, c))) if t >= 0 => {
            let t = t as u16;
            if c >= 0 {
                let v = t * 256 + c as u16;
                (v, v)
            } else {
                (t * 256, t * 256 + 255)
            }
        }
        _ => (0, u16::MAX),
    };
    Some(Matches {
        proto: proto_range(e.protocol),
        port,
        addr: AddrRange::parse(&e.cidr)?,
    })
}

/// An entry list ready to evaluate: what each entry matches and whether it allows, lowest
/// rule number first.
#[derive(Debug, Clone, Default)]
pub struct Compiled(pub Vec<(Matches, bool)>);

impl Compiled {
    pub fn new(entries: &[ObservedAclEntry]) -> Compiled {
        let mut sorted: Vec<&ObservedAclEntry> = entries.iter().collect();
        sorted.sort_by_key(|e| e.rule);
        Compiled(
            sorted
                .into_iter()
                .filter_map(|e| Some((matches_of(e)?, e.action == AclAction::Allow)))
                .collect(),
        )
    }

    /// The blocks the entries name: cutting addresses by them gives pieces the list treats
    /// alike.
    pub fn blocks(&self) -> Vec<AddrRange> {
        self.0.iter().map(|(m, _)| m.addr).collect()
    }

    /// Of `ports`, those the list lets through for protocol `proto` and the addresses of
    /// `piece` (which no entry's block cuts): the lowest-numbered entry that matches decides,
    /// and what none matches is denied.
    pub fn allowed(&self, proto: u8, ports: &PortSet, piece: &AddrRange) -> PortSet {
        let mut left = ports.clone();
        let mut allowed = PortSet::empty();
        for (m, allow) in &self.0 {
            if left.is_empty() {
                break;
            }
            if !(m.proto.0..=m.proto.1).contains(&proto) || !m.addr.contains(piece) {
                continue;
            }
            let hit = left.intersect(&PortSet::range(m.port.0, m.port.1));
            if hit.is_empty() {
                continue;
            }
            if *allow {
                allowed = allowed.union(&hit);
            }
            left = left.minus(&hit);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(c: &str) -> AddrRange {
        AddrRange::parse(c).unwrap()
    }

    #[test]
    fn blocks_read_as_ranges_and_back() {
        let b = r("10.0.20.0/23");
        assert_eq!((b.lo, b.hi), (0x0A00_1400, 0x0A00_15FF));
        assert!(r("0.0.0.0/0").is_everything() && r("::/0").is_everything());
        assert_eq!(r("10.0.20.0/23").cidrs(), ["10.0.20.0/23"]);
        assert_eq!(r("0.0.0.0/0").cidrs(), ["0.0.0.0/0"]);
        assert_eq!(r("::/0").cidrs(), ["::/0"]);
        let odd = AddrRange {
            family: Family::V4,
            lo: 0x0A00_0001,
            hi: 0x0A00_0006,
        };
        assert_eq!(
            odd.cidrs(),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        assert_eq!(
            r("10.0.1.0/24").hull(&r("10.0.3.0/24")).unwrap().cidrs(),
            ["10.0.0.0/22"]
        );
        assert_eq!(r("255.255.255.255/32").cidrs(), ["255.255.255.255/32"]);
        let outside = subtract(&[r("10.0.0.0/8")], &[r("10.0.20.0/23"), r("10.0.40.0/24")]);
        let texts: Vec<String> = outside.iter().flat_map(|p| p.cidrs()).collect();
        assert!(texts.contains(&"10.0.0.0/20".to_owned()), "{texts:?}");
        assert!(!outside.iter().any(|p| p.overlaps(&r("10.0.20.0/23"))));
        assert_eq!(
            outside.iter().map(|p| p.hi - p.lo + 1).sum::<u128>(),
            (1 << 24) - 512 - 256
        );
    }

    #[test]
    fn port_sets_add_cut_and_say_themselves() {
        let a = PortSet::range(80, 80).union(&PortSet::range(443, 443));
        assert_eq!(a.text(), "80, 443");
        let full = PortSet::full();
        assert_eq!(full.minus(&PortSet::ephemeral()).text(), "0-1023");
        assert_eq!(
            PortSet::range(1000, 2000)
                .intersect(&PortSet::ephemeral())
                .text(),
            "1024-2000"
        );
        assert!(PortSet::range(79, 80).union(&PortSet::range(81, 90)) == PortSet::range(79, 90));
        assert!(full.contains_set(&a) && !a.contains_set(&full));
    }

    #[test]
    fn the_lowest_numbered_matching_entry_decides() {
        let e = |rule, action, cidr: &str, ports| ObservedAclEntry {
            rule,
            protocol: AclProtocol::Tcp,
            ports: Some(ports),
            icmp: None,
            cidr: cidr.into(),
            action,
        };
        // Written out of order: 90 denies one host before 100 allows the block.
        let list = Compiled::new(&[
            e(100, AclAction::Allow, "10.0.0.0/16", (0, 65535)),
            e(90, AclAction::Deny, "10.0.5.5/32", (22, 22)),
        ]);
        let pieces = cut(&[r("10.0.0.0/16")], &list.blocks());
        assert_eq!(pieces.len(), 3);
        let host = pieces.iter().find(|p| p.lo == p.hi).unwrap();
        assert_eq!(
            list.allowed(6, &PortSet::full(), host).text(),
            "0-21, 23-65535"
        );
        assert!(list.allowed(6, &PortSet::full(), &pieces[0]).is_full());
        // udp and addresses outside the block meet the last `*` entry: denied.
        assert!(list.allowed(17, &PortSet::full(), &pieces[0]).is_empty());
        assert!(list
            .allowed(6, &PortSet::full(), &r("192.168.0.0/16"))
            .is_empty());
    }
}
