//! Several replicas on one database: each says every few seconds that it is alive, and one of
//! them leads the periodic work (the repository watcher, the drift and scaling pollers). The
//! jobs queue needs no leader: any replica takes a job, each job one replica.
//!
//! The leader holds a lease in the `leader` row, renewed every third of its length, with a
//! term that grows with each new leader (the fencing token: what a leader did is known by its
//! term). On PostgreSQL a replica may take the lease only while it holds an advisory lock on a
//! connection of its own: the lock goes with the leader's connection when its process dies, so
//! another replica takes over at its next look rather than when the lease runs out; a leader
//! that loses that connection steps down at once. On SQLite there is one process, which leads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::cluster::{ClusterView, LeaderView, ReplicaView};
use sqlx::AnyConnection;

use crate::store::cluster::{self, LeaderRow, ReplicaRow};
use crate::store::{format_time, Backend};
use crate::{Holder, Store};

/// The advisory lock key of leadership ("leader" in ASCII).
const LEADER_LOCK: i64 = 0x6c65_6164_6572;

/// Whether this replica leads, and in which term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Leadership {
    pub leading: bool,
    /// The leader's term as this replica last saw it (0: none yet).
    pub term: i64,
}

/// This replica's part in the cluster.
#[derive(Debug)]
pub struct Cluster {
    store: Store,
    me: ReplicaRow,
    lease: Duration,
    state: tokio::sync::watch::Sender<Leadership>,
    /// Terms this replica saw begin (its own included).
    leader_changes: AtomicU64,
}

impl Cluster {
    pub fn new(store: Store, holder: &Holder, version: &str, lease: Duration) -> Arc<Self> {
        let now = format_time(Utc::now());
        Arc::new(Self {
            store,
            me: ReplicaRow {
                id: holder.id.clone(),
                host: holder.host.clone(),
                pid: i64::from(holder.pid),
                version: version.to_owned(),
                started_at: now.clone(),
                seen_at: now,
            },
            lease,
            state: tokio::sync::watch::Sender::new(Leadership::default()),
            leader_changes: AtomicU64::new(0),
        })
    }

    pub fn id(&self) -> &str {
        &self.me.id
    }

    pub fn leadership(&self) -> Leadership {
        *self.state.borrow()
    }

    /// Terms this replica saw begin since it started.
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes.load(Ordering::SeqCst)
    }

    /// Returns once this replica leads.
    pub async fn until_leading(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|l| l.leading).await;
    }

    /// Returns once this replica no longer leads.
    pub async fn until_following(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|l| !l.leading).await;
    }

    /// Runs `work` (made anew each time) while this replica leads, forever: it starts when
    /// this replica comes to lead and is dropped when it stops leading.
    pub async fn while_leading<F, Fut>(self: Arc<Self>, mut work: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            self.until_leading().await;
            tokio::select! {
                () = work() => {}
                () = self.until_following() => {}
            }
        }
    }

    /// Says this replica is alive and takes or renews the lease, every third of the lease,
    /// forever.
    pub async fn run(self: Arc<Self>) {
        let mut lock: Option<AnyConnection> = None;
        let every = (self.lease / 3).max(Duration::from_millis(500));
        loop {
            let seen = match self.look(&mut lock).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "the cluster's lease: stepping down until the database answers");
                    lock = None;
                    Leadership {
                        leading: false,
                        term: self.leadership().term,
                    }
                }
            };
            let before = self.leadership();
            if seen.term != before.term && seen.term != 0 {
                self.leader_changes.fetch_add(1, Ordering::SeqCst);
            }
            if seen.leading != before.leading {
                if seen.leading {
                    tracing::warn!(term = seen.term, replica = %self.me.id, "this replica leads the periodic work");
                } else {
                    tracing::warn!(replica = %self.me.id, "this replica no longer leads");
                }
            }
            self.state.send_replace(seen);
            tokio::time::sleep(every).await;
        }
    }

    /// Whether this replica holds (or now takes) the advisory lock of leadership.
    async fn holds_lock(&self, lock: &mut Option<AnyConnection>) -> Result<bool, sqlx::Error> {
        if self.store.backend() == Backend::Sqlite {
            return Ok(true);
        }
        if let Some(conn) = lock.as_mut() {
            // Held since an earlier look: the connection (and so the lock) is still there.
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            return Ok(true);
        }
        let mut conn = self.store.dedicated_connection().await?;
        let taken: bool = sqlx::query_scalar::<_, i64>(
            "SELECT CASE WHEN pg_try_advisory_lock($1) THEN 1 ELSE 0 END",
        )
        .bind(LEADER_LOCK)
        .fetch_one(&mut conn)
        .await?
            != 0;
        if taken {
            *lock = Some(conn);
        }
        Ok(taken)
    }

    /// One look: the heartbeat, then the lease taken, renewed or left to its holder.
    async fn look(&self, lock: &mut Option<AnyConnection>) -> Result<Leadership, sqlx::Error> {
        let holds_lock = self.holds_lock(lock).await?;
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        let mut tx = self.store.begin_write().await?;
        let me = ReplicaRow {
            seen_at: format_time(now),
            ..self.me.clone()
        };
        cluster::heartbeat(&mut tx, &me).await?;
        let forget_before = now - chrono::Duration::from_std(self.lease * 20).unwrap_or_default();
        cluster::forget_stale(&mut tx, &format_time(forget_before)).await?;
        let current = cluster::leader(&mut tx).await?;
        let decided = decide(
            current.as_ref(),
            &self.me.id,
            holds_lock,
            self.store.backend(),
            now,
        );
        let seen = match decided {
            Decision::Follow(term) => Leadership {
                leading: false,
                term,
            },
            Decision::Renew(term) | Decision::Take(term) => {
                let since = match (&current, decided) {
                    (Some(c), Decision::Renew(_)) => c.since.clone(),
                    _ => format_time(now),
                };
                cluster::set_leader(
                    &mut tx,
                    &LeaderRow {
                        replica_id: self.me.id.clone(),
                        term,
                        since,
                        lease_until: format_time(until),
                    },
                )
                .await?;
                Leadership {
                    leading: true,
                    term,
                }
            }
        };
        tx.commit().await?;
        Ok(seen)
    }

    /// Leaves the cluster on a clean stop: the lease ends now and this replica's row goes.
    pub async fn leave(&self) {
        let now = format_time(Utc::now());
        let left = async {
            let mut tx = self.store.begin_write().await?;
            cluster::step_down(&mut tx, &self.me.id, &now).await?;
            cluster::forget(&mut tx, &self.me.id).await?;
            tx.commit().await
        };
        if let Err(e) = left.await {
            tracing::warn!(error = %e, "leaving the cluster");
        }
    }

    /// The replicas and who leads (admins).
    pub async fn view(&self, caller: &crate::Caller) -> crate::error::ServiceResult<ClusterView> {
        caller.require(domain::Role::Admin)?;
        let mut conn = self.store.pool().acquire().await?;
        let leader = cluster::leader(&mut conn).await?;
        let replicas = cluster::replicas(&mut conn).await?;
        let now = Utc::now();
        let time = crate::store::time_column;
        let leader = leader
            .map(|l| -> sqlx::Result<LeaderView> {
                Ok(LeaderView {
                    since: time("since", &l.since)?,
                    lease_until: time("lease_until", &l.lease_until)?,
                    replica_id: l.replica_id,
                    term: l.term,
                })
            })
            .transpose()?;
        let replicas = replicas
            .into_iter()
            .map(|r| -> sqlx::Result<ReplicaView> {
                Ok(ReplicaView {
                    leading: leader
                        .as_ref()
                        .is_some_and(|l| l.replica_id == r.id && l.lease_until >= now),
                    started_at: time("started_at", &r.started_at)?,
                    seen_at: time("seen_at", &r.seen_at)?,
                    id: r.id,
                    host: r.host,
                    pid: r.pid,
                    version: r.version,
                })
            })
            .collect::<sqlx::Result<_>>()?;
        Ok(ClusterView {
            backend: self.store.backend().as_str().to_owned(),
            this_replica: self.me.id.clone(),
            leader,
            replicas,
        })
    }
}

