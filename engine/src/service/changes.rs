//! Reading the spec repository's state, environments and changes.

use domain::change::ChangeKind;
use domain::change::{
    ChangeDetail, ChangeId, ChangeStatus, ChangeSummary, EnvironmentDetail, EnvironmentSummary,
    RepoStatus,
};
use domain::lifecycle::Event;
use domain::spec::EnvName;
use domain::Role;
use serde_json::json;

use crate::auth::{Actor, Caller, RequestMeta};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::memo::ByCommits;
use crate::repo::read_cache::ReadCache;
use crate::repo::Detected;
use crate::service::apply::Applies;
use crate::service::drift::drift_of;
use crate::service::jobs::Jobs;
use crate::service::judge::Judge;
use crate::service::notify::Notifications;
use crate::service::plans::Plans;
use crate::service::reviews::Reviews;
use crate::service::spec_reads::Specs;
use crate::settings::EngineSettings;
use crate::store::changes::Audit;
use crate::store::Store;
use crate::store::{applies, changes, repo as repo_store, time_column_opt};
use std::sync::Arc;

const LIST_LIMIT: u32 = 200;

/// The next whole minute: previews start there.
fn next_minute(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    let now = now.timestamp();
    chrono::DateTime::from_timestamp(now - now.rem_euclid(60) + 60, 0).unwrap_or_default()
}

/// Environments and changes as the pages read them.
#[derive(Clone, Copy)]
pub struct Changes<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) reads: &'a ReadCache,
    pub(crate) repo_read: &'a ByCommits<(), Option<RepoStatus>>,
    pub(crate) environments_read: &'a ByCommits<(), Arc<Vec<EnvironmentSummary>>>,
    pub(crate) specs: Specs<'a>,
    pub(crate) judge: Judge<'a>,
    pub(crate) plans: Plans<'a>,
    pub(crate) applies: Applies<'a>,
    pub(crate) reviews: Reviews<'a>,
    pub(crate) jobs: Jobs<'a>,
    pub(crate) notifications: Notifications<'a>,
    pub(crate) clock: &'a dyn Clock,
}

