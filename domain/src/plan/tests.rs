//! The planner against hand-made live states.

use std::collections::BTreeSet;

use super::scaling::desired_scaling;
use super::schedule::scheduled;
use super::security::rule_of;
use super::*;
use crate::observed::*;
use crate::spec::fixtures::prod;
use crate::spec::{AclAction, AclProtocol, Capacity, CapacityChange, Source};

/// A live state that already matches the spec.
fn converged(spec: &EnvironmentSpec) -> ObservedState {
    let mut o = ObservedState::default();
    for g in &spec.autoscaling_groups {
        let want = desired_scaling(g);
        o.groups.insert(
            g.name.to_string(),
            ObservedGroup {
                name: g.name.to_string(),
                min: g.capacity.min(),
                max: g.capacity.max(),
                desired: g.capacity.desired().unwrap_or(g.capacity.min()),
                in_service: g.capacity.desired().unwrap_or(g.capacity.min()),
                policies: want
                    .policies
                    .iter()
                    .map(|(n, s)| ObservedPolicy {
                        name: n.clone(),
                        settings: *s,
                    })
                    .collect(),
                alarms: want
                    .alarms
                    .iter()
                    .map(|(n, p, c, t)| ObservedAlarm {
                        name: n.clone(),
                        policy: p.clone(),
                        comparison: *c,
                        threshold: *t,
                    })
                    .collect(),
                scheduled_actions: g.schedule.iter().map(scheduled).collect(),
                other_policies: 0,
                launch: None,
            },
        );
    }
    for d in &spec.databases {
        o.databases.insert(
            d.identifier.to_string(),
            ObservedDatabase {
                identifier: d.identifier.to_string(),
                instance_class: d.instance_class.clone().unwrap(),
                multi_az: d.multi_az.unwrap(),
                allocated_storage_gb: d.allocated_storage_gb.unwrap(),
                backup_retention_days: d.backup_retention_days.unwrap(),
                deletion_protection: d.deletion_protection.unwrap(),
                status: "available".into(),
                engine: "mysql".into(),
                storage_type: "gp2".into(),
                pending_modifications: Vec::new(),
                pending: Default::default(),
            },
        );
    }
    for (i, sg) in spec.security_groups.iter().enumerate() {
        o.security_groups.insert(
            sg.name.clone(),
            ObservedSecurityGroup {
                name: sg.name.clone(),
                id: format!("sg-{i:04}"),
                ingress: sg.ingress.iter().map(rule_of).collect(),
            },
        );
    }
    for (i, s) in spec.subnets.iter().enumerate() {
        o.subnets.insert(
            s.resource.to_string(),
            vec![ObservedSubnet {
                id: format!("subnet-{i:04}"),
                name: Some(s.resource.to_string()),
                cidr: s.cidr.clone(),
                vpc_id: "vpc-1".into(),
            }],
        );
    }
    for (i, a) in spec.network_acls.iter().enumerate() {
        o.network_acls.insert(
            a.resource.to_string(),
            vec![ObservedNetworkAcl {
                id: format!("acl-{i:04}"),
                name: Some(a.resource.to_string()),
                vpc_id: "vpc-1".into(),
                ingress: a.ingress.iter().map(ObservedAclEntry::from).collect(),
                egress: a.egress.iter().map(ObservedAclEntry::from).collect(),
                subnet_ids: spec
                    .subnets
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| a.subnets.contains(&s.tier))
                    .map(|(j, _)| format!("subnet-{j:04}"))
                    .collect(),
            }],
        );
    }
    o
}

fn lines(plan: &Plan) -> Vec<String> {
    plan.operations.iter().map(ToString::to_string).collect()
}

const WAS: &str = "petclinic-prod-was";

#[test]
fn a_converged_environment_has_an_empty_plan() {
    let spec = prod();
    let plan = plan(&spec, &converged(&spec), &BTreeSet::new());
    assert!(plan.is_empty(), "{:#?}", lines(&plan));
}

