//! The planner: desired spec × observed state → an ordered list of operations, each with the
//! resource, its value before and after, the AWS call and a risk label in plain words.
//!
//! The order is the safe one: security rules are authorised before old ones are revoked;
//! capacity widens before it narrows (raise max, lower min, set desired, raise min, lower max);
//! scaling policies are created before the alarms that call them and alarms deleted before
//! their policies; scheduled actions are written before stale ones are deleted; databases last.
//! The plan hash covers the operations with the observed values they start from, so a plan
//! approved against one live state does not apply to another.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::observed::{
    Comparison, ObservedAlarm, ObservedDatabase, ObservedGroup, ObservedRule,
    ObservedScheduledAction, ObservedState, PolicySettings,
};
use crate::spec::{
    AutoscalingGroup, CpuScaling, Database, EnvironmentSpec, IngressRule, ScheduledAction, Source,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CapacityField {
    Min,
    Max,
    Desired,
}

impl fmt::Display for CapacityField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapacityField::Min => "min",
            CapacityField::Max => "max",
            CapacityField::Desired => "desired",
        })
    }
}

/// One database setting to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSetting {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// What an operation does, with the values the AWS call needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    SetCapacity {
        group: String,
        field: CapacityField,
        before: u32,
        after: u32,
    },
    PutPolicy {
        group: String,
        policy: String,
        before: Option<PolicySettings>,
        after: PolicySettings,
    },
    PutAlarm {
        group: String,
        alarm: String,
        policy: String,
        comparison: Comparison,
        threshold: f64,
        before: Option<f64>,
    },
    DeleteAlarm {
        group: String,
        alarm: String,
    },
    DeletePolicy {
        group: String,
        policy: String,
    },
    PutScheduledAction {
        group: String,
        after: ObservedScheduledAction,
        before: Option<ObservedScheduledAction>,
    },
    DeleteScheduledAction {
        group: String,
        before: ObservedScheduledAction,
    },
    AuthorizeIngress {
        group: String,
        group_id: String,
        rule: ObservedRule,
    },
    RevokeIngress {
        group: String,
        group_id: String,
        rule: ObservedRule,
    },
    ModifyDatabase {
        identifier: String,
        settings: Vec<DbSetting>,
    },
}

impl Action {
    /// The AWS API call that carries it out.
    pub fn aws_call(&self) -> &'static str {
        match self {
            Action::SetCapacity { .. } => "autoscaling:UpdateAutoScalingGroup",
            Action::PutPolicy { .. } => "autoscaling:PutScalingPolicy",
            Action::PutAlarm { .. } => "cloudwatch:PutMetricAlarm",
            Action::DeleteAlarm { .. } => "cloudwatch:DeleteAlarms",
            Action::DeletePolicy { .. } => "autoscaling:DeletePolicy",
            Action::PutScheduledAction { .. } => "autoscaling:PutScheduledUpdateGroupAction",
            Action::DeleteScheduledAction { .. } => "autoscaling:DeleteScheduledAction",
            Action::AuthorizeIngress { .. } => "ec2:AuthorizeSecurityGroupIngress",
            Action::RevokeIngress { .. } => "ec2:RevokeSecurityGroupIngress",
            Action::ModifyDatabase { .. } => "rds:ModifyDBInstance",
        }
    }
}

/// One step of a plan, as people read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub action: Action,
    /// `autoscaling group petclinic-prod-was`, `security group …`, `database …`.
    pub resource: String,
    /// `max 7 → 8`.
    pub change: String,
    pub aws_call: String,
    /// What can go wrong, in plain words; `None` when nothing much.
    pub risk: Option<String>,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", self.resource, self.change, self.aws_call)?;
        if let Some(r) = &self.risk {
            write!(f, " — {r}")?;
        }
        Ok(())
    }
}

/// Why there is no plan for part of the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanError {
    pub resource: String,
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.resource, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub operations: Vec<Operation>,
    pub errors: Vec<PlanError>,
    /// SHA-256 (hex) over the operations and the observed values they start from.
    pub hash: String,
    /// What the plan saw that is neither work nor an error: a database that is modifying, with
    /// what it is moving to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty() && self.errors.is_empty()
    }
}

