//! Monitoring: the Prometheus queries behind the Monitoring page (node_exporter per tier through
//! the spec's selectors; request rate, error ratio and p95 latency from the SLO queries) and the
//! charts they fill.

use serde::{Deserialize, Serialize};

use crate::axis::Axis;
use crate::slo::{error_ratio_query, queries};
use crate::spec::{Indicator, Slo};

/// Ranges the page offers: label, seconds, and the step between points (about 120 points).
pub const RANGES: [(&str, i64, i64); 5] = [
    ("1h", 3_600, 30),
    ("6h", 21_600, 180),
    ("24h", 86_400, 720),
    ("7d", 604_800, 5_040),
    ("30d", 2_592_000, 21_600),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Percent,
    BytesPerSecond,
    PerSecond,
    Seconds,
    Ratio,
    /// A number of things: connections, hosts.
    Count,
    /// An amount of memory or storage.
    Bytes,
}

/// The divisor and unit for bytes of about `scale`: the largest unit that keeps it at 1 or more.
fn bytes_in(scale: f64) -> (f64, &'static str) {
    if scale >= 1e9 {
        (1e9, "GB")
    } else if scale >= 1e6 {
        (1e6, "MB")
    } else if scale >= 1e3 {
        (1e3, "kB")
    } else {
        (1.0, "B")
    }
}

impl Unit {
    /// A value for people: `31.2 %`, `1.5 MB/s`, `100 /s`, `380 ms`.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Percent => format!("{v:.1} %"),
            Unit::Ratio => format!("{:.3} %", v * 100.0),
            Unit::PerSecond => format!("{v:.1} /s"),
            Unit::Seconds => format!("{:.0} ms", v * 1000.0),
            Unit::Count => format!("{v:.1}"),
            Unit::Bytes => {
                let (d, u) = bytes_in(v);
                format!("{:.1} {u}", v / d)
            }
            Unit::BytesPerSecond => {
                let (d, u) = if v >= 1e9 {
                    (1e9, "GB/s")
                } else if v >= 1e6 {
                    (1e6, "MB/s")
                } else if v >= 1e3 {
                    (1e3, "kB/s")
                } else {
                    (1.0, "B/s")
                };
                format!("{:.1} {u}", v / d)
            }
        }
    }
}

impl Unit {
    /// The narrowest value axis of this unit: a quiet chart reads 0–0.2 % of errors, 0–10 %
    /// of CPU, 0–100 ms, not a flat line on a 0–1 axis.
    pub fn min_span(self) -> f64 {
        match self {
            Unit::Percent => 10.0,
            Unit::Ratio => 0.002,
            Unit::PerSecond => 1.0,
            Unit::Seconds => 0.1,
            Unit::BytesPerSecond => 1_000.0,
            Unit::Count => 4.0,
            Unit::Bytes => 1e6,
        }
    }

    /// The value axis for `values` of this unit.
    pub fn axis(self, values: impl IntoIterator<Item = f64>) -> Axis {
        Axis::for_values(values, self.min_span(), 0.0)
    }

    /// A tick of `axis` with its unit, as precise as the axis's step needs: `0.05 %`, `40 %`,
    /// `250 ms`, `1.5 MB/s`.
    pub fn tick(self, v: f64, axis: &Axis) -> String {
        match self {
            Unit::Percent => format!("{v:.d$} %", d = axis.decimals(1.0)),
            Unit::Ratio => format!("{:.d$} %", v * 100.0, d = axis.decimals(100.0)),
            Unit::PerSecond => format!("{v:.d$} /s", d = axis.decimals(1.0)),
            Unit::Seconds if axis.hi >= 2.0 => format!("{v:.d$} s", d = axis.decimals(1.0)),
            Unit::Seconds => format!("{:.d$} ms", v * 1000.0, d = axis.decimals(1000.0)),
            Unit::Count => format!("{v:.d$}", d = axis.decimals(1.0)),
            Unit::Bytes => {
                let (div, unit) = bytes_in(axis.hi);
                format!("{:.d$} {unit}", v / div, d = axis.decimals(1.0 / div))
            }
            Unit::BytesPerSecond => {
                let (div, unit) = if axis.hi >= 1e9 {
                    (1e9, "GB/s")
                } else if axis.hi >= 1e6 {
                    (1e6, "MB/s")
                } else if axis.hi >= 1e3 {
                    (1e3, "kB/s")
                } else {
                    (1.0, "B/s")
                };
                format!("{:.d$} {unit}", v / div, d = axis.decimals(1.0 / div))
            }
        }
    }
}

