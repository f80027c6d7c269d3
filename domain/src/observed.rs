//! What AWS runs now, as the adapters read it: the resources a spec names, with the settings
//! tierdeck manages. Filled in by `engine`'s AWS adapters; compared with the spec by
//! [`crate::plan`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::{Protocol, Source};

/// The live state of one environment's resources, by name. A name the spec uses that is not
/// here does not exist in AWS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedState {
    pub groups: BTreeMap<String, ObservedGroup>,
    pub databases: BTreeMap<String, ObservedDatabase>,
    pub security_groups: BTreeMap<String, ObservedSecurityGroup>,
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
