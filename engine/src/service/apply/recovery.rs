//! Runs cut short: a run whose process died is marked `interrupted` with its change, at start
//! or when its stale lock is taken.

use domain::change::{ChangeId, ChangeStatus, RunStatus, StepStatus};
use domain::lifecycle::Event;
use serde_json::json;

use super::Applies;
use crate::auth::{Actor, RequestMeta};
use crate::error::ServiceResult;
use crate::store::applies::{self, RunRow};
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit};

impl Applies<'_> {
    /// Marks a run whose process died `interrupted`, with its change; in the caller's
    /// transaction.
    pub(super) async fn interrupt(
        &self,
        tx: &mut crate::store::Conn,
        run: &RunRow,
        meta: &RequestMeta,
    ) -> ServiceResult<()> {
        let now = self.clock.now_text();
        let cut = applies::interrupt_steps(tx, run.id, &now).await?;
        applies::finish_run(
            tx,
            run.id,
            RunStatus::Interrupted.as_str(),
            Some("tierdeck stopped during the apply; plan again to see what is left"),
            &now,
        )
        .await?;
        let detail = json!({
            "run": run.id,
            "started_by": run.started_by,
            "steps_cut_short": cut,
        });
        let change = changes::get(tx, ChangeId(run.change_id)).await?;
        match change {
            Some(c) if c.status == ChangeStatus::Applying => {
                let audit = Audit {
                    actor: Actor::system(),
                    meta,
                    detail,
                };
                changes::transition(tx, &c, Event::Interrupt, None, audit, &now).await?;
                let text = format!(
                    "applying change #{} to {} was INTERRUPTED: tierdeck stopped during the apply (run {}, started by {}); plan again to see what is left.{}",
                    c.id,
                    c.environment,
                    run.id,
                    run.started_by,
                    self.notifications.change_link(c.id)
                );
                self.notifications
                    .queue_notification(tx, "interrupted", Some(&c.environment), Some(&c), &text)
                    .await?;
            }
            // The change was moved already: the run is recorded as cut short all the same.
            _ => {
                let target = run.change_id.to_string();
                append(
                    tx,
                    NewEvent {
                        actor: Actor::system(),
                        action: Event::Interrupt.action(),
                        environment: Some(&run.environment),
                        target: Some(&target),
                        detail,
                        meta,
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Marks `run`, whose process stopped (or could not record its end), `interrupted` with its
    /// change, and frees its lock.
    pub(super) async fn interrupt_run(&self, run: &RunRow) -> ServiceResult<()> {
        let mut tx = self.store.begin_write().await?;
        let Some(run) = applies::run(&mut tx, run.id).await? else {
            return Ok(());
        };
        if run.status != RunStatus::Applying.as_str() {
            return Ok(());
        }
        self.interrupt(&mut tx, &run, &RequestMeta::default())
            .await?;
        applies::release(&mut tx, &run.environment, run.id).await?;
        tx.commit().await?;
        self.jobs_waker.wake();
        tracing::warn!(
            change = run.change_id,
            run = run.id,
            "an apply cut short is marked interrupted"
        );
        Ok(())
    }

    /// Whether `run`, cut short, is a rollout AWS may still run: its running step has a
    /// rollout state that has not ended. Then this process takes the run's lock over (its
    /// holder is gone) and the apply job follows the refresh again by its id. `false`: the
    /// run is to be interrupted.
    pub(super) async fn resume_rollout(&self, run: &RunRow) -> ServiceResult<bool> {
        let mut tx = self.store.begin_write().await?;
        if !Self::resumable(&mut tx, run.id, run.change_id).await? {
            return Ok(false);
        }
        let lock = applies::lock(&mut tx, &run.environment).await?;
        let Some(lock) = lock.filter(|l| l.run_id == run.id) else {
            return Ok(false);
        };
        if lock.holder_id != self.holder.id && self.holder.sees_alive(&lock, self.clock.now()) {
            // Another live process follows it.
            return Ok(false);
        }
        applies::adopt_lock(
            &mut tx,
            &run.environment,
            run.id,
            &self.holder.host,
            i64::from(self.holder.pid),
            &self.holder.id,
            &self.clock.now_text(),
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(
            change = run.change_id,
            run = run.id,
            "an apply cut short during a rollout re-attaches to it"
        );
        Ok(true)
    }

    /// Whether run `run_id` (of change `change_id`) stopped in a rollout step that has not
    /// ended, and an apply job is still there to follow it again (one that failed for good
    /// leaves the run to be interrupted, as any other).
    async fn resumable(
        tx: &mut crate::store::Conn,
        run_id: i64,
        change_id: i64,
    ) -> ServiceResult<bool> {
        let job_left = crate::store::jobs::of_change(tx, change_id)
            .await?
            .iter()
            .any(|j| {
                j.kind == "apply" && matches!(j.state.as_str(), "queued" | "running" | "retrying")
            });
        if !job_left {
            return Ok(false);
        }
        for s in applies::steps(tx, run_id).await? {
            if s.status != StepStatus::Running.as_str() {
                continue;
            }
            let over = s
                .rollout
                .as_deref()
                .map(serde_json::from_str::<domain::rollout::RolloutState>)
                .map(|st| st.map(|st| st.phase.is_over()));
            return Ok(matches!(over, Some(Ok(false))));
        }
        Ok(false)
    }

    /// Applies whose process died (or stopped beating) become `interrupted` and their locks
    /// are freed: at start, and from then on by the worker. Returns the changes marked.
    pub async fn recover_applies(&self) -> ServiceResult<Vec<i64>> {
        let meta = RequestMeta::default();
        // A read first: with no run cut short, nothing is written.
        {
            let mut conn = self.store.pool().acquire().await?;
            let now = self.clock.now();
            let mut cut_short = false;
            for run in applies::unfinished_runs(&mut conn).await? {
                let lock = applies::lock(&mut conn, &run.environment).await?;
                cut_short |= !lock
                    .as_ref()
                    .is_some_and(|l| l.run_id == run.id && self.holder.sees_alive(l, now))
                    && !Self::resumable(&mut conn, run.id, run.change_id).await?;
            }
            if !cut_short {
                return Ok(Vec::new());
            }
        }
        let mut tx = self.store.begin_write().await?;
        let mut marked = Vec::new();
        let now = self.clock.now();
        for run in applies::unfinished_runs(&mut tx).await? {
            let lock = applies::lock(&mut tx, &run.environment).await?;
            let held = lock
                .as_ref()
                .is_some_and(|l| l.run_id == run.id && self.holder.sees_alive(l, now));
            // A rollout cut short is re-attached by its apply job, not interrupted.
            if held || Self::resumable(&mut tx, run.id, run.change_id).await? {
                continue;
            }
            self.interrupt(&mut tx, &run, &meta).await?;
            applies::release(&mut tx, &run.environment, run.id).await?;
            marked.push(run.change_id);
        }
        tx.commit().await?;
        self.jobs_waker.wake();
        if !marked.is_empty() {
            tracing::warn!(changes = ?marked, "applies cut short by a stop are marked interrupted");
        }
        Ok(marked)
    }
}
