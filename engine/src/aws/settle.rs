//! One poll of a settling step: a single describe call, and what it says.

use domain::settle::{self, Target};

use super::autoscaling::AutoScalingApi;
use super::cloudwatch::CloudWatchApi;
use super::ec2::Ec2Api;
use super::observe::Clients;
use super::rds::RdsApi;
use super::AwsResult;

/// Asks AWS once whether `target` is reached: `Ok(Ok(()))` when it is, `Ok(Err(what AWS still
/// shows))` when not yet.
pub async fn poll<A, E, R, C, L>(
    clients: &Clients<A, E, R, C, L>,
    target: &Target,
) -> AwsResult<Result<(), String>>
where
    A: AutoScalingApi,
    E: Ec2Api,
    R: RdsApi,
    C: CloudWatchApi,
{
    match target {
        Target::Database { identifier } => {
            let db = clients.rds.describe_instance(identifier).await?;
            Ok(settle::database(db.as_ref()))
        }
        Target::Capacity { group, at_least } => {
            Ok(match clients.autoscaling.instances(group).await? {
                Some(c) => settle::capacity(c.in_service, c.launching, *at_least),
                None => Err(format!("autoscaling group {group} is not there")),
            })
        }
    }
}