/// Names of the policies and alarms tierdeck manages for a group. Alarm names are unique per
/// region, so they carry the group's name.
pub fn policy_name(group: &str, what: &str) -> String {
    format!("tierdeck-{group}-cpu-{what}")
}

struct DesiredScaling {
    policies: Vec<(String, PolicySettings)>,
    alarms: Vec<(String, String, Comparison, f64)>,
}

fn desired_scaling(g: &AutoscalingGroup) -> DesiredScaling {
    match &g.cpu_scaling {
        None => DesiredScaling {
            policies: Vec::new(),
            alarms: Vec::new(),
        },
        Some(CpuScaling::TargetTracking { target_percent }) => DesiredScaling {
            policies: vec![(
                policy_name(&g.name, "target"),
                PolicySettings::TargetTracking {
                    target_percent: *target_percent,
                },
            )],
            alarms: Vec::new(),
        },
        Some(CpuScaling::Step {
            scale_out_above,
            scale_in_below,
            adjustment,
            cooldown_seconds,
        }) => {
            let (out, inn) = (policy_name(&g.name, "out"), policy_name(&g.name, "in"));
            let adj = *adjustment as i32;
            DesiredScaling {
                policies: vec![
                    (
                        out.clone(),
                        PolicySettings::Step {
                            adjustment: adj,
                            cooldown_seconds: *cooldown_seconds,
                        },
                    ),
                    (
                        inn.clone(),
                        PolicySettings::Step {
                            adjustment: -adj,
                            cooldown_seconds: *cooldown_seconds,
                        },
                    ),
                ],
                alarms: vec![
                    (
                        policy_name(&g.name, "high"),
                        out,
                        Comparison::GreaterThanOrEqual,
                        *scale_out_above,
                    ),
                    (
                        policy_name(&g.name, "low"),
                        inn,
                        Comparison::LessThanOrEqual,
                        *scale_in_below,
                    ),
                ],
            }
        }
    }
}

fn policy_text(p: &PolicySettings) -> String {
    match p {
        PolicySettings::TargetTracking { target_percent } => {
            format!("target {target_percent} % CPU")
        }
        PolicySettings::Step {
            adjustment,
            cooldown_seconds,
        } => format!("{adjustment:+} instance(s), cooldown {cooldown_seconds} s"),
    }
}

fn action_text(a: &ObservedScheduledAction) -> String {
    let mut parts = vec![format!("\"{}\" {}", a.recurrence, a.timezone)];
    for (k, v) in [("min", a.min), ("max", a.max), ("desired", a.desired)] {
        if let Some(v) = v {
            parts.push(format!("{k} {v}"));
        }
    }
    parts.join(", ")
}

fn scheduled(a: &ScheduledAction) -> ObservedScheduledAction {
    ObservedScheduledAction {
        name: a.name.clone(),
        recurrence: a.cron.clone(),
        timezone: a.timezone.clone(),
        min: a.min,
        max: a.max,
        desired: a.desired,
    }
}

