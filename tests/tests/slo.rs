//! SLO status against a real Prometheus holding 30 days of generated traffic with known
//! incidents; the error-budget gate; the rules `tierdeck slo rules` prints.

use serde_json::{json, Value};
use tierdeck_tests::git::SpecRepo;
use tierdeck_tests::prom::{
    cpu_at, io_at, latency_shares, memory_used_at, p95_of, petclinic_panel, petclinic_rate_at,
    steady, DAY,
};
use tierdeck_tests::{cli_in, wait_for, workspace, Api, Moto, TestApp};

async fn report(api: &Api, env: &str, at: i64) -> Value {
    api.get_json(&format!("/api/v1/environments/{env}/slo?at={at}"))
        .await
}

fn slo<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no SLO {name} in {report:#}"))
}

fn close(v: &Value, expected: f64, tolerance: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!(
        (got - expected).abs() <= tolerance,
        "{got} is not {expected} ± {tolerance}"
    );
}

#[tokio::test]
async fn slo_numbers_equal_hand_computed_ones_and_alerts_follow_the_incident() {
    let (_prom, data, repo, app) = petclinic_panel(None).await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;

    // After the incident: 30 days at 100/s on average (the shop's Seoul day), 144,000 failed.
    let r = report(&api, "prod", data.end).await;
    assert_eq!(r["error"], Value::Null, "{r:#}");
    assert_eq!(r["queries"], 24, "3 SLOs × 8 queries");
    let a = slo(&r, "availability");
    let b = &a["budget"];
    close(&b["total_events"], 259_200_000.0, 1.0);
    close(&b["allowed_events"], 259_200.0, 0.5);
    close(&b["spent_events"], 144_000.0, 0.5);
    close(&b["remaining_events"], 115_200.0, 0.5);
    close(&b["remaining_percent"], 44.444, 0.01);
    close(&a["sli_percent"], 99.944_444, 0.000_01);
    assert_eq!(a["alert"], "ok");
    for burn in a["burns"].as_array().unwrap() {
        close(&burn["rate"], 0.0, 1e-9);
    }
    // The budget over the window, a point a day: full until the incident, 44.4 % after it.
    let history = a["budget_history"].as_array().unwrap();
    assert!(history.len() >= 30, "{history:?}");
    close(&history[0][1], 100.0, 1e-6);
    close(&history[history.len() - 1][1], 44.444, 0.1);
    let latency = slo(&r, "latency-400ms");
    close(&latency["sli_percent"], 100.0, 1e-9);
    assert_eq!(
        slo(&r, "checkout-success")["sli_percent"],
        Value::Null,
        "no checkout traffic"
    );

    // An hour into the incident: 20 % failing is 200× the budget over 5 m and 1 h: page.
    let during = report(&api, "prod", data.prod_incident.0 + 3600).await;
    let a = slo(&during, "availability");
    assert_eq!(a["alert"], "page", "{a:#}");
    assert_eq!(a["alert_rule"], "14.4× over 1h and 5m");
    close(&a["burns"][0]["rate"], 200.0, 1e-6);
    close(&a["burns"][2]["rate"], 200.0, 1e-6);

    // A day later the 3-day window still burns 5.6×, but the 6-hour one is calm: no ticket.
    let day_after = report(&api, "prod", data.prod_incident.1 + DAY).await;
    let a = slo(&day_after, "availability");
    close(&a["burns"][4]["rate"], 144_000.0 / 259_200.0 * 10.0, 1e-6);
    close(&a["burns"][3]["rate"], 0.0, 1e-9);
    assert_eq!(a["alert"], "ok");

    // Staging's budget is spent.
    let s = report(&api, "staging", data.end).await;
    let b = &slo(&s, "availability")["budget"];
    close(&b["allowed_events"], 1_296_000.0, 0.5);
    close(&b["spent_events"], 1_440_000.0, 0.5);
    assert!(b["remaining_events"].as_f64().unwrap() < 0.0);

    // The page shows the same numbers as the API at the same moment (Prometheus's answers
    // are kept a few seconds), without JavaScript; now is a little after the data's end, so
    // the figures are Prometheus's extrapolation, near the seed's 259,200.
    let now = api.get_json("/api/v1/environments/prod/slo").await;
    let allowed = slo(&now, "availability")["budget"]["allowed_events"]
        .as_f64()
        .unwrap();
    assert!((allowed - 259_200.0).abs() < 300.0, "{allowed}");
    let page = app.login_new("sam", "viewer").await;
    let html =
        tierdeck_tests::without_markers(&page.get("/slo?env=prod").await.text().await.unwrap());
    assert!(html.contains("availability"), "{html}");
    let grouped = format!(
        "{},{:03}",
        allowed.round() as i64 / 1000,
        allowed.round() as i64 % 1000
    );
    assert!(
        html.contains(&format!("<dt>Failures allowed</dt><dd>{grouped}</dd>")),
        "failures allowed {grouped}: {html}"
    );
    assert!(html.contains("Times in <strong>Asia/Seoul (KST)</strong>"));
}

