//! A change's reviews: who approved, rejected or commented, and the forms to do so.

use domain::approval::{Approvals, ChangeActions, Permission, Verdict};
use leptos::prelude::*;

use crate::api::{ApproveChange, CommentChange, RejectChange};
use crate::components::{utc, ActionResult};

/// Who approved, rejected or commented, and the forms the caller may use.
#[component]
pub(super) fn ReviewPanel(
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
