//! An operator's "Revert" of an applied change: a change like any other that applies again the
//! commit applied before it, judged and approved as usual; afterwards the environment says it
//! is reverted, and the branch's reverted commit is not applied again until a newer one lands.

use serde_json::Value;
use tierdeck_tests::aws::{query, tag_value};
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{approve_and_apply, error_of, Moto, TestApp};

async fn web_max(moto: &str) -> String {
    let xml = query(
        moto,
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "petclinic-prod-web")],
    )
    .await;
    tag_value(&xml, "MaxSize")
}

fn web_max_edit(repo: &SpecRepo, from: u32, to: u32) -> impl FnOnce(&std::path::Path) + '_ {
    repo.replace_in(
        "environments/prod/autoscaling.yaml",
        &format!("    min: 2\n    max: {from}\n    desired: 2\n    instance_type: t3.medium\n    cpu_scaling:\n      scale_out_above: 50"),
        &format!("    min: 2\n    max: {to}\n    desired: 2\n    instance_type: t3.medium\n    cpu_scaling:\n      scale_out_above: 50"),
    )
}

#[tokio::test]
async fn an_operator_reverts_an_applied_change_and_the_branch_head_waits_for_a_newer_commit() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    let ann = app.api_as("ann", "approver").await;
    let bo = app.api_as("bo", "approver").await;
    let olga = app
        .api_with_email("olga", "operator", "olga@petclinic.example")
        .await;
    let vic = app.api_as("vic", "viewer").await;

    let first_commit = repo.head();
    let first = ann.change_for("prod", &first_commit).await["id"]
        .as_i64()
        .unwrap();
    approve_and_apply(&[&ann, &bo], &olga, first).await;
    let (code, message) =
        error_of(olga.post(&format!("/api/v1/changes/{first}/revert")).await).await;
    assert_eq!(
        (code, message.as_str()),
        (409, format!("Change {first} was the first apply of prod: there is no earlier applied commit to go back to.").as_str())
    );

    let narrow = repo.commit(SEUNG, "Prod: web max 6", web_max_edit(&repo, 8, 6));
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let second = ann.change_for("prod", &narrow).await["id"]
        .as_i64()
        .unwrap();
    approve_and_apply(&[&ann, &bo], &olga, second).await;
    assert_eq!(web_max(&moto.url).await, "6");
    let d = olga.get_json(&format!("/api/v1/changes/{second}")).await;
    assert_eq!(d["revert"]["state"], "allowed", "{:#}", d["revert"]);

    let (code, message) =
        error_of(vic.post(&format!("/api/v1/changes/{second}/revert")).await).await;
    assert_eq!(code, 403, "{message}");

    // The revert: a new change from the applied commit back to the one before it.
    let res = olga.post(&format!("/api/v1/changes/{second}/revert")).await;
    assert_eq!(res.status(), 201);
    let r: Value = res.json().await.unwrap();
    let revert = r["id"].as_i64().unwrap();
    assert_eq!(r["kind"], "revert");
    assert_eq!(r["reverts"], second);
    assert_eq!(r["status"], "pending");
    assert_eq!(r["commit"]["sha"], first_commit);
    assert_eq!(r["base_commit"], narrow);
    assert_eq!(r["authors"][0]["email"], "olga@petclinic.example");
    let edits = r["semantic_diff"].to_string();
    assert!(
        edits.contains("autoscaling_groups[petclinic-prod-web].max"),
        "{edits}"
    );
    assert!(r["files"][0]["diff"]
        .as_str()
        .unwrap()
        .contains("+    max: 8"));
    let planned = olga.planned(revert).await;
    let ops = planned["plan"]["operations"].to_string();
    assert!(ops.contains("max 6 → 8"), "{ops}");
    assert_eq!(
        planned["policy"]["required_approvals"], 2,
        "the applied rules"
    );
    // Its author does not approve it; two others do, and it applies like any change.
    let (code, _) = error_of(
        olga.post_json(
            &format!("/api/v1/changes/{revert}/approve"),
            serde_json::json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(code, 403);
    let d = approve_and_apply(&[&ann, &bo], &olga, revert).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    assert_eq!(web_max(&moto.url).await, "8");

    let env = olga.get_json("/api/v1/environments/prod").await;
    assert_eq!(env["last_applied_commit"], first_commit);
    assert_eq!(env["reverted"]["to"], first_commit);
    assert_eq!(env["reverted"]["from"], narrow);
    let page = app.login_new("sam", "viewer").await;
    let html = tierdeck_tests::without_markers(
        &page.get("/environments/prod").await.text().await.unwrap(),
    );
    assert!(html.contains("is not applied"), "{html}");

    // The reverted change is no longer what prod runs: it cannot be reverted again.
    let (code, message) =
        error_of(olga.post(&format!("/api/v1/changes/{second}/revert")).await).await;
    assert_eq!(code, 409);
    assert!(message.contains("applied after change"), "{message}");

    // A sync records nothing for the branch's own (reverted) head.
    let before = olga.changes("prod").await.len();
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    assert_eq!(olga.changes("prod").await.len(), before);

    // A newer commit lands: a change from the reverted-to commit, whose apply ends the revert.
    let seven = repo.commit(SEUNG, "Prod: web max 7", web_max_edit(&repo, 6, 7));
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let third = ann.change_for("prod", &seven).await["id"].as_i64().unwrap();
    let c = olga.get_json(&format!("/api/v1/changes/{third}")).await;
    assert_eq!(c["base_commit"], first_commit);
    let planned = olga.planned(third).await;
    let ops = planned["plan"]["operations"].to_string();
    assert!(ops.contains("max 8 → 7"), "{ops}");
    approve_and_apply(&[&ann, &bo], &olga, third).await;
    let env = olga.get_json("/api/v1/environments/prod").await;
    assert_eq!(env["reverted"], Value::Null);
    assert_eq!(web_max(&moto.url).await, "7");
    let actions = olga.audit_actions("environment=prod").await;
    assert!(actions.contains(&"change.revert_created".to_owned()));
}
