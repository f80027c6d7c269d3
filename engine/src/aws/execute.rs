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
pub async fn execute<A, E, R, C, L>(
    clients: &Clients<A, E, R, C, L>,
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
        Action::CreateNaclEntry {
            acl_id,
            egress,
            entry,
            ..
        } => clients.ec2.create_acl_entry(acl_id, *egress, entry).await,
        Action::ReplaceNaclEntry {
            acl_id,
            egress,
            after,
            ..
        } => clients.ec2.replace_acl_entry(acl_id, *egress, after).await,
        Action::DeleteNaclEntry {
            acl_id,
            egress,
            entry,
            ..
        } => {
            clients
                .ec2
                .delete_acl_entry(acl_id, *egress, entry.rule)
                .await
        }
        // Many calls over minutes, each recorded: the apply's rollout step runs it.
        Action::Rollout { group, .. } => Err(AwsError::rejected(
            format!("rolling out new instances of {group}"),
            "a rollout is a step of its own, not one call",
        )),
    }
}

async fn source_id<A, E, R, C, L>(
    clients: &Clients<A, E, R, C, L>,
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
        Action::CreateNaclEntry { .. } => code == "NetworkAclEntryAlreadyExists",
        Action::DeleteNaclEntry { .. } => code == "InvalidNetworkAclEntry.NotFound",
        Action::DeleteAlarm { .. }
        | Action::DeletePolicy { .. }
        | Action::DeleteScheduledAction { .. } => error.kind == AwsErrorKind::NotFound,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use domain::plan::{plan, Action};
    use domain::spec::{load_environment, SourceFile};

    use super::{already_done, execute};
    use crate::aws::clients::AwsClients;
    use crate::aws::memory::MemoryAws;
    use crate::aws::observe::observe;

    const ENV: &str = "environment:\n  name: prod\n";
    const NETWORK: &str = "subnets:\n  - { name: web-a, tier: web, cidr: 10.0.20.0/24 }\nnetwork_acls:\n  - name: web-nacl\n    subnets: [web]\n    ingress:\n      - { rule: 100, protocol: tcp, port: 80, cidr: 10.0.10.0/23, action: allow }\n      - { rule: 110, protocol: tcp, port: 1024-65535, cidr: 0.0.0.0/0, action: allow }\n    egress:\n      - { rule: 100, protocol: tcp, port: 1024-65535, cidr: 10.0.10.0/23, action: allow }\n";

    fn spec(network: &str) -> domain::spec::EnvironmentSpec {
        let files =
            [("environment.yaml", ENV), ("network.yaml", network)].map(|(n, t)| SourceFile {
                path: format!("environments/prod/{n}"),
                text: t.to_owned(),
            });
        load_environment("prod", &files).expect("a valid spec")
    }

    #[tokio::test]
    async fn acl_entries_are_read_changed_in_place_and_a_retry_finds_its_work_done() {
        let aws = Arc::new(MemoryAws::running(&spec(NETWORK)));
        let clients = AwsClients::memory(aws.clone())
            .read("prod", "ap-northeast-2", 1)
            .await;
        // The answers come only from inside the VPC, and a deny of ssh goes first.
        let wanted = spec(
            &NETWORK
                .replace("cidr: 0.0.0.0/0", "cidr: 10.0.0.0/16")
                .replace("    ingress:\n", "    ingress:\n      - { rule: 90, protocol: tcp, port: 22, cidr: 0.0.0.0/0, action: deny }\n"),
        );
        let seen = observe(&clients, &wanted).await.unwrap();
        assert_eq!(seen.state.network_acls["web-nacl"].len(), 1);
        let p = plan(&wanted, &seen.state, &BTreeSet::new());
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let calls: Vec<&str> = p.operations.iter().map(|o| o.aws_call.as_str()).collect();
        assert_eq!(
            calls,
            ["ec2:CreateNetworkAclEntry", "ec2:ReplaceNetworkAclEntry"]
        );
        for o in &p.operations {
            execute(&clients, &o.action, &BTreeMap::new())
                .await
                .unwrap();
        }
        let again = observe(&clients, &wanted).await.unwrap();
        assert!(plan(&wanted, &again.state, &BTreeSet::new()).is_empty());

        // A create or a delete whose answer was lost: on the retry AWS says it is done.
        let create = &p.operations[0].action;
        let e = execute(&clients, create, &BTreeMap::new())
            .await
            .unwrap_err();
        assert!(already_done(create, &e), "{e}");
        let Action::CreateNaclEntry {
            acl, acl_id, entry, ..
        } = create.clone()
        else {
            panic!("a create: {create:?}");
        };
        let delete = Action::DeleteNaclEntry {
            acl,
            acl_id,
            egress: false,
            entry,
        };
        execute(&clients, &delete, &BTreeMap::new()).await.unwrap();
        let e = execute(&clients, &delete, &BTreeMap::new())
            .await
            .unwrap_err();
        assert!(already_done(&delete, &e), "{e}");
        assert_eq!(e.kind, super::AwsErrorKind::NotFound);
        // A replace of a missing entry is no success.
        let replace = &p.operations[1].action;
        assert!(!already_done(replace, &e));
        assert_eq!(aws.calls("DescribeNetworkAcls"), 2);
    }
}
