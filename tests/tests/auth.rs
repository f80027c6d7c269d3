//! Signing in and out, throttling, sessions, CSRF and disabled users, against the real binary.

use tierdeck_tests::{actions, TestApp, PASSWORD};

#[tokio::test]
async fn login_and_logout_are_audited_and_end_the_session() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "viewer").await;
    let c = app.client();
    assert_eq!(c.whoami().await, Err(401));

    let res = c.login("alice", PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    assert_eq!(c.whoami().await, Ok("alice".into()));

    let page = c.get("/").await.text().await.unwrap();
    assert!(
        page.contains("alice") && page.contains("Sign out"),
        "the shell names the user"
    );

    let res = c.post_form("/logout", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(c.whoami().await, Err(401));
    assert_eq!(
        c.get("/audit").await.status(),
        303,
        "pages send anonymous people to sign in"
    );

    let admin_view = {
        app.add_user("root", "admin").await;
        app.login("root").await
    };
    let events = admin_view.audit("actor=alice").await;
    assert_eq!(actions(&events), ["logout", "login.ok"]);
    assert_eq!(events[0]["client_addr"], "127.0.0.1");
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_form_shown_again() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "viewer").await;
    let c = app.client();
    let res = c.login("alice", "not the password").await;
    assert_eq!(res.status(), 401);
    let page = res.text().await.unwrap();
    assert!(page.contains("User name or password is wrong."), "{page}");
    assert!(
        page.contains(r#"value="alice""#),
        "the name is kept in the form"
    );
    // An unknown name gets the same answer.
    let res = c.login("nobody", "not the password").await;
    assert_eq!(res.status(), 401);
    assert_eq!(c.whoami().await, Err(401));

    let admin = {
        app.add_user("root", "admin").await;
        app.login("root").await
    };
    let failed = admin.audit("action=login.failed").await;
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["detail"]["reason"], "no such user");
    assert_eq!(failed[1]["detail"]["reason"], "wrong password");
}

#[tokio::test]
async fn five_failures_for_a_user_name_throttle_it_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "viewer").await;
    let c = app.client();
    for _ in 0..5 {
        assert_eq!(c.login("alice", "guess").await.status(), 401);
    }
    let res = c.login("alice", PASSWORD).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 800 && retry <= 900, "retry after {retry} s");
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-in attempts"));
    assert_eq!(c.whoami().await, Err(401));

    app.add_user("root", "admin").await;
    // The address is throttled too (5 failures from 127.0.0.1), so read the audit log with a token.
    let out = app
        .cli(&["token", "create", "--user", "root", "--label", "t"], None)
        .await;
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let res = c
        .http
        .get(c.url("/api/v1/audit?action=login.throttled"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        v["events"].as_array().unwrap().len(),
        1,
        "each refusal is audited"
    );
    assert_eq!(v["events"][0]["target"], "alice");
}

#[tokio::test]
async fn one_persons_typos_do_not_lock_teammates_out_but_an_address_has_a_ceiling() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "viewer").await;
    app.add_user("bob", "viewer").await;
    let c = app.client();
    for _ in 0..5 {
        assert_eq!(c.login("bob", "typo").await.status(), 401);
    }
    assert_eq!(c.login("bob", PASSWORD).await.status(), 429);
    // Alice is behind the same address (127.0.0.1): she signs in.
    assert_eq!(app.client().login("alice", PASSWORD).await.status(), 303);
    // Fifty failures from one address, whatever the names, throttle it.
    for i in 0..45 {
        assert_eq!(
            c.login(&format!("n{i}"), "guess").await.status(),
            401,
            "{i}"
        );
    }
    assert_eq!(app.client().login("alice", PASSWORD).await.status(), 429);
}

#[tokio::test]
async fn parallel_wrong_passwords_for_one_name_are_counted_before_they_are_checked() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "viewer").await;
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let c = app.client();
            tokio::spawn(async move { c.login("alice", "guess").await.status().as_u16() })
        })
        .collect();
    let mut codes = Vec::new();
    for a in attempts {
        codes.push(a.await.unwrap());
    }
    let checked = codes.iter().filter(|c| **c == 401).count();
    let throttled = codes.iter().filter(|c| **c == 429).count();
    assert_eq!((checked, throttled), (5, 15), "{codes:?}");
}

#[tokio::test]
async fn the_session_id_changes_at_login_and_the_cookie_is_locked_down() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "viewer").await;
    let c = app.client();
    let first = c.login("alice", PASSWORD).await;
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("tierdeck_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http: no Secure flag: {cookie}"
    );
    let old_id = cookie.split(';').next().unwrap().to_owned();

    let second = c.login("alice", PASSWORD).await;
    let new_id = second.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(old_id, new_id, "a new session id at every sign-in");

    // The old id is dead.
    let stale = reqwest::Client::new()
        .get(c.url("/api/v1/me"))
        .header("Cookie", &old_id)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
}

