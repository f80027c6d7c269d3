//! Monitoring: each tier's CPU, memory, disk and network, the service's requests, errors and
//! latency, each load balancer's and database's CloudWatch metrics and the target groups'
//! health, as line charts and tables drawn on the server, in the environment's time zone.

use domain::cloudwatch::{ResourceCharts, TargetGroupHealth};
use domain::monitoring::{Chart, MonitoringReport, RANGES};
use domain::spec::TimeZone;
use domain::time::{self, Style, TimeTick};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::load_monitoring;
use crate::components::chart::{gap_for_step, ChartSpec, Hover, Series, TimeChart};
use crate::components::{choose_environment, page_zone, user_zone, EnvTabs, ErrorBox, ZoneNote};
use crate::resource::resource;

const RANGE_LABELS: &[&str] = &["1h", "6h", "24h", "7d", "30d"];
/// A chart's plot height, in pixels.
const HEIGHT: f64 = 120.0;

#[component]
fn LineChart(
    chart: Chart,
    start: i64,
    end: i64,
    step: i64,
    zone: TimeZone,
    ticks: Vec<TimeTick>,
) -> impl IntoView {
    let unit = chart.unit;
    let axis = unit.axis(chart.points.iter().map(|(_, v)| *v));
    let last = chart
        .points
        .last()
        .map(|(_, v)| unit.format(*v))
        .unwrap_or_else(|| "no data".into());
    let hovers = chart
        .points
        .iter()
        .map(|(t, v)| Hover {
            at: *t,
            text: format!(
                "{} · {}",
                time::format(*t, zone, Style::Short),
                unit.format(*v)
            ),
            values: vec![("series", *v)],
        })
        .collect();
    let label = format!("{}: {last}", chart.title);
    let mut line = Series::line("series", chart.points);
    // CloudWatch's points are a period apart, Prometheus's a step.
    let step = chart.period.unwrap_or(step);
    if step > 0 {
        line = line.gaps_over(gap_for_step(step));
    }
    let spec = ChartSpec::new(HEIGHT, (start, end), axis)
        .value_labels(|v| unit.tick(v, &axis))
        .time_ticks(ticks)
        .series(line)
        .hovers(hovers, false);
    view! {
        <TimeChart spec class="line-chart" label>
            <figcaption><strong>{chart.title}</strong> " " <span class="muted">{last}</span></figcaption>
            {chart.error.map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
        </TimeChart>
    }
}

#[component]
fn Report(r: MonitoringReport, user: Option<TimeZone>) -> impl IntoView {
    let (start, end, step) = (r.start_unix, r.end_unix, r.step);
    let zone = page_zone(user, &r.time_zone);
    let ticks = time::time_ticks(start, end, zone);
    let chart = move |chart: Chart| {
        view! { <LineChart chart start end step zone ticks=ticks.clone() /> }.into_any()
    };
    view! {
        <ZoneNote zone at=end chosen=user.is_some() />
        {r.error.map(|e| view! { <p class="notice error" role="alert">"No monitoring data: " {e}</p> })}
        {(!r.service.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="service-h">
                <h2 id="service-h">"Service"</h2>
                <div class="charts">{r.service.into_iter().map(chart.clone()).collect_view()}</div>
            </section>
        })}
        {r.tiers.into_iter().map(|t| {
            let id = format!("tier-{}", t.tier);
            let labelled = id.clone();
            view! {
                <section class="card" aria-labelledby=labelled>
                    <h2 id=id>"Tier " {t.tier.clone()}</h2>
                    <div class="charts">{t.charts.into_iter().map(chart.clone()).collect_view()}</div>
                </section>
            }
        }).collect_view()}
        {resources("lb", "Load balancer", r.load_balancers, chart.clone())}
        {(!r.target_health.is_empty()).then(|| view! { <TargetHealth groups=r.target_health /> })}
        {resources("db", "Database", r.databases, chart.clone())}
        <p class="muted">{r.queries} " Prometheus range queries for this view; answers are reused for a few seconds."
            {(r.cloudwatch_queries > 0).then(|| format!(
                " {} CloudWatch metrics in {} GetMetricData call{} (none when the answer of the last 30 seconds was reused).",
                r.cloudwatch_queries, r.cloudwatch_calls, if r.cloudwatch_calls == 1 { "" } else { "s" }
            ))}</p>
    }
}

