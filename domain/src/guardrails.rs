//! Guardrails: limits a spec must keep to be approved or applied, from the seed's goals (high
//! availability, cost control, a private database, layered network security). The limits are
//! the environment's `guardrails` (defaults 2 / 8 / Multi-AZ); the network rules always hold,
//! on the network layout of the last applied spec ([`crate::policy::Layout`]): which groups
//! face the internet, which subnets are public, which tier is which.
//!
//! A change whose spec breaks one is `blocked`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::net::{AddrRange, PortSet};
use crate::policy::Policy;
use crate::reachability::{self, flows_text, tier_text, Origin, PathKind};
use crate::spec::{AclAction, CpuScaling, EnvironmentSpec, Loc, Protocol, Source};

/// Ports of the database engines RDS runs (MySQL/MariaDB, PostgreSQL, SQL Server, Oracle).
pub const DATABASE_PORTS: [u16; 4] = [3306, 5432, 1433, 1521];

/// One broken guardrail, with where the spec says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// A stable id: `min-instances`, `max-instances`, `scale-thresholds`, `multi-az`,
    /// `min-healthy`, `open-ingress`, `database-port-from-cidr`, `nacl-open-ingress`, `nacl-drops-chain`,
    /// `database-reachable`.
    pub rule: String,
    pub message: String,
    pub file: String,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: [{}] {}",
            self.file, self.line, self.col, self.rule, self.message
        )
    }
}

fn violation(rule: &str, loc: &Loc, message: String) -> Violation {
    Violation {
        rule: rule.to_owned(),
        message,
        file: loc.file.clone(),
        line: loc.line,
        col: loc.col,
    }
}

fn is_world(cidr: &str) -> bool {
    cidr == "0.0.0.0/0" || cidr == "::/0"
}

