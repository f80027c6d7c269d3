//! The `changes` table, and the one way a change is recorded and moved.
//!
//! A [`Change`] is decoded here: its status and kind as enums, its JSON columns as the domain's
//! types. [`create`] records a change with its audit event; [`transition`] asks the lifecycle
//! ([`domain::lifecycle::transition`]) whether an event may happen, then writes the new status
//! and the event's audit record in the caller's transaction.

use super::Conn;
use chrono::{DateTime, Utc};
use domain::change::{
    ChangeId, ChangeKind, ChangeStatus, ChangeSummary, CommitInfo, FileDiff, Person, PlanView,
};
use domain::guardrails::Violation;
use domain::lifecycle::{self, Event, Refusal};
use domain::spec::{FieldEdit, SpecError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::{Actor, RequestMeta};
use crate::store::audit::{append, NewEvent};
use crate::store::{format_time, time_column, time_column_opt};

/// A recorded change, as the services use it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: ChangeId,
    pub environment: String,
    pub kind: ChangeKind,
    pub commit: CommitInfo,
    /// The environment's last applied commit when the change was recorded.
    pub base_commit: Option<String>,
    pub status: ChangeStatus,
    pub files: Vec<FileDiff>,
    pub semantic_diff: Vec<FieldEdit>,
    pub spec_errors: Vec<SpecError>,
    pub guardrails: Vec<Violation>,
    pub authors: Vec<Person>,
    pub policy_edits: Vec<String>,
    pub superseded_by: Option<ChangeId>,
    /// For a revert: the change it undoes.
    pub reverts: Option<ChangeId>,
    pub plan: Option<PlanView>,
    pub plan_hash: Option<String>,
    pub planned_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Change {
    /// The hash of its latest plan and whether that plan has errors; `None` without one.
    pub fn current_plan(&self) -> Option<(&str, bool)> {
        match self.plan.as_ref()? {
            PlanView::Planned { plan, .. } => Some((plan.hash.as_str(), !plan.errors.is_empty())),
            PlanView::Unavailable { .. } => None,
        }
    }

    pub fn summary(&self) -> ChangeSummary {
        ChangeSummary {
            id: self.id.0,
            environment: self.environment.clone(),
            kind: self.kind,
            status: self.status,
            commit: self.commit.clone(),
            edit_count: self.semantic_diff.len(),
            spec_error_count: self.spec_errors.len(),
            policy_edits: self.policy_edits.clone(),
            reverts: self.reverts.map(|c| c.0),
            created_at: self.created_at,
        }
    }
}

/// The commit columns of a change.
#[derive(sqlx::FromRow)]
struct CommitColumns {
    commit_sha: String,
    author_name: String,
    author_email: String,
    committed_at: String,
    message: String,
}

impl TryFrom<CommitColumns> for CommitInfo {
    type Error = sqlx::Error;

    fn try_from(c: CommitColumns) -> Result<Self, Self::Error> {
        Ok(CommitInfo {
            committed_at: time_column("committed_at", &c.committed_at)?,
            sha: c.commit_sha,
            author: Person {
                name: c.author_name,
                email: c.author_email,
            },
            message: c.message,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    id: i64,
    environment: String,
    kind: String,
    #[sqlx(flatten)]
    commit: CommitColumns,
    base_commit: Option<String>,
    status: String,
    file_diff: String,
    semantic_diff: String,
    spec_errors: String,
    guardrails: String,
    authors: String,
    policy_edits: String,
    superseded_by: Option<i64>,
    reverts: Option<i64>,
    plan: Option<String>,
    plan_hash: Option<String>,
    planned_at: Option<String>,
    created_at: String,
}

/// A list's row: no diffs, no plan.
#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    environment: String,
    kind: String,
    #[sqlx(flatten)]
    commit: CommitColumns,
    status: String,
    semantic_diff: String,
    spec_errors: String,
    policy_edits: String,
    reverts: Option<i64>,
    created_at: String,
}

const SELECT: &str = "SELECT id, environment, kind, commit_sha, base_commit, author_name,
    author_email, committed_at, message, status, file_diff, semantic_diff, spec_errors,
    guardrails, authors, policy_edits, superseded_by, reverts, plan, plan_hash, planned_at,
    created_at
    FROM changes";

const SELECT_SUMMARY: &str = "SELECT id, environment, kind, commit_sha, author_name,
    author_email, committed_at, message, status, semantic_diff, spec_errors, policy_edits,
    reverts, created_at
    FROM changes";

fn decode_error(id: i64, what: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("change {id}: {what}").into())
}

fn json<T: DeserializeOwned>(id: i64, column: &str, text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text)
        .map_err(|e| decode_error(id, format!("stored {column} is not valid JSON: {e}")))
}

fn text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

fn status(id: i64, s: &str) -> Result<ChangeStatus, sqlx::Error> {
    s.parse().map_err(|e: String| decode_error(id, e))
}

fn kind(id: i64, s: &str) -> Result<ChangeKind, sqlx::Error> {
    s.parse().map_err(|e: String| decode_error(id, e))
}

impl TryFrom<ChangeRow> for Change {
    type Error = sqlx::Error;

    fn try_from(r: ChangeRow) -> Result<Self, Self::Error> {
        let id = r.id;
        let mut authors: Vec<Person> = json(id, "authors", &r.authors)?;
        let commit = CommitInfo::try_from(r.commit)?;
        if authors.is_empty() && !commit.author.email.is_empty() {
            // Recorded before authors were kept: the commit's author.
            authors.push(commit.author.clone());
        }
        Ok(Change {
            id: ChangeId(id),
            environment: r.environment,
            kind: kind(id, &r.kind)?,
            status: status(id, &r.status)?,
            commit,
            base_commit: r.base_commit,
            files: json(id, "file_diff", &r.file_diff)?,
            semantic_diff: json(id, "semantic_diff", &r.semantic_diff)?,
            spec_errors: json(id, "spec_errors", &r.spec_errors)?,
            guardrails: json(id, "guardrails", &r.guardrails)?,
            authors,
            policy_edits: json(id, "policy_edits", &r.policy_edits)?,
            superseded_by: r.superseded_by.map(ChangeId),
            reverts: r.reverts.map(ChangeId),
            plan: r.plan.as_deref().map(|p| json(id, "plan", p)).transpose()?,
            plan_hash: r.plan_hash,
            planned_at: time_column_opt("planned_at", r.planned_at.as_deref())?,
            created_at: time_column("created_at", &r.created_at)?,
        })
    }
}

impl TryFrom<SummaryRow> for ChangeSummary {
    type Error = sqlx::Error;

    fn try_from(r: SummaryRow) -> Result<Self, Self::Error> {
        let id = r.id;
        let edits: Vec<serde::de::IgnoredAny> = json(id, "semantic_diff", &r.semantic_diff)?;
        let errors: Vec<serde::de::IgnoredAny> = json(id, "spec_errors", &r.spec_errors)?;
        Ok(ChangeSummary {
            id,
            environment: r.environment,
            kind: kind(id, &r.kind)?,
            status: status(id, &r.status)?,
            commit: r.commit.try_into()?,
            edit_count: edits.len(),
            spec_error_count: errors.len(),
            policy_edits: json(id, "policy_edits", &r.policy_edits)?,
            reverts: r.reverts,
            created_at: time_column("created_at", &r.created_at)?,
        })
    }
}

/// The `status IN (…)` list of open statuses.
fn open_statuses() -> String {
    ChangeStatus::open()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who does something to a change, for its audit event.
pub struct Audit<'a> {
    pub actor: Actor,
    pub meta: &'a RequestMeta,
    /// What the event adds to the record (an object; the store adds the statuses).
    pub detail: serde_json::Value,
}

/// A change to record.
pub struct NewChange<'a> {
    pub environment: &'a str,
    pub kind: ChangeKind,
    pub commit: &'a CommitInfo,
    pub base_commit: Option<&'a str>,
    pub files: &'a [FileDiff],
    pub semantic_diff: &'a [FieldEdit],
    pub spec_errors: &'a [SpecError],
    pub guardrails: &'a [Violation],
    pub authors: &'a [Person],
    pub policy_edits: &'a [String],
    /// A plan made with it (a reconcile's).
    pub plan: Option<&'a PlanView>,
    /// For a revert: the change it undoes.
    pub reverts: Option<ChangeId>,
}

