//! The watch after an apply, against a real Prometheus scraping live traffic every second: an
//! error spike after the apply marks the change `degraded`, records a revert and, with
//! `watch.auto_revert`, applies it at once, so AWS is back at the earlier spec.

use serde_json::Value;
use tierdeck_tests::aws::{query, tag_value};
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::prom::{LiveTraffic, Prometheus};
use tierdeck_tests::{wait_for, Api, Moto, TestApp, NO_APPROVAL_FLOOR};

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

/// Prod needs no approvals here, and watches for a minute after each apply, reverting at once
/// on a page-level alert.
fn watched_prod() -> SpecRepo {
    SpecRepo::petclinic_with(|work| {
        let p = work.join("environments/prod/environment.yaml");
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("change_windows") && !l.contains("days: ["))
            .map(|l| {
                let l = l.replace("required: 2", "required: 0");
                match l.trim_start().starts_with("watch:") {
                    true => "  watch: { minutes: 1, auto_revert: true }".to_owned(),
                    false => l,
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&p, format!("{text}\n")).unwrap();
    })
}

/// Live traffic scraped every second by a Prometheus, the emulator, and a panel watching
/// [`watched_prod`] that evaluates its watches every second.
async fn watched_panel() -> (LiveTraffic, Prometheus, Moto, SpecRepo, TestApp) {
    let traffic = LiveTraffic::start(100.0).await;
    let prom = Prometheus::scraping("petclinic", &traffic.target).await;
    let moto = Moto::sandboxed().await;
    let repo = watched_prod();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&moto.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_PROMETHEUS__URL", &prom.url),
            ("TIERDECK_PROMETHEUS__CACHE_SECS", "1"),
            ("TIERDECK_APPLY__WATCH_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    (traffic, prom, moto, repo, app)
}

#[tokio::test]
async fn an_error_spike_after_an_apply_degrades_it_and_the_revert_is_applied_at_once() {
    let (traffic, _prom, moto, repo, app) = watched_panel().await;
    let op = app.api_as("olga", "operator").await;
    let first = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let d = apply(&op, first).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    assert_eq!(d["watch"]["state"], "watching", "{:#}", d["watch"]);
    assert_eq!(web_max(&moto.url).await, "8");

    // Clean traffic: the watch reads a burn of 0.
    wait_for("the first watch to read the SLOs", 30, || async {
        let d = op.get_json(&format!("/api/v1/changes/{first}")).await;
        (d["watch"]["evaluations"].as_u64() >= Some(1) && d["watch"]["burn"].as_f64() == Some(0.0))
            .then_some(())
    })
    .await;

    // A change narrows the web tier (max 8 → 6); it applies, its watch starts, the earlier
    // one stops.
    let before = repo.head();
    let narrow = repo.commit(
        SEUNG,
        "Prod: web max 6",
        repo.replace_in(
            "environments/prod/autoscaling.yaml",
            "    min: 2\n    max: 8\n    desired: 2\n    instance_type: t3.medium\n    cpu_scaling:\n      scale_out_above: 50",
            "    min: 2\n    max: 6\n    desired: 2\n    instance_type: t3.medium\n    cpu_scaling:\n      scale_out_above: 50",
        ),
    );
    assert_eq!(op.post("/api/v1/sync").await.status(), 200);
    let id = op.change_for("prod", &narrow).await["id"].as_i64().unwrap();
    let d = apply(&op, id).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    assert_eq!(web_max(&moto.url).await, "6");
    let earlier = op.get_json(&format!("/api/v1/changes/{first}")).await;
    assert_eq!(earlier["watch"]["state"], "stopped");
    assert_eq!(
        earlier["watch"]["reason"],
        format!("change #{id} was applied after it")
    );

    // Half the requests fail from now on: 500× the budget over 5 m and 1 h.
    traffic.fail(0.5);
    let d = wait_for("the watch to see the spike", 60, || async {
        let d = op.get_json(&format!("/api/v1/changes/{id}")).await;
        // Degraded first, then its revert is recorded.
        (d["status"] == "degraded" && d["watch"]["revert_change"].is_i64()).then_some(d)
    })
    .await;
    let w = &d["watch"];
    assert_eq!(w["state"], "degraded", "{w:#}");
    let reason = w["reason"].as_str().unwrap();
    // Both of the page alert's window pairs see a 50 % spike; which one the minute's
    // evaluation meets first depends on where the spike falls in Prometheus's windows.
    let threshold = [
        ("availability: 14.4× over 1h and 5m", 14.4),
        ("availability: 6× over 6h and 30m", 6.0),
    ]
    .iter()
    .find(|(page, _)| reason.starts_with(page))
    .map(|(_, t)| *t)
    .unwrap_or_else(|| panic!("a page alert's window pair: {reason}"));
    // The burn shown is at least the threshold of the pair that fired.
    assert!(w["burn"].as_f64().unwrap() >= threshold, "{w:#}");
    let revert = w["revert_change"].as_i64().expect("a revert is recorded");

    // The revert goes back to the first commit, applied at once by tierdeck.
    let r = wait_for("the revert to be applied", 90, || async {
        let r = op.get_json(&format!("/api/v1/changes/{revert}")).await;
        matches!(
            r["status"].as_str(),
            Some("applied" | "degraded" | "failed")
        )
        .then_some(r)
    })
    .await;
    traffic.fail(0.0);
    assert_ne!(r["status"], "failed", "{:#}", r["apply"]);
    assert_eq!(r["kind"], "revert");
    assert_eq!(r["reverts"], id);
    assert_eq!(r["commit"]["sha"], before);
    assert_eq!(r["apply"]["started_by"], "system");
    assert!(
        r["policy"]["notes"]
            .to_string()
            .contains("An automatic revert"),
        "{:#}",
        r["policy"]
    );
    let ops = r["apply"]["steps"].to_string();
    assert!(ops.contains("max 6 → 8"), "{ops}");
    assert_eq!(
        web_max(&moto.url).await,
        "8",
        "AWS is back at the earlier spec"
    );
    // The revert's watch started while the page alert fired: it knows the burn then, and a
    // revert's own watch never reverts it again.
    assert!(
        r["watch"]["burn_before"]
            .as_f64()
            .unwrap_or_else(|| panic!("{:#}", r["watch"]))
            >= threshold,
        "{:#}",
        r["watch"]
    );
    assert_eq!(r["watch"]["revert_change"], Value::Null);

    let env = op.get_json("/api/v1/environments/prod").await;
    assert_eq!(env["reverted"]["from"], narrow);
    assert_eq!(env["last_applied_commit"], env["reverted"]["to"]);
    let actions = op.audit_actions("environment=prod").await;
    for a in [
        "change.watch_started",
        "change.degraded",
        "change.revert_created",
        "change.watch_stopped",
    ] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
    assert_eq!(env["reverted"]["to"], before);
}

/// A change cannot blind its own watch: one that adds an SLO whose query Prometheus refuses is
/// a policy change (an approval, never applied by itself), and after its apply the SLO that
/// cannot be evaluated counts as a page alert: the change is degraded and reverted.
#[tokio::test]
async fn an_slo_whose_query_prometheus_refuses_degrades_the_change_that_brought_it() {
    let (_traffic, _prom, _moto, repo, app) = watched_panel().await;
    let op = app.api_as("olga", "operator").await;
    let ann = app
        .api_with_email("ann", "approver", "ann@example.com")
        .await;
    let first = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let d = apply(&op, first).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);

    let blind = repo.commit(SEUNG, "Prod: an SLO for the search page", |work| {
        let p = work.join("environments/prod/slo.yaml");
        let text = std::fs::read_to_string(&p).unwrap().replacen(
            "\nmonitoring:",
            "  - name: search\n    objective: 99\n    window_days: 30\n    errors: 'sum(rate(http_requests_total{job=\"petclinic\",handler=\"/search\",code=~\"5..\"}[{{window}}])'\n    total: 'sum(rate(http_requests_total{job=\"petclinic\",handler=\"/search\"}[{{window}}]))'\n\nmonitoring:",
            1,
        );
        std::fs::write(&p, text).unwrap();
    });
    assert_eq!(op.post("/api/v1/sync").await.status(), 200);
    let id = op.change_for("prod", &blind).await["id"].as_i64().unwrap();
    let d = op.planned(id).await;
    assert_eq!(
        d["policy"]["edits"],
        serde_json::json!(["slos[search]"]),
        "{:#}",
        d["policy"]
    );
    assert_eq!(d["policy"]["required_approvals"], 1);
    assert_eq!(d["policy"]["auto_apply"], false);
    let res = ann
        .post_json(
            &format!("/api/v1/changes/{id}/approve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let d = apply(&op, id).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
    let d = wait_for("the watch to count the unreadable SLO", 60, || async {
        let d = op.get_json(&format!("/api/v1/changes/{id}")).await;
        (d["status"] == "degraded" && d["watch"]["revert_change"].is_i64()).then_some(d)
    })
    .await;
    let reason = d["watch"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("search: it cannot be evaluated (Prometheus refused the query"),
        "{reason}"
    );
}
