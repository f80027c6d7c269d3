use super::*;
use crate::observed::{
    ObservedAclEntry, ObservedDatabase, ObservedNetworkAcl, ObservedRule, ObservedSecurityGroup,
    ObservedSubnet, PendingValues,
};
use crate::policy::Floor;
use crate::spec::{load_environment, AclAction, AclProtocol, Protocol, Source, SourceFile};

fn simple(group: &str, name: &str, adjustment: i32) -> FoundPolicy {
    FoundPolicy {
        name: name.to_owned(),
        arn: format!("arn:policy:{group}:{name}"),
        policy_type: "SimpleScaling".into(),
        adjustment_type: Some("ChangeInCapacity".into()),
        scaling_adjustment: Some(adjustment),
        cooldown_seconds: Some(300),
        steps: Vec::new(),
        target_metric: None,
        target_value: None,
        enabled: true,
    }
}

fn target(group: &str, name: &str, metric: &str, value: f64) -> FoundPolicy {
    FoundPolicy {
        name: name.to_owned(),
        arn: format!("arn:policy:{group}:{name}"),
        policy_type: "TargetTrackingScaling".into(),
        adjustment_type: None,
        scaling_adjustment: None,
        cooldown_seconds: None,
        steps: Vec::new(),
        target_metric: Some(metric.to_owned()),
        target_value: Some(value),
        enabled: true,
    }
}

fn cpu_alarm(
    group: &str,
    name: &str,
    comparison: &str,
    threshold: f64,
    policy: &FoundPolicy,
) -> FoundAlarm {
    FoundAlarm {
        name: name.to_owned(),
        namespace: "AWS/EC2".into(),
        metric: "CPUUtilization".into(),
        statistic: "Average".into(),
        dimensions: vec![("AutoScalingGroupName".into(), group.to_owned())],
        period_seconds: 300,
        evaluation_periods: 1,
        comparison: comparison.to_owned(),
        threshold,
        actions: vec![policy.arn.clone()],
    }
}

fn group(name: &str, policies: Vec<FoundPolicy>) -> FoundGroup {
    FoundGroup {
        name: name.to_owned(),
        min: 2,
        max: 8,
        desired: 2,
        tags: BTreeMap::new(),
        subnet_ids: Vec::new(),
        security_groups: Vec::new(),
        launched_from: None,
        instance_type: Some("t3.medium".into()),
        policies,
        scheduled_actions: Vec::new(),
    }
}

/// tierdeck's own pair for `g`: the policies and the alarms calling them.
fn tierdeck_pair(g: &str, out_above: f64, in_below: f64) -> (Vec<FoundPolicy>, Vec<FoundAlarm>) {
    let out = simple(g, &format!("tierdeck-{g}-cpu-out"), 1);
    let inn = simple(g, &format!("tierdeck-{g}-cpu-in"), -1);
    let alarms = vec![
        cpu_alarm(
            g,
            &format!("tierdeck-{g}-cpu-high"),
            "GreaterThanOrEqualToThreshold",
            out_above,
            &out,
        ),
        cpu_alarm(
            g,
            &format!("tierdeck-{g}-cpu-low"),
            "LessThanOrEqualToThreshold",
            in_below,
            &inn,
        ),
    ];
    (vec![out, inn], alarms)
}

#[test]
fn tierdecks_own_step_pair_is_the_specs_cpu_scaling_with_nothing_left_over() {
    let (policies, alarms) = tierdeck_pair("shop-web", 50.0, 30.0);
    let s = recognise_scaling(&group("shop-web", policies), &alarms, true);
    assert_eq!(
        s.cpu,
        Some(CpuScaling::Step {
            scale_out_above: 50.0,
            scale_in_below: 30.0,
            adjustment: 1,
            cooldown_seconds: 300
        })
    );
    assert!(s.unexpressed.is_empty(), "{:?}", s.unexpressed);
}

#[test]
fn plain_cpu_step_policies_are_written_and_listed_for_the_policies_tierdeck_creates_beside_them() {
    let out = simple("web", "web-scale-out", 2);
    let inn = simple("web", "web-scale-in", -2);
    let alarms = vec![
        cpu_alarm("web", "web-cpu-high", "GreaterThanThreshold", 70.0, &out),
        cpu_alarm("web", "web-cpu-low", "LessThanThreshold", 20.0, &inn),
    ];
    let s = recognise_scaling(&group("web", vec![out, inn]), &alarms, true);
    assert_eq!(
        s.cpu,
        Some(CpuScaling::Step {
            scale_out_above: 70.0,
            scale_in_below: 20.0,
            adjustment: 2,
            cooldown_seconds: 300
        })
    );
    let listed: Vec<&str> = s.unexpressed.iter().map(|u| u.resource.as_str()).collect();
    assert_eq!(
        listed,
        ["policy web-scale-out of web", "policy web-scale-in of web"]
    );
    assert!(
        s.unexpressed[0]
            .reason
            .contains("the first apply creates those beside it")
            && s.unexpressed[0].reason.contains("or both scale the group"),
        "{}",
        s.unexpressed[0].reason
    );
}