/// A chart to draw: its title, unit and query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Panel {
    pub title: String,
    pub unit: Unit,
    pub query: String,
}

/// `{job="node",tier="web"}` with `mode="idle"` added.
pub fn with_matcher(selector: &str, extra: &str) -> String {
    let inner = selector
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim();
    if inner.is_empty() {
        format!("{{{extra}}}")
    } else {
        format!("{{{inner},{extra}}}")
    }
}

/// CPU, memory, disk I/O and network of one tier from node_exporter.
pub fn tier_panels(selector: &str) -> Vec<Panel> {
    let s = selector.trim();
    let idle = with_matcher(s, "mode=\"idle\"");
    vec![
        Panel {
            title: "CPU".into(),
            unit: Unit::Percent,
            query: format!("100 * (1 - avg(rate(node_cpu_seconds_total{idle}[5m])))"),
        },
        Panel {
            title: "Memory".into(),
            unit: Unit::Percent,
            query: format!(
                "100 * (1 - sum(node_memory_MemAvailable_bytes{s}) / sum(node_memory_MemTotal_bytes{s}))"
            ),
        },
        Panel {
            title: "Disk I/O".into(),
            unit: Unit::BytesPerSecond,
            query: format!(
                "sum(rate(node_disk_read_bytes_total{s}[5m])) + sum(rate(node_disk_written_bytes_total{s}[5m]))"
            ),
        },
        Panel {
            title: "Network".into(),
            unit: Unit::BytesPerSecond,
            query: format!(
                "sum(rate(node_network_receive_bytes_total{s}[5m])) + sum(rate(node_network_transmit_bytes_total{s}[5m]))"
            ),
        },
    ]
}

/// The histogram selector inside a latency SLO's `good` query, without its `le` matcher:
/// `http_request_duration_seconds_bucket{job="petclinic"}`.
fn bucket_selector(good: &str) -> Option<String> {
    let start = good.find("_bucket{")?;
    // The metric name runs back to the first character that cannot be in one (which may be
    // more than one byte long).
    let name_start = good[..start]
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == ':'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let open = start + "_bucket".len();
    let close = open + good[open..].find('}')?;
    let matchers: Vec<&str> = good[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.starts_with("le"))
        .collect();
    Some(format!(
        "{}{{{}}}",
        &good[name_start..open],
        matchers.join(",")
    ))
}

/// Request rate and error ratio (from the first `errors` SLO, the availability one by
/// convention) and p95 latency (from the first SLO counting histogram buckets).
pub fn service_panels(slos: &[Slo]) -> Vec<Panel> {
    let mut out = Vec::new();
    // Charts from Prometheus come from the SLOs Prometheus answers; a load balancer's SLO has
    // its charts among the load balancer's.
    let promql: Vec<&Slo> = slos.iter().filter(|s| s.indicator.is_promql()).collect();
    let availability = promql
        .iter()
        .find(|s| s.name == "availability")
        .or_else(|| {
            promql
                .iter()
                .find(|s| matches!(s.indicator, Indicator::Errors { .. }))
        });
    if let Some(a) = availability {
        let (_, total) = queries(&a.indicator, "5m").expect("a PromQL SLO");
        out.push(Panel {
            title: "Requests".into(),
            unit: Unit::PerSecond,
            query: total,
        });
        out.push(Panel {
            title: "Error ratio".into(),
            unit: Unit::Ratio,
            query: error_ratio_query(&a.indicator, "5m").expect("a PromQL SLO"),
        });
    }
    let latency = slos.iter().find_map(|s| match &s.indicator {
        Indicator::Good { good, .. } => bucket_selector(good),
        Indicator::Errors { .. } | Indicator::LoadBalancer { .. } => None,
    });
    if let Some(sel) = latency {
        out.push(Panel {
            title: "Latency p95 (for display; the SLO counts requests under its threshold)".into(),
            unit: Unit::Seconds,
            query: format!("histogram_quantile(0.95, sum by (le) (rate({sel}[5m])))"),
        });
    }
    out
}

