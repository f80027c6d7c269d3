//! Applying changes against the AWS emulator: the full apply and its read-back, drift and
//! reconcile, retries and clean failures behind a faulty network, and a kill during an apply.

use std::time::{Duration, Instant};

use serde_json::Value;
use tierdeck_tests::aws::{query, tag_value, tag_values, Fault, FaultProxy};
use tierdeck_tests::git::{SpecRepo, SEJIN};
use tierdeck_tests::{wait_for, Api, Moto, TestApp, NO_APPROVAL_FLOOR};

const WEB: &str = "petclinic-prod-web";
const WAS: &str = "petclinic-prod-was";

/// Starts applying change `id` and waits until the run ends; returns the change and the time.
async fn apply(api: &Api, id: i64) -> (Value, Duration) {
    let started = Instant::now();
    let res = api.post(&format!("/api/v1/changes/{id}/apply")).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 202, "{body:#}");
    let detail = wait_for(&format!("change {id} to finish applying"), 120, || async {
        let d = api.get_json(&format!("/api/v1/changes/{id}")).await;
        (d["status"] != "applying").then_some(d)
    })
    .await;
    (detail, started.elapsed())
}

fn steps(detail: &Value) -> &Vec<Value> {
    detail["apply"]["steps"].as_array().expect("apply steps")
}

fn step_statuses(detail: &Value) -> Vec<String> {
    steps(detail)
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .collect()
}

async fn environment(api: &Api, env: &str) -> Value {
    api.get_json(&format!("/api/v1/environments/{env}")).await
}

/// `tierdeck plan prod` against the app's database and the emulator.
async fn group_xml(moto: &str, name: &str) -> String {
    query(
        moto,
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", name)],
    )
    .await
}

