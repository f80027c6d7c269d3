//! An in-memory AWS for the engine's unit tests: the four adapter traits over plain maps, so
//! the apply, settle, revert and watch logic runs in milliseconds without a network. It keeps
//! what the adapters read back the way AWS does for what tierdeck manages (capacity, managed
//! policies and their alarms, scheduled actions, database settings, ingress rules, subnets and
//! network ACL entries, with EC2's answers to an entry that is there already or not), counts
//! every call, fails chosen calls, and — as real AWS does and the emulator does not — takes
//! time: a launched instance is `Pending` for some polls, a modified database is `modifying`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use domain::import::{FoundAlarm, FoundGroup, FoundPolicy, Selector};
use domain::observed::{
    Comparison, ObservedAclEntry, ObservedDatabase, ObservedNetworkAcl, ObservedPolicy,
    ObservedRefresh, ObservedRule, ObservedScheduledAction, ObservedSecurityGroup, ObservedSubnet,
    PendingValues, PolicySettings,
};
use domain::plan::{CapacityField, DbSetting};
use domain::spec::{AwsRef, EnvironmentSpec};

use super::autoscaling::{
    Activity, AutoScalingApi, Capacity, Discovered, GroupCapacity, GroupInstance, GroupSnapshot,
    InstanceCount, InstanceSource, RefreshRequest, TemplateRef,
};
use super::cloudwatch::{AlarmSnapshot, CloudWatchApi, CpuAlarm};
use super::ec2::{Ec2Api, TemplateSettings, TemplateVersion};
use super::elbv2::{Elbv2Api, FoundLoadBalancer, FoundTargetGroup};
use super::rds::{DiscoveredDatabase, RdsApi};
use super::{AwsError, AwsErrorKind, AwsResult};
use domain::cloudwatch::{MetricQuery, Series, Target};

/// A metric with its dimensions (sorted).
pub type MetricKey = (String, Vec<(String, String)>);

/// One Auto Scaling group.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub in_service: u32,
    /// Launching instances, each with the polls it still stays `Pending`.
    pub launching: Vec<u32>,
    pub policies: BTreeMap<String, PolicySettings>,
    /// Policies not made by tierdeck.
    pub other_policies: usize,
    pub scheduled: BTreeMap<String, ObservedScheduledAction>,
    pub activities: Vec<Activity>,
    /// The launch template (by name) and version it names; `None`: none.
    pub template: Option<(String, String)>,
    /// Each instance and the version it was launched from.
    pub instances: Vec<(String, String)>,
    /// Its instance refreshes, oldest first.
    pub refreshes: Vec<Refresh>,
}

/// An instance refresh of the in-memory AWS: each describe replaces one instance, it waits at
/// its checkpoint, and it ends as AWS's do.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub id: String,
    pub status: String,
    /// The version it moves to, and the one the group had before (where a rollback goes).
    pub to: String,
    pub from: String,
    pub checkpoint: Option<u32>,
    /// The instances it replaced: (old id and version, new id).
    pub replaced: Vec<((String, String), String)>,
}

/// A chosen failure: the next `times` calls of `action` (every call when `None`) fail so.
#[derive(Debug, Clone)]
struct Fault {
    action: &'static str,
    kind: AwsErrorKind,
    code: &'static str,
    times: Option<u32>,
}

#[derive(Debug, Default)]
pub struct State {
    pub groups: BTreeMap<String, Group>,
    pub databases: BTreeMap<String, ObservedDatabase>,
    /// Security groups by name.
    pub security_groups: BTreeMap<String, ObservedSecurityGroup>,
    pub subnets: Vec<ObservedSubnet>,
    pub network_acls: Vec<ObservedNetworkAcl>,
    pub alarms: BTreeMap<String, AlarmSnapshot>,
    /// Load balancers by name: their ARN and target groups (name, ARN).
    pub load_balancers: BTreeMap<String, (String, Vec<(String, String)>)>,
    /// Targets and their health by target group ARN.
    pub target_health: BTreeMap<String, Vec<Target>>,
    /// Datapoints put, by (metric, dimensions): (Unix seconds, value). A query's buckets sum
    /// them (`Sum`), count them (`SampleCount`) or average them (every other statistic).
    pub datapoints: BTreeMap<MetricKey, Vec<(i64, f64)>>,
    /// Launch templates by name: each version's image (version n at n − 1).
    pub templates: BTreeMap<String, Vec<String>>,
    /// Instances launched so far, for their ids.
    pub launched: u32,
    /// Every call made, by action, in order.
    pub calls: Vec<&'static str>,
    /// How many polls a launched instance stays `Pending`.
    pub launch_polls: u32,
    /// How many describes a modified database stays `modifying`, its changes pending.
    pub modify_polls: u32,
    /// Polls left of each database being modified, and the values it moves to.
    modifying: BTreeMap<String, (u32, Vec<DbSetting>)>,
    faults: Vec<Fault>,
}

/// The in-memory AWS: every adapter of a test's clients answers from it.
#[derive(Debug, Default)]
pub struct MemoryAws {
    state: Mutex<State>,
}

const ACCOUNT: &str = "123456789012";

fn arn(group: &str, policy: &str) -> String {
    format!("arn:aws:autoscaling:ap-northeast-2:{ACCOUNT}:scalingPolicy:{group}:{policy}")
}

