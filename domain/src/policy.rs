//! Where the rules that judge a change come from.
//!
//! A change never sets the rules it is judged by. Required approvals and self-approval,
//! auto-apply, change windows, guardrail limits, the SLO the error-budget gate reads and the
//! SLOs the watch after an apply reads are taken from the environment's last applied spec, and never weaker than the panel's own
//! [`Floor`] (`[policy]` in tierdeck.toml). A change that edits any of them is a *policy
//! change*: judged by the stricter of the old and the new rules, never applied by itself, and
//! approved by at least one person. An environment never applied is judged by the floor and
//! its own rules, and is not applied by itself the first time.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::spec::{ChangeWindow, CostPolicy, EnvironmentSpec, Guardrails, Slo, Watch, Weekday};

/// The name of the SLO the error-budget gate reads.
pub const BUDGET_SLO: &str = "availability";

/// The panel's floor: no environment's rules are weaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// Every change needs at least this many approvals (0–5).
    pub min_approvals: u8,
    /// Whether any environment may apply changes by itself once approved.
    pub allow_auto_apply: bool,
}

impl Default for Floor {
    fn default() -> Self {
        Self {
            min_approvals: 1,
            allow_auto_apply: true,
        }
    }
}

/// What the rules are judged against.
#[derive(Debug, Clone, Copy)]
pub enum Applied<'a> {
    /// The environment was never applied.
    Never,
    /// The spec of its last applied commit.
    Spec {
        commit: &'a str,
        spec: &'a EnvironmentSpec,
    },
    /// It was applied, but that spec cannot be read now (a parser that became stricter): the
    /// change is treated as a policy change judged by its own rules and the floor.
    Unreadable { commit: &'a str },
}

/// Where the rules came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Basis {
    /// The last applied commit's rules.
    Applied { commit: String },
    /// Never applied: the change's own rules and the panel's floor.
    FirstApply,
    /// The last applied spec cannot be read: the change's own rules and the floor.
    AppliedUnreadable { commit: String },
}

/// Change windows as rules: an apply needs a time that every set contains (a set being one
/// spec's `change_windows`; an empty list of sets: any time).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windows(pub Vec<Vec<ChangeWindow>>);

impl Windows {
    fn of(sets: impl IntoIterator<Item = Vec<ChangeWindow>>) -> Self {
        let mut out: Vec<Vec<ChangeWindow>> = Vec::new();
        for set in sets {
            if !set.is_empty() && !out.contains(&set) {
                out.push(set);
            }
        }
        Windows(out)
    }

    pub fn is_any_time(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `now` is inside every set.
    pub fn contain(&self, now: DateTime<Utc>) -> bool {
        self.0.iter().all(|set| in_change_window(set, now))
    }

    /// In words: `mon, tue 10:00–17:00 Asia/Seoul`, sets joined by ` and within `.
    pub fn text(&self) -> String {
        self.0
            .iter()
            .map(|set| windows_text(set))
            .collect::<Vec<_>>()
            .join(" and within ")
    }
}

/// The rules that judge one change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub basis: Basis,
    /// The rules the change edits (empty: not a policy change).
    pub edits: Vec<String>,
    pub required_approvals: u8,
    pub allow_self_approval: bool,
    /// Whether it applies itself once approved.
    pub auto_apply: bool,
    pub windows: Windows,
    pub guardrails: Guardrails,
    /// The cost limits (the stricter of applied and proposed).
    pub cost: CostPolicy,
    /// Why the cost policy blocks the change, once its cost is known (`None`: it does not).
    #[serde(default)]
    pub cost_blocked: Option<String>,
    /// Why it may be applied only as an emergency: its cost cannot be checked against the
    /// policy's limit and it may raise the ceiling (`None`: no such hold).
    #[serde(default)]
    pub cost_unchecked: Option<String>,
    /// The SLOs whose spent budget allows only emergency applies (each one's own).
    pub budget_slos: Vec<Slo>,
    /// The watch after the apply: the longer of applied and proposed, auto-revert only when
    /// both say so.
    #[serde(default)]
    pub watch: Watch,
    /// Steps that raise capacity wait for it to be in service when either spec says so.
    #[serde(default)]
    pub wait_for_capacity: bool,
    /// The network layout the guardrails read, as the last applied spec says it.
    #[serde(default)]
    pub layout: Layout,
    /// Where each rule comes from, in sentences for the page.
    pub notes: Vec<String>,
}

