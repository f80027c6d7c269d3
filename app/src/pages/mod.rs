//! One module per page.

pub mod account;
pub mod admin;
pub mod audit;
pub mod changes;
pub mod cost;
pub mod environments;
pub mod import;
pub mod login;
pub mod monitoring;
pub mod overview;
pub mod scaling;
pub mod schedule;
pub mod slo;

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <h1>"Not found"</h1>
        <p>"There is no page at this address. " <a href="/">"Go to the overview"</a> "."</p>
    }
}
