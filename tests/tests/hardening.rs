//! Hostile input against the real binary: a spec file built to exhaust memory, open redirects
//! after sign-in, and times that would overflow.

use serde_json::Value;
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::TestApp;

/// Nine levels of ten aliases each: a billion values once expanded, under a kilobyte written.
fn alias_bomb() -> String {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..=9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text
}

#[tokio::test]
async fn an_alias_bomb_in_the_spec_repository_is_an_invalid_change_and_the_panel_lives_on() {
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    let api = app.api_as("vic", "viewer").await;
    let op = app.api_as("olga", "operator").await;
    let commit = repo.commit(SEUNG, "Add a file", |work| {
        std::fs::write(work.join("environments/prod/bomb.yaml"), alias_bomb()).unwrap();
    });
    assert_eq!(op.post("/api/v1/sync").await.status(), 200);
    let c = api.change_for("prod", &commit).await;
    assert_eq!(c["status"], "invalid");
    let id = c["id"].as_i64().unwrap();
    let d = api.get_json(&format!("/api/v1/changes/{id}")).await;
    let errors = d["spec_errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["file"] == "environments/prod/bomb.yaml"
                && e["message"].as_str().unwrap().contains("aliases expanded")),
        "{errors:#?}"
    );
    // The pages that read the spec at the head answer too.
    let env = api.get("/api/v1/environments/prod").await;
    assert_eq!(env.status(), 200);
    let env: Value = env.json().await.unwrap();
    assert!(env["spec"].is_null() && !env["spec_errors"].as_array().unwrap().is_empty());
    // And a restart reads the same commit again without dying.
    let app = app.kill_and_restart().await;
    let api = app.api_as("val", "viewer").await;
    assert_eq!(api.get("/api/v1/changes").await.status(), 200);
}

#[tokio::test]
async fn sign_in_follows_only_paths_of_this_origin() {
    let app = TestApp::spawn().await;
    app.add_user("ann", "viewer").await;
    for (next, to) in [
        ("/changes", "/changes"),
        ("/%09/evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
    ] {
        let c = app.client();
        let res = c
            .post_form(
                "/login",
                &[
                    ("username", "ann"),
                    ("password", tierdeck_tests::PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(res.status(), 303, "{next}");
        assert_eq!(res.headers()["location"], to, "{next}");
    }
}

#[tokio::test]
async fn report_times_that_would_overflow_are_refused_with_the_parameter() {
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;
    // A huge range is cut to the longest one (90 days), not walked hour by hour.
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        api.get(&format!(
            "/api/v1/environments/prod/scaling?hours={}",
            u32::MAX
        )),
    )
    .await
    .expect("the scaling history answers");
    assert_eq!(res.status(), 200);
    for path in [
        format!("/api/v1/environments/prod/slo?at={}", i64::MIN),
        format!("/api/v1/environments/prod/monitoring?end={}", i64::MIN),
    ] {
        let res = api.get(&path).await;
        assert_eq!(res.status(), 422, "{path}");
        let v: Value = res.json().await.unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("is not a Unix time"),
            "{v}"
        );
    }
}

#[tokio::test]
async fn a_remote_that_never_answers_fails_the_sync_within_the_bound_and_is_counted() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/specs.git", listener.local_addr().unwrap());
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let app = TestApp::watching_with(
        &url,
        3600,
        None,
        &[("TIERDECK_REPO__FETCH_TIMEOUT_SECS", "2")],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let res = tokio::time::timeout(std::time::Duration::from_secs(15), op.post("/api/v1/sync"))
            .await
            .expect("the sync request returns");
        assert_eq!(res.status(), 503);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(6),
            "bounded: {:?}",
            started.elapsed()
        );
    }
    let failed = op.get_json("/api/v1/audit?action=repo.fetch_failed").await;
    let e = &failed["events"][0];
    let error = e["detail"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("within 2 s") || error.contains("has not returned"),
        "{failed:#}"
    );
    // The overview shows it failing.
    let page = app.login_new("vic", "viewer").await;
    let html = page.get("/").await.text().await.unwrap();
    assert!(
        html.contains("within 2 s") || html.contains("has not returned"),
        "the overview says why"
    );
}

