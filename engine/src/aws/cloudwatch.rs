//! CloudWatch: the CPU alarms that call a group's scaling policies, and the metrics of the
//! load balancers and databases read with `GetMetricData`.

use std::future::Future;

use aws_sdk_cloudwatch::operation::RequestId;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StandardUnit, Statistic};
use aws_sdk_cloudwatch::Client;
use domain::cloudwatch::{calls_for, MetricQuery, Series};
use domain::import::FoundAlarm;
use domain::observed::Comparison;

use super::{classify, AwsError, AwsResult};

/// An alarm as CloudWatch describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSnapshot {
    pub name: String,
    pub threshold: f64,
    pub comparison: Option<Comparison>,
    /// ARNs its alarm state calls.
    pub actions: Vec<String>,
}

pub trait CloudWatchApi: Send + Sync {
    /// Alarms whose name starts with `prefix`, every page (100 alarms a page, AWS's most).
    fn describe_alarms(
        &self,
        prefix: &str,
    ) -> impl Future<Output = AwsResult<Vec<AlarmSnapshot>>> + Send;

    /// Every metric alarm of the account whose actions call one of `arns` (the scaling policies
    /// an import read), every page of `DescribeAlarms` (100 alarms a page).
    fn alarms_calling(
        &self,
        arns: &[String],
    ) -> impl Future<Output = AwsResult<Vec<FoundAlarm>>> + Send;

    /// Creates or replaces the alarm on a group's average CPU that calls `policy_arn`.
    fn put_cpu_alarm(
        &self,
        alarm: &CpuAlarm<'_>,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    fn delete_alarm(&self, name: &str) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// Each query's datapoints from `start` to `end` (Unix seconds), in the queries' order:
    /// `GetMetricData` with at most 500 queries and 100,800 datapoints a call, every page of
    /// each. A period without data has no datapoint (a gap).
    fn metric_data(
        &self,
        queries: &[MetricQuery],
        start: i64,
        end: i64,
    ) -> impl Future<Output = AwsResult<Vec<Series>>> + Send;
}

/// Pages of one `GetMetricData` read before it is refused as too large (each page holds up
/// to 100,800 datapoints; tierdeck's calls fit in one).
const MAX_PAGES: usize = 4;

/// An alarm on the group's average CPU over one 5-minute period (EC2 basic monitoring).
#[derive(Debug, Clone)]
pub struct CpuAlarm<'a> {
    pub name: &'a str,
    pub group: &'a str,
    pub comparison: Comparison,
    pub threshold: f64,
    pub policy_arn: &'a str,
}

/// Seconds per evaluation period of the CPU alarms.
pub const ALARM_PERIOD_SECS: i32 = 300;

#[derive(Debug, Clone)]
pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(config)
                    .interceptor(super::calls::CountRequests)
                    .build(),
            ),
        }
    }
}

