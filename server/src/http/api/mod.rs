//! The REST API under `/api/v1`: JSON in and out, errors as
//! `{"error": {"code": "...", "message": "..."}}`. This file holds the router and the answers
//! that belong to no resource; the handlers live in one file per resource.

mod account;
mod audit;
mod changes;
mod environments;
mod hooks;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use super::auth::ApiUser;
use super::error::{method_not_allowed, ApiError};
use super::state::AppState;
use account::{cluster, jobs, notifications, revoke_token, set_email, tokens, users};
use audit::{audit, audit_export, audit_verify};
use changes::{apply, change, changes, replan, revert, review, rollout, Review};
use environments::{
    cost, environment, environments, monitoring, reconcile, scaling, slo, target_health, targets,
};
use hooks::{git_hook, sync, WEBHOOK_BODY_LIMIT};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/audit", get(audit))
        .route("/audit/export", get(audit_export))
        .route("/audit/verify", get(audit_verify))
        .route("/environments", get(environments))
        .route("/environments/{env}", get(environment))
        .route("/changes", get(changes))
        .route("/changes/{id}", get(change))
        .route("/changes/{id}/plan", post(replan))
        .route("/changes/{id}/apply", post(apply))
        .route("/changes/{id}/revert", post(revert))
        .route("/changes/{id}/rollout", post(rollout))
        .route(
            "/changes/{id}/approve",
            post(review).layer(Extension(Review::Approve)),
        )
        .route(
            "/changes/{id}/reject",
            post(review).layer(Extension(Review::Reject)),
        )
        .route(
            "/changes/{id}/comments",
            post(review).layer(Extension(Review::Comment)),
        )
        .route("/notifications", get(notifications))
        .route("/jobs", get(jobs))
        .route("/cluster", get(cluster))
        .route("/users", get(users))
        .route("/users/{name}/email", post(set_email))
        .route("/tokens", get(tokens))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/environments/{env}/reconcile", post(reconcile))
        .route("/environments/{env}/slo", get(slo))
        .route("/environments/{env}/cost", get(cost))
        .route("/environments/{env}/scaling", get(scaling))
        .route("/environments/{env}/monitoring", get(monitoring))
        .route("/environments/{env}/target-health", get(target_health))
        .route("/environments/{env}/targets", get(targets))
        .route("/sync", post(sync))
        .route("/openapi.json", get(openapi))
        .route(
            "/hooks/git",
            post(git_hook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The API's description (`docs/openapi.json`); a test keeps it in step with these routes.
const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// `GET /api/v1/openapi.json`: the OpenAPI document, for anyone (it holds no secrets).
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}

/// The caller as the API sees it (useful to check a token).
async fn me(ApiUser(p): ApiUser) -> Json<domain::user::Me> {
    Json(p.me())
}
