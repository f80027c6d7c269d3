//! `tierdeck db copy`: every table of one store into another (SQLite to PostgreSQL, or back),
//! one transaction per table, in an order that keeps every reference valid.

use super::{Backend, Conn, Store};
use sqlx::Row as _;

/// The tables copied, parents before children. The replicas and their leader are not copied:
/// they describe running processes, not the panel.
pub const TABLES: &[&str] = &[
    "users",
    "api_tokens",
    "login_failures",
    "sessions",
    "audit_events",
    "audit_head",
    "repo_state",
    "environments",
    "changes",
    "apply_runs",
    "apply_steps",
    "environment_locks",
    "reviews",
    "notifications",
    "group_snapshots",
    "scaling_activities",
    "prices",
    "watches",
    "jobs",
];

/// Tables of the schema that hold no panel data.
pub const NOT_COPIED: &[&str] = &["replicas", "leader"];

/// Columns that refer to a row of the same table: written after every row is in.
const SELF_REFERENCES: &[(&str, &[&str])] = &[("changes", &["superseded_by", "reverts"])];

/// What a column holds, as both schemas type it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Integer,
    Real,
    Text,
}

/// One table copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub table: &'static str,
    pub rows: u64,
}

/// Why a copy did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the target already holds data (table {table}: {rows} rows); pass --force to replace it"
    )]
    NotEmpty { table: String, rows: i64 },
    #[error("the schema lacks table {0}: is the target tierdeck's?")]
    NoTable(String),
    #[error("copying {table}: {source}")]
    Table {
        table: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Copies every table of `from` into `to` (both migrated to the same version first). A target
/// with data is refused unless `force`, which empties it first. `each` hears of each table as
/// it is done.
pub async fn copy(
    from: &Store,
    to: &Store,
    force: bool,
    mut each: impl FnMut(&Copied),
) -> Result<Vec<Copied>, CopyError> {
    let mut target = to.pool().acquire().await?;
    for table in TABLES.iter().chain(NOT_COPIED) {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *target)
            .await
            .map_err(|_| CopyError::NoTable((*table).to_owned()))?;
        if rows > 0 && TABLES.contains(table) && !force {
            return Err(CopyError::NotEmpty {
                table: (*table).to_owned(),
                rows,
            });
        }
    }
    drop(target);
    if force {
        empty(to).await?;
    }
    let mut done = Vec::new();
    for table in TABLES {
        let rows = copy_table(from, to, table)
            .await
            .map_err(|source| CopyError::Table {
                table: (*table).to_owned(),
                source,
            })?;
        let c = Copied { table, rows };
        each(&c);
        done.push(c);
    }
    Ok(done)
}

/// Empties the target's tables, children first. The audit log refuses deletes by trigger;
/// the triggers are set aside for this one transaction.
async fn empty(to: &Store) -> Result<(), sqlx::Error> {
    let mut tx = to.begin_write().await?;
    let set_aside = match to.backend() {
        Backend::Postgres => "SET LOCAL session_replication_role = replica",
        Backend::Sqlite => "DROP TRIGGER IF EXISTS audit_events_append_only_delete",
    };
    sqlx::query(set_aside).execute(&mut *tx).await?;
    for table in TABLES.iter().rev() {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
    }
    if to.backend() == Backend::Sqlite {
        sqlx::query(
            "CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
             BEGIN
                 SELECT RAISE(ABORT, 'audit_events is append-only');
             END",
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

async fn copy_table(from: &Store, to: &Store, table: &str) -> Result<u64, sqlx::Error> {
    let mut tx = to.begin_write().await?;
    let kinds = column_kinds(&mut tx, to.backend(), table).await?;
    let names: Vec<&str> = kinds.iter().map(|(n, _)| n.as_str()).collect();
    let later: &[&str] = SELF_REFERENCES
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| *c)
        .unwrap_or(&[]);
    let mut source = from.begin_snapshot().await?;
    let rows = sqlx::query(&format!("SELECT {} FROM {table}", names.join(", ")))
        .fetch_all(&mut *source)
        .await?;
    drop(source);
    let insert = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        (1..=names.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut self_refs = Vec::new();
    for row in &rows {
        let mut q = sqlx::query(&insert);
        for (i, (name, kind)) in kinds.iter().enumerate() {
            let deferred = later.contains(&name.as_str());
            match kind {
                Kind::Integer => {
                    let v: Option<i64> = row.try_get(i)?;
                    if deferred {
                        if let Some(v) = v {
                            let id: i64 = row.try_get("id")?;
                            self_refs.push((name.clone(), id, v));
                        }
                        q = q.bind(None::<i64>);
                    } else {
                        q = q.bind(v);
                    }
                }
                Kind::Real => q = q.bind(super::NullableF64(row.try_get(i)?)),
                Kind::Text => q = q.bind(row.try_get::<Option<String>, _>(i)?),
            }
        }
        q.execute(&mut *tx).await?;
    }
    for (column, id, value) in self_refs {
        sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
            .bind(value)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    // PostgreSQL's identity columns go on from the highest id copied.
    if to.backend() == Backend::Postgres && names.contains(&"id") {
        let identity: Option<String> =
            sqlx::query_scalar("SELECT pg_get_serial_sequence($1, 'id')")
                .bind(table)
                .fetch_one(&mut *tx)
                .await?;
        if identity.is_some() {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                    COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}

/// The columns of `table` in the target's schema, with what they hold.
async fn column_kinds(
    conn: &mut Conn,
    backend: Backend,
    table: &str,
) -> Result<Vec<(String, Kind)>, sqlx::Error> {
    let rows: Vec<(String, String)> = match backend {
        Backend::Sqlite => {
            sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(&mut *conn)
                .await?
        }
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(name, ty)| {
            let ty = ty.to_ascii_lowercase();
            let kind = if ty.contains("int") {
                Kind::Integer
            } else if ty.contains("real") || ty.contains("double") {
                Kind::Real
            } else {
                Kind::Text
            };
            (name, kind)
        })
        .collect())
}

/// The names of the store's tables (without sqlx's own).
pub async fn tables(store: &Store) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = store.pool().acquire().await?;
    let sql = match store.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table'
                AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()
                AND tablename NOT LIKE '\\_sqlx%' ORDER BY tablename"
        }
    };
    sqlx::query_scalar(sql).fetch_all(&mut *conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_table_of_the_schema_is_copied_or_said_not_to_be() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        let mut listed: Vec<&str> = TABLES.iter().chain(NOT_COPIED).copied().collect();
        listed.sort();
        assert_eq!(tables(&store).await.unwrap(), listed);
    }
}
