//! Carrying out one planned operation with one AWS call.

use std::collections::BTreeMap;

use domain::plan::Action;
use domain::spec::Source;

use super::autoscaling::AutoScalingApi;
use super::cloudwatch::{CloudWatchApi, CpuAlarm};
use super::ec2::Ec2Api;
use super::observe::Clients;
use super::rds::RdsApi;
use super::{AwsError, AwsErrorKind, AwsResult};

/// Makes the call `action` names; returns AWS's request id. `group_ids` maps security group
/// names to ids, from the observation the plan was made on.
pub async fn execute<A, E, R, C>(
    clients: &Clients<A, E, R, C>,
    action: &Action,
    group_ids: &BTreeMap<String, String>,
) -> AwsResult<Option<String>>
where
    A: AutoScalingApi,
    E: Ec2Api,
    R: RdsApi,
    C: CloudWatchApi,
{
    let a = &clients.autoscaling;
    match action {
        Action::SetCapacity {
            group,
            field,
            after,
            ..
        } => a.set_capacity(group, *field, *after).await,
        Action::PutPolicy {
            group,
            policy,
            after,
            ..
        } => a.put_policy(group, policy, after).await,
        Action::PutAlarm {
            group,
            alarm,
            policy,
            comparison,
            threshold,
            ..
        } => {
            let arn = a.policy_arn(group, policy).await?;
            clients
                .cloudwatch
                .put_cpu_alarm(&CpuAlarm {
                    name: alarm,
                    group,
                    comparison: *comparison,
                    threshold: *threshold,
                    policy_arn: &arn,
                })
                .await
        }
        Action::DeleteAlarm { alarm, .. } => clients.cloudwatch.delete_alarm(alarm).await,
        Action::DeletePolicy { group, policy } => a.delete_policy(group, policy).await,
        Action::PutScheduledAction { group, after, .. } => {
            a.put_scheduled_action(group, after).await
        }
        Action::DeleteScheduledAction { group, before } => {
            a.delete_scheduled_action(group, &before.name).await
        }
        Action::AuthorizeIngress { group_id, rule, .. } => {
            let source = source_id(clients, &rule.source, group_ids).await?;
            clients
                .ec2
                .authorize_ingress(group_id, rule, source.as_deref())
                .await
        }
        Action::RevokeIngress { group_id, rule, .. } => {
            let source = source_id(clients, &rule.source, group_ids).await?;
            clients
                .ec2
                .revoke_ingress(group_id, rule, source.as_deref())
                .await
        }
        Action::ModifyDatabase {
            identifier,
            settings,
        } => clients.rds.modify_instance(identifier, settings).await,
    }
}

async fn source_id<A, E, R, C>(
    clients: &Clients<A, E, R, C>,
    source: &Source,
    group_ids: &BTreeMap<String, String>,
) -> AwsResult<Option<String>>
where
    E: Ec2Api,
{
    match source {
        Source::Cidr(_) => Ok(None),
        Source::FromGroup(name) => match group_ids.get(name) {
            Some(id) => Ok(Some(id.clone())),
            None => clients.ec2.group_id(name).await.map(Some),
        },
    }
}

/// Whether a failed retry of `action` means an earlier attempt already did it: the first
/// attempt may have reached AWS before its answer was lost.
pub fn already_done(action: &Action, error: &AwsError) -> bool {
    let code = error.code.as_deref().unwrap_or_default();
    match action {
        Action::AuthorizeIngress { .. } => code == "InvalidPermission.Duplicate",
        Action::RevokeIngress { .. } => code == "InvalidPermission.NotFound",
        Action::DeleteAlarm { .. }
        | Action::DeletePolicy { .. }
        | Action::DeleteScheduledAction { .. } => error.kind == AwsErrorKind::NotFound,
        _ => false,
    }
}
