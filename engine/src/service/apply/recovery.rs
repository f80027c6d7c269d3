//! Runs cut short: a run whose process died is marked `interrupted` with its change, at start
//! or when its stale lock is taken.

use domain::change::{ChangeId, ChangeStatus, RunStatus};
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
                    .is_some_and(|l| l.run_id == run.id && self.holder.sees_alive(l, now));
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
            if held {
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