/// A security group as the last applied spec places it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLayout {
    pub edge: bool,
    pub tier: Option<String>,
    pub subnets: Option<String>,
}

/// A subnet as the last applied spec places it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetLayout {
    pub tier: String,
    pub public: bool,
}

/// What the network guardrails read from the last applied spec: which security groups face
/// the internet, which subnets are public, and the tiers of both. A change cannot mark a group
/// internet-facing, a subnet public or move either to another tier to pass a guardrail: for
/// what the applied spec names, its tiers hold, and `edge` and `public` only where both say so.
/// Empty for an environment never applied (its own spec holds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub groups: BTreeMap<String, GroupLayout>,
    pub subnets: BTreeMap<String, SubnetLayout>,
}

impl Layout {
    pub fn of(spec: &EnvironmentSpec) -> Layout {
        Layout {
            groups: spec
                .security_groups
                .iter()
                .map(|g| {
                    (
                        g.name.clone(),
                        GroupLayout {
                            edge: g.edge,
                            tier: g.tier.clone(),
                            subnets: g.subnets.clone(),
                        },
                    )
                })
                .collect(),
            subnets: spec
                .subnets
                .iter()
                .map(|s| {
                    (
                        s.resource.text().to_owned(),
                        SubnetLayout {
                            tier: s.tier.clone(),
                            public: s.public,
                        },
                    )
                })
                .collect(),
        }
    }

    /// `spec` as the guardrails judge it.
    pub fn judged(&self, spec: &EnvironmentSpec) -> EnvironmentSpec {
        let mut out = spec.clone();
        for g in &mut out.security_groups {
            if let Some(l) = self.groups.get(&g.name) {
                g.edge &= l.edge;
                g.tier.clone_from(&l.tier);
                g.subnets.clone_from(&l.subnets);
            }
        }
        for s in &mut out.subnets {
            if let Some(l) = self.subnets.get(s.resource.text()) {
                s.public &= l.public;
                s.tier.clone_from(&l.tier);
            }
        }
        out
    }
}

impl Policy {
    pub fn is_policy_change(&self) -> bool {
        !self.edits.is_empty()
    }

    pub fn is_first_apply(&self) -> bool {
        self.basis == Basis::FirstApply
    }
}

/// An SLO without where it was written: two specs that say the same SLO in different lines
/// agree.
fn same_slo(a: &Slo, b: &Slo) -> bool {
    a.name == b.name
        && a.objective == b.objective
        && a.window_days == b.window_days
        && a.indicator == b.indicator
}

fn budget_slos(spec: &EnvironmentSpec) -> Vec<&Slo> {
    spec.slos.iter().filter(|s| s.name == BUDGET_SLO).collect()
}

