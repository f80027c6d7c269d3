//! Cost against the real binary: the environment's monthly band from the example prices and
//! the launch templates moto holds, a cost policy that asks for one more approval and one that
//! blocks, the Price List adapter against GetProducts answers served on loopback (the emulator
//! has no pricing service), and `tierdeck cost` offline in a spec repository.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tierdeck_tests::aws::{Fault, FaultProxy};
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{approve_and_apply, cli_in, error_of, workspace, Api, Moto, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn prices_env() -> (&'static str, String) {
    (
        "TIERDECK_COST__PRICE_FILE",
        workspace()
            .join("examples/prices.yaml")
            .to_string_lossy()
            .into_owned(),
    )
}

fn money(v: &Value) -> String {
    format!("{:.2}", v.as_f64().expect("a figure"))
}

/// Approves twice and applies (as an emergency); the apply must succeed.
async fn apply(approvers: [&Api; 2], operator: &Api, id: i64) {
    let d = approve_and_apply(&approvers, operator, id).await;
    assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
}

#[tokio::test]
async fn prods_month_is_priced_by_its_schedule_and_the_cost_policy_judges_what_changes_add() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic();
    let (k, v) = prices_env();
    let app = TestApp::watching_with(&repo.url(), 3600, Some(&moto.url), &[(k, &v)]).await;
    let ann = app.api_as("ann", "approver").await;
    let bo = app.api_as("bo", "approver").await;
    let cy = app.api_as("cy", "approver").await;
    let olga = app.api_as("olga", "operator").await;
    let first = ann.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    apply([&ann, &bo], &olga, first).await;

    // The applied spec at the example prices, every month alike (a daily schedule in Seoul):
    // web  floor 3,250 / expected 3,380 / ceiling 10,520 instance-minutes a day,
    // was  floor 3,430 / expected 3,570 / ceiling 10,710,
    // × 730/1440 × $0.052 (t3.medium); the database 0.208 × 730 + 20 GB × 0.262.
    let report = ann.get_json("/api/v1/environments/prod/cost").await;
    let c = &report["cost"];
    assert_eq!(report["spec_of"], "the last applied commit", "{report:#}");
    let web = &c["groups"][0];
    assert_eq!(web["instance_type"], "t3.medium");
    assert_eq!(web["instance_type_from"], "launch template", "{web:#}");
    assert_eq!(
        [
            &web["monthly"]["floor"],
            &web["monthly"]["expected"],
            &web["monthly"]["ceiling"]
        ]
        .map(money),
        ["85.67", "89.10", "277.32"]
    );
    assert_eq!(money(&c["databases"][0]["instance_monthly"]), "151.84");
    assert_eq!(money(&c["databases"][0]["storage_monthly"]), "5.24");
    assert_eq!(
        [
            &c["monthly"]["floor"],
            &c["monthly"]["expected"],
            &c["monthly"]["ceiling"]
        ]
        .map(money),
        ["333.17", "340.29", "716.73"]
    );
    assert_eq!(money(&c["saving"]["ceiling"]), "47.71");
    assert_eq!(c["unpriced"], json!([]));
    assert_eq!(c["week"].as_array().unwrap().len(), 168);
    assert!(c["sources"][0]
        .as_str()
        .unwrap()
        .contains("example prices for the demo, not AWS's"));
    assert_eq!(report["ran"].as_array().unwrap().len(), 2);

    // A cost policy, itself a policy change judged by the stricter rules: it moves no figure.
    let policy = repo.commit(SEUNG, "Prod: a cost policy", |work| {
        let p = work.join("environments/prod/environment.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            format!("{text}  cost:\n    max_monthly: 720\n    extra_approval_above: 20\n"),
        )
        .unwrap();
    });
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = ann.change_for("prod", &policy).await["id"]
        .as_i64()
        .unwrap();
    let d = ann.planned(id).await;
    assert_eq!(
        d["cost"]["verdict"],
        json!({"blocked": null, "unchecked": null, "extra_approval": null, "incomplete": false})
    );
    apply([&ann, &bo], &olga, id).await;

    // Business hours at 3 instances in both tiers: 590 more instance-minutes a day each,
    // 1,180 × 730/1440 × $0.052 = $31.11 expected: one more approval than prod's two.
    let busier = repo.commit(SEUNG, "Prod: three instances in business hours", |work| {
        let p = work.join("environments/prod/autoscaling.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.contains("-business") {
                    l.replace("min: 2, max: 8, desired: 2", "min: 3, max: 8, desired: 3")
                } else {
                    l.to_owned()
                }
            })
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&p, text).unwrap();
    });
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = ann.change_for("prod", &busier).await["id"]
        .as_i64()
        .unwrap();
    let d = ann.planned(id).await;
    assert_eq!(
        money(&d["cost"]["cost"]["delta"]["expected"]),
        "31.11",
        "{:#}",
        d["cost"]
    );
    assert_eq!(d["policy"]["required_approvals"], 3, "{:#}", d["policy"]);
    assert!(d["policy"]["notes"].to_string().contains(
        "Its expected monthly cost rises by $31.11 (more than environment.cost.extra_approval_above, $20.00)"
    ));
    for a in [&ann, &bo] {
        let res = a
            .post_json(&format!("/api/v1/changes/{id}/approve"), json!({}))
            .await;
        assert_eq!(res.status(), 200);
    }
    let (code, message) = error_of(
        olga.post_json(
            &format!("/api/v1/changes/{id}/apply"),
            json!({ "emergency": true, "reason": "two are not enough" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (code, message.as_str()),
        (409, "It needs 3 approvals of its current plan; it has 2.")
    );
    let res = cy
        .post_json(&format!("/api/v1/changes/{id}/approve"), json!({}))
        .await;
    assert_eq!(res.status(), 200);

    // The was peak up to 8 on top: the ceiling 716.73 + 180 × 730/1440 × 0.052 goes above 720.
    let higher = repo.raise_was_peak(SEUNG);
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = ann.change_for("prod", &higher).await["id"]
        .as_i64()
        .unwrap();
    let d = ann.planned(id).await;
    let blocked = d["cost"]["verdict"]["blocked"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        blocked.contains("is above environment.cost.max_monthly ($720.00)"),
        "{:#}",
        d["cost"]
    );
    let (code, message) = error_of(
        ann.post_json(&format!("/api/v1/changes/{id}/approve"), json!({}))
            .await,
    )
    .await;
    assert_eq!(code, 409);
    assert!(message.contains("the cost policy blocks it"), "{message}");
    let seen_by_operator = olga.get_json(&format!("/api/v1/changes/{id}")).await;
    let apply = &seen_by_operator["actions"]["apply"];
    assert_eq!(apply["state"], "denied", "{apply:#}");
    assert!(
        apply["reason"]
            .as_str()
            .unwrap()
            .contains("the cost policy blocks it"),
        "{apply:#}"
    );
}

/// A loopback Price List: answers GetProducts with the fixture that matches the request's
/// filters, and keeps the requests.
struct PriceList {
    url: String,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

fn fixture(name: &str) -> Value {
    let p = workspace().join(format!("tests/fixtures/pricing/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn answer_for(body: &Value) -> Value {
    let filter = |field: &str| {
        body["Filters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["Field"] == field)
            .and_then(|f| f["Value"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    match (
        body["ServiceCode"].as_str().unwrap_or_default(),
        filter("productFamily").as_str(),
    ) {
        ("AmazonEC2", _) if filter("instanceType") == "t3.medium" => {
            // Beside the product, one AWS would not return for these filters but could: the
            // same SKU's zero-priced reservation row; it must be ignored.
            let mut a = fixture("ec2-t3-medium-apne2");
            let mut doc: Value = serde_json::from_str(a["PriceList"][0].as_str().unwrap()).unwrap();
            doc["product"]["sku"] = json!("EXAMPLEZEROPRICE");
            let terms = doc["terms"]["OnDemand"].as_object_mut().unwrap();
            for t in terms.values_mut() {
                for d in t["priceDimensions"].as_object_mut().unwrap().values_mut() {
                    d["pricePerUnit"]["USD"] = json!("0.0000000000");
                }
            }
            a["PriceList"]
                .as_array_mut()
                .unwrap()
                .push(json!(doc.to_string()));
            a
        }
        ("AmazonRDS", "Database Instance") if filter("deploymentOption") == "Multi-AZ" => {
            fixture("rds-mysql-db-t3-medium-multiaz-apne2")
        }
        ("AmazonRDS", "Database Storage") if filter("deploymentOption") == "Multi-AZ" => {
            fixture("rds-gp2-storage-multiaz-apne2")
        }
        _ => json!({"FormatVersion": "aws_v1", "PriceList": []}),
    }
}

impl PriceList {
    async fn start() -> PriceList {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    // Headers, then Content-Length bytes of body.
                    let (head_end, length) = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (i + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let target = head
                        .lines()
                        .find_map(|l| l.strip_prefix("x-amz-target:"))
                        .unwrap_or_default()
                        .trim()
                        .to_owned();
                    let body: Value = serde_json::from_slice(&buf[head_end..head_end + length])
                        .unwrap_or_default();
                    let answer = answer_for(&body).to_string();
                    seen.lock().unwrap().push((target, body));
                    let res = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nx-amzn-requestid: test\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = sock.write_all(res.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        PriceList { url, requests }
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

#[tokio::test]
async fn the_price_list_adapter_picks_the_one_on_demand_price_and_keeps_it_for_a_day() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic();
    let prices = PriceList::start().await;
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&moto.url),
        &[("TIERDECK_COST__PRICE_LIST_ENDPOINT", &prices.url)],
    )
    .await;
    let ann = app.api_as("ann", "viewer").await;
    ann.change_for("prod", &repo.head()).await;
    let report = ann.get_json("/api/v1/environments/prod/cost").await;
    let c = &report["cost"];
    let web = &c["groups"][0];
    assert_eq!(web["price"]["per_unit"], 0.052, "{c:#}");
    assert_eq!(
        web["price"]["source"],
        "AWS Price List, SKU EXAMPLEEC2T3MAPN"
    );
    let db = &c["databases"][0];
    // The engine and storage type come from AWS (moto): mysql on gp2.
    assert_eq!(
        (db["engine"].as_str(), db["storage_type"].as_str()),
        (Some("mysql"), Some("gp2")),
        "{db:#}"
    );
    assert_eq!(db["instance_price"]["per_unit"], 0.208);
    assert_eq!(db["storage_price"]["per_unit"], 0.262);
    assert_eq!(c["unpriced"], json!([]), "{c:#}");
    assert!(c["sources"].as_array().unwrap().iter().any(|s| s
        .as_str()
        .unwrap()
        .starts_with("AWS Price List, SKU EXAMPLERDST3MMAZ")));

    // What was asked: GetProducts with the narrow filters, one request per thing priced
    // (prod's t3.medium, Multi-AZ instance and storage; staging's too, for its new change).
    let asked = prices.requests.lock().unwrap().clone();
    assert!(asked
        .iter()
        .all(|(target, _)| target == "awspricelistservice.getproducts"));
    let ec2 = asked
        .iter()
        .find(|(_, b)| b["ServiceCode"] == "AmazonEC2" && b.to_string().contains("t3.medium"))
        .map(|(_, b)| b.clone())
        .unwrap();
    for (field, value) in [
        ("regionCode", "ap-northeast-2"),
        ("operatingSystem", "Linux"),
        ("tenancy", "Shared"),
        ("capacitystatus", "Used"),
        ("preInstalledSw", "NA"),
    ] {
        assert!(
            ec2["Filters"]
                .as_array()
                .unwrap()
                .contains(&json!({"Type": "TERM_MATCH", "Field": field, "Value": value})),
            "{field} in {ec2:#}"
        );
    }
    assert_eq!(ec2["FormatVersion"], "aws_v1");

    // Kept for a day: the next view asks nothing.
    let before = prices.count();
    ann.get_json("/api/v1/environments/prod/cost").await;
    assert_eq!(prices.count(), before);
}

#[tokio::test]
async fn the_cost_command_prints_the_breakdown_and_the_difference_offline() {
    let repo = SpecRepo::petclinic();
    let raised = repo.commit(
        SEUNG,
        "Web peak up to 8",
        repo.replace_in(
            "environments/prod/autoscaling.yaml",
            "timezone: Asia/Seoul, min: 4, max: 6 }",
            "timezone: Asia/Seoul, min: 4, max: 8 }",
        ),
    );
    assert!(!raised.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let prices = workspace().join("examples/prices.yaml");
    let work = repo.work.to_str().unwrap();
    let out = cli_in(
        dir.path(),
        &[
            "cost",
            "prod",
            "--spec",
            work,
            "--prices",
            prices.to_str().unwrap(),
            "--against",
            "HEAD~1",
            "--month",
            "2026-12",
        ],
        None,
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 2 more instances for 180 minutes a day: 360 × 730/1440 × $0.052 = $9.49 on the ceiling.
    assert!(
        text.contains("total: $333.17 – $726.22 (expected $340.29)"),
        "{text}"
    );
    assert!(
        text.contains("against HEAD~1: monthly $333.17 – $716.73 (expected $340.29) → $333.17 – $726.22 (expected $340.29); expected ±$0.00, ceiling +$9.49"),
        "{text}"
    );
    assert!(text.contains("autoscaling group petclinic-prod-web: $85.67 – $277.32 (expected $89.10) → $85.67 – $286.81 (expected $89.10)"), "{text}");

    // A bad price file names its line and field, and nothing is printed.
    let bad = dir.path().join("prices.yaml");
    std::fs::write(
        &bad,
        "source: x\nas_of: y\ncurrency: USD\nregion: r\ninstances:\n  t3.medium: free\n",
    )
    .unwrap();
    let out = cli_in(
        dir.path(),
        &[
            "cost",
            "prod",
            "--spec",
            work,
            "--prices",
            bad.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "prices.yaml:6:14: `instances.t3.medium`: expected a price of 0 or more, found `free`"
        ),
        "{err}"
    );
}

/// One environment whose AWS reads hang holds back no other's cost: nothing waits on a lock
/// held across an AWS call (approvals, applies and change pages read costs too).
#[tokio::test]
async fn one_environments_hanging_aws_reads_hold_back_no_other_environments_cost() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic();
    let (k, v) = prices_env();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[
            (k, &v),
            // One attempt that waits long: the hanging read outlasts the test's patience.
            ("TIERDECK_AWS__MAX_ATTEMPTS", "1"),
            ("TIERDECK_AWS__ATTEMPT_TIMEOUT_SECS", "90"),
        ],
    )
    .await;
    let vic = app.api_as("vic", "viewer").await;
    let olga = app.api_as("olga", "operator").await;
    vic.change_for("staging", &repo.head()).await;
    // A new group in prod, whose reads from AWS hang: its change's page reads its cost.
    proxy.fail_naming(
        "DescribeAutoScalingGroups",
        "petclinic-prod-batch",
        Fault::Hang,
    );
    let batch = repo.commit(SEUNG, "Prod: a batch group", |work| {
        let p = work.join("environments/prod/autoscaling.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            format!("{text}  - name: petclinic-prod-batch\n    tier: batch\n    min: 2\n    max: 2\n    instance_type: t3.medium\n"),
        )
        .unwrap();
    });
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = vic.change_for("prod", &batch).await["id"].as_i64().unwrap();
    // Recording the change read its cost (for its notification, within a bound): AWS was asked.
    tierdeck_tests::wait_for("prod's new group asked for", 30, || async {
        (proxy.hits_naming("petclinic-prod-batch") >= 1).then_some(())
    })
    .await;
    // The change's page reads its cost, and waits for AWS.
    let page = {
        let vic = vic.clone();
        tokio::spawn(async move { vic.get(&format!("/api/v1/changes/{id}")).await })
    };
    // Time for the page's request to reach its cost read (no assertion rests on it: with a
    // lock held across AWS calls, staging's read below would then wait behind it).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!page.is_finished(), "the prod change's page waits for AWS");
    let staging = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        vic.get_json("/api/v1/environments/staging/cost"),
    )
    .await
    .expect("staging's cost waited for prod's hanging AWS read");
    assert_eq!(staging["cost"]["environment"], "staging", "{staging:#}");
    assert!(
        !page.is_finished(),
        "the prod change's page still waits for AWS"
    );
    page.abort();
}
