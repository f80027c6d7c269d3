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
    /// The VPC's subnets by tier (`subnets`), for the network ACLs and reachability.
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    /// Network ACLs and their full entry sets (`network_acls`).
    #[serde(default)]
    pub network_acls: Vec<NetworkAcl>,
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
    /// A rollout keeps at least this percent of a group healthy (`min_healthy_percent`).
    #[serde(default = "default_min_healthy")]
    pub min_healthy_percent: u32,
}

fn default_min_healthy() -> u32 {
    90
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            min_instances: 2,
            max_instances: 8,
            require_multi_az: true,
            min_healthy_percent: default_min_healthy(),
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
    /// What the group's instances run (`launch_template` or `image_id`); `None`: not managed
    /// by tierdeck.
    #[serde(default)]
    pub launch: Option<Launch>,
    /// How new instances replace the old ones when `launch` changes (`rollout`).
    #[serde(default)]
    pub rollout: Rollout,
    pub loc: Loc,
}

/// A launch template version as the spec names it: a number, or AWS's moving `$Latest` /
/// `$Default` (which AWS cannot roll back to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateVersion {
    Number(u32),
    Latest,
    Default,
}

impl TemplateVersion {
    /// As AWS writes it: `7`, `$Latest`, `$Default`.
    pub fn aws(&self) -> String {
        match self {
            TemplateVersion::Number(n) => n.to_string(),
            TemplateVersion::Latest => "$Latest".into(),
            TemplateVersion::Default => "$Default".into(),
        }
    }

    pub fn number(&self) -> Option<u32> {
        match self {
            TemplateVersion::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// What a group's instances run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Launch {
    /// `launch_template: { name, version }`: the group runs this version of this template.
    Template {
        name: String,
        version: TemplateVersion,
    },
    /// `image_id`: the group runs this image; tierdeck makes a new version of the group's own
    /// template (from its current version, only the image changed) when it runs another.
    Image { image_id: String },
}

/// The preferences of the instance refresh that rolls a new template version or image out
/// (`rollout`), in the spec's words; AWS's `RefreshPreferences` are made from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// 0–100 (`MinHealthyPercentage`).
    pub min_healthy_percent: u32,
    /// 100–200, at most 100 above the minimum (`MaxHealthyPercentage`).
    pub max_healthy_percent: u32,
    /// `InstanceWarmup`; `None`: the group's own.
    pub warmup_seconds: Option<u32>,
    /// Ascending, each 1–100, the last 100: tierdeck holds the refresh at each one.
    pub checkpoints: Vec<u32>,
    /// How long each checkpoint before the last is held while the SLOs are read
    /// (`bake_minutes`, or `bake_seconds` for short trials), in seconds.
    pub bake_seconds: u32,
    /// Instances already on the new version are not replaced (`SkipMatching`).
    pub skip_matching: bool,
    /// AWS rolls the refresh back itself when it fails or an alarm fires (`AutoRollback`).
    pub auto_rollback: bool,
    /// CloudWatch alarms that fail the refresh (`AlarmSpecification`).
    pub alarms: Vec<String>,
    /// Where `rollout` is written; `None`: the defaults.
    pub loc: Option<Loc>,
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            min_healthy_percent: 90,
            max_healthy_percent: 100,
            warmup_seconds: None,
            checkpoints: vec![100],
            bake_seconds: 0,
            skip_matching: true,
            auto_rollback: true,
            alarms: Vec::new(),
            loc: None,
        }
    }
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
    /// The tier whose members carry the group (`external-alb`, `web`, `internal-alb`, `was`,
    /// `db`, or a tier of the team's own), for reachability; `None`: not part of it.
    #[serde(default)]
    pub tier: Option<String>,
    /// The subnet tier its members sit in, when it is not the group's own tier (the internal
    /// load balancer in the `was` subnets).
    #[serde(default)]
    pub subnets: Option<String>,
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

/// What an SLO counts: Prometheus queries with `{{window}}` where the range goes, or a load
/// balancer's own CloudWatch metrics (for shops without Prometheus).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Indicator {
    /// Bad events over all events.
    Errors { errors: String, total: String },
    /// Good events over all events.
    Good { good: String, total: String },
    /// A load balancer of `monitoring.load_balancers` counted by CloudWatch: its requests
    /// (`RequestCount`) against the target and load balancer 5XX answers, or, with
    /// `latency_under_ms`, against the share of requests answered within that time
    /// (`TargetResponseTime`'s `PR(:0.4)` statistic for 400 ms).
    LoadBalancer {
        load_balancer: String,
        latency_under_ms: Option<u32>,
    },
}

