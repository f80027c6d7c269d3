//! Rollouts: a new image for prod's web tier through instance refreshes held at each
//! checkpoint by the SLOs (live traffic scraped by a real Prometheus), against the emulator
//! behind the tests' AWS proxy, which answers the refresh API the emulator lacks and replaces
//! the instances in the emulator for real.

use std::time::Duration;

use serde_json::Value;
use tierdeck_tests::aws::{query, tag_values, FaultProxy};
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::prom::{LiveTraffic, Prometheus};
use tierdeck_tests::{error_of, wait_for, Api, Moto, TestApp, NO_APPROVAL_FLOOR};

const WEB: &str = "petclinic-prod-web";
const IMAGE: &str = "ami-0abcdef1234567890";

/// Starts applying change `id`; the answer's status.
async fn start_apply(api: &Api, id: i64) {
    api.planned(id).await;
    let res = api.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

/// Waits until change `id` is no longer applying; its detail. On a timeout, the panic shows
/// where its apply stood.
async fn applied(api: &Api, id: i64, secs: u64) -> Value {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let d = api.get_json(&format!("/api/v1/changes/{id}")).await;
        if d["status"] != "applying" {
            return d;
        }
        assert!(
            std::time::Instant::now() < until,
            "change {id} still applies after {secs} s: {:#}",
            d["apply"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The rollout step of a change's latest run.
fn rollout_step(d: &Value) -> &Value {
    d["apply"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operation"]["aws_call"] == "autoscaling:StartInstanceRefresh")
        .unwrap_or_else(|| panic!("no rollout step in {:#}", d["apply"]))
}

/// Waits until the change's rollout is in `phase`; its step.
async fn rollout_in(api: &Api, id: i64, phase: &str, secs: u64) -> Value {
    wait_for(
        &format!("the rollout of change {id} to be {phase}"),
        secs,
        || async {
            let d = api.get_json(&format!("/api/v1/changes/{id}")).await;
            let steps = d["apply"]["steps"].as_array()?.clone();
            let s = steps
                .into_iter()
                .find(|s| s["operation"]["aws_call"] == "autoscaling:StartInstanceRefresh")?;
            (s["rollout"]["phase"] == phase).then_some(s)
        },
    )
    .await
}

/// `action` of the web group through the proxy, which AWS refuses (400); its error answer.
async fn refused(proxy: &str, action: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{proxy}/"))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/ap-northeast-2/autoscaling/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&[
            ("Action", action),
            ("Version", "2011-01-01"),
            ("AutoScalingGroupName", WEB),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "{action}");
    res.text().await.unwrap()
}

/// Each instance of the web group with the version Auto Scaling reports it launched from, and
/// the group's own version, read through the proxy (as AWS answers).
async fn web_versions(proxy: &str) -> (Vec<String>, String) {
    let xml = query(
        proxy,
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", WEB)],
    )
    .await;
    let (instances, own) = match xml.split_once("<Instances>") {
        Some((head, rest)) => (rest.split("</Instances>").next().unwrap_or(""), head),
        None => ("", xml.as_str()),
    };
    let own_version = tag_values(own, "Version")
        .into_iter()
        .next()
        .unwrap_or_default();
    (tag_values(instances, "Version"), own_version)
}

/// The images the web group's instances run, as EC2 describes them.
async fn web_images(moto: &str) -> Vec<String> {
    let xml = query(
        moto,
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", WEB)],
    )
    .await;
    let mut params = Vec::new();
    let ids = tag_values(&xml, "InstanceId");
    let keys: Vec<String> = (1..=ids.len()).map(|i| format!("InstanceId.{i}")).collect();
    for (k, id) in keys.iter().zip(&ids) {
        params.push((k.as_str(), id.as_str()));
    }
    let xml = query(moto, "ec2", "DescribeInstances", &params).await;
    tag_values(&xml, "imageId")
}

/// Prod applied as the example says (web at 2 instances), with the panel behind the refresh
/// double (each step 300 ms), live traffic and a Prometheus scraping it every second.
struct Rig {
    traffic: LiveTraffic,
    _prom: Prometheus,
    moto: Moto,
    proxy: FaultProxy,
    repo: SpecRepo,
    app: TestApp,
    op: Api,
}

async fn rig() -> Rig {
    let traffic = LiveTraffic::start(100.0).await;
    let prom = Prometheus::scraping("petclinic", &traffic.target).await;
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.refresh_steps_take(Duration::from_millis(300));
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_PROMETHEUS__URL", &prom.url),
            ("TIERDECK_PROMETHEUS__CACHE_SECS", "1"),
            ("TIERDECK_APPLY__WATCH_INTERVAL_SECS", "1"),
            ("TIERDECK_APPLY__SETTLE_POLL_MAX_SECS", "1"),
        ],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    let first = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    start_apply(&op, first).await;
    let d = applied(&op, first, 120).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    Rig {
        traffic,
        _prom: prom,
        moto,
        proxy,
        repo,
        app,
        op,
    }
}

impl Rig {
    /// Commits a new image for the web tier with `rollout` (the lines under `rollout:`), and
    /// returns its change once planned.
    async fn new_image(&self, rollout: &str) -> (i64, Value) {
        let sha = self.repo.commit(
            SEUNG,
            "Prod: the web tier's new image",
            self.repo.replace_in(
                "environments/prod/autoscaling.yaml",
                "    desired: 2\n    instance_type: t3.medium\n    cpu_scaling:\n      scale_out_above: 50\n      scale_in_below: 30\n      adjustment: 1\n      cooldown_seconds: 300\n    schedule:\n      - { name: web-night",
                &format!("    desired: 2\n    instance_type: t3.medium\n    image_id: {IMAGE}\n    rollout:\n{rollout}    cpu_scaling:\n      scale_out_above: 50\n      scale_in_below: 30\n      adjustment: 1\n      cooldown_seconds: 300\n    schedule:\n      - {{ name: web-night"),
            ),
        );
        assert_eq!(self.op.post("/api/v1/sync").await.status(), 200);
        let id = self.op.change_for("prod", &sha).await["id"]
            .as_i64()
            .unwrap();
        let plan = self.op.planned(id).await;
        (id, plan)
    }
}

#[tokio::test]
async fn a_new_image_rolls_out_stage_by_stage_to_every_instance_and_prod_is_in_sync() {
    let r = rig().await;
    let (id, d) = r
        .new_image("      checkpoints: [50, 100]\n      bake_seconds: 3\n")
        .await;
    let ops = d["plan"]["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "{ops:#?}");
    assert_eq!(ops[0]["aws_call"], "autoscaling:StartInstanceRefresh");
    assert_eq!(
        ops[0]["change"],
        format!("replace 2 instances of {WEB} with version 2 ({IMAGE}, a new version made from 1): at least 90 % healthy, held at 50 % for 3 seconds, about 13 minutes")
    );
    assert!(ops[0]["risk"]
        .as_str()
        .unwrap()
        .contains("rolls the refresh back"));

    start_apply(&r.op, id).await;
    // The first stage stops at its checkpoint and bakes; its calls per poll are counted.
    let baking = rollout_in(&r.op, id, "baking", 60).await;
    assert_eq!(baking["rollout"]["stage"], 0);
    assert!(
        baking["rollout_summary"]
            .as_str()
            .unwrap()
            .starts_with("baking — stage 1 of 2 (to 50 %): 50 % replaced, 1 instance left"),
        "{baking:#}"
    );
    let d = applied(&r.op, id, 120).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    let s = rollout_step(&d);
    assert_eq!(s["status"], "done");
    assert_eq!(s["rollout"]["phase"], "succeeded", "{s:#}");
    assert_eq!(s["rollout"]["version"], "2");

    // Every instance runs the new version and its image; the group names the version.
    let (versions, own) = web_versions(&r.proxy.url).await;
    assert_eq!(versions, ["2", "2"]);
    assert_eq!(own, "2");
    assert_eq!(web_images(&r.moto.url).await, [IMAGE, IMAGE]);
    // Two stages: two refreshes, the first cancelled once its bake was good.
    assert_eq!(r.proxy.calls("CreateLaunchTemplateVersion"), 1);
    assert_eq!(r.proxy.calls("StartInstanceRefresh"), 2);
    assert_eq!(r.proxy.calls("CancelInstanceRefresh"), 1);
    let actions = r.op.audit_actions("environment=prod").await;
    for a in [
        "rollout.stage_started",
        "rollout.stage_good",
        "rollout.ended",
        "aws.call",
    ] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
    wait_for("prod to be in sync", 30, || async {
        (r.op.get_json("/api/v1/environments/prod").await["drift"]["state"] == "in_sync")
            .then_some(())
    })
    .await;
    // The web group's chart marks each refresh, the checkpoint and the end.
    let history = r.op.get_json("/api/v1/environments/prod/scaling").await;
    let marks: Vec<String> = history["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["group"] == WEB && m["change_id"] == id)
        .map(|m| m["what"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        marks,
        [
            "refresh started (stage 1 of 2, to 50 %)",
            "checkpoint 50 % reached: baking",
            "refresh started (stage 2 of 2, to 100 %)",
            "rollout succeeded"
        ],
        "{history:#}"
    );
    an_unfinished_refresh_is_drift(&r).await;
}

/// A refresh behind tierdeck's back that stops half way leaves one instance on the old
/// version: drift names the group and the rollout that would finish it.
async fn an_unfinished_refresh_is_drift(r: &Rig) {
    let back = [
        ("AutoScalingGroupName", WEB),
        (
            "DesiredConfiguration.LaunchTemplate.LaunchTemplateName",
            "petclinic-prod-web-lt",
        ),
        ("DesiredConfiguration.LaunchTemplate.Version", "1"),
        ("Preferences.CheckpointPercentages.member.1", "50"),
        ("Preferences.CheckpointDelay", "3600"),
        ("Preferences.SkipMatching", "true"),
    ];
    query(&r.proxy.url, "autoscaling", "StartInstanceRefresh", &back).await;
    wait_for("one instance back on version 1", 30, || async {
        let (v, _) = web_versions(&r.proxy.url).await;
        (v.iter().filter(|x| *x == "1").count() == 1).then_some(())
    })
    .await;
    query(
        &r.proxy.url,
        "autoscaling",
        "CancelInstanceRefresh",
        &[("AutoScalingGroupName", WEB)],
    )
    .await;
    wait_for("the refresh to be cancelled", 30, || async {
        let xml = query(
            &r.proxy.url,
            "autoscaling",
            "DescribeInstanceRefreshes",
            &[("AutoScalingGroupName", WEB)],
        )
        .await;
        (tag_values(&xml, "Status").first().map(String::as_str) == Some("Cancelled")).then_some(())
    })
    .await;
    let res = r.op.post("/api/v1/environments/prod/reconcile").await;
    assert_eq!(res.status(), 201, "drift is there to reconcile");
    let rc: Value = res.json().await.unwrap();
    let rc_id = rc["id"].as_i64().unwrap();
    let plan = r.op.planned(rc_id).await;
    let change = plan["plan"]["operations"][0]["change"].to_string();
    assert!(
        change.contains(&format!(
            "replace 1 instance of {WEB} with version 2 ({IMAGE})"
        )),
        "{plan:#}"
    );
}

#[tokio::test]
async fn an_error_spike_during_the_50_percent_bake_rolls_back_and_degrades_the_change() {
    let r = rig().await;
    let (id, _) = r
        .new_image("      checkpoints: [50, 100]\n      bake_minutes: 10\n")
        .await;
    start_apply(&r.op, id).await;
    rollout_in(&r.op, id, "baking", 60).await;
    // Half the requests fail once the new server takes traffic: 500× the budget.
    r.traffic.fail(0.5);
    let d = applied(&r.op, id, 120).await;
    r.traffic.fail(0.0);
    assert_eq!(d["status"], "degraded", "{:#}", d["apply"]);
    let s = rollout_step(&d);
    assert_eq!(s["rollout"]["phase"], "rolled_back", "{s:#}");
    assert!(
        s["rollout"]["alert"]
            .as_str()
            .unwrap()
            .starts_with("availability"),
        "{s:#}"
    );
    // Whichever page pair fires first (14.4× over 1h and 5m, or 6× over 6h and 30m).
    assert!(s["rollout"]["burn"].as_f64().unwrap() >= 6.0, "{s:#}");
    let error = s["error"].as_str().unwrap();
    assert!(error.starts_with("rolled back: availability"), "{error}");
    assert_eq!(r.proxy.calls("RollbackInstanceRefresh"), 1);
    // Back on the version they ran, with its image.
    let (versions, own) = web_versions(&r.proxy.url).await;
    assert_eq!(versions, ["1", "1"]);
    assert_eq!(own, "1");
    assert!(!web_images(&r.moto.url).await.contains(&IMAGE.to_owned()));
    let degraded = r.op.get_json("/api/v1/audit?action=change.degraded").await;
    let e = &degraded["events"][0];
    assert_eq!(e["target"], id.to_string(), "{degraded:#}");
    assert!(
        e["detail"]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("rolled back: availability"),
        "{e:#}"
    );
    // The commit applied before still holds, and AWS runs it again.
    wait_for("prod to be in sync", 30, || async {
        (r.op.get_json("/api/v1/environments/prod").await["drift"]["state"] == "in_sync")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn operators_continue_or_cancel_a_rollout_and_what_aws_would_refuse_is_refused_with_why() {
    let r = rig().await;
    let (id, _) = r
        .new_image("      checkpoints: [50, 100]\n      bake_minutes: 30\n")
        .await;
    start_apply(&r.op, id).await;
    let path = format!("/api/v1/changes/{id}/rollout");
    // Nothing to continue before the bake.
    let res =
        r.op.post_json(&path, serde_json::json!({ "action": "continue" }))
            .await;
    let (status, message) = error_of(res).await;
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("continue refused"), "{message}");
    let viewer = r.app.api_as("vic", "viewer").await;
    rollout_in(&r.op, id, "baking", 60).await;
    let res = viewer
        .post_json(&path, serde_json::json!({ "action": "continue" }))
        .await;
    assert_eq!(res.status(), 403);
    let res =
        r.op.post_json(&path, serde_json::json!({ "action": "onwards" }))
            .await;
    assert_eq!(
        res.status(),
        422,
        "{}",
        res.text().await.unwrap_or_default()
    );
    // Continue now ends a 30-minute bake at once.
    let res =
        r.op.post_json(&path, serde_json::json!({ "action": "continue" }))
            .await;
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let body: Value = res.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the bake of stage 1 of 2"),
        "{body:#}"
    );
    let d = applied(&r.op, id, 120).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    assert_eq!(rollout_step(&d)["rollout"]["by"], "olga");
    // A rollout that has ended takes nothing.
    let res =
        r.op.post_json(&path, serde_json::json!({ "action": "cancel" }))
            .await;
    assert_eq!(res.status(), 409);
    let actions = r.op.audit_actions("environment=prod").await;
    for a in [
        "rollout.command",
        "rollout.command_refused",
        "rollout.operator",
    ] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn a_refresh_already_running_blocks_a_second_and_the_plan_names_it() {
    let r = rig().await;
    // Someone starts a refresh of the web group outside tierdeck (it stops at 50 % for an hour).
    let start = [
        ("AutoScalingGroupName", WEB),
        ("Preferences.CheckpointPercentages.member.1", "50"),
        ("Preferences.CheckpointDelay", "3600"),
    ];
    let xml = query(&r.proxy.url, "autoscaling", "StartInstanceRefresh", &start).await;
    let running = tag_values(&xml, "InstanceRefreshId").remove(0);
    // AWS runs one per group.
    let second = refused(&r.proxy.url, "StartInstanceRefresh").await;
    assert!(
        second.contains("<Code>InstanceRefreshInProgress</Code>"),
        "{second}"
    );
    let (_, d) = r
        .new_image("      checkpoints: [50, 100]\n      bake_seconds: 3\n")
        .await;
    // Pending or InProgress, as far as AWS has got with it.
    let errors = d["plan"]["errors"].to_string();
    assert!(
        errors.contains(&format!("instance refresh {running} is "))
            && errors.contains("AWS runs one refresh per group"),
        "{errors}"
    );
    assert!(d["plan"]["operations"].as_array().unwrap().is_empty());
    // Cancelled, it no longer blocks.
    query(
        &r.proxy.url,
        "autoscaling",
        "CancelInstanceRefresh",
        &[("AutoScalingGroupName", WEB)],
    )
    .await;
    let cancelled = refused(&r.proxy.url, "CancelInstanceRefresh").await;
    assert!(
        cancelled.contains("<Code>ActiveInstanceRefreshNotFound</Code>"),
        "nothing left to cancel: {cancelled}"
    );
}

#[tokio::test]
async fn a_panel_killed_mid_refresh_re_attaches_to_it_after_the_restart() {
    let r = rig().await;
    let (id, _) = r
        .new_image("      checkpoints: [50, 100]\n      bake_minutes: 30\n")
        .await;
    start_apply(&r.op, id).await;
    let baking = rollout_in(&r.op, id, "baking", 60).await;
    let refresh = baking["rollout"]["refresh_id"].as_str().unwrap().to_owned();
    assert_eq!(r.proxy.calls("StartInstanceRefresh"), 1);
    let Rig {
        app,
        op,
        proxy,
        moto: _moto,
        traffic: _traffic,
        _prom,
        repo: _repo,
    } = r;
    let app = app.kill_and_restart().await;
    let op = Api {
        base: app.base.clone(),
        ..op
    };
    // The restarted panel follows the same refresh: still baking, by the same id.
    wait_for("the rollout to be followed again", 60, || async {
        let events = op.audit_actions("action=rollout.reattached").await;
        (!events.is_empty()).then_some(())
    })
    .await;
    let s = rollout_in(&op, id, "baking", 30).await;
    assert_eq!(s["rollout"]["refresh_id"], refresh.as_str());
    assert_eq!(
        proxy.calls("StartInstanceRefresh"),
        1,
        "no second refresh started"
    );
    let res = op
        .post_json(
            &format!("/api/v1/changes/{id}/rollout"),
            serde_json::json!({ "action": "continue" }),
        )
        .await;
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let d = applied(&op, id, 120).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    assert_eq!(
        proxy.calls("StartInstanceRefresh"),
        2,
        "the next stage, once"
    );
    let (versions, _) = web_versions(&proxy.url).await;
    assert_eq!(versions, ["2", "2"]);
}

/// The figures the issue asks for, with the demo's settings (the panel's defaults: a poll
/// slows to one each 30 s, the SLOs read each minute; the double takes a second a step) and the
/// README's rollout story (2 web instances, checkpoints [50, 100], one minute's bake): the
/// rollout's time from the apply to its end, and the AWS calls per poll, through the proxy's
/// call counter. A measurement, not a check: run with
/// `cargo test -p tierdeck-tests --test rollout -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement for the report; takes about two minutes"]
async fn the_demos_rollout_figures() {
    let traffic = LiveTraffic::start(100.0).await;
    let prom = Prometheus::scraping("petclinic", &traffic.target).await;
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[NO_APPROVAL_FLOOR, ("TIERDECK_PROMETHEUS__URL", &prom.url)],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    let first = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    start_apply(&op, first).await;
    assert_eq!(applied(&op, first, 180).await["status"], "applied");
    let r = Rig {
        traffic,
        _prom: prom,
        moto,
        proxy,
        repo,
        app,
        op,
    };
    let (id, _) = r
        .new_image("      checkpoints: [50, 100]\n      bake_minutes: 1\n")
        .await;
    let started = std::time::Instant::now();
    start_apply(&r.op, id).await;
    let baking = rollout_in(&r.op, id, "baking", 120).await;
    r.proxy.take_calls();
    let calls_before = baking["rollout"]["calls"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(40)).await;
    let window = r.proxy.take_calls();
    let now = rollout_in(&r.op, id, "baking", 10).await;
    let polls = now["rollout"]["calls"].as_u64().unwrap() - calls_before;
    let d = applied(&r.op, id, 600).await;
    let elapsed = started.elapsed();
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    let aws: u32 = window.values().sum();
    eprintln!(
        "FIGURES: rollout end to end {:.1} s; during the bake {polls} polls made {aws} AWS calls ({:?}); the step's calls {}",
        elapsed.as_secs_f64(),
        window,
        rollout_step(&d)["rollout"]["calls"]
    );
}
