//! Everything in tierdeck that does I/O, on the server only: the SQLite store, authentication,
//! the audit log and the services that the pages and the REST API both call. A rule lives here
//! once; the two doors stay thin.
//!
//! Layers, each using only those below it:
//! - the doors above the engine: the REST API, the pages' server functions, the command line,
//!   and the two loops that act by themselves — the [`jobs`] worker and the repository
//!   watcher ([`service::repo_sync`]);
//! - the services, [`service`]: each built with the parts it uses and the services it calls,
//!   which run one way (the picture is in [`service`]'s documentation);
//! - the parts: [`store`] (one module per table, the jobs queue among them), [`auth`],
//!   [`repo`] (the git mirror, what a fetch means, the kept reads), [`aws`] (one adapter per
//!   AWS service, and the clients per region), [`prometheus`], [`clock`], [`specs`];
//! - the engine, [`Engine`] (this file, [`settings`], `memo`, `holder`): where the parts are
//!   kept and the services put together, cheap to clone.

pub mod auth;
pub mod aws;
pub mod clock;
pub mod cluster;
pub mod error;
mod holder;
pub mod jobs;
pub mod memo;
pub mod prometheus;
pub mod repo;
pub mod service;
pub mod settings;
pub mod specs;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;

pub use auth::{Caller, Principal, RequestAuth, RequestMeta};
pub use error::ServiceError;
pub use holder::Holder;
pub use settings::EngineSettings;
pub use store::Store;

use std::time::Duration;

/// Sign-ins whose password is hashed at once; others wait up to [`HASH_WAIT`].
pub const MAX_HASHES: usize = 4;
/// How long a sign-in waits for a hash to be free before it is refused (503).
pub const HASH_WAIT: Duration = Duration::from_secs(5);

/// The handle every door holds: cheap to clone. It holds the parts (the store, the settings,
/// the AWS and Prometheus clients, the clock, what is kept between requests) and puts the
/// services together from them (`engine.reviews().approve(…)`, see [`service`]).
#[derive(Debug, Clone)]
pub struct Engine(std::sync::Arc<Context>);

/// What the services share, behind the [`Engine`] handle (which derefs to it).
#[derive(Debug)]
pub struct Context {
    pub store: Store,
    pub settings: EngineSettings,
    /// This process, as the holder of environment locks.
    pub holder: Holder,
    /// This process as a replica of the panel: whether it leads the periodic work
    /// ([`cluster::Cluster::run`] is started by `tierdeck serve`).
    pub cluster: std::sync::Arc<cluster::Cluster>,
    /// The Prometheus client, when one is configured.
    pub prometheus: Option<std::sync::Arc<dyn prometheus::PromApi>>,
    /// The AWS clients per region, built once so connections are reused.
    pub aws: aws::clients::AwsClients,
    /// The time as the services read it.
    pub clock: std::sync::Arc<dyn clock::Clock>,
    /// Wakes the jobs worker once a transaction that queued a job commits.
    pub jobs_waker: jobs::worker::Waker,
    /// Password hashes running at once (each holds about 19 MiB).
    pub(crate) hashing: std::sync::Arc<tokio::sync::Semaphore>,
    /// Throttled sign-ins and rejected webhooks, summed per source per minute.
    pub refusals: std::sync::Arc<auth::refusals::RefusalLog>,
    /// How often people have asked to plan changes again ("Plan again").
    pub(crate) plan_again: auth::limits::PlanAgainLimits,
    /// Facts about environments read from AWS for their cost, reused for a while.
    pub(crate) cost_facts: memo::FactsCache,
    /// CloudWatch and ELBv2 answers reused for a while.
    pub(crate) cloudwatch: service::cloudwatch::Caches,
    /// Costs computed, reused while their inputs hold.
    pub(crate) cost_results: memo::CostCache,
    /// The last intact chain check for the overview, and when its full walk began
    /// (the audit service's `audit_verify_recent`).
    pub(crate) chain_checked: memo::ChainChecked,
    /// Specs and commit headers read from the mirror, by commit.
    pub(crate) reads: repo::read_cache::ReadCache,
    /// Reads of the store the pages make on every request, kept until the next write
    /// ([`memo::ByCommits`]): users by id (who a session is), the spec repository's state,
    /// the environments list, and the environments' names with the branch head.
    pub(crate) users_read: memo::ByCommits<i64, Option<store::users::UserRow>>,
    pub(crate) repo_read: memo::ByCommits<(), Option<domain::change::RepoStatus>>,
    pub(crate) environments_read:
        memo::ByCommits<(), std::sync::Arc<Vec<domain::change::EnvironmentSummary>>>,
    pub(crate) heads_read: memo::ByCommits<(), (Vec<String>, Option<String>)>,
    /// The overview's last chain report, by whether a full walk was due: with no commit since,
    /// there is nothing new to link on.
    pub(crate) chain_read: memo::ByCommits<bool, domain::audit::ChainReport>,
}

impl std::ops::Deref for Engine {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.0
    }
}

impl Engine {
    /// The engine over `store`: AWS through the SDK, Prometheus over HTTP when configured, the
    /// system's clock.
    pub fn new(store: Store, settings: EngineSettings) -> Self {
        // Outgoing HTTPS (notifications) uses the crypto the AWS SDK already builds; an error
        // only means a provider was installed before.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let prometheus = settings.prometheus.clone().and_then(|p| {
            prometheus::Prometheus::new(p)
                .map_err(|e| tracing::error!(error = %e, "Prometheus is off"))
                .ok()
        });
        let aws = aws::clients::AwsClients::sdk(settings.aws.clone());
        Self::with_parts(
            store,
            settings,
            aws,
            prometheus.map(|p| std::sync::Arc::new(p) as std::sync::Arc<dyn prometheus::PromApi>),
            std::sync::Arc::new(clock::SystemClock),
        )
    }

    /// The engine over the parts given: what the engine's own tests build it from (the
    /// in-memory AWS, a Prometheus that answers what a test says, a clock a test moves).
    pub fn with_parts(
        store: Store,
        settings: EngineSettings,
        aws: aws::clients::AwsClients,
        prometheus: Option<std::sync::Arc<dyn prometheus::PromApi>>,
        clock: std::sync::Arc<dyn clock::Clock>,
    ) -> Self {
        let holder = Holder::this_process();
        let cluster = cluster::Cluster::new(
            store.clone(),
            &holder,
            env!("CARGO_PKG_VERSION"),
            settings.leader_lease,
        );
        Self(std::sync::Arc::new(Context {
            cluster,
            prometheus,
            aws,
            clock,
            jobs_waker: Default::default(),
            hashing: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_HASHES)),
            refusals: Default::default(),
            plan_again: Default::default(),
            store,
            settings,
            holder,
            cost_facts: Default::default(),
            cloudwatch: Default::default(),
            cost_results: Default::default(),
            reads: Default::default(),
            chain_checked: Default::default(),
            users_read: Default::default(),
            repo_read: Default::default(),
            environments_read: Default::default(),
            heads_read: Default::default(),
            chain_read: Default::default(),
        }))
    }
}
