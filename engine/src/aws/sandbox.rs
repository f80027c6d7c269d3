//! `tierdeck sandbox up`: creates, in an AWS emulator, the resources a spec repository names
//! (a VPC 10.0.0.0/16 with two subnets of its own in two zones, launch templates, the groups,
//! databases and security groups, the spec's subnets and its network ACLs with their
//! associations and entries), with settings that differ from the specs so there is something
//! to plan (the network ACLs are as the specs say: a change or the tests move them). It talks
//! to loopback addresses only.

use std::net::IpAddr;

use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, RequestLaunchTemplateData, ResourceType, RuleAction, Tag,
    TagSpecification,
};
use domain::net::AddrRange;
use domain::spec::{AclAction, AwsRef, EnvironmentSpec};

use super::observe::Clients;
use super::{classify, AwsError, AwsErrorKind, AwsResult, AwsSettings};

/// Refuses any endpoint that is not on this machine.
pub fn check_loopback(endpoint: &str) -> Result<(), String> {
    let url = url_host(endpoint).ok_or_else(|| format!("`{endpoint}` is not an http(s) URL"))?;
    let loopback = url == "localhost"
        || url
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!("`{endpoint}` is not a loopback address: the sandbox only talks to an emulator on this machine"))
    }
}

fn url_host(endpoint: &str) -> Option<String> {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))?;
    let authority = rest.split('/').next()?;
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| format!("{h}]"))?
    } else {
        authority.split(':').next()?.to_owned()
    };
    (!host.is_empty()).then_some(host)
}

fn invalid(what: &str, message: &str) -> AwsError {
    AwsError::rejected(what, message)
}

/// The sandbox VPC's block and its own two subnets' (the groups launch there).
const VPC_BLOCK: &str = "10.0.0.0/16";
const OWN_SUBNETS: [&str; 2] = ["10.0.1.0/24", "10.0.2.0/24"];

fn name_tag(resource: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .tags(Tag::builder().key("Name").value(name).build())
        .build()
}

