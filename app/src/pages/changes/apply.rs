//! A change's apply: the button, the steps of the latest run followed live, the watch after it,
//! and the revert.

use std::time::Duration;

use domain::approval::Permission;
use domain::change::{
    ApplyRun, ApplyState, ChangeStatus, SettleState, Settling, StepStatus, WatchState, WatchView,
};
use domain::plan::Operation;
use leptos::prelude::*;

use crate::api::{load_apply_state, ApplyChange, RevertChange, RolloutAction};
use crate::components::{short, utc, ActionResult, ErrorBox};
use crate::resource::reloaded;

/// What a settling step waits for and how it stands, in words.
fn settle_text(t: &Settling) -> String {
    let polls = format!("{} poll{}", t.polls, if t.polls == 1 { "" } else { "s" });
    let took = t
        .elapsed_ms
        .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
        .unwrap_or_default();
    match t.state {
        SettleState::Settling => format!(
            "settling: waiting for {} (at most {} s); AWS shows {} ({polls} so far)",
            t.waiting_for,
            t.timeout_secs,
            if t.last_seen.is_empty() {
                "nothing yet"
            } else {
                &t.last_seen
            }
        ),
        SettleState::Settled => format!("settled: {} after {took}, {polls}", t.waiting_for),
        SettleState::TimedOut => format!(
            "did not settle within {} s: waiting for {}; AWS still showed {} ({polls})",
            t.timeout_secs, t.waiting_for, t.last_seen
        ),
    }
}

/// The watch of the SLOs after the apply, in words.
#[component]
fn WatchLine(watch: WatchView) -> impl IntoView {
    let burn = watch
        .burn
        .map(|b| format!("burn {b:.1}×"))
        .unwrap_or_else(|| "no traffic to burn".to_owned());
    let text = match watch.state {
        WatchState::Watching => format!(
            "watching — {} of {} minutes, {burn}{}",
            watch.watched_minutes,
            watch.minutes,
            watch
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        WatchState::Clean => format!(
            "watch clean — {} minutes without a page-level SLO alert, last {burn}",
            watch.minutes
        ),
        WatchState::Degraded => format!(
            "degraded — the watch saw {}",
            watch.reason.clone().unwrap_or_default()
        ),
        WatchState::Stopped => format!(
            "watch stopped — {}",
            watch.reason.clone().unwrap_or_default()
        ),
    };
    let revert = watch.revert_change;
    let auto = watch.auto_revert;
    view! {
        <p class="watch" role="status">
            <span class=format!("badge watch-{}", watch.state)>{watch.state.to_string()}</span> " " {text}
            {revert.map(|r| view! {
                " · " <a href=format!("/changes/{r}")>{format!("revert #{r}")}</a>
                {if auto { " (applied at once: auto-revert)" } else { " (waits for approval)" }}
            })}
        </p>
    }
}

/// A running rollout's buttons: Continue now (during a bake), Cancel, Roll back. The server
/// refuses what AWS or the stage would refuse, and says why.
#[component]
fn RolloutButtons(id: i64, action: ServerAction<RolloutAction>) -> impl IntoView {
    let button = move |value: &'static str, label: &'static str, class: &'static str| {
        view! {
            <ActionForm action attr:class="inline rollout-action">
                <input type="hidden" name="id" value=id.to_string() />
                <input type="hidden" name="action" value=value />
                <button type="submit" class=class>{label}</button>
            </ActionForm>
        }
    };
    view! {
        <span class="buttons rollout-buttons">
            {button("continue", "Continue now", "")}
            {button("cancel", "Cancel", "secondary")}
            {button("rollback", "Roll back", "danger")}
        </span>
    }
}

