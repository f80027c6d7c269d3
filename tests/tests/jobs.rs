//! The durable pipeline: work that outlives a request is a job written with the state change
//! that asks for it, so a process killed at any point leaves nothing asked for lost; a job that
//! fails for good reaches a person.

use serde_json::{json, Value};
use tierdeck_tests::aws::{Fault, FaultProxy};
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{wait_for, Api, Moto, TestApp};

async fn approve(api: &Api, id: i64) -> reqwest::Response {
    api.post_json(
        &format!("/api/v1/changes/{id}/approve"),
        json!({ "comment": "looks right" }),
    )
    .await
}

/// The jobs of change `id` as its page lists them.
async fn jobs_of(api: &Api, id: i64) -> Vec<Value> {
    api.get_json(&format!("/api/v1/changes/{id}")).await["jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn an_approval_that_completes_an_auto_apply_change_is_applied_after_a_kill_as_it_answers() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[("TIERDECK_AWS__ATTEMPT_TIMEOUT_SECS", "60")],
    )
    .await;
    let ann = app.api_as("ann", "approver").await;
    let olga = app.api_as("olga", "operator").await;

    // Staging's first apply is an operator's; from then on its rules let it apply itself once
    // approved.
    let first = ann.change_for("staging", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    ann.planned(first).await;
    assert_eq!(approve(&ann, first).await.status(), 200);
    assert_eq!(
        olga.post(&format!("/api/v1/changes/{first}/apply"))
            .await
            .status(),
        202
    );
    wait_for("the first apply", 60, || async {
        (ann.status_of(first).await == "applied").then_some(())
    })
    .await;
    let commit = repo.commit(
        SEUNG,
        "Staging web: up to 3 at night",
        repo.replace_in(
            "environments/staging/autoscaling.yaml",
            "min: 1, max: 2, desired: 1 }",
            "min: 1, max: 3, desired: 1 }",
        ),
    );
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = ann.change_for("staging", &commit).await["id"]
        .as_i64()
        .unwrap();
    let d = ann.planned(id).await;
    assert_eq!(d["policy"]["auto_apply"], true, "{:#}", d["policy"]);

    // The auto-apply plans again first: with AWS's reads hanging, it is still on its way when
    // the panel is killed, right as the approval answers.
    proxy.fail("DescribeAutoScalingGroups", Fault::Hang, None);
    assert_eq!(approve(&ann, id).await.status(), 200);
    let app = app.kill_and_restart().await;
    proxy.heal();
    let ann = Api {
        base: app.base.clone(),
        ..ann
    };

    // The restarted panel takes the job the dead one held and applies the change.
    wait_for(
        "the change to apply itself after the restart",
        90,
        || async { (ann.status_of(id).await == "applied").then_some(()) },
    )
    .await;
    let started = ann
        .get_json("/api/v1/audit?action=change.apply_started&env=staging")
        .await;
    let e = &started["events"][0];
    assert_eq!(e["actor"], "system");
    assert_eq!(e["target"], id.to_string());
    assert_eq!(e["detail"]["approvers"], json!(["ann"]));
    // Its jobs on its page: the auto-apply taken twice (the dead process's try, then this
    // one's), done; the run of its steps done.
    let jobs = jobs_of(&ann, id).await;
    let auto = jobs
        .iter()
        .find(|j| j["kind"] == "auto_apply")
        .unwrap_or_else(|| panic!("{jobs:#?}"));
    assert_eq!(auto["state"], "done", "{auto:#}");
    assert_eq!(auto["attempts"], 2, "{auto:#}");
    assert_eq!(auto["requested_by"], "ann");
    assert!(
        jobs.iter()
            .any(|j| j["kind"] == "apply" && j["state"] == "done"),
        "{jobs:#?}"
    );
}

#[tokio::test]
async fn a_plan_that_cannot_be_made_fails_its_job_for_good_audited_and_listed_for_admins() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    // Reading the groups is refused: no retry can help, a person must grant the action.
    proxy.fail("DescribeAutoScalingGroups", Fault::AccessDenied, None);
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching(&repo.url(), 3600, Some(&proxy.url)).await;
    let admin = app.api_as("adam", "admin").await;
    let id = admin.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();

    let job = wait_for("the plan job to fail for good", 60, || async {
        jobs_of(&admin, id)
            .await
            .into_iter()
            .find(|j| j["kind"] == "plan" && j["state"] == "failed")
    })
    .await;
    let error = job["last_error"].as_str().unwrap();
    assert!(
        error.contains("autoscaling:DescribeAutoScalingGroups"),
        "names the IAM action: {error}"
    );
    assert_eq!(job["attempts"], 1, "refused access is not retried: {job:#}");
    // The page says why there is no plan.
    let d = admin.get_json(&format!("/api/v1/changes/{id}")).await;
    assert_eq!(d["plan"]["state"], "unavailable", "{:#}", d["plan"]);
    // Audited, and on the Admin page's list of jobs.
    let failed = admin.get_json("/api/v1/audit?action=job.failed").await;
    let e = failed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["detail"]["change"] == id)
        .unwrap_or_else(|| panic!("{failed:#}"));
    assert_eq!(e["detail"]["kind"], "plan");
    assert_eq!(e["environment"], "prod");
    let listed = admin.get_json("/api/v1/jobs").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == job["id"] && j["state"] == "failed"),
        "{listed:#}"
    );
    let viewer = app.api_as("vic", "viewer").await;
    assert_eq!(viewer.get("/api/v1/jobs").await.status(), 403);
}
