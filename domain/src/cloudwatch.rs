//! CloudWatch: the load balancer and database metrics the Monitoring page draws, the sums an
//! SLO counted from a load balancer needs, and the rules of `GetMetricData` they keep to (at
//! most 500 queries and 100,800 datapoints a call; periods CloudWatch still holds for data of
//! that age). A period without a datapoint is a gap: never a zero, never a good minute.

use serde::{Deserialize, Serialize};

use crate::monitoring::{Chart, Unit};
use crate::slo::{self, SloStatus, BURN_WINDOWS};
use crate::spec::{Indicator, Slo};

/// Queries `GetMetricData` takes in one call.
pub const MAX_QUERIES_PER_CALL: usize = 500;
/// Datapoints `GetMetricData` returns for one call, over all its queries.
pub const MAX_DATAPOINTS_PER_CALL: usize = 100_800;

/// One `MetricStat` query: a metric, its dimensions, a statistic (`Sum`, `Average`, `p95`,
/// `PR(:0.4)`) and a period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MetricQuery {
    pub namespace: String,
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub stat: String,
    /// Seconds.
    pub period: i64,
}

/// A series as `GetMetricData` answers it: (bucket start in Unix seconds, value), ascending,
/// only the buckets with data.
pub type Series = Vec<(i64, f64)>;

/// The finest period CloudWatch keeps for data that began `age` seconds ago: one minute for
/// up to 15 days, five minutes up to 63 days, an hour beyond.
pub fn grain(age: i64) -> i64 {
    if age <= 15 * 86_400 {
        60
    } else if age <= 63 * 86_400 {
        300
    } else {
        3_600
    }
}

/// The period of a chart that wants a point every `step` seconds from `start` (`now` being
/// the time of the request): `step` rounded up to a multiple of what CloudWatch keeps at that
/// age.
pub fn period_for(step: i64, start: i64, now: i64) -> i64 {
    let g = grain(now - start);
    let p = step.max(g);
    (p + g - 1) / g * g
}

/// The queries of `queries` per call: at most [`MAX_QUERIES_PER_CALL`], and no more than
/// [`MAX_DATAPOINTS_PER_CALL`] datapoints when each returns up to `points_each`.
pub fn calls_for(queries: usize, points_each: usize) -> Vec<std::ops::Range<usize>> {
    let per_call = (MAX_DATAPOINTS_PER_CALL / points_each.max(1)).clamp(1, MAX_QUERIES_PER_CALL);
    (0..queries)
        .step_by(per_call)
        .map(|s| s..(s + per_call).min(queries))
        .collect()
}

/// How a chart shows the statistic: as it is, or a sum per period as a rate per second (a
/// request count reads the same at every range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shown {
    AsIs,
    PerSecond,
}

/// A chart to draw from one query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CwPanel {
    pub title: String,
    pub unit: Unit,
    pub query: MetricQuery,
    pub shown: Shown,
    /// Drawn only when CloudWatch has data for it (`ReplicaLag`: a read replica's alone).
    pub only_with_data: bool,
}

/// A load balancer and its target groups as CloudWatch names them (the part of the ARN after
/// `loadbalancer/`: `app/NAME/ID`; after the account: `targetgroup/NAME/ID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbDimensions {
    pub load_balancer: String,
    /// (target group name, its dimension).
    pub target_groups: Vec<(String, String)>,
}

/// CloudWatch's dimension value of a load balancer from its ARN: `app/NAME/ID`.
pub fn lb_dimension(arn: &str) -> Option<&str> {
    arn.split_once(":loadbalancer/").map(|(_, d)| d)
}

/// CloudWatch's dimension value of a target group from its ARN: `targetgroup/NAME/ID`.
pub fn tg_dimension(arn: &str) -> Option<&str> {
    arn.find("targetgroup/").map(|i| &arn[i..])
}

fn q(namespace: &str, metric: &str, dims: &[(&str, &str)], stat: &str, period: i64) -> MetricQuery {
    MetricQuery {
        namespace: namespace.into(),
        metric: metric.into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        stat: stat.into(),
        period,
    }
}

const ALB: &str = "AWS/ApplicationELB";
const RDS: &str = "AWS/RDS";

