//! The HTTP server: Leptos pages, server functions, the REST API, sign-in, `/healthz` and
//! `/metrics`, behind the session, authentication, CSRF and metrics layers.

mod api;
mod auth;
mod error;
mod import;
mod login;
mod metrics;
mod sessions;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::http::Request;
use axum::routing::{get, post};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::config::Config;
use metrics::Metrics;
use state::{AppState, RenderFn, Shared};

/// The largest request body the panel reads, for any route (forms, server functions, the API).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Where the built site is: the configured folder, `site` beside the binary, or `target/site`.
fn site_root(config: &Config) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = match &config.server.site_root {
        Some(p) => vec![p.clone()],
        None => {
            let mut c = Vec::new();
            if let Some(dir) = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|p| p.to_path_buf()))
            {
                c.push(dir.join("site"));
                if let Some(up) = dir.parent() {
                    c.push(up.join("site"));
                }
            }
            c.push(PathBuf::from("target/site"));
            c
        }
    };
    candidates
        .iter()
        .find(|p| p.join("pkg").is_dir())
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "configuration: `server.site_root`: no built site (a folder with pkg/ inside) at {}; build it with `cargo xtask build`",
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )
        })
}

/// Public facts about the configuration the pages may show (never secrets).
fn panel_status(config: &Config) -> app::api::PanelStatus {
    app::api::PanelStatus {
        repo_url: config.repo.url.as_deref().map(domain::redact::url),
        repo_branch: config.repo.branch.clone(),
        aws_endpoint: config.aws.endpoint_url.clone(),
        aws_region: config.aws.region.clone(),
        prometheus_url: config.prometheus.url.as_deref().map(domain::redact::url),
    }
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TIERDECK_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn".into()),
        )
        .init();

    let site_root = site_root(&config)?;
    let engine = crate::boot::open_engine(&config).await?;
    let session_store = sessions::KeptSessions::new(engine.store.clone());
    tokio::spawn(
        session_store
            .clone()
            .delete_expired_every(std::time::Duration::from_secs(600)),
    );

    let leptos = LeptosOptions::builder()
        .output_name("tierdeck")
        .site_root(site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .build();
    // Shared: the pages' context below is copied for each request.
    let status = Arc::new(panel_status(&config));
    let watcher = engine
        .settings
        .repo
        .clone()
        .map(|settings| engine::service::repo_sync::Watcher::new(engine.clone(), settings));
    // This replica in the cluster (one replica alone on SQLite leads at its first look); the
    // periodic work runs only while it leads.
    let cluster = engine.cluster.clone();
    tokio::spawn(cluster.clone().run());
    if let Some(w) = &watcher {
        let leading = w.clone();
        tokio::spawn(cluster.clone().while_leading(move || leading.clone().run()));
        // Another replica's webhook: the leader fetches.
        let (w, store, asked) = (w.clone(), engine.store.clone(), cluster.clone());
        tokio::spawn(async move {
            loop {
                store.fetch_asked().await;
                if asked.leadership().leading {
                    w.wake();
                }
            }
        });
    }
    // Applies cut short by an earlier stop are marked before anyone can look at them.
    engine
        .applies()
        .recover_applies()
        .await
        .map_err(|e| anyhow::anyhow!("marking interrupted applies: {e}"))?;
    // The one worker of the jobs queue: plans, auto-applies, applies, what follows them, the
    // watches after them and notifications.
    tokio::spawn(engine::jobs::worker::Worker::new(engine.clone()).run());
    let scaling = (
        std::time::Duration::from_secs(config.pollers.scaling_interval_secs),
        std::time::Duration::from_secs(config.pollers.scaling_retention_days.max(1) * 86_400),
    );
    let drift = std::time::Duration::from_secs(config.pollers.drift_interval_secs);
    tokio::spawn({
        let engine = engine.clone();
        cluster.clone().while_leading(move || {
            let engine = engine.clone();
            async move { engine.scaling().scaling_poller(scaling.0, scaling.1).await }
        })
    });
    tokio::spawn({
        let engine = engine.clone();
        cluster.clone().while_leading(move || {
            let engine = engine.clone();
            async move { engine.drift().drift_poller(drift).await }
        })
    });

    let context = {
        let engine = engine.clone();
        let watcher = watcher.clone();
        move || {
            provide_context(engine.clone());
            provide_context(status.clone());
            provide_context(watcher.clone());
        }
    };
    let render_page: RenderFn = {
        let leptos = leptos.clone();
        let handler = leptos_axum::render_app_to_stream_with_context(context.clone(), move || {
            app::shell(leptos.clone())
        });
        Arc::new(move |req| Box::pin(handler(req)))
    };
    let state = AppState::new(Shared {
        watcher,
        webhook_secret: config.repo.webhook_secret.clone(),
        engine,
        leptos: leptos.clone(),
        metrics: Arc::new(Metrics::new()),
        public_origin: config.public_origin(),
        trust_forwarded_for: config.server.trust_forwarded_for,
        session_max_secs: config.server.session_max_hours.saturating_mul(3600) as i64,
        render_page,
    });

    let sessions = SessionManagerLayer::new(session_store)
        .with_name("tierdeck_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        // Saved when it changes: the sign-in, and a "seen" mark at most once a minute, which
        // moves the idle expiry on (see `auth::session_principal`).
        .with_always_save(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            config.server.session_idle_minutes as i64,
        )));

    let routes = generate_route_list(app::App);
    let router = Router::new()
        .route("/healthz", get(metrics::healthz))
        .route("/metrics", get(metrics::render))
        .route("/login", post(login::login))
        .route("/logout", post(login::logout))
        .route("/environments/import.tar", get(import::import_tar))
        .nest("/api/v1", api::router())
        .route(
            "/sfn/{*name}",
            post({
                let context = context.clone();
                move |req: Request<Body>| {
                    leptos_axum::handle_server_fns_with_context(context.clone(), req)
                }
            }),
        )
        // The site's files, each as its `.gz` from the build when the browser takes gzip
        // (the wasm is a quarter of its size so); everything else falls through to Leptos.
        .nest_service(
            "/pkg",
            tower_http::services::ServeDir::new(site_root.join("pkg")).precompressed_gzip(),
        )
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let leptos = leptos.clone();
            move || app::shell(leptos.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, app::shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard_pages,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::resolve,
        ))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::refuse_cross_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(axum::middleware::from_fn(error::api_body_limit_in_shape))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    // Answers go out at once, not held back by Nagle's algorithm waiting for an ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
    });
    // Tests and scripts read this line to find the port.
    println!("tierdeck listening on http://{addr}");
    tracing::info!(%addr, site = %site_root.display(), "serving");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving HTTP")?;
    // A clean stop hands the lease on at once.
    cluster.leave().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
