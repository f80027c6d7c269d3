//! Scaling: each group's capacity over time as a step chart drawn on the server, with
//! tierdeck's applies (linked to their change) and the scheduled actions that fired — observed
//! in Auto Scaling's activities, or expected by the schedule applied then — and Auto Scaling's
//! activities, in the environment's time zone.

use domain::axis::Axis;
use domain::scaling::{
    ApplyMark, GroupHistory, RolloutMark, ScalingHistory, ScheduledMark, Seen, Snapshot,
};
use domain::spec::TimeZone;
use domain::time::{self, Style, TimeTick};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::load_scaling;
use crate::components::chart::{ChartSpec, Hover, Marker, Reach, Series, TimeChart};
use crate::components::{
    choose_environment, page_zone, short, user_zone, EnvTabs, ErrorBox, WhenAt, ZoneNote,
};
use crate::resource::resource;

/// A chart's plot height, in pixels.
const HEIGHT: f64 = 140.0;

/// Ranges the page offers: label and hours.
const RANGES: [(&str, u32); 5] = [("1h", 1), ("6h", 6), ("24h", 24), ("7d", 168), ("30d", 720)];
const RANGE_LABELS: &[&str] = &["1h", "6h", "24h", "7d", "30d"];

/// A scheduled firing's marker: a solid tick when Auto Scaling reported it, a dashed one when
/// only the applied schedule says it should have fired.
fn firing_marker(m: ScheduledMark) -> Marker {
    let (class, how) = match m.seen {
        Seen::Observed => (
            "scheduled observed",
            format!("observed: activity {}", m.source),
        ),
        Seen::Expected => (
            "scheduled expected",
            format!("expected by the schedule applied with {}", short(&m.source)),
        ),
    };
    Marker::rule(
        m.at_unix,
        class,
        Reach::Tick(16.0),
        format!("{} {} ({how})", m.local, m.action),
    )
}

#[component]
fn HistoryChart(
    g: GroupHistory,
    since: i64,
    until: i64,
    applies: Vec<ApplyMark>,
    scheduled: Vec<ScheduledMark>,
    rollouts: Vec<RolloutMark>,
    zone: TimeZone,
    ticks: Vec<TimeTick>,
) -> impl IntoView {
    let axis = Axis::for_values(g.snapshots.iter().map(|s| f64::from(s.max)), 1.0, 1.0);
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
    let hovers = g
        .snapshots
        .iter()
        .map(|s| Hover {
            at: s.at_unix,
            text: format!(
                "{} · min {} max {} desired {} in service {}",
                time::format(s.at_unix, zone, Style::Short),
                s.min,
                s.max,
                s.desired,
                s.in_service
            ),
            values: vec![
                ("desired", f64::from(s.desired)),
                ("in-service", f64::from(s.in_service)),
            ],
        })
        .collect();
    let apply_marks = applies.into_iter().map(|a| {
        let title = format!(
            "{} apply of change #{} ({})",
            time::format(a.at_unix, zone, Style::Short),
            a.change_id,
            a.status
        );
        Marker::rule(a.at_unix, "apply", Reach::Full, title)
            .link(format!("/changes/{}", a.change_id))
    });
    let schedule_marks = scheduled
        .into_iter()
        .filter(|m| m.group == g.group)
        .map(firing_marker);
    let rollout_marks = rollouts
        .into_iter()
        .filter(|m| m.group == g.group)
        .map(|m| {
            let title = format!(
                "{} {} (change #{})",
                time::format(m.at_unix, zone, Style::Short),
                m.what,
                m.change_id
            );
            Marker::rule(m.at_unix, "rollout", Reach::Full, title)
                .link(format!("/changes/{}", m.change_id))
        });
    let spec = ChartSpec::new(HEIGHT, (since, until), axis)
        .clamp_time()
        .value_labels(|v| format!("{v:.0}"))
        .time_ticks(ticks)
        .markers(apply_marks.chain(schedule_marks).chain(rollout_marks))
        .series(line("max", |s| s.max))
        .series(line("min", |s| s.min))
        .series(line("in-service", |s| s.in_service))
        .series(line("desired", |s| s.desired))
        .hovers(hovers, true);
    view! {
        <TimeChart spec class="capacity-chart" label caption_below=true>
            <figcaption>{g.group.clone()} " — " <span class="key max">"max"</span> " " <span class="key min">"min"</span> " "
                <span class="key desired">"desired"</span> " " <span class="key in-service">"in service"</span>
                " · " <span class="key apply">"apply"</span> " · " <span class="key rollout">"rollout"</span> " · scheduled action " <span class="key observed">"observed"</span>
                " / " <span class="key expected">"expected"</span></figcaption>
        </TimeChart>
    }
}

