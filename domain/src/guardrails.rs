//! Guardrails: limits a spec must keep to be approved or applied, from the seed's goals (high
//! availability, cost control, a private database). The limits are the environment's
//! `guardrails` (defaults 2 / 8 / Multi-AZ); the network rules always hold.
//!
//! A change whose spec breaks one is `blocked`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::{CpuScaling, EnvironmentSpec, Guardrails, Loc, Protocol, Source};

/// Ports of the database engines RDS runs (MySQL/MariaDB, PostgreSQL, SQL Server, Oracle).
pub const DATABASE_PORTS: [u16; 4] = [3306, 5432, 1433, 1521];

/// One broken guardrail, with where the spec says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// A stable id: `min-instances`, `max-instances`, `scale-thresholds`, `multi-az`,
    /// `open-ingress`, `database-port-from-cidr`.
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

/// Every guardrail `spec` breaks under `limits`, in file order. The limits are those of the
/// rules that judge the change ([`crate::policy::judge`]), never only the spec's own.
pub fn check(spec: &EnvironmentSpec, limits: &Guardrails) -> Vec<Violation> {
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
    out.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fixtures::prod as prod_spec;

    fn rules(spec: &EnvironmentSpec) -> Vec<String> {
        check(spec, &spec.environment.guardrails)
            .into_iter()
            .map(|v| v.rule)
            .collect()
    }

    #[test]
    fn the_example_prod_spec_keeps_every_guardrail() {
        assert_eq!(check(&prod_spec(), &Guardrails::default()), Vec::new());
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
        let v = check(&spec, &spec.environment.guardrails);
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
        let v = check(&spec, &spec.environment.guardrails);
        assert!(
            v[0].message.contains("database port 3306"),
            "{}",
            v[0].message
        );
    }
}
