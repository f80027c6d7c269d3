//! The queue of jobs as the pages read it: a change's jobs on its page, and every job not over
//! (and the latest that failed for good) on the Admin page.

use domain::change::ChangeId;
use domain::job::JobView;
use domain::Role;

use crate::auth::Caller;
use crate::error::{ServiceError, ServiceResult};
use crate::store::jobs::{self, JobRow};
use crate::store::Store;

/// The failed jobs the Admin page lists besides those not over.
const FAILED_SHOWN: u32 = 50;

fn views(rows: Vec<JobRow>) -> ServiceResult<Vec<JobView>> {
    rows.iter()
        .map(|r| {
            r.view()
                .map_err(|e| ServiceError::Internal(anyhow::anyhow!("job {}: {e}", r.id)))
        })
        .collect()
}

/// The jobs queue, read.
#[derive(Clone, Copy)]
pub struct Jobs<'a> {
    pub(crate) store: &'a Store,
}

impl Jobs<'_> {
    /// A change's jobs, oldest first.
    pub(crate) async fn of_change(
        &self,
        conn: &mut crate::store::Conn,
        id: ChangeId,
    ) -> ServiceResult<Vec<JobView>> {
        views(jobs::of_change(conn, id.0).await?)
    }

    /// Every job not over, and the latest that failed for good, newest first (admins).
    pub async fn list(&self, caller: &Caller) -> ServiceResult<Vec<JobView>> {
        caller.require(Role::Admin)?;
        let mut conn = self.store.pool().acquire().await?;
        views(jobs::recent(&mut conn, FAILED_SHOWN).await?)
    }

    /// Jobs by kind and state, for `/metrics`.
    pub async fn counts(&self) -> ServiceResult<Vec<(String, String, i64)>> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(jobs::counts(&mut conn).await?)
    }
}
