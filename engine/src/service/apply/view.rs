//! The latest run of a change with its steps, as the change page shows it.

use domain::change::{ApplyRun, ApplyStep, ChangeId};

use super::Applies;
use crate::error::{ServiceError, ServiceResult};
use crate::store::applies::{self};
use crate::store::{time_column, time_column_opt};

impl Applies<'_> {
    /// The latest apply of a change with its steps, and how many there were.
    pub(crate) async fn latest_apply(
        &self,
        conn: &mut crate::store::Conn,
        change_id: ChangeId,
    ) -> ServiceResult<(Option<ApplyRun>, u32)> {
        let count = applies::run_count(conn, change_id.0).await? as u32;
        let Some(run) = applies::latest_run(conn, change_id.0).await? else {
            return Ok((None, count));
        };
        let internal = |e: String| ServiceError::Internal(anyhow::anyhow!("run {}: {e}", run.id));
        let mut steps = Vec::new();
        for s in applies::steps(conn, run.id).await? {
            let rollout: Option<domain::rollout::RolloutState> = s
                .rollout
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| internal(e.to_string()))?;
            steps.push(ApplyStep {
                position: s.position as u32,
                operation: serde_json::from_str(&s.operation)
                    .map_err(|e| internal(e.to_string()))?,
                status: s.status.parse().map_err(internal)?,
                attempts: s.attempts as u32,
                request_id: s.request_id,
                error: s.error,
                started_at: time_column_opt("started_at", s.started_at.as_deref())?,
                finished_at: time_column_opt("finished_at", s.finished_at.as_deref())?,
                settling: s
                    .settling
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| internal(e.to_string()))?,
                rollout_summary: rollout.as_ref().map(|r| r.summary(self.clock.now())),
                rollout,
            });
        }
        Ok((
            Some(ApplyRun {
                id: run.id,
                started_by: run.started_by,
                emergency: run.emergency_reason,
                plan_hash: run.plan_hash,
                status: run.status.parse().map_err(internal)?,
                error: run.error,
                started_at: time_column("started_at", &run.started_at)?,
                finished_at: time_column_opt("finished_at", run.finished_at.as_deref())?,
                steps,
            }),
            count,
        ))
    }
}
