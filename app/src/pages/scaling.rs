//! Scaling: each group's capacity over time as a step chart drawn on the server, with
//! tierdeck's applies (linked to their change) and the scheduled actions that fired, and Auto
//! Scaling's activities.

use domain::scaling::{ApplyMark, GroupHistory, ScalingHistory, ScheduledMark, Snapshot};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::load_scaling;
use crate::components::chart::{
    top_of, utc_time, ChartSpec, Frame, Marker, Reach, Series, TimeChart,
};
use crate::components::{EnvTabs, ErrorBox};
use crate::resource::resource;

const FRAME: Frame = Frame::new(640.0, 140.0, 24.0);

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
    let top = top_of(g.snapshots.iter().map(|s| f64::from(s.max)), 1.0);
    let line = |class, f: fn(&Snapshot) -> u32| {
        let pts = g.snapshots.iter().map(|s| (s.at_unix, f64::from(f(s))));
        Series::step(class, pts.collect())
    };
    let label = format!(
        "{}: capacity over the range, {} change{}",
        g.group,
        g.snapshots.len(),
        if g.snapshots.len() == 1 { "" } else { "s" }
    );
    let titles = g
        .snapshots
        .iter()
        .map(|s| {
            format!(
                "{}: min {} max {} desired {} in service {}",
                utc_time(s.at_unix, "%Y-%m-%d %H:%M UTC"),
                s.min,
                s.max,
                s.desired,
                s.in_service
            )
        })
        .collect();
    let apply_marks = applies.into_iter().map(|a| {
        let title = format!("apply of change #{} ({})", a.change_id, a.status);
        Marker::rule(a.at_unix, "apply", Reach::Full, title)
            .link(format!("/changes/{}", a.change_id))
    });
    let schedule_marks = scheduled
        .into_iter()
        .filter(|m| m.group == g.group)
        .map(|m| {
            let title = format!("{} {}", m.local, m.action);
            Marker::rule(m.at_unix, "scheduled", Reach::Tick(8.0), title)
        });
    let spec = ChartSpec::new(FRAME, (since, until), (0.0, top))
        .clamp_time()
        .value_labels(2.0, 4.0, vec![(top, top.to_string()), (0.0, "0".into())])
        .markers(apply_marks.chain(schedule_marks))
        .series(line("max", |s| s.max))
        .series(line("min", |s| s.min))
        .series(line("in-service", |s| s.in_service))
        .series(line("desired", |s| s.desired).dots(3.0, titles));
    view! {
        <TimeChart spec class="capacity-chart" label caption_below=true>
            <figcaption>{g.group.clone()} " — " <span class="key max">"max"</span> " " <span class="key min">"min"</span> " "
                <span class="key desired">"desired"</span> " " <span class="key in-service">"in service"</span>
                " · tall lines: applies, short ticks: scheduled actions"</figcaption>
        </TimeChart>
    }
}

#[component]
fn History(h: ScalingHistory) -> impl IntoView {
    let (since, until) = (h.since_unix, h.until_unix);
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
    let history = resource(chosen, |(env, hours)| async move {
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
