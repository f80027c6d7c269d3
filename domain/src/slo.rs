//! SLO arithmetic (Google SRE Workbook, "Alerting on SLOs"): error ratios, the error budget in
//! events (what the SLO's `total` query counts: requests, for an HTTP service), burn rates and the multi-window alert rules. The numbers come from Prometheus; the
//! rules are here, pure.

use serde::{Deserialize, Serialize};

use crate::spec::{Indicator, Slo};

/// Windows whose burn rate is shown, shortest first.
pub const BURN_WINDOWS: [&str; 5] = ["5m", "30m", "1h", "6h", "3d"];

/// A multi-window alert rule: both windows must burn at least `factor` × the budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub severity: Severity,
    pub factor: f64,
    pub long: &'static str,
    pub short: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing burns fast enough to alert.
    Ok,
    Ticket,
    Page,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Ticket => "ticket",
            Severity::Page => "page",
        }
    }
}

/// Page at 14.4× over 1 h and 5 m, or 6× over 6 h and 30 m; ticket at 1× over 3 d and 6 h.
pub const ALERT_RULES: [AlertRule; 3] = [
    AlertRule {
        severity: Severity::Page,
        factor: 14.4,
        long: "1h",
        short: "5m",
    },
    AlertRule {
        severity: Severity::Page,
        factor: 6.0,
        long: "6h",
        short: "30m",
    },
    AlertRule {
        severity: Severity::Ticket,
        factor: 1.0,
        long: "3d",
        short: "6h",
    },
];

/// A Prometheus range for a number of days: `30d`.
pub fn days(n: u32) -> String {
    format!("{n}d")
}

/// Seconds in a Prometheus range like `5m`, `6h`, `3d`, `30d`.
pub fn range_secs(range: &str) -> Option<f64> {
    let (n, unit) = range.split_at(range.len().checked_sub(1)?);
    let n: f64 = n.parse().ok()?;
    let unit = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return None,
    };
    Some(n * unit)
}

/// The SLO's two queries for `window`: (bad events or good events, total events), each a rate
/// per second; `None` for an SLO CloudWatch counts (see [`crate::cloudwatch`]).
pub fn queries(indicator: &Indicator, window: &str) -> Option<(String, String)> {
    let w = |q: &str| q.replace("{{window}}", window);
    match indicator {
        Indicator::Errors { errors, total } => Some((w(errors), w(total))),
        Indicator::Good { good, total } => Some((w(good), w(total))),
        Indicator::LoadBalancer { .. } => None,
    }
}

/// One query whose value is the error ratio over `window`; `None` for an SLO CloudWatch
/// counts.
pub fn error_ratio_query(indicator: &Indicator, window: &str) -> Option<String> {
    let (a, total) = queries(indicator, window)?;
    Some(match indicator {
        Indicator::Good { .. } => format!("1 - (({a}) / ({total}))"),
        _ => format!("({a}) / ({total})"),
    })
}

/// The error ratio from the two rates of [`queries`] (for a load balancer's SLO: its bad
/// events and all events); `None` without traffic.
pub fn error_ratio(indicator: &Indicator, first: f64, total: f64) -> Option<f64> {
    if total <= 0.0 || !total.is_finite() || !first.is_finite() {
        return None;
    }
    let ratio = match indicator {
        Indicator::Good { .. } => 1.0 - first / total,
        Indicator::Errors { .. } | Indicator::LoadBalancer { .. } => first / total,
    };
    Some(ratio.clamp(0.0, 1.0))
}

/// The error budget over the SLO's window, counted in events: what the SLO's `total` query
/// counts (requests, for an HTTP service), the bad ones being its errors (or the events that
/// are not good).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Events in the window.
    pub total_events: f64,
    /// Bad events the objective allows.
    pub allowed_events: f64,
    /// Bad events so far.
    pub spent_events: f64,
    /// `allowed_events − spent_events` (negative when overspent).
    pub remaining_events: f64,
    /// `1 − error ratio / (1 − objective)`, as a percentage (negative when overspent).
    pub remaining_percent: f64,
}

