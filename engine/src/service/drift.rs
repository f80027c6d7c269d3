//! Drift: a periodic plan of each environment's last applied spec against live AWS, and
//! reconcile, which turns drift into a change.
//!
//! The plan is made as for a change that edits no `desired`, so capacity the autoscaler moved
//! within [min, max] of a group with policies or schedules is not drift.

use std::collections::BTreeSet;
use std::time::Duration;

use domain::change::{ChangeId, ChangeKind, Drift, Person};
use domain::lifecycle::Event;
use domain::plan::Plan;
use domain::spec::EnvName;
use domain::Role;
use serde_json::json;

use crate::auth::{Actor, Caller, RequestMeta};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::jobs::worker::Waker;
use crate::service::notify::Notifications;
use crate::service::plans::Planned;
use crate::service::plans::Plans;
use crate::service::spec_reads::Specs;
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit};
use crate::store::repo::EnvironmentRow;
use crate::store::Store;
use crate::store::{applies, repo as repo_store};

/// The drift an environment row records.
pub fn drift_of(row: &EnvironmentRow) -> Drift {
    let Some(checked_at) = row.drift_checked_at.as_deref() else {
        return Drift::Unchecked;
    };
    let checked_at = match crate::store::parse_time(checked_at) {
        Ok(t) => t,
        Err(e) => {
            return Drift::Unknown {
                checked_at: chrono::DateTime::UNIX_EPOCH,
                error: format!("the stored check time cannot be read: {e}"),
            }
        }
    };
    if let Some(error) = &row.drift_error {
        return Drift::Unknown {
            checked_at,
            error: error.clone(),
        };
    }
    match (&row.drift, &row.drifted_since) {
        (Some(plan), Some(since)) => match (
            serde_json::from_str::<Plan>(plan),
            crate::store::parse_time(since),
        ) {
            (Ok(plan), Ok(since)) => Drift::Drifted {
                checked_at,
                since,
                plan,
            },
            (_, Err(e)) => Drift::Unknown {
                checked_at,
                error: format!("the stored drift's start cannot be read: {e}"),
            },
            (Err(e), _) => Drift::Unknown {
                checked_at,
                error: format!("the stored drift cannot be read: {e}"),
            },
        },
        // In sync, with the notes of the plan that found it so.
        (Some(plan), None) => Drift::InSync {
            checked_at,
            notes: serde_json::from_str::<Plan>(plan)
                .map(|p| p.notes)
                .unwrap_or_default(),
        },
        _ => Drift::InSync {
            checked_at,
            notes: Vec::new(),
        },
    }
}

fn operation_lines(plan: &Plan) -> Vec<String> {
    plan.operations
        .iter()
        .map(ToString::to_string)
        .chain(plan.errors.iter().map(ToString::to_string))
        .collect()
}

/// Drift between the applied spec and AWS.
#[derive(Clone, Copy)]
pub struct Drifts<'a> {
    pub(crate) store: &'a Store,
    pub(crate) specs: Specs<'a>,
    pub(crate) plans: Plans<'a>,
    pub(crate) notifications: Notifications<'a>,
    pub(crate) jobs_waker: &'a Waker,
    pub(crate) clock: &'a dyn Clock,
}