fn with_statuses(
    mut detail: serde_json::Value,
    from: Option<ChangeStatus>,
    to: ChangeStatus,
) -> serde_json::Value {
    if let Some(map) = detail.as_object_mut() {
        if let Some(from) = from {
            map.insert("from".into(), from.as_str().into());
        }
        map.insert("status".into(), to.as_str().into());
    }
    detail
}

/// Records a change, in the status the lifecycle gives it, with its audit event `action`.
pub async fn create(
    conn: &mut Conn,
    c: NewChange<'_>,
    action: &str,
    audit: Audit<'_>,
    now: &str,
) -> Result<Change, sqlx::Error> {
    let status = lifecycle::initial(!c.spec_errors.is_empty(), !c.guardrails.is_empty());
    let (plan, plan_hash) = match c.plan {
        Some(view @ PlanView::Planned { plan, .. }) => (Some(text(view)), Some(plan.hash.clone())),
        Some(view) => (Some(text(view)), None),
        None => (None, None),
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO changes (environment, kind, commit_sha, base_commit, author_name,
            author_email, committed_at, message, status, file_diff, semantic_diff, spec_errors,
            guardrails, authors, policy_edits, plan, plan_hash, planned_at, created_at, updated_at,
            reverts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) RETURNING id",
    )
    .bind(c.environment)
    .bind(c.kind.as_str())
    .bind(&c.commit.sha)
    .bind(c.base_commit)
    .bind(&c.commit.author.name)
    .bind(&c.commit.author.email)
    .bind(format_time(c.commit.committed_at))
    .bind(&c.commit.message)
    .bind(status.as_str())
    .bind(text(&c.files))
    .bind(text(&c.semantic_diff))
    .bind(text(&c.spec_errors))
    .bind(text(&c.guardrails))
    .bind(text(&c.authors))
    .bind(text(&c.policy_edits))
    .bind(plan)
    .bind(plan_hash)
    .bind(c.plan.map(|_| now))
    .bind(now)
    .bind(now)
    .bind(c.reverts.map(|r| r.0))
    .fetch_one(&mut *conn)
    .await?;
    let target = id.to_string();
    append(
        conn,
        NewEvent {
            actor: audit.actor,
            action,
            environment: Some(c.environment),
            target: Some(&target),
            detail: with_statuses(audit.detail, None, status),
            meta: audit.meta,
        },
    )
    .await?;
    get(conn, ChangeId(id))
        .await?
        .ok_or_else(|| decode_error(id, "not found after insert"))
}

