//! Against the AWS emulator (moto_server on a loopback port): the sandbox, `tierdeck plan` and
//! the plan of a recorded change.

use tierdeck_tests::aws::FaultProxy;
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{cli_in, cli_with, wait_for, workspace, Moto, TestApp};

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
    tierdeck_tests::snapshot::assert_matches("plan-prod.txt", &format!("{operations}\n"));
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

/// No key anywhere in the SDK's default chain: the environment's blank, no shared files
/// (the harness points them at /dev/null), no web identity, no instance metadata.
const NO_KEYS: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")];

#[tokio::test]
async fn missing_credentials_say_which_chain_was_tried_and_what_to_set_not_that_aws_is_unreachable()
{
    let moto = Moto::start().await;
    let repo = SpecRepo::petclinic();
    let dir = tempfile::tempdir().unwrap();
    let spec = workspace().join("examples/petclinic");
    let out = cli_with(
        dir.path(),
        &[
            "sandbox",
            "up",
            "--endpoint",
            &moto.url,
            "--spec",
            spec.to_str().unwrap(),
        ],
        None,
        &NO_KEYS,
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for named in [
        "no AWS credentials",
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "EC2 instance profile",
        "AWS_ACCESS_KEY_ID=demo",
    ] {
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
    assert!(!stderr.contains("could not reach"), "{stderr}");

    moto.sandbox(&spec).await;
    let mut env = vec![
        ("TIERDECK_REPO__URL", repo.url()),
        ("TIERDECK_AWS__ENDPOINT_URL", moto.url.clone()),
    ];
    env.extend(NO_KEYS.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = cli_with(dir.path(), &["plan", "prod"], None, &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no AWS credentials") && stderr.contains("AWS_ACCESS_KEY_ID=demo"),
        "{stderr}"
    );
    assert!(!stderr.contains("could not reach"), "{stderr}");

    // The panel says the same on the change's plan, and when planned again.
    let app =
        tierdeck_tests::TestApp::watching_with(&repo.url(), 3600, Some(&moto.url), &NO_KEYS).await;
    let api = app.api_as("olga", "operator").await;
    let change = api.change_for("prod", &repo.head()).await;
    let path = format!("/api/v1/changes/{}", change["id"]);
    let detail = wait_for("the planning attempt", 60, || async {
        let d = api.get_json(&path).await;
        (d["plan"]["state"] == "unavailable").then_some(d)
    })
    .await;
    let reason = detail["plan"]["reason"].as_str().unwrap();
    assert!(reason.contains("no AWS credentials"), "{reason}");
    let res = api.post(&format!("{path}/plan")).await;
    assert_eq!(res.status(), 200);
    let again: serde_json::Value = res.json().await.unwrap();
    assert_eq!(again["state"], "unavailable", "{again}");
    assert!(
        again["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no AWS credentials") && r.contains("AWS_PROFILE")),
        "{again}"
    );
}

#[tokio::test]
async fn credentials_aws_rejects_are_told_apart_from_a_refused_action_and_an_unreachable_endpoint()
{
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.known_keys(&["AKIAKNOWNKEY"]);
    let repo = SpecRepo::petclinic();
    let dir = tempfile::tempdir().unwrap();
    let plan = |endpoint: String, key: &'static str| {
        let (dir, url) = (dir.path().to_owned(), repo.url());
        async move {
            let env = [
                ("TIERDECK_REPO__URL", url.as_str()),
                ("TIERDECK_AWS__ENDPOINT_URL", endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", key),
            ];
            let out = cli_with(&dir, &["plan", "prod"], None, &env).await;
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (code, stderr) = plan(proxy.url.clone(), "AKIAUNKNOWNKEY").await;
    assert_eq!(code, Some(1), "{stderr}");
    // Each service answers in its own shape (EC2's `AuthFailure`, the others'
    // `InvalidClientTokenId`); whichever call came first is the one reported.
    assert!(
        stderr.contains("AWS rejected the credentials (InvalidClientTokenId: The security token included in the request is invalid.)")
            || stderr.contains("AWS rejected the credentials (AuthFailure: AWS was not able to validate the provided access credentials)"),
        "{stderr}"
    );
    assert!(stderr.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
    assert!(
        !stderr.contains("access denied") && !stderr.contains("could not reach"),
        "{stderr}"
    );

    let (code, stderr) = plan(proxy.url.clone(), "AKIAKNOWNKEY").await;
    assert_eq!(code, Some(0), "the known key plans: {stderr}");

    // A closed port is still an unreachable endpoint.
    let closed = format!("http://127.0.0.1:{}", tierdeck_tests::free_port().unwrap());
    let (code, stderr) = plan(closed, "AKIAKNOWNKEY").await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("could not reach AWS"), "{stderr}");
    assert!(!stderr.contains("credentials"), "{stderr}");
}

#[tokio::test]
async fn the_command_line_honours_tierdeck_log_on_standard_error() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic();
    let dir = tempfile::tempdir().unwrap();
    let url = repo.url();
    let base = [
        ("TIERDECK_REPO__URL", url.as_str()),
        ("TIERDECK_AWS__ENDPOINT_URL", moto.url.as_str()),
    ];
    let quiet = cli_with(dir.path(), &["plan", "prod"], None, &base).await;
    assert!(quiet.status.success());
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        !stderr.contains("DescribeAutoScalingGroups"),
        "no log unless asked: {stderr}"
    );

    let mut traced = base.to_vec();
    traced.push(("TIERDECK_LOG", "info,tierdeck_engine::aws=debug"));
    let out = cli_with(dir.path(), &["plan", "prod"], None, &traced).await;
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stderr.contains("aws") && stderr.contains("DescribeAutoScalingGroups"),
        "each AWS call logs its span: {stderr}"
    );
    // The plan itself stays on standard output, the log apart (the last line names how long
    // the reading took, which differs).
    let operations = |text: &str| -> Vec<String> {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[..lines.len() - 1].to_vec()
    };
    assert_eq!(
        operations(&stdout),
        operations(&String::from_utf8_lossy(&quiet.stdout))
    );
}