fn rule_of(r: &IngressRule) -> ObservedRule {
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

/// Collects operations in their phases; the plan is the phases in order.
#[derive(Default)]
struct Phases {
    authorize: Vec<Operation>,
    capacity: Vec<Operation>,
    put_policies: Vec<Operation>,
    put_alarms: Vec<Operation>,
    delete_alarms: Vec<Operation>,
    delete_policies: Vec<Operation>,
    put_schedules: Vec<Operation>,
    delete_schedules: Vec<Operation>,
    revoke: Vec<Operation>,
    databases: Vec<Operation>,
}

fn op(action: Action, resource: String, change: String, risk: Option<String>) -> Operation {
    Operation {
        aws_call: action.aws_call().to_owned(),
        action,
        resource,
        change,
        risk,
    }
}

/// Capacity steps from the observed triple to the wanted one, in the safe order: raise max,
/// lower min, set desired, raise min, lower max. Every intermediate triple stays valid.
fn capacity_steps(
    g: &ObservedGroup,
    min: u32,
    max: u32,
    desired: Option<u32>,
    out: &mut Vec<Operation>,
) {
    let resource = format!("autoscaling group {}", g.name);
    let step = |field: CapacityField, before: u32, after: u32, risk: Option<String>| {
        op(
            Action::SetCapacity {
                group: g.name.clone(),
                field,
                before,
                after,
            },
            resource.clone(),
            format!("{field} {before} → {after}"),
            risk,
        )
    };
    // What desired becomes: as asked, else the current one pushed into the new range.
    let target_desired = desired.unwrap_or_else(|| g.desired.clamp(min, max));
    if max > g.max {
        out.push(step(CapacityField::Max, g.max, max, None));
    }
    if min < g.min {
        out.push(step(CapacityField::Min, g.min, min, None));
    }
    if target_desired != g.desired {
        let risk = if target_desired < g.in_service {
            Some(format!(
                "lower capacity: {} of the {} running instances will be terminated",
                g.in_service - target_desired,
                g.in_service
            ))
        } else if target_desired > g.in_service {
            Some(format!(
                "launches {} instance(s)",
                target_desired - g.in_service
            ))
        } else {
            None
        };
        let risk = if desired.is_none() {
            risk.map(|r| format!("{r} (desired moved into the new range)"))
        } else {
            risk
        };
        out.push(step(
            CapacityField::Desired,
            g.desired,
            target_desired,
            risk,
        ));
    }
    if min > g.min {
        out.push(step(CapacityField::Min, g.min, min, None));
    }
    if max < g.max {
        // Instances above the new desired are already gone by the desired step.
        let risk = (max < g.in_service.min(target_desired)).then(|| {
            format!("lower capacity: the group cannot keep more than {max} instances; running ones above that are terminated")
        });
        out.push(step(CapacityField::Max, g.max, max, risk));
    }
}

fn plan_group(g: &AutoscalingGroup, o: &ObservedGroup, enforce_desired: bool, p: &mut Phases) {
    let resource = format!("autoscaling group {}", g.name);
    // The autoscaler owns desired between min and max unless this change sets it.
    let desired = if o.autoscaled() && !enforce_desired {
        None
    } else {
        g.desired
    };
    capacity_steps(o, g.min, g.max, desired, &mut p.capacity);

    let want = desired_scaling(g);
    for (name, settings) in &want.policies {
        let before = o
            .policies
            .iter()
            .find(|x| &x.name == name)
            .map(|x| x.settings);
        if before != Some(*settings) {
            p.put_policies.push(op(
                Action::PutPolicy {
                    group: g.name.clone(),
                    policy: name.clone(),
                    before,
                    after: *settings,
                },
                resource.clone(),
                match before {
                    Some(b) => format!(
                        "policy {name}: {} → {}",
                        policy_text(&b),
                        policy_text(settings)
                    ),
                    None => format!("create policy {name}: {}", policy_text(settings)),
                },
                None,
            ));
        }
    }
    for (alarm, policy, comparison, threshold) in &want.alarms {
        let before: Option<&ObservedAlarm> = o.alarms.iter().find(|a| &a.name == alarm);
        let same = before.is_some_and(|b| {
            b.threshold == *threshold && b.comparison == *comparison && &b.policy == policy
        });
        if !same {
            p.put_alarms.push(op(
                Action::PutAlarm {
                    group: g.name.clone(),
                    alarm: alarm.clone(),
                    policy: policy.clone(),
                    comparison: *comparison,
                    threshold: *threshold,
                    before: before.map(|b| b.threshold),
                },
                resource.clone(),
                match before {
                    Some(b) => format!(
                        "alarm {alarm}: CPU {} {} % → {} {threshold} %",
                        b.comparison.symbol(),
                        b.threshold,
                        comparison.symbol()
                    ),
                    None => format!(
                        "create alarm {alarm}: CPU {} {threshold} % calls {policy}",
                        comparison.symbol()
                    ),
                },
                None,
            ));
        }
    }
    for a in o
        .alarms
        .iter()
        .filter(|a| !want.alarms.iter().any(|(n, ..)| n == &a.name))
    {
        p.delete_alarms.push(op(
            Action::DeleteAlarm {
                group: g.name.clone(),
                alarm: a.name.clone(),
            },
            resource.clone(),
            format!(
                "delete alarm {} (CPU {} {} %)",
                a.name,
                a.comparison.symbol(),
                a.threshold
            ),
            None,
        ));
    }
    for pol in o
        .policies
        .iter()
        .filter(|x| !want.policies.iter().any(|(n, _)| n == &x.name))
    {
        p.delete_policies.push(op(
            Action::DeletePolicy {
                group: g.name.clone(),
                policy: pol.name.clone(),
            },
            resource.clone(),
            format!(
                "delete policy {} ({})",
                pol.name,
                policy_text(&pol.settings)
            ),
            want.policies
                .is_empty()
                .then(|| "the group no longer scales on CPU".to_owned()),
        ));
    }

    for a in &g.schedule {
        let after = scheduled(a);
        let before = o
            .scheduled_actions
            .iter()
            .find(|x| x.name == a.name)
            .cloned();
        if before.as_ref() != Some(&after) {
            p.put_schedules.push(op(
                Action::PutScheduledAction {
                    group: g.name.clone(),
                    after: after.clone(),
                    before: before.clone(),
                },
                resource.clone(),
                match &before {
                    Some(b) => format!(
                        "scheduled action {}: {} → {}",
                        a.name,
                        action_text(b),
                        action_text(&after)
                    ),
                    None => format!(
                        "create scheduled action {}: {}",
                        a.name,
                        action_text(&after)
                    ),
                },
                None,
            ));
        }
    }
    for b in o
        .scheduled_actions
        .iter()
        .filter(|x| !g.schedule.iter().any(|a| a.name == x.name))
    {
        p.delete_schedules.push(op(
            Action::DeleteScheduledAction {
                group: g.name.clone(),
                before: b.clone(),
            },
            resource.clone(),
            format!("delete scheduled action {} ({})", b.name, action_text(b)),
            Some(format!(
                "the group no longer changes capacity at \"{}\" {}",
                b.recurrence, b.timezone
            )),
        ));
    }
}

fn plan_database(
    d: &Database,
    o: &ObservedDatabase,
    p: &mut Phases,
    errors: &mut Vec<PlanError>,
    notes: &mut Vec<String>,
) {
    let resource = format!("database {}", d.identifier);
    // What the database is moving to counts as its value: a modification already pending is
    // neither asked for again nor drift.
    let class = o
        .pending
        .instance_class
        .as_ref()
        .unwrap_or(&o.instance_class);
    let multi_az = o.pending.multi_az.unwrap_or(o.multi_az);
    let storage = o
        .pending
        .allocated_storage_gb
        .unwrap_or(o.allocated_storage_gb);
    let retention = o
        .pending
        .backup_retention_days
        .unwrap_or(o.backup_retention_days);
    if !o.pending_modifications.is_empty() || !o.takes_modifications() {
        let what = if o.pending_modifications.is_empty() {
            String::new()
        } else {
            format!(": {}", o.pending_modifications.join(", "))
        };
        notes.push(format!(
            "{resource} is {}{what}",
            if o.takes_modifications() {
                "pending"
            } else {
                o.status.as_str()
            }
        ));
    }
    let mut settings = Vec::new();
    let mut risks = Vec::new();
    let mut set = |field: &str, before: String, after: String| {
        settings.push(DbSetting {
            field: field.to_owned(),
            before,
            after,
        });
    };
    if let Some(c) = &d.instance_class {
        if c != class {
            set("instance_class", class.clone(), c.clone());
            risks.push(if multi_az {
                "a class change restarts the database: it fails over to the standby (about a minute of errors)".to_owned()
            } else {
                "a class change reboots the database: it is down for several minutes".to_owned()
            });
        }
    }
    if let Some(m) = d.multi_az {
        if m != multi_az {
            set("multi_az", multi_az.to_string(), m.to_string());
            risks.push(if m {
                "adds a standby in a second zone (performance dips while it syncs)".to_owned()
            } else {
                "Multi-AZ off: no standby; a zone failure takes the database down".to_owned()
            });
        }
    }
    if let Some(s) = d.allocated_storage_gb {
        if s < storage {
            errors.push(PlanError {
                resource: resource.clone(),
                message: format!(
                    "allocated storage cannot shrink ({storage} GB → {s} GB); RDS only grows storage"
                ),
            });
        } else if s != storage {
            set("allocated_storage_gb", storage.to_string(), s.to_string());
            risks.push("storage grows in place; no new change to storage for 6 hours".to_owned());
        }
    }
    if let Some(b) = d.backup_retention_days {
        if b != retention {
            set(
                "backup_retention_days",
                retention.to_string(),
                b.to_string(),
            );
            if b == 0 {
                risks.push("automated backups off: no point-in-time recovery".to_owned());
            }
        }
    }
    if let Some(dp) = d.deletion_protection {
        if dp != o.deletion_protection {
            set(
                "deletion_protection",
                o.deletion_protection.to_string(),
                dp.to_string(),
            );
            if !dp {
                risks.push("deletion protection off: the database can be deleted".to_owned());
            }
        }
    }
    if !settings.is_empty() && !o.takes_modifications() {
        // RDS refuses a modification unless the instance is available (InvalidDBInstanceState);
        // one is never piled on another.
        errors.push(PlanError {
            resource,
            message: format!(
                "it is `{}`{}: a new modification waits until it is available again; plan again then",
                o.status,
                if o.pending_modifications.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", o.pending_modifications.join(", "))
                }
            ),
        });
        return;
    }
    if !settings.is_empty() {
        let change = settings
            .iter()
            .map(|s| format!("{} {} → {}", s.field, s.before, s.after))
            .collect::<Vec<_>>()
            .join(", ");
        p.databases.push(op(
            Action::ModifyDatabase {
                identifier: d.identifier.clone(),
                settings,
            },
            resource,
            change,
            (!risks.is_empty()).then(|| risks.join("; ")),
        ));
    }
}

