//! Pieces shared by the pages.

pub mod chain;
mod change_table;
pub mod chart;
mod loaded;
mod rendered;

pub use change_table::ChangeTable;
pub use loaded::Loaded;
pub use rendered::{rendered_by, Renders};

use domain::spec::TimeZone;
use domain::time::{self, Style};
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

/// A time in UTC as people read it: `2026-11-25 10:00:00.000`.
pub fn utc(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// The zone the signed-in user chose to read times in, if any.
pub fn user_zone() -> Option<TimeZone> {
    use_context::<crate::CurrentUser>()
        .and_then(|c| c.0)
        .and_then(|me| me.time_zone)
        .and_then(|z| z.parse().ok())
}

/// The zone a page shows an environment's times in: the user's own, else the environment's
/// (`zone_name`, from its report).
pub fn page_zone(user: Option<TimeZone>, zone_name: &str) -> TimeZone {
    time::display_zone(user, time::zone_named(zone_name))
}

/// Now, in Unix seconds (the server's clock: the pages are rendered there).
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The page's one mention of its zone: "Times in Asia/Seoul (KST)", and whose choice it is.
#[component]
pub fn ZoneNote(zone: TimeZone, at: i64, chosen: bool) -> impl IntoView {
    view! {
        <p class="muted zone-note">"Times in " <strong>{time::zone_label(zone, at)}</strong>
            {if chosen {
                view! { " (your setting on " <a href="/account#zone-h">"your account"</a> ")." }.into_any()
            } else {
                view! { ", the environment's zone (" <a href="/account#zone-h">"choose your own"</a> ")." }.into_any()
            }}
        </p>
    }
}

/// How recent a time must be to read as "… ago": a week.
const RECENT_SECS: i64 = 7 * 86_400;

/// A past time in `zone`: relative when recent ("3 min ago"), else the local date and time;
/// the exact local time always on hover. A time after `now` (the clock reading the page was
/// rendered with) reads "just now".
#[component]
pub fn When(t: i64, zone: TimeZone, now: i64) -> impl IntoView {
    let exact = format!("{} {}", time::format(t, zone, Style::Second), zone.name());
    let text = if (now - t).abs() < RECENT_SECS {
        time::relative(t, now.max(t))
    } else {
        time::format(t, zone, Style::Minute)
    };
    let iso = chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    view! { <time datetime=iso title=exact>{text}</time> }
}

/// A time of the domain's as [`When`] shows it.
#[component]
pub fn WhenAt(t: chrono::DateTime<chrono::Utc>, zone: TimeZone, now: i64) -> impl IntoView {
    view! { <When t=t.timestamp() zone now /> }
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

/// The environments a page can show and the one it shows: the one asked for, else the first.
pub async fn choose_environment(
    asked: Option<String>,
) -> Result<(Vec<String>, Option<String>), ServerFnError> {
    let names: Vec<String> = crate::api::load_environments()
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect();
    let chosen = asked.or_else(|| names.first().cloned());
    Ok((names, chosen))
}

/// Links to `page?env=NAME` for each environment and to each range of the chosen one, the
/// chosen environment and range marked as the current page.
#[component]
pub fn EnvTabs(
    page: &'static str,
    names: Vec<String>,
    #[prop(into)] chosen: String,
    #[prop(default = &[])] ranges: &'static [&'static str],
    #[prop(optional, into)] range: Option<String>,
) -> impl IntoView {
    let current = |yes: bool| yes.then_some("page");
    let env = chosen.clone();
    view! {
        <nav class="env-tabs" aria-label="Environment">
            {names.into_iter().map(|name| {
                let href = format!("{page}?env={name}");
                let here = current(name == chosen);
                view! { <a href=href aria-current=here>{name}</a> }
            }).collect_view()}
        </nav>
        {(!ranges.is_empty()).then(|| view! {
            <nav class="env-tabs ranges" aria-label="Range">
                {ranges.iter().map(|label| {
                    let href = format!("{page}?env={env}&range={label}");
                    view! { <a href=href aria-current=current(range.as_deref() == Some(*label))>{*label}</a> }
                }).collect_view()}
            </nav>
        })}
    }
}
