//! Reverts: a change that applies again the commit applied before another change. It is a
//! change like any other (its diffs, its plan, judged by the rules of what is applied now);
//! made by an operator's "Revert" or by the watch after an apply, and planned by a job queued
//! with it.

use std::sync::Arc;

use domain::approval;
use domain::change::{ChangeId, ChangeKind, CommitInfo, Person};
use domain::lifecycle::Event;
use domain::spec::semantic_diff;
use domain::Role;
use git2::Oid;
use serde_json::json;

use crate::auth::{Actor, Caller, RequestMeta};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::jobs::worker::Waker;
use crate::repo::git::Mirror;
use crate::repo::read_cache::ReadCache;
use crate::service::judge::Judge;
use crate::service::judge::RECORDING_COST_WAIT;
use crate::service::known_environment;
use crate::service::notify::Notifications;
use crate::service::plans::Plans;
use crate::service::spec_reads::Specs;
use crate::settings::EngineSettings;
use crate::store::changes::{self, Audit, Change};
use crate::store::repo::EnvironmentRow;
use crate::store::Store;
use domain::commit::short_sha;

/// The facts [`approval::may_revert`] looks at.
pub(crate) fn revert_facts<'a>(
    caller: &Caller,
    change: &'a Change,
    row: &'a EnvironmentRow,
) -> approval::RevertFacts<'a> {
    approval::RevertFacts {
        role: match caller {
            Caller::User(p) => p.role,
            Caller::System => Role::Admin,
        },
        id: change.id.0,
        environment: &change.environment,
        status: change.status,
        commit: &change.commit.sha,
        base_commit: change.base_commit.as_deref(),
        last_applied: row.last_applied_commit.as_deref(),
    }
}

/// Reverting an applied change.
#[derive(Clone, Copy)]
pub struct Reverts<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) reads: &'a ReadCache,
    pub(crate) specs: Specs<'a>,
    pub(crate) judge: Judge<'a>,
    pub(crate) plans: Plans<'a>,
    pub(crate) notifications: Notifications<'a>,
    pub(crate) jobs_waker: &'a Waker,
    pub(crate) clock: &'a dyn Clock,
}

/// A revert worked out before it is written: its commit, diffs and judgement (read outside
/// any transaction), for [`Reverts::write_revert`].
pub(crate) struct Prepared {
    /// The change it reverts.
    reverts: ChangeId,
    environment: String,
    /// The commit applied now, which it goes back from.
    from: String,
    /// The commit applied before, which it goes back to.
    to: String,
    commit: CommitInfo,
    files: Vec<domain::change::FileDiff>,
    edits: Vec<domain::spec::FieldEdit>,
    errors: Vec<domain::spec::SpecError>,
    violations: Vec<domain::guardrails::Violation>,
    policy_edits: Vec<String>,
    authors: Vec<Person>,
    alert: Option<String>,
}

