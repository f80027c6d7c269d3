//! `tierdeck import` against the AWS emulator: a shop made by hand with raw API calls (not
//! `tierdeck sandbox up`) imported into a spec that validates, plans to "No changes" and lists
//! the policy it cannot express; an action the plan role may not call listed with the rest
//! written, every call signed by that role; nothing matching writes nothing; a spec in the
//! folder is not overwritten.

use std::path::Path;

use tierdeck_tests::aws::{query, tag_value, Fault, FaultProxy};
use tierdeck_tests::{cli_with, snapshot, Moto};

const REGION: &str = "ap-northeast-2";
const PROD_READ: &str = "arn:aws:iam::123456789012:role/tierdeck-prod-read";

/// The files written under `environments/ENV`, each after a `== name ==` line, with the
/// emulator's random ids (`sg-…`, `subnet-…`, `acl-…`, `vpc-…`) made stable.
fn written(root: &Path, env: &str) -> String {
    let folder = root.join("environments").join(env);
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut out = String::new();
    for n in names {
        let text = std::fs::read_to_string(folder.join(&n)).unwrap();
        out.push_str(&format!("== {n} ==\n{}", stable_ids(&text)));
    }
    out
}

/// `sg-0a1b…` → `sg-1`, numbered in order of first appearance per kind.
fn stable_ids(text: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::new();
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for kind in ["sg-", "subnet-", "acl-", "vpc-"] {
            if let Some(tail) = rest.strip_prefix(kind) {
                let len = tail
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .unwrap_or(tail.len());
                let boundary = !out.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-');
                if len >= 8 && boundary {
                    let id = format!("{kind}{}", &tail[..len]);
                    let n = match seen.iter().position(|s| s == &id) {
                        Some(i) => i,
                        None => {
                            seen.push(id.clone());
                            seen.len() - 1
                        }
                    };
                    let same_kind = seen[..=n].iter().filter(|s| s.starts_with(kind)).count();
                    out.push_str(&format!("{kind}{same_kind}"));
                    rest = &tail[len..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

async fn ec2(url: &str, action: &str, params: &[(&str, &str)]) -> String {
    query(url, "ec2", action, params).await
}

/// A subnet named `name` with `cidr` in `vpc`; its id.
async fn subnet(url: &str, vpc: &str, name: &str, cidr: &str, zone: &str) -> String {
    let xml = ec2(
        url,
        "CreateSubnet",
        &[
            ("VpcId", vpc),
            ("CidrBlock", cidr),
            ("AvailabilityZone", zone),
            ("TagSpecification.1.ResourceType", "subnet"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", name),
        ],
    )
    .await;
    tag_value(&xml, "subnetId")
}

/// A network ACL named `name` guarding `subnets`, with `entries` (rule, egress, port from,
/// port to, cidr).
async fn acl(
    url: &str,
    vpc: &str,
    name: &str,
    subnets: &[&str],
    entries: &[(u16, bool, u16, u16, &str)],
) {
    let xml = ec2(
        url,
        "CreateNetworkAcl",
        &[
            ("VpcId", vpc),
            ("TagSpecification.1.ResourceType", "network-acl"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", name),
        ],
    )
    .await;
    let id = tag_value(&xml, "networkAclId");
    for (rule, egress, from, to, cidr) in entries {
        let (rule, from, to) = (rule.to_string(), from.to_string(), to.to_string());
        ec2(
            url,
            "CreateNetworkAclEntry",
            &[
                ("NetworkAclId", &id),
                ("RuleNumber", &rule),
                ("Protocol", "6"),
                ("RuleAction", "allow"),
                ("Egress", if *egress { "true" } else { "false" }),
                ("CidrBlock", cidr),
                ("PortRange.From", &from),
                ("PortRange.To", &to),
            ],
        )
        .await;
    }
    for s in subnets {
        // The subnet's association with the VPC's default ACL, moved to this one.
        let xml = ec2(
            url,
            "DescribeNetworkAcls",
            &[
                ("Filter.1.Name", "association.subnet-id"),
                ("Filter.1.Value.1", s),
            ],
        )
        .await;
        let at = xml
            .find(&format!("<subnetId>{s}</subnetId>"))
            .expect("the subnet's association");
        let assoc = xml[..at]
            .rsplit_once("<networkAclAssociationId>")
            .and_then(|(_, r)| r.split_once('<'))
            .map(|(v, _)| v.to_owned())
            .expect("an association id");
        ec2(
            url,
            "ReplaceNetworkAclAssociation",
            &[("AssociationId", &assoc), ("NetworkAclId", &id)],
        )
        .await;
    }
}

async fn security_group(url: &str, vpc: &str, name: &str) -> String {
    let xml = ec2(
        url,
        "CreateSecurityGroup",
        &[
            ("GroupName", name),
            ("GroupDescription", name),
            ("VpcId", vpc),
        ],
    )
    .await;
    tag_value(&xml, "groupId")
}

/// Allows tcp/`port` into `group` from `source` (a group id or a block).
async fn allow(url: &str, group: &str, port: u16, source: &str, description: &str) {
    let port = port.to_string();
    let mut params = vec![
        ("GroupId", group),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", port.as_str()),
        ("IpPermissions.1.ToPort", port.as_str()),
    ];
    if source.starts_with("sg-") {
        params.push(("IpPermissions.1.Groups.1.GroupId", source));
        params.push(("IpPermissions.1.Groups.1.Description", description));
    } else {
        params.push(("IpPermissions.1.IpRanges.1.CidrIp", source));
        params.push(("IpPermissions.1.IpRanges.1.Description", description));
    }
    ec2(url, "AuthorizeSecurityGroupIngress", &params).await;
}

async fn autoscaling(url: &str, action: &str, params: &[(&str, &str)]) -> String {
    query(url, "autoscaling", action, params).await
}

/// A step policy of `group`; its ARN.
async fn step_policy(url: &str, group: &str, name: &str, adjustment: i32) -> String {
    let adjustment = adjustment.to_string();
    autoscaling(
        url,
        "PutScalingPolicy",
        &[
            ("AutoScalingGroupName", group),
            ("PolicyName", name),
            ("PolicyType", "SimpleScaling"),
            ("AdjustmentType", "ChangeInCapacity"),
            ("ScalingAdjustment", &adjustment),
            ("Cooldown", "300"),
        ],
    )
    .await;
    // The emulator's answer leaves the ARN out: read it back.
    let xml = autoscaling(
        url,
        "DescribePolicies",
        &[
            ("AutoScalingGroupName", group),
            ("PolicyNames.member.1", name),
        ],
    )
    .await;
    tag_value(&xml, "PolicyARN")
}

/// An alarm on `group`'s average CPU calling `arn`.
async fn cpu_alarm(
    url: &str,
    group: &str,
    name: &str,
    comparison: &str,
    threshold: &str,
    arn: &str,
) {
    query(
        url,
        "monitoring",
        "PutMetricAlarm",
        &[
            ("AlarmName", name),
            ("Namespace", "AWS/EC2"),
            ("MetricName", "CPUUtilization"),
            ("Statistic", "Average"),
            ("Dimensions.member.1.Name", "AutoScalingGroupName"),
            ("Dimensions.member.1.Value", group),
            ("Period", "300"),
            ("EvaluationPeriods", "1"),
            ("Threshold", threshold),
            ("ComparisonOperator", comparison),
            ("AlarmActions.member.1", arn),
        ],
    )
    .await;
}

/// The shop as the team built it by hand in the console: the tier chain's security groups, a
/// subnet pair and a network ACL per tier, the web and was groups with CPU step scaling and the
/// team's five scheduled actions (Seoul time), the MySQL database, and on the was group a
/// target-tracking policy on network traffic, which the spec cannot say.
async fn build_shop(url: &str) {
    let xml = ec2(url, "CreateVpc", &[("CidrBlock", "10.0.0.0/16")]).await;
    let vpc = tag_value(&xml, "vpcId");
    let web_a = subnet(
        url,
        &vpc,
        "shop-prod-web-a",
        "10.0.20.0/24",
        "ap-northeast-2a",
    )
    .await;
    let web_c = subnet(
        url,
        &vpc,
        "shop-prod-web-c",
        "10.0.21.0/24",
        "ap-northeast-2c",
    )
    .await;
    let was_a = subnet(
        url,
        &vpc,
        "shop-prod-was-a",
        "10.0.30.0/24",
        "ap-northeast-2a",
    )
    .await;
    let was_c = subnet(
        url,
        &vpc,
        "shop-prod-was-c",
        "10.0.31.0/24",
        "ap-northeast-2c",
    )
    .await;
    let db_a = subnet(
        url,
        &vpc,
        "shop-prod-db-a",
        "10.0.40.0/24",
        "ap-northeast-2a",
    )
    .await;
    let db_c = subnet(
        url,
        &vpc,
        "shop-prod-db-c",
        "10.0.41.0/24",
        "ap-northeast-2c",
    )
    .await;
    acl(
        url,
        &vpc,
        "shop-prod-web-nacl",
        &[&web_a, &web_c],
        &[
            (100, false, 80, 80, "10.0.10.0/23"),
            (110, false, 1024, 65535, "0.0.0.0/0"),
            (100, true, 1024, 65535, "10.0.10.0/23"),
            (110, true, 80, 80, "10.0.30.0/23"),
        ],
    )
    .await;
    acl(
        url,
        &vpc,
        "shop-prod-was-nacl",
        &[&was_a, &was_c],
        &[
            (100, false, 80, 80, "10.0.20.0/23"),
            (110, false, 8080, 8080, "10.0.30.0/23"),
            (100, true, 1024, 65535, "10.0.20.0/23"),
            (110, true, 3306, 3306, "10.0.40.0/23"),
        ],
    )
    .await;
    acl(
        url,
        &vpc,
        "shop-prod-db-nacl",
        &[&db_a, &db_c],
        &[
            (100, false, 3306, 3306, "10.0.30.0/23"),
            (100, true, 1024, 65535, "10.0.30.0/23"),
        ],
    )
    .await;

    let ext = security_group(url, &vpc, "shop-prod-ext-alb-sg").await;
    let web = security_group(url, &vpc, "shop-prod-web-sg").await;
    let int = security_group(url, &vpc, "shop-prod-int-alb-sg").await;
    let was = security_group(url, &vpc, "shop-prod-was-sg").await;
    let db = security_group(url, &vpc, "shop-prod-db-sg").await;
    allow(url, &ext, 443, "0.0.0.0/0", "HTTPS from CloudFront").await;
    allow(url, &web, 80, &ext, "from the external ALB").await;
    allow(url, &int, 80, &web, "from the web tier").await;
    allow(url, &was, 8080, &int, "from the internal ALB").await;
    allow(url, &db, 3306, &was, "MySQL from the was tier").await;

    for (tier, sg, subnets, min) in [
        ("web", &web, format!("{web_a},{web_c}"), "2"),
        ("was", &was, format!("{was_a},{was_c}"), "1"),
    ] {
        let template = format!("shop-prod-{tier}-lt");
        ec2(
            url,
            "CreateLaunchTemplate",
            &[
                ("LaunchTemplateName", &template),
                ("LaunchTemplateData.ImageId", "ami-12c6146b"),
                ("LaunchTemplateData.InstanceType", "t3.medium"),
                ("LaunchTemplateData.SecurityGroupId.1", sg),
            ],
        )
        .await;
        let group = format!("shop-prod-{tier}");
        let mut params = vec![
            ("AutoScalingGroupName", group.as_str()),
            ("LaunchTemplate.LaunchTemplateName", template.as_str()),
            ("LaunchTemplate.Version", "$Default"),
            ("MinSize", min),
            ("MaxSize", "8"),
            ("DesiredCapacity", "2"),
            ("VPCZoneIdentifier", subnets.as_str()),
        ];
        // The web group says its tier in a tag; the was group only in its name.
        if tier == "web" {
            params.extend([
                ("Tags.member.1.Key", "tier"),
                ("Tags.member.1.Value", "web"),
                ("Tags.member.1.PropagateAtLaunch", "true"),
            ]);
        }
        autoscaling(url, "CreateAutoScalingGroup", &params).await;
        let p = |what: &str| format!("tierdeck-{group}-cpu-{what}");
        let out = step_policy(url, &group, &p("out"), 1).await;
        let inn = step_policy(url, &group, &p("in"), -1).await;
        cpu_alarm(
            url,
            &group,
            &p("high"),
            "GreaterThanOrEqualToThreshold",
            "50",
            &out,
        )
        .await;
        cpu_alarm(
            url,
            &group,
            &p("low"),
            "LessThanOrEqualToThreshold",
            "30",
            &inn,
        )
        .await;
        for (name, cron, min, max, desired) in [
            ("night", "0 0 * * *", "2", "8", Some("2")),
            ("business", "0 9 * * *", "2", "8", Some("2")),
            ("prescale", "50 18 * * *", "3", "4", Some("4")),
            ("peak", "0 19 * * *", "4", "6", None),
            ("wind-down", "0 22 * * *", "2", "3", None),
        ] {
            let action = format!("{tier}-{name}");
            let mut params = vec![
                ("AutoScalingGroupName", group.as_str()),
                ("ScheduledActionName", action.as_str()),
                ("Recurrence", cron),
                ("TimeZone", "Asia/Seoul"),
                ("MinSize", min),
                ("MaxSize", max),
            ];
            if let Some(d) = desired {
                params.push(("DesiredCapacity", d));
            }
            autoscaling(url, "PutScheduledUpdateGroupAction", &params).await;
        }
    }
    // What the spec cannot say: scaling on network traffic.
    autoscaling(
        url,
        "PutScalingPolicy",
        &[
            ("AutoScalingGroupName", "shop-prod-was"),
            ("PolicyName", "shop-prod-was-network-in"),
            ("PolicyType", "TargetTrackingScaling"),
            (
                "TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
                "ASGAverageNetworkIn",
            ),
            ("TargetTrackingConfiguration.TargetValue", "5000000"),
        ],
    )
    .await;

    query(
        url,
        "rds",
        "CreateDBSubnetGroup",
        &[
            ("DBSubnetGroupName", "shop-prod-db-subnets"),
            ("DBSubnetGroupDescription", "the db tier"),
            ("SubnetIds.SubnetIdentifier.1", &db_a),
            ("SubnetIds.SubnetIdentifier.2", &db_c),
        ],
    )
    .await;
    query(
        url,
        "rds",
        "CreateDBInstance",
        &[
            ("DBInstanceIdentifier", "shop-prod-db"),
            ("DBInstanceClass", "db.t3.medium"),
            ("Engine", "mysql"),
            ("AllocatedStorage", "20"),
            ("MultiAZ", "true"),
            ("BackupRetentionPeriod", "7"),
            ("DeletionProtection", "true"),
            ("MasterUsername", "petclinic"),
            ("MasterUserPassword", "not-a-secret-1"),
            ("DBSubnetGroupName", "shop-prod-db-subnets"),
            ("VpcSecurityGroupIds.VpcSecurityGroupId.1", &db),
        ],
    )
    .await;
}

async fn import(dir: &Path, aws: &str, args: &[&str]) -> (i32, String, String) {
    import_with(dir, aws, args, &[]).await
}

/// `tierdeck import ARGS` with AWS at `aws` and more environment variables.
async fn import_with(
    dir: &Path,
    aws: &str,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (i32, String, String) {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let mut env = vec![("TIERDECK_AWS__ENDPOINT_URL", aws)];
    env.extend_from_slice(vars);
    let out = cli_with(dir, &all, None, &env).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn a_shop_made_by_hand_is_imported_into_a_spec_that_validates_and_plans_to_no_changes() {
    let moto = Moto::start().await;
    build_shop(&moto.url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("repo");
    let out_arg = out.to_str().unwrap();
    let (code, stdout, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--prefix",
            "shop-prod-",
            "--out",
            out_arg,
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "2 Auto Scaling groups, 1 database, 5 security groups, 6 subnets, 3 network ACLs"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("  No changes: the spec says what runs."),
        "{stdout}"
    );
    // The policy tierdeck cannot express is listed, with why.
    assert!(
        stdout.contains("  - policy shop-prod-was-network-in of shop-prod-was: target tracking of ASGAverageNetworkIn at 5000000: the spec has one CPU scaling per group"),
        "{stdout}"
    );
    // What already runs against the guardrails is listed at the end.
    assert!(
        stdout.contains(
            "[min-instances] group shop-prod-was: min 1 is below the guardrail min_instances 2"
        ),
        "{stdout}"
    );

    // tierdeck validate agrees.
    let v = cli_with(dir.path(), &["validate", out_arg], None, &[]).await;
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    snapshot::assert_matches("import-shop.txt", &written(&out, "prod"));

    // A second import does not overwrite the spec without --force, and with it writes the same.
    let (code, _, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--prefix",
            "shop-prod-",
            "--out",
            out_arg,
        ],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds a spec already (autoscaling.yaml, database.yaml, environment.yaml, network.yaml, security.yaml): nothing was read or written; pass --force"), "{stderr}");
    let (code, stdout, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod", "--region", REGION, "--tag", "tier=web", "--out", out_arg, "--force",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("1 Auto Scaling group, 0 databases"),
        "{stdout}"
    );
    let files = written(&out, "prod");
    assert!(files.contains("  - name: shop-prod-web\n"), "{files}");
    assert!(!files.contains("shop-prod-was\n"), "{files}");
    assert!(!files.contains("== database.yaml =="), "{files}");
}

#[tokio::test]
async fn an_action_the_plan_role_may_not_call_is_listed_and_the_rest_is_written_with_that_role() {
    let moto = Moto::start().await;
    build_shop(&moto.url).await;
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.fail("DescribeDBInstances", Fault::AccessDenied, None);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("repo");
    // prod reads through its plan role, as its plans do.
    let (code, stdout, stderr) = import_with(
        dir.path(),
        &proxy.url,
        &[
            "prod",
            "--region",
            REGION,
            "--prefix",
            "shop-prod-",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("TIERDECK_AWS__ENVIRONMENTS__PROD__PLAN_ROLE_ARN", PROD_READ)],
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    let assumed = proxy.assumed();
    assert!(
        !assumed.is_empty()
            && assumed
                .iter()
                .all(|a| a.role == PROD_READ && a.session == "tierdeck-prod-system"),
        "{assumed:#?}"
    );
    let keys: Vec<&str> = assumed.iter().map(|a| a.key.as_str()).collect();
    let signed = proxy.signed();
    let reads: Vec<_> = signed.iter().filter(|c| c.service != "sts").collect();
    assert!(!reads.is_empty());
    assert!(
        reads.iter().all(|c| keys.contains(&c.key.as_str())),
        "a call not signed with the plan role's key: {reads:#?}"
    );
    assert!(
        stdout.contains("Could not read (access denied; the rest was read):\n  - databases: the credentials may not call rds:DescribeDBInstances\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  No changes: the spec says what runs."),
        "{stdout}"
    );
    assert!(
        stdout.contains("with resources it could not read"),
        "{stdout}"
    );
    let files = written(&out, "prod");
    assert!(!files.contains("== database.yaml =="), "{files}");
    assert!(files.contains("  - name: shop-prod-was\n"), "{files}");
    // The database's own group is not read either: nothing selected uses it that could be.
    assert!(!files.contains("shop-prod-db-sg"), "{files}");
    assert!(files.contains("  - name: shop-prod-was-sg\n"), "{files}");
}

#[tokio::test]
async fn nothing_matching_writes_nothing_and_a_name_matching_nothing_or_another_region_is_said() {
    let moto = Moto::start().await;
    build_shop(&moto.url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("repo");
    let (code, stdout, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--names",
            "shop-staging-web",
            "shop-staging-db",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("Nothing in ap-northeast-2 matches --names shop-staging-web shop-staging-db: no Auto Scaling group and no database. Nothing was written."),
        "{stdout}"
    );
    assert!(!out.exists());
    let (code, _, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--tag",
            "no-equals-sign",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 2);
    assert!(stderr.contains("--tag takes KEY=VALUE"), "{stderr}");

    // A name that matches nothing is said, beside what the others matched.
    let (code, stdout, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--names",
            "shop-prod-web",
            "shop-prod-wbe",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("\nNo group or database of these names: shop-prod-wbe\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  No changes: the spec says what runs."),
        "{stdout}"
    );

    // The round trip plans where the panel reads prod: another region is refused up front.
    let (code, stdout, stderr) = import_with(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--prefix",
            "shop-prod-",
            "--out",
            out.to_str().unwrap(),
            "--force",
        ],
        &[("TIERDECK_AWS__ENVIRONMENTS__PROD__REGION", "us-east-1")],
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("the panel reads prod in us-east-1 ([aws.environments.prod] region), not ap-northeast-2"),
        "{stderr}"
    );
}
