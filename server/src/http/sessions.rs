//! The session store: sessions in the store's own table (so any replica reads what another
//! wrote), with each session's read kept until the store's next write (and at most a second;
//! [`engine::memo::ByCommits`]). Every page and server function loads the session first; most
//! of them write nothing, so the read is the same until a sign-in, a sign-out, a "seen" mark or
//! another write.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use engine::memo::ByCommits;
use engine::store::sessions;
use engine::Store;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result, SessionStore};

/// Sessions read through [`ByCommits`]. Writes go straight to the store, which moves the
/// write count, so the next load reads again.
#[derive(Debug, Clone)]
pub(crate) struct KeptSessions {
    store: Store,
    kept: Arc<ByCommits<Id, Option<Record>>>,
}

impl KeptSessions {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            kept: Arc::new(ByCommits::default()),
        }
    }

    /// Deletes expired sessions every `every`, for as long as the process runs.
    pub(crate) async fn delete_expired_every(self, every: std::time::Duration) {
        loop {
            let now = OffsetDateTime::now_utc();
            let deleted = match self.store.pool().acquire().await {
                Ok(mut conn) => sessions::delete_expired(&mut conn, unix_ms(now)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = deleted {
                tracing::warn!(error = %e, "deleting expired sessions");
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.store.pool().acquire().await.map_err(backend)
    }

    async fn read(&self, id: &Id) -> Result<Option<Record>> {
        let mut conn = self.conn().await?;
        let now = unix_ms(OffsetDateTime::now_utc());
        let Some(data) = sessions::load(&mut conn, &id.to_string(), now)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        serde_json::from_str(&data)
            .map(Some)
            .map_err(|e| Error::Decode(format!("session {id}: {e}")))
    }
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

fn encode(record: &Record) -> Result<String> {
    serde_json::to_string(record).map_err(|e| Error::Encode(e.to_string()))
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
        Box::pin(async move {
            let mut conn = self.conn().await?;
            // A new id until one is free (a clash of 128 random bits is for form's sake).
            loop {
                let data = encode(record)?;
                let expires = unix_ms(record.expiry_date);
                if sessions::create(&mut conn, &record.id.to_string(), &data, expires)
                    .await
                    .map_err(backend)?
                {
                    return Ok(());
                }
                record.id = Id::default();
            }
        })
    }

    fn save<'s, 'r, 'a>(&'s self, record: &'r Record) -> Boxed<'a, ()>
    where
        's: 'a,
        'r: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let data = encode(record)?;
            sessions::save(
                &mut conn,
                &record.id.to_string(),
                &data,
                unix_ms(record.expiry_date),
            )
            .await
            .map_err(backend)
        })
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
                .get_or_read(&self.store, *id, || self.read(id))
                .await?;
            // The store's load skips expired sessions; a kept one may have expired since.
            Ok(record.filter(|r| r.expiry_date > OffsetDateTime::now_utc()))
        })
    }

    fn delete<'s, 'i, 'a>(&'s self, id: &'i Id) -> Boxed<'a, ()>
    where
        's: 'a,
        'i: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            sessions::delete(&mut conn, &id.to_string())
                .await
                .map_err(backend)
        })
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
        store.migrate().await.unwrap();
        let sessions = KeptSessions::new(store.clone());

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
        let mut conn = store.pool().acquire().await.unwrap();
        sessions::delete(&mut conn, &record.id.to_string())
            .await
            .unwrap();
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
