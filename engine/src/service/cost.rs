//! Cost: the monthly figures of an environment and of a change ([`domain::cost`] computes them),
//! with the facts they need from AWS (each group's instance type from its launch template, each
//! database's engine and storage type) and the prices from the price file or the AWS Price List
//! API (cached in the database for a day).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use domain::cost::{
    self, ChangeCostReport, CostReport, DatabaseFacts, EnvironmentCost, Facts, Period, PriceBook,
    PriceKey, Ran,
};
use domain::spec::EnvName;
use domain::spec::EnvironmentSpec;
use domain::Role;

use crate::auth::Caller;
use crate::aws::autoscaling::{AutoScalingApi, InstanceSource};
use crate::aws::clients::AwsClients;
use crate::aws::ec2::Ec2Api;
use crate::aws::pricing::{self, Pricing, PricingApi};
use crate::aws::rds::RdsApi;
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::memo::CostCache;
use crate::memo::FactsCache;
use crate::service::spec_reads::Specs;
use crate::settings::EngineSettings;
use crate::store::prices::{self, PriceRow};
use crate::store::Store;
use crate::store::{format_time, repo as repo_store, scaling};

/// How long facts read from AWS are reused.
const FACTS_TTL: Duration = Duration::from_secs(10 * 60);
/// Days of scaling history the "what ran" figures cover.
pub const RAN_DAYS: u32 = 30;

/// Costs of environments and changes.
#[derive(Clone, Copy)]
pub struct Costs<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) aws: &'a AwsClients,
    pub(crate) cost_facts: &'a FactsCache,
    pub(crate) cost_results: &'a CostCache,
    pub(crate) specs: Specs<'a>,
    pub(crate) clock: &'a dyn Clock,
}

