//! Changes: the list with filters, and one change with its commit, diffs and errors.

use std::time::Duration;

use domain::change::{
    ApplyRun, ChangeDetail, ChangeKind, ChangeStatus, ChangeSummary, FileDiff, FileStatus,
    PlanView, StepStatus,
};
use domain::spec::EditKind;
use domain::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{load_apply_state, load_change, load_changes, ApplyChange, ReplanChange};
use crate::components::{
    file_anchor, short, utc, ActionResult, ErrorBox, Operations, SpecErrors, StatusBadge,
};
use crate::CurrentUser;

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
                                <td><StatusBadge status=c.status /></td>
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
        Some(PlanView::Planned { plan, read_ms }) => {
            let summary = format!(
                "{} operation{}; live state read in {read_ms} ms; plan hash {}.",
                plan.operations.len(),
                if plan.operations.len() == 1 { "" } else { "s" },
                plan.hash.chars().take(12).collect::<String>()
            );
            view! {
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
                        {run.steps.into_iter().map(|s| view! {
                            <tr class=format!("step step-{}", s.status)>
                                <td class="num">{s.position}</td>
                                <td>
                                    <span class="resource">{s.operation.resource}</span> ": " <code>{s.operation.change}</code>
                                    {s.error.map(|e| view! { <br /><span class="step-error">{e}</span> })}
                                </td>
                                <td class="muted">{s.operation.aws_call}</td>
                                <td><span class=format!("badge step-{}", s.status)>{s.status.to_string()}</span></td>
                                <td class="num">{s.attempts}</td>
                                <td><code>{s.request_id.unwrap_or_default()}</code></td>
                            </tr>
                        }).collect_view()}
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
    may_apply: bool,
    apply: ServerAction<ApplyChange>,
    finished: RwSignal<u32>,
) -> impl IntoView {
    let tick = RwSignal::new(0u32);
    let state = Resource::new(
        move || (apply.version().get(), tick.get()),
        move |_| load_apply_state(id),
    );
    // While steps run, ask again every second; when the run ends, reload the whole change.
    let was_running = StoredValue::new(false);
    Effect::new(move |_| {
        let running = state
            .get()
            .and_then(Result::ok)
            .is_some_and(|s| s.status == ChangeStatus::Applying);
        if running {
            set_timeout(move || tick.update(|t| *t += 1), Duration::from_secs(1));
        } else if was_running.get_value() {
            finished.update(|f| *f += 1);
        }
        was_running.set_value(running);
    });
    view! {
        <ActionResult value=Signal::derive(move || apply.value().get()) ok=|run: i64| format!("Apply started (run {run}); the steps below follow it.") />
        <Transition fallback=|| view! { <p aria-busy="true">"Loading the apply…"</p> }>
            {move || Suspend::new(async move {
                match state.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(s) => {
                        let can_apply = may_apply && matches!(
                            s.status,
                            ChangeStatus::Pending | ChangeStatus::Approved | ChangeStatus::Failed | ChangeStatus::Interrupted
                        );
                        let again = matches!(s.status, ChangeStatus::Failed | ChangeStatus::Interrupted);
                        view! {
                            {can_apply.then(|| view! {
                                <ActionForm action=apply attr:class="inline">
                                    <input type="hidden" name="id" value=id.to_string() />
                                    <button type="submit">{if again { "Apply again" } else { "Apply" }}</button>
                                </ActionForm>
                                {again.then(|| view! { <p class="muted">"Plan again first: the plan shows what is left, and an apply only runs the plan you see."</p> })}
                            })}
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
    let finished = RwSignal::new(0u32);
    let may_apply = use_context::<CurrentUser>()
        .and_then(|c| c.0)
        .is_some_and(|m| m.role >= Role::Operator);
    let detail = Resource::new(
        move || {
            (
                id(),
                replan.version().get(),
                apply.version().get(),
                finished.get(),
            )
        },
        |(id, ..)| load_change(id),
    );
    view! {
        <Suspense fallback=|| view! { <p aria-busy="true">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="Change" /><h1>"Change"</h1><ErrorBox error=e /> }.into_any(),
                    Ok(ChangeDetail { summary, base_commit, files, semantic_diff, spec_errors, superseded_by, plan, planned_at, apply: _, runs: _ }) => {
                        let c = summary.commit.clone();
                        let change_id = summary.id;
                        let open = !matches!(summary.status, ChangeStatus::Applied | ChangeStatus::Superseded | ChangeStatus::Rejected | ChangeStatus::Invalid);
                        let reconcile = summary.kind == ChangeKind::Reconcile;
                        view! {
                            <Title text=format!("Change {}", summary.id) />
                            <h1>"Change #" {summary.id} " · " <a href=format!("/environments/{}", summary.environment)>{summary.environment.clone()}</a> " " <StatusBadge status=summary.status /></h1>
                            {superseded_by.map(|by| view! {
                                <p class="notice" role="status">"Superseded by a newer commit: " <a href=format!("/changes/{by}")>"change #" {by}</a> "."</p>
                            })}
                            {reconcile.then(|| view! {
                                <p class="notice" role="status">"A reconcile: it applies the last applied commit again to undo drift, as " {c.author_name.clone()} " asked."</p>
                            })}
                            <section class="card commit" aria-labelledby="commit-h">
                                <h2 id="commit-h">"Commit " <code>{short(&c.sha)}</code></h2>
                                <p>{c.author_name.clone()} " <" {c.author_email.clone()} "> · " {c.committed_at.replace('T', " ").trim_end_matches('Z').to_owned()} " UTC"</p>
                                <pre class="message">{c.message.clone()}</pre>
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
                            <section class="card" aria-labelledby="apply-h">
                                <h2 id="apply-h">"Apply"</h2>
                                <ApplySection id=change_id may_apply apply finished />
                            </section>
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