/// The budget from the window's event rate (per second) and error ratio.
pub fn budget(objective_percent: f64, window_days: u32, total_rate: f64, ratio: f64) -> Budget {
    let total = total_rate * f64::from(window_days) * 86_400.0;
    let allowed_ratio = 1.0 - objective_percent / 100.0;
    let allowed = total * allowed_ratio;
    let spent = total * ratio;
    Budget {
        total_events: total,
        allowed_events: allowed,
        spent_events: spent,
        remaining_events: allowed - spent,
        remaining_percent: if allowed_ratio > 0.0 {
            (1.0 - ratio / allowed_ratio) * 100.0
        } else {
            0.0
        },
    }
}

/// The budget left (percent) for an error ratio over the SLO's window.
pub fn remaining_percent(objective_percent: f64, ratio: f64) -> f64 {
    let allowed = 1.0 - objective_percent / 100.0;
    if allowed > 0.0 {
        (1.0 - ratio / allowed) * 100.0
    } else {
        0.0
    }
}

/// Burn rate: the error ratio over a window in units of the budget's ratio.
pub fn burn_rate(objective_percent: f64, ratio: f64) -> f64 {
    let allowed = 1.0 - objective_percent / 100.0;
    if allowed > 0.0 {
        ratio / allowed
    } else {
        f64::INFINITY
    }
}

/// The burn rate over each of [`BURN_WINDOWS`], `None` where there was no traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Burn {
    pub window: String,
    pub rate: Option<f64>,
}

/// The most severe alert whose two windows both burn fast enough, and the rule that fired.
pub fn alert(burns: &[Burn]) -> (Severity, Option<AlertRule>) {
    let rate = |w: &str| {
        burns
            .iter()
            .find(|b| b.window == w)
            .and_then(|b| b.rate)
            .unwrap_or(0.0)
    };
    ALERT_RULES
        .iter()
        .filter(|r| rate(r.long) >= r.factor && rate(r.short) >= r.factor)
        // The first of the most severe rules that fired (`max_by_key` keeps the last).
        .rev()
        .max_by_key(|r| r.severity)
        .map(|r| (r.severity, Some(*r)))
        .unwrap_or((Severity::Ok, None))
}

/// What an SLO's badge says, on every page, card and in the API: the one reading of its
/// figures a reader acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloState {
    /// No events in the window: nothing to judge (a quiet service, or a query that counts
    /// nothing).
    NoData,
    /// Budget left and no alert burning.
    Ok,
    /// A page or ticket alert fires: the budget goes faster than the window allows.
    Burning,
    /// Nothing left of the budget (or less than nothing).
    Spent,
}

impl SloState {
    /// The badge's word: `spent`, `burning`, `ok`, `no data`.
    pub fn label(self) -> &'static str {
        match self {
            SloState::NoData => "no data",
            SloState::Ok => "ok",
            SloState::Burning => "burning",
            SloState::Spent => "spent",
        }
    }

    /// The stylesheet's class for the badge: `slo-no-data`, `slo-ok`, …
    pub fn class(self) -> &'static str {
        match self {
            SloState::NoData => "slo-no-data",
            SloState::Ok => "slo-ok",
            SloState::Burning => "slo-burning",
            SloState::Spent => "slo-spent",
        }
    }

    /// The state of several SLOs together (an environment's card): the worst of them, spent
    /// before burning before ok; no data only when none has any.
    pub fn worst(states: impl IntoIterator<Item = SloState>) -> Option<SloState> {
        states.into_iter().max()
    }
}

/// The badge of an SLO from its figures: **spent** when the budget left is zero or less,
/// **burning** when a page or ticket alert fires, **no data** without events in the window,
/// **ok** otherwise. A spent budget is never shown as ok, whatever the burn rate is now.
pub fn state(budget: Option<&Budget>, alert: Severity) -> SloState {
    match (budget, alert) {
        (Some(b), _) if b.remaining_events <= 0.0 => SloState::Spent,
        (_, Severity::Page | Severity::Ticket) => SloState::Burning,
        (None, Severity::Ok) => SloState::NoData,
        (Some(_), Severity::Ok) => SloState::Ok,
    }
}

