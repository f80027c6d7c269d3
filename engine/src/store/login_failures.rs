//! Failed sign-ins, kept for the throttling window.

use sqlx::SqliteConnection;

/// Records an attempt as a failure (before its password is checked); returns its row.
pub async fn record(
    conn: &mut SqliteConnection,
    at_ms: i64,
    user_name: &str,
    client_addr: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO login_failures (at_ms, user_name, client_addr) VALUES (?, ?, ?)
         RETURNING rowid",
    )
    .bind(at_ms)
    .bind(user_name)
    .bind(client_addr)
    .fetch_one(conn)
    .await
}

/// Failures since `since_ms`: (by user name from this address, by address).
pub async fn recent(
    conn: &mut SqliteConnection,
    since_ms: i64,
    user_name: &str,
    client_addr: &str,
) -> Result<(i64, i64), sqlx::Error> {
    let by_pair: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_failures
         WHERE user_name = ? AND client_addr = ? AND at_ms >= ?",
    )
    .bind(user_name)
    .bind(client_addr)
    .bind(since_ms)
    .fetch_one(&mut *conn)
    .await?;
    let by_addr: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_failures WHERE client_addr = ? AND at_ms >= ?",
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
    conn: &mut SqliteConnection,
    since_ms: i64,
    user_name: Option<&str>,
    client_addr: &str,
    n: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT at_ms FROM login_failures
         WHERE user_name = COALESCE(?, user_name) AND client_addr = ? AND at_ms >= ?
         ORDER BY at_ms DESC LIMIT 1 OFFSET ?",
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
    conn: &mut SqliteConnection,
    user_name: &str,
    client_addr: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE user_name = ? AND client_addr = ?")
        .bind(user_name)
        .bind(client_addr)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn prune(conn: &mut SqliteConnection, before_ms: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM login_failures WHERE at_ms < ?")
        .bind(before_ms)
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}
