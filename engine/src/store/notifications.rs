//! The `notifications` table: outgoing webhooks and their delivery.

use super::Conn;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub event: String,
    pub environment: Option<String>,
    pub change_id: Option<i64>,
    pub receiver: String,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: String,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

const COLUMNS: &str = "id, event, environment, change_id, receiver, body, status, attempts,
    last_error, next_attempt_at, created_at, delivered_at";

pub struct NewNotification<'a> {
    pub event: &'a str,
    pub environment: Option<&'a str>,
    pub change_id: Option<i64>,
    pub receiver: &'a str,
    pub body: &'a str,
}

/// Adds a notification to the delivery log; returns its id.
pub async fn insert(
    conn: &mut Conn,
    n: NewNotification<'_>,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO notifications (event, environment, change_id, receiver, body, status,
            next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) RETURNING id",
    )
    .bind(n.event)
    .bind(n.environment)
    .bind(n.change_id)
    .bind(n.receiver)
    .bind(n.body)
    .bind(now)
    .bind(now)
    .fetch_one(conn)
    .await
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<NotificationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Records one delivery attempt.
pub async fn attempted(
    conn: &mut Conn,
    id: i64,
    status: &str,
    error: Option<&str>,
    next_attempt_at: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    let delivered = (status == "delivered").then_some(now);
    sqlx::query(
        "UPDATE notifications SET status = $1, attempts = attempts + 1, last_error = $2,
            next_attempt_at = $3, delivered_at = $4
         WHERE id = $5",
    )
    .bind(status)
    .bind(error)
    .bind(next_attempt_at)
    .bind(delivered)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The delivery log, newest first.
pub async fn recent(conn: &mut Conn, limit: u32) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications ORDER BY id DESC LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
}
