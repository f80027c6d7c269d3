//! The rollout planner: a group whose launch template version or image differs from the spec,
//! or whose instances still run another version, is replaced through an instance refresh held
//! at each checkpoint (see `engine`'s rollout step). A refresh AWS still runs blocks a new one.

use serde::{Deserialize, Serialize};

use super::{op, Action, Phases, PlanError};
use crate::observed::{ObservedGroup, ObservedLaunch};
use crate::spec::{AutoscalingGroup, Launch, Rollout};

/// The version a rollout moves the group to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RolloutTarget {
    /// A version that exists (`$Latest`/`$Default` as AWS writes them).
    Version { version: String },
    /// A new version of the group's template, made from `from` with only the image changed;
    /// AWS numbers it (`expected`: the number it should get, for the plan's text).
    NewVersion {
        from: String,
        image_id: String,
        expected: u32,
    },
}

/// What a rollout does, fixed when it is planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutPlan {
    pub group: String,
    /// The template the refresh's desired configuration names.
    pub template: String,
    pub target: RolloutTarget,
    /// The version the group runs now, as it names it (where a rollback goes back to).
    pub previous: String,
    /// The image of the target version, when known.
    pub image_id: Option<String>,
    /// Instances on another version than the target's (all of them for a new version).
    pub to_replace: u32,
    pub instances: u32,
    pub preferences: Rollout,
}

impl RolloutPlan {
    /// The checkpoints tierdeck holds at and bakes: those before the last (100).
    pub fn holds(&self) -> Vec<u32> {
        let c = &self.preferences.checkpoints;
        c[..c.len().saturating_sub(1)].to_vec()
    }

    /// About how long the rollout takes, in minutes: the replacements in batches the healthy
    /// percentages allow, each an instance's launch and warm-up (the spec's, else AWS's
    /// default 300 s), plus a bake at each hold.
    pub fn estimate_minutes(&self) -> u32 {
        let r = &self.preferences;
        let n = self.instances.max(self.to_replace).max(1);
        // Below desired by (100 − min) %, above it by (max − 100) %: at least one at a time.
        let down = n * (100 - r.min_healthy_percent.min(100)) / 100;
        let up = n * r.max_healthy_percent.saturating_sub(100) / 100;
        let batch = (down + up).max(1);
        let batches = self.to_replace.div_ceil(batch).max(1);
        let per_batch = 60 + r.warmup_seconds.unwrap_or(300);
        let bakes = self.holds().len() as u32 * r.bake_seconds;
        (batches * per_batch + bakes).div_ceil(60)
    }

    /// `7 (ami-…)` or `8 (new, from 7, ami-…)`.
    pub fn target_text(&self) -> String {
        match &self.target {
            RolloutTarget::Version { version } => match &self.image_id {
                Some(i) => format!("version {version} ({i})"),
                None => format!("version {version}"),
            },
            RolloutTarget::NewVersion {
                from,
                image_id,
                expected,
            } => format!("version {expected} ({image_id}, a new version made from {from})"),
        }
    }

    /// The plan's sentence: "replace 4 instances of shop-prod-web with version 7 (ami-…): at
    /// least 90 % healthy, held at 25 % and 50 % for 10 minutes each, about 34 minutes".
    pub fn summary(&self) -> String {
        let r = &self.preferences;
        let holds = self.holds();
        let held = match holds.as_slice() {
            [] => "no checkpoint before the end".to_owned(),
            hs => {
                let list: Vec<String> = hs.iter().map(|h| format!("{h} %")).collect();
                let list = match list.as_slice() {
                    [one] => one.clone(),
                    [init @ .., last] => format!("{} and {last}", init.join(", ")),
                    [] => String::new(),
                };
                let each = if hs.len() > 1 { " each" } else { "" };
                format!("held at {list} for {}{each}", duration_text(r.bake_seconds))
            }
        };
        let n = self.to_replace;
        format!(
            "replace {n} instance{} of {} with {}: at least {} % healthy, {held}, about {} minutes",
            if n == 1 { "" } else { "s" },
            self.group,
            self.target_text(),
            r.min_healthy_percent,
            self.estimate_minutes()
        )
    }

