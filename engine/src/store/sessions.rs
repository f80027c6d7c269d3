//! Signed-in sessions: the session layer's records as JSON, by id, until they expire. Any
//! replica reads what another wrote.

use super::Conn;

/// Inserts a new session; `false` when the id is taken (the caller draws another).
pub async fn create(
    conn: &mut Conn,
    id: &str,
    data: &str,
    expires_at_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO sessions (id, data, expires_at_ms) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes a session, new or not.
pub async fn save(
    conn: &mut Conn,
    id: &str,
    data: &str,
    expires_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id, data, expires_at_ms) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data,
            expires_at_ms = excluded.expires_at_ms",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The session `id` unless it expired by `now_ms`.
pub async fn load(conn: &mut Conn, id: &str, now_ms: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT data FROM sessions WHERE id = $1 AND expires_at_ms > $2")
        .bind(id)
        .bind(now_ms)
        .fetch_optional(conn)
        .await
}

pub async fn delete(conn: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the sessions expired by `now_ms`; returns how many.
pub async fn delete_expired(conn: &mut Conn, now_ms: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
