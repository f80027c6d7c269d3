//! The overview: what the panel is connected to, and what it still needs.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{audit_chain, load_panel_status};
use crate::components::ErrorBox;
use crate::CurrentUser;

#[component]
pub fn Overview() -> impl IntoView {
    let status = Resource::new(|| (), |_| load_panel_status());
    let chain = Resource::new(|| (), |_| audit_chain());
    let me = use_context::<CurrentUser>().and_then(|c| c.0);
    view! {
        <Title text="Overview" />
        <h1>"Overview"</h1>
        {me.map(|me| view! { <p class="lede">"Signed in as " <strong>{me.name}</strong> " (" {me.role.to_string()} ")."</p> })}
        <Suspense fallback=|| view! { <p aria-busy="true">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(s) => view! {
                        <div class="cards">
                            <section class="card" aria-labelledby="repo-h">
                                <h2 id="repo-h">"Spec repository"</h2>
                                {match s.repo_url {
                                    Some(url) => view! {
                                        <p>"Configured: " <code>{url}</code> " (branch " <code>{s.repo_branch}</code> ")."</p>
                                        <p class="muted">"This release does not watch the repository yet: fetching commits and recording changes comes with the spec-repository release."</p>
                                    }.into_any(),
                                    None => view! {
                                        <p>"Not configured. Set " <code>"[repo] url"</code> " in " <code>"tierdeck.toml"</code>
                                        " (or " <code>"TIERDECK_REPO__URL"</code> ") to the spec repository's path or URL."</p>
                                        <p class="muted">"Watching it comes with the spec-repository release."</p>
                                    }.into_any(),
                                }}
                            </section>
                            <section class="card" aria-labelledby="aws-h">
                                <h2 id="aws-h">"AWS"</h2>
                                <p>"Default region " <code>{s.aws_region}</code> ". "
                                {match s.aws_endpoint {
                                    Some(e) => view! { "Endpoint override: " <code>{e}</code> "." }.into_any(),
                                    None => view! { "Credentials come from the default AWS chain." }.into_any(),
                                }}</p>
                                <p class="muted">"Reading live state, planning and applying come with the AWS release; nothing here is read from AWS yet."</p>
                            </section>
                            <section class="card" aria-labelledby="prom-h">
                                <h2 id="prom-h">"Prometheus"</h2>
                                {match s.prometheus_url {
                                    Some(u) => view! { <p>"Configured: " <code>{u}</code> "."</p> }.into_any(),
                                    None => view! { <p>"Not configured. Set " <code>"[prometheus] url"</code> " (or " <code>"TIERDECK_PROMETHEUS__URL"</code> ")."</p> }.into_any(),
                                }}
                                <p class="muted">"Monitoring and SLO status come with the monitoring release."</p>
                            </section>
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match chain.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(r) => view! { <crate::pages::audit::ChainState report=r /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
