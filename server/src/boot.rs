//! Opening the engine the configuration describes: the database opened and migrated, and
//! every section turned into the engine's settings.

use engine::{Engine, EngineSettings, Store};

use crate::config::Config;

/// The engine over the configured database, migrated first.
pub(crate) async fn open_engine(config: &Config) -> anyhow::Result<Engine> {
    let store = Store::connect(
        &config.database.location()?,
        config.database.max_connections,
    )
    .await?;
    store.migrate().await?;
    let repo = config
        .repo
        .url
        .as_ref()
        .map(|url| engine::repo::RepoSettings {
            remote: engine::repo::git::Remote {
                url: url.clone(),
                branch: config.repo.branch.clone(),
                token: config.repo.token.as_ref().map(|t| t.expose().to_owned()),
                ssh_key: config.repo.ssh_key_path.clone(),
            },
            // The mirror lives beside the database, in the data folder.
            mirror_dir: config.database.data_dir().join("spec-mirror.git"),
            poll_interval: std::time::Duration::from_secs(config.repo.poll_interval_secs),
            fetch_timeout: std::time::Duration::from_secs(config.repo.fetch_timeout_secs),
        });
    let attempt_timeout = std::time::Duration::from_secs(config.aws.attempt_timeout_secs);
    let aws = engine::aws::AwsSettings {
        endpoint_url: config.aws.endpoint_url.clone(),
        default_region: config.aws.region.clone(),
        max_attempts: config.aws.max_attempts,
        attempt_timeout,
        // Every attempt, the backoff between them, and some slack.
        operation_timeout: attempt_timeout * config.aws.max_attempts
            + std::time::Duration::from_secs(10),
        environments: config
            .aws
            .environments
            .iter()
            .map(|(name, e)| {
                let access = engine::aws::access::EnvironmentAccess {
                    plan_role_arn: e.plan_role_arn.clone(),
                    apply_role_arn: e.apply_role_arn.clone(),
                    external_id: e.external_id.as_ref().map(|x| x.expose().to_owned()),
                    region: e.region.clone(),
                    session_name: e.session_name.clone(),
                    endpoint_url: e.endpoint_url.clone(),
                };
                (name.clone(), access)
            })
            .collect(),
    };
    let n = &config.notifications;
    let notify = engine::settings::NotifySettings {
        slack_url: n.slack_url.as_ref().map(|s| s.expose().to_owned()),
        webhook_url: n.webhook_url.as_ref().map(|s| s.expose().to_owned()),
        max_attempts: n.max_attempts,
        first_retry: std::time::Duration::from_secs(n.first_retry_secs),
    };
    Ok(Engine::new(
        store,
        EngineSettings {
            repo,
            aws,
            approval_lifetime: std::time::Duration::from_secs(
                config.approvals.lifetime_hours * 3600,
            ),
            policy: domain::policy::Floor {
                min_approvals: config.policy.min_approvals,
                allow_auto_apply: config.policy.allow_auto_apply,
            },
            notify,
            public_url: config.server.public_url.clone(),
            prometheus: config
                .prometheus
                .url
                .clone()
                .map(|url| engine::prometheus::PromSettings {
                    url,
                    timeout: std::time::Duration::from_secs(config.prometheus.timeout_secs),
                    cache_for: std::time::Duration::from_secs(config.prometheus.cache_secs),
                }),
            cost: cost_settings(config)?,
            apply: engine::settings::ApplySettings {
                settle_database: secs(config.apply.settle_database_timeout_secs),
                settle_capacity: secs(config.apply.settle_capacity_timeout_secs),
                settle_poll_max: secs(config.apply.settle_poll_max_secs),
                watch_interval: secs(config.apply.watch_interval_secs),
            },
            leader_lease: secs(config.database.leader_lease_secs),
            ..EngineSettings::default()
        },
    ))
}

fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}

/// `[cost]`, with the price file the configuration read and checked.
fn cost_settings(config: &Config) -> anyhow::Result<engine::settings::CostSettings> {
    let c = &config.cost;
    let price_file = c.prices.clone();
    // A panel on an emulator never asks AWS itself for prices unless told where to.
    let emulated = config.aws.endpoint_url.is_some() && c.price_list_endpoint.is_none();
    let price_list_off = if !c.price_list {
        "the Price List API is off (cost.price_list)".to_owned()
    } else {
        "the AWS endpoint is an emulator (aws.endpoint_url) and cost.price_list_endpoint is not set"
            .to_owned()
    };
    Ok(engine::settings::CostSettings {
        price_file,
        price_list: c.price_list && !emulated,
        price_list_off,
        price_list_endpoint: c.price_list_endpoint.clone(),
        price_list_region: c.price_list_region.clone(),
        price_list_ttl: std::time::Duration::from_secs(c.price_list_cache_hours * 3600),
    })
}
