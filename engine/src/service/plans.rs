//! Planning environments against live AWS.

use std::collections::{BTreeMap, BTreeSet};

use domain::change::{groups_setting_desired, ChangeStatus, PlanView};
use domain::plan::{plan, Plan};
use domain::spec::{semantic_diff, EnvironmentSpec};
use domain::Role;

use crate::auth::Caller;
use crate::aws::observe::observe;
use crate::aws::AwsError;
use crate::error::{ServiceError, ServiceResult};
use crate::repo::git::Mirror;
use crate::store::{changes, repo as repo_store};
use crate::Engine;

impl From<AwsError> for ServiceError {
    fn from(e: AwsError) -> Self {
        tracing::warn!(error = ?e, "AWS call failed");
        ServiceError::Unavailable(e.to_string())
    }
}

/// A plan and how long reading the live state took.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub read_ms: u64,
    pub region: String,
    /// Security group ids by name, from the same observation (rules name groups by id).
    pub group_ids: BTreeMap<String, String>,
}

impl Engine {
    /// Plans `spec` against what AWS runs now.
    pub async fn plan_spec(
        &self,
        spec: &EnvironmentSpec,
        sets_desired: &BTreeSet<String>,
    ) -> ServiceResult<Planned> {
        let region = self.region_of(spec);
        let clients = self
            .aws_clients(&region, self.settings.aws.max_attempts)
            .await;
        let observed = observe(&clients, spec).await?;
        Ok(Planned {
            plan: plan(spec, &observed.state, sets_desired),
            read_ms: observed.elapsed.as_millis() as u64,
            region,
            group_ids: observed
                .state
                .security_groups
                .values()
                .map(|g| (g.name.clone(), g.id.clone()))
                .collect(),
        })
    }

    /// The spec of `env` at `commit` in the mirror, and at its last applied commit.
    pub(crate) async fn specs_at(
        &self,
        env: &str,
        commit: &str,
        applied: Option<String>,
    ) -> ServiceResult<(EnvironmentSpec, Option<EnvironmentSpec>)> {
        let settings = self.settings.repo.clone().ok_or_else(|| {
            ServiceError::Unavailable("no spec repository is configured: set repo.url".into())
        })?;
        let (env, commit) = (env.to_owned(), commit.to_owned());
        tokio::task::spawn_blocking(move || -> ServiceResult<_> {
            let m = Mirror::open(&settings.mirror_dir, settings.remote)?;
            let load = |c: &str| -> ServiceResult<Result<EnvironmentSpec, String>> {
                let oid = git2::Oid::from_str(c).map_err(|e| ServiceError::Internal(e.into()))?;
                let (files, errors) = m.env_files(oid, &env)?;
                Ok(match domain::spec::load_environment(&env, &files) {
                    Ok(s) if errors.is_empty() => Ok(s),
                    Ok(_) => Err(format!("{} files are not text", errors.len())),
                    Err(es) => Err(format!("{} spec errors", es.len())),
                })
            };
            let spec = load(&commit)?
                .map_err(|why| ServiceError::Conflict(format!("the spec at {commit} has {why}")))?;
            let base = match applied {
                Some(a) => load(&a)?.ok(),
                None => None,
            };
            Ok((spec, base))
        })
        .await
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("reading the spec: {e}")))?
    }

    /// The plan of an environment at the tracked branch's head (for `tierdeck plan`).
    pub async fn plan_head(&self, caller: &Caller, env: &str) -> ServiceResult<(String, Planned)> {
        caller.require(Role::Viewer)?;
        let (head, applied) = {
            let mut conn = self.store.pool().acquire().await?;
            let head = repo_store::state(&mut conn)
                .await?
                .and_then(|s| s.head_commit)
                .ok_or_else(|| {
                    ServiceError::Unavailable("the spec repository was never fetched".into())
                })?;
            let env_row = repo_store::environment(&mut conn, env)
                .await?
                .ok_or_else(|| {
                    ServiceError::NotFound(format!(
                        "there is no environment `{env}` in the spec repository"
                    ))
                })?;
            (head, env_row.last_applied_commit)
        };
        let (spec, base) = self.specs_at(env, &head, applied).await?;
        let sets_desired = groups_setting_desired(&semantic_diff(base.as_ref(), &spec));
        Ok((head, self.plan_spec(&spec, &sets_desired).await?))
    }

    /// Plans a change that can still be applied against live AWS now, and stores the plan with
    /// the change; `None` for changes that cannot be applied.
    pub async fn refresh_plan(&self, caller: &Caller, id: i64) -> ServiceResult<Option<PlanView>> {
        caller.require(Role::Viewer)?;
        let row = {
            let mut conn = self.store.pool().acquire().await?;
            changes::get(&mut conn, id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("there is no change {id}")))?
        };
        let status: ChangeStatus = row
            .status
            .parse()
            .map_err(|e: String| ServiceError::Internal(anyhow::anyhow!(e)))?;
        if !matches!(
            status,
            ChangeStatus::Pending
                | ChangeStatus::Approved
                | ChangeStatus::Blocked
                | ChangeStatus::Failed
                | ChangeStatus::Interrupted
        ) {
            return Ok(None);
        }
        let view = async {
            let (spec, base) = self
                .specs_at(&row.environment, &row.commit_sha, row.base_commit.clone())
                .await?;
            let sets_desired = groups_setting_desired(&semantic_diff(base.as_ref(), &spec));
            let planned = self.plan_spec(&spec, &sets_desired).await?;
            Ok::<_, ServiceError>((planned, spec.environment))
        }
        .await;
        let view = match view {
            Ok((p, settings)) => {
                let stored = self.store_plan(id, &p).await?;
                // Nothing to wait for: an environment that needs no approvals applies at once.
                let ready = status == ChangeStatus::Pending
                    && settings.auto_apply
                    && settings.approvals.required == 0
                    && p.plan.errors.is_empty();
                if ready {
                    self.spawn_auto_apply(id);
                }
                return Ok(Some(stored));
            }
            Err(ServiceError::Internal(e)) => return Err(ServiceError::Internal(e)),
            Err(e) => PlanView::Unavailable {
                reason: e.to_string(),
            },
        };
        self.store_view(id, &view, None).await?;
        Ok(Some(view))
    }

    /// Stores a plan with its change.
    pub(crate) async fn store_plan(&self, id: i64, p: &Planned) -> ServiceResult<PlanView> {
        let view = PlanView::Planned {
            plan: p.plan.clone(),
            read_ms: p.read_ms,
        };
        self.store_view(id, &view, Some(&p.plan.hash)).await?;
        Ok(view)
    }

    async fn store_view(&self, id: i64, view: &PlanView, hash: Option<&str>) -> ServiceResult<()> {
        let json = serde_json::to_string(view).map_err(|e| ServiceError::Internal(e.into()))?;
        let mut conn = self.store.pool().acquire().await?;
        changes::set_plan(&mut conn, id, &json, hash, &crate::store::now_text()).await?;
        Ok(())
    }
}
