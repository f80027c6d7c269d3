//! The change handlers: list, detail, plan again, apply, revert, and the reviews (approve,
//! reject, comment).

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::change::{ChangeDetail, ChangeId, ChangeSummary};
use engine::{Caller, RequestAuth, ServiceError};
use serde::Deserialize;

use crate::http::auth::ApiUser;
use crate::http::error::{json_body, ApiError, Path, Query, RequestBody};
use crate::http::state::AppState;

#[derive(Debug, Deserialize)]
pub(super) struct ChangesQuery {
    env: Option<String>,
    status: Option<String>,
}

pub(super) async fn changes(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<Vec<ChangeSummary>>, ApiError> {
    let (env, status) = domain::change::list_filters(q.env.as_deref(), q.status.as_deref())
        .map_err(|(field, message)| ServiceError::invalid(field, message))?;
    Ok(Json(
        st.engine
            .changes()
            .list_changes(&Caller::User(p), env.as_ref(), status)
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

pub(super) async fn change(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<ChangeDetail>, ApiError> {
    let id = change_id(&id)?;
    Ok(Json(
        st.engine
            .changes()
            .change_detail(&Caller::User(p), id)
            .await?,
    ))
}

/// `POST /api/v1/changes/{id}/plan`: plans the change against live AWS now.
pub(super) async fn replan(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<Option<domain::change::PlanView>>, ApiError> {
    let id = change_id(&id)?;
    Ok(Json(
        st.engine.plans().plan_again(&Caller::User(p), id).await?,
    ))
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

/// `POST /api/v1/changes/{id}/apply` `{"emergency": false, "reason": "…"}` (body optional):
/// plans again and checks the gates; when they pass, starts applying. 202 with the change; its
/// `apply` shows the steps as they run.
pub(super) async fn apply(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(id): Path<String>,
    RequestBody(body): RequestBody,
) -> Result<(StatusCode, Json<ChangeDetail>), ApiError> {
    let id = change_id(&id)?;
    let req: ApplyRequest = json_body(&body)?;
    let emergency = domain::approval::emergency_request(req.emergency, req.reason.as_deref())
        .map_err(ServiceError::from)?;
    let caller = Caller::User(p);
    st.engine
        .applies()
        .apply_change(&caller, &auth.meta, id, emergency)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(st.engine.changes().change_detail(&caller, id).await?),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutRequest {
    /// `continue`, `cancel` or `rollback` (an empty body names none, which is refused).
    #[serde(default)]
    action: String,
}

/// What an operator's rollout action answers: what happens now, and the change.
#[derive(Debug, serde::Serialize)]
pub(super) struct RolloutAnswer {
    message: String,
    change: ChangeDetail,
}

/// `POST /api/v1/changes/{id}/rollout` `{"action": "continue" | "cancel" | "rollback"}`: ends
/// the bake of the running rollout now, cancels its refresh, or rolls it back; 409 with the
/// reason where AWS or the stage would refuse. 202 with what happens and the change.
pub(super) async fn rollout(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(id): Path<String>,
    RequestBody(body): RequestBody,
) -> Result<(StatusCode, Json<RolloutAnswer>), ApiError> {
    let id = change_id(&id)?;
    let req: RolloutRequest = json_body(&body)?;
    let command = req
        .action
        .parse::<domain::rollout::Command>()
        .map_err(|e| ServiceError::invalid("action", e))?;
    let caller = Caller::User(p);
    let message = st
        .engine
        .applies()
        .rollout_command(&caller, &auth.meta, id, command)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RolloutAnswer {
            message,
            change: st.engine.changes().change_detail(&caller, id).await?,
        }),
    ))
}

/// `POST /api/v1/changes/{id}/revert`: records a revert of an applied change (to the commit
/// applied before it), planned in the background; 201 with the revert.
pub(super) async fn revert(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ChangeDetail>), ApiError> {
    let id = change_id(&id)?;
    let caller = Caller::User(p);
    let revert = st.engine.reverts().revert(&caller, &auth.meta, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(st.engine.changes().change_detail(&caller, revert).await?),
    ))
}

/// What a review of a change does; each review route sets its own as an extension.
#[derive(Debug, Clone, Copy)]
pub(super) enum Review {
    /// `POST /api/v1/changes/{id}/approve` `{"comment": "…"}` (optional): approves the current
    /// plan; 200 with the change.
    Approve,
    /// `POST /api/v1/changes/{id}/reject` `{"reason": "…"}`: ends the change; 200 with it.
    Reject,
    /// `POST /api/v1/changes/{id}/comments` `{"comment": "…"}`: 201 with the change.
    Comment,
}

/// The three reviews: they differ only in the engine call, the body field it takes, and the
/// status of the answer.
pub(super) async fn review(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Extension(review): Extension<Review>,
    Path(id): Path<String>,
    RequestBody(body): RequestBody,
) -> Result<(StatusCode, Json<ChangeDetail>), ApiError> {
    let id = change_id(&id)?;
    let req: ReviewRequest = json_body(&body)?;
    let caller = Caller::User(p);
    let (engine, meta) = (&st.engine, &auth.meta);
    let status = match review {
        Review::Approve => {
            engine
                .reviews()
                .approve(&caller, meta, id, req.comment.as_deref())
                .await?;
            StatusCode::OK
        }
        Review::Reject => {
            engine
                .reviews()
                .reject(&caller, meta, id, req.reason.as_deref())
                .await?;
            StatusCode::OK
        }
        Review::Comment => {
            engine
                .reviews()
                .comment(&caller, meta, id, req.comment.as_deref())
                .await?;
            StatusCode::CREATED
        }
    };
    Ok((
        status,
        Json(st.engine.changes().change_detail(&caller, id).await?),
    ))
}
