//! The AWS clients the services use: per environment (its roles, [`super::access`]) and
//! region, built once so connections and credentials are reused (an apply's, per run). Each adapter is the SDK's, or — in the engine's own tests — the
//! in-memory AWS ([`super::memory`]), so the apply, settle, revert and watch logic is tested
//! without a network.

use std::collections::HashMap;
use std::sync::Arc;

use domain::cloudwatch::{MetricQuery, Series, Target};
use domain::import::{FoundAlarm, Selector};
use domain::observed::{
    ObservedAclEntry, ObservedDatabase, ObservedNetworkAcl, ObservedRefresh, ObservedRule,
    ObservedScheduledAction, ObservedSecurityGroup, ObservedSubnet, PolicySettings,
};
use domain::plan::{CapacityField, DbSetting};
use domain::spec::{AwsRef, EnvironmentSpec};
use tokio::sync::Mutex;

use super::access::{EnvironmentAccess, Purpose, RoleCredentials};
use super::autoscaling::{
    Activity, AutoScaling, AutoScalingApi, Discovered, GroupCapacity, GroupInstance, GroupSnapshot,
    InstanceCount, InstanceSource, RefreshRequest, TemplateRef,
};
use super::cloudwatch::{AlarmSnapshot, CloudWatch, CloudWatchApi, CpuAlarm};
use super::ec2::{Ec2, Ec2Api, TemplateSettings, TemplateVersion};
use super::elbv2::{Elbv2, Elbv2Api, FoundLoadBalancer, FoundTargetGroup};
use super::observe::Clients;
use super::rds::{DiscoveredDatabase, Rds, RdsApi};
use super::{AwsResult, AwsSettings};
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::SharedCredentialsProvider;

/// One adapter: the SDK's, or the in-memory AWS of the engine's tests.
#[derive(Debug, Clone)]
pub enum Adapter<S> {
    Sdk(S),
    #[cfg(test)]
    Memory(Arc<super::memory::MemoryAws>),
}

/// The clients of one region, as the services use them.
pub type Live =
    Clients<Adapter<AutoScaling>, Adapter<Ec2>, Adapter<Rds>, Adapter<CloudWatch>, Adapter<Elbv2>>;

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
    fn discover_groups(&self, selector: &Selector) -> AwsResult<Vec<Discovered>>;
    fn capacities(&self, names: &[String]) -> AwsResult<Vec<GroupCapacity>>;
    fn in_service(&self, names: &[String]) -> AwsResult<Vec<GroupInstance>>;
    fn instances(&self, name: &str) -> AwsResult<Option<InstanceCount>>;
    fn set_capacity(&self, group: &str, field: CapacityField, value: u32) -> AwsResult<Option<String>>;
    fn put_policy(&self, group: &str, policy: &str, settings: &PolicySettings) -> AwsResult<Option<String>>;
    fn policy_arn(&self, group: &str, policy: &str) -> AwsResult<String>;
    fn delete_policy(&self, group: &str, policy: &str) -> AwsResult<Option<String>>;
    fn put_scheduled_action(&self, group: &str, action: &ObservedScheduledAction) -> AwsResult<Option<String>>;
    fn delete_scheduled_action(&self, group: &str, name: &str) -> AwsResult<Option<String>>;
    fn instance_sources(&self, names: &[String]) -> AwsResult<Vec<(String, InstanceSource)>>;
    fn scaling_activities(&self, groups: &[String], since_unix: i64) -> AwsResult<Vec<Activity>>;
    fn start_refresh(&self, request: &RefreshRequest<'_>) -> AwsResult<(String, Option<String>)>;
    fn refresh(&self, group: &str, id: Option<&str>) -> AwsResult<Option<ObservedRefresh>>;
    fn cancel_refresh(&self, group: &str) -> AwsResult<Option<String>>;
    fn rollback_refresh(&self, group: &str) -> AwsResult<Option<String>>;
});