#[test]
fn capacity_widens_before_it_narrows() {
    let mut spec = prod();
    let live = converged(&spec);
    let g = spec
        .autoscaling_groups
        .iter_mut()
        .find(|g| g.name == WAS)
        .unwrap();
    g.capacity = Capacity::new(3, 10, Some(6)).unwrap();
    let edits = BTreeSet::from([WAS.to_owned()]);
    assert_eq!(
        lines(&plan(&spec, &live, &edits)),
        [
            "autoscaling group petclinic-prod-was: max 8 → 10 [autoscaling:UpdateAutoScalingGroup]",
            "autoscaling group petclinic-prod-was: desired 2 → 6 [autoscaling:UpdateAutoScalingGroup] — launches 4 instance(s)",
            "autoscaling group petclinic-prod-was: min 2 → 3 [autoscaling:UpdateAutoScalingGroup]",
        ]
    );

    // Lowering: desired goes down first (the risk says what is terminated), then max.
    let mut spec = prod();
    let mut live = converged(&spec);
    let o = live.groups.get_mut(WAS).unwrap();
    (o.desired, o.in_service) = (6, 6);
    let g = spec
        .autoscaling_groups
        .iter_mut()
        .find(|g| g.name == WAS)
        .unwrap();
    g.capacity = Capacity::new(2, 4, Some(4)).unwrap();
    assert_eq!(
        lines(&plan(&spec, &live, &BTreeSet::from([WAS.to_owned()]))),
        [
            "autoscaling group petclinic-prod-was: desired 6 → 4 [autoscaling:UpdateAutoScalingGroup] — lower capacity: 2 of the 6 running instances will be terminated",
            "autoscaling group petclinic-prod-was: max 8 → 4 [autoscaling:UpdateAutoScalingGroup]",
        ]
    );
}

#[test]
fn desired_is_the_autoscalers_unless_the_change_edits_it() {
    let spec = prod();
    let mut live = converged(&spec);
    // The schedule moved desired to 5, inside [2, 8]: neither drift nor a plan step.
    let o = live.groups.get_mut(WAS).unwrap();
    (o.desired, o.in_service) = (5, 5);
    assert!(plan(&spec, &live, &BTreeSet::new()).is_empty());
    // A change that edits desired enforces it.
    let steps = lines(&plan(&spec, &live, &BTreeSet::from([WAS.to_owned()])));
    assert_eq!(
        steps,
        ["autoscaling group petclinic-prod-was: desired 5 → 2 [autoscaling:UpdateAutoScalingGroup] — lower capacity: 3 of the 5 running instances will be terminated"]
    );
    // Outside the new range it is moved in, edited or not.
    let mut spec = prod();
    spec.autoscaling_groups
        .iter_mut()
        .find(|g| g.name == WAS)
        .unwrap()
        .capacity = Capacity::new(2, 4, Some(2)).unwrap();
    let steps = lines(&plan(&spec, &live, &BTreeSet::new()));
    assert_eq!(steps[0], "autoscaling group petclinic-prod-was: desired 5 → 4 [autoscaling:UpdateAutoScalingGroup] — lower capacity: 1 of the 5 running instances will be terminated (desired moved into the new range)");
    assert_eq!(
        steps[1],
        "autoscaling group petclinic-prod-was: max 8 → 4 [autoscaling:UpdateAutoScalingGroup]"
    );
}