/// Every guardrail `spec` breaks under the rules that judge it ([`crate::policy::judge`]:
/// their limits and the applied network layout, never only the spec's own), in file order.
pub fn check(spec: &EnvironmentSpec, policy: &Policy) -> Vec<Violation> {
    let limits = &policy.guardrails;
    let judged = policy.layout.judged(spec);
    let spec = &judged;
    let mut out = Vec::new();
    for g in &spec.autoscaling_groups {
        if g.capacity.min() < limits.min_instances {
            out.push(violation(
                "min-instances",
                &g.loc,
                format!(
                    "group {}: min {} is below the guardrail min_instances {} (high availability: at least {} instances per tier)",
                    g.name, g.capacity.min(), limits.min_instances, limits.min_instances
                ),
            ));
        }
        if g.capacity.max() > limits.max_instances {
            out.push(violation(
                "max-instances",
                &g.loc,
                format!(
                    "group {}: max {} is above the guardrail max_instances {} (cost control)",
                    g.name,
                    g.capacity.max(),
                    limits.max_instances
                ),
            ));
        }
        if let Some(CpuScaling::Step {
            scale_out_above,
            scale_in_below,
            ..
        }) = &g.cpu_scaling
        {
            if scale_in_below >= scale_out_above {
                out.push(violation(
                    "scale-thresholds",
                    &g.loc,
                    format!(
                        "group {}: scale_in_below {scale_in_below} must be below scale_out_above {scale_out_above}, or the group flaps",
                        g.name
                    ),
                ));
            }
        }
        if let (Some(_), Some(loc)) = (&g.launch, &g.rollout.loc) {
            if g.rollout.min_healthy_percent < limits.min_healthy_percent {
                out.push(violation(
                    "min-healthy",
                    loc,
                    format!(
                        "group {}: rollout.min_healthy_percent {} is below the guardrail min_healthy_percent {} (a rollout keeps that much of the tier serving)",
                        g.name, g.rollout.min_healthy_percent, limits.min_healthy_percent
                    ),
                ));
            }
        }
        for a in &g.schedule {
            if let Some(min) = a.capacity.min().filter(|m| *m < limits.min_instances) {
                out.push(violation(
                    "min-instances",
                    &a.loc,
                    format!(
                        "group {} scheduled action {}: min {min} is below the guardrail min_instances {}",
                        g.name, a.name, limits.min_instances
                    ),
                ));
            }
            if let Some(max) = a.capacity.max().filter(|m| *m > limits.max_instances) {
                out.push(violation(
                    "max-instances",
                    &a.loc,
                    format!(
                        "group {} scheduled action {}: max {max} is above the guardrail max_instances {}",
                        g.name, a.name, limits.max_instances
                    ),
                ));
            }
        }
    }
    if limits.require_multi_az {
        for d in spec.databases.iter().filter(|d| d.multi_az != Some(true)) {
            out.push(violation(
                "multi-az",
                &d.loc,
                format!(
                    "database {}: this environment requires Multi-AZ databases; set multi_az: true",
                    d.identifier
                ),
            ));
        }
    }
    for sg in &spec.security_groups {
        for r in &sg.ingress {
            let Source::Cidr(cidr) = &r.source else {
                continue;
            };
            if is_world(cidr) && !sg.edge {
                out.push(violation(
                    "open-ingress",
                    &r.loc,
                    format!(
                        "security group {}: ingress from {cidr} is only allowed on groups marked edge: true (the internet-facing load balancer)",
                        sg.name
                    ),
                ));
            }
            // `all` opens every port, the database's among them.
            let covers_db = match (r.protocol, r.ports) {
                (Protocol::Tcp, Some((from, to))) => {
                    DATABASE_PORTS.iter().find(|p| (from..=to).contains(p))
                }
                (Protocol::All, _) => DATABASE_PORTS.first(),
                _ => None,
            };
            if let Some(port) = covers_db {
                out.push(violation(
                    "database-port-from-cidr",
                    &r.loc,
                    format!(
                        "security group {}: the database port {port} may only be opened to security groups, never to a CIDR ({cidr})",
                        sg.name
                    ),
                ));
            }
        }
    }
    out.extend(network(spec));
    out.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    out
}

/// The network ACLs' and reachability's guardrails.
fn network(spec: &EnvironmentSpec) -> Vec<Violation> {
    let mut out = Vec::new();
    let eph = PortSet::ephemeral();
    for acl in &spec.network_acls {
        let private: Vec<&str> = acl
            .subnets
            .iter()
            .filter(|t| spec.subnets.iter().any(|s| &s.tier == *t && !s.public))
            .map(String::as_str)
            .collect();
        if private.is_empty() {
            continue;
        }
        for e in &acl.ingress {
            let world = AddrRange::parse(&e.cidr).is_some_and(|r| r.is_everything());
            let returns_only = e.protocol.has_ports()
                && e.ports
                    .is_some_and(|(a, b)| eph.contains_set(&PortSet::range(a, b)));
            if e.action == AclAction::Allow && world && !returns_only {
                let entry = crate::observed::ObservedAclEntry::from(e);
                out.push(violation(
                    "nacl-open-ingress",
                    &e.loc,
                    format!(
                        "network ACL {}: ingress rule {} allows {} into the private {} subnets; from {} a private tier's ACL admits only return traffic on ephemeral ports ({}–{})",
                        acl.resource,
                        e.rule,
                        entry.text(false).trim_start_matches("allow "),
                        private.join(", "),
                        e.cidr,
                        crate::net::EPHEMERAL.0,
                        crate::net::EPHEMERAL.1
                    ),
                ));
            }
        }
    }
    let reach = reachability::reachability(spec);
    let acl_loc = |names: &[String]| {
        names
            .iter()
            .find_map(|n| spec.network_acls.iter().find(|a| a.resource.text() == n))
            .map(|a| a.loc.clone())
    };
    for p in reach.paths.iter().filter(|p| p.kind == PathKind::Chain) {
        if !p.blocked.is_empty() {
            out.push(violation(
                "nacl-drops-chain",
                &acl_loc(&p.blocked_by).unwrap_or_else(|| p.loc.clone()),
                format!(
                    "{} drops {} from {} to {}, which its security groups admit: the chain's own traffic",
                    names(&p.blocked_by),
                    flows_text(&p.blocked),
                    p.from.text(),
                    tier_text(&p.to)
                ),
            ));
        }
        if !p.answers_dropped.is_empty() {
            out.push(violation(
                "nacl-drops-chain",
                &acl_loc(&p.answers_dropped_by).unwrap_or_else(|| p.loc.clone()),
                format!(
                    "{} drops the return traffic (ports {}) of calls from {} to {} on {}: network ACLs are stateless, so the chain's own calls get no answers",
                    names(&p.answers_dropped_by),
                    p.answers_dropped.text(),
                    p.from.text(),
                    tier_text(&p.to),
                    flows_text(&p.open)
                ),
            ));
        }
    }
    // The database's own subnets aside: traffic within a subnet meets no ACL, and nothing but
    // the database sits there.
    let app = Origin::Tier(reachability::APPLICATION_TIER.to_owned());
    let own = Origin::Tier(reachability::DATABASE_TIER.to_owned());
    for p in reach
        .to(reachability::DATABASE_TIER)
        .filter(|p| p.from != app && p.from != own)
    {
        out.push(violation(
            "database-reachable",
            &p.loc,
            format!(
                "{} is reachable from {} on {}; the database takes traffic only from {}",
                tier_text(&p.to),
                p.from.text(),
                flows_text(&p.open),
                tier_text(reachability::APPLICATION_TIER)
            ),
        ));
    }
    out
}