delegate!(Ec2Api for Ec2 {
    fn template_versions(&self, template: &TemplateRef, versions: &[String]) -> AwsResult<Vec<TemplateVersion>>;
    fn create_template_version(&self, name: &str, from: &str, image_id: &str) -> AwsResult<(u32, Option<String>)>;
    fn describe_security_groups(&self, names: &[String]) -> AwsResult<Vec<ObservedSecurityGroup>>;
    fn authorize_ingress(&self, group_id: &str, rule: &ObservedRule, source_id: Option<&str>) -> AwsResult<Option<String>>;
    fn revoke_ingress(&self, group_id: &str, rule: &ObservedRule, source_id: Option<&str>) -> AwsResult<Option<String>>;
    fn group_id(&self, name: &str) -> AwsResult<String>;
    fn template_instance_type(&self, template: &TemplateRef) -> AwsResult<Option<String>>;
    fn describe_subnets(&self, refs: &[AwsRef]) -> AwsResult<Vec<ObservedSubnet>>;
    fn describe_network_acls(&self, refs: &[AwsRef]) -> AwsResult<Vec<ObservedNetworkAcl>>;
    fn network_acls_of_subnets(&self, subnet_ids: &[String]) -> AwsResult<Vec<ObservedNetworkAcl>>;
    fn template_settings(&self, template: &TemplateRef) -> AwsResult<Option<TemplateSettings>>;
    fn private_addresses(&self, ids: &[String]) -> AwsResult<Vec<(String, String)>>;
    fn security_group_names(&self, ids: &[String]) -> AwsResult<Vec<(String, String)>>;
    fn create_acl_entry(&self, acl_id: &str, egress: bool, entry: &ObservedAclEntry) -> AwsResult<Option<String>>;
    fn replace_acl_entry(&self, acl_id: &str, egress: bool, entry: &ObservedAclEntry) -> AwsResult<Option<String>>;
    fn delete_acl_entry(&self, acl_id: &str, egress: bool, rule: u16) -> AwsResult<Option<String>>;
});

delegate!(RdsApi for Rds {
    fn describe_instance(&self, identifier: &str) -> AwsResult<Option<ObservedDatabase>>;
    fn describe_instances(&self, identifiers: &[String]) -> AwsResult<Vec<ObservedDatabase>>;
    fn discover_instances(&self, selector: &Selector) -> AwsResult<Vec<DiscoveredDatabase>>;
    fn modify_instance(&self, identifier: &str, settings: &[DbSetting]) -> AwsResult<Option<String>>;
});

