//! Reverts: a change that applies again the commit applied before another change. It is a
//! change like any other (its diffs, its plan, judged by the rules of what is applied now);
//! made by an operator's "Revert" or by the watch after an apply.

use domain::approval;
use domain::change::{ChangeId, ChangeKind, CommitInfo, Person};
use domain::lifecycle::Event;
use domain::policy::Applied;
use domain::spec::semantic_diff;
use domain::Role;
use git2::Oid;
use serde_json::json;

use crate::auth::{Caller, RequestMeta};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{git::Mirror, load_at};
use crate::service::known_environment;
use crate::store::changes::{self, Audit, Change};
use crate::store::now_text;
use crate::store::repo::EnvironmentRow;
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

crate::service::handle!(
    /// Reverting an applied change.
    Reverts
);

impl Reverts<'_> {
    /// Records a revert of applied change `id` (to the commit applied before it) and plans it
    /// in the background. Returns the revert's id.
    pub async fn revert(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: ChangeId,
    ) -> ServiceResult<ChangeId> {
        let revert = self.record_revert(caller, meta, id, None).await?;
        let engine = self.0.clone();
        let rid = revert.id;
        tokio::spawn(async move {
            if let Err(e) = engine.plans().refresh_plan(&Caller::System, rid).await {
                tracing::warn!(change = %rid, error = %e, "planning a revert failed");
            }
        });
        Ok(rid)
    }

    /// Records the revert of `id`; `alert`: the watch's page alert that asked for it.
    pub(crate) async fn record_revert(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        id: ChangeId,
        alert: Option<&str>,
    ) -> ServiceResult<Change> {
        let change = self.plans().change(id).await?;
        let env = change.environment.clone();
        let row = {
            let mut conn = self.store.pool().acquire().await?;
            known_environment(&mut conn, &env).await?
        };
        approval::may_revert(&revert_facts(caller, &change, &row))?;
        let current = change.commit.sha.clone();
        let target = change.base_commit.clone().unwrap_or_default();
        let settings = self.settings.repo()?.clone();
        let (env2, from, to) = (env.clone(), current.clone(), target.clone());
        let (spec, base, files) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let m = Mirror::open(&settings.mirror_dir, settings.remote)?;
            let (from, to) = (Oid::from_str(&from)?, Oid::from_str(&to)?);
            let spec = load_at(&m, to, &env2)?;
            let base = load_at(&m, from, &env2)?.ok();
            let files = m.env_diff(Some(from), to, &env2)?;
            Ok((spec, base, files))
        })
        .await
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("reading the specs: {e}")))?
        .map_err(|e| ServiceError::Unavailable(format!("reading the spec repository: {e:#}")))?;

        let (edits, errors, violations, policy_edits) = match &spec {
            Ok(spec) => {
                let against = match &base {
                    Some(b) => Applied::Spec {
                        commit: &current,
                        spec: b,
                    },
                    None => Applied::Unreadable { commit: &current },
                };
                let policy = domain::policy::judge(against, spec, &self.settings.policy);
                (
                    semantic_diff(base.as_ref(), spec),
                    Vec::new(),
                    domain::guardrails::check(spec, &policy.guardrails),
                    policy.edits,
                )
            }
            Err(errors) => (Vec::new(), errors.clone(), Vec::new(), Vec::new()),
        };
        let (name, email) = match caller {
            Caller::User(p) => (p.name.to_string(), p.email.clone().unwrap_or_default()),
            Caller::System => ("system".to_owned(), String::new()),
        };
        let now = now_text();
        let why = match alert {
            Some(a) => format!(" after its watch saw {a}"),
            None => String::new(),
        };
        let commit = CommitInfo {
            sha: target.clone(),
            author: Person {
                name: name.clone(),
                email: email.to_lowercase(),
            },
            committed_at: now.clone(),
            message: format!(
                "Revert change #{id} in {env}{why}: back to {} from {}",
                short_sha(&target),
                short_sha(&current)
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
        let mut tx = self.store.begin_write().await?;
        let earlier = changes::open_of_kind(&mut tx, &env, Some(ChangeKind::Revert)).await?;
        let revert = changes::create(
            &mut tx,
            changes::NewChange {
                environment: &env,
                kind: ChangeKind::Revert,
                commit: &commit,
                base_commit: Some(&current),
                files: &files,
                semantic_diff: &edits,
                spec_errors: &errors,
                guardrails: &violations,
                authors: &authors,
                policy_edits: &policy_edits,
                plan: None,
                reverts: Some(id),
            },
            "change.revert_created",
            Audit {
                actor: caller.actor(),
                meta,
                detail: json!({
                    "reverts": id,
                    "to": target,
                    "from": current,
                    "alert": alert,
                    "superseded": earlier.iter().map(|c| c.id).collect::<Vec<_>>(),
                }),
            },
            &now,
        )
        .await?;
        for old in &earlier {
            let audit = Audit {
                actor: caller.actor(),
                meta,
                detail: json!({ "by": revert.id, "reason": "a newer revert" }),
            };
            changes::transition(&mut tx, old, Event::Supersede, Some(revert.id), audit, &now)
                .await?;
        }
        tx.commit().await?;
        Ok(revert)
    }
}
