//! The environment handlers: the list, one environment's detail, its scaling history,
//! monitoring, target health, scrape targets, SLOs and cost, and reconciling its drift.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::change::{ChangeDetail, EnvironmentDetail, EnvironmentSummary};
use domain::spec::EnvName;
use engine::{Caller, RequestAuth};
use serde::Deserialize;

use crate::http::auth::ApiUser;
use crate::http::error::{ApiError, Path, Query};
use crate::http::state::AppState;

/// An environment's name from the path; a name no environment can have names none (404).
fn env_name(env: &str) -> Result<EnvName, ApiError> {
    env.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no environment `{env}`"),
        )
    })
}

pub(super) async fn environments(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<Vec<EnvironmentSummary>>, ApiError> {
    Ok(Json(
        st.engine
            .changes()
            .list_environments(&Caller::User(p))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct EnvironmentQuery {
    /// Hours of schedule preview (default 24, at most two weeks).
    hours: Option<u32>,
}

/// `GET /api/v1/environments/{env}?hours=`: the environment as the list shows it (drift, the
/// change being applied, open changes) with the desired spec at the tracked branch's head,
/// recent changes and the schedule preview beside it.
pub(super) async fn environment(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Json<EnvironmentDetail>, ApiError> {
    Ok(Json(
        st.engine
            .changes()
            .environment_detail(&Caller::User(p), &env_name(&env)?, q.hours.unwrap_or(24))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct ScalingQuery {
    /// Hours back (default 24, at most 90 days).
    hours: Option<u32>,
}

/// `GET /api/v1/environments/{env}/scaling?hours=`: capacity snapshots, scaling activities,
/// tierdeck's applies and the scheduled actions that fired.
pub(super) async fn scaling(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
    Query(q): Query<ScalingQuery>,
) -> Result<Json<domain::scaling::ScalingHistory>, ApiError> {
    Ok(Json(
        st.engine
            .scaling()
            .scaling_history(&Caller::User(p), &env_name(&env)?, q.hours.unwrap_or(24))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct MonitoringQuery {
    /// `1h`, `6h`, `24h` or `7d` (default `1h`).
    range: Option<String>,
    /// Unix time the range ends at (default now).
    end: Option<i64>,
}

/// `GET /api/v1/environments/{env}/monitoring?range=&end=`: each tier's CPU, memory, disk and
/// network, and the service's request rate, error ratio and p95 latency, as points; each load
/// balancer's and database's CloudWatch metrics; the target groups' health.
pub(super) async fn monitoring(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
    Query(q): Query<MonitoringQuery>,
) -> Result<Json<domain::monitoring::MonitoringReport>, ApiError> {
    Ok(Json(
        st.engine
            .slo()
            .monitoring(
                &Caller::User(p),
                &env_name(&env)?,
                q.range.as_deref().unwrap_or("1h"),
                q.end,
            )
            .await?,
    ))
}

/// `GET /api/v1/environments/{env}/target-health`: each group's instances in service beside
/// its tier's healthy targets, and every target group's targets (instance, zone, state,
/// reason).
pub(super) async fn target_health(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
) -> Result<Json<domain::cloudwatch::TargetHealthReport>, ApiError> {
    Ok(Json(
        st.engine
            .slo()
            .target_health(&Caller::User(p), &env_name(&env)?)
            .await?,
    ))
}

/// `GET /api/v1/environments/{env}/targets`: Prometheus `http_sd_config` scrape targets, the
/// groups' instances in service read now (Prometheus asks again every `refresh_interval`).
pub(super) async fn targets(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
) -> Result<Json<Vec<domain::cloudwatch::ScrapeTargets>>, ApiError> {
    Ok(Json(
        st.engine
            .slo()
            .scrape_targets(&Caller::User(p), &env_name(&env)?)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct SloQuery {
    /// Unix time to evaluate at (default now).
    at: Option<i64>,
}

/// `GET /api/v1/environments/{env}/slo?at=`: per SLO the objective, window, SLI, error ratio,
/// budget in events (what its `total` query counts), burn rates and alert state; `error` when
/// Prometheus cannot answer.
pub(super) async fn slo(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
    Query(q): Query<SloQuery>,
) -> Result<Json<domain::slo::SloReport>, ApiError> {
    Ok(Json(
        st.engine
            .slo()
            .slo_report(&Caller::User(p), &env_name(&env)?, q.at)
            .await?,
    ))
}

/// `GET /api/v1/environments/{env}/cost`: the monthly cost band of the applied spec (or the
/// head's, never applied), the schedules' saving, a week hour by hour and what ran.
pub(super) async fn cost(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
) -> Result<Json<domain::cost::CostReport>, ApiError> {
    Ok(Json(
        st.engine
            .cost()
            .environment_cost(&Caller::User(p), &env_name(&env)?)
            .await?,
    ))
}

/// `POST /api/v1/environments/{env}/reconcile`: turns drift into a change (201 with it).
pub(super) async fn reconcile(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(env): Path<String>,
) -> Result<(StatusCode, Json<ChangeDetail>), ApiError> {
    let caller = Caller::User(p);
    let id = st
        .engine
        .drift()
        .reconcile(&caller, &auth.meta, &env_name(&env)?)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(st.engine.changes().change_detail(&caller, id).await?),
    ))
}
