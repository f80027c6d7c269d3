//! `Loaded`: what a server function loads, with the loading line, its error or the empty text
//! standing in for it as long as there is nothing else to show.

use std::sync::Arc;

use leptos::prelude::*;
use leptos_meta::Title;

use super::ErrorBox;
use crate::resource::Loading;

/// Waits for `resource` and shows, in its place: a loading line while it loads, its error, the
/// `empty` view when `empty_when` says the data has nothing to show, or else the children with
/// the data (`let:name` binds it).
#[component]
pub fn Loaded<T, V, F>(
    /// What a server function loads.
    resource: Loading<T>,
    /// The line shown while it loads.
    #[prop(default = "Loading…")]
    loading: &'static str,
    /// Show nothing while it loads, not even the loading line.
    #[prop(optional)]
    quiet: bool,
    /// On an error, the page's title and heading above it too: for a page that is all this data.
    #[prop(optional)]
    title: Option<&'static str>,
    /// Whether the data has nothing to show, so `empty` stands in for the children.
    #[prop(optional)]
    empty_when: Option<fn(&T) -> bool>,
    /// What stands in for data with nothing to show: nothing unless told.
    #[prop(optional, into)]
    empty: ViewFn,
    /// The view of the data.
    children: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    V: IntoView + 'static,
    F: Fn(T) -> V + Send + Sync + 'static,
{
    let children = Arc::new(children);
    view! {
        <Suspense fallback=move || (!quiet).then(|| view! { <p aria-busy="true">{loading}</p> })>
            {move || {
                let children = Arc::clone(&children);
                let empty = empty.clone();
                Suspend::new(async move {
                    match resource.await {
                        Err(e) => match title {
                            None => view! { <ErrorBox error=e /> }.into_any(),
                            Some(t) => view! { <Title text=t /><h1>{t}</h1><ErrorBox error=e /> }.into_any(),
                        },
                        Ok(data) if empty_when.is_some_and(|f| f(&data)) => empty.run(),
                        Ok(data) => children(data).into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
