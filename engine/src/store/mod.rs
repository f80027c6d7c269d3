//! The SQLite store: one module per aggregate, functions taking a connection or transaction so
//! an audit event is written in the same transaction as the change it records.

pub mod applies;
pub mod audit;
pub mod changes;
pub mod jobs;
pub mod login_failures;
pub mod notifications;
pub mod prices;
pub mod repo;
pub mod reviews;
pub mod scaling;
pub mod tokens;
pub mod users;
pub mod watches;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

/// Migrations, embedded in the binary at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Transactions committed through this pool (a commit hook on every connection counts
    /// them): what the engine reads from the store is kept while this stays the same.
    commits: Arc<AtomicU64>,
}

impl Store {
    /// Opens (creating if needed) the database file in WAL mode.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database folder {}", dir.display()))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // A local file does not drop connections: no ping before each use (a round trip to
        // the connection's thread).
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                let counted = counted.clone();
                Box::pin(async move {
                    conn.lock_handle().await?.set_commit_hook(move || {
                        counted.fetch_add(1, Ordering::SeqCst);
                        true
                    });
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("opening the database {}", path.display()))?;
        Ok(Self { pool, commits })
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("running database migrations")
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// How many write transactions this process has committed: a read of the store taken at
    /// one count holds until the count moves (writes of other processes are not counted; see
    /// [`crate::memo::ByCommits`]).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// A write transaction that takes SQLite's write lock at once. A deferred `BEGIN` that
    /// reads and then writes can fail when another writer commits in between; the audit
    /// chain reads the last hash and then writes, so it always starts this way.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

/// Now, as the stored text: RFC 3339, UTC, milliseconds.
pub fn now_text() -> String {
    format_time(chrono::Utc::now())
}

pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    domain::time::stored::text(&t)
}

/// A stored time read back.
pub fn parse_time(t: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    domain::time::stored::parse(t)
}

/// A time column read back into the domain's time: text that is not a time is the store's
/// error, naming the column.
pub fn time_column(column: &str, t: &str) -> sqlx::Result<chrono::DateTime<chrono::Utc>> {
    parse_time(t).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: e.into(),
    })
}

/// [`time_column`] for a column that may be empty.
pub fn time_column_opt(
    column: &str,
    t: Option<&str>,
) -> sqlx::Result<Option<chrono::DateTime<chrono::Utc>>> {
    t.map(|t| time_column(column, t)).transpose()
}

#[cfg(test)]
mod commit_count_tests {
    use super::*;

    #[tokio::test]
    async fn writes_move_the_commit_count_and_reads_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(store.pool())
            .await
            .unwrap();
        let start = store.commits();
        assert!(start >= 1, "the table's creation was a commit");
        let _: Vec<(i64,)> = sqlx::query_as("SELECT x FROM t")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let mut tx = store.pool().begin().await.unwrap();
        let _: Vec<(i64,)> = sqlx::query_as("SELECT x FROM t")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.commits(), start, "reads commit nothing");
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(store.pool())
            .await
            .unwrap();
        let mut tx = store.begin_write().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.commits(), start + 2);
    }
}