/// One SLO as its page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    pub name: String,
    /// The spec's `objective`: the percentage of good events it aims at.
    pub objective_percent: f64,
    pub window_days: u32,
    /// `1 − error ratio` over the window, as a percentage; `None` without traffic.
    pub sli_percent: Option<f64>,
    pub error_ratio: Option<f64>,
    pub budget: Option<Budget>,
    pub burns: Vec<Burn>,
    pub alert: Severity,
    /// The badge: see [`state`].
    pub state: SloState,
    /// The rule that fired, in words: `14.4× over 1h and 5m`.
    pub alert_rule: Option<String>,
    /// The budget left (percent) over the past window, a point a day: (Unix seconds, percent).
    #[serde(default)]
    pub budget_history: Vec<(i64, f64)>,
    /// Why it could not be evaluated (Prometheus refused or could not answer one of its
    /// queries): such an SLO counts as failing, at page level, for the watch after an apply and
    /// the error-budget gate. `None`: evaluated.
    #[serde(default)]
    pub error: Option<String>,
}

/// An SLO that could not be evaluated, for `reason`: no numbers, and failing (a page-level
/// alert) until it can be read, so that a query nobody can read never hides a burning budget.
pub fn failed(slo: &Slo, reason: String) -> SloStatus {
    SloStatus {
        name: slo.name.clone(),
        objective_percent: slo.objective,
        window_days: slo.window_days,
        sli_percent: None,
        error_ratio: None,
        budget: None,
        burns: Vec::new(),
        alert: Severity::Page,
        state: state(None, Severity::Page),
        alert_rule: None,
        budget_history: Vec::new(),
        error: Some(reason),
    }
}

/// Puts an SLO's numbers together: the window's total rate and error ratio, and the error
/// ratio over each burn window (in [`BURN_WINDOWS`] order).
pub fn status(
    slo: &Slo,
    window_total_rate: f64,
    window_ratio: Option<f64>,
    burn_ratios: &[Option<f64>],
) -> SloStatus {
    let burns: Vec<Burn> = BURN_WINDOWS
        .iter()
        .zip(burn_ratios)
        .map(|(w, r)| Burn {
            window: (*w).to_owned(),
            rate: r.map(|r| burn_rate(slo.objective, r)),
        })
        .collect();
    let (severity, rule) = alert(&burns);
    let budget = window_ratio.map(|r| budget(slo.objective, slo.window_days, window_total_rate, r));
    SloStatus {
        name: slo.name.clone(),
        objective_percent: slo.objective,
        window_days: slo.window_days,
        sli_percent: window_ratio.map(|r| (1.0 - r) * 100.0),
        error_ratio: window_ratio,
        budget,
        burns,
        alert: severity,
        state: state(budget.as_ref(), severity),
        alert_rule: rule.map(|r| format!("{}× over {} and {}", r.factor, r.long, r.short)),
        budget_history: Vec::new(),
        error: None,
    }
}

/// An environment's SLOs as the SLO page and `GET /api/v1/environments/{env}/slo` show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloReport {
    pub environment: String,
    /// Unix time (seconds) the numbers are for.
    pub at_unix: i64,
    /// The zone the environment's times are shown in (see `time::environment_zone`).
    #[serde(default = "crate::time::utc_name")]
    pub time_zone: String,
    pub slos: Vec<SloStatus>,
    /// Why there are no numbers (Prometheus down, not configured, a query refused).
    pub error: Option<String>,
    /// Prometheus queries this report needed (answers cached for a short time are reused).
    pub queries: usize,
}