/// What an open change is judged on again when what is applied moved under it.
pub struct Rejudged<'a> {
    pub base_commit: Option<&'a str>,
    pub files: &'a [FileDiff],
    pub semantic_diff: &'a [FieldEdit],
    pub spec_errors: &'a [SpecError],
    pub guardrails: &'a [Violation],
    pub authors: &'a [Person],
    pub policy_edits: &'a [String],
}

/// Judges open `change` again against a new applied commit: its base, diffs, errors,
/// guardrails, authors and policy edits are replaced, its plan cleared (a job plans it again),
/// and its status is what the lifecycle's [`Event::Rebase`] gives, with the audit event, in the
/// caller's transaction. Refused as a conflict when another request moved it meanwhile.
pub async fn rejudge(
    conn: &mut Conn,
    change: &Change,
    r: Rejudged<'_>,
    audit: Audit<'_>,
    now: &str,
) -> Result<ChangeStatus, TransitionError> {
    let event = Event::Rebase {
        has_spec_errors: !r.spec_errors.is_empty(),
        breaks_guardrails: !r.guardrails.is_empty(),
    };
    let to = lifecycle::transition(change.status, event)?;
    let moved = sqlx::query(
        "UPDATE changes SET status = $1, base_commit = $2, file_diff = $3, semantic_diff = $4,
            spec_errors = $5, guardrails = $6, authors = $7, policy_edits = $8, plan = NULL,
            plan_hash = NULL, planned_at = NULL, updated_at = $9
         WHERE id = $10 AND status = $11",
    )
    .bind(to.as_str())
    .bind(r.base_commit)
    .bind(text(&r.files))
    .bind(text(&r.semantic_diff))
    .bind(text(&r.spec_errors))
    .bind(text(&r.guardrails))
    .bind(text(&r.authors))
    .bind(text(&r.policy_edits))
    .bind(now)
    .bind(change.id.0)
    .bind(change.status.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved == 0 {
        return Err(Refusal::conflict(format!("Change {} moved on meanwhile.", change.id)).into());
    }
    let target = change.id.to_string();
    append(
        conn,
        NewEvent {
            actor: audit.actor,
            action: event.action(),
            environment: Some(&change.environment),
            target: Some(&target),
            detail: with_statuses(audit.detail, Some(change.status), to),
            meta: audit.meta,
        },
    )
    .await?;
    Ok(to)
}

/// Why a change could not be moved.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    /// The lifecycle does not allow the event in the change's status.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

impl From<TransitionError> for crate::error::ServiceError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::Refused(r) => r.into(),
            TransitionError::Store(e) => e.into(),
        }
    }
}

