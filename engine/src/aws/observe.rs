//! Reading the live state of the resources a spec names.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use domain::observed::{ObservedAlarm, ObservedGroup, ObservedLaunch, ObservedState};
use domain::spec::{AwsRef, EnvironmentSpec, Launch};

use super::autoscaling::{AutoScaling, AutoScalingApi, TemplateRef, MANAGED_PREFIX};
use super::cloudwatch::{CloudWatch, CloudWatchApi};
use super::ec2::{Ec2, Ec2Api};
use super::elbv2::Elbv2;
use super::rds::{Rds, RdsApi};
use super::{sdk_config, AwsResult, AwsSettings};

/// The adapters for one region.
#[derive(Debug, Clone)]
pub struct Clients<A = AutoScaling, E = Ec2, R = Rds, C = CloudWatch, L = Elbv2> {
    pub autoscaling: A,
    pub ec2: E,
    pub rds: R,
    pub cloudwatch: C,
    pub elbv2: L,
}

impl Clients {
    pub async fn for_region(settings: &AwsSettings, region: &str) -> Clients {
        let config = sdk_config(settings, region).await;
        Clients {
            autoscaling: AutoScaling::new(&config),
            ec2: Ec2::new(&config),
            rds: Rds::new(&config),
            cloudwatch: CloudWatch::new(&config),
            elbv2: Elbv2::new(&config),
        }
    }
}

/// The live state, and how long the reading took summed over its calls (the floor of a plan).
#[derive(Debug, Clone)]
pub struct Observation {
    pub state: ObservedState,
    /// Wall time of the whole observation (calls run concurrently).
    pub elapsed: Duration,
    /// Requests it sent to AWS, each retry counted.
    pub calls: u64,
}

/// The alarm name prefix shared by every group's alarms: `tierdeck-<group>-cpu-` for one group,
/// else `tierdeck-` and the names' common beginning.
fn alarm_prefix(names: &[String]) -> String {
    match names {
        [one] => domain::plan::policy_name(one, ""),
        [first, rest @ ..] => {
            let len = rest.iter().fold(first.len(), |len, n| {
                first[..len]
                    .char_indices()
                    .zip(n.chars())
                    .find(|((_, a), b)| a != b)
                    .map_or(len.min(n.len()), |((i, _), _)| i)
            });
            format!("{MANAGED_PREFIX}{}", &first[..len])
        }
        [] => MANAGED_PREFIX.to_owned(),
    }
}

/// The groups with their alarms: the groups in batches, the alarms in one paginated listing by
/// their shared prefix (both at once), each given to the group whose prefix it carries (the longest, should
/// one group's name begin another's).
async fn groups<A: AutoScalingApi, C: CloudWatchApi>(
    a: &A,
    c: &C,
    names: &[String],
) -> AwsResult<(Vec<ObservedGroup>, LaunchSnapshots)> {
    if names.is_empty() {
        return Ok(Default::default());
    }
    // The alarms' prefix comes from the names alone: both are read at once.
    let prefix = alarm_prefix(names);
    let (groups, alarms) =
        futures::try_join!(a.describe_groups(names), c.describe_alarms(&prefix))?;
    let prefixes: Vec<(String, usize)> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (domain::plan::policy_name(&g.name, ""), i))
        .collect();
    let mut own: Vec<Vec<ObservedAlarm>> = vec![Vec::new(); groups.len()];
    let snapshots: LaunchSnapshots = groups
        .iter()
        .map(|g| (g.name.clone(), g.launch.clone()))
        .collect();
    for alarm in alarms {
        let Some(&(_, i)) = prefixes
            .iter()
            .filter(|(p, _)| alarm.name.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
        else {
            continue;
        };
        let Some(comparison) = alarm.comparison else {
            continue;
        };
        // Alarms call policies by ARN; the plan names them by policy name.
        let policy = alarm
            .actions
            .iter()
            .find_map(|arn| {
                groups[i]
                    .policies
                    .iter()
                    .find(|(_, a)| a == arn)
                    .map(|(p, _)| p.name.clone())
            })
            .unwrap_or_default();
        own[i].push(ObservedAlarm {
            name: alarm.name,
            threshold: alarm.threshold,
            comparison,
            policy,
        });
    }
    let groups = groups
        .into_iter()
        .zip(own)
        .map(|(g, alarms)| ObservedGroup {
            name: g.name,
            min: g.min,
            max: g.max,
            desired: g.desired,
            in_service: g.in_service,
            policies: g.policies.into_iter().map(|(p, _)| p).collect(),
            alarms,
            scheduled_actions: g.scheduled_actions,
            other_policies: g.other_policies,
            launch: None,
        })
        .collect();
    Ok((groups, snapshots))
}

