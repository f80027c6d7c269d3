//! The planner: desired spec × observed state → an ordered list of operations, each with the
//! resource, its value before and after, the AWS call and a risk label in plain words.
//!
//! The order is the safe one: security rules are authorised before old ones are revoked;
//! network ACL entries change in an order that never lets through what neither the old nor
//! the new entries allow ([`nacl`]);
//! capacity widens before it narrows (raise max, lower min, set desired, raise min, lower max);
//! scaling policies are created before the alarms that call them and alarms deleted before
//! their policies; scheduled actions are written before stale ones are deleted; rollouts of new
//! instances after every other change of the groups; databases last.
//! The plan hash covers the operations with the observed values they start from, so a plan
//! approved against one live state does not apply to another.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::observed::{
    Comparison, ObservedAclEntry, ObservedRule, ObservedScheduledAction, ObservedState,
    PolicySettings,
};
use crate::spec::EnvironmentSpec;

mod capacity;
mod database;
mod db_setting;
pub(crate) mod nacl;
mod rollout;
mod scaling;
mod schedule;
mod security;

pub use rollout::{duration_text, RolloutPlan, RolloutTarget};

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

pub use db_setting::{DbSetting, DbValue};

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
    /// A new entry of the network ACL `acl_id` (named `acl` in the spec).
    CreateNaclEntry {
        acl: String,
        acl_id: String,
        egress: bool,
        entry: ObservedAclEntry,
    },
    /// The entry at `after.rule` replaced in place.
    ReplaceNaclEntry {
        acl: String,
        acl_id: String,
        egress: bool,
        before: ObservedAclEntry,
        after: ObservedAclEntry,
    },
    DeleteNaclEntry {
        acl: String,
        acl_id: String,
        egress: bool,
        entry: ObservedAclEntry,
    },
    /// New instances from another launch template version, through an instance refresh held
    /// at each checkpoint.
    Rollout {
        group: String,
        plan: Box<RolloutPlan>,
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
            Action::CreateNaclEntry { .. } => "ec2:CreateNetworkAclEntry",
            Action::ReplaceNaclEntry { .. } => "ec2:ReplaceNetworkAclEntry",
            Action::DeleteNaclEntry { .. } => "ec2:DeleteNetworkAclEntry",
            Action::Rollout { .. } => "autoscaling:StartInstanceRefresh",
        }
    }
}

/// One step of a plan, as people read it.
///
/// The planner makes every one through a single constructor, and one read back takes its
/// `aws_call` from the action again rather than from the stored text, so `aws_call` is always
/// [`Action::aws_call`] of `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredOperation")]
#[non_exhaustive]
pub struct Operation {
    pub action: Action,
    /// `autoscaling group petclinic-prod-was`, `security group …`, `database …`.
    pub resource: String,
    /// `max 7 → 8`.
    pub change: String,
    /// `action.aws_call()`, carried so the serialised operation names its call.
    pub aws_call: String,
    /// What can go wrong, in plain words; `None` when nothing much.
    pub risk: Option<String>,
}

/// An operation as serialised, without its `aws_call`: that is taken from the action again.
#[derive(Deserialize)]
struct StoredOperation {
    action: Action,
    resource: String,
    change: String,
    risk: Option<String>,
}

impl From<StoredOperation> for Operation {
    fn from(s: StoredOperation) -> Self {
        op(s.action, s.resource, s.change, s.risk)
    }
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

/// Collects operations in their phases; the plan is the phases in order.
#[derive(Default)]
struct Phases {
    authorize: Vec<Operation>,
    network_acls: Vec<Operation>,
    capacity: Vec<Operation>,
    put_policies: Vec<Operation>,
    put_alarms: Vec<Operation>,
    delete_alarms: Vec<Operation>,
    delete_policies: Vec<Operation>,
    put_schedules: Vec<Operation>,
    delete_schedules: Vec<Operation>,
    revoke: Vec<Operation>,
    /// New instances last among a group's changes: they launch with its new settings.
    rollouts: Vec<Operation>,
    databases: Vec<Operation>,
}

/// The one way an [`Operation`] is made: its `aws_call` comes from the action.
fn op(action: Action, resource: String, change: String, risk: Option<String>) -> Operation {
    Operation {
        aws_call: action.aws_call().to_owned(),
        action,
        resource,
        change,
        risk,
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
        match observed.security_groups.get(&sg.name) {
            Some(o) => security::plan_security_group(sg, o, &mut p),
            None => errors.push(missing("security group", &sg.name)),
        }
    }

    nacl::plan_network(spec, observed, &mut p, &mut errors);

    for g in &spec.autoscaling_groups {
        match observed.groups.get(g.name.as_str()) {
            Some(o) => {
                capacity::plan_capacity(g, o, edits_desired.contains(g.name.as_str()), &mut p);
                scaling::plan_scaling(g, o, &mut p);
                schedule::plan_schedule(g, o, &mut p);
                rollout::plan_rollout(g, o, &mut p, &mut errors);
            }
            None => errors.push(missing("autoscaling group", &g.name)),
        }
    }

    for d in &spec.databases {
        match observed.databases.get(d.identifier.as_str()) {
            Some(o) => database::plan_database(d, o, &mut p, &mut errors, &mut notes),
            None => errors.push(missing("database", &d.identifier)),
        }
    }

    let operations: Vec<Operation> = [
        p.authorize,
        p.network_acls,
        p.capacity,
        p.put_policies,
        p.put_alarms,
        p.delete_alarms,
        p.delete_policies,
        p.put_schedules,
        p.delete_schedules,
        p.revoke,
        p.rollouts,
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
