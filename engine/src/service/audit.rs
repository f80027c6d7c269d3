//! Reading, exporting and verifying the audit log. Writing is [`crate::store::audit::append`],
//! inside each service's own transaction.

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use domain::audit::{AuditEntry, AuditPage, AuditQuery, ChainReport, ChainVerifier};
use domain::Role;
use futures::stream::{self, BoxStream, StreamExt};

use crate::auth::{Actor, Caller, RequestMeta};
use crate::error::{ServiceError, ServiceResult};
use crate::memo::ByCommits;
use crate::memo::ChainChecked;
use crate::store::audit::{append, NewEvent};
use crate::store::Store;
use crate::store::{audit, format_time};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;
const EXPORT_BATCH: u32 = 500;
const VERIFY_BATCH: u32 = 2000;
/// How long the overview's chain check may build on an earlier walk before walking it all.
pub const FULL_WALK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Parses a filter time: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` (UTC, as a browser's
/// `datetime-local` field sends it) or a date (midnight UTC).
pub fn parse_time(field: &'static str, s: &str) -> ServiceResult<String> {
    let s = s.trim();
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .map(|t| Utc.from_utc_datetime(&t))
        })
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| Utc.from_utc_datetime(&t))
        })
        .ok_or_else(|| {
            ServiceError::invalid(
                field,
                format!("`{s}` is not a time: use RFC 3339 (2026-11-25T09:00:00Z) or a date (2026-11-25)"),
            )
        })?;
    Ok(format_time(t))
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn filter_of(q: &AuditQuery) -> ServiceResult<audit::Filter> {
    Ok(audit::Filter {
        actor: non_empty(&q.actor),
        action: non_empty(&q.action),
        environment: non_empty(&q.env),
        since: non_empty(&q.since)
            .map(|s| parse_time("since", &s))
            .transpose()?,
        until: non_empty(&q.until)
            .map(|s| parse_time("until", &s))
            .transpose()?,
    })
}

/// The audit log.
#[derive(Clone, Copy)]
pub struct AuditLog<'a> {
    pub(crate) store: &'a Store,
    pub(crate) chain_checked: &'a ChainChecked,
    pub(crate) chain_read: &'a ByCommits<bool, ChainReport>,
}

impl AuditLog<'_> {
    /// Records an event on its own, for things that change no other state (a webhook refused).
    pub async fn record_event(
        &self,
        actor: Actor,
        action: &str,
        target: Option<&str>,
        detail: serde_json::Value,
        meta: &RequestMeta,
    ) -> ServiceResult<()> {
        let mut tx = self.store.begin_write().await?;
        append(
            &mut tx,
            NewEvent {
                actor,
                action,
                environment: None,
                target,
                detail,
                meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One page of events matching the query, newest first.
    pub async fn audit_page(&self, caller: &Caller, q: &AuditQuery) -> ServiceResult<AuditPage> {
        caller.require(Role::Viewer)?;
        let filter = filter_of(q)?;
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ServiceError::invalid(
                "limit",
                format!("must be 1 to {MAX_PAGE}"),
            ));
        }
        let mut conn = self.store.pool().acquire().await?;
        // One extra row tells whether there is a next page.
        let mut rows = audit::page(&mut conn, &filter, q.cursor, limit + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| r.seq)
        } else {
            None
        };
        Ok(AuditPage {
            events: rows.into_iter().map(audit::EventRow::into_entry).collect(),
            next_cursor,
        })
    }

    /// Every event matching the query, newest first, read in batches as the consumer pulls:
    /// an export of a large log never sits in memory.
    pub fn audit_export(
        &self,
        caller: &Caller,
        q: &AuditQuery,
    ) -> ServiceResult<BoxStream<'static, ServiceResult<AuditEntry>>> {
        caller.require(Role::Viewer)?;
        let filter = filter_of(q)?;
        let pool = self.store.pool().clone();
        let start = q.cursor;
        let batches = stream::try_unfold(Some(start), move |cursor| {
            let pool = pool.clone();
            let filter = filter.clone();
            async move {
                let Some(cursor) = cursor else {
                    return Ok(None);
                };
                let mut conn = pool.acquire().await?;
                let rows = audit::page(&mut conn, &filter, cursor, EXPORT_BATCH).await?;
                let next =
                    (rows.len() == EXPORT_BATCH as usize).then(|| rows.last().map(|r| r.seq));
                let entries: Vec<AuditEntry> =
                    rows.into_iter().map(audit::EventRow::into_entry).collect();
                if entries.is_empty() {
                    return Ok::<_, ServiceError>(None);
                }
                Ok(Some((stream::iter(entries.into_iter().map(Ok)), next)))
            }
        });
        Ok(batches
            .map(|batch| match batch {
                Ok(s) => s.left_stream(),
                Err(e) => stream::once(async { Err(e) }).right_stream(),
            })
            .flatten()
            .boxed())
    }

    /// Walks the whole chain from the first event and compares the end with the stored head.
    pub async fn audit_verify(&self, caller: &Caller) -> ServiceResult<ChainReport> {
        caller.require(Role::Viewer)?;
        Ok(self.walk_chain(ChainVerifier::new()).await?.1)
    }

    /// The chain's state for a page that shows it on every view (the overview): the whole
    /// chain walked at most once per [`FULL_WALK_EVERY`], and between walks only the events
    /// written since, linked on from where the last check ended. An altered old row shows
    /// here within that time, and at once on the audit page and `tierdeck audit verify`. With
    /// no commit since the last check (and within a second of it), that check's report stands,
    /// unless a full walk has come due since.
    pub async fn audit_verify_recent(&self, caller: &Caller) -> ServiceResult<ChainReport> {
        caller.require(Role::Viewer)?;
        // A check running now holds the lock: then the walk is not due for this caller.
        let walk_due = self.chain_checked.try_lock().is_ok_and(|last| {
            last.as_ref()
                .is_none_or(|(_, at)| at.elapsed() >= FULL_WALK_EVERY)
        });
        self.chain_read
            .get_or_read(self.store, walk_due, || self.check_recent())
            .await
    }

    async fn check_recent(&self) -> ServiceResult<ChainReport> {
        // One check at a time: the ones waiting find it done and read only what is newer.
        let mut last = self.chain_checked.lock().await;
        let (from, walked_at) = match &*last {
            Some((verifier, at)) if at.elapsed() < FULL_WALK_EVERY => (verifier.clone(), *at),
            _ => (ChainVerifier::new(), std::time::Instant::now()),
        };
        let (verifier, report) = self.walk_chain(from).await?;
        *last = report.is_intact().then_some((verifier, walked_at));
        Ok(report)
    }

    /// Feeds `verifier` the events after the last it saw and compares the end with the stored
    /// head; returns the verifier as it stood before that comparison, and the report.
    async fn walk_chain(
        &self,
        verifier: ChainVerifier,
    ) -> ServiceResult<(ChainVerifier, ChainReport)> {
        Ok(walk_chain(self.store, verifier).await?)
    }
}

/// Feeds `verifier` the events of `store` after the last it saw and compares the end with the
/// stored head; returns the verifier as it stood before that comparison, and the report. Also
/// what `tierdeck db copy` checks its copy with.
pub async fn walk_chain(
    store: &crate::Store,
    mut verifier: ChainVerifier,
) -> Result<(ChainVerifier, ChainReport), sqlx::Error> {
    // One read transaction: the head and every batch from one snapshot, so an event
    // written meanwhile is not taken for a cut chain.
    let mut conn = store.begin_snapshot().await?;
    let head = audit::head(&mut conn).await?;
    let mut after = verifier.last_seq();
    'batches: loop {
        let rows = audit::chain_batch(&mut conn, after, VERIFY_BATCH).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let n = rows.len();
        for row in rows {
            if !verifier.push(&row.into_stored()) {
                break 'batches;
            }
        }
        if n < VERIFY_BATCH as usize {
            break;
        }
    }
    drop(conn);
    let report = verifier
        .clone()
        .finish(head.as_ref().map(|(s, h)| (*s, h.as_str())));
    Ok((verifier, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends `n` system events, one transaction each.
    async fn write_events(store: crate::Store, n: usize) {
        use crate::auth::Actor;
        use crate::store::audit::{append, NewEvent};
        let meta = crate::RequestMeta::default();
        for _ in 0..n {
            let mut tx = store.begin_write().await.unwrap();
            let event = NewEvent {
                actor: Actor::system(),
                action: "test.event",
                environment: None,
                target: None,
                detail: serde_json::json!({}),
                meta: &meta,
            };
            append(&mut tx, event).await.unwrap();
            tx.commit().await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chain_verified_while_events_are_written_is_intact() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        let engine = crate::Engine::new(store.clone(), crate::EngineSettings::default());
        let write = |n: usize| write_events(store.clone(), n);
        // More than a batch, so a verify reads in several steps.
        write(VERIFY_BATCH as usize + 100).await;
        let writer = tokio::spawn(write(400));
        for _ in 0..20 {
            let report = engine.audit().audit_verify(&Caller::System).await.unwrap();
            assert!(report.is_intact(), "{report:?}");
        }
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn the_recent_check_reads_only_new_events_and_the_full_walk_sees_an_old_edit() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        let engine = crate::Engine::new(store.clone(), crate::EngineSettings::default());
        let write = |n: usize| write_events(store.clone(), n);
        write(3).await;
        let first = engine
            .audit()
            .audit_verify_recent(&Caller::System)
            .await
            .unwrap();
        assert_eq!((first.rows_checked, first.is_intact()), (3, true));
        write(2).await;
        let resumed = engine
            .audit()
            .audit_verify_recent(&Caller::System)
            .await
            .unwrap();
        assert_eq!((resumed.rows_checked, resumed.is_intact()), (5, true));

        // Someone with the file edits an event already checked.
        let mut conn = store.pool().acquire().await.unwrap();
        for sql in [
            "DROP TRIGGER audit_events_append_only_update",
            "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2",
        ] {
            sqlx::query(sql).execute(&mut *conn).await.unwrap();
        }
        drop(conn);
        write(1).await;
        // Within the minute the recent check links the new event on; the full walk (the audit
        // page, the API, the CLI) names the edit at once…
        let recent = engine
            .audit()
            .audit_verify_recent(&Caller::System)
            .await
            .unwrap();
        assert_eq!((recent.rows_checked, recent.is_intact()), (6, true));
        let full = engine.audit().audit_verify(&Caller::System).await.unwrap();
        assert_eq!(
            full.broken,
            Some(domain::audit::Break::Altered { seq: 2 }),
            "{full:?}"
        );
        // …and once the last full walk is a minute old, so does the recent check.
        if let Some((_, at)) = engine.chain_checked.lock().await.as_mut() {
            *at -= FULL_WALK_EVERY;
        }
        let walked = engine
            .audit()
            .audit_verify_recent(&Caller::System)
            .await
            .unwrap();
        assert!(!walked.is_intact(), "{walked:?}");
    }

    #[test]
    fn filter_times_accept_rfc3339_local_form_values_and_dates() {
        assert_eq!(
            parse_time("since", "2026-11-25T09:00:00+09:00").unwrap(),
            "2026-11-25T00:00:00.000Z"
        );
        assert_eq!(
            parse_time("since", "2026-11-25T09:30").unwrap(),
            "2026-11-25T09:30:00.000Z"
        );
        assert_eq!(
            parse_time("since", "2026-11-25").unwrap(),
            "2026-11-25T00:00:00.000Z"
        );
        let err = parse_time("until", "yesterday").unwrap_err().to_string();
        assert!(err.starts_with("until: `yesterday` is not a time"), "{err}");
    }
}