/// What one look decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Another replica leads (in this term).
    Follow(i64),
    /// This replica leads on, in its term.
    Renew(i64),
    /// This replica begins a new term.
    Take(i64),
}

fn decide(
    current: Option<&LeaderRow>,
    me: &str,
    holds_lock: bool,
    backend: Backend,
    now: DateTime<Utc>,
) -> Decision {
    let Some(c) = current else {
        return if holds_lock {
            Decision::Take(1)
        } else {
            Decision::Follow(0)
        };
    };
    if !holds_lock {
        return Decision::Follow(c.term);
    }
    if c.replica_id == me {
        return Decision::Renew(c.term);
    }
    let expired = crate::store::parse_time(&c.lease_until).map_or(true, |t| t < now);
    // On PostgreSQL the lock proves the last leader's connection is gone: no need to wait for
    // its lease. On SQLite the lease alone decides.
    if expired || backend == Backend::Postgres {
        Decision::Take(c.term + 1)
    } else {
        Decision::Follow(c.term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, term: i64, until: DateTime<Utc>) -> LeaderRow {
        LeaderRow {
            replica_id: id.to_owned(),
            term,
            since: format_time(until),
            lease_until: format_time(until),
        }
    }

    #[test]
    fn a_lease_is_taken_renewed_or_left_to_its_holder() {
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(10);
        let earlier = now - chrono::Duration::seconds(1);
        use Backend::*;
        assert_eq!(decide(None, "a", true, Sqlite, now), Decision::Take(1));
        assert_eq!(decide(None, "a", false, Postgres, now), Decision::Follow(0));
        let b_live = row("b", 4, later);
        assert_eq!(
            decide(Some(&b_live), "a", true, Sqlite, now),
            Decision::Follow(4)
        );
        assert_eq!(
            decide(Some(&b_live), "a", false, Postgres, now),
            Decision::Follow(4)
        );
        // Holding the lock on PostgreSQL: b's connection, and so b, is gone.
        assert_eq!(
            decide(Some(&b_live), "a", true, Postgres, now),
            Decision::Take(5)
        );
        let b_expired = row("b", 4, earlier);
        assert_eq!(
            decide(Some(&b_expired), "a", true, Sqlite, now),
            Decision::Take(5)
        );
        assert_eq!(
            decide(Some(&b_expired), "a", false, Postgres, now),
            Decision::Follow(4)
        );
        let mine = row("a", 7, later);
        assert_eq!(
            decide(Some(&mine), "a", true, Postgres, now),
            Decision::Renew(7)
        );
        // Lost the lock: a leads no more, whatever its row says.
        assert_eq!(
            decide(Some(&mine), "a", false, Postgres, now),
            Decision::Follow(7)
        );
    }
}
