//! SLO status: per environment, each SLO's objective, error budget in requests, burn rates and
//! alert state, from Prometheus.

use domain::slo::{Severity, SloReport, SloStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::load_slo;
use crate::components::chart::{utc_time, ChartSpec, Frame, Series, TimeChart};
use crate::components::{EnvTabs, ErrorBox};
use crate::resource::resource;

/// `259,200` for people.
pub fn grouped(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn percent(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$} %"))
        .unwrap_or_else(|| "no traffic".into())
}

#[component]
pub fn AlertBadge(severity: Severity) -> impl IntoView {
    let label = match severity {
        Severity::Ok => "ok",
        Severity::Ticket => "ticket",
        Severity::Page => "page",
    };
    view! { <span class=format!("badge alert-{label}")>{label}</span> }
}

/// The budget left as a bar: green while some is left, red past zero.
#[component]
fn BudgetBar(remaining_percent: f64) -> impl IntoView {
    let left = remaining_percent.clamp(0.0, 100.0);
    let class = if remaining_percent <= 0.0 {
        "spent"
    } else if remaining_percent < 25.0 {
        "low"
    } else {
        "ok"
    };
    view! {
        <svg class=format!("budget-bar {class}") viewBox="0 0 100 6" preserveAspectRatio="none" role="img"
            aria-label=format!("{remaining_percent:.1} % of the error budget left")>
            <rect x="0" y="0" width="100" height="6" class="track" />
            <rect x="0" y="0" width=format!("{left:.2}") height="6" class="fill" />
        </svg>
    }
}

/// The budget left over the past window, a point a day; the zero line is where it is spent.
#[component]
fn BudgetChart(points: Vec<(i64, f64)>) -> impl IntoView {
    let start = points.first().map_or(0, |p| p.0);
    let (end, now) = points.last().copied().unwrap_or((start, 0.0));
    let lo = points.iter().map(|p| p.1).fold(0.0_f64, f64::min);
    let titles = points
        .iter()
        .map(|(t, v)| format!("{}: {v:.1} % left", utc_time(*t, "%Y-%m-%d")))
        .collect();
    let spec = ChartSpec::new(Frame::new(320.0, 90.0, 16.0), (start, end), (lo, 100.0))
        .value_labels(0.0, 3.0, vec![(100.0, "100 %".into()), (0.0, "0".into())])
        .series(Series::line("series", points).dots(2.0, titles))
        .empty("No budget history yet.");
    view! {
        <TimeChart spec class="line-chart budget-history" label=format!("budget left: {now:.1} % now")>
            <figcaption class="muted">"Budget left over the past window"</figcaption>
        </TimeChart>
    }
}

#[component]
fn SloCard(s: SloStatus) -> impl IntoView {
    let id = format!("slo-{}", s.name);
    let labelled = id.clone();
    view! {
        <section class="card slo" aria-labelledby=labelled>
            <h2 id=id>{s.name.clone()} " " <AlertBadge severity=s.alert /></h2>
            <p>"Objective " <strong>{format!("{} %", s.objective_percent)}</strong> " over " {s.window_days} " days; now "
                <strong>{percent(s.sli_percent, 3)}</strong> " (error ratio " {s.error_ratio.map(|r| format!("{:.4} %", r * 100.0)).unwrap_or_else(|| "—".into())} ")."</p>
            {s.alert_rule.map(|r| view! { <p class="notice error" role="alert">"Alert: burning " {r} "."</p> })}
            {s.budget.filter(|b| b.remaining_events <= 0.0).map(|_| view! {
                <p class="notice error" role="alert">"The error budget is spent."
                    {(s.name == "availability").then_some(" Under the error-budget policy tierdeck refuses applies other than emergencies until it recovers.")}</p>
            })}
            {match s.budget {
                Some(b) => view! {
                    <BudgetBar remaining_percent=b.remaining_percent />
                    <dl class="facts">
                        <dt>"Requests in the window"</dt><dd>{grouped(b.total_events)}</dd>
                        <dt>"Failures allowed"</dt><dd>{grouped(b.allowed_events)}</dd>
                        <dt>"Failures so far"</dt><dd>{grouped(b.spent_events)}</dd>
                        <dt>"Budget left"</dt><dd>{grouped(b.remaining_events)} " (" {format!("{:.1} %", b.remaining_percent)} ")"</dd>
                    </dl>
                }.into_any(),
                None => view! { <p class="muted">"No requests in the window: no budget to show."</p> }.into_any(),
            }}
            <BudgetChart points=s.budget_history.clone() />
            <div class="table-wrap">
                <table class="burns">
                    <thead><tr><th scope="col">"Window"</th>{s.burns.iter().map(|b| view! { <th scope="col">{b.window.clone()}</th> }).collect_view()}</tr></thead>
                    <tbody><tr><th scope="row">"Burn rate"</th>{s.burns.iter().map(|b| view! {
                        <td class="num">{b.rate.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "—".into())}</td>
                    }).collect_view()}</tr></tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn Report(report: SloReport) -> impl IntoView {
    let when = utc_time(report.at_unix, "%Y-%m-%d %H:%M UTC");
    view! {
        {report.error.map(|e| view! { <p class="notice error" role="alert">"No SLO numbers: " {e}</p> })}
        {(report.slos.is_empty()).then(|| view! { <p class="muted">"No SLOs to show."</p> })}
        <div class="cards">{report.slos.into_iter().map(|s| view! { <SloCard s /> }).collect_view()}</div>
        <p class="muted">"As of " {when} "; " {report.queries} " Prometheus queries (answers are reused for a few seconds). Page: 14.4× the budget over 1 h and 5 m, or 6× over 6 h and 30 m; ticket: 1× over 3 d and 6 h."</p>
    }
}

#[component]
pub fn Slo() -> impl IntoView {
    let query = use_query_map();
    let chosen = move || query.with(|q| q.get("env").filter(|s| !s.is_empty()));
    let report = resource(chosen, |env| async move {
        match env {
            Some(e) => load_slo(e).await.map(Some),
            None => Ok(None),
        }
    });
    view! {
        <Title text="SLO" />
        <h1>"SLO"</h1>
        <EnvTabs page="/slo" chosen={ None::<String> } />
        <Suspense fallback=|| view! { <p aria-busy="true">"Asking Prometheus…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(None) => view! { <p class="muted">"Choose an environment."</p> }.into_any(),
                    Ok(Some(r)) => view! { <Report report=r /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
