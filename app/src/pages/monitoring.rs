//! Monitoring: each tier's CPU, memory, disk and network, and the service's requests, errors
//! and latency, as line charts drawn on the server (values on hover through `<title>`).

use domain::monitoring::{Chart, MonitoringReport, RANGES};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::load_monitoring;
use crate::components::{EnvTabs, ErrorBox};

const RANGE_LABELS: &[&str] = &["1h", "6h", "24h", "7d"];
const W: f64 = 320.0;
const H: f64 = 110.0;
const PAD: f64 = 18.0;

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| t.format("%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

#[component]
fn LineChart(chart: Chart, start: i64, end: i64) -> impl IntoView {
    let span = (end - start).max(1) as f64;
    let top = chart.points.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let x_of = |t: i64| PAD + (t - start) as f64 / span * (W - 2.0 * PAD);
    let y_of = |v: f64| H - PAD - v / top * (H - 2.0 * PAD);
    let d = chart
        .points
        .iter()
        .enumerate()
        .map(|(i, (t, v))| {
            format!(
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                x_of(*t),
                y_of(*v)
            )
        })
        .collect::<String>();
    let unit = chart.unit;
    let last = chart.points.last().map(|(_, v)| unit.format(*v));
    let dots = chart
        .points
        .iter()
        .map(|(t, v)| {
            let title = format!("{}: {}", time(*t), unit.format(*v));
            view! { <circle cx=format!("{:.1}", x_of(*t)) cy=format!("{:.1}", y_of(*v)) r="2"><title>{title}</title></circle> }
        })
        .collect_view();
    let label = format!(
        "{}: {}",
        chart.title,
        last.clone().unwrap_or_else(|| "no data".into())
    );
    view! {
        <figure class="line-chart">
            <figcaption><strong>{chart.title.clone()}</strong> " " <span class="muted">{last.unwrap_or_else(|| "no data".into())}</span></figcaption>
            {chart.error.map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=label>
                <line class="axis" x1=format!("{PAD}") x2=format!("{}", W - PAD) y1=format!("{:.1}", H - PAD) y2=format!("{:.1}", H - PAD) />
                <text class="tick" x="0" y="10">{unit.format(top)}</text>
                <text class="tick" x=format!("{PAD}") y=format!("{H}")>{time(start)}</text>
                <text class="tick end" x=format!("{}", W - PAD) y=format!("{H}")>{time(end)}</text>
                <path class="series" d=d />
                {dots}
            </svg>
        </figure>
    }
}

#[component]
fn Report(r: MonitoringReport) -> impl IntoView {
    let (start, end) = (r.start, r.end);
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
    let report = Resource::new(chosen, |(env, range)| async move {
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