impl CloudWatchApi for CloudWatch {
    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "cloudwatch", action = "DescribeAlarms", resource = %format_args!("{prefix}*")))]
    async fn describe_alarms(&self, prefix: &str) -> AwsResult<Vec<AlarmSnapshot>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                classify(
                    format!("reading alarms {prefix}*"),
                    "cloudwatch:DescribeAlarms",
                    e,
                )
            })?;
            for a in page.metric_alarms() {
                out.push(AlarmSnapshot {
                    name: a.alarm_name().unwrap_or_default().to_owned(),
                    threshold: a.threshold().unwrap_or_default(),
                    comparison: match a.comparison_operator() {
                        Some(ComparisonOperator::GreaterThanOrEqualToThreshold) => {
                            Some(Comparison::GreaterThanOrEqual)
                        }
                        Some(ComparisonOperator::LessThanOrEqualToThreshold) => {
                            Some(Comparison::LessThanOrEqual)
                        }
                        _ => None,
                    },
                    actions: a.alarm_actions().to_vec(),
                });
            }
        }
        Ok(out)
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "cloudwatch", action = "DescribeAlarms", resource = %super::names(arns)))]
    async fn alarms_calling(&self, arns: &[String]) -> AwsResult<Vec<FoundAlarm>> {
        let mut out = Vec::new();
        if arns.is_empty() {
            return Ok(out);
        }
        let mut pages = self
            .client
            .describe_alarms()
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                classify(
                    "reading the alarms that call the scaling policies",
                    "cloudwatch:DescribeAlarms",
                    e,
                )
            })?;
            for a in page.metric_alarms() {
                if !a.alarm_actions().iter().any(|x| arns.contains(x)) {
                    continue;
                }
                out.push(FoundAlarm {
                    name: a.alarm_name().unwrap_or_default().to_owned(),
                    namespace: a.namespace().unwrap_or_default().to_owned(),
                    metric: a.metric_name().unwrap_or_default().to_owned(),
                    statistic: a
                        .statistic()
                        .map(|s| s.as_str().to_owned())
                        .or_else(|| a.extended_statistic().map(str::to_owned))
                        .unwrap_or_default(),
                    dimensions: a
                        .dimensions()
                        .iter()
                        .map(|d| {
                            (
                                d.name().unwrap_or_default().to_owned(),
                                d.value().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect(),
                    period_seconds: a.period().unwrap_or_default().max(0) as u32,
                    evaluation_periods: a.evaluation_periods().unwrap_or_default().max(0) as u32,
                    comparison: a
                        .comparison_operator()
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_default(),
                    threshold: a.threshold().unwrap_or_default(),
                    actions: a.alarm_actions().to_vec(),
                });
            }
        }
        Ok(out)
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "cloudwatch", action = "PutMetricAlarm", resource = %a.name))]
    async fn put_cpu_alarm(&self, a: &CpuAlarm<'_>) -> AwsResult<Option<String>> {
        let out = self
            .client
            .put_metric_alarm()
            .alarm_name(a.name)
            .alarm_description(format!(
                "tierdeck: average CPU of {} {} {} % calls its scaling policy",
                a.group,
                a.comparison.symbol(),
                a.threshold
            ))
            .namespace("AWS/EC2")
            .metric_name("CPUUtilization")
            .dimensions(
                Dimension::builder()
                    .name("AutoScalingGroupName")
                    .value(a.group)
                    .build(),
            )
            .statistic(Statistic::Average)
            .unit(StandardUnit::Percent)
            .period(ALARM_PERIOD_SECS)
            .evaluation_periods(1)
            .threshold(a.threshold)
            .comparison_operator(match a.comparison {
                Comparison::GreaterThanOrEqual => ComparisonOperator::GreaterThanOrEqualToThreshold,
                Comparison::LessThanOrEqual => ComparisonOperator::LessThanOrEqualToThreshold,
            })
            .alarm_actions(a.policy_arn)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("writing alarm {}", a.name),
                    "cloudwatch:PutMetricAlarm",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "cloudwatch", action = "DeleteAlarms", resource = %name))]
    async fn delete_alarm(&self, name: &str) -> AwsResult<Option<String>> {
        let out = self
            .client
            .delete_alarms()
            .alarm_names(name)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("deleting alarm {name}"),
                    "cloudwatch:DeleteAlarms",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "cloudwatch", action = "GetMetricData", resource = %format_args!("{} queries", queries.len())))]
    async fn metric_data(
        &self,
        queries: &[MetricQuery],
        start: i64,
        end: i64,
    ) -> AwsResult<Vec<Series>> {
        use aws_sdk_cloudwatch::types::{Metric, MetricDataQuery, MetricStat, ScanBy};
        let what = || format!("reading {} CloudWatch metrics", queries.len());
        let mut out: Vec<Series> = vec![Vec::new(); queries.len()];
        let shortest = queries.iter().map(|q| q.period.max(1)).min().unwrap_or(60);
        let points_each = usize::try_from((end - start) / shortest + 1).unwrap_or(usize::MAX);
        for range in calls_for(queries.len(), points_each) {
            let asks: Vec<MetricDataQuery> = queries[range.clone()]
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let metric = Metric::builder()
                        .namespace(&q.namespace)
                        .metric_name(&q.metric)
                        .set_dimensions(Some(
                            q.dimensions
                                .iter()
                                .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                                .collect(),
                        ))
                        .build();
                    MetricDataQuery::builder()
                        .id(format!("q{}", range.start + i))
                        .metric_stat(
                            MetricStat::builder()
                                .metric(metric)
                                .period(i32::try_from(q.period).unwrap_or(i32::MAX))
                                .stat(&q.stat)
                                .build(),
                        )
                        .return_data(true)
                        .build()
                })
                .collect();
            let mut token: Option<String> = None;
            for page in 0.. {
                if page == MAX_PAGES {
                    return Err(AwsError::rejected(
                        what(),
                        format!("CloudWatch sent more than {MAX_PAGES} pages for one call; tierdeck reads no more"),
                    ));
                }
                let answer = self
                    .client
                    .get_metric_data()
                    .set_metric_data_queries(Some(asks.clone()))
                    .start_time(aws_smithy_types::DateTime::from_secs(start))
                    .end_time(aws_smithy_types::DateTime::from_secs(end))
                    .scan_by(ScanBy::TimestampAscending)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify(what(), "cloudwatch:GetMetricData", e))?;
                for r in answer.metric_data_results() {
                    let Some(i) = r
                        .id()
                        .and_then(|id| id.strip_prefix('q'))
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|i| range.contains(i))
                    else {
                        continue;
                    };
                    if let Some(m) = r.messages().first() {
                        // A statistic or query CloudWatch could not answer: said, never a gap
                        // that reads as no traffic.
                        return Err(AwsError::rejected(
                            what(),
                            format!(
                                "CloudWatch could not answer {} {} {}: {}",
                                queries[i].metric,
                                queries[i].stat,
                                m.code().unwrap_or_default(),
                                m.value().unwrap_or_default()
                            ),
                        ));
                    }
                    out[i].extend(
                        r.timestamps()
                            .iter()
                            .zip(r.values())
                            .map(|(t, v)| (t.secs(), *v)),
                    );
                }
                token = answer.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        for s in &mut out {
            s.sort_by_key(|(t, _)| *t);
            s.dedup_by_key(|(t, _)| *t);
        }
        Ok(out)
    }
}
