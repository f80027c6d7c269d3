//! What the engine keeps between requests, held by its handle and used by one service each:
//! cost facts and results ([`Flights`]), the overview's last audit chain check, and reads of
//! the store kept until the next write ([`ByCommits`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::audit::ChainVerifier;
use domain::cost::{EnvironmentCost, Facts};
use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::Mutex;

/// Facts read from AWS per environment (the AWS reads' warnings beside them); the cost service
/// reuses them for a while.
pub type FactsCache = Flights<String, (Facts, Vec<String>)>;

/// Costs computed, by what they were computed from (spec, facts, prices, month): a change page
/// viewed by many computes its figures once (`Err`: the computation failed, kept for no one).
pub type CostCache = Flights<u64, Result<EnvironmentCost, String>>;

/// Values worked out once per key by the first who asks, while the others who ask for the same
/// key meanwhile await that same work. No lock is held while it runs: the map's lock is taken
/// only to look a key up or to store what came out, so one slow key (an environment whose AWS
/// reads hang) never holds back another.
pub struct Flights<K, V: Clone> {
    slot: std::sync::Mutex<HashMap<K, Flight<V>>>,
    /// Entries kept at once; finished ones go first beyond it.
    limit: usize,
}

enum Flight<V: Clone> {
    Running(Shared<BoxFuture<'static, V>>),
    Done(Instant, V),
}

impl<K, V: Clone> std::fmt::Debug for Flights<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("Flights")
            .field("entries", &slot.len())
            .field("limit", &self.limit)
            .finish()
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone + Send + Sync + 'static> Flights<K, V> {
    pub fn new(limit: usize) -> Self {
        Self {
            slot: std::sync::Mutex::new(HashMap::new()),
            limit,
        }
    }

    /// The value for `key`: kept (finished less than `fresh_for` ago, `None`: for as long as it
    /// is kept), being worked out by someone else (awaited), or worked out now by `run`.
    /// What `keep` refuses is handed out but not kept.
    pub async fn get_or_run<F>(
        &self,
        key: K,
        fresh_for: Option<Duration>,
        keep: impl Fn(&V) -> bool,
        run: impl FnOnce() -> F,
    ) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let flight = {
            let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
            match slot.get(&key) {
                Some(Flight::Done(at, v)) if fresh_for.is_none_or(|d| at.elapsed() < d) => {
                    return v.clone();
                }
                Some(Flight::Running(f)) => f.clone(),
                _ => {
                    if slot.len() >= self.limit {
                        slot.retain(|_, f| matches!(f, Flight::Running(_)));
                        if slot.len() >= self.limit {
                            // Full of work in flight: its askers still hold it.
                            slot.clear();
                        }
                    }
                    let f = run().boxed().shared();
                    slot.insert(key.clone(), Flight::Running(f.clone()));
                    f
                }
            }
        };
        let value = flight.clone().await;
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        // Only this flight's own entry is replaced (not a newer one for the same key).
        let ours = matches!(slot.get(&key), Some(Flight::Running(f)) if f.ptr_eq(&flight));
        if ours {
            if keep(&value) {
                slot.insert(key, Flight::Done(Instant::now(), value.clone()));
            } else {
                slot.remove(&key);
            }
        }
        value
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone + Send + Sync + 'static> Default for Flights<K, V> {
    fn default() -> Self {
        Self::new(256)
    }
}

/// The last intact check's verifier and when its full walk began.
pub(crate) type ChainChecked = Arc<Mutex<Option<(ChainVerifier, Instant)>>>;

/// The longest a read of the store is kept even when this process wrote nothing since: other
/// processes (`tierdeck users …` on the same database) write without being counted.
pub(crate) const READ_KEPT: Duration = Duration::from_secs(1);

/// A read of the store, kept while the store's commit count stays where it was when the read
/// began (and at most [`READ_KEPT`]). A read that saw the count move while it ran is not kept.
#[derive(Debug)]
pub struct ByCommits<K, V> {
    /// The commit count the entries were read at, and each entry with when it was read.
    slot: std::sync::Mutex<Kept<K, V>>,
    /// Entries kept at once; the whole map is emptied beyond it.
    limit: usize,
}

type Kept<K, V> = (u64, HashMap<K, (Instant, V)>);

