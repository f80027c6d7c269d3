//! Reading AWS by the page, not by the group: the calls one observation makes (through the
//! tests' AWS proxy in front of moto, which pages long listings as AWS does), `tierdeck plan`
//! observing once, and the calls counted in `/metrics`.

use tierdeck_tests::aws::{query, tag_values, FaultProxy};
use tierdeck_tests::git::{SpecRepo, SEJIN};
use tierdeck_tests::{approve_and_apply, cli_with, wait_for, Moto, TestApp, NO_APPROVAL_FLOOR};

/// The describe calls an observation of prod makes, one of each.
const READS: [&str; 8] = [
    "DescribeAutoScalingGroups",
    "DescribePolicies",
    "DescribeScheduledActions",
    "DescribeAlarms",
    "DescribeDBInstances",
    "DescribeSecurityGroups",
    "DescribeSubnets",
    "DescribeNetworkAcls",
];

fn counts(proxy: &FaultProxy) -> Vec<u32> {
    READS.iter().map(|a| proxy.calls(a)).collect()
}

/// Items of a listing in the whole account, as moto holds them.
async fn listed(moto: &Moto, service: &str, action: &str, tag: &str) -> u32 {
    tag_values(&query(&moto.url, service, action, &[]).await, tag).len() as u32
}

#[tokio::test]
async fn a_plan_of_prod_reads_aws_in_eight_calls_and_follows_every_page() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_ungated();
    let app =
        TestApp::watching_with(&repo.url(), 3600, Some(&proxy.url), &[NO_APPROVAL_FLOOR]).await;
    let olga = app.api_as("olga", "operator").await;
    // The background plans of every environment first: then the proxy's counts are prod's.
    for env in ["staging"] {
        let c = wait_for(&format!("a {env} change"), 20, || async {
            olga.changes(env).await.into_iter().next()
        })
        .await;
        olga.planned(&c["id"]).await;
    }
    let change = olga.change_for("prod", &repo.head()).await;
    let id = change["id"].as_i64().unwrap();
    let d = olga.planned(id).await;
    assert_eq!(d["plan"]["aws_calls"], 8, "{}", d["plan"]);

    // Planned again, alone: one call of each describe, and the plan says so.
    let before = counts(&proxy);
    let res = olga.post(&format!("/api/v1/changes/{id}/plan")).await;
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["aws_calls"], 8, "{v}");
    let after = counts(&proxy);
    let made: Vec<u32> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(made, vec![1; 8], "calls by action: {READS:?}");

    let d = approve_and_apply(&[], &olga, id).await;
    assert_eq!(d["status"], "applied", "{}", d["apply"]);

    // AWS answers long listings in pages; here every page holds one item. A reader that
    // stopped at the first page would plan to create what it did not see.
    proxy.pages_of(1);
    let commit = repo.raise_was_peak(SEJIN);
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let change = olga.change_for("prod", &commit).await;
    let d = olga.planned(&change["id"]).await;
    let operations = d["plan"]["operations"].as_array().unwrap();
    assert_eq!(operations.len(), 1, "{operations:#?}");
    // One call per page: the account's policies and scheduled actions, prod's four alarms (and
    // one each for the groups, the databases, the security groups, the subnets and the ACLs).
    let policies = listed(&moto, "autoscaling", "DescribePolicies", "PolicyARN").await;
    let actions = listed(
        &moto,
        "autoscaling",
        "DescribeScheduledActions",
        "ScheduledActionName",
    )
    .await;
    assert!(policies >= 4 && actions >= 10, "{policies} {actions}");
    assert_eq!(
        d["plan"]["aws_calls"],
        1 + policies + actions + 4 + 1 + 1 + 1 + 1,
        "{}",
        d["plan"]
    );

    // Every request is counted by service and action.
    let metrics = app.client().get("/metrics").await.text().await.unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("tierdeck_aws_calls_total{") && l.contains("DescribePolicies"))
        .unwrap_or_else(|| panic!("no DescribePolicies count in\n{metrics}"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= u64::from(policies) + 3, "{line}");
}

#[tokio::test]
async fn tierdeck_plan_observes_once_and_leaves_nothing_running() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic();
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("TIERDECK_REPO__URL", repo.url()),
        ("TIERDECK_AWS__ENDPOINT_URL", proxy.url.clone()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // A fresh database: the command records the branch head's changes (every environment)
    // and plans prod once.
    let out = cli_with(dir.path(), &["plan", "prod"], None, &vars).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.trim_end().ends_with("with 8 AWS calls"), "{stdout}");
    // Recording reads each environment's launch templates and databases for its cost
    // (`DescribeAutoScalingGroups`, `DescribeDBInstances`); the listings only an observation
    // makes were made once: no plan ran beside the command's own.
    assert_eq!(
        &counts(&proxy)[1..4],
        &[1, 1, 1],
        "calls by action: {READS:?}"
    );
    assert_eq!(
        &counts(&proxy)[5..],
        &[1, 1, 1],
        "DescribeSecurityGroups, DescribeSubnets, DescribeNetworkAcls"
    );

    // The changes it recorded are planned by the server when it starts watching.
    let app = TestApp::watching_in(dir, &repo.url(), 3600, Some(&proxy.url)).await;
    let api = app.api_as("vic", "viewer").await;
    let change = api.change_for("prod", &repo.head()).await;
    let d = api.planned(&change["id"]).await;
    assert_eq!(d["plan"]["aws_calls"], 8);
    wait_for("staging's plan", 30, || async {
        let c = api.changes("staging").await.into_iter().next()?;
        let d = api.get_json(&format!("/api/v1/changes/{}", c["id"])).await;
        (d["plan"]["state"] == "planned").then_some(())
    })
    .await;
}
