//! Watching the spec repository: polling, webhooks, supersede, invalid specs, force-pushes and
//! an unreachable remote, with a real bare repository and commits made by the `git` CLI.

use serde_json::Value;
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{wait_for, TestApp};

const SECRET: &str = tierdeck_tests::WEBHOOK_SECRET;
const AUTOSCALING: &str = "environments/prod/autoscaling.yaml";
const PEAK: &str = "was-peak,       cron: \"0 19 * * *\",  timezone: Asia/Seoul, min: 5, max: 7";

async fn spawn(repo_url: &str, poll_secs: u64) -> TestApp {
    TestApp::watching(repo_url, poll_secs, None).await
}

fn hook(app: &TestApp, body: &'static [u8]) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}/api/v1/hooks/git", app.base))
        .header("X-GitHub-Event", "push")
        .body(body)
}

#[tokio::test]
async fn a_push_shows_up_by_polling_and_supersedes_the_pending_change() {
    let repo = SpecRepo::petclinic();
    let first = repo.head();
    let app = spawn(&repo.url(), 1).await;
    let api = app.api_as("ops", "operator").await;

    // First sight: one change per environment, everything added.
    let prod = api.change_for("prod", &first).await;
    let staging = api.change_for("staging", &first).await;
    assert_eq!(prod["status"], "pending");
    assert_eq!(staging["status"], "pending");
    assert_eq!(
        prod["commit"]["author"]["email"],
        "sejin.park@petclinic.example"
    );

    let second = repo.commit(
        SEUNG,
        "Raise the was tier's evening peak",
        repo.replace_in(AUTOSCALING, PEAK, &PEAK.replace("max: 7", "max: 8")),
    );
    let change = api.change_for("prod", &second).await;
    let detail = api
        .get_json(&format!("/api/v1/changes/{}", change["id"]))
        .await;
    // Never applied: the semantic diff is against nothing, so every setting shows as added.
    let peak = detail["semantic_diff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "autoscaling_groups[petclinic-prod-was].schedule[was-peak]")
        .cloned()
        .expect("the peak action is listed");
    assert_eq!(
        peak["after"],
        "cron \"0 19 * * *\" Asia/Seoul, min 5, max 8"
    );
    assert_eq!(detail["files"][0]["path"], AUTOSCALING);
    assert!(detail["files"][0]["diff"]
        .as_str()
        .unwrap()
        .contains("+      - { name: was-peak"));
    assert_eq!(
        detail["commit"]["message"],
        "Raise the was tier's evening peak\n"
    );

    let old = api
        .get_json(&format!("/api/v1/changes/{}", prod["id"]))
        .await;
    assert_eq!(old["status"], "superseded");
    assert_eq!(old["superseded_by"], change["id"]);
    // Staging was not touched: its change stays as it was.
    assert_eq!(api.changes("staging").await.len(), 1);
    let actions = api.audit_actions("action=change").await;
    assert_eq!(actions[..2], ["change.superseded", "change.detected"]);
}

#[tokio::test]
async fn a_signed_webhook_fetches_at_once_and_bad_signatures_are_refused() {
    let repo = SpecRepo::petclinic();
    // Polling once an hour: only the webhook can bring the next commit in time.
    let app = spawn(&repo.url(), 3600).await;
    let api = app.api_as("ops", "operator").await;
    api.change_for("prod", &repo.head()).await;

    let commit = repo.commit(
        SEUNG,
        "Larger database",
        repo.replace_in(
            "environments/prod/database.yaml",
            "db.t3.medium",
            "db.t3.large",
        ),
    );
    let body: &'static [u8] = br#"{"ref":"refs/heads/main","note":"the body is never trusted"}"#;
    let res = hook(&app, body).send().await.unwrap();
    assert_eq!(res.status(), 401, "no signature");
    let res = hook(&app, body)
        .header("X-Hub-Signature-256", "sha256=00")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "wrong signature");
    let res = hook(&app, body)
        .header("X-Gitlab-Token", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "wrong GitLab token");
    let signature = engine_signature(body);
    let res = hook(&app, body)
        .header("X-Hub-Signature-256", signature)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let change = api.change_for("prod", &commit).await;
    assert_eq!(change["status"], "pending");

    let res = hook(&app, body)
        .header("X-Gitlab-Token", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "GitLab's token works too");

    let actions = api.audit_actions("action=webhook").await;
    assert_eq!(
        actions,
        // Refusals from one source are one event a minute (with their count).
        ["webhook.accepted", "webhook.accepted", "webhook.rejected"]
    );
    // An oversized body is refused before anything else.
    let big = vec![b'x'; 300 * 1024];
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/hooks/git", app.base))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

/// GitHub's signature of a body with the test secret.
fn engine_signature(body: &[u8]) -> String {
    use std::process::Command;
    // openssl is on every machine that builds tierdeck (libgit2 needs it); an independent
    // implementation of the same HMAC checks ours.
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", SECRET, "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(body)?;
            c.wait_with_output()
        })
        .expect("openssl");
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("sha256={}", hex.split_whitespace().next().unwrap())
}

