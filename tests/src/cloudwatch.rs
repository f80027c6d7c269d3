//! CloudWatch datapoints for the tests and the demo, put with `PutMetricData` (through the
//! tests' AWS proxy, which keeps response-time distributions for percentiles, see
//! [`crate::aws`]): single values the tests pick by hand, and a month of the shop's load
//! balancer and database figures consistent with its Prometheus traffic ([`crate::prom`]).

use crate::aws::{query, rfc3339_at, tag_values};
use crate::prom::{cpu_at, instances_at, latency_shares, petclinic_rate_at, DAY};

/// A load balancer's CloudWatch dimension (`app/NAME/ID`), from ELBv2.
pub async fn lb_dimension(aws: &str, name: &str) -> String {
    let xml = query(
        aws,
        "elasticloadbalancing",
        "DescribeLoadBalancers",
        &[("Names.member.1", name)],
    )
    .await;
    let arn = tag_values(&xml, "LoadBalancerArn")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no load balancer {name}: {xml}"));
    arn.split_once(":loadbalancer/")
        .expect("a load balancer ARN")
        .1
        .to_owned()
}

/// A target group's CloudWatch dimension (`targetgroup/NAME/ID`), from ELBv2.
pub async fn tg_dimension(aws: &str, name: &str) -> String {
    let xml = query(
        aws,
        "elasticloadbalancing",
        "DescribeTargetGroups",
        &[("Names.member.1", name)],
    )
    .await;
    let arn = tag_values(&xml, "TargetGroupArn")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no target group {name}: {xml}"));
    arn[arn.find("targetgroup/").expect("a target group ARN")..].to_owned()
}

/// One datum: a value, or a distribution of (value, count).
#[derive(Debug, Clone)]
pub struct Datum {
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub at: i64,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub enum Value {
    One(f64),
    Spread(Vec<(f64, f64)>),
}

impl Datum {
    pub fn one(metric: &str, dims: &[(&str, &str)], at: i64, value: f64) -> Datum {
        Datum {
            metric: metric.into(),
            dimensions: dims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            at,
            value: Value::One(value),
        }
    }

    pub fn spread(metric: &str, dims: &[(&str, &str)], at: i64, values: &[(f64, f64)]) -> Datum {
        Datum {
            value: Value::Spread(values.to_vec()),
            ..Datum::one(metric, dims, at, 0.0)
        }
    }
}

/// Puts `data` into `namespace` at `aws`, 500 datums a call (AWS takes 1,000).
pub async fn put(aws: &str, namespace: &str, data: &[Datum]) {
    for chunk in data.chunks(500) {
        let mut params: Vec<(String, String)> = vec![("Namespace".into(), namespace.into())];
        for (i, d) in chunk.iter().enumerate() {
            let p = format!("MetricData.member.{}.", i + 1);
            params.push((format!("{p}MetricName"), d.metric.clone()));
            params.push((format!("{p}Timestamp"), rfc3339_at(d.at as u64)));
            for (j, (k, v)) in d.dimensions.iter().enumerate() {
                params.push((format!("{p}Dimensions.member.{}.Name", j + 1), k.clone()));
                params.push((format!("{p}Dimensions.member.{}.Value", j + 1), v.clone()));
            }
            match &d.value {
                Value::One(v) => params.push((format!("{p}Value"), v.to_string())),
                Value::Spread(values) => {
                    for (j, (v, c)) in values.iter().enumerate() {
                        params.push((format!("{p}Values.member.{}", j + 1), v.to_string()));
                        params.push((format!("{p}Counts.member.{}", j + 1), c.to_string()));
                    }
                }
            }
        }
        let borrowed: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        query(aws, "monitoring", "PutMetricData", &borrowed).await;
    }
}

/// Where a month of the shop's figures goes: its external load balancer (fronting the web
/// tier, with its target group) and its database.
pub struct ShopMetrics<'a> {
    pub load_balancer: &'a str,
    pub target_group: &'a str,
    pub database: &'a str,
}

/// An hour's response times as a distribution (value in seconds, count): the shares of
/// [`latency_shares`] at 0.05, 0.15 and 0.3 s.
fn response_times(rate: f64, requests: f64) -> Vec<(f64, f64)> {
    let [fast, middle, slow] = latency_shares(rate);
    vec![
        (0.05, (requests * fast).round()),
        (0.15, (requests * middle).round()),
        (0.3, (requests * slow).round()),
    ]
}

/// `days` of load balancer and database datapoints ending at `end`, as the shop's Prometheus
/// traffic runs (its request rate, its incident's failures as target 5XX answers, its web
/// instances as healthy hosts, the database's load following the requests): a datapoint an
/// hour, then one every `fine_step` seconds over the last `fine_hours`.
pub fn shop_month(
    m: &ShopMetrics<'_>,
    end: i64,
    days: i64,
    (fine_hours, fine_step): (i64, i64),
    incident: (i64, i64),
) -> (Vec<Datum>, Vec<Datum>) {
    let lb = [("LoadBalancer", m.load_balancer)];
    let tg = [
        ("TargetGroup", m.target_group),
        ("LoadBalancer", m.load_balancer),
    ];
    let db = [("DBInstanceIdentifier", m.database)];
    let mut alb = Vec::new();
    let mut rds = Vec::new();
    let fine_from = end - fine_hours * 3600;
    let hourly = (end - days * DAY..fine_from).step_by(3600);
    let fine = (fine_from..end).step_by(usize::try_from(fine_step).expect("a positive step"));
    for (t, secs) in hourly
        .map(|t| (t, 3600.0))
        .chain(fine.map(|t| (t, fine_step as f64)))
    {
        let rate = petclinic_rate_at(t);
        let requests = (rate * secs).round();
        // The incident fails 20 requests/s of its hours (as Prometheus's data says).
        let failing = if t >= incident.0 && t < incident.1 {
            (20.0 * secs).round()
        } else {
            0.0
        };
        alb.push(Datum::one("RequestCount", &lb, t, requests));
        alb.push(Datum::spread(
            "TargetResponseTime",
            &lb,
            t,
            &response_times(rate, requests),
        ));
        if failing > 0.0 {
            alb.push(Datum::one("HTTPCode_Target_5XX_Count", &lb, t, failing));
        }
        let (web, _) = instances_at(t);
        alb.push(Datum::one("HealthyHostCount", &tg, t, f64::from(web)));
        alb.push(Datum::one("UnHealthyHostCount", &tg, t, 0.0));
        let (_, was_cpu) = cpu_at(t);
        rds.push(Datum::one("CPUUtilization", &db, t, 5.0 + was_cpu / 2.0));
        rds.push(Datum::one(
            "DatabaseConnections",
            &db,
            t,
            (10.0 + rate / 10.0).round(),
        ));
        // The database grows by about 1.7 MB a day.
        let grown = (t - (end - days * DAY)) as f64 * 20.0;
        rds.push(Datum::one("FreeStorageSpace", &db, t, 14.5e9 - grown));
        rds.push(Datum::one("FreeableMemory", &db, t, 1.6e9 - rate * 1e6));
        rds.push(Datum::one("ReadLatency", &db, t, 0.0008 + rate * 0.000_004));
        rds.push(Datum::one(
            "WriteLatency",
            &db,
            t,
            0.0015 + rate * 0.000_006,
        ));
        rds.push(Datum::one("ReadIOPS", &db, t, 20.0 + rate * 0.8));
        rds.push(Datum::one("WriteIOPS", &db, t, 10.0 + rate * 0.3));
    }
    (alb, rds)
}
