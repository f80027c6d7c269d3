//! Real RDS takes minutes: after `ModifyDBInstance` the instance is `modifying`, still shows its
//! old class and lists the new one under `PendingModifiedValues`. The tests' AWS proxy models
//! that in front of moto (which changes everything at once); tierdeck must neither call it
//! drift nor ask for the modification again, and must not pile a second one on.

use std::time::{Duration, Instant};

use serde_json::json;
use tierdeck_tests::aws::{query, tag_value, FaultProxy};
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{approve_and_apply, error_of, Moto, TestApp};

#[tokio::test]
async fn a_database_still_modifying_is_no_drift_and_takes_no_second_modification() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let modifying = Duration::from_secs(15);
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
    // db.t3.medium, Multi-AZ: one ModifyDBInstance.
    let first = ann.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    approve_and_apply(&[&ann, &bo], &olga, first).await;
    let started = Instant::now();
    let d = olga.get_json(&format!("/api/v1/changes/{first}")).await;
    assert_eq!(d["summary"]["status"], "applied", "{:#}", d["apply"]);
    assert_eq!(proxy.calls("ModifyDBInstance"), 1);
    // AWS (through the proxy) still shows the old class, the new one pending.
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

    // Drift is checked every second meanwhile: in sync each time, saying what is pending.
    let mut noted = false;
    while started.elapsed() < modifying - Duration::from_secs(4) {
        let e = olga.get_json("/api/v1/environments/prod").await;
        assert_ne!(e["drift"]["state"], "drifted", "{:#}", e["drift"]);
        noted |= e["drift"]["notes"]
            .to_string()
            .contains("database petclinic-prod-db is modifying: instance_class → db.t3.medium");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(noted, "the drift check says the database is modifying");
    assert_eq!(
        proxy.calls("ModifyDBInstance"),
        1,
        "asked once, never again"
    );

    // A bigger class while it is modifying: the plan refuses it with the reason, so nobody
    // can approve it.
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
    let errors = d["plan"]["plan"]["errors"].to_string();
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

    // Available again: planned again, it is one ModifyDBInstance from the new class.
    let left = modifying.saturating_sub(started.elapsed()) + Duration::from_secs(1);
    tokio::time::sleep(left).await;
    let res = ann.post(&format!("/api/v1/changes/{id}/plan")).await;
    assert!(res.status().is_success(), "{}", res.status());
    let d = ann.get_json(&format!("/api/v1/changes/{id}")).await;
    let plan = &d["plan"]["plan"];
    assert_eq!(plan["errors"], json!([]), "{plan:#}");
    let ops = plan["operations"].to_string();
    assert!(
        ops.contains("instance_class db.t3.medium → db.t3.large"),
        "{ops}"
    );
    let e = olga.get_json("/api/v1/environments/prod").await;
    assert_eq!(e["drift"]["state"], "in_sync", "{:#}", e["drift"]);
}
