//! Every admin action, by every role: only admins may, and the refusal is a 403 with a reason.

use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{wait_for, without_markers, Client, TestApp, PASSWORD};

const ROLES: [&str; 4] = ["viewer", "approver", "operator", "admin"];

#[tokio::test]
async fn only_admins_may_manage_users() {
    let app = TestApp::spawn().await;
    for role in ROLES {
        app.add_user(&format!("the-{role}"), role).await;
    }
    app.add_user("target", "viewer").await;

    for role in ROLES {
        let c = app.login(&format!("the-{role}")).await;
        let new_name = format!("made-by-{role}");
        let actions: [(&str, Vec<(&str, &str)>); 5] = [
            ("list_users", vec![]),
            (
                "create_user",
                vec![
                    ("name", new_name.as_str()),
                    ("email", ""),
                    ("role", "viewer"),
                    ("password", PASSWORD),
                ],
            ),
            ("set_role", vec![("name", "target"), ("role", "approver")]),
            (
                "reset_password",
                vec![("name", "target"), ("password", "reset by someone")],
            ),
            (
                "set_disabled",
                vec![("name", "target"), ("disabled", "true")],
            ),
        ];
        for (action, form) in actions {
            let res = c.server_fn(action, &form).await;
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            if role == "admin" {
                assert_eq!(status, 200, "admin {action}: {body}");
            } else {
                assert_eq!(status, 403, "{role} {action}: {body}");
                assert!(
                    body.contains("this needs the admin role"),
                    "{role} {action}: {body}"
                );
            }
        }
        // Put the target back for the next role.
        if role == "admin" {
            let res = c
                .server_fn("set_disabled", &[("name", "target"), ("disabled", "false")])
                .await;
            assert_eq!(res.status(), 200);
        }
    }

    let admin = app.login("the-admin").await;
    let users = admin
        .server_fn("list_users", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(users.contains("made-by-admin"));
    for role in ["viewer", "approver", "operator"] {
        assert!(
            !users.contains(&format!("made-by-{role}")),
            "{role} created a user"
        );
    }
}

#[tokio::test]
async fn the_admin_page_is_only_in_the_navigation_of_admins() {
    let app = TestApp::spawn().await;
    app.add_user("root", "admin").await;
    app.add_user("vic", "viewer").await;
    let admin_page = app.login("root").await.get("/").await.text().await.unwrap();
    assert!(admin_page.contains(r#"href="/admin""#));
    let viewer = app.login("vic").await;
    let viewer_page = viewer.get("/").await.text().await.unwrap();
    assert!(!viewer_page.contains(r#"href="/admin""#));
    let page = viewer.get("/admin").await.text().await.unwrap();
    assert!(page.contains("This page is for admins"), "{page}");
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    app.add_user("root", "admin").await;
    let c = app.login("root").await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("name", "Bad Name"),
                ("email", ""),
                ("role", "viewer"),
                ("password", PASSWORD),
            ],
            "name: user name must be",
        ),
        (
            &[
                ("name", "ok"),
                ("email", "nope"),
                ("role", "viewer"),
                ("password", PASSWORD),
            ],
            "email: e-mail address must look like",
        ),
        (
            &[
                ("name", "ok"),
                ("email", ""),
                ("role", "root"),
                ("password", PASSWORD),
            ],
            "role: unknown role `root`",
        ),
        (
            &[
                ("name", "ok"),
                ("email", ""),
                ("role", "viewer"),
                ("password", "short"),
            ],
            "password: password must be at least 10",
        ),
    ];
    for (form, expected) in cases {
        let res = c.server_fn("create_user", form).await;
        assert_eq!(res.status(), 422);
        let body = res.text().await.unwrap();
        assert!(body.contains(expected), "expected `{expected}` in {body}");
    }
    let res = c
        .server_fn(
            "create_user",
            &[
                ("name", "root"),
                ("email", ""),
                ("role", "viewer"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = c
        .server_fn("set_role", &[("name", "root"), ("role", "viewer")])
        .await;
    assert_eq!(res.status(), 409, "the last admin cannot be demoted");
}

async fn overview(reader: &Client) -> String {
    let res = reader.get("/").await;
    assert_eq!(res.status(), 200);
    without_markers(&res.text().await.unwrap())
}

/// The overview's top bar and cards are rendered once and then kept by what they show: each
/// reader still gets their own name, role, links and list, and new data shows at once.
#[tokio::test]
async fn kept_renders_of_the_overview_are_each_readers_own_and_follow_the_data() {
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    app.add_user("ann", "approver").await;
    app.add_user("vic", "viewer").await;
    app.add_user("root", "admin").await;
    let (ann, vic, root) = (
        app.login("ann").await,
        app.login("vic").await,
        app.login("root").await,
    );
    wait_for("the environments on the overview", 20, || async {
        overview(&vic).await.contains("Latest: ").then_some(())
    })
    .await;
    // Twice each, in turns: the second time from what was kept.
    for _ in 0..2 {
        let page = overview(&ann).await;
        assert!(page.contains(r#"<span class="user-name">ann</span> <span class="role role-approver">approver</span>"#), "{page}");
        assert!(page.contains("Waiting for you"), "{page}");
        assert!(!page.contains(r#"href="/admin""#), "{page}");
        let page = overview(&vic).await;
        assert!(
            page.contains(
                r#"<span class="user-name">vic</span> <span class="role role-viewer">viewer</span>"#
            ),
            "{page}"
        );
        assert!(!page.contains("Waiting for you"), "{page}");
        assert!(
            page.contains(r#"<a href="/" aria-current="page">Overview</a>"#),
            "{page}"
        );
        let page = overview(&root).await;
        assert!(
            page.contains(r#"<span class="user-name">root</span>"#),
            "{page}"
        );
        assert!(page.contains(r#"<a href="/admin">Admin</a>"#), "{page}");
    }
    // Another page marks its own link, for the same reader.
    let page = without_markers(&vic.get("/changes").await.text().await.unwrap());
    assert!(
        page.contains(r#"<a href="/changes" aria-current="page">Changes</a>"#),
        "{page}"
    );
    assert!(page.contains(r#"<a href="/">Overview</a>"#), "{page}");

    // A new commit, fetched: the overview shows its change at once, for each reader.
    let before = overview(&vic).await;
    repo.commit(SEUNG, "Staging: keep backups four days", |work| {
        let path = work.join("environments/staging/database.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("backup_retention_days: 1", "backup_retention_days: 4"),
        )
        .unwrap();
    });
    let olga = app.api_as("olga", "operator").await;
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let change = wait_for("the new staging change", 20, || async {
        olga.changes("staging").await.into_iter().find(|c| {
            c["commit"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Staging: keep backups four days"))
        })
    })
    .await;
    let latest = format!(r#"<a href="/changes/{id}">#{id}</a>"#, id = change["id"]);
    assert!(!before.contains(&latest), "{before}");
    for reader in [&vic, &ann] {
        let page = overview(reader).await;
        assert!(page.contains(&latest), "{page}");
        assert!(page.contains("Staging: keep backups four days"), "{page}");
    }
}

/// A form posted without JavaScript brings its error back in the URL (`?__path=…&__err=…`), and
/// the overview shows it to whoever opens that URL (Leptos's server actions read it while they
/// render). That render is the URL's own: the next reader of the overview, even with the same
/// role and data, never gets it.
#[tokio::test]
async fn a_form_error_in_one_readers_url_never_reaches_the_next_readers_overview() {
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    app.add_user("vic", "viewer").await;
    app.add_user("olga", "operator").await;
    app.add_user("otto", "operator").await;
    let (vic, olga, otto) = (
        app.login("vic").await,
        app.login("olga").await,
        app.login("otto").await,
    );
    // Read by a viewer: no operator's overview of this data is kept yet.
    wait_for("the environments on the overview", 20, || async {
        overview(&vic).await.contains("Latest: ").then_some(())
    })
    .await;
    // A viewer's "Fetch now", posted as a plain form from the overview: refused, and sent back
    // to the overview with the refusal in the URL.
    let res = vic
        .http
        .post(vic.url("/sfn/sync"))
        .header("Origin", &vic.base)
        .header("Referer", vic.url("/"))
        .header("Accept", "text/html")
        .body("")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16() / 100, 3, "a redirect: {res:?}");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("__path=") && location.contains("__err="),
        "{location}"
    );
    let with_error = location
        .strip_prefix(&vic.base)
        .unwrap_or(&location)
        .to_owned();
    // Whoever opens that URL sees the refusal where the form is (an operator's overview),
    // first: the render that could be kept for the next operator.
    let refusal = "this needs the operator role (you are viewer)";
    for _ in 0..2 {
        let page = without_markers(&olga.get(&with_error).await.text().await.unwrap());
        assert!(page.contains(refusal), "{page}");
        // The next operator's overview, with the same data, is clean.
        let page = overview(&otto).await;
        assert!(page.contains("Fetch now"), "{page}");
        assert!(!page.contains(refusal), "{page}");
        let page = overview(&olga).await;
        assert!(!page.contains(refusal), "{page}");
    }
}