/// Creates what `spec` names in the emulator; returns a line per thing done. Safe to run again:
/// what exists is left as it is.
pub async fn up(settings: &AwsSettings, spec: &EnvironmentSpec) -> AwsResult<Vec<String>> {
    let endpoint = settings
        .endpoint_url
        .clone()
        .ok_or_else(|| invalid("sandbox", "needs an emulator endpoint"))?;
    check_loopback(&endpoint).map_err(|m| invalid("sandbox", &m))?;
    let region = spec
        .environment
        .region
        .clone()
        .unwrap_or_else(|| settings.default_region.clone());
    let clients = Clients::for_region(settings, &region).await;
    let ec2 = clients.ec2.client();
    let asg = clients.autoscaling.client();
    let rds = clients.rds.client();
    let env = &spec.environment.name;
    let mut done = Vec::new();

    // One VPC per environment, found again by its Name tag.
    let vpc_name = format!("tierdeck-sandbox-{env}");
    let vpcs = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("tag:Name").values(&vpc_name).build())
        .send()
        .await
        .map_err(|e| classify("finding the sandbox VPC", "ec2:DescribeVpcs", e))?;
    let (vpc_id, subnets) = match vpcs.vpcs().first().and_then(|v| v.vpc_id()) {
        Some(id) => {
            let s = ec2
                .describe_subnets()
                .filters(Filter::builder().name("vpc-id").values(id).build())
                .send()
                .await
                .map_err(|e| classify("finding the sandbox subnets", "ec2:DescribeSubnets", e))?;
            (
                id.to_owned(),
                s.subnets()
                    .iter()
                    .filter_map(|s| s.subnet_id().map(str::to_owned))
                    .collect::<Vec<_>>(),
            )
        }
        None => {
            let vpc = ec2
                .create_vpc()
                .cidr_block(VPC_BLOCK)
                .send()
                .await
                .map_err(|e| classify("creating the sandbox VPC", "ec2:CreateVpc", e))?;
            let id = vpc
                .vpc()
                .and_then(|v| v.vpc_id())
                .unwrap_or_default()
                .to_owned();
            ec2.create_tags()
                .resources(&id)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Name")
                        .value(&vpc_name)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify("naming the sandbox VPC", "ec2:CreateTags", e))?;
            let mut subnets = Vec::new();
            for (block, zone) in OWN_SUBNETS.iter().zip(["a", "c"]) {
                let s = ec2
                    .create_subnet()
                    .vpc_id(&id)
                    .cidr_block(*block)
                    .availability_zone(format!("{region}{zone}"))
                    .send()
                    .await
                    .map_err(|e| classify("creating a sandbox subnet", "ec2:CreateSubnet", e))?;
                subnets.push(
                    s.subnet()
                        .and_then(|s| s.subnet_id())
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            done.push(format!(
                "created VPC {id} with subnets {} in {region}a and {region}c",
                subnets.join(", ")
            ));
            (id, subnets)
        }
    };

    let image = ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .map_err(|e| classify("finding an image", "ec2:DescribeImages", e))?
        .images()
        .iter()
        .find_map(|i| i.image_id().map(str::to_owned))
        .ok_or_else(|| invalid("sandbox", "the emulator offers no machine image"))?;

    for g in &spec.autoscaling_groups {
        let exists = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(g.name.as_str())
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("looking for group {}", g.name),
                    "autoscaling:DescribeAutoScalingGroups",
                    e,
                )
            })?
            .auto_scaling_groups()
            .iter()
            .any(|x| x.auto_scaling_group_name() == Some(g.name.as_str()));
        if exists {
            continue;
        }
        let template = format!("{}-lt", g.name);
        let templates = ec2
            .describe_launch_templates()
            .filters(
                Filter::builder()
                    .name("launch-template-name")
                    .values(&template)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                classify(
                    "looking for a launch template",
                    "ec2:DescribeLaunchTemplates",
                    e,
                )
            })?;
        if templates.launch_templates().is_empty() {
            ec2.create_launch_template()
                .launch_template_name(&template)
                .launch_template_data(
                    RequestLaunchTemplateData::builder()
                        .image_id(&image)
                        .instance_type(aws_sdk_ec2::types::InstanceType::from(
                            g.instance_type.as_deref().unwrap_or("t3.micro"),
                        ))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    classify(
                        format!("creating launch template {template}"),
                        "ec2:CreateLaunchTemplate",
                        e,
                    )
                })?;
        }
        // Deliberately unlike the spec: a smaller group, so the first plan has work to do. On a
        // numbered version, as a rollout needs to roll back.
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(g.name.as_str())
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(&template)
                    .version("1")
                    .build(),
            )
            .min_size(1)
            .max_size(3)
            .desired_capacity(1)
            .vpc_zone_identifier(subnets.join(","))
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("creating group {}", g.name),
                    "autoscaling:CreateAutoScalingGroup",
                    e,
                )
            })?;
        done.push(format!(
            "created autoscaling group {} (min 1, max 3, desired 1) from {template}",
            g.name
        ));
    }

    for sg in &spec.security_groups {
        let found = ec2
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("group-name")
                    .values(&sg.name)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("looking for security group {}", sg.name),
                    "ec2:DescribeSecurityGroups",
                    e,
                )
            })?;
        if !found.security_groups().is_empty() {
            continue;
        }
        let created = ec2
            .create_security_group()
            .group_name(&sg.name)
            .description(format!("{} (tierdeck sandbox)", sg.name))
            .vpc_id(&vpc_id)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("creating security group {}", sg.name),
                    "ec2:CreateSecurityGroup",
                    e,
                )
            })?;
        let id = created.group_id().unwrap_or_default().to_owned();
        // A rule the spec does not have, so the first plan revokes something.
        ec2.authorize_security_group_ingress()
            .group_id(&id)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(22)
                    .to_port(22)
                    .ip_ranges(
                        IpRange::builder()
                            .cidr_ip("10.0.0.0/8")
                            .description("ssh from the office (sandbox)")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("adding a rule to {}", sg.name),
                    "ec2:AuthorizeSecurityGroupIngress",
                    e,
                )
            })?;
        done.push(format!(
            "created security group {} ({id}) with one stray rule tcp/22 from 10.0.0.0/8",
            sg.name
        ));
    }

    done.extend(network(ec2, spec, &vpc_id, &region).await?);

    for d in &spec.databases {
        let exists = match rds
            .describe_db_instances()
            .db_instance_identifier(d.identifier.as_str())
            .send()
            .await
        {
            Ok(o) => !o.db_instances().is_empty(),
            Err(e) => {
                let e = classify(
                    format!("looking for database {}", d.identifier),
                    "rds:DescribeDBInstances",
                    e,
                );
                if e.kind != AwsErrorKind::NotFound {
                    return Err(e);
                }
                false
            }
        };
        if exists {
            continue;
        }
        rds.create_db_instance()
            .db_instance_identifier(d.identifier.as_str())
            .db_instance_class("db.t3.small")
            .engine("mysql")
            .master_username("petclinic")
            .master_user_password("sandbox-only-password")
            .allocated_storage(20)
            .multi_az(false)
            .backup_retention_period(1)
            .deletion_protection(false)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("creating database {}", d.identifier),
                    "rds:CreateDBInstance",
                    e,
                )
            })?;
        done.push(format!(
            "created database {} (db.t3.small, single-AZ, 20 GB, 1-day backups)",
            d.identifier
        ));
    }
    done.extend(load_balancers(clients.elbv2.client(), asg, spec, &vpc_id, &subnets).await?);
    Ok(done)
}