fn names(acls: &[String]) -> String {
    match acls {
        [] => "a network ACL".to_owned(),
        [one] => format!("network ACL {one}"),
        more => format!("network ACLs {}", more.join(" and ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{judge, Applied, Floor};
    use crate::spec::fixtures::prod as prod_spec;
    use crate::spec::Guardrails;

    /// The rules of an environment never applied, with `limits`.
    fn policy(limits: &Guardrails) -> Policy {
        let mut p = judge(Applied::Never, &prod_spec(), &Floor::default());
        p.guardrails = limits.clone();
        p
    }

    fn rules(spec: &EnvironmentSpec) -> Vec<String> {
        check(spec, &policy(&spec.environment.guardrails))
            .into_iter()
            .map(|v| v.rule)
            .collect()
    }

    #[test]
    fn the_example_prod_spec_keeps_every_guardrail() {
        assert_eq!(
            check(&prod_spec(), &policy(&Guardrails::default())),
            Vec::new()
        );
    }

    #[test]
    fn a_rollout_below_the_min_healthy_guardrail_is_named_and_the_applied_limit_holds() {
        let mut spec = prod_spec();
        let g = &mut spec.autoscaling_groups[0];
        g.launch = Some(crate::spec::Launch::Image {
            image_id: "ami-12345678".into(),
        });
        g.rollout.min_healthy_percent = 50;
        g.rollout.loc = Some(g.loc.clone());
        let found = check(&spec, &policy(&Guardrails::default()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, "min-healthy");
        assert!(
            found[0].message.contains(
                "rollout.min_healthy_percent 50 is below the guardrail min_healthy_percent 90"
            ),
            "{}",
            found[0].message
        );
        // The change lowering its own limit is judged by the applied one.
        spec.environment.guardrails.min_healthy_percent = 40;
        let applied = prod_spec();
        let p = judge(
            Applied::Spec {
                commit: "c0ffee",
                spec: &applied,
            },
            &spec,
            &Floor::default(),
        );
        assert_eq!(p.guardrails.min_healthy_percent, 90);
        assert!(p.is_policy_change());
        assert_eq!(check(&spec, &p).len(), 1);
    }

    #[test]
    fn capacity_outside_the_limits_is_named_with_its_place() {
        let mut spec = prod_spec();
        spec.autoscaling_groups[0].capacity =
            spec.autoscaling_groups[0].capacity.with_min(1).unwrap();
        spec.autoscaling_groups[1].capacity =
            spec.autoscaling_groups[1].capacity.with_max(12).unwrap();
        spec.autoscaling_groups[1].schedule[3].capacity = spec.autoscaling_groups[1].schedule[3]
            .capacity
            .with_max(Some(9))
            .unwrap();
        spec.autoscaling_groups[0].schedule[0].capacity = spec.autoscaling_groups[0].schedule[0]
            .capacity
            .with_min(Some(0))
            .unwrap();
        let v = check(&spec, &policy(&spec.environment.guardrails));
        assert_eq!(
            v.iter().map(|v| v.rule.as_str()).collect::<Vec<_>>(),
            [
                "min-instances",
                "min-instances",
                "max-instances",
                "max-instances"
            ]
        );
        assert_eq!(v[0].file, "environments/prod/autoscaling.yaml");
        assert!(v[0].line > 0);
        assert!(
            v[0].message
                .contains("min 1 is below the guardrail min_instances 2"),
            "{}",
            v[0].message
        );
        // Overridden limits move the line.
        spec.environment.guardrails.min_instances = 0;
        spec.environment.guardrails.max_instances = 12;
        assert_eq!(rules(&spec), Vec::<String>::new());
    }

    #[test]
    fn flapping_thresholds_and_single_az_databases_are_refused() {
        let mut spec = prod_spec();
        spec.autoscaling_groups[0].cpu_scaling = Some(CpuScaling::Step {
            scale_out_above: 40.0,
            scale_in_below: 40.0,
            adjustment: 1,
            cooldown_seconds: 300,
        });
        spec.databases[0].multi_az = Some(false);
        assert_eq!(rules(&spec), ["scale-thresholds", "multi-az"]);
        spec.environment.guardrails.require_multi_az = false;
        assert_eq!(rules(&spec), ["scale-thresholds"]);
    }

    #[test]
    fn the_internet_reaches_only_edge_groups_and_the_database_only_groups() {
        let mut spec = prod_spec();
        let web = spec
            .security_groups
            .iter()
            .position(|s| !s.edge)
            .expect("a group that is not edge");
        let mut open = spec.security_groups[web].ingress[0].clone();
        open.source = Source::Cidr("0.0.0.0/0".into());
        open.ports = Some((80, 80));
        spec.security_groups[web].ingress.push(open.clone());
        let mut db = open.clone();
        db.source = Source::Cidr("10.0.0.0/8".into());
        db.ports = Some((3300, 3310));
        spec.security_groups[web].ingress.push(db);
        assert_eq!(rules(&spec), ["open-ingress", "database-port-from-cidr"]);
        // The edge group may take the whole internet.
        spec.security_groups[web].edge = true;
        assert_eq!(rules(&spec), ["database-port-from-cidr"]);
        // Every protocol from a CIDR opens the database port too.
        let last = spec.security_groups[web].ingress.last_mut().unwrap();
        last.protocol = Protocol::All;
        last.ports = None;
        assert_eq!(rules(&spec), ["database-port-from-cidr"]);
        let v = check(&spec, &policy(&spec.environment.guardrails));
        assert!(
            v[0].message.contains("database port 3306"),
            "{}",
            v[0].message
        );
    }

    /// Prod with `from` replaced by `to` in `file`.
    fn prod_editing(edits: &[(&str, &str, &str)]) -> EnvironmentSpec {
        crate::spec::fixtures::prod_with(|name, text| {
            let mut text = text.to_owned();
            for (file, from, to) in edits {
                if name == *file {
                    assert!(text.contains(from), "{file} has no `{from}`");
                    text = text.replacen(from, to, 1);
                }
            }
            text
        })
    }

    const WEB_NAT_ANSWERS: &str = "      - { rule: 110, protocol: tcp, port: 1024-65535, cidr: 0.0.0.0/0,    action: allow }  # answers: the internal ALB, NAT";

    #[test]
    fn a_private_tiers_acl_admits_the_internet_only_on_return_ports() {
        let spec = prod_editing(&[(
            "network.yaml",
            WEB_NAT_ANSWERS,
            &format!("{WEB_NAT_ANSWERS}\n      - {{ rule: 120, protocol: tcp, port: 22, cidr: 0.0.0.0/0, action: allow }}"),
        )]);
        let v = check(&spec, &policy(&spec.environment.guardrails));
        assert_eq!(v.len(), 1, "{v:#?}");
        assert_eq!(
            v[0].to_string(),
            "environments/prod/network.yaml:38:9: [nacl-open-ingress] network ACL petclinic-prod-web-nacl: ingress rule 120 allows tcp/22 from 0.0.0.0/0 into the private web subnets; from 0.0.0.0/0 a private tier's ACL admits only return traffic on ephemeral ports (1024–65535)"
        );
        // The public subnets' ACL takes HTTPS from anywhere, as the external ALB must.
        assert_eq!(rules(&prod_spec()), Vec::<String>::new());
    }

    #[test]
    fn an_acl_that_drops_the_chains_traffic_either_way_is_a_violation() {
        // The was tier's ACL denies answers from the database on Linux's ephemeral ports.
        let spec = prod_editing(&[(
            "network.yaml",
            "      - { rule: 120, protocol: tcp, port: 1024-65535, cidr: 0.0.0.0/0,    action: allow }  # answers: Tomcat",
            "      - { rule: 115, protocol: tcp, port: 32768-65535, cidr: 10.0.40.0/23, action: deny }\n      - { rule: 120, protocol: tcp, port: 1024-65535, cidr: 0.0.0.0/0,    action: allow }  # answers: Tomcat",
        )]);
        let v = check(&spec, &policy(&spec.environment.guardrails));
        assert_eq!(
            v.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["environments/prod/network.yaml:43:5: [nacl-drops-chain] network ACL petclinic-prod-was-nacl drops the return traffic (ports 32768-65535) of calls from the was tier to the db tier on tcp/3306: network ACLs are stateless, so the chain's own calls get no answers"]
        );
        // The database's ACL no longer lets MySQL in: the chain's own traffic is cut.
        let spec = prod_editing(&[(
            "network.yaml",
            "port: 3306,       cidr: 10.0.30.0/23, action: allow }  # MySQL",
            "port: 3307,       cidr: 10.0.30.0/23, action: allow }  # MySQL",
        )]);
        let v = check(&spec, &policy(&spec.environment.guardrails));
        assert_eq!(
            v.iter().map(|v| (v.rule.as_str(), v.message.as_str())).collect::<Vec<_>>(),
            [("nacl-drops-chain", "network ACL petclinic-prod-db-nacl drops tcp/3306 from the was tier to the db tier, which its security groups admit: the chain's own traffic")]
        );
    }

    #[test]
    fn the_database_is_reachable_only_from_the_application_tier() {
        // Both layers let the web tier in.
        let spec = prod_editing(&[
            (
                "security.yaml",
                "      - { protocol: tcp, port: 3306, from_group: petclinic-prod-was-sg, description: MySQL from the was tier }",
                "      - { protocol: tcp, port: 3306, from_group: petclinic-prod-was-sg, description: MySQL from the was tier }\n      - { protocol: tcp, port: 3306, from_group: petclinic-prod-web-sg }",
            ),
            ("network.yaml", "port: 3306,       cidr: 10.0.30.0/23", "port: 3306,       cidr: 10.0.0.0/16"),
            ("network.yaml", "port: 1024-65535, cidr: 10.0.30.0/23, action: allow }  # answers to the was tier", "port: 1024-65535, cidr: 10.0.0.0/16, action: allow }  # answers to the was tier"),
            (
                "network.yaml",
                "port: 443,        cidr: 0.0.0.0/0,    action: allow }  # HTTPS out through NAT\n\n  - name: petclinic-prod-was-nacl",
                "port: 443,        cidr: 0.0.0.0/0,    action: allow }  # HTTPS out through NAT\n      - { rule: 130, protocol: tcp, port: 3306, cidr: 10.0.40.0/23, action: allow }\n\n  - name: petclinic-prod-was-nacl",
            ),
        ]);
        let v = check(&spec, &policy(&spec.environment.guardrails));
        let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert!(
            shown.contains(&"environments/prod/security.yaml:30:9: [database-reachable] the db tier is reachable from the web tier on tcp/3306; the database takes traffic only from the was tier".to_owned()),
            "{shown:#?}"
        );
        // The security group alone, behind the database's ACL, leaves it unreachable.
        let spec = prod_editing(&[(
            "security.yaml",
            "      - { protocol: tcp, port: 3306, from_group: petclinic-prod-was-sg, description: MySQL from the was tier }",
            "      - { protocol: tcp, port: 3306, from_group: petclinic-prod-was-sg, description: MySQL from the was tier }\n      - { protocol: tcp, port: 3306, from_group: petclinic-prod-web-sg }",
        )]);
        assert_eq!(rules(&spec), Vec::<String>::new());
    }

    #[test]
    fn a_change_cannot_relabel_its_way_past_a_network_guardrail() {
        let applied = prod_spec();
        // Marks the web subnets public and opens ssh to the world on them, and marks the
        // database's group internet-facing to open it too.
        let proposed = prod_editing(&[
            ("network.yaml", "tier: web,    cidr: 10.0.20.0/24 }", "tier: web,    cidr: 10.0.20.0/24, public: true }"),
            ("network.yaml", "tier: web,    cidr: 10.0.21.0/24 }", "tier: web,    cidr: 10.0.21.0/24, public: true }"),
            (
                "network.yaml",
                WEB_NAT_ANSWERS,
                &format!("{WEB_NAT_ANSWERS}\n      - {{ rule: 120, protocol: tcp, port: 22, cidr: 0.0.0.0/0, action: allow }}"),
            ),
            ("security.yaml", "  - name: petclinic-prod-db-sg\n    tier: db\n", "  - name: petclinic-prod-db-sg\n    tier: db\n    edge: true\n"),
            (
                "security.yaml",
                "MySQL from the was tier }",
                "MySQL from the was tier }\n      - { protocol: tcp, port: 443, cidr: 0.0.0.0/0 }",
            ),
        ]);
        let p = judge(
            Applied::Spec {
                commit: "abc",
                spec: &applied,
            },
            &proposed,
            &Floor::default(),
        );
        assert_eq!(
            p.edits,
            [
                "security_groups[petclinic-prod-db-sg].edge",
                "subnets[petclinic-prod-web-a].public",
                "subnets[petclinic-prod-web-c].public",
            ]
        );
        let v: Vec<String> = check(&proposed, &p).into_iter().map(|v| v.rule).collect();
        assert!(v.contains(&"nacl-open-ingress".to_owned()), "{v:?}");
        assert!(v.contains(&"open-ingress".to_owned()), "{v:?}");
        // Judged by its own words, as a first apply is, it would pass those two.
        let own = judge(Applied::Never, &proposed, &Floor::default());
        let v: Vec<String> = check(&proposed, &own).into_iter().map(|v| v.rule).collect();
        assert!(!v.contains(&"nacl-open-ingress".to_owned()), "{v:?}");
        assert!(!v.contains(&"open-ingress".to_owned()), "{v:?}");
    }
}