/// Each group's template and instances' versions, as its describe gave them.
type LaunchSnapshots = Vec<(String, Option<(TemplateRef, Vec<(String, String)>)>)>;

/// The launch template of each group whose spec manages it (`launch_template` or `image_id`),
/// its versions and the group's refresh: one `DescribeLaunchTemplateVersions` (the group's
/// version, the spec's, `$Latest`) and one `DescribeInstanceRefreshes` per such group, at once.
async fn launches<A: AutoScalingApi, E: Ec2Api>(
    a: &A,
    e: &E,
    spec: &EnvironmentSpec,
    snapshots: &LaunchSnapshots,
) -> AwsResult<BTreeMap<String, ObservedLaunch>> {
    let reads = spec.autoscaling_groups.iter().filter_map(|g| {
        let want = g.launch.as_ref()?;
        let (t, instances) = snapshots
            .iter()
            .find(|(n, _)| n == g.name.as_str())?
            .1
            .clone()?;
        let mut versions = vec![t.version.clone(), "$Latest".to_owned()];
        if let Launch::Template { version, .. } = want {
            versions.push(version.aws());
        }
        versions.sort();
        versions.dedup();
        let name = g.name.to_string();
        Some(async move {
            let (found, refresh) =
                futures::try_join!(e.template_versions(&t, &versions), a.refresh(&name, None))?;
            let number = match t.version.as_str() {
                "$Latest" => found.iter().map(|v| v.number).max(),
                "$Default" => found.iter().find(|v| v.default).map(|v| v.number),
                n => n.parse().ok(),
            };
            let launch = ObservedLaunch {
                template_id: t.id.clone().unwrap_or_default(),
                template_name: t.name.clone().unwrap_or_default(),
                version: t.version.clone(),
                version_number: number,
                latest: found.iter().map(|v| v.number).max().unwrap_or_default(),
                images: found
                    .iter()
                    .filter_map(|v| Some((v.number, v.image_id.clone()?)))
                    .collect(),
                instances,
                refresh: refresh.filter(|r| r.active()),
            };
            AwsResult::Ok((name, launch))
        })
    });
    Ok(futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .collect())
}

/// What AWS has for each name or id the spec gives (a `Name` tag may be on several).
fn by_ref<T: Clone>(
    refs: &[AwsRef],
    found: Vec<T>,
    key: impl Fn(&T) -> (&String, Option<&str>),
) -> BTreeMap<String, Vec<T>> {
    refs.iter()
        .map(|r| {
            let matching: Vec<T> = found
                .iter()
                .filter(|x| {
                    let (id, name) = key(x);
                    match r {
                        AwsRef::Id(i) => id == i,
                        AwsRef::Name(n) => name == Some(n.as_str()),
                    }
                })
                .cloned()
                .collect();
            (r.text().to_owned(), matching)
        })
        .collect()
}

/// Reads every group, database, security group, subnet and network ACL the spec names, concurrently, in batches:
/// the calls grow with the pages of what is read, not with the groups.
pub async fn observe<A, E, R, C, L>(
    clients: &Clients<A, E, R, C, L>,
    spec: &EnvironmentSpec,
) -> AwsResult<Observation>
where
    A: AutoScalingApi,
    E: Ec2Api,
    R: RdsApi,
    C: CloudWatchApi,
{
    let (observation, calls) = super::calls::counted(read(clients, spec)).await;
    observation.map(|o| Observation { calls, ..o })
}

