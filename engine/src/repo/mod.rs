//! Watching the spec repository: a bare mirror fetched every poll interval and at once on a
//! webhook; each fetch records a change for every environment whose folder moved away from
//! its last applied state.

pub mod git;
pub(crate) mod read_cache;
pub mod webhook;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::change::{ChangeId, ChangeKind, ChangeStatus, CommitInfo, FileDiff, Person};
use domain::lifecycle::Event;
use domain::policy::{Applied, Floor};
use domain::spec::{
    load_environment, semantic_diff, valid_environment_name, EnvironmentSpec, FieldEdit, SpecError,
};
use git2::Oid;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{Mutex, Notify};

use crate::auth::{Actor, RequestMeta};
use crate::error::ServiceError;
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit};
use crate::store::{now_text, repo as repo_store};
use crate::Engine;

/// The longest wait between attempts while the remote keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// On first sight of a repository, how far back to look for the commit that last touched an
/// environment (older ones are named by the head commit), and for the authors of a change to an
/// environment never applied.
const FIRST_SIGHT_DEPTH: usize = 200;
/// Commits looked at in one fetch; a larger push is taken as a whole at its head.
const MAX_NEW_COMMITS: usize = 5_000;
/// How long a fetch waits for the cost of its new changes (for their notifications).
const COST_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct RepoSettings {
    pub remote: git::Remote,
    /// Where the bare mirror lives (in the data folder).
    pub mirror_dir: PathBuf,
    pub poll_interval: Duration,
    /// The longest a sync may take, the fetch and the reading of what it brought; and the
    /// longest a sync request waits.
    pub fetch_timeout: Duration,
}

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

struct Known {
    last_applied: Option<String>,
    has_changes: bool,
}

struct Planned {
    env: String,
    commit: CommitInfo,
    base: Option<String>,
    files: Vec<FileDiff>,
    edits: Vec<FieldEdit>,
    errors: Vec<SpecError>,
    /// Judged by the rules that hold for the change, not only its own.
    violations: Vec<domain::guardrails::Violation>,
    authors: Vec<Person>,
    /// The rules the change edits.
    policy_edits: Vec<String>,
    /// Approvals the rules that judge it require.
    approvals_required: u8,
    /// Its spec, the applied spec and the cost limits that judge it, for its cost.
    costing: Option<(
        domain::spec::EnvironmentSpec,
        Option<domain::spec::EnvironmentSpec>,
        domain::spec::CostPolicy,
    )>,
}

enum EnvWork {
    Record(Box<Planned>),
    /// The folder is back to its last applied state: open changes are moot.
    BackToApplied(String),
}

pub(crate) fn load_at(
    m: &git::Mirror,
    commit: Oid,
    env: &str,
) -> anyhow::Result<Result<EnvironmentSpec, Vec<SpecError>>> {
    let (files, mut errors) = m.env_files(commit, env)?;
    if !valid_environment_name(env) {
        errors.push(SpecError {
            file: format!("environments/{env}/"),
            line: 1,
            col: 1,
            message: "an environment's folder name is lower-case letters, digits, `-` and `_`"
                .into(),
        });
    }
    Ok(match load_environment(env, &files) {
        Ok(spec) if errors.is_empty() => Ok(spec),
        Ok(_) => Err(errors),
        Err(es) => {
            errors.extend(es);
            domain::spec::sort_errors(&mut errors);
            Err(errors)
        }
    })
}

fn touches(m: &git::Mirror, commit: Oid, env: &str) -> bool {
    m.env_tree(commit, env).ok().flatten() != m.parent_env_tree(commit, env).ok().flatten()
}

/// Everyone who authored or committed a commit after `applied` up to `commit` that touched the
/// environment's folder, sorted by e-mail, once each. With nothing applied, the commits that
/// made the folder, as far back as `FIRST_SIGHT_DEPTH`, and `commit` itself.
fn authors(
    m: &git::Mirror,
    applied: Option<Oid>,
    commit: Oid,
    env: &str,
) -> anyhow::Result<Vec<Person>> {
    let limit = if applied.is_some() {
        MAX_NEW_COMMITS
    } else {
        FIRST_SIGHT_DEPTH
    };
    let mut people = Vec::new();
    for c in m.new_commits(applied, commit, limit)? {
        if c == commit || touches(m, c, env) {
            people.extend(m.commit_people(c)?);
        }
    }
    people.sort_by(|a: &Person, b| a.email.cmp(&b.email).then(a.name.cmp(&b.name)));
    people.dedup_by(|a, b| a.email == b.email);
    Ok(people)
}