/// A managed policy as an import reads it from AWS.
fn found_policy(group: &str, name: &str, settings: &PolicySettings) -> FoundPolicy {
    let (policy_type, adjustment, cooldown, metric, target) = match *settings {
        PolicySettings::Step {
            adjustment,
            cooldown_seconds,
        } => (
            "SimpleScaling",
            Some(adjustment),
            Some(cooldown_seconds),
            None,
            None,
        ),
        PolicySettings::TargetTracking { target_percent } => (
            "TargetTrackingScaling",
            None,
            None,
            Some("ASGAverageCPUUtilization".to_owned()),
            Some(target_percent),
        ),
    };
    FoundPolicy {
        name: name.to_owned(),
        arn: arn(group, name),
        policy_type: policy_type.to_owned(),
        adjustment_type: adjustment.map(|_| "ChangeInCapacity".to_owned()),
        scaling_adjustment: adjustment,
        cooldown_seconds: cooldown,
        steps: Vec::new(),
        target_metric: metric,
        target_value: target,
        enabled: true,
    }
}

fn request_id(state: &State) -> Option<String> {
    Some(format!("memory-{}", state.calls.len()))
}

impl MemoryAws {
    /// An AWS that runs what `spec` names, as a team's account looks before tierdeck: each
    /// group at one instance (min 1, max 2) with nothing managed, each database small with its
    /// defaults, each security group without rules; the subnets, and the network ACLs guarding
    /// them with the spec's entries (as the sandbox makes them).
    pub fn running(spec: &EnvironmentSpec) -> Self {
        let aws = MemoryAws::default();
        {
            let mut s = aws.state();
            for (i, g) in spec.autoscaling_groups.iter().enumerate() {
                // Launched from version 1 of its own template, as the sandbox makes them.
                let template = format!("{}-lt", g.name);
                s.templates
                    .insert(template.clone(), vec![format!("ami-{:08x}", i + 1)]);
                s.launched += 1;
                let instance = format!("i-mem{:05}", s.launched);
                s.groups.insert(
                    g.name.to_string(),
                    Group {
                        min: 1,
                        max: 2,
                        desired: 1,
                        in_service: 1,
                        template: Some((template, "1".into())),
                        instances: vec![(instance, "1".into())],
                        ..Group::default()
                    },
                );
            }
            for d in &spec.databases {
                s.databases.insert(
                    d.identifier.to_string(),
                    ObservedDatabase {
                        identifier: d.identifier.to_string(),
                        instance_class: "db.t3.micro".into(),
                        multi_az: false,
                        allocated_storage_gb: 20,
                        backup_retention_days: 1,
                        deletion_protection: false,
                        status: "available".into(),
                        engine: "mysql".into(),
                        storage_type: "gp2".into(),
                        pending_modifications: Vec::new(),
                        pending: PendingValues::default(),
                    },
                );
            }
            for (i, sub) in spec.subnets.iter().enumerate() {
                s.subnets.push(ObservedSubnet {
                    id: match &sub.resource {
                        AwsRef::Id(id) => id.clone(),
                        AwsRef::Name(_) => format!("subnet-{i:08x}"),
                    },
                    name: match &sub.resource {
                        AwsRef::Name(n) => Some(n.clone()),
                        AwsRef::Id(_) => None,
                    },
                    cidr: sub.cidr.clone(),
                    vpc_id: "vpc-00000001".into(),
                });
            }
            for (i, acl) in spec.network_acls.iter().enumerate() {
                let subnet_ids = spec
                    .subnets
                    .iter()
                    .zip(&s.subnets)
                    .filter(|(sub, _)| acl.subnets.contains(&sub.tier))
                    .map(|(_, o)| o.id.clone())
                    .collect();
                s.network_acls.push(ObservedNetworkAcl {
                    id: match &acl.resource {
                        AwsRef::Id(id) => id.clone(),
                        AwsRef::Name(_) => format!("acl-{i:08x}"),
                    },
                    name: match &acl.resource {
                        AwsRef::Name(n) => Some(n.clone()),
                        AwsRef::Id(_) => None,
                    },
                    vpc_id: "vpc-00000001".into(),
                    ingress: acl.ingress.iter().map(ObservedAclEntry::from).collect(),
                    egress: acl.egress.iter().map(ObservedAclEntry::from).collect(),
                    subnet_ids,
                });
            }
            for (i, sg) in spec.security_groups.iter().enumerate() {
                s.security_groups.insert(
                    sg.name.clone(),
                    ObservedSecurityGroup {
                        name: sg.name.clone(),
                        id: format!("sg-{i:08x}"),
                        ingress: Vec::new(),
                    },
                );
            }
        }
        aws
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails the next `times` calls of `action` (every call when `None`) as throttled.
    pub fn throttle(&self, action: &'static str, times: Option<u32>) {
        self.state().faults.push(Fault {
            action,
            kind: AwsErrorKind::Retryable,
            code: "Throttling",
            times,
        });
    }

    /// Refuses every call of `action` as access denied.
    pub fn deny(&self, action: &'static str) {
        self.state().faults.push(Fault {
            action,
            kind: AwsErrorKind::AccessDenied {
                action: action.to_owned(),
            },
            code: "AccessDenied",
            times: None,
        });
    }

    /// How many calls of `action` were made.
    pub fn calls(&self, action: &str) -> usize {
        self.state().calls.iter().filter(|c| **c == action).count()
    }

    /// Counts a call of `action` and answers with its fault, if one is set.
    #[expect(
        clippy::result_large_err,
        reason = "the adapters' own error, as the SDK's adapters return it"
    )]
    fn call(&self, action: &'static str) -> AwsResult<std::sync::MutexGuard<'_, State>> {
        let mut s = self.state();
        s.calls.push(action);
        let hit = s
            .faults
            .iter_mut()
            .find(|f| f.action == action && f.times.is_none_or(|n| n > 0));
        if let Some(f) = hit {
            if let Some(n) = &mut f.times {
                *n -= 1;
            }
            return Err(AwsError {
                what: format!("calling {action}"),
                message: format!("{}: the in-memory AWS fails this call", f.code),
                kind: f.kind.clone(),
                code: Some(f.code.to_owned()),
                request_id: None,
                source: None,
            });
        }
        Ok(s)
    }
}