/// The rules `proposed` edits compared with `applied`, by their spec keys.
pub fn edits(applied: &EnvironmentSpec, proposed: &EnvironmentSpec) -> Vec<String> {
    let (a, p) = (&applied.environment, &proposed.environment);
    let (ga, gp) = (&a.guardrails, &p.guardrails);
    let (sa, sp) = (budget_slos(applied), budget_slos(proposed));
    let rules = [
        (
            "environment.approvals.required",
            a.approvals.required != p.approvals.required,
        ),
        (
            "environment.approvals.allow_self_approval",
            a.approvals.allow_self_approval != p.approvals.allow_self_approval,
        ),
        ("environment.auto_apply", a.auto_apply != p.auto_apply),
        (
            "environment.change_windows",
            a.change_windows != p.change_windows,
        ),
        (
            "environment.guardrails.min_instances",
            ga.min_instances != gp.min_instances,
        ),
        (
            "environment.guardrails.max_instances",
            ga.max_instances != gp.max_instances,
        ),
        (
            "environment.guardrails.require_multi_az",
            ga.require_multi_az != gp.require_multi_az,
        ),
        (
            "environment.guardrails.min_healthy_percent",
            ga.min_healthy_percent != gp.min_healthy_percent,
        ),
        (
            "environment.cost.max_monthly",
            a.cost.max_monthly != p.cost.max_monthly,
        ),
        (
            "environment.cost.extra_approval_above",
            a.cost.extra_approval_above != p.cost.extra_approval_above,
        ),
        (
            "environment.watch.minutes",
            a.watch.minutes != p.watch.minutes,
        ),
        (
            "environment.watch.auto_revert",
            a.watch.auto_revert != p.watch.auto_revert,
        ),
        (
            "slos[availability]",
            sa.len() != sp.len() || sa.iter().zip(&sp).any(|(x, y)| !same_slo(x, y)),
        ),
    ];
    let mut out: Vec<String> = rules
        .into_iter()
        .filter(|(_, edited)| *edited)
        .map(|(key, _)| key.to_owned())
        .collect();
    // Every SLO watches the apply (its burn rates, and its query failing, degrade a change):
    // adding one, removing one or editing its query, objective or window sets what judges the
    // changes after it.
    let mut names: Vec<&str> = applied
        .slos
        .iter()
        .chain(&proposed.slos)
        .map(|s| s.name.as_str())
        .filter(|n| *n != BUDGET_SLO)
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let (a, p) = (slo_named(applied, name), slo_named(proposed, name));
        let edited = match (a.as_slice(), p.as_slice()) {
            ([x], [y]) => !same_slo(x, y),
            (x, y) => x.len() != y.len() || x.iter().zip(y).any(|(x, y)| !same_slo(x, y)),
        };
        if edited {
            out.push(format!("slos[{name}]"));
        }
    }
    out.extend(layout_edits(applied, proposed));
    out
}

fn slo_named<'a>(spec: &'a EnvironmentSpec, name: &str) -> Vec<&'a Slo> {
    spec.slos.iter().filter(|s| s.name == name).collect()
}

/// Where `proposed` moves the network layout the guardrails read: a group newly marked
/// internet-facing or moved to another tier, a subnet newly public or moved.
fn layout_edits(applied: &EnvironmentSpec, proposed: &EnvironmentSpec) -> Vec<String> {
    let layout = Layout::of(applied);
    let mut out = Vec::new();
    for g in &proposed.security_groups {
        let before = layout.groups.get(&g.name);
        if g.edge && !before.is_some_and(|b| b.edge) {
            out.push(format!("security_groups[{}].edge", g.name));
        }
        if before.is_some_and(|b| b.tier != g.tier || b.subnets != g.subnets) {
            out.push(format!("security_groups[{}].tier", g.name));
        }
    }
    for s in &proposed.subnets {
        let before = layout.subnets.get(s.resource.text());
        if s.public && !before.is_some_and(|b| b.public) {
            out.push(format!("subnets[{}].public", s.resource));
        }
        if before.is_some_and(|b| b.tier != s.tier) {
            out.push(format!("subnets[{}].tier", s.resource));
        }
    }
    out
}

