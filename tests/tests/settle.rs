//! Steps that start work AWS carries out later wait for it, bounded: a settle timeout fails the
//! step and frees the lock, a process killed while a step settles leaves the change
//! `interrupted`, and raised capacity waits for its instances to be in service. The tests' AWS
//! proxy keeps a modified database `modifying` and new instances `Pending` for a while, as
//! real AWS does; moto does both at once.

use std::time::{Duration, Instant};

use serde_json::Value;
use tierdeck_tests::aws::FaultProxy;
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{wait_for, Api, Moto, TestApp, NO_APPROVAL_FLOOR};

/// Starts applying change `id` and waits until it is no longer applying.
async fn apply(api: &Api, id: i64) -> Value {
    api.planned(id).await;
    let res = api.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
    wait_for(&format!("change {id} to finish applying"), 120, || async {
        let d = api.get_json(&format!("/api/v1/changes/{id}")).await;
        (d["status"] != "applying").then_some(d)
    })
    .await
}

fn step<'a>(d: &'a Value, call: &str) -> &'a Value {
    d["apply"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|s| s["operation"]["aws_call"] == call)
        .unwrap_or_else(|| panic!("no {call} step in {:#}", d["apply"]))
}

#[tokio::test]
async fn a_database_that_does_not_settle_in_time_fails_the_step_and_frees_the_lock() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.rds_modifies_for(Duration::from_secs(60));
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_APPLY__SETTLE_DATABASE_TIMEOUT_SECS", "3"),
        ],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    let id = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let started = Instant::now();
    let d = apply(&op, id).await;
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(d["status"], "failed", "{:#}", d["apply"]);
    let s = step(&d, "rds:ModifyDBInstance");
    assert_eq!(s["status"], "failed");
    assert_eq!(s["settling"]["state"], "timed_out");
    let error = s["error"].as_str().unwrap();
    assert!(
        error.starts_with("did not settle within 3 s: waiting for database petclinic-prod-db available with nothing pending; AWS still shows modifying: instance_class → db.t3.medium"),
        "{error}"
    );
    let run_error = d["apply"]["error"].as_str().unwrap();
    assert!(
        run_error.starts_with("step 36 (rds:ModifyDBInstance): did not settle within 3 s"),
        "{run_error}"
    );
    let env = op.get_json("/api/v1/environments/prod").await;
    assert_eq!(env["applying"], Value::Null, "the lock is free");
    let timed_out = op
        .get_json("/api/v1/audit?action=aws.settle_timed_out")
        .await;
    assert_eq!(timed_out["events"].as_array().unwrap().len(), 1);
    assert_eq!(proxy.calls("ModifyDBInstance"), 1);
}

#[tokio::test]
async fn a_process_killed_while_a_step_settles_leaves_the_change_interrupted() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.rds_modifies_for(Duration::from_secs(60));
    let repo = SpecRepo::petclinic_ungated();
    let app =
        TestApp::watching_with(&repo.url(), 3600, Some(&proxy.url), &[NO_APPROVAL_FLOOR]).await;
    let op = app.api_as("olga", "operator").await;
    let id = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    op.planned(id).await;
    let res = op.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 202);
    wait_for("the database step to settle", 60, || async {
        let d = op.get_json(&format!("/api/v1/changes/{id}")).await;
        (step(&d, "rds:ModifyDBInstance")["settling"]["state"] == "settling").then_some(())
    })
    .await;
    let env = op.get_json("/api/v1/environments/prod").await;
    assert_eq!(env["applying"], id, "the lock holds while it settles");

    let app = app.kill_and_restart().await;
    let op = Api {
        base: app.base.clone(),
        ..op
    };
    let d = op.get_json(&format!("/api/v1/changes/{id}")).await;
    assert_eq!(d["status"], "interrupted", "{:#}", d["apply"]);
    let s = step(&d, "rds:ModifyDBInstance");
    assert_eq!(s["status"], "interrupted");
    assert_eq!(
        s["error"],
        "tierdeck stopped while this step settled: AWS took the call; plan again to see where it stands"
    );
    let env = op.get_json("/api/v1/environments/prod").await;
    assert_eq!(env["applying"], Value::Null, "lock freed");
    assert_eq!(proxy.calls("ModifyDBInstance"), 1);
}

#[tokio::test]
async fn raised_capacity_waits_for_its_instances_to_be_in_service() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_ungated();
    let app =
        TestApp::watching_with(&repo.url(), 3600, Some(&proxy.url), &[NO_APPROVAL_FLOOR]).await;
    let op = app.api_as("olga", "operator").await;
    let first = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let d = apply(&op, first).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    // moto: the database is available at once; one poll says so.
    assert_eq!(step(&d, "rds:ModifyDBInstance")["settling"]["polls"], 1);

    // New instances now take 4 s to be in service; prod waits for capacity and raises the web
    // tier's desired and min from 2 to 3.
    let launch = Duration::from_secs(4);
    proxy.asg_launches_take(launch).await;
    let raise = repo.commit(SEUNG, "Prod: a third web instance, waited for", |work| {
        let env = work.join("environments/prod/environment.yaml");
        let text = std::fs::read_to_string(&env).unwrap();
        std::fs::write(&env, format!("{text}  wait_for_capacity: true\n")).unwrap();
        let groups = work.join("environments/prod/autoscaling.yaml");
        let text = std::fs::read_to_string(&groups).unwrap().replacen(
            "    min: 2\n    max: 8\n    desired: 2\n",
            "    min: 3\n    max: 8\n    desired: 3\n",
            1,
        );
        std::fs::write(&groups, text).unwrap();
    });
    assert_eq!(op.post("/api/v1/sync").await.status(), 200);
    let id = op.change_for("prod", &raise).await["id"].as_i64().unwrap();
    let started = Instant::now();
    let d = apply(&op, id).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    assert!(started.elapsed() >= launch - Duration::from_millis(500));
    let steps = d["apply"]["steps"].as_array().unwrap();
    let desired = steps
        .iter()
        .find(|s| s["operation"]["change"] == "desired 2 → 3")
        .unwrap_or_else(|| panic!("{steps:#?}"));
    let t = &desired["settling"];
    assert_eq!(t["state"], "settled");
    assert_eq!(
        t["waiting_for"],
        "3 instance(s) of petclinic-prod-web in service"
    );
    assert!(t["polls"].as_u64().unwrap() >= 2, "{t}");
    assert!(t["elapsed_ms"].as_u64().unwrap() >= 3_000, "{t}");
    let min = steps
        .iter()
        .find(|s| s["operation"]["change"] == "min 2 → 3")
        .unwrap();
    assert_eq!(min["settling"]["polls"], 1, "already in service");
    // A step that lowers nothing and raises no min or desired does not settle.
    assert!(steps
        .iter()
        .filter(
            |s| s["operation"]["aws_call"] != "autoscaling:UpdateAutoScalingGroup"
                && s["operation"]["aws_call"] != "rds:ModifyDBInstance"
        )
        .all(|s| s["settling"].is_null()));
}