fn panel(title: &str, unit: Unit, query: MetricQuery, shown: Shown) -> CwPanel {
    CwPanel {
        title: title.into(),
        unit,
        query,
        shown,
        only_with_data: false,
    }
}

/// A load balancer's charts: requests, response time (average, p95, p99), target and load
/// balancer 5XX answers, and healthy and unhealthy hosts per target group.
pub fn lb_panels(lb: &LbDimensions, period: i64) -> Vec<CwPanel> {
    let d = [("LoadBalancer", lb.load_balancer.as_str())];
    let mut out = vec![
        panel(
            "Requests",
            Unit::PerSecond,
            q(ALB, "RequestCount", &d, "Sum", period),
            Shown::PerSecond,
        ),
        panel(
            "Response time (average)",
            Unit::Seconds,
            q(ALB, "TargetResponseTime", &d, "Average", period),
            Shown::AsIs,
        ),
        panel(
            "Response time p95",
            Unit::Seconds,
            q(ALB, "TargetResponseTime", &d, "p95", period),
            Shown::AsIs,
        ),
        panel(
            "Response time p99",
            Unit::Seconds,
            q(ALB, "TargetResponseTime", &d, "p99", period),
            Shown::AsIs,
        ),
        panel(
            "Target 5XX answers",
            Unit::PerSecond,
            q(ALB, "HTTPCode_Target_5XX_Count", &d, "Sum", period),
            Shown::PerSecond,
        ),
        panel(
            "Load balancer 5XX answers",
            Unit::PerSecond,
            q(ALB, "HTTPCode_ELB_5XX_Count", &d, "Sum", period),
            Shown::PerSecond,
        ),
    ];
    for (name, tg) in &lb.target_groups {
        let d = [
            ("TargetGroup", tg.as_str()),
            ("LoadBalancer", lb.load_balancer.as_str()),
        ];
        out.push(panel(
            &format!("Healthy hosts ({name})"),
            Unit::Count,
            q(ALB, "HealthyHostCount", &d, "Average", period),
            Shown::AsIs,
        ));
        out.push(panel(
            &format!("Unhealthy hosts ({name})"),
            Unit::Count,
            q(ALB, "UnHealthyHostCount", &d, "Average", period),
            Shown::AsIs,
        ));
    }
    out
}

/// A database's charts: CPU, connections, free storage and memory, read and write latency and
/// IOPS, and replica lag (drawn only for a read replica, the one that has it).
pub fn db_panels(identifier: &str, period: i64) -> Vec<CwPanel> {
    let d = [("DBInstanceIdentifier", identifier)];
    let avg = |title: &str, unit: Unit, metric: &str| {
        panel(
            title,
            unit,
            q(RDS, metric, &d, "Average", period),
            Shown::AsIs,
        )
    };
    vec![
        avg("CPU", Unit::Percent, "CPUUtilization"),
        avg("Connections", Unit::Count, "DatabaseConnections"),
        avg("Free storage", Unit::Bytes, "FreeStorageSpace"),
        avg("Freeable memory", Unit::Bytes, "FreeableMemory"),
        avg("Read latency", Unit::Seconds, "ReadLatency"),
        avg("Write latency", Unit::Seconds, "WriteLatency"),
        avg("Read IOPS", Unit::PerSecond, "ReadIOPS"),
        avg("Write IOPS", Unit::PerSecond, "WriteIOPS"),
        CwPanel {
            only_with_data: true,
            ..avg("Replica lag", Unit::Seconds, "ReplicaLag")
        },
    ]
}

/// A chart from its panel and CloudWatch's answer (or the reason there is none). `None`: a
/// chart drawn only with data that has none.
pub fn chart(p: &CwPanel, answer: Result<&Series, &str>) -> Option<Chart> {
    let (points, error) = match answer {
        Ok(series) => {
            if p.only_with_data && series.is_empty() {
                return None;
            }
            let points = series
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|&(t, v)| match p.shown {
                    Shown::AsIs => (t, v),
                    Shown::PerSecond => (t, v / p.query.period as f64),
                })
                .collect();
            (points, None)
        }
        Err(e) => {
            if p.only_with_data {
                return None;
            }
            (Vec::new(), Some(e.to_owned()))
        }
    };
    Some(Chart {
        title: p.title.clone(),
        unit: p.unit,
        points,
        error,
        period: Some(p.query.period),
    })
}

