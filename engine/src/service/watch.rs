//! The watch after an apply: for `environment.watch.minutes` the environment's SLO burn-rate
//! alerts (the multi-window rules of `domain::slo`) are evaluated every `[apply]
//! watch_interval_secs`. A page-level alert marks the change `degraded`, records a revert
//! change and, when the rules say `watch.auto_revert`, applies it at once as `system`.

use chrono::Utc;
use domain::change::{ChangeId, ChangeKind, WatchState};
use domain::lifecycle::Event;
use domain::slo::WatchReading;
use domain::spec::{EnvironmentSpec, Watch};
use serde_json::json;

use crate::auth::{Actor, Caller, RequestMeta};
use crate::error::{ServiceError, ServiceResult};
use crate::store::audit::{append, NewEvent};
use crate::store::changes::{self, Audit, Change};
use crate::store::watches::{self, WatchRow};
use crate::store::{format_time, now_text};

async fn watch_event(
    tx: &mut sqlx::SqliteConnection,
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

crate::service::handle!(
    /// The SLO watch after an apply.
    Watches
);

impl Watches<'_> {
    /// Starts the watch of `change`, just applied, in the apply's transaction; a newer apply
    /// ends the watches of the environment before it. Returns the minutes watched (`None`: no
    /// watch).
    pub(crate) async fn start_watch(
        &self,
        tx: &mut sqlx::SqliteConnection,
        change: ChangeId,
        environment: &str,
        watch: Watch,
        burn_before: Option<f64>,
        now: &str,
    ) -> ServiceResult<Option<u32>> {
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
        let until = format_time(Utc::now() + chrono::Duration::minutes(i64::from(watch.minutes)));
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
        if self.prometheus.is_none() {
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
        }
        Ok(Some(watch.minutes))
    }

    /// Evaluates every running watch once every `interval`.
    pub async fn watch_poller(self) {
        let mut tick = tokio::time::interval(self.settings.apply.watch_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.evaluate_watches().await {
                tracing::warn!(error = %e, "watch evaluations failed");
            }
        }
    }

    pub async fn evaluate_watches(&self) -> ServiceResult<()> {
        let rows = {
            let mut conn = self.store.pool().acquire().await?;
            watches::watching(&mut conn).await?
        };
        for w in rows {
            if let Err(e) = self.evaluate_watch(&w).await {
                tracing::warn!(change = w.change_id, error = %e, "a watch evaluation failed");
            }
        }
        Ok(())
    }

    /// The SLOs watched after `change` (see [`watched`]).
    async fn watched_spec(&self, change: &Change) -> ServiceResult<EnvironmentSpec> {
        let (spec, base) = self
            .plans()
            .specs_at(
                &change.environment,
                &change.commit.sha,
                change.base_commit.clone(),
            )
            .await?;
        Ok(watched(spec, base.spec()))
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
        if spec.slos.is_empty() || self.prometheus.is_none() {
            return None;
        }
        match self.slo().slo_statuses(&spec, None).await {
            Ok(statuses) => {
                let r = domain::slo::watch_reading(&statuses);
                r.alert.and(r.burn_now)
            }
            Err(_) => None,
        }
    }

    async fn evaluate_watch(&self, w: &WatchRow) -> ServiceResult<()> {
        let id = ChangeId(w.change_id);
        let change = self.plans().change(id).await?;
        let reading = match self.watched_spec(&change).await {
            Ok(spec) if spec.slos.is_empty() => Err("the environment has no SLOs".to_owned()),
            Ok(spec) => self
                .slo()
                .slo_statuses(&spec, None)
                .await
                .map(|s| domain::slo::watch_reading(&s)),
            Err(e) => Err(e.to_string()),
        };
        let now = now_text();
        let over = chrono::DateTime::parse_from_rfc3339(&w.until_at)
            .map_or(true, |until| Utc::now() >= until);
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
            return Ok(());
        }
        if let Some(alert) = alert {
            tx.commit().await?;
            return self.degrade(&change, w, &alert, burn).await;
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
        Ok(())
    }

    /// A page-level alert during the watch: the change is `degraded` (audited, notified with
    /// the burn rate), a revert is recorded and planned, and applied at once when the rules
    /// say `watch.auto_revert`.
    async fn degrade(
        &self,
        change: &Change,
        w: &WatchRow,
        alert: &str,
        burn: Option<f64>,
    ) -> ServiceResult<()> {
        let meta = RequestMeta::default();
        let now = now_text();
        let burn_text = burn
            .map(|b| format!("{b:.1}×"))
            .unwrap_or_else(|| "—".into());
        {
            let mut tx = self.store.begin_write().await?;
            if !watches::end(&mut tx, change.id, WatchState::Degraded, Some(alert), &now).await? {
                return Ok(());
            }
            changes::transition(
                &mut tx,
                change,
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
            tx.commit().await?;
        }
        // A revert that degrades is not reverted in turn: that would flap between two
        // commits while the cause may be elsewhere. People decide.
        let revert = match change.kind {
            ChangeKind::Revert => Err(ServiceError::Conflict(
                "it is itself a revert, which tierdeck never reverts by itself".into(),
            )),
            _ => {
                self.reverts()
                    .record_revert(&Caller::System, &meta, change.id, Some(alert))
                    .await
            }
        };
        let then = match &revert {
            Ok(r) if w.auto_revert => format!("Revert #{} is applied at once (auto-revert).", r.id),
            Ok(r) => format!("Revert #{} waits for approval.", r.id),
            Err(e) => format!("No revert is recorded: {e}."),
        };
        {
            let mut tx = self.store.begin_write().await?;
            if let Ok(r) = &revert {
                watches::set_revert(&mut tx, change.id, r.id).await?;
            }
            let text = format!(
                "change #{} ({}) is DEGRADED: the watch after its apply saw {alert}, burning {burn_text} the error budget. {then}{}",
                change.id,
                change.environment,
                self.notifications().change_link(change.id)
            );
            self.notifications()
                .queue_notification(
                    &mut tx,
                    "degraded",
                    Some(&change.environment),
                    Some(change),
                    &text,
                )
                .await?;
            tx.commit().await?;
        }
        self.notifications().wake_notifier();
        let Ok(revert) = revert else {
            return Ok(());
        };
        self.plans()
            .refresh_plan(&Caller::System, revert.id)
            .await?;
        if w.auto_revert {
            let reason = format!(
                "auto-revert: the watch after change #{} saw {alert} (burn {burn_text})",
                change.id
            );
            self.applies()
                .apply_change(&Caller::System, &meta, revert.id, Some(&reason))
                .await?;
        }
        Ok(())
    }
}