impl Costs<'_> {
    /// The facts `spec` needs from AWS, and warnings (a spec's instance type that differs from
    /// the launch template; AWS that could not be read, with what was assumed instead).
    pub(crate) async fn cost_facts(&self, spec: &EnvironmentSpec) -> (Facts, Vec<String>) {
        let region = self.aws.region_of(spec);
        let names: Vec<String> = spec
            .autoscaling_groups
            .iter()
            .map(|g| g.name.to_string())
            .collect();
        let dbs: Vec<String> = spec
            .databases
            .iter()
            .map(|d| d.identifier.to_string())
            .collect();
        // Keyed by environment too: each reads with its own role (its own account).
        let env = spec.environment.name.to_string();
        let key = format!("{env}|{region}|{}|{}", names.join(","), dbs.join(","));
        // Many views of one page read AWS once; no lock is held while AWS answers, so one
        // environment's slow reads hold back no other (see `memo::Flights`).
        let (aws, attempts) = (self.aws.clone(), self.settings.aws.max_attempts);
        let read_dbs = dbs.clone();
        let (mut facts, mut warnings) = self
            .cost_facts
            .get_or_run(
                key,
                Some(FACTS_TTL),
                |_| true,
                move || async move {
                    read_facts(&aws, attempts, &env, &region, &names, &read_dbs).await
                },
            )
            .await;
        for g in &spec.autoscaling_groups {
            if let (Some(said), Some(runs)) =
                (&g.instance_type, facts.instance_types.get(g.name.as_str()))
            {
                if said != runs {
                    warnings.push(format!(
                        "autoscaling group {}: the spec says instance_type {said} but its launch template launches {runs}; the cost uses {runs}",
                        g.name
                    ));
                }
            }
        }
        // What the price file assumes where AWS said nothing.
        if let Some(file) = &self.settings.cost.price_file {
            for d in &dbs {
                let f = facts.databases.entry(d.clone()).or_default();
                if f.engine.is_none() || f.storage_type.is_none() {
                    f.engine = f.engine.clone().or(file.database_engine.clone());
                    f.storage_type = f.storage_type.clone().or(file.storage_type.clone());
                    f.from = format!("assumed by the price file {}", file.path);
                }
            }
        }
        warnings.dedup();
        (facts, warnings)
    }

    /// The prices of `keys`: the price file first, then the Price List API (cached for a day).
    pub(crate) async fn price_book(&self, keys: &[PriceKey]) -> ServiceResult<PriceBook> {
        let settings = &self.settings.cost;
        let mut book = PriceBook::default();
        let mut ask = Vec::new();
        for k in keys {
            match settings.price_file.as_ref().map(|f| f.lookup(k)) {
                Some(Ok(p)) => book.insert(k.clone(), Ok(p)),
                Some(Err(why)) if !settings.price_list => book.insert(k.clone(), Err(why)),
                None if !settings.price_list => book.insert(
                    k.clone(),
                    Err(format!(
                        "unpriced: no price file is configured (cost.price_file) and {}",
                        settings.price_list_off
                    )),
                ),
                _ => ask.push(k.clone()),
            }
        }
        if ask.is_empty() {
            return Ok(book);
        }
        let since = format_time(
            self.clock.now()
                - chrono::Duration::from_std(settings.price_list_ttl).unwrap_or_default(),
        );
        let mut api: Option<Pricing> = None;
        for k in ask {
            let key_text =
                serde_json::to_string(&k).map_err(|e| ServiceError::Internal(e.into()))?;
            let cached = {
                let mut conn = self.store.pool().acquire().await?;
                prices::get(&mut conn, &key_text, &since).await?
            };
            if let Some(row) = cached {
                book.insert(
                    k,
                    match row.per_unit {
                        Some(per_unit) => Ok(domain::cost::Price {
                            per_unit,
                            currency: row.currency,
                            source: row.source,
                            as_of: row.fetched_at,
                        }),
                        None => Err(row.source),
                    },
                );
                continue;
            }
            let client = match &api {
                Some(c) => c.clone(),
                None => {
                    let mut aws = self.settings.aws.clone();
                    aws.endpoint_url = settings.price_list_endpoint.clone();
                    let config = crate::aws::sdk_config(&aws, &settings.price_list_region).await;
                    let c = Pricing::new(&config);
                    api = Some(c.clone());
                    c
                }
            };
            let now = crate::store::now_text();
            let priced = match pricing::query(&k) {
                Err(why) => Err(why),
                Ok((service, filters)) => match client.products(service, &filters).await {
                    Ok(docs) => pricing::pick(&k, &docs, &now),
                    Err(e) => {
                        // Not cached: the next view asks again.
                        book.insert(
                            k,
                            Err(format!("unpriced: the AWS Price List did not answer ({e})")),
                        );
                        continue;
                    }
                },
            };
            let row = match &priced {
                Ok(p) => PriceRow {
                    per_unit: Some(p.per_unit),
                    currency: p.currency.clone(),
                    source: p.source.clone(),
                    fetched_at: now.clone(),
                },
                Err(why) => PriceRow {
                    per_unit: None,
                    currency: "USD".into(),
                    source: why.clone(),
                    fetched_at: now.clone(),
                },
            };
            let mut conn = self.store.pool().acquire().await?;
            prices::put(&mut conn, &key_text, &row).await?;
            book.insert(k, priced);
        }
        Ok(book)
    }

    /// The monthly cost of `spec` this month, with the warnings of its facts.
    pub(crate) async fn spec_cost(
        &self,
        spec: &EnvironmentSpec,
    ) -> ServiceResult<(EnvironmentCost, Vec<String>)> {
        let (facts, warnings) = self.cost_facts(spec).await;
        let book = self.price_book(&cost::price_keys(spec, &facts)).await?;
        let currency = self.settings.cost.currency();
        let period = Period::month_of(self.clock.now());
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            serde_json::to_string(spec)
                .map_err(|e| ServiceError::Internal(e.into()))?
                .hash(&mut h);
            serde_json::to_string(&facts)
                .map_err(|e| ServiceError::Internal(e.into()))?
                .hash(&mut h);
            format!("{book:?}|{currency}|{}", period.from).hash(&mut h);
            h.finish()
        };
        let spec = spec.clone();
        let c = self
            .cost_results
            .get_or_run(key, None, Result::is_ok, move || async move {
                tokio::task::spawn_blocking(move || {
                    cost::environment_cost(&spec, &facts, &book, &currency, period)
                })
                .await
                .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("computing the cost: {e}")))?;
        Ok((c, warnings))
    }

    /// A change's cost before and after, and the cost policy's verdict.
    pub(crate) async fn change_cost(
        &self,
        spec: &EnvironmentSpec,
        base: Option<&EnvironmentSpec>,
        policy: &domain::spec::CostPolicy,
    ) -> ServiceResult<ChangeCostReport> {
        let (after, mut warnings) = self.spec_cost(spec).await?;
        let before = match base {
            Some(b) => {
                let (c, w) = self.spec_cost(b).await?;
                warnings.extend(
                    w.into_iter()
                        .filter(|x| !warnings.contains(x))
                        .collect::<Vec<_>>(),
                );
                Some(c)
            }
            None => None,
        };
        Ok(ChangeCostReport::of(
            before.as_ref(),
            &after,
            policy,
            warnings,
        ))
    }

    /// `GET /api/v1/environments/{env}/cost`: the applied spec's monthly cost (or the branch
    /// head's, never applied), with what ran over the last 30 days.
    pub async fn environment_cost(
        &self,
        caller: &Caller,
        env: &EnvName,
    ) -> ServiceResult<CostReport> {
        let env = env.as_str();
        caller.require(Role::Viewer)?;
        let started = Instant::now();
        let (row, head) = {
            let mut conn = self.store.pool().acquire().await?;
            (
                super::known_environment(&mut conn, env).await?,
                repo_store::state(&mut conn)
                    .await?
                    .and_then(|s| s.head_commit),
            )
        };
        let (commit, spec_of) = match (&row.last_applied_commit, head) {
            (Some(c), _) => (c.clone(), "the last applied commit".to_owned()),
            (None, Some(h)) => (h, "the branch head (never applied)".to_owned()),
            (None, None) => {
                return Err(ServiceError::Unavailable(
                    "the spec repository was never fetched".into(),
                ))
            }
        };
        let (spec, _) = self.specs.specs_at(env, &commit, None).await?;
        let (cost, warnings) = self.spec_cost(&spec).await?;
        let until = self.clock.now();
        let since = until - chrono::Duration::days(i64::from(RAN_DAYS));
        let snapshots = {
            let mut conn = self.store.pool().acquire().await?;
            scaling::snapshots_since(&mut conn, env, &format_time(since)).await?
        };
        let ran = cost
            .groups
            .iter()
            .map(|g| {
                let points: Vec<(i64, u32)> = snapshots
                    .iter()
                    .filter(|s| s.group_name == g.group)
                    .filter_map(|s| {
                        let at = chrono::DateTime::parse_from_rfc3339(&s.at)
                            .ok()?
                            .timestamp();
                        Some((
                            at.max(since.timestamp()),
                            s.in_service.clamp(0, i64::from(u32::MAX)) as u32,
                        ))
                    })
                    .collect();
                let (covered, hours) = cost::ran_hours(&points, until.timestamp());
                let per = g.price.as_ref().map(|p| p.per_unit);
                Ran {
                    group: g.group.clone(),
                    covered_hours: covered,
                    instance_hours: hours,
                    cost: per.map(|p| p * hours),
                    monthly: per
                        .filter(|_| covered > 0.0)
                        .map(|p| p * hours * cost::MONTH_HOURS / covered),
                }
            })
            .collect();
        Ok(CostReport {
            cost,
            commit,
            spec_of,
            ran,
            ran_days: RAN_DAYS,
            warnings,
            computed_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// What AWS says about an environment's groups and databases beyond their spec, for their
/// cost, and what could not be read (with what is assumed instead).
async fn read_facts(
    aws: &AwsClients,
    max_attempts: u32,
    env: &str,
    region: &str,
    groups: &[String],
    dbs: &[String],
) -> (Facts, Vec<String>) {
    let clients = aws.read(env, region, max_attempts).await;
    let mut facts = Facts {
        region: region.to_owned(),
        ..Facts::default()
    };
    let mut warnings = Vec::new();
    if !groups.is_empty() {
        match clients.autoscaling.instance_sources(groups).await {
            Err(e) => warnings.push(format!(
                "The groups' launch templates could not be read ({e}): instance types come from the spec."
            )),
            Ok(sources) => {
                let mut by_template: BTreeMap<String, Option<String>> = BTreeMap::new();
                for (group, source) in sources {
                    match source {
                        InstanceSource::Template(t) => {
                            let k = format!("{:?}|{:?}|{}", t.id, t.name, t.version);
                            let known = match by_template.get(&k) {
                                Some(v) => v.clone(),
                                None => {
                                    let v = match clients.ec2.template_instance_type(&t).await {
                                        Ok(v) => v,
                                        Err(e) => {
                                            warnings.push(format!("autoscaling group {group}: {e}"));
                                            None
                                        }
                                    };
                                    by_template.insert(k, v.clone());
                                    v
                                }
                            };
                            if let Some(v) = known {
                                facts.instance_types.insert(group, v);
                            }
                        }
                        InstanceSource::Mixed(types) => warnings.push(format!(
                            "autoscaling group {group} runs a mixed instances policy ({}): it is priced by the spec's instance_type, if any",
                            types.join(", ")
                        )),
                        InstanceSource::LaunchConfiguration(c) => warnings.push(format!(
                            "autoscaling group {group} launches from launch configuration {c}, which tierdeck does not read: it is priced by the spec's instance_type, if any"
                        )),
                        InstanceSource::Unknown => {}
                    }
                }
            }
        }
    }
    for d in dbs {
        match clients.rds.describe_instance(d).await {
            Ok(Some(db)) => {
                facts.databases.insert(
                    d.clone(),
                    DatabaseFacts {
                        engine: (!db.engine.is_empty()).then_some(db.engine),
                        storage_type: (!db.storage_type.is_empty()).then_some(db.storage_type),
                        instance_class: Some(db.instance_class),
                        multi_az: Some(db.multi_az),
                        allocated_storage_gb: Some(db.allocated_storage_gb),
                        from: "AWS".into(),
                    },
                );
            }
            Ok(None) => {}
            Err(e) => warnings.push(format!("database {d}: {e}")),
        }
    }
    (facts, warnings)
}