impl State {
    #[expect(
        clippy::result_large_err,
        reason = "the adapters' own error, as the SDK's adapters return it"
    )]
    fn group(&mut self, name: &str) -> AwsResult<&mut Group> {
        self.groups.get_mut(name).ok_or_else(|| {
            AwsError::rejected(
                format!("changing autoscaling group {name}"),
                "ValidationError: the group does not exist",
            )
        })
    }

    /// One describe of a group's refreshes: the newest moves one step (one instance replaced,
    /// or the step from one state to the next).
    fn tick_refresh(&mut self, name: &str) {
        let Some(g) = self.groups.get_mut(name) else {
            return;
        };
        let total = g.instances.len().max(1) as u32;
        let Some(r) = g.refreshes.last_mut() else {
            return;
        };
        match r.status.as_str() {
            "Pending" => r.status = "InProgress".into(),
            "Cancelling" => r.status = "Cancelled".into(),
            "InProgress" => {
                let done = g.instances.iter().filter(|(_, v)| *v == r.to).count() as u32;
                if r.checkpoint.is_some_and(|c| done * 100 / total >= c) {
                    return;
                }
                match g.instances.iter().position(|(_, v)| *v != r.to) {
                    Some(i) => {
                        self.launched += 1;
                        let new = format!("i-mem{:05}", self.launched);
                        let old =
                            std::mem::replace(&mut g.instances[i], (new.clone(), r.to.clone()));
                        r.replaced.push((old, new));
                    }
                    None => {
                        r.status = "Successful".into();
                        if let Some(t) = &mut g.template {
                            t.1 = r.to.clone();
                        }
                    }
                }
            }
            "RollbackInProgress" => match r.replaced.pop() {
                Some(((_, version), new)) => {
                    self.launched += 1;
                    let id = format!("i-mem{:05}", self.launched);
                    if let Some(slot) = g.instances.iter_mut().find(|(i, _)| *i == new) {
                        *slot = (id, version);
                    }
                }
                None => r.status = "RollbackSuccessful".into(),
            },
            _ => {}
        }
    }

    /// One describe of a group's instances: launching ones come closer to service.
    fn tick_launches(&mut self, name: &str) {
        if let Some(g) = self.groups.get_mut(name) {
            let mut done = 0;
            g.launching.retain_mut(|left| {
                if *left == 0 {
                    done += 1;
                    false
                } else {
                    *left -= 1;
                    true
                }
            });
            g.in_service += done;
        }
    }

    /// One describe of a database: a modification in progress comes closer to its end.
    fn tick_modification(&mut self, id: &str) {
        let Some((left, settings)) = self.modifying.get_mut(id) else {
            return;
        };
        if *left > 0 {
            *left -= 1;
            return;
        }
        let settings = std::mem::take(settings);
        self.modifying.remove(id);
        if let Some(db) = self.databases.get_mut(id) {
            for s in settings {
                apply_setting(db, &s);
            }
            db.status = "available".into();
            db.pending_modifications.clear();
            db.pending = PendingValues::default();
        }
    }
}

fn apply_setting(db: &mut ObservedDatabase, s: &DbSetting) {
    match s {
        DbSetting::InstanceClass { after, .. } => db.instance_class = after.clone(),
        DbSetting::MultiAz { after, .. } => db.multi_az = *after,
        DbSetting::AllocatedStorageGb { after, .. } => db.allocated_storage_gb = *after,
        DbSetting::BackupRetentionDays { after, .. } => db.backup_retention_days = *after,
        DbSetting::DeletionProtection { after, .. } => db.deletion_protection = *after,
    }
}

impl AutoScalingApi for MemoryAws {
    async fn discover_groups(&self, selector: &Selector) -> AwsResult<Vec<Discovered>> {
        let s = self.call("DescribeAutoScalingGroups")?;
        Ok(s.groups
            .iter()
            .filter(|(n, _)| selector.matches(n, &BTreeMap::new()))
            .map(|(n, g)| Discovered {
                group: FoundGroup {
                    name: n.clone(),
                    min: g.min,
                    max: g.max,
                    desired: g.desired,
                    tags: BTreeMap::new(),
                    subnet_ids: Vec::new(),
                    security_groups: Vec::new(),
                    launched_from: None,
                    instance_type: None,
                    policies: g
                        .policies
                        .iter()
                        .map(|(p, settings)| found_policy(n, p, settings))
                        .collect(),
                    scheduled_actions: g.scheduled.values().cloned().collect(),
                },
                source: InstanceSource::Unknown,
            })
            .collect())
    }

