//! The replicas on one database and the lease of the one that leads the periodic work.

use super::Conn;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReplicaRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub started_at: String,
    pub seen_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaderRow {
    pub replica_id: String,
    pub term: i64,
    pub since: String,
    pub lease_until: String,
}

/// Says `r` is alive now.
pub async fn heartbeat(conn: &mut Conn, r: &ReplicaRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO replicas (id, host, pid, version, started_at, seen_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
    )
    .bind(&r.id)
    .bind(&r.host)
    .bind(r.pid)
    .bind(&r.version)
    .bind(&r.started_at)
    .bind(&r.seen_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the replicas not seen since `before`.
pub async fn forget_stale(conn: &mut Conn, before: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM replicas WHERE seen_at < $1")
        .bind(before)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Forgets replica `id` (a clean stop).
pub async fn forget(conn: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM replicas WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn replicas(conn: &mut Conn) -> Result<Vec<ReplicaRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, host, pid, version, started_at, seen_at FROM replicas ORDER BY started_at, id",
    )
    .fetch_all(conn)
    .await
}

pub async fn leader(conn: &mut Conn) -> Result<Option<LeaderRow>, sqlx::Error> {
    sqlx::query_as("SELECT replica_id, term, since, lease_until FROM leader WHERE id = 1")
        .fetch_optional(conn)
        .await
}

/// Makes `l` the leader's row (a new leader, or the same one renewing its lease).
pub async fn set_leader(conn: &mut Conn, l: &LeaderRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO leader (id, replica_id, term, since, lease_until) VALUES (1, $1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET replica_id = excluded.replica_id, term = excluded.term,
            since = excluded.since, lease_until = excluded.lease_until",
    )
    .bind(&l.replica_id)
    .bind(l.term)
    .bind(&l.since)
    .bind(&l.lease_until)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends `id`'s lease now if it leads (a clean stop: another replica takes over at its next
/// look instead of when the lease runs out).
pub async fn step_down(conn: &mut Conn, id: &str, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE leader SET lease_until = $1 WHERE id = 1 AND replica_id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
