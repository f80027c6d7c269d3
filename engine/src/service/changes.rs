//! Reading the spec repository's state, environments and changes.

use domain::change::{
    ChangeDetail, ChangeStatus, ChangeSummary, CommitInfo, EnvironmentDetail, EnvironmentSummary,
    FileDiff, RepoStatus,
};
use domain::spec::{FieldEdit, SpecError};
use domain::Role;

use crate::auth::Caller;
use crate::error::{ServiceError, ServiceResult};
use crate::repo::git::Mirror;
use crate::service::drift::drift_of;
use crate::store::{applies, changes, repo as repo_store};
use crate::Engine;

const LIST_LIMIT: u32 = 200;

/// The next whole minute: previews start there.
fn next_minute() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now().timestamp();
    chrono::DateTime::from_timestamp(now - now.rem_euclid(60) + 60, 0).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> ServiceResult<T> {
    serde_json::from_str(text).map_err(|e| {
        ServiceError::Internal(anyhow::anyhow!("stored {column} is not valid JSON: {e}"))
    })
}

pub(crate) fn summary(row: &changes::ChangeRow) -> ServiceResult<ChangeSummary> {
    let edits: Vec<FieldEdit> = from_json("semantic_diff", &row.semantic_diff)?;
    let errors: Vec<SpecError> = from_json("spec_errors", &row.spec_errors)?;
    Ok(ChangeSummary {
        id: row.id,
        environment: row.environment.clone(),
        kind: row.kind.parse().map_err(|e: String| {
            ServiceError::Internal(anyhow::anyhow!("change {}: {e}", row.id))
        })?,
        status: row.status.parse().map_err(|e: String| {
            ServiceError::Internal(anyhow::anyhow!("change {}: {e}", row.id))
        })?,
        commit: CommitInfo {
            sha: row.commit_sha.clone(),
            author_name: row.author_name.clone(),
            author_email: row.author_email.clone(),
            committed_at: row.committed_at.clone(),
            message: row.message.clone(),
        },
        edits: edits.len(),
        errors: errors.len(),
        created_at: row.created_at.clone(),
    })
}

