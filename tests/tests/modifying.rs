//! Real RDS takes minutes: after `ModifyDBInstance` the instance is `modifying`, still shows its
//! old class and lists the new one under `PendingModifiedValues`. The tests' AWS proxy models
//! that in front of moto (which changes everything at once). tierdeck waits for the database
//! to settle before it calls the change applied, never calls a pending value drift, never asks
//! for the modification again and never piles a second one on.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tierdeck_tests::aws::{query, tag_value, FaultProxy};
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{error_of, wait_for, Api, Moto, TestApp};

/// Approves change `id` as each of `approvers` and starts its apply as `operator` (an
/// emergency, so prod's hours do not matter), without waiting for the end.
async fn approve_and_start(approvers: &[&Api], operator: &Api, id: i64) {
    operator.planned(id).await;
    for a in approvers {
        let res = a
            .post_json(&format!("/api/v1/changes/{id}/approve"), json!({}))
            .await;
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
    }
    let res = operator
        .post_json(
            &format!("/api/v1/changes/{id}/apply"),
            json!({ "emergency": true, "reason": "tested at any hour" }),
        )
        .await;
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

/// The step of `d`'s latest apply that modifies the database.
fn database_step(d: &Value) -> Value {
    d["apply"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operation"]["aws_call"] == "rds:ModifyDBInstance")
        .unwrap_or_else(|| panic!("no database step in {:#}", d["apply"]))
        .clone()
}

#[tokio::test]
async fn a_class_change_settles_before_it_is_applied_and_a_pending_value_is_no_drift() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let modifying = Duration::from_secs(5);
    proxy.rds_modifies_for(modifying);
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[("TIERDECK_POLLERS__DRIFT_INTERVAL_SECS", "1")],
    )
    .await;
    let ann = app.api_as("ann", "approver").await;
    let bo = app.api_as("bo", "approver").await;
    let olga = app.api_as("olga", "operator").await;

    // The first apply moves the sandbox's db.t3.small, Single-AZ database to the spec's
    // db.t3.medium, Multi-AZ: one ModifyDBInstance, then the step settles.
    let first = ann.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    approve_and_start(&[&ann, &bo], &olga, first).await;
    let started = Instant::now();

    // While it settles: the change is applying, its database step says what it waits for and
    // what AWS shows, the drift check (every second) never says drifted, and a newer commit's
    // plan refuses to pile a second modification on.
    let settling = wait_for("the database step to settle", 30, || async {
        let d = olga.get_json(&format!("/api/v1/changes/{first}")).await;
        let step = database_step(&d);
        (step["settling"]["state"] == "settling" && step["settling"]["polls"].as_u64() >= Some(1))
            .then_some((d, step))
    })
    .await;
    let (d, step) = settling;
    assert_eq!(d["status"], "applying");
    assert_eq!(step["status"], "running");
    assert_eq!(
        step["settling"]["waiting_for"],
        "database petclinic-prod-db available with nothing pending"
    );
    let seen = step["settling"]["last_seen"].as_str().unwrap();
    assert!(
        seen.starts_with("modifying: instance_class → db.t3.medium"),
        "{seen}"
    );
    let described = query(
        &proxy.url,
        "rds",
        "DescribeDBInstances",
        &[("DBInstanceIdentifier", "petclinic-prod-db")],
    )
    .await;
    assert_eq!(tag_value(&described, "DBInstanceStatus"), "modifying");
    assert!(
        described
            .contains("<PendingModifiedValues><DBInstanceClass>db.t3.medium</DBInstanceClass>"),
        "{described}"
    );

    let bigger = repo.commit(
        SEUNG,
        "Prod: a bigger database",
        repo.replace_in(
            "environments/prod/database.yaml",
            "instance_class: db.t3.medium",
            "instance_class: db.t3.large",
        ),
    );
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = ann.change_for("prod", &bigger).await["id"]
        .as_i64()
        .unwrap();
    let d = ann.planned(id).await;
    let errors = d["plan"]["errors"].to_string();
    assert!(
        errors.contains("it is `modifying` (instance_class → db.t3.medium, multi_az → true, backup_retention_days → 7): a new modification waits until it is available again"),
        "{errors}"
    );
    let (code, message) = error_of(
        ann.post_json(&format!("/api/v1/changes/{id}/approve"), json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (code, message.as_str()),
        (409, "It cannot be approved: its plan has errors.")
    );

    // The apply ends once RDS is done: applied, the step settled after several polls.
    let mut drift_states = Vec::new();
    let d = loop {
        let e = olga.get_json("/api/v1/environments/prod").await;
        drift_states.push(e["drift"]["state"].as_str().unwrap_or_default().to_owned());
        let d = olga.get_json(&format!("/api/v1/changes/{first}")).await;
        if d["status"] != "applying" {
            break d;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:#}",
            d["apply"]
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(started.elapsed() >= modifying, "it waited for RDS");
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    let step = database_step(&d);
    assert_eq!(step["status"], "done");
    assert_eq!(step["settling"]["state"], "settled");
    let polls = step["settling"]["polls"].as_u64().unwrap();
    assert!(
        (2..=8).contains(&polls),
        "{polls} polls in 5 s, backing off"
    );
    assert!(step["settling"]["elapsed_ms"].as_u64().unwrap() >= 4_000);
    assert!(
        !drift_states.iter().any(|s| s == "drifted"),
        "{drift_states:?}"
    );
    assert_eq!(
        proxy.calls("ModifyDBInstance"),
        1,
        "asked once, never again"
    );
    let settled = olga.get_json("/api/v1/audit?action=aws.settled").await;
    let settled = settled["events"].as_array().unwrap();
    assert_eq!(settled.len(), 1, "{settled:#?}");
    assert_eq!(settled[0]["detail"]["polls"], polls);

    // Available again: planned again, the newer change is one ModifyDBInstance from the new
    // class, and drift is in sync.
    let res = ann.post(&format!("/api/v1/changes/{id}/plan")).await;
    assert!(res.status().is_success(), "{}", res.status());
    let d = ann.get_json(&format!("/api/v1/changes/{id}")).await;
    let plan = &d["plan"];
    assert_eq!(plan["errors"], json!([]), "{plan:#}");
    let ops = plan["operations"].to_string();
    assert!(
        ops.contains("instance_class db.t3.medium → db.t3.large"),
        "{ops}"
    );
    wait_for("drift to be checked after the apply", 10, || async {
        let e = olga.get_json("/api/v1/environments/prod").await;
        (e["drift"]["state"] == "in_sync").then_some(())
    })
    .await;
}
