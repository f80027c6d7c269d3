//! The overview: what the panel is connected to, and what it still needs.

use leptos::prelude::*;
use leptos_meta::Title;

use chrono::{DateTime, Utc};
use domain::change::RepoStatus;
use domain::slo::SloState;
use domain::spec::TimeZone;
use domain::Role;

use crate::api::{load_overview, load_repo_status, OverviewData, SyncNow};
use crate::components::{
    now_unix, page_zone, rendered_by, short, user_zone, ActionResult, ChangeTable, ErrorBox,
    Renders, WhenAt, ZoneNote,
};
use crate::pages::environments::EnvironmentCard;
use crate::pages::slo::SloBadge;
use crate::resource::reloaded;
use crate::CurrentUser;

#[component]
fn RepoCard(
    status: Option<RepoStatus>,
    configured_url: Option<String>,
    branch: String,
    zone: TimeZone,
    now: i64,
) -> impl IntoView {
    let when = move |t: Option<DateTime<Utc>>| t.map(|t| view! { <WhenAt t zone now /> });
    match (status, configured_url) {
        (_, None) => view! {
            <p>"Not configured. Set " <code>"[repo] url"</code> " in " <code>"tierdeck.toml"</code>
            " (or " <code>"TIERDECK_REPO__URL"</code> ") to the spec repository's path or URL."</p>
        }
        .into_any(),
        (None, Some(url)) => view! {
            <p><code>{url}</code> " (branch " <code>{branch}</code> "): not fetched yet."</p>
        }
        .into_any(),
        (Some(s), Some(_)) => view! {
            <p><code>{s.url.clone()}</code> " · branch " <code>{s.branch.clone()}</code></p>
            {s.head.clone().map(|h| view! {
                <p>"Head " <code>{short(&h.sha)}</code> " " <span class="subject">{h.subject().to_owned()}</span>
                " — " {h.author.name.clone()}</p>
            })}
            <p class="muted">"Last fetch: " {match when(s.last_fetch_at) {
                Some(v) => v.into_any(),
                None => "never".into_any(),
            }}
            {when(s.last_success_at).map(|v| view! { " · last success: " {v} })}</p>
            {s.last_error.clone().map(|e| view! {
                <p class="notice error" role="alert">
                    "Fetching fails (" {s.consecutive_failures} " in a row, last " {when(s.last_error_at)} "): " {e}
                    ". tierdeck retries with growing pauses and keeps serving."
                </p>
            })}
        }
        .into_any(),
    }
}

/// The spec repository's card below its heading, live in the browser: "Fetch now" (for those
/// who may) and the repository's state read again after it.
#[island]
fn RepoLive(
    status: Option<RepoStatus>,
    configured_url: Option<String>,
    branch: String,
    may_sync: bool,
    /// The zone's name, and the server's clock when it rendered the page: relative times
    /// ("3 min ago") read the same in the browser, and a fetch after it reads "just now".
    zone: String,
    now: i64,
) -> impl IntoView {
    let sync = ServerAction::<SyncNow>::new();
    let status = reloaded(status, move || sync.version().get(), load_repo_status);
    let zone = domain::time::zone_named(&zone);
    view! {
        {move || match status.get() {
            Ok(status) => view! { <RepoCard status configured_url=configured_url.clone() branch=branch.clone() zone now /> }.into_any(),
            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
        }}
        {may_sync.then(|| view! {
            <ActionResult value=Signal::derive(move || sync.value().get()) ok=|m: String| m />
            <ActionForm action=sync attr:class="inline">
                <button type="submit" class="secondary">"Fetch now"</button>
            </ActionForm>
        })}
    }
}