#[tokio::test]
async fn cookies_are_secure_and_expire_as_configured_behind_https() {
    let app = TestApp::spawn_with(tierdeck_tests::Options {
        env: vec![
            (
                "TIERDECK_SERVER__PUBLIC_URL".into(),
                "https://deck.example.com".into(),
            ),
            ("TIERDECK_SERVER__SESSION_IDLE_MINUTES".into(), "7".into()),
        ],
    })
    .await;
    app.add_user("alice", "viewer").await;
    let res = app
        .client()
        .http
        .post(format!("{}/login", app.base))
        .header("Origin", "https://deck.example.com")
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(
        cookie.contains("Max-Age=420"),
        "7 minutes of inactivity: {cookie}"
    );
}

#[tokio::test]
async fn requests_from_another_origin_are_refused() {
    let app = TestApp::spawn().await;
    app.add_user("root", "admin").await;
    let c = app.login("root").await;
    let evil = |req: reqwest::RequestBuilder| req.header("Origin", "http://evil.example");

    // A form post (sign-out), a server function (create a user) and the REST API.
    let res = evil(c.http.post(c.url("/logout"))).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf");
    let res = evil(c.http.post(c.url("/sfn/create_user")))
        .form(&[
            ("name", "mallory"),
            ("email", ""),
            ("role", "admin"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = evil(c.http.post(c.url("/api/v1/sync")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // A Referer from elsewhere, and a cookie with neither header, are refused as well.
    let res = c
        .http
        .post(c.url("/logout"))
        .header("Referer", "http://evil.example/page")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = c.http.post(c.url("/logout")).send().await.unwrap();
    assert_eq!(res.status(), 403);

    assert_eq!(c.whoami().await, Ok("root".into()), "still signed in");
    let users = c.server_fn("list_users", &[]).await.text().await.unwrap();
    assert!(!users.contains("mallory"), "no user was created: {users}");
    // The same post from the panel's own origin works.
    assert_eq!(c.post_form("/logout", &[]).await.status(), 303);
}

#[tokio::test]
async fn a_disabled_user_loses_sessions_and_tokens_at_once() {
    let app = TestApp::spawn().await;
    app.add_user("root", "admin").await;
    app.add_user("bob", "operator").await;
    let bob = app.login("bob").await;
    let out = app
        .cli(&["token", "create", "--user", "bob", "--label", "ci"], None)
        .await;
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let with_token = || {
        reqwest::Client::new()
            .get(format!("{}/api/v1/me", app.base))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(with_token().await.unwrap().status(), 200);
    assert_eq!(bob.whoami().await, Ok("bob".into()));

    let root = app.login("root").await;
    let res = root
        .server_fn("set_disabled", &[("name", "bob"), ("disabled", "true")])
        .await;
    assert_eq!(res.status(), 200);

    assert_eq!(bob.whoami().await, Err(401), "the session ended");
    assert_eq!(
        with_token().await.unwrap().status(),
        401,
        "the token was revoked"
    );
    assert_eq!(
        bob.login("bob", PASSWORD).await.status(),
        401,
        "cannot sign in"
    );

    let events = root.audit("action=user.disabled").await;
    assert_eq!(events[0]["target"], "bob");
    assert_eq!(events[0]["detail"]["tokens_revoked"], 1);
}

#[tokio::test]
async fn a_password_reset_ends_the_sessions_of_that_user() {
    let app = TestApp::spawn().await;
    app.add_user("root", "admin").await;
    app.add_user("bob", "viewer").await;
    let bob = app.login("bob").await;
    let root = app.login("root").await;
    let res = root
        .server_fn(
            "reset_password",
            &[("name", "bob"), ("password", "a brand new secret")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(bob.whoami().await, Err(401));
    assert_eq!(bob.login("bob", "a brand new secret").await.status(), 303);
}

#[tokio::test]
async fn changing_your_own_password_keeps_this_session_and_ends_the_others() {
    let app = TestApp::spawn().await;
    app.add_user("bob", "viewer").await;
    let here = app.login("bob").await;
    let elsewhere = app.login("bob").await;
    let res = here
        .server_fn(
            "change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "another long secret"),
                ("confirm_password", "another long secret"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(here.whoami().await, Ok("bob".into()));
    assert_eq!(elsewhere.whoami().await, Err(401));

    let wrong = here
        .server_fn(
            "change_password",
            &[
                ("current_password", "not it"),
                ("new_password", "yet another secret"),
                ("confirm_password", "yet another secret"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("the current password is wrong"));
}

#[tokio::test]
async fn only_local_paths_are_followed_after_sign_in() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "viewer").await;
    let c = app.client();
    for (next, expected) in [
        ("/audit", "/audit"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
    ] {
        let res = c
            .post_form(
                "/login",
                &[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(res.headers()["location"], expected, "next={next}");
    }
}

#[tokio::test]
async fn a_busy_session_is_not_written_on_every_request() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "viewer").await;
    let c = app.client();
    assert_eq!(c.login("alice", PASSWORD).await.status(), 303);
    let mut written = 0;
    for _ in 0..5 {
        let res = c.get("/api/v1/me").await;
        assert_eq!(res.status(), 200);
        written += usize::from(res.headers().contains_key("set-cookie"));
    }
    // The first request marks the minute it was seen; the rest of the minute writes nothing.
    assert!(written <= 2, "{written} of 5 requests wrote the session");
}
