//! Administration: create users, set their e-mail addresses, change roles, disable and
//! enable, reset passwords.

use domain::user::{TokenSummary, UserSummary};
use domain::Role;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{
    list_all_tokens, list_users, load_cluster, load_jobs, load_notifications, CreateUser,
    ResetPassword, RevokeToken, SetDisabled, SetEmail, SetRole,
};
use crate::components::{utc, ActionResult, ErrorBox, Loaded};
use crate::resource::{reloaded, resource};
use crate::CurrentUser;

#[component]
fn RoleOptions(selected: Role) -> impl IntoView {
    Role::ALL
        .into_iter()
        .map(|r| view! { <option value=r.as_str() selected=r == selected>{r.as_str()}</option> })
        .collect_view()
}

#[component]
fn UserRow(
    user: UserSummary,
    set_email: ServerAction<SetEmail>,
    set_role: ServerAction<SetRole>,
    set_disabled: ServerAction<SetDisabled>,
    reset: ServerAction<ResetPassword>,
) -> impl IntoView {
    // Each form's children own their copy of the name.
    let (n1, n2, n3, n4) = (
        user.name.clone(),
        user.name.clone(),
        user.name.clone(),
        user.name.clone(),
    );
    let status = if user.disabled { "disabled" } else { "active" };
    let toggle_label = if user.disabled { "Enable" } else { "Disable" };
    let role_id = format!("role-{}", user.name);
    let pw_id = format!("pw-{}", user.name);
    let email_id = format!("email-{}", user.name);
    view! {
        <tr class=if user.disabled { "disabled" } else { "" }>
            <th scope="row">{user.name.clone()}</th>
            <td>
                {match user.email.clone() {
                    Some(e) => view! { <span class="email">{e}</span> }.into_any(),
                    None => view! { <span class="muted">"none"</span> }.into_any(),
                }}
                <ActionForm action=set_email attr:class="inline">
                    <input type="hidden" name="name" value=n4.clone() />
                    <label class="visually-hidden" for=email_id.clone()>"New e-mail of " {n4.clone()}</label>
                    <input id=email_id type="email" name="email" required autocomplete="off" placeholder="new address" />
                    <button type="submit" class="secondary">"Set e-mail"</button>
                </ActionForm>
            </td>
            <td>
                <ActionForm action=set_role attr:class="inline">
                    <input type="hidden" name="name" value=n1.clone() />
                    <label class="visually-hidden" for=role_id.clone()>"Role of " {n1.clone()}</label>
                    <select id=role_id name="role"><RoleOptions selected=user.role /></select>
                    <button type="submit" class="secondary">"Set role"</button>
                </ActionForm>
            </td>
            <td>
                <span class=format!("status status-{status}")>{status}</span>
                <ActionForm action=set_disabled attr:class="inline">
                    <input type="hidden" name="name" value=n2.clone() />
                    <input type="hidden" name="disabled" value=(!user.disabled).to_string() />
                    <button type="submit" class="secondary">{toggle_label}</button>
                </ActionForm>
            </td>
            <td>
                <ActionForm action=reset attr:class="inline">
                    <input type="hidden" name="name" value=n3.clone() />
                    <label class="visually-hidden" for=pw_id.clone()>"New password for " {n3.clone()}</label>
                    <input id=pw_id type="password" name="password" autocomplete="new-password" minlength="10" required placeholder="new password" />
                    <button type="submit" class="secondary">"Reset password"</button>
                </ActionForm>
            </td>
        </tr>
    }
}

#[component]
pub fn Admin() -> impl IntoView {
    let is_admin = use_context::<CurrentUser>()
        .and_then(|c| c.0)
        .is_some_and(|me| me.role == Role::Admin);
    view! {
        <Title text="Admin" />
        <h1>"Users"</h1>
        {if is_admin {
            let users = resource(|| (), |_| list_users());
            let tokens = resource(|| (), |_| list_all_tokens());
            view! {
                <Loaded resource=users loading="Loading users…" let:list>
                    <Users users=list />
                </Loaded>
                <Loaded resource=tokens loading="Loading tokens…" let:list>
                    <Tokens tokens=list />
                </Loaded>
                <Jobs />
                <Replicas />
                <Deliveries />
            }
            .into_any()
        } else {
            view! {
                <p class="notice" role="status">"This page is for admins. Ask an admin if you need a user created, an e-mail address set or a role changed."</p>
            }
            .into_any()
        }}
    }
}

