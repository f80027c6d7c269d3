//! Auto Scaling: groups, their scaling policies and scheduled actions.

use std::future::Future;

use aws_sdk_autoscaling::operation::RequestId;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, LifecycleState, MetricType, PredefinedMetricSpecification,
    ScalingActivityStatusCode, ScalingPolicy, ScheduledUpdateGroupAction,
    TargetTrackingConfiguration,
};
use aws_sdk_autoscaling::Client;
use domain::import::{FoundGroup, FoundPolicy, Selector};
use domain::observed::{ObservedPolicy, ObservedRefresh, ObservedScheduledAction, PolicySettings};
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
    /// The launch template it names, and each instance with the version it was launched from.
    pub launch: Option<(TemplateRef, Vec<(String, String)>)>,
}

pub trait AutoScalingApi: Send + Sync {
    /// These groups with their managed policies and scheduled actions; groups that do not
    /// exist are left out. One `DescribeAutoScalingGroups` per 100 names, and the policies and
    /// scheduled actions of the account in pages of 100 (one group: that group's only), so the
    /// calls grow with the pages, not with the groups.
    fn describe_groups(
        &self,
        names: &[String],
    ) -> impl Future<Output = AwsResult<Vec<GroupSnapshot>>> + Send;

    /// The groups `selector` picks, with every scaling policy (tierdeck's and others) and
    /// scheduled action, for an import: `DescribeAutoScalingGroups` by the names, else of the
    /// account (kept by tag or prefix), and the account's `DescribePolicies` and
    /// `DescribeScheduledActions`, every page (one group named: its own).
    fn discover_groups(
        &self,
        selector: &Selector,
    ) -> impl Future<Output = AwsResult<Vec<Discovered>>> + Send;

    /// These groups' capacity and instances in service, in one `DescribeAutoScalingGroups`
    /// per 100 names; groups that do not exist are left out.
    fn capacities(
        &self,
        names: &[String],
    ) -> impl Future<Output = AwsResult<Vec<GroupCapacity>>> + Send;

    /// The instances in service of these groups (id and zone), in one
    /// `DescribeAutoScalingGroups` per 100 names; groups that do not exist are left out.
    fn in_service(
        &self,
        names: &[String],
    ) -> impl Future<Output = AwsResult<Vec<GroupInstance>>> + Send;

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
    /// `DescribeAutoScalingGroups` per 100 names; groups that do not exist are left out.
    fn instance_sources(
        &self,
        names: &[String],
    ) -> impl Future<Output = AwsResult<Vec<(String, InstanceSource)>>> + Send;

    /// These groups' scaling activities in progress or started at or after `since_unix`, newest
    /// first. One group: its own; more: the account's, in pages of 100, kept for these groups.
    /// Auto Scaling lists the activities in progress first, then the rest newest first, so the
    /// reading stops at the first finished one older than `since_unix` (and after
    /// [`ACTIVITY_PAGES`] pages at most).
    fn scaling_activities(
        &self,
        groups: &[String],
        since_unix: i64,
    ) -> impl Future<Output = AwsResult<Vec<Activity>>> + Send;

    /// Starts an instance refresh (`StartInstanceRefresh`); returns its id and the request id.
    /// AWS refuses one while another runs (`InstanceRefreshInProgress`).
    fn start_refresh(
        &self,
        request: &RefreshRequest<'_>,
    ) -> impl Future<Output = AwsResult<(String, Option<String>)>> + Send;

    /// One refresh of `group` by id, or the newest when `id` is `None`
    /// (`DescribeInstanceRefreshes`, one call); `None`: there is none.
    fn refresh(
        &self,
        group: &str,
        id: Option<&str>,
    ) -> impl Future<Output = AwsResult<Option<ObservedRefresh>>> + Send;

