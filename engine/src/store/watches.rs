//! The watch of an environment's SLOs after an apply: one row per applied change that is
//! watched, moved from `watching` to `clean`, `degraded` or `stopped`.

use super::Conn;
use domain::change::{ChangeId, WatchState, WatchView};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WatchRow {
    pub change_id: i64,
    pub environment: String,
    pub minutes: i64,
    pub auto_revert: i64,
    pub state: String,
    pub started_at: String,
    pub until_at: String,
    pub evaluations: i64,
    pub last_at: Option<String>,
    pub burn: Option<f64>,
    pub burn_before: Option<f64>,
    pub reason: Option<String>,
    pub revert_change: Option<i64>,
}

impl WatchRow {
    pub fn view(&self, now: chrono::DateTime<chrono::Utc>) -> Result<WatchView, String> {
        let mut v = WatchView {
            state: self.state.parse()?,
            minutes: self.minutes.max(0) as u32,
            auto_revert: self.auto_revert != 0,
            started_at: crate::store::parse_time(&self.started_at)?,
            until: crate::store::parse_time(&self.until_at)?,
            evaluations: self.evaluations.max(0) as u32,
            last_at: self
                .last_at
                .as_deref()
                .map(crate::store::parse_time)
                .transpose()?,
            burn: self.burn,
            burn_before: self.burn_before,
            reason: self.reason.clone(),
            revert_change: self.revert_change,
            watched_minutes: 0,
        };
        v.watched_minutes = v.minutes_at(now);
        Ok(v)
    }
}

const COLUMNS: &str = "change_id, environment, minutes, auto_revert, state, started_at, until_at,
    evaluations, last_at, burn, burn_before, reason, revert_change";

/// A watch to start.
pub struct NewWatch<'a> {
    pub change: ChangeId,
    pub environment: &'a str,
    pub minutes: u32,
    pub auto_revert: bool,
    /// The burn rate of a page alert already firing when the apply started.
    pub burn_before: Option<f64>,
    pub now: &'a str,
    /// `now` + `minutes`.
    pub until: &'a str,
}

/// Starts watching a change.
pub async fn start(conn: &mut Conn, w: NewWatch<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO watches (change_id, environment, minutes, auto_revert, state, started_at,
            until_at, burn_before)
         VALUES ($1, $2, $3, $4, 'watching', $5, $6, $7)
         ON CONFLICT (change_id) DO UPDATE SET minutes = excluded.minutes,
            auto_revert = excluded.auto_revert, state = 'watching',
            started_at = excluded.started_at, until_at = excluded.until_at, evaluations = 0,
            last_at = NULL, burn = NULL, burn_before = excluded.burn_before, reason = NULL,
            revert_change = NULL",
    )
    .bind(w.change.0)
    .bind(w.environment)
    .bind(i64::from(w.minutes))
    .bind(i64::from(w.auto_revert))
    .bind(w.now)
    .bind(w.until)
    .bind(super::NullableF64(w.burn_before))
    .execute(conn)
    .await?;
    Ok(())
}

/// Watches of `environment` still running, which a newer apply ends.
pub async fn watching_of(conn: &mut Conn, environment: &str) -> Result<Vec<WatchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM watches WHERE environment = $1 AND state = 'watching'"
    ))
    .bind(environment)
    .fetch_all(conn)
    .await
}

/// Every watch still running.
pub async fn watching(conn: &mut Conn) -> Result<Vec<WatchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM watches WHERE state = 'watching' ORDER BY until_at"
    ))
    .fetch_all(conn)
    .await
}

pub async fn get(conn: &mut Conn, change: ChangeId) -> Result<Option<WatchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM watches WHERE change_id = $1"
    ))
    .bind(change.0)
    .fetch_optional(conn)
    .await
}

/// Records one evaluation: when, the burn rate seen, and why it could not be read if so.
/// `false` when the watch is no longer running.
pub async fn evaluated(
    conn: &mut Conn,
    change: ChangeId,
    now: &str,
    burn: Option<f64>,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE watches SET evaluations = evaluations + 1, last_at = $1, burn = $2, reason = $3
         WHERE change_id = $4 AND state = 'watching'",
    )
    .bind(now)
    .bind(super::NullableF64(burn))
    .bind(reason)
    .bind(change.0)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected() > 0)
}

/// Ends a running watch in `state`; `false` when it was not running.
pub async fn end(
    conn: &mut Conn,
    change: ChangeId,
    state: WatchState,
    reason: Option<&str>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE watches SET state = $1, reason = COALESCE($2, reason), last_at = COALESCE(last_at, $3)
         WHERE change_id = $4 AND state = 'watching'",
    )
    .bind(state.as_str())
    .bind(reason)
    .bind(now)
    .bind(change.0)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected() > 0)
}

/// Names the revert change a degraded watch recorded.
pub async fn set_revert(
    conn: &mut Conn,
    change: ChangeId,
    revert: ChangeId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE watches SET revert_change = $1 WHERE change_id = $2")
        .bind(revert.0)
        .bind(change.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether `revert` is the revert change a watch recorded.
pub async fn recorded_revert(conn: &mut Conn, revert: ChangeId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, i64>("SELECT CASE WHEN EXISTS (SELECT 1 FROM watches WHERE revert_change = $1) THEN 1 ELSE 0 END")
        .bind(revert.0)
        .fetch_one(conn)
        .await
        .map(|n| n != 0)
}