    /// What can go wrong, in plain words.
    pub fn risk(&self) -> String {
        let r = &self.preferences;
        let mut s = format!(
            "every instance of the tier is replaced; capacity may drop to {} % of desired while new instances warm up, and new servers take traffic from the first checkpoint",
            r.min_healthy_percent
        );
        if !self.holds().is_empty() {
            s.push_str("; a page-level SLO alert during a hold rolls the refresh back");
        }
        if r.max_healthy_percent > 100 {
            s.push_str(&format!(
                "; up to {} % of desired runs (and is billed) during replacements",
                r.max_healthy_percent
            ));
        }
        s
    }
}

/// `10 minutes`, `30 seconds`: whole minutes (rounded up) from two minutes on.
pub fn duration_text(secs: u32) -> String {
    match secs {
        s if s >= 120 || (s >= 60 && s % 60 == 0) => {
            let m = s.div_ceil(60);
            format!("{m} minute{}", if m == 1 { "" } else { "s" })
        }
        s => format!("{s} second{}", if s == 1 { "" } else { "s" }),
    }
}

/// Plans the rollout of `g`'s launch template or image against `o`.
pub(super) fn plan_rollout(
    g: &AutoscalingGroup,
    o: &ObservedGroup,
    p: &mut Phases,
    errors: &mut Vec<PlanError>,
) {
    let Some(want) = &g.launch else {
        return;
    };
    let resource = format!("autoscaling group {}", g.name);
    let Some(l) = &o.launch else {
        errors.push(PlanError {
            resource,
            message: "it runs no launch template (a launch configuration or a mixed instances policy): tierdeck rolls out launch template versions only".into(),
        });
        return;
    };
    if let Some(r) = l.refresh.as_ref().filter(|r| r.active()) {
        errors.push(PlanError {
            resource,
            message: format!(
                "instance refresh {} is {} ({} % done): AWS runs one refresh per group, so a new rollout waits until it ends (or cancel it)",
                r.id, r.status, r.percentage
            ),
        });
        return;
    }
    let (template, target, image_id) = match want {
        Launch::Template { name, version } => {
            let image = version
                .number()
                .or_else(|| (version.aws() == "$Latest").then_some(l.latest))
                .and_then(|v| l.images.get(&v).cloned());
            (
                name.clone(),
                RolloutTarget::Version {
                    version: version.aws(),
                },
                image,
            )
        }
        Launch::Image { image_id } if l.image() == Some(image_id.as_str()) => (
            l.template_name.clone(),
            RolloutTarget::Version {
                version: l.version.clone(),
            },
            Some(image_id.clone()),
        ),
        Launch::Image { image_id } => (
            l.template_name.clone(),
            RolloutTarget::NewVersion {
                from: l
                    .version_number
                    .map_or_else(|| l.version.clone(), |n| n.to_string()),
                image_id: image_id.clone(),
                expected: l.latest + 1,
            },
            Some(image_id.clone()),
        ),
    };
    let to_replace = match &target {
        RolloutTarget::NewVersion { .. } => l.instances.len() as u32,
        RolloutTarget::Version { version } => l
            .instances
            .iter()
            .filter(|(_, v)| !same_version(v, version, l))
            .count() as u32,
    };
    let pinned = match &target {
        RolloutTarget::Version { version } => {
            template == l.template_name && same_version(&l.version, version, l)
        }
        RolloutTarget::NewVersion { .. } => false,
    };
    if pinned && to_replace == 0 {
        return;
    }
    let plan = RolloutPlan {
        group: g.name.to_string(),
        template,
        target,
        previous: l
            .version_number
            .map_or_else(|| l.version.clone(), |n| n.to_string()),
        image_id,
        to_replace,
        instances: l.instances.len() as u32,
        preferences: Rollout {
            loc: None,
            ..g.rollout.clone()
        },
    };
    let change = plan.summary();
    let risk = Some(plan.risk());
    p.rollouts.push(op(
        Action::Rollout {
            group: g.name.to_string(),
            plan: Box::new(plan),
        },
        resource,
        change,
        risk,
    ));
}

/// Whether `a` and `b` name the same version of `l`'s template (a number and `$Latest` may).
fn same_version(a: &str, b: &str, l: &ObservedLaunch) -> bool {
    let resolve = |v: &str| match v {
        "$Latest" => Some(l.latest),
        "$Default" => None,
        n => n.parse().ok(),
    };
    a == b || matches!((resolve(a), resolve(b)), (Some(x), Some(y)) if x == y)
}
