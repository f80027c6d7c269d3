//! Monitoring: each tier's CPU, memory, disk and network, and the service's requests, errors
//! and latency, as line charts drawn on the server (values on hover through `<title>`).

use domain::monitoring::{Chart, MonitoringReport, RANGES};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::load_monitoring;
use crate::components::chart::{top_of, utc_time, ChartSpec, Frame, Series, TimeChart};
use crate::components::{EnvTabs, ErrorBox};
use crate::resource::resource;

const RANGE_LABELS: &[&str] = &["1h", "6h", "24h", "7d"];
const FRAME: Frame = Frame::new(320.0, 110.0, 18.0);

fn time(t: i64) -> String {
    utc_time(t, "%m-%d %H:%M UTC")
}

#[component]
fn LineChart(chart: Chart, start: i64, end: i64) -> impl IntoView {
    let unit = chart.unit;
    let top = top_of(chart.points.iter().map(|(_, v)| *v), 1.1);
    let last = chart
        .points
        .last()
        .map(|(_, v)| unit.format(*v))
        .unwrap_or_else(|| "no data".into());
    let titles = chart
        .points
        .iter()
        .map(|(t, v)| format!("{}: {}", time(*t), unit.format(*v)))
        .collect();
    let label = format!("{}: {last}", chart.title);
    let spec = ChartSpec::new(FRAME, (start, end), (0.0, top))
        .value_labels(0.0, -8.0, vec![(top, unit.format(top))])
        .time_labels(time(start), time(end))
        .series(Series::line("series", chart.points).dots(2.0, titles));
    view! {
        <TimeChart spec class="line-chart" label>
            <figcaption><strong>{chart.title}</strong> " " <span class="muted">{last}</span></figcaption>
            {chart.error.map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
        </TimeChart>
    }
}

#[component]
fn Report(r: MonitoringReport) -> impl IntoView {
    let (start, end) = (r.start_unix, r.end_unix);
    view! {
        {r.error.map(|e| view! { <p class="notice error" role="alert">"No monitoring data: " {e}</p> })}
        {(!r.service.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="service-h">
                <h2 id="service-h">"Service"</h2>
                <div class="charts">{r.service.into_iter().map(|chart| view! { <LineChart chart start end /> }).collect_view()}</div>
            </section>
        })}
        {r.tiers.into_iter().map(|t| {
            let id = format!("tier-{}", t.tier);
            let labelled = id.clone();
            view! {
                <section class="card" aria-labelledby=labelled>
                    <h2 id=id>"Tier " {t.tier.clone()}</h2>
                    <div class="charts">{t.charts.into_iter().map(|chart| view! { <LineChart chart start end /> }).collect_view()}</div>
                </section>
            }
        }).collect_view()}
        <p class="muted">{r.queries} " Prometheus range queries for this view; answers are reused for a few seconds."</p>
    }
}

#[component]
pub fn Monitoring() -> impl IntoView {
    let query = use_query_map();
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
        match env {
            Some(e) => load_monitoring(e, range).await.map(Some),
            None => Ok(None),
        }
    });
    view! {
        <Title text="Monitoring" />
        <h1>"Monitoring"</h1>
        <EnvTabs page="/monitoring" chosen=Signal::derive(move || chosen().0) ranges=RANGE_LABELS />
        <Suspense fallback=|| view! { <p aria-busy="true">"Asking Prometheus…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(None) => view! { <p class="muted">"Choose an environment."</p> }.into_any(),
                    Ok(Some(r)) => view! { <Report r /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
