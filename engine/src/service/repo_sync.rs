//! The spec repository's watcher: fetches the mirror every poll interval and at once on a
//! webhook, works out what each environment needs (`repo::plan_work`), has each change judged
//! and hands it to the changes service to record, with the job that plans it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::change::ChangeId;
use domain::spec::semantic_diff;
use git2::Oid;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{Mutex, Notify};

use crate::auth::{Actor, RequestMeta};
use crate::error::ServiceError;
use crate::repo::{git, plan_work, Detected, EnvWork, Found, Known, RepoSettings, MAX_NEW_COMMITS};
use crate::service::judge::RECORDING_COST_WAIT;
use crate::store::audit::{append, NewEvent};
use crate::store::changes;
use crate::store::{now_text, repo as repo_store};
use crate::Engine;

/// The longest wait between attempts while the remote keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What one sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncOutcome {
    pub head: Option<String>,
    pub new_commits: usize,
    pub changes: Vec<ChangeId>,
    pub superseded: Vec<ChangeId>,
    pub force_push: bool,
    pub elapsed_ms: u128,
}

/// Clears a flag when dropped: the end of a fetch's thread, however it ends.
struct Flag(Arc<AtomicBool>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The repository watcher: one per panel.
pub struct Watcher {
    engine: Engine,
    settings: RepoSettings,
    wake: Notify,
    /// One sync at a time, whoever asks.
    lock: Mutex<()>,
    /// A fetch's thread has not returned yet (it may hang past its timeout: libgit2 cannot be
    /// interrupted from outside, so a new fetch is not started beside it).
    fetching: Arc<AtomicBool>,
}

impl Watcher {
    pub fn new(engine: Engine, settings: RepoSettings) -> Arc<Watcher> {
        Arc::new(Watcher {
            engine,
            settings,
            wake: Notify::new(),
            lock: Mutex::new(()),
            fetching: Arc::default(),
        })
    }

    pub fn settings(&self) -> &RepoSettings {
        &self.settings
    }

    /// Asks the loop to fetch now (a webhook arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Polls forever: every poll interval, at once when woken, and with growing pauses while
    /// the remote fails.
    pub async fn run(self: Arc<Self>) {
        let system = RequestMeta::default();
        // Changes recorded without their plan job (by a version before the jobs queue).
        if let Err(e) = self.engine.plans().queue_unplanned().await {
            tracing::warn!(error = %e, "queueing the plans of unplanned changes failed");
        }
        loop {
            let failures = match self.sync(&system).await {
                Ok(_) => 0,
                Err(e) => {
                    tracing::warn!(error = ?e, "spec repository sync failed");
                    self.failures().await
                }
            };
            let pause = if failures == 0 {
                self.settings.poll_interval
            } else {
                let factor = 2u32.saturating_pow((failures as u32).min(10));
                self.settings
                    .poll_interval
                    .saturating_mul(factor)
                    .min(MAX_BACKOFF)
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    async fn failures(&self) -> i64 {
        let Ok(mut conn) = self.engine.store.pool().acquire().await else {
            return 1;
        };
        repo_store::state(&mut conn)
            .await
            .ok()
            .flatten()
            .map_or(1, |s| s.consecutive_failures.max(1))
    }

    /// Fetches and records changes; returns what happened.
    pub async fn sync(&self, meta: &RequestMeta) -> Result<SyncOutcome, ServiceError> {
        // One bound for the whole request: waiting for a sync already running, then this one.
        let bound = self.settings.fetch_timeout;
        let deadline = Instant::now() + bound;
        let Ok(_guard) = tokio::time::timeout_at(deadline.into(), self.lock.lock()).await else {
            return Err(ServiceError::Unavailable(format!(
                "a sync of the spec repository has been running for over {} s; try again later",
                bound.as_secs()
            )));
        };
        let started = Instant::now();
        let remote = self.settings.remote.clone();
        let (old_head, was_failing, known) = {
            let mut conn = self.engine.store.pool().acquire().await?;
            repo_store::configure(&mut conn, &remote.url, &remote.branch).await?;
            let state = repo_store::state(&mut conn).await?;
            let mut known = HashMap::new();
            for e in repo_store::environments(&mut conn).await? {
                let has_changes = changes::any_for(&mut conn, &e.name).await?;
                known.insert(
                    e.name,
                    Known {
                        last_applied: e.last_applied_commit,
                        has_changes,
                    },
                );
            }
            (
                state.as_ref().and_then(|s| s.head_commit.clone()),
                state.as_ref().is_some_and(|s| s.consecutive_failures > 0),
                known,
            )
        };

        let dir = self.settings.mirror_dir.clone();
        let old = old_head.as_deref().and_then(|h| Oid::from_str(h).ok());
        let fetching = self.fetching.clone();
        let in_flight = fetching.swap(true, Ordering::SeqCst);
        let task = (!in_flight).then(|| {
            tokio::task::spawn_blocking(move || {
                let _done = Flag(fetching);
                let m = git::Mirror::open(&dir, remote)?;
                let head = m.fetch(deadline)?;
                if Some(head) == old {
                    return Ok((head, 0, false, Vec::new()));
                }
                let force = old.is_some_and(|o| m.has_commit(o) && !m.is_ancestor(o, head));
                let new_commits = match old {
                    Some(o) => m.new_commits(Some(o), head, MAX_NEW_COMMITS)?,
                    None => Vec::new(),
                };
                let work = plan_work(&m, head, &new_commits, &known)?;
                Ok::<_, anyhow::Error>((head, new_commits.len(), force, work))
            })
        });
        let fetched = match task {
            None => Err(anyhow::anyhow!(
                "the previous fetch has not returned after {} s: the remote may be hanging",
                bound.as_secs()
            )),
            Some(task) => match tokio::time::timeout_at(deadline.into(), task).await {
                Ok(joined) => joined.map_err(|e| {
                    ServiceError::Internal(anyhow::anyhow!("the git task failed: {e}"))
                })?,
                Err(_) => Err(anyhow::anyhow!(
                    "fetching the spec repository did not finish within {} s",
                    bound.as_secs()
                )),
            },
        };

        let (head, new_commits, force_push, work) = match fetched {
            Ok(v) => v,
            Err(e) => {
                let message = domain::redact::in_text(&format!("{e:#}"), &self.settings.remote.url);
                let mut tx = self.engine.store.begin_write().await?;
                let failures = repo_store::fetch_failed(&mut tx, &message, &now_text()).await?;
                // Audited when it starts failing, not on every poll.
                if failures == 1 {
                    system_event(
                        &mut tx,
                        meta,
                        "repo.fetch_failed",
                        &domain::redact::url(&self.settings.remote.url),
                        json!({ "error": message }),
                    )
                    .await?;
                }
                tx.commit().await?;
                return Err(ServiceError::Unavailable(format!(
                    "fetching the spec repository failed: {message}"
                )));
            }
        };

        // Each change is judged once, its spec read through the kept reads (where its plan, its
        // page and its apply find it again); its cost, for the notification, waited for within
        // one bound for the whole fetch.
        let cost_deadline = Instant::now() + RECORDING_COST_WAIT;
        let mut judged_work = Vec::with_capacity(work.len());
        for w in work {
            judged_work.push(match w {
                EnvWork::Record(found) => {
                    let wait = cost_deadline.saturating_duration_since(Instant::now());
                    Judging::Record(Box::new(self.judged(*found, wait).await?))
                }
                EnvWork::BackToApplied(env) => Judging::BackToApplied(env),
            });
        }

        let now = now_text();
        let head_text = head.to_string();
        let mut outcome = SyncOutcome {
            head: Some(head_text.clone()),
            new_commits,
            force_push,
            ..SyncOutcome::default()
        };
        let mut tx = self.engine.store.begin_write().await?;
        if was_failing {
            system_event(
                &mut tx,
                meta,
                "repo.fetch_recovered",
                &domain::redact::url(&self.settings.remote.url),
                json!({ "head": head_text }),
            )
            .await?;
        }
        if force_push {
            system_event(
                &mut tx,
                meta,
                "repo.force_push",
                &self.settings.remote.branch,
                json!({ "from": old_head, "to": head_text }),
            )
            .await?;
        }
        for w in judged_work {
            match w {
                Judging::Record(p) => {
                    let recorded = self
                        .engine
                        .changes()
                        .record_detected(&mut tx, meta, &p, &now)
                        .await?;
                    if let Some((id, superseded)) = recorded {
                        outcome.superseded.extend(superseded);
                        outcome.changes.push(id);
                    }
                }
                Judging::BackToApplied(env) => {
                    outcome.superseded.extend(
                        self.engine
                            .changes()
                            .supersede_open(&mut tx, meta, &env, None, &now)
                            .await?,
                    );
                }
            }
        }
        repo_store::fetch_ok(&mut tx, &head_text, &now).await?;
        tx.commit().await?;
        self.engine.jobs_waker.wake();
        outcome.elapsed_ms = started.elapsed().as_millis();
        if !outcome.changes.is_empty() {
            tracing::info!(head = %head_text, changes = ?outcome.changes, "recorded changes");
        }
        Ok(outcome)
    }
}

/// What a fetch records, each change judged.
enum Judging {
    Record(Box<Detected>),
    BackToApplied(String),
}

impl Watcher {
    /// A change found in the mirror, with its spec read (kept by commit) and judged.
    async fn judged(&self, found: Found, cost_wait: Duration) -> Result<Detected, ServiceError> {
        let engine = &self.engine;
        let loaded = engine
            .reads
            .spec(&self.settings, &found.commit.sha, &found.env)
            .await?;
        let spec = match &*loaded {
            Ok(spec) => Arc::clone(spec),
            Err(errors) => {
                return Ok(Detected {
                    found,
                    edits: Vec::new(),
                    errors: errors.clone(),
                    violations: Vec::new(),
                    policy_edits: Vec::new(),
                    approvals_required: engine.settings.policy.min_approvals,
                    cost: None,
                    reachability: Vec::new(),
                })
            }
        };
        let base = engine
            .specs()
            .base_at(&found.env, found.base.clone())
            .await?;
        let edits = semantic_diff(base.spec(), &spec);
        let judged = engine
            .judge()
            .judge_specs(spec, base, false, false, Some(cost_wait))
            .await?;
        Ok(Detected {
            found,
            edits,
            errors: Vec::new(),
            violations: judged.violations,
            approvals_required: judged.policy.required_approvals,
            policy_edits: judged.policy.edits,
            cost: judged.cost,
            // Against an applied spec only: a first change would list every path as new.
            reachability: judged
                .reachability
                .filter(|_| judged.base.spec().is_some())
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.sentence)
                .collect(),
        })
    }
}

/// Records an event of tierdeck's own (the watcher) about the repository (`target`: its
/// redacted URL or branch) in the caller's transaction.
async fn system_event(
    tx: &mut crate::store::Conn,
    meta: &RequestMeta,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<i64, sqlx::Error> {
    append(
        tx,
        NewEvent {
            actor: Actor::system(),
            action,
            environment: None,
            target: Some(target),
            detail,
            meta,
        },
    )
    .await
}
