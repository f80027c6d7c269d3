//! Reading CloudWatch and ELBv2 for an environment: its load balancers resolved to what
//! CloudWatch names them, `GetMetricData` in as few calls as its limits allow, the target
//! groups' health, and the SLOs counted from a load balancer. Answers are reused for a while
//! (many viewers of a page cost one call); time is bounded by the AWS clients' timeouts, size
//! by [`domain::cloudwatch::calls_for`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::cloudwatch::{
    self as cw, LbDimensions, MetricQuery, Series, Target, TargetGroupHealth,
};
use domain::slo::SloStatus;
use domain::spec::{EnvironmentSpec, Indicator, LoadBalancer, Slo};

use crate::aws::autoscaling::{AutoScalingApi, GroupInstance};
use crate::aws::clients::{AwsClients, Live};
use crate::aws::cloudwatch::CloudWatchApi;
use crate::aws::ec2::Ec2Api;
use crate::aws::elbv2::{no_load_balancer, Elbv2Api, FoundLoadBalancer, FoundTargetGroup};
use crate::aws::AwsError;
use crate::prometheus::TtlCache;

/// How long metric datapoints and target health are reused.
pub const ANSWERS_FOR: Duration = Duration::from_secs(30);
/// How long a load balancer's ARN and target groups are reused (they change rarely).
pub const RESOLVED_FOR: Duration = Duration::from_secs(300);

/// (environment, region, queries, start, end).
type MetricsKey = (String, String, Vec<MetricQuery>, i64, i64);
/// (environment, region, each load balancer's name and target groups).
type ResolvedKey = (String, String, Vec<(String, Vec<String>)>);
/// (environment, region, target group ARN).
type HealthKey = (String, String, String);
/// The days call of each window length: its end and CloudWatch's answer.
type DaysAnswers = HashMap<u32, (i64, Result<Arc<Vec<Series>>, String>)>;

/// What is kept between requests.
#[derive(Debug)]
pub struct Caches {
    resolved: Mutex<TtlCache<ResolvedKey, Arc<Vec<Resolved>>>>,
    metrics: Mutex<TtlCache<MetricsKey, Arc<Vec<Series>>>>,
    health: Mutex<TtlCache<HealthKey, Arc<Vec<Target>>>>,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            resolved: Mutex::new(TtlCache::new(256)),
            metrics: Mutex::new(TtlCache::new(512)),
            health: Mutex::new(TtlCache::new(1024)),
        }
    }
}

/// A load balancer of the spec as ELBv2 found it, with its target groups (those the spec
/// names, else all behind it); `Err`: why not (not found, access denied).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub spec: LoadBalancer,
    pub found: Result<(FoundLoadBalancer, Vec<FoundTargetGroup>), String>,
}

impl Resolved {
    /// Its CloudWatch dimensions, once found.
    pub fn dimensions(&self) -> Result<LbDimensions, String> {
        let (lb, tgs) = self.found.as_ref().map_err(Clone::clone)?;
        let load_balancer = cw::lb_dimension(&lb.arn)
            .ok_or_else(|| format!("`{}` is not a load balancer's ARN", lb.arn))?
            .to_owned();
        Ok(LbDimensions {
            load_balancer,
            target_groups: tgs
                .iter()
                .filter_map(|t| Some((t.name.clone(), cw::tg_dimension(&t.arn)?.to_owned())))
                .collect(),
        })
    }
}

