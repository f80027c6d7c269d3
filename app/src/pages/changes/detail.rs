//! One change: its commit, what it changes, its plan, the rules that judge it, its reviews, its
//! apply and its files' diffs.

use domain::change::{
    ApplyState, ChangeDetail, ChangeKind, ChangeStatus, FileDiff, FileStatus, PlanView,
};
use domain::spec::EditKind;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::apply::{ApplySection, RevertSection};
use super::review::ReviewPanel;
use crate::api::{
    load_change, ApplyChange, ApproveChange, CommentChange, RejectChange, ReplanChange,
    RevertChange,
};
use crate::components::{
    file_anchor, short, utc, ActionResult, ErrorBox, Loaded, Operations, SpecErrors, StatusBadge,
};
use crate::resource::{reloaded, resource};

/// Files with more diff lines than this start folded.
const FOLD_LINES: usize = 300;

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
fn PlanSection(
    plan: Option<PlanView>,
    planned_at: Option<chrono::DateTime<chrono::Utc>>,
) -> impl IntoView {
    let when = planned_at.map(|t| format!(" Planned at {} UTC.", utc(&t)));
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

/// The paths between tiers the change opens and closes, one sentence each.
#[component]
fn ReachabilitySection(
    changes: Vec<domain::reachability::ReachChange>,
    /// The environment was never applied: every path is new.
    first: bool,
) -> impl IntoView {
    use domain::reachability::ReachChangeKind;
    view! {
        <section class="card" aria-labelledby="reach-h">
            <h2 id="reach-h">"Who reaches which tier: what this change opens and closes"</h2>
            {first.then(|| view! { <p class="muted">"This environment was never applied: against nothing, every path of this spec opens."</p> })}
            {if changes.is_empty() {
                view! { <p class="muted">"It edits the network's rules, but no path between tiers, blocks or the internet opens or closes: what both layers let through stays the same."</p> }.into_any()
            } else {
                view! {
                    <ul class="reach-changes">{changes.into_iter().map(|c| {
                        let kind = match c.kind {
                            ReachChangeKind::Opened => "opened",
                            ReachChangeKind::Closed => "closed",
                            ReachChangeKind::AnswersDropped => "answers-dropped",
                            ReachChangeKind::AnswersRestored => "answers-restored",
                        };
                        let class = if c.off_chain { format!("{kind} off-chain") } else { kind.to_owned() };
                        view! { <li class=class>{c.sentence}{c.off_chain.then_some(" (off the chain)")}</li> }
                    }).collect_view()}</ul>
                }.into_any()
            }}
        </section>
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
    let detail = resource(id, load_change);
    view! {
        <Loaded resource=detail title="Change" let:detail>
            {
                // A change's files never change: rendered here, they stay out of the island's
                // props (its biggest part) and out of the wasm.
                let mut detail = detail;
                let files = std::mem::take(&mut detail.files);
                view! {
                    <Title text=format!("Change {}", detail.summary.id) />
                    <ChangeLive detail />
                    <section aria-labelledby="files-h">
                        <h2 id="files-h">"Files (" {files.len()} ")"</h2>
                        {files.into_iter().map(|file| view! { <FileDiffView file /> }).collect_view()}
                    </section>
                }
            }
        </Loaded>
    }
}

/// The forms of a change's page, and the count of applies seen to end (each loads it again).
#[derive(Clone, Copy)]
struct Forms {
    apply: ServerAction<ApplyChange>,
    replan: ServerAction<ReplanChange>,
    approve: ServerAction<ApproveChange>,
    reject: ServerAction<RejectChange>,
    comment: ServerAction<CommentChange>,
    revert: ServerAction<RevertChange>,
    finished: RwSignal<u32>,
}

/// The change's page between its title and its files, live in the browser: loaded again after
/// each of its forms acts and when an apply or its watch ends.
#[island]
fn ChangeLive(detail: ChangeDetail) -> impl IntoView {
    let id = detail.summary.id;
    let forms = Forms {
        apply: ServerAction::new(),
        replan: ServerAction::new(),
        approve: ServerAction::new(),
        reject: ServerAction::new(),
        comment: ServerAction::new(),
        revert: ServerAction::new(),
        finished: RwSignal::new(0),
    };
    let detail = reloaded(
        detail,
        move || {
            (
                forms.approve.version().get()
                    + forms.reject.version().get()
                    + forms.comment.version().get(),
                forms.replan.version().get(),
                forms.apply.version().get(),
                forms.finished.get(),
                forms.revert.version().get(),
            )
        },
        move || load_change(id),
    );
    move || match detail.get() {
        Ok(d) => change_view(d, forms).into_any(),
        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
    }
}

/// The change's page between its title and its files, as `ChangeLive` last loaded it.
fn change_view(
    ChangeDetail {
        summary,
        base_commit,
        files: _,
        semantic_diff,
        spec_errors,
        guardrails,
        superseded_by,
        authors,
        policy,
        approvals,
        actions,
        change_windows,
        plan,
        planned_at,
        apply: latest_run,
        runs,
        schedule,
        cost,
        watch,
        revert,
        jobs,
        reachability,
    }: ChangeDetail,
    Forms {
        apply,
        replan,
        approve,
        reject,
        comment,
        revert: revert_action,
        finished,
    }: Forms,
) -> impl IntoView {
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
    let apply_state = ApplyState {
        status: summary.status,
        apply: latest_run,
        runs,
        watch,
    };
    let open = !matches!(
        summary.status,
        ChangeStatus::Applied
            | ChangeStatus::Superseded
            | ChangeStatus::Rejected
            | ChangeStatus::Invalid
    );
    let reconcile = summary.kind == ChangeKind::Reconcile;
    let reverts = summary
        .reverts
        .filter(|_| summary.kind == ChangeKind::Revert);
    view! {
        <h1>"Change #" {summary.id} " · " <a href=format!("/environments/{}", summary.environment)>{summary.environment.clone()}</a> " " <StatusBadge status=summary.status />{summary.is_policy_change().then(|| view! { " " <span class="badge policy">"policy change"</span> })}</h1>
        {superseded_by.map(|by| view! {
            <p class="notice" role="status">"Superseded by a newer commit: " <a href=format!("/changes/{by}")>"change #" {by}</a> "."</p>
        })}
        {reconcile.then(|| view! {
            <p class="notice" role="status">"A reconcile: it applies the last applied commit again to undo drift, as " {c.author.name.clone()} " asked."</p>
        })}
        {reverts.map(|r| view! {
            <p class="notice" role="status">"A revert of " <a href=format!("/changes/{r}")>"change #" {r}</a> ": it applies again " <code>{short(&c.sha)}</code> ", the commit applied before it, as " {c.author.name.clone()} " asked."</p>
        })}
        <section class="card commit" aria-labelledby="commit-h">
            <h2 id="commit-h">"Commit " <code>{short(&c.sha)}</code></h2>
            <p>{c.author.name.clone()} " <" {c.author.email.clone()} "> · " {utc(&c.committed_at)} " UTC"</p>
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
        {reachability.map(|changes| view! { <ReachabilitySection changes first=base_for_revert.is_none() /> })}
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
            <ApplySection id=change_id environment permission=apply_permission needs_emergency windows=change_windows operations apply finished loaded=apply_state />
        </section>
        {revert.map(|permission| view! {
            <section class="card" aria-labelledby="revert-h">
                <h2 id="revert-h">"Revert"</h2>
                <RevertSection id=change_id base=base_for_revert.clone() permission action=revert_action />
            </section>
        })}
        {(!jobs.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="jobs-h">
                <h2 id="jobs-h">"Background work"</h2>
                <JobList jobs />
            </section>
        })}
    }
}

/// Jobs as a list: what each does, where it stands, its tries and last error.
#[component]
pub fn JobList(jobs: Vec<domain::job::JobView>) -> impl IntoView {
    use domain::job::JobState;
    view! {
        <ul class="jobs">{jobs.into_iter().map(|j| {
            let class = match j.state {
                JobState::Failed => "job failed",
                JobState::Retrying => "job retrying",
                JobState::Done => "job done",
                JobState::Queued | JobState::Running => "job open",
            };
            let when = match (j.state, j.finished_at) {
                (JobState::Done | JobState::Failed, Some(t)) => format!(" · ended {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
                (JobState::Queued | JobState::Retrying, _) => format!(" · next try {}", j.run_after.format("%Y-%m-%d %H:%M:%S UTC")),
                _ => String::new(),
            };
            view! {
                <li class=class><span class="badge">{j.state.as_str()}</span> " " {j.line()}
                    <span class="muted">{format!(" · asked by {}{when}", j.requested_by)}</span></li>
            }
        }).collect_view()}</ul>
    }
}