    async fn describe_groups(&self, names: &[String]) -> AwsResult<Vec<GroupSnapshot>> {
        let s = self.call("DescribeAutoScalingGroups")?;
        Ok(names
            .iter()
            .filter_map(|n| s.groups.get(n).map(|g| (n, g)))
            .map(|(n, g)| GroupSnapshot {
                name: n.clone(),
                min: g.min,
                max: g.max,
                desired: g.desired,
                in_service: g.in_service,
                policies: g
                    .policies
                    .iter()
                    .map(|(p, settings)| {
                        (
                            ObservedPolicy {
                                name: p.clone(),
                                settings: *settings,
                            },
                            arn(n, p),
                        )
                    })
                    .collect(),
                other_policies: g.other_policies,
                scheduled_actions: g.scheduled.values().cloned().collect(),
                launch: g.template.as_ref().map(|(name, version)| {
                    (
                        TemplateRef {
                            id: None,
                            name: Some(name.clone()),
                            version: version.clone(),
                        },
                        g.instances.clone(),
                    )
                }),
            })
            .collect())
    }

    async fn start_refresh(&self, r: &RefreshRequest<'_>) -> AwsResult<(String, Option<String>)> {
        let mut s = self.call("StartInstanceRefresh")?;
        let id = format!("refresh-{}", s.calls.len());
        let g = s.group(r.group)?;
        if g.refreshes.last().is_some_and(|x| active(&x.status)) {
            return Err(AwsError::rejected(
                format!("starting an instance refresh of {}", r.group),
                "InstanceRefreshInProgress: an instance refresh is already in progress",
            ));
        }
        let from = g.template.as_ref().map(|t| t.1.clone()).unwrap_or_default();
        g.refreshes.push(Refresh {
            id: id.clone(),
            status: "Pending".into(),
            to: r.version.to_owned(),
            from,
            checkpoint: r.checkpoint.filter(|c| *c < 100),
            replaced: Vec::new(),
        });
        Ok((id, request_id(&s)))
    }

    async fn refresh(&self, group: &str, id: Option<&str>) -> AwsResult<Option<ObservedRefresh>> {
        let mut s = self.call("DescribeInstanceRefreshes")?;
        s.tick_refresh(group);
        let g = s.group(group)?;
        let total = g.instances.len().max(1) as u32;
        Ok(g.refreshes
            .iter()
            .rev()
            .find(|r| id.is_none_or(|i| i == r.id))
            .map(|r| {
                let done = g.instances.iter().filter(|(_, v)| *v == r.to).count() as u32;
                ObservedRefresh {
                    id: r.id.clone(),
                    status: r.status.clone(),
                    percentage: done * 100 / total,
                    instances_to_update: total - done,
                    reason: None,
                }
            }))
    }

    async fn cancel_refresh(&self, group: &str) -> AwsResult<Option<String>> {
        let mut s = self.call("CancelInstanceRefresh")?;
        let r = s
            .group(group)?
            .refreshes
            .last_mut()
            .filter(|r| matches!(r.status.as_str(), "Pending" | "InProgress"))
            .ok_or_else(|| no_active_refresh(group))?;
        r.status = "Cancelling".into();
        Ok(request_id(&s))
    }

    async fn rollback_refresh(&self, group: &str) -> AwsResult<Option<String>> {
        let mut s = self.call("RollbackInstanceRefresh")?;
        let r = s
            .group(group)?
            .refreshes
            .last_mut()
            .filter(|r| matches!(r.status.as_str(), "Pending" | "InProgress"))
            .ok_or_else(|| no_active_refresh(group))?;
        r.status = "RollbackInProgress".into();
        Ok(request_id(&s))
    }

    async fn capacities(&self, names: &[String]) -> AwsResult<Vec<GroupCapacity>> {
        let s = self.call("DescribeAutoScalingGroups")?;
        Ok(names
            .iter()
            .filter_map(|n| s.groups.get(n).map(|g| (n, g)))
            .map(|(n, g)| GroupCapacity {
                name: n.clone(),
                capacity: Capacity {
                    min: g.min,
                    max: g.max,
                    desired: g.desired,
                },
                instances: InstanceCount {
                    in_service: g.in_service,
                    launching: g.launching.len() as u32,
                },
            })
            .collect())
    }

    async fn in_service(&self, names: &[String]) -> AwsResult<Vec<GroupInstance>> {
        let s = self.call("DescribeAutoScalingGroups")?;
        Ok(names
            .iter()
            .filter_map(|n| s.groups.get(n).map(|g| (n, g)))
            .flat_map(|(n, g)| {
                (0..g.in_service).map(move |i| GroupInstance {
                    group: n.clone(),
                    id: memory_instance_id(n, i),
                    zone: Some(memory_zone(i).to_owned()),
                })
            })
            .collect())
    }

    async fn instances(&self, name: &str) -> AwsResult<Option<InstanceCount>> {
        let mut s = self.call("DescribeAutoScalingGroups")?;
        s.tick_launches(name);
        Ok(s.groups.get(name).map(|g| InstanceCount {
            in_service: g.in_service,
            launching: g.launching.len() as u32,
        }))
    }

    async fn set_capacity(
        &self,
        group: &str,
        field: CapacityField,
        value: u32,
    ) -> AwsResult<Option<String>> {
        let mut s = self.call("UpdateAutoScalingGroup")?;
        let polls = s.launch_polls;
        let g = s.group(group)?;
        match field {
            CapacityField::Min => g.min = value,
            CapacityField::Max => g.max = value,
            CapacityField::Desired => g.desired = value,
        }
        // Auto Scaling keeps desired within [min, max], launching or terminating to match.
        g.desired = g.desired.clamp(g.min, g.max.max(g.min));
        let running = g.in_service + g.launching.len() as u32;
        if g.desired > running {
            g.launching
                .extend(std::iter::repeat_n(polls, (g.desired - running) as usize));
        } else {
            let mut extra = running - g.desired;
            while extra > 0 && g.launching.pop().is_some() {
                extra -= 1;
            }
            g.in_service -= extra.min(g.in_service);
        }
        Ok(request_id(&s))
    }

