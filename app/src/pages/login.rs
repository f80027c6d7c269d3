//! The sign-in page: a plain HTML form posted to `/login`, so it works with or without
//! JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::LoginNotice;

#[component]
pub fn Login() -> impl IntoView {
    let notice = SharedValue::new(crate::login_notice_on_server).into_inner();
    let query_next = use_query_map().with_untracked(|q| q.get("next"));
    let next = notice
        .as_ref()
        .and_then(|n| n.next.clone())
        .or(query_next)
        .unwrap_or_else(|| "/".into());
    let LoginNotice { message, user, .. } = notice.unwrap_or_default();
    let has_message = !message.is_empty();
    view! {
        <Title text="Sign in" />
        <section class="login card">
            <h1>"Sign in to tierdeck"</h1>
            {has_message
                .then(|| view! { <p class="notice error" role="alert" id="login-error">{message}</p> })}
            <form method="post" action="/login">
                <input type="hidden" name="next" value=next />
                <label for="username">"User name"</label>
                <input
                    id="username"
                    name="username"
                    type="text"
                    autocomplete="username"
                    autocapitalize="none"
                    spellcheck="false"
                    required
                    autofocus
                    value=user
                />
                <label for="password">"Password"</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    required
                />
                <button type="submit">"Sign in"</button>
            </form>
        </section>
    }
}
