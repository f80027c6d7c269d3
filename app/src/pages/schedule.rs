//! The schedule preview: a table like the team's own scaling table and a step chart per group,
//! drawn as SVG on the server (readable without JavaScript; values on hover through `<title>`).

use chrono::DateTime;
use domain::schedule::{table, Capacity, GroupPreview, Preview};
use leptos::prelude::*;

use crate::components::chart::{top_of, ChartSpec, Frame, Marker, Reach, Series, TimeChart};

const FRAME: Frame = Frame::new(600.0, 120.0, 24.0);

#[component]
pub fn CapacityChart(g: GroupPreview, from: String, hours: u32) -> impl IntoView {
    let seconds = |at: &str| DateTime::parse_from_rfc3339(at).map(|t| t.timestamp());
    let start = seconds(&from).unwrap_or_default();
    let end = start + i64::from(hours.max(1)) * 3600;
    let at = |s: &str| seconds(s).unwrap_or(start);
    let top = top_of(
        g.steps
            .iter()
            .map(|s| f64::from(s.capacity.max))
            .chain([f64::from(g.start.max)]),
        1.0,
    );
    // From the capacity now through each step's.
    let line = |class, f: &dyn Fn(&Capacity) -> Option<u32>| {
        let caps = g.steps.iter().map(|s| (at(&s.at), &s.capacity));
        let pts = [(start, &g.start)].into_iter().chain(caps);
        Series::step(
            class,
            pts.filter_map(|(t, c)| Some((t, f64::from(f(c)?))))
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
        Marker::rule(at(&s.at), "mark", Reach::Full, title).dot(f64::from(s.capacity.max), 4.0)
    });
    let spec = ChartSpec::new(FRAME, (start, end), (0.0, top))
        .value_labels(2.0, 4.0, vec![(top, top.to_string()), (0.0, "0".into())])
        .time_labels("now".into(), format!("+{hours} h"))
        .markers(marks)
        .series(line("max", &|c| Some(c.max)))
        .series(line("min", &|c| Some(c.min)))
        .series(line("desired", &|c| c.desired));
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

/// A preview: the table (for a day) and the charts.
#[component]
pub fn SchedulePreview(preview: Preview) -> impl IntoView {
    let from = preview.from.clone();
    let hours = preview.hours;
    let groups = preview.groups.clone();
    view! {
        {(hours <= 48).then(|| view! { <ScheduleTable preview=preview.clone() /> })}
        <div class="charts">
            {groups.into_iter().map(|g| view! { <CapacityChart g from=from.clone() hours /> }).collect_view()}
        </div>
    }
}
