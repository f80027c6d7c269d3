//! The watch after an apply: for `environment.watch.minutes` the environment's SLO burn-rate
//! alerts (the multi-window rules of `domain::slo`) are evaluated every `[apply]
//! watch_interval_secs`, by a job that runs again until the watch ends. A page-level alert
//! marks the change `degraded`, records a revert change and, when the rules say
//! `watch.auto_revert`, queues its apply as `system`.

use domain::change::{ChangeId, ChangeKind, WatchState};
use domain::job::{JobKind, Outcome};
use domain::lifecycle::Event;
use domain::slo::WatchReading;
use domain::spec::{EnvironmentSpec, Watch};
use serde_json::json;

use crate::auth::{Actor, Caller, RequestMeta};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::jobs::worker::outcome_of;
use crate::jobs::worker::Waker;
use crate::jobs::{self, Job};
use crate::prometheus::PromApi;
use crate::service::notify::Notifications;
use crate::service::revert::Reverts;
use crate::service::slo::Slos;
use crate::service::spec_reads::Specs;
use crate::settings::EngineSettings;
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit, Change};
use crate::store::format_time;
use crate::store::watches::{self, WatchRow};
use crate::store::Store;

async fn watch_event(
    tx: &mut crate::store::Conn,
    action: &str,
    environment: &str,
    change: ChangeId,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    let target = change.to_string();
    append(
        tx,
        NewEvent {
            actor: Actor::system(),
            action,
            environment: Some(environment),
            target: Some(&target),
            detail,
            meta: &RequestMeta::default(),
        },
    )
    .await
    .map(drop)
}

/// The SLOs the watch after a change reads: those of the spec applied before it (a change does
/// not choose what watches it) and any it adds, on `spec`'s monitoring.
fn watched(mut spec: EnvironmentSpec, base: Option<&EnvironmentSpec>) -> EnvironmentSpec {
    if let Some(before) = base {
        let mut slos = before.slos.clone();
        for s in &spec.slos {
            if !slos.iter().any(|b| b.name == s.name) {
                slos.push(s.clone());
            }
        }
        spec.slos = slos;
    }
    spec
}

/// The SLOs of `spec` that `base` (applied before it) has no SLO of that name for: those the
/// change brings, whose failing to evaluate counts against it ([`domain::slo::watch_outcome`]).
fn introduced(spec: &EnvironmentSpec, base: Option<&EnvironmentSpec>) -> Vec<String> {
    spec.slos
        .iter()
        .filter(|s| base.is_none_or(|b| !b.slos.iter().any(|x| x.name == s.name)))
        .map(|s| s.name.clone())
        .collect()
}

/// The SLO watch after an apply.
#[derive(Clone, Copy)]
pub struct Watches<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) prometheus: Option<&'a dyn PromApi>,
    pub(crate) specs: Specs<'a>,
    pub(crate) slo: Slos<'a>,
    pub(crate) reverts: Reverts<'a>,
    pub(crate) notifications: Notifications<'a>,
    pub(crate) jobs_waker: &'a Waker,
    pub(crate) clock: &'a dyn Clock,
}

/// What an apply knew of the SLOs as it started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AtStart {
    /// The burn rate of a page alert already firing.
    pub burn_before: Option<f64>,
    /// Every SLO watched is counted by CloudWatch: no Prometheus is needed.
    pub without_prometheus: bool,
}

