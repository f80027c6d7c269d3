//! Everything in tierdeck that does I/O, on the server only: the SQLite store, authentication,
//! the audit log and the services that the pages and the REST API both call. A rule lives here
//! once; the two doors stay thin.
//!
//! Three layers, each using only those below it:
//! - the parts: [`store`] (one module per table), [`auth`], [`repo`] (the git mirror and what
//!   a fetch means), [`aws`] (one adapter per AWS service), [`prometheus`], [`specs`];
//! - the handle, [`Engine`] (this file, [`settings`], `memo`, `holder`): what the services
//!   share, cheap to clone;
//! - the services, [`service`]: one handle each, reached through the engine
//!   (`engine.changes()`, `engine.reviews()`…), so each call names the service it uses.

pub mod auth;
pub mod aws;
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

/// The handle every door holds: cheap to clone. It holds what the services share (the store,
/// the settings, the AWS and Prometheus clients, what is kept between requests); the services
/// themselves are reached through it (`engine.reviews().approve(…)`, see [`service`]).
#[derive(Debug, Clone)]
pub struct Engine(std::sync::Arc<Context>);

/// What the services share, behind the [`Engine`] handle (which derefs to it).
#[derive(Debug)]
pub struct Context {
    pub store: Store,
    pub settings: EngineSettings,
    /// This process, as the holder of environment locks.
    pub holder: Holder,
    /// The Prometheus client, when one is configured.
    pub prometheus: Option<prometheus::Prometheus>,
    /// Wakes the jobs worker once a transaction that queued a job commits.
    pub jobs_waker: jobs::worker::Waker,
    /// Password hashes running at once (each holds about 19 MiB).
    pub(crate) hashing: std::sync::Arc<tokio::sync::Semaphore>,
    /// Throttled sign-ins and rejected webhooks, summed per source per minute.
    pub refusals: std::sync::Arc<auth::refusals::RefusalLog>,
    /// Facts about environments read from AWS for their cost, reused for a while.
    pub(crate) cost_facts: memo::FactsCache,
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
    /// AWS clients per region and attempt count, built once so connections are reused.
    clients: std::sync::Arc<
        tokio::sync::Mutex<std::collections::HashMap<(String, u32), aws::observe::Clients>>,
    >,
}

impl std::ops::Deref for Engine {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.0
    }
}

impl Engine {
    pub fn new(store: Store, settings: EngineSettings) -> Self {
        // Outgoing HTTPS (notifications) uses the crypto the AWS SDK already builds; an error
        // only means a provider was installed before.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let prometheus = settings.prometheus.clone().and_then(|p| {
            prometheus::Prometheus::new(p)
                .map_err(|e| tracing::error!(error = %e, "Prometheus is off"))
                .ok()
        });
        Self(std::sync::Arc::new(Context {
            prometheus,
            jobs_waker: Default::default(),
            hashing: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_HASHES)),
            refusals: Default::default(),
            store,
            settings,
            holder: Holder::this_process(),
            clients: Default::default(),
            cost_facts: Default::default(),
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

    /// The region of an environment's resources: its own, or the panel's default.
    pub(crate) fn region_of(&self, spec: &domain::spec::EnvironmentSpec) -> String {
        spec.environment
            .region
            .clone()
            .unwrap_or_else(|| self.settings.aws.default_region.clone())
    }

    /// The AWS clients for `region`, making at most `max_attempts` calls per request.
    pub async fn aws_clients(&self, region: &str, max_attempts: u32) -> aws::observe::Clients {
        let mut cache = self.clients.lock().await;
        let key = (region.to_owned(), max_attempts);
        if let Some(c) = cache.get(&key) {
            return c.clone();
        }
        let settings = aws::AwsSettings {
            max_attempts,
            ..self.settings.aws.clone()
        };
        let c = aws::observe::Clients::for_region(&settings, region).await;
        cache.insert(key, c.clone());
        c
    }
}
