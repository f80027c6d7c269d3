//! Failed sign-ins, kept for the throttling window.

use sqlx::SqliteConnection;

pub async fn record(
    conn: &mut SqliteConnection,
    at_ms: i64,
    user_name: &str,
    client_addr: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO login_failures (at_ms, user_name, client_addr) VALUES (?, ?, ?)")
        .bind(at_ms)
        .bind(user_name)
        .bind(client_addr)
        .execute(conn)
        .await?;
    Ok(())
}

/// Failures since `since_ms`: (by user name, by address).
pub async fn recent(
    conn: &mut SqliteConnection,
    since_ms: i64,
    user_name: &str,
    client_addr: &str,
) -> Result<(i64, i64), sqlx::Error> {
    let by_user: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_failures WHERE user_name = ? AND at_ms >= ?",
    )
    .bind(user_name)
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
    Ok((by_user, by_addr))
}

/// The `n`-th newest failure time (1-based) since `since_ms` for a user name or an address:
/// the throttle lifts when it leaves the window.
pub async fn nth_newest(
    conn: &mut SqliteConnection,
    since_ms: i64,
    column_is_user: bool,
    value: &str,
    n: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let sql = if column_is_user {
        "SELECT at_ms FROM login_failures WHERE user_name = ? AND at_ms >= ? ORDER BY at_ms DESC LIMIT 1 OFFSET ?"
    } else {
        "SELECT at_ms FROM login_failures WHERE client_addr = ? AND at_ms >= ? ORDER BY at_ms DESC LIMIT 1 OFFSET ?"
    };
    sqlx::query_scalar(sql)
        .bind(value)
        .bind(since_ms)
        .bind(n - 1)
        .fetch_optional(conn)
        .await
}

pub async fn forget_user(conn: &mut SqliteConnection, user_name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE user_name = ?")
        .bind(user_name)
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