impl Indicator {
    /// Whether Prometheus answers it (else CloudWatch does).
    pub fn is_promql(&self) -> bool {
        !matches!(self, Indicator::LoadBalancer { .. })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitoring {
    /// Tier → node_exporter label selector, e.g. `web` → `{job="node",tier="web"}`.
    pub tiers: BTreeMap<String, String>,
    /// The load balancers whose CloudWatch metrics and target health are shown.
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    /// The port Prometheus scrapes on the groups' instances (`GET …/targets`); `None`: 9100,
    /// node_exporter's.
    #[serde(default)]
    pub scrape_port: Option<u16>,
}

/// The port of the scrape targets when the spec names none: node_exporter's.
pub const DEFAULT_SCRAPE_PORT: u16 = 9100;

impl Monitoring {
    pub fn scrape_port(&self) -> u16 {
        self.scrape_port.unwrap_or(DEFAULT_SCRAPE_PORT)
    }
}

/// An Application Load Balancer: its name or ARN, the target groups behind it (names or ARNs),
/// the tier it fronts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub name: String,
    pub target_groups: Vec<String>,
    pub tier: Option<String>,
    pub loc: Loc,
}

impl LoadBalancer {
    /// Named by ARN rather than by name.
    pub fn is_arn(text: &str) -> bool {
        text.starts_with("arn:")
    }
}

/// An AWS resource named by its `Name` tag or by its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsRef {
    Name(String),
    Id(String),
}

impl AwsRef {
    /// The name or the id, as the spec writes it.
    pub fn text(&self) -> &str {
        match self {
            AwsRef::Name(s) | AwsRef::Id(s) => s,
        }
    }
}

impl std::fmt::Display for AwsRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// One subnet of the VPC and the tier it holds. tierdeck creates no subnet: it checks that
/// this one exists with this block, and reads which network ACL guards it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    #[serde(flatten)]
    pub resource: AwsRef,
    /// `public`, `web`, `was`, `db`…: what the network ACLs' `subnets` name.
    pub tier: String,
    /// Its IPv4 block.
    pub cidr: String,
    /// Routed to an internet gateway (the external load balancer's); `false`: private.
    pub public: bool,
    pub loc: Loc,
}

/// A network ACL: the subnets it guards, by their tier, and its full ordered entry sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAcl {
    #[serde(flatten)]
    pub resource: AwsRef,
    /// Subnet tiers: every subnet of these tiers is associated with this ACL.
    pub subnets: Vec<String>,
    pub ingress: Vec<AclEntry>,
    pub egress: Vec<AclEntry>,
    pub loc: Loc,
}

/// The protocol of a network ACL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclProtocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    /// Every protocol (`-1` in AWS).
    All,
    /// Another IP protocol by number, as AWS may hold one (the spec writes the four above).
    Number(u8),
}

impl AclProtocol {
    /// The protocol as AWS's `Protocol` field writes it: a number, `-1` for all.
    pub fn aws_code(self) -> String {
        match self {
            AclProtocol::Tcp => "6".into(),
            AclProtocol::Udp => "17".into(),
            AclProtocol::Icmp => "1".into(),
            AclProtocol::Icmpv6 => "58".into(),
            AclProtocol::All => "-1".into(),
            AclProtocol::Number(n) => n.to_string(),
        }
    }

    /// AWS's `Protocol` field (a number or a name) read back.
    pub fn from_aws(s: &str) -> Option<AclProtocol> {
        Some(match s.to_ascii_lowercase().as_str() {
            "-1" | "all" => AclProtocol::All,
            "6" | "tcp" => AclProtocol::Tcp,
            "17" | "udp" => AclProtocol::Udp,
            "1" | "icmp" => AclProtocol::Icmp,
            "58" | "icmpv6" => AclProtocol::Icmpv6,
            other => AclProtocol::Number(other.parse().ok()?),
        })
    }

    /// Whether entries of it carry a port range.
    pub fn has_ports(self) -> bool {
        matches!(self, AclProtocol::Tcp | AclProtocol::Udp)
    }

    pub fn text(self) -> String {
        match self {
            AclProtocol::Tcp => "tcp".into(),
            AclProtocol::Udp => "udp".into(),
            AclProtocol::Icmp => "icmp".into(),
            AclProtocol::Icmpv6 => "icmpv6".into(),
            AclProtocol::All => "all".into(),
            AclProtocol::Number(n) => format!("protocol {n}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    Allow,
    Deny,
}

impl AclAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AclAction::Allow => "allow",
            AclAction::Deny => "deny",
        }
    }
}

/// One entry of a network ACL as the spec writes it: the rule number orders the entries (the
/// lowest that matches decides), the rest says what it matches and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    /// 1–32766.
    pub rule: u16,
    pub protocol: AclProtocol,
    /// Inclusive port range of a tcp or udp entry; `None` for the others.
    pub ports: Option<(u16, u16)>,
    /// An IPv4 or IPv6 block: the source of an ingress entry, the destination of an egress
    /// one.
    pub cidr: String,
    pub action: AclAction,
    pub loc: Loc,
}