    async fn put_policy(
        &self,
        group: &str,
        policy: &str,
        settings: &PolicySettings,
    ) -> AwsResult<Option<String>> {
        let mut s = self.call("PutScalingPolicy")?;
        s.group(group)?
            .policies
            .insert(policy.to_owned(), *settings);
        Ok(request_id(&s))
    }

    async fn policy_arn(&self, group: &str, policy: &str) -> AwsResult<String> {
        let mut s = self.call("DescribePolicies")?;
        match s.group(group)?.policies.contains_key(policy) {
            true => Ok(arn(group, policy)),
            false => Err(AwsError::not_found(
                format!("finding policy {policy} of {group}"),
                "there is no such policy",
            )),
        }
    }

    async fn delete_policy(&self, group: &str, policy: &str) -> AwsResult<Option<String>> {
        let mut s = self.call("DeletePolicy")?;
        match s.group(group)?.policies.remove(policy) {
            Some(_) => Ok(request_id(&s)),
            None => Err(AwsError::not_found(
                format!("deleting policy {policy} of {group}"),
                "there is no such policy",
            )),
        }
    }

    async fn put_scheduled_action(
        &self,
        group: &str,
        action: &ObservedScheduledAction,
    ) -> AwsResult<Option<String>> {
        let mut s = self.call("PutScheduledUpdateGroupAction")?;
        s.group(group)?
            .scheduled
            .insert(action.name.clone(), action.clone());
        Ok(request_id(&s))
    }

    async fn delete_scheduled_action(&self, group: &str, name: &str) -> AwsResult<Option<String>> {
        let mut s = self.call("DeleteScheduledAction")?;
        match s.group(group)?.scheduled.remove(name) {
            Some(_) => Ok(request_id(&s)),
            None => Err(AwsError::not_found(
                format!("deleting scheduled action {name} of {group}"),
                "there is no such action",
            )),
        }
    }

    async fn instance_sources(&self, names: &[String]) -> AwsResult<Vec<(String, InstanceSource)>> {
        let s = self.call("DescribeAutoScalingGroups")?;
        Ok(names
            .iter()
            .filter(|n| s.groups.contains_key(*n))
            .map(|n| {
                (
                    n.clone(),
                    InstanceSource::Template(TemplateRef {
                        id: None,
                        name: Some(format!("{n}-lt")),
                        version: "$Default".into(),
                    }),
                )
            })
            .collect())
    }

    async fn scaling_activities(
        &self,
        groups: &[String],
        _since_unix: i64,
    ) -> AwsResult<Vec<Activity>> {
        let s = self.call("DescribeScalingActivities")?;
        Ok(groups
            .iter()
            .filter_map(|g| s.groups.get(g))
            .flat_map(|g| g.activities.iter().cloned())
            .collect())
    }
}

impl Ec2Api for MemoryAws {
    async fn template_versions(
        &self,
        t: &TemplateRef,
        versions: &[String],
    ) -> AwsResult<Vec<TemplateVersion>> {
        let s = self.call("DescribeLaunchTemplateVersions")?;
        let images = t
            .name
            .as_ref()
            .and_then(|n| s.templates.get(n))
            .cloned()
            .unwrap_or_default();
        let latest = images.len() as u32;
        let mut out: Vec<TemplateVersion> = versions
            .iter()
            .filter_map(|v| match v.as_str() {
                "$Latest" => Some(latest),
                "$Default" => Some(1),
                n => n.parse().ok(),
            })
            .filter(|n| (1..=latest).contains(n))
            .map(|n| TemplateVersion {
                number: n,
                image_id: images.get(n as usize - 1).cloned(),
                default: n == 1,
            })
            .collect();
        out.sort_by_key(|v| v.number);
        out.dedup();
        Ok(out)
    }

    async fn create_template_version(
        &self,
        name: &str,
        _from: &str,
        image_id: &str,
    ) -> AwsResult<(u32, Option<String>)> {
        let mut s = self.call("CreateLaunchTemplateVersion")?;
        let t = s.templates.entry(name.to_owned()).or_default();
        t.push(image_id.to_owned());
        let n = t.len() as u32;
        Ok((n, request_id(&s)))
    }

    async fn describe_security_groups(
        &self,
        names: &[String],
    ) -> AwsResult<Vec<ObservedSecurityGroup>> {
        let s = self.call("DescribeSecurityGroups")?;
        Ok(names
            .iter()
            .filter_map(|n| s.security_groups.get(n).cloned())
            .collect())
    }

    async fn authorize_ingress(
        &self,
        group_id: &str,
        rule: &ObservedRule,
        _source_id: Option<&str>,
    ) -> AwsResult<Option<String>> {
        let mut s = self.call("AuthorizeSecurityGroupIngress")?;
        let Some(g) = s.security_groups.values_mut().find(|g| g.id == group_id) else {
            return Err(AwsError::not_found(
                format!("changing security group {group_id}"),
                "InvalidGroup.NotFound",
            ));
        };
        if g.ingress.iter().any(|r| same_rule(r, rule)) {
            return Err(AwsError {
                code: Some("InvalidPermission.Duplicate".into()),
                ..AwsError::rejected("authorizing ingress", "the rule exists")
            });
        }
        g.ingress.push(rule.clone());
        Ok(request_id(&s))
    }

