//! tierdeck's pages: rendered on the server; the parts that act in the browser are islands
//! (`#[island]`: the forms, the apply followed live), hydrated there and the only code in the
//! wasm. Server functions are thin calls into the engine (see [`api`]); nothing here talks to
//! the database or AWS.

// Leptos views are deeply nested types; release builds need more room.
#![recursion_limit = "512"]
pub mod api;
mod components;
mod pages;
mod resource;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};
use serde::{Deserialize, Serialize};

use components::Header;
use pages::{
    account::Account,
    admin::Admin,
    audit::Audit,
    changes::{Change, Changes},
    environments::{Environment, Environments},
    import::Import,
    login::Login,
    monitoring::Monitoring,
    overview::Overview,
    scaling::Scaling,
    slo::Slo,
};

/// What the sign-in page says after a refused attempt; put in the request's extensions by the
/// server when it renders the page after a failed sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginNotice {
    pub message: String,
    pub user: String,
    pub next: Option<String>,
}

/// The browser's start (called by the frontend's `hydrate`, before the islands script hydrates
/// each island on the page): the islands' reactive root, then a marker for people and tests
/// that the page is live, `<body data-hydrated>`. The script hydrates the islands one after the
/// other in microtasks, and a timeout runs after those: so the marker comes after the islands.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    leptos::mount::hydrate_islands();
    set_timeout(
        || {
            if let Some(body) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.body())
            {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        },
        std::time::Duration::ZERO,
    );
}

/// The whole HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The signed-in user, as the server saw it for this page load.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Option<domain::user::Me>);

#[cfg(feature = "ssr")]
fn request_extension<T: Clone + Send + Sync + 'static>() -> Option<T> {
    // Read in place: `use_context` would copy the whole request head (headers, extensions).
    with_context::<axum::http::request::Parts, _>(|p| p.extensions.get::<T>().cloned()).flatten()
}

#[cfg(feature = "ssr")]
fn me_on_server() -> Option<domain::user::Me> {
    request_extension::<engine::RequestAuth>()
        .and_then(|a| a.principal)
        .map(|p| p.me())
}

#[cfg(not(feature = "ssr"))]
fn me_on_server() -> Option<domain::user::Me> {
    None
}

#[cfg(feature = "ssr")]
fn login_notice_on_server() -> Option<LoginNotice> {
    request_extension::<LoginNotice>()
}

#[cfg(not(feature = "ssr"))]
fn login_notice_on_server() -> Option<LoginNotice> {
    None
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Only the server renders this: islands get what they need of the user as props.
    let me = me_on_server();
    provide_context(CurrentUser(me.clone()));

    view! {
        <Stylesheet id="leptos" href="/pkg/tierdeck.css" />
        <Title formatter=|text: String| {
            if text.is_empty() { "tierdeck".to_owned() } else { format!("{text} · tierdeck") }
        } />
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            {me.map(|me| view! { <Header me /> })}
            <main id="main" tabindex="-1">
                <Routes fallback=|| view! { <pages::NotFound /> }>
                    <Route path=path!("/") view=Overview ssr=SsrMode::Async />
                    <Route path=path!("/login") view=Login />
                    <Route path=path!("/changes") view=Changes />
                    <Route path=path!("/changes/:id") view=Change ssr=SsrMode::Async />
                    <Route path=path!("/environments") view=Environments />
                    <Route path=path!("/environments/import") view=Import ssr=SsrMode::Async />
                    <Route path=path!("/environments/:name") view=Environment />
                    <Route path=path!("/monitoring") view=Monitoring />
                    <Route path=path!("/scaling") view=Scaling />
                    <Route path=path!("/slo") view=Slo />
                    <Route path=path!("/audit") view=Audit />
                    <Route path=path!("/admin") view=Admin />
                    <Route path=path!("/account") view=Account />
                </Routes>
            </main>
        </Router>
    }
}
