//! Cost: an environment's monthly band with its weekly chart and what ran, and a change's cost
//! before and after with the cost policy's verdict.

use chrono::DateTime;
use domain::cost::{money, money_delta, Band, ChangeCostReport, CostReport, HourCost};
use leptos::prelude::*;

use crate::api::load_cost;
use crate::components::chart::step_path;
use crate::components::{short, Loaded};
use crate::resource::resource;

const W: f64 = 720.0;
const H: f64 = 140.0;
const PAD: f64 = 28.0;

fn band_row(label: String, b: Option<Band>, currency: &str) -> impl IntoView {
    let cells = match b {
        Some(b) => vec![
            money(b.floor, currency),
            money(b.expected, currency),
            money(b.ceiling, currency),
        ],
        None => vec!["unpriced".into(), "—".into(), "—".into()],
    };
    view! {
        <tr>
            <th scope="row">{label}</th>
            {cells.into_iter().map(|c| view! { <td class="num">{c}</td> }).collect_view()}
        </tr>
    }
}

/// The hourly cost band of one week, as steps: floor, expected and ceiling per hour.
#[component]
fn WeekChart(week: Vec<HourCost>, currency: String) -> impl IntoView {
    if week.is_empty() {
        return view! { <p class="muted">"No hours to show."</p> }.into_any();
    }
    let top = week
        .iter()
        .map(|h| h.band.ceiling)
        .fold(0.0_f64, f64::max)
        .max(0.01);
    let n = week.len() as f64;
    let x_of = |i: usize| PAD + i as f64 / n * (W - 2.0 * PAD);
    let y_of = |v: f64| H - PAD - v / top * (H - 2.0 * PAD);
    let series = |f: &dyn Fn(&Band) -> f64| -> Vec<(f64, f64)> {
        week.iter()
            .enumerate()
            .map(|(i, h)| (x_of(i), y_of(f(&h.band))))
            .collect()
    };
    let end = W - PAD;
    let ceiling = step_path(&[series(&|b| b.ceiling)], end);
    let expected = step_path(&[series(&|b| b.expected)], end);
    let floor = step_path(&[series(&|b| b.floor)], end);
    let days = week
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 24 == 0)
        .map(|(i, h)| {
            let label = DateTime::from_timestamp(h.at_unix, 0)
                .map(|t| t.format("%a %d").to_string())
                .unwrap_or_default();
            let x = x_of(i);
            view! {
                <line class="day" x1=format!("{x:.1}") x2=format!("{x:.1}") y1=format!("{PAD}") y2=format!("{:.1}", H - PAD) />
                <text class="tick" x=format!("{:.1}", x + 2.0) y=format!("{H}")>{label}</text>
            }
        })
        .collect_view();
    // Hover values: one invisible column per hour.
    let cols = week
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let when = DateTime::from_timestamp(h.at_unix, 0)
                .map(|t| t.format("%a %H:00 UTC").to_string())
                .unwrap_or_default();
            let title = format!(
                "{when}: {} – {} an hour (expected {})",
                money(h.band.floor, &currency),
                money(h.band.ceiling, &currency),
                money(h.band.expected, &currency)
            );
            let x = x_of(i);
            view! {
                <rect class="hour" x=format!("{x:.1}") y=format!("{PAD}") width=format!("{:.2}", (W - 2.0 * PAD) / n) height=format!("{:.1}", H - 2.0 * PAD)><title>{title}</title></rect>
            }
        })
        .collect_view();
    let label = format!(
        "Hourly cost over the week from {}: at most {} an hour",
        DateTime::from_timestamp(week[0].at_unix, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        money(top, &currency)
    );
    view! {
        <figure class="capacity-chart cost-chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=label>
                <line class="axis" x1=format!("{PAD}") x2=format!("{end}") y1=format!("{:.1}", H - PAD) y2=format!("{:.1}", H - PAD) />
                <text class="tick" x="2" y=format!("{:.1}", y_of(top) + 4.0)>{money(top, &currency)}</text>
                <text class="tick" x="2" y=format!("{:.1}", H - PAD + 4.0)>"0"</text>
                {days}
                <path class="max" d=ceiling />
                <path class="desired" d=expected />
                <path class="min" d=floor />
                {cols}
            </svg>
            <figcaption>
                <span class="key max">"— ceiling (max)"</span> " "
                <span class="key desired">"— expected"</span> " "
                <span class="key min">"— floor (min)"</span> " · per hour, UTC"
            </figcaption>
        </figure>
    }
    .into_any()
}

