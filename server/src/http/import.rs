//! `GET /environments/import.tar?env=…&region=…&by=tag|prefix|names&value=…`: the import
//! page's download, the files of `environments/ENV/` as a tar archive (for admins; tierdeck
//! commits nothing).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::import::Selector;
use domain::spec::EnvName;
use engine::service::import::Outcome;
use engine::Caller;
use serde::Deserialize;

use super::auth::ApiUser;
use super::error::ApiError;
use super::state::AppState;

#[derive(Debug, Deserialize)]
pub(super) struct ImportQuery {
    env: String,
    region: String,
    by: String,
    value: String,
}

pub(super) async fn import_tar(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<ImportQuery>,
) -> Result<Response, ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid", m);
    let env: EnvName = q
        .env
        .parse()
        .map_err(|e: String| invalid(format!("env: {e}")))?;
    let selector = Selector::from_form(&q.by, &q.value).map_err(invalid)?;
    let outcome = st
        .engine
        .imports()
        .import(&Caller::User(p), &env, &q.region, &selector)
        .await?;
    match outcome {
        Outcome::NothingMatched(_) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "nothing in {} matches {}: no Auto Scaling group and no database",
                q.region,
                selector.text()
            ),
        )),
        Outcome::Imported(i) => Ok((
            [
                (header::CONTENT_TYPE, "application/x-tar".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"tierdeck-import-{env}.tar\""),
                ),
            ],
            domain::import::tar(env.as_str(), &i.files),
        )
            .into_response()),
    }
}