impl Changes<'_> {
    /// Records a change the watcher detected and judged, in the watcher's transaction, with its
    /// audit event and the job that plans it; marks the environment's older open changes
    /// superseded, and queues the "needs approval" notification with the approvals its
    /// judgement requires. `None` when this commit's change exists already; else the new change
    /// and the ones it superseded.
    pub(crate) async fn record_detected(
        &self,
        tx: &mut crate::store::Conn,
        meta: &RequestMeta,
        p: &Detected,
        now: &str,
    ) -> ServiceResult<Option<(ChangeId, Vec<ChangeId>)>> {
        let found = &p.found;
        repo_store::ensure_environment(&mut *tx, &found.env, now).await?;
        if changes::exists(&mut *tx, &found.env, &found.commit.sha).await? {
            return Ok(None);
        }
        let change = changes::create(
            &mut *tx,
            changes::NewChange {
                environment: &found.env,
                kind: ChangeKind::Commit,
                commit: &found.commit,
                base_commit: found.base.as_deref(),
                files: &found.files,
                semantic_diff: &p.edits,
                spec_errors: &p.errors,
                guardrails: &p.violations,
                authors: &found.authors,
                policy_edits: &p.policy_edits,
                plan: None,
                reverts: None,
            },
            "change.detected",
            Audit {
                actor: Actor::system(),
                meta,
                detail: json!({
                    "commit": found.commit.sha,
                    "author": found.commit.author.email,
                    "authors": found.authors.iter().map(|a| &a.email).collect::<Vec<_>>(),
                    "edits": p.edits.len(),
                    "errors": p.errors.len(),
                    "guardrails": p.violations.iter().map(|v| v.rule.as_str()).collect::<Vec<_>>(),
                    "policy_edits": p.policy_edits,
                }),
            },
            now,
        )
        .await?;
        let id = change.id;
        let superseded = self
            .supersede_open(
                &mut *tx,
                meta,
                &found.env,
                Some((id, &found.commit.sha)),
                now,
            )
            .await?;
        // Plans read AWS, which can be slow or down: a job makes it after the fetch.
        if change.status != ChangeStatus::Invalid {
            self.plans.queue_plan(&mut *tx, &change, "system").await?;
        }
        let required = p.approvals_required;
        if change.status == ChangeStatus::Pending && required > 0 {
            let cost_line = p
                .cost
                .as_ref()
                .filter(|c| c.cost.moves())
                .map(|c| format!(" Cost: {}.", c.cost.text()))
                .unwrap_or_default();
            let reach_line = if p.reachability.is_empty() {
                String::new()
            } else {
                format!(" Reachability: {}", p.reachability.join(" "))
            };
            let text = format!(
                "change #{id} ({}, \"{}\" by {}) needs {required} approval(s).{cost_line}{reach_line}{}",
                found.env,
                found.commit.subject(),
                found.commit.author.name,
                self.notifications.change_link(id)
            );
            self.notifications
                .queue_notification(
                    &mut *tx,
                    "approval_needed",
                    Some(&found.env),
                    Some(&change),
                    &text,
                )
                .await?;
        }
        Ok(Some((id, superseded)))
    }

    /// Marks an environment's open changes superseded — by a newer change, or because the folder
    /// is back to its applied state — each through the lifecycle, with its audit event; returns
    /// their ids.
    pub(crate) async fn supersede_open(
        &self,
        tx: &mut crate::store::Conn,
        meta: &RequestMeta,
        env: &str,
        by: Option<(ChangeId, &str)>,
        now: &str,
    ) -> ServiceResult<Vec<ChangeId>> {
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
            changes::transition(tx, &old, Event::Supersede, by.map(|(id, _)| id), audit, now)
                .await?;
            done.push(old.id);
        }
        Ok(done)
    }

    /// The spec repository's fetch state; `None` until it was first synced.
    pub async fn repo_status(&self, caller: &Caller) -> ServiceResult<Option<RepoStatus>> {
        caller.require(Role::Viewer)?;
        self.repo_read
            .get_or_read(self.store, (), || self.read_repo_status())
            .await
    }

    async fn read_repo_status(&self) -> ServiceResult<Option<RepoStatus>> {
        let mut conn = self.store.pool().acquire().await?;
        let Some(s) = repo_store::state(&mut conn).await? else {
            return Ok(None);
        };
        let head = match (&s.head_commit, &self.settings.repo) {
            (Some(h), Some(settings)) => self.reads.commit(settings, h).await.ok(),
            _ => None,
        };
        Ok(Some(RepoStatus {
            url: domain::redact::url(&s.url),
            branch: s.branch,
            head,
            last_fetch_at: time_column_opt("last_fetch_at", s.last_fetch_at.as_deref())?,
            last_success_at: time_column_opt("last_success_at", s.last_success_at.as_deref())?,
            last_error: s.last_error,
            last_error_at: time_column_opt("last_error_at", s.last_error_at.as_deref())?,
            consecutive_failures: s.consecutive_failures,
        }))
    }

    pub async fn list_environments(
        &self,
        caller: &Caller,
    ) -> ServiceResult<Vec<EnvironmentSummary>> {
        caller.require(Role::Viewer)?;
        let list = self
            .environments_read
            .get_or_read(self.store, (), || async {
                self.read_environments().await.map(std::sync::Arc::new)
            })
            .await?;
        Ok(list.as_ref().clone())
    }

    async fn read_environments(&self) -> ServiceResult<Vec<EnvironmentSummary>> {
        let mut conn = self.store.pool().acquire().await?;
        let envs = repo_store::environments(&mut conn).await?;
        let counts = changes::per_environment(&mut conn).await?;
        let locks = applies::locks(&mut conn).await?;
        let latest_ids: Vec<i64> = counts.iter().filter_map(|(_, _, l)| *l).collect();
        let latest = changes::summaries(&mut conn, &latest_ids).await?;
        let mut out = Vec::new();
        for e in envs {
            let (open, latest_id) = counts
                .iter()
                .find(|(n, _, _)| *n == e.name)
                .map(|(_, o, l)| (*o, *l))
                .unwrap_or((0, None));
            let latest_change =
                latest_id.and_then(|id| latest.iter().find(|c| c.id == id).cloned());
            out.push(EnvironmentSummary {
                drift: drift_of(&e),
                applying: locks
                    .iter()
                    .find(|l| l.environment == e.name)
                    .map(|l| l.change_id),
                name: e.name,
                last_applied_commit: e.last_applied_commit,
                open_changes: open,
                latest_change,
            });
        }
        Ok(out)
    }

    /// The desired spec of an environment at the tracked branch's head, and its recent changes.
    pub async fn environment_detail(
        &self,
        caller: &Caller,
        name: &EnvName,
        hours: u32,
    ) -> ServiceResult<EnvironmentDetail> {
        let name = name.as_str();
        caller.require(Role::Viewer)?;
        let mut conn = self.store.pool().acquire().await?;
        let env = super::known_environment(&mut conn, name).await?;
        let head = repo_store::state(&mut conn)
            .await?
            .and_then(|s| s.head_commit);
        let recent_changes = changes::list(&mut conn, Some(name), None, 10).await?;
        let open_changes = changes::open_count(&mut conn, name).await?;
        let applying = applies::lock(&mut conn, name).await?.map(|l| l.change_id);
        drop(conn);
        let (spec, errors) = match (&head, &self.settings.repo) {
            (Some(h), Some(settings)) => match &*self
                .reads
                .spec(settings, h, name)
                .await
                .map_err(ServiceError::Internal)?
            {
                Ok(spec) => (Some(domain::spec::EnvironmentSpec::clone(spec)), Vec::new()),
                Err(errors) => (None, errors.clone()),
            },
            _ => (None, Vec::new()),
        };
        let schedule = spec.as_ref().map(|s| {
            domain::schedule::preview(s, next_minute(self.clock.now()), hours.clamp(1, 24 * 14))
        });
        let reachability = spec.as_ref().map(domain::reachability::reachability);
        let reverted = match (&env.reverted_from, &env.last_applied_commit) {
            (Some(from), Some(to)) => Some(domain::change::Reverted {
                to: to.clone(),
                from: from.clone(),
            }),
            _ => None,
        };
        Ok(EnvironmentDetail {
            summary: EnvironmentSummary {
                drift: drift_of(&env),
                applying,
                name: env.name,
                last_applied_commit: env.last_applied_commit,
                open_changes,
                latest_change: recent_changes.first().cloned(),
            },
            reverted,
            schedule,
            reachability,
            head_commit: head,
            spec,
            spec_errors: errors,
            recent_changes,
        })
    }

    pub async fn list_changes(
        &self,
        caller: &Caller,
        environment: Option<&EnvName>,
        status: Option<ChangeStatus>,
    ) -> ServiceResult<Vec<ChangeSummary>> {
        caller.require(Role::Viewer)?;
        let mut conn = self.store.pool().acquire().await?;
        Ok(changes::list(
            &mut conn,
            environment.map(EnvName::as_str),
            status,
            LIST_LIMIT,
        )
        .await?)
    }

    /// The status and latest apply of a change, without its diffs and spec: cheap enough to
    /// ask for every second while an apply runs.
    pub async fn apply_state(
        &self,
        caller: &Caller,
        id: ChangeId,
    ) -> ServiceResult<domain::change::ApplyState> {
        caller.require(Role::Viewer)?;
        let change = self.specs.change(id).await?;
        let mut conn = self.store.pool().acquire().await?;
        let (apply, runs) = self.applies.latest_apply(&mut conn, id).await?;
        let watch = self.watch_of(&mut conn, id).await?;
        Ok(domain::change::ApplyState {
            status: change.status,
            apply,
            runs,
            watch,
        })
    }

    /// The watch after a change's apply, if there is one.
    async fn watch_of(
        &self,
        conn: &mut crate::store::Conn,
        id: ChangeId,
    ) -> ServiceResult<Option<domain::change::WatchView>> {
        crate::store::watches::get(conn, id)
            .await?
            .map(|w| w.view(self.clock.now()))
            .transpose()
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("the watch of change {id}: {e}")))
    }

    pub async fn change_detail(
        &self,
        caller: &Caller,
        id: ChangeId,
    ) -> ServiceResult<ChangeDetail> {
        caller.require(Role::Viewer)?;
        let change = self.specs.change(id).await?;
        // The specs are read once: the rules that judge the change, and the schedule before
        // and after when the change edits schedules.
        let edits_schedule = change
            .semantic_diff
            .iter()
            .any(|e| e.path.contains(".schedule"));
        let judged = self.judge.judge(&change).await?;
        let mut conn = self.store.pool().acquire().await?;
        let (apply, runs) = self.applies.latest_apply(&mut conn, id).await?;
        let watch = self.watch_of(&mut conn, id).await?;
        let jobs = self.jobs.of_change(&mut conn, id).await?;
        let revert = match change.status {
            ChangeStatus::Applied | ChangeStatus::Degraded => {
                let row = super::known_environment(&mut conn, &change.environment).await?;
                Some(domain::approval::Permission::from(
                    domain::approval::may_revert(&super::revert::revert_facts(
                        caller, &change, &row,
                    )),
                ))
            }
            _ => None,
        };
        let policy = judged.as_ref().map(|j| &j.policy);
        let (approvals, actions, change_windows) = self
            .reviews
            .review_view(caller, &mut conn, &change, policy)
            .await?;
        drop(conn);
        let schedule = judged.as_ref().filter(|_| edits_schedule).map(|j| {
            let from = next_minute(self.clock.now());
            domain::change::SchedulePair {
                before: j
                    .base
                    .spec()
                    .map(|b| domain::schedule::preview(b, from, 24)),
                after: domain::schedule::preview(&j.spec, from, 24),
            }
        });
        let cost = judged.as_ref().and_then(|j| j.cost.clone());
        let reachability = judged.as_ref().and_then(|j| j.reachability.clone());
        Ok(ChangeDetail {
            jobs,
            reachability,
            watch,
            revert,
            cost,
            schedule,
            apply,
            runs,
            approvals,
            actions,
            change_windows,
            summary: change.summary(),
            policy: judged.map(|j| j.policy),
            authors: change.authors,
            guardrails: change.guardrails,
            base_commit: change.base_commit,
            files: change.files,
            semantic_diff: change.semantic_diff,
            spec_errors: change.spec_errors,
            superseded_by: change.superseded_by.map(|c| c.0),
            plan: change.plan,
            planned_at: change.planned_at,
        })
    }
}
