//! Configuration: a TOML file (default `tierdeck.toml`) with every key overridable by an
//! environment variable `TIERDECK_SECTION__KEY`. Loaded once and checked before anything
//! listens; a bad value stops the program with one sentence naming the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DEFAULT_FILE: &str = "tierdeck.toml";
const ENV_PREFIX: &str = "TIERDECK_";

/// A value that never prints itself: not in logs, not in pages, not in `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub repo: RepoConfig,
    pub aws: AwsConfig,
    pub prometheus: PrometheusConfig,
    pub pollers: PollersConfig,
    pub approvals: ApprovalsConfig,
    pub policy: PolicyConfig,
    pub notifications: NotificationsConfig,
    pub cost: CostConfig,
    pub apply: ApplyConfig,
}

/// What an apply waits for after its calls, and the watch after it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApplyConfig {
    /// How long a step waits for its database to be `available` with nothing pending.
    pub settle_database_timeout_secs: u64,
    /// How long a step waits for raised capacity to be in service (`wait_for_capacity`).
    pub settle_capacity_timeout_secs: u64,
    /// The longest pause between two polls of a settling step (they start at 1 s and grow).
    pub settle_poll_max_secs: u64,
    /// How often the watch after an apply evaluates the SLO burn-rate alerts.
    pub watch_interval_secs: u64,
}

impl Default for ApplyConfig {
    fn default() -> Self {
        let d = engine::settings::ApplySettings::default();
        Self {
            settle_database_timeout_secs: d.settle_database.as_secs(),
            settle_capacity_timeout_secs: d.settle_capacity.as_secs(),
            settle_poll_max_secs: d.settle_poll_max.as_secs(),
            watch_interval_secs: d.watch_interval.as_secs(),
        }
    }
}

/// Where prices come from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostConfig {
    /// A YAML file of prices (see docs/cost.md); it overrides the Price List API.
    pub price_file: Option<PathBuf>,
    /// Ask the AWS Price List API for what the price file does not price.
    pub price_list: bool,
    /// The Price List API's address (default: AWS's, in `price_list_region`).
    pub price_list_endpoint: Option<String>,
    pub price_list_region: String,
    /// Hours a price read from the API is kept.
    pub price_list_cache_hours: u64,
    /// `price_file`, read and checked when the configuration is loaded.
    #[serde(skip)]
    pub prices: Option<std::sync::Arc<domain::cost::PriceFile>>,
}