    async fn revoke_ingress(
        &self,
        group_id: &str,
        rule: &ObservedRule,
        _source_id: Option<&str>,
    ) -> AwsResult<Option<String>> {
        let mut s = self.call("RevokeSecurityGroupIngress")?;
        let Some(g) = s.security_groups.values_mut().find(|g| g.id == group_id) else {
            return Err(AwsError::not_found(
                format!("changing security group {group_id}"),
                "InvalidGroup.NotFound",
            ));
        };
        let before = g.ingress.len();
        g.ingress.retain(|r| !same_rule(r, rule));
        if g.ingress.len() == before {
            return Err(AwsError {
                code: Some("InvalidPermission.NotFound".into()),
                ..AwsError::rejected("revoking ingress", "there is no such rule")
            });
        }
        Ok(request_id(&s))
    }

    async fn group_id(&self, name: &str) -> AwsResult<String> {
        let s = self.call("DescribeSecurityGroups")?;
        s.security_groups
            .get(name)
            .map(|g| g.id.clone())
            .ok_or_else(|| {
                AwsError::not_found(
                    format!("finding security group {name}"),
                    "InvalidGroup.NotFound",
                )
            })
    }

    async fn template_instance_type(&self, _template: &TemplateRef) -> AwsResult<Option<String>> {
        let _s = self.call("DescribeLaunchTemplateVersions")?;
        Ok(Some("t3.medium".into()))
    }

    async fn describe_subnets(&self, refs: &[AwsRef]) -> AwsResult<Vec<ObservedSubnet>> {
        let s = self.call("DescribeSubnets")?;
        Ok(s.subnets
            .iter()
            .filter(|o| refs.iter().any(|r| named(r, &o.id, o.name.as_deref())))
            .cloned()
            .collect())
    }

    async fn network_acls_of_subnets(
        &self,
        subnet_ids: &[String],
    ) -> AwsResult<Vec<ObservedNetworkAcl>> {
        let s = self.call("DescribeNetworkAcls")?;
        Ok(s.network_acls
            .iter()
            .filter(|a| a.subnet_ids.iter().any(|i| subnet_ids.contains(i)))
            .cloned()
            .collect())
    }

    async fn template_settings(
        &self,
        _template: &TemplateRef,
    ) -> AwsResult<Option<TemplateSettings>> {
        let _s = self.call("DescribeLaunchTemplateVersions")?;
        Ok(None)
    }

    async fn private_addresses(&self, ids: &[String]) -> AwsResult<Vec<(String, String)>> {
        let _s = self.call("DescribeInstances")?;
        // `i-GROUP-N` is at 10.0.0.N+10.
        Ok(ids
            .iter()
            .filter_map(|id| {
                let n: u32 = id.rsplit('-').next()?.parse().ok()?;
                Some((id.clone(), format!("10.0.0.{}", n + 10)))
            })
            .collect())
    }

    async fn security_group_names(&self, ids: &[String]) -> AwsResult<Vec<(String, String)>> {
        let s = self.call("DescribeSecurityGroups")?;
        Ok(s.security_groups
            .values()
            .filter(|g| ids.contains(&g.id))
            .map(|g| (g.id.clone(), g.name.clone()))
            .collect())
    }

    async fn describe_network_acls(&self, refs: &[AwsRef]) -> AwsResult<Vec<ObservedNetworkAcl>> {
        let s = self.call("DescribeNetworkAcls")?;
        Ok(s.network_acls
            .iter()
            .filter(|o| refs.iter().any(|r| named(r, &o.id, o.name.as_deref())))
            .cloned()
            .collect())
    }

    async fn create_acl_entry(
        &self,
        acl_id: &str,
        egress: bool,
        entry: &ObservedAclEntry,
    ) -> AwsResult<Option<String>> {
        let mut s = self.call("CreateNetworkAclEntry")?;
        let list = acl_entries(&mut s, acl_id, egress)?;
        if list.iter().any(|e| e.rule == entry.rule) {
            return Err(AwsError {
                code: Some("NetworkAclEntryAlreadyExists".into()),
                ..AwsError::rejected("adding an entry", "an entry has that rule number")
            });
        }
        list.push(entry.clone());
        list.sort();
        Ok(request_id(&s))
    }

    async fn replace_acl_entry(
        &self,
        acl_id: &str,
        egress: bool,
        entry: &ObservedAclEntry,
    ) -> AwsResult<Option<String>> {
        let mut s = self.call("ReplaceNetworkAclEntry")?;
        let list = acl_entries(&mut s, acl_id, egress)?;
        let Some(old) = list.iter_mut().find(|e| e.rule == entry.rule) else {
            return Err(no_entry(entry.rule));
        };
        *old = entry.clone();
        Ok(request_id(&s))
    }

    async fn delete_acl_entry(
        &self,
        acl_id: &str,
        egress: bool,
        rule: u16,
    ) -> AwsResult<Option<String>> {
        let mut s = self.call("DeleteNetworkAclEntry")?;
        let list = acl_entries(&mut s, acl_id, egress)?;
        let before = list.len();
        list.retain(|e| e.rule != rule);
        if list.len() == before {
            return Err(no_entry(rule));
        }
        Ok(request_id(&s))
    }
}

/// Whether a resource of this id and `Name` tag is the one `r` names.
/// Whether AWS still works on a refresh in this state.
fn active(status: &str) -> bool {
    matches!(
        status,
        "Pending" | "InProgress" | "Baking" | "Cancelling" | "RollbackInProgress"
    )
}

fn no_active_refresh(group: &str) -> AwsError {
    AwsError::rejected(
        format!("changing the instance refresh of {group}"),
        "ActiveInstanceRefreshNotFound: no instance refresh is in progress",
    )
}

