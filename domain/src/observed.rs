//! What AWS runs now, as the adapters read it: the resources a spec names, with the settings
//! tierdeck manages. Filled in by `engine`'s AWS adapters; compared with the spec by
//! [`crate::plan`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::{AclAction, AclEntry, AclProtocol, Protocol, Source};

/// The live state of one environment's resources, by name. A name the spec uses that is not
/// here does not exist in AWS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedState {
    pub groups: BTreeMap<String, ObservedGroup>,
    pub databases: BTreeMap<String, ObservedDatabase>,
    pub security_groups: BTreeMap<String, ObservedSecurityGroup>,
    /// Subnets by the name or id the spec gives; more than one under a name: the name is
    /// ambiguous.
    #[serde(default)]
    pub subnets: BTreeMap<String, Vec<ObservedSubnet>>,
    /// Network ACLs by the name or id the spec gives, likewise.
    #[serde(default)]
    pub network_acls: BTreeMap<String, Vec<ObservedNetworkAcl>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedGroup {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub in_service: u32,
    /// Scaling policies tierdeck manages (named `tierdeck-…`); others are left alone.
    pub policies: Vec<ObservedPolicy>,
    /// CloudWatch alarms that trigger those policies.
    pub alarms: Vec<ObservedAlarm>,
    pub scheduled_actions: Vec<ObservedScheduledAction>,
    /// Scaling policies not made by tierdeck: counted, so the plan can say they exist.
    pub other_policies: usize,
    /// The launch template it runs and its instances' versions, read when the spec manages
    /// them (`launch_template` or `image_id`); `None`: not read, or no launch template.
    #[serde(default)]
    pub launch: Option<ObservedLaunch>,
}

/// A group's launch template as Auto Scaling and EC2 describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedLaunch {
    pub template_id: String,
    pub template_name: String,
    /// The version the group names: a number, `$Latest` or `$Default`.
    pub version: String,
    /// That version as a number, when EC2 resolved it.
    pub version_number: Option<u32>,
    /// The template's newest version number.
    pub latest: u32,
    /// Image of each version read (the group's and the spec's).
    pub images: std::collections::BTreeMap<u32, String>,
    /// Each instance and the version it was launched from (as Auto Scaling reports it).
    pub instances: Vec<(String, String)>,
    /// The newest instance refresh that has not ended, if one runs.
    pub refresh: Option<ObservedRefresh>,
}

impl ObservedLaunch {
    /// The image the group's own version runs.
    pub fn image(&self) -> Option<&str> {
        self.version_number
            .and_then(|v| self.images.get(&v))
            .map(String::as_str)
    }
}

/// An instance refresh as `DescribeInstanceRefreshes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRefresh {
    pub id: String,
    /// `Pending`, `InProgress`, `Baking`, `Successful`, `Failed`, `Cancelling`, `Cancelled`,
    /// `RollbackInProgress`, `RollbackSuccessful`, `RollbackFailed`.
    pub status: String,
    pub percentage: u32,
    pub instances_to_update: u32,
    pub reason: Option<String>,
}

impl ObservedRefresh {
    /// Whether AWS still works on it (a new refresh of the group is refused meanwhile).
    pub fn active(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Pending" | "InProgress" | "Baking" | "Cancelling" | "RollbackInProgress"
        )
    }
}