#[test]
fn a_plain_cpu_target_tracking_policy_is_recognised_and_another_metric_is_listed() {
    let cpu = target("app", "keep-cpu", "ASGAverageCPUUtilization", 45.0);
    let network = target("app", "keep-network", "ASGAverageNetworkIn", 5e6);
    let s = recognise_scaling(&group("app", vec![network, cpu]), &[], true);
    assert_eq!(
        s.cpu,
        Some(CpuScaling::TargetTracking {
            target_percent: 45.0
        })
    );
    let network = s
        .unexpressed
        .iter()
        .find(|u| u.resource == "policy keep-network of app")
        .expect("the network policy is listed");
    assert_eq!(
        network.reason,
        "target tracking of ASGAverageNetworkIn at 5000000: the spec has one CPU scaling per group, taken from the plain policy keep-cpu; tierdeck leaves this one alone"
    );
}

#[test]
fn policies_the_spec_cannot_say_are_listed_with_the_reason_never_dropped() {
    // tierdeck's names, but the scale-in moves by 2 where the scale-out moves by 1.
    let (mut policies, alarms) = tierdeck_pair("g", 60.0, 20.0);
    policies[1].scaling_adjustment = Some(-2);
    // A step policy with three steps on memory.
    let mut steps = simple("g", "memory-steps", 0);
    steps.policy_type = "StepScaling".into();
    steps.scaling_adjustment = None;
    steps.steps = vec![
        (Some(0.0), Some(10.0), 1),
        (Some(10.0), Some(20.0), 2),
        (Some(20.0), None, 3),
    ];
    policies.push(steps);
    let s = recognise_scaling(&group("g", policies), &alarms, true);
    assert_eq!(s.cpu, None);
    let reasons: Vec<String> = s.unexpressed.iter().map(ToString::to_string).collect();
    assert_eq!(reasons.len(), 3, "{reasons:#?}");
    assert!(reasons[0].starts_with("policy tierdeck-g-cpu-out of g: simple scaling by 1 (ChangeInCapacity): named like tierdeck's own but not a pair tierdeck writes"), "{}", reasons[0]);
    assert!(
        reasons[0].ends_with("the plan deletes it"),
        "{}",
        reasons[0]
    );
    assert_eq!(
        reasons[2],
        "policy memory-steps of g: step scaling with 3 steps (ChangeInCapacity): the spec scales on the group's average CPU only (step or target tracking); tierdeck leaves it alone"
    );

    // Without the alarms, thresholds are unknown: said so.
    let (policies, _) = tierdeck_pair("g", 60.0, 20.0);
    let s = recognise_scaling(&group("g", policies), &[], false);
    assert_eq!(s.cpu, None);
    assert!(
        s.unexpressed[0]
            .reason
            .contains("its alarms could not be read"),
        "{:?}",
        s.unexpressed
    );
}

#[test]
fn a_selector_takes_a_tag_a_prefix_or_names() {
    let tags: BTreeMap<String, String> = [("env".to_owned(), "prod".to_owned())].into();
    let tag = Selector::tag("env=prod").unwrap();
    assert!(tag.matches("anything", &tags));
    assert!(!tag.matches("anything", &BTreeMap::new()));
    assert_eq!(tag.text(), "--tag env=prod");
    assert!(Selector::tag("env").unwrap_err().contains("KEY=VALUE"));
    assert!(Selector::tag("=prod").is_err());
    let prefix = Selector::Prefix {
        prefix: "shop-prod-".into(),
    };
    assert!(prefix.matches("shop-prod-web", &tags) && !prefix.matches("shop-staging-web", &tags));
    let names = Selector::Names {
        names: vec!["a".into(), "b".into()],
    };
    assert!(names.matches("b", &tags) && !names.matches("c", &tags));
}

