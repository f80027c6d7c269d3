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