/// The spec's load balancers (those named by name) with their target groups (HTTP on port
/// 80 in the sandbox VPC), each group of the load balancer's tier attached to its target
/// groups, so its instances are registered targets as Auto Scaling registers them.
async fn load_balancers(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    asg: &aws_sdk_autoscaling::Client,
    spec: &EnvironmentSpec,
    vpc_id: &str,
    subnets: &[String],
) -> AwsResult<Vec<String>> {
    use aws_sdk_elasticloadbalancingv2::types::ProtocolEnum;
    let mut done = Vec::new();
    for lb in &spec.monitoring.load_balancers {
        if domain::spec::LoadBalancer::is_arn(&lb.name) {
            done.push(format!(
                "load balancer {} is named by its ARN: the sandbox cannot make one with that ARN, skipped",
                lb.name
            ));
            continue;
        }
        let found = elb.describe_load_balancers().names(&lb.name).send().await;
        let lb_arn = match found {
            Ok(o) => o
                .load_balancers()
                .first()
                .and_then(|l| l.load_balancer_arn())
                .map(str::to_owned),
            Err(e) => {
                let e = classify(
                    format!("looking for load balancer {}", lb.name),
                    "elasticloadbalancing:DescribeLoadBalancers",
                    e,
                );
                if e.code.as_deref() != Some("LoadBalancerNotFound") {
                    return Err(e);
                }
                None
            }
        };
        let lb_arn = match lb_arn {
            Some(a) => a,
            None => {
                let created = elb
                    .create_load_balancer()
                    .name(&lb.name)
                    .set_subnets(Some(subnets.to_vec()))
                    .send()
                    .await
                    .map_err(|e| {
                        classify(
                            format!("creating load balancer {}", lb.name),
                            "elasticloadbalancing:CreateLoadBalancer",
                            e,
                        )
                    })?;
                done.push(format!("created load balancer {}", lb.name));
                created
                    .load_balancers()
                    .first()
                    .and_then(|l| l.load_balancer_arn())
                    .unwrap_or_default()
                    .to_owned()
            }
        };
        // The emulator answers TargetGroupNotFound for a load balancer without any.
        let existing: Vec<String> = match elb
            .describe_target_groups()
            .load_balancer_arn(&lb_arn)
            .send()
            .await
        {
            Ok(o) => o
                .target_groups()
                .iter()
                .filter_map(|t| t.target_group_name().map(str::to_owned))
                .collect(),
            Err(e) => {
                let e = classify(
                    format!("reading the target groups of {}", lb.name),
                    "elasticloadbalancing:DescribeTargetGroups",
                    e,
                );
                if e.code.as_deref() != Some("TargetGroupNotFound") {
                    return Err(e);
                }
                Vec::new()
            }
        };
        for (i, tg) in lb.target_groups.iter().enumerate() {
            if domain::spec::LoadBalancer::is_arn(tg) || existing.contains(tg) {
                continue;
            }
            let created = elb
                .create_target_group()
                .name(tg)
                .protocol(ProtocolEnum::Http)
                .port(80)
                .vpc_id(vpc_id)
                .send()
                .await
                .map_err(|e| {
                    classify(
                        format!("creating target group {tg}"),
                        "elasticloadbalancing:CreateTargetGroup",
                        e,
                    )
                })?;
            let tg_arn = created
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .unwrap_or_default()
                .to_owned();
            // A listener (one port each) puts the target group behind the load balancer.
            elb.create_listener()
                .load_balancer_arn(&lb_arn)
                .protocol(ProtocolEnum::Http)
                .port(80 + i32::try_from(i).unwrap_or(0))
                .default_actions(
                    aws_sdk_elasticloadbalancingv2::types::Action::builder()
                        .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                        .target_group_arn(&tg_arn)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    classify(
                        format!("adding a listener to {}", lb.name),
                        "elasticloadbalancing:CreateListener",
                        e,
                    )
                })?;
            let groups: Vec<&str> = spec
                .autoscaling_groups
                .iter()
                .filter(|g| Some(&g.tier) == lb.tier.as_ref())
                .map(|g| g.name.as_str())
                .collect();
            for g in &groups {
                asg.attach_load_balancer_target_groups()
                    .auto_scaling_group_name(*g)
                    .target_group_arns(&tg_arn)
                    .send()
                    .await
                    .map_err(|e| {
                        classify(
                            format!("attaching {g} to target group {tg}"),
                            "autoscaling:AttachLoadBalancerTargetGroups",
                            e,
                        )
                    })?;
            }
            done.push(format!(
                "created target group {tg} behind {} (HTTP 80){}",
                lb.name,
                if groups.is_empty() {
                    String::new()
                } else {
                    format!(", targets of {}", groups.join(", "))
                }
            ));
        }
    }
    Ok(done)
}

