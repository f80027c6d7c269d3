//! SLO status from Prometheus (or, for an SLO counted from a load balancer, CloudWatch), the
//! error-budget gate, and the Monitoring page's charts, target health and scrape targets.

use domain::slo::{self, SloReport, SloStatus, BURN_WINDOWS};
use domain::spec::EnvName;
use domain::spec::{EnvironmentSpec, Slo};
use domain::Role;
use futures::future::{join_all, try_join_all};

use crate::auth::Caller;
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::prometheus::PromApi;
use crate::prometheus::PromError;
use crate::service::spec_reads::Specs;
use crate::store::repo as repo_store;
use crate::store::Store;

/// Queries one SLO's status needs: the window's request rate and error ratio, and the error
/// ratio over each burn window.
/// (and the budget over the past window: one range query).
pub const QUERIES_PER_SLO: usize = 3 + BURN_WINDOWS.len();

async fn one(
    prom: &dyn PromApi,
    s: &Slo,
    at: Option<i64>,
    now: i64,
) -> Result<SloStatus, PromError> {
    let window = slo::days(s.window_days);
    let ratio_query = |w: &str| slo::error_ratio_query(&s.indicator, w).expect("a PromQL SLO");
    let (_, total) = slo::queries(&s.indicator, &window).expect("a PromQL SLO");
    let mut asks = vec![total, ratio_query(&window)];
    asks.extend(BURN_WINDOWS.iter().map(|w| ratio_query(w)));
    let end = at.unwrap_or(now);
    let end = end - end.rem_euclid(3600);
    let window_secs = i64::from(s.window_days) * 86_400;
    let history = prom.range(&asks[1], end - window_secs, end, 86_400);
    let (answers, history) = futures::try_join!(
        try_join_all(asks.iter().map(|q| prom.value(q, at))),
        history
    )?;
    let ratio = |v: Option<f64>| v.map(|r| r.clamp(0.0, 1.0));
    let burn: Vec<Option<f64>> = answers[2..].iter().map(|v| ratio(*v)).collect();
    let total_rate = answers[0].unwrap_or(0.0);
    let window_ratio = if total_rate > 0.0 {
        ratio(answers[1])
    } else {
        None
    };
    let mut status = slo::status(s, total_rate, window_ratio, &burn);
    status.budget_history = history
        .into_iter()
        .map(|(t, r)| (t, slo::remaining_percent(s.objective, r.clamp(0.0, 1.0))))
        .collect();
    Ok(status)
}

/// SLO status and monitoring.
#[derive(Clone, Copy)]
pub struct Slos<'a> {
    pub(crate) store: &'a Store,
    pub(crate) prometheus: Option<&'a dyn PromApi>,
    pub(crate) cloudwatch: super::cloudwatch::CloudWatchReads<'a>,
    pub(crate) specs: Specs<'a>,
    pub(crate) heads_read: &'a crate::memo::ByCommits<(), (Vec<String>, Option<String>)>,
    pub(crate) clock: &'a dyn Clock,
}

