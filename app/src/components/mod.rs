//! Pieces shared by the pages.

mod change_table;
pub mod chart;
mod loaded;
mod rendered;

pub use change_table::ChangeTable;
pub use loaded::Loaded;
pub use rendered::{rendered_by, Renders};

use crate::resource::resource;
use domain::user::Me;
use domain::Role;
use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// The top bar's links, in order; the admin's only for admins.
const LINKS: [(&str, &str); 8] = [
    ("/", "Overview"),
    ("/changes", "Changes"),
    ("/environments", "Environments"),
    ("/monitoring", "Monitoring"),
    ("/scaling", "Scaling"),
    ("/slo", "SLO"),
    ("/audit", "Audit"),
    ("/admin", "Admin"),
];

/// The top bar's link for the page at `path`, marked `aria-current="page"`: the overview's
/// only at `/`, the others also on the pages below theirs (and the account's).
fn current_link(path: &str) -> Option<&'static str> {
    LINKS
        .iter()
        .map(|(href, _)| *href)
        .chain(["/account"])
        .find(|href| match *href {
            "/" => path == "/",
            href => path
                .strip_prefix(href)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        })
}

/// The top bars rendered lately, by user and current link.
static HEADERS: Renders<(Me, Option<&'static str>)> = Renders::new(32);

/// The top bar: navigation, who is signed in, and sign-out. Rendered by the server only, once
/// for each user and current link (see [`rendered_by`]).
#[component]
pub fn Header(me: Me) -> impl IntoView {
    let current = current_link(&use_location().pathname.get_untracked());
    rendered_by(&HEADERS, (me, current), |(me, current)| {
        let is_current = move |href: &str| (current == Some(href)).then_some("page");
        let links = LINKS
            .iter()
            .filter(|(href, _)| *href != "/admin" || me.role == Role::Admin)
            .map(|&(href, text)| view! { <li><a href=href aria-current=is_current(href)>{text}</a></li> })
            .collect_view();
        view! {
            <header class="topbar">
                <a class="brand" href="/">"tierdeck"</a>
                <nav aria-label="Main">
                    <ul>{links}</ul>
                </nav>
                <div class="whoami">
                    <a href="/account" class="user" title="Your account" aria-current=is_current("/account")>
                        <span class="user-name">{me.name.clone()}</span>
                        " "
                        <span class=format!("role role-{}", me.role)>{me.role.to_string()}</span>
                    </a>
                    <form method="post" action="/logout">
                        <button type="submit" class="secondary">"Sign out"</button>
                    </form>
                </div>
            </header>
        }
    })
}

/// The text of a server function's error, without the framework's prefix.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// An error box with the reason.
#[component]
pub fn ErrorBox(error: ServerFnError) -> impl IntoView {
    view! { <p class="notice error" role="alert">{error_text(&error)}</p> }
}

/// Shows an action's last result: nothing, a success sentence, or the error.
#[component]
pub fn ActionResult<O>(
    value: Signal<Option<Result<O, ServerFnError>>>,
    #[prop(into)] ok: Callback<O, String>,
) -> impl IntoView
where
    O: Clone + Send + Sync + 'static,
{
    // `try_get`: while a page streams, a result whose component was already dropped (the
    // section re-rendered) renders nothing instead of panicking.
    move || {
        value.try_get().flatten().map(|r| match r {
            Ok(o) => view! { <p class="notice ok" role="status">{ok.run(o)}</p> }.into_any(),
            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
        })
    }
}

/// A stored time (`2026-11-25T10:00:00.000Z`) as people read it: `2026-11-25 10:00:00.000`.
pub fn utc(t: &str) -> String {
    t.replace('T', " ").trim_end_matches('Z').to_owned()
}

/// The first 10 characters of a commit id.
pub fn short(sha: &str) -> String {
    domain::commit::short_sha(sha).to_owned()
}

/// An id for a file's diff on the change page, to link errors to.
pub fn file_anchor(path: &str) -> String {
    let slug: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("file-{slug}")
}

#[component]
pub fn StatusBadge(status: domain::change::ChangeStatus) -> impl IntoView {
    view! { <span class=format!("badge status-{status}")>{status.to_string()}</span> }
}

/// Spec errors as `file:line:col: message`, each linked to its file's diff on the page.
#[component]
pub fn SpecErrors(errors: Vec<domain::spec::SpecError>) -> impl IntoView {
    view! {
        <ul class="spec-errors">
            {errors
                .into_iter()
                .map(|e| {
                    let href = format!("#{}", file_anchor(&e.file));
                    view! {
                        <li>
                            <a href=href rel="external"><code>{format!("{}:{}:{}", e.file, e.line, e.col)}</code></a>
                            ": " {e.message}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

/// A plan's errors and operations, in order, with their risks.
#[component]
pub fn Operations(plan: domain::plan::Plan) -> impl IntoView {
    view! {
        {(!plan.errors.is_empty()).then(|| view! {
            <ul class="spec-errors plan-errors">{plan.errors.iter().map(|e| view! { <li>{e.to_string()}</li> }).collect_view()}</ul>
        })}
        {(!plan.operations.is_empty()).then(|| view! {
            <ol class="plan">{plan.operations.into_iter().map(|op| view! {
                <li>
                    <span class="resource">{op.resource}</span> ": " <code>{op.change}</code>
                    " " <span class="muted">{op.aws_call}</span>
                    {op.risk.map(|r| view! { <br /><span class="risk">"Risk: " {r}</span> })}
                </li>
            }).collect_view()}</ol>
        })}
    }
}

/// An environment's drift in a few words, as a badge.
#[component]
pub fn DriftBadge(drift: domain::change::Drift) -> impl IntoView {
    let label = drift.label();
    view! { <span class=format!("badge drift-{}", label.replace(' ', "-"))>{label}</span> }
}

/// Links to `page?env=NAME` for each environment (it loads the list itself), and to each range
/// of the chosen one.
#[component]
pub fn EnvTabs(
    page: &'static str,
    #[prop(into)] chosen: Signal<Option<String>>,
    #[prop(default = &[])] ranges: &'static [&'static str],
) -> impl IntoView {
    let envs = resource(|| (), |_| crate::api::load_environments());
    view! {
        <Suspense fallback=|| view! { <p aria-busy="true">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let environments = match envs.await {
                    Ok(list) => list,
                    Err(e) => return view! { <ErrorBox error=e /> }.into_any(),
                };
                let chosen = chosen.get();
                view! {
                    <nav class="env-tabs" aria-label="Environment">
                        {environments.into_iter().map(|e| {
                            let href = format!("{page}?env={}", e.name);
                            view! { <a href=href>{e.name}</a> }
                        }).collect_view()}
                    </nav>
                    {chosen.filter(|_| !ranges.is_empty()).map(|env| view! {
                        <nav class="env-tabs" aria-label="Range">
                            {ranges.iter().map(|label| {
                                let href = format!("{page}?env={env}&range={label}");
                                view! { <a href=href>{*label}</a> }
                            }).collect_view()}
                        </nav>
                    })}
                }.into_any()
            })}
        </Suspense>
    }
}

/// A step path through `points` (each value held until the next point), drawn on to `end_x`.
pub fn step_path(points: &[(f64, f64)], end_x: f64) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        if i == 0 {
            d.push_str(&format!("M{x:.1},{y:.1}"));
        } else {
            d.push_str(&format!(" H{x:.1} V{y:.1}"));
        }
    }
    if !points.is_empty() {
        d.push_str(&format!(" H{end_x:.1}"));
    }
    d
}
