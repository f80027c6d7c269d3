//! Scaling history: group snapshots and scaling activities.

use super::Conn;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SnapshotRow {
    pub group_name: String,
    pub at: String,
    pub min: i64,
    pub max: i64,
    pub desired: i64,
    pub in_service: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityRow {
    pub activity_id: String,
    pub group_name: String,
    pub status: String,
    pub description: String,
    pub cause: String,
    pub started_at: String,
    pub ended_at: Option<String>,
}

/// Whether the environment has any scaling history yet (a snapshot of one of its groups).
pub async fn has_history(conn: &mut Conn, environment: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM group_snapshots WHERE environment = $1 LIMIT 1")
            .bind(environment)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// When the oldest activity of the environment still recorded as in progress started (RFC
/// 3339), if any: the next reading goes back that far to see how it ended.
pub async fn oldest_unfinished(
    conn: &mut Conn,
    environment: &str,
) -> Result<Option<String>, sqlx::Error> {
    let (oldest,): (Option<String>,) = sqlx::query_as(
        "SELECT MIN(started_at) FROM scaling_activities WHERE environment = $1
         AND status NOT IN ('Successful', 'Failed', 'Cancelled')",
    )
    .bind(environment)
    .fetch_one(conn)
    .await?;
    Ok(oldest)
}

/// The newest snapshot of a group.
pub async fn latest(
    conn: &mut Conn,
    environment: &str,
    group: &str,
) -> Result<Option<SnapshotRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT group_name, at, min, max, desired, in_service FROM group_snapshots
         WHERE environment = $1 AND group_name = $2 ORDER BY at DESC, id DESC LIMIT 1",
    )
    .bind(environment)
    .bind(group)
    .fetch_optional(conn)
    .await
}

pub async fn insert_snapshot(
    conn: &mut Conn,
    environment: &str,
    s: &SnapshotRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO group_snapshots (environment, group_name, at, min, max, desired, in_service)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(environment)
    .bind(&s.group_name)
    .bind(&s.at)
    .bind(s.min)
    .bind(s.max)
    .bind(s.desired)
    .bind(s.in_service)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an activity once; returns whether it was new.
pub async fn insert_activity(
    conn: &mut Conn,
    environment: &str,
    a: &ActivityRow,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO scaling_activities (activity_id, environment, group_name, status,
            description, cause, started_at, ended_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (activity_id) DO UPDATE SET status = excluded.status,
            ended_at = excluded.ended_at",
    )
    .bind(&a.activity_id)
    .bind(environment)
    .bind(&a.group_name)
    .bind(&a.status)
    .bind(&a.description)
    .bind(&a.cause)
    .bind(&a.started_at)
    .bind(&a.ended_at)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Snapshots of an environment since `since`, with the last one before it (the state at the
/// start), oldest first.
pub async fn snapshots_since(
    conn: &mut Conn,
    environment: &str,
    since: &str,
) -> Result<Vec<SnapshotRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT group_name, at, min, max, desired, in_service FROM group_snapshots s
         WHERE environment = $1 AND (at >= $2 OR id = (
             SELECT id FROM group_snapshots p WHERE p.environment = $1
                AND p.group_name = s.group_name AND p.at < $2 ORDER BY at DESC, id DESC LIMIT 1))
         ORDER BY group_name, at, id",
    )
    .bind(environment)
    .bind(since)
    .fetch_all(conn)
    .await
}

pub async fn activities_since(
    conn: &mut Conn,
    environment: &str,
    since: &str,
) -> Result<Vec<ActivityRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT activity_id, group_name, status, description, cause, started_at, ended_at
         FROM scaling_activities WHERE environment = $1 AND started_at >= $2
         ORDER BY started_at DESC LIMIT 500",
    )
    .bind(environment)
    .bind(since)
    .fetch_all(conn)
    .await
}

/// Drops what is older than `before`; returns the rows removed.
pub async fn prune(conn: &mut Conn, before: &str) -> Result<u64, sqlx::Error> {
    let a = sqlx::query("DELETE FROM group_snapshots WHERE at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let b = sqlx::query("DELETE FROM scaling_activities WHERE started_at < $1")
        .bind(before)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(a + b)
}

/// Runs of applies of an environment since `since`: (change, run, started, finished, status).
pub async fn applies_since(
    conn: &mut Conn,
    environment: &str,
    since: &str,
) -> Result<Vec<(i64, i64, String, Option<String>, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT change_id, id, started_at, finished_at, status FROM apply_runs
         WHERE environment = $1 AND started_at >= $2 ORDER BY started_at",
    )
    .bind(environment)
    .bind(since)
    .fetch_all(conn)
    .await
}

/// The rollouts' marks of `environment` from `since` on, oldest first: each stage's start,
/// checkpoint reached and the end, as their audit events record them (time, action, change,
/// detail JSON).
pub async fn rollout_events_since(
    conn: &mut Conn,
    environment: &str,
    since: &str,
) -> Result<Vec<(String, String, Option<String>, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, action, target, detail FROM audit_events
         WHERE environment = $1 AND at >= $2
            AND action IN ('rollout.stage_started', 'rollout.checkpoint', 'rollout.ended')
         ORDER BY seq",
    )
    .bind(environment)
    .bind(since)
    .fetch_all(conn)
    .await
}

/// The commits applied to `environment` by successful apply runs, with when each run
/// finished, oldest first: the last one before `since` (the schedule in force when the range
/// starts) and every one from `since` on; at most `most` of those.
pub async fn applied_commits(
    conn: &mut Conn,
    environment: &str,
    since: &str,
    most: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT finished_at, commit_sha FROM (
             SELECT r.finished_at, c.commit_sha FROM apply_runs r JOIN changes c ON c.id = r.change_id
             WHERE r.environment = $1 AND r.status = 'applied' AND r.finished_at < $2
             ORDER BY r.finished_at DESC LIMIT 1
         ) AS before_range
         UNION ALL
         SELECT finished_at, commit_sha FROM (
             SELECT r.finished_at, c.commit_sha FROM apply_runs r JOIN changes c ON c.id = r.change_id
             WHERE r.environment = $3 AND r.status = 'applied' AND r.finished_at >= $4
             ORDER BY r.finished_at LIMIT $5
         ) AS in_range
         ORDER BY 1",
    )
    .bind(environment)
    .bind(since)
    .bind(environment)
    .bind(since)
    .bind(most)
    .fetch_all(conn)
    .await
}
