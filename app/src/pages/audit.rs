//! The audit log: filters, keyset pages (newest first), exports, and the chain's state.

use domain::audit::{AuditEntry, AuditPage, AuditQuery, ChainReport};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

use crate::api::{audit_chain, load_audit_page};
use crate::components::Loaded;
use crate::resource::resource;

const FILTERS: [&str; 5] = ["actor", "action", "env", "since", "until"];

fn query_of(m: &ParamsMap) -> AuditQuery {
    AuditQuery {
        actor: m.get("actor"),
        action: m.get("action"),
        env: m.get("env"),
        since: m.get("since"),
        until: m.get("until"),
        cursor: m.get("cursor").and_then(|c| c.parse().ok()),
        limit: None,
    }
}

/// `actor=…&action=…` for the filters that are set.
fn filter_string(m: &ParamsMap) -> String {
    FILTERS
        .iter()
        .filter_map(|k| {
            m.get(k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", urlencoding::encode(&v)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[component]
pub fn ChainState(report: ChainReport) -> impl IntoView {
    match report.broken {
        None => view! {
            <p class="notice ok chain" role="status">
                "Audit chain intact: " {report.rows_checked} " events verified."
            </p>
        }
        .into_any(),
        Some(b) => view! {
            <p class="notice error chain" role="alert">
                "Audit chain broken: " {b.to_string()} ". Run " <code>"tierdeck audit verify"</code>
                " on the server and restore the database from a backup."
            </p>
        }
        .into_any(),
    }
}

#[component]
fn EventRow(e: AuditEntry) -> impl IntoView {
    let actor = match &e.token {
        Some(t) => format!("{} (token {t})", e.actor),
        None => e.actor.clone(),
    };
    let detail = if e.detail.as_object().is_some_and(|o| o.is_empty()) {
        String::new()
    } else {
        e.detail.to_string()
    };
    let short_hash: String = e.hash.chars().take(12).collect();
    view! {
        <tr>
            <td class="num">{e.seq}</td>
            <td><time datetime=e.at.clone()>{e.at.replace('T', " ").trim_end_matches('Z').to_owned()}</time></td>
            <td>{actor}</td>
            <td><code>{e.action}</code></td>
            <td>{e.environment.unwrap_or_default()}</td>
            <td>{e.target.unwrap_or_default()}</td>
            <td class="detail"><code>{detail}</code></td>
            <td>{e.client_addr.unwrap_or_default()}</td>
            <td><code title=e.hash.clone()>{short_hash}</code></td>
        </tr>
    }
}

#[component]
pub fn Audit() -> impl IntoView {
    let query = use_query_map();
    let page = resource(move || query.with(query_of), load_audit_page);
    let chain = resource(|| (), |_| audit_chain());
    let initial = query.get_untracked();
    let value = move |k: &str| initial.get(k).unwrap_or_default();
    let filters = move || query.with(filter_string);
    let export = move |format: &str| {
        let f = filters();
        if f.is_empty() {
            format!("/api/v1/audit/export?format={format}")
        } else {
            format!("/api/v1/audit/export?format={format}&{f}")
        }
    };
    view! {
        <Title text="Audit" />
        <h1>"Audit log"</h1>
        <Loaded resource=chain quiet=true let:r>
            <ChainState report=r />
        </Loaded>
        <form class="filters" method="get" action="/audit" role="search" aria-label="Filter events">
            <label>"Actor" <input name="actor" value=value("actor") placeholder="alice" /></label>
            <label>"Action" <input name="action" value=value("action") placeholder="login" /></label>
            <label>"Environment" <input name="env" value=value("env") placeholder="prod" /></label>
            <label>"Since (UTC)" <input name="since" type="datetime-local" value=value("since") /></label>
            <label>"Until (UTC)" <input name="until" type="datetime-local" value=value("until") /></label>
            <div class="buttons">
                <button type="submit">"Filter"</button>
                <a href="/audit" class="button secondary">"Clear"</a>
            </div>
        </form>
        <p class="exports">
            "Export the matching events: "
            <a href=move || export("csv") rel="external" download="tierdeck-audit.csv">"CSV"</a>
            " · "
            <a href=move || export("json") rel="external" download="tierdeck-audit.json">"JSON"</a>
        </p>
        <Loaded resource=page loading="Loading events…" empty_when=|p: &AuditPage| p.events.is_empty() empty=|| view! { <p class="card empty-state">"No events match these filters."</p> } let:p>
            {
                let next = p.next_cursor.map(|c| {
                    let f = filters();
                    if f.is_empty() { format!("/audit?cursor={c}") } else { format!("/audit?{f}&cursor={c}") }
                });
                let first = query.with_untracked(|m| m.get("cursor").is_some()).then(|| {
                    let f = filters();
                    if f.is_empty() { "/audit".to_owned() } else { format!("/audit?{f}") }
                });
                view! {
                    <div class="table-wrap">
                        <table class="audit">
                            <caption class="visually-hidden">"Audit events, newest first"</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"#"</th>
                                    <th scope="col">"Time (UTC)"</th>
                                    <th scope="col">"Actor"</th>
                                    <th scope="col">"Action"</th>
                                    <th scope="col">"Environment"</th>
                                    <th scope="col">"Target"</th>
                                    <th scope="col">"Detail"</th>
                                    <th scope="col">"Client"</th>
                                    <th scope="col">"Hash"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {p.events.into_iter().map(|e| view! { <EventRow e /> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    <nav class="pager" aria-label="Pages">
                        {first.map(|href| view! { <a href=href>"← Newest"</a> })}
                        {next.map(|href| view! { <a href=href rel="next">"Older →"</a> })}
                    </nav>
                }
            }
        </Loaded>
    }
}