/// The charts of one load balancer or database on the Monitoring page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceCharts {
    /// The load balancer's name (as the spec gives it) or the database's identifier.
    pub name: String,
    pub tier: Option<String>,
    pub charts: Vec<Chart>,
    /// Why there are no charts (the load balancer could not be found or read).
    pub error: Option<String>,
}

/// One target of a target group as `DescribeTargetHealth` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The instance id (or IP address).
    pub id: String,
    pub port: Option<i32>,
    pub zone: Option<String>,
    /// `healthy`, `unhealthy`, `initial`, `draining`, `unused`, `unavailable`.
    pub state: String,
    /// `Target.FailedHealthChecks`, `Target.NotInUse`, …
    pub reason: Option<String>,
    pub description: Option<String>,
}

impl Target {
    pub fn healthy(&self) -> bool {
        self.state == "healthy"
    }
}

/// A target group's targets and their health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupHealth {
    pub target_group: String,
    pub load_balancer: String,
    pub tier: Option<String>,
    pub targets: Vec<Target>,
    /// Why it could not be read (with the IAM action when access was denied).
    pub error: Option<String>,
}

impl TargetGroupHealth {
    pub fn healthy(&self) -> usize {
        self.targets.iter().filter(|t| t.healthy()).count()
    }

    /// Targets that take no traffic and are not on their way in or out: `unhealthy`,
    /// `unavailable`, and `unused` (a stopped instance is `unused` with
    /// `Target.InvalidState`).
    pub fn unhealthy(&self) -> Vec<&Target> {
        self.targets
            .iter()
            .filter(|t| matches!(t.state.as_str(), "unhealthy" | "unavailable" | "unused"))
            .collect()
    }
}

/// A group's instances in service beside the healthy targets of the target groups fronting
/// its tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTargets {
    pub group: String,
    pub tier: String,
    pub in_service: usize,
    /// `None`: no target group of `monitoring.load_balancers` fronts the tier.
    pub healthy_targets: Option<usize>,
}

/// The environment page's target health: each group beside its healthy targets, and every
/// target group's targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetHealthReport {
    pub groups: Vec<GroupTargets>,
    pub target_groups: Vec<TargetGroupHealth>,
    /// Why the load balancers or the groups could not be read.
    pub error: Option<String>,
}

/// An environment's targets that take no traffic, for the overview's card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnhealthyTargets {
    pub environment: String,
    /// (target group, target).
    pub targets: Vec<(String, Target)>,
    /// Why the load balancers or target health could not be read.
    pub error: Option<String>,
}

