//! What the engine keeps between requests, held by its handle and used by one service each:
//! cost facts and results, the overview's last audit chain check, and reads of the store kept
//! until the next write ([`ByCommits`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::audit::ChainVerifier;
use domain::cost::{EnvironmentCost, Facts};
use tokio::sync::Mutex;

/// Facts read from AWS per environment, with when they were read; the cost service reuses
/// them for a while.
pub type FactsCache = Arc<Mutex<HashMap<String, (Instant, Facts, Vec<String>)>>>;

/// Costs computed, by what they were computed from (spec, facts, prices, month): a change page
/// viewed by many computes its figures once. Held while computing, so that at most one runs.
pub type CostCache = Arc<Mutex<HashMap<u64, EnvironmentCost>>>;

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
        let before = store.commits();
        if let Some(kept) = self.get(before, &key) {
            return Ok(kept);
        }
        let value = read().await?;
        self.put(before, store.commits(), key, value.clone());
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
