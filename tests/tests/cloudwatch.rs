//! CloudWatch and ELBv2 against the emulator (moto) behind the tests' AWS proxy: load balancer
//! and database charts from datapoints put by hand (gaps included), one `GetMetricData` per
//! page view; target health with a stopped instance; Prometheus scrape targets after a
//! scale-out; an availability SLO counted from a load balancer, its budget computed by hand.

use serde_json::Value;
use tierdeck_tests::aws::{query, tag_values, Fault, FaultProxy};
use tierdeck_tests::cloudwatch::{lb_dimension, put, tg_dimension, Datum};
use tierdeck_tests::git::SpecRepo;
use tierdeck_tests::{Moto, TestApp};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The emulator with the example's sandbox, the proxy before it, a panel on prod's spec.
async fn panel() -> (Moto, FaultProxy, SpecRepo, TestApp) {
    panel_with(|_| {}).await
}

/// [`panel`] with the example edited by `edit` before its first commit.
async fn panel_with(edit: impl FnOnce(&std::path::Path)) -> (Moto, FaultProxy, SpecRepo, TestApp) {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_with(edit);
    let app = TestApp::watching(&repo.url(), 3600, Some(&proxy.url)).await;
    (moto, proxy, repo, app)
}

fn chart<'a>(resource: &'a Value, title: &str) -> &'a Value {
    resource["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == title)
        .unwrap_or_else(|| panic!("no chart {title} in {resource:#}"))
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list:#}"))
}