fn plural(n: u8) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The rules that judge `proposed`, the spec of a change, given what is applied and the floor.
pub fn judge(applied: Applied<'_>, proposed: &EnvironmentSpec, floor: &Floor) -> Policy {
    let own = &proposed.environment;
    let mut notes = Vec::new();
    let (basis, edits, old) = match applied {
        Applied::Never => {
            notes.push(
                "This environment was never applied: it is judged by its own rules and the panel's floor, and its first apply is never automatic.".to_owned(),
            );
            (Basis::FirstApply, Vec::new(), None)
        }
        Applied::Unreadable { commit } => {
            notes.push(format!(
                "The last applied spec ({}) cannot be read: this change is judged as a policy change by its own rules and the panel's floor.",
                crate::commit::short_sha(commit)
            ));
            (
                Basis::AppliedUnreadable {
                    commit: commit.to_owned(),
                },
                vec!["the last applied spec".to_owned()],
                None,
            )
        }
        Applied::Spec { commit, spec } => {
            let e = edits(spec, proposed);
            if e.is_empty() {
                notes.push(format!(
                    "The rules are those of the last applied commit {}.",
                    crate::commit::short_sha(commit)
                ));
            } else {
                notes.push(format!(
                    "A policy change: it edits {}. It is judged by the stricter of the last applied rules ({}) and its own, needs at least one approval and is never applied by itself; its rules hold from the next change on.",
                    e.join(", "),
                    crate::commit::short_sha(commit)
                ));
            }
            (
                Basis::Applied {
                    commit: commit.to_owned(),
                },
                e,
                Some(spec),
            )
        }
    };
    let policy_change = !edits.is_empty();
    let old_env = old.map(|s| &s.environment);
    let layout = old.map(Layout::of).unwrap_or_default();

    let mut required = own.approvals.required;
    let mut allow_self = own.approvals.allow_self_approval;
    let mut auto_apply = own.auto_apply;
    let mut guardrails = own.guardrails.clone();
    let mut cost = own.cost.clone();
    let mut watch = own.watch;
    let mut wait_for_capacity = own.wait_for_capacity;
    let mut slos: Vec<Slo> = budget_slos(proposed).into_iter().cloned().collect();
    if let (Some(a), Some(spec)) = (old_env, old) {
        required = required.max(a.approvals.required);
        allow_self &= a.approvals.allow_self_approval;
        auto_apply &= a.auto_apply;
        guardrails = Guardrails {
            min_instances: guardrails.min_instances.max(a.guardrails.min_instances),
            max_instances: guardrails.max_instances.min(a.guardrails.max_instances),
            require_multi_az: guardrails.require_multi_az || a.guardrails.require_multi_az,
            min_healthy_percent: guardrails
                .min_healthy_percent
                .max(a.guardrails.min_healthy_percent),
        };
        cost = CostPolicy {
            max_monthly: stricter(cost.max_monthly, a.cost.max_monthly),
            extra_approval_above: stricter(cost.extra_approval_above, a.cost.extra_approval_above),
        };
        watch = Watch {
            minutes: watch.minutes.max(a.watch.minutes),
            auto_revert: watch.auto_revert && a.watch.auto_revert,
        };
        wait_for_capacity |= a.wait_for_capacity;
        for s in budget_slos(spec) {
            if !slos.iter().any(|x| same_slo(x, s)) {
                slos.push(s.clone());
            }
        }
    }
    let windows = Windows::of(
        old_env
            .map(|a| a.change_windows.clone())
            .into_iter()
            .chain([own.change_windows.clone()]),
    );
    if required < floor.min_approvals {
        notes.push(format!(
            "The panel's floor asks for at least {} approval{} (the spec says {required}).",
            floor.min_approvals,
            plural(floor.min_approvals)
        ));
        required = floor.min_approvals;
    }
    if policy_change && required == 0 {
        notes.push("A policy change needs at least one approval.".to_owned());
        required = 1;
    }
    if auto_apply && !floor.allow_auto_apply {
        notes.push("The panel does not allow auto-apply: an operator applies.".to_owned());
        auto_apply = false;
    }
    if auto_apply && (policy_change || old.is_none()) {
        auto_apply = false;
    }
    if watch.auto_revert && !floor.allow_auto_apply {
        notes.push(
            "The panel does not allow auto-apply: a revert after a degraded watch waits for approval."
                .to_owned(),
        );
        watch.auto_revert = false;
    }
    Policy {
        basis,
        edits,
        required_approvals: required.min(5),
        allow_self_approval: allow_self,
        auto_apply,
        windows,
        guardrails,
        cost,
        cost_blocked: None,
        cost_unchecked: None,
        budget_slos: slos,
        watch,
        wait_for_capacity,
        layout,
        notes,
    }
}

