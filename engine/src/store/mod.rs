//! The SQLite store: one module per aggregate, functions taking a connection or transaction so
//! an audit event is written in the same transaction as the change it records.

pub mod applies;
pub mod audit;
pub mod changes;
pub mod cluster;
pub mod copy;
pub mod jobs;
pub mod login_failures;
pub mod notifications;
mod nullable_f64;
pub mod prices;
pub mod repo;
pub mod reviews;
pub mod scaling;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod watches;

pub use nullable_f64::NullableF64;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Transaction};

/// The connection every store function takes: SQLite's or PostgreSQL's, behind sqlx's `Any`.
/// The SQL is written once, with `$1`-style parameters both take; where the two differ (write
/// locks, `FOR UPDATE`), a function asks [`backend_of`].
pub type Conn = AnyConnection;
/// A transaction on either back end.
pub type Tx = Transaction<'static, Any>;

/// SQLite's migrations, embedded in the binary at build time.
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
/// PostgreSQL's, version for version the same schema (`tests/tests/store.rs` compares them).
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The back end of a connection.
pub fn backend_of(conn: &Conn) -> Backend {
    if conn.backend_name() == "PostgreSQL" {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// Where the store lives: `sqlite://PATH` (or `sqlite:PATH`) or `postgres://…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// Reads a database URL; the error names what was wrong with it.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(format!("`{url}` names no SQLite file"));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_owned()));
        }
        Err(format!(
            "`{}` is neither `sqlite://PATH` nor `postgres://…`",
            redact_url(url)
        ))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Location::Sqlite(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Location::Postgres(u) => f.write_str(&redact_url(u)),
        }
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    location: Arc<Location>,
    writes: Arc<Writes>,
    /// Woken when another replica asks the leader to fetch the spec repository (PostgreSQL).
    fetch_asked: Arc<tokio::sync::Notify>,
    /// This process's turn to write: writers wait here, without a connection, so those that
    /// queue for the store's write lock never hold the pool's connections from the readers.
    write_turn: Arc<tokio::sync::Mutex<()>>,
}

/// How a process learns that the store was written (by itself or by another replica), so what
/// it keeps from the store ([`crate::memo::ByCommits`]) goes with the next write.
#[derive(Debug)]
enum Writes {
    /// SQLite's `PRAGMA data_version` on a connection of its own that never writes: it moves
    /// whenever another connection, of this process or any other, commits.
    Sqlite(tokio::sync::Mutex<AnyConnection>),
    /// PostgreSQL: every write statement notifies `tierdeck_writes` (a trigger on each table),
    /// delivered after its commit; a listener counts them. While the listener is not connected
    /// each read of the count is a new number, so nothing is kept.
    Postgres {
        count: AtomicU64,
        listening: AtomicBool,
    },
}

/// The channel the PostgreSQL triggers notify on each write.
const WRITES_CHANNEL: &str = "tierdeck_writes";
/// The channel a replica asks the leader to fetch on.
const FETCH_CHANNEL: &str = "tierdeck_fetch";
/// The advisory lock key every write transaction takes on PostgreSQL, as SQLite's
/// `BEGIN IMMEDIATE` takes its one write lock ("tierdeck" in ASCII).
const WRITE_LOCK: i64 = 0x7469_6572_6465_636b;