#[tokio::test]
async fn secrets_in_configured_urls_reach_no_page_log_or_audit_event() {
    let closed = tierdeck_tests::free_port().unwrap();
    let repo_url = format!("http://bot:tok3n-secret@127.0.0.1:{closed}/specs.git");
    let prom_url = format!("http://u:prom-secret@127.0.0.1:{closed}");
    let app = TestApp::watching_with(
        &repo_url,
        3600,
        None,
        &[("TIERDECK_PROMETHEUS__URL", &prom_url)],
    )
    .await;
    let admin = app.api_as("adam", "admin").await;
    assert_eq!(admin.post("/api/v1/sync").await.status(), 503);
    let page = app.login_new("vic", "viewer").await;
    let mut seen = vec![
        page.get("/").await.text().await.unwrap(),
        admin
            .get("/api/v1/audit?limit=100")
            .await
            .text()
            .await
            .unwrap(),
        admin
            .get("/api/v1/audit/export")
            .await
            .text()
            .await
            .unwrap(),
    ];
    let repo = SpecRepo::petclinic();
    let hook = format!("http://127.0.0.1:{closed}/hook?token=hook-secret");
    let other = TestApp::watching_with(
        &repo.url(),
        3600,
        None,
        &[
            ("TIERDECK_PROMETHEUS__URL", &prom_url),
            ("TIERDECK_NOTIFICATIONS__WEBHOOK_URL", &hook),
            ("TIERDECK_NOTIFICATIONS__FIRST_RETRY_SECS", "1"),
        ],
    )
    .await;
    let admin = other.api_as("adam", "admin").await;
    admin.change_for("prod", &repo.head()).await;
    seen.push(
        admin
            .get("/api/v1/environments/prod/slo")
            .await
            .text()
            .await
            .unwrap(),
    );
    let log = tierdeck_tests::wait_for("a failed delivery", 30, || async {
        let log = admin.get_json("/api/v1/notifications").await;
        log.as_array()
            .unwrap()
            .iter()
            .any(|d| d["last_error"].is_string())
            .then_some(log)
    })
    .await;
    seen.push(log.to_string());
    for (i, text) in seen.iter().enumerate() {
        for secret in ["tok3n-secret", "prom-secret", "hook-secret"] {
            assert!(!text.contains(secret), "surface {i} shows {secret}: {text}");
        }
    }
    assert!(seen[0].contains(&format!("http://127.0.0.1:{closed}/specs.git")));
    let logs = app.output() + &other.output();
    assert!(logs.contains("WARN"), "the log is read: {logs}");
    for secret in ["tok3n-secret", "prom-secret", "hook-secret"] {
        assert!(!logs.contains(secret), "the log shows {secret}: {logs}");
    }
}

#[tokio::test]
async fn a_flood_of_refused_webhooks_is_one_audit_event_a_minute() {
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let res = http
            .post(format!("{}/api/v1/hooks/git", app.base))
            .header("X-Gitlab-Token", "wrong")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let admin = app.api_as("adam", "admin").await;
    let events = admin
        .get_json("/api/v1/audit?action=webhook.rejected")
        .await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["detail"]["refusals"], 1);
}

/// "Plan again" reads every resource of the change from AWS and may void its approvals: one
/// change is planned again at most once per 10 s, whoever asks and through whichever door, and
/// the refusal is the API's error with a `Retry-After`.
#[tokio::test]
async fn plan_again_is_limited_per_change_with_the_apis_error_and_a_retry_after() {
    let repo = SpecRepo::petclinic();
    // No AWS (a closed port), asked once: each plan ends at once, unavailable.
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        None,
        &[("TIERDECK_AWS__MAX_ATTEMPTS", "1")],
    )
    .await;
    let vic = app.api_as("vic", "viewer").await;
    let ann = app.api_as("ann", "approver").await;
    let id = vic.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/changes/{id}/plan");
    assert_eq!(vic.post(&path).await.status(), 200);
    for again in [vic.post(&path).await, ann.post(&path).await] {
        assert_eq!(again.status(), 429);
        let retry: u64 = again.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=10).contains(&retry), "{retry}");
        let body: Value = again.json().await.unwrap();
        assert_eq!(body["error"]["code"], "throttled", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("change {id} was planned again moments ago")),
            "{message}"
        );
    }
    // The page's button (a server function) is held back the same way.
    let page = app.login_new("sam", "viewer").await;
    let res = page.server_fn("replan", &[("id", &id.to_string())]).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
}
