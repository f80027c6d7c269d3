//! Failed sign-ins, kept for the throttling window.

use super::Conn;

/// Records an attempt as a failure (before its password is checked); returns its row.
pub async fn record(
    conn: &mut Conn,
    at_ms: i64,
    user_name: &str,
    client_addr: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO login_failures (at_ms, user_name, client_addr) VALUES ($1, $2, $3)
         RETURNING id",
    )
    .bind(at_ms)
    .bind(user_name)
    .bind(client_addr)
    .fetch_one(conn)
    .await
}

/// Failures since `since_ms`: (by user name from this address, by address).
pub async fn recent(
    conn: &mut Conn,
    since_ms: i64,
    user_name: &str,
    client_addr: &str,
) -> Result<(i64, i64), sqlx::Error> {
    let by_pair: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_failures
         WHERE user_name = $1 AND client_addr = $2 AND at_ms >= $3",
    )
    .bind(user_name)
    .bind(client_addr)
    .bind(since_ms)
    .fetch_one(&mut *conn)
    .await?;
    let by_addr: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_failures WHERE client_addr = $1 AND at_ms >= $2",
    )
    .bind(client_addr)
    .bind(since_ms)
    .fetch_one(conn)
    .await?;
    Ok((by_pair, by_addr))
}

/// The `n`-th newest failure time (1-based) since `since_ms` for a (name, address) pair
/// (`user_name` given) or an address: the throttle lifts when it leaves the window.
pub async fn nth_newest(
    conn: &mut Conn,
    since_ms: i64,
    user_name: Option<&str>,
    client_addr: &str,
    n: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT at_ms FROM login_failures
         WHERE user_name = COALESCE($1, user_name) AND client_addr = $2 AND at_ms >= $3
         ORDER BY at_ms DESC LIMIT 1 OFFSET $4",
    )
    .bind(user_name)
    .bind(client_addr)
    .bind(since_ms)
    .bind(n - 1)
    .fetch_optional(conn)
    .await
}

/// After a sign-in: its own attempt and the earlier failures of the pair are forgotten.
pub async fn forget_pair(
    conn: &mut Conn,
    user_name: &str,
    client_addr: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE user_name = $1 AND client_addr = $2")
        .bind(user_name)
        .bind(client_addr)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn prune(conn: &mut Conn, before_ms: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM login_failures WHERE at_ms < $1")
        .bind(before_ms)
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}
