//! The session store: tower-sessions' SQLite store, with each session's read kept until the
//! store's next commit (and at most a second; [`engine::memo::ByCommits`]). Every page and
//! server function loads the session first; most of them write nothing, so the read is the
//! same until a sign-in, a sign-out, a "seen" mark or another write of this process.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use engine::memo::ByCommits;
use engine::Store;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Result, SessionStore};
use tower_sessions_sqlx_store::SqliteStore;

/// Sessions read through [`ByCommits`]. Writes go straight to SQLite, which moves the commit
/// count, so the next load reads again.
#[derive(Debug, Clone)]
pub(crate) struct KeptSessions {
    sqlite: SqliteStore,
    store: Store,
    kept: Arc<ByCommits<Id, Option<Record>>>,
}

impl KeptSessions {
    pub(crate) fn new(sqlite: SqliteStore, store: Store) -> Self {
        Self {
            sqlite,
            store,
            kept: Arc::new(ByCommits::default()),
        }
    }
}

/// What `#[async_trait]` makes of the trait's methods, written out (the crate is not a
/// dependency of ours).
type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

impl SessionStore for KeptSessions {
    fn create<'s, 'r, 'a>(&'s self, record: &'r mut Record) -> Boxed<'a, ()>
    where
        's: 'a,
        'r: 'a,
        Self: 'a,
    {
        self.sqlite.create(record)
    }

    fn save<'s, 'r, 'a>(&'s self, record: &'r Record) -> Boxed<'a, ()>
    where
        's: 'a,
        'r: 'a,
        Self: 'a,
    {
        self.sqlite.save(record)
    }

    fn load<'s, 'i, 'a>(&'s self, id: &'i Id) -> Boxed<'a, Option<Record>>
    where
        's: 'a,
        'i: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            let record = self
                .kept
                .get_or_read(&self.store, *id, || self.sqlite.load(id))
                .await?;
            // SQLite's own load skips expired sessions; a kept one may have expired since.
            Ok(record.filter(|r| r.expiry_date > OffsetDateTime::now_utc()))
        })
    }

    fn delete<'s, 'i, 'a>(&'s self, id: &'i Id) -> Boxed<'a, ()>
    where
        's: 'a,
        'i: 'a,
        Self: 'a,
    {
        self.sqlite.delete(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kept_session_goes_with_the_next_write_and_when_it_expires() {
        let dir =
            std::env::temp_dir().join(format!("tierdeck-kept-sessions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("panel.db")).await.unwrap();
        let sqlite = SqliteStore::new(store.pool().clone());
        sqlite.migrate().await.unwrap();
        let sessions = KeptSessions::new(sqlite.clone(), store.clone());

        let mut record = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        sessions.create(&mut record).await.unwrap();
        assert_eq!(
            sessions.load(&record.id).await.unwrap(),
            Some(record.clone())
        );
        // Deleted behind the wrapper's back: the commit still moves the count.
        sqlite.delete(&record.id).await.unwrap();
        assert_eq!(sessions.load(&record.id).await.unwrap(), None);

        let mut brief = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::milliseconds(300),
        };
        sessions.create(&mut brief).await.unwrap();
        assert!(sessions.load(&brief.id).await.unwrap().is_some());
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert_eq!(
            sessions.load(&brief.id).await.unwrap(),
            None,
            "expired while kept"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