impl Default for CostConfig {
    fn default() -> Self {
        Self {
            price_file: None,
            price_list: true,
            price_list_endpoint: None,
            price_list_region: "us-east-1".into(),
            price_list_cache_hours: 24,
            prices: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Approvals stop counting after this many hours.
    pub lifetime_hours: u64,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self { lifetime_hours: 24 }
    }
}

/// The panel's floor under every environment's rules: a spec may ask for more, never less, and
/// a commit never changes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Every change needs at least this many approvals (0–5).
    pub min_approvals: u8,
    /// Whether an environment's `auto_apply` may apply changes once approved.
    pub allow_auto_apply: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let floor = domain::policy::Floor::default();
        Self {
            min_approvals: floor.min_approvals,
            allow_auto_apply: floor.allow_auto_apply,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// A Slack-compatible incoming webhook: receives `{"text": "…"}` (secret: it holds a token).
    pub slack_url: Option<Secret>,
    /// A generic receiver: `{"event", "environment", "change", "text", "at"}` (secret).
    pub webhook_url: Option<Secret>,
    /// Delivery attempts before giving up.
    pub max_attempts: u32,
    /// Seconds before the first retry; doubled after each failure.
    pub first_retry_secs: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            slack_url: None,
            webhook_url: None,
            max_attempts: 6,
            first_retry_secs: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on; port 0 picks a free one (printed at start).
    pub listen: String,
    /// The URL people use to reach the panel, e.g. `https://tierdeck.example.com`. Used to
    /// check the origin of state-changing requests and to decide whether cookies are `Secure`.
    pub public_url: Option<String>,
    /// Force `Secure` cookies on or off; by default on exactly when `public_url` is https.
    pub secure_cookies: Option<bool>,
    /// Sessions end after this long without a request.
    pub session_idle_minutes: u64,
    /// Sessions end this long after sign-in, however busy.
    pub session_max_hours: u64,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a proxy
    /// you run, which must set that header).
    pub trust_forwarded_for: bool,
    /// The folder holding the built site (`pkg/` with the wasm, JS and CSS). By default
    /// `site` beside the binary (where `cargo xtask build` puts it), else `site` in the
    /// binary's parent folder, else `target/site` in the working folder (cargo-leptos's).
    pub site_root: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            public_url: None,
            secure_cookies: None,
            session_idle_minutes: 12 * 60,
            session_max_hours: 7 * 24,
            trust_forwarded_for: false,
            site_root: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`; when unset, the SQLite file
    /// at `path`.
    pub url: Option<Secret>,
    /// The SQLite file when `url` is unset; created with its folder when missing. Its folder is
    /// the panel's data folder (the spec repository's mirror) on either back end.
    pub path: PathBuf,
    /// Connections the panel keeps open at most (PostgreSQL takes one more for listening to
    /// the other replicas' writes, and the leader one more for its lock).
    pub max_connections: u32,
    /// On a shared database, how long the leader's lease lasts: when the leader dies, another
    /// replica takes the periodic work over within this many seconds.
    pub leader_lease_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            path: PathBuf::from("data/tierdeck.sqlite"),
            max_connections: 8,
            leader_lease_secs: 15,
        }
    }
}

impl DatabaseConfig {
    /// Where the store lives.
    pub fn location(&self) -> Result<engine::store::Location, ConfigError> {
        match &self.url {
            Some(url) => engine::store::Location::parse(url.expose())
                .map_err(|e| err(format!("`database.url`: {e}"))),
            None => Ok(engine::store::Location::Sqlite(self.path.clone())),
        }
    }

    /// The folder of the panel's own files (the spec repository's mirror).
    pub fn data_dir(&self) -> &std::path::Path {
        self.path.parent().unwrap_or(std::path::Path::new("."))
    }
}

/// The spec repository (watched by a later release; accepted and checked now).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepoConfig {
    /// A local path, `file://`, `https://` or `ssh://` URL of the spec repository.
    pub url: Option<String>,
    pub branch: String,
    pub poll_interval_secs: u64,
    /// A fetch (and the reading of what it brought) that takes longer fails.
    pub fetch_timeout_secs: u64,
    pub webhook_secret: Option<Secret>,
    /// For https remotes.
    pub token: Option<Secret>,
    /// For ssh remotes.
    pub ssh_key_path: Option<PathBuf>,
}

impl Default for RepoConfig {
    fn default() -> Self {
        Self {
            url: None,
            branch: "main".into(),
            poll_interval_secs: 30,
            fetch_timeout_secs: 60,
            webhook_secret: None,
            token: None,
            ssh_key_path: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    /// Points every AWS client at an emulator, e.g. `http://127.0.0.1:5000`.
    pub endpoint_url: Option<String>,
    /// Used when an environment names no region.
    pub region: String,
    /// Calls per AWS request, the first included; throttling, 5xx and timeouts are retried
    /// with exponential backoff and jitter.
    pub max_attempts: u32,
    /// How long one call may take.
    pub attempt_timeout_secs: u64,
    /// Each environment's own account and roles (`[aws.environments.NAME]`); an environment
    /// without an entry uses the default credential chain.
    pub environments: std::collections::BTreeMap<String, AwsEnvironmentConfig>,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: "ap-northeast-2".into(),
            max_attempts: 4,
            attempt_timeout_secs: 10,
            environments: Default::default(),
        }
    }
}

/// One environment's AWS account and roles: the panel's to set, never the spec's.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsEnvironmentConfig {
    /// Assumed to read (observe, plan, drift, monitoring, cost).
    pub plan_role_arn: Option<String>,
    /// Assumed by an apply, a revert's or a reconcile's, once per run.
    pub apply_role_arn: Option<String>,
    /// What the roles' trust policies ask for.
    pub external_id: Option<Secret>,
    /// The environment's region, over its spec's.
    pub region: Option<String>,
    /// The role session's name (default `tierdeck-<env>-<user or system>`).
    pub session_name: Option<String>,
    /// Another endpoint for this environment's calls (tests, an emulator).
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    /// e.g. `http://127.0.0.1:9090`.
    pub url: Option<String>,
    /// How long one query may take.
    pub timeout_secs: u64,
    /// How long an answer is reused, so many viewers of a page ask once.
    pub cache_secs: u64,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout_secs: 10,
            cache_secs: 15,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollersConfig {
    pub drift_interval_secs: u64,
    pub scaling_interval_secs: u64,
    /// Scaling history older than this is dropped.
    pub scaling_retention_days: u64,
}

impl Default for PollersConfig {
    fn default() -> Self {
        Self {
            drift_interval_secs: 300,
            scaling_interval_secs: 60,
            scaling_retention_days: 90,
        }
    }
}

/// Why the configuration was refused: one sentence naming the key or the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn err(s: impl Into<String>) -> ConfigError {
    ConfigError(s.into())
}

