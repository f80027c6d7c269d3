//! Services: each checks the caller's role itself, does its work in one transaction with the
//! audit event that records it, and returns plain data.

pub mod apply;
pub mod audit;
pub mod changes;
pub mod cost;
pub mod drift;
pub mod gates;
pub mod identity;
pub mod login;
pub mod notify;
pub mod plans;
pub mod revert;
pub mod reviews;
pub mod scaling;
pub mod slo;
pub mod tokens;
pub mod users;
pub mod watch;

/// The row of environment `env`, or "there is no environment" (404).
pub(crate) async fn known_environment(
    conn: &mut sqlx::SqliteConnection,
    env: &str,
) -> crate::error::ServiceResult<crate::store::repo::EnvironmentRow> {
    crate::store::repo::environment(conn, env)
        .await?
        .ok_or_else(|| {
            crate::error::ServiceError::NotFound(format!("there is no environment `{env}`"))
        })
}
