//! Import: an environment's spec written from what AWS runs (`tierdeck import`).
//!
//! The engine reads what a [`Selector`] picks out of the live account into a [`Found`]; this
//! module turns it into the spec's files ([`write`]): what the spec can say is written with a
//! comment saying where it came from, what it cannot say is listed ([`Unexpressed`]) with the
//! reason, never dropped. Scaling policies are recognised as the spec's `cpu_scaling` when they
//! are tierdeck's own (`tierdeck-<group>-cpu-…`) or plain CPU step or target-tracking policies
//! ([`recognise_scaling`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::observed::{
    ObservedDatabase, ObservedNetworkAcl, ObservedScheduledAction, ObservedSecurityGroup,
    ObservedSubnet,
};
use crate::plan::policy_name;
use crate::spec::CpuScaling;

mod write;

pub use write::{write, Context, Imported};

/// Which groups and databases an import takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Selector {
    /// Those carrying the tag `key` with the value `value`.
    Tag { key: String, value: String },
    /// Those whose name begins so.
    Prefix { prefix: String },
    /// These names.
    Names { names: Vec<String> },
}

impl Selector {
    /// `--tag KEY=VALUE`, read.
    pub fn tag(text: &str) -> Result<Selector, String> {
        match text.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(Selector::Tag {
                key: k.trim().to_owned(),
                value: v.trim().to_owned(),
            }),
            _ => Err(format!(
                "--tag takes KEY=VALUE (like `--tag env=prod`), not `{text}`"
            )),
        }
    }

    /// A selector as the import page's form gives it: `by` (`tag`, `prefix` or `names`) and
    /// its value (names apart by spaces or commas).
    pub fn from_form(by: &str, value: &str) -> Result<Selector, String> {
        let value = value.trim();
        match by {
            "tag" => Selector::tag(value),
            "prefix" if !value.is_empty() => Ok(Selector::Prefix {
                prefix: value.to_owned(),
            }),
            "prefix" => Err("a prefix takes the names' beginning, not nothing: it would take every group and database".to_owned()),
            "names" => {
                let names: Vec<String> = value
                    .split([' ', ',', '\n'])
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect();
                if names.is_empty() {
                    Err("give at least one name".to_owned())
                } else {
                    Ok(Selector::Names { names })
                }
            }
            other => Err(format!(
                "select by tag, prefix or names, not `{other}`"
            )),
        }
    }

    /// Whether a resource of this name and these tags is selected.
    pub fn matches(&self, name: &str, tags: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Tag { key, value } => tags.get(key).is_some_and(|v| v == value),
            Selector::Prefix { prefix } => name.starts_with(prefix.as_str()),
            Selector::Names { names } => names.iter().any(|n| n == name),
        }
    }

    /// The selector as the command line writes it.
    pub fn text(&self) -> String {
        match self {
            Selector::Tag { key, value } => format!("--tag {key}={value}"),
            Selector::Prefix { prefix } => format!("--prefix {prefix}"),
            Selector::Names { names } => format!("--names {}", names.join(" ")),
        }
    }
}

/// A scaling policy as Auto Scaling describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundPolicy {
    pub name: String,
    pub arn: String,
    /// `SimpleScaling`, `StepScaling`, `TargetTrackingScaling`, `PredictiveScaling`.
    pub policy_type: String,
    /// `ChangeInCapacity`, `ExactCapacity`, `PercentChangeInCapacity`.
    pub adjustment_type: Option<String>,
    pub scaling_adjustment: Option<i32>,
    pub cooldown_seconds: Option<u32>,
    /// A step policy's steps: lower bound, upper bound (over the alarm's threshold), adjustment.
    pub steps: Vec<(Option<f64>, Option<f64>, i32)>,
    /// A target-tracking policy's predefined metric (`ASGAverageCPUUtilization`); `None` with
    /// a target: a customised metric.
    pub target_metric: Option<String>,
    pub target_value: Option<f64>,
    pub enabled: bool,
}

/// A CloudWatch alarm that calls a scaling policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundAlarm {
    pub name: String,
    pub namespace: String,
    pub metric: String,
    pub statistic: String,
    pub dimensions: Vec<(String, String)>,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
    /// AWS's `ComparisonOperator` (`GreaterThanOrEqualToThreshold`…).
    pub comparison: String,
    pub threshold: f64,
    /// The ARNs its alarm state calls.
    pub actions: Vec<String>,
}

/// An Auto Scaling group and what it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundGroup {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub tags: BTreeMap<String, String>,
    /// Its subnets (`VPCZoneIdentifier`), by id.
    pub subnet_ids: Vec<String>,
    /// The security groups of its launch template, by name.
    pub security_groups: Vec<String>,
    /// Where its instances come from, in words (`launch template web-lt version $Default`).
    pub launched_from: Option<String>,
    pub instance_type: Option<String>,
    pub policies: Vec<FoundPolicy>,
    pub scheduled_actions: Vec<ObservedScheduledAction>,
}