/// One chart's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub title: String,
    pub unit: Unit,
    /// (Unix seconds, value).
    pub points: Vec<(i64, f64)>,
    /// Why there are no points (a query Prometheus refused, a CloudWatch call that failed).
    pub error: Option<String>,
    /// Seconds between points when they are not the report's `step` (CloudWatch's period).
    #[serde(default)]
    pub period: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierCharts {
    pub tier: String,
    pub charts: Vec<Chart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringReport {
    pub environment: String,
    pub range: String,
    /// Unix seconds.
    pub start_unix: i64,
    pub end_unix: i64,
    /// Seconds between points: a longer gap is missing samples.
    #[serde(default)]
    pub step: i64,
    /// The zone the environment's times are shown in (see `time::environment_zone`).
    #[serde(default = "crate::time::utc_name")]
    pub time_zone: String,
    pub tiers: Vec<TierCharts>,
    pub service: Vec<Chart>,
    /// Why there is nothing at all (Prometheus down or not configured).
    pub error: Option<String>,
    pub queries: usize,
    /// Each of `monitoring.load_balancers`, from CloudWatch.
    #[serde(default)]
    pub load_balancers: Vec<crate::cloudwatch::ResourceCharts>,
    /// Each of the spec's databases, from CloudWatch.
    #[serde(default)]
    pub databases: Vec<crate::cloudwatch::ResourceCharts>,
    /// The load balancers' target groups and their targets' health.
    #[serde(default)]
    pub target_health: Vec<crate::cloudwatch::TargetGroupHealth>,
    /// `GetMetricData` queries and calls this view needed (none when its answer was reused).
    #[serde(default)]
    pub cloudwatch_queries: usize,
    #[serde(default)]
    pub cloudwatch_calls: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fixtures::prod;

    #[test]
    fn axis_ticks_carry_their_unit_as_precise_as_the_step() {
        let cases: [(Unit, &[f64], &[&str]); 7] = [
            (
                Unit::Ratio,
                &[0.0, 0.0, 0.0],
                &["0.00 %", "0.05 %", "0.10 %", "0.15 %", "0.20 %"],
            ),
            (
                Unit::Ratio,
                &[0.0, 0.2],
                &["0 %", "5 %", "10 %", "15 %", "20 %"],
            ),
            (
                Unit::Percent,
                &[12.0, 48.7],
                &["0 %", "20 %", "40 %", "60 %"],
            ),
            (
                Unit::Percent,
                &[0.0],
                &["0.0 %", "2.5 %", "5.0 %", "7.5 %", "10.0 %"],
            ),
            (
                Unit::PerSecond,
                &[40.0, 312.0],
                &["0 /s", "100 /s", "200 /s", "300 /s", "400 /s"],
            ),
            (
                Unit::Seconds,
                &[0.12, 0.38],
                &["0 ms", "100 ms", "200 ms", "300 ms", "400 ms"],
            ),
            (
                Unit::BytesPerSecond,
                &[3_000.0, 1_500_000.0],
                &["0.0 MB/s", "0.5 MB/s", "1.0 MB/s", "1.5 MB/s"],
            ),
        ];
        for (unit, values, want) in cases {
            let axis = unit.axis(values.iter().copied());
            let ticks: Vec<String> = axis
                .ticks()
                .into_iter()
                .map(|v| unit.tick(v, &axis))
                .collect();
            assert_eq!(ticks, want, "{unit:?} {values:?}");
        }
    }

    #[test]
    fn a_bucket_query_after_a_non_ascii_character_does_not_panic() {
        assert_eq!(
            bucket_selector("sum(rate(é_bucket{job=\"a\",le=\"0.4\"}[5m]))").as_deref(),
            Some("_bucket{job=\"a\"}")
        );
        assert_eq!(
            bucket_selector("rate(é×http_bucket{le=\"1\"}[5m])").as_deref(),
            Some("http_bucket{}")
        );
        assert_eq!(bucket_selector("none_bucket{"), None);
    }

    #[test]
    fn tier_selectors_get_their_matchers() {
        assert_eq!(
            with_matcher("{job=\"node\",tier=\"web\"}", "mode=\"idle\""),
            "{job=\"node\",tier=\"web\",mode=\"idle\"}"
        );
        assert_eq!(with_matcher("{}", "a=\"b\""), "{a=\"b\"}");
        let p = tier_panels("{job=\"node\",tier=\"web\"}");
        assert_eq!(
            p[0].query,
            "100 * (1 - avg(rate(node_cpu_seconds_total{job=\"node\",tier=\"web\",mode=\"idle\"}[5m])))"
        );
    }

    #[test]
    fn service_charts_come_from_the_slo_queries() {
        let p = service_panels(&prod().slos);
        let titles: Vec<&str> = p.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles.len(), 3, "{titles:?}");
        assert_eq!(
            p[0].query,
            "sum(rate(http_requests_total{job=\"petclinic\"}[5m]))"
        );
        assert_eq!(
            p[2].query,
            "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job=\"petclinic\"}[5m])))"
        );
        assert_eq!(Unit::Seconds.format(0.38), "380 ms");
        assert_eq!(Unit::BytesPerSecond.format(1_500_000.0), "1.5 MB/s");
    }
}