/// A card per load balancer or database, its CloudWatch charts or why it has none.
fn resources(
    prefix: &'static str,
    kind: &'static str,
    list: Vec<ResourceCharts>,
    chart: impl Fn(Chart) -> AnyView + Clone + 'static,
) -> impl IntoView {
    list.into_iter()
        .map(|r| {
            let id = format!("{prefix}-{}", r.name);
            let labelled = id.clone();
            let chart = chart.clone();
            view! {
                <section class="card" aria-labelledby=labelled>
                    <h2 id=id>{kind} " " {r.name.clone()}
                        {r.tier.clone().map(|t| view! { <span class="muted">" (tier " {t} ")"</span> })}
                        <span class="muted">" · CloudWatch"</span></h2>
                    {r.error.map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                    <div class="charts">{r.charts.into_iter().map(chart).collect_view()}</div>
                </section>
            }
        })
        .collect_view()
}

/// Each target group's targets: instance, zone, state and reason.
#[component]
pub fn TargetHealth(groups: Vec<TargetGroupHealth>) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="targets-h">
            <h2 id="targets-h">"Target health"</h2>
            {groups.into_iter().map(|g| {
                let healthy = g.healthy();
                let total = g.targets.len();
                view! {
                    <h3>"Target group " {g.target_group.clone()} <span class="muted">" behind " {g.load_balancer.clone()}
                        " · " {format!("{healthy} of {total} healthy")}</span></h3>
                    {g.error.clone().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                    {(g.error.is_none()).then(|| view! {
                        <div class="table-wrap"><table>
                            <thead><tr><th scope="col">"Target"</th><th scope="col">"Zone"</th><th scope="col">"State"</th><th scope="col">"Reason"</th></tr></thead>
                            <tbody>{g.targets.iter().map(|t| {
                                let class = if t.healthy() { "target-healthy" } else { "target-unhealthy" };
                                view! {
                                    <tr class=class>
                                        <th scope="row"><code>{t.id.clone()}</code>{t.port.map(|p| format!(":{p}"))}</th>
                                        <td>{t.zone.clone().unwrap_or_else(|| "—".into())}</td>
                                        <td>{t.state.clone()}</td>
                                        <td>{t.reason.clone().unwrap_or_default()}
                                            {t.description.clone().map(|d| view! { <span class="muted">" " {d}</span> })}</td>
                                    </tr>
                                }
                            }).collect_view()}</tbody>
                        </table></div>
                    })}
                }
            }).collect_view()}
        </section>
    }
}

#[component]
pub fn Monitoring() -> impl IntoView {
    let query = use_query_map();
    let user = user_zone();
    let chosen = move || {
        query.with(|q| {
            let range = q
                .get("range")
                .filter(|r| RANGES.iter().any(|(l, ..)| l == r))
                .unwrap_or_else(|| "1h".into());
            (q.get("env").filter(|s| !s.is_empty()), range)
        })
    };
    let report = resource(chosen, |(env, range)| async move {
        let (names, env) = choose_environment(env).await?;
        let report = match env {
            Some(e) => Some(load_monitoring(e, range).await?),
            None => None,
        };
        Ok::<_, ServerFnError>((names, report))
    });
    view! {
        <Title text="Monitoring" />
        <h1>"Monitoring"</h1>
        <Suspense fallback=|| view! { <p aria-busy="true">"Asking Prometheus and CloudWatch…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((_, None)) => view! { <p class="muted">"No environments yet: they appear after the spec repository's first fetch."</p> }.into_any(),
                    Ok((names, Some(r))) => view! {
                        <EnvTabs page="/monitoring" names chosen=r.environment.clone() ranges=RANGE_LABELS range=r.range.clone() />
                        <Report r user />
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
