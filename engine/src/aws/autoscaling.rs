//! Auto Scaling: groups, their scaling policies and scheduled actions.

use std::future::Future;

use aws_sdk_autoscaling::operation::RequestId;
use aws_sdk_autoscaling::types::{
    LifecycleState, MetricType, PredefinedMetricSpecification, TargetTrackingConfiguration,
};
use aws_sdk_autoscaling::Client;
use domain::observed::{ObservedPolicy, ObservedScheduledAction, PolicySettings};
use domain::plan::CapacityField;

use super::{classify, AwsError, AwsResult};

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

    /// The group's instances in service and still launching, in one
    /// `DescribeAutoScalingGroups` (a settling step's poll); `None` when there is no group.
    fn instances(
        &self,
        name: &str,
    ) -> impl Future<Output = AwsResult<Option<InstanceCount>>> + Send;

    /// Sets one of min, max or desired; returns the request id.
    fn set_capacity(
        &self,
        group: &str,
        field: CapacityField,
        value: u32,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// Creates or replaces a scaling policy.
    fn put_policy(
        &self,
        group: &str,
        policy: &str,
        settings: &PolicySettings,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// The ARN of a group's policy (alarms call policies by ARN).
    fn policy_arn(
        &self,
        group: &str,
        policy: &str,
    ) -> impl Future<Output = AwsResult<String>> + Send;

    fn delete_policy(
        &self,
        group: &str,
        policy: &str,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// Creates or replaces a recurring scheduled action.
    fn put_scheduled_action(
        &self,
        group: &str,
        action: &ObservedScheduledAction,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    fn delete_scheduled_action(
        &self,
        group: &str,
        name: &str,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// Where each of these groups' instance type comes from, in one paginated
    /// `DescribeAutoScalingGroups` per 50 names; groups that do not exist are left out.
    fn instance_sources(
        &self,
        names: &[String],
    ) -> impl Future<Output = AwsResult<Vec<(String, InstanceSource)>>> + Send;

    /// The group's recent scaling activities, newest first.
    fn scaling_activities(
        &self,
        group: &str,
    ) -> impl Future<Output = AwsResult<Vec<Activity>>> + Send;
}

/// A group's instances by where they are in their lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceCount {
    pub in_service: u32,
    /// `Pending` (and its wait and proceed states): launching, not yet in service.
    pub launching: u32,
}

/// The launch template a group launches from, as Auto Scaling names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub id: Option<String>,
    pub name: Option<String>,
    /// `$Latest`, `$Default` or a number.
    pub version: String,
}

/// Where a group's instance type comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceSource {
    Template(TemplateRef),
    /// A mixed instances policy with type overrides: no one type.
    Mixed(Vec<String>),
    /// A launch configuration (not read: AWS retires them for launch templates).
    LaunchConfiguration(String),
    Unknown,
}

/// A scaling activity as Auto Scaling reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: String,
    pub status: String,
    pub description: String,
    pub cause: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: Option<String>,
}