#[test]
fn policies_come_before_their_alarms_and_alarms_go_before_their_policies() {
    let spec = prod();
    let mut live = converged(&spec);
    let o = live.groups.get_mut(WAS).unwrap();
    o.policies.clear();
    o.alarms.clear();
    assert_eq!(
        lines(&plan(&spec, &live, &BTreeSet::new())),
        [
            "autoscaling group petclinic-prod-was: create policy tierdeck-petclinic-prod-was-cpu-out: +1 instance(s), cooldown 300 s [autoscaling:PutScalingPolicy]",
            "autoscaling group petclinic-prod-was: create policy tierdeck-petclinic-prod-was-cpu-in: -1 instance(s), cooldown 300 s [autoscaling:PutScalingPolicy]",
            "autoscaling group petclinic-prod-was: create alarm tierdeck-petclinic-prod-was-cpu-high: CPU ≥ 50 % calls tierdeck-petclinic-prod-was-cpu-out [cloudwatch:PutMetricAlarm]",
            "autoscaling group petclinic-prod-was: create alarm tierdeck-petclinic-prod-was-cpu-low: CPU ≤ 30 % calls tierdeck-petclinic-prod-was-cpu-in [cloudwatch:PutMetricAlarm]",
        ]
    );

    let mut spec = prod();
    let live = converged(&spec);
    spec.autoscaling_groups
        .iter_mut()
        .find(|g| g.name == WAS)
        .unwrap()
        .cpu_scaling = None;
    let steps = lines(&plan(&spec, &live, &BTreeSet::new()));
    assert_eq!(steps.len(), 4);
    assert!(steps[0].contains("delete alarm tierdeck-petclinic-prod-was-cpu-high"));
    assert!(steps[1].contains("delete alarm tierdeck-petclinic-prod-was-cpu-low"));
    assert!(
        steps[2].contains("delete policy tierdeck-petclinic-prod-was-cpu-out")
            && steps[2].ends_with("the group no longer scales on CPU")
    );
    assert!(steps[3].contains("delete policy tierdeck-petclinic-prod-was-cpu-in"));
}

#[test]
fn scheduled_actions_are_written_then_stale_ones_deleted() {
    let mut spec = prod();
    let mut live = converged(&spec);
    let g = spec
        .autoscaling_groups
        .iter_mut()
        .find(|g| g.name == WAS)
        .unwrap();
    g.schedule
        .iter_mut()
        .find(|a| a.name == "was-peak")
        .unwrap()
        .capacity = CapacityChange::new(Some(5), Some(8), None).unwrap();
    g.schedule.retain(|a| a.name != "was-business");
    live.groups
        .get_mut(WAS)
        .unwrap()
        .scheduled_actions
        .retain(|a| a.name != "was-night");
    assert_eq!(
        lines(&plan(&spec, &live, &BTreeSet::new())),
        [
            "autoscaling group petclinic-prod-was: create scheduled action was-night: \"0 0 * * *\" Asia/Seoul, min 2, max 8, desired 2 [autoscaling:PutScheduledUpdateGroupAction]",
            "autoscaling group petclinic-prod-was: scheduled action was-peak: \"0 19 * * *\" Asia/Seoul, min 5, max 7 → \"0 19 * * *\" Asia/Seoul, min 5, max 8 [autoscaling:PutScheduledUpdateGroupAction]",
            "autoscaling group petclinic-prod-was: delete scheduled action was-business (\"0 9 * * *\" Asia/Seoul, min 2, max 8, desired 2) [autoscaling:DeleteScheduledAction] — the group no longer changes capacity at \"0 9 * * *\" Asia/Seoul",
        ]
    );
}

#[test]
fn a_new_rule_is_authorised_before_the_old_one_is_revoked() {
    let mut spec = prod();
    let live = converged(&spec);
    let db = spec
        .security_groups
        .iter_mut()
        .find(|s| s.name == "petclinic-prod-db-sg")
        .unwrap();
    db.ingress[0].source = Source::FromGroup("petclinic-prod-web-sg".into());
    let steps = lines(&plan(&spec, &live, &BTreeSet::new()));
    assert_eq!(
        steps,
        [
            "security group petclinic-prod-db-sg: allow tcp/3306 from group petclinic-prod-web-sg [ec2:AuthorizeSecurityGroupIngress]",
            "security group petclinic-prod-db-sg: revoke tcp/3306 from group petclinic-prod-was-sg [ec2:RevokeSecurityGroupIngress] — cuts tcp/3306 from group petclinic-prod-was-sg to petclinic-prod-db-sg",
        ]
    );
}

#[test]
fn database_changes_carry_their_risks_and_storage_never_shrinks() {
    let mut spec = prod();
    let live = converged(&spec);
    let d = &mut spec.databases[0];
    d.instance_class = Some("db.t3.large".into());
    d.multi_az = Some(false);
    let steps = lines(&plan(&spec, &live, &BTreeSet::new()));
    assert_eq!(
        steps,
        ["database petclinic-prod-db: instance_class db.t3.medium → db.t3.large, multi_az true → false [rds:ModifyDBInstance] — a class change restarts the database: it fails over to the standby (about a minute of errors); Multi-AZ off: no standby; a zone failure takes the database down"]
    );

    let mut spec = prod();
    spec.databases[0].allocated_storage_gb = Some(10 + 5);
    let p = plan(&spec, &live, &BTreeSet::new());
    assert_eq!(
        p.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["database petclinic-prod-db: allocated storage cannot shrink (20 GB → 15 GB); RDS only grows storage"]
    );
}

