//! What pages read from the mirror, kept by commit. A commit's files never change, so an
//! environment's spec at a commit (parsed, or its errors) and a commit's header are read from
//! git once and then reused by every page, report and plan that asks again: an overview renders
//! without opening the repository or parsing YAML.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use domain::change::CommitInfo;
use domain::spec::{EnvironmentSpec, SpecError};
use git2::Oid;

use super::{git::Mirror, load_at, RepoSettings};

/// An environment's spec at a commit (shared by every reader, not copied), or everything wrong
/// with it.
pub(crate) type LoadedSpec = Result<Arc<EnvironmentSpec>, Vec<SpecError>>;

/// A commit and an environment's name.
type SpecKey = (Oid, String);

/// Specs kept at most; the oldest read goes first. Pages ask for a handful of commits (the
/// head and each environment's applied commit).
const SPECS: usize = 64;
/// Commit headers kept at most.
const COMMITS: usize = 256;

#[derive(Clone, Default)]
pub(crate) struct ReadCache {
    specs: Arc<Mutex<Bounded<SpecKey, Arc<LoadedSpec>>>>,
    commits: Arc<Mutex<Bounded<Oid, CommitInfo>>>,
}

impl ReadCache {
    /// `env`'s spec at `commit`, read from the mirror at most once.
    pub(crate) async fn spec(
        &self,
        settings: &RepoSettings,
        commit: &str,
        env: &str,
    ) -> anyhow::Result<Arc<LoadedSpec>> {
        let oid = Oid::from_str(commit)?;
        let key = (oid, env.to_owned());
        if let Some(hit) = lock(&self.specs).get(&key) {
            return Ok(hit);
        }
        let (dir, remote, name, timeout) = (
            settings.mirror_dir.clone(),
            settings.remote.clone(),
            env.to_owned(),
            settings.fetch_timeout,
        );
        let loaded = tokio::task::spawn_blocking(move || {
            load_at(
                &Mirror::open_having(&dir, remote, &[oid], timeout)?,
                oid,
                &name,
            )
        })
        .await??;
        let loaded = Arc::new(loaded.map(Arc::new));
        lock(&self.specs).put(key, loaded.clone(), SPECS);
        Ok(loaded)
    }

    /// The header of `commit` (author, time, subject), read from the mirror at most once.
    pub(crate) async fn commit(
        &self,
        settings: &RepoSettings,
        commit: &str,
    ) -> anyhow::Result<CommitInfo> {
        let oid = Oid::from_str(commit)?;
        if let Some(hit) = lock(&self.commits).get(&oid) {
            return Ok(hit);
        }
        let (dir, remote, timeout) = (
            settings.mirror_dir.clone(),
            settings.remote.clone(),
            settings.fetch_timeout,
        );
        let info = tokio::task::spawn_blocking(move || {
            Mirror::open_having(&dir, remote, &[oid], timeout)?.commit_info(oid)
        })
        .await??;
        lock(&self.commits).put(oid, info.clone(), COMMITS);
        Ok(info)
    }
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("specs", &lock(&self.specs).order.len())
            .field("commits", &lock(&self.commits).order.len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a map that is still whole.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A map of at most a given number of entries, forgetting the oldest inserted first.
struct Bounded<K, V> {
    entries: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        self.entries.get(key).cloned()
    }

    fn put(&mut self, key: K, value: V, max: usize) {
        if self.entries.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > max {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entry_goes_first_and_a_second_put_keeps_one() {
        let mut b = Bounded::default();
        for i in 0..5 {
            b.put(i, i * 10, 3);
        }
        b.put(4, 41, 3);
        assert_eq!(b.entries.len(), 3);
        assert_eq!(b.order.len(), 3);
        assert_eq!(b.get(&1), None);
        assert_eq!(b.get(&2), Some(20));
        assert_eq!(b.get(&4), Some(41));
    }
}
