//! ELBv2: the load balancers and target groups `monitoring.load_balancers` names, resolved to
//! their ARNs (CloudWatch's dimensions come from them), and their targets' health.

use std::future::Future;

use aws_sdk_elasticloadbalancingv2::Client;
use domain::cloudwatch::Target;

use super::{classify, AwsError, AwsResult};

/// ELBv2 takes at most 20 names or ARNs in one `DescribeLoadBalancers`.
const NAMES_PER_CALL: usize = 20;

/// A load balancer as ELBv2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLoadBalancer {
    pub name: String,
    pub arn: String,
}

/// A target group as ELBv2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTargetGroup {
    pub name: String,
    pub arn: String,
    pub port: Option<i32>,
}

pub trait Elbv2Api: Send + Sync {
    /// The load balancers `refs` names (names or ARNs, in batches of 20 a call), each as it was
    /// given with what ELBv2 found (`None`: there is no such load balancer).
    fn load_balancers(
        &self,
        refs: &[String],
    ) -> impl Future<Output = AwsResult<Vec<(String, Option<FoundLoadBalancer>)>>> + Send;

    /// Every target group behind the load balancer `arn`.
    fn target_groups(
        &self,
        lb_arn: &str,
    ) -> impl Future<Output = AwsResult<Vec<FoundTargetGroup>>> + Send;

    /// The targets registered in the target group `arn`, with their health.
    fn target_health(&self, tg_arn: &str) -> impl Future<Output = AwsResult<Vec<Target>>> + Send;
}

#[derive(Debug, Clone)]
pub struct Elbv2 {
    client: Client,
}

impl Elbv2 {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_elasticloadbalancingv2::config::Builder::from(config)
                    .interceptor(super::calls::CountRequests)
                    .build(),
            ),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One `DescribeLoadBalancers` of names or ARNs (every page); `Ok(None)` when ELBv2
    /// answers that one of them does not exist (it answers so for the whole call).
    async fn describe(&self, batch: &[String]) -> AwsResult<Option<Vec<FoundLoadBalancer>>> {
        let arns = batch
            .first()
            .is_some_and(|r| domain::spec::LoadBalancer::is_arn(r));
        let mut req = self.client.describe_load_balancers();
        req = if arns {
            req.set_load_balancer_arns(Some(batch.to_vec()))
        } else {
            req.set_names(Some(batch.to_vec()))
        };
        let mut pages = req.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let e = classify(
                        format!("reading load balancers {}", super::names(batch)),
                        "elasticloadbalancing:DescribeLoadBalancers",
                        e,
                    );
                    if e.code.as_deref() == Some("LoadBalancerNotFound") {
                        return Ok(None);
                    }
                    return Err(e);
                }
            };
            out.extend(page.load_balancers().iter().map(|l| FoundLoadBalancer {
                name: l.load_balancer_name().unwrap_or_default().to_owned(),
                arn: l.load_balancer_arn().unwrap_or_default().to_owned(),
            }));
        }
        Ok(Some(out))
    }
}

impl Elbv2Api for Elbv2 {
    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "elbv2", action = "DescribeLoadBalancers", resource = %super::names(refs)))]
    async fn load_balancers(
        &self,
        refs: &[String],
    ) -> AwsResult<Vec<(String, Option<FoundLoadBalancer>)>> {
        let (arns, names): (Vec<String>, Vec<String>) = refs
            .iter()
            .cloned()
            .partition(|r| domain::spec::LoadBalancer::is_arn(r));
        let mut found = Vec::new();
        for kind in [names, arns] {
            for batch in kind.chunks(NAMES_PER_CALL) {
                match self.describe(batch).await? {
                    Some(list) => found.extend(list),
                    // One is missing: ask for each alone to tell which.
                    None => {
                        for one in batch {
                            if let Some(list) = self.describe(std::slice::from_ref(one)).await? {
                                found.extend(list);
                            }
                        }
                    }
                }
            }
        }
        Ok(refs
            .iter()
            .map(|r| {
                let hit = found.iter().find(|f| &f.name == r || &f.arn == r).cloned();
                (r.clone(), hit)
            })
            .collect())
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "elbv2", action = "DescribeTargetGroups", resource = %lb_arn))]
    async fn target_groups(&self, lb_arn: &str) -> AwsResult<Vec<FoundTargetGroup>> {
        let mut pages = self
            .client
            .describe_target_groups()
            .load_balancer_arn(lb_arn)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let e = classify(
                        format!("reading the target groups of {lb_arn}"),
                        "elasticloadbalancing:DescribeTargetGroups",
                        e,
                    );
                    // What the emulator answers for a load balancer without target groups
                    // (AWS answers an empty list).
                    if e.code.as_deref() == Some("TargetGroupNotFound") {
                        return Ok(Vec::new());
                    }
                    return Err(e);
                }
            };
            out.extend(page.target_groups().iter().map(|t| FoundTargetGroup {
                name: t.target_group_name().unwrap_or_default().to_owned(),
                arn: t.target_group_arn().unwrap_or_default().to_owned(),
                port: t.port(),
            }));
        }
        Ok(out)
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "elbv2", action = "DescribeTargetHealth", resource = %tg_arn))]
    async fn target_health(&self, tg_arn: &str) -> AwsResult<Vec<Target>> {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(tg_arn)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("reading the health of the targets of {tg_arn}"),
                    "elasticloadbalancing:DescribeTargetHealth",
                    e,
                )
            })?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .map(|d| {
                let t = d.target();
                let h = d.target_health();
                Target {
                    id: t.and_then(|t| t.id()).unwrap_or_default().to_owned(),
                    port: t.and_then(|t| t.port()),
                    zone: t.and_then(|t| t.availability_zone()).map(str::to_owned),
                    state: h
                        .and_then(|h| h.state())
                        .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned()),
                    reason: h.and_then(|h| h.reason()).map(|r| r.as_str().to_owned()),
                    description: h.and_then(|h| h.description()).map(str::to_owned),
                }
            })
            .collect())
    }
}

/// "There is no load balancer …", as a not-found error of the call that looked.
pub fn no_load_balancer(given: &str) -> AwsError {
    AwsError::not_found(
        format!("reading load balancer {given}"),
        format!("ELBv2 has no load balancer `{given}` in this account and region (elasticloadbalancing:DescribeLoadBalancers)"),
    )
}