fn found() -> Found {
    let (policies, alarms) = tierdeck_pair("shop-web", 50.0, 30.0);
    let mut web = group("shop-web", policies);
    web.min = 1;
    web.subnet_ids = vec!["subnet-aa".into()];
    web.security_groups = vec!["web-sg".into()];
    web.scheduled_actions = vec![
        ObservedScheduledAction {
            name: "web-peak".into(),
            recurrence: "0 19 * * *".into(),
            timezone: "Asia/Seoul".into(),
            min: Some(4),
            max: Some(6),
            desired: None,
        },
        ObservedScheduledAction {
            name: "launch-day".into(),
            recurrence: String::new(),
            timezone: "UTC".into(),
            min: Some(6),
            max: None,
            desired: None,
        },
    ];
    let rule = |source: Source, port: u16| ObservedRule {
        protocol: Protocol::Tcp,
        ports: Some((port, port)),
        source,
        description: Some("yes".into()),
    };
    let entry = |rule: u16, protocol: AclProtocol, ports: Option<(u16, u16)>| ObservedAclEntry {
        rule,
        protocol,
        ports,
        icmp: None,
        cidr: "10.0.10.0/23".into(),
        action: AclAction::Allow,
    };
    Found {
        groups: vec![web],
        databases: vec![FoundDatabase {
            database: ObservedDatabase {
                identifier: "shop-db".into(),
                instance_class: "db.t3.small".into(),
                multi_az: false,
                allocated_storage_gb: 20,
                backup_retention_days: 1,
                deletion_protection: false,
                status: "modifying".into(),
                engine: "mysql".into(),
                storage_type: "gp3".into(),
                pending_modifications: vec!["instance_class → db.t3.medium".into()],
                pending: PendingValues {
                    instance_class: Some("db.t3.medium".into()),
                    ..PendingValues::default()
                },
            },
            tags: BTreeMap::new(),
            security_groups: vec!["db-sg".into()],
            subnet_ids: vec!["subnet-bb".into()],
        }],
        alarms,
        alarms_read: true,
        security_groups: vec![
            ObservedSecurityGroup {
                name: "web-sg".into(),
                id: "sg-1".into(),
                ingress: vec![rule(Source::FromGroup("ext-alb-sg".into()), 80)],
            },
            ObservedSecurityGroup {
                name: "db-sg".into(),
                id: "sg-2".into(),
                ingress: vec![rule(Source::FromGroup("web-sg".into()), 3306)],
            },
            ObservedSecurityGroup {
                name: "ext-alb-sg".into(),
                id: "sg-3".into(),
                ingress: vec![rule(Source::Cidr("0.0.0.0/0".into()), 443)],
            },
            ObservedSecurityGroup {
                name: "default".into(),
                id: "sg-4".into(),
                ingress: Vec::new(),
            },
            ObservedSecurityGroup {
                name: "default".into(),
                id: "sg-5".into(),
                ingress: Vec::new(),
            },
        ],
        subnets: vec![
            ObservedSubnet {
                id: "subnet-aa".into(),
                name: Some("shop-web-a".into()),
                cidr: "10.0.20.0/24".into(),
                vpc_id: "vpc-1".into(),
            },
            ObservedSubnet {
                id: "subnet-bb".into(),
                name: None,
                cidr: "10.0.40.0/24".into(),
                vpc_id: "vpc-1".into(),
            },
        ],
        network_acls: vec![ObservedNetworkAcl {
            id: "acl-1".into(),
            name: Some("shop-nacl".into()),
            vpc_id: "vpc-1".into(),
            ingress: vec![
                entry(100, AclProtocol::Tcp, Some((80, 80))),
                entry(110, AclProtocol::Number(47), None),
            ],
            egress: vec![entry(100, AclProtocol::Tcp, Some((1024, 65535)))],
            subnet_ids: vec!["subnet-aa".into(), "subnet-bb".into()],
        }],
        unread: Vec::new(),
    }
}