impl Engine {
    /// The spec repository's fetch state; `None` until it was first synced.
    pub async fn repo_status(&self, caller: &Caller) -> ServiceResult<Option<RepoStatus>> {
        caller.require(Role::Viewer)?;
        let mut conn = self.store.pool().acquire().await?;
        let Some(s) = repo_store::state(&mut conn).await? else {
            return Ok(None);
        };
        let head = match (&s.head_commit, &self.settings.repo) {
            (Some(h), Some(settings)) => {
                let (dir, remote, h) = (
                    settings.mirror_dir.clone(),
                    settings.remote.clone(),
                    h.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    let m = Mirror::open(&dir, remote).ok()?;
                    m.commit_info(git2::Oid::from_str(&h).ok()?).ok()
                })
                .await
                .ok()
                .flatten()
            }
            _ => None,
        };
        Ok(Some(RepoStatus {
            url: s.url,
            branch: s.branch,
            head,
            last_fetch_at: s.last_fetch_at,
            last_success_at: s.last_success_at,
            last_error: s.last_error,
            last_error_at: s.last_error_at,
            consecutive_failures: s.consecutive_failures,
        }))
    }

    pub async fn list_environments(
        &self,
        caller: &Caller,
    ) -> ServiceResult<Vec<EnvironmentSummary>> {
        caller.require(Role::Viewer)?;
        let mut conn = self.store.pool().acquire().await?;
        let envs = repo_store::environments(&mut conn).await?;
        let counts = changes::per_environment(&mut conn).await?;
        let locks = applies::locks(&mut conn).await?;
        let mut out = Vec::new();
        for e in envs {
            let (open, latest) = counts
                .iter()
                .find(|(n, _, _)| *n == e.name)
                .map(|(_, o, l)| (*o, *l))
                .unwrap_or((0, None));
            let latest_change = match latest {
                Some(id) => changes::get(&mut conn, id)
                    .await?
                    .map(|r| summary(&r))
                    .transpose()?,
                None => None,
            };
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
        name: &str,
        hours: u32,
    ) -> ServiceResult<EnvironmentDetail> {
        caller.require(Role::Viewer)?;
        let mut conn = self.store.pool().acquire().await?;
        let env = super::known_environment(&mut conn, name).await?;
        let head = repo_store::state(&mut conn)
            .await?
            .and_then(|s| s.head_commit);
        let recent = changes::list(&mut conn, Some(name), None, 10).await?;
        let applying = applies::lock(&mut conn, name).await?.map(|l| l.change_id);
        let recent_changes = recent
            .iter()
            .map(summary)
            .collect::<ServiceResult<Vec<_>>>()?;
        drop(conn);
        let (spec, errors) = match (&head, &self.settings.repo) {
            (Some(h), Some(settings)) => {
                let (dir, remote, h, env_name) = (
                    settings.mirror_dir.clone(),
                    settings.remote.clone(),
                    h.clone(),
                    name.to_owned(),
                );
                let loaded = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                    let m = Mirror::open(&dir, remote)?;
                    let (files, mut errors) = m.env_files(git2::Oid::from_str(&h)?, &env_name)?;
                    match domain::spec::load_environment(&env_name, &files) {
                        Ok(spec) if errors.is_empty() => Ok((Some(spec), errors)),
                        Ok(_) => Ok((None, errors)),
                        Err(es) => {
                            errors.extend(es);
                            Ok((None, errors))
                        }
                    }
                })
                .await
                .map_err(|e| ServiceError::Internal(anyhow::anyhow!("reading the spec: {e}")))?
                .map_err(ServiceError::Internal)?;
                loaded
            }
            _ => (None, Vec::new()),
        };
        let schedule = spec
            .as_ref()
            .map(|s| domain::schedule::preview(s, next_minute(), hours.clamp(1, 24 * 14)));
        Ok(EnvironmentDetail {
            schedule,
            drift: drift_of(&env),
            applying,
            name: env.name,
            last_applied_commit: env.last_applied_commit,
            head_commit: head,
            spec,
            errors,
            recent_changes,
        })
    }

    pub async fn list_changes(
        &self,
        caller: &Caller,
        environment: Option<&str>,
        status: Option<&str>,
    ) -> ServiceResult<Vec<ChangeSummary>> {
        caller.require(Role::Viewer)?;
        let environment = environment.map(str::trim).filter(|s| !s.is_empty());
        let status = status.map(str::trim).filter(|s| !s.is_empty());
        if let Some(s) = status {
            s.parse::<ChangeStatus>().map_err(|_| {
                ServiceError::invalid(
                    "status",
                    format!(
                        "`{s}` is not a status; use one of {}",
                        ChangeStatus::ALL.map(ChangeStatus::as_str).join(", ")
                    ),
                )
            })?;
        }
        let mut conn = self.store.pool().acquire().await?;
        changes::list(&mut conn, environment, status, LIST_LIMIT)
            .await?
            .iter()
            .map(summary)
            .collect()
    }

    /// The status and latest apply of a change, without its diffs and spec: cheap enough to
    /// ask for every second while an apply runs.
    pub async fn apply_state(
        &self,
        caller: &Caller,
        id: i64,
    ) -> ServiceResult<domain::change::ApplyState> {
        caller.require(Role::Viewer)?;
        let mut conn = self.store.pool().acquire().await?;
        let row = changes::get(&mut conn, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no change {id}")))?;
        let (apply, runs) = self.latest_apply(&mut conn, id).await?;
        Ok(domain::change::ApplyState {
            status: row
                .status
                .parse()
                .map_err(|e: String| ServiceError::Internal(anyhow::anyhow!("change {id}: {e}")))?,
            apply,
            runs,
        })
    }

    pub async fn change_detail(&self, caller: &Caller, id: i64) -> ServiceResult<ChangeDetail> {
        caller.require(Role::Viewer)?;
        let row = self.change_row(id).await?;
        let files: Vec<FileDiff> = from_json("file_diff", &row.file_diff)?;
        let semantic_diff: Vec<domain::spec::FieldEdit> =
            from_json("semantic_diff", &row.semantic_diff)?;
        // The spec is read once: its settings for the approvals, and with its base for the
        // schedule before and after when the change edits schedules.
        let edits_schedule = semantic_diff.iter().any(|e| e.path.contains(".schedule"));
        let base = row.base_commit.clone().filter(|_| edits_schedule);
        let specs = match self.specs_at(&row.environment, &row.commit_sha, base).await {
            Ok(s) => Some(s),
            Err(ServiceError::Internal(e)) => return Err(ServiceError::Internal(e)),
            Err(_) => None,
        };
        let mut conn = self.store.pool().acquire().await?;
        let (apply, runs) = self.latest_apply(&mut conn, id).await?;
        let settings = specs.as_ref().map(|(spec, _)| &spec.environment);
        let (approvals, actions, change_windows) =
            self.review_view(caller, &mut conn, &row, settings).await?;
        drop(conn);
        let schedule = specs.filter(|_| edits_schedule).map(|(spec, base)| {
            let from = next_minute();
            domain::change::SchedulePair {
                before: base.map(|b| domain::schedule::preview(&b, from, 24)),
                after: domain::schedule::preview(&spec, from, 24),
            }
        });
        Ok(ChangeDetail {
            schedule,
            apply,
            runs,
            approvals,
            actions,
            change_windows,
            guardrails: from_json("guardrails", &row.guardrails)?,
            summary: summary(&row)?,
            base_commit: row.base_commit.clone(),
            files,
            semantic_diff,
            spec_errors: from_json("spec_errors", &row.spec_errors)?,
            superseded_by: row.superseded_by,
            plan: row
                .plan
                .as_deref()
                .map(|p| from_json("plan", p))
                .transpose()?,
            planned_at: row.planned_at.clone(),
        })
    }
}