fn rfc3339(t: &aws_smithy_types::DateTime) -> Option<String> {
    t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()
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

/// Counts fit in an `i32` by the spec's own limits; saturate rather than wrap all the same.
fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl AutoScalingApi for AutoScaling {
    async fn instances(&self, name: &str) -> AwsResult<Option<InstanceCount>> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("reading the instances of autoscaling group {name}"),
                    "autoscaling:DescribeAutoScalingGroups",
                    e,
                )
            })?;
        let Some(g) = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
        else {
            return Ok(None);
        };
        let mut count = InstanceCount {
            in_service: 0,
            launching: 0,
        };
        for i in g.instances() {
            match i.lifecycle_state() {
                Some(LifecycleState::InService) => count.in_service += 1,
                Some(
                    LifecycleState::Pending
                    | LifecycleState::PendingWait
                    | LifecycleState::PendingProceed,
                ) => count.launching += 1,
                _ => {}
            }
        }
        Ok(Some(count))
    }

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

    async fn instance_sources(&self, names: &[String]) -> AwsResult<Vec<(String, InstanceSource)>> {
        let mut out = Vec::new();
        for chunk in names.chunks(50) {
            let mut pages = self
                .client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    classify(
                        "reading the groups' launch templates",
                        "autoscaling:DescribeAutoScalingGroups",
                        e,
                    )
                })?;
                for g in page.auto_scaling_groups() {
                    let Some(name) = g.auto_scaling_group_name() else {
                        continue;
                    };
                    let template = |t: &aws_sdk_autoscaling::types::LaunchTemplateSpecification| {
                        InstanceSource::Template(TemplateRef {
                            id: t.launch_template_id().map(str::to_owned),
                            name: t.launch_template_name().map(str::to_owned),
                            version: t.version().unwrap_or("$Default").to_owned(),
                        })
                    };
                    let source = if let Some(t) = g.launch_template() {
                        template(t)
                    } else if let Some(m) = g.mixed_instances_policy() {
                        let lt = m.launch_template();
                        let overrides: Vec<String> = lt
                            .map(|l| {
                                l.overrides()
                                    .iter()
                                    .filter_map(|o| o.instance_type().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        match lt.and_then(|l| l.launch_template_specification()) {
                            Some(t) if overrides.is_empty() => template(t),
                            _ => InstanceSource::Mixed(overrides),
                        }
                    } else if let Some(c) = g.launch_configuration_name() {
                        InstanceSource::LaunchConfiguration(c.to_owned())
                    } else {
                        InstanceSource::Unknown
                    };
                    out.push((name.to_owned(), source));
                }
            }
        }
        Ok(out)
    }

    async fn set_capacity(
        &self,
        group: &str,
        field: CapacityField,
        value: u32,
    ) -> AwsResult<Option<String>> {
        let req = self
            .client
            .update_auto_scaling_group()
            .auto_scaling_group_name(group);
        let req = match field {
            CapacityField::Min => req.min_size(int(value)),
            CapacityField::Max => req.max_size(int(value)),
            CapacityField::Desired => req.desired_capacity(int(value)),
        };
        let out = req.send().await.map_err(|e| {
            classify(
                format!("setting {field} of autoscaling group {group} to {value}"),
                "autoscaling:UpdateAutoScalingGroup",
                e,
            )
        })?;
        Ok(out.request_id().map(str::to_owned))
    }

    async fn put_policy(
        &self,
        group: &str,
        policy: &str,
        settings: &PolicySettings,
    ) -> AwsResult<Option<String>> {
        let req = self
            .client
            .put_scaling_policy()
            .auto_scaling_group_name(group)
            .policy_name(policy);
        let req = match *settings {
            PolicySettings::TargetTracking { target_percent } => req
                .policy_type("TargetTrackingScaling")
                .target_tracking_configuration(
                    TargetTrackingConfiguration::builder()
                        .predefined_metric_specification(
                            PredefinedMetricSpecification::builder()
                                .predefined_metric_type(MetricType::AsgAverageCpuUtilization)
                                .build(),
                        )
                        .target_value(target_percent)
                        .build(),
                ),
            PolicySettings::Step {
                adjustment,
                cooldown_seconds,
            } => req
                .policy_type("SimpleScaling")
                .adjustment_type("ChangeInCapacity")
                .scaling_adjustment(adjustment)
                .cooldown(int(cooldown_seconds)),
        };
        let out = req.send().await.map_err(|e| {
            classify(
                format!("writing scaling policy {policy} of {group}"),
                "autoscaling:PutScalingPolicy",
                e,
            )
        })?;
        Ok(out.request_id().map(str::to_owned))
    }

    async fn policy_arn(&self, group: &str, policy: &str) -> AwsResult<String> {
        let what = format!("finding scaling policy {policy} of {group}");
        let out = self
            .client
            .describe_policies()
            .auto_scaling_group_name(group)
            .policy_names(policy)
            .send()
            .await
            .map_err(|e| classify(&what, "autoscaling:DescribePolicies", e))?;
        out.scaling_policies()
            .iter()
            .find(|p| p.policy_name() == Some(policy))
            .and_then(|p| p.policy_arn())
            .map(str::to_owned)
            .ok_or_else(|| AwsError::not_found(what, "there is no such policy"))
    }

    async fn delete_policy(&self, group: &str, policy: &str) -> AwsResult<Option<String>> {
        let out = self
            .client
            .delete_policy()
            .auto_scaling_group_name(group)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("deleting scaling policy {policy} of {group}"),
                    "autoscaling:DeletePolicy",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    async fn put_scheduled_action(
        &self,
        group: &str,
        action: &ObservedScheduledAction,
    ) -> AwsResult<Option<String>> {
        let out = self
            .client
            .put_scheduled_update_group_action()
            .auto_scaling_group_name(group)
            .scheduled_action_name(&action.name)
            .recurrence(&action.recurrence)
            .time_zone(&action.timezone)
            .set_min_size(action.min.map(int))
            .set_max_size(action.max.map(int))
            .set_desired_capacity(action.desired.map(int))
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("writing scheduled action {} of {group}", action.name),
                    "autoscaling:PutScheduledUpdateGroupAction",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    async fn delete_scheduled_action(&self, group: &str, name: &str) -> AwsResult<Option<String>> {
        let out = self
            .client
            .delete_scheduled_action()
            .auto_scaling_group_name(group)
            .scheduled_action_name(name)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("deleting scheduled action {name} of {group}"),
                    "autoscaling:DeleteScheduledAction",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    async fn scaling_activities(&self, group: &str) -> AwsResult<Vec<Activity>> {
        let out = self
            .client
            .describe_scaling_activities()
            .auto_scaling_group_name(group)
            .max_records(100)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("reading the scaling activities of {group}"),
                    "autoscaling:DescribeScalingActivities",
                    e,
                )
            })?;
        Ok(out
            .activities()
            .iter()
            .map(|a| Activity {
                id: a.activity_id().unwrap_or_default().to_owned(),
                status: a
                    .status_code()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                description: a.description().unwrap_or_default().to_owned(),
                cause: a.cause().unwrap_or_default().to_owned(),
                started_at: a.start_time().and_then(rfc3339).unwrap_or_default(),
                ended_at: a.end_time().and_then(rfc3339),
            })
            .collect())
    }
}
