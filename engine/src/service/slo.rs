//! SLO status from Prometheus, and the error-budget gate.

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
    let (_, total) = slo::queries(&s.indicator, &window);
    let mut asks = vec![total, slo::error_ratio_query(&s.indicator, &window)];
    asks.extend(
        BURN_WINDOWS
            .iter()
            .map(|w| slo::error_ratio_query(&s.indicator, w)),
    );
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

    /// The SLOs of `spec` at `at` (Unix time; `None`: now), each on its own: one whose queries
    /// fail is there as failing, with the reason ([`slo::failed`]), and never hides the
    /// others. `Err` only when nothing can be read: Prometheus is not configured, or cannot
    /// be reached at all.
    pub(crate) async fn slo_statuses(
        &self,
        spec: &EnvironmentSpec,
        at: Option<i64>,
    ) -> Result<Vec<SloStatus>, String> {
        let prom = self.prometheus()?;
        let now = self.clock.now().timestamp();
        let results = join_all(spec.slos.iter().map(|s| one(prom, s, at, now))).await;
        if let Some(away) = results.iter().find_map(|r| match r {
            Err(e @ PromError::Unreachable { .. }) => Some(e.to_string()),
            _ => None,
        }) {
            return Err(away);
        }
        Ok(results
            .into_iter()
            .zip(&spec.slos)
            .map(|(r, s)| r.unwrap_or_else(|e| slo::failed(s, e.to_string())))
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

    /// Every environment's SLO report at the branch head, for the overview: the environments
    /// and the head are read once, each spec comes from the read cache.
    pub async fn reports(&self, caller: &Caller) -> ServiceResult<Vec<SloReport>> {
        caller.require(Role::Viewer)?;
        let (names, head) = self
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
            .await?;
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
            queries: spec.slos.len() * QUERIES_PER_SLO,
            slos,
            error,
        }
    }

    /// The error-budget policy: `Some(reason)` when the budget of one of `slos` (the judging
    /// rules' availability SLOs, read with `spec`'s monitoring) is spent, or cannot be read
    /// (the gate fails closed: a query Prometheus refuses, or Prometheus away, allows only
    /// emergency applies). Without Prometheus configured there is no budget to read and the
    /// gate stays open.
    pub(crate) async fn budget_refusal(
        &self,
        spec: &EnvironmentSpec,
        slos: &[Slo],
    ) -> Option<String> {
        let availability: Vec<Slo> = slos.to_vec();
        if availability.is_empty() || self.prometheus.is_none() {
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
        };
        let prom = match self.prometheus() {
            Ok(p) => p,
            Err(e) => {
                report.error = Some(e);
                return Ok(report);
            }
        };
        let chart = |p: Panel| async move {
            match prom.range(&p.query, start, end, step).await {
                Ok(points) => Ok(Chart {
                    title: p.title,
                    unit: p.unit,
                    points,
                    error: None,
                }),
                // Prometheus down: the whole page says so once.
                Err(e @ PromError::Unreachable { .. }) => Err(e),
                Err(e) => Ok(Chart {
                    title: p.title,
                    unit: p.unit,
                    points: Vec::new(),
                    error: Some(e.to_string()),
                }),
            }
        };
        let tiers = try_join_all(tier_panels.into_iter().map(|(tier, panels)| async move {
            let charts = try_join_all(panels.into_iter().map(chart)).await?;
            Ok::<_, PromError>(TierCharts { tier, charts })
        }));
        let service = try_join_all(service.into_iter().map(chart));
        match futures::try_join!(tiers, service) {
            Ok((tiers, service)) => {
                report.tiers = tiers;
                report.service = service;
            }
            Err(e) => report.error = Some(e.to_string()),
        }
        Ok(report)
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