#[component]
fn History(h: ScalingHistory, user: Option<TimeZone>) -> impl IntoView {
    let (since, until) = (h.since_unix, h.until_unix);
    let zone = page_zone(user, &h.time_zone);
    let ticks = time::time_ticks(since, until, zone);
    let empty = h.groups.is_empty();
    let expected = h
        .scheduled
        .iter()
        .filter(|m| m.seen == Seen::Expected)
        .count();
    let observed = h.scheduled.len() - expected;
    view! {
        <ZoneNote zone at=until chosen=user.is_some() />
        {empty.then(|| view! { <p class="muted">"No capacity recorded in this range yet: tierdeck records each group every minute while it can reach AWS."</p> })}
        <div class="charts">
            {h.groups.into_iter().map(|g| view! {
                <HistoryChart g since until applies=h.applies.clone() scheduled=h.scheduled.clone() rollouts=h.rollouts.clone() zone ticks=ticks.clone() />
            }).collect_view()}
        </div>
        <p class="muted firings">{format!(
            "Scheduled actions in this range: {observed} observed in Auto Scaling's activities, {expected} expected by the schedule applied then and not (yet) seen. Expected firings start when the commit that put the action in AWS was applied."
        )}</p>
        <h2>"Scaling activities"</h2>
        {if h.activities.is_empty() {
            view! { <p class="muted">"No scaling activities in this range."</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                    <table class="activities">
                        <thead><tr>
                            <th scope="col">"Started"</th><th scope="col">"Group"</th><th scope="col">"Status"</th><th scope="col">"What"</th>
                        </tr></thead>
                        <tbody>{h.activities.into_iter().map(|a| view! {
                            <tr><td><WhenAt t=a.started_at zone now=until /></td><td>{a.group}</td><td>{a.status}</td><td>{a.description}<br /><span class="muted">{a.cause}</span></td></tr>
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
    let user = user_zone();
    let chosen = move || {
        query.with(|q| {
            let env = q.get("env").filter(|s| !s.is_empty());
            let range = RANGES
                .iter()
                .find(|(l, _)| q.get("range").as_deref() == Some(*l))
                .copied()
                .unwrap_or(RANGES[2]);
            (env, range)
        })
    };
    let history = resource(chosen, |(env, (label, hours))| async move {
        let (names, env) = choose_environment(env).await?;
        let history = match env {
            Some(e) => Some(load_scaling(e, hours).await?),
            None => None,
        };
        Ok::<_, ServerFnError>((names, label.to_owned(), history))
    });
    view! {
        <Title text="Scaling" />
        <h1>"Scaling"</h1>
        <Suspense fallback=|| view! { <p aria-busy="true">"Loading the history…"</p> }>
            {move || Suspend::new(async move {
                match history.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((_, _, None)) => view! { <p class="muted">"No environments yet: they appear after the spec repository's first fetch."</p> }.into_any(),
                    Ok((names, range, Some(h))) => view! {
                        <EnvTabs page="/scaling" names chosen=h.environment.clone() ranges=RANGE_LABELS range />
                        <History h user />
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