impl Reverts<'_> {
    /// Records a revert of applied change `id` (to the commit applied before it), with the
    /// job that plans it. Returns the revert's id.
    pub async fn revert(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: ChangeId,
    ) -> ServiceResult<ChangeId> {
        let prepared = self.prepare_revert(caller, id, None).await?;
        let now = self.clock.now_text();
        let mut tx = self.store.begin_write().await?;
        let revert = self
            .write_revert(&mut tx, caller, meta, &prepared, &now)
            .await?;
        tx.commit().await?;
        self.jobs_waker.wake();
        Ok(revert.id)
    }

    /// Works out the revert of `id`; `alert`: the watch's page alert that asks for it. Refused
    /// (audited by nobody: nothing happened) when the change may not be reverted now.
    pub(crate) async fn prepare_revert(
        &self,
        caller: &Caller,
        id: ChangeId,
        alert: Option<&str>,
    ) -> ServiceResult<Prepared> {
        let change = self.specs.change(id).await?;
        let env = change.environment.clone();
        let row = {
            let mut conn = self.store.pool().acquire().await?;
            known_environment(&mut conn, &env).await?
        };
        approval::may_revert(&revert_facts(caller, &change, &row))?;
        let from = change.commit.sha.clone();
        let to = change.base_commit.clone().unwrap_or_default();
        // The specs come from the kept reads (read from git once per commit); the files' diff
        // from the mirror.
        let settings = self.settings.repo()?.clone();
        let (env2, from2, to2) = (env.clone(), from.clone(), to.clone());
        let files = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let (from, to) = (Oid::from_str(&from2)?, Oid::from_str(&to2)?);
            let m = Mirror::open_having(
                &settings.mirror_dir,
                settings.remote,
                &[from, to],
                settings.fetch_timeout,
            )?;
            m.env_diff(Some(from), to, &env2)
        })
        .await
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("reading the diff: {e}")))?
        .map_err(|e| ServiceError::Unavailable(format!("reading the spec repository: {e:#}")))?;
        let loaded = self
            .reads
            .spec(self.settings.repo()?, &to, &env)
            .await
            .map_err(|e| {
                ServiceError::Unavailable(format!("reading the spec repository: {e:#}"))
            })?;
        let (edits, errors, violations, policy_edits) = match &*loaded {
            Ok(spec) => {
                // Judged by the rules of what is applied now, the commit it goes back from.
                let base = self.specs.base_at(&env, Some(from.clone())).await?;
                let edits = semantic_diff(base.spec(), spec);
                let judged = self
                    .judge
                    .judge_specs(
                        Arc::clone(spec),
                        base,
                        false,
                        true,
                        Some(RECORDING_COST_WAIT),
                    )
                    .await?;
                (edits, Vec::new(), judged.violations, judged.policy.edits)
            }
            Err(errors) => (Vec::new(), errors.clone(), Vec::new(), Vec::new()),
        };
        let (name, email) = match caller {
            Caller::User(p) => (p.name.to_string(), p.email.clone().unwrap_or_default()),
            Caller::System => ("system".to_owned(), String::new()),
        };
        let why = match alert {
            Some(a) => format!(" after its watch saw {a}"),
            None => String::new(),
        };
        let commit = CommitInfo {
            sha: to.clone(),
            author: Person {
                name: name.clone(),
                email: email.to_lowercase(),
            },
            committed_at: self.clock.now(),
            message: format!(
                "Revert change #{id} in {env}{why}: back to {} from {}",
                short_sha(&to),
                short_sha(&from)
            ),
        };
        // The one who asked for it is its author: someone else approves it.
        let authors: Vec<Person> = (!email.is_empty())
            .then(|| Person {
                name,
                email: email.to_lowercase(),
            })
            .into_iter()
            .collect();
        Ok(Prepared {
            reverts: id,
            environment: env,
            from,
            to,
            commit,
            files,
            edits,
            errors,
            violations,
            policy_edits,
            authors,
            alert: alert.map(str::to_owned),
        })
    }

    /// Writes a prepared revert in the caller's transaction, with its audit event and the job
    /// that plans it; an earlier open revert of the environment is superseded. Refused when the
    /// environment moved on since it was prepared. The caller wakes the worker after its commit.
    pub(crate) async fn write_revert(
        &self,
        tx: &mut crate::store::Conn,
        caller: &Caller,
        meta: &RequestMeta,
        p: &Prepared,
        now: &str,
    ) -> ServiceResult<Change> {
        let change = changes::get(tx, p.reverts)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no change {}", p.reverts)))?;
        let row = known_environment(tx, &p.environment).await?;
        approval::may_revert(&revert_facts(caller, &change, &row))?;
        let earlier = changes::open_of_kind(tx, &p.environment, Some(ChangeKind::Revert)).await?;
        let revert = changes::create(
            tx,
            changes::NewChange {
                environment: &p.environment,
                kind: ChangeKind::Revert,
                commit: &p.commit,
                base_commit: Some(&p.from),
                files: &p.files,
                semantic_diff: &p.edits,
                spec_errors: &p.errors,
                guardrails: &p.violations,
                authors: &p.authors,
                policy_edits: &p.policy_edits,
                plan: None,
                reverts: Some(p.reverts),
            },
            "change.revert_created",
            Audit {
                actor: caller.actor(),
                meta,
                detail: json!({
                    "reverts": p.reverts,
                    "to": p.to,
                    "from": p.from,
                    "alert": p.alert,
                    "superseded": earlier.iter().map(|c| c.id).collect::<Vec<_>>(),
                }),
            },
            now,
        )
        .await?;
        for old in &earlier {
            let audit = Audit {
                actor: caller.actor(),
                meta,
                detail: json!({ "by": revert.id, "reason": "a newer revert" }),
            };
            changes::transition(tx, old, Event::Supersede, Some(revert.id), audit, now).await?;
        }
        if revert.status != domain::change::ChangeStatus::Invalid {
            self.plans
                .queue_plan(tx, &revert, &caller.actor().name)
                .await?;
        }
        Ok(revert)
    }
}