#[tokio::test]
async fn an_invalid_spec_makes_an_invalid_change_with_positions() {
    let repo = SpecRepo::petclinic();
    let app = spawn(&repo.url(), 1).await;
    let api = app.api_as("ops", "operator").await;
    api.change_for("prod", &repo.head()).await;
    let commit = repo.commit(
        SEUNG,
        "Oops",
        repo.replace_in(
            AUTOSCALING,
            "    min: 2\n    max: 8\n    desired: 2\n",
            "    min: 2\n    max: 1\n    desired: 2\n",
        ),
    );
    let change = api.change_for("prod", &commit).await;
    assert_eq!(change["status"], "invalid");
    let detail = api
        .get_json(&format!("/api/v1/changes/{}", change["id"]))
        .await;
    let errors: Vec<String> = detail["spec_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}: {}",
                e["file"].as_str().unwrap(),
                e["line"],
                e["col"],
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            "environments/prod/autoscaling.yaml:13:5: `autoscaling_groups[petclinic-prod-web]`: min 2 is above max 1",
            "environments/prod/autoscaling.yaml:13:5: `autoscaling_groups[petclinic-prod-web]`: desired 2 is above max 1",
        ]
    );
}

#[tokio::test]
async fn a_force_push_is_handled_and_audited() {
    let repo = SpecRepo::petclinic();
    // A file:// URL this time (the other tests use a plain path).
    let app = spawn(&format!("file://{}", repo.url()), 3600).await;
    let api = app.api_as("ops", "operator").await;
    api.change_for("prod", &repo.head()).await;
    let bad = repo.commit(
        SEUNG,
        "Wrong turn",
        repo.replace_in(AUTOSCALING, PEAK, &PEAK.replace("max: 7", "max: 6")),
    );
    assert_eq!(api.post("/api/v1/sync").await.status(), 200);
    api.change_for("prod", &bad).await;

    repo.force_push_back_one();
    let fixed = repo.commit(
        SEUNG,
        "Right turn",
        repo.replace_in(AUTOSCALING, PEAK, &PEAK.replace("max: 7", "max: 8")),
    );
    let res = api.post("/api/v1/sync").await;
    assert_eq!(res.status(), 200);
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(outcome["force_push"], true);
    api.change_for("prod", &fixed).await;
    let events = api.get_json("/api/v1/audit?action=repo.force_push").await;
    assert_eq!(events["events"][0]["detail"]["from"], bad);
    assert_eq!(events["events"][0]["detail"]["to"], fixed);
}

#[tokio::test]
async fn an_unreachable_remote_is_reported_once_and_the_panel_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.git");
    let app = spawn(missing.to_str().unwrap(), 1).await;
    let api = app.api_as("ops", "operator").await;
    let status = wait_for("a fetch error", 20, || async {
        let v: Value = api.get_json("/api/v1/environments").await;
        assert!(v.as_array().unwrap().is_empty());
        let s = api.post("/api/v1/sync").await;
        (s.status() == 503).then_some(s)
    })
    .await;
    let body: Value = status.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("fetching the spec repository failed:"),
        "{body}"
    );
    // A few more polls fail; the audit log has the start of the outage once.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        api.audit_actions("action=repo").await,
        ["repo.fetch_failed"]
    );
    assert_eq!(
        reqwest::get(format!("{}/healthz", app.base))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn only_operators_may_sync_and_viewers_read_changes() {
    let repo = SpecRepo::petclinic();
    let app = spawn(&repo.url(), 3600).await;
    let viewer = app.api_as("vic", "viewer").await;
    let approver = app.api_as("ann", "approver").await;
    let operator = app.api_as("ops", "operator").await;
    assert_eq!(viewer.post("/api/v1/sync").await.status(), 403);
    assert_eq!(approver.post("/api/v1/sync").await.status(), 403);
    assert_eq!(operator.post("/api/v1/sync").await.status(), 200);
    let changes = viewer.changes("prod").await;
    assert_eq!(changes.len(), 1);
    let env = viewer.get_json("/api/v1/environments/prod").await;
    assert_eq!(
        env["spec"]["autoscaling_groups"][1]["name"],
        "petclinic-prod-was"
    );
    assert_eq!(viewer.get("/api/v1/environments/nope").await.status(), 404);
    assert_eq!(viewer.get("/api/v1/changes/999").await.status(), 404);
    assert_eq!(
        viewer.get("/api/v1/changes?status=weird").await.status(),
        422
    );
}
