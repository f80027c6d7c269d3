//! Settling: after a step whose work AWS carries out later (a database modification, capacity
//! that rises), the step stays `running` and polls one describe call, backing off, until AWS
//! says the work is done or the kind's timeout passes. The lock and its heartbeat hold
//! meanwhile; each poll is written to the step, so the change page shows what it waits for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use domain::change::{SettleState, Settling, StepStatus};
use domain::plan::Operation;
use domain::settle::{self, Kind, Target};
use serde_json::json;

use super::Applies;
use crate::aws::clients::Live;
use crate::error::ServiceResult;
use crate::store::applies;
use crate::store::audit::{append, NewEvent};

use super::runner::{Ended, RunJob};

impl Applies<'_> {
    /// Waits for `target` after the call of step `position` succeeded (`call`: that call, as
    /// the step records it once settled). `None`: settled, go on; `Some`: how the run ends.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn settle(
        &self,
        job: &RunJob,
        position: u32,
        op: &Operation,
        call: applies::Attempt<'_>,
        target: &Target,
        clients: &Live,
        lost: &AtomicBool,
    ) -> ServiceResult<Option<Ended>> {
        let a = &self.settings.apply;
        let timeout = match target.kind() {
            Kind::Database => a.settle_database,
            Kind::Capacity => a.settle_capacity,
        };
        let started = Instant::now();
        let mut s = Settling {
            waiting_for: target.waiting_for(),
            state: SettleState::Settling,
            last_seen: String::new(),
            polls: 0,
            since: self.clock.now(),
            timeout_secs: timeout.as_secs(),
            elapsed_ms: None,
        };
        loop {
            if lost.load(Ordering::SeqCst) {
                return Ok(Some(Self::lost_at(job, position + 1)));
            }
            let seen = crate::aws::settle::poll(clients, target).await;
            s.polls += 1;
            let done = match seen {
                Ok(Ok(())) => true,
                Ok(Err(still)) => {
                    s.last_seen = still;
                    false
                }
                // A poll that fails (a throttle, a timeout) is not the end: the next one asks
                // again, until the timeout.
                Err(e) => {
                    s.last_seen = format!("the poll failed: {e}");
                    false
                }
            };
            let timed_out = !done && started.elapsed() >= timeout;
            if done {
                s.state = SettleState::Settled;
            } else if timed_out {
                s.state = SettleState::TimedOut;
            }
            let over = done || timed_out;
            if over {
                s.elapsed_ms = Some(started.elapsed().as_millis() as u64);
            }
            let text = serde_json::to_string(&s).expect("plain data serialises");
            let failure = timed_out.then(|| {
                format!(
                    "did not settle within {} s: waiting for {}; AWS still shows {}",
                    s.timeout_secs, s.waiting_for, s.last_seen
                )
            });
            let mut tx = self.store.begin_write().await?;
            let mut recorded = applies::step_settling(&mut tx, job.run_id, position, &text).await?;
            if over && recorded {
                let end = applies::Attempt {
                    status: if done {
                        StepStatus::Done.as_str()
                    } else {
                        StepStatus::Failed.as_str()
                    },
                    error: failure.as_deref(),
                    ..call
                };
                recorded = applies::step_attempted(
                    &mut tx,
                    job.run_id,
                    position,
                    end,
                    &self.clock.now_text(),
                )
                .await?;
                let target_id = job.change_id.to_string();
                append(
                    &mut tx,
                    NewEvent {
                        actor: job.actor.clone(),
                        action: if done {
                            "aws.settled"
                        } else {
                            "aws.settle_timed_out"
                        },
                        environment: Some(&job.environment),
                        target: Some(&target_id),
                        detail: json!({
                            "run": job.run_id,
                            "step": position,
                            "resource": op.resource,
                            "waiting_for": s.waiting_for,
                            "polls": s.polls,
                            "elapsed_ms": s.elapsed_ms,
                            "last_seen": (!done).then_some(&s.last_seen),
                        }),
                        meta: &job.meta,
                    },
                )
                .await?;
            }
            tx.commit().await?;
            if !recorded {
                return Ok(Some(Self::lost_at(job, position + 1)));
            }
            if done {
                tracing::info!(change = %job.change_id, step = position, waiting_for = %s.waiting_for, polls = s.polls, elapsed_ms = s.elapsed_ms, "settled");
                return Ok(None);
            }
            if let Some(e) = failure {
                return Ok(Some(Ended::Failed(format!(
                    "step {position} ({}): {e}",
                    op.aws_call
                ))));
            }
            let left = timeout.saturating_sub(started.elapsed());
            let pause = settle::poll_delay(s.polls - 1, a.settle_poll_max).min(left);
            tokio::time::sleep(pause).await;
        }
    }
}