#[tokio::test]
async fn monitoring_charts_show_each_tier_and_the_service() {
    let (_prom, data, repo, app) = petclinic_panel(None).await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;
    let r = api
        .get_json(&format!(
            "/api/v1/environments/prod/monitoring?range=6h&end={}",
            data.end
        ))
        .await;
    assert_eq!(r["error"], Value::Null, "{r:#}");
    assert_eq!(r["queries"], 11, "4 per tier and 3 for the service");
    // A chart's last point whose 5 minutes before it hold still (no hour or capacity change
    // inside): its time, and its value, which then reads the model's values at that time.
    let last = |charts: &Value, title: &str| -> (i64, f64) {
        let c = charts
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["title"].as_str().unwrap().starts_with(title))
            .unwrap_or_else(|| panic!("no {title} in {charts:#}"));
        let p = c["points"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|p| steady(p[0].as_i64().unwrap()))
            .unwrap_or_else(|| panic!("no steady point in {c:#}"));
        (p[0].as_i64().unwrap(), p[1].as_f64().unwrap())
    };
    let tier = |name: &str| {
        r["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tier"] == name)
            .unwrap()["charts"]
            .clone()
    };
    let near = |(t, got): (i64, f64), want: &dyn Fn(i64) -> f64, what: &str| {
        let want = want(t);
        assert!(
            (got - want).abs() < 1e-6 * want.abs().max(1.0),
            "{what} at {t}: {got}, expected {want}"
        );
    };
    let (web, was) = (tier("web"), tier("was"));
    near(last(&web, "CPU"), &|t| cpu_at(t).0, "web CPU");
    near(last(&was, "CPU"), &|t| cpu_at(t).1, "was CPU");
    // Memory is a gauge: its value at the point itself.
    let (t, memory) = last(&web, "Memory");
    assert!((memory - memory_used_at(t)).abs() < 1e-6, "{memory}");
    near(last(&web, "Disk"), &|t| io_at(t).0, "disk I/O");
    near(last(&web, "Network"), &|t| io_at(t).1, "network");
    near(
        last(&r["service"], "Requests"),
        &petclinic_rate_at,
        "requests",
    );
    assert!(last(&r["service"], "Error ratio").1.abs() < 1e-9);
    // p95 inside the bucket the load puts it in, as `histogram_quantile` reads it.
    near(
        last(&r["service"], "Latency p95"),
        &|t| p95_of(latency_shares(petclinic_rate_at(t))),
        "p95 latency",
    );
    let bad = api
        .get("/api/v1/environments/prod/monitoring?range=2d")
        .await;
    assert_eq!(bad.status(), 422);

    let page = app.login_new("sam", "viewer").await;
    let html = tierdeck_tests::without_markers(
        &page
            .get("/monitoring?env=prod&range=1h")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(html.contains("Tier web") && html.contains("<svg"), "{html}");
}

#[tokio::test]
async fn without_prometheus_the_slo_page_says_why_and_the_rest_works() {
    let repo = SpecRepo::petclinic();
    let closed = format!("http://127.0.0.1:{}", tierdeck_tests::free_port().unwrap());
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        None,
        &[("TIERDECK_PROMETHEUS__URL", &closed)],
    )
    .await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;
    let r = api.get_json("/api/v1/environments/prod/slo").await;
    let error = r["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("Prometheus at {closed} cannot be reached")),
        "{error}"
    );
    let page = app.login_new("sam", "viewer").await;
    let html = page.get("/slo?env=prod").await.text().await.unwrap();
    assert!(html.contains("cannot be reached"), "{html}");
    let html = page.get("/monitoring?env=prod").await.text().await.unwrap();
    assert!(html.contains("No monitoring data"), "{html}");
    assert_eq!(page.get("/environments/prod").await.status(), 200);
    assert_eq!(page.get("/").await.status(), 200);
}