/// Judges a revert that the watch after an apply recorded: when the rules say
/// `watch.auto_revert` (both the applied spec and the one it goes back to, and the panel
/// allows auto-apply), tierdeck applies it at once, without approvals, as an emergency.
/// Returns whether it does.
pub fn automatic_revert(policy: &mut Policy) -> bool {
    if !policy.watch.auto_revert {
        return false;
    }
    policy.required_approvals = 0;
    policy.notes.push(
        "An automatic revert: the watch after the apply saw a page-level SLO alert and the rules say `watch.auto_revert`, so tierdeck applies it at once, without approvals, as an emergency audited with the alert."
            .to_owned(),
    );
    true
}

/// The stricter of two limits: the lower, and a limit over none.
fn stricter(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `now` falls in one of `windows` (each in its own time zone; a window whose end is
/// before its start runs past midnight). No windows: any time.
pub fn in_change_window(windows: &[ChangeWindow], now: DateTime<Utc>) -> bool {
    if windows.is_empty() {
        return true;
    }
    windows.iter().any(|w| {
        let local = now.with_timezone(&w.timezone.tz());
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let today = Weekday::ALL[local.weekday().num_days_from_monday() as usize];
        let yesterday = Weekday::ALL[(local.weekday().num_days_from_monday() as usize + 6) % 7];
        let (start, end) = (w.start.0, w.end.0);
        if start <= end {
            w.days.contains(&today) && (start..end).contains(&minute)
        } else {
            (w.days.contains(&today) && minute >= start)
                || (w.days.contains(&yesterday) && minute < end)
        }
    })
}

/// The windows in words: `mon, tue 10:00–17:00 Asia/Seoul`.
pub fn windows_text(windows: &[ChangeWindow]) -> String {
    windows
        .iter()
        .map(|w| {
            let days: Vec<&str> = w.days.iter().map(|d| d.as_str()).collect();
            format!("{} {}–{} {}", days.join(", "), w.start, w.end, w.timezone)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{TimeOfDay, TimeZone, Weekday};

    fn spec(yaml_env: &str) -> EnvironmentSpec {
        let files = vec![
            crate::spec::SourceFile {
                path: "environments/prod/environment.yaml".into(),
                text: yaml_env.into(),
            },
            crate::spec::SourceFile {
                path: "environments/prod/slos.yaml".into(),
                text: "slos:\n  - name: availability\n    objective: 99.9\n    window_days: 30\n    errors: 'sum(rate(e[{{window}}]))'\n    total: 'sum(rate(t[{{window}}]))'\n".into(),
            },
        ];
        crate::spec::load_environment("prod", &files).expect("a valid spec")
    }

    /// `new` judged against `old` as applied, under `floor`.
    fn after(old: &EnvironmentSpec, new: &EnvironmentSpec, floor: &Floor) -> Policy {
        judge(
            Applied::Spec {
                commit: "abc",
                spec: old,
            },
            new,
            floor,
        )
    }

    const STRICT: &str = "environment:\n  name: prod\n  approvals: { required: 2, allow_self_approval: false }\n  auto_apply: false\n  change_windows:\n    - { days: [mon, tue, wed, thu, fri], start: \"10:00\", end: \"17:00\", timezone: Asia/Seoul }\n  guardrails: { min_instances: 2, max_instances: 8, require_multi_az: true }\n";
    const LOOSE: &str = "environment:\n  name: prod\n  approvals: { required: 0, allow_self_approval: true }\n  auto_apply: true\n  guardrails: { min_instances: 0, max_instances: 20, require_multi_az: false }\n";

    #[test]
    fn a_change_that_loosens_the_rules_is_judged_by_the_applied_ones() {
        let (old, new) = (spec(STRICT), spec(LOOSE));
        let p = after(&old, &new, &Floor::default());
        assert_eq!(
            p.edits,
            [
                "environment.approvals.required",
                "environment.approvals.allow_self_approval",
                "environment.auto_apply",
                "environment.change_windows",
                "environment.guardrails.min_instances",
                "environment.guardrails.max_instances",
                "environment.guardrails.require_multi_az",
            ]
        );
        assert!(p.is_policy_change());
        assert_eq!(p.required_approvals, 2);
        assert!(!p.allow_self_approval && !p.auto_apply);
        assert_eq!(p.guardrails, Guardrails::default());
        assert_eq!(
            p.windows,
            Windows(vec![old.environment.change_windows.clone()])
        );
        // A Saturday, noon in Seoul: outside the applied windows.
        assert!(!p.windows.contain("2026-11-28T03:00:00Z".parse().unwrap()));

        // Tightening is a policy change too, judged by the new, stricter rules.
        let p = after(&new, &old, &Floor::default());
        assert_eq!(p.required_approvals, 2);
        assert!(!p.auto_apply && !p.allow_self_approval);
        assert_eq!(p.guardrails, Guardrails::default());
    }

    #[test]
    fn a_policy_change_needs_one_approval_even_where_both_rules_say_none() {
        let old = spec(LOOSE);
        let new = spec(&LOOSE.replace("max_instances: 20", "max_instances: 10"));
        let floor = Floor {
            min_approvals: 0,
            allow_auto_apply: true,
        };
        let p = after(&old, &new, &floor);
        assert_eq!(p.edits, ["environment.guardrails.max_instances"]);
        assert_eq!((p.required_approvals, p.auto_apply), (1, false));
        assert_eq!(p.guardrails.max_instances, 10);
        // The same spec again is no policy change: its own rules hold.
        let p = after(&new, &new, &floor);
        assert!(!p.is_policy_change());
        assert_eq!((p.required_approvals, p.auto_apply), (0, true));
    }

    #[test]
    fn the_floor_holds_and_a_first_apply_is_never_automatic() {
        let new = spec(LOOSE);
        let p = judge(Applied::Never, &new, &Floor::default());
        assert!(p.is_first_apply() && !p.is_policy_change());
        assert_eq!((p.required_approvals, p.auto_apply), (1, false));
        let p = judge(
            Applied::Spec {
                commit: "abc",
                spec: &new,
            },
            &new,
            &Floor {
                min_approvals: 3,
                allow_auto_apply: false,
            },
        );
        assert_eq!((p.required_approvals, p.auto_apply), (3, false));
        assert!(p.notes.iter().any(|n| n.contains("floor")));
        let p = judge(
            Applied::Unreadable { commit: "abc" },
            &new,
            &Floor::default(),
        );
        assert!(p.is_policy_change());
        assert_eq!((p.required_approvals, p.auto_apply), (1, false));
    }

    #[test]
    fn windows_of_old_and_new_rules_must_both_be_open() {
        let tue_night = ChangeWindow {
            days: vec![Weekday::Tue],
            start: TimeOfDay(22 * 60),
            end: TimeOfDay(23 * 60),
            timezone: "Asia/Seoul".parse().unwrap(),
        };
        let old = spec(STRICT);
        let mut new = old.clone();
        new.environment.change_windows = vec![tue_night];
        let p = after(&old, &new, &Floor::default());
        assert_eq!(p.windows.0.len(), 2);
        // Tuesday 11:00 and 22:30 in Seoul: each in one set only.
        assert!(!p.windows.contain("2026-11-24T02:00:00Z".parse().unwrap()));
        assert!(!p.windows.contain("2026-11-24T13:30:00Z".parse().unwrap()));
        assert!(p.windows.text().contains(" and within tue 22:00–23:00"));
        assert!(Windows::default().contain("2026-11-24T13:30:00Z".parse().unwrap()));
    }

    /// Every SLO watches the apply: a change that adds one (whose query Prometheus may refuse),
    /// removes one, or rewrites one's query is a policy change, never applied by itself.
    #[test]
    fn adding_removing_or_rewriting_any_slo_is_a_policy_change() {
        let old = spec(LOOSE);
        let latency = Slo {
            name: "latency".into(),
            objective: 95.0,
            window_days: 30,
            indicator: crate::spec::Indicator::Good {
                good: "sum(rate(ok[{{window}}]))".into(),
                total: "sum(rate(t[{{window}}]))".into(),
            },
            loc: Default::default(),
        };
        let floor = Floor {
            min_approvals: 0,
            allow_auto_apply: true,
        };
        let mut added = old.clone();
        added.slos.push(latency.clone());
        let p = after(&old, &added, &floor);
        assert_eq!(p.edits, ["slos[latency]"]);
        assert_eq!((p.required_approvals, p.auto_apply), (1, false));
        // Removed.
        assert_eq!(after(&added, &old, &floor).edits, ["slos[latency]"]);
        // Its query rewritten (into one Prometheus refuses, say).
        let mut broken = added.clone();
        broken.slos[1].indicator = crate::spec::Indicator::Good {
            good: "sum(rate(ok[{{window}}]".into(),
            total: "sum(rate(t[{{window}}]))".into(),
        };
        assert_eq!(after(&added, &broken, &floor).edits, ["slos[latency]"]);
        // The availability query rewritten.
        let mut rewritten = added.clone();
        rewritten.slos[0].indicator = crate::spec::Indicator::Errors {
            errors: "vector(0)".into(),
            total: "sum(rate(t[{{window}}]))".into(),
        };
        assert_eq!(
            after(&added, &rewritten, &floor).edits,
            ["slos[availability]"]
        );
        // The same SLOs in another order or on other lines: no edit.
        let mut moved = added.clone();
        moved.slos.reverse();
        moved.slos[0].loc.line += 7;
        assert!(edits(&added, &moved).is_empty());
    }

    #[test]
    fn an_edited_availability_objective_is_a_policy_change_and_both_budgets_gate() {
        let old = spec(STRICT);
        let mut new = old.clone();
        new.slos[0].objective = 99.0;
        let p = after(&old, &new, &Floor::default());
        assert_eq!(p.edits, ["slos[availability]"]);
        assert_eq!(p.budget_slos.len(), 2);
        // Moving the SLO to another line is no edit.
        let mut moved = old.clone();
        moved.slos[0].loc.line += 3;
        assert!(edits(&old, &moved).is_empty());
    }

    #[test]
    fn windows_follow_their_time_zone_and_may_run_past_midnight() {
        let w = crate::spec::fixtures::business_hours();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert!(in_change_window(&w, at("2026-11-25T01:00:00Z"))); // Wed 10:00 Seoul
        assert!(!in_change_window(&w, at("2026-11-25T08:00:00Z"))); // Wed 17:00 Seoul
        assert!(!in_change_window(&w, at("2026-11-28T02:00:00Z"))); // Sat 11:00 Seoul
        assert!(in_change_window(&[], at("2026-11-28T02:00:00Z")));
        let night = vec![ChangeWindow {
            days: vec![Weekday::Fri],
            start: TimeOfDay(22 * 60),
            end: TimeOfDay(2 * 60),
            timezone: TimeZone::UTC,
        }];
        assert!(in_change_window(&night, at("2026-11-27T23:00:00Z"))); // Fri 23:00
        assert!(in_change_window(&night, at("2026-11-28T01:00:00Z"))); // Sat 01:00
        assert!(!in_change_window(&night, at("2026-11-29T01:00:00Z"))); // Sun 01:00
        assert_eq!(
            windows_text(&w),
            "mon, tue, wed, thu, fri 10:00–17:00 Asia/Seoul"
        );
    }
}
