//! EC2: security groups and their ingress rules; subnets, and network ACLs with their entries.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_ec2::operation::RequestId;
use aws_sdk_ec2::types::{
    Filter, IcmpTypeCode, IpPermission, IpRange, Ipv6Range, PortRange, RuleAction, UserIdGroupPair,
};
use aws_sdk_ec2::Client;
use domain::observed::{
    ObservedAclEntry, ObservedNetworkAcl, ObservedRule, ObservedSecurityGroup, ObservedSubnet,
    MAX_ACL_RULE,
};
use domain::spec::{AclAction, AclProtocol, AwsRef, Protocol, Source};

use super::autoscaling::TemplateRef;
use super::{classify, AwsError, AwsResult};

/// One launch template version as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    pub number: u32,
    pub image_id: Option<String>,
    pub default: bool,
}

pub trait Ec2Api: Send + Sync {
    /// The versions `versions` (numbers, `$Latest`, `$Default`) of a template, in one
    /// `DescribeLaunchTemplateVersions`.
    fn template_versions(
        &self,
        template: &TemplateRef,
        versions: &[String],
    ) -> impl Future<Output = AwsResult<Vec<TemplateVersion>>> + Send;

    /// A new version of the template `name`, made from version `from` with only the image
    /// changed (`CreateLaunchTemplateVersion` with `SourceVersion`); returns its number and the
    /// request id.
    fn create_template_version(
        &self,
        name: &str,
        from: &str,
        image_id: &str,
    ) -> impl Future<Output = AwsResult<(u32, Option<String>)>> + Send;

    /// The groups of these names that exist, with their rules (source groups by name).
    fn describe_security_groups(
        &self,
        names: &[String],
    ) -> impl Future<Output = AwsResult<Vec<ObservedSecurityGroup>>> + Send;