/// The users, with the forms to change each and to create one: an island, the list loaded
/// again in the browser after each form acts.
#[island]
fn Users(users: Vec<UserSummary>) -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let set_email = ServerAction::<SetEmail>::new();
    let set_role = ServerAction::<SetRole>::new();
    let set_disabled = ServerAction::<SetDisabled>::new();
    let reset = ServerAction::<ResetPassword>::new();
    let users = reloaded(
        users,
        move || {
            (
                create.version().get(),
                set_email.version().get(),
                set_role.version().get(),
                set_disabled.version().get(),
                reset.version().get(),
            )
        },
        list_users,
    );
    view! {
        <ActionResult value=Signal::derive(move || create.value().get()) ok=|u: UserSummary| format!("Created {} ({}).", u.name, u.role) />
        <ActionResult value=Signal::derive(move || set_email.value().get()) ok=|u: UserSummary| {
            format!("{}'s e-mail is now {}.", u.name, u.email.unwrap_or_default())
        } />
        <ActionResult value=Signal::derive(move || set_role.value().get()) ok=|u: UserSummary| format!("{} is now {}.", u.name, u.role) />
        <ActionResult value=Signal::derive(move || set_disabled.value().get()) ok=|u: UserSummary| {
            format!("{} is {}.", u.name, if u.disabled { "disabled; their sessions and tokens ended" } else { "enabled" })
        } />
        <ActionResult value=Signal::derive(move || reset.value().get()) ok=|n: String| format!("Password of {n} reset; their sessions and tokens ended.") />
        {move || match users.get() {
            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
            Ok(list) => view! {
                <div class="table-wrap">
                    <table class="users">
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"E-mail"</th>
                                <th scope="col">"Role"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Password"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {list.into_iter().map(|user| view! { <UserRow user set_email set_role set_disabled reset /> }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any(),
        }}
        <section class="card" aria-labelledby="new-user-h">
            <h2 id="new-user-h">"New user"</h2>
            <ActionForm action=create attr:class="stack">
                <label for="new-name">"User name"</label>
                <input id="new-name" name="name" required pattern="[a-z0-9][a-z0-9._\\-]{0,63}" autocomplete="off" />
                <label for="new-email">"E-mail (matches their commits)"</label>
                <input id="new-email" name="email" type="email" autocomplete="off" />
                <label for="new-role">"Role"</label>
                <select id="new-role" name="role"><RoleOptions selected=Role::Viewer /></select>
                <label for="new-password">"Password (at least 10 characters)"</label>
                <input id="new-password" name="password" type="password" minlength="10" required autocomplete="new-password" />
                <button type="submit">"Create user"</button>
            </ActionForm>
        </section>
    }
}

