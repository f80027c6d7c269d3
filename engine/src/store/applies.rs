//! Apply runs, their steps and the per-environment locks.

use super::Conn;

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
    /// JSON: `domain::change::Settling`.
    pub settling: Option<String>,
    /// JSON: `domain::rollout::RolloutState`.
    pub rollout: Option<String>,
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
    conn: &mut Conn,
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
         VALUES ($1, $2, $3, $4, $5, 'applying', $6) RETURNING id",
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
    conn: &mut Conn,
    run_id: i64,
    position: u32,
    operation_json: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO apply_steps (run_id, position, operation, status) VALUES ($1, $2, $3, 'pending')",
    )
    .bind(run_id)
    .bind(i64::from(position))
    .bind(operation_json)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a step running, if `run_id` still holds its environment's lock (the run id is the
/// fencing token); `false` when it does not: the caller must not call AWS.
pub async fn step_started(
    conn: &mut Conn,
    run_id: i64,
    position: u32,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "UPDATE apply_steps SET status = 'running', started_at = $1 WHERE run_id = $2 AND position = $3
            AND EXISTS (SELECT 1 FROM environment_locks WHERE run_id = $4)",
    )
    .bind(now)
    .bind(run_id)
    .bind(i64::from(position))
    .bind(run_id)
    .execute(conn)
    .await?;
    Ok(written.rows_affected() > 0)
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

/// Records one AWS call of a step: the attempts so far, the last request id and error. Like
/// [`step_started`], only while `run_id` holds the lock; `false` when it does not.
pub async fn step_attempted(
    conn: &mut Conn,
    run_id: i64,
    position: u32,
    a: Attempt<'_>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let Attempt {
        status,
        attempts,
        request_id,
        error,
    } = a;
    let finished = (status != "running").then_some(now);
    let written = sqlx::query(
        "UPDATE apply_steps SET status = $1, attempts = $2, request_id = COALESCE($3, request_id),
            error = $4, finished_at = $5
         WHERE run_id = $6 AND position = $7
            AND EXISTS (SELECT 1 FROM environment_locks WHERE run_id = $8)",
    )
    .bind(status)
    .bind(i64::from(attempts))
    .bind(request_id)
    .bind(error)
    .bind(finished)
    .bind(run_id)
    .bind(i64::from(position))
    .bind(run_id)
    .execute(conn)
    .await?;
    Ok(written.rows_affected() > 0)
}

/// Records how a step's settling stands (JSON of `domain::change::Settling`), only while
/// `run_id` holds the lock; `false` when it does not.
pub async fn step_settling(
    conn: &mut Conn,
    run_id: i64,
    position: u32,
    settling_json: &str,
) -> Result<bool, sqlx::Error> {
    set_step_json(conn, "settling", run_id, position, settling_json).await
}

/// Records a rollout step's state (JSON of `domain::rollout::RolloutState`), only while
/// `run_id` holds the lock; `false` when it does not.
pub async fn step_rollout(
    conn: &mut Conn,
    run_id: i64,
    position: u32,
    state_json: &str,
) -> Result<bool, sqlx::Error> {
    set_step_json(conn, "rollout", run_id, position, state_json).await
}

/// Writes one of a step's JSON columns (a name from the two above, never from input), fenced
/// by the run's lock.
async fn set_step_json(
    conn: &mut Conn,
    column: &'static str,
    run_id: i64,
    position: u32,
    json: &str,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(&format!(
        "UPDATE apply_steps SET {column} = $1 WHERE run_id = $2 AND position = $3
            AND EXISTS (SELECT 1 FROM environment_locks WHERE run_id = $4)"
    ))
    .bind(json)
    .bind(run_id)
    .bind(i64::from(position))
    .bind(run_id)
    .execute(conn)
    .await?;
    Ok(written.rows_affected() > 0)
}

/// A rollout step's recorded state, if it has one.
pub async fn rollout_state(
    conn: &mut Conn,
    run_id: i64,
    position: u32,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT rollout FROM apply_steps WHERE run_id = $1 AND position = $2")
        .bind(run_id)
        .bind(i64::from(position))
        .fetch_optional(conn)
        .await
        .map(Option::flatten)
}

