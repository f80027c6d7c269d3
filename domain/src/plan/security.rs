//! The security group planner: ingress rules to authorise and to revoke.

use super::{op, Action, Phases};
use crate::observed::{ObservedRule, ObservedSecurityGroup};
use crate::spec::{IngressRule, SecurityGroup, Source};

pub(super) fn rule_of(r: &IngressRule) -> ObservedRule {
    ObservedRule {
        protocol: r.protocol,
        ports: r.ports,
        source: r.source.clone(),
        description: r.description.clone(),
    }
}

fn rule_text(r: &ObservedRule) -> String {
    let ports = match r.ports {
        Some((a, b)) if a == b => format!("/{a}"),
        Some((a, b)) => format!("/{a}-{b}"),
        None => String::new(),
    };
    format!("{}{ports} from {}", r.protocol.as_str(), r.source)
}

/// The same rule, whatever its description says.
fn same_rule(a: &ObservedRule, b: &ObservedRule) -> bool {
    a.protocol == b.protocol && a.ports == b.ports && a.source == b.source
}

fn is_open_to_world(r: &ObservedRule) -> bool {
    matches!(&r.source, Source::Cidr(c) if c == "0.0.0.0/0" || c == "::/0")
}

/// Plans the ingress rules of `sg` against `o`: new rules are authorised in the first phase,
/// old ones revoked in the last but one, so access is never cut in between.
pub(super) fn plan_security_group(sg: &SecurityGroup, o: &ObservedSecurityGroup, p: &mut Phases) {
    let resource = format!("security group {}", sg.name);
    let wanted: Vec<ObservedRule> = sg.ingress.iter().map(rule_of).collect();
    for r in wanted
        .iter()
        .filter(|w| !o.ingress.iter().any(|x| same_rule(x, w)))
    {
        p.authorize.push(op(
            Action::AuthorizeIngress {
                group: sg.name.clone(),
                group_id: o.id.clone(),
                rule: r.clone(),
            },
            resource.clone(),
            format!("allow {}", rule_text(r)),
            is_open_to_world(r).then(|| "opens this port to the whole internet".to_owned()),
        ));
    }
    for r in o
        .ingress
        .iter()
        .filter(|x| !wanted.iter().any(|w| same_rule(x, w)))
    {
        p.revoke.push(op(
            Action::RevokeIngress {
                group: sg.name.clone(),
                group_id: o.id.clone(),
                rule: r.clone(),
            },
            resource.clone(),
            format!("revoke {}", rule_text(r)),
            Some(format!("cuts {} to {}", rule_text(r), sg.name)),
        ));
    }
}