/// Works out, from the mirror alone, what each environment needs: each change judged by the
/// rules of what is applied and the panel's `floor`.
fn plan_work(
    m: &git::Mirror,
    head: Oid,
    new_commits: &[Oid],
    known: &HashMap<String, Known>,
    floor: &Floor,
) -> anyhow::Result<Vec<EnvWork>> {
    let mut out = Vec::new();
    for env in m.environments(head)? {
        let k = known.get(&env);
        let applied = k
            .and_then(|k| k.last_applied.as_deref())
            .and_then(|a| Oid::from_str(a).ok());
        let applied_tree = match applied {
            Some(a) if m.has_commit(a) => m.env_tree(a, &env)?,
            _ => None,
        };
        if applied_tree.is_some() && applied_tree == m.env_tree(head, &env)? {
            out.push(EnvWork::BackToApplied(env));
            continue;
        }
        let commit = match new_commits.iter().find(|c| touches(m, **c, &env)) {
            Some(c) => *c,
            None if k.is_some_and(|k| k.has_changes) => continue,
            None => m
                .new_commits(None, head, FIRST_SIGHT_DEPTH)?
                .into_iter()
                .find(|c| touches(m, *c, &env))
                .unwrap_or(head),
        };
        let mut approvals_required = floor.min_approvals;
        let mut policy_edits = Vec::new();
        let mut costing = None;
        let (edits, errors, violations) = match load_at(m, commit, &env)? {
            Ok(spec) => {
                let base = match applied {
                    Some(a) if m.has_commit(a) => Some((a.to_string(), load_at(m, a, &env)?.ok())),
                    Some(a) => Some((a.to_string(), None)),
                    None => None,
                };
                let against = match &base {
                    None => Applied::Never,
                    Some((commit, Some(spec))) => Applied::Spec { commit, spec },
                    Some((commit, None)) => Applied::Unreadable { commit },
                };
                let policy = domain::policy::judge(against, &spec, floor);
                approvals_required = policy.required_approvals;
                policy_edits = policy.edits;
                let base_spec = base.as_ref().and_then(|(_, s)| s.as_ref());
                let out = (
                    semantic_diff(base_spec, &spec),
                    Vec::new(),
                    domain::guardrails::check(&spec, &policy.guardrails),
                );
                costing = Some((spec.clone(), base_spec.cloned(), policy.cost.clone()));
                out
            }
            Err(errors) => (Vec::new(), errors, Vec::new()),
        };
        out.push(EnvWork::Record(Box::new(Planned {
            commit: m.commit_info(commit)?,
            base: applied.map(|a| a.to_string()),
            files: m.env_diff(applied, commit, &env)?,
            authors: authors(m, applied.filter(|a| m.has_commit(*a)), commit, &env)?,
            edits,
            errors,
            violations,
            policy_edits,
            approvals_required,
            costing,
            env,
        })));
    }
    Ok(out)
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
    /// Whether a sync plans the changes it records, in the background.
    plans: bool,
}

impl Watcher {
    pub fn new(engine: Engine, settings: RepoSettings) -> Arc<Watcher> {
        Arc::new(Watcher {
            engine,
            settings,
            wake: Notify::new(),
            lock: Mutex::new(()),
            fetching: Arc::default(),
            plans: true,
        })
    }

    /// A watcher whose syncs record changes without planning them: for a command that plans
    /// once itself and exits (`tierdeck plan`). The server plans what is left unplanned when
    /// it starts watching.
    pub fn recording_only(engine: Engine, settings: RepoSettings) -> Arc<Watcher> {
        Arc::new(Watcher {
            engine,
            settings,
            wake: Notify::new(),
            lock: Mutex::new(()),
            fetching: Arc::default(),
            plans: false,
        })
    }

    pub fn settings(&self) -> &RepoSettings {
        &self.settings
    }

