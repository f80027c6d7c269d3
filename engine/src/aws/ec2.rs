//! EC2: security groups and their ingress rules.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;
use domain::observed::{ObservedRule, ObservedSecurityGroup};
use domain::spec::{Protocol, Source};

use super::{classify, AwsResult};

pub trait Ec2Api: Send + Sync {
    /// The groups of these names that exist, with their rules (source groups by name).
    fn describe_security_groups(
        &self,
        names: &[String],
    ) -> impl Future<Output = AwsResult<Vec<ObservedSecurityGroup>>> + Send;
}

#[derive(Debug, Clone)]
pub struct Ec2 {
    client: Client,
}

impl Ec2 {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(config),
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

impl Ec2Api for Ec2 {
    async fn describe_security_groups(
        &self,
        names: &[String],
    ) -> AwsResult<Vec<ObservedSecurityGroup>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("group-name")
                    .set_values(Some(names.to_vec()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("reading security groups", "ec2:DescribeSecurityGroups", e))?;
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
}