/// Healthy targets (each instance once) of the target groups whose load balancer fronts
/// `tier`; `None` when none does.
pub fn healthy_in_tier(tier: &str, groups: &[TargetGroupHealth]) -> Option<usize> {
    let fronting: Vec<&TargetGroupHealth> = groups
        .iter()
        .filter(|g| g.tier.as_deref() == Some(tier))
        .collect();
    if fronting.is_empty() {
        return None;
    }
    let mut ids: Vec<&str> = fronting
        .iter()
        .flat_map(|g| {
            g.targets
                .iter()
                .filter(|t| t.healthy())
                .map(|t| t.id.as_str())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Some(ids.len())
}

/// One entry of Prometheus's `http_sd_config` answer: targets and the labels they share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeTargets {
    pub targets: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// An instance in service to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeInstance<'a> {
    pub group: &'a str,
    pub tier: &'a str,
    pub id: &'a str,
    pub zone: Option<&'a str>,
    pub address: &'a str,
}

/// The `http_sd` answer: each instance its own entry (zone and instance id are its own
/// labels), `address:port`, labelled with the environment, tier, group, zone and instance
/// id; ordered by group then instance.
pub fn scrape_targets(
    environment: &str,
    port: u16,
    instances: &[ScrapeInstance<'_>],
) -> Vec<ScrapeTargets> {
    let mut sorted: Vec<&ScrapeInstance> = instances.iter().collect();
    sorted.sort_by(|a, b| (a.group, a.id).cmp(&(b.group, b.id)));
    sorted
        .into_iter()
        .map(|i| {
            let mut labels = std::collections::BTreeMap::new();
            labels.insert("environment".to_owned(), environment.to_owned());
            labels.insert("tier".to_owned(), i.tier.to_owned());
            labels.insert("group".to_owned(), i.group.to_owned());
            if let Some(z) = i.zone {
                labels.insert("zone".to_owned(), z.to_owned());
            }
            labels.insert("instance_id".to_owned(), i.id.to_owned());
            ScrapeTargets {
                targets: vec![format!("{}:{port}", i.address)],
                labels,
            }
        })
        .collect()
}

/// The seconds of each of [`BURN_WINDOWS`].
fn burn_secs() -> Vec<i64> {
    BURN_WINDOWS
        .iter()
        .map(|w| slo::range_secs(w).expect("a burn window is a range") as i64)
        .collect()
}

/// The longest burn window (3 days): the span of the burn windows' call.
pub fn burn_span() -> i64 {
    burn_secs().into_iter().max().unwrap_or(0)
}

/// What an SLO counted from a load balancer asks CloudWatch, in two calls that each end at
/// their `end`:
/// - `burns`: over the last 3 days (the longest burn window), one query per burn window and
///   metric with the window as its period: the last bucket of each is the window;
/// - `days`: over twice the SLO's window, a bucket a day: the last `window_days` of them are
///   the window, and every day's trailing window is the budget history.
#[derive(Debug, Clone, PartialEq)]
pub struct SloAsks {
    pub burns: Vec<MetricQuery>,
    pub days: Vec<MetricQuery>,
}

/// The metrics an SLO counts: (events, bad events or the share of good ones in percent).
fn slo_metrics(lb: &str, latency_under_ms: Option<u32>, period: i64) -> [MetricQuery; 3] {
    let d = [("LoadBalancer", lb)];
    match latency_under_ms {
        None => [
            q(ALB, "RequestCount", &d, "Sum", period),
            q(ALB, "HTTPCode_Target_5XX_Count", &d, "Sum", period),
            q(ALB, "HTTPCode_ELB_5XX_Count", &d, "Sum", period),
        ],
        Some(ms) => [
            q(ALB, "TargetResponseTime", &d, "SampleCount", period),
            q(ALB, "TargetResponseTime", &d, &percentile_rank(ms), period),
            // Asked once more so both kinds have three metrics; the answer is not read.
            q(ALB, "TargetResponseTime", &d, "SampleCount", period),
        ],
    }
}

/// `PR(:0.4)`: the percentage of datapoints of at most 0.4 s.
pub fn percentile_rank(ms: u32) -> String {
    let secs = f64::from(ms) / 1000.0;
    format!("PR(:{secs})")
}

/// The queries of an SLO counted from the load balancer whose CloudWatch dimension is `lb`.
pub fn slo_asks(slo: &Slo, lb: &str) -> Option<SloAsks> {
    let Indicator::LoadBalancer {
        latency_under_ms, ..
    } = &slo.indicator
    else {
        return None;
    };
    let metrics = |period| {
        let [a, b, c] = slo_metrics(lb, *latency_under_ms, period);
        match latency_under_ms {
            None => vec![a, b, c],
            Some(_) => vec![a, b],
        }
    };
    Some(SloAsks {
        burns: burn_secs().into_iter().flat_map(metrics).collect(),
        days: metrics(86_400),
    })
}

/// The `end` of the days call for a window of `window_days`: `at` rounded down to what
/// CloudWatch rounds the start of such a call to (its start being twice the window before),
/// so every bucket is a whole day ending at `end`.
pub fn days_end(at: i64, window_days: u32) -> i64 {
    let g = grain(2 * i64::from(window_days) * 86_400);
    at - at.rem_euclid(g)
}

/// The `end` of the burns call: `at` at a whole minute.
pub fn burns_end(at: i64) -> i64 {
    at - at.rem_euclid(60)
}

/// Events and bad events in each bucket of a pair (or triple) of answers: availability's
/// requests against both 5XX counts, or latency's samples against the share of them at most
/// the threshold. A bucket without events is not there (a gap, not a good minute).
fn bad_events(latency: bool, answers: &[Series]) -> Vec<(i64, f64, f64)> {
    let value_at = |s: &Series, t: i64| s.iter().find(|(at, _)| *at == t).map(|(_, v)| *v);
    answers[0]
        .iter()
        .filter(|(_, total)| *total > 0.0 && total.is_finite())
        .map(|&(t, total)| {
            let bad = if latency {
                // A bucket with samples but no rank is counted as all bad: never as good.
                let good_percent = value_at(&answers[1], t).unwrap_or(0.0).clamp(0.0, 100.0);
                total * (1.0 - good_percent / 100.0)
            } else {
                // ALB sends no 5XX datapoint for a period without one: none there is zero.
                let e = |s: &Series| value_at(s, t).unwrap_or(0.0).max(0.0);
                (e(&answers[1]) + e(&answers[2])).min(total)
            };
            (t, total, bad)
        })
        .collect()
}

/// An SLO's status from CloudWatch's answers to [`slo_asks`] (in its order), by the same
/// arithmetic as Prometheus's ([`slo::status`]): the error ratio of a window is the ratio of
/// its sums, weighted by requests.
pub fn slo_status(
    slo: &Slo,
    burns: &[Series],
    days: &[Series],
    days_end: i64,
    burns_end: i64,
) -> SloStatus {
    let latency = matches!(
        slo.indicator,
        Indicator::LoadBalancer {
            latency_under_ms: Some(_),
            ..
        }
    );
    let n = if latency { 2 } else { 3 };
    let ratio = |buckets: &[(i64, f64, f64)]| {
        let total: f64 = buckets.iter().map(|b| b.1).sum();
        let bad: f64 = buckets.iter().map(|b| b.2).sum();
        (total > 0.0).then(|| (bad / total).clamp(0.0, 1.0))
    };
    // Each burn window's query has the window as its period: its last bucket (starting one
    // window before the end) is the window.
    let burn_ratios: Vec<Option<f64>> = burn_secs()
        .into_iter()
        .enumerate()
        .map(|(i, secs)| {
            let answers = &burns[i * n..(i + 1) * n];
            let buckets = bad_events(latency, answers);
            let last: Vec<_> = buckets
                .into_iter()
                .filter(|b| b.0 == burns_end - secs)
                .collect();
            ratio(&last)
        })
        .collect();
    let window = i64::from(slo.window_days) * 86_400;
    let daily = bad_events(latency, &days[..n]);
    let in_window = |end: i64| -> Vec<(i64, f64, f64)> {
        daily
            .iter()
            .filter(|b| b.0 >= end - window && b.0 < end)
            .copied()
            .collect()
    };
    let now = in_window(days_end);
    let window_total: f64 = now.iter().map(|b| b.1).sum();
    let mut status = slo::status(slo, window_total / window as f64, ratio(&now), &burn_ratios);
    status.budget_history = (0..=slo.window_days)
        .rev()
        .map(|d| days_end - i64::from(d) * 86_400)
        .filter_map(|end| {
            ratio(&in_window(end)).map(|r| (end, slo::remaining_percent(slo.objective, r)))
        })
        .collect();
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Loc;

    #[test]
    fn periods_follow_the_step_and_what_cloudwatch_keeps_at_that_age() {
        let now = 1_800_000_000;
        // The page's ranges: 1h, 6h, 24h, 7d, 30d with their steps.
        assert_eq!(period_for(30, now - 3_600, now), 60);
        assert_eq!(period_for(180, now - 21_600, now), 180);
        assert_eq!(period_for(720, now - 86_400, now), 720);
        assert_eq!(period_for(5_040, now - 604_800, now), 5_040);
        assert_eq!(period_for(21_600, now - 2_592_000, now), 21_600);
        // 20 days back: five-minute multiples; 70 days back: hours.
        assert_eq!(period_for(100, now - 20 * 86_400, now), 300);
        assert_eq!(period_for(301, now - 20 * 86_400, now), 600);
        assert_eq!(period_for(60, now - 70 * 86_400, now), 3_600);
        assert_eq!(grain(15 * 86_400), 60);
        assert_eq!(grain(15 * 86_400 + 1), 300);
        assert_eq!(grain(63 * 86_400 + 1), 3_600);
    }

    #[test]
    fn calls_hold_at_most_500_queries_and_100800_datapoints() {
        assert_eq!(calls_for(25, 121), vec![0..25]);
        assert_eq!(calls_for(1_001, 10), vec![0..500, 500..1_000, 1_000..1_001]);
        // 1,441 points each: 69 queries a call.
        let c = calls_for(140, 1_441);
        assert_eq!(c, vec![0..69, 69..138, 138..140]);
        assert_eq!(calls_for(0, 10), Vec::<std::ops::Range<usize>>::new());
    }

    #[test]
    fn dimensions_come_from_the_arns() {
        let lb = "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:loadbalancer/app/shop-ext/50dc6c495c0c9188";
        assert_eq!(lb_dimension(lb), Some("app/shop-ext/50dc6c495c0c9188"));
        let tg = "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/shop-web/73e2d6bc24d8a067";
        assert_eq!(
            tg_dimension(tg),
            Some("targetgroup/shop-web/73e2d6bc24d8a067")
        );
        assert_eq!(lb_dimension("shop-ext"), None);
    }

    #[test]
    fn a_missing_datapoint_is_a_gap_and_counts_become_rates() {
        let lb = LbDimensions {
            load_balancer: "app/a/1".into(),
            target_groups: vec![("web".into(), "targetgroup/web/2".into())],
        };
        let p = lb_panels(&lb, 60);
        assert_eq!(p.len(), 8);
        assert_eq!(p[2].query.stat, "p95");
        assert_eq!(
            p[6].query.dimensions,
            vec![
                ("TargetGroup".into(), "targetgroup/web/2".into()),
                ("LoadBalancer".into(), "app/a/1".into())
            ]
        );
        // Requests at 0, a minute missing, 120: two points, the gap kept.
        let c = chart(&p[0], Ok(&vec![(0, 600.0), (120, 300.0)])).unwrap();
        assert_eq!(c.points, vec![(0, 10.0), (120, 5.0)]);
        assert_eq!(c.period, Some(60));
        let c = chart(&p[1], Ok(&vec![(60, 0.25)])).unwrap();
        assert_eq!(c.points, vec![(60, 0.25)]);
        let c = chart(&p[0], Err("access denied: cloudwatch:GetMetricData")).unwrap();
        assert!(c.points.is_empty());
        assert_eq!(
            c.error.as_deref(),
            Some("access denied: cloudwatch:GetMetricData")
        );
        // Replica lag only where there is some.
        let db = db_panels("shop-db", 60);
        assert_eq!(db.len(), 9);
        assert_eq!(chart(&db[8], Ok(&Vec::new())), None);
        assert!(chart(&db[8], Ok(&vec![(0, 1.5)])).is_some());
        assert!(chart(&db[0], Ok(&Vec::new())).unwrap().points.is_empty());
    }

    fn lb_slo(latency_under_ms: Option<u32>) -> Slo {
        Slo {
            name: "availability".into(),
            objective: 99.9,
            window_days: 30,
            indicator: Indicator::LoadBalancer {
                load_balancer: "shop-ext".into(),
                latency_under_ms,
            },
            loc: Loc::default(),
        }
    }

    #[test]
    fn an_availability_slo_counts_both_5xx_kinds_against_the_requests_by_days() {
        let s = lb_slo(None);
        let asks = slo_asks(&s, "app/shop-ext/1").unwrap();
        assert_eq!(asks.burns.len(), 3 * BURN_WINDOWS.len());
        assert_eq!(asks.days.len(), 3);
        assert_eq!(asks.burns[0].period, 300);
        assert_eq!(asks.burns[3].period, 1_800);
        assert_eq!(asks.days[0].period, 86_400);
        let end = 1_800_000_000; // a multiple of 300
        let day = 86_400;
        // Two days of traffic in the window, one day before it (outside), a day with no
        // datapoint at all between them.
        let requests = vec![
            (end - 40 * day, 1_000_000.0),
            (end - 3 * day, 1_000_000.0),
            (end - day, 2_000_000.0),
        ];
        let target_5xx = vec![(end - 3 * day, 500.0), (end - day, 1_500.0)];
        let elb_5xx = vec![(end - day, 1_000.0)];
        let days = vec![requests, target_5xx, elb_5xx];
        let burns: Vec<Series> = (0..3 * BURN_WINDOWS.len()).map(|_| Vec::new()).collect();
        let st = slo_status(&s, &burns, &days, end, end);
        // 3,000 bad of 3,000,000: 0.1 %, the whole budget.
        let b = st.budget.unwrap();
        assert!((b.total_events - 3_000_000.0).abs() < 1e-6, "{b:?}");
        assert!((b.allowed_events - 3_000.0).abs() < 1e-6);
        assert!((b.spent_events - 3_000.0).abs() < 1e-6);
        assert!(b.remaining_percent.abs() < 1e-9);
        // No burn window had traffic: no burn rate, not a zero one.
        assert!(st.burns.iter().all(|b| b.rate.is_none()));
    }

    #[test]
    fn a_burn_window_is_the_last_bucket_of_its_period_and_latency_counts_the_rank() {
        let s = lb_slo(Some(400));
        let asks = slo_asks(&s, "app/shop-ext/1").unwrap();
        assert_eq!(asks.burns[1].stat, "PR(:0.4)");
        assert_eq!(asks.burns.len(), 2 * BURN_WINDOWS.len());
        let end = 1_800_000_000; // a multiple of 60
        let mut burns: Vec<Series> = Vec::new();
        for w in burn_secs() {
            // An earlier bucket that must not be read, and the window's own.
            burns.push(vec![(end - 2 * w, 50.0), (end - w, 1_000.0)]);
            burns.push(vec![(end - 2 * w, 0.0), (end - w, 99.0)]);
        }
        let days = vec![Vec::new(), Vec::new()];
        let st = slo_status(&s, &burns, &days, end, end);
        // 1 % of the requests slower than 400 ms against a 0.1 % budget: 10×.
        for b in &st.burns {
            assert!((b.rate.unwrap() - 10.0).abs() < 1e-9, "{b:?}");
        }
        assert_eq!(st.budget, None);
    }

    #[test]
    fn scrape_targets_are_one_entry_per_instance_with_its_labels() {
        let list = [
            ScrapeInstance {
                group: "shop-was",
                tier: "was",
                id: "i-2",
                zone: Some("ap-northeast-2c"),
                address: "10.0.2.7",
            },
            ScrapeInstance {
                group: "shop-web",
                tier: "web",
                id: "i-1",
                zone: None,
                address: "10.0.1.5",
            },
        ];
        let json = serde_json::to_value(scrape_targets("prod", 9100, &list)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"targets": ["10.0.2.7:9100"], "labels": {"environment": "prod", "tier": "was", "group": "shop-was", "zone": "ap-northeast-2c", "instance_id": "i-2"}},
                {"targets": ["10.0.1.5:9100"], "labels": {"environment": "prod", "tier": "web", "group": "shop-web", "instance_id": "i-1"}},
            ])
        );
        let tg = |tier: &str, states: &[(&str, &str)]| TargetGroupHealth {
            target_group: "tg".into(),
            load_balancer: "lb".into(),
            tier: Some(tier.into()),
            targets: states
                .iter()
                .map(|(id, state)| Target {
                    id: (*id).into(),
                    port: Some(80),
                    zone: None,
                    state: (*state).into(),
                    reason: None,
                    description: None,
                })
                .collect(),
            error: None,
        };
        let groups = [
            tg("web", &[("i-1", "healthy"), ("i-2", "unused")]),
            tg("web", &[("i-1", "healthy")]),
        ];
        assert_eq!(healthy_in_tier("web", &groups), Some(1));
        assert_eq!(healthy_in_tier("was", &groups), None);
        assert_eq!(groups[0].unhealthy().len(), 1);
    }

    #[test]
    fn percentile_ranks_are_written_in_seconds() {
        assert_eq!(percentile_rank(400), "PR(:0.4)");
        assert_eq!(percentile_rank(1_500), "PR(:1.5)");
        assert_eq!(days_end(1_800_000_123, 30), 1_800_000_000);
        assert_eq!(burns_end(1_800_000_123), 1_800_000_120);
    }
}