/// Moves `change` by `event`: the lifecycle decides the new status, which is written with the
/// event's audit record in the caller's transaction. `superseded_by` names the newer change of
/// a [`Event::Supersede`]. A change whose stored status is no longer `change.status` (another
/// request moved it) is refused as a conflict. Returns the new status.
pub async fn transition(
    conn: &mut Conn,
    change: &Change,
    event: Event,
    superseded_by: Option<ChangeId>,
    audit: Audit<'_>,
    now: &str,
) -> Result<ChangeStatus, TransitionError> {
    let to = lifecycle::transition(change.status, event)?;
    let moved = sqlx::query(
        "UPDATE changes SET status = $1, superseded_by = COALESCE($2, superseded_by), updated_at = $3
         WHERE id = $4 AND status = $5",
    )
    .bind(to.as_str())
    .bind(superseded_by.map(|c| c.0))
    .bind(now)
    .bind(change.id.0)
    .bind(change.status.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved == 0 {
        let now_status = get(conn, change.id).await?.map(|c| c.status);
        return Err(Refusal::conflict(match now_status {
            Some(s) => format!("Change {} moved on meanwhile: it is {s} now.", change.id),
            None => format!("There is no change {}.", change.id),
        })
        .into());
    }
    let target = change.id.to_string();
    append(
        conn,
        NewEvent {
            actor: audit.actor,
            action: event.action(),
            environment: Some(&change.environment),
            target: Some(&target),
            detail: with_statuses(audit.detail, Some(change.status), to),
            meta: audit.meta,
        },
    )
    .await?;
    Ok(to)
}

pub async fn exists(conn: &mut Conn, environment: &str, commit: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM changes
            WHERE environment = $1 AND commit_sha = $2 AND kind = 'commit') THEN 1 ELSE 0 END",
    )
    .bind(environment)
    .bind(commit)
    .fetch_one(conn)
    .await
    .map(|n| n != 0)
}

pub async fn any_for(conn: &mut Conn, environment: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM changes WHERE environment = $1) THEN 1 ELSE 0 END",
    )
    .bind(environment)
    .fetch_one(conn)
    .await
    .map(|n| n != 0)
}

/// Open changes of an environment (see [`ChangeStatus::is_open`]), of one kind or all, oldest
/// first.
pub async fn open_of_kind(
    conn: &mut Conn,
    environment: &str,
    kind: Option<ChangeKind>,
) -> Result<Vec<Change>, sqlx::Error> {
    let rows: Vec<ChangeRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE environment = $1 AND kind = COALESCE($2, kind)
            AND status IN ({}) ORDER BY id",
        open_statuses()
    ))
    .bind(environment)
    .bind(kind.map(ChangeKind::as_str))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Change::try_from).collect()
}