/// Leaves an operator's request for a rollout step (`continue`, `cancel`, `rollback`) while
/// the step runs; `false` when it no longer does.
pub async fn request_command(
    conn: &mut Conn,
    run_id: i64,
    position: u32,
    command: &str,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "UPDATE apply_steps SET command = $1, command_by = $2
         WHERE run_id = $3 AND position = $4 AND status = 'running'",
    )
    .bind(command)
    .bind(by)
    .bind(run_id)
    .bind(i64::from(position))
    .execute(conn)
    .await?;
    Ok(written.rows_affected() > 0)
}

/// Whether an operator's request waits for a rollout step.
pub async fn pending_command(
    conn: &mut Conn,
    run_id: i64,
    position: u32,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM apply_steps
         WHERE run_id = $1 AND position = $2 AND command IS NOT NULL",
    )
    .bind(run_id)
    .bind(i64::from(position))
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Takes the operator's request left for a rollout step, if any (and clears it).
pub async fn take_command(
    conn: &mut Conn,
    run_id: i64,
    position: u32,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let found: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT command, command_by FROM apply_steps WHERE run_id = $1 AND position = $2",
    )
    .bind(run_id)
    .bind(i64::from(position))
    .fetch_optional(&mut *conn)
    .await?;
    let Some((Some(command), by)) = found else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE apply_steps SET command = NULL, command_by = NULL
         WHERE run_id = $1 AND position = $2 AND command = $3",
    )
    .bind(run_id)
    .bind(i64::from(position))
    .bind(&command)
    .execute(conn)
    .await?;
    Ok(Some((command, by.unwrap_or_default())))
}

pub async fn finish_run(
    conn: &mut Conn,
    run_id: i64,
    status: &str,
    error: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE apply_runs SET status = $1, error = $2, finished_at = $3 WHERE id = $4")
        .bind(status)
        .bind(error)
        .bind(now)
        .bind(run_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Steps that were running when their process died.
pub async fn interrupt_steps(conn: &mut Conn, run_id: i64, now: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE apply_steps SET status = 'interrupted', finished_at = $1,
            error = CASE WHEN settling IS NULL
                THEN 'tierdeck stopped during this call: AWS may or may not have carried it out'
                ELSE 'tierdeck stopped while this step settled: AWS took the call; plan again to see where it stands'
            END
         WHERE run_id = $2 AND status = 'running'",
    )
    .bind(now)
    .bind(run_id)
    .execute(conn)
    .await?
    .rows_affected())
}

pub async fn latest_run(conn: &mut Conn, change_id: i64) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, change_id, environment, started_by, plan_hash, emergency_reason, status, error,
            started_at,
            finished_at
         FROM apply_runs WHERE change_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(change_id)
    .fetch_optional(conn)
    .await
}

pub async fn run_count(conn: &mut Conn, change_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM apply_runs WHERE change_id = $1")
        .bind(change_id)
        .fetch_one(conn)
        .await
}

pub async fn steps(conn: &mut Conn, run_id: i64) -> Result<Vec<StepRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT position, operation, status, attempts, request_id, error, started_at, finished_at,
            settling, rollout
         FROM apply_steps WHERE run_id = $1 ORDER BY position",
    )
    .bind(run_id)
    .fetch_all(conn)
    .await
}

const RUN_COLUMNS: &str = "id, change_id, environment, started_by, plan_hash, emergency_reason,
    status, error, started_at, finished_at";

pub async fn run(conn: &mut Conn, id: i64) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM apply_runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Runs still marked `applying` (their process may have died).
pub async fn unfinished_runs(conn: &mut Conn) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, change_id, environment, started_by, plan_hash, emergency_reason, status, error,
            started_at,
            finished_at
         FROM apply_runs WHERE status = 'applying' ORDER BY id",
    )
    .fetch_all(conn)
    .await
}

pub async fn lock(conn: &mut Conn, environment: &str) -> Result<Option<LockRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT environment, change_id, run_id, holder_host, holder_pid, holder_id, acquired_at,
            heartbeat_at
         FROM environment_locks WHERE environment = $1",
    )
    .bind(environment)
    .fetch_optional(conn)
    .await
}

pub async fn locks(conn: &mut Conn) -> Result<Vec<LockRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT environment, change_id, run_id, holder_host, holder_pid, holder_id, acquired_at,
            heartbeat_at
         FROM environment_locks ORDER BY environment",
    )
    .fetch_all(conn)
    .await
}