impl Store {
    /// Opens the SQLite file (created with its folder when missing) in WAL mode.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        Self::connect(&Location::Sqlite(path.to_owned()), 8).await
    }

    /// Opens the store at `location` with at most `max_connections` (PostgreSQL also takes one
    /// more for the write listener).
    pub async fn connect(location: &Location, max_connections: u32) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        match location {
            Location::Sqlite(path) => Self::connect_sqlite(path, max_connections).await,
            Location::Postgres(url) => Self::connect_postgres(url, max_connections).await,
        }
    }

    async fn connect_sqlite(path: &Path, max_connections: u32) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database folder {}", dir.display()))?;
        }
        let url = sqlite_url(path);
        // A local file does not drop connections: no ping before each use (a round trip to
        // the connection's thread).
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor as _;
                    conn.execute(SQLITE_SETTINGS).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("opening the database {}", path.display()))?;
        let mut watcher = AnyConnection::connect(&url)
            .await
            .with_context(|| format!("opening the database {}", path.display()))?;
        {
            use sqlx::Executor as _;
            watcher.execute(SQLITE_SETTINGS).await?;
        }
        Ok(Self {
            pool,
            location: Arc::new(Location::Sqlite(path.to_owned())),
            writes: Arc::new(Writes::Sqlite(tokio::sync::Mutex::new(watcher))),
            fetch_asked: Arc::default(),
            write_turn: Arc::default(),
        })
    }

    async fn connect_postgres(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .with_context(|| format!("connecting to the database {shown}"))?;
        let writes = Arc::new(Writes::Postgres {
            count: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        });
        let mut listener = sqlx::postgres::PgListener::connect(url)
            .await
            .with_context(|| format!("connecting to the database {shown}"))?;
        listener
            .listen_all([WRITES_CHANNEL, FETCH_CHANNEL])
            .await
            .with_context(|| format!("listening for writes on {shown}"))?;
        let fetch_asked = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(follow_writes(
            listener,
            Arc::downgrade(&writes),
            fetch_asked.clone(),
        ));
        Ok(Self {
            pool,
            location: Arc::new(Location::Postgres(url.to_owned())),
            writes,
            fetch_asked,
            write_turn: Arc::default(),
        })
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend() {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator
            .run(&self.pool)
            .await
            .context("running database migrations")
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.location.backend()
    }

    /// Where the store is (a PostgreSQL URL with its password hidden when shown).
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// A connection of its own, outside the pool: one that holds a session-level lock for as
    /// long as it lives (the leader's).
    pub async fn dedicated_connection(&self) -> Result<AnyConnection, sqlx::Error> {
        match &*self.location {
            Location::Sqlite(path) => AnyConnection::connect(&sqlite_url(path)).await,
            Location::Postgres(url) => AnyConnection::connect(url).await,
        }
    }

    /// Asks whichever replica leads to fetch the spec repository now (a webhook that reached
    /// another one). On SQLite there is one process: nothing to ask.
    pub async fn ask_leader_to_fetch(&self) -> Result<(), sqlx::Error> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(FETCH_CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Waits until another replica asks for a fetch ([`Store::ask_leader_to_fetch`]).
    pub async fn fetch_asked(&self) {
        self.fetch_asked.notified().await
    }

    /// A number that moves with every write to the store, this process's or another's: a read
    /// of the store taken at one count holds until the count moves (see
    /// [`crate::memo::ByCommits`], which also keeps nothing longer than a second).
    pub async fn commits(&self) -> u64 {
        match &*self.writes {
            Writes::Sqlite(conn) => {
                let mut conn = conn.lock().await;
                match sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                    .fetch_one(&mut *conn)
                    .await
                {
                    Ok(v) => v as u64,
                    // Unknown: a number no read was kept at.
                    Err(_) => fresh_number(),
                }
            }
            Writes::Postgres { count, listening } => {
                if listening.load(Ordering::SeqCst) {
                    count.load(Ordering::SeqCst)
                } else {
                    fresh_number()
                }
            }
        }
    }

    /// A read-only transaction whose reads all see one snapshot of the store (SQLite's read
    /// transactions do; PostgreSQL's need `REPEATABLE READ`).
    pub async fn begin_snapshot(&self) -> Result<Tx, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// A write transaction that holds the store's one write lock from its start (SQLite's
    /// `BEGIN IMMEDIATE`; on PostgreSQL an advisory lock every replica takes the same way). A
    /// transaction that reads and then writes, as the audit chain does (the last hash, then
    /// the next event), sees nothing change in between. In a process, writers take turns
    /// before they take a connection (see [`WriteTx`]).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let turn = self.write_turn.clone().lock_owned().await;
        let tx = match self.backend() {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        Ok(WriteTx { tx, _turn: turn })
    }
}

/// A write transaction ([`Store::begin_write`]), used as a [`Conn`]. It holds its process's
/// turn to write until it commits or is dropped (rolled back): however many requests write at
/// once, one connection of the pool waits on the store's write lock, and reads go on.
pub struct WriteTx {
    tx: Tx,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.tx
    }
}