#[tokio::test]
async fn a_spent_availability_budget_refuses_applies_but_emergencies() {
    let moto = Moto::sandboxed().await;
    let (_prom, _, repo, app) = petclinic_panel(Some(&moto.url)).await;
    let ann = app.api_as("ann", "approver").await;
    let olga = app.api_as("olga", "operator").await;
    let id = ann.change_for("staging", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    ann.planned(id).await;
    // Approved — but staging's availability budget is spent.
    let res = ann
        .post_json(&format!("/api/v1/changes/{id}/approve"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let res = olga.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 409);
    let refused = olga
        .get_json("/api/v1/audit?action=change.apply_refused")
        .await;
    let refused = refused["events"][0].clone();
    let reason = refused["detail"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the availability error budget of staging is spent"),
        "{reason}"
    );
    assert_eq!(refused["actor"], "olga");
    let res = olga
        .post_json(
            &format!("/api/v1/changes/{id}/apply"),
            json!({ "emergency": true, "reason": "the fix for the outage itself" }),
        )
        .await;
    assert_eq!(res.status(), 202);
    wait_for("the emergency apply", 60, || async {
        let d = olga.get_json(&format!("/api/v1/changes/{id}")).await;
        (d["status"] == "applied").then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_printed_rules_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let spec = workspace().join("examples/petclinic");
    let out = cli_in(
        dir.path(),
        &["slo", "rules", "prod", "--spec", spec.to_str().unwrap()],
        None,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = dir.path().join("prod.rules.yml");
    std::fs::write(&rules, &out.stdout).unwrap();
    let check = std::process::Command::new("/usr/bin/promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("running promtool (scripts/setup --test installs it)");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("SUCCESS: 27 rules found"), "{said}");
    // An unknown environment is named.
    let out = cli_in(
        dir.path(),
        &["slo", "rules", "qa", "--spec", spec.to_str().unwrap()],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no environment `qa`"));
}

/// A change that rewrites the availability query into one Prometheus refuses does not open the
/// error-budget gate: an SLO that cannot be evaluated counts as spent (the gate fails closed),
/// with the reason on the page and in the refusal; an emergency still goes.
#[tokio::test]
async fn an_availability_query_prometheus_refuses_holds_applies_to_emergencies() {
    let moto = Moto::sandboxed().await;
    let (prom, _data) = tierdeck_tests::prom::petclinic_month().await;
    // Prod's budget is whole (44 % left); its availability query is broken.
    let repo = SpecRepo::petclinic_with(|work| {
        let p = work.join("environments/prod/slo.yaml");
        let text = std::fs::read_to_string(&p).unwrap().replacen(
            r#"errors: 'sum(rate(http_requests_total{job="petclinic",code=~"5.."}[{{window}}]))'"#,
            r#"errors: 'sum(rate(http_requests_total{job="petclinic",code=~"5.."}[{{window}}])'"#,
            1,
        );
        std::fs::write(&p, text).unwrap();
    });
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&moto.url),
        &[("TIERDECK_PROMETHEUS__URL", &prom.url)],
    )
    .await;
    let ann = app
        .api_with_email("ann", "approver", "ann@example.com")
        .await;
    let bo = app.api_with_email("bo", "approver", "bo@example.com").await;
    let olga = app.api_as("olga", "operator").await;
    let id = ann.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    ann.planned(id).await;
    // The SLO page names the failing SLO, and still shows the others.
    let r = ann.get_json("/api/v1/environments/prod/slo").await;
    let a = slo(&r, "availability");
    assert_eq!(a["alert"], "page", "{a:#}");
    let why = a["error"].as_str().unwrap_or_default();
    assert!(why.starts_with("Prometheus refused the query"), "{a:#}");
    assert_eq!(slo(&r, "latency-400ms")["error"], Value::Null, "{r:#}");
    for a in [&ann, &bo] {
        let res = a
            .post_json(&format!("/api/v1/changes/{id}/approve"), json!({}))
            .await;
        assert_eq!(res.status(), 200);
    }
    // (The change page does not read the budget, the apply does: what the page says of an
    // emergency follows prod's change window, open on weekdays 01:00–08:00 UTC, so it is not
    // asserted here.)
    let res = olga.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 409);
    let refused = olga
        .get_json("/api/v1/audit?action=change.apply_refused")
        .await;
    let reason = refused["events"][0]["detail"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.starts_with(
            "the availability error budget of prod cannot be read (Prometheus refused the query"
        ),
        "{reason}"
    );
    let res = olga
        .post_json(
            &format!("/api/v1/changes/{id}/apply"),
            json!({ "emergency": true, "reason": "the monitoring fix is in the next commit" }),
        )
        .await;
    assert_eq!(res.status(), 202);
}