#[test]
fn a_pending_modification_is_the_databases_value_and_a_modifying_database_takes_no_other() {
    // Right after a class change on real AWS: still the old class, the new one pending.
    let spec = prod();
    let mut live = converged(&spec);
    let db = live.databases.get_mut("petclinic-prod-db").unwrap();
    db.instance_class = "db.t3.small".into();
    db.status = "modifying".into();
    db.pending = crate::observed::PendingValues {
        instance_class: Some("db.t3.medium".into()),
        ..Default::default()
    };
    db.pending_modifications = vec!["instance_class → db.t3.medium".into()];
    let p = plan(&spec, &live, &BTreeSet::new());
    assert!(p.is_empty(), "no second ModifyDBInstance, no drift: {p:?}");
    assert_eq!(
        p.notes,
        ["database petclinic-prod-db is modifying: instance_class → db.t3.medium"]
    );

    // A further change while it is modifying is refused with the reason, not piled on.
    let mut bigger = prod();
    bigger.databases[0].instance_class = Some("db.t3.large".into());
    let p = plan(&bigger, &live, &BTreeSet::new());
    assert!(p.operations.is_empty());
    assert_eq!(
        p.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["database petclinic-prod-db: it is `modifying` (instance_class → db.t3.medium): a new modification waits until it is available again; plan again then"]
    );

    // Available again: the change is planned from the new class.
    let db = live.databases.get_mut("petclinic-prod-db").unwrap();
    db.instance_class = "db.t3.medium".into();
    db.status = "available".into();
    db.pending = Default::default();
    db.pending_modifications.clear();
    assert_eq!(
        lines(&plan(&bigger, &live, &BTreeSet::new())),
        ["database petclinic-prod-db: instance_class db.t3.medium → db.t3.large [rds:ModifyDBInstance] — a class change restarts the database: it fails over to the standby (about a minute of errors)"]
    );
}

#[test]
fn resources_missing_in_aws_are_plan_errors() {
    let spec = prod();
    let mut live = converged(&spec);
    live.groups.remove(WAS);
    live.security_groups.remove("petclinic-prod-web-sg");
    let p = plan(&spec, &live, &BTreeSet::new());
    assert!(p.operations.is_empty());
    assert_eq!(
        p.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "security group petclinic-prod-web-sg: does not exist in AWS; tierdeck manages settings of existing resources and creates none",
            "autoscaling group petclinic-prod-was: does not exist in AWS; tierdeck manages settings of existing resources and creates none",
        ]
    );
}

#[test]
fn network_acl_entries_are_planned_in_place_after_the_authorisations() {
    let spec = prod();
    let mut live = converged(&spec);
    let db = &mut live.network_acls.get_mut("petclinic-prod-db-nacl").unwrap()[0];
    // Someone widened the database's MySQL entry and let ssh in.
    db.ingress[0].cidr = "10.0.0.0/16".into();
    db.ingress.push(ObservedAclEntry {
        rule: 90,
        protocol: AclProtocol::Tcp,
        ports: Some((22, 22)),
        icmp: None,
        cidr: "10.0.0.0/8".into(),
        action: AclAction::Allow,
    });
    db.egress.clear();
    let mut spec_sg = spec.clone();
    spec_sg.security_groups[0].ingress[0].ports = Some((8443, 8443));
    assert_eq!(
        lines(&plan(&spec_sg, &live, &BTreeSet::new())),
        [
            "security group petclinic-prod-ext-alb-sg: allow tcp/8443 from 0.0.0.0/0 [ec2:AuthorizeSecurityGroupIngress] — opens this port to the whole internet",
            "network ACL petclinic-prod-db-nacl: delete ingress rule 90 allow tcp/22 from 10.0.0.0/8 [ec2:DeleteNetworkAclEntry] — removes an allow: tcp/22 from 10.0.0.0/8 now meets the later entries",
            "network ACL petclinic-prod-db-nacl: ingress rule 100: allow tcp/3306 from 10.0.0.0/16 → allow tcp/3306 from 10.0.30.0/23 [ec2:ReplaceNetworkAclEntry] — narrows an allow: part of tcp/3306 from 10.0.0.0/16 no longer passes",
            "network ACL petclinic-prod-db-nacl: add egress rule 100 allow tcp/1024-65535 to 10.0.30.0/23 [ec2:CreateNetworkAclEntry]",
            "security group petclinic-prod-ext-alb-sg: revoke tcp/443 from 0.0.0.0/0 [ec2:RevokeSecurityGroupIngress] — cuts tcp/443 from 0.0.0.0/0 to petclinic-prod-ext-alb-sg",
        ]
    );
}

