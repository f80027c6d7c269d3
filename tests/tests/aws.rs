//! Against the AWS emulator (moto_server on a loopback port): the sandbox, `tierdeck plan` and
//! the plan of a recorded change.

use std::path::PathBuf;

use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{cli_in, cli_with, wait_for, workspace, Moto, TestApp};

fn snapshot(name: &str) -> PathBuf {
    workspace().join("tests/snapshots").join(name)
}

/// Compares with a reviewed snapshot; `UPDATE_SNAPSHOTS=1` rewrites it for review.
fn assert_snapshot(name: &str, actual: &str) {
    let path = snapshot(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        actual,
        expected,
        "differs from the reviewed snapshot {}",
        path.display()
    );
}

async fn sandbox(moto: &Moto) {
    let spec = workspace().join("examples/petclinic");
    let text = moto.sandbox(&spec).await;
    assert!(
        text.contains(
            "prod: created autoscaling group petclinic-prod-was (min 1, max 3, desired 1)"
        ),
        "{text}"
    );
    // Running it again changes nothing.
    assert_eq!(
        moto.sandbox(&spec).await,
        "prod: everything already exists\nstaging: everything already exists\n"
    );
}

#[tokio::test]
async fn the_sandbox_refuses_endpoints_off_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    for endpoint in [
        "http://10.1.2.3:5000",
        "https://autoscaling.ap-northeast-2.amazonaws.com",
    ] {
        let out = cli_in(
            dir.path(),
            &["sandbox", "up", "--endpoint", endpoint, "--spec", "."],
            None,
        )
        .await;
        assert_eq!(out.status.code(), Some(2), "{endpoint}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is not a loopback address"),
            "{endpoint}"
        );
    }
}

#[tokio::test]
async fn the_plan_of_prod_against_the_sandbox_matches_the_reviewed_snapshot() {
    let moto = Moto::start().await;
    sandbox(&moto).await;
    let repo = SpecRepo::petclinic();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TIERDECK_REPO__URL", repo.url()),
        ("TIERDECK_AWS__ENDPOINT_URL", moto.url.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = cli_with(dir.path(), &["plan", "prod"], None, &env).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (body, last) = stdout.trim_end().rsplit_once('\n').unwrap();
    // The first line names the commit, which differs per run.
    let (_, operations) = body.split_once('\n').unwrap();
    assert_snapshot("plan-prod.txt", &format!("{operations}\n"));
    assert!(
        last.starts_with("36 operations, 0 errors; plan hash "),
        "{last}"
    );

    // A group the spec names that AWS does not have is a plan error, not a creation.
    repo.commit(
        SEUNG,
        "Rename the web group",
        repo.replace_in(
            "environments/prod/autoscaling.yaml",
            "name: petclinic-prod-web",
            "name: petclinic-prod-api",
        ),
    );
    let out = cli_with(dir.path(), &["plan", "prod"], None, &env).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("  error: autoscaling group petclinic-prod-api: does not exist in AWS; tierdeck manages settings of existing resources and creates none"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_recorded_change_gets_its_plan_and_can_be_planned_again() {
    let moto = Moto::start().await;
    sandbox(&moto).await;
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    let api = app.api_as("vic", "viewer").await;
    let change = api.change_for("prod", &repo.head()).await;
    let path = format!("/api/v1/changes/{}", change["id"]);
    let detail = wait_for("its plan", 20, || async {
        let d = api.get_json(&path).await;
        (d["plan"]["state"] == "planned").then_some(d)
    })
    .await;
    let ops = detail["plan"]["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 36);
    assert_eq!(ops[6]["aws_call"], "autoscaling:UpdateAutoScalingGroup");
    assert_eq!(ops[6]["change"], "max 3 → 8");
    assert_eq!(detail["plan"]["hash"].as_str().unwrap().len(), 64);

    let res = api.post(&format!("{path}/plan")).await;
    assert_eq!(res.status(), 200);
    let again: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        again["hash"], detail["plan"]["hash"],
        "nothing moved: the same plan"
    );

    let page = tierdeck_tests::without_markers(
        &app.login("vic")
            .await
            .get(&format!("/changes/{}", change["id"]))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        page.contains("Plan against live AWS") && page.contains("max 3 → 8"),
        "the change page shows the plan"
    );
}

#[tokio::test]
async fn without_a_reachable_aws_the_change_says_why_it_has_no_plan() {
    let repo = SpecRepo::petclinic();
    // The default test endpoint is a closed loopback port.
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    let api = app.api_as("vic", "viewer").await;
    let change = api.change_for("prod", &repo.head()).await;
    let detail = wait_for("the planning attempt", 60, || async {
        let d = api
            .get_json(&format!("/api/v1/changes/{}", change["id"]))
            .await;
        (d["plan"]["state"] == "unavailable").then_some(d)
    })
    .await;
    let reason = detail["plan"]["reason"].as_str().unwrap();
    assert!(reason.contains("could not reach AWS"), "{reason}");
}