impl Slos<'_> {
    fn prometheus(&self) -> Result<&dyn PromApi, String> {
        self.prometheus.ok_or_else(|| {
            "Prometheus is not configured: set [prometheus] url (TIERDECK_PROMETHEUS__URL)".into()
        })
    }

    /// Why the SLOs of `spec` cannot be read at all: one of them is PromQL and Prometheus is
    /// not configured. (An SLO counted from a load balancer needs only AWS.)
    pub(crate) fn unreadable(&self, spec: &EnvironmentSpec) -> Option<String> {
        let needs = spec.slos.iter().any(|s| s.indicator.is_promql());
        (needs && self.prometheus.is_none()).then(|| self.prometheus().err().unwrap_or_default())
    }

    /// The SLOs of `spec` at `at` (Unix time; `None`: now), each on its own: one whose queries
    /// fail is there as failing, with the reason ([`slo::failed`]), and never hides the
    /// others. PromQL SLOs are asked of Prometheus, those counted from a load balancer of
    /// CloudWatch; both go through the same arithmetic ([`slo::status`]). `Err` only when
    /// nothing can be read: a PromQL SLO and Prometheus not configured, or not reachable at
    /// all.
    pub(crate) async fn slo_statuses(
        &self,
        spec: &EnvironmentSpec,
        at: Option<i64>,
    ) -> Result<Vec<SloStatus>, String> {
        let now = self.clock.now().timestamp();
        let (promql, counted): (Vec<&Slo>, Vec<&Slo>) =
            spec.slos.iter().partition(|s| s.indicator.is_promql());
        let mut from_prom = Vec::new();
        if !promql.is_empty() {
            let prom = self.prometheus()?;
            let results = join_all(promql.iter().map(|s| one(prom, s, at, now))).await;
            if let Some(away) = results.iter().find_map(|r| match r {
                Err(e @ PromError::Unreachable { .. }) => Some(e.to_string()),
                _ => None,
            }) {
                return Err(away);
            }
            from_prom = results
                .into_iter()
                .zip(&promql)
                .map(|(r, s)| r.unwrap_or_else(|e| slo::failed(s, e.to_string())))
                .collect();
        }
        let mut from_cw = if counted.is_empty() {
            Vec::new()
        } else {
            self.cloudwatch
                .slo_statuses(spec, &counted, at.unwrap_or(now))
                .await
        }
        .into_iter();
        let mut from_prom = from_prom.into_iter();
        // In the spec's order.
        Ok(spec
            .slos
            .iter()
            .filter_map(|s| {
                if s.indicator.is_promql() {
                    from_prom.next()
                } else {
                    from_cw.next()
                }
            })
            .collect())
    }

    /// The SLO report of an environment's spec at the branch head.
    pub async fn slo_report(
        &self,
        caller: &Caller,
        env: &EnvName,
        at: Option<i64>,
    ) -> ServiceResult<SloReport> {
        let env = env.as_str();
        caller.require(Role::Viewer)?;
        let at = at.map(|t| unix_time("at", t)).transpose()?;
        let spec = self.head_spec(env).await?;
        Ok(self.report(env, &spec, at).await)
    }

    /// The environments' names and the tracked branch's head, kept until the next write.
    async fn environments_and_head(&self) -> ServiceResult<(Vec<String>, Option<String>)> {
        Ok(self
            .heads_read
            .get_or_read(self.store, (), || async {
                let mut conn = self.store.pool().acquire().await?;
                let names: Vec<String> = repo_store::environments(&mut conn)
                    .await?
                    .into_iter()
                    .map(|e| e.name)
                    .collect();
                let head = repo_store::state(&mut conn)
                    .await?
                    .and_then(|s| s.head_commit);
                Ok::<_, sqlx::Error>((names, head))
            })
            .await?)
    }

    /// Every environment's SLO report at the branch head, for the overview: the environments
    /// and the head are read once, each spec comes from the read cache.
    pub async fn reports(&self, caller: &Caller) -> ServiceResult<Vec<SloReport>> {
        caller.require(Role::Viewer)?;
        let (names, head) = self.environments_and_head().await?;
        let mut out = Vec::with_capacity(names.len());
        for env in names {
            let head = head.as_deref().ok_or_else(|| {
                ServiceError::Unavailable("the spec repository was never fetched".into())
            })?;
            let spec = self.specs.spec_at(&env, head).await?;
            out.push(self.report(&env, &spec, None).await);
        }
        Ok(out)
    }

    async fn report(&self, env: &str, spec: &EnvironmentSpec, at: Option<i64>) -> SloReport {
        let at_time = at.unwrap_or_else(|| self.clock.now().timestamp());
        let (slos, error) = match self.slo_statuses(spec, at).await {
            Ok(s) => (s, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        SloReport {
            environment: env.to_owned(),
            at_unix: at_time,
            time_zone: domain::time::environment_zone(spec).name().to_owned(),
            queries: spec.slos.iter().filter(|s| s.indicator.is_promql()).count() * QUERIES_PER_SLO,
            slos,
            error,
        }
    }

    /// The error-budget policy: `Some(reason)` when the budget of one of `slos` (the judging
    /// rules' availability SLOs, read with `spec`'s monitoring) is spent, or cannot be read
    /// (the gate fails closed: a query Prometheus refuses, or Prometheus away, allows only
    /// emergency applies). Without Prometheus configured there is no PromQL budget to read
    /// and the gate stays open for it; a budget counted from a load balancer is read from
    /// CloudWatch (and fails closed the same way).
    pub(crate) async fn budget_refusal(
        &self,
        spec: &EnvironmentSpec,
        slos: &[Slo],
    ) -> Option<String> {
        let availability: Vec<Slo> = slos
            .iter()
            .filter(|s| self.prometheus.is_some() || !s.indicator.is_promql())
            .cloned()
            .collect();
        if availability.is_empty() {
            return None;
        }
        let only = EnvironmentSpec {
            slos: availability,
            ..spec.clone()
        };
        let env = &spec.environment.name;
        let unreadable = |why: &str| {
            format!(
                "the availability error budget of {env} cannot be read ({why}): the error-budget policy allows only emergency applies until it can"
            )
        };
        match self.slo_statuses(&only, None).await {
            Ok(statuses) => slo::budget_exhausted(&statuses)
                .map(|s| {
                    let b = s.budget.expect("an exhausted budget exists");
                    format!(
                        "the availability error budget of {env} is spent ({:.0} failed requests of {:.0} allowed over {} days, {:.1} % left): the error-budget policy allows only emergency applies",
                        b.spent_events, b.allowed_events, s.window_days, b.remaining_percent
                    )
                })
                .or_else(|| slo::budget_unreadable(&statuses).map(|(_, why)| unreadable(why))),
            Err(e) => {
                tracing::warn!(environment = %env, error = %e, "the error-budget gate could not read the SLOs; it holds applies to emergencies");
                Some(unreadable(&e))
            }
        }
    }
}

impl Slos<'_> {
    /// The monitoring charts of an environment's spec at the branch head over `range` (`1h`,
    /// `6h`, `24h`, `7d`), ending at `end` (Unix time; `None`: now).
    pub async fn monitoring(
        &self,
        caller: &Caller,
        env: &EnvName,
        range: &str,
        end: Option<i64>,
    ) -> ServiceResult<domain::monitoring::MonitoringReport> {
        let env = env.as_str();
        use domain::monitoring::{
            service_panels, tier_panels, Chart, MonitoringReport, Panel, TierCharts, RANGES,
        };
        caller.require(Role::Viewer)?;
        let (label, secs, step) = RANGES
            .iter()
            .find(|(l, ..)| *l == range)
            .copied()
            .ok_or_else(|| {
                ServiceError::invalid(
                    "range",
                    format!(
                        "`{range}` is not a range; use one of {}",
                        RANGES.map(|r| r.0).join(", ")
                    ),
                )
            })?;
        let end = end.map(|t| unix_time("end", t)).transpose()?;
        let spec = self.head_spec(env).await?;
        let end = end.unwrap_or_else(|| self.clock.now().timestamp());
        let end = end - end.rem_euclid(step);
        let start = end - secs;
        let tier_panels: Vec<(String, Vec<Panel>)> = spec
            .monitoring
            .tiers
            .iter()
            .map(|(t, sel)| (t.clone(), tier_panels(sel)))
            .collect();
        let service = service_panels(&spec.slos);
        let queries = tier_panels.iter().map(|(_, p)| p.len()).sum::<usize>() + service.len();
        let mut report = MonitoringReport {
            environment: env.to_owned(),
            range: label.to_owned(),
            start_unix: start,
            end_unix: end,
            step,
            time_zone: domain::time::environment_zone(&spec).name().to_owned(),
            tiers: Vec::new(),
            service: Vec::new(),
            error: None,
            queries,
            load_balancers: Vec::new(),
            databases: Vec::new(),
            target_health: Vec::new(),
            cloudwatch_queries: 0,
            cloudwatch_calls: 0,
        };
        let now = self.clock.now().timestamp();
        let from_prometheus = async {
            if queries == 0 {
                return Ok((Vec::new(), Vec::new()));
            }
            let prom = self.prometheus()?;
            let chart = |p: Panel| async move {
                match prom.range(&p.query, start, end, step).await {
                    Ok(points) => Ok(Chart {
                        title: p.title,
                        unit: p.unit,
                        points,
                        error: None,
                        period: None,
                    }),
                    // Prometheus down: the whole page says so once.
                    Err(e @ PromError::Unreachable { .. }) => Err(e),
                    Err(e) => Ok(Chart {
                        title: p.title,
                        unit: p.unit,
                        points: Vec::new(),
                        error: Some(e.to_string()),
                        period: None,
                    }),
                }
            };
            let tiers = try_join_all(tier_panels.into_iter().map(|(tier, panels)| async move {
                let charts = try_join_all(panels.into_iter().map(chart)).await?;
                Ok::<_, PromError>(TierCharts { tier, charts })
            }));
            let service = try_join_all(service.into_iter().map(chart));
            futures::try_join!(tiers, service).map_err(|e| e.to_string())
        };
        let (prom, cw) = futures::join!(
            from_prometheus,
            self.cloudwatch_charts(&spec, secs, step, end, now)
        );
        match prom {
            Ok((tiers, service)) => {
                report.tiers = tiers;
                report.service = service;
            }
            Err(e) => report.error = Some(e),
        }
        report.load_balancers = cw.load_balancers;
        report.databases = cw.databases;
        report.target_health = cw.target_health;
        report.cloudwatch_queries = cw.queries;
        report.cloudwatch_calls = cw.calls;
        Ok(report)
    }

    /// The load balancers' and databases' charts from CloudWatch over the `secs` before `end`,
    /// a point every `step` seconds or the coarsest CloudWatch keeps, all in one
    /// `GetMetricData` where its limits allow; and the target groups' health.
    async fn cloudwatch_charts(
        &self,
        spec: &EnvironmentSpec,
        secs: i64,
        step: i64,
        end: i64,
        now: i64,
    ) -> CloudWatchCharts {
        use domain::cloudwatch::{chart, db_panels, lb_panels, period_for, ResourceCharts};
        let mut out = CloudWatchCharts::default();
        if spec.monitoring.load_balancers.is_empty() && spec.databases.is_empty() {
            return out;
        }
        let period = period_for(step, end - secs, now);
        // Whole periods, the last one ending at or before `end`.
        let end = end - end.rem_euclid(period);
        let start = end - secs - (end - secs).rem_euclid(period);
        let resolved = self.cloudwatch.resolve(spec).await;
        let mut resources: Vec<Resource> = Vec::new();
        match &resolved {
            Ok(list) => {
                for r in list.iter() {
                    let panels = r.dimensions().map(|d| lb_panels(&d, period));
                    resources.push(Resource {
                        load_balancer: true,
                        name: r.spec.name.clone(),
                        tier: r.spec.tier.clone(),
                        panels,
                    });
                }
            }
            Err(e) => {
                for lb in &spec.monitoring.load_balancers {
                    resources.push(Resource {
                        load_balancer: true,
                        name: lb.name.clone(),
                        tier: lb.tier.clone(),
                        panels: Err(e.to_string()),
                    });
                }
            }
        }
        for db in &spec.databases {
            let id = db.identifier.as_str();
            resources.push(Resource {
                load_balancer: false,
                name: id.to_owned(),
                tier: None,
                panels: Ok(db_panels(id, period)),
            });
        }
        let queries: Vec<domain::cloudwatch::MetricQuery> = resources
            .iter()
            .filter_map(|r| r.panels.as_ref().ok())
            .flatten()
            .map(|p| p.query.clone())
            .collect();
        out.queries = queries.len();
        let answer = self.cloudwatch.metrics(spec, &queries, start, end).await;
        let answer = match answer {
            Ok((series, calls)) => {
                out.calls = usize::try_from(calls).unwrap_or(usize::MAX);
                Ok(series)
            }
            Err(e) => Err(e.to_string()),
        };
        let mut at = 0;
        for Resource {
            load_balancer: is_lb,
            name,
            tier,
            panels,
        } in resources
        {
            let (charts, error) = match panels {
                Err(e) => (Vec::new(), Some(e)),
                Ok(panels) => {
                    let charts = panels
                        .iter()
                        .filter_map(|p| {
                            let i = at;
                            at += 1;
                            match &answer {
                                Ok(series) => chart(p, Ok(&series[i])),
                                Err(e) => chart(p, Err(e)),
                            }
                        })
                        .collect();
                    (charts, None)
                }
            };
            let r = ResourceCharts {
                name,
                tier,
                charts,
                error,
            };
            if is_lb {
                out.load_balancers.push(r);
            } else {
                out.databases.push(r);
            }
        }
        if let Ok(list) = &resolved {
            out.target_health = self.cloudwatch.health(spec, list).await.0;
        }
        out
    }

    /// The health of the targets of the environment's load balancers at the branch head, with
    /// each group's instances in service beside its tier's healthy targets.
    pub async fn target_health(
        &self,
        caller: &Caller,
        env: &EnvName,
    ) -> ServiceResult<domain::cloudwatch::TargetHealthReport> {
        use domain::cloudwatch::{healthy_in_tier, GroupTargets, TargetHealthReport};
        caller.require(Role::Viewer)?;
        let spec = self.head_spec(env.as_str()).await?;
        let (target_groups, instances, error) = match self.cloudwatch.resolve(&spec).await {
            Ok(list) => {
                let (tgs, instances) = self.cloudwatch.health(&spec, &list).await;
                let why: Vec<String> = list
                    .iter()
                    .filter_map(|r| r.found.as_ref().err().cloned())
                    .chain(instances.as_ref().err().cloned())
                    .collect();
                (
                    tgs,
                    instances.unwrap_or_default(),
                    (!why.is_empty()).then(|| why.join("; ")),
                )
            }
            Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
        };
        let groups = spec
            .autoscaling_groups
            .iter()
            .map(|g| GroupTargets {
                group: g.name.as_str().to_owned(),
                tier: g.tier.clone(),
                in_service: instances
                    .iter()
                    .filter(|i| i.group == g.name.as_str())
                    .count(),
                healthy_targets: healthy_in_tier(&g.tier, &target_groups),
            })
            .collect();
        Ok(TargetHealthReport {
            groups,
            target_groups,
            error,
        })
    }

    /// Every environment's targets that take no traffic, for the overview (environments with
    /// load balancers only; the answers are reused like the Monitoring page's).
    pub async fn unhealthy_targets(
        &self,
        caller: &Caller,
    ) -> ServiceResult<Vec<domain::cloudwatch::UnhealthyTargets>> {
        caller.require(Role::Viewer)?;
        let (names, head) = self.environments_and_head().await?;
        let Some(head) = head else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for env in names {
            let Ok(spec) = self.specs.spec_at(&env, &head).await else {
                continue;
            };
            if spec.monitoring.load_balancers.is_empty() {
                continue;
            }
            let (targets, error) = match self.cloudwatch.resolve(&spec).await {
                Ok(list) => {
                    let (groups, _) = self.cloudwatch.health(&spec, &list).await;
                    let errors: Vec<String> = list
                        .iter()
                        .filter_map(|r| r.found.as_ref().err().cloned())
                        .chain(groups.iter().filter_map(|g| g.error.clone()))
                        .collect();
                    let targets = groups
                        .iter()
                        .flat_map(|g| {
                            g.unhealthy()
                                .into_iter()
                                .map(|t| (g.target_group.clone(), t.clone()))
                        })
                        .collect();
                    (targets, (!errors.is_empty()).then(|| errors.join("; ")))
                }
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            out.push(domain::cloudwatch::UnhealthyTargets {
                environment: env,
                targets,
                error,
            });
        }
        Ok(out)
    }

    /// Prometheus `http_sd` scrape targets: the groups' instances in service at their private
    /// addresses and the spec's `monitoring.scrape_port` (one `DescribeAutoScalingGroups` per
    /// 100 groups and one `DescribeInstances` per 200 instances, read each time: instances come
    /// and go with the schedule).
    pub async fn scrape_targets(
        &self,
        caller: &Caller,
        env: &EnvName,
    ) -> ServiceResult<Vec<domain::cloudwatch::ScrapeTargets>> {
        use domain::cloudwatch::{scrape_targets, ScrapeInstance};
        caller.require(Role::Viewer)?;
        let spec = self.head_spec(env.as_str()).await?;
        let (instances, addresses) = self.cloudwatch.instances(&spec).await?;
        let list: Vec<ScrapeInstance<'_>> = instances
            .iter()
            .filter_map(|i| {
                let tier = spec
                    .autoscaling_groups
                    .iter()
                    .find(|g| g.name.as_str() == i.group)?
                    .tier
                    .as_str();
                let address = addresses.iter().find(|(id, _)| *id == i.id)?.1.as_str();
                Some(ScrapeInstance {
                    group: &i.group,
                    tier,
                    id: &i.id,
                    zone: i.zone.as_deref(),
                    address,
                })
            })
            .collect();
        Ok(scrape_targets(
            env.as_str(),
            spec.monitoring.scrape_port(),
            &list,
        ))
    }

    /// The spec of `env` at the tracked branch's head.
    async fn head_spec(&self, env: &str) -> ServiceResult<EnvironmentSpec> {
        let head = {
            let mut conn = self.store.pool().acquire().await?;
            super::known_environment(&mut conn, env).await?;
            repo_store::state(&mut conn)
                .await?
                .and_then(|s| s.head_commit)
                .ok_or_else(|| {
                    ServiceError::Unavailable("the spec repository was never fetched".into())
                })?
        };
        let spec = self.specs.spec_at(env, &head).await?;
        Ok(EnvironmentSpec::clone(&spec))
    }
}

/// A load balancer or database of the Monitoring page: its panels, or why it has none.
struct Resource {
    load_balancer: bool,
    name: String,
    tier: Option<String>,
    panels: Result<Vec<domain::cloudwatch::CwPanel>, String>,
}

/// What CloudWatch adds to a monitoring report.
#[derive(Default)]
struct CloudWatchCharts {
    load_balancers: Vec<domain::cloudwatch::ResourceCharts>,
    databases: Vec<domain::cloudwatch::ResourceCharts>,
    target_health: Vec<domain::cloudwatch::TargetGroupHealth>,
    queries: usize,
    calls: usize,
}

/// The earliest time a report may ask for: 2000-01-01.
const EARLIEST: i64 = 946_684_800;

/// A Unix time from a request: after 2000 and at most a day ahead, so the windows counted back
/// from it cannot overflow.
fn unix_time(field: &'static str, t: i64) -> ServiceResult<i64> {
    let latest = chrono::Utc::now().timestamp() + 86_400;
    if (EARLIEST..=latest).contains(&t) {
        Ok(t)
    } else {
        Err(ServiceError::invalid(
            field,
            format!("{t} is not a Unix time between {EARLIEST} (2000-01-01) and a day from now"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_times_are_bounded_so_windows_cannot_overflow() {
        assert!(unix_time("at", i64::MIN).is_err());
        assert!(unix_time("end", i64::MAX).is_err());
        assert!(unix_time("at", -1).is_err());
        let now = chrono::Utc::now().timestamp();
        assert_eq!(unix_time("at", now).unwrap(), now);
        let e = unix_time("end", 12).unwrap_err().to_string();
        assert!(e.starts_with("end: 12 is not a Unix time"), "{e}");
    }
}
