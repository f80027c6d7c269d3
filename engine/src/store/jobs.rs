//! The `jobs` table: work that outlives a request (`domain::job`), queued in the transaction
//! that asks for it and taken by one worker at a time under a lease.

use super::Conn;
use chrono::{DateTime, Utc};
use domain::job::{JobKind, JobState, JobView};

use super::{format_time, parse_time};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub change_id: Option<i64>,
    pub environment: Option<String>,
    pub payload: String,
    pub attempts: i64,
    pub failures: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    pub run_after: String,
    pub holder_id: Option<String>,
    pub holder_host: Option<String>,
    pub holder_pid: Option<i64>,
    pub lease_until: Option<String>,
    pub requested_by: String,
    pub created_at: String,
    pub finished_at: Option<String>,
}

const COLUMNS: &str = "id, kind, state, change_id, environment, payload, attempts, failures,
    max_attempts, last_error, run_after, holder_id, holder_host, holder_pid, lease_until,
    requested_by, created_at, finished_at";

impl JobRow {
    pub fn kind(&self) -> Result<JobKind, String> {
        self.kind.parse()
    }

    /// The row as the pages show it.
    pub fn view(&self) -> Result<JobView, String> {
        Ok(JobView {
            id: self.id,
            kind: self.kind()?,
            state: self.state.parse()?,
            change_id: self.change_id,
            environment: self.environment.clone(),
            attempts: self.attempts.max(0) as u32,
            max_attempts: self.max_attempts.max(0) as u32,
            last_error: self.last_error.clone(),
            run_after: parse_time(&self.run_after)?,
            created_at: parse_time(&self.created_at)?,
            finished_at: self.finished_at.as_deref().map(parse_time).transpose()?,
            requested_by: self.requested_by.clone(),
        })
    }
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: JobKind,
    pub change_id: Option<i64>,
    pub environment: Option<&'a str>,
    /// JSON, by kind.
    pub payload: String,
    /// At most one job waiting per key: a second one asked before the first runs is the first.
    pub dedup_key: Option<String>,
    pub max_attempts: u32,
    pub run_after: DateTime<Utc>,
    pub requested_by: &'a str,
}

/// Queues a job in the caller's transaction. Returns its id, or `None` when a job with the same
/// key is already waiting (it will do the same work).
pub async fn insert(
    conn: &mut Conn,
    j: &NewJob<'_>,
    now: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    let now = format_time(now);
    sqlx::query_scalar(
        "INSERT INTO jobs (kind, state, change_id, environment, payload, dedup_key, max_attempts,
            run_after, requested_by, created_at, updated_at)
         VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(j.kind.as_str())
    .bind(j.change_id)
    .bind(j.environment)
    .bind(&j.payload)
    .bind(&j.dedup_key)
    .bind(i64::from(j.max_attempts))
    .bind(format_time(j.run_after))
    .bind(j.requested_by)
    .bind(&now)
    .bind(&now)
    .fetch_optional(conn)
    .await
}

/// Who takes jobs: a process, as the environment lock names one.
#[derive(Debug, Clone, Copy)]
pub struct Claimant<'a> {
    pub id: &'a str,
    pub host: &'a str,
    pub pid: i64,
}

/// Takes up to `limit` jobs that are due — waiting ones whose time has come, and running ones
/// whose worker's lease ran out — for `by`, until `lease_until`; each take counts as a try.
/// Returns them as taken.
pub async fn claim(
    conn: &mut Conn,
    by: Claimant<'_>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<JobRow>, sqlx::Error> {
    let now = format_time(now);
    // On PostgreSQL several replicas claim at once: each skips the rows another is taking
    // (SQLite has one writer at a time and no row locks).
    let skip_taken = match super::backend_of(conn) {
        super::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        super::Backend::Sqlite => "",
    };
    sqlx::query_as(&format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, holder_id = $1,
            holder_host = $2, holder_pid = $3, lease_until = $4, updated_at = $5
         WHERE id IN (
            SELECT id FROM jobs
            WHERE (state IN ('queued', 'retrying') AND run_after <= $6)
               OR (state = 'running' AND lease_until < $7)
            ORDER BY run_after, id LIMIT $8 {skip_taken})
         RETURNING {COLUMNS}"
    ))
    .bind(by.id)
    .bind(by.host)
    .bind(by.pid)
    .bind(format_time(lease_until))
    .bind(&now)
    .bind(&now)
    .bind(&now)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
}

/// Whether any job is due now (a read: the worker writes only when there is something to
/// take, so an idle panel's kept reads stand).
pub async fn any_due(conn: &mut Conn, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let now = format_time(now);
    sqlx::query_scalar::<_, i64>(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM jobs
            WHERE (state IN ('queued', 'retrying') AND run_after <= $1)
               OR (state = 'running' AND lease_until < $2)) THEN 1 ELSE 0 END",
    )
    .bind(&now)
    .bind(&now)
    .fetch_one(conn)
    .await
    .map(|n| n != 0)
}