/// Plans `spec` against `observed`. `edits_desired` names the groups whose `desired` the change
/// itself edits: for a group that scales by itself, desired is only enforced for those.
pub fn plan(
    spec: &EnvironmentSpec,
    observed: &ObservedState,
    edits_desired: &BTreeSet<String>,
) -> Plan {
    let mut p = Phases::default();
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let missing = |kind: &str, name: &str| {
        PlanError {
        resource: format!("{kind} {name}"),
        message: "does not exist in AWS; tierdeck manages settings of existing resources and creates none".to_owned(),
    }
    };

    for sg in &spec.security_groups {
        let Some(o) = observed.security_groups.get(&sg.name) else {
            errors.push(missing("security group", &sg.name));
            continue;
        };
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

    for g in &spec.autoscaling_groups {
        match observed.groups.get(&g.name) {
            Some(o) => plan_group(g, o, edits_desired.contains(&g.name), &mut p),
            None => errors.push(missing("autoscaling group", &g.name)),
        }
    }

    for d in &spec.databases {
        match observed.databases.get(&d.identifier) {
            Some(o) => plan_database(d, o, &mut p, &mut errors, &mut notes),
            None => errors.push(missing("database", &d.identifier)),
        }
    }

    let operations: Vec<Operation> = [
        p.authorize,
        p.capacity,
        p.put_policies,
        p.put_alarms,
        p.delete_alarms,
        p.delete_policies,
        p.put_schedules,
        p.delete_schedules,
        p.revoke,
        p.databases,
    ]
    .into_iter()
    .flatten()
    .collect();
    let hash = plan_hash(&operations, &errors);
    Plan {
        operations,
        errors,
        hash,
        notes,
    }
}

/// SHA-256 over the canonical JSON of the operations (which carry the observed values they
/// start from) and the errors.
pub fn plan_hash(operations: &[Operation], errors: &[PlanError]) -> String {
    let canonical = serde_json::to_string(&(operations, errors)).expect("plain data serialises");
    let mut h = Sha256::new();
    h.update(b"tierdeck-plan-v1\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests;