impl Drifts<'_> {
    /// Plans the last applied spec of `env` against live AWS and records the result; drift
    /// appearing, changing and clearing are audited. Skipped while the environment is applied.
    pub async fn check_drift(&self, env: &str) -> ServiceResult<Drift> {
        self.check_drift_planned(env).await.map(|(d, _)| d)
    }

    async fn check_drift_planned(&self, env: &str) -> ServiceResult<(Drift, Option<Planned>)> {
        let (row, locked) = {
            let mut conn = self.store.pool().acquire().await?;
            let row = super::known_environment(&mut conn, env).await?;
            let locked = applies::lock(&mut conn, env).await?.is_some();
            (row, locked)
        };
        let Some(applied) = row.last_applied_commit.clone() else {
            return Ok((Drift::Unchecked, None));
        };
        if locked {
            return Ok((drift_of(&row), None));
        }
        let planned = async {
            let (spec, _) = self.specs.specs_at(env, &applied, None).await?;
            self.plans.plan_spec(&spec, &BTreeSet::new()).await
        }
        .await;
        let now = self.clock.now_text();
        let meta = RequestMeta::default();
        let mut tx = self.store.begin_write().await?;
        let planned = match planned {
            Ok(p) => p,
            Err(ServiceError::Internal(e)) => return Err(ServiceError::Internal(e)),
            Err(e) => {
                repo_store::set_drift_error(&mut tx, env, &e.to_string(), &now).await?;
                tx.commit().await?;
                tracing::warn!(environment = env, error = %e, "drift check could not run");
                let row = self.environment_row(env).await?;
                return Ok((drift_of(&row), None));
            }
        };
        let before = super::known_environment(&mut tx, env).await?;
        let plan = &planned.plan;
        let event = if plan.is_empty() {
            let notes = if plan.notes.is_empty() {
                None
            } else {
                Some(serde_json::to_string(plan).map_err(|e| ServiceError::Internal(e.into()))?)
            };
            repo_store::set_in_sync(&mut tx, env, notes.as_deref(), &now).await?;
            before
                .drift_hash
                .is_some()
                .then(|| ("environment.drift_cleared", json!({ "commit": applied })))
        } else {
            let json = serde_json::to_string(plan).map_err(|e| ServiceError::Internal(e.into()))?;
            let since = before.drifted_since.clone().unwrap_or_else(|| now.clone());
            repo_store::set_drift(&mut tx, env, (&json, &plan.hash, &since), &now).await?;
            let detail = json!({
                "commit": applied,
                "plan_hash": plan.hash,
                "operations": operation_lines(plan),
            });
            match &before.drift_hash {
                None => Some(("environment.drift_detected", detail)),
                Some(h) if h != &plan.hash => Some(("environment.drift_changed", detail)),
                Some(_) => None,
            }
        };
        if let Some(("environment.drift_detected", _)) = &event {
            let text = format!(
                "{env} drifted from its last applied commit: {}",
                operation_lines(plan).join("; ")
            );
            self.notifications
                .queue_notification(&mut tx, "drift_detected", Some(env), None, &text)
                .await?;
        }
        let moved = matches!(
            &event,
            Some((
                "environment.drift_detected" | "environment.drift_changed",
                _
            ))
        );
        if let Some((action, detail)) = event {
            append(
                &mut tx,
                NewEvent {
                    actor: Actor::system(),
                    action,
                    environment: Some(env),
                    target: None,
                    detail,
                    meta: &meta,
                },
            )
            .await?;
        }
        // The live state moved: the plans of the environment's open changes may be stale, and
        // are made again by jobs queued with what says so.
        if moved {
            for change in changes::open_of_kind(&mut tx, env, None).await? {
                if change.plan_hash.is_some() {
                    self.plans.queue_plan(&mut tx, &change, "system").await?;
                }
            }
        }
        tx.commit().await?;
        self.jobs_waker.wake();
        let row = self.environment_row(env).await?;
        Ok((drift_of(&row), Some(planned)))
    }

    async fn environment_row(&self, env: &str) -> ServiceResult<EnvironmentRow> {
        let mut conn = self.store.pool().acquire().await?;
        super::known_environment(&mut conn, env).await
    }

    /// Checks every applied environment now.
    pub async fn check_all_drift(&self) -> ServiceResult<()> {
        let envs = {
            let mut conn = self.store.pool().acquire().await?;
            repo_store::environments(&mut conn).await?
        };
        for e in envs.iter().filter(|e| e.last_applied_commit.is_some()) {
            if let Err(err) = self.check_drift(&e.name).await {
                tracing::warn!(environment = %e.name, error = %err, "drift check failed");
            }
        }
        Ok(())
    }

    /// Checks drift every `interval`, for ever.
    pub async fn drift_poller(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.check_all_drift().await {
                tracing::warn!(error = %e, "drift checks failed");
            }
        }
    }

    /// Turns the drift of `env` into a change that applies the last applied commit again.
    pub async fn reconcile(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        env: &EnvName,
    ) -> ServiceResult<ChangeId> {
        let env = env.as_str();
        caller.require(Role::Operator)?;
        let row = self.environment_row(env).await?;
        let Some(applied) = row.last_applied_commit.clone() else {
            return Err(ServiceError::Conflict(format!(
                "{env} was never applied by tierdeck: there is no applied spec to go back to"
            )));
        };
        let (drift, planned) = self.check_drift_planned(env).await?;
        let (plan, read_ms, aws_calls) = match (drift, planned) {
            (Drift::Drifted { .. }, Some(p)) => (p.plan, p.read_ms, p.aws_calls),
            (Drift::Unknown { error, .. }, _) => {
                return Err(ServiceError::Unavailable(format!(
                    "the drift of {env} cannot be checked: {error}"
                )))
            }
            (_, None) => {
                return Err(ServiceError::Conflict(format!(
                    "{env} is being applied now; reconcile after the apply"
                )))
            }
            _ => {
                return Err(ServiceError::Conflict(format!(
                    "{env} has no drift: AWS matches the last applied commit {}",
                    domain::commit::short_sha(&applied)
                )))
            }
        };
        let (name, email) = match caller {
            Caller::User(p) => (p.name.to_string(), p.email.clone().unwrap_or_default()),
            Caller::System => ("system".to_owned(), String::new()),
        };
        let now = self.clock.now_text();
        let commit = domain::change::CommitInfo {
            sha: applied.clone(),
            author: Person {
                name: name.clone(),
                email: email.to_lowercase(),
            },
            committed_at: self.clock.now(),
            message: format!(
                "Reconcile drift in {env}: {} operation(s) bring AWS back to {}",
                plan.operations.len(),
                domain::commit::short_sha(&applied)
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
        let view = domain::change::PlanView::Planned {
            plan: plan.clone(),
            read_ms,
            aws_calls,
        };
        let mut tx = self.store.begin_write().await?;
        let earlier = changes::open_of_kind(&mut tx, env, Some(ChangeKind::Reconcile)).await?;
        let change = changes::create(
            &mut tx,
            changes::NewChange {
                environment: env,
                kind: ChangeKind::Reconcile,
                commit: &commit,
                base_commit: Some(&applied),
                files: &[],
                semantic_diff: &[],
                spec_errors: &[],
                guardrails: &[],
                authors: &authors,
                policy_edits: &[],
                plan: Some(&view),
                reverts: None,
            },
            "change.reconcile_created",
            Audit {
                actor: caller.actor(),
                meta,
                detail: json!({
                    "commit": applied,
                    "plan_hash": plan.hash,
                    "operations": plan.operations.len(),
                    "superseded": earlier.iter().map(|c| c.id).collect::<Vec<_>>(),
                }),
            },
            &now,
        )
        .await?;
        let id = change.id;
        for old in &earlier {
            let audit = Audit {
                actor: caller.actor(),
                meta,
                detail: json!({ "by": id, "reason": "a newer reconcile" }),
            };
            changes::transition(&mut tx, old, Event::Supersede, Some(id), audit, &now).await?;
        }
        tx.commit().await?;
        Ok(id)
    }
}