/// Takes the lock; the caller has checked inside the same write transaction that it is free.
pub async fn take_lock(conn: &mut Conn, l: &LockRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO environment_locks (environment, change_id, run_id, holder_host, holder_pid,
            holder_id, acquired_at, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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

/// This process takes over the lock of `run_id`, whose holder is gone (a rollout re-attached
/// after a restart).
pub async fn adopt_lock(
    conn: &mut Conn,
    environment: &str,
    run_id: i64,
    host: &str,
    pid: i64,
    holder_id: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "UPDATE environment_locks SET holder_host = $1, holder_pid = $2, holder_id = $3,
            heartbeat_at = $4
         WHERE environment = $5 AND run_id = $6",
    )
    .bind(host)
    .bind(pid)
    .bind(holder_id)
    .bind(now)
    .bind(environment)
    .bind(run_id)
    .execute(conn)
    .await?;
    Ok(written.rows_affected() > 0)
}

/// Marks the lock of `run_id` alive; `false` when the run no longer holds it.
pub async fn heartbeat(
    conn: &mut Conn,
    environment: &str,
    run_id: i64,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let beat = sqlx::query(
        "UPDATE environment_locks SET heartbeat_at = $1 WHERE environment = $2 AND run_id = $3",
    )
    .bind(now)
    .bind(environment)
    .bind(run_id)
    .execute(conn)
    .await?;
    Ok(beat.rows_affected() > 0)
}

/// Whether `run_id` holds the lock of `environment`.
pub async fn holds(conn: &mut Conn, environment: &str, run_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM environment_locks WHERE environment = $1 AND run_id = $2) THEN 1 ELSE 0 END",
    )
    .bind(environment)
    .bind(run_id)
    .fetch_one(conn)
    .await
        .map(|n| n != 0)
}

/// Frees the lock of `environment` if `run_id` holds it: a run never frees another's lock.
pub async fn release(conn: &mut Conn, environment: &str, run_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM environment_locks WHERE environment = $1 AND run_id = $2")
        .bind(environment)
        .bind(run_id)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, crate::Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        (dir, store)
    }

    fn lock_of(run_id: i64) -> LockRow {
        LockRow {
            environment: "prod".into(),
            change_id: 1,
            run_id,
            holder_host: "h".into(),
            holder_pid: 1,
            holder_id: format!("holder-{run_id}"),
            acquired_at: "2026-12-02T00:00:00.000Z".into(),
            heartbeat_at: "2026-12-02T00:00:00.000Z".into(),
        }
    }

    #[tokio::test]
    async fn a_run_that_lost_its_lock_can_neither_write_its_steps_nor_free_the_new_lock() {
        let (_dir, store) = store().await;
        let mut c = store.pool().acquire().await.unwrap();
        sqlx::query(
            "INSERT INTO environments (name, created_at) VALUES ('prod', '2026-12-02T00:00:00Z')",
        )
        .execute(&mut *c)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO changes (id, environment, kind, commit_sha, author_name, author_email,
                committed_at, message, status, file_diff, semantic_diff, spec_errors,
                created_at, updated_at)
             VALUES (1, 'prod', 'commit', 'abc', 'a', 'a@x', 't', 'm', 'applying', '[]', '[]',
                '[]', 't', 't')",
        )
        .execute(&mut *c)
        .await
        .unwrap();
        let first = insert_run(&mut c, 1, "prod", "olga", "h1", None, "t")
            .await
            .unwrap();
        insert_step(&mut c, first, 1, "{}").await.unwrap();
        take_lock(&mut c, &lock_of(first)).await.unwrap();
        assert!(step_started(&mut c, first, 1, "t").await.unwrap());
        assert!(heartbeat(&mut c, "prod", first, "t").await.unwrap());

        // Another process finds the lock stale and takes it for its own run.
        let second = insert_run(&mut c, 1, "prod", "olga", "h1", None, "t")
            .await
            .unwrap();
        release(&mut c, "prod", first).await.unwrap();
        take_lock(&mut c, &lock_of(second)).await.unwrap();

        let attempt = Attempt {
            status: "done",
            attempts: 1,
            request_id: None,
            error: None,
        };
        assert!(!step_attempted(&mut c, first, 1, attempt, "t")
            .await
            .unwrap());
        assert!(!heartbeat(&mut c, "prod", first, "t").await.unwrap());
        assert!(!holds(&mut c, "prod", first).await.unwrap());
        release(&mut c, "prod", first).await.unwrap();
        assert!(
            holds(&mut c, "prod", second).await.unwrap(),
            "the new lock stays"
        );
        assert_eq!(lock(&mut c, "prod").await.unwrap().unwrap().run_id, second);
    }
}