impl Reverts<'_> {
    /// Judges the open commit changes of `env` again when what is applied moved under them (a
    /// revert was applied): each gets new diffs, a new judgement, its approvals voided, a new
    /// plan job and a notification, so none re-applies the reverted value unseen nor is refused
    /// for a newer change that does not exist. Returns the changes judged again.
    pub(crate) async fn settle_open_changes(&self, env: &str) -> ServiceResult<Vec<ChangeId>> {
        let (applied, stale) = {
            let mut conn = self.store.pool().acquire().await?;
            let row = known_environment(&mut conn, env).await?;
            let stale: Vec<Change> =
                changes::open_of_kind(&mut conn, env, Some(ChangeKind::Commit))
                    .await?
                    .into_iter()
                    .filter(|c| c.base_commit != row.last_applied_commit)
                    .collect();
            (row.last_applied_commit, stale)
        };
        let mut done = Vec::new();
        for change in stale {
            let settings = self.settings.repo()?.clone();
            let (env2, commit, base) = (env.to_owned(), change.commit.sha.clone(), applied.clone());
            let found = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let base = base.as_deref().map(Oid::from_str).transpose()?;
                let commit = Oid::from_str(&commit)?;
                let m = Mirror::open_having(
                    &settings.mirror_dir,
                    settings.remote,
                    &[Some(commit), base]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>(),
                    settings.fetch_timeout,
                )?;
                crate::repo::found(&m, env2, commit, base)
            })
            .await
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("reading the diff: {e}")))?
            .map_err(|e| {
                ServiceError::Unavailable(format!("reading the spec repository: {e:#}"))
            })?;
            let loaded = self
                .reads
                .spec(self.settings.repo()?, &change.commit.sha, env)
                .await
                .map_err(|e| {
                    ServiceError::Unavailable(format!("reading the spec repository: {e:#}"))
                })?;
            let (edits, errors, violations, policy_edits) = match &*loaded {
                Ok(spec) => {
                    let base = self.specs.base_at(env, applied.clone()).await?;
                    let edits = semantic_diff(base.spec(), spec);
                    let judged = self
                        .judge
                        .judge_specs(
                            Arc::clone(spec),
                            base,
                            false,
                            change.kind == ChangeKind::Revert,
                            Some(RECORDING_COST_WAIT),
                        )
                        .await?;
                    (edits, Vec::new(), judged.violations, judged.policy.edits)
                }
                Err(errors) => (Vec::new(), errors.clone(), Vec::new(), Vec::new()),
            };
            let now = self.clock.now_text();
            let meta = RequestMeta::default();
            let mut tx = self.store.begin_write().await?;
            let Some(current) = changes::get(&mut tx, change.id).await? else {
                continue;
            };
            if current.status != change.status || current.base_commit != change.base_commit {
                continue;
            }
            let why = format!(
                "what {env} runs moved under it: {} is applied now, not {}",
                applied.as_deref().map(short_sha).unwrap_or("nothing"),
                change
                    .base_commit
                    .as_deref()
                    .map(short_sha)
                    .unwrap_or("nothing"),
            );
            let voided =
                crate::store::reviews::void_approvals(&mut tx, change.id, &why, &now).await?;
            let status = changes::rejudge(
                &mut tx,
                &current,
                changes::Rejudged {
                    base_commit: applied.as_deref(),
                    files: &found.files,
                    semantic_diff: &edits,
                    spec_errors: &errors,
                    guardrails: &violations,
                    authors: &found.authors,
                    policy_edits: &policy_edits,
                },
                Audit {
                    actor: Actor::system(),
                    meta: &meta,
                    detail: json!({
                        "reason": why,
                        "base_commit": applied,
                        "old_base_commit": change.base_commit,
                        "voided": voided,
                        "edits": edits.len(),
                    }),
                },
                &now,
            )
            .await?;
            if let Some(c) = changes::get(&mut tx, change.id).await? {
                if status != domain::change::ChangeStatus::Invalid {
                    self.plans.queue_plan(&mut tx, &c, "system").await?;
                }
                let text = format!(
                    "change #{} ({}, {}) was judged again: {why}. Its diff now shows everything it changes against that commit; {voided} approval(s) are void and it is {status}.{}",
                    c.id,
                    env,
                    crate::service::reviews::first_line(&c.commit.message),
                    self.notifications.change_link(c.id)
                );
                self.notifications
                    .queue_notification(&mut tx, "rejudged", Some(env), Some(&c), &text)
                    .await?;
            }
            tx.commit().await?;
            self.jobs_waker.wake();
            done.push(change.id);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use domain::change::{ChangeId, ChangeStatus, PlanView};

    use crate::auth::{Caller, RequestMeta};
    use crate::testing::{TestEngine, SHOP};

    async fn apply(t: &TestEngine, id: ChangeId) {
        t.drain().await;
        t.engine
            .applies()
            .apply_change(&Caller::System, &RequestMeta::default(), id, None)
            .await
            .expect("the apply starts");
        t.drain().await;
        assert_eq!(t.change(id).await.status, ChangeStatus::Applied);
    }

    #[tokio::test]
    async fn a_revert_applied_judges_the_open_change_again_against_what_is_applied_now() {
        let t = TestEngine::new(SHOP).await;
        let first = *t.sync().await.changes.last().unwrap();
        apply(&t, first).await;
        let first_sha = t.change(first).await.commit.sha;
        let six = t.edit(
            "environments/shop/autoscaling.yaml",
            "    max: 4\n",
            "    max: 6\n",
            "Up to six",
        );
        t.sync().await;
        let b = t.change_for("shop", &six).await;
        apply(&t, b).await;
        // A change on top of the applied one waits; meanwhile the applied one is reverted.
        let three = t.edit(
            "environments/shop/autoscaling.yaml",
            "    min: 2\n    max: 6\n    desired: 2\n",
            "    min: 3\n    max: 6\n    desired: 3\n",
            "At least three",
        );
        t.sync().await;
        let c = t.change_for("shop", &three).await;
        t.drain().await;
        assert_eq!(t.change(c).await.base_commit.as_deref(), Some(six.as_str()));
        let revert = t
            .engine
            .reverts()
            .revert(&Caller::System, &RequestMeta::default(), b)
            .await
            .unwrap();
        apply(&t, revert).await;
        assert_eq!(t.aws.state().groups["shop-web"].max, 4);

        // The open change now compares with what runs: its diff shows the reverted value it
        // would raise again, its plan is new, and it can be applied (no "newer change" to wait
        // for).
        let change = t.change(c).await;
        assert_eq!(change.base_commit.as_deref(), Some(first_sha.as_str()));
        assert_eq!(change.status, ChangeStatus::Pending);
        let paths: Vec<String> = change.semantic_diff.iter().map(|e| e.to_string()).collect();
        assert!(paths.iter().any(|p| p.contains(".max: 4 → 6")), "{paths:?}");
        assert!(paths.iter().any(|p| p.contains(".min: 2 → 3")), "{paths:?}");
        let Some(PlanView::Planned { plan, .. }) = &change.plan else {
            panic!("planned again: {:?}", change.plan);
        };
        assert!(plan.operations.len() >= 2, "{plan:#?}");
        assert!(t
            .audit_actions()
            .await
            .contains(&"change.rejudged".to_owned()));
        apply(&t, c).await;
        let s = t.aws.state();
        assert_eq!((s.groups["shop-web"].min, s.groups["shop-web"].max), (3, 6));
    }
}
