//! The REST API under `/api/v1`: JSON in and out, errors as
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use domain::audit::{AuditEntry, AuditQuery};
use domain::change::{
    ChangeDetail, ChangeId, ChangeSummary, EnvironmentDetail, EnvironmentSummary,
};
use domain::Role;
use engine::auth::Actor;
use engine::RequestAuth;
use engine::{Caller, ServiceError};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::auth::ApiUser;
use super::AppState;

pub fn router() -> Router<AppState> {
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
        .route("/changes/{id}/approve", post(approve))
        .route("/changes/{id}/reject", post(reject))
        .route("/changes/{id}/comments", post(comment))
        .route("/notifications", get(notifications))
        .route("/tokens", get(tokens))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/environments/{env}/reconcile", post(reconcile))
        .route("/environments/{env}/slo", get(slo))
        .route("/environments/{env}/cost", get(cost))
        .route("/environments/{env}/scaling", get(scaling))
        .route("/environments/{env}/monitoring", get(monitoring))
        .route("/sync", post(sync))
        .route("/openapi.json", get(openapi))
        .route(
            "/hooks/git",
            post(git_hook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .fallback(not_found)
}

/// The API's description (`docs/openapi.json`); a test keeps it in step with these routes.
const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// `GET /api/v1/openapi.json`: the OpenAPI document, for anyone (it holds no secrets).
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Push payloads are small; the body is only read to check its signature.
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

/// An error answer: status, stable code, a sentence for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        if let ServiceError::Internal(cause) = &e {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let retry_after = match &e {
            ServiceError::Throttled { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        Self {
            status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: e.code(),
            message: e.to_string(),
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}

/// The caller as the API sees it (useful to check a token).
async fn me(ApiUser(p): ApiUser) -> Json<domain::user::Me> {
    Json(p.me())
}

/// `GET /api/v1/audit?actor=&action=&env=&since=&until=&cursor=&limit=`: newest first.
async fn audit(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<AuditQuery>,
) -> Result<Json<domain::audit::AuditPage>, ApiError> {
    Ok(Json(st.engine.audit_page(&Caller::User(p), &q).await?))
}

/// The verification state of the whole chain.
async fn audit_verify(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<domain::audit::ChainReport>, ApiError> {
    Ok(Json(st.engine.audit_verify(&Caller::User(p)).await?))
}

async fn environments(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<Vec<EnvironmentSummary>>, ApiError> {
    Ok(Json(st.engine.list_environments(&Caller::User(p)).await?))
}

#[derive(Debug, Deserialize)]
struct EnvironmentQuery {
    /// Hours of schedule preview (default 24, at most two weeks).
    hours: Option<u32>,
}

/// `GET /api/v1/environments/{env}?hours=`: the desired spec at the tracked branch's head,
/// drift, the change being applied, recent changes and the schedule preview.
async fn environment(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Json<EnvironmentDetail>, ApiError> {
    Ok(Json(
        st.engine
            .environment_detail(&Caller::User(p), &env, q.hours.unwrap_or(24))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
struct ChangesQuery {
    env: Option<String>,
    status: Option<String>,
}

async fn changes(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<Vec<ChangeSummary>>, ApiError> {
    Ok(Json(
        st.engine
            .list_changes(&Caller::User(p), q.env.as_deref(), q.status.as_deref())
            .await?,
    ))
}

/// A change id from the path; anything but a number names no change.
fn change_id(id: &str) -> Result<ChangeId, ApiError> {
    id.parse().map(ChangeId).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no change `{id}`"),
        )
    })
}

async fn change(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<ChangeDetail>, ApiError> {
    let id = change_id(&id)?;
    Ok(Json(st.engine.change_detail(&Caller::User(p), id).await?))
}

/// `POST /api/v1/changes/{id}/plan`: plans the change against live AWS now.
async fn replan(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<Option<domain::change::PlanView>>, ApiError> {
    let id = change_id(&id)?;
    Ok(Json(st.engine.refresh_plan(&Caller::User(p), id).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyRequest {
    /// Applies outside the environment's change windows; needs `reason`.
    #[serde(default)]
    emergency: bool,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewRequest {
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// An optional JSON body: empty is the default, anything else must parse.
fn json_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("request body: {e}"),
        )
    })
}

/// `POST /api/v1/changes/{id}/apply` `{"emergency": false, "reason": "…"}` (body optional):
/// plans again and checks the gates; when they pass, starts applying. 202 with the change; its
/// `apply` shows the steps as they run.
async fn apply(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<ChangeDetail>), ApiError> {
    let id = change_id(&id)?;
    let req: ApplyRequest = json_body(&body)?;
    let emergency = domain::approval::emergency_request(req.emergency, req.reason.as_deref())
        .map_err(ServiceError::from)?;
    let caller = Caller::User(p);
    st.engine
        .apply_change(&caller, &auth.meta, id, emergency)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(st.engine.change_detail(&caller, id).await?),
    ))
}

/// `POST /api/v1/changes/{id}/revert`: records a revert of an applied change (to the commit
/// applied before it), planned in the background; 201 with the revert.
async fn revert(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ChangeDetail>), ApiError> {
    let id = change_id(&id)?;
    let caller = Caller::User(p);
    let revert = st.engine.revert(&caller, &auth.meta, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(st.engine.change_detail(&caller, revert).await?),
    ))
}

/// `POST /api/v1/changes/{id}/approve` `{"comment": "…"}` (optional): approves the current
/// plan; 200 with the change.
async fn approve(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ChangeDetail>, ApiError> {
    let id = change_id(&id)?;
    let req: ReviewRequest = json_body(&body)?;
    let caller = Caller::User(p);
    st.engine
        .approve(&caller, &auth.meta, id, req.comment.as_deref())
        .await?;
    Ok(Json(st.engine.change_detail(&caller, id).await?))
}

/// `POST /api/v1/changes/{id}/reject` `{"reason": "…"}`: ends the change.
async fn reject(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ChangeDetail>, ApiError> {
    let id = change_id(&id)?;
    let req: ReviewRequest = json_body(&body)?;
    let caller = Caller::User(p);
    st.engine
        .reject(&caller, &auth.meta, id, req.reason.as_deref())
        .await?;
    Ok(Json(st.engine.change_detail(&caller, id).await?))
}

/// `POST /api/v1/changes/{id}/comments` `{"comment": "…"}`.
async fn comment(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<ChangeDetail>), ApiError> {
    let id = change_id(&id)?;
    let req: ReviewRequest = json_body(&body)?;
    let caller = Caller::User(p);
    st.engine
        .comment(&caller, &auth.meta, id, req.comment.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(st.engine.change_detail(&caller, id).await?),
    ))
}

/// `GET /api/v1/tokens`: every live API token of every user (admins).
async fn tokens(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<Vec<domain::user::TokenSummary>>, ApiError> {
    Ok(Json(st.engine.list_all_tokens(&Caller::User(p)).await?))
}

/// `POST /api/v1/tokens/{id}/revoke`: revokes a token (its owner, or an admin for anyone's).
async fn revoke_token(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no token `{id}`"),
        )
    })?;
    st.engine
        .revoke_token(&Caller::User(p), id, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/notifications`: the delivery log (admins).
async fn notifications(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<Vec<domain::notify::Delivery>>, ApiError> {
    Ok(Json(st.engine.notification_log(&Caller::User(p)).await?))
}

#[derive(Debug, Deserialize)]
struct ScalingQuery {
    /// Hours back (default 24, at most 90 days).
    hours: Option<u32>,
}

/// `GET /api/v1/environments/{env}/scaling?hours=`: capacity snapshots, scaling activities,
/// tierdeck's applies and the scheduled actions that fired.
async fn scaling(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
    Query(q): Query<ScalingQuery>,
) -> Result<Json<domain::scaling::ScalingHistory>, ApiError> {
    Ok(Json(
        st.engine
            .scaling_history(&Caller::User(p), &env, q.hours.unwrap_or(24))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
struct MonitoringQuery {
    /// `1h`, `6h`, `24h` or `7d` (default `1h`).
    range: Option<String>,
    /// Unix time the range ends at (default now).
    end: Option<i64>,
}

/// `GET /api/v1/environments/{env}/monitoring?range=&end=`: each tier's CPU, memory, disk and
/// network, and the service's request rate, error ratio and p95 latency, as points.
async fn monitoring(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
    Query(q): Query<MonitoringQuery>,
) -> Result<Json<domain::monitoring::MonitoringReport>, ApiError> {
    Ok(Json(
        st.engine
            .monitoring(
                &Caller::User(p),
                &env,
                q.range.as_deref().unwrap_or("1h"),
                q.end,
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
struct SloQuery {
    /// Unix time to evaluate at (default now).
    at: Option<i64>,
}

/// `GET /api/v1/environments/{env}/slo?at=`: per SLO the objective, window, SLI, error ratio,
/// budget in requests, burn rates and alert state; `error` when Prometheus cannot answer.
async fn slo(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
    Query(q): Query<SloQuery>,
) -> Result<Json<domain::slo::SloReport>, ApiError> {
    Ok(Json(
        st.engine.slo_report(&Caller::User(p), &env, q.at).await?,
    ))
}

/// `GET /api/v1/environments/{env}/cost`: the monthly cost band of the applied spec (or the
/// head's, never applied), the schedules' saving, a week hour by hour and what ran.
async fn cost(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(env): Path<String>,
) -> Result<Json<domain::cost::CostReport>, ApiError> {
    Ok(Json(
        st.engine.environment_cost(&Caller::User(p), &env).await?,
    ))
}

/// `POST /api/v1/environments/{env}/reconcile`: turns drift into a change (201 with it).
async fn reconcile(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(env): Path<String>,
) -> Result<(StatusCode, Json<ChangeDetail>), ApiError> {
    let caller = Caller::User(p);
    let id = st.engine.reconcile(&caller, &auth.meta, &env).await?;
    Ok((
        StatusCode::CREATED,
        Json(st.engine.change_detail(&caller, id).await?),
    ))
}

/// `POST /api/v1/sync`: fetch the spec repository now and record its changes.
async fn sync(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
) -> Result<Json<engine::repo::SyncOutcome>, ApiError> {
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
async fn git_hook(
    State(st): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    headers: HeaderMap,
    body: Bytes,
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
                .record_event(
                    Actor::system(),
                    "webhook.accepted",
                    Some(source),
                    json!({ "event": event, "bytes": body.len() }),
                    &auth.meta,
                )
                .await?;
            watcher.wake();
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

#[derive(Debug, Deserialize)]
struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(flatten)]
    filter: AuditQuery,
}

/// `GET /api/v1/audit/export?format=csv|json&…filters`: every matching event, streamed.
async fn audit_export(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("format: expected csv or json, not `{format}`"),
        ));
    }
    let events = st.engine.audit_export(&Caller::User(p), &q.filter)?;
    let (body, content_type) = if format == "csv" {
        let header_row = futures::stream::once(async {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(CSV_HEADER.as_bytes()))
        });
        let rows = events.map(|r| r.map(|e| bytes::Bytes::from(csv_row(&e))).map_err(io_err));
        (
            Body::from_stream(header_row.chain(rows)),
            "text/csv; charset=utf-8",
        )
    } else {
        let mut first = true;
        let open = futures::stream::once(async {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"[\n"))
        });
        let rows = events.map(move |r| {
            r.map_err(io_err).and_then(|e| {
                let mut s = if first {
                    String::new()
                } else {
                    ",\n".to_owned()
                };
                first = false;
                s.push_str(&serde_json::to_string(&e).map_err(std::io::Error::other)?);
                Ok(bytes::Bytes::from(s))
            })
        });
        let close = futures::stream::once(async { Ok(bytes::Bytes::from_static(b"\n]\n")) });
        (
            Body::from_stream(open.chain(rows).chain(close)),
            "application/json",
        )
    };
    let filename = format!("tierdeck-audit.{format}");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn io_err(e: ServiceError) -> std::io::Error {
    tracing::error!(error = %e, "audit export stopped");
    std::io::Error::other(e.to_string())
}

const CSV_HEADER: &str =
    "seq,at,actor_kind,actor,token,action,environment,target,detail,client_addr,prev_hash,hash\n";

fn csv_row(e: &AuditEntry) -> String {
    let fields = [
        e.seq.to_string(),
        e.at.clone(),
        e.actor_kind.to_string(),
        e.actor.clone(),
        e.token.clone().unwrap_or_default(),
        e.action.clone(),
        e.environment.clone().unwrap_or_default(),
        e.target.clone().unwrap_or_default(),
        e.detail.to_string(),
        e.client_addr.clone().unwrap_or_default(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Quotes a CSV field when needed, and defuses text a spreadsheet would run as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }
}
