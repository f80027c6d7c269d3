//! The AWS clients the services use: one set per region (and attempt count), built once so
//! connections are reused. Each adapter is the SDK's, or — in the engine's own tests — the
//! in-memory AWS ([`super::memory`]), so the apply, settle, revert and watch logic is tested
//! without a network.

use std::collections::HashMap;
use std::sync::Arc;

use domain::observed::{
    ObservedDatabase, ObservedRule, ObservedScheduledAction, ObservedSecurityGroup, PolicySettings,
};
use domain::plan::{CapacityField, DbSetting};
use domain::spec::EnvironmentSpec;
use tokio::sync::Mutex;

use super::autoscaling::{
    Activity, AutoScaling, AutoScalingApi, GroupCapacity, GroupSnapshot, InstanceCount,
    InstanceSource, TemplateRef,
};
use super::cloudwatch::{AlarmSnapshot, CloudWatch, CloudWatchApi, CpuAlarm};
use super::ec2::{Ec2, Ec2Api};
use super::observe::Clients;
use super::rds::{Rds, RdsApi};
use super::{AwsResult, AwsSettings};

/// One adapter: the SDK's, or the in-memory AWS of the engine's tests.
#[derive(Debug, Clone)]
pub enum Adapter<S> {
    Sdk(S),
    #[cfg(test)]
    Memory(Arc<super::memory::MemoryAws>),
}

/// The clients of one region, as the services use them.
pub type Live = Clients<Adapter<AutoScaling>, Adapter<Ec2>, Adapter<Rds>, Adapter<CloudWatch>>;

/// Implements an adapter trait for [`Adapter`] by passing each call to the SDK's adapter or to
/// the in-memory AWS.
macro_rules! delegate {
    ($trait:ident for $sdk:ty { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* }) => {
        impl $trait for Adapter<$sdk> {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Adapter::Sdk(c) => c.$name($($arg),*).await,
                        #[cfg(test)]
                        Adapter::Memory(m) => <super::memory::MemoryAws as $trait>::$name(m $(, $arg)*).await,
                    }
                }
            )*
        }
    };
}

delegate!(AutoScalingApi for AutoScaling {
    fn describe_groups(&self, names: &[String]) -> AwsResult<Vec<GroupSnapshot>>;
    fn capacities(&self, names: &[String]) -> AwsResult<Vec<GroupCapacity>>;
    fn instances(&self, name: &str) -> AwsResult<Option<InstanceCount>>;
    fn set_capacity(&self, group: &str, field: CapacityField, value: u32) -> AwsResult<Option<String>>;
    fn put_policy(&self, group: &str, policy: &str, settings: &PolicySettings) -> AwsResult<Option<String>>;
    fn policy_arn(&self, group: &str, policy: &str) -> AwsResult<String>;
    fn delete_policy(&self, group: &str, policy: &str) -> AwsResult<Option<String>>;
    fn put_scheduled_action(&self, group: &str, action: &ObservedScheduledAction) -> AwsResult<Option<String>>;
    fn delete_scheduled_action(&self, group: &str, name: &str) -> AwsResult<Option<String>>;
    fn instance_sources(&self, names: &[String]) -> AwsResult<Vec<(String, InstanceSource)>>;
    fn scaling_activities(&self, groups: &[String], since_unix: i64) -> AwsResult<Vec<Activity>>;
});

delegate!(Ec2Api for Ec2 {
    fn describe_security_groups(&self, names: &[String]) -> AwsResult<Vec<ObservedSecurityGroup>>;
    fn authorize_ingress(&self, group_id: &str, rule: &ObservedRule, source_id: Option<&str>) -> AwsResult<Option<String>>;
    fn revoke_ingress(&self, group_id: &str, rule: &ObservedRule, source_id: Option<&str>) -> AwsResult<Option<String>>;
    fn group_id(&self, name: &str) -> AwsResult<String>;
    fn template_instance_type(&self, template: &TemplateRef) -> AwsResult<Option<String>>;
});

delegate!(RdsApi for Rds {
    fn describe_instance(&self, identifier: &str) -> AwsResult<Option<ObservedDatabase>>;
    fn describe_instances(&self, identifiers: &[String]) -> AwsResult<Vec<ObservedDatabase>>;
    fn modify_instance(&self, identifier: &str, settings: &[DbSetting]) -> AwsResult<Option<String>>;
});

delegate!(CloudWatchApi for CloudWatch {
    fn describe_alarms(&self, prefix: &str) -> AwsResult<Vec<AlarmSnapshot>>;
    fn put_cpu_alarm(&self, alarm: &CpuAlarm<'_>) -> AwsResult<Option<String>>;
    fn delete_alarm(&self, name: &str) -> AwsResult<Option<String>>;
});

/// Where the clients come from.
#[derive(Debug, Clone)]
enum Source {
    /// The SDK, from aws-config's default chain.
    Sdk,
    #[cfg(test)]
    Memory(Arc<super::memory::MemoryAws>),
}

/// The AWS clients per region and attempt count: a part the services are built with.
#[derive(Debug, Clone)]
pub struct AwsClients {
    settings: AwsSettings,
    source: Source,
    built: Arc<Mutex<HashMap<(String, u32), Live>>>,
}

impl AwsClients {
    /// Clients from the SDK with these settings.
    pub fn sdk(settings: AwsSettings) -> Self {
        Self {
            settings,
            source: Source::Sdk,
            built: Arc::default(),
        }
    }

    /// Every client answered by one in-memory AWS.
    #[cfg(test)]
    pub fn memory(aws: Arc<super::memory::MemoryAws>) -> Self {
        Self {
            settings: AwsSettings::default(),
            source: Source::Memory(aws),
            built: Arc::default(),
        }
    }

    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// The region of an environment's resources: its own, or the panel's default.
    pub fn region_of(&self, spec: &EnvironmentSpec) -> String {
        spec.environment
            .region
            .clone()
            .unwrap_or_else(|| self.settings.default_region.clone())
    }

    /// The clients for `region`, making at most `max_attempts` calls per request.
    pub async fn clients(&self, region: &str, max_attempts: u32) -> Live {
        let mut built = self.built.lock().await;
        let key = (region.to_owned(), max_attempts);
        if let Some(c) = built.get(&key) {
            return c.clone();
        }
        let c = match &self.source {
            Source::Sdk => {
                let settings = AwsSettings {
                    max_attempts,
                    ..self.settings.clone()
                };
                let sdk = Clients::for_region(&settings, region).await;
                Clients {
                    autoscaling: Adapter::Sdk(sdk.autoscaling),
                    ec2: Adapter::Sdk(sdk.ec2),
                    rds: Adapter::Sdk(sdk.rds),
                    cloudwatch: Adapter::Sdk(sdk.cloudwatch),
                }
            }
            #[cfg(test)]
            Source::Memory(m) => Clients {
                autoscaling: Adapter::Memory(m.clone()),
                ec2: Adapter::Memory(m.clone()),
                rds: Adapter::Memory(m.clone()),
                cloudwatch: Adapter::Memory(m.clone()),
            },
        };
        built.insert(key, c.clone());
        c
    }
}
