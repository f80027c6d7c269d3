//! Pages whose data arrives with later releases. Each says what is missing and how to set it
//! up; none shows made-up data.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
fn Pending(
    title: &'static str,
    what: &'static str,
    needs: &'static str,
    release: &'static str,
) -> impl IntoView {
    view! {
        <Title text=title />
        <h1>{title}</h1>
        <section class="card empty-state">
            <p><strong>"Nothing to show yet. "</strong>{what}</p>
            <p>{needs}</p>
            <p class="muted">"This comes with the " {release} " release of tierdeck; this build does not have it yet."</p>
        </section>
    }
}

#[component]
pub fn Changes() -> impl IntoView {
    view! {
        <Pending
            title="Changes"
            what="A change is recorded for each environment touched by a new commit of the spec repository: its file diff, semantic diff, plan against live AWS and approvals."
            needs="It needs the spec repository: set [repo] url (and branch, webhook_secret) in tierdeck.toml or TIERDECK_REPO__URL."
            release="spec-repository"
        />
    }
}

#[component]
pub fn Environments() -> impl IntoView {
    view! {
        <Pending
            title="Environments"
            what="Each folder environments/<name>/ of the spec repository is an environment: its desired capacity, scaling, schedules, database, security rules and SLOs, beside what AWS runs now."
            needs="It needs the spec repository ([repo] url) and AWS credentials (the default chain, or [aws] endpoint_url for an emulator)."
            release="spec-repository"
        />
    }
}

#[component]
pub fn Scaling() -> impl IntoView {
    view! {
        <Pending
            title="Scaling"
            what="Each Auto Scaling group's capacity over time, its scaling activities, tierdeck's applies and the scheduled actions to come."
            needs="It needs AWS access ([aws] region, or endpoint_url for an emulator) and the spec repository."
            release="monitoring"
        />
    }
}

#[component]
pub fn Slo() -> impl IntoView {
    view! {
        <Pending
            title="SLO"
            what="Each SLO's objective, error budget in requests, burn rates and alert state, computed from Prometheus."
            needs="It needs Prometheus: set [prometheus] url (or TIERDECK_PROMETHEUS__URL), and SLOs in the spec repository."
            release="monitoring"
        />
    }
}