fn named(r: &AwsRef, id: &str, name: Option<&str>) -> bool {
    match r {
        AwsRef::Id(i) => i == id,
        AwsRef::Name(n) => name == Some(n.as_str()),
    }
}

/// The entries of one direction of the ACL `acl_id`.
#[expect(
    clippy::result_large_err,
    reason = "the adapters' own error, as the SDK's adapters return it"
)]
fn acl_entries<'s>(
    s: &'s mut State,
    acl_id: &str,
    egress: bool,
) -> AwsResult<&'s mut Vec<ObservedAclEntry>> {
    let acl = s
        .network_acls
        .iter_mut()
        .find(|a| a.id == acl_id)
        .ok_or_else(|| AwsError {
            code: Some("InvalidNetworkAclID.NotFound".into()),
            ..AwsError::not_found(format!("changing network ACL {acl_id}"), "no such ACL")
        })?;
    Ok(if egress {
        &mut acl.egress
    } else {
        &mut acl.ingress
    })
}

fn no_entry(rule: u16) -> AwsError {
    AwsError {
        code: Some("InvalidNetworkAclEntry.NotFound".into()),
        ..AwsError::not_found(
            format!("changing the entry of rule {rule}"),
            "there is no entry of that rule number",
        )
    }
}

/// Two rules are one rule in AWS when their protocol, ports and source agree (a description
/// is not part of a rule's identity).
fn same_rule(a: &ObservedRule, b: &ObservedRule) -> bool {
    a.protocol == b.protocol && a.ports == b.ports && a.source == b.source
}

impl RdsApi for MemoryAws {
    async fn describe_instance(&self, identifier: &str) -> AwsResult<Option<ObservedDatabase>> {
        let mut s = self.call("DescribeDBInstances")?;
        s.tick_modification(identifier);
        Ok(s.databases.get(identifier).cloned())
    }

    async fn discover_instances(&self, selector: &Selector) -> AwsResult<Vec<DiscoveredDatabase>> {
        let s = self.call("DescribeDBInstances")?;
        Ok(s.databases
            .values()
            .filter(|d| selector.matches(&d.identifier, &BTreeMap::new()))
            .map(|d| DiscoveredDatabase {
                database: d.clone(),
                tags: BTreeMap::new(),
                security_group_ids: Vec::new(),
                subnet_ids: Vec::new(),
            })
            .collect())
    }

    async fn describe_instances(&self, identifiers: &[String]) -> AwsResult<Vec<ObservedDatabase>> {
        let mut s = self.call("DescribeDBInstances")?;
        for id in identifiers {
            s.tick_modification(id);
        }
        Ok(identifiers
            .iter()
            .filter_map(|id| s.databases.get(id).cloned())
            .collect())
    }

    async fn modify_instance(
        &self,
        identifier: &str,
        settings: &[DbSetting],
    ) -> AwsResult<Option<String>> {
        let mut s = self.call("ModifyDBInstance")?;
        let polls = s.modify_polls;
        let Some(db) = s.databases.get_mut(identifier) else {
            return Err(AwsError::not_found(
                format!("modifying database {identifier}"),
                "DBInstanceNotFound",
            ));
        };
        if !db.takes_modifications() {
            return Err(AwsError {
                code: Some("InvalidDBInstanceState".into()),
                ..AwsError::rejected(
                    format!("modifying database {identifier}"),
                    format!("the instance is {}", db.status),
                )
            });
        }
        if polls == 0 {
            for setting in settings {
                apply_setting(db, setting);
            }
        } else {
            db.status = "modifying".into();
            for setting in settings {
                match setting {
                    DbSetting::InstanceClass { after, .. } => {
                        db.pending.instance_class = Some(after.clone())
                    }
                    DbSetting::MultiAz { after, .. } => db.pending.multi_az = Some(*after),
                    DbSetting::AllocatedStorageGb { after, .. } => {
                        db.pending.allocated_storage_gb = Some(*after)
                    }
                    DbSetting::BackupRetentionDays { after, .. } => {
                        db.pending.backup_retention_days = Some(*after)
                    }
                    // Applied at once, as RDS does.
                    DbSetting::DeletionProtection { after, .. } => db.deletion_protection = *after,
                }
                db.pending_modifications.push(setting.field().to_owned());
            }
            s.modifying
                .insert(identifier.to_owned(), (polls, settings.to_vec()));
        }
        Ok(request_id(&s))
    }
}

impl CloudWatchApi for MemoryAws {
    async fn alarms_calling(&self, arns: &[String]) -> AwsResult<Vec<FoundAlarm>> {
        let s = self.call("DescribeAlarms")?;
        Ok(s.alarms
            .values()
            .filter(|a| a.actions.iter().any(|x| arns.contains(x)))
            .map(|a| {
                // The group is the one in its policy's ARN (`…:scalingPolicy:GROUP:POLICY`).
                let group = a
                    .actions
                    .first()
                    .and_then(|x| x.split(':').rev().nth(1))
                    .unwrap_or_default();
                FoundAlarm {
                    name: a.name.clone(),
                    namespace: "AWS/EC2".into(),
                    metric: "CPUUtilization".into(),
                    statistic: "Average".into(),
                    dimensions: vec![("AutoScalingGroupName".into(), group.to_owned())],
                    period_seconds: 300,
                    evaluation_periods: 1,
                    comparison: match a.comparison {
                        Some(Comparison::GreaterThanOrEqual) => "GreaterThanOrEqualToThreshold",
                        Some(Comparison::LessThanOrEqual) => "LessThanOrEqualToThreshold",
                        None => "GreaterThanThreshold",
                    }
                    .into(),
                    threshold: a.threshold,
                    actions: a.actions.clone(),
                }
            })
            .collect())
    }