/// Each environment's SLOs in a line: badge and budget left.
#[component]
fn SloSummary(reports: Vec<domain::slo::SloReport>) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="slo-h">
            <h2 id="slo-h"><a href="/slo">"SLOs"</a></h2>
            <ul class="slo-summary">
                {reports.into_iter().map(|r| {
                    let href = format!("/slo?env={}", r.environment);
                    view! {
                        <li>
                            <a href=href><strong>{r.environment.clone()}</strong></a> ": "
                            {match r.error {
                                Some(e) => view! { <span class="muted">{e}</span> }.into_any(),
                                None => r.slos.into_iter().map(|s| view! {
                                    <span class="slo-badge">{s.name.clone()} " "
                                        <SloBadge state=s.state alert=s.alert />
                                        " " {match (&s.error, s.budget) {
                                            (Some(_), _) => "cannot be evaluated".to_owned(),
                                            (None, Some(b)) => format!("{:.0} % left", b.remaining_percent),
                                            (None, None) => "no traffic".to_owned(),
                                        }}
                                    </span>
                                }).collect_view().into_any(),
                            }}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
pub fn Overview() -> impl IntoView {
    let me = use_context::<CurrentUser>().and_then(|c| c.0);
    let user = user_zone();
    let may_sync = me.as_ref().is_some_and(|m| m.role >= Role::Operator);
    view! {
        <Title text="Overview" />
        <h1>"Overview"</h1>
        {me.map(|me| view! { <p class="lede">"Signed in as " <strong>{me.name}</strong> " (" {me.role.to_string()} ")."</p> })}
        // Awaited directly, not through a resource: the page is rendered on the server only
        // and waits for the whole load anyway, so a resource's tracking, task and copy of the
        // data would buy nothing.
        <Suspense fallback=|| view! { <p aria-busy="true">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match load_overview().await {
                    // Kept by the minute too: the cards say how long ago things happened.
                    Ok(data) => {
                        let now = now_unix() / 60 * 60;
                        rendered_by(&CARDS, (data, may_sync, user, now), |(data, may_sync, user, now)| view! { <OverviewCards data may_sync user now /> }).into_any()
                    }
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The overview's cards rendered lately, by their data, whether the reader may fetch, the
/// reader's zone and the minute.
static CARDS: Renders<(OverviewData, bool, Option<TimeZone>, i64)> = Renders::new(8);

/// The overview's cards, from its one load.
#[component]
fn OverviewCards(
    data: OverviewData,
    may_sync: bool,
    user: Option<TimeZone>,
    now: i64,
) -> impl IntoView {
    let OverviewData {
        status: s,
        repo,
        environments,
        waiting,
        slos,
        chain,
        targets,
    } = data;
    let targets = targets.unwrap_or_default();
    let configured = s.repo_url.is_some();
    // The panel's times read in the reader's zone, else the first environment's.
    let first_zone = slos
        .as_ref()
        .ok()
        .and_then(|r| r.first())
        .map_or_else(domain::time::utc_name, |r| r.time_zone.clone());
    let zone = page_zone(user, &first_zone);
    let states: Vec<(String, Option<SloState>)> = match &slos {
        Ok(reports) => reports
            .iter()
            .filter(|r| r.error.is_none())
            .map(|r| {
                (
                    r.environment.clone(),
                    SloState::worst(r.slos.iter().map(|s| s.state)),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let slo_of = move |env: &str| states.iter().find(|(e, _)| e == env).and_then(|(_, s)| *s);
    view! {
        <ZoneNote zone at=now chosen=user.is_some() />
        <div class="cards">
            <section class="card" aria-labelledby="repo-h">
                <h2 id="repo-h">"Spec repository"</h2>
                {match repo {
                    Ok(status) => view! {
                        <RepoLive status configured_url=s.repo_url branch=s.repo_branch may_sync=may_sync && configured zone=zone.name().to_owned() now />
                    }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }}
            </section>
            <section class="card" aria-labelledby="aws-h">
                <h2 id="aws-h">"AWS"</h2>
                <p>"Default region " <code>{s.aws_region}</code> ". "
                {match s.aws_endpoint {
                    Some(e) => view! { "Endpoint override: " <code>{e}</code> "." }.into_any(),
                    None => view! { "Credentials come from the default AWS chain." }.into_any(),
                }}</p>
                <p class="muted">"Each change is planned against the live state of the resources its spec names; operators apply it from its page, one recorded step at a time. Applied environments are checked for drift every few minutes."</p>
            </section>
            <section class="card" aria-labelledby="prom-h">
                <h2 id="prom-h">"Prometheus"</h2>
                {match s.prometheus_url {
                    Some(u) => view! { <p>"Configured: " <code>{u}</code> "."</p> }.into_any(),
                    None => view! { <p>"Not configured. Set " <code>"[prometheus] url"</code> " (or " <code>"TIERDECK_PROMETHEUS__URL"</code> ")."</p> }.into_any(),
                }}
                <p class="muted">"Monitoring charts and SLO budgets come from it; without it those pages say why and the rest works."</p>
            </section>
        </div>
        {waiting.map(|waiting| view! {
            <section class="card waiting" aria-labelledby="waiting-h">
                <h2 id="waiting-h">"Waiting for you"</h2>
                {match waiting {
                    Ok(changes) if changes.is_empty() => view! { <p class="muted">"Nothing waits for your approval."</p> }.into_any(),
                    Ok(changes) => view! { <ChangeTable changes /> }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }}
            </section>
        })}
        <h2>"Environments"</h2>
        {match environments {
            Ok(list) if list.is_empty() => view! {
                <p class="muted">"No environments yet: they appear after the spec repository's first fetch."</p>
            }.into_any(),
            Ok(list) => view! {
                <div class="cards">{list.into_iter().map(|env| {
                    let slo = slo_of(&env.name);
                    let targets = targets.iter().find(|t| t.environment == env.name).cloned();
                    view! { <EnvironmentCard env slo targets /> }
                }).collect_view()}</div>
            }.into_any(),
            Err(error) => view! { <ErrorBox error /> }.into_any(),
        }}
        {match slos {
            // Nothing to say without SLOs or without Prometheus (its card says how to set it up).
            Ok(reports) if reports.iter().all(|r| r.slos.is_empty() && r.error.as_deref().is_none_or(|e| e.contains("not configured"))) => None,
            Ok(reports) => Some(view! { <SloSummary reports /> }.into_any()),
            Err(error) => Some(view! { <ErrorBox error /> }.into_any()),
        }}
        {match chain {
            Ok(report) => view! { <crate::pages::audit::ChainState report /> }.into_any(),
            Err(error) => view! { <ErrorBox error /> }.into_any(),
        }}
    }
}
