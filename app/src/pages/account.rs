//! Your account: the time zone you read times in, your password and your API tokens.

use domain::spec::TimeZone;
use domain::user::TokenSummary;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{list_my_tokens, ChangePassword, CreateToken, NewToken, RevokeToken, SetTimeZone};
use crate::components::{now_unix, ActionResult, ErrorBox, Loaded, WhenAt};
use crate::resource::{reloaded, resource};
use crate::CurrentUser;

#[component]
fn TokenRow(
    t: TokenSummary,
    revoke: ServerAction<RevokeToken>,
    zone: TimeZone,
    now: i64,
) -> impl IntoView {
    let active = t.revoked_at.is_none();
    view! {
        <tr class=if active { "" } else { "disabled" }>
            <th scope="row">{t.label.clone()}</th>
            <td><code>{t.prefix.clone()} "…"</code></td>
            <td><WhenAt t=t.created_at zone now /></td>
            <td>{match (t.last_used_at, t.last_used_addr.clone()) {
                (Some(at), Some(addr)) => view! { <WhenAt t=at zone now /> " from " {addr} }.into_any(),
                (Some(at), None) => view! { <WhenAt t=at zone now /> }.into_any(),
                _ => "never".into_any(),
            }}</td>
            <td>{if active {
                view! {
                    <ActionForm action=revoke attr:class="inline">
                        <input type="hidden" name="id" value=t.id.to_string() />
                        <button type="submit" class="danger">"Revoke"</button>
                    </ActionForm>
                }.into_any()
            } else {
                view! { <span class="status status-disabled">"revoked" {t.revoked_at.map(|at| view! { " " <WhenAt t=at zone now /> })}</span> }.into_any()
            }}</td>
        </tr>
    }
}

#[component]
pub fn Account() -> impl IntoView {
    let me = use_context::<CurrentUser>().and_then(|c| c.0);
    let chosen = me.as_ref().and_then(|m| m.time_zone.clone());
    // Your own zone, else UTC: tokens belong to no environment.
    let zone_name = chosen.clone().unwrap_or_else(domain::time::utc_name);
    let now = now_unix();
    let tokens = resource(|| (), |_| list_my_tokens());
    view! {
        <Title text="Account" />
        <h1>"Your account"</h1>
        {me.map(|me| view! {
            <p class="lede">"Signed in as " <strong>{me.name}</strong> " with the " <strong>{me.role.to_string()}</strong>
            " role" {me.email.map(|e| format!(", e-mail {e}"))} "."</p>
        })}
        <ZoneForm current=chosen.clone() />
        <datalist id="zones">
            {domain::time::zone_names().map(|z| view! { <option value=z></option> }).collect_view()}
        </datalist>
        <PasswordForm />
        <Loaded resource=tokens loading="Loading tokens…" let:list>
            <MyTokens tokens=list zone=zone_name.clone() now />
        </Loaded>
    }
}

/// What the zone form says once saved.
fn saved(zone: Option<String>) -> String {
    match zone {
        Some(z) => format!("Times now read in {z}. Pages opened from now on show them so."),
        None => "Times now read in each environment's own zone.".to_owned(),
    }
}

/// The zone you read times in: an island, live in the browser. Empty: each environment's
/// own (its schedule's).
#[island]
fn ZoneForm(current: Option<String>) -> impl IntoView {
    let set = ServerAction::<SetTimeZone>::new();
    view! {
        <section class="card" aria-labelledby="zone-h">
            <h2 id="zone-h">"Time zone"</h2>
            <p class="muted">"Pages show each environment's times in its own zone (the zone its schedule is written in) unless you choose one here. Leave it empty to follow the environments."</p>
            <ActionResult value=Signal::derive(move || set.value().get()) ok=saved />
            <ActionForm action=set attr:class="inline">
                <label for="time-zone">"Time zone"</label>
                <input id="time-zone" name="time_zone" list="zones" autocomplete="off" placeholder="Asia/Seoul"
                    value=current.unwrap_or_default() />
                <button type="submit">"Save"</button>
            </ActionForm>
        </section>
    }
}

/// Change your password: an island, live in the browser.
#[island]
fn PasswordForm() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    view! {
        <section class="card" aria-labelledby="pw-h">
            <h2 id="pw-h">"Change password"</h2>
            <ActionResult value=Signal::derive(move || change.value().get()) ok=|()| "Password changed. Your other sessions were signed out.".to_owned() />
            <ActionForm action=change attr:class="stack">
                <label for="current-password">"Current password"</label>
                <input id="current-password" name="current_password" type="password" autocomplete="current-password" required />
                <label for="new-password">"New password (at least 10 characters)"</label>
                <input id="new-password" name="new_password" type="password" autocomplete="new-password" minlength="10" required />
                <label for="confirm-password">"New password again"</label>
                <input id="confirm-password" name="confirm_password" type="password" autocomplete="new-password" minlength="10" required />
                <button type="submit">"Change password"</button>
            </ActionForm>
        </section>
    }
}

/// Your API tokens, with the forms to create and revoke them: an island, the list loaded
/// again in the browser after each.
#[island]
fn MyTokens(
    tokens: Vec<TokenSummary>,
    /// The zone's name, and the server's clock when it rendered the page.
    zone: String,
    now: i64,
) -> impl IntoView {
    let zone = domain::time::zone_named(&zone);
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = reloaded(
        tokens,
        move || (create.version().get(), revoke.version().get()),
        list_my_tokens,
    );
    view! {
        <section class="card" aria-labelledby="tokens-h">
            <h2 id="tokens-h">"API tokens"</h2>
            <p class="muted">"A token acts as you, with your role, for scripts: send it as " <code>"Authorization: Bearer TOKEN"</code> ". Times in " {zone.name()} "."</p>
            {move || create.value().get().map(|r| match r {
                Ok(NewToken { token, secret }) => view! {
                    <div class="notice ok" role="status">
                        <p>"New token " <strong>{token.label}</strong> ". Copy it now: it is not shown again."</p>
                        <p><code class="secret" id="new-token">{secret}</code></p>
                    </div>
                }.into_any(),
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
            })}
            <ActionResult value=Signal::derive(move || revoke.value().get()) ok=|()| "Token revoked.".to_owned() />
            <ActionForm action=create attr:class="inline">
                <label for="token-label">"Label"</label>
                <input id="token-label" name="label" required maxlength="64" placeholder="ci-pipeline" />
                <button type="submit">"Create token"</button>
            </ActionForm>
            {move || match tokens.get() {
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                Ok(list) if list.is_empty() => view! { <p class="muted">"You have no API tokens."</p> }.into_any(),
                Ok(list) => view! {
                    <div class="table-wrap">
                        <table class="tokens">
                            <thead>
                                <tr>
                                    <th scope="col">"Label"</th>
                                    <th scope="col">"Token"</th>
                                    <th scope="col">"Created"</th>
                                    <th scope="col">"Last used"</th>
                                    <th scope="col">"Status"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {list.into_iter().map(|t| view! { <TokenRow t revoke zone now /> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}
