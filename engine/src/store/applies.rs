//! Apply runs, their steps and the per-environment locks.

use sqlx::SqliteConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub change_id: i64,
    pub environment: String,
    pub started_by: String,
    pub plan_hash: String,
    pub emergency_reason: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepRow {
    pub position: i64,
    pub operation: String,
    pub status: String,
    pub attempts: i64,
    pub request_id: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LockRow {
    pub environment: String,
    pub change_id: i64,
    pub run_id: i64,
    pub holder_host: String,
    pub holder_pid: i64,
    pub holder_id: String,
    pub acquired_at: String,
    pub heartbeat_at: String,
}

pub async fn insert_run(
    conn: &mut SqliteConnection,
    change_id: i64,
    environment: &str,
    started_by: &str,
    plan_hash: &str,
    emergency_reason: Option<&str>,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO apply_runs (change_id, environment, started_by, plan_hash, emergency_reason,
            status, started_at)
         VALUES (?, ?, ?, ?, ?, 'applying', ?) RETURNING id",
    )
    .bind(change_id)
    .bind(environment)
    .bind(started_by)
    .bind(plan_hash)
    .bind(emergency_reason)
    .bind(now)
    .fetch_one(conn)
    .await
}

pub async fn insert_step(
    conn: &mut SqliteConnection,
    run_id: i64,
    position: u32,
    operation_json: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO apply_steps (run_id, position, operation, status) VALUES (?, ?, ?, 'pending')",
    )
    .bind(run_id)
    .bind(position)
    .bind(operation_json)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn step_started(
    conn: &mut SqliteConnection,
    run_id: i64,
    position: u32,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE apply_steps SET status = 'running', started_at = ? WHERE run_id = ? AND position = ?",
    )
    .bind(now)
    .bind(run_id)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

/// One AWS call of a step.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// `running` while more attempts follow, else `done` or `failed`.
    pub status: &'a str,
    /// Calls so far.
    pub attempts: u32,
    pub request_id: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// Records one AWS call of a step: the attempts so far, the last request id and error.
pub async fn step_attempted(
    conn: &mut SqliteConnection,
    run_id: i64,
    position: u32,
    a: Attempt<'_>,
    now: &str,
) -> Result<(), sqlx::Error> {
    let Attempt {
        status,
        attempts,
        request_id,
        error,
    } = a;
    let finished = (status != "running").then_some(now);
    sqlx::query(
        "UPDATE apply_steps SET status = ?, attempts = ?, request_id = COALESCE(?, request_id),
            error = ?, finished_at = ?
         WHERE run_id = ? AND position = ?",
    )
    .bind(status)
    .bind(attempts)
    .bind(request_id)
    .bind(error)
    .bind(finished)
    .bind(run_id)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn finish_run(
    conn: &mut SqliteConnection,
    run_id: i64,
    status: &str,
    error: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE apply_runs SET status = ?, error = ?, finished_at = ? WHERE id = ?")
        .bind(status)
        .bind(error)
        .bind(now)
        .bind(run_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Steps that were running when their process died.
pub async fn interrupt_steps(
    conn: &mut SqliteConnection,
    run_id: i64,
    now: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE apply_steps SET status = 'interrupted', finished_at = ?,
            error = 'tierdeck stopped during this call: AWS may or may not have carried it out'
         WHERE run_id = ? AND status = 'running'",
    )
    .bind(now)
    .bind(run_id)
    .execute(conn)
    .await?
    .rows_affected())
}

pub async fn latest_run(
    conn: &mut SqliteConnection,
    change_id: i64,
) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, change_id, environment, started_by, plan_hash, emergency_reason, status, error,
            started_at,
            finished_at
         FROM apply_runs WHERE change_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(change_id)
    .fetch_optional(conn)
    .await
}

pub async fn run_count(conn: &mut SqliteConnection, change_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM apply_runs WHERE change_id = ?")
        .bind(change_id)
        .fetch_one(conn)
        .await
}

pub async fn steps(conn: &mut SqliteConnection, run_id: i64) -> Result<Vec<StepRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT position, operation, status, attempts, request_id, error, started_at, finished_at
         FROM apply_steps WHERE run_id = ? ORDER BY position",
    )
    .bind(run_id)
    .fetch_all(conn)
    .await
}

/// Runs still marked `applying` (their process may have died).
pub async fn unfinished_runs(conn: &mut SqliteConnection) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, change_id, environment, started_by, plan_hash, emergency_reason, status, error,
            started_at,
            finished_at
         FROM apply_runs WHERE status = 'applying' ORDER BY id",
    )
    .fetch_all(conn)
    .await
}

pub async fn lock(
    conn: &mut SqliteConnection,
    environment: &str,
) -> Result<Option<LockRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT environment, change_id, run_id, holder_host, holder_pid, holder_id, acquired_at,
            heartbeat_at
         FROM environment_locks WHERE environment = ?",
    )
    .bind(environment)
    .fetch_optional(conn)
    .await
}

pub async fn locks(conn: &mut SqliteConnection) -> Result<Vec<LockRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT environment, change_id, run_id, holder_host, holder_pid, holder_id, acquired_at,
            heartbeat_at
         FROM environment_locks ORDER BY environment",
    )
    .fetch_all(conn)
    .await
}

/// Takes the lock; the caller has checked inside the same write transaction that it is free.
pub async fn take_lock(conn: &mut SqliteConnection, l: &LockRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO environment_locks (environment, change_id, run_id, holder_host, holder_pid,
            holder_id, acquired_at, heartbeat_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&l.environment)
    .bind(l.change_id)
    .bind(l.run_id)
    .bind(&l.holder_host)
    .bind(l.holder_pid)
    .bind(&l.holder_id)
    .bind(&l.acquired_at)
    .bind(&l.heartbeat_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn heartbeat(
    conn: &mut SqliteConnection,
    environment: &str,
    holder_id: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE environment_locks SET heartbeat_at = ? WHERE environment = ? AND holder_id = ?",
    )
    .bind(now)
    .bind(environment)
    .bind(holder_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn release(conn: &mut SqliteConnection, environment: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM environment_locks WHERE environment = ?")
        .bind(environment)
        .execute(conn)
        .await?;
    Ok(())
}