    /// Cancels the group's refresh in progress (`CancelInstanceRefresh`); AWS answers
    /// `ActiveInstanceRefreshNotFound` when none runs.
    fn cancel_refresh(&self, group: &str)
        -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// Rolls the group's refresh in progress back (`RollbackInstanceRefresh`): AWS replaces the
    /// instances it replaced with the configuration the group had before it.
    fn rollback_refresh(
        &self,
        group: &str,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;
}

/// What `StartInstanceRefresh` is asked for: the group, the version its desired configuration
/// names, and the preferences, with one checkpoint (`None`: none, the refresh runs to the end)
/// held for AWS's longest delay so that tierdeck, not a timer, says when it goes on.
#[derive(Debug, Clone)]
pub struct RefreshRequest<'a> {
    pub group: &'a str,
    pub template: &'a str,
    pub version: &'a str,
    pub preferences: &'a domain::spec::Rollout,
    pub checkpoint: Option<u32>,
}

/// AWS's longest `CheckpointDelay` (two days): a stage waits at its checkpoint until tierdeck
/// cancels it to start the next.
pub const CHECKPOINT_HOLD_SECS: i32 = 172_800;

/// The most pages of scaling activities one reading takes (100 activities a page): a poll of
/// an account busy with other groups' activities stays bounded.
pub const ACTIVITY_PAGES: usize = 20;

/// A group's capacity as Auto Scaling describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub min: u32,
    pub max: u32,
    pub desired: u32,
}

/// A group's capacity and its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCapacity {
    pub name: String,
    pub capacity: Capacity,
    pub instances: InstanceCount,
}

/// A group's instances by where they are in their lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceCount {
    pub in_service: u32,
    /// `Pending` (and its wait and proceed states): launching, not yet in service.
    pub launching: u32,
}

/// An instance in service of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    pub group: String,
    pub id: String,
    pub zone: Option<String>,
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

/// A group as an import reads it, and where its instances come from (their security groups
/// and type are the launch template's).
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    pub group: FoundGroup,
    pub source: InstanceSource,
}

/// A scaling activity as Auto Scaling reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: String,
    /// The group it belongs to.
    pub group: String,
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
            client: Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(config)
                    .interceptor(super::calls::CountRequests)
                    .build(),
            ),
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

/// Names per `DescribeAutoScalingGroups` and items per page of the describe calls: AWS's
/// maximum `MaxRecords` (its default is 50, and a call may name no more groups than that).
const PAGE: usize = 100;

/// A described group's instances by lifecycle state.
fn instance_count(g: &AutoScalingGroup) -> InstanceCount {
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
    count
}

fn capacity(g: &AutoScalingGroup) -> Capacity {
    Capacity {
        min: count(g.min_size()),
        max: count(g.max_size()),
        desired: count(g.desired_capacity()),
    }
}

