//! The schedule preview: a table like the team's own scaling table and a step chart per group,
//! drawn on the server (readable without JavaScript; values on hover).

use domain::axis::Axis;
use domain::schedule::{table, Capacity, GroupPreview, Preview};
use domain::spec::TimeZone;
use domain::time::{self, Style};
use leptos::prelude::*;

use crate::components::chart::{ChartSpec, Hover, Marker, Reach, Series, TimeChart};

/// A chart's plot height, in pixels.
const HEIGHT: f64 = 120.0;

#[component]
pub fn CapacityChart(
    g: GroupPreview,
    from: chrono::DateTime<chrono::Utc>,
    hours: u32,
    zone: TimeZone,
) -> impl IntoView {
    let start = from.timestamp();
    let end = start + i64::from(hours.max(1)) * 3600;
    let at = |t: &chrono::DateTime<chrono::Utc>| t.timestamp();
    let axis = Axis::for_values(
        g.steps
            .iter()
            .map(|s| f64::from(s.capacity.max))
            .chain([f64::from(g.start.max)]),
        1.0,
        1.0,
    );
    // From the capacity now through each step's.
    let points = || {
        let caps = g.steps.iter().map(|s| (at(&s.at), &s.capacity));
        [(start, &g.start)].into_iter().chain(caps)
    };
    let line = |class, f: &dyn Fn(&Capacity) -> Option<u32>| {
        Series::step(
            class,
            points()
                .filter_map(|(t, c)| Some((t, f64::from(f(c)?))))
                .collect(),
        )
    };
    let label = format!(
        "{}: capacity over the next {hours} hours, {} scheduled change{}",
        g.group,
        g.steps.len(),
        if g.steps.len() == 1 { "" } else { "s" }
    );
    let marks = g.steps.iter().map(|s| {
        let title = format!("{} {}: {}", s.local, s.action, s.capacity.text());
        Marker::rule(at(&s.at), "mark", Reach::Full, title)
    });
    let hovers = points()
        .map(|(t, c)| Hover {
            at: t,
            text: format!("{} · {}", time::format(t, zone, Style::Short), c.text()),
            values: vec![("max", f64::from(c.max)), ("min", f64::from(c.min))],
        })
        .collect();
    let spec = ChartSpec::new(HEIGHT, (start, end), axis)
        .value_labels(|v| format!("{v:.0}"))
        .time_ticks(time::time_ticks(start, end, zone))
        .markers(marks)
        .series(line("max", &|c| Some(c.max)))
        .series(line("min", &|c| Some(c.min)))
        .series(line("desired", &|c| c.desired))
        .hovers(hovers, true);
    view! {
        <TimeChart spec class="capacity-chart" label caption_below=true>
            <figcaption>{g.group.clone()} " — " <span class="key max">"max"</span> " " <span class="key min">"min"</span> " " <span class="key desired">"desired"</span></figcaption>
        </TimeChart>
    }
}

/// Times and each group's capacity after what fires then.
#[component]
pub fn ScheduleTable(preview: Preview) -> impl IntoView {
    let names: Vec<String> = preview.groups.iter().map(|g| g.group.clone()).collect();
    let rows = table(&preview);
    let clashes: Vec<String> = preview
        .groups
        .iter()
        .flat_map(|g| {
            g.same_minute
                .iter()
                .map(move |(at, names)| format!("{}: {} fire at the same minute ({at}); Auto Scaling does not say which runs last", g.group, names.join(", ")))
        })
        .collect();
    if rows.is_empty() {
        return view! { <p class="muted">"No scheduled actions fire in this period."</p> }
            .into_any();
    }
    view! {
        {clashes.into_iter().map(|c| view! { <p class="notice error" role="alert">{c}</p> }).collect_view()}
        <div class="table-wrap">
            <table class="schedule">
                <caption class="muted">"Each group's min–max (desired) after what fires at that time."</caption>
                <thead>
                    <tr>
                        <th scope="col">"When"</th>
                        {names.into_iter().map(|n| view! { <th scope="col">{n}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|(when, caps)| view! {
                        <tr>
                            <td>{when}</td>
                            {caps.into_iter().map(|c| view! { <td class="num">{c.map(|c| c.text()).unwrap_or_default()}</td> }).collect_view()}
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// A preview: the table (for a day) and the charts, their time axes in `zone`.
#[component]
pub fn SchedulePreview(preview: Preview, zone: TimeZone) -> impl IntoView {
    let from = preview.from;
    let hours = preview.hours;
    let groups = preview.groups.clone();
    view! {
        {(hours <= 48).then(|| view! { <ScheduleTable preview=preview.clone() /> })}
        <div class="charts">
            {groups.into_iter().map(|g| view! { <CapacityChart g from hours zone /> }).collect_view()}
        </div>
    }
}