    /// Plans these changes in the background, each stored with its change.
    fn spawn_plans(&self, ids: &[ChangeId]) {
        for &id in ids {
            let engine = self.engine.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.refresh_plan(&crate::auth::Caller::System, id).await {
                    tracing::warn!(change = %id, error = %e, "planning a change failed");
                }
            });
        }
    }

    /// Asks the loop to fetch now (a webhook arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Polls forever: every poll interval, at once when woken, and with growing pauses while
    /// the remote fails.
    pub async fn run(self: Arc<Self>) {
        let system = RequestMeta::default();
        match self.engine.unplanned().await {
            Ok(ids) => self.spawn_plans(&ids),
            Err(e) => tracing::warn!(error = %e, "finding the changes left unplanned failed"),
        }
        loop {
            let failures = match self.sync(&system).await {
                Ok(_) => 0,
                Err(e) => {
                    tracing::warn!(error = %e, "spec repository sync failed");
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
        let floor = self.engine.settings.policy.clone();
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
                let work = plan_work(&m, head, &new_commits, &known, &floor)?;
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
                        None,
                        Some(&domain::redact::url(&self.settings.remote.url)),
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

        // What each new change does to the monthly cost, for its notification: bounded, so an
        // AWS that does not answer delays no fetch by more than a few seconds.
        let mut costs: HashMap<String, domain::cost::ChangeCostReport> = HashMap::new();
        let costing = async {
            for w in &work {
                if let EnvWork::Record(p) = w {
                    if let Some((spec, base, limits)) = &p.costing {
                        if let Ok(c) = self.engine.change_cost(spec, base.as_ref(), limits).await {
                            costs.insert(p.env.clone(), c);
                        }
                    }
                }
            }
        };
        let _ = tokio::time::timeout(COST_WAIT, costing).await;

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
                None,
                Some(&domain::redact::url(&self.settings.remote.url)),
                json!({ "head": head_text }),
            )
            .await?;
        }
        if force_push {
            system_event(
                &mut tx,
                meta,
                "repo.force_push",
                None,
                Some(&self.settings.remote.branch),
                json!({ "from": old_head, "to": head_text }),
            )
            .await?;
        }
        for w in work {
            match w {
                EnvWork::Record(p) => {
                    repo_store::ensure_environment(&mut tx, &p.env, &now).await?;
                    if changes::exists(&mut tx, &p.env, &p.commit.sha).await? {
                        continue;
                    }
                    let change = changes::create(
                        &mut tx,
                        changes::NewChange {
                            environment: &p.env,
                            kind: ChangeKind::Commit,
                            commit: &p.commit,
                            base_commit: p.base.as_deref(),
                            files: &p.files,
                            semantic_diff: &p.edits,
                            spec_errors: &p.errors,
                            guardrails: &p.violations,
                            authors: &p.authors,
                            policy_edits: &p.policy_edits,
                            plan: None,
                            reverts: None,
                        },
                        "change.detected",
                        Audit {
                            actor: Actor::system(),
                            meta,
                            detail: json!({
                                "commit": p.commit.sha,
                                "author": p.commit.author_email,
                                "authors": p.authors.iter().map(|a| &a.email).collect::<Vec<_>>(),
                                "edits": p.edits.len(),
                                "errors": p.errors.len(),
                                "guardrails": p.violations.iter().map(|v| v.rule.as_str()).collect::<Vec<_>>(),
                                "policy_edits": p.policy_edits,
                            }),
                        },
                        &now,
                    )
                    .await?;
                    let id = change.id;
                    outcome.superseded.extend(
                        supersede_open(&mut tx, meta, &p.env, Some((id, &p.commit.sha)), &now)
                            .await?,
                    );
                    let cost = costs.get(&p.env);
                    let extra = cost.is_some_and(|c| c.verdict.extra_approval.is_some());
                    let required = p.approvals_required + u8::from(extra);
                    if change.status == ChangeStatus::Pending && required > 0 {
                        let cost_line = cost
                            .filter(|c| c.cost.moves())
                            .map(|c| format!(" Cost: {}.", c.cost.text()))
                            .unwrap_or_default();
                        let text = format!(
                            "change #{id} ({}, \"{}\" by {}) needs {required} approval(s).{cost_line}{}",
                            p.env,
                            p.commit.subject(),
                            p.commit.author_name,
                            self.engine.change_link(id)
                        );
                        self.engine
                            .queue_notification(
                                &mut tx,
                                "approval_needed",
                                Some(&p.env),
                                Some(&change),
                                &text,
                            )
                            .await?;
                    }
                    outcome.changes.push(id);
                }
                EnvWork::BackToApplied(env) => {
                    outcome
                        .superseded
                        .extend(supersede_open(&mut tx, meta, &env, None, &now).await?);
                }
            }
        }
        repo_store::fetch_ok(&mut tx, &head_text, &now).await?;
        tx.commit().await?;
        self.engine.wake_notifier();
        outcome.elapsed_ms = started.elapsed().as_millis();
        // Plans read AWS, which can be slow or down: they are made after the fetch, in the
        // background, and stored with each change.
        if self.plans {
            self.spawn_plans(&outcome.changes);
        }
        if !outcome.changes.is_empty() {
            tracing::info!(head = %head_text, changes = ?outcome.changes, "recorded changes");
        }
        Ok(outcome)
    }
}

/// Records an event of tierdeck's own (the watcher) in the caller's transaction.
async fn system_event(
    tx: &mut sqlx::SqliteConnection,
    meta: &RequestMeta,
    action: &str,
    environment: Option<&str>,
    target: Option<&str>,
    detail: serde_json::Value,
) -> Result<i64, sqlx::Error> {
    append(
        tx,
        NewEvent {
            actor: Actor::system(),
            action,
            environment,
            target,
            detail,
            meta,
        },
    )
    .await
}

/// Marks an environment's open changes superseded — by a newer change, or because the folder
/// is back to its applied state — each through the lifecycle, with its audit event; returns
/// their ids.
async fn supersede_open(
    tx: &mut sqlx::SqliteConnection,
    meta: &RequestMeta,
    env: &str,
    by: Option<(ChangeId, &str)>,
    now: &str,
) -> Result<Vec<ChangeId>, ServiceError> {
    let mut done = Vec::new();
    for old in changes::open_of_kind(tx, env, None).await? {
        if by.is_some_and(|(id, _)| id == old.id) {
            continue;
        }
        let detail = match by {
            Some((id, commit)) => {
                json!({ "by": id, "commit": old.commit.sha, "newer_commit": commit })
            }
            None => {
                json!({ "commit": old.commit.sha, "reason": "the folder is back to its last applied state" })
            }
        };
        let audit = Audit {
            actor: Actor::system(),
            meta,
            detail,
        };
        changes::transition(tx, &old, Event::Supersede, by.map(|(id, _)| id), audit, now).await?;
        done.push(old.id);
    }
    Ok(done)
}
