//! The account-wide handlers for admins and token owners: users, API tokens, the notification
//! delivery log and the jobs queue.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use engine::{Caller, RequestAuth};

use crate::http::auth::ApiUser;
use crate::http::error::{json_body, ApiError, Path, RequestBody};
use crate::http::state::AppState;

/// `GET /api/v1/users`: every user with their e-mail, role and status (admins).
pub(super) async fn users(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<Vec<domain::user::UserSummary>>, ApiError> {
    Ok(Json(st.engine.users().list_users(&Caller::User(p)).await?))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailRequest {
    #[serde(default)]
    email: String,
}

/// `POST /api/v1/users/{name}/email` `{"email": "…"}`: sets or changes a user's e-mail
/// (admins); 200 with the user.
pub(super) async fn set_email(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Extension(auth): Extension<RequestAuth>,
    Path(name): Path<String>,
    RequestBody(body): RequestBody,
) -> Result<Json<domain::user::UserSummary>, ApiError> {
    let req: EmailRequest = json_body(&body)?;
    Ok(Json(
        st.engine
            .users()
            .set_email(&Caller::User(p), &name, &req.email, &auth.meta)
            .await?,
    ))
}

/// `GET /api/v1/tokens`: every live API token of every user (admins).
pub(super) async fn tokens(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<Vec<domain::user::TokenSummary>>, ApiError> {
    Ok(Json(
        st.engine.tokens().list_all_tokens(&Caller::User(p)).await?,
    ))
}

/// `POST /api/v1/tokens/{id}/revoke`: revokes a token (its owner, or an admin for anyone's).
pub(super) async fn revoke_token(
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
        .tokens()
        .revoke_token(&Caller::User(p), id, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/notifications`: the delivery log (admins).
pub(super) async fn notifications(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<Vec<domain::notify::Delivery>>, ApiError> {
    Ok(Json(
        st.engine
            .notifications()
            .notification_log(&Caller::User(p))
            .await?,
    ))
}

/// `GET /api/v1/jobs`: the jobs not over and the latest that failed for good (admins).
/// `GET /api/v1/cluster` (admins): the replicas on this database and which one leads.
pub(super) async fn cluster(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<domain::cluster::ClusterView>, ApiError> {
    Ok(Json(st.engine.cluster.view(&Caller::User(p)).await?))
}

pub(super) async fn jobs(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<Vec<domain::job::JobView>>, ApiError> {
    Ok(Json(st.engine.jobs().list(&Caller::User(p)).await?))
}