/// Open changes that were never planned (recorded by `tierdeck plan`, or their background plan
/// did not finish), oldest first.
pub async fn unplanned(conn: &mut Conn) -> Result<Vec<ChangeId>, sqlx::Error> {
    let ids: Vec<(i64,)> = sqlx::query_as(&format!(
        "SELECT id FROM changes WHERE plan IS NULL AND status IN ({}) ORDER BY id",
        open_statuses()
    ))
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().map(|(id,)| ChangeId(id)).collect())
}

pub async fn get(conn: &mut Conn, id: ChangeId) -> Result<Option<Change>, sqlx::Error> {
    let row: Option<ChangeRow> = sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    row.map(Change::try_from).transpose()
}

/// The summaries of changes `ids` (a list's columns only: no diffs, no plan), in id order;
/// ids that do not exist are left out.
pub async fn summaries(conn: &mut Conn, ids: &[i64]) -> Result<Vec<ChangeSummary>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = super::Sql::new(SELECT_SUMMARY);
    q.push(" WHERE id IN (");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push_bind(*id);
    }
    q.push(") ORDER BY id");
    let rows: Vec<SummaryRow> = q.fetch_all(conn).await?;
    rows.into_iter().map(ChangeSummary::try_from).collect()
}

pub async fn list(
    conn: &mut Conn,
    environment: Option<&str>,
    status: Option<ChangeStatus>,
    limit: u32,
) -> Result<Vec<ChangeSummary>, sqlx::Error> {
    let mut q = super::Sql::new(SELECT_SUMMARY);
    q.push(" WHERE 1 = 1");
    if let Some(e) = environment {
        q.push(" AND environment = ").push_bind(e.to_owned());
    }
    if let Some(s) = status {
        q.push(" AND status = ").push_bind(s.as_str().to_owned());
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit));
    let rows: Vec<SummaryRow> = q.fetch_all(conn).await?;
    rows.into_iter().map(ChangeSummary::try_from).collect()
}

/// Ids of changes in `status`, newest first.
pub async fn ids_in(
    conn: &mut Conn,
    status: ChangeStatus,
    limit: u32,
) -> Result<Vec<ChangeId>, sqlx::Error> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM changes WHERE status = $1 ORDER BY id DESC LIMIT $2")
            .bind(status.as_str())
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
    Ok(ids.into_iter().map(ChangeId).collect())
}

/// Per environment: open changes, and the newest change's id.
pub async fn per_environment(
    conn: &mut Conn,
) -> Result<Vec<(String, i64, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT e.name,
            (SELECT COUNT(*) FROM changes c WHERE c.environment = e.name
                AND c.status IN ({})),
            (SELECT MAX(id) FROM changes c WHERE c.environment = e.name)
         FROM environments e ORDER BY e.name",
        open_statuses()
    ))
    .fetch_all(conn)
    .await
}

/// How many open changes an environment has (as [`per_environment`] counts them).
pub async fn open_count(conn: &mut Conn, environment: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM changes WHERE environment = $1 AND status IN ({})",
        open_statuses()
    ))
    .bind(environment)
    .fetch_one(conn)
    .await
}

