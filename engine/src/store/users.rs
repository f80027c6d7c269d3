//! The `users` table.

use super::Conn;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub password_hash: String,
    pub auth_epoch: i64,
    pub disabled_at: Option<String>,
    pub created_at: String,
    /// The zone the user reads times in (an IANA name); `None`: each environment's.
    pub time_zone: Option<String>,
}

const COLUMNS: &str =
    "id, name, email, role, password_hash, auth_epoch, disabled_at, created_at, time_zone";

pub async fn insert(
    conn: &mut Conn,
    name: &str,
    email: Option<&str>,
    role: &str,
    password_hash: &str,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (name, email, role, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(name)
    .bind(email)
    .bind(role)
    .bind(password_hash)
    .bind(now)
    .bind(now)
    .fetch_one(conn)
    .await
}

pub async fn by_name(conn: &mut Conn, name: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE name = $1"))
        .bind(name)
        .fetch_optional(conn)
        .await
}

pub async fn by_id(conn: &mut Conn, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn email_taken(conn: &mut Conn, email: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM users WHERE email = $1) THEN 1 ELSE 0 END",
    )
    .bind(email)
    .fetch_one(conn)
    .await
    .map(|n| n != 0)
}

pub async fn list(conn: &mut Conn) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users ORDER BY name"))
        .fetch_all(conn)
        .await
}

/// Enabled admins other than `except_id`: the last one may not be demoted or disabled.
pub async fn other_active_admins(conn: &mut Conn, except_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> $1",
    )
    .bind(except_id)
    .fetch_one(conn)
    .await
}

/// Sets (or with `None`, clears) the zone the user reads times in.
pub async fn set_time_zone(
    conn: &mut Conn,
    id: i64,
    zone: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET time_zone = $1, updated_at = $2 WHERE id = $3")
        .bind(zone)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_role(conn: &mut Conn, id: i64, role: &str, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
        .bind(role)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_email(
    conn: &mut Conn,
    id: i64,
    email: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET email = $1, updated_at = $2 WHERE id = $3")
        .bind(email)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Disables (bumping the epoch, which ends every session) or enables a user.
pub async fn set_disabled(
    conn: &mut Conn,
    id: i64,
    disabled: bool,
    now: &str,
) -> Result<(), sqlx::Error> {
    let sql = if disabled {
        "UPDATE users SET disabled_at = $1, auth_epoch = auth_epoch + 1, updated_at = $1 WHERE id = $2"
    } else {
        "UPDATE users SET disabled_at = NULL, updated_at = $1 WHERE id = $2"
    };
    sqlx::query(sql).bind(now).bind(id).execute(conn).await?;
    Ok(())
}

/// Stores a new password hash and bumps the epoch; returns the new epoch.
pub async fn set_password(
    conn: &mut Conn,
    id: i64,
    password_hash: &str,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET password_hash = $1, auth_epoch = auth_epoch + 1, updated_at = $2
         WHERE id = $3 RETURNING auth_epoch",
    )
    .bind(password_hash)
    .bind(now)
    .bind(id)
    .fetch_one(conn)
    .await
}