impl Config {
    /// Loads `path` (a missing default file is fine, a missing named file is not), then the
    /// environment's `TIERDECK_*` overrides, then checks every value.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (file, text) = match path {
            Some(p) => (
                p.to_path_buf(),
                Some(std::fs::read_to_string(p).map_err(|e| {
                    err(format!(
                        "cannot read the configuration file {}: {e}",
                        p.display()
                    ))
                })?),
            ),
            None => {
                let p = PathBuf::from(DEFAULT_FILE);
                let text = std::fs::read_to_string(&p).ok();
                (p, text)
            }
        };
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__"))
            .collect();
        let mut config = Self::from_parts(&file, text.as_deref(), &vars)?;
        config.cost.prices = config.read_price_file()?;
        Ok(config)
    }

    /// `cost.price_file`, read and checked: a missing, unreadable, too large or bad file is a
    /// configuration error naming the key (and the file's line).
    fn read_price_file(
        &self,
    ) -> Result<Option<std::sync::Arc<domain::cost::PriceFile>>, ConfigError> {
        let Some(path) = &self.cost.price_file else {
            return Ok(None);
        };
        let name = path.display().to_string();
        let meta =
            std::fs::metadata(path).map_err(|e| err(format!("`cost.price_file` {name}: {e}")))?;
        if meta.len() > 1024 * 1024 {
            return Err(err(format!(
                "`cost.price_file` {name} is larger than 1 MiB"
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("`cost.price_file` {name}: {e}")))?;
        let file = domain::cost::parse_price_file(&name, &text)
            .map_err(|e| err(format!("`cost.price_file`: {e}")))?;
        Ok(Some(std::sync::Arc::new(file)))
    }

    /// The pure part of [`Config::load`], for tests.
    pub fn from_parts(
        file: &Path,
        text: Option<&str>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut table = match text {
            Some(t) => {
                // Checked against the schema first, so type errors name the file's line and key.
                let de = toml::Deserializer::new(t);
                serde_path_to_error::deserialize::<_, Config>(de).map_err(|e| {
                    let inner = e.inner();
                    let line = inner
                        .span()
                        .map(|s| format!(" line {}:", t[..s.start].matches('\n').count() + 1));
                    let path = e.path().to_string();
                    let message = inner.message().trim_end_matches('.').to_string();
                    if path == "." || path.is_empty() {
                        err(format!(
                            "{}:{} {message}",
                            file.display(),
                            line.unwrap_or_default()
                        ))
                    } else {
                        err(format!(
                            "{}:{} `{path}`: {message}",
                            file.display(),
                            line.unwrap_or_default()
                        ))
                    }
                })?;
                toml::from_str::<toml::Table>(t).map_err(|e| err(e.message().to_string()))?
            }
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Config::default()).expect("defaults serialise");
        let mut from_env = std::collections::HashMap::new();
        for (var, value) in env {
            if let Some(key) = apply_override(&mut table, &defaults, var, value)? {
                from_env.insert(key, var.clone());
            }
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let path = e.path().to_string();
                let message = e.inner().message().trim_end_matches('.').to_owned();
                match from_env.get(&path) {
                    Some(var) => err(format!("`{var}` (`{path}`): {message}")),
                    None => err(format!("`{path}`: {message}")),
                }
            })?;
        config.check()?;
        Ok(config)
    }

    /// Every number the configuration takes, with its value and the range it must be in (both
    /// ends included): checked at start, and listed in the README's table, which a test holds
    /// to what the binary accepts. Upper ends keep every duration and count within what the
    /// timers and sums that use it can hold.
    fn numbers(&self) -> [(&'static str, u64, u64, u64); 22] {
        const DAY: u64 = 86_400;
        let (a, p) = (&self.apply, &self.pollers);
        [
            (
                "server.session_idle_minutes",
                self.server.session_idle_minutes,
                1,
                525_600,
            ),
            (
                "server.session_max_hours",
                self.server.session_max_hours,
                1,
                8760,
            ),
            (
                "repo.poll_interval_secs",
                self.repo.poll_interval_secs,
                1,
                DAY,
            ),
            (
                "repo.fetch_timeout_secs",
                self.repo.fetch_timeout_secs,
                1,
                3600,
            ),
            ("aws.max_attempts", self.aws.max_attempts.into(), 1, 10),
            (
                "aws.attempt_timeout_secs",
                self.aws.attempt_timeout_secs,
                1,
                600,
            ),
            (
                "approvals.lifetime_hours",
                self.approvals.lifetime_hours,
                1,
                8760,
            ),
            (
                "policy.min_approvals",
                self.policy.min_approvals.into(),
                0,
                5,
            ),
            (
                "notifications.max_attempts",
                self.notifications.max_attempts.into(),
                1,
                20,
            ),
            (
                "notifications.first_retry_secs",
                self.notifications.first_retry_secs,
                1,
                3600,
            ),
            (
                "cost.price_list_cache_hours",
                self.cost.price_list_cache_hours,
                1,
                8760,
            ),
            (
                "prometheus.timeout_secs",
                self.prometheus.timeout_secs,
                1,
                600,
            ),
            ("prometheus.cache_secs", self.prometheus.cache_secs, 1, 3600),
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
                2,
                200,
            ),
            (
                "database.leader_lease_secs",
                self.database.leader_lease_secs,
                3,
                600,
            ),
            ("pollers.drift_interval_secs", p.drift_interval_secs, 1, DAY),
            (
                "pollers.scaling_interval_secs",
                p.scaling_interval_secs,
                1,
                DAY,
            ),
            (
                "pollers.scaling_retention_days",
                p.scaling_retention_days,
                1,
                3650,
            ),
            (
                "apply.settle_database_timeout_secs",
                a.settle_database_timeout_secs,
                1,
                DAY,
            ),
            (
                "apply.settle_capacity_timeout_secs",
                a.settle_capacity_timeout_secs,
                1,
                DAY,
            ),
            ("apply.settle_poll_max_secs", a.settle_poll_max_secs, 1, DAY),
            ("apply.watch_interval_secs", a.watch_interval_secs, 1, DAY),
        ]
    }

    fn check(&self) -> Result<(), ConfigError> {
        for (key, value, low, high) in self.numbers() {
            if !(low..=high).contains(&value) {
                return Err(err(format!(
                    "`{key}` must be between {low} and {high}, not {value}"
                )));
            }
        }
        self.server.listen.parse::<SocketAddr>().map_err(|_| {
            err(format!(
                "`server.listen` must be an address and port like 127.0.0.1:3000, not `{}`",
                self.server.listen
            ))
        })?;
        if let Some(u) = &self.server.public_url {
            let url = url::Url::parse(u)
                .map_err(|e| err(format!("`server.public_url` is not a URL ({e}): `{u}`")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(err(format!(
                    "`server.public_url` must be an http or https URL with a host, not `{u}`"
                )));
            }
        }
        if self.database.path.as_os_str().is_empty() {
            return Err(err("`database.path` must name a file"));
        }
        self.database.location()?;
        if self.repo.branch.trim().is_empty() {
            return Err(err("`repo.branch` must not be empty"));
        }
        if self
            .repo
            .webhook_secret
            .as_ref()
            .is_some_and(|s| s.expose().trim().is_empty())
        {
            // An empty secret would let an empty `X-Gitlab-Token` through.
            return Err(err(
                "`repo.webhook_secret` must not be empty: leave it out to turn webhooks off",
            ));
        }
        for (key, value) in [
            ("aws.endpoint_url", &self.aws.endpoint_url),
            ("prometheus.url", &self.prometheus.url),
        ] {
            if let Some(v) = value {
                let url = url::Url::parse(v)
                    .map_err(|e| err(format!("`{key}` is not a URL ({e}): `{v}`")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(err(format!(
                        "`{key}` must be an http or https URL, not `{v}`"
                    )));
                }
            }
        }
        if self.aws.region.trim().is_empty() {
            return Err(err("`aws.region` must not be empty"));
        }
        for (env, e) in &self.aws.environments {
            let key = |k: &str| format!("aws.environments.{env}.{k}");
            if env.parse::<domain::spec::EnvName>().is_err() {
                return Err(err(format!(
                    "`aws.environments.{env}` is not an environment's name: lower-case letters, digits, `-` and `_`"
                )));
            }
            for (k, arn) in [
                ("plan_role_arn", &e.plan_role_arn),
                ("apply_role_arn", &e.apply_role_arn),
            ] {
                if let Some(why) = arn
                    .as_deref()
                    .and_then(engine::aws::access::role_arn_problem)
                {
                    return Err(err(format!("`{}`: {why}", key(k))));
                }
            }
            if let Some(n) = &e.session_name {
                let ok = (2..=64).contains(&n.len())
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+=,.@-".contains(c));
                if !ok {
                    return Err(err(format!(
                        "`{}` must be 2–64 letters, digits or `+=,.@-`, not `{n}`",
                        key("session_name")
                    )));
                }
            }
            if e.external_id.as_ref().is_some_and(|x| {
                let x = x.expose();
                !(2..=1224).contains(&x.len())
            }) {
                return Err(err(format!(
                    "`{}` must be 2–1224 characters",
                    key("external_id")
                )));
            }
            if e.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return Err(err(format!("`{}` must not be empty", key("region"))));
            }
            if let Some(v) = &e.endpoint_url {
                let ok = url::Url::parse(v).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                if !ok {
                    return Err(err(format!(
                        "`{}` must be an http or https URL, not `{v}`",
                        key("endpoint_url")
                    )));
                }
            }
        }
        for (key, value) in [
            ("notifications.slack_url", &self.notifications.slack_url),
            ("notifications.webhook_url", &self.notifications.webhook_url),
        ] {
            if let Some(v) = value {
                let ok = url::Url::parse(v.expose())
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !ok {
                    // The value may hold a token: it is not repeated.
                    return Err(err(format!("`{key}` must be an http or https URL")));
                }
            }
        }
        if let Some(u) = &self.cost.price_list_endpoint {
            let ok = url::Url::parse(u)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(err(
                    "`cost.price_list_endpoint` must be an http or https URL",
                ));
            }
        }
        Ok(())
    }

    /// Whether session cookies carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.server.secure_cookies.unwrap_or_else(|| {
            self.server
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
        })
    }

    /// The origin (`scheme://host[:port]`) of `public_url`, if set.
    pub fn public_origin(&self) -> Option<String> {
        let u = url::Url::parse(self.server.public_url.as_deref()?).ok()?;
        Some(u.origin().ascii_serialization())
    }
}