#[test]
fn subnets_and_acls_that_differ_from_aws_in_what_tierdeck_does_not_change_are_plan_errors() {
    let spec = prod();
    let mut live = converged(&spec);
    live.subnets.get_mut("petclinic-prod-web-a").unwrap()[0].cidr = "10.0.22.0/24".into();
    live.subnets.remove("petclinic-prod-db-c");
    let twin = live.network_acls["petclinic-prod-public-nacl"][0].clone();
    live.network_acls
        .get_mut("petclinic-prod-public-nacl")
        .unwrap()
        .push(twin);
    live.network_acls
        .get_mut("petclinic-prod-was-nacl")
        .unwrap()[0]
        .subnet_ids
        .retain(|s| s != "subnet-0004");
    let p = plan(&spec, &live, &BTreeSet::new());
    assert!(p.operations.is_empty());
    assert_eq!(
        p.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "subnet petclinic-prod-web-a: its block is 10.0.22.0/24 in AWS, but the spec says 10.0.20.0/24; a subnet's block cannot change",
            "subnet petclinic-prod-db-c: does not exist in AWS; tierdeck manages settings of existing resources and creates none",
            "network ACL petclinic-prod-public-nacl: 2 resources carry this Name tag; name it by its id instead",
            "network ACL petclinic-prod-was-nacl: subnet petclinic-prod-was-a (subnet-0004) of tier was is not associated with it in AWS; tierdeck changes entries, not associations: associate it where the VPC is managed",
        ]
    );
}

#[test]
fn the_hash_follows_the_operations_and_the_values_they_start_from() {
    let mut spec = prod();
    spec.autoscaling_groups
        .iter_mut()
        .find(|g| g.name == WAS)
        .unwrap()
        .capacity = Capacity::new(2, 10, Some(2)).unwrap();
    let live = converged(&prod());
    let a = plan(&spec, &live, &BTreeSet::new());
    let b = plan(&spec, &live, &BTreeSet::new());
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.hash.len(), 64);
    // The same target from another live value is another plan.
    let mut moved = live.clone();
    moved.groups.get_mut(WAS).unwrap().max = 9;
    assert_ne!(plan(&spec, &moved, &BTreeSet::new()).hash, a.hash);
    // A live value the plan does not depend on leaves the hash alone.
    let mut busy = live.clone();
    busy.groups.get_mut(WAS).unwrap().in_service = 3;
    assert_eq!(plan(&spec, &busy, &BTreeSet::new()).hash, a.hash);
}

/// `web`'s launch template `web-lt` at version 3 (image ami-00000003), with `n` instances on
/// `on` and the rest on 3.
fn launch_of(n: u32, on: &[(u32, &str)]) -> ObservedLaunch {
    let mut instances: Vec<(String, String)> =
        (0..n).map(|i| (format!("i-{i}"), "3".into())).collect();
    for (i, v) in on {
        instances[*i as usize].1 = (*v).to_owned();
    }
    ObservedLaunch {
        template_id: "lt-1".into(),
        template_name: "web-lt".into(),
        version: "3".into(),
        version_number: Some(3),
        latest: 6,
        images: [
            (3, "ami-00000003".to_owned()),
            (6, "ami-00000006".to_owned()),
        ]
        .into(),
        instances,
        refresh: None,
    }
}

