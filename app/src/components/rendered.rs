//! Server-only views rendered to HTML in one pass, and kept by the value they were rendered
//! from.
//!
//! The page's renderer streams: for each element it fills two buffers, and with erased views
//! (see `.cargo/config.toml`) it boxes each child and attribute, so a card's few dozen
//! elements cost hundreds of allocations on every request. [`rendered_by`] writes a view into
//! one string instead, and keeps the string for the value it was rendered from, so the same
//! data is not rendered again on the next request.

use std::collections::VecDeque;
use std::sync::Mutex;

use leptos::prelude::*;
use leptos::tachys::html::InertElement;

/// The last few renders of one view, each with the value it was rendered from.
pub struct Renders<K> {
    kept: Mutex<VecDeque<(K, String)>>,
    most: usize,
}

impl<K> Renders<K> {
    /// Keeps the last `most` renders.
    pub const fn new(most: usize) -> Self {
        Self {
            kept: Mutex::new(VecDeque::new()),
            most,
        }
    }
}

/// `view(key)` rendered to HTML in one pass and put in the page as it is (the markup is the
/// same as the page's renderer writes), kept in `renders`: the HTML of an earlier render from
/// an equal key is put in the page instead (the oldest render goes when there are too many).
///
/// - `view` must be a function of `key` alone: it may not read the request's context (the
///   signed-in user, the URL), or one user's render would be served to another.
/// - One read of the URL is made for it: a no-JavaScript form's error comes back in the URL
///   (`?__path=…&__err=…`), and every server action rendered inside reads it (Leptos's
///   `ServerAction::new`). A request whose URL carries one is rendered for itself alone:
///   nothing kept is used and nothing is kept.
/// - No `Suspense` inside: one pass renders its fallback, not its data.
/// - Never inside an island: the browser builds an island's view itself. Islands inside the
///   view render as they would in the page.
pub fn rendered_by<K, V>(renders: &Renders<K>, key: K, view: impl FnOnce(K) -> V) -> impl IntoView
where
    K: PartialEq + Clone,
    V: IntoView,
{
    if use_context::<leptos::server::ServerActionError>().is_some() {
        return InertElement::new(view(key).into_view().to_html());
    }
    let kept = lock(renders)
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, html)| html.clone());
    let html = match kept {
        Some(html) => html,
        None => {
            let html = view(key.clone()).into_view().to_html();
            let mut kept = lock(renders);
            kept.retain(|(k, _)| *k != key);
            kept.push_back((key, html.clone()));
            while kept.len() > renders.most {
                kept.pop_front();
            }
            html
        }
    };
    InertElement::new(html)
}

fn lock<K>(renders: &Renders<K>) -> std::sync::MutexGuard<'_, VecDeque<(K, String)>> {
    // A render that panicked left the list whole: every change to it is one call.
    renders
        .kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
