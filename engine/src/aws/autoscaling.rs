//! Auto Scaling: groups, their scaling policies and scheduled actions.

use std::future::Future;

use aws_sdk_autoscaling::types::LifecycleState;
use aws_sdk_autoscaling::Client;
use domain::observed::{ObservedPolicy, ObservedScheduledAction, PolicySettings};

use super::{classify, AwsResult};

/// Policies tierdeck manages carry this prefix; others are counted and left alone.
pub const MANAGED_PREFIX: &str = "tierdeck-";

/// A group as Auto Scaling describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSnapshot {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub in_service: u32,
    /// Managed policies with their ARN (alarms call policies by ARN).
    pub policies: Vec<(ObservedPolicy, String)>,
    pub other_policies: usize,
    pub scheduled_actions: Vec<ObservedScheduledAction>,
}

pub trait AutoScalingApi: Send + Sync {
    /// `None` when there is no group of that name.
    fn describe_group(
        &self,
        name: &str,
    ) -> impl Future<Output = AwsResult<Option<GroupSnapshot>>> + Send;
}

/// The SDK-backed adapter.
#[derive(Debug, Clone)]
pub struct AutoScaling {
    client: Client,
}

impl AutoScaling {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(config),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn count(v: Option<i32>) -> u32 {
    v.unwrap_or(0).max(0) as u32
}

impl AutoScalingApi for AutoScaling {
    async fn describe_group(&self, name: &str) -> AwsResult<Option<GroupSnapshot>> {
        let what = format!("reading autoscaling group {name}");
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| classify(&what, "autoscaling:DescribeAutoScalingGroups", e))?;
        let Some(g) = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
        else {
            return Ok(None);
        };
        let in_service = g
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
            .count() as u32;

        let policies_out = self
            .client
            .describe_policies()
            .auto_scaling_group_name(name)
            .send()
            .await
            .map_err(|e| classify(&what, "autoscaling:DescribePolicies", e))?;
        let mut policies = Vec::new();
        let mut other_policies = 0;
        for p in policies_out.scaling_policies() {
            let policy_name = p.policy_name().unwrap_or_default();
            if !policy_name.starts_with(MANAGED_PREFIX) {
                other_policies += 1;
                continue;
            }
            let settings = match p.target_tracking_configuration() {
                Some(tt) => PolicySettings::TargetTracking {
                    target_percent: tt.target_value().unwrap_or_default(),
                },
                None => PolicySettings::Step {
                    adjustment: p.scaling_adjustment().unwrap_or_default(),
                    cooldown_seconds: count(p.cooldown()),
                },
            };
            policies.push((
                ObservedPolicy {
                    name: policy_name.to_owned(),
                    settings,
                },
                p.policy_arn().unwrap_or_default().to_owned(),
            ));
        }

        let actions_out = self
            .client
            .describe_scheduled_actions()
            .auto_scaling_group_name(name)
            .send()
            .await
            .map_err(|e| classify(&what, "autoscaling:DescribeScheduledActions", e))?;
        let scheduled_actions = actions_out
            .scheduled_update_group_actions()
            .iter()
            .filter(|a| a.auto_scaling_group_name() == Some(name))
            .map(|a| ObservedScheduledAction {
                name: a.scheduled_action_name().unwrap_or_default().to_owned(),
                recurrence: a.recurrence().unwrap_or_default().to_owned(),
                timezone: a.time_zone().unwrap_or("UTC").to_owned(),
                min: a.min_size().map(|v| v.max(0) as u32),
                max: a.max_size().map(|v| v.max(0) as u32),
                desired: a.desired_capacity().map(|v| v.max(0) as u32),
            })
            .collect();

        Ok(Some(GroupSnapshot {
            name: name.to_owned(),
            min: count(g.min_size()),
            max: count(g.max_size()),
            desired: count(g.desired_capacity()),
            in_service,
            policies,
            other_policies,
            scheduled_actions,
        }))
    }
}