fn rollout_plan(
    launch: crate::spec::Launch,
    o: ObservedLaunch,
    rollout: crate::spec::Rollout,
) -> Plan {
    let mut spec = prod();
    let name = spec.autoscaling_groups[0].name.to_string();
    spec.autoscaling_groups[0].launch = Some(launch);
    spec.autoscaling_groups[0].rollout = rollout;
    let mut observed = converged(&spec);
    observed.groups.get_mut(&name).unwrap().launch = Some(o);
    plan(&spec, &observed, &BTreeSet::new())
}

#[test]
fn a_new_image_is_a_rollout_of_a_new_version_held_at_each_checkpoint() {
    let rollout = crate::spec::Rollout {
        checkpoints: vec![25, 50, 100],
        bake_seconds: 600,
        warmup_seconds: Some(120),
        ..Default::default()
    };
    let image = crate::spec::Launch::Image {
        image_id: "ami-0abcdef1234567890".into(),
    };
    let p = rollout_plan(image, launch_of(4, &[]), rollout.clone());
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.operations.len(), 1, "{:#?}", p.operations);
    let op = &p.operations[0];
    assert_eq!(op.aws_call, "autoscaling:StartInstanceRefresh");
    // 4 instances at 90 % healthy: one at a time, 3 minutes each, and two 10-minute bakes.
    assert_eq!(
        op.change,
        "replace 4 instances of petclinic-prod-web with version 7 (ami-0abcdef1234567890, a new version made from 3): at least 90 % healthy, held at 25 % and 50 % for 10 minutes each, about 32 minutes"
    );
    assert!(op
        .risk
        .as_deref()
        .unwrap()
        .contains("rolls the refresh back"));
    let Action::Rollout { plan, .. } = &op.action else {
        panic!("{op:?}")
    };
    assert_eq!(plan.previous, "3");
    assert_eq!(plan.holds(), [25, 50]);

    // The group on the image already, every instance on its version: nothing to do.
    let same = crate::spec::Launch::Image {
        image_id: "ami-00000003".into(),
    };
    assert!(rollout_plan(same.clone(), launch_of(4, &[]), rollout.clone()).is_empty());
    // A refresh that did not finish left one instance on version 6: it is replaced.
    let p = rollout_plan(same, launch_of(4, &[(2, "6")]), rollout.clone());
    assert!(
        p.operations[0]
            .change
            .starts_with("replace 1 instance of petclinic-prod-web with version 3 (ami-00000003)"),
        "{}",
        p.operations[0].change
    );
    // A numbered version of the template.
    let v6 = crate::spec::Launch::Template {
        name: "web-lt".into(),
        version: crate::spec::TemplateVersion::Number(6),
    };
    let p = rollout_plan(v6, launch_of(4, &[(0, "6")]), rollout);
    assert!(
        p.operations[0]
            .change
            .starts_with("replace 3 instances of petclinic-prod-web with version 6 (ami-00000006)"),
        "{}",
        p.operations[0].change
    );
}

#[test]
fn a_refresh_already_running_blocks_a_new_rollout_with_its_id() {
    let mut o = launch_of(4, &[]);
    o.refresh = Some(ObservedRefresh {
        id: "08b91cf7".into(),
        status: "InProgress".into(),
        percentage: 25,
        instances_to_update: 3,
        reason: None,
    });
    let image = crate::spec::Launch::Image {
        image_id: "ami-0abcdef1234567890".into(),
    };
    let p = rollout_plan(image, o, Default::default());
    assert!(p.operations.is_empty());
    assert_eq!(p.errors.len(), 1);
    assert!(
        p.errors[0].message.starts_with(
            "instance refresh 08b91cf7 is InProgress (25 % done): AWS runs one refresh per group"
        ),
        "{}",
        p.errors[0].message
    );
}

#[test]
fn durations_read_in_seconds_then_in_whole_minutes() {
    assert_eq!(duration_text(1), "1 second");
    assert_eq!(duration_text(90), "90 seconds");
    assert_eq!(duration_text(60), "1 minute");
    assert_eq!(duration_text(600), "10 minutes");
    assert_eq!(duration_text(1799), "30 minutes");
}
