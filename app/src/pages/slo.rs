//! SLO status: per environment, each SLO's badge (spent, burning, ok, no data), objective,
//! error budget in requests, burn rates and alert, from Prometheus.

use domain::axis::Axis;
use domain::slo::{Severity, SloReport, SloState, SloStatus};
use domain::spec::TimeZone;
use domain::time::{self, Style};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::load_slo;
use crate::components::chart::{gap_for_step, ChartSpec, Hover, Series, TimeChart};
use crate::components::{choose_environment, page_zone, user_zone, EnvTabs, ErrorBox, ZoneNote};
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

/// An SLO's badge: spent, burning, ok or no data (see `domain::slo::state`), the same words
/// and colours on every page and card.
#[component]
pub fn SloBadge(state: SloState, #[prop(optional)] alert: Option<Severity>) -> impl IntoView {
    let title = match (state, alert) {
        (SloState::Spent, _) => "The error budget is spent".to_owned(),
        (SloState::Burning, Some(a)) => format!("A {} alert burns the budget", a.as_str()),
        (SloState::Burning, None) => "An alert burns the budget".to_owned(),
        (SloState::Ok, _) => "Budget left, no alert".to_owned(),
        (SloState::NoData, _) => "No requests in the window".to_owned(),
    };
    view! { <span class=format!("badge {}", state.class()) title=title>{state.label()}</span> }
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
fn BudgetChart(points: Vec<(i64, f64)>, zone: TimeZone) -> impl IntoView {
    let start = points.first().map_or(0, |p| p.0);
    let (end, now) = points.last().copied().unwrap_or((start, 0.0));
    let axis = Axis::for_values(points.iter().map(|p| p.1).chain([100.0]), 1.0, 0.0);
    let hovers = points
        .iter()
        .map(|(t, v)| Hover {
            at: *t,
            text: format!("{} · {v:.1} % left", time::format(*t, zone, Style::Date)),
            values: vec![("series", *v)],
        })
        .collect();
    let spec = ChartSpec::new(90.0, (start, end), axis)
        .value_labels(|v| format!("{v:.d$} %", d = axis.decimals(1.0)))
        .time_ticks(time::time_ticks(start, end, zone))
        .series(Series::line("series", points).gaps_over(gap_for_step(86_400)))
        .hovers(hovers, false)
        .empty("No budget history yet.");
    view! {
        <TimeChart spec class="line-chart budget-history" label=format!("budget left: {now:.1} % now")>
            <figcaption class="muted">"Budget left over the past window"</figcaption>
        </TimeChart>
    }
}

#[component]
fn SloCard(s: SloStatus, zone: TimeZone) -> impl IntoView {
    let id = format!("slo-{}", s.name);
    let labelled = id.clone();
    view! {
        <section class="card slo" aria-labelledby=labelled>
            <h2 id=id>{s.name.clone()} " " <SloBadge state=s.state alert=s.alert /></h2>
            <p>"Objective " <strong>{format!("{} %", s.objective_percent)}</strong> " over " {s.window_days} " days; now "
                <strong>{percent(s.sli_percent, 3)}</strong> " (error ratio " {s.error_ratio.map(|r| format!("{:.4} %", r * 100.0)).unwrap_or_else(|| "—".into())} ")."</p>
            {s.error.clone().map(|e| view! {
                <p class="notice error" role="alert">"It cannot be evaluated: " {e}
                    ". Until it can, it counts as failing: a page alert for the watch after an apply"
                    {(s.name == "availability").then_some(", and a spent budget for the error-budget policy")} "."</p>
            })}
            {s.alert_rule.map(|r| view! { <p class="notice error" role="alert">"Alert: burning " {r} "."</p> })}
            {(s.state == SloState::Spent).then(|| view! {
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
            <BudgetChart points=s.budget_history.clone() zone />
            <div class="table-wrap">
                <table class="burns">
                    <thead><tr><th scope="col">"Window"</th>{s.burns.iter().map(|b| view! { <th scope="col" class="num">{b.window.clone()}</th> }).collect_view()}</tr></thead>
                    <tbody><tr><th scope="row">"Burn rate"</th>{s.burns.iter().map(|b| view! {
                        <td class="num">{b.rate.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "—".into())}</td>
                    }).collect_view()}</tr></tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn Report(report: SloReport, user: Option<TimeZone>) -> impl IntoView {
    let zone = page_zone(user, &report.time_zone);
    let at = report.at_unix;
    view! {
        <ZoneNote zone at chosen=user.is_some() />
        {report.error.map(|e| view! { <p class="notice error" role="alert">"No SLO numbers: " {e}</p> })}
        {(report.slos.is_empty()).then(|| view! { <p class="muted">"No SLOs to show."</p> })}
        <div class="cards">{report.slos.into_iter().map(|s| view! { <SloCard s zone /> }).collect_view()}</div>
        <p class="muted">"As of " {time::format(at, zone, Style::Minute)} "; " {report.queries} " Prometheus queries (answers are reused for a few seconds). Badges: "
            <strong>"spent"</strong> " when no budget is left, " <strong>"burning"</strong> " while a page or ticket alert fires, "
            <strong>"ok"</strong> " otherwise, " <strong>"no data"</strong> " without requests in the window. Page: 14.4× the budget over 1 h and 5 m, or 6× over 6 h and 30 m; ticket: 1× over 3 d and 6 h."</p>
    }
}

#[component]
pub fn Slo() -> impl IntoView {
    let query = use_query_map();
    let user = user_zone();
    let chosen = move || query.with(|q| q.get("env").filter(|s| !s.is_empty()));
    let report = resource(chosen, |env| async move {
        let (names, env) = choose_environment(env).await?;
        let report = match env {
            Some(e) => Some(load_slo(e).await?),
            None => None,
        };
        Ok::<_, ServerFnError>((names, report))
    });
    view! {
        <Title text="SLO" />
        <h1>"SLO"</h1>
        <Suspense fallback=|| view! { <p aria-busy="true">"Asking Prometheus…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((_, None)) => view! { <p class="muted">"No environments yet: they appear after the spec repository's first fetch."</p> }.into_any(),
                    Ok((names, Some(r))) => view! {
                        <EnvTabs page="/slo" names chosen=r.environment.clone() />
                        <Report report=r user />
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
