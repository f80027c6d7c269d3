//! The spec repository's handlers: the signed git push webhook and the on-demand sync.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use domain::Role;
use engine::auth::Actor;
use engine::{RequestAuth, ServiceError};
use serde_json::json;

use crate::http::auth::ApiUser;
use crate::http::error::{ApiError, RequestBody};
use crate::http::state::AppState;

/// Push payloads are small; the body is only read to check its signature.
pub(super) const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

/// `POST /api/v1/sync`: fetch the spec repository now and record its changes.
pub(super) async fn sync(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
) -> Result<Json<engine::service::repo_sync::SyncOutcome>, ApiError> {
    p.require(Role::Operator)?;
    let Some(w) = &st.watcher else {
        return Err(ServiceError::Unavailable(
            "no spec repository is configured: set repo.url (TIERDECK_REPO__URL)".into(),
        )
        .into());
    };
    Ok(Json(w.sync(&auth.meta).await?))
}

/// `POST /api/v1/hooks/git`: a signed push notification wakes the watcher. The body is only
/// checked, never trusted: the fetch decides what changed.
pub(super) async fn git_hook(
    State(st): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (Some(secret), Some(watcher)) = (&st.webhook_secret, &st.watcher) else {
        return Err(ServiceError::Unavailable(
            "webhooks are off: set repo.url and repo.webhook_secret".into(),
        )
        .into());
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let event: Option<String> = header("x-github-event")
        .or(header("x-gitlab-event"))
        .map(|e| e.chars().take(64).collect());
    match engine::repo::webhook::verify(
        secret.expose(),
        header("x-hub-signature-256"),
        header("x-gitlab-token"),
        &body,
    ) {
        Ok(source) => {
            st.engine
                .audit()
                .record_event(
                    Actor::system(),
                    "webhook.accepted",
                    Some(source),
                    json!({ "event": event, "bytes": body.len() }),
                    &auth.meta,
                )
                .await?;
            watcher.wake();
            // On a replica that does not lead, the leader fetches.
            if !st.engine.cluster.leadership().leading {
                if let Err(e) = st.engine.store.ask_leader_to_fetch().await {
                    tracing::warn!(error = %e, "asking the leader to fetch");
                }
            }
            Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": true }))))
        }
        Err(refusal) => {
            // One event per source per minute, with how many were refused.
            let source = auth.meta.client_addr.as_deref().unwrap_or("unknown");
            if let Some(count) = st
                .engine
                .refusals
                .count(&format!("webhook {source}"), std::time::Instant::now())
            {
                st.engine
                    .audit()
                    .record_event(
                        Actor::system(),
                        "webhook.rejected",
                        None,
                        json!({ "reason": refusal.as_str(), "event": event, "refusals": count }),
                        &auth.meta,
                    )
                    .await?;
            }
            Err(
                ServiceError::Unauthenticated(format!("webhook refused: {}", refusal.as_str()))
                    .into(),
            )
        }
    }
}