/// The spec's subnets and network ACLs in the sandbox VPC, as the spec says them: each ACL
/// guards its tiers' subnets and holds the spec's entries.
async fn network(
    ec2: &aws_sdk_ec2::Client,
    spec: &EnvironmentSpec,
    vpc_id: &str,
    region: &str,
) -> AwsResult<Vec<String>> {
    let mut done = Vec::new();
    let vpc = AddrRange::parse(VPC_BLOCK).expect("a block");
    let own: Vec<AddrRange> = OWN_SUBNETS
        .iter()
        .filter_map(|c| AddrRange::parse(c))
        .collect();
    let in_vpc = |filter: Filter| {
        ec2.describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
            .filters(filter)
    };
    let mut subnet_ids: Vec<(String, String)> = Vec::new(); // (tier, id)
    for (i, s) in spec.subnets.iter().enumerate() {
        let AwsRef::Name(name) = &s.resource else {
            done.push(format!(
                "subnet {} is named by its id: the sandbox cannot make one with that id, skipped",
                s.resource
            ));
            continue;
        };
        let found = in_vpc(Filter::builder().name("tag:Name").values(name).build())
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("looking for subnet {name}"),
                    "ec2:DescribeSubnets",
                    e,
                )
            })?;
        if let Some(id) = found.subnets().first().and_then(|s| s.subnet_id()) {
            subnet_ids.push((s.tier.clone(), id.to_owned()));
            continue;
        }
        let block = AddrRange::parse(&s.cidr).ok_or_else(|| invalid("sandbox", "a bad block"))?;
        if !vpc.contains(&block) || own.iter().any(|o| o.overlaps(&block)) {
            return Err(invalid(
                &format!("creating subnet {name}"),
                &format!(
                    "{} must lie in the sandbox VPC's {VPC_BLOCK} outside its own subnets {}",
                    s.cidr,
                    OWN_SUBNETS.join(" and ")
                ),
            ));
        }
        let zone = if i % 2 == 0 { "a" } else { "c" };
        let created = ec2
            .create_subnet()
            .vpc_id(vpc_id)
            .cidr_block(&s.cidr)
            .availability_zone(format!("{region}{zone}"))
            .tag_specifications(name_tag(ResourceType::Subnet, name))
            .send()
            .await
            .map_err(|e| classify(format!("creating subnet {name}"), "ec2:CreateSubnet", e))?;
        let id = created
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap_or_default()
            .to_owned();
        done.push(format!(
            "created subnet {name} ({id}) {} of tier {} in {region}{zone}",
            s.cidr, s.tier
        ));
        subnet_ids.push((s.tier.clone(), id));
    }
    for acl in &spec.network_acls {
        let AwsRef::Name(name) = &acl.resource else {
            done.push(format!(
                "network ACL {} is named by its id: the sandbox cannot make one with that id, skipped",
                acl.resource
            ));
            continue;
        };
        let found = ec2
            .describe_network_acls()
            .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
            .filters(Filter::builder().name("tag:Name").values(name).build())
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("looking for network ACL {name}"),
                    "ec2:DescribeNetworkAcls",
                    e,
                )
            })?;
        if !found.network_acls().is_empty() {
            continue;
        }
        let created = ec2
            .create_network_acl()
            .vpc_id(vpc_id)
            .tag_specifications(name_tag(ResourceType::NetworkAcl, name))
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("creating network ACL {name}"),
                    "ec2:CreateNetworkAcl",
                    e,
                )
            })?;
        let acl_id = created
            .network_acl()
            .and_then(|a| a.network_acl_id())
            .unwrap_or_default()
            .to_owned();
        for (egress, entries) in [(false, &acl.ingress), (true, &acl.egress)] {
            for e in entries {
                let mut call = ec2
                    .create_network_acl_entry()
                    .network_acl_id(&acl_id)
                    .egress(egress)
                    .rule_number(i32::from(e.rule))
                    .protocol(e.protocol.aws_code())
                    .rule_action(match e.action {
                        AclAction::Allow => RuleAction::Allow,
                        AclAction::Deny => RuleAction::Deny,
                    });
                call = if e.cidr.contains(':') {
                    call.ipv6_cidr_block(&e.cidr)
                } else {
                    call.cidr_block(&e.cidr)
                };
                if let Some((a, b)) = e.ports {
                    call = call.port_range(
                        aws_sdk_ec2::types::PortRange::builder()
                            .from(i32::from(a))
                            .to(i32::from(b))
                            .build(),
                    );
                }
                if matches!(
                    e.protocol,
                    domain::spec::AclProtocol::Icmp | domain::spec::AclProtocol::Icmpv6
                ) {
                    call = call.icmp_type_code(
                        aws_sdk_ec2::types::IcmpTypeCode::builder()
                            .r#type(-1)
                            .code(-1)
                            .build(),
                    );
                }
                call.send().await.map_err(|err| {
                    classify(
                        format!("adding rule {} to network ACL {name}", e.rule),
                        "ec2:CreateNetworkAclEntry",
                        err,
                    )
                })?;
            }
        }
        // Each subnet of its tiers moves to it from the VPC's default ACL.
        let mine: Vec<&String> = subnet_ids
            .iter()
            .filter(|(t, _)| acl.subnets.contains(t))
            .map(|(_, id)| id)
            .collect();
        for subnet in &mine {
            let current = ec2
                .describe_network_acls()
                .filters(
                    Filter::builder()
                        .name("association.subnet-id")
                        .values(subnet.as_str())
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    classify(
                        "finding a subnet's network ACL",
                        "ec2:DescribeNetworkAcls",
                        e,
                    )
                })?;
            let association = current
                .network_acls()
                .iter()
                .flat_map(|a| a.associations())
                .find(|a| a.subnet_id() == Some(subnet.as_str()))
                .and_then(|a| a.network_acl_association_id())
                .map(str::to_owned);
            if let Some(association) = association {
                ec2.replace_network_acl_association()
                    .association_id(association)
                    .network_acl_id(&acl_id)
                    .send()
                    .await
                    .map_err(|e| {
                        classify(
                            format!("associating subnet {subnet} with {name}"),
                            "ec2:ReplaceNetworkAclAssociation",
                            e,
                        )
                    })?;
            }
        }
        done.push(format!(
            "created network ACL {name} ({acl_id}) guarding {} subnet(s), with its {} ingress and {} egress entries",
            mine.len(),
            acl.ingress.len(),
            acl.egress.len(),
        ));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::check_loopback;

    #[test]
    fn only_loopback_endpoints_are_accepted() {
        for ok in [
            "http://127.0.0.1:5000",
            "http://localhost:5000/",
            "http://127.8.9.10",
            "http://[::1]:5000",
        ] {
            assert_eq!(check_loopback(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://10.0.0.5:5000",
            "https://ec2.amazonaws.com",
            "http://192.168.1.2",
            "ftp://127.0.0.1",
            "127.0.0.1:5000",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
    }
}
