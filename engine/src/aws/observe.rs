//! Reading the live state of the resources a spec names.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use domain::observed::{ObservedAlarm, ObservedGroup, ObservedState};
use domain::spec::EnvironmentSpec;
use futures::future::try_join_all;

use super::autoscaling::{AutoScaling, AutoScalingApi};
use super::cloudwatch::{CloudWatch, CloudWatchApi};
use super::ec2::{Ec2, Ec2Api};
use super::rds::{Rds, RdsApi};
use super::{sdk_config, AwsResult, AwsSettings};

/// The four adapters for one region.
#[derive(Debug, Clone)]
pub struct Clients<A = AutoScaling, E = Ec2, R = Rds, C = CloudWatch> {
    pub autoscaling: A,
    pub ec2: E,
    pub rds: R,
    pub cloudwatch: C,
}

impl Clients {
    pub async fn for_region(settings: &AwsSettings, region: &str) -> Clients {
        let config = sdk_config(settings, region).await;
        Clients {
            autoscaling: AutoScaling::new(&config),
            ec2: Ec2::new(&config),
            rds: Rds::new(&config),
            cloudwatch: CloudWatch::new(&config),
        }
    }
}

/// The live state, and how long the reading took summed over its calls (the floor of a plan).
#[derive(Debug, Clone)]
pub struct Observation {
    pub state: ObservedState,
    /// Wall time of the whole observation (calls run concurrently).
    pub elapsed: Duration,
}

async fn group<A: AutoScalingApi, C: CloudWatchApi>(
    a: &A,
    c: &C,
    name: &str,
) -> AwsResult<Option<ObservedGroup>> {
    let Some(g) = a.describe_group(name).await? else {
        return Ok(None);
    };
    // Alarms call policies by ARN; the plan names them by policy name.
    let by_arn: HashMap<&str, &str> = g
        .policies
        .iter()
        .map(|(p, arn)| (arn.as_str(), p.name.as_str()))
        .collect();
    let prefix = domain::plan::policy_name(name, "");
    let alarms = c
        .describe_alarms(&prefix)
        .await?
        .into_iter()
        .filter_map(|a| {
            let policy = a
                .actions
                .iter()
                .find_map(|arn| by_arn.get(arn.as_str()))
                .map(|p| (*p).to_owned());
            Some(ObservedAlarm {
                name: a.name,
                threshold: a.threshold,
                comparison: a.comparison?,
                policy: policy.unwrap_or_default(),
            })
        })
        .collect();
    Ok(Some(ObservedGroup {
        name: g.name,
        min: g.min,
        max: g.max,
        desired: g.desired,
        in_service: g.in_service,
        policies: g.policies.into_iter().map(|(p, _)| p).collect(),
        alarms,
        scheduled_actions: g.scheduled_actions,
        other_policies: g.other_policies,
    }))
}

/// Reads every group, database and security group the spec names, concurrently.
pub async fn observe<A, E, R, C>(
    clients: &Clients<A, E, R, C>,
    spec: &EnvironmentSpec,
) -> AwsResult<Observation>
where
    A: AutoScalingApi,
    E: Ec2Api,
    R: RdsApi,
    C: CloudWatchApi,
{
    let started = Instant::now();
    let groups = try_join_all(
        spec.autoscaling_groups
            .iter()
            .map(|g| group(&clients.autoscaling, &clients.cloudwatch, &g.name)),
    );
    let databases = try_join_all(
        spec.databases
            .iter()
            .map(|d| clients.rds.describe_instance(&d.identifier)),
    );
    let sg_names: Vec<String> = spec
        .security_groups
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let security_groups = clients.ec2.describe_security_groups(&sg_names);
    let (groups, databases, security_groups) =
        futures::try_join!(groups, databases, security_groups)?;
    let state = ObservedState {
        groups: groups
            .into_iter()
            .flatten()
            .map(|g| (g.name.clone(), g))
            .collect::<BTreeMap<_, _>>(),
        databases: databases
            .into_iter()
            .flatten()
            .map(|d| (d.identifier.clone(), d))
            .collect(),
        security_groups: security_groups
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect(),
    };
    Ok(Observation {
        state,
        elapsed: started.elapsed(),
    })
}