/// Every live API token, with a button to revoke each: an island, the list loaded again in
/// the browser after a revoke.
#[island]
fn Tokens(tokens: Vec<TokenSummary>) -> impl IntoView {
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = reloaded(tokens, move || revoke.version().get(), list_all_tokens);
    view! {
        <section class="card" aria-labelledby="tokens-h">
            <h2 id="tokens-h">"API tokens"</h2>
            <ActionResult value=Signal::derive(move || revoke.value().get()) ok=|()| "Token revoked.".to_owned() />
            {move || match tokens.get() {
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                Ok(list) if list.is_empty() => view! { <p class="muted">"No live tokens."</p> }.into_any(),
                Ok(list) => view! {
                <div class="table-wrap">
                    <table class="tokens">
                        <thead>
                            <tr>
                                <th scope="col">"Owner"</th>
                                <th scope="col">"Label"</th>
                                <th scope="col">"Prefix"</th>
                                <th scope="col">"Last used (UTC)"</th>
                                <th scope="col"><span class="visually-hidden">"Revoke"</span></th>
                            </tr>
                        </thead>
                        <tbody>
                            {list.into_iter().map(|t| view! {
                                <tr>
                                    <td>{t.owner.clone()}</td>
                                    <td>{t.label.clone()}</td>
                                    <td><code>{t.prefix.clone()}</code></td>
                                    <td>{t.last_used_at.as_ref().map(utc).unwrap_or_else(|| "never".to_owned())}</td>
                                    <td>
                                        <ActionForm action=revoke attr:class="inline">
                                            <input type="hidden" name="id" value=t.id.to_string() />
                                            <button type="submit" class="secondary">"Revoke"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                }.into_any(),
            }}
        </section>
    }
}

/// The jobs queue: what tierdeck is doing or will do in the background, and what failed.
#[component]
fn Jobs() -> impl IntoView {
    let jobs = resource(|| (), |_| load_jobs());
    view! {
        <section class="card" aria-labelledby="jobs-h">
            <h2 id="jobs-h">"Background work"</h2>
            <p class="muted">"Plans, auto-applies, applies, the watches after them and notifications not over yet, and the latest that failed for good (newest first). A job that fails for good is audited as "
                <code>"job.failed"</code> " and announced."</p>
            <Loaded resource=jobs empty_when=Vec::is_empty empty=|| view! { <p>"Nothing queued, running or failed."</p> } let:list>
                <crate::pages::changes::JobList jobs=list />
            </Loaded>
        </section>
    }
}

/// The replicas of the panel on its database, and which one leads the periodic work.
#[component]
fn Replicas() -> impl IntoView {
    let cluster = resource(|| (), |_| load_cluster());
    view! {
        <section class="card" aria-labelledby="replicas-h">
            <h2 id="replicas-h">"Replicas"</h2>
            <Loaded resource=cluster let:c>
                <p class="muted">
                    {format!("The store is on {}. ", if c.backend == "postgres" { "PostgreSQL" } else { "SQLite" })}
                    {match &c.leader {
                        Some(l) => format!("Term {} began {}; the leader's lease runs to {}. ", l.term, utc(&l.since), utc(&l.lease_until)),
                        None => "No replica has led yet. ".to_owned(),
                    }}
                    "The leader runs the repository watcher and the drift and scaling pollers; every replica answers requests and takes jobs."
                </p>
                <div class="table-wrap">
                    <table class="replicas">
                        <thead>
                            <tr>
                                <th scope="col">"Replica"</th>
                                <th scope="col">"Host"</th>
                                <th scope="col">"Version"</th>
                                <th scope="col">"Started (UTC)"</th>
                                <th scope="col">"Last seen (UTC)"</th>
                                <th scope="col">"Role"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {c.replicas.into_iter().map(|r| {
                                let this = r.id == c.this_replica;
                                view! {
                                    <tr>
                                        <th scope="row"><code>{r.id.clone()}</code>{this.then_some(" (this one)")}</th>
                                        <td>{format!("{} (pid {})", r.host, r.pid)}</td>
                                        <td>{r.version}</td>
                                        <td>{utc(&r.started_at)}</td>
                                        <td>{utc(&r.seen_at)}</td>
                                        <td>{if r.leading { view! { <span class="badge status-applied">"leader"</span> }.into_any() } else { view! { <span class="muted">"follower"</span> }.into_any() }}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </Loaded>
        </section>
    }
}

/// The notification delivery log.
#[component]
fn Deliveries() -> impl IntoView {
    let log = resource(|| (), |_| load_notifications());
    view! {
        <section class="card" aria-labelledby="deliveries-h">
            <h2 id="deliveries-h">"Notifications"</h2>
            <p class="muted">"Webhooks sent for approvals, applies, failures, drift and emergencies (newest first). Set "
                <code>"[notifications] slack_url"</code> " or " <code>"webhook_url"</code> " to send them."</p>
            <Loaded resource=log empty_when=Vec::is_empty empty=|| view! { <p>"Nothing sent yet."</p> } let:list>
                <div class="table-wrap">
                    <table class="deliveries">
                        <thead>
                            <tr>
                                <th scope="col">"When (UTC)"</th>
                                <th scope="col">"Event"</th>
                                <th scope="col">"To"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Attempts"</th>
                                <th scope="col">"Message"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {list.into_iter().map(|d| view! {
                                <tr>
                                    <td>{utc(&d.created_at)}</td>
                                    <td>{d.event}</td>
                                    <td>{d.receiver}</td>
                                    <td><span class=format!("badge delivery-{}", d.status)>{d.status.clone()}</span>
                                        {d.last_error.map(|e| view! { <br /><span class="step-error">{e}</span> })}</td>
                                    <td class="num">{d.attempts}</td>
                                    <td>{d.text}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </Loaded>
        </section>
    }
}