impl<K: std::hash::Hash + Eq, V: Clone> ByCommits<K, V> {
    pub fn new(limit: usize) -> Self {
        Self {
            slot: std::sync::Mutex::new((0, HashMap::new())),
            limit,
        }
    }

    /// The value kept for `key` at commit count `commits`.
    pub(crate) fn get(&self, commits: u64, key: &K) -> Option<V> {
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.0 != commits {
            return None;
        }
        slot.1
            .get(key)
            .filter(|(at, _)| at.elapsed() < READ_KEPT)
            .map(|(_, v)| v.clone())
    }

    /// The value kept for `key`, or what `read` reads from `store` (kept when no commit came
    /// while it ran).
    pub async fn get_or_read<E, Fut>(
        &self,
        store: &crate::Store,
        key: K,
        read: impl FnOnce() -> Fut,
    ) -> Result<V, E>
    where
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let before = store.commits().await;
        if let Some(kept) = self.get(before, &key) {
            return Ok(kept);
        }
        let value = read().await?;
        self.put(before, store.commits().await, key, value.clone());
        Ok(value)
    }

    /// Keeps `value`, read from count `before` to count `after`.
    pub(crate) fn put(&self, before: u64, after: u64, key: K, value: V) {
        if before != after {
            return;
        }
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.0 != before {
            *slot = (before, HashMap::new());
        }
        if slot.1.len() >= self.limit {
            slot.1.clear();
        }
        slot.1.insert(key, (Instant::now(), value));
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Default for ByCommits<K, V> {
    fn default() -> Self {
        Self::new(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_key_holds_back_no_other_and_askers_of_one_key_share_its_work() {
        let flights: Flights<&str, u32> = Flights::new(8);
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (release, held) = tokio::sync::oneshot::channel::<()>();
        let held = held.shared();
        let slow = |runs: Arc<std::sync::atomic::AtomicU32>| {
            let held = held.clone();
            move || async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = held.await;
                1
            }
        };
        let first = flights.get_or_run("slow", None, |_| true, slow(runs.clone()));
        let second = flights.get_or_run("slow", None, |_| true, slow(runs.clone()));
        let other = flights.get_or_run("quick", None, |_| true, || async { 2 });
        tokio::pin!(first, second);
        // Both askers of the slow key wait; the quick key answers meanwhile.
        assert!(futures::poll!(&mut first).is_pending());
        assert!(futures::poll!(&mut second).is_pending());
        assert_eq!(other.await, 2);
        assert!(futures::poll!(&mut first).is_pending());
        release.send(()).unwrap();
        assert_eq!(first.await, 1);
        assert_eq!(second.await, 1);
        assert_eq!(
            runs.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "worked out once"
        );
        // Kept: not worked out again.
        let again = flights
            .get_or_run("slow", None, |_| true, || async { 3 })
            .await;
        assert_eq!(again, 1);
        // Stale, or refused by `keep`: worked out again.
        let fresh = flights
            .get_or_run("slow", Some(Duration::ZERO), |_| true, || async { 4 })
            .await;
        assert_eq!(fresh, 4);
        let unkept = flights
            .get_or_run("odd", None, |v| *v != 5, || async { 5 })
            .await;
        assert_eq!(unkept, 5);
        let again = flights
            .get_or_run("odd", None, |_| true, || async { 6 })
            .await;
        assert_eq!(again, 6);
    }

    #[tokio::test]
    async fn flights_stay_bounded() {
        let flights: Flights<u32, u32> = Flights::new(4);
        for k in 0..100 {
            flights
                .get_or_run(k, None, |_| true, move || async move { k })
                .await;
        }
        assert!(flights.slot.lock().unwrap().len() <= 4);
    }

    #[test]
    fn a_read_is_kept_until_the_next_commit_and_never_when_one_came_during_it() {
        let m: ByCommits<&str, u32> = ByCommits::new(2);
        m.put(3, 3, "a", 1);
        assert_eq!(m.get(3, &"a"), Some(1));
        assert_eq!(m.get(4, &"a"), None, "a commit since: read again");
        m.put(4, 5, "b", 2);
        assert_eq!(m.get(5, &"b"), None, "a commit came while it was read");
        m.put(5, 5, "a", 1);
        m.put(5, 5, "b", 2);
        m.put(5, 5, "c", 3);
        assert_eq!(m.get(5, &"a"), None, "bounded");
        assert_eq!(m.get(5, &"c"), Some(3));
    }
}
