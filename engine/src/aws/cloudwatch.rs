//! CloudWatch: the CPU alarms that call a group's scaling policies.

use std::future::Future;

use aws_sdk_cloudwatch::operation::RequestId;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StandardUnit, Statistic};
use aws_sdk_cloudwatch::Client;
use domain::import::FoundAlarm;
use domain::observed::Comparison;

use super::{classify, AwsResult};

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
}

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
}
