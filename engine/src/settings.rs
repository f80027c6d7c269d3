//! What the engine is told at start: the settings of each service, taken from the
//! configuration.

use std::sync::Arc;
use std::time::Duration;

use domain::cost::PriceFile;

/// Settings the services need, taken from the configuration at start.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Failed sign-ins for one user name from one client address within `throttle_window` that
    /// make further attempts of that pair wait.
    pub throttle_max_failures: u32,
    /// Failed sign-ins from one address, whatever the names, that make every attempt from it
    /// wait (higher: teammates behind one NAT or proxy share it).
    pub throttle_max_per_address: u32,
    pub throttle_window: Duration,
    /// The spec repository, when one is configured.
    pub repo: Option<crate::repo::RepoSettings>,
    pub aws: crate::aws::AwsSettings,
    /// Approvals stop counting after this long.
    pub approval_lifetime: Duration,
    /// The panel's floor under every environment's rules (`[policy]`).
    pub policy: domain::policy::Floor,
    pub notify: NotifySettings,
    /// The panel's address as people reach it, for links in notifications.
    pub public_url: Option<String>,
    pub prometheus: Option<crate::prometheus::PromSettings>,
    /// Where prices come from (`[cost]`).
    pub cost: CostSettings,
    /// What an apply waits for after its calls, and the watch after it (`[apply]`).
    pub apply: ApplySettings,
    /// On a shared database, the leader's lease (`database.leader_lease_secs`).
    pub leader_lease: Duration,
}

impl EngineSettings {
    /// The spec repository's settings, or why a service that reads it cannot.
    pub(crate) fn repo(&self) -> crate::error::ServiceResult<&crate::repo::RepoSettings> {
        self.repo.as_ref().ok_or_else(|| {
            crate::error::ServiceError::Unavailable(
                "no spec repository is configured: set repo.url".into(),
            )
        })
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            throttle_max_failures: 5,
            throttle_max_per_address: 50,
            throttle_window: Duration::from_secs(15 * 60),
            repo: None,
            aws: crate::aws::AwsSettings::default(),
            approval_lifetime: Duration::from_secs(24 * 3600),
            policy: domain::policy::Floor::default(),
            notify: NotifySettings::default(),
            public_url: None,
            prometheus: None,
            cost: CostSettings::default(),
            apply: ApplySettings::default(),
            leader_lease: Duration::from_secs(15),
        }
    }
}

/// Where notifications go. Its `Debug` shows only the receivers' hosts: their URLs are secrets.
#[derive(Clone)]
pub struct NotifySettings {
    /// Receives `{"text": "…"}` (Slack incoming webhooks and compatible receivers).
    pub slack_url: Option<String>,
    /// Receives `{"event", "environment", "change", "text", "at"}`.
    pub webhook_url: Option<String>,
    /// Delivery attempts before a notification is given up.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each failure.
    pub first_retry: Duration,
}

impl std::fmt::Debug for NotifySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |u: &Option<String>| u.as_deref().map(domain::redact::origin);
        f.debug_struct("NotifySettings")
            .field("slack_url", &shown(&self.slack_url))
            .field("webhook_url", &shown(&self.webhook_url))
            .field("max_attempts", &self.max_attempts)
            .field("first_retry", &self.first_retry)
            .finish()
    }
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            slack_url: None,
            webhook_url: None,
            max_attempts: 6,
            first_retry: Duration::from_secs(2),
        }
    }
}

/// Where prices come from (`[cost]`).
#[derive(Debug, Clone)]
pub struct CostSettings {
    /// Overrides the Price List API; serves offline and against the emulator.
    pub price_file: Option<Arc<PriceFile>>,
    /// Ask the AWS Price List API for what the price file does not settle.
    pub price_list: bool,
    /// Why it is off, for the figures it leaves unpriced.
    pub price_list_off: String,
    /// The Price List API's address (tests point it at a loopback server).
    pub price_list_endpoint: Option<String>,
    /// The region of the Price List endpoint (`us-east-1`).
    pub price_list_region: String,
    /// How long a price read from the API is kept.
    pub price_list_ttl: Duration,
}

impl Default for CostSettings {
    fn default() -> Self {
        Self {
            price_file: None,
            price_list: true,
            price_list_off: String::new(),
            price_list_endpoint: None,
            price_list_region: "us-east-1".into(),
            price_list_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl CostSettings {
    pub fn currency(&self) -> String {
        self.price_file
            .as_ref()
            .map(|f| f.currency.clone())
            .unwrap_or_else(|| "USD".into())
    }
}

/// What an apply waits for after its calls, and the watch after it (`[apply]`).
#[derive(Debug, Clone)]
pub struct ApplySettings {
    /// How long a step waits for its database to be `available` with nothing pending.
    pub settle_database: Duration,
    /// How long a step waits for raised capacity to be in service.
    pub settle_capacity: Duration,
    /// The longest pause between two polls of a settling step.
    pub settle_poll_max: Duration,
    /// How often a watch evaluates the SLO burn-rate alerts.
    pub watch_interval: Duration,
}

impl Default for ApplySettings {
    fn default() -> Self {
        Self {
            settle_database: Duration::from_secs(3600),
            settle_capacity: Duration::from_secs(900),
            settle_poll_max: Duration::from_secs(30),
            watch_interval: Duration::from_secs(60),
        }
    }
}
