//! CloudWatch: the CPU alarms that call a group's scaling policies.

use std::future::Future;

use aws_sdk_cloudwatch::types::ComparisonOperator;
use aws_sdk_cloudwatch::Client;
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
    /// Alarms whose name starts with `prefix`.
    fn describe_alarms(
        &self,
        prefix: &str,
    ) -> impl Future<Output = AwsResult<Vec<AlarmSnapshot>>> + Send;
}

#[derive(Debug, Clone)]
pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(config),
        }
    }
}

impl CloudWatchApi for CloudWatch {
    async fn describe_alarms(&self, prefix: &str) -> AwsResult<Vec<AlarmSnapshot>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_alarms()
            .alarm_name_prefix(prefix)
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
}