    /// Adds an ingress rule to the group `group_id`. A source group is named by its id in
    /// `source_id`.
    fn authorize_ingress(
        &self,
        group_id: &str,
        rule: &ObservedRule,
        source_id: Option<&str>,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    fn revoke_ingress(
        &self,
        group_id: &str,
        rule: &ObservedRule,
        source_id: Option<&str>,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// The id of the security group of that name.
    fn group_id(&self, name: &str) -> impl Future<Output = AwsResult<String>> + Send;

    /// The instance type a launch template version launches (`None`: it names none).
    fn template_instance_type(
        &self,
        template: &TemplateRef,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// The subnets these names (`Name` tags) or ids name, as many as AWS has of each.
    fn describe_subnets(
        &self,
        refs: &[AwsRef],
    ) -> impl Future<Output = AwsResult<Vec<ObservedSubnet>>> + Send;

    /// The network ACLs these names or ids name, with their entries and associations.
    fn describe_network_acls(
        &self,
        refs: &[AwsRef],
    ) -> impl Future<Output = AwsResult<Vec<ObservedNetworkAcl>>> + Send;

    /// The network ACLs associated with these subnets (by id), for an import.
    fn network_acls_of_subnets(
        &self,
        subnet_ids: &[String],
    ) -> impl Future<Output = AwsResult<Vec<ObservedNetworkAcl>>> + Send;

    /// The instance type and security groups (by id) a launch template version gives, for an
    /// import; `None` when there is no such version.
    fn template_settings(
        &self,
        template: &TemplateRef,
    ) -> impl Future<Output = AwsResult<Option<TemplateSettings>>> + Send;

    /// The names of these security groups (by id), as (id, name), for an import.
    /// The private IPv4 address of each of these instances (`DescribeInstances` by id, every
    /// page): (instance id, address); an instance without one is left out.
    fn private_addresses(
        &self,
        ids: &[String],
    ) -> impl Future<Output = AwsResult<Vec<(String, String)>>> + Send;

    fn security_group_names(
        &self,
        ids: &[String],
    ) -> impl Future<Output = AwsResult<Vec<(String, String)>>> + Send;

    /// Adds `entry` to the ACL `acl_id` (`egress`: to its egress list).
    fn create_acl_entry(
        &self,
        acl_id: &str,
        egress: bool,
        entry: &ObservedAclEntry,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// Replaces the entry at `entry.rule` in place.
    fn replace_acl_entry(
        &self,
        acl_id: &str,
        egress: bool,
        entry: &ObservedAclEntry,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    fn delete_acl_entry(
        &self,
        acl_id: &str,
        egress: bool,
        rule: u16,
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;
}

/// What a launch template version sets that an import reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSettings {
    pub instance_type: Option<String>,
    /// Its security groups by id, from `SecurityGroupIds` and its network interfaces' groups.
    pub security_group_ids: Vec<String>,
    /// Security groups it names by `SecurityGroups` (names, in a default VPC).
    pub security_group_names: Vec<String>,
}

/// The `Name` tag of a resource's tags.
fn name_tag(tags: &[aws_sdk_ec2::types::Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .map(str::to_owned)
}

/// The names and the ids among `refs`.
fn split_refs(refs: &[AwsRef]) -> (Vec<String>, Vec<String>) {
    let (mut names, mut ids) = (Vec::new(), Vec::new());
    for r in refs {
        match r {
            AwsRef::Name(n) => names.push(n.clone()),
            AwsRef::Id(i) => ids.push(i.clone()),
        }
    }
    (names, ids)
}

/// Filters that find resources by `Name` tag and by id: one request for each kind used.
fn by_refs(refs: &[AwsRef], id_filter: &str) -> Vec<Filter> {
    let (names, ids) = split_refs(refs);
    let mut out = Vec::new();
    if !names.is_empty() {
        out.push(
            Filter::builder()
                .name("tag:Name")
                .set_values(Some(names))
                .build(),
        );
    }
    if !ids.is_empty() {
        out.push(
            Filter::builder()
                .name(id_filter)
                .set_values(Some(ids))
                .build(),
        );
    }
    out
}

/// An entry as AWS describes it; `None` for AWS's own last `*` entry and what cannot be read.
fn acl_entry(e: &aws_sdk_ec2::types::NetworkAclEntry) -> Option<ObservedAclEntry> {
    let rule = u16::try_from(e.rule_number()?)
        .ok()
        .filter(|r| *r <= MAX_ACL_RULE)?;
    let protocol = AclProtocol::from_aws(e.protocol()?)?;
    let ports = match (protocol.has_ports(), e.port_range()) {
        (true, Some(r)) => Some((u16::try_from(r.from()?).ok()?, u16::try_from(r.to()?).ok()?)),
        _ => None,
    };
    let icmp = match (protocol, e.icmp_type_code()) {
        (AclProtocol::Icmp | AclProtocol::Icmpv6, Some(t)) => {
            let (ty, code) = (t.r#type().unwrap_or(-1), t.code().unwrap_or(-1));
            (ty >= 0).then(|| (ty as i16, code.max(-1) as i16))
        }
        _ => None,
    };
    Some(ObservedAclEntry {
        rule,
        protocol,
        ports,
        icmp,
        cidr: e.cidr_block().or(e.ipv6_cidr_block())?.to_owned(),
        action: match e.rule_action()? {
            RuleAction::Allow => AclAction::Allow,
            _ => AclAction::Deny,
        },
    })
}

/// The parts of an entry every entry call carries, on a call builder.
macro_rules! entry_fields {
    ($call:expr, $acl_id:expr, $egress:expr, $e:expr) => {{
        let e = $e;
        let call = $call
            .network_acl_id($acl_id)
            .egress($egress)
            .rule_number(i32::from(e.rule))
            .protocol(e.protocol.aws_code())
            .rule_action(match e.action {
                AclAction::Allow => RuleAction::Allow,
                AclAction::Deny => RuleAction::Deny,
            });
        let call = if e.cidr.contains(':') {
            call.ipv6_cidr_block(&e.cidr)
        } else {
            call.cidr_block(&e.cidr)
        };
        let call = match (e.protocol.has_ports(), e.ports) {
            (true, Some((a, b))) => call.port_range(
                PortRange::builder()
                    .from(i32::from(a))
                    .to(i32::from(b))
                    .build(),
            ),
            (true, None) => call.port_range(PortRange::builder().from(0).to(65535).build()),
            _ => call,
        };
        match e.protocol {
            AclProtocol::Icmp | AclProtocol::Icmpv6 => {
                let (t, c) = e.icmp.unwrap_or((-1, -1));
                call.icmp_type_code(
                    IcmpTypeCode::builder()
                        .r#type(i32::from(t))
                        .code(i32::from(c))
                        .build(),
                )
            }
            _ => call,
        }
    }};
}

fn no_source(name: String) -> AwsError {
    AwsError::not_found(
        format!("finding source security group {name}"),
        "there is no security group of that name",
    )
}

/// The rule as EC2 takes it; `with_description` is false for revokes, which match without it.
/// Fails with the source group's name when its id is not known.
fn permission(
    rule: &ObservedRule,
    source_id: Option<&str>,
    with_description: bool,
) -> Result<IpPermission, String> {
    let description = rule.description.clone().filter(|_| with_description);
    let (from, to) = match (rule.protocol, rule.ports) {
        (Protocol::Tcp | Protocol::Udp, Some((a, b))) => (Some(i32::from(a)), Some(i32::from(b))),
        (Protocol::Tcp | Protocol::Udp, None) => (Some(0), Some(65535)),
        (Protocol::Icmp, _) => (Some(-1), Some(-1)),
        (Protocol::All, _) => (None, None),
    };
    let p = IpPermission::builder()
        .ip_protocol(match rule.protocol {
            Protocol::All => "-1",
            other => other.as_str(),
        })
        .set_from_port(from)
        .set_to_port(to);
    Ok(match &rule.source {
        Source::Cidr(c) if c.contains(':') => p
            .ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(c)
                    .set_description(description)
                    .build(),
            )
            .build(),
        Source::Cidr(c) => p
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip(c)
                    .set_description(description)
                    .build(),
            )
            .build(),
        Source::FromGroup(name) => {
            let id = source_id.ok_or_else(|| name.clone())?;
            p.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(id)
                    .set_description(description)
                    .build(),
            )
            .build()
        }
    })
}

#[derive(Debug, Clone)]
pub struct Ec2 {
    client: Client,
}

impl Ec2 {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_ec2::config::Builder::from(config)
                    .interceptor(super::calls::CountRequests)
                    .build(),
            ),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn protocol(p: &str) -> Option<Protocol> {
    match p {
        "tcp" | "6" => Some(Protocol::Tcp),
        "udp" | "17" => Some(Protocol::Udp),
        "icmp" | "1" => Some(Protocol::Icmp),
        "-1" | "all" => Some(Protocol::All),
        _ => None,
    }
}

impl Ec2 {
    /// The security groups whose `filter` (`group-name`, `group-id`) is one of `values`, in one
    /// `DescribeSecurityGroups`; `what` is what the reading is for, in an error.
    async fn security_groups_where(
        &self,
        filter: &str,
        values: &[String],
        what: &str,
    ) -> AwsResult<aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput>
    {
        self.client
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name(filter)
                    .set_values(Some(values.to_vec()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify(what, "ec2:DescribeSecurityGroups", e))
    }

    /// The network ACLs each filter finds, every page, with their entries and associations.
    async fn network_acls(&self, filters: Vec<Filter>) -> AwsResult<Vec<ObservedNetworkAcl>> {
        let mut out = Vec::new();
        for filter in filters {
            out.extend(self.network_acls_where(Some(filter), None).await?);
        }
        Ok(out)
    }

    /// The network ACLs of these ids, through `NetworkAclIds` (AWS takes it, and the emulator,
    /// which has no `network-acl-id` filter): one call for all; when one does not exist (AWS
    /// then fails the whole call with `InvalidNetworkAclID.NotFound`), one call each, the
    /// missing ones left out.
    async fn network_acls_by_id(&self, ids: &[String]) -> AwsResult<Vec<ObservedNetworkAcl>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self.network_acls_where(None, Some(ids.to_vec())).await {
            Err(e) if e.kind == super::AwsErrorKind::NotFound => {
                let mut out = Vec::new();
                for id in ids {
                    match self.network_acls_where(None, Some(vec![id.clone()])).await {
                        Ok(found) => out.extend(found),
                        Err(e) if e.kind == super::AwsErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            }
            other => other,
        }
    }

    /// The network ACLs a filter or a list of ids finds, every page.
    async fn network_acls_where(
        &self,
        filter: Option<Filter>,
        ids: Option<Vec<String>>,
    ) -> AwsResult<Vec<ObservedNetworkAcl>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_network_acls()
            .set_filters(filter.map(|f| vec![f]))
            .set_network_acl_ids(ids)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| classify("reading network ACLs", "ec2:DescribeNetworkAcls", e))?;
            for a in page.network_acls() {
                let (mut ingress, mut egress) = (Vec::new(), Vec::new());
                for e in a.entries() {
                    if let Some(entry) = acl_entry(e) {
                        if e.egress() == Some(true) {
                            egress.push(entry);
                        } else {
                            ingress.push(entry);
                        }
                    }
                }
                ingress.sort();
                egress.sort();
                out.push(ObservedNetworkAcl {
                    id: a.network_acl_id().unwrap_or_default().to_owned(),
                    name: name_tag(a.tags()),
                    vpc_id: a.vpc_id().unwrap_or_default().to_owned(),
                    ingress,
                    egress,
                    subnet_ids: a
                        .associations()
                        .iter()
                        .filter_map(|s| s.subnet_id().map(str::to_owned))
                        .collect(),
                });
            }
        }
        Ok(out)
    }
}

impl Ec2Api for Ec2 {
    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeInstances", resource = %super::names(ids)))]
    async fn private_addresses(&self, ids: &[String]) -> AwsResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        // DescribeInstances by id answers InvalidInstanceID.NotFound for the whole call when
        // one is gone; a filter leaves it out instead (an instance can end between the reads).
        for batch in ids.chunks(200) {
            let mut pages = self
                .client
                .describe_instances()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("instance-id")
                        .set_values(Some(batch.to_vec()))
                        .build(),
                )
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    classify(
                        format!("reading the addresses of instances {}", super::names(batch)),
                        "ec2:DescribeInstances",
                        e,
                    )
                })?;
                for r in page.reservations() {
                    for i in r.instances() {
                        if let (Some(id), Some(ip)) = (i.instance_id(), i.private_ip_address()) {
                            out.push((id.to_owned(), ip.to_owned()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeLaunchTemplateVersions", resource = ?t))]
    async fn template_versions(
        &self,
        t: &TemplateRef,
        versions: &[String],
    ) -> AwsResult<Vec<TemplateVersion>> {
        let label = t.name.clone().or(t.id.clone()).unwrap_or_default();
        let out = self
            .client
            .describe_launch_template_versions()
            .set_launch_template_id(t.id.clone())
            .set_launch_template_name(if t.id.is_some() { None } else { t.name.clone() })
            .set_versions(Some(versions.to_vec()))
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!(
                        "reading launch template {label} versions {}",
                        versions.join(", ")
                    ),
                    "ec2:DescribeLaunchTemplateVersions",
                    e,
                )
            })?;
        Ok(out
            .launch_template_versions()
            .iter()
            .map(|v| TemplateVersion {
                number: v.version_number().unwrap_or_default().max(0) as u32,
                image_id: v
                    .launch_template_data()
                    .and_then(|d| d.image_id())
                    .map(str::to_owned),
                default: v.default_version().unwrap_or(false),
            })
            .collect())
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "CreateLaunchTemplateVersion", resource = %name))]
    async fn create_template_version(
        &self,
        name: &str,
        from: &str,
        image_id: &str,
    ) -> AwsResult<(u32, Option<String>)> {
        let out = self
            .client
            .create_launch_template_version()
            .launch_template_name(name)
            .source_version(from)
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(image_id)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!(
                        "making a version of launch template {name} from {from} with {image_id}"
                    ),
                    "ec2:CreateLaunchTemplateVersion",
                    e,
                )
            })?;
        let number = out
            .launch_template_version()
            .and_then(|v| v.version_number())
            .unwrap_or_default()
            .max(0) as u32;
        Ok((number, out.request_id().map(str::to_owned)))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeSubnets", resource = %refs.len()))]
    async fn describe_subnets(&self, refs: &[AwsRef]) -> AwsResult<Vec<ObservedSubnet>> {
        let mut out = Vec::new();
        for filter in by_refs(refs, "subnet-id") {
            let mut pages = self
                .client
                .describe_subnets()
                .filters(filter)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| classify("reading subnets", "ec2:DescribeSubnets", e))?;
                for s in page.subnets() {
                    out.push(ObservedSubnet {
                        id: s.subnet_id().unwrap_or_default().to_owned(),
                        name: name_tag(s.tags()),
                        cidr: s.cidr_block().unwrap_or_default().to_owned(),
                        vpc_id: s.vpc_id().unwrap_or_default().to_owned(),
                    });
                }
            }
        }
        Ok(out)
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeNetworkAcls", resource = %refs.len()))]
    async fn describe_network_acls(&self, refs: &[AwsRef]) -> AwsResult<Vec<ObservedNetworkAcl>> {
        let (names, ids) = split_refs(refs);
        let names: Vec<AwsRef> = names.into_iter().map(AwsRef::Name).collect();
        let mut out = self.network_acls(by_refs(&names, "network-acl-id")).await?;
        out.extend(self.network_acls_by_id(&ids).await?);
        Ok(out)
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeNetworkAcls", resource = %super::names(subnet_ids)))]
    async fn network_acls_of_subnets(
        &self,
        subnet_ids: &[String],
    ) -> AwsResult<Vec<ObservedNetworkAcl>> {
        if subnet_ids.is_empty() {
            return Ok(Vec::new());
        }
        let filter = Filter::builder()
            .name("association.subnet-id")
            .set_values(Some(subnet_ids.to_vec()))
            .build();
        self.network_acls(vec![filter]).await
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeLaunchTemplateVersions", resource = ?t))]
    async fn template_settings(&self, t: &TemplateRef) -> AwsResult<Option<TemplateSettings>> {
        let label = t.name.clone().or(t.id.clone()).unwrap_or_default();
        let out = self
            .client
            .describe_launch_template_versions()
            .set_launch_template_id(t.id.clone())
            .set_launch_template_name(if t.id.is_some() { None } else { t.name.clone() })
            .versions(&t.version)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("reading launch template {label} version {}", t.version),
                    "ec2:DescribeLaunchTemplateVersions",
                    e,
                )
            })?;
        Ok(out
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .map(|d| {
                let mut ids: Vec<String> = d.security_group_ids().to_vec();
                for ni in d.network_interfaces() {
                    ids.extend(ni.groups().iter().cloned());
                }
                ids.sort();
                ids.dedup();
                TemplateSettings {
                    instance_type: d.instance_type().map(|t| t.as_str().to_owned()),
                    security_group_ids: ids,
                    security_group_names: d.security_groups().to_vec(),
                }
            }))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeSecurityGroups", resource = %super::names(ids)))]
    async fn security_group_names(&self, ids: &[String]) -> AwsResult<Vec<(String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .security_groups_where("group-id", ids, "finding the security groups by id")
            .await?;
        Ok(out
            .security_groups()
            .iter()
            .filter_map(|g| Some((g.group_id()?.to_owned(), g.group_name()?.to_owned())))
            .collect())
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "CreateNetworkAclEntry", resource = %acl_id, rule = entry.rule))]
    async fn create_acl_entry(
        &self,
        acl_id: &str,
        egress: bool,
        entry: &ObservedAclEntry,
    ) -> AwsResult<Option<String>> {
        let out = entry_fields!(
            self.client.create_network_acl_entry(),
            acl_id,
            egress,
            entry
        )
        .send()
        .await
        .map_err(|e| {
            classify(
                format!("adding rule {} to {acl_id}", entry.numbered_text(egress)),
                "ec2:CreateNetworkAclEntry",
                e,
            )
        })?;
        Ok(out.request_id().map(str::to_owned))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "ReplaceNetworkAclEntry", resource = %acl_id, rule = entry.rule))]
    async fn replace_acl_entry(
        &self,
        acl_id: &str,
        egress: bool,
        entry: &ObservedAclEntry,
    ) -> AwsResult<Option<String>> {
        let out = entry_fields!(
            self.client.replace_network_acl_entry(),
            acl_id,
            egress,
            entry
        )
        .send()
        .await
        .map_err(|e| {
            classify(
                format!(
                    "replacing rule {} of {acl_id} with {}",
                    entry.rule,
                    entry.text(egress)
                ),
                "ec2:ReplaceNetworkAclEntry",
                e,
            )
        })?;
        Ok(out.request_id().map(str::to_owned))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DeleteNetworkAclEntry", resource = %acl_id, rule = rule))]
    async fn delete_acl_entry(
        &self,
        acl_id: &str,
        egress: bool,
        rule: u16,
    ) -> AwsResult<Option<String>> {
        let out = self
            .client
            .delete_network_acl_entry()
            .network_acl_id(acl_id)
            .egress(egress)
            .rule_number(i32::from(rule))
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!(
                        "deleting {} rule {rule} of {acl_id}",
                        if egress { "egress" } else { "ingress" }
                    ),
                    "ec2:DeleteNetworkAclEntry",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeLaunchTemplateVersions", resource = ?t))]
    async fn template_instance_type(&self, t: &TemplateRef) -> AwsResult<Option<String>> {
        Ok(self
            .template_settings(t)
            .await?
            .and_then(|s| s.instance_type))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeSecurityGroups", resource = %super::names(names)))]
    async fn describe_security_groups(
        &self,
        names: &[String],
    ) -> AwsResult<Vec<ObservedSecurityGroup>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .security_groups_where("group-name", names, "reading security groups")
            .await?;
        // Rules name their source groups by id; people and specs name them by name.
        let mut ids: HashMap<String, String> = out
            .security_groups()
            .iter()
            .filter_map(|g| Some((g.group_id()?.to_owned(), g.group_name()?.to_owned())))
            .collect();
        let unknown: Vec<String> = out
            .security_groups()
            .iter()
            .flat_map(|g| g.ip_permissions())
            .flat_map(|p| p.user_id_group_pairs())
            .filter_map(|pair| pair.group_id())
            .filter(|id| !ids.contains_key(*id))
            .map(str::to_owned)
            .collect();
        if !unknown.is_empty() {
            let more = self
                .client
                .describe_security_groups()
                .set_group_ids(Some(unknown))
                .send()
                .await
                .map_err(|e| {
                    classify(
                        "reading the security groups rules refer to",
                        "ec2:DescribeSecurityGroups",
                        e,
                    )
                })?;
            for g in more.security_groups() {
                if let (Some(id), Some(name)) = (g.group_id(), g.group_name()) {
                    ids.insert(id.to_owned(), name.to_owned());
                }
            }
        }
        let mut groups = Vec::new();
        for g in out.security_groups() {
            let mut ingress = Vec::new();
            for p in g.ip_permissions() {
                let Some(proto) = p.ip_protocol().and_then(protocol) else {
                    continue;
                };
                let ports = match (proto, p.from_port(), p.to_port()) {
                    (Protocol::Tcp | Protocol::Udp, Some(a), Some(b)) if a >= 0 && b >= 0 => {
                        Some((a as u16, b as u16))
                    }
                    _ => None,
                };
                for r in p.ip_ranges() {
                    if let Some(c) = r.cidr_ip() {
                        ingress.push(ObservedRule {
                            protocol: proto,
                            ports,
                            source: Source::Cidr(c.to_owned()),
                            description: r.description().map(str::to_owned),
                        });
                    }
                }
                for r in p.ipv6_ranges() {
                    if let Some(c) = r.cidr_ipv6() {
                        ingress.push(ObservedRule {
                            protocol: proto,
                            ports,
                            source: Source::Cidr(c.to_owned()),
                            description: r.description().map(str::to_owned),
                        });
                    }
                }
                for pair in p.user_id_group_pairs() {
                    if let Some(id) = pair.group_id() {
                        let name = ids.get(id).cloned().unwrap_or_else(|| id.to_owned());
                        ingress.push(ObservedRule {
                            protocol: proto,
                            ports,
                            source: Source::FromGroup(name),
                            description: pair.description().map(str::to_owned),
                        });
                    }
                }
            }
            ingress.sort();
            groups.push(ObservedSecurityGroup {
                name: g.group_name().unwrap_or_default().to_owned(),
                id: g.group_id().unwrap_or_default().to_owned(),
                ingress,
            });
        }
        Ok(groups)
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "AuthorizeSecurityGroupIngress", resource = %group_id))]
    async fn authorize_ingress(
        &self,
        group_id: &str,
        rule: &ObservedRule,
        source_id: Option<&str>,
    ) -> AwsResult<Option<String>> {
        let out = self
            .client
            .authorize_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(permission(rule, source_id, true).map_err(no_source)?)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("allowing {} into {group_id}", rule.source),
                    "ec2:AuthorizeSecurityGroupIngress",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "RevokeSecurityGroupIngress", resource = %group_id))]
    async fn revoke_ingress(
        &self,
        group_id: &str,
        rule: &ObservedRule,
        source_id: Option<&str>,
    ) -> AwsResult<Option<String>> {
        let out = self
            .client
            .revoke_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(permission(rule, source_id, false).map_err(no_source)?)
            .send()
            .await
            .map_err(|e| {
                classify(
                    format!("revoking {} from {group_id}", rule.source),
                    "ec2:RevokeSecurityGroupIngress",
                    e,
                )
            })?;
        Ok(out.request_id().map(str::to_owned))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "ec2", action = "DescribeSecurityGroups", resource = %name))]
    async fn group_id(&self, name: &str) -> AwsResult<String> {
        let what = format!("finding security group {name}");
        let out = self
            .client
            .describe_security_groups()
            .filters(Filter::builder().name("group-name").values(name).build())
            .send()
            .await
            .map_err(|e| classify(&what, "ec2:DescribeSecurityGroups", e))?;
        out.security_groups()
            .iter()
            .find_map(|g| g.group_id())
            .map(str::to_owned)
            .ok_or_else(|| AwsError::not_found(what, "there is no security group of that name"))
    }
}
