//! The table of changes, as the change list, the environment page and the overview show it.

use domain::change::ChangeSummary;
use leptos::prelude::*;

use super::StatusBadge;

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
                                <td>{c.commit.author.name.clone()}</td>
                                <td class="num">{if c.spec_error_count > 0 { format!("{} errors", c.spec_error_count) } else { c.edit_count.to_string() }}</td>
                                <td>{super::utc(&c.created_at)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