fn points(chart: &Value) -> Vec<(i64, f64)> {
    chart["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

#[tokio::test]
async fn load_balancer_and_database_charts_show_the_datapoints_put_with_their_gaps() {
    let (_moto, proxy, repo, app) = panel().await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;
    let lb = lb_dimension(&proxy.url, "petclinic-prod-ext-alb").await;
    let d = [("LoadBalancer", lb.as_str())];
    let db = [("DBInstanceIdentifier", "petclinic-prod-db")];
    // A whole minute a few minutes back; the hour's charts end there.
    let end = now() - now() % 60 - 120;
    put(
        &proxy.url,
        "AWS/ApplicationELB",
        &[
            // Requests 4 and 2 minutes before the end; none 3 minutes before: a gap.
            Datum::one("RequestCount", &d, end - 240, 600.0),
            Datum::one("RequestCount", &d, end - 120, 1_200.0),
            Datum::one("HTTPCode_Target_5XX_Count", &d, end - 120, 6.0),
            // 100 requests: 90 in 0.1 s, 8 in 0.5 s, 2 in 2 s.
            Datum::spread(
                "TargetResponseTime",
                &d,
                end - 120,
                &[(0.1, 90.0), (0.5, 8.0), (2.0, 2.0)],
            ),
        ],
    )
    .await;
    put(
        &proxy.url,
        "AWS/RDS",
        &[
            Datum::one("CPUUtilization", &db, end - 180, 37.5),
            Datum::one("DatabaseConnections", &db, end - 180, 12.0),
        ],
    )
    .await;
    proxy.take_calls();
    let path = format!("/api/v1/environments/prod/monitoring?range=1h&end={end}");
    let r = api.get_json(&path).await;

    // Every chart of both load balancers and the database in one call.
    assert_eq!(r["cloudwatch_calls"], 1, "{r:#}");
    assert_eq!(
        r["cloudwatch_queries"], 25,
        "8 per load balancer with its target group, 9 for the database"
    );
    let calls = proxy.take_calls();
    assert_eq!(calls.get("monitoring:GetMetricData"), Some(&1), "{calls:?}");
    let ext = named(&r["load_balancers"], "petclinic-prod-ext-alb");
    assert_eq!(ext["tier"], "web");
    assert_eq!(ext["error"], Value::Null);
    let requests = chart(ext, "Requests");
    assert_eq!(requests["period"], 60);
    assert_eq!(
        points(requests),
        [(end - 240, 10.0), (end - 120, 20.0)],
        "a rate per second, and no point where CloudWatch had none"
    );
    assert_eq!(points(chart(ext, "Target 5XX answers")), [(end - 120, 0.1)]);
    assert!(points(chart(ext, "Load balancer 5XX answers")).is_empty());
    assert_eq!(
        points(chart(ext, "Response time (average)")),
        [(end - 120, 0.17)]
    );
    assert_eq!(points(chart(ext, "Response time p95")), [(end - 120, 0.5)]);
    assert_eq!(points(chart(ext, "Response time p99")), [(end - 120, 2.0)]);
    chart(ext, "Healthy hosts (petclinic-prod-web-tg)");
    let int = named(&r["load_balancers"], "petclinic-prod-int-alb");
    assert!(points(chart(int, "Requests")).is_empty());
    let database = named(&r["databases"], "petclinic-prod-db");
    assert_eq!(points(chart(database, "CPU")), [(end - 180, 37.5)]);
    assert_eq!(points(chart(database, "Connections")), [(end - 180, 12.0)]);
    assert!(
        database["charts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["title"] != "Replica lag"),
        "a primary has no replica lag"
    );

    // Another viewer within half a minute: the same answer, no call.
    let again = api.get_json(&path).await;
    assert_eq!(again["cloudwatch_calls"], 0);
    assert_eq!(again["load_balancers"], r["load_balancers"]);
    assert!(!proxy.take_calls().contains_key("monitoring:GetMetricData"));

    // The page draws them.
    let page = app.login_new("sam", "viewer").await;
    let html = tierdeck_tests::without_markers(
        &page
            .get("/monitoring?env=prod&range=1h")
            .await
            .text()
            .await
            .unwrap(),
    );
    for text in [
        "Load balancer petclinic-prod-ext-alb",
        "Response time p95",
        "Database petclinic-prod-db",
        "Freeable memory",
        "Target group petclinic-prod-web-tg",
    ] {
        assert!(html.contains(text), "{text}: {html}");
    }

    // Denied: each chart says so with the IAM action, the rest of the page stands.
    proxy.fail("GetMetricData", Fault::AccessDenied, None);
    let r = api
        .get_json(&format!(
            "/api/v1/environments/prod/monitoring?range=6h&end={end}"
        ))
        .await;
    let e = chart(named(&r["databases"], "petclinic-prod-db"), "CPU")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        e.contains("access denied") && e.contains("cloudwatch:GetMetricData"),
        "{e}"
    );
}

#[tokio::test]
async fn target_health_shows_a_stopped_instance_beside_the_groups_in_service() {
    let (moto, _proxy, repo, app) = panel().await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;
    // Two web instances; one stopped behind Auto Scaling's back.
    query(
        &moto.url,
        "autoscaling",
        "SetDesiredCapacity",
        &[
            ("AutoScalingGroupName", "petclinic-prod-web"),
            ("DesiredCapacity", "2"),
        ],
    )
    .await;
    let groups = query(
        &moto.url,
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "petclinic-prod-web")],
    )
    .await;
    let ids = tag_values(&groups, "InstanceId");
    assert_eq!(ids.len(), 2, "{groups}");
    query(
        &moto.url,
        "ec2",
        "StopInstances",
        &[("InstanceId.1", &ids[1])],
    )
    .await;

    let r = api
        .get_json("/api/v1/environments/prod/target-health")
        .await;
    assert_eq!(r["error"], Value::Null, "{r:#}");
    let web = r["target_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["target_group"] == "petclinic-prod-web-tg")
        .unwrap();
    assert_eq!(web["load_balancer"], "petclinic-prod-ext-alb");
    let state = |id: &str| {
        web["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no target {id} in {web:#}"))
            .clone()
    };
    assert_eq!(state(&ids[0])["state"], "healthy");
    let stopped = state(&ids[1]);
    assert_eq!(stopped["state"], "unused");
    assert_eq!(stopped["reason"], "Target.InvalidState");
    assert!(stopped["zone"]
        .as_str()
        .unwrap()
        .starts_with("ap-northeast-2"));
    let group = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "petclinic-prod-web")
        .unwrap();
    assert_eq!(
        (
            group["in_service"].as_u64(),
            group["healthy_targets"].as_u64()
        ),
        (Some(2), Some(1))
    );

    let page = app.login_new("sam", "viewer").await;
    let html = tierdeck_tests::without_markers(
        &page.get("/environments/prod").await.text().await.unwrap(),
    );
    assert!(
        html.contains("Instances in service and healthy targets")
            && html.contains("Target.InvalidState"),
        "{html}"
    );
    let overview = tierdeck_tests::without_markers(&page.get("/").await.text().await.unwrap());
    assert!(
        overview.contains("1 target not healthy") && overview.contains(&ids[1]),
        "{overview}"
    );
}

