//! What every handler shares: [`AppState`], and the parts of it handlers take on their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::Request;
use axum::response::Response;
use engine::Engine;
use leptos::config::LeptosOptions;

use super::metrics::Metrics;
use crate::config::Secret;

pub(super) type RenderFn = Arc<
    dyn Fn(Request<Body>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

/// Shared by every handler: one allocation, so each layer and handler that takes the state
/// (four layers and the page route per request) clones a pointer, not the Leptos options'
/// strings and the rest.
#[derive(Clone)]
pub(super) struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub(super) struct Shared {
    pub engine: Engine,
    pub leptos: LeptosOptions,
    pub metrics: Arc<Metrics>,
    /// `scheme://host[:port]` that state-changing requests must come from; `None`: the
    /// request's own `Host`.
    pub public_origin: Option<String>,
    pub trust_forwarded_for: bool,
    /// Renders a page through Leptos outside its own route (the sign-in page after a failed
    /// attempt, with the status that goes with it).
    pub render_page: RenderFn,
    /// The spec repository's watcher, when `repo.url` is set.
    pub watcher: Option<Arc<engine::service::repo_sync::Watcher>>,
    pub webhook_secret: Option<Secret>,
    /// Sessions end this long after sign-in.
    pub session_max_secs: i64,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        s.leptos.clone()
    }
}

/// For `/healthz`, which needs only the engine.
impl FromRef<AppState> for Engine {
    fn from_ref(s: &AppState) -> Self {
        s.engine.clone()
    }
}

/// For the metrics layer and `/metrics`, which need only the registry.
impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(s: &AppState) -> Self {
        s.metrics.clone()
    }
}
