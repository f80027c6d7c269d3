//! Spec format v1: the desired settings of one environment, as loaded from
//! `environments/<name>/*.yaml`. Values here have passed validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cron::Cron;

pub use super::values::{
    capacity_problems, Capacity, CapacityChange, EnvName, ResourceName, TimeZone, MAX_CAPACITY,
};

/// Where a piece of the spec was written: a file of the spec repository and a 1-based line
/// and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Loc {
    pub file: String,
    pub line: u32,
    pub col: u32,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentSpec {
    pub environment: EnvironmentSettings,
    pub autoscaling_groups: Vec<AutoscalingGroup>,
    pub databases: Vec<Database>,
    pub security_groups: Vec<SecurityGroup>,
    pub slos: Vec<Slo>,
    pub monitoring: Monitoring,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentSettings {
    pub name: EnvName,
    /// `None`: the configuration's default region.
    pub region: Option<String>,
    pub approvals: Approvals,
    pub auto_apply: bool,
    /// Empty: applies are allowed at any time.
    pub change_windows: Vec<ChangeWindow>,
    pub guardrails: Guardrails,
    /// The cost policy (`environment.cost`); empty: no limit.
    #[serde(default)]
    pub cost: CostPolicy,
    /// The watch of the SLOs after an apply (`environment.watch`); 0 minutes: none.
    #[serde(default)]
    pub watch: Watch,
    /// Whether a step that raises a group's min or desired capacity waits until that many
    /// instances are in service (`environment.wait_for_capacity`).
    #[serde(default)]
    pub wait_for_capacity: bool,
    pub loc: Loc,
}

/// How long the SLO burn-rate alerts are watched after an apply, and what a page-level alert
/// does then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// 0–1440; 0: no watch.
    pub minutes: u32,
    /// Apply the revert change at once (as `system`, an emergency by policy) instead of
    /// waiting for approval.
    pub auto_revert: bool,
}

/// Limits on what the environment costs per month (730 hours), in the price source's
/// currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostPolicy {
    /// A change whose monthly ceiling rises above this is blocked.
    pub max_monthly: Option<f64>,
    /// A change whose expected monthly cost rises by more than this needs one more approval.
    pub extra_approval_above: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvals {
    /// 0–5; 0 means no approval is needed.
    pub required: u8,
    pub allow_self_approval: bool,
}

impl Default for Approvals {
    fn default() -> Self {
        Self {
            required: 1,
            allow_self_approval: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }
}

/// Minutes since midnight, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimeOfDay(pub u16);

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeWindow {
    pub days: Vec<Weekday>,
    pub start: TimeOfDay,
    pub end: TimeOfDay,
    pub timezone: TimeZone,
}

/// The seed's goals as limits; overridable per environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardrails {
    /// High availability: never fewer instances per tier.
    pub min_instances: u32,
    /// Cost control: never more.
    pub max_instances: u32,
    pub require_multi_az: bool,
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            min_instances: 2,
            max_instances: 8,
            require_multi_az: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoscalingGroup {
    /// The existing group's name.
    pub name: ResourceName,
    pub tier: String,
    /// Serialised as the group's own `min`, `max` and `desired`.
    #[serde(flatten)]
    pub capacity: Capacity,
    /// The instance type, for pricing offline; AWS's launch template is the truth (a mismatch
    /// is a plan warning).
    #[serde(default)]
    pub instance_type: Option<String>,
    pub cpu_scaling: Option<CpuScaling>,
    pub schedule: Vec<ScheduledAction>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CpuScaling {
    /// Keep average CPU near a target.
    TargetTracking { target_percent: f64 },
    /// Step scaling with a scale-out and a scale-in CloudWatch alarm.
    Step {
        scale_out_above: f64,
        scale_in_below: f64,
        adjustment: u32,
        cooldown_seconds: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledAction {
    pub name: String,
    pub cron: Cron,
    pub timezone: TimeZone,
    /// Serialised as the action's own `min`, `max` and `desired`.
    #[serde(flatten)]
    pub capacity: CapacityChange,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    pub identifier: ResourceName,
    /// `None`: not managed by tierdeck.
    pub instance_class: Option<String>,
    pub multi_az: Option<bool>,
    pub allocated_storage_gb: Option<u32>,
    pub backup_retention_days: Option<u32>,
    pub deletion_protection: Option<bool>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// The existing group's `GroupName`.
    pub name: String,
    /// Internet-facing: the only kind that may take `0.0.0.0/0`.
    pub edge: bool,
    /// The full ingress rule set.
    pub ingress: Vec<IngressRule>,
    pub loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    /// Every protocol (`-1` in AWS).
    All,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::All => "all",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Cidr(String),
    FromGroup(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Cidr(c) => f.write_str(c),
            Source::FromGroup(g) => write!(f, "group {g}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressRule {
    pub protocol: Protocol,
    /// Inclusive port range; `None` for `icmp` and `all`.
    pub ports: Option<(u16, u16)>,
    pub source: Source,
    pub description: Option<String>,
    pub loc: Loc,
}

impl IngressRule {
    /// `tcp/443 from 0.0.0.0/0`, the rule as people say it.
    pub fn summary(&self) -> String {
        let ports = match self.ports {
            Some((a, b)) if a == b => format!("/{a}"),
            Some((a, b)) => format!("/{a}-{b}"),
            None => String::new(),
        };
        format!("{}{ports} from {}", self.protocol.as_str(), self.source)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub name: String,
    /// Percent, strictly between 0 and 100.
    pub objective: f64,
    pub window_days: u32,
    pub indicator: Indicator,
    pub loc: Loc,
}

/// Prometheus queries with `{{window}}` where the range goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Indicator {
    /// Bad events over all events.
    Errors { errors: String, total: String },
    /// Good events over all events.
    Good { good: String, total: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitoring {
    /// Tier → node_exporter label selector, e.g. `web` → `{job="node",tier="web"}`.
    pub tiers: BTreeMap<String, String>,
}