    async fn describe_alarms(&self, prefix: &str) -> AwsResult<Vec<AlarmSnapshot>> {
        let s = self.call("DescribeAlarms")?;
        Ok(s.alarms
            .values()
            .filter(|a| a.name.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn put_cpu_alarm(&self, alarm: &CpuAlarm<'_>) -> AwsResult<Option<String>> {
        let mut s = self.call("PutMetricAlarm")?;
        s.alarms.insert(
            alarm.name.to_owned(),
            AlarmSnapshot {
                name: alarm.name.to_owned(),
                threshold: alarm.threshold,
                comparison: Some(alarm.comparison),
                actions: vec![alarm.policy_arn.to_owned()],
            },
        );
        Ok(request_id(&s))
    }

    async fn metric_data(
        &self,
        queries: &[MetricQuery],
        start: i64,
        end: i64,
    ) -> AwsResult<Vec<Series>> {
        let s = self.call("GetMetricData")?;
        Ok(queries
            .iter()
            .map(|q| {
                let mut dims = q.dimensions.clone();
                dims.sort();
                let points = s
                    .datapoints
                    .get(&(q.metric.clone(), dims))
                    .cloned()
                    .unwrap_or_default();
                let mut out = Vec::new();
                let mut t = start;
                while t < end {
                    let inside: Vec<f64> = points
                        .iter()
                        .filter(|(at, _)| *at >= t && *at < t + q.period)
                        .map(|(_, v)| *v)
                        .collect();
                    if !inside.is_empty() {
                        let n = inside.len() as f64;
                        let sum: f64 = inside.iter().sum();
                        let v = match q.stat.as_str() {
                            "Sum" => sum,
                            "SampleCount" => n,
                            _ => sum / n,
                        };
                        out.push((t, v));
                    }
                    t += q.period;
                }
                out
            })
            .collect())
    }

    async fn delete_alarm(&self, name: &str) -> AwsResult<Option<String>> {
        let mut s = self.call("DeleteAlarms")?;
        match s.alarms.remove(name) {
            Some(_) => Ok(request_id(&s)),
            None => Err(AwsError::not_found(
                format!("deleting alarm {name}"),
                "ResourceNotFound",
            )),
        }
    }
}

/// The id of a group's `n`th instance in the in-memory AWS.
pub fn memory_instance_id(group: &str, n: u32) -> String {
    format!("i-{group}-{n}")
}

/// The zone of the `n`th instance: two zones in turn.
fn memory_zone(n: u32) -> &'static str {
    if n.is_multiple_of(2) {
        "ap-northeast-2a"
    } else {
        "ap-northeast-2c"
    }
}

impl MemoryAws {
    /// Puts a datapoint of `metric` with `dimensions` at `at` (Unix seconds).
    pub fn put_datapoint(&self, metric: &str, dimensions: &[(&str, &str)], at: i64, value: f64) {
        let mut dims: Vec<(String, String)> = dimensions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        dims.sort();
        self.state()
            .datapoints
            .entry((metric.to_owned(), dims))
            .or_default()
            .push((at, value));
    }

    /// Adds a load balancer `name` with target groups `tgs`; returns its CloudWatch dimension.
    pub fn add_load_balancer(&self, name: &str, tgs: &[&str]) -> String {
        let lb_arn = format!(
            "arn:aws:elasticloadbalancing:ap-northeast-2:{ACCOUNT}:loadbalancer/app/{name}/0123456789abcdef"
        );
        let tgs = tgs
            .iter()
            .map(|t| {
                (
                    (*t).to_owned(),
                    format!("arn:aws:elasticloadbalancing:ap-northeast-2:{ACCOUNT}:targetgroup/{t}/fedcba9876543210"),
                )
            })
            .collect();
        self.state()
            .load_balancers
            .insert(name.to_owned(), (lb_arn, tgs));
        format!("app/{name}/0123456789abcdef")
    }
}

impl Elbv2Api for MemoryAws {
    async fn load_balancers(
        &self,
        refs: &[String],
    ) -> AwsResult<Vec<(String, Option<FoundLoadBalancer>)>> {
        let s = self.call("DescribeLoadBalancers")?;
        Ok(refs
            .iter()
            .map(|r| {
                let hit = s
                    .load_balancers
                    .iter()
                    .find(|(name, (arn, _))| *name == r || arn == r)
                    .map(|(name, (arn, _))| FoundLoadBalancer {
                        name: name.clone(),
                        arn: arn.clone(),
                    });
                (r.clone(), hit)
            })
            .collect())
    }

    async fn target_groups(&self, lb_arn: &str) -> AwsResult<Vec<FoundTargetGroup>> {
        let s = self.call("DescribeTargetGroups")?;
        Ok(s.load_balancers
            .values()
            .filter(|(arn, _)| arn == lb_arn)
            .flat_map(|(_, tgs)| tgs.iter())
            .map(|(name, arn)| FoundTargetGroup {
                name: name.clone(),
                arn: arn.clone(),
                port: Some(80),
            })
            .collect())
    }

    async fn target_health(&self, tg_arn: &str) -> AwsResult<Vec<Target>> {
        let s = self.call("DescribeTargetHealth")?;
        Ok(s.target_health.get(tg_arn).cloned().unwrap_or_default())
    }
}
