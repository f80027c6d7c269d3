//! Specs and changes as recorded: a change's spec at its commit and the applied spec it is
//! judged against, read from the mirror once per commit and shared (the kept reads), and
//! changes by id. What every service that judges, plans or reports reads them through.

use std::sync::Arc;

use domain::change::ChangeId;
use domain::policy::Applied;
use domain::spec::EnvironmentSpec;

use crate::error::{ServiceError, ServiceResult};
use crate::repo::read_cache::ReadCache;
use crate::settings::EngineSettings;
use crate::store::changes::{self, Change};
use crate::store::Store;

/// The spec an environment's last applied commit holds, as a change is judged against it.
#[derive(Debug, Clone)]
pub enum Base {
    /// Never applied.
    Never,
    Spec {
        commit: String,
        spec: Arc<EnvironmentSpec>,
    },
    /// Applied, but that spec cannot be read now.
    Unreadable { commit: String },
}

impl Base {
    pub fn spec(&self) -> Option<&EnvironmentSpec> {
        match self {
            Base::Spec { spec, .. } => Some(spec),
            _ => None,
        }
    }

    /// What the policy is judged against.
    pub fn applied(&self) -> Applied<'_> {
        match self {
            Base::Never => Applied::Never,
            Base::Spec { commit, spec } => Applied::Spec { commit, spec },
            Base::Unreadable { commit } => Applied::Unreadable { commit },
        }
    }
}

/// Specs and changes as recorded.
#[derive(Clone, Copy)]
pub struct Specs<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) reads: &'a ReadCache,
}

impl Specs<'_> {
    /// The spec of `env` at `commit` in the mirror, shared with the kept reads: for readers
    /// that only look at it (reports, pollers), so a page does not copy a whole spec.
    pub(crate) async fn spec_at(
        &self,
        env: &str,
        commit: &str,
    ) -> ServiceResult<Arc<EnvironmentSpec>> {
        let settings = self.settings.repo()?;
        match &*self.reads.spec(settings, commit, env).await? {
            Ok(spec) => Ok(Arc::clone(spec)),
            Err(errors) => {
                let first = errors.first().map_or(String::new(), |e| {
                    format!(" (first: {}:{}: {})", e.file, e.line, e.message)
                });
                Err(ServiceError::Conflict(format!(
                    "the spec at {commit} has {} errors{first}",
                    errors.len()
                )))
            }
        }
    }

    /// The spec of `env` at `commit` in the mirror, and at its last applied commit: both read
    /// from git once per commit and shared, not copied.
    pub(crate) async fn specs_at(
        &self,
        env: &str,
        commit: &str,
        applied: Option<String>,
    ) -> ServiceResult<(Arc<EnvironmentSpec>, Base)> {
        let spec = self.spec_at(env, commit).await?;
        let base = self.base_at(env, applied).await?;
        Ok((spec, base))
    }

    /// The applied spec a change of `env` is judged against, `applied` being its last applied
    /// commit.
    pub(crate) async fn base_at(&self, env: &str, applied: Option<String>) -> ServiceResult<Base> {
        Ok(match applied {
            Some(a) => match &*self.reads.spec(self.settings.repo()?, &a, env).await? {
                Ok(spec) => Base::Spec {
                    commit: a,
                    spec: Arc::clone(spec),
                },
                Err(_) => Base::Unreadable { commit: a },
            },
            None => Base::Never,
        })
    }

    /// A change by id (404 when there is none).
    pub(crate) async fn change(&self, id: ChangeId) -> ServiceResult<Change> {
        let mut conn = self.store.pool().acquire().await?;
        changes::get(&mut conn, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no change {id}")))
    }
}