/// A YAML single-quoted scalar.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A number without float noise: `0.001`, `14.4`.
fn plain(x: f64) -> String {
    let t = format!("{x:.9}");
    t.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Prometheus recording rules (the error ratio of each SLO over each burn window and its own
/// window) and multi-window burn-rate alerting rules for one environment, as a rules file.
pub fn prometheus_rules(environment: &str, slos: &[Slo]) -> String {
    let mut out = format!(
        "# SLO recording and alerting rules of {environment}, made by `tierdeck slo rules {environment}`.\n\
         # Page: {p1}× the budget over 1h and 5m, or {p2}× over 6h and 30m; ticket: {t}× over 3d and 6h.\n\
         groups:\n  - name: tierdeck-slo-{environment}\n    rules:\n",
        p1 = plain(ALERT_RULES[0].factor),
        p2 = plain(ALERT_RULES[1].factor),
        t = plain(ALERT_RULES[2].factor),
    );
    // An SLO CloudWatch counts has no Prometheus series to record.
    for s in slos.iter().filter(|s| s.indicator.is_promql()) {
        let labels = format!(
            "        labels:\n          environment: {}\n          slo: {}\n",
            quoted(environment),
            quoted(&s.name)
        );
        let mut windows: Vec<String> = BURN_WINDOWS.iter().map(|w| (*w).to_owned()).collect();
        windows.push(days(s.window_days));
        for w in &windows {
            out.push_str(&format!(
                "      - record: slo:error_ratio:rate{w}\n        expr: {}\n{labels}",
                quoted(&error_ratio_query(&s.indicator, w).expect("a PromQL SLO"))
            ));
        }
        let allowed = plain((100.0 - s.objective) / 100.0);
        let selector = format!("{{environment=\"{environment}\",slo=\"{}\"}}", s.name);
        for r in ALERT_RULES {
            let expr = format!(
                "slo:error_ratio:rate{long}{selector} > ({f} * {allowed}) and slo:error_ratio:rate{short}{selector} > ({f} * {allowed})",
                long = r.long,
                short = r.short,
                f = plain(r.factor),
            );
            out.push_str(&format!(
                "      - alert: SLOErrorBudgetBurn\n        expr: {}\n        labels:\n          severity: {}\n          windows: {}\n          environment: {}\n          slo: {}\n        annotations:\n          summary: {}\n",
                quoted(&expr),
                r.severity.as_str(),
                quoted(&format!("{}/{}", r.long, r.short)),
                quoted(environment),
                quoted(&s.name),
                quoted(&format!(
                    "{environment} {}: the error budget ({} %) burns {}× over {} and {}",
                    s.name,
                    plain(s.objective),
                    plain(r.factor),
                    r.long,
                    r.short
                )),
            ));
        }
    }
    out
}

/// What the watch after an apply reads from the SLOs.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchReading {
    /// The highest burn rate that both windows of a page rule reach: the figure the rules'
    /// 14.4× and 6× are compared with (`None` without traffic).
    pub burn: Option<f64>,
    /// The highest burn over the shortest window (5 m): how fast the budget burns now.
    pub burn_now: Option<f64>,
    /// The first page alert that fires, in words (`availability: 14.4× over 1h and 5m`).
    pub alert: Option<String>,
}

/// How much faster than before the apply the budget must burn now for the watch to blame the
/// change for a page alert that was already firing: 20 % more.
pub const WORSE_THAN_BEFORE: f64 = 1.2;

/// The burn rates and page alerts of the SLOs that were evaluated (those that could not be are
/// for [`watch_outcome`]).
pub fn watch_reading(statuses: &[SloStatus]) -> WatchReading {
    let max = |a: Option<f64>, b: f64| Some(a.map_or(b, |a: f64| a.max(b)));
    let mut burn = None;
    let mut burn_now = None;
    let statuses: Vec<&SloStatus> = statuses.iter().filter(|s| s.error.is_none()).collect();
    for s in &statuses {
        let rate = |w: &str| s.burns.iter().find(|b| b.window == w).and_then(|b| b.rate);
        for r in ALERT_RULES.iter().filter(|r| r.severity == Severity::Page) {
            if let (Some(long), Some(short)) = (rate(r.long), rate(r.short)) {
                burn = max(burn, long.min(short));
            }
        }
        if let Some(now) = rate(BURN_WINDOWS[0]) {
            burn_now = max(burn_now, now);
        }
    }
    let alert = statuses
        .iter()
        .find(|s| s.alert == Severity::Page)
        .map(|s| match &s.alert_rule {
            Some(rule) => format!("{}: {rule}", s.name),
            None => format!("{}: a page alert", s.name),
        });
    WatchReading {
        burn,
        burn_now,
        alert,
    }
}

/// What the watch after a change reads from `statuses`, where `introduced` names the SLOs the
/// change brings (not in the spec applied before it). An SLO that cannot be evaluated counts
/// as a page alert when the change brought it (fail closed: a change cannot blind its own
/// watch with a query Prometheus refuses); one of the applied spec's own is a fault that was
/// there before the change, so the reading is refused with it (the watch is not clean) rather
/// than blamed on the change.
pub fn watch_outcome(
    statuses: &[SloStatus],
    introduced: &[String],
) -> Result<WatchReading, String> {
    let mut reading = watch_reading(statuses);
    let failing = |ours: bool| {
        statuses
            .iter()
            .filter(|s| introduced.contains(&s.name) == ours)
            .find_map(|s| s.error.as_ref().map(|e| (s, e)))
    };
    if reading.alert.is_none() {
        if let Some((s, e)) = failing(true) {
            reading.alert = Some(format!("{}: it cannot be evaluated ({e})", s.name));
        } else if let Some((s, e)) = failing(false) {
            return Err(format!(
                "the SLO {} of the spec applied before cannot be evaluated ({e}), which does not count against this change",
                s.name
            ));
        }
    }
    Ok(reading)
}

/// Whether a page alert the watch sees is the change's doing: it was not firing when the apply
/// started (`before`: the 5-minute burn then, if one was), or the budget burns
/// [`WORSE_THAN_BEFORE`] times faster now.
pub fn alert_is_new(reading: &WatchReading, before: Option<f64>) -> bool {
    match (reading.alert.is_some(), before) {
        (false, _) => false,
        (true, None) => true,
        (true, Some(b)) => reading.burn_now.unwrap_or(0.0) > b * WORSE_THAN_BEFORE,
    }
}

/// Whether the availability budget is used up (the SRE error-budget policy's trigger).
pub fn budget_exhausted(statuses: &[SloStatus]) -> Option<&SloStatus> {
    statuses
        .iter()
        .find(|s| s.name == "availability" && s.budget.is_some_and(|b| b.remaining_events <= 0.0))
}

/// An availability SLO that cannot be evaluated: the error-budget gate counts it as spent (it
/// fails closed), with the reason.
pub fn budget_unreadable(statuses: &[SloStatus]) -> Option<(&SloStatus, &str)> {
    statuses
        .iter()
        .filter(|s| s.name == "availability")
        .find_map(|s| s.error.as_deref().map(|e| (s, e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Loc;

    fn availability() -> Slo {
        Slo {
            name: "availability".into(),
            objective: 99.9,
            window_days: 30,
            indicator: Indicator::Errors {
                errors: "sum(rate(e[{{window}}]))".into(),
                total: "sum(rate(t[{{window}}]))".into(),
            },
            loc: Loc::default(),
        }
    }

    #[test]
    fn the_seed_figures_hold() {
        // 100 requests/s for 30 days, 99.9 %: 259,200,000 requests, 259,200 may fail.
        let b = budget(99.9, 30, 100.0, 0.0);
        assert!((b.total_events - 259_200_000.0).abs() < 1e-3);
        assert!((b.allowed_events - 259_200.0).abs() < 1e-3);
        let b = budget(99.9, 30, 200.0, 0.0);
        assert!((b.allowed_events - 518_400.0).abs() < 1e-3);
        // 144,000 failed of 259,200,000: 55.56 % of the budget spent.
        let ratio = 144_000.0 / 259_200_000.0;
        let b = budget(99.9, 30, 100.0, ratio);
        assert!((b.spent_events - 144_000.0).abs() < 1e-3);
        assert!((b.remaining_events - 115_200.0).abs() < 1e-3);
        assert!((b.remaining_percent - 44.444).abs() < 1e-2);
    }

    #[test]
    fn queries_fill_in_the_window_and_good_indicators_count_the_rest() {
        let slo = availability();
        assert_eq!(
            error_ratio_query(&slo.indicator, "5m").unwrap(),
            "(sum(rate(e[5m]))) / (sum(rate(t[5m])))"
        );
        let good = Indicator::Good {
            good: "g[{{window}}]".into(),
            total: "t[{{window}}]".into(),
        };
        assert_eq!(
            error_ratio_query(&good, "1h").unwrap(),
            "1 - ((g[1h]) / (t[1h]))"
        );
        assert!((error_ratio(&good, 95.0, 100.0).unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(error_ratio(&good, 1.0, 0.0), None);
        assert_eq!(range_secs("30d"), Some(2_592_000.0));
        assert_eq!(range_secs("5m"), Some(300.0));
        assert_eq!(range_secs("x"), None);
    }

    #[test]
    fn alerts_need_both_windows() {
        let burns = |rates: [f64; 5]| -> Vec<Burn> {
            BURN_WINDOWS
                .iter()
                .zip(rates)
                .map(|(w, r)| Burn {
                    window: (*w).into(),
                    rate: Some(r),
                })
                .collect()
        };
        // 5m, 30m, 1h, 6h, 3d
        assert_eq!(
            alert(&burns([20.0, 20.0, 15.0, 2.0, 0.5])).0,
            Severity::Page
        );
        assert_eq!(
            alert(&burns([1.0, 20.0, 15.0, 2.0, 0.5])).0,
            Severity::Ok,
            "5m calm"
        );
        assert_eq!(alert(&burns([0.0, 7.0, 3.0, 6.5, 1.5])).0, Severity::Page);
        assert_eq!(alert(&burns([0.0, 0.0, 0.0, 1.2, 1.1])).0, Severity::Ticket);
        assert_eq!(alert(&burns([0.0; 5])).0, Severity::Ok);
        let s = status(&availability(), 100.0, Some(0.0), &[Some(0.02); 5]);
        assert_eq!(s.alert, Severity::Page);
        assert_eq!(s.alert_rule.as_deref(), Some("14.4× over 1h and 5m"));
        assert!((s.burns[0].rate.unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(s.sli_percent, Some(100.0));
    }

    #[test]
    fn rules_name_every_window_and_quote_the_queries() {
        let text = prometheus_rules("prod", &[availability()]);
        assert!(text.contains("      - record: slo:error_ratio:rate5m\n        expr: '(sum(rate(e[5m]))) / (sum(rate(t[5m])))'"), "{text}");
        assert!(text.contains("slo:error_ratio:rate30d"));
        assert!(text.contains("> (14.4 * 0.001) and slo:error_ratio:rate5m{environment=\"prod\",slo=\"availability\"} > (14.4 * 0.001)"), "{text}");
        assert_eq!(text.matches("- alert:").count(), 3);
        assert_eq!(quoted("it's"), "'it''s'");
    }

    #[test]
    fn only_a_spent_availability_budget_stops_applies() {
        let spent = status(&availability(), 100.0, Some(0.002), &[Some(0.0); 5]);
        assert!(spent.budget.unwrap().remaining_events < 0.0);
        assert!(budget_exhausted(std::slice::from_ref(&spent)).is_some());
        let mut latency = spent.clone();
        latency.name = "latency-400ms".into();
        assert!(budget_exhausted(&[latency]).is_none());
        let fine = status(&availability(), 100.0, Some(0.0005), &[Some(0.0); 5]);
        assert!(budget_exhausted(&[fine]).is_none());
    }

    /// A change cannot blind its own watch: an SLO it brings whose query Prometheus refuses is
    /// a page alert; one the applied spec had before is a fault the change is not blamed for,
    /// and the watch is not clean either. The gate counts an unreadable availability SLO.
    #[test]
    fn an_slo_that_cannot_be_evaluated_counts_as_failing() {
        let calm = status(&availability(), 100.0, Some(0.0), &[Some(0.0004); 5]);
        let mut latency = availability();
        latency.name = "latency".into();
        let broken = failed(
            &latency,
            "Prometheus refused the query `x`: bad_data: parse error".into(),
        );
        let statuses = [calm.clone(), broken.clone()];
        let r = watch_outcome(&statuses, &["latency".to_owned()]).unwrap();
        assert_eq!(
            r.alert.as_deref(),
            Some("latency: it cannot be evaluated (Prometheus refused the query `x`: bad_data: parse error)")
        );
        assert!(alert_is_new(&r, None), "the change's doing");
        assert!(
            (r.burn.unwrap() - 0.4).abs() < 1e-9,
            "the others still count"
        );
        let e = watch_outcome(&statuses, &[]).unwrap_err();
        assert!(
            e.starts_with("the SLO latency of the spec applied before cannot be evaluated"),
            "{e}"
        );
        assert_eq!(
            watch_outcome(std::slice::from_ref(&calm), &[])
                .unwrap()
                .alert,
            None
        );
        // The gate: an unreadable availability SLO, not another one.
        assert!(budget_unreadable(&statuses).is_none());
        let unread = failed(&availability(), "no answer".into());
        assert_eq!(
            budget_unreadable(std::slice::from_ref(&unread)).map(|(s, e)| (s.name.as_str(), e)),
            Some(("availability", "no answer"))
        );
        assert_eq!(unread.alert, Severity::Page);
    }

    #[test]
    fn the_badge_says_spent_burning_ok_or_no_data() {
        let b = |remaining_events: f64| Budget {
            total_events: 1.0,
            allowed_events: 1.0,
            spent_events: 1.0 - remaining_events,
            remaining_events,
            remaining_percent: remaining_events * 100.0,
        };
        let cases = [
            (Some(b(-144_050.0)), Severity::Ok, SloState::Spent),
            (Some(b(0.0)), Severity::Ok, SloState::Spent),
            (Some(b(-1.0)), Severity::Page, SloState::Spent),
            (Some(b(0.5)), Severity::Page, SloState::Burning),
            (Some(b(0.5)), Severity::Ticket, SloState::Burning),
            (Some(b(0.5)), Severity::Ok, SloState::Ok),
            (None, Severity::Ok, SloState::NoData),
            (None, Severity::Page, SloState::Burning),
        ];
        for (budget, alert, want) in cases {
            assert_eq!(state(budget.as_ref(), alert), want, "{budget:?} {alert:?}");
        }
        // Staging's availability of the demo: 11 % overspent, nothing burning now.
        let staging = status(&availability(), 100.0, Some(0.00111), &[Some(0.0); 5]);
        assert_eq!(
            (staging.alert, staging.state),
            (Severity::Ok, SloState::Spent)
        );
        let quiet = status(&availability(), 0.0, None, &[None; 5]);
        assert_eq!(quiet.state, SloState::NoData);
        assert_eq!(
            [
                SloState::Spent,
                SloState::Burning,
                SloState::Ok,
                SloState::NoData
            ]
            .map(SloState::label),
            ["spent", "burning", "ok", "no data"]
        );
        assert_eq!(
            SloState::worst([
                SloState::Ok,
                SloState::NoData,
                SloState::Spent,
                SloState::Burning
            ]),
            Some(SloState::Spent)
        );
        assert_eq!(
            SloState::worst([SloState::NoData, SloState::Ok]),
            Some(SloState::Ok)
        );
        assert_eq!(SloState::worst([]), None);
    }

    #[test]
    fn the_watch_reads_the_page_rules_burn_and_alert() {
        // 5m, 30m, 1h, 6h, 3d error ratios for a 99.9 % SLO: 20×, 2×, 15×, 1×, 0.5×.
        let paging = status(
            &availability(),
            100.0,
            Some(0.0),
            &[
                Some(0.02),
                Some(0.002),
                Some(0.015),
                Some(0.001),
                Some(0.0005),
            ],
        );
        let r = watch_reading(std::slice::from_ref(&paging));
        // 1h and 5m both reach 15× (the lower of 15 and 20); 6h and 30m only 1×.
        assert!((r.burn.unwrap() - 15.0).abs() < 1e-9, "{r:?}");
        assert!((r.burn_now.unwrap() - 20.0).abs() < 1e-9, "{r:?}");
        assert_eq!(
            r.alert.as_deref(),
            Some("availability: 14.4× over 1h and 5m")
        );
        // Not firing before: the change's doing. Firing before at 20× over 5 m: only if the
        // budget now burns more than 24× over 5 m.
        assert!(alert_is_new(&r, None));
        assert!(!alert_is_new(&r, Some(20.0)));
        assert!(alert_is_new(&r, Some(16.0)));
        let calm = status(&availability(), 100.0, Some(0.0), &[Some(0.0004); 5]);
        let r = watch_reading(&[calm]);
        assert!((r.burn.unwrap() - 0.4).abs() < 1e-9);
        assert_eq!(r.alert, None);
        assert!(!alert_is_new(&r, None));
        let quiet = status(&availability(), 0.0, None, &[None; 5]);
        let r = watch_reading(&[quiet]);
        assert_eq!((r.burn, r.burn_now, r.alert), (None, None, None));
    }
}