/// The CloudWatch and ELBv2 reads of the services.
#[derive(Clone, Copy)]
pub(crate) struct CloudWatchReads<'a> {
    pub(crate) aws: &'a AwsClients,
    pub(crate) caches: &'a Caches,
    pub(crate) max_attempts: u32,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CloudWatchReads<'_> {
    async fn clients(&self, spec: &EnvironmentSpec) -> (Live, String) {
        let region = self.aws.region_of(spec);
        let env = spec.environment.name.as_str();
        (self.aws.read(env, &region, self.max_attempts).await, region)
    }

    /// The spec's load balancers through ELBv2: one `DescribeLoadBalancers` per 20 names and
    /// one `DescribeTargetGroups` per load balancer. `Err` when ELBv2 cannot be read at all.
    pub(crate) async fn resolve(
        &self,
        spec: &EnvironmentSpec,
    ) -> Result<Arc<Vec<Resolved>>, AwsError> {
        let lbs = &spec.monitoring.load_balancers;
        if lbs.is_empty() {
            return Ok(Arc::default());
        }
        let (clients, region) = self.clients(spec).await;
        let key = (
            spec.environment.name.as_str().to_owned(),
            region,
            lbs.iter()
                .map(|l| (l.name.clone(), l.target_groups.clone()))
                .collect(),
        );
        if let Some(hit) = locked(&self.caches.resolved).get(&key, RESOLVED_FOR) {
            return Ok(hit);
        }
        let refs: Vec<String> = lbs.iter().map(|l| l.name.clone()).collect();
        let found = clients.elbv2.load_balancers(&refs).await?;
        let mut out = Vec::with_capacity(lbs.len());
        for (lb, (_, hit)) in lbs.iter().zip(found) {
            let found = match hit {
                None => Err(no_load_balancer(&lb.name).message),
                Some(f) => match clients.elbv2.target_groups(&f.arn).await {
                    Err(e) => Err(e.to_string()),
                    Ok(all) => pick_target_groups(lb, &f, all).map(|tgs| (f, tgs)),
                },
            };
            out.push(Resolved {
                spec: lb.clone(),
                found,
            });
        }
        let out = Arc::new(out);
        locked(&self.caches.resolved).insert(key, out.clone(), RESOLVED_FOR);
        Ok(out)
    }

    /// `GetMetricData` of `queries` over `[start, end)`, reused for [`ANSWERS_FOR`]; with the
    /// requests it sent (0 when the answer was reused).
    pub(crate) async fn metrics(
        &self,
        spec: &EnvironmentSpec,
        queries: &[MetricQuery],
        start: i64,
        end: i64,
    ) -> Result<(Arc<Vec<Series>>, u64), AwsError> {
        if queries.is_empty() {
            return Ok((Arc::default(), 0));
        }
        let (clients, region) = self.clients(spec).await;
        let key = (
            spec.environment.name.as_str().to_owned(),
            region,
            queries.to_vec(),
            start,
            end,
        );
        if let Some(hit) = locked(&self.caches.metrics).get(&key, ANSWERS_FOR) {
            return Ok((hit, 0));
        }
        let (answer, calls) =
            crate::aws::calls::counted(clients.cloudwatch.metric_data(queries, start, end)).await;
        let answer = Arc::new(answer?);
        locked(&self.caches.metrics).insert(key, answer.clone(), ANSWERS_FOR);
        Ok((answer, calls))
    }

    /// Each resolved target group's targets and their health, a target's zone (when ELBv2
    /// does not say it) from the group it is in service in; and the groups' instances in
    /// service (or why they could not be read).
    pub(crate) async fn health(
        &self,
        spec: &EnvironmentSpec,
        resolved: &[Resolved],
    ) -> (Vec<TargetGroupHealth>, Result<Vec<GroupInstance>, String>) {
        let (clients, region) = self.clients(spec).await;
        let env = spec.environment.name.as_str();
        let groups: Vec<String> = spec
            .autoscaling_groups
            .iter()
            .map(|g| g.name.as_str().to_owned())
            .collect();
        let in_service = clients
            .autoscaling
            .in_service(&groups)
            .await
            .map_err(|e| e.to_string());
        let zones: HashMap<&str, &str> = match &in_service {
            Ok(list) => list
                .iter()
                .filter_map(|i| Some((i.id.as_str(), i.zone.as_deref()?)))
                .collect(),
            Err(e) => {
                tracing::warn!(environment = %env, error = %e, "the groups' instances could not be read for the targets' zones");
                HashMap::new()
            }
        };
        let mut out = Vec::new();
        for r in resolved {
            let Ok((lb, tgs)) = &r.found else { continue };
            for tg in tgs {
                let key = (env.to_owned(), region.clone(), tg.arn.clone());
                let cached = locked(&self.caches.health).get(&key, ANSWERS_FOR);
                let targets = match cached {
                    Some(t) => Ok(t),
                    None => match clients.elbv2.target_health(&tg.arn).await {
                        Ok(t) => {
                            let t = Arc::new(t);
                            locked(&self.caches.health).insert(key, t.clone(), ANSWERS_FOR);
                            Ok(t)
                        }
                        Err(e) => Err(e.to_string()),
                    },
                };
                let (targets, error) = match targets {
                    Ok(t) => {
                        let mut t = Vec::clone(&t);
                        for x in &mut t {
                            if x.zone.is_none() {
                                x.zone = zones.get(x.id.as_str()).map(|z| (*z).to_owned());
                            }
                        }
                        t.sort_by(|a, b| a.zone.cmp(&b.zone).then_with(|| a.id.cmp(&b.id)));
                        (t, None)
                    }
                    Err(e) => (Vec::new(), Some(e)),
                };
                out.push(TargetGroupHealth {
                    target_group: tg.name.clone(),
                    load_balancer: lb.name.clone(),
                    tier: r.spec.tier.clone(),
                    targets,
                    error,
                });
            }
        }
        (out, in_service)
    }

    /// The groups' instances in service and their private addresses, read now.
    pub(crate) async fn instances(
        &self,
        spec: &EnvironmentSpec,
    ) -> Result<(Vec<GroupInstance>, Vec<(String, String)>), AwsError> {
        let (clients, _) = self.clients(spec).await;
        let groups: Vec<String> = spec
            .autoscaling_groups
            .iter()
            .map(|g| g.name.as_str().to_owned())
            .collect();
        let instances = clients.autoscaling.in_service(&groups).await?;
        let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
        let addresses = if ids.is_empty() {
            Vec::new()
        } else {
            clients.ec2.private_addresses(&ids).await?
        };
        Ok((instances, addresses))
    }

    /// The SLOs counted from a load balancer, at `at` (Unix seconds): two `GetMetricData`
    /// calls for all of them (the burn windows; the days of each window length), through the
    /// same arithmetic as Prometheus's. One that cannot be read is failing, with the reason.
    pub(crate) async fn slo_statuses(
        &self,
        spec: &EnvironmentSpec,
        slos: &[&Slo],
        at: i64,
    ) -> Vec<SloStatus> {
        let resolved = match self.resolve(spec).await {
            Ok(r) => r,
            Err(e) => {
                let why = e.to_string();
                return slos
                    .iter()
                    .map(|s| domain::slo::failed(s, why.clone()))
                    .collect();
            }
        };
        // Each SLO's asks, or why it has none.
        let asks: Vec<Result<cw::SloAsks, String>> = slos
            .iter()
            .map(|s| {
                let Indicator::LoadBalancer { load_balancer, .. } = &s.indicator else {
                    return Err("not an SLO counted from a load balancer".to_owned());
                };
                let r = resolved
                    .iter()
                    .find(|r| &r.spec.name == load_balancer)
                    .ok_or_else(|| {
                        format!("`{load_balancer}` is not in monitoring.load_balancers")
                    })?;
                let d = r.dimensions()?;
                cw::slo_asks(s, &d.load_balancer).ok_or_else(|| "no queries".to_owned())
            })
            .collect();
        let burns_end = cw::burns_end(at);
        let burn_queries: Vec<MetricQuery> = asks
            .iter()
            .flatten()
            .flat_map(|a| a.burns.iter().cloned())
            .collect();
        let burns = self
            .metrics(spec, &burn_queries, burns_end - cw::burn_span(), burns_end)
            .await
            .map(|(s, _)| s);
        // The days calls: one per window length.
        let mut days: DaysAnswers = HashMap::new();
        for (s, a) in slos.iter().zip(&asks) {
            if a.is_err() || days.contains_key(&s.window_days) {
                continue;
            }
            let queries: Vec<MetricQuery> = slos
                .iter()
                .zip(&asks)
                .filter(|(o, _)| o.window_days == s.window_days)
                .filter_map(|(_, a)| a.as_ref().ok())
                .flat_map(|a| a.days.iter().cloned())
                .collect();
            let end = cw::days_end(at, s.window_days);
            let start = end - 2 * i64::from(s.window_days) * 86_400;
            let answer = self
                .metrics(spec, &queries, start, end)
                .await
                .map(|(s, _)| s)
                .map_err(|e| e.to_string());
            days.insert(s.window_days, (end, answer));
        }
        // Hand each SLO its share of the answers, in order.
        let mut burn_at = 0;
        let mut day_at: HashMap<u32, usize> = HashMap::new();
        slos.iter()
            .zip(asks)
            .map(|(s, a)| {
                let a = match a {
                    Ok(a) => a,
                    Err(why) => return domain::slo::failed(s, why),
                };
                let b = burn_at..burn_at + a.burns.len();
                burn_at = b.end;
                let at_day = day_at.entry(s.window_days).or_default();
                let d = *at_day..*at_day + a.days.len();
                *at_day = d.end;
                let (days_end, day_answer) = &days[&s.window_days];
                match (&burns, day_answer) {
                    (Ok(burns), Ok(daily)) => {
                        cw::slo_status(s, &burns[b], &daily[d], *days_end, burns_end)
                    }
                    (Err(e), _) => domain::slo::failed(s, e.to_string()),
                    (_, Err(e)) => domain::slo::failed(s, e.clone()),
                }
            })
            .collect()
    }
}