#[tokio::test]
async fn scrape_targets_follow_a_scale_out_and_need_a_token() {
    let (moto, _proxy, repo, app) = panel().await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;
    let web = |r: &Value| -> Vec<Value> {
        r.as_array()
            .unwrap()
            .iter()
            .filter(|t| t["labels"]["group"] == "petclinic-prod-web")
            .cloned()
            .collect()
    };
    let r = api.get_json("/api/v1/environments/prod/targets").await;
    assert_eq!(web(&r).len(), 1, "{r:#}");
    assert_eq!(r.as_array().unwrap().len(), 2, "one instance per group");

    query(
        &moto.url,
        "autoscaling",
        "SetDesiredCapacity",
        &[
            ("AutoScalingGroupName", "petclinic-prod-web"),
            ("DesiredCapacity", "3"),
        ],
    )
    .await;
    let r = api.get_json("/api/v1/environments/prod/targets").await;
    let targets = web(&r);
    assert_eq!(targets.len(), 3, "{r:#}");
    let groups = query(
        &moto.url,
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "petclinic-prod-web")],
    )
    .await;
    let ids = tag_values(&groups, "InstanceId");
    for t in &targets {
        let id = t["labels"]["instance_id"].as_str().unwrap();
        assert!(ids.iter().any(|i| i == id), "{id} is not one of {ids:?}");
        let instance = query(
            &moto.url,
            "ec2",
            "DescribeInstances",
            &[("InstanceId.1", id)],
        )
        .await;
        let ip = tag_values(&instance, "privateIpAddress")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{instance}"));
        assert_eq!(t["targets"], serde_json::json!([format!("{ip}:9100")]));
        assert_eq!(t["labels"]["environment"], "prod");
        assert_eq!(t["labels"]["tier"], "web");
        assert!(t["labels"]["zone"]
            .as_str()
            .unwrap()
            .starts_with("ap-northeast-2"));
    }

    // Prometheus asks with a bearer token; without one the answer is 401.
    let anonymous = reqwest::get(format!("{}/api/v1/environments/prod/targets", app.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn an_availability_slo_counted_from_the_load_balancer_has_the_budget_computed_by_hand() {
    // A shop without Prometheus: prod's SLOs counted by CloudWatch from its external load
    // balancer.
    let (_moto, proxy, repo, app) = panel_with(|work| {
        let path = work.join("environments/prod/slo.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let monitoring = &text[text.find("monitoring:").unwrap()..];
        let slos = "slos:\n  - name: availability\n    objective: 99.9\n    window_days: 30\n    load_balancer: petclinic-prod-ext-alb\n  - name: latency-400ms\n    objective: 95\n    window_days: 30\n    load_balancer: petclinic-prod-ext-alb\n    latency_under_ms: 400\n\n";
        std::fs::write(&path, format!("{slos}{monitoring}")).unwrap();
    })
    .await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;
    let lb = lb_dimension(&proxy.url, "petclinic-prod-ext-alb").await;
    let tg = tg_dimension(&proxy.url, "petclinic-prod-web-tg").await;
    assert!(tg.starts_with("targetgroup/petclinic-prod-web-tg/"), "{tg}");
    let d = [("LoadBalancer", lb.as_str())];
    let hour = now() - now() % 3600;
    // Three days and an hour ago 1,000,000 requests, 200 failed by the targets and 100 by the
    // load balancer; yesterday 2,000,000, 400 failed by the targets; nothing in between (no
    // datapoint: no requests, not good ones). 40 days ago, outside the window, 1,000,000 of
    // which half failed.
    let before = hour - 3 * 86_400 - 3600;
    put(
        &proxy.url,
        "AWS/ApplicationELB",
        &[
            Datum::one("RequestCount", &d, hour - 40 * 86_400, 1_000_000.0),
            Datum::one(
                "HTTPCode_Target_5XX_Count",
                &d,
                hour - 40 * 86_400,
                500_000.0,
            ),
            Datum::one("RequestCount", &d, before, 1_000_000.0),
            Datum::one("HTTPCode_Target_5XX_Count", &d, before, 200.0),
            Datum::one("HTTPCode_ELB_5XX_Count", &d, before, 100.0),
            Datum::one("RequestCount", &d, hour - 86_400, 2_000_000.0),
            Datum::one("HTTPCode_Target_5XX_Count", &d, hour - 86_400, 400.0),
            // Yesterday's response times: 1,900,000 in 0.1 s, 60,000 in 0.3 s, 40,000 in
            // 0.6 s.
            Datum::spread(
                "TargetResponseTime",
                &d,
                hour - 86_400,
                &[(0.1, 1_900_000.0), (0.3, 60_000.0), (0.6, 40_000.0)],
            ),
        ],
    )
    .await;
    let r = api.get_json("/api/v1/environments/prod/slo").await;
    let a = r["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "availability")
        .unwrap();
    assert_eq!(a["error"], Value::Null, "{a:#}");
    // By hand: 3,000,000 requests in the 30 days, 700 failed; 99.9 % allows 3,000.
    let b = &a["budget"];
    assert_eq!(b["total_events"], 3_000_000.0);
    assert_eq!(b["allowed_events"].as_f64().unwrap().round(), 3_000.0);
    assert_eq!(b["spent_events"], 700.0);
    assert_eq!(b["remaining_events"].as_f64().unwrap().round(), 2_300.0);
    // 1 − (700 / 3,000,000) / 0.001 = 76.67 %.
    let left = b["remaining_percent"].as_f64().unwrap();
    assert!((left - 76.666_666).abs() < 1e-3, "{left}");
    assert!((a["sli_percent"].as_f64().unwrap() - 99.976_666).abs() < 1e-5);
    assert_eq!(a["state"], "ok");
    // No request in the burn windows up to 6 hours: no burn rate there, never a zero one.
    // The 3-day window holds yesterday's 400 of 2,000,000: 0.0002 / 0.001 = 0.2×.
    for burn in a["burns"].as_array().unwrap() {
        match burn["window"].as_str().unwrap() {
            "3d" => {
                let rate = burn["rate"].as_f64().unwrap();
                assert!((rate - 0.2).abs() < 1e-9, "{burn}");
            }
            _ => assert_eq!(burn["rate"], Value::Null, "{burn}"),
        }
    }
    // Latency: PR(:0.4) reads 98 % of 2,000,000 requests within 0.4 s; 2 % slower against
    // the 5 % the objective allows: 40,000 of 100,000, 60 % left.
    let l = r["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "latency-400ms")
        .unwrap();
    assert_eq!(l["error"], Value::Null, "{l:#}");
    let b = &l["budget"];
    assert_eq!(b["total_events"], 2_000_000.0);
    assert_eq!(b["allowed_events"].as_f64().unwrap().round(), 100_000.0);
    assert_eq!(b["spent_events"].as_f64().unwrap().round(), 40_000.0);
    assert!(
        (b["remaining_percent"].as_f64().unwrap() - 60.0).abs() < 1e-6,
        "{b}"
    );
    assert_eq!(r["queries"], 0, "no Prometheus query");

    // Its badge on the SLO page, with the load balancer named on the environment page.
    let page = app.login_new("sam", "viewer").await;
    let html = tierdeck_tests::without_markers(
        &page.get("/environments/prod").await.text().await.unwrap(),
    );
    assert!(
        html.contains("5XX answers / requests of load balancer"),
        "{html}"
    );
}
