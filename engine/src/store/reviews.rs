//! The `reviews` table: approvals, rejections and comments.

use super::Conn;
use domain::approval::Verdict;
use domain::change::ChangeId;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRow {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub verdict: String,
    pub plan_hash: Option<String>,
    pub comment: Option<String>,
    pub created_at: String,
    pub voided_at: Option<String>,
    pub void_reason: Option<String>,
}

pub struct NewReview<'a> {
    pub change_id: ChangeId,
    pub user_id: i64,
    pub user_name: &'a str,
    pub verdict: Verdict,
    pub plan_hash: Option<&'a str>,
    pub comment: Option<&'a str>,
}

pub async fn insert(conn: &mut Conn, r: NewReview<'_>, now: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO reviews (change_id, user_id, user_name, verdict, plan_hash, comment,
            created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(r.change_id.0)
    .bind(r.user_id)
    .bind(r.user_name)
    .bind(r.verdict.as_str())
    .bind(r.plan_hash)
    .bind(r.comment)
    .bind(now)
    .fetch_one(conn)
    .await
}

pub async fn of_change(
    conn: &mut Conn,
    change_id: ChangeId,
) -> Result<Vec<ReviewRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id, user_name, verdict, plan_hash, comment, created_at, voided_at,
            void_reason
         FROM reviews WHERE change_id = $1 ORDER BY id",
    )
    .bind(change_id.0)
    .fetch_all(conn)
    .await
}

/// Voids the change's live approvals; returns how many.
pub async fn void_approvals(
    conn: &mut Conn,
    change_id: ChangeId,
    reason: &str,
    now: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE reviews SET voided_at = $1, void_reason = $2
         WHERE change_id = $3 AND verdict = 'approve' AND voided_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(change_id.0)
    .execute(conn)
    .await?
    .rows_affected())
}