delegate!(CloudWatchApi for CloudWatch {
    fn describe_alarms(&self, prefix: &str) -> AwsResult<Vec<AlarmSnapshot>>;
    fn alarms_calling(&self, arns: &[String]) -> AwsResult<Vec<FoundAlarm>>;
    fn put_cpu_alarm(&self, alarm: &CpuAlarm<'_>) -> AwsResult<Option<String>>;
    fn delete_alarm(&self, name: &str) -> AwsResult<Option<String>>;
    fn metric_data(&self, queries: &[MetricQuery], start: i64, end: i64) -> AwsResult<Vec<Series>>;
});

delegate!(Elbv2Api for Elbv2 {
    fn load_balancers(&self, refs: &[String]) -> AwsResult<Vec<(String, Option<FoundLoadBalancer>)>>;
    fn target_groups(&self, lb_arn: &str) -> AwsResult<Vec<FoundTargetGroup>>;
    fn target_health(&self, tg_arn: &str) -> AwsResult<Vec<Target>>;
});

/// Where the clients come from.
#[derive(Debug, Clone)]
enum Source {
    /// The SDK: each environment's roles, else the default chain.
    Sdk,
    #[cfg(test)]
    Memory(Arc<super::memory::MemoryAws>),
}

/// The clients reused between calls: by environment (its roles), region and attempt count.
type Key = (String, String, u32);

/// The AWS clients per environment and region: a part the services are built with.
#[derive(Debug, Clone)]
pub struct AwsClients {
    settings: AwsSettings,
    source: Source,
    built: Arc<Mutex<HashMap<Key, Live>>>,
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

    /// Environment `env`'s access from the panel's configuration.
    pub fn access(&self, env: &str) -> Option<&EnvironmentAccess> {
        self.settings.environments.get(env)
    }

    /// The role an apply of `env` carries, when its configuration names one.
    pub fn apply_role(&self, env: &str) -> Option<&str> {
        self.access(env)
            .and_then(|a| a.role(Purpose::Apply { actor: "" }))
    }

    /// The region of an environment's resources: the panel's configuration for it, else its
    /// spec's, else the panel's default.
    pub fn region_of(&self, spec: &EnvironmentSpec) -> String {
        self.access(spec.environment.name.as_str())
            .and_then(|a| a.region.clone())
            .or_else(|| spec.environment.region.clone())
            .unwrap_or_else(|| self.settings.default_region.clone())
    }

    /// The clients that read `env` in `region`, making at most `max_attempts` calls per
    /// request: with its plan role when it names one. Kept, so the role's credentials are
    /// reused until shortly before they expire.
    pub async fn read(&self, env: &str, region: &str, max_attempts: u32) -> Live {
        let mut built = self.built.lock().await;
        let key = (env.to_owned(), region.to_owned(), max_attempts);
        if let Some(c) = built.get(&key) {
            return c.clone();
        }
        let c = self.build(env, region, max_attempts, Purpose::Read).await;
        built.insert(key, c.clone());
        c
    }

    /// The clients of one apply run of `env` in `region`, for `actor`: with its apply role
    /// when it names one, assumed for this run alone (the session names who asked); one
    /// attempt per call (the applier tries again itself, recording each).
    pub async fn apply(&self, env: &str, region: &str, actor: &str) -> Live {
        self.build(env, region, 1, Purpose::Apply { actor }).await
    }

    async fn build(
        &self,
        env: &str,
        region: &str,
        max_attempts: u32,
        purpose: Purpose<'_>,
    ) -> Live {
        match &self.source {
            Source::Sdk => {
                let settings = AwsSettings {
                    max_attempts,
                    ..self.settings.clone()
                };
                let access = self.access(env);
                let endpoint = access
                    .and_then(|a| a.endpoint_url.as_deref())
                    .or(settings.endpoint_url.as_deref());
                let credentials = match access.and_then(|a| a.role(purpose).map(|r| (a, r))) {
                    None => None,
                    Some((a, role)) => {
                        // The base credentials, from the default chain, only sign STS's call.
                        let base = super::sdk_config_with(&settings, region, endpoint, None).await;
                        let mut builder = AssumeRoleProvider::builder(role)
                            .session_name(a.session_name(env, purpose))
                            .region(aws_config::Region::new(region.to_owned()))
                            .configure(&base);
                        if let Some(id) = &a.external_id {
                            builder = builder.external_id(id);
                        }
                        let provider = RoleCredentials::new(role.to_owned(), builder.build().await);
                        Some(SharedCredentialsProvider::new(provider))
                    }
                };
                let config = super::sdk_config_with(&settings, region, endpoint, credentials).await;
                Clients {
                    autoscaling: Adapter::Sdk(AutoScaling::new(&config)),
                    ec2: Adapter::Sdk(Ec2::new(&config)),
                    rds: Adapter::Sdk(Rds::new(&config)),
                    cloudwatch: Adapter::Sdk(CloudWatch::new(&config)),
                    elbv2: Adapter::Sdk(Elbv2::new(&config)),
                }
            }
            #[cfg(test)]
            Source::Memory(m) => {
                let _ = (env, region, max_attempts, purpose);
                Clients {
                    autoscaling: Adapter::Memory(m.clone()),
                    ec2: Adapter::Memory(m.clone()),
                    rds: Adapter::Memory(m.clone()),
                    cloudwatch: Adapter::Memory(m.clone()),
                    elbv2: Adapter::Memory(m.clone()),
                }
            }
        }
    }
}
