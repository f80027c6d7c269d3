//! A shop made by hand with raw API calls against the emulator, as a team builds one in the
//! console (not `tierdeck sandbox up`), for the import's tests.

use crate::aws::{query, tag_value};

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
/// subnet pair per tier, a network ACL each for web and was (the database's subnets kept the
/// VPC's default one, which has no name), the web and was groups with CPU step scaling and the
/// team's five scheduled actions (Seoul time), the MySQL database, and on the was group a
/// target-tracking policy on network traffic, which the spec cannot say.
pub async fn build_shop(url: &str) {
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
    // The database's subnets were left on the VPC's default ACL (no Name tag: read by id).

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