/// A database and what it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundDatabase {
    pub database: ObservedDatabase,
    pub tags: BTreeMap<String, String>,
    /// Its VPC security groups, by name.
    pub security_groups: Vec<String>,
    /// The subnets of its DB subnet group, by id.
    pub subnet_ids: Vec<String>,
}

/// Something that could not be read: what, the IAM action refused, AWS's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unread {
    pub what: String,
    pub action: String,
    pub message: String,
}

/// Everything an import read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub groups: Vec<FoundGroup>,
    pub databases: Vec<FoundDatabase>,
    /// The alarms that call the groups' policies.
    pub alarms: Vec<FoundAlarm>,
    /// Whether those alarms could be read.
    pub alarms_read: bool,
    pub security_groups: Vec<ObservedSecurityGroup>,
    pub subnets: Vec<ObservedSubnet>,
    pub network_acls: Vec<ObservedNetworkAcl>,
    pub unread: Vec<Unread>,
}

impl Found {
    /// Nothing matched (or nothing could be read).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.databases.is_empty()
    }
}

/// Something running that the spec cannot say, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unexpressed {
    /// `autoscaling group shop-web`, `policy shop-web-requests`…
    pub resource: String,
    pub reason: String,
}

impl std::fmt::Display for Unexpressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.resource, self.reason)
    }
}

/// An import as the page shows it: the files and how they stand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub env: String,
    pub region: String,
    /// The selection, as the command line writes it.
    pub selector: String,
    /// What was read, counted (`2 Auto Scaling groups, 1 database, …`); empty when nothing
    /// matched.
    pub counts: String,
    pub read_ms: u64,
    pub aws_calls: u64,
    /// `environments/ENV/` files by name; none when nothing matched.
    pub files: Vec<(String, String)>,
    pub unread: Vec<Unread>,
    pub unmatched: Vec<String>,
    pub unexpressed: Vec<Unexpressed>,
    /// The written files' spec errors (none unless tierdeck writes what it cannot read back).
    pub spec_errors: Vec<String>,
    /// The round trip's operations and errors, as people read them.
    pub round_trip: Vec<String>,
    /// Why the round trip could not be planned.
    pub round_trip_failed: Option<String>,
    pub round_trip_clean: bool,
    /// The guardrails what runs breaks, each `file:line:col: [rule] message`.
    pub violations: Vec<String>,
}

/// The size of a tar archive's blocks.
const BLOCK: usize = 512;

/// `files` as a tar archive (POSIX ustar) of the folder `environments/ENV/`, as the import page
/// downloads them: read-write for the owner, readable by others, dated 0 (they are
/// generated).
pub fn tar(env: &str, files: &[(String, String)]) -> Vec<u8> {
    fn header(name: &str, size: usize, kind: u8) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        let put = |h: &mut [u8; BLOCK], at: usize, bytes: &[u8]| {
            h[at..at + bytes.len()].copy_from_slice(bytes);
        };
        put(&mut h, 0, &name.as_bytes()[..name.len().min(100)]);
        put(
            &mut h,
            100,
            if kind == b'5' {
                b"0000755\0"
            } else {
                b"0000644\0"
            },
        );
        put(&mut h, 108, b"0000000\0");
        put(&mut h, 116, b"0000000\0");
        put(&mut h, 124, format!("{size:011o}\0").as_bytes());
        put(&mut h, 136, b"00000000000\0");
        put(&mut h, 148, b"        ");
        h[156] = kind;
        put(&mut h, 257, b"ustar\0");
        put(&mut h, 263, b"00");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        h
    }
    let mut out = Vec::new();
    for dir in ["environments/".to_owned(), format!("environments/{env}/")] {
        out.extend_from_slice(&header(&dir, 0, b'5'));
    }
    for (name, text) in files {
        let path = format!("environments/{env}/{name}");
        out.extend_from_slice(&header(&path, text.len(), b'0'));
        out.extend_from_slice(text.as_bytes());
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

/// A group's scaling as the spec says it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    pub cpu: Option<CpuScaling>,
    /// Where `cpu` came from, for the file's comment.
    pub from: Option<String>,
    pub unexpressed: Vec<Unexpressed>,
}