async fn read<A, E, R, C, L>(
    clients: &Clients<A, E, R, C, L>,
    spec: &EnvironmentSpec,
) -> AwsResult<Observation>
where
    A: AutoScalingApi,
    E: Ec2Api,
    R: RdsApi,
    C: CloudWatchApi,
{
    let started = Instant::now();
    let names: Vec<String> = spec
        .autoscaling_groups
        .iter()
        .map(|g| g.name.to_string())
        .collect();
    let groups = groups(&clients.autoscaling, &clients.cloudwatch, &names);
    let ids: Vec<String> = spec
        .databases
        .iter()
        .map(|d| d.identifier.to_string())
        .collect();
    let databases = clients.rds.describe_instances(&ids);
    let sg_names: Vec<String> = spec
        .security_groups
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let security_groups = clients.ec2.describe_security_groups(&sg_names);
    let subnet_refs: Vec<AwsRef> = spec.subnets.iter().map(|s| s.resource.clone()).collect();
    let acl_refs: Vec<AwsRef> = spec
        .network_acls
        .iter()
        .map(|a| a.resource.clone())
        .collect();
    let subnets = async {
        if subnet_refs.is_empty() {
            Ok(Vec::new())
        } else {
            clients.ec2.describe_subnets(&subnet_refs).await
        }
    };
    let acls = async {
        if acl_refs.is_empty() {
            Ok(Vec::new())
        } else {
            clients.ec2.describe_network_acls(&acl_refs).await
        }
    };
    let (groups, databases, security_groups, subnets, acls) =
        futures::try_join!(groups, databases, security_groups, subnets, acls)?;
    let (mut groups, snapshots) = groups;
    let mut launches = launches(&clients.autoscaling, &clients.ec2, spec, &snapshots).await?;
    for g in &mut groups {
        g.launch = launches.remove(&g.name);
    }
    let state = ObservedState {
        groups: groups
            .into_iter()
            .map(|g| (g.name.clone(), g))
            .collect::<BTreeMap<_, _>>(),
        databases: databases
            .into_iter()
            .map(|d| (d.identifier.clone(), d))
            .collect(),
        security_groups: security_groups
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect(),
        subnets: by_ref(&subnet_refs, subnets, |s| (&s.id, s.name.as_deref())),
        network_acls: by_ref(&acl_refs, acls, |a| (&a.id, a.name.as_deref())),
    };
    Ok(Observation {
        state,
        elapsed: started.elapsed(),
        calls: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::alarm_prefix;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_alarm_prefix_is_what_every_group_shares() {
        assert_eq!(
            alarm_prefix(&names(&["petclinic-prod-web"])),
            "tierdeck-petclinic-prod-web-cpu-"
        );
        assert_eq!(
            alarm_prefix(&names(&["petclinic-prod-web", "petclinic-prod-was"])),
            "tierdeck-petclinic-prod-w"
        );
        assert_eq!(
            alarm_prefix(&names(&["large-000", "large-001", "large-199"])),
            "tierdeck-large-"
        );
        assert_eq!(alarm_prefix(&names(&["web", "web-2"])), "tierdeck-web");
        assert_eq!(alarm_prefix(&names(&["web-2", "web"])), "tierdeck-web");
        assert_eq!(
            alarm_prefix(&names(&["ärzte-a", "ärzte-b"])),
            "tierdeck-ärzte-"
        );
        assert_eq!(alarm_prefix(&names(&["éa", "èa"])), "tierdeck-");
        assert_eq!(alarm_prefix(&names(&["a", "b"])), "tierdeck-");
        assert_eq!(alarm_prefix(&[]), "tierdeck-");
    }
}
