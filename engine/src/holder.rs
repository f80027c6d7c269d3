//! The environment lock's holder: this process, and whether the process holding a lock still
//! runs.

use std::time::Duration;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::store::applies::LockRow;

/// How often a running apply marks its lock as alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(5);
/// A lock not marked for this long is free, whoever holds it.
pub(crate) const STALE_AFTER_SECS: i64 = 30;

/// This process, as a lock holder.
#[derive(Debug, Clone)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub id: String,
    /// The apply runs whose steps this process is running now.
    running: Arc<Mutex<HashSet<i64>>>,
}

/// Marks a run as running in this process until dropped.
pub(crate) struct Running {
    runs: Arc<Mutex<HashSet<i64>>>,
    run: i64,
}

impl Drop for Running {
    fn drop(&mut self) {
        lock(&self.runs).remove(&self.run);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Holder {
    /// This process. Its `host` is the host name and the pid namespace: two containers that
    /// share the host's name (host networking), both pid 1, are different hosts, so neither
    /// takes the other's live lock for its own dead one.
    pub fn this_process() -> Self {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let host = match std::fs::read_link("/proc/self/ns/pid") {
            Ok(ns) => format!("{name} {}", ns.display()),
            Err(_) => name,
        };
        let mut id = [0u8; 8];
        rand::thread_rng().fill(&mut id);
        Holder {
            host,
            pid: std::process::id(),
            id: hex::encode(id),
            running: Arc::default(),
        }
    }

    /// Marks `run` as running its steps in this process, until the guard is dropped.
    pub(crate) fn running(&self, run: i64) -> Running {
        lock(&self.running).insert(run);
        Running {
            runs: self.running.clone(),
            run,
        }
    }

    /// Whether the process that was `host` and `pid` is gone: a process of this host that no
    /// longer runs, or this very pid under another id (this process, restarted). Of another
    /// host nothing is known here (its lease or heartbeat tells).
    pub(crate) fn process_gone(&self, host: &str, pid: i64) -> bool {
        host == self.host
            && (i64::from(self.pid) == pid
                || !std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    /// Whether the process holding `lock` still runs. This process's own lock holds while its
    /// run's steps run here, or while it is fresh (an apply just started, its steps about to be
    /// taken by the worker); a run that ended without recording its end frees the lock once
    /// its heartbeat is stale, as any other process's would.
    pub(crate) fn sees_alive(&self, lock: &LockRow, now: DateTime<Utc>) -> bool {
        let fresh = DateTime::parse_from_rfc3339(&lock.heartbeat_at)
            .map(|t| (now - t.with_timezone(&Utc)).num_seconds() < STALE_AFTER_SECS)
            .unwrap_or(false);
        if lock.holder_id == self.id {
            return fresh || self::lock(&self.running).contains(&lock.run_id);
        }
        if lock.holder_host == self.host {
            // Same pid, other id: this process was restarted (a container's pid 1).
            let pid_runs = i64::from(self.pid) != lock.holder_pid
                && std::path::Path::new(&format!("/proc/{}", lock.holder_pid)).exists();
            pid_runs && fresh
        } else {
            fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(host: &str, pid: i64, id: &str, heartbeat: DateTime<Utc>) -> LockRow {
        LockRow {
            environment: "prod".into(),
            change_id: 1,
            run_id: 1,
            holder_host: host.into(),
            holder_pid: pid,
            holder_id: id.into(),
            acquired_at: heartbeat.to_rfc3339(),
            heartbeat_at: heartbeat.to_rfc3339(),
        }
    }

    #[test]
    fn a_lock_is_held_while_its_process_runs_and_beats() {
        let me = Holder::this_process();
        let now = Utc::now();
        let old = now - chrono::Duration::seconds(STALE_AFTER_SECS + 1);
        // Our own lock, fresh.
        assert!(me.sees_alive(&lock(&me.host, i64::from(me.pid), &me.id, now), now));
        // Our pid under another id: an earlier run of this process (restarted container).
        assert!(!me.sees_alive(&lock(&me.host, i64::from(me.pid), "other", now), now));
        // A pid that does not run on this host.
        assert!(!me.sees_alive(&lock(&me.host, i64::from(u32::MAX >> 1), "other", now), now));
        // Another host: alive while it beats.
        assert!(me.sees_alive(&lock("elsewhere", 1, "other", now), now));
        assert!(!me.sees_alive(&lock("elsewhere", 1, "other", old), now));
    }

    #[test]
    fn this_processs_lock_holds_while_its_run_runs_here_and_is_free_once_stale_after() {
        let me = Holder::this_process();
        let now = Utc::now();
        let old = now - chrono::Duration::seconds(STALE_AFTER_SECS + 1);
        let mine = lock(&me.host, i64::from(me.pid), &me.id, old);
        {
            let _running = me.running(mine.run_id);
            assert!(me.sees_alive(&mine, now), "its steps run here");
        }
        // The run ended without recording its end (a failed write): its heartbeat stopped, so
        // the lock is free once stale, not until the process restarts.
        assert!(!me.sees_alive(&mine, now));
    }

    #[test]
    fn a_stopped_process_of_this_host_is_gone_and_one_of_another_host_is_not_known() {
        let me = Holder::this_process();
        assert!(
            me.process_gone(&me.host, i64::from(me.pid)),
            "this pid, restarted"
        );
        assert!(me.process_gone(&me.host, i64::from(u32::MAX >> 1)));
        // A process that runs (pid 1 runs on every Linux host).
        assert!(!me.process_gone(&me.host, 1));
        assert!(!me.process_gone("elsewhere", i64::from(u32::MAX >> 1)));
    }

    #[test]
    fn a_process_of_another_pid_namespace_with_the_same_host_name_and_pid_is_another_host() {
        let me = Holder::this_process();
        assert!(me.host.contains("pid:["), "{}", me.host);
        let now = Utc::now();
        // The same host name and pid 1 in another container: alive while it beats.
        let name = me.host.split(' ').next().unwrap();
        let other = format!("{name} pid:[1]");
        assert!(me.sees_alive(&lock(&other, i64::from(me.pid), "other", now), now));
    }
}