/// The steps of one apply, as they stand.
#[component]
fn ApplySteps(
    run: ApplyRun,
    id: i64,
    /// The rollout buttons' action, for people who may use them.
    rollout: Option<ServerAction<RolloutAction>>,
) -> impl IntoView {
    let done = run.count(StepStatus::Done);
    let total = run.steps.len();
    let heading = format!(
        "Run {} by {} from {} UTC: {} — {done} of {total} step{} done{}",
        run.id,
        run.started_by,
        utc(&run.started_at),
        run.status,
        if total == 1 { "" } else { "s" },
        run.finished_at
            .as_ref()
            .map(|f| format!(", ended {} UTC", utc(f)))
            .unwrap_or_default()
    );
    view! {
        <p class=format!("run run-{}", run.status) role="status">{heading}</p>
        {run.error.map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
        {(total > 0).then(|| view! {
            <div class="table-wrap">
                <table class="steps">
                    <thead>
                        <tr>
                            <th scope="col">"#"</th>
                            <th scope="col">"Operation"</th>
                            <th scope="col">"Call"</th>
                            <th scope="col">"Step"</th>
                            <th scope="col">"Attempts"</th>
                            <th scope="col">"Request id"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {run.steps.into_iter().map(|s| {
                            let settling = s.settling.as_ref().is_some_and(|t| t.state == SettleState::Settling)
                                && s.status == StepStatus::Running;
                            let badge = if settling { "settling".to_owned() } else { s.status.to_string() };
                            view! {
                            <tr class=format!("step step-{}", s.status)>
                                <td class="num">{s.position}</td>
                                <td>
                                    <span class="resource">{s.operation.resource}</span> ": " <code>{s.operation.change}</code>
                                    {s.settling.map(|t| view! { <br /><span class="settle">{settle_text(&t)}</span> })}
                                    {s.rollout.map(|r| {
                                        let live = s.status == StepStatus::Running && !r.phase.is_over();
                                        view! {
                                            <br /><span class="rollout" role="status">{s.rollout_summary.clone().unwrap_or_default()}</span>
                                            {(live && rollout.is_some()).then(|| view! { <br /><RolloutButtons id action=rollout.unwrap() /> })}
                                        }
                                    })}
                                    {s.error.map(|e| view! { <br /><span class="step-error">{e}</span> })}
                                </td>
                                <td class="muted">{s.operation.aws_call}</td>
                                <td><span class=format!("badge step-{badge}")>{badge.clone()}</span></td>
                                <td class="num">{s.attempts}</td>
                                <td><code>{s.request_id.unwrap_or_default()}</code></td>
                            </tr>
                        }}).collect_view()}
                    </tbody>
                </table>
            </div>
        })}
    }
}

/// The apply button and the latest apply's steps, followed live while they run.
#[component]
pub(super) fn ApplySection(
    id: i64,
    environment: String,
    permission: Option<Permission>,
    needs_emergency: bool,
    windows: String,
    operations: Vec<Operation>,
    apply: ServerAction<ApplyChange>,
    finished: RwSignal<u32>,
    /// The apply as the page loaded it with the change (whose actions were worked out then).
    loaded: ApplyState,
) -> impl IntoView {
    let rollout = permission
        .is_some()
        .then(ServerAction::<RolloutAction>::new);
    let confirm = StoredValue::new((environment, windows, operations, permission));
    let tick = RwSignal::new(0u32);
    let loaded_status = loaded.status;
    let state = reloaded(
        loaded,
        move || (apply.version().get(), tick.get()),
        move || load_apply_state(id),
    );
    // While steps run, ask again every second, and every two while the watch after the apply
    // runs; when the run ends, and when the watch ends, reload the whole change (its status and
    // actions change with them). A short apply can end before this section's first look, after
    // the page loaded the change as applying: that counts as an end too.
    let was_running = StoredValue::new(loaded_status == ChangeStatus::Applying);
    let was_watching = StoredValue::new(false);
    Effect::new(move |_| {
        // Nothing to go by after a failed look (the section says why).
        let Ok(now) = state.get() else {
            return;
        };
        let running = now.status == ChangeStatus::Applying;
        let watching = now
            .watch
            .as_ref()
            .is_some_and(|w| w.state == WatchState::Watching);
        if running {
            set_timeout(move || tick.update(|t| *t += 1), Duration::from_secs(1));
        } else if watching {
            set_timeout(move || tick.update(|t| *t += 1), Duration::from_secs(2));
        }
        let ended =
            (was_running.get_value() && !running) || (was_watching.get_value() && !watching);
        if ended {
            finished.update(|f| *f += 1);
        }
        was_running.set_value(running);
        was_watching.set_value(watching);
    });
    view! {
        <ActionResult value=Signal::derive(move || apply.value().get()) ok=|run: i64| format!("Apply started (run {run}); the steps below follow it.") />
        {rollout.map(|r| view! { <ActionResult value=Signal::derive(move || r.value().get()) ok=|m: String| format!("Rollout: {m}.") /> })}
        {move || {
            match state.get() {
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                Ok(s) => {
                    let (env, windows, ops, permission) = confirm.get_value();
                    let can_apply = s.status != ChangeStatus::Applying
                        && permission.as_ref().is_some_and(Permission::allowed);
                    let again = matches!(s.status, ChangeStatus::Failed | ChangeStatus::Interrupted);
                    let why_not = match (&permission, s.status) {
                        (_, ChangeStatus::Applying) => None,
                        (Some(Permission::Denied(why)), _) => Some(why.clone()),
                        _ => None,
                    };
                    let risky: Vec<Operation> = ops.iter().filter(|o| o.risk.is_some()).cloned().collect();
                    view! {
                        {why_not.map(|why| view! { <p class="muted why-not">"Apply: " {why}</p> })}
                        {can_apply.then(|| view! {
                            <ActionForm action=apply attr:class="stack confirm-apply">
                                <input type="hidden" name="id" value=id.to_string() />
                                <p><strong>{format!("Apply {} operation{} to {env}.", ops.len(), if ops.len() == 1 { "" } else { "s" })}</strong>
                                    " tierdeck plans again first and stops if the plan differs from the one above."</p>
                                {(!risky.is_empty()).then(|| view! {
                                    <p>"Risks:"</p>
                                    <ul class="risks">{risky.into_iter().map(|o| view! {
                                        <li><span class="resource">{o.resource}</span> ": " <code>{o.change}</code> " — " <span class="risk">{o.risk.unwrap_or_default()}</span></li>
                                    }).collect_view()}</ul>
                                })}
                                {needs_emergency.then(|| view! {
                                    <p class="notice error" role="alert">"Outside the change windows (" {windows.clone()} "): this is an emergency apply. It is audited and everyone is notified."</p>
                                    <label>"Why it cannot wait" <textarea name="emergency_reason" required=true rows="2"></textarea></label>
                                })}
                                <div class="buttons">
                                    <button type="submit">{match (again, needs_emergency) {
                                        (_, true) => "Apply as an emergency",
                                        (true, false) => "Apply again",
                                        (false, false) => "Apply",
                                    }}</button>
                                </div>
                            </ActionForm>
                            {again.then(|| view! { <p class="muted">"Plan again first: the plan shows what is left, and an apply only runs the plan you see."</p> })}
                        })}
                        {s.watch.map(|watch| view! { <WatchLine watch /> })}
                        {match s.apply {
                            Some(run) => view! {
                                {(s.runs > 1).then(|| view! { <p class="muted">"Applied " {s.runs} " times; the latest run is shown."</p> })}
                                <ApplySteps run id rollout />
                            }.into_any(),
                            None => view! { <p class="muted">"Not applied yet."</p> }.into_any(),
                        }}
                    }.into_any()
                }
            }
        }}
    }
}

/// The Revert button of an applied change, or why there is none.
#[component]
pub(super) fn RevertSection(
    id: i64,
    base: Option<String>,
    permission: Permission,
    action: ServerAction<RevertChange>,
) -> impl IntoView {
    let result = move || {
        action.value().get().map(|r| match r {
            Ok(rid) => view! {
                <p class="notice" role="status">"Recorded the revert: " <a href=format!("/changes/{rid}")>"change #" {rid}</a> ". Review its plan, approve and apply it like any change."</p>
            }
            .into_any(),
            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
        })
    };
    let to = base.as_deref().map(short).unwrap_or_default().to_owned();
    view! {
        {result}
        {match permission {
            Permission::Allowed => view! {
                <ActionForm action attr:class="inline">
                    <input type="hidden" name="id" value=id.to_string() />
                    <p>"A revert is a new change that applies again " <code>{to.clone()}</code> ", the commit applied before this one. It is planned, judged by the applied rules and approved like any change."</p>
                    <button type="submit" class="secondary">{format!("Revert to {to}")}</button>
                </ActionForm>
            }
            .into_any(),
            Permission::Denied(why) => view! { <p class="muted why-not">"Revert: " {why}</p> }.into_any(),
        }}
    }
}