const CPU_TARGET: &str = "ASGAverageCPUUtilization";
/// The alarms' period and evaluation periods tierdeck writes.
const ALARM_PERIOD: u32 = 300;

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A policy's step, when it is one: its adjustment and cooldown (`None`: none given).
fn step(p: &FoundPolicy) -> Option<(i32, Option<u32>)> {
    if p.adjustment_type.as_deref() != Some("ChangeInCapacity") {
        return None;
    }
    match p.policy_type.as_str() {
        "SimpleScaling" => p
            .scaling_adjustment
            .filter(|a| *a != 0)
            .map(|a| (a, p.cooldown_seconds)),
        // One step over the whole side of the threshold: the same as a simple policy.
        "StepScaling" => match p.steps.as_slice() {
            [(lo, hi, a)] if *a != 0 => {
                let whole = if *a > 0 {
                    lo.is_none_or(|l| l == 0.0) && hi.is_none()
                } else {
                    hi.is_none_or(|h| h == 0.0) && lo.is_none()
                };
                whole.then_some((*a, None))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The direction of an alarm on the group's average CPU: `Some(true)` above, `Some(false)`
/// below; `None` for any other alarm.
fn cpu_alarm(a: &FoundAlarm, group: &str) -> Option<bool> {
    let on_cpu = a.namespace == "AWS/EC2"
        && a.metric == "CPUUtilization"
        && a.statistic == "Average"
        && a.dimensions.len() == 1
        && a.dimensions[0].0 == "AutoScalingGroupName"
        && a.dimensions[0].1 == group;
    if !on_cpu {
        return None;
    }
    match a.comparison.as_str() {
        "GreaterThanOrEqualToThreshold" | "GreaterThanThreshold" => Some(true),
        "LessThanOrEqualToThreshold" | "LessThanThreshold" => Some(false),
        _ => None,
    }
}

/// What a policy is, in words, for a reason.
fn policy_words(p: &FoundPolicy) -> String {
    match p.policy_type.as_str() {
        "TargetTrackingScaling" => match (&p.target_metric, p.target_value) {
            (Some(m), Some(v)) => format!("target tracking of {m} at {}", num(v)),
            (None, _) => "target tracking of a customised metric".to_owned(),
            (Some(m), None) => format!("target tracking of {m}"),
        },
        "StepScaling" => format!(
            "step scaling with {} step{} ({})",
            p.steps.len(),
            if p.steps.len() == 1 { "" } else { "s" },
            p.adjustment_type.as_deref().unwrap_or("no adjustment type")
        ),
        "SimpleScaling" => format!(
            "simple scaling by {} ({})",
            p.scaling_adjustment.unwrap_or_default(),
            p.adjustment_type.as_deref().unwrap_or("no adjustment type")
        ),
        other => format!("a {other} policy"),
    }
}

/// Recognises a group's CPU scaling in its policies and the alarms calling them: tierdeck's own
/// (`tierdeck-<group>-cpu-{out,in}` with `…-{high,low}`, or `…-target`), else one plain pair of
/// CPU step policies or one plain CPU target-tracking policy. Every other policy is listed.
pub fn recognise_scaling(g: &FoundGroup, alarms: &[FoundAlarm], alarms_read: bool) -> Scaling {
    let calling = |p: &FoundPolicy| -> Vec<&FoundAlarm> {
        alarms
            .iter()
            .filter(|a| a.actions.iter().any(|x| x == &p.arn))
            .collect()
    };
    let named = |what: &str| {
        let n = policy_name(&g.name, what);
        g.policies.iter().find(|p| p.name == n)
    };
    let mut used: Vec<&str> = Vec::new();
    let mut cpu = None;
    let mut from = None;
    let mut notes: Vec<Unexpressed> = Vec::new();

    // tierdeck's own step pair.
    if let (Some(out), Some(inn)) = (named("out"), named("in")) {
        let high = calling(out)
            .into_iter()
            .find(|a| a.name == policy_name(&g.name, "high"));
        let low = calling(inn)
            .into_iter()
            .find(|a| a.name == policy_name(&g.name, "low"));
        match (step(out), step(inn), high, low) {
            (Some((up, c1)), Some((down, c2)), Some(h), Some(l))
                if up > 0
                    && down == -up
                    && c1 == c2
                    && up <= 100
                    && h.comparison == "GreaterThanOrEqualToThreshold"
                    && l.comparison == "LessThanOrEqualToThreshold"
                    && cpu_alarm(h, &g.name).is_some()
                    && cpu_alarm(l, &g.name).is_some()
                    && l.threshold < h.threshold
                    && (0.0..=100.0).contains(&h.threshold)
                    && (0.0..=100.0).contains(&l.threshold) =>
            {
                cpu = Some(CpuScaling::Step {
                    scale_out_above: h.threshold,
                    scale_in_below: l.threshold,
                    adjustment: up as u32,
                    cooldown_seconds: c1.unwrap_or(0),
                });
                from = Some(format!(
                    "policies {} and {}, alarms {} and {}",
                    out.name, inn.name, h.name, l.name
                ));
                for a in [h, l] {
                    if a.period_seconds != ALARM_PERIOD || a.evaluation_periods != 1 {
                        notes.push(Unexpressed {
                            resource: format!("alarm {}", a.name),
                            reason: format!(
                                "evaluates {} period(s) of {} s; the spec's alarms evaluate one period of {ALARM_PERIOD} s (the plan does not compare it; an apply that rewrites the alarm makes it so)",
                                a.evaluation_periods, a.period_seconds
                            ),
                        });
                    }
                }
                used.extend([out.name.as_str(), inn.name.as_str()]);
            }
            _ => {}
        }
    }
    // tierdeck's own target tracking.
    if cpu.is_none() {
        if let Some(t) = named("target") {
            if t.policy_type == "TargetTrackingScaling"
                && t.target_metric.as_deref() == Some(CPU_TARGET)
                && t.target_value.is_some_and(|v| (1.0..=100.0).contains(&v))
            {
                cpu = Some(CpuScaling::TargetTracking {
                    target_percent: t.target_value.unwrap_or_default(),
                });
                from = Some(format!("policy {}", t.name));
                used.push(t.name.as_str());
            }
        }
    }
    // Plain policies, when tierdeck's are not there.
    let plain: Vec<&FoundPolicy> = g
        .policies
        .iter()
        .filter(|p| !p.name.starts_with(&policy_name(&g.name, "")))
        .collect();
    let mut adopted = Vec::new();
    if cpu.is_none() && alarms_read {
        let side = |up: bool| {
            plain.iter().copied().find_map(|p| {
                let (adj, cooldown) = step(p)?;
                if (adj > 0) != up || adj.unsigned_abs() > 100 || !p.enabled {
                    return None;
                }
                let alarms = calling(p);
                let [a] = alarms.as_slice() else {
                    return None;
                };
                (cpu_alarm(a, &g.name)? == up).then_some((p, adj, cooldown, *a))
            })
        };
        if let (Some((out, up, c1, h)), Some((inn, down, c2, l))) = (side(true), side(false)) {
            if down == -up && l.threshold < h.threshold && h.threshold <= 100.0 {
                cpu = Some(CpuScaling::Step {
                    scale_out_above: h.threshold,
                    scale_in_below: l.threshold,
                    adjustment: up as u32,
                    cooldown_seconds: c1.or(c2).unwrap_or(300),
                });
                from = Some(format!(
                    "the plain policies {} and {} and their alarms {} and {}",
                    out.name, inn.name, h.name, l.name
                ));
                adopted.extend([out, inn]);
            }
        }
        if cpu.is_none() {
            if let Some(t) = plain.iter().find(|p| {
                p.enabled
                    && p.policy_type == "TargetTrackingScaling"
                    && p.target_metric.as_deref() == Some(CPU_TARGET)
                    && p.target_value.is_some_and(|v| (1.0..=100.0).contains(&v))
            }) {
                cpu = Some(CpuScaling::TargetTracking {
                    target_percent: t.target_value.unwrap_or_default(),
                });
                from = Some(format!("the plain policy {}", t.name));
                adopted.push(t);
            }
        }
    }
    let mut unexpressed = Vec::new();
    for p in &adopted {
        unexpressed.push(Unexpressed {
            resource: format!("policy {} of {}", p.name, g.name),
            reason: format!(
                "{}: written as the spec's cpu_scaling, but tierdeck manages CPU scaling through policies and alarms of its own names ({}…), so the first apply creates those beside it; this one is left alone, so delete it then, or both scale the group",
                policy_words(p),
                policy_name(&g.name, "")
            ),
        });
    }
    for p in &g.policies {
        if used.contains(&p.name.as_str()) || adopted.iter().any(|a| a.name == p.name) {
            continue;
        }
        let ours = p.name.starts_with(&policy_name(&g.name, ""));
        let what = policy_words(p);
        let reason = if !alarms_read && p.policy_type != "TargetTrackingScaling" {
            format!(
                "{what}: its alarms could not be read, so its thresholds are unknown{}",
                if ours {
                    "; the plan deletes it while the spec says no cpu_scaling"
                } else {
                    "; tierdeck leaves it alone"
                }
            )
        } else if ours {
            format!(
                "{what}: named like tierdeck's own but not a pair tierdeck writes (a step out and in by the same adjustment and cooldown, called by the alarms …-high (≥) and …-low (≤) on the group's average CPU); the plan deletes it"
            )
        } else if cpu.is_some() {
            format!(
                "{what}: the spec has one CPU scaling per group, taken from {}; tierdeck leaves this one alone",
                from.as_deref().unwrap_or("another policy")
            )
        } else {
            format!(
                "{what}: the spec scales on the group's average CPU only (step or target tracking); tierdeck leaves it alone"
            )
        };
        unexpressed.push(Unexpressed {
            resource: format!("policy {} of {}", p.name, g.name),
            reason,
        });
    }
    unexpressed.extend(notes);
    Scaling {
        cpu,
        from,
        unexpressed,
    }
}

#[cfg(test)]
mod tests;
