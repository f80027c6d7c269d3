//! The `api_tokens` table.

use super::Conn;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub owner: String,
    pub label: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub last_used_addr: Option<String>,
    pub revoked_at: Option<String>,
}

const SELECT: &str = "SELECT t.id, t.user_id, u.name AS owner, t.label, t.prefix, t.created_at,
        t.last_used_at, t.last_used_addr, t.revoked_at
    FROM api_tokens t JOIN users u ON u.id = t.user_id";

pub async fn insert(
    conn: &mut Conn,
    user_id: i64,
    label: &str,
    prefix: &str,
    token_hash: &str,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, label, prefix, token_hash, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user_id)
    .bind(label)
    .bind(prefix)
    .bind(token_hash)
    .bind(now)
    .fetch_one(conn)
    .await
}

pub async fn active_label_exists(
    conn: &mut Conn,
    user_id: i64,
    label: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM api_tokens WHERE user_id = $1 AND label = $2 AND revoked_at IS NULL) THEN 1 ELSE 0 END",
    )
    .bind(user_id)
    .bind(label)
    .fetch_one(conn)
    .await
        .map(|n| n != 0)
}

pub async fn by_id(conn: &mut Conn, id: i64) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// An active token by the hash of its secret.
pub async fn active_by_hash(
    conn: &mut Conn,
    token_hash: &str,
) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
    ))
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

pub async fn list_for_user(conn: &mut Conn, user_id: i64) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE t.user_id = $1 ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// Every token not revoked, of every user, newest first (at most `limit`).
pub async fn active(conn: &mut Conn, limit: u32) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE t.revoked_at IS NULL ORDER BY t.created_at DESC LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
}

pub async fn touch(
    conn: &mut Conn,
    id: i64,
    now: &str,
    addr: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1, last_used_addr = $2 WHERE id = $3")
        .bind(now)
        .bind(addr)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn revoke(conn: &mut Conn, id: i64, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes every active token of a user; returns how many.
pub async fn revoke_all_for_user(
    conn: &mut Conn,
    user_id: i64,
    now: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}
