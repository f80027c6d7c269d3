//! The list of changes, with its filters.

use domain::change::ChangeStatus;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::load_changes;
use crate::components::{ChangeTable, Loaded};
use crate::resource::resource;

#[component]
pub fn Changes() -> impl IntoView {
    let query = use_query_map();
    let filters = move || {
        query.with(|q| {
            (
                q.get("env").filter(|s| !s.is_empty()),
                q.get("status").filter(|s| !s.is_empty()),
            )
        })
    };
    let list = resource(filters, |(env, status)| load_changes(env, status));
    let initial = query.get_untracked();
    let env_value = initial.get("env").unwrap_or_default();
    let status_value = initial.get("status").unwrap_or_default();
    view! {
        <Title text="Changes" />
        <h1>"Changes"</h1>
        <form class="filters" method="get" action="/changes" role="search" aria-label="Filter changes">
            <label>"Environment" <input name="env" value=env_value placeholder="prod" /></label>
            <label>"Status"
                <select name="status">
                    <option value="" selected=status_value.is_empty()>"any"</option>
                    {ChangeStatus::ALL.into_iter().map(|s| view! {
                        <option value=s.as_str() selected=status_value == s.as_str()>{s.as_str()}</option>
                    }).collect_view()}
                </select>
            </label>
            <div class="buttons">
                <button type="submit">"Filter"</button>
                <a href="/changes" class="button secondary">"Clear"</a>
            </div>
        </form>
        <Loaded resource=list loading="Loading changes…" let:changes>
            <ChangeTable changes />
        </Loaded>
    }
}