impl Watches<'_> {
    /// Starts the watch of `change`, just applied, in the apply's transaction; a newer apply
    /// ends the watches of the environment before it. Returns the minutes watched (`None`: no
    /// watch).
    pub(crate) async fn start_watch(
        &self,
        tx: &mut crate::store::Conn,
        change: ChangeId,
        environment: &str,
        watch: Watch,
        at_start: AtStart,
        now: &str,
    ) -> ServiceResult<Option<u32>> {
        let AtStart {
            burn_before,
            without_prometheus,
        } = at_start;
        for w in watches::watching_of(tx, environment).await? {
            let why = format!("change #{change} was applied after it");
            let earlier = ChangeId(w.change_id);
            if watches::end(tx, earlier, WatchState::Stopped, Some(&why), now).await? {
                watch_event(
                    tx,
                    "change.watch_stopped",
                    environment,
                    earlier,
                    json!({ "reason": why }),
                )
                .await?;
            }
        }
        if watch.minutes == 0 {
            return Ok(None);
        }
        let until =
            format_time(self.clock.now() + chrono::Duration::minutes(i64::from(watch.minutes)));
        watches::start(
            tx,
            watches::NewWatch {
                change,
                environment,
                minutes: watch.minutes,
                auto_revert: watch.auto_revert,
                burn_before,
                now,
                until: &until,
            },
        )
        .await?;
        watch_event(
            tx,
            "change.watch_started",
            environment,
            change,
            json!({ "minutes": watch.minutes, "auto_revert": watch.auto_revert, "until": until, "burn_before": burn_before }),
        )
        .await?;
        if self.prometheus.is_none() && !without_prometheus {
            let why = "Prometheus is not configured: set [prometheus] url";
            watches::end(tx, change, WatchState::Stopped, Some(why), now).await?;
            watch_event(
                tx,
                "change.watch_stopped",
                environment,
                change,
                json!({ "reason": why }),
            )
            .await?;
        } else {
            let at = self.clock.now()
                + chrono::Duration::from_std(self.settings.apply.watch_interval)
                    .unwrap_or_default();
            let job = Job::Watch {
                change,
                environment: environment.to_owned(),
                at,
            };
            let tries = JobKind::Watch.retry().attempts;
            jobs::enqueue(tx, &job, tries, "system", self.clock.now()).await?;
        }
        Ok(Some(watch.minutes))
    }

    /// A watch job: evaluates the watch of `change` once, and again every `[apply]
    /// watch_interval_secs` until it ends (clean, stopped, or degraded).
    pub(crate) async fn watch_job(&self, change: ChangeId) -> Outcome {
        let row = async {
            let mut conn = self.store.pool().acquire().await?;
            watches::get(&mut conn, change).await
        }
        .await;
        let w = match row {
            Ok(Some(w)) if w.state == WatchState::Watching.as_str() => w,
            Ok(_) => return Outcome::Done,
            Err(e) => return Outcome::Retry(format!("reading the watch of change {change}: {e}")),
        };
        match self.evaluate_watch(&w).await {
            Ok(true) => Outcome::Again(self.settings.apply.watch_interval),
            Ok(false) => Outcome::Done,
            Err(e) => outcome_of(&e),
        }
    }

    /// The SLOs watched after `change` (see [`watched`]), and those it brings ([`introduced`]).
    async fn watched_spec(&self, change: &Change) -> ServiceResult<(EnvironmentSpec, Vec<String>)> {
        let (spec, base) = self
            .specs
            .specs_at(
                &change.environment,
                &change.commit.sha,
                change.base_commit.clone(),
            )
            .await?;
        let brought = introduced(&spec, base.spec());
        Ok((watched(EnvironmentSpec::clone(&spec), base.spec()), brought))
    }

    /// When a page alert fires as an apply of `spec` (over `base`) starts: the 5-minute burn
    /// rate then, which the watch after it must exceed by [`domain::slo::WORSE_THAN_BEFORE`] to
    /// call the change degraded. `None`: none fires, or the SLOs cannot be read now.
    pub(crate) async fn burn_before(
        &self,
        spec: &EnvironmentSpec,
        base: Option<&EnvironmentSpec>,
    ) -> Option<f64> {
        let spec = watched(spec.clone(), base);
        if spec.slos.is_empty() || self.slo.unreadable(&spec).is_some() {
            return None;
        }
        match self.slo.slo_statuses(&spec, None).await {
            Ok(statuses) => {
                let r = domain::slo::watch_reading(&statuses);
                r.alert.and(r.burn_now)
            }
            Err(_) => None,
        }
    }

    /// The burn-rate alerts of the SLOs watched after `change` (see [`watched`]), read now:
    /// what the watch after an apply and a rollout's bake both judge by.
    pub(crate) async fn reading(&self, change: &Change) -> Result<WatchReading, String> {
        match self.watched_spec(change).await {
            Ok((spec, _)) if spec.slos.is_empty() => Err("the environment has no SLOs".to_owned()),
            Ok((spec, brought)) => self
                .slo
                .slo_statuses(&spec, None)
                .await
                .and_then(|s| domain::slo::watch_outcome(&s, &brought)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Evaluates a watch once; whether it goes on.
    async fn evaluate_watch(&self, w: &WatchRow) -> ServiceResult<bool> {
        let id = ChangeId(w.change_id);
        let change = self.specs.change(id).await?;
        let reading = self.reading(&change).await;
        let now = self.clock.now_text();
        let over = chrono::DateTime::parse_from_rfc3339(&w.until_at)
            .map_or(true, |until| self.clock.now() >= until);
        let (burn, why, alert) = match &reading {
            Ok(r) if domain::slo::alert_is_new(r, w.burn_before) => (r.burn, None, r.alert.clone()),
            // Firing before the apply and no worse: the change may well be the fix.
            Ok(WatchReading {
                burn,
                alert: Some(alert),
                ..
            }) => (
                *burn,
                Some(format!(
                    "{alert} was already firing when the apply started (burning {:.1}× over 5 m): the change is degraded only if that rises by a fifth",
                    w.burn_before.unwrap_or_default()
                )),
                None,
            ),
            Ok(r) => (r.burn, None, None),
            Err(e) => (None, Some(format!("the SLOs could not be read: {e}")), None),
        };
        let mut tx = self.store.begin_write().await?;
        if !watches::evaluated(&mut tx, id, &now, burn, why.as_deref()).await? {
            return Ok(false);
        }
        if let Some(alert) = alert {
            tx.commit().await?;
            self.degrade(&change, w, &alert, burn).await?;
            return Ok(false);
        }
        if over {
            let state = if reading.is_ok() {
                WatchState::Clean
            } else {
                WatchState::Stopped
            };
            watches::end(&mut tx, id, state, why.as_deref(), &now).await?;
            let action = match state {
                WatchState::Clean => "change.watch_clean",
                _ => "change.watch_stopped",
            };
            watch_event(
                &mut tx,
                action,
                &change.environment,
                id,
                json!({ "minutes": w.minutes, "evaluations": w.evaluations + 1, "burn": burn, "reason": why }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(!over)
    }

    /// A page-level alert during the watch, in one transaction: the change is `degraded`
    /// (audited, notified with the burn rate), a revert is recorded with the job that plans it,
    /// and, when the rules say `watch.auto_revert`, the job that applies it at once. A revert
    /// that cannot be applied then is refused to a person by that job, never only logged.
    async fn degrade(
        &self,
        change: &Change,
        w: &WatchRow,
        alert: &str,
        burn: Option<f64>,
    ) -> ServiceResult<()> {
        let meta = RequestMeta::default();
        let burn_text = burn
            .map(|b| format!("{b:.1}×"))
            .unwrap_or_else(|| "—".into());
        // A revert that degrades is not reverted in turn: that would flap between two
        // commits while the cause may be elsewhere. People decide.
        let prepared = match change.kind {
            ChangeKind::Revert => Err(ServiceError::Conflict(
                "it is itself a revert, which tierdeck never reverts by itself".into(),
            )),
            _ => {
                self.reverts
                    .prepare_revert(&Caller::System, change.id, Some(alert))
                    .await
            }
        };
        if let Err(ServiceError::Internal(e)) = prepared {
            return Err(ServiceError::Internal(e));
        }
        let now = self.clock.now_text();
        let mut tx = self.store.begin_write().await?;
        if !watches::end(&mut tx, change.id, WatchState::Degraded, Some(alert), &now).await? {
            return Ok(());
        }
        let current = changes::get(&mut tx, change.id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no change {}", change.id)))?;
        changes::transition(
            &mut tx,
            &current,
            Event::Degrade,
            None,
            Audit {
                actor: Actor::system(),
                meta: &meta,
                detail: json!({ "alert": alert, "burn": burn, "watch_minutes": w.minutes }),
            },
            &now,
        )
        .await?;
        let revert = match &prepared {
            Ok(p) => {
                self.reverts
                    .write_revert(&mut tx, &Caller::System, &meta, p, &now)
                    .await
            }
            Err(e) => Err(ServiceError::Conflict(e.to_string())),
        };
        if let Err(ServiceError::Internal(e)) = revert {
            return Err(ServiceError::Internal(e));
        }
        let then = match &revert {
            Ok(r) if w.auto_revert != 0 => {
                let reason = format!(
                    "auto-revert: the watch after change #{} saw {alert} (burn {burn_text})",
                    change.id
                );
                let job = Job::AutoApply {
                    change: r.id,
                    environment: r.environment.clone(),
                    reason: Some(reason),
                };
                let tries = JobKind::AutoApply.retry().attempts;
                jobs::enqueue(&mut tx, &job, tries, "system", self.clock.now()).await?;
                format!(
                    "Revert #{} is being applied (auto-revert); if it cannot be, you will be told why.",
                    r.id
                )
            }
            Ok(r) => format!("Revert #{} waits for approval.", r.id),
            Err(e) => format!("No revert is recorded: {e}."),
        };
        if let Ok(r) = &revert {
            watches::set_revert(&mut tx, change.id, r.id).await?;
        }
        let text = format!(
            "change #{} ({}) is DEGRADED: the watch after its apply saw {alert}, burning {burn_text} the error budget. {then}{}",
            change.id,
            change.environment,
            self.notifications.change_link(change.id)
        );
        self.notifications
            .queue_notification(
                &mut tx,
                "degraded",
                Some(&change.environment),
                Some(&current),
                &text,
            )
            .await?;
        tx.commit().await?;
        self.jobs_waker.wake();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use domain::change::{ChangeId, ChangeKind, ChangeStatus};

    use crate::auth::{Caller, RequestMeta};
    use crate::testing::{TestEngine, SHOP};

    async fn apply(t: &TestEngine, id: ChangeId) {
        t.drain().await;
        t.engine
            .applies()
            .apply_change(&Caller::System, &RequestMeta::default(), id, None)
            .await
            .expect("the apply starts");
        t.drain().await;
        assert_eq!(t.change(id).await.status, ChangeStatus::Applied);
    }

    /// The shop applied, then a second change applied on top of it; returns the second.
    async fn second_change_applied(t: &TestEngine) -> ChangeId {
        let first = *t.sync().await.changes.last().unwrap();
        apply(t, first).await;
        let sha = t.edit(
            "environments/shop/autoscaling.yaml",
            "    max: 4\n",
            "    max: 6\n",
            "Up to six web servers",
        );
        t.sync().await;
        let id = t.change_for("shop", &sha).await;
        apply(t, id).await;
        assert_eq!(t.aws.state().groups["shop-web"].max, 6);
        id
    }

    /// The revert recorded for `id`.
    async fn revert_of(t: &TestEngine, id: ChangeId) -> ChangeId {
        let mut conn = t.engine.store.pool().acquire().await.unwrap();
        let (r,): (i64,) = sqlx::query_as("SELECT id FROM changes WHERE reverts = $1")
            .bind(id.0)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        ChangeId(r)
    }

    #[tokio::test]
    async fn a_quiet_watch_ends_clean_when_its_minutes_are_over() {
        let t = TestEngine::new(SHOP).await;
        let id = second_change_applied(&t).await;
        for _ in 0..11 {
            t.advance(chrono::Duration::seconds(61));
            t.drain().await;
        }
        let mut conn = t.engine.store.pool().acquire().await.unwrap();
        let w = crate::store::watches::get(&mut conn, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(w.state, "clean");
        assert!(w.evaluations >= 10, "every minute: {}", w.evaluations);
        assert_eq!(t.change(id).await.status, ChangeStatus::Applied);
        assert!(t
            .jobs_of(id)
            .await
            .contains(&("watch".to_owned(), "done".to_owned())));
    }

    #[tokio::test]
    async fn a_page_alert_after_an_apply_degrades_it_and_its_revert_applies_itself() {
        let t = TestEngine::new(SHOP).await;
        let id = second_change_applied(&t).await;

        // Half the requests fail: a burn of 500× the budget, a page alert on every window.
        t.prom.answer(0.5);
        t.advance(chrono::Duration::seconds(61));
        t.drain().await;

        assert_eq!(t.change(id).await.status, ChangeStatus::Degraded);
        let revert = revert_of(&t, id).await;
        let r = t.change(revert).await;
        assert_eq!(r.kind, ChangeKind::Revert);
        assert_eq!(
            r.status,
            ChangeStatus::Applied,
            "applied at once (auto-revert)"
        );
        assert_eq!(t.aws.state().groups["shop-web"].max, 4, "back as it was");
        let jobs = t.jobs_of(revert).await;
        for kind in ["plan", "auto_apply", "apply"] {
            assert!(
                jobs.iter().any(|(k, s)| k == kind && s == "done"),
                "{kind}: {jobs:?}"
            );
        }
        let actions = t.audit_actions().await;
        for a in [
            "change.degraded",
            "change.revert_created",
            "change.emergency_apply",
        ] {
            assert!(actions.iter().any(|x| x == a), "{a}: {actions:?}");
        }
    }

    #[tokio::test]
    async fn an_automatic_revert_that_cannot_be_applied_is_told_to_people_not_only_logged() {
        let t = TestEngine::with_settings(SHOP, |s| {
            s.notify.webhook_url = Some("http://127.0.0.1:9/hook".into());
        })
        .await;
        let id = second_change_applied(&t).await;
        // The group is gone behind tierdeck's back: the revert's plan has an error.
        t.aws.state().groups.remove("shop-web");
        t.prom.answer(0.5);
        t.advance(chrono::Duration::seconds(61));
        t.drain().await;

        assert_eq!(t.change(id).await.status, ChangeStatus::Degraded);
        let revert = revert_of(&t, id).await;
        assert_ne!(t.change(revert).await.status, ChangeStatus::Applied);
        let jobs = t.jobs_of(revert).await;
        assert!(
            jobs.contains(&("auto_apply".to_owned(), "failed".to_owned())),
            "{jobs:?}"
        );
        let actions = t.audit_actions().await;
        assert!(
            actions.iter().any(|a| a == "change.apply_refused"),
            "{actions:?}"
        );
        assert!(actions.iter().any(|a| a == "job.failed"), "{actions:?}");
        // The degraded notice promised nothing it could not keep; the refusal has its own.
        let mut conn = t.engine.store.pool().acquire().await.unwrap();
        let texts: Vec<String> = sqlx::query_scalar("SELECT body FROM notifications ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let degraded = texts.iter().find(|b| b.contains("DEGRADED")).unwrap();
        assert!(
            degraded
                .contains("is being applied (auto-revert); if it cannot be, you will be told why"),
            "{degraded}"
        );
        assert!(
            texts.iter().any(|b| b.contains(&format!(
                "could not apply the change by itself for change #{revert}"
            )) && b.contains("It waits for a person")),
            "{texts:#?}"
        );
    }
}