/// Applies `TIERDECK_SECTION__KEY=value`, typed like the key's default (or as text); returns
/// the `section.key` it set.
fn apply_override(
    table: &mut toml::Table,
    defaults: &toml::Table,
    var: &str,
    value: &str,
) -> Result<Option<String>, ConfigError> {
    let rest = &var[ENV_PREFIX.len()..];
    let Some((section, key)) = rest.split_once("__") else {
        return Ok(None);
    };
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    let known_sections = [
        "server",
        "database",
        "repo",
        "aws",
        "prometheus",
        "pollers",
        "approvals",
        "policy",
        "notifications",
        "cost",
        "apply",
    ];
    if !known_sections.contains(&section.as_str()) {
        return Err(err(format!(
            "`{var}` names no configuration section: use one of {}",
            known_sections.join(", ")
        )));
    }
    let typed = match defaults.get(&section).and_then(|s| s.get(&key)) {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            value
                .trim()
                .parse()
                .map_err(|_| err(format!("`{var}` must be a whole number, not `{value}`")))?,
        ),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(match value.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(err(format!("`{var}` must be true or false, not `{value}`"))),
        }),
        // Options without a default: text, except the one boolean option.
        None if section == "server" && key == "secure_cookies" => {
            toml::Value::Boolean(match value.trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(err(format!("`{var}` must be true or false, not `{value}`"))),
            })
        }
        _ => toml::Value::String(value.to_owned()),
    };
    let section_table = table
        .entry(section.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    // `TIERDECK_AWS__ENVIRONMENTS__PROD__PLAN_ROLE_ARN`: one environment's key.
    if let (true, Some(("environments", rest))) = (section == "aws", key.split_once("__")) {
        let Some((env, field)) = rest.split_once("__") else {
            return Err(err(format!(
                "`{var}` names no key: use TIERDECK_AWS__ENVIRONMENTS__<ENV>__<KEY>"
            )));
        };
        let nested = || toml::Value::Table(toml::Table::new());
        let toml::Value::Table(aws) = section_table else {
            return Err(err("`aws` must be a table"));
        };
        let toml::Value::Table(envs) = aws.entry("environments").or_insert_with(nested) else {
            return Err(err("`aws.environments` must be a table"));
        };
        let toml::Value::Table(one) = envs.entry(env).or_insert_with(nested) else {
            return Err(err(format!("`aws.environments.{env}` must be a table")));
        };
        one.insert(field.to_owned(), toml::Value::String(value.to_owned()));
        return Ok(Some(format!("aws.environments.{env}.{field}")));
    }
    match section_table {
        toml::Value::Table(t) => {
            t.insert(key.clone(), typed);
            Ok(Some(format!("{section}.{key}")))
        }
        _ => Err(err(format!("`{section}` must be a table"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_parts(Path::new("tierdeck.toml"), text, &env)
    }

    #[test]
    fn defaults_are_valid() {
        let c = load(None, &[]).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:3000");
        assert_eq!(c.repo.branch, "main");
        assert!(!c.secure_cookies());
    }

    #[test]
    fn each_environment_may_have_its_own_roles_from_the_file_or_the_environment() {
        let c = load(
            Some("[aws.environments.prod]\nplan_role_arn = \"arn:aws:iam::111111111111:role/read\"\n"),
            &[
                (
                    "TIERDECK_AWS__ENVIRONMENTS__PROD__APPLY_ROLE_ARN",
                    "arn:aws:iam::111111111111:role/write",
                ),
                ("TIERDECK_AWS__ENVIRONMENTS__STAGING__REGION", "eu-west-1"),
            ],
        )
        .unwrap();
        let prod = &c.aws.environments["prod"];
        assert_eq!(
            prod.plan_role_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/read")
        );
        assert_eq!(
            prod.apply_role_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/write")
        );
        assert_eq!(
            c.aws.environments["staging"].region.as_deref(),
            Some("eu-west-1")
        );
        for (text, env, message) in [
            (
                "[aws.environments.prod]\nplan_role_arn = \"tierdeck-read\"\n",
                vec![],
                "configuration: `aws.environments.prod.plan_role_arn`: `tierdeck-read` is not an IAM role's ARN (arn:aws:iam::123456789012:role/NAME)",
            ),
            (
                "[aws.environments.Prod]\nregion = \"x\"\n",
                vec![],
                "configuration: `aws.environments.Prod` is not an environment's name: lower-case letters, digits, `-` and `_`",
            ),
            (
                "",
                vec![("TIERDECK_AWS__ENVIRONMENTS__PROD", "x")],
                "configuration: `TIERDECK_AWS__ENVIRONMENTS__PROD` names no key: use TIERDECK_AWS__ENVIRONMENTS__<ENV>__<KEY>",
            ),
            (
                "[aws.environments.prod]\nsession_name = \"tierdeck prod\"\n",
                vec![],
                "configuration: `aws.environments.prod.session_name` must be 2–64 letters, digits or `+=,.@-`, not `tierdeck prod`",
            ),
        ] {
            let got = load(Some(text), &env).unwrap_err().to_string();
            assert_eq!(got, message);
        }
        // The external id is a secret: never printed.
        let c = load(
            Some("[aws.environments.prod]\nexternal_id = \"s3cret-id\"\n"),
            &[],
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cret-id"));
    }

    #[test]
    fn environment_overrides_the_file_with_typed_values() {
        let c = load(
            Some("[server]\nlisten = \"0.0.0.0:80\"\nsession_idle_minutes = 5\n"),
            &[
                ("TIERDECK_SERVER__LISTEN", "127.0.0.1:0"),
                ("TIERDECK_SERVER__SESSION_IDLE_MINUTES", "30"),
                ("TIERDECK_REPO__WEBHOOK_SECRET", "12345"),
                ("TIERDECK_SERVER__PUBLIC_URL", "https://deck.example.com/"),
            ],
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:0");
        assert_eq!(c.server.session_idle_minutes, 30);
        assert_eq!(c.repo.webhook_secret.as_ref().unwrap().expose(), "12345");
        assert!(c.secure_cookies());
        assert_eq!(
            c.public_origin().as_deref(),
            Some("https://deck.example.com")
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        // (file text, environment, expected error)
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                Some("[server]\nsession_idle_minutes = \"soon\"\n"),
                &[],
                "configuration: tierdeck.toml: line 2: `server.session_idle_minutes`: invalid type: string \"soon\", expected u64",
            ),
            (
                Some("[server]\nlisten_on = \"x\"\n"),
                &[],
                "configuration: tierdeck.toml: line 2: `server.listen_on`: unknown field `listen_on`, expected one of `listen`, `public_url`, `secure_cookies`, `session_idle_minutes`, `session_max_hours`, `trust_forwarded_for`, `site_root`",
            ),
            (
                None,
                &[("TIERDECK_SERVER__SESSION_IDLE_MINUTES", "soon")],
                "configuration: `TIERDECK_SERVER__SESSION_IDLE_MINUTES` must be a whole number, not `soon`",
            ),
            (
                None,
                &[("TIERDECK_SERVER__LISTEN", "localhost")],
                "configuration: `server.listen` must be an address and port like 127.0.0.1:3000, not `localhost`",
            ),
            (
                None,
                &[("TIERDECK_SERVR__LISTEN", "x")],
                "configuration: `TIERDECK_SERVR__LISTEN` names no configuration section: use one of server, database, repo, aws, prometheus, pollers, approvals, policy, notifications, cost, apply",
            ),
            (
                None,
                &[("TIERDECK_REPO__WEBHOOK_SECRET", " ")],
                "configuration: `repo.webhook_secret` must not be empty: leave it out to turn webhooks off",
            ),
            (
                Some("[policy]\nmin_approvals = 7\n"),
                &[],
                "configuration: `policy.min_approvals` must be between 0 and 5, not 7",
            ),
            (
                None,
                &[("TIERDECK_POLICY__ALLOW_AUTO_APPLY", "perhaps")],
                "configuration: `TIERDECK_POLICY__ALLOW_AUTO_APPLY` must be true or false, not `perhaps`",
            ),
            (
                None,
                &[("TIERDECK_SERVER__LISTNE", "x")],
                "configuration: `TIERDECK_SERVER__LISTNE` (`server.listne`): unknown field `listne`, expected one of `listen`, `public_url`, `secure_cookies`, `session_idle_minutes`, `session_max_hours`, `trust_forwarded_for`, `site_root`",
            ),
            (
                None,
                &[("TIERDECK_APPLY__WATCH_INTERVAL_SECS", "0")],
                "configuration: `apply.watch_interval_secs` must be between 1 and 86400, not 0",
            ),
            (
                None,
                &[("TIERDECK_POLLERS__SCALING_RETENTION_DAYS", "0")],
                "configuration: `pollers.scaling_retention_days` must be between 1 and 3650, not 0",
            ),
            (
                None,
                &[("TIERDECK_POLLERS__SCALING_INTERVAL_SECS", "0")],
                "configuration: `pollers.scaling_interval_secs` must be between 1 and 86400, not 0",
            ),
            (
                Some("[notifications]\nfirst_retry_secs = 0\n"),
                &[],
                "configuration: `notifications.first_retry_secs` must be between 1 and 3600, not 0",
            ),
            (
                None,
                &[("TIERDECK_AWS__ENDPOINT_URL", "localhost:5000")],
                "configuration: `aws.endpoint_url` must be an http or https URL, not `localhost:5000`",
            ),
        ];
        for (text, env, expected) in cases {
            assert_eq!(load(*text, env).unwrap_err().to_string(), *expected);
        }
    }

    #[test]
    fn the_policy_floor_defaults_to_one_approval_and_allows_auto_apply() {
        let c = load(None, &[]).unwrap();
        assert_eq!(
            (c.policy.min_approvals, c.policy.allow_auto_apply),
            (1, true)
        );
        let c = load(
            Some("[policy]\nmin_approvals = 2\n"),
            &[("TIERDECK_POLICY__ALLOW_AUTO_APPLY", "false")],
        )
        .unwrap();
        assert_eq!(
            (c.policy.min_approvals, c.policy.allow_auto_apply),
            (2, false)
        );
    }

    #[test]
    fn secrets_never_print() {
        let c = load(None, &[("TIERDECK_REPO__TOKEN", "ghp_verysecret")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("verysecret"), "{shown}");
        assert!(shown.contains("Secret(****)"));
    }
}
