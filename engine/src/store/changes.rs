//! The `changes` table.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangeRow {
    pub id: i64,
    pub environment: String,
    pub kind: String,
    pub commit_sha: String,
    pub base_commit: Option<String>,
    pub author_name: String,
    pub author_email: String,
    pub committed_at: String,
    pub message: String,
    pub status: String,
    pub file_diff: String,
    pub semantic_diff: String,
    pub spec_errors: String,
    pub guardrails: String,
    pub superseded_by: Option<i64>,
    pub plan: Option<String>,
    pub plan_hash: Option<String>,
    pub planned_at: Option<String>,
    pub created_at: String,
}

const SELECT: &str =
    "SELECT id, environment, kind, commit_sha, base_commit, author_name, author_email,
    committed_at, message, status, file_diff, semantic_diff, spec_errors, guardrails, superseded_by, plan,
    plan_hash, planned_at, created_at
    FROM changes";

/// A change to record.
pub struct NewChange<'a> {
    pub environment: &'a str,
    pub kind: &'a str,
    pub commit_sha: &'a str,
    pub base_commit: Option<&'a str>,
    pub author_name: &'a str,
    pub author_email: &'a str,
    pub committed_at: &'a str,
    pub message: &'a str,
    pub status: &'a str,
    pub file_diff: &'a str,
    pub semantic_diff: &'a str,
    pub spec_errors: &'a str,
    pub guardrails: &'a str,
}

pub async fn insert(
    conn: &mut SqliteConnection,
    c: NewChange<'_>,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO changes (environment, kind, commit_sha, base_commit, author_name,
            author_email, committed_at, message, status, file_diff, semantic_diff, spec_errors,
            guardrails, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(c.environment)
    .bind(c.kind)
    .bind(c.commit_sha)
    .bind(c.base_commit)
    .bind(c.author_name)
    .bind(c.author_email)
    .bind(c.committed_at)
    .bind(c.message)
    .bind(c.status)
    .bind(c.file_diff)
    .bind(c.semantic_diff)
    .bind(c.spec_errors)
    .bind(c.guardrails)
    .bind(now)
    .bind(now)
    .fetch_one(conn)
    .await
}

pub async fn exists(
    conn: &mut SqliteConnection,
    environment: &str,
    commit: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM changes
            WHERE environment = ? AND commit_sha = ? AND kind = 'commit')",
    )
    .bind(environment)
    .bind(commit)
    .fetch_one(conn)
    .await
}

pub async fn any_for(conn: &mut SqliteConnection, environment: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM changes WHERE environment = ?)")
        .bind(environment)
        .fetch_one(conn)
        .await
}

/// Open changes (invalid, blocked, pending, approved) of an environment.
pub async fn open_for(
    conn: &mut SqliteConnection,
    environment: &str,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    open_of_kind(conn, environment, None).await
}

/// Open changes of an environment, of one kind or all.
pub async fn open_of_kind(
    conn: &mut SqliteConnection,
    environment: &str,
    kind: Option<&str>,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, commit_sha FROM changes WHERE environment = ? AND kind = COALESCE(?, kind)
            AND status IN ('invalid', 'blocked', 'pending', 'approved') ORDER BY id",
    )
    .bind(environment)
    .bind(kind)
    .fetch_all(conn)
    .await
}

pub async fn set_status(
    conn: &mut SqliteConnection,
    id: i64,
    status: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE changes SET status = ?, updated_at = ? WHERE id = ?")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn supersede(
    conn: &mut SqliteConnection,
    id: i64,
    by: Option<i64>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE changes SET status = 'superseded', superseded_by = ?, updated_at = ? WHERE id = ?",
    )
    .bind(by)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut SqliteConnection, id: i64) -> Result<Option<ChangeRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn list(
    conn: &mut SqliteConnection,
    environment: Option<&str>,
    status: Option<&str>,
    limit: u32,
) -> Result<Vec<ChangeRow>, sqlx::Error> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(SELECT);
    q.push(" WHERE 1 = 1");
    if let Some(e) = environment {
        q.push(" AND environment = ").push_bind(e.to_owned());
    }
    if let Some(s) = status {
        q.push(" AND status = ").push_bind(s.to_owned());
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit));
    q.build_query_as().fetch_all(conn).await
}

/// Per environment: open changes, and the newest change's id.
pub async fn per_environment(
    conn: &mut SqliteConnection,
) -> Result<Vec<(String, i64, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.name,
            (SELECT COUNT(*) FROM changes c WHERE c.environment = e.name
                AND c.status IN ('invalid', 'blocked', 'pending', 'approved')),
            (SELECT MAX(id) FROM changes c WHERE c.environment = e.name)
         FROM environments e ORDER BY e.name",
    )
    .fetch_all(conn)
    .await
}

/// Stores the latest plan of a change.
pub async fn set_plan(
    conn: &mut SqliteConnection,
    id: i64,
    plan_json: &str,
    hash: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE changes SET plan = ?, plan_hash = ?, planned_at = ?, updated_at = ? WHERE id = ?",
    )
    .bind(plan_json)
    .bind(hash)
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}