/// The target groups of `lb` the spec names (by name or ARN), else all of them; a name that
/// is not behind the load balancer is its error.
fn pick_target_groups(
    lb: &LoadBalancer,
    found: &FoundLoadBalancer,
    all: Vec<FoundTargetGroup>,
) -> Result<Vec<FoundTargetGroup>, String> {
    if lb.target_groups.is_empty() {
        return Ok(all);
    }
    lb.target_groups
        .iter()
        .map(|want| {
            all.iter()
                .find(|t| &t.name == want || &t.arn == want)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "target group `{want}` is not behind load balancer {} (behind it: {})",
                        found.name,
                        if all.is_empty() {
                            "none".to_owned()
                        } else {
                            all.iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use domain::change::{ChangeId, ChangeStatus};
    use domain::slo::SloState;

    use crate::auth::{Caller, RequestMeta};
    use crate::clock::Clock;
    use crate::testing::{TestEngine, SHOP};

    /// The shop with its availability SLO counted from its load balancer (no PromQL at all).
    fn shop_on_cloudwatch() -> Vec<(&'static str, &'static str)> {
        let mut files: Vec<(&str, &str)> = SHOP
            .iter()
            .copied()
            .filter(|(p, _)| !p.ends_with("slo.yaml"))
            .collect();
        files.push((
            "environments/shop/slo.yaml",
            "slos:
  - name: availability
    objective: 99.9
    window_days: 30
    load_balancer: shop-ext
monitoring:
  load_balancers:
    - name: shop-ext
      tier: web
      target_groups: [shop-web]
",
        ));
        files
    }

    async fn apply(t: &TestEngine, id: ChangeId) -> Result<i64, String> {
        t.drain().await;
        let run = t
            .engine
            .applies()
            .apply_change(&Caller::System, &RequestMeta::default(), id, None)
            .await
            .map_err(|e| e.to_string());
        t.drain().await;
        run
    }

    #[tokio::test]
    async fn a_load_balancer_slo_is_watched_and_gates_applies_like_a_promql_one() {
        let t = TestEngine::new(&shop_on_cloudwatch()).await;
        let lb = t.aws.add_load_balancer("shop-ext", &["shop-web"]);
        let d = [("LoadBalancer", lb.as_str())];
        let now = t.clock.now().timestamp();
        // A healthy day so far: 100,000 requests two hours ago, no 5XX (ALB sends none).
        t.aws
            .put_datapoint("RequestCount", &d, now - 7_200, 100_000.0);

        let out = t.sync().await;
        let first = *out.changes.last().unwrap();
        apply(&t, first)
            .await
            .expect("a healthy budget lets it apply");
        let report = t
            .engine
            .slo()
            .slo_report(&Caller::System, &"shop".parse().unwrap(), None)
            .await
            .unwrap();
        assert_eq!(report.error, None);
        let s = &report.slos[0];
        assert_eq!(s.state, SloState::Ok, "{s:?}");
        let b = s.budget.unwrap();
        assert_eq!((b.total_events, b.spent_events), (100_000.0, 0.0));

        let sha = t.edit(
            "environments/shop/autoscaling.yaml",
            "    max: 4\n",
            "    max: 6\n",
            "Up to six web servers",
        );
        t.sync().await;
        let second = t.change_for("shop", &sha).await;
        apply(&t, second).await.expect("applies");
        assert_eq!(t.change(second).await.status, ChangeStatus::Applied);

        // Then half of 1,000 requests fail (400 from the targets, 100 from the load
        // balancer): 500× the budget over 5 minutes and an hour, a page alert.
        t.aws.put_datapoint("RequestCount", &d, now + 1, 1_000.0);
        t.aws
            .put_datapoint("HTTPCode_Target_5XX_Count", &d, now + 1, 400.0);
        t.aws
            .put_datapoint("HTTPCode_ELB_5XX_Count", &d, now + 1, 100.0);
        t.advance(chrono::Duration::seconds(61));
        t.drain().await;
        assert_eq!(t.change(second).await.status, ChangeStatus::Degraded);

        // Minutes later the window holds it too: 500 failed of 101,000 against 101 allowed,
        // and the gate holds the next change to emergencies.
        t.advance(chrono::Duration::minutes(6));
        let sha = t.edit(
            "environments/shop/autoscaling.yaml",
            "    desired: 2\n",
            "    desired: 3\n",
            "Three web servers",
        );
        t.sync().await;
        let third = t.change_for("shop", &sha).await;
        let refused = apply(&t, third).await.unwrap_err();
        assert!(
            refused.contains("the availability error budget of shop is spent (500 failed requests of 101 allowed over 30 days, -395.0 % left)"),
            "{refused}"
        );
        // Every figure came from CloudWatch: Prometheus was never asked.
        assert!(t.aws.calls("GetMetricData") > 0);
    }

    #[tokio::test]
    async fn one_page_view_is_one_get_metric_data_call_and_the_next_is_none() {
        let t = TestEngine::new(&shop_on_cloudwatch()).await;
        let lb = t.aws.add_load_balancer("shop-ext", &["shop-web"]);
        let now = t.clock.now().timestamp();
        let now = now - now % 60;
        let d = [("LoadBalancer", lb.as_str())];
        // Requests two and four minutes ago; none three minutes ago: a gap, not a zero.
        t.aws.put_datapoint("RequestCount", &d, now - 240, 600.0);
        t.aws.put_datapoint("RequestCount", &d, now - 120, 1_200.0);
        t.aws.put_datapoint(
            "CPUUtilization",
            &[("DBInstanceIdentifier", "shop-db")],
            now - 120,
            37.5,
        );
        t.sync().await;
        let env = "shop".parse().unwrap();
        let r = t
            .engine
            .slo()
            .monitoring(&Caller::System, &env, "1h", None)
            .await
            .unwrap();
        assert_eq!(t.aws.calls("GetMetricData"), 1);
        // 6 load balancer charts, 2 of its target group, 9 of the database.
        assert_eq!(r.cloudwatch_queries, 17);
        let lb = &r.load_balancers[0];
        assert_eq!((lb.name.as_str(), lb.error.as_deref()), ("shop-ext", None));
        assert_eq!(lb.charts[0].title, "Requests");
        assert_eq!(
            lb.charts[0].points,
            vec![(now - 240, 10.0), (now - 120, 20.0)]
        );
        let db = &r.databases[0];
        assert_eq!(db.charts.len(), 8, "no replica lag on a primary");
        assert_eq!(db.charts[0].points, vec![(now - 120, 37.5)]);
        // Another viewer within the half minute: the same answer, no call.
        t.engine
            .slo()
            .monitoring(&Caller::System, &env, "1h", None)
            .await
            .unwrap();
        assert_eq!(t.aws.calls("GetMetricData"), 1);

        // Denied: each chart says so with the IAM action; the page still answers.
        t.aws.deny("GetMetricData");
        let r = t
            .engine
            .slo()
            .monitoring(&Caller::System, &env, "6h", None)
            .await
            .unwrap();
        let e = r.databases[0].charts[0].error.as_deref().unwrap();
        assert!(e.contains("GetMetricData"), "{e}");
    }
}