/// A managed policy as tierdeck reads it, with its ARN; `None` for a policy tierdeck does not
/// manage.
fn managed_policy(p: &ScalingPolicy) -> Option<(ObservedPolicy, String)> {
    let policy_name = p.policy_name().unwrap_or_default();
    if !policy_name.starts_with(MANAGED_PREFIX) {
        return None;
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
    Some((
        ObservedPolicy {
            name: policy_name.to_owned(),
            settings,
        },
        p.policy_arn().unwrap_or_default().to_owned(),
    ))
}

/// The template a group names and each instance's version (Auto Scaling reports the version
/// an instance was launched from on the instance).
fn launch_of(g: &AutoScalingGroup) -> Option<(TemplateRef, Vec<(String, String)>)> {
    let InstanceSource::Template(t) = instance_source(g) else {
        return None;
    };
    let instances = g
        .instances()
        .iter()
        .map(|i| {
            let version = i
                .launch_template()
                .and_then(|l| l.version())
                .unwrap_or(&t.version);
            (
                i.instance_id().unwrap_or_default().to_owned(),
                version.to_owned(),
            )
        })
        .collect();
    Some((t, instances))
}

/// A refresh as tierdeck reads it.
fn refresh_of(r: &aws_sdk_autoscaling::types::InstanceRefresh) -> ObservedRefresh {
    ObservedRefresh {
        id: r.instance_refresh_id().unwrap_or_default().to_owned(),
        status: r
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        percentage: count(r.percentage_complete()),
        instances_to_update: count(r.instances_to_update()),
        reason: r.status_reason().map(str::to_owned),
    }
}

/// Where a described group's instance type comes from.
fn instance_source(g: &AutoScalingGroup) -> InstanceSource {
    let template = |t: &aws_sdk_autoscaling::types::LaunchTemplateSpecification| {
        InstanceSource::Template(TemplateRef {
            id: t.launch_template_id().map(str::to_owned),
            name: t.launch_template_name().map(str::to_owned),
            version: t.version().unwrap_or("$Default").to_owned(),
        })
    };
    if let Some(t) = g.launch_template() {
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
    }
}

/// Any scaling policy, as an import reads it.
fn found_policy(p: &ScalingPolicy) -> FoundPolicy {
    let tt = p.target_tracking_configuration();
    FoundPolicy {
        name: p.policy_name().unwrap_or_default().to_owned(),
        arn: p.policy_arn().unwrap_or_default().to_owned(),
        policy_type: p.policy_type().unwrap_or("SimpleScaling").to_owned(),
        adjustment_type: p.adjustment_type().map(str::to_owned),
        scaling_adjustment: p.scaling_adjustment(),
        cooldown_seconds: p.cooldown().map(|c| c.max(0) as u32),
        steps: p
            .step_adjustments()
            .iter()
            .map(|s| {
                (
                    s.metric_interval_lower_bound(),
                    s.metric_interval_upper_bound(),
                    s.scaling_adjustment().unwrap_or_default(),
                )
            })
            .collect(),
        target_metric: tt
            .and_then(|t| t.predefined_metric_specification())
            .and_then(|m| m.predefined_metric_type())
            .map(|m| m.as_str().to_owned()),
        target_value: tt.and_then(|t| t.target_value()),
        enabled: p.enabled().unwrap_or(true),
    }
}

fn scheduled_action(a: &ScheduledUpdateGroupAction) -> ObservedScheduledAction {
    ObservedScheduledAction {
        name: a.scheduled_action_name().unwrap_or_default().to_owned(),
        recurrence: a.recurrence().unwrap_or_default().to_owned(),
        timezone: a.time_zone().unwrap_or("UTC").to_owned(),
        min: a.min_size().map(|v| v.max(0) as u32),
        max: a.max_size().map(|v| v.max(0) as u32),
        desired: a.desired_capacity().map(|v| v.max(0) as u32),
    }
}

impl AutoScaling {
    /// The named groups as Auto Scaling describes them, every page of every batch; `what` is
    /// what the reading is for, in an error.
    async fn groups(&self, names: &[String], what: &str) -> AwsResult<Vec<AutoScalingGroup>> {
        let mut out = Vec::new();
        for batch in names.chunks(PAGE) {
            let mut pages = self
                .client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(batch.to_vec()))
                .max_records(PAGE as i32)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| classify(what, "autoscaling:DescribeAutoScalingGroups", e))?;
                out.extend(
                    page.auto_scaling_groups()
                        .iter()
                        .filter(|g| {
                            g.auto_scaling_group_name()
                                .is_some_and(|n| batch.iter().any(|b| b == n))
                        })
                        .cloned(),
                );
            }
        }
        Ok(out)
    }

    /// The scaling policies of `group`, or of the account when `None`, every page.
    async fn policies(&self, group: Option<&str>, what: &str) -> AwsResult<Vec<ScalingPolicy>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_policies()
            .set_auto_scaling_group_name(group.map(str::to_owned))
            .max_records(PAGE as i32)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(what, "autoscaling:DescribePolicies", e))?;
            out.extend_from_slice(page.scaling_policies());
        }
        Ok(out)
    }

    /// The scheduled actions of `group`, or of the account when `None`, every page.
    async fn scheduled_actions(
        &self,
        group: Option<&str>,
        what: &str,
    ) -> AwsResult<Vec<ScheduledUpdateGroupAction>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_scheduled_actions()
            .set_auto_scaling_group_name(group.map(str::to_owned))
            .max_records(PAGE as i32)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| classify(what, "autoscaling:DescribeScheduledActions", e))?;
            out.extend_from_slice(page.scheduled_update_group_actions());
        }
        Ok(out)
    }
}