#[test]
fn the_written_files_load_as_the_spec_of_what_runs_and_list_what_they_cannot_say() {
    let floor = Floor {
        min_approvals: 2,
        allow_auto_apply: true,
    };
    let imported = write(
        &found(),
        &Context {
            env: "prod",
            region: "ap-northeast-2",
            command: "tierdeck import prod --region ap-northeast-2 --prefix shop-",
            floor: &floor,
        },
    );
    let names: Vec<&str> = imported.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "environment.yaml",
            "autoscaling.yaml",
            "database.yaml",
            "security.yaml",
            "network.yaml"
        ]
    );
    let files: Vec<SourceFile> = imported
        .files
        .iter()
        .map(|(n, t)| SourceFile {
            path: format!("environments/prod/{n}"),
            text: t.clone(),
        })
        .collect();
    let spec = load_environment("prod", &files).unwrap_or_else(|e| panic!("{e:#?}\n{files:#?}"));
    assert_eq!(spec.environment.approvals.required, 2);
    assert_eq!(spec.environment.region.as_deref(), Some("ap-northeast-2"));
    let web = &spec.autoscaling_groups[0];
    assert_eq!(
        (web.tier.as_str(), web.capacity.min(), web.capacity.max()),
        ("web", 1, 8)
    );
    assert_eq!(web.schedule.len(), 1);
    assert_eq!(web.schedule[0].timezone.name(), "Asia/Seoul");
    // A pending modification's value is the database's.
    assert_eq!(
        spec.databases[0].instance_class.as_deref(),
        Some("db.t3.medium")
    );
    let sgs: Vec<(&str, bool, Option<&str>)> = spec
        .security_groups
        .iter()
        .map(|g| (g.name.as_str(), g.edge, g.tier.as_deref()))
        .collect();
    assert_eq!(
        sgs,
        [
            ("db-sg", false, Some("db")),
            ("web-sg", false, Some("web")),
            ("ext-alb-sg", true, Some("external-alb")),
        ]
    );
    assert_eq!(
        spec.security_groups[1].ingress[0].source,
        Source::FromGroup("ext-alb-sg".into())
    );
    assert_eq!(
        spec.security_groups[1].ingress[0].description.as_deref(),
        Some("yes")
    );
    assert_eq!(spec.subnets.len(), 2);
    assert_eq!(spec.network_acls[0].subnets, ["db", "web"]);
    assert_eq!(spec.network_acls[0].ingress.len(), 1);

    let listed: Vec<String> = imported
        .unexpressed
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        listed,
        [
            "scheduled action launch-day of shop-web: it runs once, at a time: the spec's scheduled actions recur (cron); the plan deletes it while the spec does not list it",
            "security group default: 2 groups carry this name (sg-4, sg-5), in different VPCs: the spec names a group by its name, so none of them is written",
            "network ACL acl-1 ingress entry 110: protocol 47: the spec writes tcp, udp, icmp, icmpv6 or all; the plan deletes it while the spec does not list it",
        ]
    );
    let autoscaling = &imported.files[1].1;
    assert!(
        autoscaling
            .contains("    # not expressed: scheduled action launch-day of shop-web: it runs once"),
        "{autoscaling}"
    );
    assert!(
        imported.files[0]
            .1
            .contains("required: 2   # the panel's floor (policy.min_approvals)"),
        "{}",
        imported.files[0].1
    );
}

#[test]
fn scalars_are_quoted_when_yaml_would_read_them_as_something_else() {
    assert_eq!(write::scalar("shop-prod-web"), "shop-prod-web");
    for text in ["yes", "No", "0.5", "10", "a b", "", "-x", "#x", "a:b"] {
        let q = write::scalar(text);
        assert_eq!(q, serde_json::to_string(text).unwrap(), "{text}");
    }
}

#[test]
fn the_page_selects_by_tag_prefix_or_names_and_refuses_what_selects_nothing_or_everything() {
    assert_eq!(
        Selector::from_form("names", " shop-web, shop-db\nshop-was ").unwrap(),
        Selector::Names {
            names: vec!["shop-web".into(), "shop-db".into(), "shop-was".into()]
        }
    );
    assert_eq!(
        Selector::from_form("prefix", "shop-").unwrap().text(),
        "--prefix shop-"
    );
    assert_eq!(
        Selector::from_form("tag", "env=prod").unwrap().text(),
        "--tag env=prod"
    );
    assert!(Selector::from_form("prefix", " ").is_err());
    assert!(Selector::from_form("names", ", ").is_err());
    assert!(Selector::from_form("tag", "env").is_err());
    assert!(Selector::from_form("arn", "x")
        .unwrap_err()
        .contains("tag, prefix or names"));
}

#[test]
fn the_download_is_a_ustar_archive_of_the_environments_folder() {
    let files = vec![
        (
            "environment.yaml".to_owned(),
            "environment:\n  name: prod\n".to_owned(),
        ),
        ("database.yaml".to_owned(), "x".repeat(600)),
    ];
    let archive = tar("prod", &files);
    assert_eq!(archive.len() % 512, 0);
    // Two folders, then each file's header and its blocks (1, and 2 for 600 bytes), then two
    // empty blocks.
    assert_eq!(archive.len(), 512 * (2 + (1 + 1) + (1 + 2) + 2));
    let name = |at: usize| {
        let raw = &archive[at..at + 100];
        String::from_utf8(raw.iter().copied().take_while(|b| *b != 0).collect()).unwrap()
    };
    assert_eq!(name(0), "environments/");
    assert_eq!(archive[156], b'5');
    assert_eq!(name(512), "environments/prod/");
    assert_eq!(name(1024), "environments/prod/environment.yaml");
    assert_eq!(&archive[1024 + 124..1024 + 135], b"00000000032");
    assert_eq!(&archive[1536..1536 + 12], b"environment:");
    assert_eq!(name(2048), "environments/prod/database.yaml");
    assert_eq!(&archive[2048 + 257..2048 + 263], b"ustar\0");
    // The checksum: the header's bytes summed with its own field as spaces.
    let h = &archive[2048..2560];
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    assert_eq!(&h[148..155], format!("{sum:06o}\0").as_bytes());
    assert!(archive[archive.len() - 1024..].iter().all(|b| *b == 0));
}