/// SQL put together at run time with `$n` parameters, which both back ends take (sqlx's
/// `QueryBuilder` writes `?` for `Any`, which PostgreSQL does not).
pub(crate) struct Sql {
    text: String,
    args: sqlx::any::AnyArguments<'static>,
    count: usize,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Default::default(),
            count: 0,
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(crate) fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Send + 'static,
    {
        use sqlx::Arguments;
        // Encoding to `Any` only wraps the value; it cannot fail for the types bound here.
        if self.args.add(value).is_ok() {
            self.count += 1;
            self.text.push_str(&format!("${}", self.count));
        }
        self
    }

    /// Rows of `O` it reads.
    pub(crate) async fn fetch_all<O>(self, conn: &mut Conn) -> Result<Vec<O>, sqlx::Error>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        sqlx::query_as_with(&self.text, self.args)
            .fetch_all(conn)
            .await
    }
}

/// Settings of every SQLite connection.
const SQLITE_SETTINGS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A number not handed out before (from the top of the range, far from any real count).
fn fresh_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(u64::MAX / 2);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Counts the write notifications of every replica until the store is dropped. A lost
/// connection is reconnected by the listener; notifications sent meanwhile are lost, so the
/// count moves once more when it is back.
async fn follow_writes(
    mut listener: sqlx::postgres::PgListener,
    writes: std::sync::Weak<Writes>,
    fetch_asked: Arc<tokio::sync::Notify>,
) {
    let mark = |f: &dyn Fn(&AtomicU64, &AtomicBool)| match writes.upgrade().as_deref() {
        Some(Writes::Postgres { count, listening }) => {
            f(count, listening);
            true
        }
        _ => false,
    };
    mark(&|_, l| l.store(true, Ordering::SeqCst));
    loop {
        let alive = match listener.try_recv().await {
            Ok(Some(n)) if n.channel() == FETCH_CHANNEL => {
                fetch_asked.notify_one();
                mark(&|_, _| {})
            }
            Ok(Some(_)) => mark(&|c, l| {
                c.fetch_add(1, Ordering::SeqCst);
                l.store(true, Ordering::SeqCst);
            }),
            // The connection closed: the listener reconnects on the next call.
            Ok(None) => mark(&|c, l| {
                l.store(false, Ordering::SeqCst);
                c.fetch_add(1, Ordering::SeqCst);
            }),
            Err(e) => {
                tracing::warn!(error = %e, "listening for the other replicas' writes");
                let alive = mark(&|_, l| l.store(false, Ordering::SeqCst));
                tokio::time::sleep(Duration::from_secs(1)).await;
                alive
            }
        };
        if !alive {
            return;
        }
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
        let start = store.commits().await;
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
        assert_eq!(store.commits().await, start, "reads commit nothing");
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(store.pool())
            .await
            .unwrap();
        let after_one = store.commits().await;
        assert_ne!(after_one, start, "a write moves the count");
        let mut tx = store.begin_write().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_ne!(
            store.commits().await,
            after_one,
            "so does a write transaction"
        );
    }

    #[test]
    fn database_urls_name_their_back_end_and_hide_passwords() {
        assert_eq!(
            Location::parse("sqlite://data/t.db"),
            Ok(Location::Sqlite(PathBuf::from("data/t.db")))
        );
        assert_eq!(
            Location::parse("sqlite:/abs/t.db"),
            Ok(Location::Sqlite(PathBuf::from("/abs/t.db")))
        );
        let pg = Location::parse("postgres://tierdeck:s3cret@db.internal:5432/tierdeck").unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        assert_eq!(
            pg.to_string(),
            "postgres://tierdeck:***@db.internal:5432/tierdeck"
        );
        let err = Location::parse("mysql://u:pw@h/db").unwrap_err();
        assert!(
            err.contains("mysql://u:***@h/db") && !err.contains("pw"),
            "{err}"
        );
        assert!(Location::parse("sqlite://").is_err());
    }
}