/// Stores the latest plan of a change. A plan that could not be made keeps the hash of the
/// last one that was: approvals are pinned to plans, not to AWS being reachable.
pub async fn set_plan(
    conn: &mut Conn,
    id: ChangeId,
    view: &PlanView,
    now: &str,
) -> Result<(), sqlx::Error> {
    let hash = match view {
        PlanView::Planned { plan, .. } => Some(plan.hash.as_str()),
        PlanView::Unavailable { .. } => None,
    };
    sqlx::query(
        "UPDATE changes SET plan = $1, plan_hash = COALESCE($2, plan_hash), planned_at = $3,
            updated_at = $4
         WHERE id = $5",
    )
    .bind(text(view))
    .bind(hash)
    .bind(now)
    .bind(now)
    .bind(id.0)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plans as stored before migration 0009: the plan nested in the view.
    const OLD_PLANNED: &str = r#"{"state":"planned","plan":{"operations":[{"action":{"kind":"set_capacity","group":"web","field":"max","before":7,"after":8},"resource":"autoscaling group web","change":"max 7 → 8","aws_call":"autoscaling:UpdateAutoScalingGroup","risk":null}],"errors":[],"hash":"abc","notes":["db modifying"]},"read_ms":12,"aws_calls":6}"#;
    const OLD_WITHOUT_CALLS: &str = r#"{"state":"planned","plan":{"operations":[],"errors":[{"resource":"database db","message":"does not exist"}],"hash":"def"},"read_ms":3}"#;
    const UNAVAILABLE: &str = r#"{"state":"unavailable","reason":"AWS is unreachable"}"#;

    async fn plan_of(c: &mut Conn, id: i64) -> Option<PlanView> {
        get(c, ChangeId(id)).await.unwrap().unwrap().plan
    }

    #[tokio::test]
    async fn migration_0009_flattens_stored_plans_and_they_read_back() {
        assert!(
            crate::store::SQLITE_MIGRATOR.version_exists(9),
            "0009 is embedded"
        );
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        let mut c = store.pool().acquire().await.unwrap();
        sqlx::query("INSERT INTO environments (name, created_at) VALUES ('prod', 't')")
            .execute(&mut *c)
            .await
            .unwrap();
        for (id, plan) in [
            (1, Some(OLD_PLANNED)),
            (2, Some(OLD_WITHOUT_CALLS)),
            (3, Some(UNAVAILABLE)),
            (4, None),
        ] {
            sqlx::query(
                "INSERT INTO changes (id, environment, kind, commit_sha, author_name, author_email,
                    committed_at, message, status, file_diff, semantic_diff, spec_errors, plan,
                    created_at, updated_at)
                 VALUES ($1, 'prod', 'commit', $2, 'a', 'a@x', '2026-11-30T09:00:00.000Z', 'm',
                    'pending', '[]', '[]', '[]', $3, '2026-11-30T09:00:01.000Z',
                    '2026-11-30T09:00:01.000Z')",
            )
            .bind(id)
            .bind(format!("commit{id}"))
            .bind(plan)
            .execute(&mut *c)
            .await
            .unwrap();
        }
        // The old shape no longer reads …
        assert!(get(&mut c, ChangeId(1)).await.is_err());
        // … until the migration rewrites it (run again here: the store is migrated already,
        // and running it twice changes nothing more).
        let script = include_str!("../../../migrations/sqlite/0009_flat_plan_view.sql");
        for _ in 0..2 {
            sqlx::raw_sql(script).execute(&mut *c).await.unwrap();
        }
        let stored: String = sqlx::query_scalar("SELECT plan FROM changes WHERE id = 1")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert!(stored.get("plan").is_none(), "{stored}");
        assert_eq!(stored["operations"][0]["risk"], serde_json::Value::Null);
        match plan_of(&mut c, 1).await {
            Some(PlanView::Planned {
                plan,
                read_ms,
                aws_calls,
            }) => {
                assert_eq!((plan.hash.as_str(), read_ms, aws_calls), ("abc", 12, 6));
                assert_eq!(plan.operations[0].change, "max 7 → 8");
                assert_eq!(plan.operations[0].risk, None);
                assert_eq!(plan.notes, ["db modifying"]);
            }
            other => panic!("{other:?}"),
        }
        match plan_of(&mut c, 2).await {
            Some(PlanView::Planned {
                plan, aws_calls, ..
            }) => {
                assert_eq!((plan.hash.as_str(), aws_calls), ("def", 0));
                assert_eq!(plan.errors[0].resource, "database db");
                assert!(plan.notes.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            plan_of(&mut c, 3).await,
            Some(PlanView::Unavailable {
                reason: "AWS is unreachable".into()
            })
        );
        assert_eq!(plan_of(&mut c, 4).await, None);
    }
}