#[tokio::test]
async fn an_applied_change_matches_aws_and_drift_is_found_and_reconciled() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&moto.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_POLLERS__DRIFT_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    let viewer = app.api_as("vic", "viewer").await;
    let head = repo.head();
    let id = op.change_for("prod", &head).await["id"].as_i64().unwrap();
    let plan = op.planned(id).await;
    assert_eq!(plan["plan"]["operations"].as_array().unwrap().len(), 36);

    // Only operators apply.
    let res = viewer.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        environment(&op, "prod").await["drift"]["state"],
        "unchecked"
    );

    let (detail, _) = apply(&op, id).await;
    assert_eq!(detail["status"], "applied", "{detail:#}");
    assert_eq!(detail["apply"]["status"], "applied");
    assert_eq!(step_statuses(&detail), vec!["done"; 36]);
    for s in steps(&detail) {
        assert_eq!(s["attempts"], 1, "{s}");
        assert!(
            s["request_id"].as_str().is_some_and(|r| !r.is_empty()),
            "{s}"
        );
        assert!(s["started_at"].is_string() && s["finished_at"].is_string());
    }
    let env = environment(&op, "prod").await;
    assert_eq!(env["last_applied_commit"], head.as_str());
    assert_eq!(env["applying"], Value::Null);
    // An applied change is not applied twice.
    let res = op.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 409);

    // Every setting, read back from the emulator without tierdeck, is the spec's.
    for (group, min, max, desired) in [(WEB, "2", "8", "2"), (WAS, "2", "8", "2")] {
        let xml = group_xml(&moto.url, group).await;
        assert_eq!(tag_value(&xml, "MinSize"), min, "{group}");
        assert_eq!(tag_value(&xml, "MaxSize"), max, "{group}");
        assert_eq!(tag_value(&xml, "DesiredCapacity"), desired, "{group}");
        let actions = query(
            &moto.url,
            "autoscaling",
            "DescribeScheduledActions",
            &[("AutoScalingGroupName", group)],
        )
        .await;
        assert_eq!(
            tag_values(&actions, "ScheduledActionName").len(),
            5,
            "{actions}"
        );
        assert!(tag_values(&actions, "TimeZone")
            .iter()
            .all(|z| z == "Asia/Seoul"));
        let policies = query(
            &moto.url,
            "autoscaling",
            "DescribePolicies",
            &[("AutoScalingGroupName", group)],
        )
        .await;
        let mut adjustments = tag_values(&policies, "ScalingAdjustment");
        adjustments.sort();
        assert_eq!(adjustments, ["-1", "1"], "{policies}");
        let prefix = format!("tierdeck-{group}-cpu-");
        let alarms = query(
            &moto.url,
            "monitoring",
            "DescribeAlarms",
            &[("AlarmNamePrefix", prefix.as_str())],
        )
        .await;
        let mut thresholds = tag_values(&alarms, "Threshold");
        thresholds.sort();
        assert_eq!(thresholds, ["30.0", "50.0"], "{alarms}");
        assert!(alarms.contains("<MetricName>CPUUtilization</MetricName>"));
        assert!(alarms.contains(&format!("<Value>{group}</Value>")));
    }
    let db = query(
        &moto.url,
        "rds",
        "DescribeDBInstances",
        &[("DBInstanceIdentifier", "petclinic-prod-db")],
    )
    .await;
    assert_eq!(tag_value(&db, "DBInstanceClass"), "db.t3.medium");
    assert_eq!(tag_value(&db, "MultiAZ"), "true");
    assert_eq!(tag_value(&db, "BackupRetentionPeriod"), "7");
    assert_eq!(tag_value(&db, "DeletionProtection"), "true");
    let sgs = query(
        &moto.url,
        "ec2",
        "DescribeSecurityGroups",
        &[
            ("Filter.1.Name", "group-name"),
            ("Filter.1.Value.1", "petclinic-prod-db-sg"),
        ],
    )
    .await;
    assert_eq!(tag_values(&sgs, "fromPort"), ["3306"], "{sgs}");

    // The plan made again finds nothing to do.
    let out = app.cli_plan("prod", &repo.url(), &moto.url).await;
    assert!(out.contains("No changes: prod matches its spec."), "{out}");

    // Every AWS call is in the audit log, with its request id.
    let calls = op.get_json("/api/v1/audit?action=aws.call&limit=100").await;
    let calls = calls["events"].as_array().unwrap();
    assert_eq!(calls.len(), 36);
    assert!(calls.iter().all(|e| e["detail"]["outcome"] == "ok"));
    let trail = op.audit_actions("env=prod&limit=100").await;
    assert!(trail.contains(&"change.apply_started".to_owned()));
    assert!(trail.contains(&"change.applied".to_owned()));

    // Someone lowers the web group's max in the console: drift.
    query(
        &moto.url,
        "autoscaling",
        "UpdateAutoScalingGroup",
        &[("AutoScalingGroupName", WEB), ("MaxSize", "5")],
    )
    .await;
    let drift = wait_for("prod to show drift", 30, || async {
        let e = environment(&op, "prod").await;
        (e["drift"]["state"] == "drifted").then(|| e["drift"].clone())
    })
    .await;
    let ops = drift["plan"]["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "{drift:#}");
    assert_eq!(ops[0]["change"], "max 5 → 8");
    assert!(op
        .audit_actions("action=environment.drift_detected")
        .await
        .contains(&"environment.drift_detected".to_owned()));
    let listed = op.get_json("/api/v1/environments").await;
    assert_eq!(listed[0]["name"], "prod");
    assert_eq!(listed[0]["drift"]["state"], "drifted");

    // Reconcile turns it into a change that goes through apply like any other.
    let res = viewer.post("/api/v1/environments/prod/reconcile").await;
    assert_eq!(res.status(), 403);
    let res = op.post("/api/v1/environments/prod/reconcile").await;
    assert_eq!(res.status(), 201);
    let rc: Value = res.json().await.unwrap();
    assert_eq!(rc["kind"], "reconcile");
    assert_eq!(rc["status"], "pending");
    assert_eq!(rc["commit"]["sha"], head.as_str());
    assert_eq!(rc["plan"]["operations"][0]["change"], "max 5 → 8");
    let rc_id = rc["id"].as_i64().unwrap();
    let (done, _) = apply(&op, rc_id).await;
    assert_eq!(done["status"], "applied", "{done:#}");
    assert_eq!(tag_value(&group_xml(&moto.url, WEB).await, "MaxSize"), "8");
    wait_for("prod to be in sync again", 30, || async {
        (environment(&op, "prod").await["drift"]["state"] == "in_sync").then_some(())
    })
    .await;
    assert!(op
        .audit_actions("action=environment.drift_cleared")
        .await
        .contains(&"environment.drift_cleared".to_owned()));
    let res = op.post("/api/v1/environments/prod/reconcile").await;
    assert_eq!(res.status(), 409, "no drift, nothing to reconcile");

    // A one-field change: the was tier's evening peak goes up to 8.
    let commit = repo.raise_was_peak(SEJIN);
    assert_eq!(op.post("/api/v1/sync").await.status(), 200);
    let one = op.change_for("prod", &commit).await["id"].as_i64().unwrap();
    let p = op.planned(one).await;
    let ops = p["plan"]["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "{p:#}");
    assert_eq!(
        ops[0]["aws_call"],
        "autoscaling:PutScheduledUpdateGroupAction"
    );
    let (done, _) = apply(&op, one).await;
    assert_eq!(done["status"], "applied", "{done:#}");
    let actions = query(
        &moto.url,
        "autoscaling",
        "DescribeScheduledActions",
        &[
            ("AutoScalingGroupName", WAS),
            ("ScheduledActionNames.member.1", "was-peak"),
        ],
    )
    .await;
    assert_eq!(tag_value(&actions, "MaxSize"), "8");
    assert_eq!(
        environment(&op, "prod").await["last_applied_commit"],
        commit.as_str()
    );
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_then_fail_cleanly_and_hangs_time_out() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_AWS__MAX_ATTEMPTS", "3"),
            ("TIERDECK_AWS__ATTEMPT_TIMEOUT_SECS", "2"),
        ],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    let id = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    op.planned(id).await;

    // Two throttled answers on the capacity calls are retried; the scheduled actions answer
    // 500 every time, so the run stops there.
    proxy.fail("UpdateAutoScalingGroup", Fault::Throttle, Some(2));
    proxy.fail("PutScheduledUpdateGroupAction", Fault::ServerError, None);
    let (detail, _) = apply(&op, id).await;
    assert_eq!(detail["status"], "failed", "{detail:#}");
    assert_eq!(detail["apply"]["status"], "failed");
    let statuses = step_statuses(&detail);
    assert_eq!(statuses[..20], vec!["done"; 20]);
    assert_eq!(statuses[20], "failed");
    assert_eq!(statuses[21..], vec!["pending"; 15]);
    let s = steps(&detail);
    assert_eq!(s[6]["attempts"], 3, "throttled twice, then done: {}", s[6]);
    assert_eq!(s[7]["attempts"], 1);
    assert_eq!(s[20]["attempts"], 3, "{}", s[20]);
    let error = s[20]["error"].as_str().unwrap();
    assert!(error.contains("InternalFailure"), "{error}");
    assert!(detail["apply"]["error"]
        .as_str()
        .unwrap()
        .starts_with("step 21 (autoscaling:PutScheduledUpdateGroupAction)"));
    assert_eq!(proxy.calls("PutScheduledUpdateGroupAction"), 3);
    assert_eq!(
        environment(&op, "prod").await["applying"],
        Value::Null,
        "lock freed"
    );
    assert_eq!(
        environment(&op, "prod").await["last_applied_commit"],
        Value::Null
    );
    let trail = op.audit_actions("action=change.apply_failed").await;
    assert_eq!(trail, ["change.apply_failed"]);
    let errors = op.get_json("/api/v1/audit?action=aws.call&limit=100").await;
    let failed_calls = errors["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["outcome"] == "error")
        .count();
    assert_eq!(failed_calls, 2 + 3);

    // The stored plan is stale now: an apply is refused until the plan is made again.
    proxy.heal();
    let res = op.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the live state changed since the plan was made"),
        "{body}"
    );
    let left = op.planned(id).await;
    assert_eq!(
        left["plan"]["operations"].as_array().unwrap().len(),
        16,
        "what is left: {left:#}"
    );

    // A call that never answers times out, is retried, then fails.
    proxy.fail("ModifyDBInstance", Fault::Hang, None);
    let (detail, took) = apply(&op, id).await;
    assert_eq!(detail["status"], "failed", "{detail:#}");
    let s = steps(&detail);
    let last = s.last().unwrap();
    assert_eq!(last["status"], "failed");
    assert_eq!(last["attempts"], 3);
    assert!(
        last["error"].as_str().unwrap().contains("timed out"),
        "{last}"
    );
    assert!(
        took >= Duration::from_secs(6),
        "three 2 s attempts: {took:?}"
    );
    assert_eq!(detail["runs"], 2);

    proxy.heal();
    op.post(&format!("/api/v1/changes/{id}/plan")).await;
    let (detail, _) = apply(&op, id).await;
    assert_eq!(detail["status"], "applied", "{detail:#}");
    assert_eq!(detail["runs"], 3);
}

#[tokio::test]
async fn a_process_killed_during_an_apply_leaves_it_interrupted_and_a_new_plan_finishes_it() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_AWS__ATTEMPT_TIMEOUT_SECS", "60"),
        ],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    let id = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    op.planned(id).await;

    // The database call, the last step, hangs; tierdeck is killed while it waits.
    proxy.fail("ModifyDBInstance", Fault::Hang, None);
    let res = op.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 202);
    wait_for("the last step to be running", 60, || async {
        let d = op.get_json(&format!("/api/v1/changes/{id}")).await;
        (steps(&d).last().unwrap()["status"] == "running").then_some(())
    })
    .await;
    assert_eq!(environment(&op, "prod").await["applying"], id);
    let app = app.kill_and_restart().await;
    proxy.heal();
    // The restarted panel listens on a new port; the token still holds.
    let op = Api {
        base: app.base.clone(),
        ..op
    };

    let d = op.get_json(&format!("/api/v1/changes/{id}")).await;
    assert_eq!(d["status"], "interrupted", "{d:#}");
    assert_eq!(d["apply"]["status"], "interrupted");
    let statuses = step_statuses(&d);
    assert_eq!(statuses[..35], vec!["done"; 35]);
    assert_eq!(statuses[35], "interrupted");
    assert!(steps(&d)[35]["error"]
        .as_str()
        .unwrap()
        .contains("may or may not"));
    assert_eq!(
        environment(&op, "prod").await["applying"],
        Value::Null,
        "lock freed"
    );
    assert!(op
        .audit_actions("action=change.interrupted")
        .await
        .contains(&"change.interrupted".to_owned()));

    // A new plan shows what is left; applying it converges.
    let res = op.post(&format!("/api/v1/changes/{id}/plan")).await;
    assert_eq!(res.status(), 200);
    let left: Value = res.json().await.unwrap();
    let ops = left["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "{left:#}");
    assert_eq!(ops[0]["aws_call"], "rds:ModifyDBInstance");
    let (detail, _) = apply(&op, id).await;
    assert_eq!(detail["status"], "applied", "{detail:#}");
    let out = app.cli_plan("prod", &repo.url(), &moto.url).await;
    assert!(out.contains("No changes: prod matches its spec."), "{out}");
}

#[tokio::test]
async fn scaling_history_records_capacity_before_and_after_an_apply() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&moto.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_POLLERS__SCALING_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    let id = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let web = |h: &Value| -> Vec<(u64, u64)> {
        h["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == WEB)
            .map(|g| {
                g["snapshots"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| (s["min"].as_u64().unwrap(), s["max"].as_u64().unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("the sandbox's capacity recorded", 30, || async {
        let h = op.get_json("/api/v1/environments/prod/scaling").await;
        (web(&h) == [(1, 3)]).then_some(())
    })
    .await;
    op.planned(id).await;
    let (d, _) = apply(&op, id).await;
    assert_eq!(d["status"], "applied");
    let h = wait_for("the new capacity recorded", 30, || async {
        let h = op.get_json("/api/v1/environments/prod/scaling").await;
        (web(&h).last() == Some(&(2, 8))).then_some(h)
    })
    .await;
    // One snapshot per change of capacity, not one per poll.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = op.get_json("/api/v1/environments/prod/scaling").await;
    assert_eq!(web(&again), web(&h), "nothing changed, nothing recorded");
    assert_eq!(h["applies"][0]["change_id"], id);
    assert_eq!(h["applies"][0]["status"], "applied");
    // The schedule the apply put in AWS is expected to fire only from the apply on: over a
    // day of history, nothing is drawn before it (the branch head's cron is not history).
    let day = op
        .get_json("/api/v1/environments/prod/scaling?hours=24")
        .await;
    let applied_at = day["applies"][0]["at_unix"].as_i64().unwrap();
    for m in day["scheduled"].as_array().unwrap() {
        assert_eq!(m["seen"], "expected", "{m}");
        assert!(m["at_unix"].as_i64().unwrap() >= applied_at, "{m}");
    }
    assert_eq!(day["time_zone"], "Asia/Seoul");
    let page = app.login_new("sam", "viewer").await;
    let html = page
        .get("/scaling?env=prod&range=1h")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("href=\"/changes/{id}\"")),
        "the apply is linked"
    );
    assert!(html.contains("petclinic-prod-web"));
}

#[tokio::test]
async fn scaling_activities_are_read_for_the_account_by_the_page_and_kept_for_its_groups() {
    use tierdeck_tests::aws::{rfc3339_ago, ScalingActivity};
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    // Auto Scaling's order: in progress first, then newest first; moto has no activities.
    let activity = ScalingActivity::started_ago;
    let mut activities = vec![
        activity("web-running", WEB, "InProgress", 3 * 3600),
        activity("other-team", "other-team-asg", "Successful", 5 * 60),
        activity("web-recent", WEB, "Successful", 10 * 60),
        activity("was-recent", WAS, "Successful", 20 * 60),
        activity("web-last-week", WEB, "Successful", 7 * 86_400),
    ];
    // Older than AWS's six weeks: a reader that stops at the first one too old asks for none
    // of the pages from here on.
    for i in 0..4 {
        activities.push(activity(
            &format!("ancient-{i}"),
            WEB,
            "Successful",
            (60 + i) * 86_400,
        ));
    }
    proxy.scaling_activities(activities.clone());
    proxy.pages_of(2);
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[("TIERDECK_POLLERS__SCALING_INTERVAL_SECS", "1")],
    )
    .await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;
    let ids = |h: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = h["activities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap().to_owned(),
                    a["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let path = "/api/v1/environments/prod/scaling?hours=2160";
    let kept = |status: &str| {
        vec![
            ("was-recent".to_owned(), "Successful".to_owned()),
            ("web-last-week".to_owned(), "Successful".to_owned()),
            ("web-recent".to_owned(), "Successful".to_owned()),
            ("web-running".to_owned(), status.to_owned()),
        ]
    };
    wait_for("prod's activities recorded", 30, || async {
        (ids(&api.get_json(path).await) == kept("InProgress")).then_some(())
    })
    .await;
    // The running one ends; it started before the hour each poll looks back, and is still read.
    activities[0].status = "Successful".into();
    activities[0].ended_at = Some(rfc3339_ago(0));
    proxy.scaling_activities(activities);
    wait_for("the running activity's end recorded", 30, || async {
        (ids(&api.get_json(path).await) == kept("Successful")).then_some(())
    })
    .await;
    let reads = proxy.activity_reads();
    assert!(reads.len() >= 4, "{reads:?}");
    assert!(
        reads.iter().all(|(group, _)| group.is_none()),
        "two groups: the account's activities, not a call per group: {reads:?}"
    );
    assert!(
        reads
            .iter()
            .all(|(_, token)| !matches!(token.as_deref(), Some("proxy-page-6" | "proxy-page-8"))),
        "no page past the first activity too old: {reads:?}"
    );
}
