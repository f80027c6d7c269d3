//! Changes: the list with filters, and one change with its commit, diffs and errors.

use std::time::Duration;

use domain::approval::{Approvals, ChangeActions, Permission, Verdict};
use domain::change::{
    ApplyRun, ChangeDetail, ChangeKind, ChangeStatus, ChangeSummary, FileDiff, FileStatus,
    PlanView, SettleState, Settling, StepStatus, WatchState, WatchView,
};
use domain::plan::Operation;
use domain::spec::EditKind;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{
    load_apply_state, load_change, load_changes, ApplyChange, ApproveChange, CommentChange,
    RejectChange, ReplanChange, RevertChange,
};
use crate::components::{
    file_anchor, short, utc, ActionResult, ErrorBox, Operations, SpecErrors, StatusBadge,
};

/// Files with more diff lines than this start folded.
const FOLD_LINES: usize = 300;

#[component]
pub fn ChangeTable(changes: Vec<ChangeSummary>) -> impl IntoView {
    if changes.is_empty() {
        return view! { <p class="muted">"No changes."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="changes">
                <thead>
                    <tr>
                        <th scope="col">"#"</th>
                        <th scope="col">"Environment"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Commit"</th>
                        <th scope="col">"Author"</th>
                        <th scope="col">"Edits"</th>
                        <th scope="col">"Recorded (UTC)"</th>
                    </tr>
                </thead>
                <tbody>
                    {changes.into_iter().map(|c| {
                        let href = format!("/changes/{}", c.id);
                        view! {
                            <tr>
                                <td class="num"><a href=href.clone()>{c.id}</a></td>
                                <td>{c.environment.clone()}</td>
                                <td><StatusBadge status=c.status />{c.is_policy_change().then(|| view! { " " <span class="badge policy" title=c.policy_edits.join(", ")>"policy change"</span> })}</td>
                                <td><a href=href><code>{c.commit.short_sha().to_owned()}</code> " " <span class="subject">{c.commit.subject().to_owned()}</span></a></td>
                                <td>{c.commit.author_name.clone()}</td>
                                <td class="num">{if c.errors > 0 { format!("{} errors", c.errors) } else { c.edits.to_string() }}</td>
                                <td>{c.created_at.replace('T', " ").trim_end_matches('Z').to_owned()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
pub fn Changes() -> impl IntoView {
    let query = use_query_map();
    let filters = move || {
        query.with(|q| {
            (
                q.get("env").filter(|s| !s.is_empty()),
                q.get("status").filter(|s| !s.is_empty()),
            )
        })
    };
    let list = Resource::new(filters, |(env, status)| load_changes(env, status));
    let initial = query.get_untracked();
    let env_value = initial.get("env").unwrap_or_default();
    let status_value = initial.get("status").unwrap_or_default();
    view! {
        <Title text="Changes" />
        <h1>"Changes"</h1>
        <form class="filters" method="get" action="/changes" role="search" aria-label="Filter changes">
            <label>"Environment" <input name="env" value=env_value placeholder="prod" /></label>
            <label>"Status"
                <select name="status">
                    <option value="" selected=status_value.is_empty()>"any"</option>
                    {ChangeStatus::ALL.into_iter().map(|s| view! {
                        <option value=s.as_str() selected=status_value == s.as_str()>{s.as_str()}</option>
                    }).collect_view()}
                </select>
            </label>
            <div class="buttons">
                <button type="submit">"Filter"</button>
                <a href="/changes" class="button secondary">"Clear"</a>
            </div>
        </form>
        <Suspense fallback=|| view! { <p aria-busy="true">"Loading changes…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(changes) => view! { <ChangeTable changes /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn FileDiffView(file: FileDiff) -> impl IntoView {
    let lines: Vec<String> = file.diff.lines().map(str::to_owned).collect();
    let open = lines.len() <= FOLD_LINES;
    let status = match file.status {
        FileStatus::Added => "added",
        FileStatus::Modified => "modified",
        FileStatus::Deleted => "deleted",
    };
    view! {
        <details class="file-diff" open=open id=file_anchor(&file.path)>
            <summary>
                <code>{file.path.clone()}</code> " " <span class="muted">{status}</span>
                " " <span class="adds">"+" {file.additions}</span> " " <span class="dels">"−" {file.deletions}</span>
                {(!open).then(|| view! { " " <span class="muted">"(large: folded)"</span> })}
            </summary>
            {if file.binary {
                view! { <p class="muted">"Binary file."</p> }.into_any()
            } else {
                view! {
                    <pre class="diff"><code>{lines.into_iter().map(|l| {
                        let class = if l.starts_with('+') { "add" } else if l.starts_with('-') { "del" } else if l.starts_with("@@") { "hunk" } else { "ctx" };
                        view! { <span class=class>{l}"\n"</span> }
                    }).collect_view()}</code></pre>
                }.into_any()
            }}
            {file.truncated.then(|| view! { <p class="muted">"The diff is cut here; the rest is in git."</p> })}
        </details>
    }
}

#[component]
fn PlanSection(plan: Option<PlanView>, planned_at: Option<String>) -> impl IntoView {
    let when = planned_at.map(|t| {
        format!(
            " Planned at {} UTC.",
            t.replace('T', " ").trim_end_matches('Z')
        )
    });
    match plan {
        None => view! { <p class="muted">"No plan: this change can no longer be applied, or it is still being planned."</p> }.into_any(),
        Some(PlanView::Unavailable { reason }) => view! {
            <p class="notice error" role="alert">"No plan right now: " {reason} "." {when}</p>
        }
        .into_any(),
        Some(PlanView::Planned {
            plan,
            read_ms,
            aws_calls,
        }) => {
            let summary = format!(
                "{} operation{}; live state read in {read_ms} ms with {aws_calls} AWS call{}; plan hash {}.",
                plan.operations.len(),
                if plan.operations.len() == 1 { "" } else { "s" },
                if aws_calls == 1 { "" } else { "s" },
                plan.hash.chars().take(12).collect::<String>()
            );
            let notes = plan.notes.clone();
            view! {
                {(!notes.is_empty()).then(|| view! {
                    <ul class="plan-notes">{notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
                })}
                {if plan.is_empty() {
                    view! { <p>"No changes: AWS already matches this spec."</p> }.into_any()
                } else {
                    view! { <Operations plan /> }.into_any()
                }}
                <p class="muted">{summary} {when}</p>
            }
            .into_any()
        }
    }
}

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

/// The steps of one apply, as they stand.
#[component]
fn ApplySteps(run: ApplyRun) -> impl IntoView {
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
            .as_deref()
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
fn ApplySection(
    id: i64,
    environment: String,
    permission: Option<Permission>,
    needs_emergency: bool,
    windows: String,
    operations: Vec<Operation>,
    apply: ServerAction<ApplyChange>,
    finished: RwSignal<u32>,
    /// The change's status when the page loaded it (its actions were worked out then).
    loaded_status: ChangeStatus,
) -> impl IntoView {
    let confirm = StoredValue::new((environment, windows, operations, permission));
    let tick = RwSignal::new(0u32);
    let state = Resource::new(
        move || (apply.version().get(), tick.get()),
        move |_| load_apply_state(id),
    );
    // While steps run, ask again every second, and every two while the watch after the apply
    // runs; when the run ends, and when the watch ends, reload the whole change (its status and
    // actions change with them). A short apply can end before this section's first look, after
    // the page loaded the change as applying: that counts as an end too.
    let was_running = StoredValue::new(loaded_status == ChangeStatus::Applying);
    let was_watching = StoredValue::new(false);
    Effect::new(move |_| {
        // Nothing to go by until the first answer.
        let Some(Ok(now)) = state.get() else {
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
        <Transition fallback=|| view! { <p aria-busy="true">"Loading the apply…"</p> }>
            {move || Suspend::new(async move {
                match state.await {
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
                                    <ApplySteps run />
                                }.into_any(),
                                None => view! { <p class="muted">"Not applied yet."</p> }.into_any(),
                            }}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// The Revert button of an applied change, or why there is none.
#[component]
fn RevertSection(
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

/// The rules that judge the change and where they come from.
#[component]
fn PolicySection(policy: domain::policy::Policy) -> impl IntoView {
    let g = &policy.guardrails;
    let rules = vec![
        (
            "Approvals",
            format!(
                "{} required{}",
                policy.required_approvals,
                if policy.allow_self_approval {
                    "; authors may approve"
                } else {
                    "; not by its authors"
                }
            ),
        ),
        (
            "Auto-apply",
            if policy.auto_apply {
                "yes, once approved"
            } else {
                "no: an operator applies"
            }
            .to_owned(),
        ),
        (
            "Change windows",
            if policy.windows.is_any_time() {
                "any time".to_owned()
            } else {
                policy.windows.text()
            },
        ),
        (
            "Guardrails",
            format!(
                "{}–{} instances per group{}",
                g.min_instances,
                g.max_instances,
                if g.require_multi_az {
                    ", Multi-AZ databases"
                } else {
                    ""
                }
            ),
        ),
        (
            "Error budget",
            if policy.budget_slos.is_empty() {
                "no availability SLO".to_owned()
            } else {
                policy
                    .budget_slos
                    .iter()
                    .map(|s| format!("{} % over {} days", s.objective, s.window_days))
                    .collect::<Vec<_>>()
                    .join(" and ")
            },
        ),
    ];
    view! {
        <section class="card policy" aria-labelledby="policy-h">
            <h2 id="policy-h">"Rules that judge this change"</h2>
            <ul class="notes">{policy.notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
            <dl class="facts rules">{rules.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}</dl>
        </section>
    }
}

/// Who approved, rejected or commented, and the forms the caller may use.
#[component]
fn ReviewPanel(
    id: i64,
    approvals: Option<Approvals>,
    actions: Option<ChangeActions>,
    approve: ServerAction<ApproveChange>,
    reject: ServerAction<RejectChange>,
    comment: ServerAction<CommentChange>,
) -> impl IntoView {
    let Some(a) = approvals else {
        return view! { <p class="muted">"No reviews: the spec of this change cannot be read."</p> }.into_any();
    };
    let heading = if a.required == 0 {
        "This environment needs no approvals.".to_owned()
    } else {
        format!(
            "{} of {} approval{} of the current plan{}.",
            a.counted,
            a.required,
            if a.required == 1 { "" } else { "s" },
            if a.allow_self_approval {
                ""
            } else {
                "; authors cannot approve their own changes"
            }
        )
    };
    let (approve_ok, reject_ok) = match &actions {
        Some(x) => (x.approve.clone(), x.reject.clone()),
        None => (
            Permission::Denied("Sign in to review.".into()),
            Permission::Denied("Sign in to review.".into()),
        ),
    };
    view! {
        <p class="approvals-count" role="status">{heading}</p>
        {(!a.reviews.is_empty()).then(|| view! {
            <ul class="reviews">{a.reviews.into_iter().map(|r| {
                let verb = match r.verdict { Verdict::Approve => "approved", Verdict::Reject => "rejected", Verdict::Comment => "commented" };
                view! {
                    <li class=format!("review review-{}", r.verdict.as_str())>
                        <strong>{r.user}</strong> " " {verb} " · " {utc(&r.created_at)} " UTC"
                        {r.plan_hash.filter(|_| r.verdict == Verdict::Approve).map(|h| view! { " · plan " <code>{h.chars().take(12).collect::<String>()}</code> })}
                        {r.not_counted.map(|why| view! { " · " <span class="muted">"does not count: " {why}</span> })}
                        {r.comment.map(|c| view! { <blockquote>{c}</blockquote> })}
                    </li>
                }
            }).collect_view()}</ul>
        })}
        <ActionResult value=Signal::derive(move || approve.value().get()) ok=|_: ()| "Approved.".to_owned() />
        <ActionResult value=Signal::derive(move || reject.value().get()) ok=|_: ()| "Rejected.".to_owned() />
        <ActionResult value=Signal::derive(move || comment.value().get()) ok=|_: ()| "Comment added.".to_owned() />
        <div class="review-forms">
            {match approve_ok {
                Permission::Allowed => view! {
                    <ActionForm action=approve attr:class="stack">
                        <input type="hidden" name="id" value=id.to_string() />
                        <label>"Comment (optional)" <textarea name="comment" rows="2"></textarea></label>
                        <div class="buttons"><button type="submit">"Approve this plan"</button></div>
                    </ActionForm>
                }.into_any(),
                Permission::Denied(why) => view! { <p class="muted why-not">"Approve: " {why}</p> }.into_any(),
            }}
            {match reject_ok {
                Permission::Allowed => view! {
                    <ActionForm action=reject attr:class="stack">
                        <input type="hidden" name="id" value=id.to_string() />
                        <label>"Reason for rejecting" <textarea name="reason" rows="2" required=true></textarea></label>
                        <div class="buttons"><button type="submit" class="secondary">"Reject"</button></div>
                    </ActionForm>
                }.into_any(),
                Permission::Denied(why) => view! { <p class="muted why-not">"Reject: " {why}</p> }.into_any(),
            }}
            <ActionForm action=comment attr:class="stack">
                <input type="hidden" name="id" value=id.to_string() />
                <label>"Comment" <textarea name="comment" rows="2" required=true></textarea></label>
                <div class="buttons"><button type="submit" class="secondary">"Add comment"</button></div>
            </ActionForm>
        </div>
    }
    .into_any()
}

#[component]
pub fn Change() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params.with(|p| {
            p.get("id")
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(-1)
        })
    };
    let apply = ServerAction::<ApplyChange>::new();
    let replan = ServerAction::<ReplanChange>::new();
    let approve = ServerAction::<ApproveChange>::new();
    let reject = ServerAction::<RejectChange>::new();
    let comment = ServerAction::<CommentChange>::new();
    let revert_action = ServerAction::<RevertChange>::new();
    let finished = RwSignal::new(0u32);
    let detail = Resource::new(
        move || {
            (
                id(),
                approve.version().get() + reject.version().get() + comment.version().get(),
                replan.version().get(),
                apply.version().get(),
                finished.get(),
                revert_action.version().get(),
            )
        },
        |(id, ..)| load_change(id),
    );
    view! {
        <Suspense fallback=|| view! { <p aria-busy="true">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="Change" /><h1>"Change"</h1><ErrorBox error=e /> }.into_any(),
                    Ok(ChangeDetail { summary, base_commit, files, semantic_diff, spec_errors, guardrails, superseded_by, authors, policy, approvals, actions, change_windows, plan, planned_at, apply: _, runs: _, schedule, cost, watch: _, revert }) => {
                        let base_for_revert = base_commit.clone();
                        let operations = match &plan {
                            Some(PlanView::Planned { plan, .. }) => plan.operations.clone(),
                            _ => Vec::new(),
                        };
                        let apply_permission = actions.as_ref().map(|a| a.apply.clone());
                        let needs_emergency = actions.as_ref().is_some_and(|a| a.apply_needs_emergency);
                        let environment = summary.environment.clone();
                        let c = summary.commit.clone();
                        let change_id = summary.id;
                        let open = !matches!(summary.status, ChangeStatus::Applied | ChangeStatus::Superseded | ChangeStatus::Rejected | ChangeStatus::Invalid);
                        let reconcile = summary.kind == ChangeKind::Reconcile;
                        let reverts = summary.reverts.filter(|_| summary.kind == ChangeKind::Revert);
                        view! {
                            <Title text=format!("Change {}", summary.id) />
                            <h1>"Change #" {summary.id} " · " <a href=format!("/environments/{}", summary.environment)>{summary.environment.clone()}</a> " " <StatusBadge status=summary.status />{summary.is_policy_change().then(|| view! { " " <span class="badge policy">"policy change"</span> })}</h1>
                            {superseded_by.map(|by| view! {
                                <p class="notice" role="status">"Superseded by a newer commit: " <a href=format!("/changes/{by}")>"change #" {by}</a> "."</p>
                            })}
                            {reconcile.then(|| view! {
                                <p class="notice" role="status">"A reconcile: it applies the last applied commit again to undo drift, as " {c.author_name.clone()} " asked."</p>
                            })}
                            {reverts.map(|r| view! {
                                <p class="notice" role="status">"A revert of " <a href=format!("/changes/{r}")>"change #" {r}</a> ": it applies again " <code>{short(&c.sha)}</code> ", the commit applied before it, as " {c.author_name.clone()} " asked."</p>
                            })}
                            <section class="card commit" aria-labelledby="commit-h">
                                <h2 id="commit-h">"Commit " <code>{short(&c.sha)}</code></h2>
                                <p>{c.author_name.clone()} " <" {c.author_email.clone()} "> · " {c.committed_at.replace('T', " ").trim_end_matches('Z').to_owned()} " UTC"</p>
                                <pre class="message">{c.message.clone()}</pre>
                                {(!authors.is_empty()).then(|| view! {
                                    <p class="authors">"Authors (everyone who wrote or committed a commit of this environment since the last apply): "
                                        {authors.iter().map(|a| format!("{} <{}>", a.name, a.email)).collect::<Vec<_>>().join(", ")}
                                    </p>
                                })}
                                <p class="muted">"Compared with " {match base_commit {
                                    Some(b) => format!("the last applied commit {}", short(&b)),
                                    None => "nothing: this environment was never applied".to_owned(),
                                }} "."</p>
                            </section>
                            {(!spec_errors.is_empty()).then(|| view! {
                                <section class="card" aria-labelledby="errors-h">
                                    <h2 id="errors-h">"Spec errors"</h2>
                                    <p>"This change cannot be approved or applied until a new commit fixes these."</p>
                                    <SpecErrors errors=spec_errors />
                                </section>
                            })}
                            {(!guardrails.is_empty()).then(|| view! {
                                <section class="card" aria-labelledby="guardrails-h">
                                    <h2 id="guardrails-h">"Guardrails broken"</h2>
                                    <p>"This change is blocked: it cannot be approved or applied until a new commit keeps these limits."</p>
                                    <ul class="spec-errors guardrails">{guardrails.into_iter().map(|v| {
                                        let href = format!("#{}", file_anchor(&v.file));
                                        view! {
                                            <li><a href=href rel="external"><code>{format!("{}:{}:{}", v.file, v.line, v.col)}</code></a>
                                            " " <span class="badge">{v.rule}</span> " " {v.message}</li>
                                        }
                                    }).collect_view()}</ul>
                                </section>
                            })}
                            <section class="card" aria-labelledby="semantic-h">
                                <h2 id="semantic-h">"What changes"</h2>
                                {if semantic_diff.is_empty() {
                                    view! { <p class="muted">"No field-level edits."</p> }.into_any()
                                } else {
                                    view! {
                                        <ul class="edits">{semantic_diff.into_iter().map(|e| {
                                            let class = match e.kind { EditKind::Added => "added", EditKind::Removed => "removed", EditKind::Changed => "changed" };
                                            view! { <li class=class><code>{e.to_string()}</code></li> }
                                        }).collect_view()}</ul>
                                    }.into_any()
                                }}
                            </section>
                            {cost.map(|report| view! { <crate::pages::cost::ChangeCost report /> })}
                            {schedule.map(|pair| view! {
                                <section class="card" aria-labelledby="schedule-h">
                                    <h2 id="schedule-h">"Schedule: the next 24 hours, before and after"</h2>
                                    <div class="side-by-side">
                                        <div>
                                            <h3>"Now (last applied)"</h3>
                                            {match pair.before {
                                                Some(p) => view! { <crate::pages::schedule::ScheduleTable preview=p /> }.into_any(),
                                                None => view! { <p class="muted">"Never applied."</p> }.into_any(),
                                            }}
                                        </div>
                                        <div>
                                            <h3>"With this change"</h3>
                                            <crate::pages::schedule::ScheduleTable preview=pair.after />
                                        </div>
                                    </div>
                                </section>
                            })}
                            <section class="card" aria-labelledby="plan-h">
                                <h2 id="plan-h">"Plan against live AWS"</h2>
                                <PlanSection plan planned_at />
                                {open.then(|| view! {
                                    <ActionResult value=Signal::derive(move || replan.value().get()) ok=|_: ()| "Planned again.".to_owned() />
                                    <ActionForm action=replan attr:class="inline">
                                        <input type="hidden" name="id" value=change_id.to_string() />
                                        <button type="submit" class="secondary">"Plan again"</button>
                                    </ActionForm>
                                })}
                            </section>
                            {policy.map(|p| view! { <PolicySection policy=p /> })}
                            <section class="card" aria-labelledby="reviews-h">
                                <h2 id="reviews-h">"Approvals"</h2>
                                <ReviewPanel id=change_id approvals actions approve reject comment />
                            </section>
                            <section class="card" aria-labelledby="apply-h">
                                <h2 id="apply-h">"Apply"</h2>
                                <ApplySection id=change_id environment permission=apply_permission needs_emergency windows=change_windows operations apply finished loaded_status=summary.status />
                            </section>
                            {revert.map(|permission| view! {
                                <section class="card" aria-labelledby="revert-h">
                                    <h2 id="revert-h">"Revert"</h2>
                                    <RevertSection id=change_id base=base_for_revert.clone() permission action=revert_action />
                                </section>
                            })}
                            <section aria-labelledby="files-h">
                                <h2 id="files-h">"Files (" {files.len()} ")"</h2>
                                {files.into_iter().map(|file| view! { <FileDiffView file /> }).collect_view()}
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