impl AutoScalingApi for AutoScaling {
    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DescribeAutoScalingGroups", resource = %super::names(names)))]
    async fn in_service(&self, names: &[String]) -> AwsResult<Vec<GroupInstance>> {
        let groups = self
            .groups(names, "reading the groups' instances in service")
            .await?;
        Ok(groups
            .iter()
            .flat_map(|g| {
                g.instances()
                    .iter()
                    .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
                    .map(|i| GroupInstance {
                        group: g.auto_scaling_group_name().unwrap_or_default().to_owned(),
                        id: i.instance_id().unwrap_or_default().to_owned(),
                        zone: i.availability_zone().map(str::to_owned),
                    })
            })
            .collect())
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DescribeAutoScalingGroups", resource = %name))]
    async fn instances(&self, name: &str) -> AwsResult<Option<InstanceCount>> {
        let what = format!("reading the instances of autoscaling group {name}");
        let groups = self.groups(&[name.to_owned()], &what).await?;
        Ok(groups.first().map(instance_count))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DescribeAutoScalingGroups+DescribePolicies+DescribeScheduledActions", resource = %selector.text()))]
    async fn discover_groups(&self, selector: &Selector) -> AwsResult<Vec<Discovered>> {
        let what = format!("finding the autoscaling groups ({})", selector.text());
        let groups = match selector {
            Selector::Names { names } => self.groups(names, &what).await?,
            _ => {
                let mut out = Vec::new();
                let mut pages = self
                    .client
                    .describe_auto_scaling_groups()
                    .max_records(PAGE as i32)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page
                        .map_err(|e| classify(&what, "autoscaling:DescribeAutoScalingGroups", e))?;
                    out.extend_from_slice(page.auto_scaling_groups());
                }
                out
            }
        };
        let tags = |g: &AutoScalingGroup| -> std::collections::BTreeMap<String, String> {
            g.tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect()
        };
        let groups: Vec<AutoScalingGroup> = groups
            .into_iter()
            .filter(|g| selector.matches(g.auto_scaling_group_name().unwrap_or_default(), &tags(g)))
            .collect();
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let only = match groups.as_slice() {
            [one] => one.auto_scaling_group_name(),
            _ => None,
        };
        let what = format!(
            "reading the scaling of {} autoscaling group(s)",
            groups.len()
        );
        let (policies, actions) = futures::try_join!(
            self.policies(only, &what),
            self.scheduled_actions(only, &what)
        )?;
        Ok(groups
            .iter()
            .map(|g| {
                let name = g.auto_scaling_group_name().unwrap_or_default();
                let c = capacity(g);
                Discovered {
                    group: FoundGroup {
                        name: name.to_owned(),
                        min: c.min,
                        max: c.max,
                        desired: c.desired,
                        tags: tags(g),
                        subnet_ids: g
                            .vpc_zone_identifier()
                            .unwrap_or_default()
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        security_groups: Vec::new(),
                        launched_from: None,
                        instance_type: None,
                        policies: policies
                            .iter()
                            .filter(|p| p.auto_scaling_group_name() == Some(name))
                            .map(found_policy)
                            .collect(),
                        scheduled_actions: actions
                            .iter()
                            .filter(|a| a.auto_scaling_group_name() == Some(name))
                            .map(scheduled_action)
                            .collect(),
                    },
                    source: instance_source(g),
                }
            })
            .collect())
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DescribeAutoScalingGroups", resource = %super::names(names)))]
    async fn capacities(&self, names: &[String]) -> AwsResult<Vec<GroupCapacity>> {
        let groups = self
            .groups(names, "reading the capacity of the autoscaling groups")
            .await?;
        Ok(groups
            .iter()
            .map(|g| GroupCapacity {
                name: g.auto_scaling_group_name().unwrap_or_default().to_owned(),
                capacity: capacity(g),
                instances: instance_count(g),
            })
            .collect())
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DescribeAutoScalingGroups+DescribePolicies+DescribeScheduledActions", resource = %super::names(names)))]
    async fn describe_groups(&self, names: &[String]) -> AwsResult<Vec<GroupSnapshot>> {
        let what = match names {
            [one] => format!("reading autoscaling group {one}"),
            _ => format!("reading {} autoscaling groups", names.len()),
        };
        if names.is_empty() {
            return Ok(Vec::new());
        }
        // One group: its own policies and actions; more: the account's, in pages, kept for
        // these groups. The three listings run at once.
        let only = match names {
            [one] => Some(one.as_str()),
            _ => None,
        };
        let (groups, policies, actions) = futures::try_join!(
            self.groups(names, &what),
            self.policies(only, &what),
            self.scheduled_actions(only, &what)
        )?;
        Ok(groups
            .iter()
            .map(|g| {
                let name = g.auto_scaling_group_name().unwrap_or_default();
                let own_policies = policies
                    .iter()
                    .filter(|p| p.auto_scaling_group_name() == Some(name));
                let mut managed = Vec::new();
                let mut other_policies = 0;
                for p in own_policies {
                    match managed_policy(p) {
                        Some(m) => managed.push(m),
                        None => other_policies += 1,
                    }
                }
                let c = capacity(g);
                GroupSnapshot {
                    name: name.to_owned(),
                    min: c.min,
                    max: c.max,
                    desired: c.desired,
                    in_service: instance_count(g).in_service,
                    policies: managed,
                    other_policies,
                    scheduled_actions: actions
                        .iter()
                        .filter(|a| a.auto_scaling_group_name() == Some(name))
                        .map(scheduled_action)
                        .collect(),
                    launch: launch_of(g),
                }
            })
            .collect())
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DescribeAutoScalingGroups", resource = %super::names(names)))]
    async fn instance_sources(&self, names: &[String]) -> AwsResult<Vec<(String, InstanceSource)>> {
        let groups = self
            .groups(names, "reading the groups' launch templates")
            .await?;
        Ok(groups
            .iter()
            .filter_map(|g| Some((g.auto_scaling_group_name()?.to_owned(), instance_source(g))))
            .collect())
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "UpdateAutoScalingGroup", resource = %group))]
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

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "PutScalingPolicy", resource = %format_args!("{group}/{policy}")))]
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

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DescribePolicies", resource = %format_args!("{group}/{policy}")))]
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

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DeletePolicy", resource = %format_args!("{group}/{policy}")))]
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

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "PutScheduledUpdateGroupAction", resource = %format_args!("{group}/{}", action.name)))]
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

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DeleteScheduledAction", resource = %format_args!("{group}/{name}")))]
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

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "StartInstanceRefresh", resource = %r.group))]
    async fn start_refresh(&self, r: &RefreshRequest<'_>) -> AwsResult<(String, Option<String>)> {
        use aws_sdk_autoscaling::types::{
            AlarmSpecification, DesiredConfiguration, LaunchTemplateSpecification,
            RefreshPreferences,
        };
        let p = r.preferences;
        let mut prefs = RefreshPreferences::builder()
            .min_healthy_percentage(int(p.min_healthy_percent))
            .max_healthy_percentage(int(p.max_healthy_percent))
            .skip_matching(p.skip_matching)
            .auto_rollback(p.auto_rollback)
            .set_instance_warmup(p.warmup_seconds.map(int));
        if let Some(c) = r.checkpoint.filter(|c| *c < 100) {
            prefs = prefs
                .checkpoint_percentages(int(c))
                .checkpoint_delay(CHECKPOINT_HOLD_SECS);
        }
        if !p.alarms.is_empty() {
            prefs = prefs.alarm_specification(
                AlarmSpecification::builder()
                    .set_alarms(Some(p.alarms.clone()))
                    .build(),
            );
        }
        let out = self
            .client
            .start_instance_refresh()
            .auto_scaling_group_name(r.group)
            .desired_configuration(
                DesiredConfiguration::builder()
                    .launch_template(
                        LaunchTemplateSpecification::builder()
                            .launch_template_name(r.template)
                            .version(r.version)
                            .build(),
                    )
                    .build(),
            )
            .preferences(prefs.build())
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!(
                        "starting an instance refresh of {} to {} version {}",
                        r.group, r.template, r.version
                    ),
                    "autoscaling:StartInstanceRefresh",
                    e,
                )
            })?;
        Ok((
            out.instance_refresh_id().unwrap_or_default().to_owned(),
            out.request_id().map(str::to_owned),
        ))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DescribeInstanceRefreshes", resource = %group))]
    async fn refresh(&self, group: &str, id: Option<&str>) -> AwsResult<Option<ObservedRefresh>> {
        let out = self
            .client
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .set_instance_refresh_ids(id.map(|i| vec![i.to_owned()]))
            .max_records(1)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("reading the instance refreshes of {group}"),
                    "autoscaling:DescribeInstanceRefreshes",
                    e,
                )
            })?;
        // AWS lists a group's refreshes newest first.
        Ok(out.instance_refreshes().first().map(refresh_of))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "CancelInstanceRefresh", resource = %group))]
    async fn cancel_refresh(&self, group: &str) -> AwsResult<Option<String>> {
        let out = self
            .client
            .cancel_instance_refresh()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("cancelling the instance refresh of {group}"),
                    "autoscaling:CancelInstanceRefresh",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "RollbackInstanceRefresh", resource = %group))]
    async fn rollback_refresh(&self, group: &str) -> AwsResult<Option<String>> {
        let out = self
            .client
            .rollback_instance_refresh()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("rolling back the instance refresh of {group}"),
                    "autoscaling:RollbackInstanceRefresh",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "autoscaling", action = "DescribeScalingActivities", resource = %super::names(groups)))]
    async fn scaling_activities(
        &self,
        groups: &[String],
        since_unix: i64,
    ) -> AwsResult<Vec<Activity>> {
        // One group: its own activities; more: the account's.
        let (what, only) = match groups {
            [] => return Ok(Vec::new()),
            [one] => (
                format!("reading the scaling activities of {one}"),
                Some(one.clone()),
            ),
            _ => (
                format!("reading the scaling activities of {} groups", groups.len()),
                None,
            ),
        };
        let mut pages = self
            .client
            .describe_scaling_activities()
            .set_auto_scaling_group_name(only)
            .max_records(PAGE as i32)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        for _ in 0..ACTIVITY_PAGES {
            let Some(page) = pages.next().await else {
                break;
            };
            let page =
                page.map_err(|e| classify(&what, "autoscaling:DescribeScalingActivities", e))?;
            let mut older = false;
            for a in page.activities() {
                let finished = a.status_code().is_some_and(|s| {
                    matches!(
                        s,
                        ScalingActivityStatusCode::Successful
                            | ScalingActivityStatusCode::Failed
                            | ScalingActivityStatusCode::Cancelled
                    )
                });
                if finished && a.start_time().is_some_and(|t| t.secs() < since_unix) {
                    older = true;
                    break;
                }
                let group = a.auto_scaling_group_name().unwrap_or_default();
                if groups.iter().any(|g| g == group) {
                    out.push(Activity {
                        id: a.activity_id().unwrap_or_default().to_owned(),
                        group: group.to_owned(),
                        status: a
                            .status_code()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        description: a.description().unwrap_or_default().to_owned(),
                        cause: a.cause().unwrap_or_default().to_owned(),
                        started_at: a.start_time().and_then(rfc3339).unwrap_or_default(),
                        ended_at: a.end_time().and_then(rfc3339),
                    });
                }
            }
            if older {
                break;
            }
        }
        Ok(out)
    }
}