fn report_view(r: CostReport) -> impl IntoView {
    let c = r.cost;
    let cur = c.currency.clone();
    let month = c.period_from.format("%Y-%m").to_string();
    let rows = c
        .groups
        .iter()
        .map(|g| {
            let label = format!(
                "autoscaling group {} ({})",
                g.group,
                g.instance_type
                    .clone()
                    .unwrap_or_else(|| "type unknown".into())
            );
            band_row(label, g.monthly, &cur)
        })
        .collect_view();
    let dbs = c
        .databases
        .iter()
        .map(|d| {
            let label = format!(
                "database {} ({} {}, {} GB)",
                d.identifier,
                d.instance_class.clone().unwrap_or_default(),
                if d.multi_az { "Multi-AZ" } else { "Single-AZ" },
                d.allocated_storage_gb.unwrap_or_default()
            );
            band_row(label, d.monthly().map(Band::flat), &cur)
        })
        .collect_view();
    let ran = r
        .ran
        .iter()
        .map(|x| {
            let figure = match (x.cost, x.monthly) {
                _ if x.covered_hours == 0.0 => "no history yet".to_owned(),
                (Some(c), Some(m)) => format!(
                    "{:.1} instance-hours over {:.0} h: {} ({} per 730 h)",
                    x.instance_hours,
                    x.covered_hours,
                    money(c, &cur),
                    money(m, &cur)
                ),
                _ => format!(
                    "{:.1} instance-hours over {:.0} h (unpriced)",
                    x.instance_hours, x.covered_hours
                ),
            };
            view! { <li>{x.group.clone()} ": " {figure}</li> }
        })
        .collect_view();
    view! {
        <p class="muted">"The spec of " {r.spec_of} " " <code>{short(&r.commit)}</code> ", priced for " {month}
            " (" {format!("{} h", c.period_hours)} ") and scaled to AWS's 730-hour month. Computed in " {r.computed_ms} " ms."</p>
        <table class="cost">
            <thead><tr><th scope="col">"Monthly"</th><th scope="col">"floor (min)"</th><th scope="col">"expected"</th><th scope="col">"ceiling (max)"</th></tr></thead>
            <tbody>
                {rows}
                {dbs}
                {band_row("total".into(), Some(c.monthly), &cur)}
                {band_row("without the schedules (flat min / max)".into(), Some(c.flat_monthly), &cur)}
            </tbody>
        </table>
        <p class="saving">"The schedules save " {money_delta(c.saving.ceiling, &cur)} " at the ceiling and "
            {money_delta(c.saving.expected, &cur)} " expected (" {money_delta(c.saving.floor, &cur)} " at the floor) against flat groups."</p>
        {(!c.unpriced.is_empty()).then(|| view! {
            <div class="notice" role="status"><p>"Not in the total, unpriced:"</p>
                <ul>{c.unpriced.iter().map(|u| view! { <li>{u.clone()}</li> }).collect_view()}</ul></div>
        })}
        {(!r.warnings.is_empty()).then(|| view! {
            <ul class="warnings">{r.warnings.iter().map(|w| view! { <li>{w.clone()}</li> }).collect_view()}</ul>
        })}
        <h3>"One week, hour by hour"</h3>
        <WeekChart week=c.week currency=cur.clone() />
        <h3>"What ran (last " {r.ran_days} " days, from the scaling history)"</h3>
        <ul class="ran">{ran}</ul>
        <p class="muted">"Prices: " {c.sources.join("; ")}</p>
    }
}

/// The environment page's cost section: loaded on its own, so AWS reads never hold up the page.
#[component]
pub fn EnvironmentCost(env: String) -> impl IntoView {
    let report = resource(move || env.clone(), load_cost);
    view! {
        <section class="card" aria-labelledby="cost-h">
            <h2 id="cost-h">"Cost per month"</h2>
            <Loaded resource=report loading="Pricing…" let:r>
                {report_view(r)}
            </Loaded>
        </section>
    }
}

/// The change page's cost section: monthly before and after, per resource, and the verdict.
#[component]
pub fn ChangeCost(report: ChangeCostReport) -> impl IntoView {
    let cur = report.cost.currency.clone();
    let c = &report.cost;
    let before = c
        .before
        .map(|b| b.text(&cur))
        .unwrap_or_else(|| "nothing (never applied)".into());
    let parts = report
        .parts
        .iter()
        .filter(|p| p.before != p.after)
        .map(|p| {
            let show = |b: &Option<Band>| b.map(|b| b.text(&cur)).unwrap_or_else(|| "—".into());
            view! { <li><strong>{p.resource.clone()}</strong> ": " {show(&p.before)} " → " {show(&p.after)}</li> }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="cost-h">
            <h2 id="cost-h">"Cost per month"</h2>
            {report.verdict.blocked.clone().map(|why| view! {
                <p class="notice error" role="alert">"Blocked by the cost policy: " {why}</p>
            })}
            {report.verdict.unchecked.clone().map(|why| view! {
                <p class="notice error" role="alert">"Held by the cost policy: " {why}</p>
            })}
            {report.verdict.extra_approval.clone().map(|why| view! {
                <p class="notice" role="status">{why}</p>
            })}
            <p class="cost-delta">"Before: " {before} <br/> "After: " {c.after.text(&cur)} <br/>
                "Difference: expected " <strong>{money_delta(c.delta.expected, &cur)}</strong>
                ", ceiling " <strong>{money_delta(c.delta.ceiling, &cur)}</strong>
                ", floor " {money_delta(c.delta.floor, &cur)} "."</p>
            {if c.moves() {
                view! { <ul class="edits">{parts}</ul> }.into_any()
            } else {
                view! { <p class="muted">"This change does not move the monthly cost."</p> }.into_any()
            }}
            {(!c.unpriced.is_empty()).then(|| view! {
                <div class="notice" role="status"><p>"Unpriced (not in the figures):"</p>
                    <ul>{c.unpriced.iter().map(|u| view! { <li>{u.clone()}</li> }).collect_view()}</ul></div>
            })}
            {(!report.warnings.is_empty()).then(|| view! {
                <ul class="warnings">{report.warnings.iter().map(|w| view! { <li>{w.clone()}</li> }).collect_view()}</ul>
            })}
            <p class="muted">"Prices: " {report.sources.join("; ")}</p>
        </section>
    }
}
