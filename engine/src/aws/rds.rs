//! RDS: DB instances and the settings tierdeck manages.

use std::future::Future;

use aws_sdk_rds::operation::RequestId;
use aws_sdk_rds::types::{DbInstance, Filter};
use aws_sdk_rds::Client;
use std::collections::BTreeMap;

use domain::import::Selector;
use domain::observed::ObservedDatabase;
use domain::plan::DbSetting;

use super::{classify, AwsErrorKind, AwsResult};

pub trait RdsApi: Send + Sync {
    /// `None` when there is no instance of that identifier.
    fn describe_instance(
        &self,
        identifier: &str,
    ) -> impl Future<Output = AwsResult<Option<ObservedDatabase>>> + Send;

    /// These instances, in one `DescribeDBInstances` filtered by `db-instance-id` per 100
    /// identifiers (every page); instances that do not exist are left out.
    fn describe_instances(
        &self,
        identifiers: &[String],
    ) -> impl Future<Output = AwsResult<Vec<ObservedDatabase>>> + Send;

    /// The instances `selector` picks, with their tags, VPC security groups and subnets, for an
    /// import: every page of the account's `DescribeDBInstances`, kept by name or tag.
    fn discover_instances(
        &self,
        selector: &Selector,
    ) -> impl Future<Output = AwsResult<Vec<DiscoveredDatabase>>> + Send;

    /// Modifies the instance at once (not at the next maintenance window).
    fn modify_instance(
        &self,
        identifier: &str,
        settings: &[DbSetting],
    ) -> impl Future<Output = AwsResult<Option<String>>> + Send;
}

/// A DB instance as an import reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredDatabase {
    pub database: ObservedDatabase,
    pub tags: BTreeMap<String, String>,
    pub security_group_ids: Vec<String>,
    /// The subnets of its DB subnet group.
    pub subnet_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Rds {
    client: Client,
}

impl Rds {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_rds::config::Builder::from(config)
                    .interceptor(super::calls::CountRequests)
                    .build(),
            ),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// A DB instance as tierdeck reads it.
fn observed(db: &DbInstance) -> ObservedDatabase {
    let mut pending = Vec::new();
    let mut values = domain::observed::PendingValues::default();
    if let Some(p) = db.pending_modified_values() {
        values = domain::observed::PendingValues {
            instance_class: p.db_instance_class().map(str::to_owned),
            multi_az: p.multi_az(),
            allocated_storage_gb: p.allocated_storage().map(|v| v.max(0) as u32),
            backup_retention_days: p.backup_retention_period().map(|v| v.max(0) as u32),
        };
        if let Some(c) = p.db_instance_class() {
            pending.push(format!("instance_class → {c}"));
        }
        if let Some(m) = p.multi_az() {
            pending.push(format!("multi_az → {m}"));
        }
        if let Some(s) = p.allocated_storage() {
            pending.push(format!("allocated_storage_gb → {s}"));
        }
        if let Some(b) = p.backup_retention_period() {
            pending.push(format!("backup_retention_days → {b}"));
        }
    }
    ObservedDatabase {
        identifier: db.db_instance_identifier().unwrap_or_default().to_owned(),
        instance_class: db.db_instance_class().unwrap_or_default().to_owned(),
        multi_az: db.multi_az().unwrap_or(false),
        allocated_storage_gb: db.allocated_storage().unwrap_or_default().max(0) as u32,
        backup_retention_days: db.backup_retention_period().unwrap_or_default().max(0) as u32,
        deletion_protection: db.deletion_protection().unwrap_or(false),
        status: db.db_instance_status().unwrap_or_default().to_owned(),
        engine: db.engine().unwrap_or_default().to_owned(),
        storage_type: db.storage_type().unwrap_or_default().to_owned(),
        pending_modifications: pending,
        pending: values,
    }
}

impl RdsApi for Rds {
    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "rds", action = "DescribeDBInstances", resource = %identifier))]
    async fn describe_instance(&self, identifier: &str) -> AwsResult<Option<ObservedDatabase>> {
        let out = match self
            .client
            .describe_db_instances()
            .db_instance_identifier(identifier)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                let e = classify(
                    format!("reading database {identifier}"),
                    "rds:DescribeDBInstances",
                    e,
                );
                return if e.kind == AwsErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        Ok(out
            .db_instances()
            .iter()
            .find(|d| d.db_instance_identifier() == Some(identifier))
            .map(observed))
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "rds", action = "DescribeDBInstances", resource = %super::names(identifiers)))]
    async fn describe_instances(&self, identifiers: &[String]) -> AwsResult<Vec<ObservedDatabase>> {
        let mut out = Vec::new();
        for batch in identifiers.chunks(100) {
            let mut pages = self
                .client
                .describe_db_instances()
                .filters(
                    Filter::builder()
                        .name("db-instance-id")
                        .set_values(Some(batch.to_vec()))
                        .build(),
                )
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page
                    .map_err(|e| classify("reading the databases", "rds:DescribeDBInstances", e))?;
                out.extend(
                    page.db_instances()
                        .iter()
                        .filter(|d| {
                            d.db_instance_identifier()
                                .is_some_and(|i| batch.iter().any(|b| b == i))
                        })
                        .map(observed),
                );
            }
        }
        Ok(out)
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "rds", action = "DescribeDBInstances", resource = %selector.text()))]
    async fn discover_instances(&self, selector: &Selector) -> AwsResult<Vec<DiscoveredDatabase>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_db_instances()
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                classify(
                    format!("finding the databases ({})", selector.text()),
                    "rds:DescribeDBInstances",
                    e,
                )
            })?;
            for d in page.db_instances() {
                let tags: BTreeMap<String, String> = d
                    .tag_list()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        ))
                    })
                    .collect();
                if !selector.matches(d.db_instance_identifier().unwrap_or_default(), &tags) {
                    continue;
                }
                out.push(DiscoveredDatabase {
                    database: observed(d),
                    tags,
                    security_group_ids: d
                        .vpc_security_groups()
                        .iter()
                        .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                        .collect(),
                    subnet_ids: d
                        .db_subnet_group()
                        .map(|g| {
                            g.subnets()
                                .iter()
                                .filter_map(|s| s.subnet_identifier().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "rds", action = "ModifyDBInstance", resource = %identifier))]
    async fn modify_instance(
        &self,
        identifier: &str,
        settings: &[DbSetting],
    ) -> AwsResult<Option<String>> {
        let what = format!("modifying database {identifier}");
        let mut req = self
            .client
            .modify_db_instance()
            .db_instance_identifier(identifier)
            .apply_immediately(true);
        // The SDK takes whole numbers as i32; the spec's are at most 65,536 and AWS's own come
        // from i32, so the saturation never bites.
        let whole = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        for s in settings {
            req = match s {
                DbSetting::InstanceClass { after, .. } => req.db_instance_class(after),
                DbSetting::MultiAz { after, .. } => req.multi_az(*after),
                DbSetting::AllocatedStorageGb { after, .. } => req.allocated_storage(whole(*after)),
                DbSetting::BackupRetentionDays { after, .. } => {
                    req.backup_retention_period(whole(*after))
                }
                DbSetting::DeletionProtection { after, .. } => req.deletion_protection(*after),
            };
        }
        let out = req
            .send()
            .await
            .map_err(|e| classify(&what, "rds:ModifyDBInstance", e))?;
        Ok(out.request_id().map(str::to_owned))
    }
}