/// Renews the lease of every job `holder` runs.
pub async fn renew(
    conn: &mut Conn,
    holder: &str,
    lease_until: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE jobs SET lease_until = $1 WHERE holder_id = $2 AND state = 'running'")
            .bind(format_time(lease_until))
            .bind(holder)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Jobs running under another holder than `holder`: at start, those of a process that died
/// are freed at once rather than when their lease runs out.
pub async fn running_elsewhere(conn: &mut Conn, holder: &str) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE state = 'running' AND holder_id IS DISTINCT FROM $1 ORDER BY id"
    ))
    .bind(holder)
    .fetch_all(conn)
    .await
}

/// Ends the lease of job `id` now (its holder is gone).
pub async fn expire_lease(conn: &mut Conn, id: i64, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND state = 'running'")
        .bind(format_time(now - chrono::Duration::milliseconds(1)))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// How a try ended, to record.
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    Done,
    /// Run again at this time; the failures in a row start over.
    Again(DateTime<Utc>),
    /// Failed; try again at this time.
    Retry {
        error: &'a str,
        at: DateTime<Utc>,
    },
    Failed {
        error: &'a str,
    },
}

/// Records how job `id`'s try ended, if `holder` still holds it (a worker whose lease ran out
/// and was taken over writes nothing). Returns whether it was written.
pub async fn end(
    conn: &mut Conn,
    id: i64,
    holder: &str,
    ending: Ending<'_>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let now_text = format_time(now);
    let (state, error, run_after, failures, finished) = match ending {
        Ending::Done => (JobState::Done, None, None, "failures", true),
        Ending::Again(at) => (JobState::Queued, None, Some(at), "0", false),
        Ending::Retry { error, at } => (
            JobState::Retrying,
            Some(error),
            Some(at),
            "failures + 1",
            false,
        ),
        Ending::Failed { error } => (JobState::Failed, Some(error), None, "failures + 1", true),
    };
    let done = sqlx::query(&format!(
        "UPDATE jobs SET state = $1, last_error = COALESCE($2, last_error),
            run_after = COALESCE($3, run_after), failures = {failures}, holder_id = NULL,
            holder_host = NULL, holder_pid = NULL, lease_until = NULL, updated_at = $4,
            finished_at = $5
         WHERE id = $6 AND state = 'running' AND holder_id = $7"
    ))
    .bind(state.as_str())
    .bind(error)
    .bind(run_after.map(format_time))
    .bind(&now_text)
    .bind(finished.then_some(&now_text))
    .bind(id)
    .bind(holder)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks job `id` done in the caller's transaction, whoever runs it: for a handler whose own
/// work commits the job's end with it (an auto-apply that starts the apply).
pub async fn complete(conn: &mut Conn, id: i64, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let now = format_time(now);
    let done = sqlx::query(
        "UPDATE jobs SET state = 'done', holder_id = NULL, holder_host = NULL, holder_pid = NULL,
            lease_until = NULL, updated_at = $1, finished_at = $2
         WHERE id = $3 AND state = 'running'",
    )
    .bind(&now)
    .bind(&now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// A change's jobs, oldest first.
pub async fn of_change(conn: &mut Conn, change_id: i64) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE change_id = $1 ORDER BY id"
    ))
    .bind(change_id)
    .fetch_all(conn)
    .await
}

/// The jobs not over, and the latest `failed` ones that failed for good, newest first.
pub async fn recent(conn: &mut Conn, failed: u32) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE state IN ('queued', 'running', 'retrying')
         UNION ALL
         SELECT * FROM (SELECT {COLUMNS} FROM jobs WHERE state = 'failed'
                        ORDER BY id DESC LIMIT $1) AS failed
         ORDER BY id DESC"
    ))
    .bind(i64::from(failed))
    .fetch_all(conn)
    .await
}

/// Jobs by state, for `/metrics`.
pub async fn counts(conn: &mut Conn) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY 1, 2")
        .fetch_all(conn)
        .await
}

/// The soonest time a waiting job is due, if any: how long the worker may sleep.
pub async fn next_due(conn: &mut Conn) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let next: Option<String> = sqlx::query_scalar(
        "SELECT MIN(t) FROM (
            SELECT MIN(run_after) AS t FROM jobs WHERE state IN ('queued', 'retrying')
            UNION ALL
            SELECT MIN(lease_until) FROM jobs WHERE state = 'running') AS due",
    )
    .fetch_one(conn)
    .await?;
    Ok(next.as_deref().and_then(|t| parse_time(t).ok()))
}