impl ObservedGroup {
    /// Whether something other than people moves the desired capacity.
    pub fn autoscaled(&self) -> bool {
        !self.policies.is_empty() || self.other_policies > 0 || !self.scheduled_actions.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicySettings {
    TargetTracking {
        target_percent: f64,
    },
    /// Adds (positive) or removes (negative) instances when its alarm fires.
    Step {
        adjustment: i32,
        cooldown_seconds: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedPolicy {
    pub name: String,
    pub settings: PolicySettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    GreaterThanOrEqual,
    LessThanOrEqual,
}

impl Comparison {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqual => "≥",
            Comparison::LessThanOrEqual => "≤",
        }
    }
}

/// An alarm on the group's average CPU that triggers one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedAlarm {
    pub name: String,
    pub threshold: f64,
    pub comparison: Comparison,
    /// The policy its action calls.
    pub policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedScheduledAction {
    pub name: String,
    pub recurrence: String,
    pub timezone: String,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedDatabase {
    pub identifier: String,
    pub instance_class: String,
    pub multi_az: bool,
    pub allocated_storage_gb: u32,
    pub backup_retention_days: u32,
    pub deletion_protection: bool,
    pub status: String,
    /// `mysql`, `postgres`… (for pricing).
    #[serde(default)]
    pub engine: String,
    /// `gp2`, `gp3`, `io1`… (for pricing).
    #[serde(default)]
    pub storage_type: String,
    /// Modifications AWS will make at the next maintenance window, as it lists them.
    pub pending_modifications: Vec<String>,
    /// The values those modifications move to (`PendingModifiedValues`): the plan treats them
    /// as the database's, so nothing is asked twice and a pending value is no drift.
    #[serde(default)]
    pub pending: PendingValues,
}

/// The settings a database is moving to, as `DescribeDBInstances` lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingValues {
    pub instance_class: Option<String>,
    pub multi_az: Option<bool>,
    pub allocated_storage_gb: Option<u32>,
    pub backup_retention_days: Option<u32>,
}

impl ObservedDatabase {
    /// Whether AWS takes a new modification now: RDS refuses one unless the instance is
    /// `available`.
    pub fn takes_modifications(&self) -> bool {
        self.status.is_empty() || self.status == "available"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedSecurityGroup {
    pub name: String,
    pub id: String,
    pub ingress: Vec<ObservedRule>,
}

/// An ingress rule; a source group is named by its `GroupName`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObservedRule {
    pub protocol: Protocol,
    pub ports: Option<(u16, u16)>,
    pub source: Source,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedSubnet {
    pub id: String,
    /// Its `Name` tag.
    pub name: Option<String>,
    pub cidr: String,
    pub vpc_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedNetworkAcl {
    pub id: String,
    /// Its `Name` tag.
    pub name: Option<String>,
    pub vpc_id: String,
    /// Entries by rule number, without AWS's unchangeable last `*` entry (32767, deny all).
    pub ingress: Vec<ObservedAclEntry>,
    pub egress: Vec<ObservedAclEntry>,
    /// The subnets associated with it.
    pub subnet_ids: Vec<String>,
}

/// The highest rule number an entry may have; AWS keeps 32767 for the last `*` entry.
pub const MAX_ACL_RULE: u16 = 32766;

/// One network ACL entry as AWS holds it (and as the planner writes it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObservedAclEntry {
    pub rule: u16,
    pub protocol: AclProtocol,
    /// Inclusive, for tcp and udp; `None`: every port.
    pub ports: Option<(u16, u16)>,
    /// ICMP type and code (`-1`: any); `None`: every type.
    #[serde(default)]
    pub icmp: Option<(i16, i16)>,
    pub cidr: String,
    pub action: AclAction,
}

impl ObservedAclEntry {
    /// `allow tcp/80 from 10.0.10.0/24` (ingress) or `… to …` (egress).
    pub fn text(&self, egress: bool) -> String {
        let what = match (self.protocol, self.ports, self.icmp) {
            (p, Some((a, b)), _) if p.has_ports() && a == b => format!("{}/{a}", p.text()),
            (p, Some((a, b)), _) if p.has_ports() => format!("{}/{a}-{b}", p.text()),
            (AclProtocol::All, _, _) => "all traffic".to_owned(),
            (p, _, Some((t, c))) if t >= 0 && c >= 0 => format!("{} type {t} code {c}", p.text()),
            (p, _, Some((t, _))) if t >= 0 => format!("{} type {t}", p.text()),
            (p, _, _) => p.text(),
        };
        let dir = if egress { "to" } else { "from" };
        format!("{} {what} {dir} {}", self.action.as_str(), self.cidr)
    }

    /// `100 allow tcp/80 from …`: the entry with its rule number.
    pub fn numbered_text(&self, egress: bool) -> String {
        format!("{} {}", self.rule, self.text(egress))
    }
}

impl From<&AclEntry> for ObservedAclEntry {
    fn from(e: &AclEntry) -> Self {
        ObservedAclEntry {
            rule: e.rule,
            protocol: e.protocol,
            ports: e.ports,
            icmp: None,
            cidr: e.cidr.clone(),
            action: e.action,
        }
    }
}
