//! The schedule preview: a table like the team's own scaling table and a step chart per group,
//! drawn as SVG on the server (readable without JavaScript; values on hover through `<title>`).

use chrono::DateTime;
use domain::schedule::{table, Capacity, GroupPreview, Preview};
use leptos::prelude::*;

use crate::components::step_path;

const W: f64 = 600.0;
const H: f64 = 120.0;
const PAD: f64 = 24.0;

#[component]
pub fn CapacityChart(g: GroupPreview, from: String, hours: u32) -> impl IntoView {
    let start = DateTime::parse_from_rfc3339(&from)
        .map(|t| t.timestamp())
        .unwrap_or_default();
    let span = f64::from(hours.max(1)) * 3600.0;
    let top = g
        .steps
        .iter()
        .map(|s| s.capacity.max)
        .chain([g.start.max])
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x_of = |at: &str| {
        let t = DateTime::parse_from_rfc3339(at)
            .map(|t| t.timestamp())
            .unwrap_or(start);
        PAD + (t - start) as f64 / span * (W - 2.0 * PAD)
    };
    let y_of = |v: u32| H - PAD - f64::from(v) / top * (H - 2.0 * PAD);
    let series = |f: &dyn Fn(&Capacity) -> Option<u32>| -> Vec<(f64, f64)> {
        let mut pts = Vec::new();
        if let Some(v) = f(&g.start) {
            pts.push((PAD, y_of(v)));
        }
        for s in &g.steps {
            if let Some(v) = f(&s.capacity) {
                pts.push((x_of(&s.at), y_of(v)));
            }
        }
        pts
    };
    let end = W - PAD;
    let max_path = step_path(&series(&|c| Some(c.max)), end);
    let min_path = step_path(&series(&|c| Some(c.min)), end);
    let desired_path = step_path(&series(&|c| c.desired), end);
    let label = format!(
        "{}: capacity over the next {hours} hours, {} scheduled change{}",
        g.group,
        g.steps.len(),
        if g.steps.len() == 1 { "" } else { "s" }
    );
    let marks = g
        .steps
        .iter()
        .map(|s| {
            let x = x_of(&s.at);
            let title = format!("{} {}: {}", s.local, s.action, s.capacity.text());
            view! {
                <g class="mark">
                    <line x1=format!("{x:.1}") x2=format!("{x:.1}") y1=format!("{PAD}") y2=format!("{:.1}", H - PAD) />
                    <circle cx=format!("{x:.1}") cy=format!("{:.1}", y_of(s.capacity.max)) r="4"><title>{title}</title></circle>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="capacity-chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=label.clone()>
                <line class="axis" x1=format!("{PAD}") x2=format!("{end}") y1=format!("{:.1}", H - PAD) y2=format!("{:.1}", H - PAD) />
                <text class="tick" x="2" y=format!("{:.1}", y_of(top as u32) + 4.0)>{top as u32}</text>
                <text class="tick" x="2" y=format!("{:.1}", H - PAD + 4.0)>"0"</text>
                <text class="tick" x=format!("{PAD}") y=format!("{H}")>"now"</text>
                <text class="tick end" x=format!("{end}") y=format!("{H}")>{format!("+{hours} h")}</text>
                {marks}
                <path class="max" d=max_path />
                <path class="min" d=min_path />
                <path class="desired" d=desired_path />
            </svg>
            <figcaption>{g.group.clone()} " — " <span class="key max">"max"</span> " " <span class="key min">"min"</span> " " <span class="key desired">"desired"</span></figcaption>
        </figure>
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
