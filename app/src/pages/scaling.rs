//! Scaling: each group's capacity over time as a step chart drawn on the server, with
//! tierdeck's applies (linked to their change) and the scheduled actions that fired, and Auto
//! Scaling's activities.

use domain::scaling::{ApplyMark, GroupHistory, ScalingHistory, ScheduledMark, Snapshot};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::load_scaling;
use crate::components::{step_path, EnvTabs, ErrorBox};

const W: f64 = 640.0;
const H: f64 = 140.0;
const PAD: f64 = 24.0;

/// Ranges the page offers: label and hours.
const RANGES: [(&str, u32); 4] = [("1h", 1), ("6h", 6), ("24h", 24), ("7d", 168)];
const RANGE_LABELS: &[&str] = &["1h", "6h", "24h", "7d"];

#[component]
fn HistoryChart(
    g: GroupHistory,
    since: i64,
    until: i64,
    applies: Vec<ApplyMark>,
    scheduled: Vec<ScheduledMark>,
) -> impl IntoView {
    let span = (until - since).max(1) as f64;
    let x_of = |t: i64| PAD + ((t.max(since) - since) as f64 / span) * (W - 2.0 * PAD);
    let top = g.snapshots.iter().map(|s| s.max).max().unwrap_or(1).max(1) as f64;
    let y_of = |v: u32| H - PAD - f64::from(v) / top * (H - 2.0 * PAD);
    let line = |f: fn(&Snapshot) -> u32| -> String {
        let pts: Vec<(f64, f64)> = g
            .snapshots
            .iter()
            .map(|s| (x_of(s.at), y_of(f(s))))
            .collect();
        step_path(&pts, W - PAD)
    };
    let label = format!(
        "{}: capacity over the range, {} change{}",
        g.group,
        g.snapshots.len(),
        if g.snapshots.len() == 1 { "" } else { "s" }
    );
    let points = g
        .snapshots
        .iter()
        .map(|s| {
            let title = format!(
                "{}: min {} max {} desired {} in service {}",
                chrono::DateTime::from_timestamp(s.at, 0)
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
                s.min,
                s.max,
                s.desired,
                s.in_service
            );
            view! { <circle cx=format!("{:.1}", x_of(s.at)) cy=format!("{:.1}", y_of(s.desired)) r="3"><title>{title}</title></circle> }
        })
        .collect_view();
    let apply_marks = applies
        .into_iter()
        .map(|a| {
            let x = format!("{:.1}", x_of(a.at));
            view! {
                <a href=format!("/changes/{}", a.change_id)>
                    <line class="apply" x1=x.clone() x2=x y1=format!("{PAD}") y2=format!("{:.1}", H - PAD)>
                        <title>{format!("apply of change #{} ({})", a.change_id, a.status)}</title>
                    </line>
                </a>
            }
        })
        .collect_view();
    let schedule_marks = scheduled
        .into_iter()
        .filter(|m| m.group == g.group)
        .map(|m| {
            let x = format!("{:.1}", x_of(m.at));
            view! {
                <line class="scheduled" x1=x.clone() x2=x y1=format!("{:.1}", H - PAD) y2=format!("{:.1}", H - PAD - 8.0)>
                    <title>{format!("{} {}", m.local, m.action)}</title>
                </line>
            }
        })
        .collect_view();
    view! {
        <figure class="capacity-chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=label>
                <line class="axis" x1=format!("{PAD}") x2=format!("{}", W - PAD) y1=format!("{:.1}", H - PAD) y2=format!("{:.1}", H - PAD) />
                <text class="tick" x="2" y=format!("{:.1}", y_of(top as u32) + 4.0)>{top as u32}</text>
                <text class="tick" x="2" y=format!("{:.1}", H - PAD + 4.0)>"0"</text>
                {apply_marks}
                {schedule_marks}
                <path class="max" d=line(|s| s.max) />
                <path class="min" d=line(|s| s.min) />
                <path class="in-service" d=line(|s| s.in_service) />
                <path class="desired" d=line(|s| s.desired) />
                {points}
            </svg>
            <figcaption>{g.group.clone()} " — " <span class="key max">"max"</span> " " <span class="key min">"min"</span> " "
                <span class="key desired">"desired"</span> " " <span class="key in-service">"in service"</span>
                " · tall lines: applies, short ticks: scheduled actions"</figcaption>
        </figure>
    }
}

#[component]
fn History(h: ScalingHistory) -> impl IntoView {
    let (since, until) = (h.since, h.until);
    let empty = h.groups.is_empty();
    view! {
        {empty.then(|| view! { <p class="muted">"No capacity recorded in this range yet: tierdeck records each group every minute while it can reach AWS."</p> })}
        <div class="charts">
            {h.groups.into_iter().map(|g| view! {
                <HistoryChart g since until applies=h.applies.clone() scheduled=h.scheduled.clone() />
            }).collect_view()}
        </div>
        <h2>"Scaling activities"</h2>
        {if h.activities.is_empty() {
            view! { <p class="muted">"No scaling activities in this range."</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                    <table class="activities">
                        <thead><tr>
                            <th scope="col">"Started (UTC)"</th><th scope="col">"Group"</th><th scope="col">"Status"</th><th scope="col">"What"</th>
                        </tr></thead>
                        <tbody>{h.activities.into_iter().map(|a| view! {
                            <tr><td>{a.started_at}</td><td>{a.group}</td><td>{a.status}</td><td>{a.description}<br /><span class="muted">{a.cause}</span></td></tr>
                        }).collect_view()}</tbody>
                    </table>
                </div>
            }.into_any()
        }}
    }
}

#[component]
pub fn Scaling() -> impl IntoView {
    let query = use_query_map();
    let chosen = move || {
        query.with(|q| {
            let env = q.get("env").filter(|s| !s.is_empty());
            let hours = RANGES
                .iter()
                .find(|(l, _)| q.get("range").as_deref() == Some(*l))
                .map(|(_, h)| *h)
                .unwrap_or(24);
            (env, hours)
        })
    };
    let history = Resource::new(chosen, |(env, hours)| async move {
        match env {
            Some(e) => load_scaling(e, hours).await.map(Some),
            None => Ok(None),
        }
    });
    view! {
        <Title text="Scaling" />
        <h1>"Scaling"</h1>
        <EnvTabs page="/scaling" chosen=Signal::derive(move || chosen().0) ranges=RANGE_LABELS />
        <Suspense fallback=|| view! { <p aria-busy="true">"Loading the history…"</p> }>
            {move || Suspend::new(async move {
                match history.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(None) => view! { <p class="muted">"Choose an environment."</p> }.into_any(),
                    Ok(Some(h)) => view! { <History h /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
