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

use crate::auth::{Caller, RequestMeta};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::jobs::worker::Waker;
use crate::repo::git::Mirror;
use crate::repo::read_cache::ReadCache;
use crate::service::judge::Judge;
use crate::service::judge::RECORDING_COST_WAIT;
use crate::service::known_environment;
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
            let m = Mirror::open(&settings.mirror_dir, settings.remote)?;
            m.env_diff(Some(Oid::from_str(&from2)?), Oid::from_str(&to2)?, &env2)
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
                    .judge_specs(Arc::clone(spec), base, false, Some(RECORDING_COST_WAIT))
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
            committed_at: self.clock.now_text(),
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
        tx: &mut sqlx::SqliteConnection,
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
