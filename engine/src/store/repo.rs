//! The `repo_state` row and the `environments` table.

use super::Conn;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RepoRow {
    pub url: String,
    pub branch: String,
    pub head_commit: Option<String>,
    pub last_fetch_at: Option<String>,
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub consecutive_failures: i64,
}

pub async fn state(conn: &mut Conn) -> Result<Option<RepoRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT url, branch, head_commit, last_fetch_at, last_success_at, last_error, last_error_at,
            consecutive_failures FROM repo_state WHERE id = 1",
    )
    .fetch_optional(conn)
    .await
}

/// Records the configured source; a different URL or branch starts the history afresh.
pub async fn configure(conn: &mut Conn, url: &str, branch: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO repo_state (id, url, branch) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET url = $1, branch = $2,
            head_commit = CASE WHEN repo_state.url = $1 AND repo_state.branch = $2
                THEN repo_state.head_commit END",
    )
    .bind(url)
    .bind(branch)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn fetch_ok(conn: &mut Conn, head: &str, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE repo_state SET head_commit = $1, last_fetch_at = $2, last_success_at = $2,
            last_error = NULL, consecutive_failures = 0 WHERE id = 1",
    )
    .bind(head)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed fetch; returns the number of failures in a row, this one included.
pub async fn fetch_failed(conn: &mut Conn, error: &str, now: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE repo_state SET last_fetch_at = $2, last_error = $1, last_error_at = $2,
            consecutive_failures = consecutive_failures + 1 WHERE id = 1
         RETURNING consecutive_failures",
    )
    .bind(error)
    .bind(now)
    .fetch_one(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EnvironmentRow {
    pub name: String,
    pub last_applied_commit: Option<String>,
    pub drift: Option<String>,
    pub drift_hash: Option<String>,
    pub drifted_since: Option<String>,
    pub drift_checked_at: Option<String>,
    pub drift_error: Option<String>,
    /// After a revert: the commit it went back from (not applied now).
    pub reverted_from: Option<String>,
}

const ENV_COLUMNS: &str = "name, last_applied_commit, drift, drift_hash, drifted_since,
    drift_checked_at, drift_error, reverted_from";

pub async fn ensure_environment(conn: &mut Conn, name: &str, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO environments (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn environments(conn: &mut Conn) -> Result<Vec<EnvironmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENV_COLUMNS} FROM environments ORDER BY name"
    ))
    .fetch_all(conn)
    .await
}

pub async fn environment(
    conn: &mut Conn,
    name: &str,
) -> Result<Option<EnvironmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENV_COLUMNS} FROM environments WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// Records the commit applied now; `reverted_from` is the commit a revert went back from
/// (`None` for any other apply, which ends the reverted state).
pub async fn set_last_applied(
    conn: &mut Conn,
    name: &str,
    commit: &str,
    reverted_from: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE environments SET last_applied_commit = $1, reverted_from = $2 WHERE name = $3",
    )
    .bind(commit)
    .bind(reverted_from)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records drift: the plan that found it, its hash and since when.
pub async fn set_drift(
    conn: &mut Conn,
    name: &str,
    (plan, hash, since): (&str, &str, &str),
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE environments SET drift = $1, drift_hash = $2, drifted_since = $3,
            drift_checked_at = $4, drift_error = NULL
         WHERE name = $5",
    )
    .bind(plan)
    .bind(hash)
    .bind(since)
    .bind(now)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an environment in sync; `plan` is kept when it has notes (no hash, no since: it is
/// no drift).
pub async fn set_in_sync(
    conn: &mut Conn,
    name: &str,
    plan: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE environments SET drift = $1, drift_hash = NULL, drifted_since = NULL,
            drift_checked_at = $2, drift_error = NULL
         WHERE name = $3",
    )
    .bind(plan)
    .bind(now)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores why a drift check could not run; the last known drift stays.
pub async fn set_drift_error(
    conn: &mut Conn,
    name: &str,
    error: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE environments SET drift_error = $1, drift_checked_at = $2 WHERE name = $3")
        .bind(error)
        .bind(now)
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}
